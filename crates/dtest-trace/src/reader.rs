//! Streaming reader: one event at a time, constant memory in the trace length.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::clock::VectorClock;
use crate::codec::{self, CodecState, Cursor, InFlight, BLOCK_HEADER_LEN, PREAMBLE_LEN};
use crate::error::{Error, Result};
use crate::model::{Dir, Event, EventData, Header, Kind, MsgId};

/// Something a reader noticed that does not stop it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// The file ends inside a block (a killed run): events from `offset` on
    /// are lost, every event before it was read.
    Torn {
        /// Offset of the torn block.
        offset: u64,
    },
    /// The file was written by a newer minor version of the format.
    NewerMinor {
        /// The file's minor version.
        minor: u16,
    },
    /// Events whose data was too big for the format and was cut by their
    /// writer (the cuts are marked `… [cut: N bytes]` in the data). One
    /// warning for all of them, naming the first.
    Cut {
        /// Index of the first cut event.
        index: u64,
        /// Where it starts in the file.
        offset: u64,
        /// Number of cut events read so far.
        count: u64,
    },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::Torn { offset } => write!(
                f,
                "trace is truncated at byte {offset} (torn last record); events up to there were read"
            ),
            Warning::NewerMinor { minor } => write!(
                f,
                "trace written by a newer format version {}.{minor}; reading it as {}.{}",
                codec::FORMAT_MAJOR,
                codec::FORMAT_MAJOR,
                codec::FORMAT_MINOR
            ),
            Warning::Cut {
                index,
                offset,
                count,
            } => {
                write!(
                    f,
                    "event {index} (byte {offset}) was too big for the trace format ({} bytes at most): its writer cut it, the cut marked \"… [cut: N bytes]\"",
                    codec::MAX_DATA_LEN
                )?;
                if *count > 1 {
                    write!(f, "; {count} events were cut in all")?;
                }
                Ok(())
            }
        }
    }
}

/// What a [`Reader`] decodes: by default everything. A reader that only
/// needs part of each event can skip the rest, which reads faster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    clocks: bool,
    /// Bit `k`: decode the data of kind `k`.
    data: u32,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions::all()
    }
}

impl ReadOptions {
    const ALL_KINDS: u32 = (1 << Kind::ALL.len()) - 1;

    /// Everything: full vector clocks and the data of every kind.
    pub fn all() -> ReadOptions {
        ReadOptions {
            clocks: true,
            data: Self::ALL_KINDS,
        }
    }

    /// Whether to rebuild the vector clocks. Without them, every event's
    /// clock is empty (no entry), and the reader keeps no clock of its own.
    pub fn clocks(mut self, on: bool) -> ReadOptions {
        self.clocks = on;
        self
    }

    /// Decodes the data of these kinds only: an event of another kind gets
    /// the empty data of its kind ([`EventData::empty`]), its bytes stepped
    /// over (their layout checked, their texts not checked to be UTF-8).
    pub fn data_of(mut self, kinds: impl IntoIterator<Item = Kind>) -> ReadOptions {
        self.data = kinds.into_iter().fold(0, |m, k| m | 1 << k as u32);
        self
    }

    /// Whether clocks are rebuilt.
    pub fn has_clocks(&self) -> bool {
        self.clocks
    }

    /// Whether the data of `kind` is decoded.
    pub fn decodes(&self, kind: Kind) -> bool {
        self.data & (1 << kind as u32) != 0
    }
}

/// Reads a trace event by event.
///
/// [`Reader::next_event`] lends the current event; its clock is the full
/// vector clock, reconstructed from the stored differences. Receives carry
/// their send's data (kept while the message is in flight). A reader made
/// with [`Reader::with_options`] may skip the clocks and the data of some
/// kinds.
#[derive(Debug)]
pub struct Reader<R: Read> {
    input: R,
    header: Header,
    minor: u16,
    state: CodecState,
    block: Vec<u8>,
    block_pos: usize,
    block_base: u64,
    offset: u64,
    current: Event,
    pending: InFlight<EventData>,
    /// Spare `EventData` of each kind (data of events already lent), whose
    /// allocations decoding reuses: a steady stream of events allocates
    /// nothing.
    spares: Vec<Vec<EventData>>,
    /// The current event is a send whose data moves to `pending` on the
    /// next call (moved, not cloned).
    stash: Option<MsgId>,
    warnings: Vec<Warning>,
    saw_end: bool,
    done: bool,
    torn: bool,
    torn_block: (u64, u32),
    exhausted: bool,
    bytes_payload: u64,
    /// Position of the `Warning::Cut` in `warnings`, once there is one.
    cut_warning: Option<usize>,
    cut_events: u64,
    options: ReadOptions,
    /// Per kind, the empty data lent for events whose data is skipped.
    blanks: Vec<Option<EventData>>,
    /// The current event's data is a blank.
    blank_current: bool,
}

