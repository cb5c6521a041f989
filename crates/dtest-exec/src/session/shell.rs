//! The shell protocol, above any [`Channel`]: starting commands in the
//! shell, learning when they end and with what status, interrupting them.
//!
//! Every session gets a random nonce. The shell is made to print a *marker*
//! `RS "dtest:" NONCE ":" STATUS RS` (RS is the byte 0x1e) each time a
//! command ends:
//!
//! * on a pty the shell is interactive, so the marker is its prompt (`PS1`,
//!   which shells expand with `$?` in it). A prompt is printed even when a
//!   command line is aborted by Ctrl-C, which a `; printf` suffix is not.
//!   Echo is turned off with `stty -echo`, `PS2` is emptied.
//! * on pipes the shell is not interactive: each command line is followed
//!   by `; printf MARKER "$?"`.
//!
//! Command lines are passed through `eval '...'` (single-quoted), so a
//! command may hold newlines, comments or quotes and still yields exactly one
//! marker. Markers are removed from stdout by a streaming [`MarkerFilter`]
//! that finds them even when a read splits one in two; they never reach the
//! expect matcher, the logs or the trace.

use std::time::{Duration, Instant};

use dtest_trace::{ExitStatus, Stream};

use super::{signal_name, Channel, ReadEvent, Result, SessionError, Signal};

/// The byte that opens and closes a marker (ASCII record separator).
const RS: u8 = 0x1e;

/// One piece of what a session produced, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Output bytes of a stream (markers removed).
    Output(Stream, &'a [u8]),
    /// The running command ended with this status.
    Exit(ExitStatus),
    /// The shell itself ended (or the connection dropped).
    Closed(Option<ExitStatus>),
}

/// A segment produced by [`MarkerFilter::feed`].
#[derive(Debug, PartialEq, Eq)]
pub enum Segment<'a> {
    /// Plain output.
    Data(&'a [u8]),
    /// A marker with the status the shell printed in it.
    Marker(i32),
    /// The start marker: the shell has read a command line and begins it.
    Started,
}

/// Removes the markers of one nonce from a byte stream, finding markers
/// split across chunks; each byte is looked at once, and at most one
/// marker's length is held back between chunks.
#[derive(Debug, Clone)]
pub struct MarkerFilter {
    /// `RS "dtest:" NONCE ":"`.
    prefix: Vec<u8>,
    hold: Vec<u8>,
}

enum Parse {
    Marker(i32, usize),
    Started(usize),
    Incomplete,
    NotMarker,
}

impl MarkerFilter {
    /// Longest status text accepted in a marker.
    const MAX_DIGITS: usize = 11;

    /// A filter for markers of `nonce`.
    pub fn new(nonce: &str) -> MarkerFilter {
        let mut prefix = vec![RS];
        prefix.extend_from_slice(b"dtest:");
        prefix.extend_from_slice(nonce.as_bytes());
        prefix.push(b':');
        MarkerFilter {
            prefix,
            hold: Vec::new(),
        }
    }

    fn parse(&self, d: &[u8]) -> Parse {
        let p = &self.prefix;
        let k = d.len().min(p.len());
        if d[..k] != p[..k] {
            return Parse::NotMarker;
        }
        if d.len() < p.len() {
            return Parse::Incomplete;
        }
        let rest = &d[p.len()..];
        match rest {
            [b's'] => return Parse::Incomplete,
            [b's', RS, ..] => return Parse::Started(p.len() + 2),
            _ => {}
        }
        let mut i = 0;
        if rest.first() == Some(&b'-') {
            i = 1;
        }
        while i < rest.len() && rest[i].is_ascii_digit() {
            i += 1;
            if i > Self::MAX_DIGITS {
                return Parse::NotMarker;
            }
        }
        if i == rest.len() {
            return Parse::Incomplete;
        }
        if rest[i] != RS || i == 0 {
            return Parse::NotMarker;
        }
        let Ok(n) = std::str::from_utf8(&rest[..i])
            .unwrap_or("x")
            .parse::<i32>()
        else {
            return Parse::NotMarker;
        };
        Parse::Marker(n, p.len() + i + 1)
    }

