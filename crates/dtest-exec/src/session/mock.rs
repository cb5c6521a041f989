//! Mock channels and a mock transport for unit tests of the layers above
//! the transport (the shell protocol, the capture, the runner).
//!
//! Two kinds of [`MockChannel`]:
//!
//! * **scripted** ([`MockChannel::new`]): a handler closure receives every
//!   write and returns the output the "shell" produces in reply;
//! * **shell** ([`MockChannel::shell`]): a background thread emulates a
//!   POSIX shell speaking dtest's protocol ([`super::protocol::Protocol`]):
//!   it parses the set-up line and the command lines written to it (the pty
//!   and the pipes forms), answers with the start marker, the command's
//!   output and the end marker(s) with the command's status (on pipes on
//!   stderr, then stdout), and on a pty treats the byte 0x03 as the
//!   terminal's interrupt character. Commands are a tiny language of
//!   actions separated by `;` (see [`MockChannel::shell`]), so a test says
//!   `run = "out hello; wait 50; exit 3"` and gets real delays and real
//!   interleavings with the capture thread.
//!
//! Output is queued as chunks of at most `chunk` bytes (so tests split
//! output, and markers, anywhere) and read by the [`Output`] half from
//! another thread, as a capture does.
//!
//! [`MockTransport`] (scheme `mock`) opens shell channels; the host URL says
//! how the open behaves: `mock://ok`, `mock://fail`, `mock://slow`,
//! `mock://silent` (see [`MockTransport`]).

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dtest_trace::{ExitStatus, Stream};

use super::{
    Channel, FileInfo, HostUrl, OpenSpec, Output, ReadEvent, Result, SessionError, Signal,
    Transport, Until,
};

type Handler = Box<dyn FnMut(&[u8]) -> Vec<(Stream, Vec<u8>)> + Send>;
type SignalHandler = Box<dyn FnMut(Signal) -> Vec<(Stream, Vec<u8>)> + Send>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// The output queue

#[derive(Debug, Default)]
struct Queue {
    /// Chunks, each readable from its instant (now + the latency).
    chunks: VecDeque<(Instant, Stream, Vec<u8>)>,
    closed: Option<Option<ExitStatus>>,
    /// Once the chunks are read, reading fails with this (a lost
    /// connection), once; then the output reports `Closed`.
    lost: Option<String>,
}

#[derive(Debug, Default)]
struct SharedQueue {
    q: Mutex<Queue>,
    cv: Condvar,
    /// How long a chunk takes to reach the reader (a network's latency).
    latency: Duration,
}

impl SharedQueue {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        lock(&self.q)
    }

    fn push(&self, stream: Stream, bytes: &[u8], chunk: usize) {
        let mut q = self.lock();
        if q.closed.is_some() || q.lost.is_some() {
            return;
        }
        let at = Instant::now() + self.latency;
        for c in bytes.chunks(chunk.max(1)) {
            q.chunks.push_back((at, stream, c.to_vec()));
        }
        self.cv.notify_all();
    }

    fn end(&self, status: Option<ExitStatus>) {
        let mut q = self.lock();
        if q.closed.is_none() && q.lost.is_none() {
            q.closed = Some(status);
        }
        self.cv.notify_all();
    }

    fn lose(&self, why: &str) {
        let mut q = self.lock();
        if q.closed.is_none() && q.lost.is_none() {
            q.lost = Some(why.to_string());
        }
        self.cv.notify_all();
    }

    fn is_ended(&self) -> bool {
        let q = self.lock();
        q.closed.is_some() || q.lost.is_some()
    }
}

struct MockOutput {
    queue: Arc<SharedQueue>,
}

