//! One SSH connection shared by the testers on a host: connecting, host key
//! checking and authentication (in the caller's thread, non-blocking, with
//! the connect deadline and the run's stop probe), then one I/O thread that
//! owns the `ssh2::Session` in non-blocking mode and serves every channel of
//! the connection.
//!
//! libssh2 sessions are not safe to drive from several threads at once, and
//! in non-blocking mode a partly sent packet must be completed before any
//! other packet is started. Both are guaranteed here by construction: only
//! the I/O thread ever touches the session, and every libssh2 call that
//! said `EAGAIN` is called again, with the same data, until it is done
//! (libssh2 answers `EAGAIN` to any other packet meanwhile).
//!
//! Testers talk to the I/O thread through a request queue (each request has
//! its own reply slot; the caller waits for it as its [`Until`] allows) and
//! the capture thread of each session reads its output from a per-channel
//! queue with a condition variable ([`ChanShared`]). A self-pipe wakes the
//! I/O thread when a request arrives or a reader has drained a full queue.
//! Output queues are bounded: a channel whose queue is full is not read, so
//! the SSH window closes and the remote command is slowed down instead of
//! memory growing (the capture thread drains the queue all the time, so
//! this only ever waits for dtest's own speed).
//!
//! While a long operation runs in the I/O thread (an SFTP transfer, a
//! channel being opened), the thread keeps serving the other channels of
//! the connection between its steps: their output is read, their input
//! written, keepalives sent.
//!
//! **Liveness.** A keepalive is sent every `keepalive` interval (2 s at the
//! least: libssh2's own floor), with want-reply, so a live server always
//! sends something. When nothing at all arrived from the server for
//! `3 x keepalive + 1 s` ([`ConnParams::lost_after`]) the connection is
//! declared lost (`connection lost: no answer from user@host:port for 16s`):
//! every channel's reader, writer and waiting request fails with that
//! message. Arrivals are taken from the kernel's TCP statistics when it
//! has them (`TCP_INFO`), so bytes libssh2 has not read yet count too.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use dtest_exec::session::{SessionError, StopProbe, Until};
use dtest_trace::{ExitStatus, Stream};
use ssh2::{BlockDirections, ErrorCode, Session};

use crate::config::HostKeyPolicy;
use crate::hostkey;

/// libssh2's "would block".
const EAGAIN: i32 = -37;
/// libssh2's "channel open failure" (MaxSessions reached, among others).
const CHANNEL_FAILURE: i32 = -21;
/// A channel's output queue stops being filled above this many bytes.
const QUEUE_HIGH: usize = 4 << 20;
/// A stalled channel is read again once its queue is below this.
const QUEUE_LOW: usize = 1 << 20;
/// Read chunk size.
const CHUNK: usize = 64 << 10;
/// Receive window of a channel: libssh2's default (2 MiB) stalls the sender
/// on a fast link; a larger window keeps bulk output flowing.
const CHANNEL_WINDOW: u32 = 64 << 20;
/// How long a blocking-mode libssh2 call may wait (only the drops of SFTP
/// handles and the final disconnect run in blocking mode).
const BLOCKING_TIMEOUT_MS: u32 = 1000;
/// How long a dropped channel's close is retried.
const DROP_CLOSE: Duration = Duration::from_secs(5);

/// Everything needed to open one connection.
#[derive(Clone, Debug)]
pub struct ConnParams {
    /// Address to connect to (after ssh_config's HostName).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Remote user.
    pub user: String,
    /// Identity files to try, in order (missing ones are skipped).
    pub identities: Vec<PathBuf>,
    /// Environment variable holding a password.
    pub password_env: Option<String>,
    /// known_hosts file.
    pub known_hosts: PathBuf,
    /// Unknown host keys: refuse or record.
    pub policy: HostKeyPolicy,
    /// Deadline for TCP connect, handshake and authentication.
    pub connect_timeout: Duration,
    /// Keepalive interval; the connection is declared lost after three
    /// silent intervals and a second ([`ConnParams::lost_after`]).
    pub keepalive: Duration,
}

impl ConnParams {
    /// `user@host:port`.
    pub fn label(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }

    /// The interval keepalives are really sent at: whole seconds, 2 s at
    /// the least (libssh2 turns 1 s into 2 s).
    pub fn keepalive_interval(&self) -> Duration {
        Duration::from_secs(self.keepalive.as_secs().max(2))
    }

    /// How long the server may stay silent before the connection is
    /// declared lost: three keepalive intervals and a second (16 s with
    /// the default 5 s keepalive).
    pub fn lost_after(&self) -> Duration {
        self.keepalive_interval() * 3 + Duration::from_secs(1)
    }
}

/// Why opening a channel failed.
#[derive(Debug)]
pub enum OpenError {
    /// The server refused another session on this connection.
    Full(String),
    /// Anything else (the run stopping included).
    Other(SessionError),
}

/// The output side of one channel, shared between the I/O thread (writer)
/// and the session's capture thread (reader).
#[derive(Debug, Default)]
pub struct ChanBuf {
    /// Chunks not read yet.
    pub queue: VecDeque<(Stream, Vec<u8>)>,
    /// Bytes of the front chunk already read.
    pub front_off: usize,
    /// Bytes in the queue.
    pub queued: usize,
    /// Every byte arrived; `status` is final.
    pub eof: bool,
    /// How the remote command ended, when known.
    pub status: Option<ExitStatus>,
    /// The connection is gone (why).
    pub lost: Option<String>,
    /// The I/O thread stopped reading because the queue was full.
    pub stalled: bool,
}

impl ChanBuf {
    /// Moves queued output into `buf`: the front chunk and the chunks of
    /// the same stream after it, as many as fit. `None`: nothing queued.
    /// Returns whether the reader must wake the I/O thread (the queue was
    /// full and has room again).
    pub fn take(&mut self, buf: &mut [u8]) -> Option<(Stream, usize, bool)> {
        let stream = self.queue.front()?.0;
        let mut n = 0;
        while n < buf.len() {
            let Some((s, chunk)) = self.queue.front() else {
                break;
            };
            if *s != stream {
                break;
            }
            let off = self.front_off;
            let k = (chunk.len() - off).min(buf.len() - n);
            buf[n..n + k].copy_from_slice(&chunk[off..off + k]);
            n += k;
            if off + k >= chunk.len() {
                self.queue.pop_front();
                self.front_off = 0;
            } else {
                self.front_off += k;
            }
        }
        self.queued -= n;
        let nudge = self.stalled && self.queued < QUEUE_LOW;
        if nudge {
            self.stalled = false;
        }
        Some((stream, n, nudge))
    }
}

