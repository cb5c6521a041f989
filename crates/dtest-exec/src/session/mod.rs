//! Sessions: the transport-level [`Channel`] trait, the [`Transport`]
//! registry keyed by host URL scheme, and the shell protocol above them.
//!
//! A tester drives one *session*: a shell (default `/bin/sh`) on some host,
//! on a pseudo-terminal by default. The code is split in two layers so that
//! every transport (local, SSH, a test mock) reuses the same shell logic:
//!
//! * **Transport level** ([`Channel`], [`Output`], [`Transport`]): moves
//!   bytes and files. A channel is two halves: its [`Output`] (taken once,
//!   right after open, by the session's capture thread, which reads it from
//!   open to close whatever the tester does) and the control half the tester
//!   keeps: it writes bytes to the shell's input, delivers a signal to the
//!   *running command* (not to the shell), copies files, and on close kills
//!   everything the session started. It knows nothing about commands,
//!   markers or exit statuses of commands. Every blocking call takes an
//!   [`Until`] (a deadline and the run's stop probe) or a bounded time.
//! * **Shell protocol** ([`shell::ShellSession`]): how a command is started
//!   in the shell, how its end and exit status are learned (a per-session
//!   random nonce marker printed by the shell after each command and removed
//!   from the output stream, even when split across chunks), `stty -echo` on
//!   a pty, the terminal's interrupt character for `INT`, and the
//!   `INT -> TERM -> KILL` escalation of `terminate`.
//!
//! A new transport (the `dtest-ssh` crate, for example) implements
//! [`Transport`] and [`Channel`] only, and is registered in a
//! [`TransportRegistry`] under its URL scheme (`ssh`, `openssh`) by the CLI.
//! The built-in `local` transport ([`local::LocalTransport`]) forks the shell
//! on this machine; [`mock::MockChannel`] is a scripted channel for unit
//! tests of the layers above.

pub mod capture;
pub mod local;
pub mod mock;
pub mod protocol;
pub mod shell;
pub mod sys;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dtest_trace::{ExitStatus, Stream};

/// Errors of the session layer. Messages are lowercase fragments that read
/// well after "session failed: ".
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The host URL has a scheme no transport is registered for.
    #[error("unknown host scheme `{scheme}` in `{url}` (known: {known})")]
    UnknownScheme {
        /// The URL as written.
        url: String,
        /// Its scheme.
        scheme: String,
        /// The registered schemes, comma-separated.
        known: String,
    },
    /// The host URL is malformed.
    #[error("bad host url `{url}`: {reason}")]
    BadUrl {
        /// The URL as written.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Connecting or starting the shell failed.
    #[error("cannot open session on {target}: {reason}")]
    Open {
        /// What was being opened (`/bin/sh on local`).
        target: String,
        /// Why it failed.
        reason: String,
    },
    /// The session (the shell, the connection) is gone.
    #[error("session closed: {0}")]
    Closed(String),
    /// A file transfer failed.
    #[error("{op} {path}: {reason}")]
    Transfer {
        /// `put` or `get`.
        op: &'static str,
        /// The path that failed.
        path: String,
        /// Why it failed.
        reason: String,
    },
    /// An I/O error on the transport.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A deadline passed (`what` was still not done).
    #[error("{0}")]
    TimedOut(String),
    /// The operation makes no sense in the session's state (`send` while no
    /// command runs).
    #[error("{0}")]
    Refused(String),
    /// The run is stopping (Ctrl-C, SIGTERM, the run's timeout, abort-all).
    #[error("{0}")]
    Stopped(String),
    /// Anything else a transport wants to report.
    #[error("{0}")]
    Other(String),
}

/// Tells whether the run is stopping, and why (`interrupted by SIGINT`).
/// Transports check it in every wait, at least every 100 ms.
#[derive(Clone, Default)]
pub struct StopProbe(Option<Arc<dyn Fn() -> Option<String> + Send + Sync>>);

impl fmt::Debug for StopProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "StopProbe(..)"
        } else {
            "StopProbe(never)"
        })
    }
}

impl StopProbe {
    /// A probe that never says stop.
    pub fn never() -> StopProbe {
        StopProbe(None)
    }