/// Most spare `EventData` a reader keeps per kind.
const SPARES_PER_KIND: usize = 64;

/// Spares larger than this are dropped rather than kept, so the pool's
/// memory stays small whatever the events' sizes.
const SPARE_MAX_BYTES: usize = 64 << 10;

/// Whether `d` has room for more than [`SPARE_MAX_BYTES`] in the fields
/// that can be large (payloads, matched text, a custom step's output). O(1).
fn is_heavy(d: &EventData) -> bool {
    match d {
        EventData::Input { bytes, .. } | EventData::Output { bytes, .. } => {
            bytes.capacity() > SPARE_MAX_BYTES
        }
        EventData::Match { matched: s, .. } | EventData::Custom { output: s, .. } => {
            s.capacity() > SPARE_MAX_BYTES
        }
        _ => false,
    }
}

/// Data that owns no allocation, to fill a slot whose data moved out.
#[inline]
fn placeholder() -> EventData {
    EventData::Close {
        reason: String::new(),
    }
}

/// Steps over the clock entries of an event (see
/// [`CodecState::get_clock`]), checking that they name actors of the trace.
#[inline]
fn skip_clock(c: &mut Cursor<'_>, n: usize) -> Result<()> {
    let count = c.varint()?;
    if count == 0 {
        // Always, for a valid trace: the clock is the predicted one.
        return Ok(());
    }
    for _ in 0..count {
        let i = c.varint()?;
        c.varint()?;
        if i >= n as u64 {
            return Err(Error::Corrupt {
                offset: c.offset(),
                what: format!("clock entry for actor {i}, but the trace has {n} actors"),
            });
        }
    }
    Ok(())
}

/// Reads as much as possible into `buf`; returns the number of bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Reader<BufReader<File>> {
    /// Opens a trace file.
    pub fn open(path: &Path) -> Result<Self> {
        let f = File::open(path)?;
        Reader::new(BufReader::with_capacity(256 << 10, f))
    }
}

