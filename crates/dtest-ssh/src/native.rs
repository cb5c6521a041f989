//! The native `ssh://[user@]host[:port]` transport (libssh2 through `ssh2`):
//! a pool of shared connections, and [`SshChannel`], a tester's shell on
//! one of them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use dtest_exec::session::{
    Channel, FileInfo, HostUrl, OpenSpec, ReadEvent, Result, SessionError, Signal, Transport,
};
use dtest_trace::ExitStatus;

use crate::config::{
    expand_tilde, home_dir, local_user, parse_url, HostConfig, HostKeyPolicy, TesterOptions,
};
use crate::conn::{ChanShared, Conn, ConnParams, OpenError};
use crate::remote;

type PoolKey = (String, String, u16);
/// The connections of one (user, host, port), behind their own lock.
type HostSlot = Arc<Mutex<Vec<Weak<Conn>>>>;

/// The `ssh` transport. Connections are shared by the testers of one
/// (user, host, port) and kept while a channel uses them.
#[derive(Debug, Default)]
pub struct SshTransport {
    pool: Mutex<HashMap<PoolKey, HostSlot>>,
    /// Connections opened so far (for tests and benchmarks).
    opened: std::sync::atomic::AtomicUsize,
    /// One connection per channel (benchmarks: the unshared baseline).
    unshared: bool,
}

impl SshTransport {
    /// A transport that shares connections (unless the environment
    /// variable `DTEST_SSH_SHARE=0` asks for one connection per tester, the
    /// baseline of the session set-up benchmark).
    pub fn new() -> SshTransport {
        if std::env::var("DTEST_SSH_SHARE").as_deref() == Ok("0") {
            return SshTransport::unshared();
        }
        SshTransport::default()
    }

    /// A transport that opens one connection per tester (a baseline for
    /// benchmarks; not what users want).
    pub fn unshared() -> SshTransport {
        SshTransport {
            unshared: true,
            ..SshTransport::default()
        }
    }

    /// How many TCP connections this transport has opened.
    pub fn connections_opened(&self) -> usize {
        self.opened.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Resolves a tester's URL and options into connection parameters.
    pub fn params(spec: &OpenSpec, opts: &TesterOptions) -> Result<ConnParams> {
        let parts = parse_url(&spec.host)?;
        let cfg = HostConfig::load(&opts.config_file(), &parts.host)?;
        let host = cfg.hostname.clone().unwrap_or_else(|| parts.host.clone());
        let port = parts.port.or(cfg.port).unwrap_or(22);
        let user = parts
            .user
            .clone()
            .or(cfg.user.clone())
            .unwrap_or_else(local_user);
        let mut identities = Vec::new();
        identities.extend(opts.identity.clone());
        identities.extend(cfg.identity_files.iter().cloned());
        let ssh = home_dir().join(".ssh");
        for k in ["id_ed25519", "id_ecdsa", "id_rsa"] {
            identities.push(ssh.join(k));
        }
        if let Some(id) = &opts.identity {
            if !id.is_file() {
                return Err(SessionError::Open {
                    target: spec.host.raw.clone(),
                    reason: format!("identity file {} not found", id.display()),
                });
            }
        }
        let known_hosts = opts
            .known_hosts
            .clone()
            .or(cfg.known_hosts.clone())
            .unwrap_or_else(|| expand_tilde("~/.ssh/known_hosts"));
        let policy = opts.host_key.unwrap_or(if cfg.accept_new {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        });
        Ok(ConnParams {
            host,
            port,
            user,
            identities,
            password_env: opts.password_env.clone(),
            known_hosts,
            policy,
            connect_timeout: opts.connect_timeout(spec),
            keepalive: opts.keepalive,
        })
    }

    /// A connection with a free session slot (reserved on return), opening
    /// one when every shared connection is full.
    fn conn_for(
        &self,
        p: &ConnParams,
        max_sessions: usize,
    ) -> std::result::Result<Arc<Conn>, String> {
        // Keep room for one short channel of the transport (signal,
        // clean-up, SFTP) besides the testers' shells.
        let limit = max_sessions.saturating_sub(1).max(1);
        if self.unshared {
            self.opened
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let c = Arc::new(Conn::connect(p, limit)?);
            c.sessions.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return Ok(c);
        }
        let key = (p.user.clone(), p.host.clone(), p.port);
        let slot = {
            let mut pool = self.pool.lock().map_err(|_| "poisoned".to_string())?;
            pool.entry(key).or_default().clone()
        };
        // One lock per host: testers of one host wait for the first
        // connection instead of each opening their own.
        let mut conns = slot.lock().map_err(|_| "poisoned".to_string())?;
        conns.retain(|w| w.strong_count() > 0);
        for w in conns.iter() {
            let Some(c) = w.upgrade() else { continue };
            if c.lost().is_some() || c.full.load(std::sync::atomic::Ordering::SeqCst) {
                continue;
            }
            let n = c.sessions.load(std::sync::atomic::Ordering::SeqCst);
            if n < c.limit.load(std::sync::atomic::Ordering::SeqCst) {
                c.sessions.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return Ok(c);
            }
        }
        self.opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let c = Arc::new(Conn::connect(p, limit)?);
        c.sessions.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        conns.push(Arc::downgrade(&c));
        Ok(c)
    }
}

impl Transport for SshTransport {
    fn scheme(&self) -> &str {
        "ssh"
    }