    /// A probe asking `f`.
    pub fn new(f: impl Fn() -> Option<String> + Send + Sync + 'static) -> StopProbe {
        StopProbe(Some(Arc::new(f)))
    }

    /// Why the run stops, if it does.
    pub fn reason(&self) -> Option<String> {
        self.0.as_ref().and_then(|f| f())
    }
}

/// Until when a blocking operation may wait: its deadline, and the run's
/// stop probe. [`Until::check`] is the one test every wait loop makes.
#[derive(Clone, Debug)]
pub struct Until {
    /// The operation's deadline.
    pub deadline: Instant,
    /// The run's stop condition.
    pub stop: StopProbe,
}

impl Until {
    /// A deadline with the run's stop probe.
    pub fn new(deadline: Instant, stop: StopProbe) -> Until {
        Until { deadline, stop }
    }

    /// `d` from now, with no stop probe (tests, clean-up).
    pub fn after(d: Duration) -> Until {
        Until::new(Instant::now() + d, StopProbe::never())
    }

    /// `Err(Stopped)` when the run stops, `Err(TimedOut)` past the deadline
    /// (saying `what` was not done), `Ok` otherwise.
    pub fn check(&self, what: &str) -> Result<()> {
        if let Some(r) = self.stop.reason() {
            return Err(SessionError::Stopped(r));
        }
        if Instant::now() >= self.deadline {
            return Err(SessionError::TimedOut(what.to_string()));
        }
        Ok(())
    }

    /// The end of the next wait slice: the deadline, or 100 ms from now if
    /// sooner (so the stop probe is asked again within 100 ms).
    pub fn slice(&self) -> Instant {
        self.deadline
            .min(Instant::now() + Duration::from_millis(100))
    }

    /// [`Until::slice`] as milliseconds from now, for `poll(2)`.
    pub fn slice_ms(&self) -> i32 {
        self.slice()
            .saturating_duration_since(Instant::now())
            .as_millis()
            .max(1) as i32
    }
}

/// Result of the session layer.
pub type Result<T, E = SessionError> = std::result::Result<T, E>;

/// A signal a tester can deliver to the running command. The names are the
/// ones scenario files use (`terminate = "INT"`) and the trace records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Int,
    /// SIGTERM.
    Term,
    /// SIGKILL.
    Kill,
    /// SIGHUP.
    Hup,
    /// SIGQUIT.
    Quit,
    /// SIGUSR1.
    Usr1,
    /// SIGUSR2.
    Usr2,
    /// SIGSTOP: the `pause` step. It stops a process without ending it, so
    /// `terminate` refuses it.
    Stop,
    /// SIGCONT: the `resume` step (and cleanup of a paused command).
    Cont,
}

impl Signal {
    /// Every signal, for parsing and messages.
    pub const ALL: [Signal; 9] = [
        Signal::Int,
        Signal::Term,
        Signal::Kill,
        Signal::Hup,
        Signal::Quit,
        Signal::Usr1,
        Signal::Usr2,
        Signal::Stop,
        Signal::Cont,
    ];

    /// The signals `terminate` may begin with: every one but `STOP` and
    /// `CONT`, which do not end a process (`pause` and `resume` send them).
    pub const TERMINATING: [Signal; 7] = [
        Signal::Int,
        Signal::Term,
        Signal::Kill,
        Signal::Hup,
        Signal::Quit,
        Signal::Usr1,
        Signal::Usr2,
    ];

    /// Whether `terminate` may send this signal first (not `STOP`/`CONT`).
    pub fn terminates(self) -> bool {
        !matches!(self, Signal::Stop | Signal::Cont)
    }

