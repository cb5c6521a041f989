//! The built-in `local` transport: the shell runs on this machine, on a
//! pseudo-terminal or on pipes, as the leader of its own Unix session.
//!
//! Being a session leader is what makes cleanup complete: every process the
//! shell starts (foreground jobs, background jobs, their children) keeps the
//! shell's session id unless it calls `setsid` itself, so closing the channel
//! signals every process of that session, then `KILL`s the survivors.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dtest_trace::{ExitStatus, Stream};

use super::{
    hash_reader, signal_name, Channel, FileInfo, HostUrl, OpenSpec, ReadEvent, Result,
    SessionError, Signal, Transport,
};

/// The `local` transport (scheme `local`).
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalTransport;

impl Transport for LocalTransport {
    fn scheme(&self) -> &str {
        "local"
    }

    fn check_url(&self, url: &HostUrl) -> Result<()> {
        if url.rest.is_empty() {
            Ok(())
        } else {
            Err(SessionError::BadUrl {
                url: url.raw.clone(),
                reason: "the local host takes no address: write `local`".into(),
            })
        }
    }

    fn open(&self, spec: &OpenSpec) -> Result<Box<dyn Channel>> {
        Ok(Box::new(LocalChannel::open(spec)?))
    }
}

/// A shell on this machine.
#[derive(Debug)]
pub struct LocalChannel {
    child: Child,
    pid: i32,
    target: String,
    pty: bool,
    /// Where the shell's output comes from: the pty master, or stdout and
    /// stderr pipes. `None` once that stream reached its end.
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    /// The shell's input: the pty master (a dup) or its stdin pipe.
    input: Option<OwnedFd>,
    cwd: PathBuf,
    status: Option<ExitStatus>,
    closed: bool,
}

fn errno() -> io::Error {
    io::Error::last_os_error()
}

/// Puts a descriptor in non-blocking mode (shared with other transports
/// that run local processes, such as dtest-ssh's `openssh://`).
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
/// close-on-exec (shared with other transports that run local processes).
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
/// effort: it halves the wake-ups of a flood). The local transport runs the
/// shell with it, the `openssh` transport the `ssh` client.
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

impl LocalChannel {
    /// Starts `spec.shell` on this machine.
    pub fn open(spec: &OpenSpec) -> Result<LocalChannel> {
        let target = format!("{} on local", spec.shell);
        let fail = |reason: String| SessionError::Open {
            target: target.clone(),
            reason,
        };
        let cwd = match &spec.cwd {
            Some(c) => PathBuf::from(c),
            None => std::env::current_dir().map_err(|e| fail(e.to_string()))?,
        };
        if !cwd.is_dir() {
            std::fs::create_dir_all(&cwd)
                .map_err(|e| fail(format!("cannot create cwd {}: {e}", cwd.display())))?;
        }
        let mut cmd = Command::new(&spec.shell);
        cmd.current_dir(&cwd);
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        // Prompts are set by the shell protocol once the shell runs; these
        // keep the very first prompt short.
        cmd.env("PS1", "").env("PS2", "");
        if spec.pty {
            cmd.env(
                "TERM",
                std::env::var("TERM").unwrap_or_else(|_| "dumb".into()),
            );
        }
        let Spawned {
            child,
            input,
            out,
            err,
        } = spawn_in_session(cmd, spec.pty)
            .map_err(|e| fail(format!("cannot start {}: {e}", spec.shell)))?;
        let (input, out) = (Some(input), Some(out));
        let pid = child.id() as i32;
        Ok(LocalChannel {
            child,
            pid,
            target,
            pty: spec.pty,
            out,
            err,
            input,
            cwd,
            status: None,
            closed: false,
        })
    }

