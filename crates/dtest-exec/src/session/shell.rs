//! A tester's session: a shell behind a [`Channel`], read continuously by
//! its capture thread ([`super::capture`]), driven by the tester through a
//! few composable primitives: start a command, wait for its start or its
//! end, expect a pattern, send input, escalate signals, close.
//!
//! Every primitive that waits takes an [`Until`]: it returns within 100 ms
//! of the run's stop condition and at its deadline, whatever the session
//! does. None of them reads the session: the capture thread does, all the
//! time, so what the tester does never holds up the program under test.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dtest_trace::ExitStatus;

use super::capture::{self, CaptureSink, Shared};
use super::protocol::Protocol;
use super::{Channel, Result, SessionError, Signal, Until};
use crate::matcher::{Hit, Pattern};

pub use super::protocol::{shell_quote, status_from_shell, MarkerFilter, Segment};

/// The refusal of a `send` while no command runs: the shell would read
/// the bytes as a command line (and run a secret).
pub fn idle_send() -> SessionError {
    SessionError::Refused(
        "no command is running: `send` writes to a running command's input \
         (start one with `run`)"
            .into(),
    )
}

/// How an expect ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectEnd {
    /// The pattern matched.
    Hit(Hit),
    /// No command runs (it ended with this status, or none was started:
    /// `None`) and the output it left did not match.
    Ended(Option<ExitStatus>),
    /// The session ended (the shell exited with this status, or the
    /// connection was lost: the reason).
    Closed(Option<ExitStatus>, Option<String>),
    /// The deadline passed.
    TimedOut,
    /// The run is stopping (the reason).
    Stopped(String),
}

/// The result of [`ShellSession::expect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectResult {
    /// How it ended.
    pub end: ExpectEnd,
    /// Bytes of output that arrived while no expect waited and were dropped
    /// from the bounded backlog before this expect began (they are in the
    /// logs and the trace, but this expect could not search them).
    pub dropped: u64,
}

/// The result of [`ShellSession::terminate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminated {
    /// The signals sent, in order.
    pub sent: Vec<Signal>,
    /// Whether the command ended.
    pub ended: bool,
    /// Why the escalation stopped early (the run stops, the session ended).
    pub interrupted: Option<String>,
}

/// A shell driven through a [`Channel`] with the marker protocol, read
/// continuously by a capture thread.
pub struct ShellSession {
    ch: Box<dyn Channel>,
    proto: Protocol,
    shared: Arc<Shared>,
    capture: Option<JoinHandle<()>>,
    target: String,
    closed: bool,
}

impl std::fmt::Debug for ShellSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShellSession")
            .field("target", &self.target)
            .field("pty", &self.proto.is_pty())
            .finish_non_exhaustive()
    }
}

impl ShellSession {
    /// Starts capturing `ch` into `sink`, sets the shell up (echo, prompts)
    /// and waits until it answers, as `until` allows. Output printed before
    /// the shell is ready (login banners, rc-file noise) goes to
    /// [`CaptureSink::banner`], not treated as command output.
    pub fn start(
        mut ch: Box<dyn Channel>,
        sink: Box<dyn CaptureSink>,
        until: &Until,
    ) -> Result<ShellSession> {
        let target = ch.target();
        let output = ch.take_output()?;
        let proto = Protocol::new(ch.is_pty());
        let shared = Arc::new(Shared::default());
        shared.lock().pty = proto.is_pty();
        let handle = capture::spawn(&target, output, proto.decoder(), sink, Arc::clone(&shared))?;
        let mut s = ShellSession {
            ch,
            proto,
            shared,
            capture: Some(handle),
            target,
            closed: false,
        };
        if let Err(e) = s.handshake(until) {
            let _ = s.close(Duration::from_millis(100));
            return Err(e);
        }
        Ok(s)
    }

    fn handshake(&mut self, until: &Until) -> Result<()> {
        let init = self.proto.init_line();
        self.ch.write(init.as_bytes(), until)?;
        let mut st = self.shared.lock();
        loop {
            if st.ready {
                return Ok(());
            }
            let banner = String::from_utf8_lossy(&st.banner).trim().to_string();
            if let Some(closed) = &st.closed {
                let how = match (closed, &st.lost) {
                    (_, Some(l)) => format!("the connection was lost ({l})"),
                    (Some(s), _) => format!("the shell exited with status {s}"),
                    (None, _) => "the shell ended".to_string(),
                };
                return Err(SessionError::Closed(if banner.is_empty() {
                    format!("{how} before it was ready")
                } else {
                    format!("{how} before it was ready; it printed: {banner:?}")
                }));
            }
            match until.check("") {
                Err(SessionError::TimedOut(_)) => {
                    return Err(SessionError::TimedOut(format!(
                        "the shell did not answer dtest's protocol in time (is `shell` a \
                         POSIX shell?); it printed: {banner:?}"
                    )))
                }
                Err(e) => return Err(e),
                Ok(()) => {}
            }
            st = self.shared.wait_until(st, until.slice());
        }
    }