    /// The name without `SIG` (`INT`).
    pub fn name(self) -> &'static str {
        match self {
            Signal::Int => "INT",
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
            Signal::Hup => "HUP",
            Signal::Quit => "QUIT",
            Signal::Usr1 => "USR1",
            Signal::Usr2 => "USR2",
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
        }
    }

    /// Parses `INT`, `SIGINT`, `int` or a number (`2`); `CONTINUE` is
    /// `CONT`.
    pub fn parse(s: &str) -> Option<Signal> {
        let u = s.trim().to_ascii_uppercase();
        let u = u.strip_prefix("SIG").unwrap_or(&u);
        if let Ok(n) = u.parse::<i32>() {
            return Signal::from_number(n);
        }
        if u == "CONTINUE" {
            return Some(Signal::Cont);
        }
        Signal::ALL.iter().copied().find(|x| x.name() == u)
    }

    /// The POSIX signal number on this platform.
    pub fn number(self) -> i32 {
        match self {
            Signal::Int => libc::SIGINT,
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
            Signal::Hup => libc::SIGHUP,
            Signal::Quit => libc::SIGQUIT,
            Signal::Usr1 => libc::SIGUSR1,
            Signal::Usr2 => libc::SIGUSR2,
            Signal::Stop => libc::SIGSTOP,
            Signal::Cont => libc::SIGCONT,
        }
    }

    /// The signal with this number, if it is one of [`Signal::ALL`].
    pub fn from_number(n: i32) -> Option<Signal> {
        Signal::ALL.iter().copied().find(|x| x.number() == n)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Name of a signal number for exit statuses (`INT`, `SEGV`, or the number).
pub fn signal_name(n: i32) -> String {
    if let Some(s) = Signal::from_number(n) {
        return s.name().to_string();
    }
    match n {
        libc::SIGSEGV => "SEGV".into(),
        libc::SIGABRT => "ABRT".into(),
        libc::SIGPIPE => "PIPE".into(),
        libc::SIGALRM => "ALRM".into(),
        libc::SIGBUS => "BUS".into(),
        libc::SIGFPE => "FPE".into(),
        libc::SIGILL => "ILL".into(),
        _ => n.to_string(),
    }
}

/// A parsed host URL: `local`, `ssh://user@host:port`, `openssh://alias`.
///
/// The scheme selects the [`Transport`]; the rest is the transport's
/// business. A URL without `://` is a bare scheme (`local`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostUrl {
    /// The URL as written.
    pub raw: String,
    /// The scheme (`local`, `ssh`, `openssh`), lowercase.
    pub scheme: String,
    /// What follows `://` (empty for a bare scheme).
    pub rest: String,
}

impl HostUrl {
    /// Parses a host URL; only the syntax is checked here.
    pub fn parse(s: &str) -> Result<HostUrl> {
        let raw = s.trim().to_string();
        let bad = |reason: &str| SessionError::BadUrl {
            url: s.to_string(),
            reason: reason.to_string(),
        };
        if raw.is_empty() {
            return Err(bad("empty"));
        }
        let (scheme, rest) = match raw.split_once("://") {
            Some((a, b)) => (a.to_ascii_lowercase(), b.to_string()),
            None => (raw.to_ascii_lowercase(), String::new()),
        };
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
        {
            return Err(bad("expected `local` or `SCHEME://...`"));
        }
        if raw.contains("://") && rest.is_empty() {
            return Err(bad("nothing after `://`"));
        }
        Ok(HostUrl { raw, scheme, rest })
    }

    /// The host part used in actor names (`tester1@aurore`): `local` for the
    /// local scheme, otherwise the host of `[user@]host[:port][/...]`.
    pub fn short_host(&self) -> String {
        if self.rest.is_empty() {
            return self.scheme.clone();
        }
        let r = self.rest.split('/').next().unwrap_or("");
        let r = r.rsplit_once('@').map(|(_, h)| h).unwrap_or(r);
        let h = if let Some(stripped) = r.strip_prefix('[') {
            stripped.split(']').next().unwrap_or(stripped)
        } else {
            r.split(':').next().unwrap_or(r)
        };
        if h.is_empty() {
            self.scheme.clone()
        } else {
            h.to_string()
        }
    }
}