impl Output for MockOutput {
    fn read(&mut self, buf: &mut [u8], deadline: Instant) -> Result<ReadEvent> {
        let mut q = self.queue.lock();
        loop {
            let now = Instant::now();
            let head = q.chunks.front().map(|(at, ..)| *at);
            match head {
                Some(at) if at <= now => {
                    if let Some((at, stream, mut data)) = q.chunks.pop_front() {
                        let n = data.len().min(buf.len());
                        buf[..n].copy_from_slice(&data[..n]);
                        if n < data.len() {
                            data.drain(..n);
                            q.chunks.push_front((at, stream, data));
                        }
                        return Ok(ReadEvent::Data { stream, n });
                    }
                }
                // Data in flight: the end, if any, comes after it.
                Some(_) => {}
                None => {
                    if let Some(why) = q.lost.take() {
                        q.closed = Some(None);
                        return Err(SessionError::Closed(why));
                    }
                    if let Some(status) = &q.closed {
                        return Ok(ReadEvent::Closed {
                            status: status.clone(),
                        });
                    }
                }
            }
            if now >= deadline {
                return Ok(ReadEvent::Timeout);
            }
            let wake = head.map_or(deadline, |at| at.min(deadline));
            q = self
                .queue
                .cv
                .wait_timeout(q, wake.saturating_duration_since(now))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

// ---------------------------------------------------------------------------
// The emulated shell

/// What the tester side hands to the emulated shell, and what the shell
/// tells the tester side (under one lock, so a signal is delivered only
/// to a command that runs).
#[derive(Debug, Default)]
struct Inbox {
    /// Bytes written (the shell's input, or the running command's).
    input: Vec<u8>,
    /// Signals for the running command.
    signals: VecDeque<Signal>,
    /// Interrupt characters typed while no command ran.
    prompt_ints: usize,
    /// A command runs (between its start and its end).
    cmd_active: bool,
    /// The channel was closed (or dropped) by its owner.
    closed: bool,
    /// The shell died (`drop`, `lose`): writes fail.
    dead: bool,
}

#[derive(Debug, Default)]
struct ShellCore {
    inbox: Mutex<Inbox>,
    cv: Condvar,
}

impl ShellCore {
    fn lock(&self) -> MutexGuard<'_, Inbox> {
        lock(&self.inbox)
    }
}

/// How the emulated shell behaves.
#[derive(Clone, Debug)]
struct ShellConfig {
    pty: bool,
    chunk: usize,
    /// Never answer the protocol (consume input, print nothing).
    silent: bool,
    /// Printed once, before the answer to the set-up line (a login banner).
    banner: Option<String>,
    /// How long output takes to reach the reader.
    latency: Duration,
    /// Whether [`Channel::foreground_job`] tells (a local pty does; the SSH
    /// transports cannot).
    foreground_known: bool,
    /// Pipes: print a command's end marker on stdout before stderr (as an
    /// SSH server may forward them).
    stdout_first: bool,
}

impl ShellConfig {
    fn new(pty: bool, chunk: usize) -> ShellConfig {
        ShellConfig {
            pty,
            chunk: chunk.max(1),
            silent: false,
            banner: None,
            latency: Duration::ZERO,
            foreground_known: true,
            stdout_first: false,
        }
    }
}

/// Why a wait of a command ended.
enum Wake {
    Signal(Signal),
    Line(Vec<u8>),
    Timeout,
    Closed,
}

/// How a command ended.
enum Ended {
    Status(i32),
    /// The shell is gone (closed by its owner, or died).
    Gone,
}

const RS: u8 = 0x1e;
const START_PRINTF: &str = "printf '\\036dtest:%s:s\\036' ";
const END_PRINTF: &str = "printf '\\036dtest:%s:%d\\036' ";

struct Shell {
    core: Arc<ShellCore>,
    queue: Arc<SharedQueue>,
    cfg: ShellConfig,
    nonce: Option<String>,
    /// A command closed the shell's stderr (`exec 2>&-`): what the shell
    /// writes there is lost, its end markers included.
    stderr_closed: bool,
}

impl Shell {
    fn emit(&self, stream: Stream, bytes: &[u8]) {
        if stream == Stream::Stderr && self.stderr_closed {
            return;
        }
        self.queue.push(stream, bytes, self.cfg.chunk);
    }

    /// A line of output of a command (`\r\n` on a pty, one stream there).
    fn emit_line(&self, stream: Stream, text: &str) {
        let (stream, nl) = if self.cfg.pty {
            (Stream::Stdout, "\r\n")
        } else {
            (stream, "\n")
        };
        self.emit(stream, format!("{text}{nl}").as_bytes());
    }

    fn marker(&self, status: &str) -> Vec<u8> {
        let mut m = vec![RS];
        m.extend_from_slice(b"dtest:");
        m.extend_from_slice(self.nonce.as_deref().unwrap_or("").as_bytes());
        m.push(b':');
        m.extend_from_slice(status.as_bytes());
        m.push(RS);
        m
    }

    /// The prompt of an interactive shell on a pty (PS1 with `$?`).
    fn prompt(&self, status: i32) {
        if self.cfg.pty && self.nonce.is_some() {
            self.emit(Stream::Stdout, &self.marker(&status.to_string()));
        }
    }

    fn main(mut self) {
        loop {
            let job = {
                let mut ib = self.core.lock();
                loop {
                    if ib.closed || ib.dead {
                        return;
                    }
                    if ib.prompt_ints > 0 {
                        ib.prompt_ints -= 1;
                        break None;
                    }
                    if let Some(l) = take_shell_line(&mut ib.input) {
                        break Some(l);
                    }
                    ib = self.core.cv.wait(ib).unwrap_or_else(|e| e.into_inner());
                }
            };
            if self.cfg.silent {
                continue;
            }
            match job {
                // Ctrl-C at the prompt: a new line and a new prompt.
                None => {
                    if self.cfg.pty && self.nonce.is_some() {
                        self.emit(Stream::Stdout, b"\r\n");
                        self.prompt(130);
                    }
                }
                Some(line) => {
                    let line = String::from_utf8_lossy(&line).into_owned();
                    if !self.line(&line) {
                        return;
                    }
                }
            }
        }
    }

    /// Interprets one shell line; `false` when the shell is gone.
    fn line(&mut self, line: &str) -> bool {
        if let Some((nonce, cmd, rest)) = parse_command_line(line) {
            if self.nonce.as_deref() == Some(nonce.as_str()) {
                return self.command(&cmd, &rest);
            }
        }
        if self.nonce.is_none() {
            if let Some(n) = parse_init_nonce(line) {
                self.nonce = Some(n);
                if let Some(b) = &self.cfg.banner {
                    self.emit(Stream::Stdout, format!("{b}\n").as_bytes());
                }
                if self.cfg.pty {
                    self.prompt(0);
                } else {
                    self.end_markers(line, 0);
                }
                return true;
            }
        }
        // Anything else is a command the shell does not know.
        let word = line.split_whitespace().next().unwrap_or("");
        if word.is_empty() {
            self.prompt(0);
        } else {
            self.emit_line(Stream::Stderr, &format!("mock-sh: {word}: not found"));
            self.prompt(127);
        }
        true
    }

    /// On pipes: the end markers the rest of the line prints, in its order
    /// (stderr first with dtest's lines).
    fn end_markers(&self, rest: &str, status: i32) {
        if self.cfg.pty {
            return;
        }
        let mut ends: Vec<Stream> = rest
            .split(';')
            .filter(|part| part.trim_start().starts_with(END_PRINTF.trim_end()))
            .map(|part| {
                if part.contains(">&2") {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                }
            })
            .collect();
        if self.cfg.stdout_first {
            ends.sort_by_key(|s| *s != Stream::Stdout);
        }
        let m = self.marker(&status.to_string());
        for stream in ends {
            self.emit(stream, &m);
        }
    }

    /// Runs a command line; `false` when the shell is gone.
    fn command(&mut self, cmd: &str, rest: &str) -> bool {
        self.emit(Stream::Stdout, &self.marker("s"));
        {
            let mut ib = self.core.lock();
            ib.cmd_active = true;
            ib.signals.clear();
        }
        let ended = self.exec(cmd);
        {
            let mut ib = self.core.lock();
            ib.cmd_active = false;
            ib.signals.clear();
        }
        match ended {
            Ended::Gone => false,
            Ended::Status(st) => {
                if self.cfg.pty {
                    self.prompt(st);
                } else {
                    self.end_markers(rest, st);
                }
                true
            }
        }
    }

    fn exec(&mut self, cmd: &str) -> Ended {
        let mut ignored: Vec<Signal> = Vec::new();
        let died = |sig: Signal| Ended::Status(128 + sig.number());
        for action in cmd.split(';') {
            let action = action.trim();
            if action.is_empty() {
                continue;
            }
            let (word, arg) = action.split_once(' ').unwrap_or((action, ""));
            let arg = arg.trim();
            match word {
                "out" => self.emit_line(Stream::Stdout, arg),
                "err" => self.emit_line(Stream::Stderr, arg),
                "exit" => return Ended::Status(arg.parse().unwrap_or(0)),
                "flood" => {
                    let n: usize = arg.parse().unwrap_or(0);
                    let line = b"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\n";
                    let mut v = Vec::with_capacity(n);
                    while v.len() < n {
                        let k = (n - v.len()).min(line.len());
                        v.extend_from_slice(&line[..k]);
                    }
                    self.emit(Stream::Stdout, &v);
                }
                "closeerr" => self.stderr_closed = true,
                "ignore" => {
                    if let Some(s) = Signal::parse(arg) {
                        ignored.push(s);
                    }
                }
                "wait" => {
                    let ms: u64 = arg.parse().unwrap_or(0);
                    let deadline = Instant::now() + Duration::from_millis(ms);
                    match self.wait(Some(deadline), &ignored, false) {
                        Wake::Signal(s) => return died(s),
                        Wake::Closed => return Ended::Gone,
                        Wake::Timeout | Wake::Line(_) => {}
                    }
                }
                "hang" | "stubborn" => {
                    if word == "stubborn" {
                        ignored.extend([Signal::Int, Signal::Term]);
                    }
                    match self.wait(None, &ignored, false) {
                        Wake::Signal(s) => return died(s),
                        _ => return Ended::Gone,
                    }
                }
                "read" => match self.wait(None, &ignored, true) {
                    Wake::Line(l) => {
                        let l = String::from_utf8_lossy(&l).into_owned();
                        self.emit_line(Stream::Stdout, &format!("read: {l}"));
                    }
                    Wake::Signal(s) => return died(s),
                    _ => return Ended::Gone,
                },
                "drop" => {
                    self.core.lock().dead = true;
                    let status = arg.parse().ok().map(ExitStatus::Code);
                    self.queue.end(status);
                    return Ended::Gone;
                }
                "lose" => {
                    self.core.lock().dead = true;
                    self.queue.lose("connection reset by the mock");
                    return Ended::Gone;
                }
                other => {
                    self.emit_line(Stream::Stderr, &format!("mock-sh: {other}: not found"));
                    return Ended::Status(127);
                }
            }
        }
        Ended::Status(0)
    }

    /// Waits until `deadline` (forever: `None`) for a signal the command
    /// does not ignore (KILL cannot be ignored), a line of input (when
    /// `line`), or the end of the channel.
    fn wait(&self, deadline: Option<Instant>, ignored: &[Signal], line: bool) -> Wake {
        let mut ib = self.core.lock();
        loop {
            if ib.closed || ib.dead {
                return Wake::Closed;
            }
            while let Some(s) = ib.signals.pop_front() {
                // STOP and CONT pause and resume, they never end a command
                // (the mock does not model the pause itself).
                if matches!(s, Signal::Stop | Signal::Cont) {
                    continue;
                }
                if s == Signal::Kill || !ignored.contains(&s) {
                    return Wake::Signal(s);
                }
            }
            if line {
                if let Some(l) = take_raw_line(&mut ib.input) {
                    return Wake::Line(l);
                }
            }
            ib = match deadline {
                None => self.core.cv.wait(ib).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Wake::Timeout;
                    }
                    self.core
                        .cv
                        .wait_timeout(ib, d - now)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0)
                }
            };
        }
    }
}