    /// Whether the session runs on a pty.
    pub fn is_pty(&self) -> bool {
        self.proto.is_pty()
    }

    /// The channel's target (`/bin/sh on local`).
    pub fn target(&self) -> String {
        self.target.clone()
    }

    /// Whether a command started by [`ShellSession::run`] has not ended yet.
    pub fn running(&self) -> bool {
        self.shared.lock().running
    }

    /// How the last command ended.
    pub fn last_exit(&self) -> Option<ExitStatus> {
        self.shared.lock().last_exit.clone()
    }

    /// Why the session is gone (the shell exited, the connection was lost),
    /// or `None` while it lives.
    pub fn gone(&self) -> Option<String> {
        let st = self.shared.lock();
        match (&st.closed, &st.lost) {
            (_, Some(l)) => Some(format!("the connection was lost: {l}")),
            (Some(Some(s)), _) => Some(format!("the session's shell exited (status {s})")),
            (Some(None), _) => Some("the session was closed".into()),
            (None, _) => None,
        }
    }

    /// The last `n` lines of output.
    pub fn last_lines(&self, n: usize) -> Vec<String> {
        self.shared.lock().last_lines(n)
    }

    /// The channel, for file transfers.
    pub fn channel(&mut self) -> &mut dyn Channel {
        &mut *self.ch
    }

    /// What closing stopped beyond the session ([`Channel::close_report`]).
    pub fn close_report(&self) -> Vec<String> {
        self.ch.close_report()
    }

    /// Starts `command` in the shell. The caller makes sure no command runs
    /// (see [`ShellSession::wait_end`]).
    pub fn run(&mut self, command: &str, until: &Until) -> Result<()> {
        if let Some(g) = self.gone() {
            return Err(SessionError::Closed(g));
        }
        {
            let mut st = self.shared.lock();
            st.running = true;
            st.started = false;
            st.last_exit = None;
        }
        let line = self.proto.command_line(command);
        self.ch.write(line.as_bytes(), until)
    }

    /// Writes `bytes` to the running command's input. Refused when no
    /// command runs: the shell would read the bytes as a command line (and
    /// run a secret). Waits until the shell has begun the command, so the
    /// bytes reach the command and not the shell's own input buffer.
    pub fn send(&mut self, bytes: &[u8], until: &Until) -> Result<()> {
        if let Some(g) = self.gone() {
            return Err(SessionError::Closed(g));
        }
        if !self.wait_started(until)? {
            return Err(idle_send());
        }
        self.ch.write(bytes, until)
    }

    /// Waits until the running command has started (its start marker was
    /// seen). `Ok(false)`: no command runs.
    pub fn wait_started(&self, until: &Until) -> Result<bool> {
        let mut st = self.shared.lock();
        loop {
            if !st.running {
                return Ok(false);
            }
            if st.started {
                return Ok(true);
            }
            if st.closed.is_some() {
                return Ok(false);
            }
            until.check("the shell did not begin the command")?;
            st = self.shared.wait_until(st, until.slice());
        }
    }

    /// Waits until no command runs; returns how the last one ended.
    pub fn wait_end(&self, until: &Until) -> Result<Option<ExitStatus>> {
        let mut st = self.shared.lock();
        loop {
            if !st.running {
                return Ok(st.last_exit.clone());
            }
            until.check("the command is still running")?;
            st = self.shared.wait_until(st, until.slice());
        }
    }

    /// Forgets the output no expect has consumed yet (a `poll` attempt
    /// looks at its own output only). It stays in the logs and the trace.
    pub fn discard_backlog(&self) {
        let mut st = self.shared.lock();
        st.backlog.clear();
        st.backlog_dropped = 0;
    }

    /// Waits until `pattern` matches the output received since the end of
    /// the previous match, the command ends without it, the session ends,
    /// or `until` says to give up.
    pub fn expect(&self, pattern: &Pattern, until: &Until) -> ExpectResult {
        let mut st = self.shared.lock();
        let dropped = std::mem::take(&mut st.backlog_dropped);
        let mut m = pattern.matcher();
        let backlog = std::mem::take(&mut st.backlog);
        if let Some(h) = m.feed(&backlog) {
            st.backlog = backlog[h.end..].to_vec();
            return ExpectResult {
                end: ExpectEnd::Hit(h),
                dropped,
            };
        }
        st.hit = None;
        st.matcher = Some(m);
        let end = loop {
            if let Some(h) = st.hit.take() {
                break ExpectEnd::Hit(h);
            }
            if let Some(c) = &st.closed {
                break ExpectEnd::Closed(c.clone(), st.lost.clone());
            }
            if !st.running {
                // Every byte the command wrote before its end marker has
                // been fed to the matcher: it cannot match any more.
                break ExpectEnd::Ended(st.last_exit.clone());
            }
            match until.check("") {
                Err(SessionError::Stopped(r)) => break ExpectEnd::Stopped(r),
                Err(_) => break ExpectEnd::TimedOut,
                Ok(()) => {}
            }
            st = self.shared.wait_until(st, until.slice());
        };
        st.matcher = None;
        ExpectResult { end, dropped }
    }