impl fmt::Display for HostUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Everything a transport needs to open a tester's session.
#[derive(Clone, Debug)]
pub struct OpenSpec {
    /// The tester's name (for messages and log names).
    pub tester: String,
    /// Where to open the session.
    pub host: HostUrl,
    /// The shell to start (`/bin/sh`).
    pub shell: String,
    /// Whether the shell runs on a pseudo-terminal (stdout and stderr are
    /// then one stream) or on pipes (two streams).
    pub pty: bool,
    /// Working directory of the shell; relative `put`/`get` paths are
    /// relative to it. `None`: the transport's default (the controller's
    /// current directory locally, the login directory remotely).
    pub cwd: Option<String>,
    /// Whether a missing `cwd` is created (local sessions always do).
    pub create_cwd: bool,
    /// Extra environment variables for the shell.
    pub env: Vec<(String, String)>,
    /// Deadline for connecting and starting the shell.
    pub connect_timeout: Duration,
    /// Transport-specific keys of the tester (`identity`, `password_env`,
    /// `known_hosts`, `host_key`, `x11`, `ssh_config`, ...), values as
    /// strings (`x11 = true` gives `"true"`). The scenario loader passes the
    /// tester's keys it does not know itself here untouched; each transport
    /// reads the keys it knows (the SSH transports reject keys they do not
    /// know, naming them).
    pub options: BTreeMap<String, String>,
    /// The run's stop condition: `open` gives up within 100 ms of it
    /// (Ctrl-C while connecting to a server that never answers).
    pub stop: StopProbe,
}

/// One result of [`Channel::read`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadEvent {
    /// `n` bytes of output were stored at the start of the buffer.
    Data {
        /// Which stream they came from (always stdout on a pty).
        stream: Stream,
        /// How many bytes.
        n: usize,
    },
    /// Nothing arrived before the deadline.
    Timeout,
    /// The shell ended (or the connection dropped) and every byte of its
    /// output has been read; `status` is the shell's own exit status when
    /// known.
    Closed {
        /// How the shell ended, if known.
        status: Option<ExitStatus>,
    },
}

/// What a file transfer did: the resolved paths, size and SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// Path on the controller.
    pub local: PathBuf,
    /// Path on the session's host, resolved against the session's cwd.
    pub remote: String,
    /// Bytes copied.
    pub size: u64,
    /// SHA-256 of the content.
    pub sha256: [u8; 32],
}

/// The output half of a channel: what the shell and its commands print.
///
/// Taken once from the channel ([`Channel::take_output`]) by the session's
/// capture thread, which reads it from open to close, so a program under
/// test never blocks on its output because its tester is busy elsewhere.
pub trait Output: Send {
    /// Reads the next chunk of output into `buf` (from its start; at most
    /// `buf.len()` bytes), waiting until `deadline` at most. On a pty all
    /// output is [`Stream::Stdout`]. After [`ReadEvent::Closed`] every later
    /// call returns `Closed` again. A transport that has two streams returns
    /// stderr data before stdout data when both are ready.
    fn read(&mut self, buf: &mut [u8], deadline: Instant) -> Result<ReadEvent>;
}

/// A transport-level connection to one shell: bytes in, output chunks out
/// (through its [`Output`] half), signals, files, and a close that leaves
/// nothing behind.
///
/// Implementations must be `Send` (a tester thread owns its channel) and must
/// never block past a deadline they are given. Every process a channel
/// started, on whatever host, must be gone after [`Channel::close`] returns,
/// and also when the channel is dropped without `close`; then its output
/// half reads to its end and reports [`ReadEvent::Closed`].
pub trait Channel: Send {
    /// A short description of what this channel is (`/bin/sh on local`,
    /// `/bin/sh on ssh://bob@aurore:22`): the `open` event's target.
    fn target(&self) -> String;

    /// Whether the shell runs on a pseudo-terminal. The shell protocol then
    /// turns echo off and uses the terminal's interrupt character for `INT`.
    fn is_pty(&self) -> bool;

    /// Hands over the output half. Called once, right after open; a second
    /// call is an error.
    fn take_output(&mut self) -> Result<Box<dyn Output>>;

    /// Writes all of `bytes` to the shell's standard input (the terminal on
    /// a pty), waiting for room at most as `until` allows. Data written while
    /// a command runs reaches that command.
    fn write(&mut self, bytes: &[u8], until: &Until) -> Result<()>;

    /// Delivers `sig` to the command running in the shell, and to every
    /// process it started, but not to the shell itself. Returns how many
    /// processes it reached when the transport can tell (`Some(0)`: none
    /// yet, the command has not been forked), `None` otherwise. (The `INT`
    /// of a pty is sent by the shell protocol as the interrupt character;
    /// this is the fallback and the escalation.)
    fn signal(&mut self, sig: Signal) -> Result<Option<usize>>;