/// Takes one line of a command's input (up to a newline, removed).
fn take_raw_line(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let i = buf.iter().position(|&c| c == b'\n')?;
    let mut l: Vec<u8> = buf.drain(..=i).collect();
    l.pop();
    if l.last() == Some(&b'\r') {
        l.pop();
    }
    Some(l)
}

/// Takes one shell line: up to a newline outside single quotes (a quoted
/// command may hold newlines), the newline removed.
fn take_shell_line(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, &c) in buf.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted {
            quoted = c != b'\'';
        } else {
            match c {
                b'\\' => escaped = true,
                b'\'' => quoted = true,
                b'\n' => {
                    let mut l: Vec<u8> = buf.drain(..=i).collect();
                    l.pop();
                    return Some(l);
                }
                _ => {}
            }
        }
    }
    None
}

/// Reads one shell word made of `'...'` pieces, `\x` escapes and plain
/// characters; returns it and what follows it.
fn shell_word(s: &str) -> Option<(String, &str)> {
    let mut w = String::new();
    let mut it = s.char_indices().peekable();
    while let Some(&(i, c)) = it.peek() {
        match c {
            '\'' => {
                it.next();
                loop {
                    match it.next() {
                        Some((_, '\'')) => break,
                        Some((_, c)) => w.push(c),
                        None => return None,
                    }
                }
            }
            '\\' => {
                it.next();
                w.push(it.next()?.1);
            }
            ' ' | ';' | '\n' | '\t' => return Some((w, &s[i..])),
            c => {
                it.next();
                w.push(c);
            }
        }
    }
    Some((w, ""))
}