    /// Feeds a chunk; calls `out` with its data and markers in order.
    pub fn feed(&mut self, chunk: &[u8], out: &mut dyn FnMut(Segment<'_>)) {
        if self.hold.is_empty() {
            self.scan(chunk, out);
        } else {
            // Rare: the previous chunk ended inside a possible marker.
            let mut data = std::mem::take(&mut self.hold);
            data.extend_from_slice(chunk);
            self.scan(&data, out);
        }
    }

    fn scan(&mut self, data: &[u8], out: &mut dyn FnMut(Segment<'_>)) {
        let mut i = 0;
        while i < data.len() {
            let Some(k) = memchr::memchr(RS, &data[i..]) else {
                out(Segment::Data(&data[i..]));
                return;
            };
            let p = i + k;
            if p > i {
                out(Segment::Data(&data[i..p]));
            }
            match self.parse(&data[p..]) {
                Parse::Marker(n, len) => {
                    out(Segment::Marker(n));
                    i = p + len;
                }
                Parse::Started(len) => {
                    out(Segment::Started);
                    i = p + len;
                }
                Parse::Incomplete => {
                    self.hold = data[p..].to_vec();
                    return;
                }
                Parse::NotMarker => {
                    out(Segment::Data(&data[p..p + 1]));
                    i = p + 1;
                }
            }
        }
    }

    /// Returns what is held back (at the end of the stream).
    pub fn take_held(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.hold)
    }
}

/// The exit status a shell's `$?` stands for: above 128 a signal.
pub fn status_from_shell(n: i32) -> ExitStatus {
    if n > 128 && n < 128 + 65 {
        ExitStatus::Signal(signal_name(n - 128))
    } else {
        ExitStatus::Code(n)
    }
}

/// Quotes `s` for a POSIX shell (single quotes).
pub fn shell_quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('\'');
    for c in s.chars() {
        if c == '\'' {
            q.push_str("'\\''");
        } else {
            q.push(c);
        }
    }
    q.push('\'');
    q
}

/// A random nonce of 16 hex digits.
pub fn new_nonce() -> String {
    let mut b = [0u8; 8];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_ok();
    if !ok {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        b = (t ^ ((std::process::id() as u64) << 32)).to_le_bytes();
    }
    dtest_trace::model::hex(&b)
}

/// A shell driven through a [`Channel`] with the marker protocol.
pub struct ShellSession {
    ch: Box<dyn Channel>,
    pty: bool,
    nonce: String,
    filter: MarkerFilter,
    buf: Vec<u8>,
    running: bool,
    /// The running command's line has been read by the shell (its start
    /// marker was seen): signals and the interrupt character now reach it.
    started: bool,
    closed: Option<Option<ExitStatus>>,
}

impl std::fmt::Debug for ShellSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShellSession")
            .field("target", &self.ch.target())
            .field("pty", &self.pty)
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

/// Size of the read buffer: one chunk of output.
pub const CHUNK: usize = 256 << 10;

impl ShellSession {
    /// Sets the shell up (echo, prompts) and waits until it is ready, at
    /// most until `deadline`. Output printed before the shell is ready (login
    /// banners, rc-file noise) is returned, not treated as command output.
    pub fn start(ch: Box<dyn Channel>, deadline: Instant) -> Result<(ShellSession, Vec<u8>)> {
        let nonce = new_nonce();
        let pty = ch.is_pty();
        let mut s = ShellSession {
            ch,
            pty,
            filter: MarkerFilter::new(&nonce),
            nonce,
            buf: vec![0; CHUNK],
            running: true,
            started: true,
            closed: None,
        };
        let init = if pty {
            format!(
                "stty -echo 2>/dev/null; bind 'set enable-bracketed-paste off' 2>/dev/null; \
                 PROMPT_COMMAND=''; PS2=''; PS1=\"$(printf '\\036')dtest:{n}:\\$?$(printf '\\036')\"\n",
                n = s.nonce
            )
        } else {
            format!("{}\n", s.marker_printf("0"))
        };
        s.ch.write(init.as_bytes())?;
        let mut banner = Vec::new();
        while s.running {
            let mut closed = None;
            let got = s.poll(deadline, &mut |p| match p {
                Piece::Output(_, d) => banner.extend_from_slice(d),
                Piece::Exit(_) => {}
                Piece::Closed(st) => closed = Some(st),
            })?;
            if let Some(st) = closed {
                let st = st.map(|s| s.to_string()).unwrap_or_else(|| "?".into());
                return Err(SessionError::Closed(format!(
                    "the shell exited (status {st}) before it was ready: {}",
                    String::from_utf8_lossy(&banner).trim()
                )));
            }
            if !got && Instant::now() >= deadline {
                return Err(SessionError::Other(format!(
                    "the shell did not get ready in time; it printed: {:?}",
                    String::from_utf8_lossy(&banner)
                )));
            }
        }
        Ok((s, banner))
    }