impl ChanBuf {
    /// Puts `data` back at the front of the queue (output read ahead of
    /// its reader, such as what followed the pid marker).
    pub fn unread(&mut self, stream: Stream, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        if self.front_off > 0 {
            if let Some((_, front)) = self.queue.front_mut() {
                front.drain(..self.front_off);
            }
            self.front_off = 0;
        }
        self.queued += data.len();
        self.queue.push_front((stream, data));
    }
}

/// [`ChanBuf`] with its condition variable.
#[derive(Debug, Default)]
pub struct ChanShared {
    /// The buffer.
    pub buf: Mutex<ChanBuf>,
    /// Signalled whenever the buffer changes.
    pub cond: Condvar,
}

impl ChanShared {
    fn update(&self, f: impl FnOnce(&mut ChanBuf)) {
        if let Ok(mut b) = self.buf.lock() {
            f(&mut b);
        }
        self.cond.notify_all();
    }
}

/// What a file transfer did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transferred {
    /// The remote path, resolved (absolute).
    pub path: String,
    /// Bytes copied.
    pub size: u64,
    /// SHA-256 of the content.
    pub sha256: [u8; 32],
}

type Reply<T> = SyncSender<Result<T, SessionError>>;

enum Req {
    Open {
        command: String,
        pty: bool,
        until: Until,
        reply: SyncSender<Result<(u64, Arc<ChanShared>), OpenError>>,
    },
    Write {
        id: u64,
        data: Vec<u8>,
        reply: Reply<()>,
    },
    Eof {
        id: u64,
    },
    Drop {
        id: u64,
    },
    Exec {
        command: String,
        until: Until,
        reply: Reply<(i32, Vec<u8>)>,
    },
    Put {
        local: PathBuf,
        remote: String,
        until: Until,
        reply: Reply<Transferred>,
    },
    Get {
        remote: String,
        local: PathBuf,
        until: Until,
        reply: Reply<Transferred>,
    },
}

/// A handle on a connection's I/O thread. Dropping the last handle ends the
/// thread, which disconnects.
#[derive(Debug)]
pub struct Conn {
    tx: Mutex<Sender<Req>>,
    wake: Arc<OwnedFd>,
    lost: Arc<Mutex<Option<String>>>,
    /// The parameters it was opened with (for a clean-up reconnect).
    pub params: ConnParams,
    /// Tester channels open on it (slots reserved by the pool).
    pub sessions: AtomicUsize,
    /// How many tester channels it takes at most.
    pub limit: AtomicUsize,
    /// Set when the server refused a session.
    pub full: AtomicBool,
    /// A note for the log (a newly accepted host key).
    pub note: Option<String>,
}

fn wake(fd: &OwnedFd) {
    let b = [1u8];
    // SAFETY: a one-byte write from a valid buffer; EAGAIN (pipe full) is
    // fine, the thread is woken anyway.
    unsafe {
        libc::write(fd.as_raw_fd(), b.as_ptr().cast(), 1);
    }
}

impl Conn {
    /// Connects, checks the host key, authenticates and starts the I/O
    /// thread. Gives up at the connect timeout, and within 100 ms of `stop`
    /// saying so ([`SessionError::Stopped`]); other failures are
    /// [`SessionError::Other`] with a one-line reason.
    pub fn connect(p: &ConnParams, limit: usize, stop: &StopProbe) -> Result<Conn, SessionError> {
        let (sess, tcp, note) = establish(p, stop)?;
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 writes two descriptors into the array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(SessionError::Other(format!(
                "pipe: {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: both descriptors were just created and are owned by nobody.
        let (wr, ww) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let (tx, rx) = mpsc::channel();
        let lost = Arc::new(Mutex::new(None));
        let now = Instant::now();
        let io = Io {
            sess,
            tcp,
            wake: wr,
            rx,
            deferred: VecDeque::new(),
            chans: HashMap::new(),
            jobs: Vec::new(),
            dropped: Vec::new(),
            next_id: 1,
            write_first: None,
            lost: lost.clone(),
            label: p.label(),
            keepalive: p.keepalive_interval(),
            lost_after: p.lost_after(),
            last_rx: now,
            next_keepalive: now + p.keepalive_interval(),
            buf: vec![0; CHUNK],
            home: None,
            dead: None,
        };
        std::thread::Builder::new()
            .name(format!("ssh {}", p.label()))
            .spawn(move || io.run())
            .map_err(|e| SessionError::Other(format!("cannot start the I/O thread: {e}")))?;
        Ok(Conn {
            tx: Mutex::new(tx),
            wake: Arc::new(ww),
            lost,
            params: p.clone(),
            sessions: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit),
            full: AtomicBool::new(false),
            note,
        })
    }

    /// Why the connection is gone, if it is.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|l| l.clone())
    }

    fn closed(&self) -> SessionError {
        SessionError::Closed(
            self.lost()
                .unwrap_or_else(|| format!("connection to {} closed", self.params.label())),
        )
    }

    fn send(&self, r: Req) -> Result<(), SessionError> {
        if self.lost().is_some() {
            return Err(self.closed());
        }
        self.tx
            .lock()
            .map_err(|_| SessionError::Other("poisoned".into()))?
            .send(r)
            .map_err(|_| self.closed())?;
        wake(&self.wake);
        Ok(())
    }

    /// Waits for a reply as `until` allows.
    fn recv<R>(&self, rx: &Receiver<R>, until: &Until, what: &str) -> Result<R, SessionError> {
        loop {
            let left = until.slice().saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(r) => return Ok(r),
                Err(mpsc::RecvTimeoutError::Timeout) => until.check(what)?,
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(self.closed()),
            }
        }
    }