    /// On a pty: whether a job other than the shell holds the terminal
    /// and runs another program than the shell (the command has really
    /// started), or `None` when the transport cannot tell (the local pty
    /// asks the kernel; the SSH transports ask the host's `/proc`). The shell protocol sends the interrupt character only
    /// then: a Ctrl-C that reaches the shell itself between two commands
    /// makes bash exit and dash stop reading. Default: `None`.
    fn foreground_job(&mut self) -> Option<bool> {
        None
    }

    /// Copies the controller's file `local` to `remote` on the session's
    /// host (relative to the session's cwd), creating or truncating it,
    /// giving up as `until` says. Only regular files are copied.
    fn put(&mut self, local: &Path, remote: &str, until: &Until) -> Result<FileInfo>;

    /// Copies `remote` (relative to the session's cwd) from the session's
    /// host to the controller's file `local`, creating or truncating it,
    /// giving up as `until` says. Only regular files are copied.
    fn get(&mut self, remote: &str, local: &Path, until: &Until) -> Result<FileInfo>;

    /// Ends the session: stops the shell and every process it started
    /// (signals, then `KILL` after `grace`), closes the connection, and
    /// returns the shell's exit status when known. Idempotent. Bounded in
    /// time (about `grace` plus a few seconds at most).
    fn close(&mut self, grace: Duration) -> Result<Option<ExitStatus>>;