    fn marker_printf(&self, status: &str) -> String {
        format!("printf '\\036dtest:%s:%d\\036' {} {status}", self.nonce)
    }

    /// Whether the session runs on a pty.
    pub fn is_pty(&self) -> bool {
        self.pty
    }

    /// The channel's target (`/bin/sh on local`).
    pub fn target(&self) -> String {
        self.ch.target()
    }

    /// Whether a command started by [`ShellSession::run`] has not ended yet.
    pub fn running(&self) -> bool {
        self.running
    }

    /// Whether the running command has started: the shell has read its
    /// line (a Ctrl-C sent before that would flush the line from the
    /// terminal and hit the shell instead).
    pub fn started(&self) -> bool {
        self.started
    }

    /// Whether a job other than the shell holds the terminal (see
    /// [`Channel::foreground_job`]).
    pub fn foreground_job(&mut self) -> Option<bool> {
        self.ch.foreground_job()
    }

    /// Whether the shell has ended.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// The channel, for file transfers.
    pub fn channel(&mut self) -> &mut dyn Channel {
        &mut *self.ch
    }

    /// The bytes written to the shell to run `command`: a start marker,
    /// the command, and (on pipes) the end marker with its status.
    pub fn command_line(&self, command: &str) -> String {
        let start = format!("printf '\\036dtest:%s:s\\036' {}", self.nonce);
        if self.pty {
            format!("{start}; eval {}\n", shell_quote(command))
        } else {
            format!(
                "{start}; eval {}; {}\n",
                shell_quote(command),
                self.marker_printf("\"$?\"")
            )
        }
    }

    /// Starts `command` in the shell. The caller makes sure no command runs.
    pub fn run(&mut self, command: &str) -> Result<()> {
        if let Some(st) = &self.closed {
            return Err(closed_error(st));
        }
        let line = self.command_line(command);
        self.ch.write(line.as_bytes())?;
        self.running = true;
        self.started = false;
        Ok(())
    }

    /// Writes bytes to the session (they reach the running command).
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        if let Some(st) = &self.closed {
            return Err(closed_error(st));
        }
        self.ch.write(bytes)
    }

    /// Delivers `sig` to the running command: on a pty `INT` is the
    /// terminal's interrupt character (as a user's Ctrl-C), anything else
    /// goes through [`Channel::signal`]. Nothing happens when no command runs.
    pub fn signal(&mut self, sig: Signal) -> Result<()> {
        if !self.running || self.closed.is_some() {
            return Ok(());
        }
        if self.pty && sig == Signal::Int {
            self.ch.write(&[0x03])
        } else {
            self.ch.signal(sig)
        }
    }

    /// Reads what the session produced until `deadline` at most, calling
    /// `f` with the pieces in order. Returns `false` when nothing arrived
    /// before the deadline.
    pub fn poll(&mut self, deadline: Instant, f: &mut dyn FnMut(Piece<'_>)) -> Result<bool> {
        if let Some(st) = &self.closed {
            f(Piece::Closed(st.clone()));
            return Ok(true);
        }
        match self.ch.read(&mut self.buf, deadline)? {
            ReadEvent::Data {
                stream: Stream::Stdout,
                n,
            } => {
                let running = &mut self.running;
                let started = &mut self.started;
                self.filter.feed(&self.buf[..n], &mut |seg| match seg {
                    Segment::Data(d) => f(Piece::Output(Stream::Stdout, d)),
                    Segment::Started => *started = true,
                    Segment::Marker(st) => {
                        // A marker with no command running is a spare prompt
                        // (an interrupt at the prompt): not an exit.
                        if *running {
                            *running = false;
                            *started = true;
                            f(Piece::Exit(status_from_shell(st)));
                        }
                    }
                });
                Ok(true)
            }
            ReadEvent::Data {
                stream: Stream::Stderr,
                n,
            } => {
                f(Piece::Output(Stream::Stderr, &self.buf[..n]));
                Ok(true)
            }
            ReadEvent::Timeout => Ok(false),
            ReadEvent::Closed { status } => {
                let held = self.filter.take_held();
                if !held.is_empty() {
                    f(Piece::Output(Stream::Stdout, &held));
                }
                if self.running {
                    self.running = false;
                    f(Piece::Exit(status.clone().unwrap_or(ExitStatus::Code(-1))));
                }
                self.closed = Some(status.clone());
                f(Piece::Closed(status));
                Ok(true)
            }
        }
    }

    /// Stops everything and closes the channel; returns the shell's status.
    pub fn close(&mut self, grace: Duration) -> Result<Option<ExitStatus>> {
        let st = self.ch.close(grace)?;
        self.running = false;
        if self.closed.is_none() {
            self.closed = Some(st.clone());
        }
        Ok(st)
    }
}

