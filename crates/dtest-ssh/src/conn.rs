//! One SSH connection shared by the testers on a host: connecting, host key
//! checking and authentication (in the caller's thread, blocking with a
//! deadline), then one I/O thread that owns the `ssh2::Session` in
//! non-blocking mode and serves every channel of the connection.
//!
//! libssh2 sessions are not safe to drive from several threads at once, and
//! in non-blocking mode a partly sent packet must be completed before any
//! other packet is started. Both are guaranteed here by construction: only
//! the I/O thread ever touches the session, and when a channel write stops
//! half-way (`EAGAIN`) that same write is retried before any other write.
//!
//! Testers talk to the I/O thread through a request queue (each request has
//! its own reply slot and deadline) and read their output from a per-channel
//! queue with a condition variable. A self-pipe wakes the I/O thread when a
//! request arrives or a reader has drained a full queue. Output queues are
//! bounded: a channel whose queue is full is not read, so the SSH window
//! closes and the remote command is slowed down instead of memory growing.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

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
/// Read chunk size.
const CHUNK: usize = 64 << 10;
/// Receive window of a channel: libssh2's default (2 MiB) stalls the sender
/// on a fast link; a larger window keeps bulk output flowing.
const CHANNEL_WINDOW: u32 = 64 << 20;

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
    /// silent intervals.
    pub keepalive: Duration,
}

impl ConnParams {
    /// `user@host:port`.
    pub fn label(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }
}

/// Why opening a channel failed.
#[derive(Debug)]
pub enum OpenError {
    /// The server refused another session on this connection.
    Full(String),
    /// Anything else.
    Other(String),
}

/// The output side of one channel, shared between the I/O thread (writer)
/// and the tester's thread (reader).
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

type Reply<T> = SyncSender<Result<T, String>>;

enum Req {
    Open {
        command: String,
        pty: bool,
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
        deadline: Instant,
        reply: Reply<(i32, Vec<u8>)>,
    },
    Put {
        local: PathBuf,
        remote: String,
        deadline: Instant,
        reply: Reply<(String, u64, [u8; 32])>,
    },
    Get {
        remote: String,
        local: PathBuf,
        deadline: Instant,
        reply: Reply<(String, u64, [u8; 32])>,
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

fn wait_reply<T>(rx: Receiver<Result<T, String>>, deadline: Instant) -> Result<T, String> {
    let now = Instant::now();
    match rx.recv_timeout(deadline.saturating_duration_since(now) + Duration::from_millis(500)) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Timeout) => Err("no answer in time".into()),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("the connection is closed".into()),
    }
}

impl Conn {
    /// Connects, checks the host key, authenticates and starts the I/O
    /// thread.
    pub fn connect(p: &ConnParams, limit: usize) -> Result<Conn, String> {
        let (sess, tcp, note) = establish(p)?;
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 writes two descriptors into the array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(format!("pipe: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: both descriptors were just created and are owned by nobody.
        let (wr, ww) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let (tx, rx) = mpsc::channel();
        let lost = Arc::new(Mutex::new(None));
        let io = Io {
            sess,
            tcp,
            wake: wr,
            rx,
            chans: HashMap::new(),
            jobs: Vec::new(),
            next_id: 1,
            write_first: None,
            lost: lost.clone(),
            label: p.label(),
            keepalive: p.keepalive,
            last_rx: Instant::now(),
            next_keepalive: Instant::now() + p.keepalive,
            buf: vec![0; CHUNK],
            home: None,
        };
        std::thread::Builder::new()
            .name(format!("ssh {}", p.label()))
            .spawn(move || io.run())
            .map_err(|e| format!("cannot start the I/O thread: {e}"))?;
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

    fn send(&self, r: Req) -> Result<(), String> {
        if let Some(l) = self.lost() {
            return Err(l);
        }
        self.tx
            .lock()
            .map_err(|_| "poisoned".to_string())?
            .send(r)
            .map_err(|_| "the connection is closed".to_string())?;
        wake(&self.wake);
        Ok(())
    }

    /// Opens a session channel running `command`, with a pty or not.
    pub fn open(
        &self,
        command: &str,
        pty: bool,
        deadline: Instant,
    ) -> Result<(u64, Arc<ChanShared>), OpenError> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.send(Req::Open {
            command: command.into(),
            pty,
            reply,
        })
        .map_err(OpenError::Other)?;
        let wait = deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(500);
        match rx.recv_timeout(wait) {
            Ok(r) => r,
            Err(_) => Err(OpenError::Other("no answer in time".into())),
        }
    }

    /// Writes all of `data` to channel `id`.
    pub fn write(&self, id: u64, data: &[u8], deadline: Instant) -> Result<(), String> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.send(Req::Write {
            id,
            data: data.to_vec(),
            reply,
        })?;
        wait_reply(rx, deadline)
    }

    /// Wakes the I/O thread (a reader drained a full queue).
    pub fn nudge(&self) {
        wake(&self.wake);
    }

    /// Sends EOF on channel `id` (no answer).
    pub fn eof(&self, id: u64) {
        let _ = self.send(Req::Eof { id });
    }

    /// Forgets channel `id` (closes it).
    pub fn drop_channel(&self, id: u64) {
        let _ = self.send(Req::Drop { id });
    }

    /// Runs `command` in its own channel; returns its status and output.
    pub fn exec(&self, command: &str, deadline: Instant) -> Result<(i32, Vec<u8>), String> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.send(Req::Exec {
            command: command.into(),
            deadline,
            reply,
        })?;
        wait_reply(rx, deadline)
    }

