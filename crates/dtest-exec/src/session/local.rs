//! The built-in `local` transport: the shell runs on this machine, on a
//! pseudo-terminal or on pipes, as the leader of its own Unix session.
//!
//! Being a session leader is what makes cleanup complete: every process the
//! shell starts (foreground jobs, background jobs, their children) keeps the
//! shell's session id unless it calls `setsid` itself, so closing the channel
//! signals every process of that session, then `KILL`s the survivors.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dtest_trace::ExitStatus;

use super::sys::{self, kill, session_members, try_status, FdOutput, SharedChild};
pub use super::sys::{open_pty, set_nonblocking, spawn_in_session, Spawned};
use super::{
    hash_copy, Channel, FileInfo, HostUrl, OpenSpec, Output, Result, SessionError, Signal,
    Transport, Until,
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
    child: SharedChild,
    pid: i32,
    target: String,
    pty: bool,
    /// The output half, until the capture thread takes it.
    output: Option<FdOutput>,
    /// The pty master (for `foreground_job`), when on a pty.
    master: Option<OwnedFd>,
    /// The shell's input: the pty master (a dup) or its stdin pipe.
    input: Option<OwnedFd>,
    cwd: PathBuf,
    status: Option<ExitStatus>,
    closed: bool,
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
        let pid = child.id() as i32;
        let master = if spec.pty {
            Some(out.try_clone().map_err(|e| fail(e.to_string()))?)
        } else {
            None
        };
        let child = Arc::new(Mutex::new(child));
        Ok(LocalChannel {
            output: Some(FdOutput::new(out, err, Arc::clone(&child))),
            child,
            pid,
            target,
            pty: spec.pty,
            master,
            input: Some(input),
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
            self.status = try_status(&self.child);
        }
        self.status.clone()
    }
}

/// Opens `path` for a transfer, refusing what is not a regular file (a
/// FIFO would block the open, a device would never end).
fn open_regular(op: &'static str, path: &Path) -> Result<File> {
    let err = |reason: String| SessionError::Transfer {
        op,
        path: path.display().to_string(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if !meta.is_file() {
        return Err(err(
            "not a regular file (only regular files are copied)".into()
        ));
    }
    File::open(path).map_err(|e| err(e.to_string()))
}

/// A transfer's error, naming the operation and the path.
fn transfer_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl Fn(SessionError) -> SessionError + 'a {
    move |e| match e {
        SessionError::Io(e) => SessionError::Transfer {
            op,
            path: path.display().to_string(),
            reason: e.to_string(),
        },
        other => other,
    }
}

impl Channel for LocalChannel {
    fn target(&self) -> String {
        self.target.clone()
    }

    fn is_pty(&self) -> bool {
        self.pty
    }

    fn take_output(&mut self) -> Result<Box<dyn Output>> {
        match self.output.take() {
            Some(o) => Ok(Box::new(o)),
            None => Err(SessionError::Other("the output was already taken".into())),
        }
    }

    fn write(&mut self, bytes: &[u8], until: &Until) -> Result<()> {
        let Some(fd) = &self.input else {
            return Err(SessionError::Closed("the shell's input is closed".into()));
        };
        sys::write_all(fd, bytes, until)
    }

    fn signal(&mut self, sig: Signal) -> Result<Option<usize>> {
        // STOP: the shell first; CONT: the shell last. An interactive shell
        // with job control must never see its job stopped (it would report
        // it as ended and go back to its prompt); a stop is only reported
        // while the job is still stopped when the shell runs again.
        if sig == Signal::Stop && kill(self.pid, libc::SIGSTOP) {
            // Only once the shell is stopped: woken in its `wait` by the
            // STOP, it could still collect the job's stop before stopping
            // itself, and report the job as ended when continued (seen
            // under load: "[1] + Stopped (signal)").
            super::sys::wait_stopped(self.pid, Duration::from_secs(1));
        }
        let mut n = 0;
        for pid in session_members(self.pid) {
            if kill(pid, sig.number()) {
                n += 1;
            }
        }
        if sig == Signal::Cont {
            kill(self.pid, libc::SIGCONT);
        }
        Ok(Some(n))
    }

    fn foreground_job(&mut self) -> Option<bool> {
        let fd = self.master.as_ref()?;
        // SAFETY: tcgetpgrp on the pty master we own.
        let pg = unsafe { libc::tcgetpgrp(fd.as_raw_fd()) };
        if pg <= 0 {
            return None;
        }
        if pg == self.pid {
            return Some(false);
        }
        // The job holds the terminal, but its leader may still be the
        // shell's fork before `exec`, with the shell's own SIGINT handler:
        // a Ctrl-C then is lost (seen with bash under load). It counts as
        // started once it runs another program (its executable or its
        // command line differs from the shell's); a job that never execs
        // (a subshell) is waited for until the caller's bound.
        Some(!same_image(self.pid, pg))
    }

    fn put(&mut self, local: &Path, remote: &str, until: &Until) -> Result<FileInfo> {
        let dst = self.resolve(remote);
        let src = open_regular("put", local)?;
        let err = |e: io::Error, p: &Path| SessionError::Transfer {
            op: "put",
            path: p.display().to_string(),
            reason: e.to_string(),
        };
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(|e| err(e, parent))?;
        }
        let out = File::create(&dst).map_err(|e| err(e, &dst))?;
        if let Ok(m) = src.metadata() {
            let _ = out.set_permissions(m.permissions());
        }
        let (size, sha256) =
            hash_copy(src, io::BufWriter::new(out), until).map_err(transfer_err("put", &dst))?;
        Ok(FileInfo {
            local: local.to_path_buf(),
            remote: dst.display().to_string(),
            size,
            sha256,
        })
    }

    fn get(&mut self, remote: &str, local: &Path, until: &Until) -> Result<FileInfo> {
        let src_path = self.resolve(remote);
        let src = open_regular("get", &src_path)?;
        let err = |e: io::Error, p: &Path| SessionError::Transfer {
            op: "get",
            path: p.display().to_string(),
            reason: e.to_string(),
        };
        if let Some(parent) = local.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| err(e, parent))?;
            }
        }
        let out = File::create(local).map_err(|e| err(e, local))?;
        let (size, sha256) =
            hash_copy(src, io::BufWriter::new(out), until).map_err(transfer_err("get", local))?;
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
        let until = Instant::now() + Duration::from_secs(2);
        while self.reap().is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Only now, with its session empty, is the shell reaped and its
        // pid (its session id) set free.
        if let Some(st) = sys::reap(&self.child) {
            self.status.get_or_insert(st);
        }
        self.master = None;
        Ok(self.status.clone())
    }
}

