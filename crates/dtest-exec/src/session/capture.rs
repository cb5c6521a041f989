//! Continuous capture: one thread per session reads its [`Output`] from the
//! moment the session opens until it closes, whatever its tester is doing
//! (waiting at a barrier, sleeping, running a `local` step, copying a file).
//!
//! A program under test therefore never blocks on its output because of
//! dtest, and each piece of output is handed to the [`CaptureSink`] (the
//! runner's: `.out`/`.err` logs and the trace) the moment it arrives, so the
//! record's order and times are those of the run.
//!
//! The capture decodes the shell protocol ([`super::protocol::Decoder`]) and
//! keeps, in a [`Shared`] state the tester waits on:
//!
//! * whether a command runs, has started, and how the last one ended;
//! * the *backlog*: output that arrived while no expect was waiting, bounded
//!   (1 MiB; the oldest half is dropped and counted when it overflows);
//! * the *active expect*: while the tester waits in an expect, its matcher
//!   is fed here, on the read buffer, with nothing copied or dropped;
//! * the last 4 KiB of output, for diagnostics.
//!
//! Why a thread per session rather than one event loop for all: the
//! transports differ (file descriptors for `local` and `openssh://`, an
//! in-process queue fed by libssh2's I/O thread for `ssh://`), and a
//! blocking read with a deadline is what each offers; a thread per session
//! keeps each transport's reading code as it is, and the number of threads
//! is bounded by the testers (two small-stack threads each).

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dtest_trace::{ExitStatus, Stream};

use super::protocol::{status_from_shell, Decoder, Event};
use super::Output;
use crate::matcher::{Hit, Matcher};

/// Output kept for an expect that is not running yet.
pub const BACKLOG_MAX: usize = 1 << 20;
/// Output kept for diagnostics (the last lines received).
pub const TAIL_MAX: usize = 4096;
/// Size of the read buffer: one chunk of output at most.
pub const CHUNK: usize = 256 << 10;
/// How long a pipes session waits for a command's stderr end marker after
/// its stdout one (a command that closed the shell's stderr never sends it).
const HALF_END_GRACE: Duration = Duration::from_secs(1);
/// How long the capture keeps reading after the session was closed, for
/// output still in flight, when the transport does not report its end.
const DRAIN_AFTER_CLOSE: Duration = Duration::from_secs(2);

/// Where captured output goes as it arrives: the runner writes it to the
/// logs and the trace. Called from the capture thread, in arrival order,
/// with the session's state locked (keep it short: no waiting).
pub trait CaptureSink: Send {
    /// Output that arrived before the shell was ready (login banners,
    /// rc-file noise): not command output.
    fn banner(&mut self, stream: Stream, bytes: &[u8]);
    /// The shell answered the protocol: the session is open.
    fn opened(&mut self);
    /// Output of the session, markers removed.
    fn output(&mut self, stream: Stream, bytes: &[u8]);
    /// The running command ended with `status`.
    fn exit(&mut self, status: &ExitStatus);
}

/// Output chunks as they arrived, in order.
pub type Chunks = Arc<Mutex<Vec<(Stream, Vec<u8>)>>>;

/// A sink that keeps everything in memory (tests, tools): the output of
/// both streams in arrival order, and the exits.
#[derive(Debug, Clone, Default)]
pub struct CollectSink {
    /// Output (stream, bytes) as it arrived, banners excluded.
    pub output: Chunks,
    /// Exit statuses of commands, in order.
    pub exits: Arc<Mutex<Vec<ExitStatus>>>,
}

impl CollectSink {
    /// Every output byte so far, both streams.
    pub fn bytes(&self) -> Vec<u8> {
        let o = self.output.lock().unwrap_or_else(|e| e.into_inner());
        o.iter().flat_map(|(_, b)| b.iter().copied()).collect()
    }
}

impl CaptureSink for CollectSink {
    fn banner(&mut self, _stream: Stream, _bytes: &[u8]) {}
    fn opened(&mut self) {}
    fn output(&mut self, stream: Stream, bytes: &[u8]) {
        let mut o = self.output.lock().unwrap_or_else(|e| e.into_inner());
        o.push((stream, bytes.to_vec()));
    }
    fn exit(&mut self, status: &ExitStatus) {
        let mut e = self.exits.lock().unwrap_or_else(|e| e.into_inner());
        e.push(status.clone());
    }
}

/// What the capture knows of a session, shared with its tester.
#[derive(Debug, Default)]
pub struct State {
    /// The shell answered the set-up line.
    pub ready: bool,
    /// A command was started and has not ended.
    pub running: bool,
    /// The running command's line was read by the shell (its start marker
    /// was seen): signals and the interrupt character now reach it.
    pub started: bool,
    /// How the last command ended.
    pub last_exit: Option<ExitStatus>,
    /// The shell ended (`Some(status)`), or the connection was lost.
    pub closed: Option<Option<ExitStatus>>,
    /// Why reading failed (a lost connection), if it did.
    pub lost: Option<String>,
    /// Output not consumed by an expect yet (bounded).
    pub backlog: Vec<u8>,
    /// Bytes dropped from the backlog since the last expect took it.
    pub backlog_dropped: u64,
    /// The waiting expect's matcher.
    pub matcher: Option<Matcher>,
    /// The waiting expect's match, once found.
    pub hit: Option<Hit>,
    /// The last output, for diagnostics.
    pub tail: Vec<u8>,
    /// What the shell printed before it was ready (bounded).
    pub banner: Vec<u8>,
    /// The session is being closed: read what is left, then stop.
    pub shutdown: Option<Instant>,
    /// The session runs on a pty (one stream, prompts as end markers).
    pub pty: bool,
    /// Something a waiter may wait for changed since the last wake-up
    /// (plain output does not wake the tester: 4096 chunks per GiB).
    changed: bool,
}