    /// SFTP upload; returns the resolved remote path, size and SHA-256.
    pub fn put(
        &self,
        local: &Path,
        remote: &str,
        deadline: Instant,
    ) -> Result<(String, u64, [u8; 32]), String> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.send(Req::Put {
            local: local.into(),
            remote: remote.into(),
            deadline,
            reply,
        })?;
        wait_reply(rx, deadline)
    }

    /// SFTP download; returns the resolved remote path, size and SHA-256.
    pub fn get(
        &self,
        remote: &str,
        local: &Path,
        deadline: Instant,
    ) -> Result<(String, u64, [u8; 32]), String> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.send(Req::Get {
            remote: remote.into(),
            local: local.into(),
            deadline,
            reply,
        })?;
        wait_reply(rx, deadline)
    }
}

/// TCP connect, handshake, host key check and authentication, blocking with
/// the connect deadline. Returns the session in non-blocking mode.
fn establish(p: &ConnParams) -> Result<(Session, TcpStream, Option<String>), String> {
    let deadline = Instant::now() + p.connect_timeout;
    let label = p.label();
    let addrs: Vec<_> = (p.host.as_str(), p.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", p.host))?
        .collect();
    let mut last = format!("{} has no address", p.host);
    let mut tcp = None;
    for a in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            last = format!(
                "connect to {}:{} timed out after {:?}",
                p.host, p.port, p.connect_timeout
            );
            break;
        }
        match TcpStream::connect_timeout(&a, left) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                last = format!(
                    "connect to {}:{} timed out after {:?}",
                    p.host, p.port, p.connect_timeout
                )
            }
            Err(e) => last = format!("cannot connect to {}:{}: {e}", p.host, p.port),
        }
    }
    let tcp = tcp.ok_or(last)?;
    let _ = tcp.set_nodelay(true);
    let mut sess = Session::new().map_err(|e| e.to_string())?;
    let ms = |d: Instant| {
        d.saturating_duration_since(Instant::now())
            .as_millis()
            .max(1) as u32
    };
    sess.set_timeout(ms(deadline));
    sess.set_tcp_stream(tcp.try_clone().map_err(|e| e.to_string())?);
    sess.handshake()
        .map_err(|e| format!("ssh handshake with {}:{} failed: {e}", p.host, p.port))?;
    let note = hostkey::check(&sess, &p.host, p.port, &p.known_hosts, p.policy)?;
    authenticate(&sess, p, &label, deadline)?;
    sess.set_keepalive(true, p.keepalive.as_secs().max(1) as u32);
    sess.set_timeout(0);
    sess.set_blocking(false);
    Ok((sess, tcp, note))
}

