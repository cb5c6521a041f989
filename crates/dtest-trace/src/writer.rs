//! Writing traces: the low-level [`Writer`] of complete events, and the
//! [`Recorder`] the executor calls as a run goes, which numbers the messages
//! and lets the writer derive the vector clocks.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, IoSlice, Write};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::codec::{self, CodecState, BLOCK_HEADER_LEN};
use crate::error::{Error, Result};
use crate::model::{ActorId, Dir, EventData, Header, MsgId};

/// Size at which the writer closes a block on its own.
const BLOCK_TARGET: usize = 64 << 10;

/// Output chunks from this size on are written from the caller's buffer
/// instead of being copied into the block.
const DETACHED_MIN: usize = 64 << 10;

/// An event's data: owned by the caller as an `EventData`, or an output
/// chunk borrowed from the caller's read buffer.
#[derive(Clone, Copy)]
enum Data<'a> {
    Full(&'a EventData),
    Output(crate::model::Stream, &'a [u8]),
}

/// Writes complete events (with their clocks) to a trace.
///
/// Events are encoded into a block buffer; a block goes to the underlying
/// writer with one `write_all` when it reaches 64 KiB or on [`Writer::flush`].
/// Clocks are stored as differences (see [`crate::codec`]): the caller either
/// gives each event's full clock ([`Writer::append`]) or lets the writer
/// derive it ([`Writer::append_auto`], always valid, nothing stored).
#[derive(Debug)]
pub struct Writer<W: Write> {
    out: W,
    state: CodecState,
    block: Vec<u8>,
    header: Header,
    events: u64,
    scratch: Vec<u8>,
    /// Cut events too big for the format instead of refusing them.
    cut_oversized: bool,
}

impl<W: Write> Writer<W> {
    /// Writes the preamble and `header` to `out`.
    pub fn new(out: W, header: Header) -> Result<Writer<W>> {
        Self::with_minor(out, header, codec::FORMAT_MINOR)
    }

    /// Like [`Writer::new`] with an explicit format minor version (tests of
    /// version handling).
    pub fn with_minor(mut out: W, mut header: Header, minor: u16) -> Result<Writer<W>> {
        if header.actors.len() > codec::MAX_ACTORS {
            return Err(Error::Usage(format!(
                "{} actors, at most {} are supported",
                header.actors.len(),
                codec::MAX_ACTORS
            )));
        }
        for (i, a) in header.actors.iter_mut().enumerate() {
            a.id = i as ActorId;
        }
        out.write_all(&codec::encode_preamble(&header, minor)?)?;
        let mut block = Vec::with_capacity(BLOCK_TARGET + 1024);
        block.resize(BLOCK_HEADER_LEN, 0);
        Ok(Writer {
            out,
            state: CodecState::new(&header, minor),
            block,
            header,
            events: 0,
            scratch: Vec::new(),
            cut_oversized: false,
        })
    }

    /// Whether to cut what is too big. Off (the default), every event is
    /// written as given, and one whose data is over the format's limit
    /// ([`codec::MAX_DATA_LEN`]) is refused with an error (nothing written).
    /// On (the [`Recorder`]'s choice), an event with a field over
    /// [`codec::CUT_FIELD_LEN`], or over the limit, is written with its data
    /// cut by [`codec::cut_to_fit`], the cuts marked and the event flagged
    /// as cut (see [`crate::codec`]'s "Size limits"). Cutting needs format
    /// 1.2 or later; a writer of an older minor keeps refusing.
    pub fn set_cut_oversized(&mut self, cut: bool) {
        self.cut_oversized = cut;
    }

    /// The header written.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Number of events appended so far (the index of the next one).
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Appends one event. `clock` is the actor's full clock after the event
    /// (missing entries count as 0); `msg` is required for sends and
    /// receives and ignored for local events; `data` is ignored for receives
    /// (the file stores a message's data once, with its send).
    pub fn append(
        &mut self,
        actor: ActorId,
        time_ns: u64,
        dir: Dir,
        msg: Option<MsgId>,
        clock: &[u32],
        data: &EventData,
    ) -> Result<u64> {
        self.append_inner(actor, time_ns, dir, msg, Some(clock), Data::Full(data))
    }

    /// Appends one event whose vector clock the writer derives itself: the
    /// actor's previous clock with its own entry ticked, merged for a
    /// receive with the clock of the message's send. This is the recorder's
    /// path: clocks are valid by construction, cost nothing to store, and
    /// the caller keeps none. [`Writer::clock`] tells the result.
    pub fn append_auto(
        &mut self,
        actor: ActorId,
        time_ns: u64,
        dir: Dir,
        msg: Option<MsgId>,
        data: &EventData,
    ) -> Result<u64> {
        self.append_inner(actor, time_ns, dir, msg, None, Data::Full(data))
    }

    /// The clock of `actor` after its last event (all zeros before its
    /// first one).
    pub fn clock(&self, actor: ActorId) -> &[u32] {
        self.state.clock(actor)
    }

    /// Appends the send of an output chunk, `bytes` borrowed: the same
    /// event as [`Writer::append_auto`] with `EventData::Output`, without
    /// copying the bytes into an `EventData`; a large chunk goes to the
    /// underlying writer straight from `bytes`, in one vectored write with
    /// the block it ends.
    pub fn append_output_auto(
        &mut self,
        actor: ActorId,
        time_ns: u64,
        msg: MsgId,
        stream: crate::model::Stream,
        bytes: &[u8],
    ) -> Result<u64> {
        self.append_inner(
            actor,
            time_ns,
            Dir::Send,
            Some(msg),
            None,
            Data::Output(stream, bytes),
        )
    }

    fn append_inner(
        &mut self,
        actor: ActorId,
        time_ns: u64,
        dir: Dir,
        msg: Option<MsgId>,
        clock: Option<&[u32]>,
        data: Data<'_>,
    ) -> Result<u64> {
        let n = self.state.n;
        if actor as usize >= n {
            return Err(Error::Usage(format!(
                "event on actor {actor}, but the trace has {n} actors"
            )));
        }
        let msg = match (dir, msg) {
            (Dir::Local, _) => None,
            (_, Some(m)) => Some(m),
            (_, None) => {
                return Err(Error::Usage(format!(
                    "a {} event needs a message id",
                    dir.name()
                )))
            }
        };
        // Encode the data first: if it is refused, nothing was written and
        // the codec state is untouched.
        self.scratch.clear();
        let cutting = self.cut_oversized && self.state.minor >= codec::CUT_MINOR;
        let mut cut = false;
        let cut_bytes;
        let mut data = data;
        let kind = match data {
            Data::Full(d) => {
                if dir != Dir::Recv {
                    let leave = matches!(d, EventData::BarrierLeave { .. });
                    let saved = leave.then(|| self.state.save_leave());
                    let r = codec::put_data(&mut self.scratch, d, &mut self.state);
                    // Too big (the only refusal), or with a field to cut.
                    let small =
                        if cutting && (r.is_err() || codec::may_need_cut(self.scratch.len())) {
                            codec::cut_to_fit(d)
                        } else {
                            None
                        };
                    match small {
                        Some(small) => {
                            if let Some(saved) = saved {
                                self.state.restore_leave(saved);
                            }
                            self.scratch.clear();
                            codec::put_data(&mut self.scratch, &small, &mut self.state)?;
                            cut = true;
                        }
                        None => r?,
                    }
                }
                d.kind()
            }
            Data::Output(stream, bytes) => {
                let small = if cutting {
                    codec::cut_output(bytes)
                } else {
                    None
                };
                if let Some(small) = small {
                    cut_bytes = small;
                    data = Data::Output(stream, &cut_bytes);
                    cut = true;
                }
                let Data::Output(_, bytes) = data else {
                    unreachable!("output data")
                };
                codec::output_parts(&mut self.scratch, bytes)?;
                crate::model::Kind::Output
            }
        };
        let b = &mut self.block;
        b.push(codec::tag(kind, dir) | if cut { codec::CUT_BIT } else { 0 });
        codec::put_varint(b, u64::from(actor));
        let dt = time_ns.wrapping_sub(self.state.last_time) as i64;
        codec::put_varint(b, codec::zigzag(dt));
        self.state.last_time = time_ns;
        if let Some(m) = msg {
            self.state.put_msg(b, dir, m);
        }
        match clock {
            None => self.state.put_predicted_clock(b, actor, dir, msg),
            Some(clock) if clock.len() == n => self.state.put_clock(b, actor, dir, msg, clock),
            Some(clock) => {
                let mut full = clock.to_vec();
                full.resize(n, 0);
                self.state.put_clock(b, actor, dir, msg, &full);
            }
        }
        b.extend_from_slice(&self.scratch);
        let index = self.events;
        self.events += 1;
        match data {
            Data::Output(stream, bytes) if bytes.len() >= DETACHED_MIN => {
                // The block ends with this event: write it, the bytes and
                // the stream byte without copying the bytes.
                self.write_block_with(bytes, codec::output_stream_byte(stream))?;
            }
            Data::Output(stream, bytes) => {
                self.block.extend_from_slice(bytes);
                self.block.push(codec::output_stream_byte(stream));
            }
            Data::Full(_) => {}
        }
        if self.block.len() >= BLOCK_TARGET {
            self.write_block()?;
        }
        Ok(index)
    }

    /// Writes the pending block followed by `tail` and `last`, which are
    /// the end of the block's body (one checksum over all of it), with
    /// vectored writes.
    fn write_block_with(&mut self, tail: &[u8], last: u8) -> Result<()> {
        let body_len = self.block.len() - BLOCK_HEADER_LEN + tail.len() + 1;
        let mut h = crc32fast::Hasher::new();
        h.update(&self.block[BLOCK_HEADER_LEN..]);
        h.update(tail);
        h.update(&[last]);
        self.block[0..4].copy_from_slice(&(body_len as u32).to_le_bytes());
        self.block[4..8].copy_from_slice(&h.finalize().to_le_bytes());
        let last = [last];
        let mut parts = [
            IoSlice::new(&self.block),
            IoSlice::new(tail),
            IoSlice::new(&last),
        ];
        let mut parts = &mut parts[..];
        while !parts.is_empty() {
            match self.out.write_vectored(parts) {
                Ok(0) => return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into()),
                Ok(n) => IoSlice::advance_slices(&mut parts, n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.block.truncate(BLOCK_HEADER_LEN);
        Ok(())
    }

    /// Appends a complete event (its index is ignored: events are numbered
    /// in the order they are appended).
    pub fn append_event(&mut self, e: &crate::model::Event) -> Result<u64> {
        self.append(
            e.actor,
            e.time_ns,
            e.dir,
            e.msg,
            e.clock.as_slice(),
            &e.data,
        )
    }

    fn write_block(&mut self) -> Result<()> {
        if self.block.len() == BLOCK_HEADER_LEN {
            return Ok(());
        }
        let body_len = (self.block.len() - BLOCK_HEADER_LEN) as u32;
        let crc = crc32fast::hash(&self.block[BLOCK_HEADER_LEN..]);
        self.block[0..4].copy_from_slice(&body_len.to_le_bytes());
        self.block[4..8].copy_from_slice(&crc.to_le_bytes());
        self.out.write_all(&self.block)?;
        self.block.truncate(BLOCK_HEADER_LEN);
        Ok(())
    }

    /// Writes the pending events as a block and flushes the underlying writer,
    /// so every event appended so far is in the OS.
    pub fn flush(&mut self) -> Result<()> {
        self.write_block()?;
        self.out.flush()?;
        Ok(())
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> Result<W> {
        self.flush()?;
        Ok(self.out)
    }
}

/// Creates a trace file and a [`Writer`] on it.
///
/// The preamble and the header are in the OS when this returns (not only in
/// the writer's buffer): a process killed at any moment after it, even
/// before its first event, leaves a valid trace with no event, which every
/// reader reads as incomplete (no `end` event) rather than as "not a trace".
pub fn create(path: &Path, header: Header) -> Result<Writer<BufWriter<File>>> {
    let f = File::create(path)?;
    // Blocks are 64 KiB: the buffer only gathers the small blocks of
    // frequent flushes; blocks and output chunks of 64 KiB or more bypass it.
    let mut w = Writer::new(BufWriter::with_capacity(BLOCK_TARGET, f), header)?;
    w.flush()?;
    Ok(w)
}

struct RecorderState {
    writer: Writer<BufWriter<File>>,
    /// Kinds of the messages in flight (their clocks are in the writer).
    inflight: HashMap<MsgId, crate::model::Kind>,
    next_msg: MsgId,
    last_time: u64,
    finished: bool,
    dirty: bool,
}

struct Shared {
    state: Mutex<RecorderState>,
    start: Instant,
    stop: Mutex<bool>,
    wake: Condvar,
}

/// Records a run as it goes: the executor's side of the trace.
///
/// One recorder is shared (through `&Recorder` or an `Arc`) by all tester
/// threads; each call takes a short lock, stamps the event with the time since
/// the run started and the actor's vector clock, and encodes it. Sends return a
/// [`MsgId`] that the receiving side passes to [`Recorder::recv`]. A background
/// thread flushes every `flush_interval`; callers also flush at step
/// boundaries. [`Recorder::finish`] writes the `end` event.
///
/// The recorder never drops an event for its size: a text or byte field
/// over [`codec::CUT_FIELD_LEN`] (8 MiB: a 17 MiB barrier name, command or
/// output chunk) is cut, the cut marked in the text (`… [cut: N bytes]`)
/// and the event flagged, which every reader reports, so every event fits
/// the format's [`codec::MAX_DATA_LEN`] (see [`crate::codec`]). What it
/// refuses (an unknown actor or message, a call after `finish`, a header
/// over the format's limit, an I/O error) is an error returned to the
/// caller, and nothing is written.
pub struct Recorder {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Recorder {
    /// Creates the trace file at `path`, with its header already in the OS
    /// (see [`create`]: a run killed before its first event leaves an empty,
    /// incomplete trace, not an empty file), and starts the periodic flusher
    /// (every 100 ms).
    pub fn create(path: &Path, header: Header) -> Result<Recorder> {
        Self::with_flush_interval(path, header, Duration::from_millis(100))
    }

    /// Like [`Recorder::create`] with another flush period.
    pub fn with_flush_interval(
        path: &Path,
        header: Header,
        flush_interval: Duration,
    ) -> Result<Recorder> {
        let mut writer = create(path, header)?;
        // A run's record never loses an event to its size: what is too big
        // is cut, visibly (see `Writer::set_cut_oversized`).
        writer.set_cut_oversized(true);
        let shared = Arc::new(Shared {
            state: Mutex::new(RecorderState {
                writer,
                inflight: HashMap::new(),
                next_msg: 0,
                last_time: 0,
                finished: false,
                dirty: false,
            }),
            start: Instant::now(),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let s2 = Arc::clone(&shared);
        let flusher = std::thread::Builder::new()
            .name("dtest-trace-flush".into())
            .spawn(move || {
                let mut stop = s2.stop.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if *stop {
                        return;
                    }
                    let (g, _) = s2
                        .wake
                        .wait_timeout(stop, flush_interval)
                        .unwrap_or_else(|e| e.into_inner());
                    stop = g;
                    if *stop {
                        return;
                    }
                    let mut st = s2.state.lock().unwrap_or_else(|e| e.into_inner());
                    if st.dirty && !st.finished {
                        // A failed periodic flush shows up again at the next
                        // explicit flush or at finish, which report it.
                        let _ = st.writer.flush();
                        st.dirty = false;
                    }
                }
            })?;
        Ok(Recorder {
            shared,
            flusher: Some(flusher),
        })
    }

    fn lock(&self) -> MutexGuard<'_, RecorderState> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Nanoseconds since the recorder was created (the run's time base).
    pub fn now_ns(&self) -> u64 {
        self.shared.start.elapsed().as_nanos() as u64
    }

    fn stamp(&self, st: &mut RecorderState) -> u64 {
        // Times never run backwards, even if two threads race to the lock.
        let t = self.now_ns().max(st.last_time);
        st.last_time = t;
        t
    }

    fn check(st: &RecorderState, actor: ActorId) -> Result<()> {
        if st.finished {
            return Err(Error::Usage("the recorder has finished".into()));
        }
        if actor as usize >= st.writer.header().actors.len() {
            return Err(Error::Usage(format!("unknown actor {actor}")));
        }
        Ok(())
    }

    /// Records a local event on `actor`; returns its index.
    pub fn local(&self, actor: ActorId, data: EventData) -> Result<u64> {
        let mut st = self.lock();
        Self::check(&st, actor)?;
        let t = self.stamp(&mut st);
        st.dirty = true;
        st.writer.append_auto(actor, t, Dir::Local, None, &data)
    }

    /// Records the send of a message by `actor`; returns the message id to
    /// give to [`Recorder::recv`] on the receiving side.
    pub fn send(&self, actor: ActorId, data: EventData) -> Result<MsgId> {
        let mut st = self.lock();
        Self::check(&st, actor)?;
        let t = self.stamp(&mut st);
        let msg = st.next_msg;
        st.writer
            .append_auto(actor, t, Dir::Send, Some(msg), &data)?;
        st.next_msg += 1;
        st.inflight.insert(msg, data.kind());
        st.dirty = true;
        Ok(msg)
    }

    /// Records the receipt of message `msg` by `actor`; returns the event index.
    pub fn recv(&self, actor: ActorId, msg: MsgId) -> Result<u64> {
        let mut st = self.lock();
        Self::check(&st, actor)?;
        let Some(kind) = st.inflight.remove(&msg) else {
            return Err(Error::Usage(format!(
                "message {msg} was never sent or was already received"
            )));
        };
        let t = self.stamp(&mut st);
        st.dirty = true;
        let data = EventData::empty(kind);
        st.writer.append_auto(actor, t, Dir::Recv, Some(msg), &data)
    }

    /// Records an output chunk of a session: the send by `from` and the
    /// receive by `to` at once (like [`Recorder::message`]), with the bytes
    /// borrowed, never copied into an `EventData`.
    pub fn output(
        &self,
        from: ActorId,
        to: ActorId,
        stream: crate::model::Stream,
        bytes: &[u8],
    ) -> Result<MsgId> {
        let mut st = self.lock();
        Self::check(&st, from)?;
        Self::check(&st, to)?;
        let t = self.stamp(&mut st);
        let msg = st.next_msg;
        st.writer.append_output_auto(from, t, msg, stream, bytes)?;
        st.next_msg += 1;
        st.dirty = true;
        let data = EventData::empty(crate::model::Kind::Output);
        st.writer.append_auto(to, t, Dir::Recv, Some(msg), &data)?;
        Ok(msg)
    }

    /// Sends and immediately receives a message (`from` to `to`); returns the
    /// message id. For messages whose two sides happen at once.
    pub fn message(&self, from: ActorId, to: ActorId, data: EventData) -> Result<MsgId> {
        let m = self.send(from, data)?;
        self.recv(to, m)?;
        Ok(m)
    }

    /// Messages sent and not yet received.
    pub fn in_flight(&self) -> Vec<MsgId> {
        let mut v: Vec<MsgId> = self.lock().inflight.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// The current vector clock of `actor`.
    pub fn clock(&self, actor: ActorId) -> Vec<u32> {
        let st = self.lock();
        if actor as usize >= st.writer.header().actors.len() {
            return Vec::new();
        }
        st.writer.clock(actor).to_vec()
    }

    /// Writes every event recorded so far to the OS.
    pub fn flush(&self) -> Result<()> {
        let mut st = self.lock();
        if st.finished {
            return Ok(());
        }
        st.dirty = false;
        st.writer.flush()
    }

    /// Records the `end` event on `actor` (normally the master), flushes and
    /// closes the trace. Later calls fail with a usage error.
    ///
    /// The trace is then complete in the OS (it survives the process), not
    /// necessarily on disk: [`Recorder::sync`] waits for that.
    pub fn finish(&self, actor: ActorId, ok: bool, summary: impl Into<String>) -> Result<()> {
        self.local(
            actor,
            EventData::End {
                ok,
                summary: summary.into(),
            },
        )?;
        let mut st = self.lock();
        st.finished = true;
        st.writer.flush()?;
        Ok(())
    }

    /// Writes every event recorded so far to the OS and waits until the
    /// trace file is on disk (`fsync`): for runs whose trace must survive a
    /// crash of the machine. Costs the disk's write time of the whole trace.
    pub fn sync(&self) -> Result<()> {
        let mut st = self.lock();
        st.writer.flush()?;
        st.writer.out.get_ref().sync_data()?;
        Ok(())
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.wake.notify_all();
        if let Some(h) = self.flusher.take() {
            let _ = h.join();
        }
        let mut st = self.lock();
        if !st.finished {
            let _ = st.writer.flush();
        }
    }
}
