//! Unix process plumbing shared by every transport that runs a local
//! process: the `local` transport (the shell itself) and dtest-ssh's
//! `openssh://` (the system `ssh` client).
//!
//! * [`spawn_in_session`] starts a process as the leader of a new Unix
//!   session, on a new pseudo-terminal (its controlling terminal) or on three
//!   pipes, every descriptor non-blocking;
//! * [`FdOutput`] reads its stdout/stderr (or the pty master) with deadlines:
//!   it is the [`Output`] half a capture thread owns;
//! * [`write_all`] writes its input with a deadline and the run's stop
//!   probe, never blocking past them;
//! * [`session_members`] and [`kill`] find and signal what a session holds.
//!
//! This is the only module of dtest-exec that calls `libc` for descriptors
//! and processes (besides the signal handler of [`crate::signals`]).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dtest_trace::{ExitStatus, Stream};

use super::{signal_name, Output, ReadEvent, Result, SessionError, Until};

fn errno() -> io::Error {
    io::Error::last_os_error()
}

/// Puts a descriptor in non-blocking mode.
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, with integer arguments.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(errno());
        }
    }
    Ok(())
}

fn set_cloexec(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
}

/// Opens a pseudo-terminal pair (master, slave) with a wide window, both
/// close-on-exec.
pub fn open_pty() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut master: libc::c_int = -1;
    let mut slave: libc::c_int = -1;
    let ws = libc::winsize {
        ws_row: 50,
        ws_col: 250,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors into the pointed-to ints; the
    // name and termios pointers may be null.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &ws,
        )
    };
    if r != 0 {
        return Err(errno());
    }
    set_cloexec(master);
    set_cloexec(slave);
    // SAFETY: both descriptors were just opened and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) })
}

/// A child process started by [`spawn_in_session`], its descriptors
/// non-blocking.
#[derive(Debug)]
pub struct Spawned {
    /// The child, leader of its own session.
    pub child: Child,
    /// Its input: a dup of the pty master, or its stdin pipe.
    pub input: OwnedFd,
    /// Its output: the pty master, or its stdout pipe.
    pub out: OwnedFd,
    /// Its stderr pipe (`None` on a pty, where stderr is the terminal).
    pub err: Option<OwnedFd>,
}

/// Starts `cmd` as the leader of a new session (so that everything it
/// starts can be found and killed), on a new pseudo-terminal that becomes
/// its controlling terminal, or on three pipes (made 1 MiB large, best
/// effort: it halves the wake-ups of a flood). Every descriptor dtest keeps
/// is non-blocking, the input too: a write never blocks past its deadline.
pub fn spawn_in_session(mut cmd: Command, pty: bool) -> io::Result<Spawned> {
    if pty {
        let (master, slave) =
            open_pty().map_err(|e| io::Error::new(e.kind(), format!("openpty: {e}")))?;
        cmd.stdin(Stdio::from(slave.try_clone()?))
            .stdout(Stdio::from(slave.try_clone()?))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        // The slave's copies in `cmd` must close: the master reads EIO once
        // the child's are the only ones left and they close.
        drop(cmd);
        set_nonblocking(master.as_raw_fd())?;
        return Ok(Spawned {
            child,
            input: master.try_clone()?,
            out: master,
            err: None,
        });
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let take = |o: Option<OwnedFd>| o.ok_or_else(|| io::Error::other("no pipe"));
    let out = take(child.stdout.take().map(Into::into))?;
    let err = take(child.stderr.take().map(Into::into))?;
    let input = take(child.stdin.take().map(Into::into))?;
    set_nonblocking(input.as_raw_fd())?;
    for fd in [out.as_raw_fd(), err.as_raw_fd()] {
        set_nonblocking(fd)?;
        // SAFETY: fcntl on a pipe we own, integer argument.
        unsafe {
            libc::fcntl(fd, libc::F_SETPIPE_SZ, 1 << 20);
        }
    }
    Ok(Spawned {
        child,
        input,
        out,
        err: Some(err),
    })
}

/// How a Rust exit status reads in a trace.
pub fn convert_status(st: std::process::ExitStatus) -> ExitStatus {
    match (st.code(), st.signal()) {
        (Some(c), _) => ExitStatus::Code(c),
        (None, Some(s)) => ExitStatus::Signal(signal_name(s)),
        _ => ExitStatus::Code(-1),
    }
}

/// Writes all of `bytes` to the non-blocking descriptor `fd`, waiting for
/// room at most until `until` says to give up (its deadline or the run's
/// stop), checking it at least every 100 ms.
pub fn write_all(fd: &OwnedFd, mut bytes: &[u8], until: &Until) -> Result<()> {
    while !bytes.is_empty() {
        // SAFETY: writing from a valid buffer.
        let r = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        if r >= 0 {
            bytes = &bytes[r as usize..];
            continue;
        }
        let e = errno();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => {
                until.check("the session does not read its input")?;
                let mut p = libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut p, 1, until.slice_ms()) };
            }
            Some(libc::EPIPE) | Some(libc::EIO) => {
                return Err(SessionError::Closed("the session's input is closed".into()))
            }
            _ => return Err(e.into()),
        }
    }
    Ok(())
}