/// Parses `printf '\036dtest:%s:s\036' NONCE; eval 'CMD'REST` into the
/// nonce, the command and the rest of the line.
fn parse_command_line(line: &str) -> Option<(String, String, String)> {
    let r = line.trim_start().strip_prefix(START_PRINTF)?;
    let (nonce, r) = r.split_once(';')?;
    let r = r.trim_start().strip_prefix("eval ")?;
    let (cmd, rest) = shell_word(r)?;
    Some((nonce.trim().to_string(), cmd, rest.to_string()))
}

/// The nonce of a set-up line: pty (`PS1="...dtest:NONCE:\$?..."`) or
/// pipes (`printf '\036dtest:%s:%d\036' NONCE 0 >&2; ...`).
fn parse_init_nonce(line: &str) -> Option<String> {
    if let Some(i) = line.find(END_PRINTF) {
        let n = line[i + END_PRINTF.len()..].split_whitespace().next()?;
        return Some(n.to_string());
    }
    let i = line.find("dtest:")?;
    let n: String = line[i + 6..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    (!n.is_empty() && line[i + 6 + n.len()..].starts_with(':')).then_some(n)
}

// ---------------------------------------------------------------------------
// The channel

enum Mode {
    Scripted {
        handler: Handler,
        on_signal: Option<SignalHandler>,
    },
    Shell {
        core: Arc<ShellCore>,
        thread: Option<JoinHandle<()>>,
        foreground_known: bool,
    },
}

/// A mock channel: scripted (writes go to a handler, its replies come back
/// as output chunks) or an emulated shell speaking dtest's protocol.
pub struct MockChannel {
    mode: Mode,
    queue: Arc<SharedQueue>,
    output_taken: bool,
    chunk: usize,
    pty: bool,
    target: String,
    /// Every byte written, in order.
    pub written: Arc<Mutex<Vec<u8>>>,
    /// Every signal delivered through [`Channel::signal`], in order (a
    /// pty's `INT` is the byte 0x03 in [`MockChannel::written`]).
    pub signals: Arc<Mutex<Vec<Signal>>>,
}

impl std::fmt::Debug for MockChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockChannel")
            .field("target", &self.target)
            .field("pty", &self.pty)
            .field("chunk", &self.chunk)
            .finish_non_exhaustive()
    }
}