    /// Opens a session channel running `command`, with a pty or not.
    pub fn open(
        &self,
        command: &str,
        pty: bool,
        until: &Until,
    ) -> Result<(u64, Arc<ChanShared>), OpenError> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.send(Req::Open {
            command: command.into(),
            pty,
            until: until.clone(),
            reply,
        })
        .map_err(OpenError::Other)?;
        self.recv(&rx, until, "the server did not open a channel in time")
            .map_err(OpenError::Other)?
    }

    /// Writes all of `data` to channel `id`, waiting as `until` allows.
    pub fn write(&self, id: u64, data: &[u8], until: &Until) -> Result<(), SessionError> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.send(Req::Write {
            id,
            data: data.to_vec(),
            reply,
        })?;
        self.recv(&rx, until, "the remote shell does not read its input")?
    }

    /// Wakes the I/O thread (a reader drained a full queue).
    pub fn nudge(&self) {
        wake(&self.wake);
    }

    /// Sends EOF on channel `id` (no answer).
    pub fn eof(&self, id: u64) {
        let _ = self.send(Req::Eof { id });
    }

    /// Forgets channel `id` (closes it; its reader sees the end).
    pub fn drop_channel(&self, id: u64) {
        let _ = self.send(Req::Drop { id });
    }

    /// Runs `command` in its own channel; returns its status and output.
    pub fn exec(&self, command: &str, until: &Until) -> Result<(i32, Vec<u8>), SessionError> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.send(Req::Exec {
            command: command.into(),
            until: until.clone(),
            reply,
        })?;
        self.recv(&rx, until, "the remote command did not end in time")?
    }

    /// SFTP upload of a regular file.
    pub fn put(
        &self,
        local: &Path,
        remote: &str,
        until: &Until,
    ) -> Result<Transferred, SessionError> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.send(Req::Put {
            local: local.into(),
            remote: remote.into(),
            until: until.clone(),
            reply,
        })?;
        self.recv(&rx, until, "the transfer did not finish in time")?
    }

    /// SFTP download of a regular file.
    pub fn get(
        &self,
        remote: &str,
        local: &Path,
        until: &Until,
    ) -> Result<Transferred, SessionError> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.send(Req::Get {
            remote: remote.into(),
            local: local.into(),
            until: until.clone(),
            reply,
        })?;
        self.recv(&rx, until, "the transfer did not finish in time")?
    }
}

/// Why a wait of the connection code ended without a result.
enum Fail {
    /// libssh2 said no.
    Ssh(ssh2::Error),
    /// The caller's deadline passed or the run stops.
    Give(SessionError),
    /// The connection is lost (the message says why).
    Dead(String),
}

fn is_eagain(e: &ssh2::Error) -> bool {
    e.code() == ErrorCode::Session(EAGAIN)
}

/// Waits until the socket is ready in the direction libssh2 waits for, at
/// most `ms` milliseconds. Returns whether data is waiting to be read.
fn poll_session(sess: &Session, fd: RawFd, ms: i32) -> bool {
    let mut ev = 0;
    match sess.block_directions() {
        BlockDirections::Outbound => ev |= libc::POLLOUT,
        BlockDirections::Both => ev |= libc::POLLIN | libc::POLLOUT,
        _ => ev |= libc::POLLIN,
    }
    let mut p = libc::pollfd {
        fd,
        events: ev,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms.max(1)) };
    p.revents & libc::POLLIN != 0
}

/// Calls a libssh2 function of a non-blocking session until it stops
/// saying `EAGAIN`, waiting on the socket in slices of at most 100 ms, as
/// `until` allows (connect time: no I/O thread yet).
fn retry<T>(
    sess: &Session,
    fd: RawFd,
    until: &Until,
    mut f: impl FnMut() -> Result<T, ssh2::Error>,
) -> Result<T, Fail> {
    loop {
        match f() {
            Err(e) if is_eagain(&e) => {
                until.check("").map_err(Fail::Give)?;
                poll_session(sess, fd, until.slice_ms());
            }
            Err(e) => return Err(Fail::Ssh(e)),
            Ok(v) => return Ok(v),
        }
    }
}

/// Resolves `host` (in a helper thread when it is a name, so that the stop
/// probe is still asked every 100 ms).
fn resolve(host: &str, port: u16, until: &Until) -> Result<Vec<SocketAddr>, Fail> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let h = host.to_string();
    std::thread::Builder::new()
        .name("ssh resolve".into())
        .spawn(move || {
            let r = (h.as_str(), port)
                .to_socket_addrs()
                .map(|a| a.collect::<Vec<_>>());
            let _ = tx.send(r);
        })
        .map_err(|e| Fail::Give(SessionError::Other(format!("cannot resolve {host}: {e}"))))?;
    loop {
        let left = until.slice().saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(a)) => return Ok(a),
            Ok(Err(e)) => {
                return Err(Fail::Give(SessionError::Other(format!(
                    "cannot resolve {host}: {e}"
                ))))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => until.check("").map_err(Fail::Give)?,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Fail::Give(SessionError::Other(format!(
                    "cannot resolve {host}"
                ))))
            }
        }
    }
}

/// A non-blocking TCP connect to `addr`, waited for in 100 ms slices.
fn tcp_connect(addr: &SocketAddr, until: &Until) -> Result<TcpStream, Fail> {
    let io = |e: std::io::Error| Fail::Give(SessionError::Io(e));
    // SAFETY: sockaddr_storage is plain data, valid when zeroed.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large enough and aligned for any
            // socket address.
            let sin = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(a.ip().octets()),
            };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above.
            let sin6 = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket takes integer arguments.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io(std::io::Error::last_os_error()));
    }
    // SAFETY: the descriptor was just created and is owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `ss` holds a valid address of `len` bytes.
    let r = unsafe {
        libc::connect(
            fd,
            (&ss as *const libc::sockaddr_storage).cast(),
            len as libc::socklen_t,
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(io(e));
        }
        loop {
            until.check("").map_err(Fail::Give)?;
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut p, 1, until.slice_ms()) } > 0 {
                break;
            }
        }
        let mut err: libc::c_int = 0;
        let mut l = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: SO_ERROR writes one int into `err`.
        unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut err as *mut libc::c_int).cast(),
                &mut l,
            );
        }
        if err != 0 {
            return Err(io(std::io::Error::from_raw_os_error(err)));
        }
    }
    Ok(TcpStream::from(sock))
}