impl<R: Read> Reader<R> {
    /// Reads the preamble and the header.
    pub fn new(mut input: R) -> Result<Self> {
        let mut pre = [0u8; PREAMBLE_LEN];
        let got = read_full(&mut input, &mut pre)?;
        if got < 8 || pre[..8] != codec::MAGIC {
            if got < 8 && codec::MAGIC.starts_with(&pre[..got]) && got > 0 {
                return Err(Error::TruncatedHeader { offset: got as u64 });
            }
            return Err(Error::NotATrace { offset: 0 });
        }
        if got < PREAMBLE_LEN {
            return Err(Error::TruncatedHeader { offset: got as u64 });
        }
        let major = u16::from_le_bytes([pre[8], pre[9]]);
        let minor = u16::from_le_bytes([pre[10], pre[11]]);
        if major != codec::FORMAT_MAJOR {
            return Err(Error::UnsupportedVersion {
                offset: 8,
                major,
                minor,
                supported: codec::FORMAT_MAJOR,
            });
        }
        let hlen = u32::from_le_bytes([pre[12], pre[13], pre[14], pre[15]]);
        let hcrc = u32::from_le_bytes([pre[16], pre[17], pre[18], pre[19]]);
        if hlen > codec::MAX_HEADER_LEN {
            return Err(Error::Corrupt {
                offset: 12,
                what: format!("header length {hlen} is implausible"),
            });
        }
        // Grow with the data actually there, not with what a length claims.
        let mut hbuf = Vec::new();
        let got = (&mut input).take(u64::from(hlen)).read_to_end(&mut hbuf)?;
        if got < hlen as usize {
            return Err(Error::TruncatedHeader {
                offset: (PREAMBLE_LEN + got) as u64,
            });
        }
        if crc32fast::hash(&hbuf) != hcrc {
            return Err(Error::Corrupt {
                offset: PREAMBLE_LEN as u64,
                what: "header checksum mismatch".into(),
            });
        }
        let header = codec::decode_header(&hbuf, PREAMBLE_LEN as u64)?;
        if header.actors.len() > codec::MAX_ACTORS {
            return Err(Error::Corrupt {
                offset: PREAMBLE_LEN as u64,
                what: format!(
                    "header lists {} actors (at most {} are supported)",
                    header.actors.len(),
                    codec::MAX_ACTORS
                ),
            });
        }
        let n = header.actors.len();
        let mut warnings = Vec::new();
        if minor > codec::FORMAT_MINOR {
            warnings.push(Warning::NewerMinor { minor });
        }
        let offset = (PREAMBLE_LEN + hbuf.len()) as u64;
        let state = CodecState::new(&header, minor.min(codec::FORMAT_MINOR));
        Ok(Reader {
            input,
            header,
            minor,
            state,
            block: Vec::new(),
            block_pos: 0,
            block_base: offset,
            offset,
            current: Event {
                index: 0,
                actor: 0,
                time_ns: 0,
                dir: Dir::Local,
                msg: None,
                clock: VectorClock::new(n),
                data: EventData::Close {
                    reason: String::new(),
                },
            },
            pending: InFlight::default(),
            spares: Kind::ALL.iter().map(|_| Vec::new()).collect(),
            stash: None,
            warnings,
            saw_end: false,
            done: false,
            torn: false,
            torn_block: (0, 0),
            exhausted: false,
            bytes_payload: 0,
            cut_warning: None,
            cut_events: 0,
            options: ReadOptions::all(),
            blanks: Kind::ALL.iter().map(|_| None).collect(),
            blank_current: false,
        })
    }

    /// Reads only what `options` asks for (see [`ReadOptions`]). Call it
    /// before the first event is read: it panics afterwards.
    pub fn with_options(mut self, options: ReadOptions) -> Self {
        assert!(
            self.state.next_index == 0,
            "Reader::with_options after events were read"
        );
        self.options = options;
        if !options.clocks {
            self.current.clock = VectorClock(Vec::new());
        }
        self
    }

    /// What this reader decodes.
    pub fn options(&self) -> ReadOptions {
        self.options
    }

    /// The trace header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The format version of the file (major, minor).
    pub fn version(&self) -> (u16, u16) {
        (codec::FORMAT_MAJOR, self.minor)
    }

    /// Warnings so far (a torn tail shows up once the end is reached).
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Whether the trace has its `end` event (meaningful once read through).
    pub fn is_complete(&self) -> bool {
        self.saw_end
    }

    /// Number of events read so far whose data their writer cut to fit the
    /// format's size limit (see [`Warning::Cut`]).
    pub fn cut_events(&self) -> u64 {
        self.cut_events
    }

    /// The byte offset of the first byte not yet consumed.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Total payload bytes (input and output) of the events read so far,
    /// each message counted once.
    pub fn payload_bytes(&self) -> u64 {
        self.bytes_payload
    }