impl MockChannel {
    /// A scripted mock whose replies are produced by `handler` and
    /// delivered in chunks of at most `chunk` bytes.
    pub fn new(
        pty: bool,
        chunk: usize,
        handler: impl FnMut(&[u8]) -> Vec<(Stream, Vec<u8>)> + Send + 'static,
    ) -> MockChannel {
        MockChannel {
            mode: Mode::Scripted {
                handler: Box::new(handler),
                on_signal: None,
            },
            queue: Arc::new(SharedQueue::default()),
            output_taken: false,
            chunk: chunk.max(1),
            pty,
            target: "mock".into(),
            written: Arc::default(),
            signals: Arc::default(),
        }
    }

    /// An emulated POSIX shell speaking dtest's protocol, its output in
    /// chunks of at most `chunk` bytes.
    ///
    /// Commands are actions separated by `;`:
    ///
    /// | action | what it does |
    /// |---|---|
    /// | `out TEXT` | a line on stdout |
    /// | `err TEXT` | a line on stderr (stdout on a pty) |
    /// | `exit N` | the command ends with status N (default: 0 after the last action) |
    /// | `flood N` | N bytes of `y` lines on stdout |
    /// | `closeerr` | closes the shell's stderr (`exec 2>&-`): the shell's stderr output and end markers are lost from now on |
    /// | `wait MS` | pauses; a signal ends the command with 128 + its number |
    /// | `hang` | never ends until signalled (then 128 + the signal) |
    /// | `ignore SIG` | the command ignores SIG from now on (never KILL) |
    /// | `stubborn` | `ignore INT; ignore TERM; hang`: only KILL ends it |
    /// | `read` | reads a line of input and prints `read: LINE` |
    /// | `drop [N]` | the shell dies: the output half reports `Closed` (status N if given) |
    /// | `lose` | the connection is lost: reading the output fails |
    ///
    /// Anything else is `not found` (status 127). Input that arrives while
    /// no command reads it is read by the shell afterwards, as by a real
    /// one. On a pty, 0x03 is the interrupt character: `INT` to the
    /// running command, or a new prompt when none runs.
    pub fn shell(pty: bool, chunk: usize) -> MockChannel {
        MockChannel::start_shell(ShellConfig::new(pty, chunk))
    }

    /// A shell that never answers dtest's protocol (not a POSIX shell).
    pub fn silent(pty: bool) -> MockChannel {
        MockChannel::start_shell(ShellConfig {
            silent: true,
            ..ShellConfig::new(pty, 4096)
        })
    }

    fn start_shell(cfg: ShellConfig) -> MockChannel {
        let queue = Arc::new(SharedQueue {
            latency: cfg.latency,
            ..SharedQueue::default()
        });
        let core = Arc::new(ShellCore::default());
        let shell = Shell {
            core: Arc::clone(&core),
            queue: Arc::clone(&queue),
            cfg: cfg.clone(),
            nonce: None,
            stderr_closed: false,
        };
        let thread = std::thread::Builder::new()
            .name("mock-shell".into())
            .stack_size(128 << 10)
            .spawn(move || shell.main())
            .ok();
        if thread.is_none() {
            queue.lose("the mock shell thread could not start");
        }
        MockChannel {
            mode: Mode::Shell {
                core,
                thread,
                foreground_known: cfg.foreground_known,
            },
            queue,
            output_taken: false,
            chunk: cfg.chunk,
            pty: cfg.pty,
            target: "mock shell".into(),
            written: Arc::default(),
            signals: Arc::default(),
        }
    }

    /// Sets the channel's target (the `open` event's text).
    pub fn with_target(mut self, target: impl Into<String>) -> MockChannel {
        self.target = target.into();
        self
    }

    /// Sets what a scripted "shell" prints when a signal is delivered.
    pub fn on_signal(
        mut self,
        f: impl FnMut(Signal) -> Vec<(Stream, Vec<u8>)> + Send + 'static,
    ) -> MockChannel {
        if let Mode::Scripted { on_signal, .. } = &mut self.mode {
            *on_signal = Some(Box::new(f));
        }
        self
    }

    /// Queues output as if the shell had printed it unprompted.
    pub fn push_output(&self, stream: Stream, bytes: &[u8]) {
        self.queue.push(stream, bytes, self.chunk);
    }

    /// Ends the "shell" with `status`: its output half reports
    /// [`ReadEvent::Closed`] once the queue is read.
    pub fn end(&self, status: Option<ExitStatus>) {
        if let Mode::Shell { core, .. } = &self.mode {
            core.lock().dead = true;
            core.cv.notify_all();
        }
        self.queue.end(status);
    }

