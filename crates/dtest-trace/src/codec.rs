//! The byte-level codec of the trace format: the only module that knows
//! bincode, varints and the record layout.
//!
//! # File layout (format 1.0)
//!
//! ```text
//! magic    8 bytes   89 'D' 'T' 'R' 'A' 'C' 'E' 0a
//! major    u16 LE    FORMAT_MAJOR
//! minor    u16 LE    FORMAT_MINOR
//! hlen     u32 LE    length of the header bytes
//! hcrc     u32 LE    CRC-32 of the header bytes
//! header   hlen bytes, bincode (standard config) of `Header`
//! blocks   until the end of the file:
//!   len    u32 LE    length of the block body
//!   crc    u32 LE    CRC-32 of the body
//!   body   len bytes: one or more events, back to back
//! ```
//!
//! A block is written with one (vectored) `write` call, so a
//! killed run leaves whole blocks and at most one torn block at the end of the
//! file. A reader that meets the end of the file inside a block reports a torn
//! tail (a warning); a bad checksum or a bad encoding anywhere is corruption.
//!
//! # Event layout
//!
//! ```text
//! tag      u8        kind (bits 0-4) | dir (bits 5-6: 0 local, 1 send, 2 recv)
//!                    | cut (bit 7, format 1.2: the writer cut this event's
//!                    data to fit the size limit; never on a receive)
//! actor    varint
//! dtime    zigzag varint: time_ns minus the previous event's time_ns
//! msg      (send)    zigzag varint: msg - (previous send's msg + 1)
//!          (recv)    zigzag varint: previous send's msg - msg
//! nclock   varint    number of clock entries that follow
//! entries  nclock x (actor varint, zigzag varint of new - old value)
//! data     (local, send) bincode of `EventData`; nothing for a receive.
//!          barrier_leave instead: its name, then varint c: 0 = the same
//!          participants as the previous barrier_leave, else c - 1
//!          participants, each varint actor id + 1, or 0 and a string
//!          (format 1.0: c is the count itself, no repeat code)
//! ```
//!
//! Clock entries are relative to the clock the codec predicts: the actor's
//! previous clock, merged (for a receive) with the clock of the message's
//! send, with the own entry ticked by one. For a valid trace that prediction
//! is exact, so no event stores a clock entry at all and the size of an event
//! does not grow with the number of actors; entries are stored only where a
//! writer gives another clock (which `validate` then reports). A receive's
//! data is the data of its send, which the reader resolves by message id.
//!
//! # Size limits: events too big are cut, visibly
//!
//! The encoded data of one event is at most [`MAX_DATA_LEN`] (16 MiB), the
//! header at most [`MAX_HEADER_LEN`]; writer and reader agree on both. A
//! block holds at most 64 KiB of small events plus one event, so a writer
//! never writes a block anywhere near [`MAX_BLOCK_LEN`] (256 MiB), the
//! reader's bound against hostile lengths: every trace a writer writes, the
//! reader reads.
//!
//! What does not fit is never dropped silently:
//!
//! - [`crate::Writer`]'s `append*` refuse an event whose data is over the
//!   limit with an error (nothing written, the writer stays usable), and so
//!   does creating a trace whose header is over its limit.
//! - [`crate::Recorder`] (what `dtest exec` records with) cuts instead
//!   ([`crate::Writer::set_cut_oversized`], [`cut_to_fit`]): every text or
//!   byte field of an event (a command line, an output chunk, a barrier
//!   name, a custom step's output...) longer than [`CUT_FIELD_LEN`] (8 MiB)
//!   keeps its first 8 MiB (less, to end on a UTF-8 character boundary) and
//!   ends with the marker `… [cut: N bytes]` ([`cut_marker`], N the number
//!   of bytes removed). If the event still does not fit (several long
//!   fields, thousands of captures), a capture list (match) or participant
//!   list (barrier_leave) keeps its first [`CUT_MAX_ITEMS`] entries, the
//!   last saying how many more there were, and the longest fields are cut
//!   to one common length. The cut event's tag has the cut bit set, and
//!   every reader reports cut events ([`crate::Warning::Cut`]: `dtest trace
//!   show`, `stats`, `validate` (which also counts them), `export` and
//!   `dtest msc` print it). A field is cut by its own length, not
//!   by its neighbours': a barrier name is cut alike in its `barrier_enter`
//!   and its `barrier_leave`, so the two still pair by name.
//!
//! Format 1.2 added the cut bit (1.1 readers take it for a bad tag); a 1.2
//! reader refuses the bit in files of an older minor, and a writer of an
//! older minor refuses what it would have to cut.
//!
//! The data is written with bincode and read by [`Cursor::data_into`], a
//! decoder of the same layout that fills an existing `EventData` in place:
//! a reader recycles the data of the events it has lent, so a steady stream
//! of events allocates nothing (a unit test and the proptest round trips
//! check that both sides agree).

use std::collections::HashMap;
use std::sync::Arc;

use bincode::config::{self, Configuration};

use crate::error::{Error, Result};
use crate::model::{ActorId, Dir, EventData, Header, Kind};

/// Magic bytes at the start of every trace file.
pub const MAGIC: [u8; 8] = *b"\x89DTRACE\n";
/// Format major version: readers refuse any other.
pub const FORMAT_MAJOR: u16 = 1;
/// Format minor version: readers read every older minor of their major.
/// 1.0 -> 1.1: a barrier_leave may say "same participants as the previous
/// one" instead of repeating the list. 1.1 -> 1.2: the cut bit of the event
/// tag ([`CUT_BIT`]).
pub const FORMAT_MINOR: u16 = 2;
/// The first minor version with the cut bit.
pub const CUT_MINOR: u16 = 2;
/// Bit of the event tag that says the writer cut the event's data to fit
/// [`MAX_DATA_LEN`] (format 1.2 on).
pub const CUT_BIT: u8 = 0x80;
/// Size of the fixed preamble before the header bytes.
pub const PREAMBLE_LEN: usize = 8 + 2 + 2 + 4 + 4;
/// Size of a block header.
pub const BLOCK_HEADER_LEN: usize = 8;
/// Largest block body a reader accepts; a larger length is corruption.
pub const MAX_BLOCK_LEN: u32 = 256 << 20;
/// Most actors a trace may have (the codec keeps one clock per actor).
pub const MAX_ACTORS: usize = 4096;
/// Largest header a reader accepts.
pub const MAX_HEADER_LEN: u32 = MAX_DATA_LEN as u32;

/// Largest encoded data of one event (and largest header). Decoding claims
/// no more than this, so a damaged length cannot make the reader allocate
/// gigabytes; the writer refuses larger events, or cuts them (see the
/// module docs).
pub const MAX_DATA_LEN: usize = 16 << 20;