    fn check_url(&self, url: &HostUrl) -> Result<()> {
        parse_url(url).map(|_| ())
    }

    fn open(&self, spec: &OpenSpec) -> Result<Box<dyn Channel>> {
        Ok(Box::new(SshChannel::open(self, spec)?))
    }
}

/// A tester's shell on a shared SSH connection.
#[derive(Debug)]
pub struct SshChannel {
    conn: Arc<Conn>,
    id: u64,
    shared: Arc<ChanShared>,
    pty: bool,
    target: String,
    /// The remote shell's pid, also its session id.
    sid: i32,
    closed: bool,
    status: Option<ExitStatus>,
    /// The session's working directory (relative put/get paths start there).
    cwd: Option<String>,
    /// What the connection said when the channel was opened (a newly
    /// accepted host key), for the tester's log.
    pub note: Option<String>,
}

impl SshChannel {
    /// Connects (or reuses a connection) and starts the shell.
    pub fn open(t: &SshTransport, spec: &OpenSpec) -> Result<SshChannel> {
        let opts = TesterOptions::from_spec(spec)?;
        let p = SshTransport::params(spec, &opts)?;
        let target = format!("{} on ssh://{}", spec.shell, p.label());
        let fail = |reason: String| SessionError::Open {
            target: target.clone(),
            reason,
        };
        if opts.x11 {
            return Err(fail(
                "x11 = true needs the openssh:// transport (the system ssh client forwards X11)"
                    .into(),
            ));
        }
        let deadline = Instant::now() + p.connect_timeout + Duration::from_secs(5);
        let command = remote::start_command(spec);
        let mut attempts = 0;
        let (conn, id, shared) = loop {
            attempts += 1;
            let conn = t.conn_for(&p, opts.max_sessions).map_err(fail)?;
            match conn.open(&command, spec.pty, deadline) {
                Ok((id, shared)) => break (conn, id, shared),
                Err(OpenError::Full(e)) => {
                    conn.sessions
                        .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    conn.full.store(true, std::sync::atomic::Ordering::SeqCst);
                    if attempts > 3 {
                        return Err(fail(format!("the server refused a new session: {e}")));
                    }
                }
                Err(OpenError::Other(e)) => {
                    conn.sessions
                        .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    return Err(fail(e));
                }
            }
        };
        let mut ch = SshChannel {
            note: conn.note.clone(),
            conn,
            id,
            shared,
            pty: spec.pty,
            target: target.clone(),
            sid: 0,
            closed: false,
            status: None,
            cwd: spec.cwd.clone(),
        };
        ch.sid = ch.read_pid(deadline).map_err(fail)?;
        Ok(ch)
    }