    /// The shell's process id (also its session and process group id).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    fn resolve(&self, remote: &str) -> PathBuf {
        let p = Path::new(remote);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.cwd.join(p)
        }
    }

    fn reap(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.status = Some(convert_status(st));
            }
        }
        self.status.clone()
    }

    /// Reads once from `fd` (non-blocking). `Ok(None)`: would block;
    /// `Ok(Some(0))`: end of stream.
    fn read_fd(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<Option<usize>> {
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
}

fn convert_status(st: std::process::ExitStatus) -> ExitStatus {
    match (st.code(), st.signal()) {
        (Some(c), _) => ExitStatus::Code(c),
        (None, Some(s)) => ExitStatus::Signal(signal_name(s)),
        _ => ExitStatus::Code(-1),
    }
}

/// Process ids whose session id is `sid` (from `/proc`), `sid` itself
/// excluded.
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

fn kill(pid: i32, sig: i32) {
    // SAFETY: kill has no memory effects.
    unsafe {
        libc::kill(pid, sig);
    }
}

impl Channel for LocalChannel {
    fn target(&self) -> String {
        self.target.clone()
    }

    fn is_pty(&self) -> bool {
        self.pty
    }

    fn write(&mut self, mut bytes: &[u8]) -> Result<()> {
        let Some(fd) = &self.input else {
            return Err(SessionError::Closed("the shell's input is closed".into()));
        };
        let deadline = Instant::now() + Duration::from_secs(30);
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
                    if Instant::now() >= deadline {
                        return Err(SessionError::Other(
                            "the session does not read its input (30s)".into(),
                        ));
                    }
                    let mut p = libc::pollfd {
                        fd: fd.as_raw_fd(),
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(&mut p, 1, 100) };
                }
                Some(libc::EPIPE) | Some(libc::EIO) => {
                    return Err(SessionError::Closed("the shell's input is closed".into()))
                }
                _ => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8], deadline: Instant) -> Result<ReadEvent> {
        loop {
            if self.out.is_none() && self.err.is_none() {
                // All output read; the shell's status tells how it ended.
                let until = Instant::now() + Duration::from_millis(500);
                while self.reap().is_none() && Instant::now() < until.min(deadline) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if self.status.is_none() && Instant::now() >= deadline {
                    return Ok(ReadEvent::Timeout);
                }
                return Ok(ReadEvent::Closed {
                    status: self.reap(),
                });
            }
            let mut fds = [
                (self.out.as_ref(), Stream::Stdout),
                (self.err.as_ref(), Stream::Stderr),
            ];
            // Try reading directly first: the common case in a flood.
            for (fd, stream) in fds.iter_mut() {
                if let Some(f) = fd {
                    match Self::read_fd(f, buf)? {
                        Some(0) => {
                            if *stream == Stream::Stdout {
                                self.out = None;
                            } else {
                                self.err = None;
                            }
                            return self.read(buf, deadline);
                        }
                        Some(n) => return Ok(ReadEvent::Data { stream: *stream, n }),
                        None => {}
                    }
                }
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
            if r == 0 && self.reap().is_some() && self.pty {
                // The shell is gone; whatever still holds the terminal is
                // killed at close. Report the end now.
                self.out = None;
                self.err = None;
            }
        }
    }

    fn signal(&mut self, sig: Signal) -> Result<()> {
        for pid in session_members(self.pid) {
            kill(pid, sig.number());
        }
        Ok(())
    }

    fn foreground_job(&mut self) -> Option<bool> {
        if !self.pty {
            return None;
        }
        let fd = self.out.as_ref()?;
        // SAFETY: tcgetpgrp on the pty master we own.
        let pg = unsafe { libc::tcgetpgrp(fd.as_raw_fd()) };
        if pg <= 0 {
            return None;
        }
        Some(pg != self.pid)
    }

    fn put(&mut self, local: &Path, remote: &str) -> Result<FileInfo> {
        let dst = self.resolve(remote);
        let err = |e: io::Error, p: &Path| SessionError::Transfer {
            op: "put",
            path: p.display().to_string(),
            reason: e.to_string(),
        };
        let src = File::open(local).map_err(|e| err(e, local))?;
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(|e| err(e, parent))?;
        }
        let out = File::create(&dst).map_err(|e| err(e, &dst))?;
        if let Ok(m) = src.metadata() {
            let _ = out.set_permissions(m.permissions());
        }
        let (size, sha256) = hash_reader(src, io::BufWriter::new(out)).map_err(|e| err(e, &dst))?;
        Ok(FileInfo {
            local: local.to_path_buf(),
            remote: dst.display().to_string(),
            size,
            sha256,
        })
    }

    fn get(&mut self, remote: &str, local: &Path) -> Result<FileInfo> {
        let src_path = self.resolve(remote);
        let err = |e: io::Error, p: &Path| SessionError::Transfer {
            op: "get",
            path: p.display().to_string(),
            reason: e.to_string(),
        };
        let src = File::open(&src_path).map_err(|e| err(e, &src_path))?;
        if let Some(parent) = local.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| err(e, parent))?;
            }
        }
        let out = File::create(local).map_err(|e| err(e, local))?;
        let (size, sha256) =
            hash_reader(src, io::BufWriter::new(out)).map_err(|e| err(e, local))?;
        Ok(FileInfo {
            local: local.to_path_buf(),
            remote: src_path.display().to_string(),
            size,
            sha256,
        })
    }

    fn close(&mut self, grace: Duration) -> Result<Option<ExitStatus>> {
        if self.closed {
            return Ok(self.status.clone());
        }
        self.closed = true;
        // Closing the input ends a shell waiting for a command (EOF).
        self.input = None;
        for pid in session_members(self.pid) {
            kill(pid, libc::SIGTERM);
            kill(pid, libc::SIGCONT);
        }
        if self.reap().is_none() {
            kill(self.pid, libc::SIGHUP);
            kill(self.pid, libc::SIGTERM);
            kill(self.pid, libc::SIGCONT);
        }
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if self.reap().is_some() && session_members(self.pid).is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Whatever is left is killed; repeat until the session is empty
        // (a process may fork while we look).
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let members = session_members(self.pid);
            if self.reap().is_none() {
                kill(self.pid, libc::SIGKILL);
            }
            for &pid in &members {
                kill(pid, libc::SIGKILL);
            }
            if members.is_empty() || Instant::now() >= until {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if self.status.is_none() {
            if let Ok(st) = self.child.wait() {
                self.status = Some(convert_status(st));
            }
        }
        self.out = None;
        self.err = None;
        Ok(self.status.clone())
    }
}