impl State {
    fn push_tail(&mut self, d: &[u8]) {
        if d.len() >= TAIL_MAX {
            self.tail.clear();
            self.tail.extend_from_slice(&d[d.len() - TAIL_MAX..]);
        } else {
            self.tail.extend_from_slice(d);
            if self.tail.len() > 2 * TAIL_MAX {
                let cut = self.tail.len() - TAIL_MAX;
                self.tail.drain(..cut);
            }
        }
    }

    fn push_backlog(&mut self, d: &[u8]) {
        self.backlog.extend_from_slice(d);
        if self.backlog.len() > BACKLOG_MAX {
            let cut = self.backlog.len() - BACKLOG_MAX / 2;
            self.backlog.drain(..cut);
            self.backlog_dropped += cut as u64;
        }
    }

    /// The last `n` lines of output (carriage returns removed).
    pub fn last_lines(&self, n: usize) -> Vec<String> {
        let from = self.tail.len().saturating_sub(TAIL_MAX);
        let text = String::from_utf8_lossy(&self.tail[from..]).replace('\r', "");
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(n);
        lines[start..].iter().map(|s| s.to_string()).collect()
    }

    /// Handles one decoded event.
    fn on_event(&mut self, sink: &mut dyn CaptureSink, e: Event<'_>) {
        match e {
            Event::Output(stream, d) if !self.ready => {
                if self.banner.len() < TAIL_MAX {
                    self.banner.extend_from_slice(d);
                }
                sink.banner(stream, d);
            }
            Event::Output(stream, d) => {
                sink.output(stream, d);
                self.push_tail(d);
                match &mut self.matcher {
                    Some(m) if self.hit.is_none() => {
                        if let Some(h) = m.feed(d) {
                            self.push_backlog(&d[h.end..]);
                            self.hit = Some(h);
                            self.matcher = None;
                            self.changed = true;
                        }
                    }
                    _ => self.push_backlog(d),
                }
            }
            Event::Started => {
                self.started = true;
                self.changed = true;
            }
            Event::End(_) if !self.ready => {
                self.ready = true;
                self.changed = true;
                sink.opened();
            }
            Event::End(st) => {
                // An end with no command running is a spare prompt (an
                // interrupt at the prompt): not an exit. On a pty, neither
                // is an end before the running command's start marker: a
                // late prompt of an interrupt sent to the previous command.
                if self.running && (self.started || !self.pty) {
                    let st = status_from_shell(st);
                    self.changed = true;
                    self.running = false;
                    self.started = true;
                    sink.exit(&st);
                    self.last_exit = Some(st);
                }
            }
        }
    }

    fn on_closed(&mut self, sink: &mut dyn CaptureSink, status: Option<ExitStatus>) {
        self.changed = true;
        if self.running {
            let st = status.clone().unwrap_or(ExitStatus::Code(-1));
            self.running = false;
            sink.exit(&st);
            self.last_exit = Some(st);
        }
        if self.closed.is_none() {
            self.closed = Some(status);
        }
    }
}

/// The state and the condition variable the tester waits on.
#[derive(Debug, Default)]
pub struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    /// Locks the state.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a change of the state, until `until` at most.
    pub fn wait_until<'a>(
        &self,
        g: MutexGuard<'a, State>,
        until: Instant,
    ) -> MutexGuard<'a, State> {
        let d = until.saturating_duration_since(Instant::now());
        self.changed
            .wait_timeout(g, d)
            .map(|(g, _)| g)
            .unwrap_or_else(|e| e.into_inner().0)
    }

    /// Wakes the waiters.
    pub fn notify(&self) {
        self.changed.notify_all();
    }
}

/// Starts the capture thread of a session.
pub fn spawn(
    name: &str,
    output: Box<dyn Output>,
    decoder: Decoder,
    sink: Box<dyn CaptureSink>,
    shared: Arc<Shared>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("capture-{name}"))
        .stack_size(256 << 10)
        .spawn(move || capture(output, decoder, sink, &shared))
}

fn capture(
    mut output: Box<dyn Output>,
    mut dec: Decoder,
    mut sink: Box<dyn CaptureSink>,
    shared: &Shared,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let r = output.read(&mut buf, Instant::now() + Duration::from_millis(100));
        let mut st = shared.lock();
        let sink = &mut *sink;
        let end = match r {
            Ok(super::ReadEvent::Data { stream, n }) => {
                dec.feed(stream, &buf[..n], &mut |e| st.on_event(sink, e));
                false
            }
            Ok(super::ReadEvent::Timeout) => {
                if dec
                    .half_ended_since()
                    .is_some_and(|t| t.elapsed() >= HALF_END_GRACE)
                {
                    dec.force_end(&mut |e| st.on_event(sink, e));
                }
                match st.shutdown {
                    Some(t) if t.elapsed() >= DRAIN_AFTER_CLOSE => {
                        dec.finish(&mut |e| st.on_event(sink, e));
                        st.on_closed(sink, None);
                        true
                    }
                    _ => false,
                }
            }
            Ok(super::ReadEvent::Closed { status }) => {
                dec.finish(&mut |e| st.on_event(sink, e));
                dec.force_end(&mut |e| st.on_event(sink, e));
                st.on_closed(sink, status);
                true
            }
            Err(e) => {
                dec.finish(&mut |e| st.on_event(sink, e));
                if st.shutdown.is_none() {
                    st.lost = Some(e.to_string());
                }
                st.on_closed(sink, None);
                true
            }
        };
        let wake = std::mem::take(&mut st.changed);
        drop(st);
        if wake {
            shared.notify();
        }
        if end {
            return;
        }
    }
}