fn authenticate(
    sess: &Session,
    p: &ConnParams,
    label: &str,
    deadline: Instant,
) -> Result<(), String> {
    let ms = |d: Instant| {
        d.saturating_duration_since(Instant::now())
            .as_millis()
            .max(1) as u32
    };
    let mut tried = Vec::new();
    let methods = match sess.auth_methods(&p.user) {
        Ok(m) => m.to_string(),
        Err(_) if sess.authenticated() => return Ok(()),
        Err(e) => return Err(format!("authentication of {label} failed: {e}")),
    };
    if methods.contains("publickey") {
        if std::env::var_os("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty()) {
            sess.set_timeout(ms(deadline));
            tried.push("ssh-agent".to_string());
            if let Ok(mut agent) = sess.agent() {
                if agent.connect().is_ok() && agent.list_identities().is_ok() {
                    for id in agent.identities().unwrap_or_default() {
                        if agent.userauth(&p.user, &id).is_ok() {
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
            sess.set_timeout(ms(deadline));
            tried.push(format!("key {}", f.display()));
            let _ = sess.userauth_pubkey_file(&p.user, None, f, None);
        }
    }
    if !sess.authenticated() {
        if let Some(var) = &p.password_env {
            match std::env::var(var) {
                Ok(pw) if methods.contains("password") => {
                    sess.set_timeout(ms(deadline));
                    tried.push(format!("password from ${var}"));
                    // The error never holds the password.
                    let _ = sess.userauth_password(&p.user, &pw);
                }
                Ok(_) => tried.push(format!(
                    "password from ${var} (the server does not offer password authentication)"
                )),
                Err(_) => {
                    return Err(format!(
                        "authentication of {label}: password_env names ${var}, which is not set"
                    ))
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
    Err(format!(
        "authentication of {label} failed (server offers: {methods}; tried: {})",
        tried.join(", ")
    ))
}

fn is_eagain(e: &ssh2::Error) -> bool {
    e.code() == ErrorCode::Session(EAGAIN)
}

/// A tester's channel as the I/O thread sees it.
struct Chan {
    ch: ssh2::Channel,
    shared: Arc<ChanShared>,
    pty: bool,
    out_eof: bool,
    err_eof: bool,
    /// Pending writes, each with its reply.
    writes: VecDeque<(Vec<u8>, usize, Reply<()>)>,
    eof_requested: bool,
    eof_sent: bool,
    closing: bool,
    done: bool,
}

/// A short command of the transport itself (signal, clean-up).
struct Job {
    ch: ssh2::Channel,
    out: Vec<u8>,
    deadline: Instant,
    reply: Reply<(i32, Vec<u8>)>,
    eof: bool,
}

struct Io {
    sess: Session,
    tcp: TcpStream,
    wake: OwnedFd,
    rx: Receiver<Req>,
    chans: HashMap<u64, Chan>,
    jobs: Vec<Job>,
    next_id: u64,
    write_first: Option<u64>,
    lost: Arc<Mutex<Option<String>>>,
    label: String,
    keepalive: Duration,
    last_rx: Instant,
    next_keepalive: Instant,
    buf: Vec<u8>,
    home: Option<String>,
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
        let reason = reason.map(|r| format!("connection to {} lost: {r}", self.label));
        if let Ok(mut l) = self.lost.lock() {
            *l = Some(
                reason
                    .clone()
                    .unwrap_or_else(|| format!("connection to {} closed", self.label)),
            );
        }
        for c in self.chans.values() {
            c.shared.update(|b| {
                if !b.eof {
                    b.lost = reason.clone().or(Some("connection closed".into()));
                }
            });
            for (_, _, r) in &c.writes {
                let _ = r.send(Err(reason.clone().unwrap_or_default()));
            }
        }
        for j in &self.jobs {
            let _ = j.reply.send(Err(reason.clone().unwrap_or_default()));
        }
        // Fail whatever is still queued.
        while let Ok(r) = self.rx.try_recv() {
            let e = reason
                .clone()
                .unwrap_or_else(|| "connection closed".to_string());
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
            self.sess.set_timeout(1000);
            let _ = self.sess.disconnect(None, "dtest done", None);
        }
        let _ = self.tcp.shutdown(std::net::Shutdown::Both);
    }

    /// One round: requests, channel I/O, keepalive, then a wait when idle.
    /// `Ok(false)`: every handle is gone.
    fn step(&mut self) -> Result<bool, String> {
        let mut progress = false;
        loop {
            match self.rx.try_recv() {
                Ok(r) => {
                    progress = true;
                    self.handle(r)?;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if self.chans.is_empty() && self.jobs.is_empty() {
                        return Ok(false);
                    }
                    break;
                }
            }
        }
        progress |= self.pump()?;
        let now = Instant::now();
        if now >= self.next_keepalive {
            match self.sess.keepalive_send() {
                Ok(_) => {}
                Err(e) if is_eagain(&e) => {}
                Err(e) => return Err(e.to_string()),
            }
            self.next_keepalive = now + self.keepalive;
            if now.duration_since(self.last_rx) > self.keepalive * 3 + Duration::from_secs(1) {
                return Err(format!(
                    "no answer from the server for {}s",
                    now.duration_since(self.last_rx).as_secs()
                ));
            }
        }
        if !progress {
            self.wait(Duration::from_millis(500));
        }
        Ok(true)
    }

    fn wait(&mut self, max: Duration) {
        let dirs = self.sess.block_directions();
        let mut ev = libc::POLLIN;
        if matches!(dirs, BlockDirections::Outbound | BlockDirections::Both)
            || self.chans.values().any(|c| !c.writes.is_empty())
        {
            ev |= libc::POLLOUT;
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
        let until_ka = self
            .next_keepalive
            .saturating_duration_since(Instant::now());
        let ms = max.min(until_ka).as_millis().max(1) as i32;
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

    /// Retries a libssh2 call until it stops saying EAGAIN, waiting on the
    /// socket, until `deadline`.
    fn blocking<T>(
        &mut self,
        deadline: Instant,
        mut f: impl FnMut(&mut Self) -> Result<T, ssh2::Error>,
    ) -> Result<T, ssh2::Error> {
        loop {
            match f(self) {
                Err(e) if is_eagain(&e) => {
                    if Instant::now() >= deadline {
                        return Err(ssh2::Error::new(ErrorCode::Session(-9), "timed out"));
                    }
                    self.wait_socket(Duration::from_millis(50));
                }
                r => return r,
            }
        }
    }

    fn wait_socket(&mut self, max: Duration) {
        let dirs = self.sess.block_directions();
        let mut ev = 0;
        if matches!(
            dirs,
            BlockDirections::Inbound | BlockDirections::Both | BlockDirections::None
        ) {
            ev |= libc::POLLIN;
        }
        if matches!(dirs, BlockDirections::Outbound | BlockDirections::Both) {
            ev |= libc::POLLOUT;
        }
        let mut fd = libc::pollfd {
            fd: self.tcp.as_raw_fd(),
            events: ev,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut fd, 1, max.as_millis().max(1) as i32) };
        if fd.revents & libc::POLLIN != 0 {
            self.last_rx = Instant::now();
        }
    }

    fn open_channel(&mut self, command: &str, pty: bool) -> Result<ssh2::Channel, OpenError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut ch = match self.blocking(deadline, |s| {
            s.sess
                .channel_open("session", CHANNEL_WINDOW, 32 << 10, None)
        }) {
            Ok(c) => c,
            Err(e) if e.code() == ErrorCode::Session(CHANNEL_FAILURE) => {
                return Err(OpenError::Full(e.to_string()))
            }
            Err(e) => return Err(OpenError::Other(e.to_string())),
        };
        let other = |e: ssh2::Error| OpenError::Other(e.to_string());
        if pty {
            let term = std::env::var("TERM").unwrap_or_else(|_| "dumb".into());
            self.blocking(deadline, |_| {
                ch.request_pty(&term, None, Some((250, 50, 0, 0)))
            })
            .map_err(other)?;
        }
        self.blocking(deadline, |_| ch.exec(command))
            .map_err(other)?;
        Ok(ch)
    }

    fn handle(&mut self, r: Req) -> Result<(), String> {
        match r {
            Req::Open {
                command,
                pty,
                reply,
            } => {
                let res = self.open_channel(&command, pty).map(|ch| {
                    let id = self.next_id;
                    self.next_id += 1;
                    let shared = Arc::new(ChanShared::default());
                    self.chans.insert(
                        id,
                        Chan {
                            ch,
                            shared: shared.clone(),
                            pty,
                            out_eof: false,
                            err_eof: pty,
                            writes: VecDeque::new(),
                            eof_requested: false,
                            eof_sent: false,
                            closing: false,
                            done: false,
                        },
                    );
                    (id, shared)
                });
                let _ = reply.send(res);
            }
            Req::Write { id, data, reply } => match self.chans.get_mut(&id) {
                Some(c) if !c.done => c.writes.push_back((data, 0, reply)),
                _ => drop(reply.send(Err("the channel is closed".into()))),
            },
            Req::Eof { id } => {
                if let Some(c) = self.chans.get_mut(&id) {
                    c.eof_requested = true;
                }
            }
            Req::Drop { id } => {
                if let Some(mut c) = self.chans.remove(&id) {
                    let _ = c.ch.close();
                    for (_, _, r) in c.writes.drain(..) {
                        let _ = r.send(Err("the channel is closed".into()));
                    }
                }
                if self.write_first == Some(id) {
                    self.write_first = None;
                }
            }
            Req::Exec {
                command,
                deadline,
                reply,
            } => match self.open_channel(&command, false) {
                Ok(ch) => self.jobs.push(Job {
                    ch,
                    out: Vec::new(),
                    deadline,
                    reply,
                    eof: false,
                }),
                Err(OpenError::Full(e)) | Err(OpenError::Other(e)) => drop(reply.send(Err(e))),
            },
            Req::Put {
                local,
                remote,
                deadline,
                reply,
            } => {
                let r = self.put(&local, &remote, deadline);
                let _ = reply.send(r);
            }
            Req::Get {
                remote,
                local,
                deadline,
                reply,
            } => {
                let r = self.get(&remote, &local, deadline);
                let _ = reply.send(r);
            }
        }
        Ok(())
    }

    /// Moves bytes: pending writes (a write stopped half-way first), then
    /// output of every channel whose queue has room, then jobs.
    fn pump(&mut self) -> Result<bool, String> {
        let mut progress = false;
        // Writes.
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
        'writes: for id in order {
            let Some(c) = self.chans.get_mut(&id) else {
                continue;
            };
            while let Some((data, off, _)) = c.writes.front_mut() {
                match c.ch.write(&data[*off..]) {
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
                        self.write_first = Some(id);
                        break 'writes;
                    }
                    Err(e) => {
                        for (_, _, r) in c.writes.drain(..) {
                            let _ = r.send(Err(format!("write: {e}")));
                        }
                    }
                }
            }
            if c.writes.is_empty() && c.eof_requested && !c.eof_sent {
                match c.ch.send_eof() {
                    Ok(()) => c.eof_sent = true,
                    Err(e) if is_eagain(&e) => {
                        self.write_first = Some(id);
                        break 'writes;
                    }
                    Err(_) => c.eof_sent = true,
                }
            }
            if self.write_first == Some(id) {
                self.write_first = None;
            }
        }
        // Reads.
        let mut lost = None;
        for c in self.chans.values_mut() {
            if c.done {
                continue;
            }
            for stream in [Stream::Stdout, Stream::Stderr] {
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
            if c.out_eof && c.err_eof && !c.closing {
                c.closing = true;
                let _ = c.ch.close();
            }
            if c.closing && !c.done {
                match c.ch.wait_close() {
                    Ok(()) => {
                        c.done = true;
                        progress = true;
                        let st = exit_status(&c.ch);
                        c.shared.update(|b| {
                            b.eof = true;
                            b.status = Some(st);
                        });
                    }
                    Err(e) if is_eagain(&e) => {}
                    Err(_) => {
                        c.done = true;
                        let st = exit_status(&c.ch);
                        c.shared.update(|b| {
                            b.eof = true;
                            b.status = Some(st);
                        });
                    }
                }
            }
            let _ = c.pty;
        }
        if let Some(l) = lost {
            if self.sess_dead() {
                return Err(l);
            }
        }
        // Jobs.
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
                            let _ = j.ch.close();
                            break;
                        }
                        Ok(n) => {
                            progress = true;
                            j.out.extend_from_slice(&self.buf[..n]);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            finished = Some(Err(e.to_string()));
                            break;
                        }
                    }
                }
                // Drain stderr so the window never closes on it.
                let _ = j.ch.stderr().read(&mut self.buf);
            }
            if j.eof && finished.is_none() {
                match j.ch.wait_close() {
                    Ok(()) => {
                        finished = Some(Ok((
                            j.ch.exit_status().unwrap_or(-1),
                            std::mem::take(&mut j.out),
                        )))
                    }
                    Err(e) if is_eagain(&e) => {}
                    Err(e) => finished = Some(Err(e.to_string())),
                }
            }
            if finished.is_none() && now >= j.deadline {
                finished = Some(Err("timed out".into()));
            }
            if let Some(f) = finished {
                progress = true;
                let j = self.jobs.swap_remove(i);
                let _ = j.reply.send(f);
            } else {
                i += 1;
            }
        }
        Ok(progress)
    }

    /// Whether the session itself is broken (not only one channel).
    fn sess_dead(&mut self) -> bool {
        match self.sess.keepalive_send() {
            Ok(_) => false,
            Err(e) => !is_eagain(&e),
        }
    }

    fn home(&mut self, sftp: &ssh2::Sftp, deadline: Instant) -> Result<String, String> {
        if let Some(h) = &self.home {
            return Ok(h.clone());
        }
        let h = self
            .blocking(deadline, |_| sftp.realpath(Path::new(".")))
            .map_err(|e| format!("realpath .: {e}"))?
            .to_string_lossy()
            .into_owned();
        self.home = Some(h.clone());
        Ok(h)
    }

    fn resolve(
        &mut self,
        sftp: &ssh2::Sftp,
        remote: &str,
        deadline: Instant,
    ) -> Result<String, String> {
        if remote.starts_with('/') {
            return Ok(remote.to_string());
        }
        let home = self.home(sftp, deadline)?;
        Ok(format!("{}/{remote}", home.trim_end_matches('/')))
    }

    fn put(
        &mut self,
        local: &Path,
        remote: &str,
        deadline: Instant,
    ) -> Result<(String, u64, [u8; 32]), String> {
        use sha2::Digest;
        let mut src =
            std::fs::File::open(local).map_err(|e| format!("{}: {e}", local.display()))?;
        let mode = src
            .metadata()
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
            .unwrap_or(0o644);
        let sftp = self
            .blocking(deadline, |s| s.sess.sftp())
            .map_err(|e| format!("sftp: {e}"))?;
        let path = self.resolve(&sftp, remote, deadline)?;
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
            if self.blocking(deadline, |_| sftp.stat(&d)).is_err() {
                let _ = self.blocking(deadline, |_| sftp.mkdir(&d, 0o755));
            }
        }
        let p = PathBuf::from(&path);
        let mut f = self
            .blocking(deadline, |_| {
                sftp.open_mode(
                    &p,
                    ssh2::OpenFlags::WRITE | ssh2::OpenFlags::CREATE | ssh2::OpenFlags::TRUNCATE,
                    mode as i32,
                    ssh2::OpenType::File,
                )
            })
            .map_err(|e| format!("{path}: {e}"))?;
        let mut h = sha2::Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 32 << 10];
        loop {
            let n = src
                .read(&mut buf)
                .map_err(|e| format!("{}: {e}", local.display()))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            size += n as u64;
            let mut off = 0;
            while off < n {
                match f.write(&buf[off..n]) {
                    Ok(k) => off += k,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if Instant::now() >= deadline {
                            return Err(format!("{path}: timed out"));
                        }
                        self.wait_socket(Duration::from_millis(50));
                    }
                    Err(e) => return Err(format!("{path}: {e}")),
                }
            }
        }
        let stat = || ssh2::FileStat {
            size: None,
            uid: None,
            gid: None,
            perm: Some(mode),
            atime: None,
            mtime: None,
        };
        self.blocking(deadline, |_| f.setstat(stat()))
            .map_err(|e| format!("{path}: chmod: {e}"))?;
        self.blocking(deadline, |_| f.close())
            .map_err(|e| format!("{path}: close: {e}"))?;
        Ok((path, size, h.finalize().into()))
    }

    fn get(
        &mut self,
        remote: &str,
        local: &Path,
        deadline: Instant,
    ) -> Result<(String, u64, [u8; 32]), String> {
        use sha2::Digest;
        let sftp = self
            .blocking(deadline, |s| s.sess.sftp())
            .map_err(|e| format!("sftp: {e}"))?;
        let path = self.resolve(&sftp, remote, deadline)?;
        let p = PathBuf::from(&path);
        let mut f = self
            .blocking(deadline, |_| sftp.open(&p))
            .map_err(|e| format!("{path}: {e}"))?;
        let mode = self
            .blocking(deadline, |_| f.stat())
            .ok()
            .and_then(|s| s.perm)
            .unwrap_or(0o644)
            & 0o7777;
        if let Some(parent) = local.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
            }
        }
        let mut out =
            std::fs::File::create(local).map_err(|e| format!("{}: {e}", local.display()))?;
        let mut h = sha2::Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 32 << 10];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    h.update(&buf[..n]);
                    size += n as u64;
                    out.write_all(&buf[..n])
                        .map_err(|e| format!("{}: {e}", local.display()))?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(format!("{path}: timed out"));
                    }
                    self.wait_socket(Duration::from_millis(50));
                }
                Err(e) => return Err(format!("{path}: {e}")),
            }
        }
        let _ = std::fs::set_permissions(local, std::os::unix::fs::PermissionsExt::from_mode(mode));
        let _ = self.blocking(deadline, |_| f.close());
        Ok((path, size, h.finalize().into()))
    }
}