impl Drop for LocalChannel {
    fn drop(&mut self) {
        let _ = self.close(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::shell::{Piece, ShellSession};

    fn spec(pty: bool) -> OpenSpec {
        OpenSpec {
            tester: "t".into(),
            host: HostUrl::parse("local").unwrap(),
            shell: "/bin/sh".into(),
            pty,
            cwd: None,
            create_cwd: true,
            env: vec![],
            connect_timeout: Duration::from_secs(10),
            options: Default::default(),
        }
    }

    fn run(s: &mut ShellSession, cmd: &str) -> (Vec<u8>, Option<ExitStatus>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        s.run(cmd).unwrap();
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
        (out, exit)
    }

    #[test]
    fn local_shell_pty_and_pipes() {
        for pty in [true, false] {
            let ch = LocalTransport.open(&spec(pty)).unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            let (mut s, _) = ShellSession::start(ch, deadline).unwrap();
            let (out, st) = run(&mut s, "echo hello; false");
            let text = String::from_utf8_lossy(&out).replace('\r', "");
            assert_eq!(text, "hello\n", "pty {pty}");
            assert_eq!(st, Some(ExitStatus::Code(1)));
            let (_, st) = run(&mut s, "cd /tmp\nexport X=1 # comment");
            assert_eq!(st, Some(ExitStatus::Code(0)));
            let (out, _) = run(&mut s, "echo \"$X'\" `pwd`");
            assert_eq!(String::from_utf8_lossy(&out).replace('\r', ""), "1' /tmp\n");
            s.run("sleep 30").unwrap();
            std::thread::sleep(Duration::from_millis(100));
            s.signal(Signal::Int).unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut exit = None;
            while s.running() && Instant::now() < deadline {
                s.poll(deadline, &mut |p| {
                    if let Piece::Exit(st) = p {
                        exit = Some(st)
                    }
                })
                .unwrap();
            }
            assert_eq!(exit, Some(ExitStatus::Signal("INT".into())), "pty {pty}");
            s.close(Duration::from_millis(200)).unwrap();
        }
    }
}