/// TCP connect, handshake, host key check and authentication, with the
/// connect deadline and the run's stop probe. Returns the session in
/// non-blocking mode.
fn establish(
    p: &ConnParams,
    stop: &StopProbe,
) -> Result<(Session, TcpStream, Option<String>), SessionError> {
    let until = Until::new(Instant::now() + p.connect_timeout, stop.clone());
    let label = p.label();
    let timed_out = |what: &str| {
        SessionError::Other(format!(
            "{what} {}:{} timed out after {:?}",
            p.host, p.port, p.connect_timeout
        ))
    };
    let addrs = resolve(&p.host, p.port, &until).map_err(|f| match f {
        Fail::Give(SessionError::TimedOut(_)) => timed_out("resolving"),
        Fail::Give(e) => e,
        Fail::Ssh(e) => SessionError::Other(e.to_string()),
        Fail::Dead(e) => SessionError::Other(e),
    })?;
    let mut last = SessionError::Other(format!("{} has no address", p.host));
    let mut tcp = None;
    for a in addrs {
        match tcp_connect(&a, &until) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(Fail::Give(SessionError::TimedOut(_))) => {
                last = timed_out("connect to");
                break;
            }
            Err(Fail::Give(SessionError::Io(e))) => {
                last = SessionError::Other(format!("cannot connect to {}:{}: {e}", p.host, p.port))
            }
            Err(Fail::Give(e)) => return Err(e),
            Err(Fail::Ssh(e)) => last = SessionError::Other(e.to_string()),
            Err(Fail::Dead(e)) => last = SessionError::Other(e),
        }
    }
    let tcp = tcp.ok_or(last)?;
    let _ = tcp.set_nodelay(true);
    let fd = tcp.as_raw_fd();
    let other = |e: std::io::Error| SessionError::Other(e.to_string());
    let mut sess = Session::new().map_err(|e| SessionError::Other(e.to_string()))?;
    sess.set_tcp_stream(tcp.try_clone().map_err(other)?);
    sess.set_blocking(false);
    loop {
        match sess.handshake() {
            Ok(()) => break,
            Err(e) if is_eagain(&e) => {
                match until.check("") {
                    Err(SessionError::TimedOut(_)) => {
                        return Err(SessionError::Other(format!(
                            "ssh handshake with {}:{} timed out after {:?} (the server \
                             accepted the connection but did not answer)",
                            p.host, p.port, p.connect_timeout
                        )))
                    }
                    Err(e) => return Err(e),
                    Ok(()) => {}
                }
                poll_session(&sess, fd, until.slice_ms());
            }
            Err(e) => {
                return Err(SessionError::Other(format!(
                    "ssh handshake with {}:{} failed: {e}",
                    p.host, p.port
                )))
            }
        }
    }
    let note = hostkey::check(&sess, &p.host, p.port, &p.known_hosts, p.policy)
        .map_err(SessionError::Other)?;
    authenticate(&sess, fd, p, &label, &until)?;
    sess.set_keepalive(true, p.keepalive_interval().as_secs() as u32);
    sess.set_timeout(BLOCKING_TIMEOUT_MS);
    Ok((sess, tcp, note))
}

fn authenticate(
    sess: &Session,
    fd: RawFd,
    p: &ConnParams,
    label: &str,
    until: &Until,
) -> Result<(), SessionError> {
    // An attempt that fails is not an error (the next method is tried);
    // the deadline and the stop probe are.
    let attempt = |r: Result<(), Fail>| -> Result<(), SessionError> {
        match r {
            Ok(()) | Err(Fail::Ssh(_)) | Err(Fail::Dead(_)) => Ok(()),
            Err(Fail::Give(SessionError::TimedOut(_))) => Err(SessionError::Other(format!(
                "authentication of {label} timed out after {:?}",
                p.connect_timeout
            ))),
            Err(Fail::Give(e)) => Err(e),
        }
    };
    let mut tried = Vec::new();
    let methods = match retry(sess, fd, until, || {
        sess.auth_methods(&p.user).map(|m| m.to_string())
    }) {
        Ok(m) => m,
        Err(Fail::Ssh(_)) if sess.authenticated() => return Ok(()),
        Err(Fail::Ssh(e)) => {
            return Err(SessionError::Other(format!(
                "authentication of {label} failed: {e}"
            )))
        }
        Err(f) => {
            attempt(Err(f))?;
            return Err(SessionError::Other(format!(
                "authentication of {label} failed"
            )));
        }
    };
    if methods.contains("publickey") {
        if std::env::var_os("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty()) {
            tried.push("ssh-agent".to_string());
            if let Ok(mut agent) = sess.agent() {
                if agent.connect().is_ok() && agent.list_identities().is_ok() {
                    for id in agent.identities().unwrap_or_default() {
                        let r = retry(sess, fd, until, || agent.userauth(&p.user, &id));
                        let ok = r.is_ok();
                        attempt(r)?;
                        if ok {
                            break;
                        }
                    }
                    let _ = agent.disconnect();
                }
            }
        }
        for f in &p.identities {
            if sess.authenticated() {
                break;
            }
            if !f.is_file() {
                continue;
            }
            tried.push(format!("key {}", f.display()));
            attempt(retry(sess, fd, until, || {
                sess.userauth_pubkey_file(&p.user, None, f, None)
            }))?;
        }
    }
    if !sess.authenticated() {
        if let Some(var) = &p.password_env {
            match std::env::var(var) {
                Ok(pw) if methods.contains("password") => {
                    tried.push(format!("password from ${var}"));
                    // The error never holds the password.
                    attempt(retry(sess, fd, until, || {
                        sess.userauth_password(&p.user, &pw)
                    }))?;
                }
                Ok(_) => tried.push(format!(
                    "password from ${var} (the server does not offer password authentication)"
                )),
                Err(_) => {
                    return Err(SessionError::Other(format!(
                        "authentication of {label}: password_env names ${var}, which is not set"
                    )))
                }
            }
        }
    }
    if sess.authenticated() {
        return Ok(());
    }
    if tried.is_empty() {
        tried.push("nothing: no agent, no identity file found".into());
    }
    Err(SessionError::Other(format!(
        "authentication of {label} failed (server offers: {methods}; tried: {})",
        tried.join(", ")
    )))
}

/// Milliseconds since data last arrived on the socket, from the kernel.
#[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
fn since_last_data(fd: RawFd) -> Option<Duration> {
    // SAFETY: tcp_info is plain data, valid when zeroed.
    let mut ti: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: TCP_INFO writes at most `len` bytes into `ti`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut ti as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (r == 0).then(|| Duration::from_millis(u64::from(ti.tcpi_last_data_recv)))
}

#[cfg(not(all(target_os = "linux", any(target_env = "gnu", target_env = "musl"))))]
fn since_last_data(_fd: RawFd) -> Option<Duration> {
    None
}

/// A tester's channel as the I/O thread sees it.
struct Chan {
    ch: ssh2::Channel,
    shared: Arc<ChanShared>,
    out_eof: bool,
    err_eof: bool,
    /// Pending writes, each with its reply.
    writes: VecDeque<(Vec<u8>, usize, Reply<()>)>,
    eof_requested: bool,
    eof_sent: bool,
    close_sent: bool,
    done: bool,
}

/// A short command of the transport itself (signal, clean-up).
struct Job {
    ch: ssh2::Channel,
    out: Vec<u8>,
    deadline: Instant,
    reply: Reply<(i32, Vec<u8>)>,
    eof: bool,
    close_sent: bool,
}