impl Drop for LocalChannel {
    fn drop(&mut self) {
        let _ = self.close(Duration::from_millis(100));
    }
}

/// Whether process `b` still runs the same program as process `a`: the
/// same executable and the same command line (a fork before `exec`). An
/// unreadable `/proc` entry (the process ended) counts as different.
fn same_image(a: i32, b: i32) -> bool {
    let exe = |p: i32| std::fs::read_link(format!("/proc/{p}/exe")).ok();
    let cmdline = |p: i32| std::fs::read(format!("/proc/{p}/cmdline")).ok();
    match (exe(a), exe(b)) {
        (Some(x), Some(y)) if x == y => {}
        _ => return false,
    }
    match (cmdline(a), cmdline(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::capture::CollectSink;
    use crate::session::shell::ShellSession;
    use crate::session::StopProbe;

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
            stop: StopProbe::never(),
        }
    }

    /// Runs `cmd` to its end; returns its output and status.
    fn run(s: &mut ShellSession, sink: &CollectSink, cmd: &str) -> (String, Option<ExitStatus>) {
        let before = sink.bytes().len();
        let until = Until::after(Duration::from_secs(20));
        s.run(cmd, &until).unwrap();
        let st = s.wait_end(&until).unwrap();
        let out = sink.bytes()[before..].to_vec();
        (String::from_utf8_lossy(&out).replace('\r', ""), st)
    }

    #[test]
    fn local_shell_pty_and_pipes() {
        for pty in [true, false] {
            let ch = LocalTransport.open(&spec(pty)).unwrap();
            let sink = CollectSink::default();
            let until = Until::after(Duration::from_secs(20));
            let mut s = ShellSession::start(ch, Box::new(sink.clone()), &until).unwrap();
            let (out, st) = run(&mut s, &sink, "echo hello; false");
            assert_eq!(out, "hello\n", "pty {pty}");
            assert_eq!(st, Some(ExitStatus::Code(1)));
            let (_, st) = run(&mut s, &sink, "cd /tmp\nexport X=1 # comment");
            assert_eq!(st, Some(ExitStatus::Code(0)));
            let (out, _) = run(&mut s, &sink, "echo \"$X'\" `pwd`");
            assert_eq!(out, "1' /tmp\n");
            // The INT reaches the command however soon it is sent: terminate
            // waits until the command has started (a fixed delay before the
            // signal was flaky on a loaded machine).
            s.run("sleep 30", &until).unwrap();
            let t = s.terminate(Signal::Int, Duration::from_secs(10), &until, &mut |_| {});
            assert_eq!(t.sent, [Signal::Int], "pty {pty}");
            assert!(t.ended);
            assert_eq!(
                s.last_exit(),
                Some(ExitStatus::Signal("INT".into())),
                "pty {pty}"
            );
            s.close(Duration::from_millis(200)).unwrap();
        }
    }

    #[test]
    fn pipes_stderr_before_the_end_is_captured() {
        let ch = LocalTransport.open(&spec(false)).unwrap();
        let sink = CollectSink::default();
        let until = Until::after(Duration::from_secs(20));
        let mut s = ShellSession::start(ch, Box::new(sink.clone()), &until).unwrap();
        for i in 0..20 {
            run(&mut s, &sink, &format!("echo out{i}; echo err{i} >&2"));
            let o = sink.output.lock().unwrap().clone();
            let err: Vec<u8> = o
                .iter()
                .filter(|(st, _)| *st == dtest_trace::Stream::Stderr)
                .flat_map(|(_, b)| b.clone())
                .collect();
            assert!(
                String::from_utf8_lossy(&err).contains(&format!("err{i}\n")),
                "run {i}: {:?}",
                String::from_utf8_lossy(&err)
            );
        }
        s.close(Duration::from_millis(200)).unwrap();
    }

    #[test]
    fn send_is_refused_when_idle_and_reaches_the_command_otherwise() {
        for pty in [true, false] {
            let ch = LocalTransport.open(&spec(pty)).unwrap();
            let sink = CollectSink::default();
            let until = Until::after(Duration::from_secs(20));
            let mut s = ShellSession::start(ch, Box::new(sink.clone()), &until).unwrap();
            let e = s.send(b"echo executed\n", &until).unwrap_err();
            assert!(matches!(e, SessionError::Refused(_)), "{e}");
            s.run("head -n 1", &until).unwrap();
            s.send(b"typed\n", &until).unwrap();
            assert_eq!(s.wait_end(&until).unwrap(), Some(ExitStatus::Code(0)));
            let (_, st) = run(&mut s, &sink, "sleep 0.2; (exit 3)");
            assert_eq!(st, Some(ExitStatus::Code(3)), "pty {pty}");
            assert!(!String::from_utf8_lossy(&sink.bytes()).contains("executed"));
            s.close(Duration::from_millis(200)).unwrap();
        }
    }
}