/// When an event is cut ([`cut_to_fit`]), each text or byte field longer than
/// this is cut to this length (then marked), whatever the other fields.
pub const CUT_FIELD_LEN: usize = MAX_DATA_LEN / 2;

/// When an event is cut ([`cut_to_fit`]), a capture list or a participant
/// list keeps at most this many entries (the last one says how many more
/// were removed).
pub const CUT_MAX_ITEMS: usize = 4096;

type Limited = Configuration<config::LittleEndian, config::Varint, config::Limit<MAX_DATA_LEN>>;

fn cfg() -> Limited {
    config::standard().with_limit::<MAX_DATA_LEN>()
}

/// Encodes the file preamble and header.
pub fn encode_preamble(header: &Header, minor: u16) -> Result<Vec<u8>> {
    let body = bincode::encode_to_vec(header, cfg())
        .map_err(|e| Error::Usage(format!("cannot encode header: {e}")))?;
    if body.len() > MAX_HEADER_LEN as usize {
        // The reader would refuse it: refuse it here.
        return Err(Error::Usage(format!(
            "the trace header (scenario name, actor names and hosts, metadata) takes {} bytes, \
             more than the format's limit of {MAX_HEADER_LEN}",
            body.len()
        )));
    }
    let mut out = Vec::with_capacity(PREAMBLE_LEN + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_MAJOR.to_le_bytes());
    out.extend_from_slice(&minor.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a header body (the bytes after the preamble).
pub fn decode_header(bytes: &[u8], offset: u64) -> Result<Header> {
    let (h, _): (Header, usize) =
        bincode::decode_from_slice(bytes, cfg()).map_err(|e| Error::Corrupt {
            offset,
            what: format!("bad header: {e}"),
        })?;
    Ok(h)
}

/// Appends `v` as an LEB128 varint.
#[inline]
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Zigzag encoding of a signed value.
#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A cursor over a block body that reports errors with file offsets.
#[derive(Debug)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
    /// Set when a read ran past the end of the buffer (as opposed to
    /// finding bad bytes): in a torn block, that is where the cut is.
    pub exhausted: bool,
}

impl<'a> Cursor<'a> {
    /// A cursor over `buf`, whose first byte is at file offset `base`.
    pub fn new(buf: &'a [u8], base: u64) -> Cursor<'a> {
        Cursor {
            buf,
            pos: 0,
            base,
            exhausted: false,
        }
    }

    /// Whether every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// File offset of the next byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn corrupt(&self, what: &str) -> Error {
        Error::Corrupt {
            offset: self.offset(),
            what: what.to_string(),
        }
    }

    /// Reads one byte.
    #[inline]
    pub fn byte(&mut self) -> Result<u8> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.past_end("event")),
        }
    }

    /// The error of a read past the end of the block (kept out of line:
    /// the reads stay small enough to inline).
    #[cold]
    #[inline(never)]
    fn past_end(&mut self, what: &str) -> Error {
        self.exhausted = true;
        let what = if what == "event" {
            "event runs past the end of its block".to_string()
        } else {
            format!("{what} runs past the end of its block")
        };
        Error::Corrupt {
            offset: self.offset(),
            what,
        }
    }

    /// Reads an LEB128 varint.
    #[inline]
    pub fn varint(&mut self) -> Result<u64> {
        // Most varints of a trace are one byte (actors, time steps, message
        // id steps, clock entry counts).
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        self.varint_long()
    }

    /// [`Cursor::varint`] of more than one byte (or at the end).
    #[inline(never)]
    fn varint_long(&mut self) -> Result<u64> {
        // Up to four bytes (time steps mostly), read at once.
        if let Some(b) = self.buf.get(self.pos..self.pos + 4) {
            let (b0, b1, b2, b3) = (
                u64::from(b[0] & 0x7f),
                u64::from(b[1]),
                u64::from(b[2]),
                u64::from(b[3]),
            );
            if b1 < 0x80 {
                self.pos += 2;
                return Ok(b0 | b1 << 7);
            }
            if b2 < 0x80 {
                self.pos += 3;
                return Ok(b0 | (b1 & 0x7f) << 7 | b2 << 14);
            }
            if b3 < 0x80 {
                self.pos += 4;
                return Ok(b0 | (b1 & 0x7f) << 7 | (b2 & 0x7f) << 14 | b3 << 21);
            }
        }
        let mut v: u64 = 0;
        let mut shift = 0;
        loop {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(self.corrupt("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(self.corrupt("varint too long"));
            }
        }
    }

    /// Consumes the next byte if it is 0 (a clock without stored entries,
    /// see [`CodecState::get_clock`]); else consumes nothing.
    #[inline]
    pub fn zero(&mut self) -> bool {
        if self.buf.get(self.pos) == Some(&0) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Takes the next `len` bytes.
    #[inline]
    fn take(&mut self, len: u64, what: &str) -> Result<&'a [u8]> {
        let rest = self.buf.len() - self.pos;
        if len > rest as u64 {
            return Err(self.past_end(what));
        }
        let bytes = &self.buf[self.pos..self.pos + len as usize];
        self.pos += len as usize;
        Ok(bytes)
    }

    /// Reads a length-prefixed UTF-8 string (LEB128 length) into `s`,
    /// reusing its allocation.
    fn string_into(&mut self, s: &mut String) -> Result<()> {
        let len = self.varint()?;
        let bytes = self.take(len, "string")?;
        let t = std::str::from_utf8(bytes).map_err(|_| self.corrupt("string is not UTF-8"))?;
        s.clear();
        s.push_str(t);
        Ok(())
    }

    // --- The bincode layout of `EventData` (standard configuration: little
    // endian, variable-length integers), decoded in place so that a reader
    // reuses the allocations of its previous events. `put_data` writes it
    // with bincode itself; the tests check that both agree on every kind.

    /// A bincode unsigned varint: one byte up to 250, else a marker (251,
    /// 252, 253) and a 2, 4 or 8-byte little-endian integer. `max` is the
    /// widest marker the integer type allows.
    #[inline]
    fn bin_uint(&mut self, max: u8) -> Result<u64> {
        match self.buf.get(self.pos) {
            Some(&b) if b <= 250 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            _ => self.bin_uint_long(max),
        }
    }

    /// [`Cursor::bin_uint`] of more than one byte (or at the end).
    #[inline(never)]
    fn bin_uint_long(&mut self, max: u8) -> Result<u64> {
        let b = self.byte()?;
        let width = match b {
            0..=250 => return Ok(u64::from(b)),
            251 => 2,
            252 if max >= 252 => 4,
            253 if max >= 253 => 8,
            _ => return Err(self.corrupt("bad integer encoding in event data")),
        };
        let raw = self.take(width, "integer")?;
        let mut le = [0u8; 8];
        le[..raw.len()].copy_from_slice(raw);
        Ok(u64::from_le_bytes(le))
    }

    #[inline]
    fn bin_u32(&mut self) -> Result<u32> {
        Ok(self.bin_uint(252)? as u32)
    }

    #[inline]
    fn bin_u64(&mut self) -> Result<u64> {
        self.bin_uint(253)
    }

    fn bin_i32(&mut self) -> Result<i32> {
        let n = self.bin_u32()?;
        Ok(if n % 2 == 0 {
            (n / 2) as i32
        } else {
            !(n / 2) as i32
        })
    }

    fn bin_bool(&mut self) -> Result<bool> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.corrupt("bad boolean in event data")),
        }
    }

    /// An enum variant index below `count`.
    fn bin_variant(&mut self, count: u32, what: &str) -> Result<u32> {
        let v = self.bin_u32()?;
        if v >= count {
            return Err(self.corrupt(&format!("unknown {what} variant {v}")));
        }
        Ok(v)
    }

    #[inline]
    fn bin_bytes(&mut self, len_what: &str) -> Result<&'a [u8]> {
        let len = self.bin_u64()?;
        self.take(len, len_what)
    }

    #[inline]
    fn bin_string_into(&mut self, s: &mut String) -> Result<()> {
        let bytes = self.bin_bytes("string")?;
        let t = std::str::from_utf8(bytes).map_err(|_| self.corrupt("string is not UTF-8"))?;
        s.clear();
        s.push_str(t);
        Ok(())
    }

    #[inline]
    fn bin_vec_into(&mut self, v: &mut Vec<u8>) -> Result<()> {
        let bytes = self.bin_bytes("byte string")?;
        v.clear();
        v.extend_from_slice(bytes);
        Ok(())
    }

    fn transfer_into(&mut self, t: &mut crate::model::Transfer) -> Result<()> {
        self.bin_string_into(&mut t.local)?;
        self.bin_string_into(&mut t.remote)?;
        t.size = self.bin_u64()?;
        t.sha256.copy_from_slice(self.take(32, "sha256")?);
        Ok(())
    }

    /// Decodes the data of an event of `kind` (see [`put_data`]) into `out`,
    /// reusing its allocations when it already holds data of that kind.
    pub fn data_into(
        &mut self,
        kind: Kind,
        state: &mut CodecState,
        out: &mut EventData,
    ) -> Result<()> {
        use crate::model::{Directive, ExitStatus, Stream};
        if out.kind() != kind {
            *out = EventData::empty(kind);
        }
        if kind == Kind::BarrierLeave {
            let EventData::BarrierLeave { name, participants } = out else {
                unreachable!("out holds barrier_leave data");
            };
            self.string_into(name)?;
            let code = self.varint()?;
            // Format 1.1: 0 means "the participants of the previous
            // barrier_leave", n means n - 1 participants follow.
            // Format 1.0: the count itself.
            let count = match (state.minor, code) {
                (0, n) => n,
                (_, 0) => {
                    *participants = Arc::clone(&state.last_participants);
                    return Ok(());
                }
                (_, n) => n - 1,
            };
            // Each participant takes at least one byte: a larger count is
            // damage, and must not size an allocation.
            if count > (self.buf.len() - self.pos) as u64 {
                self.exhausted = true;
                return Err(self.corrupt("participant list runs past the end of its block"));
            }
            let mut list = Vec::with_capacity(count as usize);
            for _ in 0..count {
                match self.varint()? {
                    0 => {
                        let mut s = String::new();
                        self.string_into(&mut s)?;
                        list.push(s);
                    }
                    id => match state.names.get(id as usize - 1) {
                        Some(n) => list.push(n.clone()),
                        None => return Err(self.corrupt("barrier participant is not an actor")),
                    },
                }
            }
            *participants = Arc::from(list);
            state.last_participants = Arc::clone(participants);
            return Ok(());
        }
        let at = self.offset();
        let v = self.bin_u32()?;
        if v != kind as u32 {
            let found = Kind::from_tag(v.min(0xff) as u8)
                .map(|k| k.name().to_string())
                .unwrap_or_else(|| format!("unknown variant {v}"));
            return Err(Error::Corrupt {
                offset: at,
                what: format!("event tag says {} but its data is {found}", kind.name()),
            });
        }
        match out {
            EventData::Open { target: s }
            | EventData::Close { reason: s }
            | EventData::Start { command: s }
            | EventData::Signal { name: s }
            | EventData::BarrierEnter { name: s } => self.bin_string_into(s)?,
            EventData::Input { bytes, secret } => {
                self.bin_vec_into(bytes)?;
                *secret = self.bin_bool()?;
            }
            EventData::Output { bytes, stream } => {
                self.bin_vec_into(bytes)?;
                *stream = match self.bin_variant(2, "stream")? {
                    0 => Stream::Stdout,
                    _ => Stream::Stderr,
                };
            }
            EventData::Exit { status } => match self.bin_variant(2, "exit status")? {
                0 => *status = ExitStatus::Code(self.bin_i32()?),
                _ => {
                    if !matches!(status, ExitStatus::Signal(_)) {
                        *status = ExitStatus::Signal(String::new());
                    }
                    let ExitStatus::Signal(s) = status else {
                        unreachable!("status is a signal");
                    };
                    self.bin_string_into(s)?;
                }
            },
            EventData::Match {
                pattern,
                matched,
                captures,
            } => {
                self.bin_string_into(pattern)?;
                self.bin_string_into(matched)?;
                let count = self.bin_u64()?;
                // Each capture takes at least two bytes.
                if count > ((self.buf.len() - self.pos) / 2) as u64 {
                    self.exhausted = true;
                    return Err(self.corrupt("capture list runs past the end of its block"));
                }
                let count = count as usize;
                captures.truncate(count);
                for i in 0..count {
                    if i == captures.len() {
                        captures.push((String::new(), String::new()));
                    }
                    let (k, v) = &mut captures[i];
                    self.bin_string_into(k)?;
                    self.bin_string_into(v)?;
                }
            }
            EventData::Timeout { pattern, waited_ns } => {
                self.bin_string_into(pattern)?;
                *waited_ns = self.bin_u64()?;
            }
            EventData::BarrierBroken { name, reason } => {
                self.bin_string_into(name)?;
                self.bin_string_into(reason)?;
            }
            EventData::Put(t) | EventData::Get(t) => self.transfer_into(t)?,
            EventData::Verdict {
                number,
                ok,
                description,
                directive,
                reason,
            } => {
                *number = self.bin_u32()?;
                *ok = self.bin_bool()?;
                self.bin_string_into(description)?;
                *directive = match self.byte()? {
                    0 => None,
                    1 => Some(match self.bin_variant(2, "directive")? {
                        0 => Directive::Skip,
                        _ => Directive::Todo,
                    }),
                    _ => return Err(self.corrupt("bad option in event data")),
                };
                self.bin_string_into(reason)?;
            }
            EventData::Custom {
                name,
                status,
                output,
            } => {
                self.bin_string_into(name)?;
                *status = self.bin_i32()?;
                self.bin_string_into(output)?;
            }
            EventData::End { ok, summary } => {
                *ok = self.bin_bool()?;
                self.bin_string_into(summary)?;
            }
            EventData::BarrierLeave { .. } => unreachable!("handled above"),
        }
        Ok(())
    }

    /// A bincode string or byte string, skipped: its length, checked to fit.
    #[inline]
    fn bin_skip(&mut self, len_what: &str) -> Result<u64> {
        let len = self.bin_u64()?;
        self.take(len, len_what)?;
        Ok(len)
    }

    /// Steps over the data of an event of `kind` (see [`Cursor::data_into`])
    /// without building it; returns its payload length (input and output
    /// bytes, else 0). The layout is checked as `data_into` checks it (tags,
    /// variants, lengths, participants) but texts are not checked to be
    /// UTF-8, and `state` is not changed: a reader that skips the data of
    /// `barrier_leave` must skip every one (a participant list may refer to
    /// the previous one's).
    pub fn skip_data(&mut self, kind: Kind, state: &CodecState) -> Result<u64> {
        if kind == Kind::BarrierLeave {
            let len = self.varint()?;
            self.take(len, "string")?;
            let code = self.varint()?;
            let count = match (state.minor, code) {
                (0, n) => n,
                (_, 0) => return Ok(0),
                (_, n) => n - 1,
            };
            if count > (self.buf.len() - self.pos) as u64 {
                self.exhausted = true;
                return Err(self.corrupt("participant list runs past the end of its block"));
            }
            for _ in 0..count {
                match self.varint()? {
                    0 => {
                        let len = self.varint()?;
                        self.take(len, "string")?;
                    }
                    id if id as usize - 1 < state.names.len() => {}
                    _ => return Err(self.corrupt("barrier participant is not an actor")),
                }
            }
            return Ok(0);
        }
        let at = self.offset();
        let v = self.bin_u32()?;
        if v != kind as u32 {
            let found = Kind::from_tag(v.min(0xff) as u8)
                .map(|k| k.name().to_string())
                .unwrap_or_else(|| format!("unknown variant {v}"));
            return Err(Error::Corrupt {
                offset: at,
                what: format!("event tag says {} but its data is {found}", kind.name()),
            });
        }
        match kind {
            Kind::Open | Kind::Close | Kind::Start | Kind::Signal | Kind::BarrierEnter => {
                self.bin_skip("string")?;
            }
            Kind::Input => {
                let n = self.bin_skip("byte string")?;
                self.bin_bool()?;
                return Ok(n);
            }
            Kind::Output => {
                let n = self.bin_skip("byte string")?;
                self.bin_variant(2, "stream")?;
                return Ok(n);
            }
            Kind::Exit => match self.bin_variant(2, "exit status")? {
                0 => {
                    self.bin_i32()?;
                }
                _ => {
                    self.bin_skip("string")?;
                }
            },
            Kind::Match => {
                self.bin_skip("string")?;
                self.bin_skip("string")?;
                let count = self.bin_u64()?;
                if count > ((self.buf.len() - self.pos) / 2) as u64 {
                    self.exhausted = true;
                    return Err(self.corrupt("capture list runs past the end of its block"));
                }
                for _ in 0..count {
                    self.bin_skip("string")?;
                    self.bin_skip("string")?;
                }
            }
            Kind::Timeout => {
                self.bin_skip("string")?;
                self.bin_u64()?;
            }
            Kind::BarrierBroken => {
                self.bin_skip("string")?;
                self.bin_skip("string")?;
            }
            Kind::Put | Kind::Get => {
                self.bin_skip("string")?;
                self.bin_skip("string")?;
                self.bin_u64()?;
                self.take(32, "sha256")?;
            }
            Kind::Verdict => {
                self.bin_u32()?;
                self.bin_bool()?;
                self.bin_skip("string")?;
                match self.byte()? {
                    0 => {}
                    1 => {
                        self.bin_variant(2, "directive")?;
                    }
                    _ => return Err(self.corrupt("bad option in event data")),
                }
                self.bin_skip("string")?;
            }
            Kind::Custom => {
                self.bin_skip("string")?;
                self.bin_i32()?;
                self.bin_skip("string")?;
            }
            Kind::End => {
                self.bin_bool()?;
                self.bin_skip("string")?;
            }
            Kind::BarrierLeave => unreachable!("handled above"),
        }
        Ok(0)
    }
}