struct Io {
    sess: Session,
    tcp: TcpStream,
    wake: OwnedFd,
    rx: Receiver<Req>,
    /// Requests that arrived while a long operation ran.
    deferred: VecDeque<Req>,
    chans: HashMap<u64, Chan>,
    jobs: Vec<Job>,
    /// Channels given up, whose close is retried for a while.
    dropped: Vec<(ssh2::Channel, Instant)>,
    next_id: u64,
    write_first: Option<u64>,
    lost: Arc<Mutex<Option<String>>>,
    label: String,
    keepalive: Duration,
    lost_after: Duration,
    last_rx: Instant,
    next_keepalive: Instant,
    buf: Vec<u8>,
    home: Option<String>,
    /// Set when an operation found the connection lost.
    dead: Option<String>,
}

fn exit_status(ch: &ssh2::Channel) -> ExitStatus {
    if let Ok(sig) = ch.exit_signal() {
        if let Some(s) = sig.exit_signal {
            return ExitStatus::Signal(s);
        }
    }
    ExitStatus::Code(ch.exit_status().unwrap_or(-1))
}

impl Io {
    fn run(mut self) {
        let reason = loop {
            match self.step() {
                Ok(true) => {}
                Ok(false) => break None,
                Err(e) => break Some(e),
            }
        };
        let message = reason
            .clone()
            .unwrap_or_else(|| format!("connection to {} closed", self.label));
        if let Ok(mut l) = self.lost.lock() {
            *l = Some(message.clone());
        }
        for c in self.chans.values() {
            c.shared.update(|b| {
                if !b.eof {
                    b.lost = Some(message.clone());
                }
            });
            for (_, _, r) in &c.writes {
                let _ = r.send(Err(SessionError::Closed(message.clone())));
            }
        }
        for j in &self.jobs {
            let _ = j.reply.send(Err(SessionError::Other(message.clone())));
        }
        // Fail whatever is still queued.
        let mut left: Vec<Req> = self.deferred.drain(..).collect();
        while let Ok(r) = self.rx.try_recv() {
            left.push(r);
        }
        for r in left {
            let e = SessionError::Closed(message.clone());
            match r {
                Req::Open { reply, .. } => drop(reply.send(Err(OpenError::Other(e)))),
                Req::Write { reply, .. } => drop(reply.send(Err(e))),
                Req::Exec { reply, .. } => drop(reply.send(Err(e))),
                Req::Put { reply, .. } | Req::Get { reply, .. } => drop(reply.send(Err(e))),
                Req::Eof { .. } | Req::Drop { .. } => {}
            }
        }
        if reason.is_none() {
            self.sess.set_blocking(true);
            let _ = self.sess.disconnect(None, "dtest done", None);
        }
        let _ = self.tcp.shutdown(std::net::Shutdown::Both);
    }

    fn lost_msg(&self, r: impl std::fmt::Display) -> String {
        format!("connection to {} lost: {r}", self.label)
    }