/// Reads once from `fd` (non-blocking). `Ok(None)`: would block;
/// `Ok(Some(0))`: end of stream (a pty master's EIO included).
pub fn read_fd(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<Option<usize>> {
    loop {
        // SAFETY: reading into a valid, exclusively borrowed buffer.
        let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if r >= 0 {
            return Ok(Some(r as usize));
        }
        let e = errno();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Ok(None),
            // A pty master reads EIO once every slave descriptor is closed.
            Some(libc::EIO) => return Ok(Some(0)),
            _ => return Err(e),
        }
    }
}

/// The child a channel started, shared by its control half (signals,
/// close) and its [`FdOutput`] (which reports how it ended).
pub type SharedChild = Arc<Mutex<Child>>;

/// Whether the shared child has ended, and how, *without* reaping it:
/// the zombie keeps its pid, and so its session id, reserved until
/// [`reap`]. A session leader's pid that was reaped can be reused by
/// another session's leader (pid_max is 32768 on many machines), and
/// everything of that other session would then look like ours to
/// [`session_members`]: a test run under load had its `sleep` killed so.
pub fn try_status(child: &SharedChild) -> Option<ExitStatus> {
    let mut c = child.lock().unwrap_or_else(|e| e.into_inner());
    let pid = c.id() as libc::id_t;
    // SAFETY: a zeroed siginfo_t that waitid fills; WNOWAIT leaves the
    // child waitable.
    let (r, info) = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        (r, info)
    };
    if r != 0 {
        // Already reaped (by `reap`): std knows how it ended.
        return match c.try_wait() {
            Ok(Some(st)) => Some(convert_status(st)),
            _ => None,
        };
    }
    // SAFETY: waitid succeeded, so the pid and status fields are set.
    let (si_pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if si_pid == 0 {
        return None;
    }
    match info.si_code {
        libc::CLD_EXITED => Some(ExitStatus::Code(status)),
        libc::CLD_KILLED | libc::CLD_DUMPED => Some(ExitStatus::Signal(signal_name(status))),
        _ => None,
    }
}

/// Reaps the shared child once it has ended (after the session is
/// cleaned up: see [`try_status`]); how it ended.
pub fn reap(child: &SharedChild) -> Option<ExitStatus> {
    let mut c = child.lock().unwrap_or_else(|e| e.into_inner());
    match c.try_wait() {
        Ok(Some(st)) => Some(convert_status(st)),
        _ => None,
    }
}

/// The output half of a local process: its stdout and stderr pipes, or its
/// pty master, read with deadlines. Reports [`ReadEvent::Closed`] once both
/// streams reached their end (or, on a pty, once the process is gone and
/// the terminal stays silent: a background process of a dead shell may hold
/// the terminal open forever), with the process's status.
#[derive(Debug)]
pub struct FdOutput {
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    child: SharedChild,
    pty: bool,
    status: Option<ExitStatus>,
}