    /// Stops the shell thread and ends the output.
    fn shut(&mut self, status: Option<ExitStatus>) -> Option<ExitStatus> {
        if let Mode::Shell { core, thread, .. } = &mut self.mode {
            core.lock().closed = true;
            core.cv.notify_all();
            if let Some(t) = thread.take() {
                let _ = t.join();
            }
        }
        self.queue.end(status);
        match &self.queue.lock().closed {
            Some(s) => s.clone(),
            None => None,
        }
    }
}

impl Drop for MockChannel {
    fn drop(&mut self) {
        self.shut(None);
    }
}

impl Channel for MockChannel {
    fn target(&self) -> String {
        self.target.clone()
    }

    fn is_pty(&self) -> bool {
        self.pty
    }

    fn take_output(&mut self) -> Result<Box<dyn Output>> {
        if std::mem::replace(&mut self.output_taken, true) {
            return Err(SessionError::Other("the output was already taken".into()));
        }
        Ok(Box::new(MockOutput {
            queue: Arc::clone(&self.queue),
        }))
    }

    fn write(&mut self, bytes: &[u8], _until: &Until) -> Result<()> {
        if self.queue.is_ended() {
            return Err(SessionError::Closed("mock closed".into()));
        }
        lock(&self.written).extend_from_slice(bytes);
        match &mut self.mode {
            Mode::Scripted { handler, .. } => {
                let out = handler(bytes);
                for (s, b) in out {
                    self.queue.push(s, &b, self.chunk);
                }
            }
            Mode::Shell { core, .. } => {
                let mut ib = core.lock();
                if ib.dead || ib.closed {
                    return Err(SessionError::Closed("the mock shell is gone".into()));
                }
                for &b in bytes {
                    if self.pty && b == 0x03 {
                        // The terminal's interrupt character: a signal to
                        // the foreground job, not input.
                        if ib.cmd_active {
                            ib.signals.push_back(Signal::Int);
                        } else {
                            ib.prompt_ints += 1;
                        }
                    } else {
                        ib.input.push(b);
                    }
                }
                core.cv.notify_all();
            }
        }
        Ok(())
    }

    fn signal(&mut self, sig: Signal) -> Result<Option<usize>> {
        lock(&self.signals).push(sig);
        match &mut self.mode {
            Mode::Scripted { on_signal, .. } => {
                if let Some(f) = on_signal {
                    for (s, b) in f(sig) {
                        self.queue.push(s, &b, self.chunk);
                    }
                }
                Ok(None)
            }
            Mode::Shell { core, .. } => {
                let mut ib = core.lock();
                if ib.dead || ib.closed {
                    return Err(SessionError::Closed("the mock shell is gone".into()));
                }
                if !ib.cmd_active {
                    // No command process (yet): the signal reaches nobody.
                    return Ok(Some(0));
                }
                ib.signals.push_back(sig);
                core.cv.notify_all();
                Ok(Some(1))
            }
        }
    }

    fn foreground_job(&mut self) -> Option<bool> {
        match &self.mode {
            Mode::Shell {
                core,
                foreground_known: true,
                ..
            } if self.pty => Some(core.lock().cmd_active),
            _ => None,
        }
    }

    fn put(&mut self, local: &Path, remote: &str, _until: &Until) -> Result<FileInfo> {
        Ok(FileInfo {
            local: local.to_path_buf(),
            remote: remote.to_string(),
            size: 0,
            sha256: [0; 32],
        })
    }

    fn get(&mut self, remote: &str, local: &Path, _until: &Until) -> Result<FileInfo> {
        Ok(FileInfo {
            local: local.to_path_buf(),
            remote: remote.to_string(),
            size: 0,
            sha256: [0; 32],
        })
    }

    fn close(&mut self, _grace: Duration) -> Result<Option<ExitStatus>> {
        Ok(self.shut(Some(ExitStatus::Code(0))))
    }
}

// ---------------------------------------------------------------------------
// The transport

/// What a test can inspect of a channel [`MockTransport`] opened.
#[derive(Clone, Debug)]
pub struct MockLog {
    /// The tester that opened it.
    pub tester: String,
    /// The host URL.
    pub host: String,
    /// Every byte written to the channel.
    pub written: Arc<Mutex<Vec<u8>>>,
    /// Every signal delivered through [`Channel::signal`].
    pub signals: Arc<Mutex<Vec<Signal>>>,
}

impl MockLog {
    /// What was written, as text.
    pub fn written_text(&self) -> String {
        String::from_utf8_lossy(&lock(&self.written)).into_owned()
    }

    /// The signals delivered so far.
    pub fn signals(&self) -> Vec<Signal> {
        lock(&self.signals).clone()
    }
}