    /// Loads the next block; returns false at the end of the trace.
    fn next_block(&mut self) -> Result<bool> {
        let mut bh = [0u8; BLOCK_HEADER_LEN];
        let got = read_full(&mut self.input, &mut bh)?;
        if got == 0 {
            return Ok(false);
        }
        let start = self.offset;
        if got < BLOCK_HEADER_LEN {
            self.warnings.push(Warning::Torn { offset: start });
            return Ok(false);
        }
        let len = u32::from_le_bytes([bh[0], bh[1], bh[2], bh[3]]);
        let crc = u32::from_le_bytes([bh[4], bh[5], bh[6], bh[7]]);
        if len == 0 || len > codec::MAX_BLOCK_LEN {
            return Err(Error::Corrupt {
                offset: start,
                what: format!("block length {len} is implausible"),
            });
        }
        self.block.clear();
        let got = (&mut self.input)
            .take(u64::from(len))
            .read_to_end(&mut self.block)?;
        if got < len as usize {
            // The file ends inside this block: a killed run. Its bytes were
            // written whole up to the cut, so decode the events that fit
            // completely; the first one that does not marks the cut.
            self.block.truncate(got);
            self.torn = true;
            self.torn_block = (start, len);
            self.block_base = start + BLOCK_HEADER_LEN as u64;
            self.block_pos = 0;
            self.offset = self.block_base + got as u64;
            if got == 0 {
                self.warnings.push(Warning::Torn { offset: start });
                return Ok(false);
            }
            return Ok(true);
        }
        if crc32fast::hash(&self.block) != crc {
            return Err(Error::Corrupt {
                offset: start,
                what: "block checksum mismatch".into(),
            });
        }
        self.block_base = start + BLOCK_HEADER_LEN as u64;
        self.block_pos = 0;
        self.offset = self.block_base + u64::from(len);
        Ok(true)
    }