    /// Reads output until the pid marker; puts back what follows it.
    fn read_pid(&mut self, deadline: Instant) -> std::result::Result<i32, String> {
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            match self.read(&mut buf, deadline) {
                Ok(ReadEvent::Data { n, .. }) => {
                    seen.extend_from_slice(&buf[..n]);
                    if let Some((pid, end)) = remote::find_pid(&seen) {
                        let rest = seen[end..].to_vec();
                        if !rest.is_empty() {
                            if let Ok(mut b) = self.shared.buf.lock() {
                                b.queued += rest.len();
                                b.queue.push_front((dtest_trace::Stream::Stdout, rest));
                            }
                        }
                        return Ok(pid);
                    }
                }
                Ok(ReadEvent::Timeout) => {
                    return Err(format!(
                        "the remote shell did not start in time; it printed: {:?}",
                        String::from_utf8_lossy(&seen)
                    ))
                }
                Ok(ReadEvent::Closed { status }) => {
                    let st = status.map(|s| s.to_string()).unwrap_or_else(|| "?".into());
                    return Err(format!(
                        "the remote shell exited (status {st}) before it started: {}",
                        String::from_utf8_lossy(&seen).trim()
                    ));
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// The remote shell's process id (= its session id).
    pub fn remote_pid(&self) -> i32 {
        self.sid
    }

    /// `remote` against the session's cwd (SFTP resolves what is still
    /// relative against the login directory, as the shell does).
    fn remote_path(&self, remote: &str) -> String {
        match &self.cwd {
            Some(c) if !remote.starts_with('/') => format!("{}/{remote}", c.trim_end_matches('/')),
            _ => remote.to_string(),
        }
    }

    fn transfer_err(op: &'static str, path: &str, reason: String) -> SessionError {
        SessionError::Transfer {
            op,
            path: path.to_string(),
            reason,
        }
    }
}

/// Runs the clean-up of session `sid` over a fresh connection, when the
/// shared one is gone but the host may still run our processes.
fn cleanup_reconnect(p: &ConnParams, sid: i32, grace: Duration) {
    let mut p = p.clone();
    p.connect_timeout = p.connect_timeout.min(Duration::from_secs(5));
    if let Ok(c) = Conn::connect(&p, 2) {
        let _ = c.exec(
            &remote::cleanup_command(sid, grace.as_millis() as u64),
            Instant::now() + grace + Duration::from_secs(10),
        );
    }
}

impl Channel for SshChannel {
    fn target(&self) -> String {
        self.target.clone()
    }

    fn is_pty(&self) -> bool {
        self.pty
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if self.closed {
            return Err(SessionError::Closed("the channel is closed".into()));
        }
        self.conn
            .write(self.id, bytes, Instant::now() + Duration::from_secs(30))
            .map_err(SessionError::Closed)
    }

    fn read(&mut self, buf: &mut [u8], deadline: Instant) -> Result<ReadEvent> {
        let mut b = self
            .shared
            .buf
            .lock()
            .map_err(|_| SessionError::Other("poisoned".into()))?;
        loop {
            if let Some((stream, chunk)) = b.queue.front() {
                let stream = *stream;
                let off = b.front_off;
                let n = (chunk.len() - off).min(buf.len());
                buf[..n].copy_from_slice(&chunk[off..off + n]);
                if off + n >= chunk.len() {
                    b.queue.pop_front();
                    b.front_off = 0;
                } else {
                    b.front_off += n;
                }
                b.queued -= n;
                if b.stalled && b.queued < (1 << 20) {
                    b.stalled = false;
                    drop(b);
                    // Wake the I/O thread so it reads this channel again.
                    self.conn.nudge();
                }
                return Ok(ReadEvent::Data { stream, n });
            }
            if b.eof {
                self.status = b.status.clone();
                return Ok(ReadEvent::Closed {
                    status: b.status.clone(),
                });
            }
            if let Some(l) = &b.lost {
                return Err(SessionError::Closed(l.clone()));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(ReadEvent::Timeout);
            }
            b = self
                .shared
                .cond
                .wait_timeout(b, deadline - now)
                .map_err(|_| SessionError::Other("poisoned".into()))?
                .0;
        }
    }

    fn signal(&mut self, sig: Signal) -> Result<()> {
        if self.closed || self.sid <= 0 {
            return Ok(());
        }
        self.conn
            .exec(
                &remote::signal_command(self.sid, sig),
                Instant::now() + Duration::from_secs(10),
            )
            .map(|_| ())
            .map_err(|e| {
                SessionError::Other(format!("cannot signal {sig} on {}: {e}", self.target))
            })
    }

    fn put(&mut self, local: &Path, remote: &str) -> Result<FileInfo> {
        let (path, size, sha256) = self
            .conn
            .put(
                local,
                &self.remote_path(remote),
                Instant::now() + Duration::from_secs(600),
            )
            .map_err(|e| Self::transfer_err("put", remote, e))?;
        Ok(FileInfo {
            local: local.to_path_buf(),
            remote: path,
            size,
            sha256,
        })
    }

    fn get(&mut self, remote: &str, local: &Path) -> Result<FileInfo> {
        let (path, size, sha256) = self
            .conn
            .get(
                &self.remote_path(remote),
                local,
                Instant::now() + Duration::from_secs(600),
            )
            .map_err(|e| Self::transfer_err("get", remote, e))?;
        Ok(FileInfo {
            local: PathBuf::from(local),
            remote: path,
            size,
            sha256,
        })
    }

    fn close(&mut self, grace: Duration) -> Result<Option<ExitStatus>> {
        if self.closed {
            return Ok(self.status.clone());
        }
        self.closed = true;
        self.conn.eof(self.id);
        if self.sid > 0 {
            let script = remote::cleanup_command(self.sid, grace.as_millis() as u64);
            let r = self
                .conn
                .exec(&script, Instant::now() + grace + Duration::from_secs(10));
            if r.is_err() {
                cleanup_reconnect(&self.conn.params, self.sid, grace);
            }
        }
        // The shell's status arrives with the channel's close.
        let until = Instant::now() + Duration::from_secs(2);
        if let Ok(mut b) = self.shared.buf.lock() {
            while !b.eof && b.lost.is_none() && Instant::now() < until {
                // Discard output nobody will read, so the channel can end.
                b.queue.clear();
                b.queued = 0;
                b.front_off = 0;
                if b.stalled {
                    b.stalled = false;
                    self.conn.nudge();
                }
                let left = until.saturating_duration_since(Instant::now());
                b = match self
                    .shared
                    .cond
                    .wait_timeout(b, left.min(Duration::from_millis(100)))
                {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            }
            if b.eof {
                self.status = b.status.clone();
            }
        }
        self.conn.drop_channel(self.id);
        self.conn
            .sessions
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        Ok(self.status.clone())
    }
}

impl Drop for SshChannel {
    fn drop(&mut self) {
        let _ = self.close(Duration::from_millis(200));
    }
}
