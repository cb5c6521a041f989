//! A local child process on a pseudo-terminal or on pipes, read with
//! deadlines: how the `openssh` transport runs the system `ssh` client.
//!
//! (Starting the process is dtest-exec's local transport's
//! `spawn_in_session`; this is the small wrapper the ssh client needs on top.)

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use dtest_exec::session::local::spawn_in_session;
use dtest_trace::Stream;

fn errno() -> io::Error {
    io::Error::last_os_error()
}

/// A child process in its own session, with its output read non-blocking.
#[derive(Debug)]
pub struct Proc {
    /// The child.
    pub child: Child,
    /// stdout (or the pty master); `None` at its end.
    out: Option<OwnedFd>,
    /// stderr (pipes only).
    err: Option<OwnedFd>,
    /// stdin (or a dup of the pty master).
    input: Option<OwnedFd>,
}

impl Proc {
    /// Starts `cmd` on a new pty (as its controlling terminal) or on pipes,
    /// as the leader of a new session.
    pub fn spawn(cmd: Command, pty: bool) -> io::Result<Proc> {
        let s = spawn_in_session(cmd, pty)?;
        Ok(Proc {
            child: s.child,
            input: Some(s.input),
            out: Some(s.out),
            err: s.err,
        })
    }

    /// Writes all of `bytes` (30 s at most).
    pub fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        let Some(fd) = &self.input else {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "input closed"));
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
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN) => {
                    if Instant::now() >= deadline {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "input not read"));
                    }
                    let mut p = libc::pollfd {
                        fd: fd.as_raw_fd(),
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(&mut p, 1, 100) };
                }
                _ => return Err(e),
            }
        }
        Ok(())
    }

    /// Closes the child's input.
    pub fn close_input(&mut self) {
        self.input = None;
    }

    /// Reads the next chunk until `deadline`: `Ok(Some((stream, n)))`,
    /// `Ok(None)` on timeout, `Ok(Some((_, 0)))` once every stream ended.
    pub fn read(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
    ) -> io::Result<Option<(Stream, usize)>> {
        loop {
            if self.out.is_none() && self.err.is_none() {
                return Ok(Some((Stream::Stdout, 0)));
            }
            for stream in [Stream::Stdout, Stream::Stderr] {
                let slot = if stream == Stream::Stdout {
                    &mut self.out
                } else {
                    &mut self.err
                };
                let Some(fd) = slot else { continue };
                // SAFETY: reading into a valid, exclusively borrowed buffer.
                let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if r > 0 {
                    return Ok(Some((stream, r as usize)));
                }
                if r == 0 {
                    *slot = None;
                    continue;
                }
                let e = errno();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EINTR) => {}
                    // A pty master reads EIO once the slave side is closed.
                    Some(libc::EIO) => *slot = None,
                    _ => return Err(e),
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let mut pfds: Vec<libc::pollfd> = [self.out.as_ref(), self.err.as_ref()]
                .iter()
                .flatten()
                .map(|f| libc::pollfd {
                    fd: f.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            let ms = (deadline - now)
                .min(Duration::from_millis(200))
                .as_millis()
                .max(1) as i32;
            // SAFETY: a valid array of pollfds.
            unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
            // The child is gone and nothing holds the terminal open: EOF.
            if self.err.is_none() && matches!(self.child.try_wait(), Ok(Some(_))) {
                let mut p = libc::pollfd {
                    fd: self.out.as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                if unsafe { libc::poll(&mut p, 1, 0) } == 0 {
                    self.out = None;
                }
            }
        }
    }

    /// Ends the child: TERM, then KILL after `grace`; reaps it.
    pub fn kill(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        self.input = None;
        if let Ok(Some(st)) = self.child.try_wait() {
            return Some(st);
        }
        let pid = self.child.id() as i32;
        // SAFETY: kill has no memory effects; the child is a session leader
        // and its process group is its own.
        unsafe {
            libc::kill(-pid, libc::SIGTERM);
        }
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: as above.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        self.child.wait().ok()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.kill(Duration::from_millis(200));
    }
}