impl FdOutput {
    /// Output read from `out` (and `err` on pipes) of `child`.
    pub fn new(out: OwnedFd, err: Option<OwnedFd>, child: SharedChild) -> FdOutput {
        let pty = err.is_none();
        FdOutput {
            out: Some(out),
            err,
            child,
            pty,
            status: None,
        }
    }

    fn closed(&mut self, deadline: Instant) -> ReadEvent {
        // Every byte is read; the status tells how the process ended. It
        // may take a moment to be reapable after its descriptors closed.
        let until = (Instant::now() + Duration::from_millis(500)).min(deadline);
        while self.status.is_none() {
            self.status = try_status(&self.child);
            if self.status.is_some() || Instant::now() >= until {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        ReadEvent::Closed {
            status: self.status.clone(),
        }
    }
}

impl Output for FdOutput {
    fn read(&mut self, buf: &mut [u8], deadline: Instant) -> Result<ReadEvent> {
        loop {
            if self.out.is_none() && self.err.is_none() {
                return Ok(self.closed(deadline));
            }
            // Stderr first: on pipes, what a command wrote to stderr before
            // it ended is then read no later than its end marker (the shell
            // protocol also marks the end on stderr, see `shell`).
            for stream in [Stream::Stderr, Stream::Stdout] {
                let slot = if stream == Stream::Stdout {
                    &mut self.out
                } else {
                    &mut self.err
                };
                let Some(fd) = slot else { continue };
                match read_fd(fd, buf)? {
                    Some(0) => *slot = None,
                    Some(n) => return Ok(ReadEvent::Data { stream, n }),
                    None => {}
                }
            }
            if self.out.is_none() && self.err.is_none() {
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(ReadEvent::Timeout);
            }
            // Wake at least every 200 ms: a pty whose shell died while a
            // background process holds the slave never reads EIO.
            let wait = (deadline - now).min(Duration::from_millis(200));
            let mut pfds: Vec<libc::pollfd> = [self.out.as_ref(), self.err.as_ref()]
                .iter()
                .flatten()
                .map(|f| libc::pollfd {
                    fd: f.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            let ms = wait.as_millis().max(1) as i32;
            // SAFETY: a valid array of pollfds.
            let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
            if r == 0 && self.pty {
                if let Some(st) = try_status(&self.child) {
                    // The shell is gone and the terminal is silent: whatever
                    // still holds it is killed at close. Report the end.
                    self.status = Some(st);
                    self.out = None;
                }
            }
        }
    }
}

/// Waits (up to `max`) until process `pid` is stopped (state `T`), after a
/// `SIGSTOP`: `kill` returns before the target has stopped, and a shell
/// that still runs can collect its job's stop in a `wait` it was already
/// in. Whether it is stopped (false: still running at `max`, or gone).
pub fn wait_stopped(pid: i32, max: std::time::Duration) -> bool {
    let end = std::time::Instant::now() + max;
    loop {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next());
        if matches!(state, Some("T") | Some("t")) {
            return true;
        }
        if std::time::Instant::now() >= end {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Process ids whose session id is `sid` (from `/proc`), `sid` itself
/// excluded, zombies excluded.
pub fn session_members(sid: i32) -> Vec<i32> {
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return v;
    };
    for ent in rd.flatten() {
        let name = ent.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == sid {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp session ...; comm may hold spaces.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 3 && f[0] != "Z" && f[3].parse::<i32>().ok() == Some(sid) {
            v.push(pid);
        }
    }
    v
}

/// Sends signal `sig` to process `pid` (a negative pid: a process group);
/// whether it was delivered.
pub fn kill(pid: i32, sig: i32) -> bool {
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// The environment variable that marks every process of a run: the
/// runner sets it (to a random id) in every session's environment and in
/// `local` steps; processes inherit it, also those that leave their
/// session (`setsid`, daemons).
pub const RUN_ID_VAR: &str = "DTEST_RUN_ID";
/// The environment variable naming the tester a process belongs to.
pub const TESTER_VAR: &str = "DTEST_TESTER";

/// Whether a NUL-separated environment block holds `key=value`.
fn env_has(environ: &[u8], key: &str, value: &str) -> bool {
    environ.split(|&b| b == 0).any(|e| {
        e.len() == key.len() + 1 + value.len()
            && e.starts_with(key.as_bytes())
            && e[key.len()] == b'='
            && &e[key.len() + 1..] == value.as_bytes()
    })
}

/// The processes of this machine whose environment marks them as part of
/// run `run` (and of `tester`, when given), with their command names;
/// this process and zombies excluded. Only processes whose environment
/// this user may read are seen (all of its own).
pub fn marked_processes(run: &str, tester: Option<&str>) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return v;
    };
    for ent in rd.flatten() {
        let Some(pid) = ent.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if !env_has(&env, RUN_ID_VAR, run) || tester.is_some_and(|t| !env_has(&env, TESTER_VAR, t))
        {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rfind(')')
            .map(|i| stat[i + 1..].trim_start().starts_with('Z'))
            .unwrap_or(false);
        if zombie {
            continue;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim().to_string())
            .unwrap_or_default();
        v.push((pid, comm));
    }
    v.sort_unstable();
    v
}

/// Stops the processes [`marked_processes`] finds: TERM (and CONT, for a
/// paused one), KILL after `grace`, again until none is left (5 s at
/// most). Returns the processes found at first.
pub fn stop_marked(run: &str, tester: Option<&str>, grace: Duration) -> Vec<(i32, String)> {
    let found = marked_processes(run, tester);
    if found.is_empty() {
        return found;
    }
    for &(pid, _) in &found {
        kill(pid, libc::SIGTERM);
        kill(pid, libc::SIGCONT);
    }
    let until = Instant::now() + grace;
    while Instant::now() < until && !marked_processes(run, tester).is_empty() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let left = marked_processes(run, tester);
        if left.is_empty() || Instant::now() >= until {
            break;
        }
        for (pid, _) in left {
            kill(pid, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    found
}

/// "stopped 1 process that left its session: pid 2014 redis-server".
pub fn describe_stopped(found: &[(i32, String)]) -> String {
    let n = found.len();
    let list: Vec<String> = found.iter().map(|(p, c)| format!("pid {p} {c}")).collect();
    format!(
        "stopped {n} process{} that left {} session: {}",
        if n == 1 { "" } else { "es" },
        if n == 1 { "its" } else { "their" },
        list.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_entries_match_whole() {
        let env = b"A=1\0DTEST_RUN_ID=abc\0DTEST_TESTER=t1\0";
        assert!(env_has(env, RUN_ID_VAR, "abc"));
        assert!(!env_has(env, RUN_ID_VAR, "ab"));
        assert!(!env_has(env, "DTEST_RUN", "abc"));
        assert!(env_has(env, TESTER_VAR, "t1"));
        assert!(!env_has(env, TESTER_VAR, "t"));
    }

    #[test]
    fn a_process_that_left_its_session_is_found_and_stopped() {
        let id = super::super::protocol::new_nonce();
        let mut c = Command::new("/bin/sh");
        c.args(["-c", "setsid sleep 600 & exit 0"])
            .env(RUN_ID_VAR, &id)
            .env(TESTER_VAR, "t1");
        let mut child = c.spawn().unwrap();
        child.wait().unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        // Until the fork has become `sleep` (it is `sh`, then `setsid`).
        while marked_processes(&id, Some("t1"))
            .iter()
            .all(|(_, c)| c != "sleep")
            && Instant::now() < until
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(marked_processes(&id, Some("t2")).is_empty());
        let found = stop_marked(&id, Some("t1"), Duration::from_millis(500));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].1, "sleep");
        assert!(marked_processes(&id, None).is_empty());
        assert!(
            describe_stopped(&found).starts_with("stopped 1 process that left its session: pid ")
        );
    }
}