    /// One round: requests, channel I/O, keepalive, then a wait when idle.
    /// `Ok(false)`: every handle is gone. `Err`: the connection is lost.
    fn step(&mut self) -> Result<bool, String> {
        let mut progress = false;
        loop {
            let r = match self.deferred.pop_front() {
                Some(r) => r,
                None => match self.rx.try_recv() {
                    Ok(r) => r,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        if self.chans.is_empty() && self.jobs.is_empty() {
                            return Ok(false);
                        }
                        break;
                    }
                },
            };
            progress = true;
            self.handle(r);
            if let Some(d) = self.dead.take() {
                return Err(d);
            }
        }
        progress |= self.pump()?;
        self.tick()?;
        if !progress {
            self.wait(Duration::from_millis(500));
        }
        Ok(true)
    }

    /// How long the server has been silent.
    fn silence(&mut self) -> Duration {
        let now = Instant::now();
        if let Some(d) = since_last_data(self.tcp.as_raw_fd()) {
            if let Some(t) = now.checked_sub(d) {
                if t > self.last_rx {
                    self.last_rx = t;
                }
            }
        }
        now.saturating_duration_since(self.last_rx)
    }

    /// Sends a keepalive when one is due; fails once the server has been
    /// silent for longer than `lost_after`.
    fn tick(&mut self) -> Result<(), String> {
        let now = Instant::now();
        if now >= self.next_keepalive {
            match self.sess.keepalive_send() {
                Ok(_) => {}
                Err(e) if is_eagain(&e) => {}
                Err(e) => return Err(self.lost_msg(format_args!("keepalive: {e}"))),
            }
            self.next_keepalive = now + self.keepalive;
        }
        let s = self.silence();
        if s > self.lost_after {
            return Err(format!(
                "connection lost: no answer from {} for {}s (keepalive every {}s)",
                self.label,
                s.as_secs(),
                self.keepalive.as_secs()
            ));
        }
        Ok(())
    }

    /// Whether some channel or job wants to read the socket.
    fn reading(&self) -> bool {
        !self.jobs.is_empty()
            || self
                .chans
                .values()
                .any(|c| !c.done && !c.shared.buf.lock().map(|b| b.stalled).unwrap_or(false))
    }

    fn wait(&mut self, max: Duration) {
        let dirs = self.sess.block_directions();
        // Nobody reads while every channel's queue is full: waiting for
        // input would spin; the reader's nudge wakes the thread.
        let mut ev = if self.reading() { libc::POLLIN } else { 0 };
        // Room in the socket matters when libssh2 waits for it; a write
        // held up by a full window waits for the window adjust (input).
        let mut max = max;
        if matches!(dirs, BlockDirections::Outbound | BlockDirections::Both) {
            ev |= libc::POLLOUT;
        } else if self.chans.values().any(|c| !c.writes.is_empty()) {
            max = max.min(Duration::from_millis(200));
        }
        let mut fds = [
            libc::pollfd {
                fd: self.tcp.as_raw_fd(),
                events: ev,
                revents: 0,
            },
            libc::pollfd {
                fd: self.wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let now = Instant::now();
        let until_ka = self.next_keepalive.saturating_duration_since(now);
        let until_lost = (self.last_rx + self.lost_after + Duration::from_millis(10))
            .saturating_duration_since(now);
        let ms = max.min(until_ka).min(until_lost).as_millis().max(1) as i32;
        // SAFETY: a valid array of two pollfds.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        if fds[0].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            self.last_rx = Instant::now();
        }
        if fds[1].revents & libc::POLLIN != 0 {
            let mut b = [0u8; 256];
            // SAFETY: reading into a valid local buffer.
            while unsafe { libc::read(self.wake.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) } > 0 {
            }
        }
    }

    /// Takes the requests that arrived while a long operation runs: input
    /// and channel ends are served at once, the others wait their turn.
    fn serve_nested(&mut self) {
        while let Ok(r) = self.rx.try_recv() {
            match r {
                Req::Write { .. } | Req::Eof { .. } | Req::Drop { .. } => self.handle(r),
                other => self.deferred.push_back(other),
            }
        }
    }

    /// One wait of a long operation: the other channels are served, a
    /// keepalive sent when due, the liveness and `until` checked.
    fn idle(&mut self, until: &Until, what: &str) -> Result<(), Fail> {
        self.serve_nested();
        let progress = self.pump().map_err(Fail::Dead)?;
        self.tick().map_err(Fail::Dead)?;
        until.check(what).map_err(Fail::Give)?;
        if !progress && poll_session(&self.sess, self.tcp.as_raw_fd(), 20) {
            self.last_rx = Instant::now();
        }
        Ok(())
    }

    /// Calls a libssh2 function until it stops saying `EAGAIN`, serving
    /// the connection meanwhile, as `until` allows.
    fn blocking<T>(
        &mut self,
        until: &Until,
        what: &str,
        mut f: impl FnMut(&mut Self) -> Result<T, ssh2::Error>,
    ) -> Result<T, Fail> {
        loop {
            match f(self) {
                Err(e) if is_eagain(&e) => self.idle(until, what)?,
                Err(e) => return Err(Fail::Ssh(e)),
                Ok(v) => return Ok(v),
            }
        }
    }

    /// The error a failed operation replies with (`ctx` names what
    /// failed); a lost connection also ends the thread.
    fn failed(&mut self, f: Fail, ctx: &str) -> SessionError {
        match f {
            Fail::Ssh(e) => SessionError::Other(format!("{ctx}: {e}")),
            Fail::Give(e) => e,
            Fail::Dead(m) => {
                self.dead = Some(m.clone());
                SessionError::Closed(m)
            }
        }
    }

    fn open_channel(
        &mut self,
        command: &str,
        pty: bool,
        until: &Until,
    ) -> Result<ssh2::Channel, OpenError> {
        let what = "the server did not open a channel in time";
        let mut ch = match self.blocking(until, what, |s| {
            s.sess
                .channel_open("session", CHANNEL_WINDOW, 32 << 10, None)
        }) {
            Ok(c) => c,
            Err(Fail::Ssh(e)) if e.code() == ErrorCode::Session(CHANNEL_FAILURE) => {
                return Err(OpenError::Full(e.to_string()))
            }
            Err(f) => return Err(OpenError::Other(self.failed(f, "channel"))),
        };
        let r = (|| {
            if pty {
                let term = std::env::var("TERM").unwrap_or_else(|_| "dumb".into());
                self.blocking(until, what, |_| {
                    ch.request_pty(&term, None, Some((250, 50, 0, 0)))
                })?;
            }
            self.blocking(until, what, |_| ch.exec(command))
        })();
        match r {
            Ok(()) => Ok(ch),
            Err(f) => {
                self.dropped.push((ch, Instant::now()));
                Err(OpenError::Other(self.failed(f, "channel")))
            }
        }
    }

    fn handle(&mut self, r: Req) {
        match r {
            Req::Open {
                command,
                pty,
                until,
                reply,
            } => match self.open_channel(&command, pty, &until) {
                Ok(ch) => {
                    let id = self.next_id;
                    self.next_id += 1;
                    let shared = Arc::new(ChanShared::default());
                    self.chans.insert(
                        id,
                        Chan {
                            ch,
                            shared: shared.clone(),
                            out_eof: false,
                            err_eof: pty,
                            writes: VecDeque::new(),
                            eof_requested: false,
                            eof_sent: false,
                            close_sent: false,
                            done: false,
                        },
                    );
                    if reply.send(Ok((id, shared))).is_err() {
                        // The caller gave up: forget the channel.
                        self.handle(Req::Drop { id });
                    }
                }
                Err(e) => drop(reply.send(Err(e))),
            },
            Req::Write { id, data, reply } => match self.chans.get_mut(&id) {
                Some(c) if !c.done && !c.eof_requested => c.writes.push_back((data, 0, reply)),
                _ => drop(reply.send(Err(SessionError::Closed("the channel is closed".into())))),
            },
            Req::Eof { id } => {
                if let Some(c) = self.chans.get_mut(&id) {
                    c.eof_requested = true;
                }
            }
            Req::Drop { id } => {
                if let Some(c) = self.chans.remove(&id) {
                    for (_, _, r) in &c.writes {
                        let _ = r.send(Err(SessionError::Closed("the channel is closed".into())));
                    }
                    // Its reader sees the end of what was queued.
                    c.shared.update(|b| b.eof = true);
                    if !c.done {
                        self.dropped.push((c.ch, Instant::now()));
                    }
                }
                if self.write_first == Some(id) {
                    self.write_first = None;
                }
            }
            Req::Exec {
                command,
                until,
                reply,
            } => match self.open_channel(&command, false, &until) {
                Ok(ch) => self.jobs.push(Job {
                    ch,
                    out: Vec::new(),
                    deadline: until.deadline,
                    reply,
                    eof: false,
                    close_sent: false,
                }),
                Err(OpenError::Full(e)) => drop(reply.send(Err(SessionError::Other(e)))),
                Err(OpenError::Other(e)) => drop(reply.send(Err(e))),
            },
            Req::Put {
                local,
                remote,
                until,
                reply,
            } => {
                let r = self.put(&local, &remote, &until);
                let _ = reply.send(r);
            }
            Req::Get {
                remote,
                local,
                until,
                reply,
            } => {
                let r = self.get(&remote, &local, &until);
                let _ = reply.send(r);
            }
        }
    }

    /// Moves bytes: pending writes (a write stopped half-way first), output
    /// of every channel whose queue has room, jobs, closes of dropped
    /// channels. `Err`: the connection is lost.
    fn pump(&mut self) -> Result<bool, String> {
        let mut progress = self.pump_writes();
        progress |= self.pump_reads()?;
        progress |= self.pump_jobs();
        self.dropped.retain_mut(|(ch, since)| match ch.close() {
            Err(e) if is_eagain(&e) => since.elapsed() < DROP_CLOSE,
            _ => false,
        });
        Ok(progress)
    }

    /// Writes what the channels have queued. A channel whose write would
    /// block does not hold up the others: either its window is full (its
    /// command does not read its input; the others go on), or a packet of
    /// it is half sent, and then libssh2 answers `EAGAIN` to every other
    /// packet until that one is finished (it is retried first).
    fn pump_writes(&mut self) -> bool {
        let mut progress = false;
        let mut order: Vec<u64> = self
            .chans
            .iter()
            .filter(|(_, c)| !c.writes.is_empty() || (c.eof_requested && !c.eof_sent))
            .map(|(id, _)| *id)
            .collect();
        if let Some(first) = self.write_first {
            if let Some(i) = order.iter().position(|x| *x == first) {
                order.swap(0, i);
            }
        }
        for id in order {
            let Some(c) = self.chans.get_mut(&id) else {
                continue;
            };
            let mut blocked = false;
            while let Some((data, off, _)) = c.writes.front_mut() {
                match c.ch.write(&data[*off..]) {
                    // Nothing taken: the window is full.
                    Ok(0) => {
                        blocked = true;
                        break;
                    }
                    Ok(n) => {
                        progress = true;
                        *off += n;
                        if *off >= data.len() {
                            if let Some((_, _, r)) = c.writes.pop_front() {
                                let _ = r.send(Ok(()));
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        blocked = true;
                        break;
                    }
                    Err(e) => {
                        for (_, _, r) in c.writes.drain(..) {
                            let _ = r.send(Err(SessionError::Closed(format!("write: {e}"))));
                        }
                    }
                }
            }
            if !blocked && c.writes.is_empty() && c.eof_requested && !c.eof_sent {
                match c.ch.send_eof() {
                    Ok(()) => c.eof_sent = true,
                    Err(e) if is_eagain(&e) => blocked = true,
                    Err(_) => c.eof_sent = true,
                }
            }
            if blocked {
                if self.write_first.is_none() {
                    self.write_first = Some(id);
                }
            } else if self.write_first == Some(id) {
                self.write_first = None;
            }
        }
        progress
    }

    fn pump_reads(&mut self) -> Result<bool, String> {
        let mut progress = false;
        let mut lost = None;
        for c in self.chans.values_mut() {
            if c.done {
                continue;
            }
            // Stderr first: what a command wrote there before it ended is
            // then queued no later than its end marker on stdout.
            for stream in [Stream::Stderr, Stream::Stdout] {
                let at_eof = if stream == Stream::Stdout {
                    c.out_eof
                } else {
                    c.err_eof
                };
                if at_eof {
                    continue;
                }
                // At most 1 MiB per channel and round, for fairness.
                for _ in 0..16 {
                    let full = c
                        .shared
                        .buf
                        .lock()
                        .map(|b| b.queued >= QUEUE_HIGH)
                        .unwrap_or(true);
                    if full {
                        c.shared.update(|b| b.stalled = true);
                        break;
                    }
                    let r = if stream == Stream::Stdout {
                        c.ch.read(&mut self.buf)
                    } else {
                        c.ch.stderr().read(&mut self.buf)
                    };
                    match r {
                        Ok(0) => {
                            if stream == Stream::Stdout {
                                c.out_eof = true;
                            } else {
                                c.err_eof = true;
                            }
                            progress = true;
                            break;
                        }
                        Ok(n) => {
                            progress = true;
                            self.last_rx = Instant::now();
                            let chunk = self.buf[..n].to_vec();
                            c.shared.update(|b| {
                                b.queued += n;
                                b.queue.push_back((stream, chunk));
                            });
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            lost = Some(format!("read: {e}"));
                            break;
                        }
                    }
                }
            }
            if c.out_eof && c.err_eof && !c.close_sent {
                match c.ch.close() {
                    Err(e) if is_eagain(&e) => {}
                    _ => c.close_sent = true,
                }
            }
            if c.close_sent && !c.done {
                let finished = match c.ch.wait_close() {
                    Ok(()) => true,
                    Err(e) => !is_eagain(&e),
                };
                if finished {
                    c.done = true;
                    progress = true;
                    let st = exit_status(&c.ch);
                    c.shared.update(|b| {
                        b.eof = true;
                        b.status = Some(st);
                    });
                }
            }
        }
        if let Some(l) = lost {
            if self.sess_dead() {
                return Err(self.lost_msg(l));
            }
        }
        Ok(progress)
    }

    fn pump_jobs(&mut self) -> bool {
        let mut progress = false;
        let now = Instant::now();
        let mut i = 0;
        while i < self.jobs.len() {
            let j = &mut self.jobs[i];
            let mut finished = None;
            if !j.eof {
                loop {
                    match j.ch.read(&mut self.buf) {
                        Ok(0) => {
                            j.eof = true;
                            break;
                        }
                        Ok(n) => {
                            progress = true;
                            self.last_rx = Instant::now();
                            j.out.extend_from_slice(&self.buf[..n]);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            finished = Some(Err(SessionError::Other(e.to_string())));
                            break;
                        }
                    }
                }
                // Drain stderr so the window never closes on it.
                let _ = j.ch.stderr().read(&mut self.buf);
            }
            if j.eof && !j.close_sent {
                match j.ch.close() {
                    Err(e) if is_eagain(&e) => {}
                    _ => j.close_sent = true,
                }
            }
            if j.close_sent && finished.is_none() {
                match j.ch.wait_close() {
                    Ok(()) => {
                        finished = Some(Ok((
                            j.ch.exit_status().unwrap_or(-1),
                            std::mem::take(&mut j.out),
                        )))
                    }
                    Err(e) if is_eagain(&e) => {}
                    Err(e) => finished = Some(Err(SessionError::Other(e.to_string()))),
                }
            }
            if finished.is_none() && now >= j.deadline {
                finished = Some(Err(SessionError::TimedOut(
                    "the remote command did not end in time".into(),
                )));
            }
            if let Some(f) = finished {
                progress = true;
                let j = self.jobs.swap_remove(i);
                let _ = j.reply.send(f);
                if !j.close_sent {
                    self.dropped.push((j.ch, Instant::now()));
                }
            } else {
                i += 1;
            }
        }
        progress
    }

    /// Whether the session itself is broken (not only one channel).
    fn sess_dead(&mut self) -> bool {
        match self.sess.keepalive_send() {
            Ok(_) => false,
            Err(e) => !is_eagain(&e),
        }
    }

    fn home(&mut self, sftp: &ssh2::Sftp, until: &Until) -> Result<String, Fail> {
        if let Some(h) = &self.home {
            return Ok(h.clone());
        }
        let h = self
            .blocking(until, "", |_| sftp.realpath(Path::new(".")))?
            .to_string_lossy()
            .into_owned();
        self.home = Some(h.clone());
        Ok(h)
    }

    fn resolve(&mut self, sftp: &ssh2::Sftp, remote: &str, until: &Until) -> Result<String, Fail> {
        if remote.starts_with('/') {
            return Ok(remote.to_string());
        }
        let home = self.home(sftp, until)?;
        Ok(format!("{}/{remote}", home.trim_end_matches('/')))
    }

    /// Ends an SFTP operation that failed: on a lost connection its handles
    /// are leaked (their drop would wait in blocking mode), otherwise the
    /// file is closed as far as a second allows.
    fn abandon(&mut self, f: &Fail, file: Option<ssh2::File>, sftp: ssh2::Sftp) {
        if matches!(f, Fail::Dead(_)) || self.dead.is_some() {
            std::mem::forget(file);
            std::mem::forget(sftp);
            return;
        }
        if let Some(mut file) = file {
            let u = Until::after(Duration::from_secs(1));
            let _ = self.blocking(&u, "", |_| file.close());
        }
    }

    fn sftp(&mut self, until: &Until) -> Result<ssh2::Sftp, SessionError> {
        let what = "the transfer did not finish in time";
        self.blocking(until, what, |s| s.sess.sftp())
            .map_err(|f| self.failed(f, "sftp"))
    }

    fn put(
        &mut self,
        local: &Path,
        remote: &str,
        until: &Until,
    ) -> Result<Transferred, SessionError> {
        use sha2::Digest;
        let what = "the transfer did not finish in time";
        let mut src = std::fs::File::open(local)
            .map_err(|e| SessionError::Other(format!("{}: {e}", local.display())))?;
        let mode = src
            .metadata()
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
            .unwrap_or(0o644);
        let sftp = self.sftp(until)?;
        let path = match self.resolve(&sftp, remote, until) {
            Ok(p) => p,
            Err(f) => {
                self.abandon(&f, None, sftp);
                return Err(self.failed(f, "realpath ."));
            }
        };
        // Create missing parent directories (errors show up at open).
        let mut dir = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if part.is_empty() {
                continue;
            }
            dir.push('/');
            dir.push_str(part);
            let d = PathBuf::from(&dir);
            if self.blocking(until, what, |_| sftp.stat(&d)).is_err() {
                let _ = self.blocking(until, what, |_| sftp.mkdir(&d, 0o755));
            }
        }
        let p = PathBuf::from(&path);
        let mut f = match self.blocking(until, what, |_| {
            sftp.open_mode(
                &p,
                ssh2::OpenFlags::WRITE | ssh2::OpenFlags::CREATE | ssh2::OpenFlags::TRUNCATE,
                mode as i32,
                ssh2::OpenType::File,
            )
        }) {
            Ok(f) => f,
            Err(fail) => {
                self.abandon(&fail, None, sftp);
                return Err(self.failed(fail, &path));
            }
        };
        let mut h = sha2::Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 32 << 10];
        let r = (|| -> Result<(), Fail> {
            loop {
                self.idle_check(until, what)?;
                let n = src.read(&mut buf).map_err(|e| {
                    Fail::Give(SessionError::Other(format!("{}: {e}", local.display())))
                })?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                size += n as u64;
                let mut off = 0;
                while off < n {
                    match f.write(&buf[off..n]) {
                        Ok(0) => self.idle(until, what)?,
                        Ok(k) => off += k,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            self.idle(until, what)?
                        }
                        Err(e) => {
                            return Err(Fail::Give(SessionError::Other(format!("{path}: {e}"))))
                        }
                    }
                }
            }
            let stat = ssh2::FileStat {
                size: None,
                uid: None,
                gid: None,
                perm: Some(mode),
                atime: None,
                mtime: None,
            };
            self.blocking(until, what, |_| f.setstat(stat.clone()))?;
            self.blocking(until, what, |_| f.close())
        })();
        if let Err(fail) = r {
            self.abandon(&fail, Some(f), sftp);
            return Err(self.failed(fail, &path));
        }
        Ok(Transferred {
            path,
            size,
            sha256: h.finalize().into(),
        })
    }

    /// Between two pieces of a transfer: the other channels are served and
    /// `until` is checked, without waiting.
    fn idle_check(&mut self, until: &Until, what: &str) -> Result<(), Fail> {
        self.serve_nested();
        self.pump().map_err(Fail::Dead)?;
        self.tick().map_err(Fail::Dead)?;
        until.check(what).map_err(Fail::Give)
    }

    fn get(
        &mut self,
        remote: &str,
        local: &Path,
        until: &Until,
    ) -> Result<Transferred, SessionError> {
        use sha2::Digest;
        let what = "the transfer did not finish in time";
        let sftp = self.sftp(until)?;
        let r = (|| -> Result<(String, ssh2::File, u32), Fail> {
            let path = self.resolve(&sftp, remote, until)?;
            let p = PathBuf::from(&path);
            let st = self.blocking(until, what, |_| sftp.stat(&p))?;
            if !st.is_file() {
                return Err(Fail::Give(SessionError::Other(format!(
                    "{path}: not a regular file (only regular files are copied)"
                ))));
            }
            let f = self.blocking(until, what, |_| sftp.open(&p))?;
            Ok((path, f, st.perm.unwrap_or(0o644) & 0o7777))
        })();
        let (path, mut f, mode) = match r {
            Ok(x) => x,
            Err(fail) => {
                self.abandon(&fail, None, sftp);
                return Err(self.failed(fail, remote));
            }
        };
        let r = (|| -> Result<(u64, [u8; 32]), Fail> {
            let io = |e: std::io::Error, p: &Path| {
                Fail::Give(SessionError::Other(format!("{}: {e}", p.display())))
            };
            if let Some(parent) = local.parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).map_err(|e| io(e, parent))?;
                }
            }
            let mut out =
                std::io::BufWriter::new(std::fs::File::create(local).map_err(|e| io(e, local))?);
            let mut h = sha2::Sha256::new();
            let mut size = 0u64;
            let mut buf = vec![0u8; 32 << 10];
            loop {
                match f.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        h.update(&buf[..n]);
                        size += n as u64;
                        out.write_all(&buf[..n]).map_err(|e| io(e, local))?;
                        self.idle_check(until, what)?;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        self.idle(until, what)?
                    }
                    Err(e) => return Err(Fail::Give(SessionError::Other(format!("{path}: {e}")))),
                }
            }
            out.flush().map_err(|e| io(e, local))?;
            self.blocking(until, what, |_| f.close())?;
            Ok((size, h.finalize().into()))
        })();
        match r {
            Ok((size, sha256)) => {
                let _ = std::fs::set_permissions(
                    local,
                    std::os::unix::fs::PermissionsExt::from_mode(mode),
                );
                Ok(Transferred { path, size, sha256 })
            }
            Err(fail) => {
                self.abandon(&fail, Some(f), sftp);
                Err(self.failed(fail, &path))
            }
        }
    }
}