    /// Delivers `sig` to the running command: on a pty `INT` is the
    /// terminal's interrupt character (as a user's Ctrl-C), anything else
    /// goes through [`Channel::signal`]. Returns how many processes it
    /// reached, when known.
    pub fn signal(&mut self, sig: Signal, until: &Until) -> Result<Option<usize>> {
        if self.proto.is_pty() && sig == Signal::Int {
            self.ch.write(&[0x03], until)?;
            return Ok(None);
        }
        self.ch.signal(sig)
    }

    /// Stops the running command: `first`, then `TERM`, then `KILL`, each
    /// given `grace` (KILL 2 s) to end it, calling `on_send` before each
    /// signal (the runner records it). Waits first until the shell has begun
    /// the command (a signal sent before would miss it; on a pty a Ctrl-C
    /// would even flush the command line).
    pub fn terminate(
        &mut self,
        first: Signal,
        grace: Duration,
        until: &Until,
        on_send: &mut dyn FnMut(Signal),
    ) -> Terminated {
        let mut seq = vec![first];
        if first != Signal::Kill {
            for x in [Signal::Term, Signal::Kill] {
                if !seq.contains(&x) {
                    seq.push(x);
                }
            }
        }
        let mut out = Terminated {
            sent: Vec::new(),
            ended: false,
            interrupted: None,
        };
        let bounded =
            |d: Duration| Until::new(until.deadline.min(Instant::now() + d), until.stop.clone());
        match self.wait_started(&bounded(grace.max(Duration::from_secs(2)))) {
            Ok(_) => {}
            Err(SessionError::Stopped(r)) => out.interrupted = Some(r),
            Err(_) => {}
        }
        // On a pty, Ctrl-C must reach the command's job, not the shell:
        // give the shell time to hand the terminal to the job (after that,
        // a command made of shell builtins gets the Ctrl-C anyway). On a
        // loaded machine bash can take longer than half a second to fork
        // and hand over: wait up to the grace period (2 s at most).
        if first == Signal::Int && self.proto.is_pty() {
            let u = bounded(grace.clamp(Duration::from_millis(500), Duration::from_secs(2)));
            while self.running() && self.ch.foreground_job() == Some(false) && u.check("").is_ok() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        for sig in seq {
            if !self.running() || out.interrupted.is_some() {
                break;
            }
            on_send(sig);
            out.sent.push(sig);
            let wait = if sig == Signal::Kill {
                Duration::from_secs(2)
            } else {
                grace
            };
            let u = bounded(wait);
            // The shell prints the start marker just before it forks the
            // command: a signal may find no process yet. Deliver it again
            // until it reaches one.
            loop {
                match self.signal(sig, &u) {
                    Ok(Some(0)) if self.running() && u.check("").is_ok() => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    _ => break,
                }
            }
            // A paused command receives nothing but KILL until continued.
            if sig != Signal::Kill {
                let _ = self.ch.signal(Signal::Cont);
            }
            match self.wait_end(&u) {
                Ok(_) => {}
                Err(SessionError::Stopped(r)) => out.interrupted = Some(r),
                Err(_) => {}
            }
        }
        out.ended = !self.running();
        out
    }

    /// Stops everything and closes the channel, then waits until the
    /// capture thread has read what was still in flight; returns the
    /// shell's status. Idempotent.
    pub fn close(&mut self, grace: Duration) -> Result<Option<ExitStatus>> {
        if self.closed {
            return Ok(self.shared.lock().closed.clone().flatten());
        }
        self.closed = true;
        {
            // Before the channel closes: a read failing because dtest closed
            // the channel is not a lost connection.
            let mut st = self.shared.lock();
            if st.shutdown.is_none() {
                st.shutdown = Some(Instant::now());
            }
        }
        let r = self.ch.close(grace);
        if let Some(h) = self.capture.take() {
            // The capture ends at the end of the output, or within its
            // drain time after the shutdown.
            let _ = h.join();
        }
        let st = self.shared.lock();
        let status = match &st.closed {
            Some(Some(s)) => Some(s.clone()),
            _ => r?,
        };
        Ok(status)
    }
}

impl Drop for ShellSession {
    fn drop(&mut self) {
        let _ = self.close(Duration::from_millis(100));
    }
}