    /// What `close` stopped beyond the session, one line each ("stopped 1
    /// process that left its session: pid 2014 sleep (on
    /// ssh://bob@aurore:22)"), or what it could not stop: for the tester's
    /// log, the TAP output and the close event. Empty before `close`, and
    /// for transports with nothing to report (the runner itself stops what
    /// left a session on the controller).
    fn close_report(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Opens channels for one host URL scheme (`local`, `ssh`, ...).
pub trait Transport: Send + Sync {
    /// The URL scheme this transport serves (lowercase, no `://`).
    fn scheme(&self) -> &str;

    /// Checks a URL of this scheme without connecting (used when a scenario
    /// file or `--host` is validated, before anything runs). The error is one
    /// line naming what is wrong.
    fn check_url(&self, url: &HostUrl) -> Result<()> {
        let _ = url;
        Ok(())
    }

    /// The tester keys this transport takes besides dtest's own (SSH's
    /// `identity`, `x11`, ...), passed in [`OpenSpec::options`]. The loader
    /// refuses any other key, where it is written.
    fn option_keys(&self) -> &'static [&'static str] {
        &[]
    }

    /// Checks the value of one of [`Transport::option_keys`] (its variables
    /// expanded) when the scenario is loaded; the error is one line.
    fn check_option(&self, key: &str, value: &str) -> std::result::Result<(), String> {
        let _ = (key, value);
        Ok(())
    }

    /// Connects (when remote) and starts the shell described by `spec`.
    fn open(&self, spec: &OpenSpec) -> Result<Box<dyn Channel>>;
}

/// The transports known to a run, keyed by scheme. `local` is built in;
/// the CLI registers the others (SSH) before running.
#[derive(Clone)]
pub struct TransportRegistry {
    map: BTreeMap<String, Arc<dyn Transport>>,
}

impl fmt::Debug for TransportRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportRegistry")
            .field("schemes", &self.map.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for TransportRegistry {
    fn default() -> Self {
        TransportRegistry::with_local()
    }
}

impl TransportRegistry {
    /// A registry with no transport at all (tests).
    pub fn empty() -> TransportRegistry {
        TransportRegistry {
            map: BTreeMap::new(),
        }
    }

    /// A registry with the built-in `local` transport.
    pub fn with_local() -> TransportRegistry {
        let mut r = TransportRegistry::empty();
        r.register(Arc::new(local::LocalTransport));
        r
    }

    /// Adds (or replaces) the transport for its scheme.
    pub fn register(&mut self, t: Arc<dyn Transport>) {
        self.map.insert(t.scheme().to_ascii_lowercase(), t);
    }

    /// The registered schemes, sorted.
    pub fn schemes(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }

    /// The transport for a URL, or [`SessionError::UnknownScheme`].
    pub fn transport(&self, url: &HostUrl) -> Result<&Arc<dyn Transport>> {
        self.map
            .get(&url.scheme)
            .ok_or_else(|| SessionError::UnknownScheme {
                url: url.raw.clone(),
                scheme: url.scheme.clone(),
                known: self.schemes().join(", "),
            })
    }

    /// Parses and checks a host URL against the registered transports.
    pub fn check(&self, url: &str) -> Result<HostUrl> {
        let u = HostUrl::parse(url)?;
        self.transport(&u)?.check_url(&u)?;
        Ok(u)
    }

    /// Opens a channel for `spec` with the transport of its scheme.
    pub fn open(&self, spec: &OpenSpec) -> Result<Box<dyn Channel>> {
        self.transport(&spec.host)?.open(spec)
    }
}

/// SHA-256 and size of a byte stream, for transports' [`FileInfo`].
pub fn hash_reader(
    r: impl std::io::Read,
    sink: impl std::io::Write,
) -> std::io::Result<(u64, [u8; 32])> {
    hash_copy(r, sink, &Until::after(Duration::from_secs(u32::MAX as u64))).map_err(|e| match e {
        SessionError::Io(e) => e,
        other => std::io::Error::other(other.to_string()),
    })
}

/// Copies a byte stream into `sink` computing its size and SHA-256, and
/// checks `until` between 64 KiB pieces: a transfer gives up at its step's
/// deadline or when the run stops.
pub fn hash_copy(
    mut r: impl std::io::Read,
    mut sink: impl std::io::Write,
    until: &Until,
) -> Result<(u64, [u8; 32])> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut n = 0u64;
    loop {
        until.check("the transfer did not finish in time")?;
        let k = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        h.update(&buf[..k]);
        sink.write_all(&buf[..k])?;
        n += k as u64;
    }
    sink.flush()?;
    Ok((n, h.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_urls() {
        let u = HostUrl::parse("local").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.short_host()),
            ("local", "local".into())
        );
        let u = HostUrl::parse("ssh://bob@aurore:2222").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.short_host()),
            ("ssh", "aurore".into())
        );
        let u = HostUrl::parse("openssh://alias").unwrap();
        assert_eq!(u.short_host(), "alias");
        assert!(HostUrl::parse("ssh://").is_err());
        assert!(HostUrl::parse("").is_err());
        let r = TransportRegistry::with_local();
        assert!(r.check("local").is_ok());
        let e = r.check("ftp://x").unwrap_err().to_string();
        assert!(e.contains("unknown host scheme `ftp`"), "{e}");
    }

    #[test]
    fn signals_parse() {
        assert_eq!(Signal::parse("int"), Some(Signal::Int));
        assert_eq!(Signal::parse("SIGTERM"), Some(Signal::Term));
        assert_eq!(Signal::parse("9"), Some(Signal::Kill));
        assert_eq!(Signal::parse("FOO"), None);
        assert_eq!(Signal::parse("sigstop"), Some(Signal::Stop));
        assert_eq!(Signal::parse("CONT"), Some(Signal::Cont));
        assert_eq!(Signal::parse("SIGCONT"), Some(Signal::Cont));
        assert_eq!(Signal::parse("continue"), Some(Signal::Cont));
        assert_eq!(
            Signal::parse(&libc::SIGSTOP.to_string()),
            Some(Signal::Stop)
        );
        assert_eq!(
            Signal::parse(&libc::SIGCONT.to_string()),
            Some(Signal::Cont)
        );
        // `kill -CONT` and `kill -STOP` are the names `kill(1)` takes.
        assert_eq!(Signal::Cont.name(), "CONT");
        assert_eq!(Signal::Stop.name(), "STOP");
        assert_eq!(signal_name(libc::SIGSTOP), "STOP");
        for s in Signal::ALL {
            assert_eq!(Signal::parse(s.name()), Some(s));
            assert_eq!(Signal::from_number(s.number()), Some(s));
            assert_eq!(s.terminates(), Signal::TERMINATING.contains(&s));
        }
        assert!(!Signal::Stop.terminates() && !Signal::Cont.terminates());
    }
}