fn closed_error(st: &Option<ExitStatus>) -> SessionError {
    match st {
        Some(s) => SessionError::Closed(format!("the shell exited with status {s}")),
        None => SessionError::Closed("the shell is gone".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::mock::MockChannel;

    fn collect(f: &mut MarkerFilter, chunks: &[&[u8]]) -> (Vec<u8>, Vec<i32>) {
        let mut data = Vec::new();
        let mut marks = Vec::new();
        for c in chunks {
            f.feed(c, &mut |s| match s {
                Segment::Data(d) => data.extend_from_slice(d),
                Segment::Marker(n) => marks.push(n),
                Segment::Started => marks.push(-1000),
            });
        }
        (data, marks)
    }

    #[test]
    fn marker_split_at_every_position() {
        let stream = b"\x1edtest:abc:s\x1ehello\x1edtest:abc:17\x1eworld\x1e\x1edtest:abX";
        for cut in 0..stream.len() {
            let mut f = MarkerFilter::new("abc");
            let (d, m) = collect(&mut f, &[&stream[..cut], &stream[cut..]]);
            let mut all = d;
            all.extend(f.take_held());
            assert_eq!(m, vec![-1000, 17], "cut {cut}");
            assert_eq!(all, b"helloworld\x1e\x1edtest:abX".to_vec(), "cut {cut}");
        }
    }

    #[test]
    fn other_nonce_is_data() {
        let mut f = MarkerFilter::new("abc");
        let (mut d, m) = collect(&mut f, &[b"\x1edtest:zzz:1\x1e"]);
        d.extend(f.take_held());
        assert!(m.is_empty());
        assert_eq!(d, b"\x1edtest:zzz:1\x1e");
    }

    #[test]
    fn statuses() {
        assert_eq!(status_from_shell(0), ExitStatus::Code(0));
        assert_eq!(status_from_shell(130), ExitStatus::Signal("INT".into()));
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    /// A pipe-mode "shell" that answers each command line with its output
    /// and the marker taken from the line itself.
    fn fake_shell(line: &[u8]) -> Vec<(Stream, Vec<u8>)> {
        let s = String::from_utf8_lossy(line).to_string();
        let nonce = s
            .split("\\036' ")
            .nth(1)
            .and_then(|r| r.split([' ', ';']).next())
            .unwrap_or("")
            .to_string();
        let mut out = Vec::new();
        if let Some(cmd) = s.split("eval 'echo ").nth(1) {
            let word = cmd.split('\'').next().unwrap_or("");
            out.extend_from_slice(word.as_bytes());
            out.push(b'\n');
        }
        out.extend_from_slice(format!("\x1edtest:{nonce}:0\x1e").as_bytes());
        vec![(Stream::Stdout, out)]
    }

    #[test]
    fn run_through_mock() {
        let ch = MockChannel::new(false, 3, fake_shell);
        let deadline = Instant::now() + Duration::from_secs(5);
        let (mut s, banner) = ShellSession::start(Box::new(ch), deadline).unwrap();
        assert!(banner.is_empty());
        s.run("echo hi").unwrap();
        assert!(s.running());
        let mut out = Vec::new();
        let mut exit = None;
        while s.running() && Instant::now() < deadline {
            s.poll(deadline, &mut |p| match p {
                Piece::Output(_, d) => out.extend_from_slice(d),
                Piece::Exit(st) => exit = Some(st),
                Piece::Closed(_) => {}
            })
            .unwrap();
        }
        assert_eq!(out, b"hi\n");
        assert_eq!(exit, Some(ExitStatus::Code(0)));
    }
}