    /// Reads the next event; `None` at the end of the trace.
    pub fn next_event(&mut self) -> Result<Option<&Event>> {
        // Retire the previous event's data: a send's goes to `pending` for
        // its receive (moved, not cloned), any other back to the spare of
        // its kind, whose allocations the next event of that kind reuses.
        // A blank stays in place: the next event's data may be a blank of
        // the same kind.
        if !self.blank_current {
            let old = std::mem::replace(&mut self.current.data, placeholder());
            match self.stash.take() {
                Some(m) => {
                    self.pending.insert(m, old);
                }
                None => {
                    let pool = &mut self.spares[old.kind() as usize];
                    if pool.len() < SPARES_PER_KIND && !is_heavy(&old) {
                        pool.push(old);
                    }
                }
            }
        }
        if self.done {
            return Ok(None);
        }
        if self.block_pos >= self.block.len() {
            if self.torn {
                // The cut fell exactly on an event boundary.
                self.done = true;
                self.warnings.push(Warning::Torn {
                    offset: self.offset,
                });
                return Ok(None);
            }
            match self.next_block() {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return Ok(None);
                }
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
        match self.decode_one() {
            Ok(()) => Ok(Some(&self.current)),
            Err(_) if self.torn && self.exhausted => {
                self.done = true;
                let offset = self.block_base + self.block_pos as u64;
                self.offset = offset;
                self.warnings.push(Warning::Torn { offset });
                Ok(None)
            }
            Err(e) if self.torn => {
                // Bad bytes (not a cut) inside a block that runs past the
                // end of the file: its length field is the likely damage.
                self.done = true;
                let (offset, len) = self.torn_block;
                Err(Error::Corrupt {
                    offset,
                    what: format!(
                        "block claims {len} bytes, more than the file holds, and its content is damaged ({e})"
                    ),
                })
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }

    fn decode_one(&mut self) -> Result<()> {
        let block = std::mem::take(&mut self.block);
        let mut c = Cursor::new(
            &block[self.block_pos..],
            self.block_base + self.block_pos as u64,
        );
        let r = self.decode_with(&mut c);
        self.exhausted = c.exhausted;
        self.block = block;
        r
    }

    fn decode_with(&mut self, c: &mut Cursor<'_>) -> Result<()> {
        let start = c.offset();
        let t = c.byte()?;
        // Format 1.2: the cut bit. Older files never have it.
        let cut = t & codec::CUT_BIT != 0 && self.state.minor >= codec::CUT_MINOR;
        let t = if cut { t & !codec::CUT_BIT } else { t };
        let Some((kind, dir)) = codec::untag(t) else {
            return Err(Error::Corrupt {
                offset: start,
                what: format!("bad event tag 0x{t:02x}"),
            });
        };
        if cut && dir == Dir::Recv {
            return Err(Error::Corrupt {
                offset: start,
                what: "a receive flagged as cut (its data is its send's)".into(),
            });
        }
        let actor = c.varint()?;
        if actor >= self.state.n as u64 {
            return Err(Error::Corrupt {
                offset: start,
                what: format!(
                    "event on actor {actor}, but the trace has {} actors",
                    self.state.n
                ),
            });
        }
        let actor = actor as u32;
        let dt = codec::unzigzag(c.varint()?);
        let time_ns = self.state.last_time.wrapping_add(dt as u64);
        self.state.last_time = time_ns;
        let msg = self.state.get_msg(c, dir)?;
        if self.options.clocks {
            self.state
                .get_clock(c, actor, dir, msg, &mut self.current.clock.0)?;
        } else if !c.zero() {
            skip_clock(c, self.state.n)?;
        }
        let data = if !self.options.decodes(kind) {
            match dir {
                // Nothing of a skipped kind is kept for its receive. What
                // a full read keeps for a message id is the data of its
                // last send: a skipped send replaces (removes) the data
                // of an earlier send with the same id, and a skipped
                // receive takes it out (both only in damaged traces).
                Dir::Recv => drop(self.pending.remove(msg.unwrap_or_default())),
                Dir::Send => {
                    drop(self.pending.remove(msg.unwrap_or_default()));
                    self.bytes_payload += c.skip_data(kind, &self.state)?;
                }
                Dir::Local => self.bytes_payload += c.skip_data(kind, &self.state)?,
            }
            None
        } else {
            Some(match dir {
                Dir::Recv => {
                    let m = msg.unwrap_or_default();
                    match self.pending.remove(m) {
                        Some(d) if d.kind() == kind => d,
                        _ => EventData::empty(kind),
                    }
                }
                _ => {
                    let mut d = self.spares[kind as usize]
                        .pop()
                        .unwrap_or_else(|| EventData::empty(kind));
                    c.data_into(kind, &mut self.state, &mut d)?;
                    if dir == Dir::Send {
                        self.stash = Some(msg.unwrap_or_default());
                    }
                    d
                }
            })
        };
        if kind == Kind::End {
            self.saw_end = true;
        }
        if cut {
            self.cut_events += 1;
            match self.cut_warning {
                Some(i) => {
                    if let Some(Warning::Cut { count, .. }) = self.warnings.get_mut(i) {
                        *count = self.cut_events;
                    }
                }
                None => {
                    self.cut_warning = Some(self.warnings.len());
                    self.warnings.push(Warning::Cut {
                        index: self.state.next_index,
                        offset: start,
                        count: 1,
                    });
                }
            }
        }
        if let (Some(data), true) = (&data, dir != Dir::Recv) {
            // A receive shows its send's payload: count it once.
            self.bytes_payload += data.payload_len() as u64;
        }
        let consumed = (c.offset() - start) as usize;
        self.block_pos += consumed;
        let cur = &mut self.current;
        cur.index = self.state.next_index;
        self.state.next_index += 1;
        cur.actor = actor;
        cur.time_ns = time_ns;
        cur.dir = dir;
        cur.msg = msg;
        match data {
            Some(d) => {
                if self.blank_current {
                    self.blank_current = false;
                    let old = std::mem::replace(&mut cur.data, d);
                    let k = old.kind() as usize;
                    self.blanks[k] = Some(old);
                } else {
                    cur.data = d;
                }
            }
            None if self.blank_current && cur.data.kind() == kind => {}
            None => {
                let blank = self.blanks[kind as usize]
                    .take()
                    .unwrap_or_else(|| EventData::empty(kind));
                let old = std::mem::replace(&mut cur.data, blank);
                if self.blank_current {
                    let k = old.kind() as usize;
                    self.blanks[k] = Some(old);
                }
                self.blank_current = true;
            }
        }
        Ok(())
    }

    /// Iterates over owned copies of the events.
    pub fn events(self) -> Events<R> {
        Events { reader: self }
    }
}

/// Owning iterator over a trace's events (see [`Reader::events`]).
#[derive(Debug)]
pub struct Events<R: Read> {
    reader: Reader<R>,
}

impl<R: Read> Events<R> {
    /// The underlying reader (header, warnings, completeness).
    pub fn reader(&self) -> &Reader<R> {
        &self.reader
    }
}

impl<R: Read> Iterator for Events<R> {
    type Item = Result<Event>;
    fn next(&mut self) -> Option<Result<Event>> {
        match self.reader.next_event() {
            Ok(Some(e)) => Some(Ok(e.clone())),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}