/// Packs kind and direction into a tag byte.
#[inline]
pub fn tag(kind: Kind, dir: Dir) -> u8 {
    let d = match dir {
        Dir::Local => 0,
        Dir::Send => 1,
        Dir::Recv => 2,
    };
    (kind as u8) | (d << 5)
}

/// Unpacks a tag byte.
#[inline]
pub fn untag(t: u8) -> Option<(Kind, Dir)> {
    let kind = Kind::from_tag(t & 0x1f)?;
    let dir = match (t >> 5) & 3 {
        0 => Dir::Local,
        1 => Dir::Send,
        2 => Dir::Recv,
        _ => return None,
    };
    if t & 0x80 != 0 {
        return None;
    }
    Some((kind, dir))
}

/// Appends the bincode of `data`, except for `barrier_leave`, whose
/// participants are stored as actor ids when they name actors (a barrier over
/// 64 testers would otherwise repeat 64 names in each of its 64 leaves).
pub fn put_data(out: &mut Vec<u8>, data: &EventData, state: &mut CodecState) -> Result<()> {
    if let EventData::BarrierLeave { name, participants } = data {
        let len = encoded_len(data);
        if len > MAX_DATA_LEN {
            return Err(too_big(len));
        }
        put_str(out, name);
        if state.minor >= 1
            && !state.first_leave
            && (Arc::ptr_eq(participants, &state.last_participants)
                || **participants == *state.last_participants)
        {
            // The master sends one list to every participant in a row.
            out.push(0);
            return Ok(());
        }
        let count = participants.len() as u64;
        put_varint(out, if state.minor >= 1 { count + 1 } else { count });
        for p in participants.iter() {
            match state.ids.get(p) {
                Some(&id) => put_varint(out, u64::from(id) + 1),
                None => {
                    out.push(0);
                    put_str(out, p);
                }
            }
        }
        state.last_participants = Arc::clone(participants);
        state.first_leave = false;
        return Ok(());
    }
    let start = out.len();
    bincode::encode_into_std_write(data, &mut *out, cfg())
        .map_err(|e| Error::Usage(format!("cannot encode event: {e}")))?;
    let len = out.len() - start;
    if len > MAX_DATA_LEN {
        out.truncate(start);
        return Err(too_big(len));
    }
    Ok(())
}