/// The `mock` transport: opens [`MockChannel::shell`]s. The host says how
/// the open behaves:
///
/// * `mock://ok`: an emulated shell;
/// * `mock://fail`: `open` fails ([`SessionError::Open`]);
/// * `mock://slow`: `open` blocks until the run stops (`spec.stop`, polled
///   every 10 ms), then fails with [`SessionError::Stopped`], or fails after
///   5 s (`open_ms`), or the connect timeout if sooner;
/// * `mock://silent`: a channel that never answers dtest's protocol.
///
/// Options (tester keys, or `?key=value&...` after the host): `chunk`
/// (the output's chunk size, default the transport's), `banner` (printed
/// before the shell answers), `open_ms` (how long `slow` blocks),
/// `latency_ms` (how long output takes to reach the reader, as over a
/// network), `foreground_job = "unknown"` (the channel cannot tell whether a
/// command holds the pty, as with SSH), `ends = "stdout-first"` (on pipes,
/// a command's stdout end marker comes before its stderr one).
#[derive(Debug, Clone)]
pub struct MockTransport {
    chunk: usize,
    opened: Arc<Mutex<Vec<MockLog>>>,
}

impl Default for MockTransport {
    fn default() -> Self {
        MockTransport::new()
    }
}

const BEHAVIOURS: [&str; 4] = ["ok", "fail", "slow", "silent"];
const OPTIONS: &[&str] = &[
    "chunk",
    "banner",
    "open_ms",
    "latency_ms",
    "foreground_job",
    "ends",
];

impl MockTransport {
    /// A transport whose shells print in chunks of 4 KiB at most.
    pub fn new() -> MockTransport {
        MockTransport {
            chunk: 4096,
            opened: Arc::default(),
        }
    }

    /// The default chunk size of the output (1 splits every marker).
    pub fn chunk(mut self, n: usize) -> MockTransport {
        self.chunk = n.max(1);
        self
    }

    /// The channels opened so far, in order.
    pub fn opened(&self) -> Vec<MockLog> {
        lock(&self.opened).clone()
    }

    /// The behaviour and the options of a URL (query first, then `extra`).
    fn parse(
        url: &HostUrl,
        extra: &BTreeMap<String, String>,
    ) -> Result<(String, BTreeMap<String, String>)> {
        let bad = |reason: String| SessionError::BadUrl {
            url: url.raw.clone(),
            reason,
        };
        let (b, q) = url.rest.split_once('?').unwrap_or((&url.rest, ""));
        let b = b.trim_end_matches('/').to_ascii_lowercase();
        if !BEHAVIOURS.contains(&b.as_str()) {
            return Err(bad(format!(
                "unknown mock behaviour `{b}` (expected one of: {})",
                BEHAVIOURS.join(", ")
            )));
        }
        let mut opts = BTreeMap::new();
        for kv in q.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            opts.insert(k.to_string(), v.to_string());
        }
        opts.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let Some(k) = opts.keys().find(|k| !OPTIONS.contains(&k.as_str())) {
            return Err(bad(format!(
                "unknown mock option `{k}` (expected one of: {})",
                OPTIONS.join(", ")
            )));
        }
        Ok((b, opts))
    }
}

impl Transport for MockTransport {
    fn scheme(&self) -> &str {
        "mock"
    }

    fn check_url(&self, url: &HostUrl) -> Result<()> {
        MockTransport::parse(url, &BTreeMap::new()).map(|_| ())
    }