fn too_big(len: usize) -> Error {
    Error::Usage(format!(
        "event data of {len} bytes is larger than the format's limit of {MAX_DATA_LEN}"
    ))
}

/// The size of the encoding of `data` by [`put_data`]; for a
/// `barrier_leave`, an upper bound (its participants may be stored as ids).
pub fn encoded_len(data: &EventData) -> usize {
    if let EventData::BarrierLeave { name, participants } = data {
        return 10 + name.len() + 10 + participants.iter().map(|p| 11 + p.len()).sum::<usize>();
    }
    let mut w = bincode::enc::write::SizeWriter::default();
    match bincode::encode_into_writer(data, &mut w, config::standard()) {
        Ok(()) => w.bytes_written,
        // Encoding into a size counter does not fail; if it did, say "too big".
        Err(_) => usize::MAX,
    }
}

/// Whether the data of an event fits the format's limit (see [`put_data`]).
pub fn fits(data: &EventData) -> bool {
    encoded_len(data) <= MAX_DATA_LEN
}

/// The marker that ends a field cut by [`cut_to_fit`]: `… [cut: N bytes]`,
/// N the number of bytes removed.
pub fn cut_marker(removed: usize) -> String {
    format!("… [cut: {removed} bytes]")
}

/// Room a [`cut_marker`] takes at most.
const MARKER_MAX: usize = 40;