    fn option_keys(&self) -> &'static [&'static str] {
        OPTIONS
    }

    fn open(&self, spec: &OpenSpec) -> Result<Box<dyn Channel>> {
        let target = format!("{} on {}", spec.shell, spec.host);
        let open_err = |reason: String| SessionError::Open {
            target: target.clone(),
            reason,
        };
        let (behaviour, opts) =
            MockTransport::parse(&spec.host, &spec.options).map_err(|e| open_err(e.to_string()))?;
        let num = |k: &str, default: u64| -> Result<u64> {
            match opts.get(k) {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .map_err(|_| open_err(format!("mock option `{k}` is not a number: {v:?}"))),
            }
        };
        let chunk = num("chunk", self.chunk as u64)? as usize;
        let ch = match behaviour.as_str() {
            "fail" => return Err(open_err("the mock refuses to open (mock://fail)".into())),
            "slow" => {
                let wait = Duration::from_millis(num("open_ms", 5000)?).min(spec.connect_timeout);
                let end = Instant::now() + wait;
                loop {
                    if let Some(r) = spec.stop.reason() {
                        return Err(SessionError::Stopped(r));
                    }
                    if Instant::now() >= end {
                        return Err(open_err("the mock did not connect in time".into()));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            "silent" => MockChannel::silent(spec.pty),
            _ => {
                let word = |k: &str, allowed: [&'static str; 2]| -> Result<bool> {
                    match opts.get(k).map(String::as_str) {
                        None => Ok(false),
                        Some(v) if v == allowed[0] => Ok(false),
                        Some(v) if v == allowed[1] => Ok(true),
                        Some(v) => Err(open_err(format!(
                            "mock option `{k}` is `{}` or `{}`, not {v:?}",
                            allowed[0], allowed[1]
                        ))),
                    }
                };
                MockChannel::start_shell(ShellConfig {
                    banner: opts.get("banner").cloned(),
                    latency: Duration::from_millis(num("latency_ms", 0)?),
                    foreground_known: !word("foreground_job", ["known", "unknown"])?,
                    stdout_first: word("ends", ["stderr-first", "stdout-first"])?,
                    ..ShellConfig::new(spec.pty, chunk)
                })
            }
        };
        let ch = ch.with_target(target);
        lock(&self.opened).push(MockLog {
            tester: spec.tester.clone(),
            host: spec.host.raw.clone(),
            written: Arc::clone(&ch.written),
            signals: Arc::clone(&ch.signals),
        });
        Ok(Box::new(ch))
    }
}

#[cfg(test)]
mod tests {
    use super::super::protocol::Protocol;
    use super::*;

    #[test]
    fn parses_the_protocol_lines() {
        for pty in [true, false] {
            let p = Protocol::with_nonce("00ff", pty);
            assert_eq!(parse_init_nonce(&p.init_line()).as_deref(), Some("00ff"));
            let mut buf = p.command_line("out it's; out a\nb").into_bytes();
            buf.extend_from_slice(b"next");
            let line = take_shell_line(&mut buf).expect("a whole line");
            assert_eq!(buf, b"next");
            let (n, cmd, rest) = parse_command_line(&String::from_utf8(line).unwrap()).unwrap();
            assert_eq!((n.as_str(), cmd.as_str()), ("00ff", "out it's; out a\nb"));
            assert_eq!(rest.contains(">&2"), !pty, "{rest}");
        }
    }

    fn read_all(out: &mut dyn Output, until_end: bool) -> Vec<(Stream, Vec<u8>)> {
        let mut v: Vec<(Stream, Vec<u8>)> = Vec::new();
        let mut buf = [0u8; 64];
        let end = Instant::now() + Duration::from_secs(2);
        loop {
            match out.read(&mut buf, Instant::now() + Duration::from_millis(50)) {
                Ok(ReadEvent::Data { stream, n }) => match v.last_mut() {
                    Some((s, b)) if *s == stream => b.extend_from_slice(&buf[..n]),
                    _ => v.push((stream, buf[..n].to_vec())),
                },
                Ok(ReadEvent::Timeout) if !until_end || Instant::now() > end => return v,
                Ok(ReadEvent::Timeout) => {}
                _ => return v,
            }
        }
    }

    #[test]
    fn pipes_shell_answers_with_both_markers() {
        let mut ch = MockChannel::shell(false, 3);
        let mut out = ch.take_output().unwrap();
        let p = Protocol::with_nonce("ab", false);
        let u = Until::after(Duration::from_secs(1));
        ch.write(p.init_line().as_bytes(), &u).unwrap();
        ch.write(p.command_line("out hi; err oops; exit 3").as_bytes(), &u)
            .unwrap();
        let got = read_all(&mut *out, false);
        let m = |s: &str| format!("\x1edtest:ab:{s}\x1e").into_bytes();
        let mut want_out = m("0");
        want_out.extend(m("s"));
        want_out.extend(b"hi\n");
        let mut want_err = m("0");
        want_err.extend(b"oops\n");
        want_err.extend(m("3"));
        let join = |s: Stream| -> Vec<u8> {
            got.iter()
                .filter(|(x, _)| *x == s)
                .flat_map(|(_, b)| b.clone())
                .collect()
        };
        assert_eq!(join(Stream::Stdout)[..want_out.len()], want_out[..]);
        assert!(join(Stream::Stdout).ends_with(&m("3")));
        assert_eq!(join(Stream::Stderr), want_err);
        // stderr's end marker comes before stdout's.
        assert_eq!(got.last().unwrap().0, Stream::Stdout);
    }

    #[test]
    fn pty_interrupt_character_and_signals() {
        let mut ch = MockChannel::shell(true, 1);
        let mut out = ch.take_output().unwrap();
        let p = Protocol::with_nonce("cd", true);
        let u = Until::after(Duration::from_secs(1));
        ch.write(p.init_line().as_bytes(), &u).unwrap();
        assert_eq!(ch.signal(Signal::Term).unwrap(), Some(0));
        ch.write(p.command_line("stubborn").as_bytes(), &u).unwrap();
        while ch.foreground_job() != Some(true) {
            std::thread::sleep(Duration::from_millis(1));
        }
        ch.write(&[0x03], &u).unwrap();
        assert_eq!(ch.signal(Signal::Term).unwrap(), Some(1));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(ch.foreground_job(), Some(true), "INT and TERM are ignored");
        ch.signal(Signal::Kill).unwrap();
        let got = read_all(&mut *out, false);
        let all: Vec<u8> = got.into_iter().flat_map(|(_, b)| b).collect();
        assert_eq!(
            String::from_utf8_lossy(&all),
            "\x1edtest:cd:0\x1e\x1edtest:cd:s\x1e\x1edtest:cd:137\x1e"
        );
        ch.close(Duration::ZERO).unwrap();
        assert!(matches!(
            out.read(&mut [0; 8], Instant::now()),
            Ok(ReadEvent::Closed { .. })
        ));
    }
}