/// A text or byte field of an event, for [`cut_to_fit`].
enum Field<'a> {
    Text(&'a mut String),
    Bytes(&'a mut Vec<u8>),
}

impl Field<'_> {
    fn len(&self) -> usize {
        match self {
            Field::Text(s) => s.len(),
            Field::Bytes(b) => b.len(),
        }
    }

    /// Keeps at most `keep` bytes (less, to end on a character boundary)
    /// and appends the marker.
    fn cut(&mut self, keep: usize) {
        match self {
            Field::Text(s) => {
                let mut k = keep.min(s.len());
                while !s.is_char_boundary(k) {
                    k -= 1;
                }
                let removed = s.len() - k;
                s.truncate(k);
                s.push_str(&cut_marker(removed));
            }
            Field::Bytes(b) => {
                let k = keep.min(b.len());
                let removed = b.len() - k;
                b.truncate(k);
                b.extend_from_slice(cut_marker(removed).as_bytes());
            }
        }
    }
}

/// Cuts a list to [`CUT_MAX_ITEMS`] entries, the last one saying how many
/// were removed (made by `more`).
fn cut_items<T>(v: &mut Vec<T>, more: impl FnOnce(usize) -> T) {
    if v.len() > CUT_MAX_ITEMS {
        let removed = v.len() - (CUT_MAX_ITEMS - 1);
        v.truncate(CUT_MAX_ITEMS - 1);
        v.push(more(removed));
    }
}

/// The text and byte fields of `d`, for [`cut_to_fit`]. The participants
/// of a `barrier_leave` are included when its list is not shared.
fn fields_of(d: &mut EventData) -> Vec<Field<'_>> {
    let mut fields = Vec::new();
    match d {
        EventData::Open { target: s }
        | EventData::Close { reason: s }
        | EventData::Start { command: s }
        | EventData::Signal { name: s }
        | EventData::BarrierEnter { name: s }
        | EventData::Timeout { pattern: s, .. }
        | EventData::End { summary: s, .. } => fields.push(Field::Text(s)),
        EventData::Exit { status } => {
            if let crate::model::ExitStatus::Signal(s) = status {
                fields.push(Field::Text(s));
            }
        }
        EventData::Input { bytes, .. } | EventData::Output { bytes, .. } => {
            fields.push(Field::Bytes(bytes))
        }
        EventData::Match {
            pattern,
            matched,
            captures,
        } => {
            fields.push(Field::Text(pattern));
            fields.push(Field::Text(matched));
            for (k, v) in captures.iter_mut() {
                fields.push(Field::Text(k));
                fields.push(Field::Text(v));
            }
        }
        EventData::BarrierLeave { name, participants } => {
            fields.push(Field::Text(name));
            if let Some(ps) = Arc::get_mut(participants) {
                fields.extend(ps.iter_mut().map(Field::Text));
            }
        }
        EventData::BarrierBroken { name, reason } => {
            fields.push(Field::Text(name));
            fields.push(Field::Text(reason));
        }
        EventData::Put(t) | EventData::Get(t) => {
            fields.push(Field::Text(&mut t.local));
            fields.push(Field::Text(&mut t.remote));
        }
        EventData::Verdict {
            description,
            reason,
            ..
        } => {
            fields.push(Field::Text(description));
            fields.push(Field::Text(reason));
        }
        EventData::Custom { name, output, .. } => {
            fields.push(Field::Text(name));
            fields.push(Field::Text(output));
        }
    }
    fields
}

/// Whether data whose [`put_data`] encoding takes `encoded_len` bytes may
/// need [`cut_to_fit`] (a field may be longer than [`CUT_FIELD_LEN`]).
pub fn may_need_cut(encoded_len: usize) -> bool {
    encoded_len > CUT_FIELD_LEN
}

/// `data` with its long fields cut (see the module docs), or `None` when
/// nothing needs cutting: every text or byte field longer than
/// [`CUT_FIELD_LEN`] keeps its first [`CUT_FIELD_LEN`] bytes (less, to end
/// on a character boundary) followed by the [`cut_marker`]; if the event
/// still does not fit [`MAX_DATA_LEN`] (many long fields), its lists are
/// cut to [`CUT_MAX_ITEMS`] entries and its longest fields to one common
/// length, as long as needed.
///
/// A field is cut the same way in every event whose other fields are
/// short: a barrier name cut in a `barrier_enter` is cut alike in its
/// `barrier_leave`. The result depends on `data` only.
pub fn cut_to_fit(data: &EventData) -> Option<EventData> {
    let mut d = data.clone();
    if let EventData::BarrierLeave { participants, .. } = &mut d {
        // A list of its own: `fields_of` can cut its names.
        *participants = Arc::from(participants.to_vec());
    }
    let mut changed = false;
    for f in fields_of(&mut d).iter_mut() {
        if f.len() > CUT_FIELD_LEN {
            f.cut(CUT_FIELD_LEN);
            changed = true;
        }
    }
    if fits(&d) {
        return changed.then_some(d);
    }
    // Many long fields: start again from the original, lists first (their
    // entries' own overhead must fit too).
    let mut d = data.clone();
    match &mut d {
        EventData::Match { captures, .. } => cut_items(captures, |n| {
            ("…".to_string(), format!("[cut: {n} more captures]"))
        }),
        EventData::BarrierLeave { participants, .. } => {
            let mut v = participants.to_vec();
            cut_items(&mut v, |n| format!("… [cut: {n} more participants]"));
            // A list of its own: `fields_of` can cut its names.
            *participants = Arc::from(v);
        }
        _ => {}
    }
    // Everything but the fields' bytes (tags, numbers, length prefixes,
    // which only shrink); then room for a marker per field, and some slack.
    let content: usize = fields_of(&mut d).iter().map(Field::len).sum();
    let structure = encoded_len(&d).saturating_sub(content);
    let mut fields = fields_of(&mut d);
    let room = MAX_DATA_LEN
        .saturating_sub(structure)
        .saturating_sub(fields.len() * MARKER_MAX)
        .saturating_sub(64);
    // The largest common length `cap` with sum(min(len, cap)) <= room.
    let total =
        |fields: &[Field<'_>], cap: usize| fields.iter().map(|f| f.len().min(cap)).sum::<usize>();
    let (mut lo, mut hi) = (0usize, CUT_FIELD_LEN);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if total(&fields, mid) <= room {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    for f in fields.iter_mut() {
        if f.len() > lo {
            f.cut(lo);
        }
    }
    drop(fields);
    debug_assert!(fits(&d), "{}", encoded_len(&d));
    Some(d)
}

/// An output chunk's bytes cut as [`cut_to_fit`] cuts an `output`
/// event's: its first [`CUT_FIELD_LEN`] bytes, then the [`cut_marker`];
/// `None` when they are not longer than that.
pub fn cut_output(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() <= CUT_FIELD_LEN {
        return None;
    }
    let mut v = bytes[..CUT_FIELD_LEN].to_vec();
    v.extend_from_slice(cut_marker(bytes.len() - CUT_FIELD_LEN).as_bytes());
    Some(v)
}

/// A bincode unsigned varint (standard configuration).
fn put_bin_uint(out: &mut Vec<u8>, v: u64) {
    if v <= 250 {
        out.push(v as u8);
    } else if v <= u64::from(u16::MAX) {
        out.push(251);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if v <= u64::from(u32::MAX) {
        out.push(252);
        out.extend_from_slice(&(v as u32).to_le_bytes());
    } else {
        out.push(253);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// The encoding of `EventData::Output { bytes, stream }` in three parts,
/// without copying `bytes`: what goes before them (variant and length), the
/// bytes, and what goes after (the stream). The same bytes as [`put_data`]
/// (a test checks it).
pub fn output_parts(out: &mut Vec<u8>, bytes: &[u8]) -> Result<()> {
    if bytes.len() + 16 > MAX_DATA_LEN {
        return Err(Error::Usage(format!(
            "output of {} bytes is larger than the format's limit of {MAX_DATA_LEN}",
            bytes.len()
        )));
    }
    put_bin_uint(out, Kind::Output as u64);
    put_bin_uint(out, bytes.len() as u64);
    Ok(())
}

/// The byte that follows an output's bytes (see [`output_parts`]).
pub fn output_stream_byte(stream: crate::model::Stream) -> u8 {
    match stream {
        crate::model::Stream::Stdout => 0,
        crate::model::Stream::Stderr => 1,
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Hasher for message ids: ids are mostly consecutive integers, so a
/// multiplicative hash spreads them well at a fraction of SipHash's cost.
#[derive(Clone, Copy, Debug, Default)]
pub struct MsgIdHasher(u64);

impl std::hash::Hasher for MsgIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A map keyed by message id.
pub type MsgMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<MsgIdHasher>>;

/// Values of the messages in flight, by message id.
///
/// Message ids are mostly consecutive (each send takes the next one), so the
/// values live in a ring indexed by `id - base`; ids that do not fit (out of
/// order, or a message still in flight after 64 Ki later sends) go to a hash
/// map. Memory is bounded by the ring's size plus the messages in flight.
#[derive(Clone, Debug)]
pub struct InFlight<V> {
    base: u64,
    ring: std::collections::VecDeque<Option<V>>,
    spill: MsgMap<V>,
}

impl<V> Default for InFlight<V> {
    fn default() -> Self {
        InFlight {
            base: 0,
            ring: std::collections::VecDeque::new(),
            spill: MsgMap::default(),
        }
    }
}

impl<V> InFlight<V> {
    const RING_MAX: usize = 1 << 16;

    /// Adds (or replaces) the value of message `id`; returns the old value.
    #[inline]
    pub fn insert(&mut self, id: u64, v: V) -> Option<V> {
        if self.ring.is_empty() {
            self.base = id;
        }
        // Positions in the ring wrap around with the ids (a damaged trace
        // may have ids near u64::MAX): an id is in the ring when its
        // distance from `base` is below the ring's length.
        let off = id.wrapping_sub(self.base);
        let len = self.ring.len() as u64;
        if off == len {
            self.ring.push_back(Some(v));
            if self.ring.len() > Self::RING_MAX {
                if let Some(Some(old)) = self.ring.pop_front() {
                    self.spill.insert(self.base, old);
                }
                self.base = self.base.wrapping_add(1);
                self.trim();
            }
            None
        } else if off < len {
            self.ring[off as usize].replace(v)
        } else {
            self.spill.insert(id, v)
        }
    }

    /// Takes the value of message `id` out.
    #[inline]
    pub fn remove(&mut self, id: u64) -> Option<V> {
        let off = id.wrapping_sub(self.base);
        if off < self.ring.len() as u64 {
            let v = self.ring[off as usize].take();
            self.trim();
            v
        } else if self.spill.is_empty() {
            None
        } else {
            self.spill.remove(&id)
        }
    }

    fn trim(&mut self) {
        while let Some(None) = self.ring.front() {
            self.ring.pop_front();
            self.base = self.base.wrapping_add(1);
        }
    }
}

/// State the event codec carries from one event to the next, identical on the
/// writing and the reading side.
#[derive(Debug, Clone)]
pub struct CodecState {
    /// Previous clock of every actor, `n * n` entries, row per actor.
    pub clocks: Vec<u32>,
    /// Number of actors.
    pub n: usize,
    /// Time of the previous event.
    pub last_time: u64,
    /// Message id of the previous send (`u64::MAX` before the first one).
    pub last_send: u64,
    /// Index of the next event.
    pub next_index: u64,
    /// Clocks of sends whose receive has not been seen yet.
    sent: InFlight<Vec<u32>>,
    /// Spare clock buffers.
    free: Vec<Vec<u32>>,
    /// Actor names, by id.
    pub names: Vec<String>,
    /// Actor ids, by name.
    pub ids: HashMap<String, u32>,
    /// Minor format version being written or read (changes the encoding of
    /// barrier participants, see [`put_data`]).
    pub minor: u16,
    /// Participants of the previous `barrier_leave`.
    last_participants: Arc<[String]>,
    /// No `barrier_leave` written yet.
    first_leave: bool,
}

impl CodecState {
    /// The initial state for a trace with these actors, in format
    /// `FORMAT_MAJOR.minor`.
    pub fn new(header: &Header, minor: u16) -> CodecState {
        let n = header.actors.len();
        let names: Vec<String> = header.actors.iter().map(|a| a.name.clone()).collect();
        let ids = names
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
        CodecState {
            names,
            ids,
            minor,
            last_participants: Arc::from(Vec::new()),
            first_leave: true,
            clocks: vec![0; n * n],
            n,
            last_time: 0,
            last_send: u64::MAX,
            next_index: 0,
            sent: InFlight::default(),
            free: Vec::new(),
        }
    }

    /// What encoding a `barrier_leave` changes, to undo it (see
    /// [`CodecState::restore_leave`]).
    pub fn save_leave(&self) -> (Arc<[String]>, bool) {
        (Arc::clone(&self.last_participants), self.first_leave)
    }

    /// Undoes the encoding of `barrier_leave`s since [`CodecState::save_leave`].
    pub fn restore_leave(&mut self, saved: (Arc<[String]>, bool)) {
        (self.last_participants, self.first_leave) = saved;
    }

    /// The previous clock of `actor`.
    pub fn clock(&self, actor: ActorId) -> &[u32] {
        let a = actor as usize;
        &self.clocks[a * self.n..(a + 1) * self.n]
    }

    /// Encodes the message id field.
    #[inline]
    pub fn put_msg(&mut self, out: &mut Vec<u8>, dir: Dir, msg: u64) {
        match dir {
            Dir::Send => {
                let expected = self.last_send.wrapping_add(1);
                put_varint(out, zigzag(msg.wrapping_sub(expected) as i64));
                self.last_send = msg;
            }
            Dir::Recv => put_varint(out, zigzag(self.last_send.wrapping_sub(msg) as i64)),
            Dir::Local => {}
        }
    }

    /// Decodes the message id field.
    #[inline]
    pub fn get_msg(&mut self, c: &mut Cursor<'_>, dir: Dir) -> Result<Option<u64>> {
        match dir {
            Dir::Send => {
                let d = unzigzag(c.varint()?);
                let msg = self.last_send.wrapping_add(1).wrapping_add(d as u64);
                self.last_send = msg;
                Ok(Some(msg))
            }
            Dir::Recv => {
                let d = unzigzag(c.varint()?);
                Ok(Some(self.last_send.wrapping_sub(d as u64)))
            }
            Dir::Local => Ok(None),
        }
    }

    /// Predicts the clock of the next event of `actor` in its row of
    /// `clocks`: a receive of a message whose send is known merges the send's
    /// clock, then the own entry ticks. Sends remember their clock for their
    /// receive.
    #[inline]
    fn predict(&mut self, actor: ActorId, dir: Dir, msg: Option<u64>) {
        let a = actor as usize;
        let n = self.n;
        if dir == Dir::Recv {
            if let Some(sent) = msg.and_then(|m| self.sent.remove(m)) {
                let row = &mut self.clocks[a * n..(a + 1) * n];
                for (o, s) in row.iter_mut().zip(&sent) {
                    if *s > *o {
                        *o = *s;
                    }
                }
                self.free.push(sent);
            }
        }
        let row = &mut self.clocks[a * n..(a + 1) * n];
        row[a] = row[a].wrapping_add(1);
    }

    /// After an event's clock is known: a send remembers it for its receive.
    #[inline]
    fn remember(&mut self, actor: ActorId, dir: Dir, msg: Option<u64>) {
        if let (Dir::Send, Some(m)) = (dir, msg) {
            let a = actor as usize;
            let n = self.n;
            let mut v = self.free.pop().unwrap_or_default();
            v.clear();
            v.extend_from_slice(&self.clocks[a * n..(a + 1) * n]);
            if let Some(old) = self.sent.insert(m, v) {
                self.free.push(old);
            }
        }
    }

    /// Encodes `clock` for `actor` as the entries that differ from the
    /// predicted clock (see [`CodecState::predict`]), and makes it the actor's
    /// previous clock. `clock` must have `n` entries. For a valid trace no
    /// entry is stored at all, whatever the number of actors.
    #[inline]
    pub fn put_clock(
        &mut self,
        out: &mut Vec<u8>,
        actor: ActorId,
        dir: Dir,
        msg: Option<u64>,
        clock: &[u32],
    ) {
        self.predict(actor, dir, msg);
        let a = actor as usize;
        let n = self.n;
        let row = &mut self.clocks[a * n..(a + 1) * n];
        if row == clock {
            // The prediction is exact (always, for a valid trace).
            out.push(0);
            self.remember(actor, dir, msg);
            return;
        }
        let count_pos = out.len();
        out.push(0);
        let mut count: u64 = 0;
        for (i, (old, &new)) in row.iter_mut().zip(clock).enumerate() {
            if *old != new {
                put_varint(out, i as u64);
                put_varint(out, zigzag(i64::from(new) - i64::from(*old)));
                *old = new;
                count += 1;
            }
        }
        if count >= 0x80 {
            // Rare: more than 127 unexpected entries. Re-encode the count.
            let mut tmp = Vec::new();
            put_varint(&mut tmp, count);
            out.splice(count_pos..count_pos + 1, tmp);
        } else {
            out[count_pos] = count as u8;
        }
        self.remember(actor, dir, msg);
    }

    /// Gives `actor` the predicted clock (see [`CodecState::predict`]) and
    /// encodes it: no entry at all. This is how a recorder that does not
    /// keep clocks of its own writes: the clocks are valid by construction.
    #[inline]
    pub fn put_predicted_clock(
        &mut self,
        out: &mut Vec<u8>,
        actor: ActorId,
        dir: Dir,
        msg: Option<u64>,
    ) {
        self.predict(actor, dir, msg);
        out.push(0);
        self.remember(actor, dir, msg);
    }

    /// Decodes the clock entries of `actor` into `clock` (resized to `n`)
    /// and makes it the actor's previous clock.
    #[inline]
    pub fn get_clock(
        &mut self,
        c: &mut Cursor<'_>,
        actor: ActorId,
        dir: Dir,
        msg: Option<u64>,
        clock: &mut Vec<u32>,
    ) -> Result<()> {
        self.predict(actor, dir, msg);
        let a = actor as usize;
        let n = self.n;
        let row = &mut self.clocks[a * n..(a + 1) * n];
        let count = c.varint()?;
        for _ in 0..count {
            let i = c.varint()?;
            let d = unzigzag(c.varint()?);
            let Some(slot) = row.get_mut(i as usize) else {
                return Err(Error::Corrupt {
                    offset: c.offset(),
                    what: format!("clock entry for actor {i}, but the trace has {n} actors"),
                });
            };
            let v = i64::from(*slot) + d;
            if !(0..=i64::from(u32::MAX)).contains(&v) {
                return Err(Error::Corrupt {
                    offset: c.offset(),
                    what: "clock entry out of range".into(),
                });
            }
            *slot = v as u32;
        }
        clock.clear();
        clock.extend_from_slice(row);
        self.remember(actor, dir, msg);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_and_zigzag_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut c = Cursor::new(&out, 0);
            assert_eq!(c.varint().unwrap(), v);
            assert!(c.is_empty());
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -300] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    /// The varint decoder's fast paths (one to four bytes) agree with the
    /// byte-by-byte loop on every value, position and damaged input:
    /// same value, same bytes consumed, same error.
    #[test]
    fn varint_fast_paths_agree_with_the_loop() {
        fn reference(buf: &[u8]) -> (std::result::Result<u64, String>, usize) {
            let mut pos = 0;
            let mut v: u64 = 0;
            let mut shift = 0;
            loop {
                let Some(&b) = buf.get(pos) else {
                    return (Err("end".into()), pos);
                };
                pos += 1;
                if shift == 63 && b > 1 {
                    return (Err("overflow".into()), pos);
                }
                v |= u64::from(b & 0x7f) << shift;
                if b < 0x80 {
                    return (Ok(v), pos);
                }
                shift += 7;
                if shift > 63 {
                    return (Err("long".into()), pos);
                }
            }
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200_000 {
            let len = (next() % 14) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    // Mostly continuation bytes, so long varints occur.
                    if r % 3 == 0 {
                        (r >> 8) as u8 & 0x7f
                    } else {
                        (r >> 8) as u8 | 0x80
                    }
                })
                .collect();
            let (want, used) = reference(&bytes);
            let mut c = Cursor::new(&bytes, 0);
            match (c.varint(), want) {
                (Ok(v), Ok(w)) => {
                    assert_eq!(v, w, "{bytes:?}");
                    assert_eq!(c.pos, used, "{bytes:?}");
                }
                (Err(_), Err(w)) => assert_eq!(c.exhausted, w == "end", "{bytes:?}"),
                (got, want) => panic!("{bytes:?}: {got:?} vs {want:?}"),
            }
        }
        for v in (0..64)
            .map(|s| 1u64 << s)
            .chain((0..64).map(|s| (1u64 << s) - 1))
        {
            let mut out = vec![0xff];
            put_varint(&mut out, v);
            out.push(7);
            let mut c = Cursor::new(&out, 0);
            c.pos = 1;
            assert_eq!(c.varint().unwrap(), v);
            assert_eq!(c.byte().unwrap(), 7);
        }
    }

    /// The in-place decoder agrees with bincode's encoding, including the
    /// wide integer and length markers and decoding into data that held a
    /// larger value of the same kind before.
    #[test]
    fn in_place_decoder_agrees_with_bincode() {
        use crate::model::{Actor, ActorKind, Directive, ExitStatus, Stream, Transfer};
        let header = Header::new(
            "t",
            vec![Actor {
                id: 0,
                name: "a".into(),
                kind: ActorKind::Master,
                host: "local".into(),
            }],
        );
        let big = |n: usize| (0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>();
        let cases = vec![
            EventData::Output {
                bytes: big(70_000),
                stream: Stream::Stderr,
            },
            EventData::Output {
                bytes: big(300),
                stream: Stream::Stdout,
            },
            EventData::Input {
                bytes: Vec::new(),
                secret: true,
            },
            EventData::Match {
                pattern: "p".repeat(300),
                matched: "m".into(),
                captures: (0..300).map(|i| (format!("k{i}"), "v".into())).collect(),
            },
            EventData::Match {
                pattern: String::new(),
                matched: String::new(),
                captures: vec![("x".into(), "y".into())],
            },
            EventData::Exit {
                status: ExitStatus::Code(-70_000),
            },
            EventData::Exit {
                status: ExitStatus::Signal("KILL".into()),
            },
            EventData::Exit {
                status: ExitStatus::Code(i32::MAX),
            },
            EventData::Timeout {
                pattern: "x".into(),
                waited_ns: u64::MAX,
            },
            EventData::Put(Transfer {
                local: "l".into(),
                remote: "r".into(),
                size: 1 << 40,
                sha256: [7; 32],
            }),
            EventData::Verdict {
                number: 70_000,
                ok: false,
                description: "d".into(),
                directive: Some(Directive::Todo),
                reason: "r".into(),
            },
            EventData::Custom {
                name: "n".into(),
                status: -1,
                output: "o".into(),
            },
            EventData::End {
                ok: true,
                summary: "s".into(),
            },
        ];
        // The borrowed output encoding is bincode's.
        for (n, stream) in [
            (0, Stream::Stdout),
            (300, Stream::Stderr),
            (70_000, Stream::Stdout),
        ] {
            let bytes = big(n);
            let mut a = Vec::new();
            output_parts(&mut a, &bytes).unwrap();
            a.extend_from_slice(&bytes);
            a.push(output_stream_byte(stream));
            let mut b = Vec::new();
            let mut state = CodecState::new(&header, FORMAT_MINOR);
            put_data(&mut b, &EventData::Output { bytes, stream }, &mut state).unwrap();
            assert_eq!(a, b);
        }
        // One `out` per kind, reused across cases as the reader does.
        let mut outs: Vec<EventData> = Kind::ALL.iter().map(|&k| EventData::empty(k)).collect();
        for d in &cases {
            let mut state = CodecState::new(&header, FORMAT_MINOR);
            let mut buf = Vec::new();
            put_data(&mut buf, d, &mut state).unwrap();
            let mut c = Cursor::new(&buf, 0);
            let out = &mut outs[d.kind() as usize];
            c.data_into(d.kind(), &mut state, out).unwrap();
            assert_eq!(out, d);
            assert!(c.is_empty(), "{:?} left bytes", d.kind());
            // A wrong tag is corruption, not a panic.
            let mut c = Cursor::new(&buf, 0);
            let other = if d.kind() == Kind::Open {
                Kind::Close
            } else {
                Kind::Open
            };
            let err = c
                .data_into(other, &mut state, &mut EventData::empty(other))
                .unwrap_err();
            assert!(err.to_string().contains("event tag says"), "{err}");
        }
    }

    #[test]
    fn tags_round_trip() {
        for k in Kind::ALL {
            for d in [Dir::Local, Dir::Send, Dir::Recv] {
                assert_eq!(untag(tag(k, d)), Some((k, d)));
            }
        }
        assert_eq!(untag(0x1f), None);
        assert_eq!(untag(0x60), None);
    }
}
