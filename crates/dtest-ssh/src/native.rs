//! The native `ssh://[user@]host[:port]` transport (libssh2 through `ssh2`):
//! a pool of shared connections, and [`SshChannel`], a tester's shell on
//! one of them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use dtest_exec::session::{
    Channel, FileInfo, HostUrl, OpenSpec, Output, ReadEvent, Result, SessionError, Signal,
    StopProbe, Transport, Until,
};
use dtest_trace::ExitStatus;

use crate::config::{
    expand_tilde, home_dir, local_user, parse_url, HostConfig, HostKeyPolicy, TesterOptions,
};
use crate::conn::{ChanShared, Conn, ConnParams, OpenError};
use crate::remote::{self, Marks, Started};

/// What two testers must have in common to share a connection: where it
/// goes, and everything that decides whether it may be opened (the host
/// key policy, the known_hosts file, the keys and the password tried, the
/// agent), plus the keepalive that decides when it is declared lost.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolKey {
    user: String,
    host: String,
    port: u16,
    policy: HostKeyPolicy,
    known_hosts: PathBuf,
    identities: Vec<PathBuf>,
    /// `password_env`, and the SHA-256 of its value (`None`: not set).
    password: Option<(String, Option<[u8; 32]>)>,
    /// `SSH_AUTH_SOCK` (the agent tried first).
    agent: Option<std::ffi::OsString>,
    keepalive: Duration,
}

impl PoolKey {
    /// The key of a tester's connection parameters, with the password and
    /// agent of dtest's environment now (the password only as a hash).
    pub fn of(p: &ConnParams) -> PoolKey {
        PoolKey::with_env(p, &|k| std::env::var_os(k))
    }

    /// [`PoolKey::of`] with the environment variables of `env`.
    pub fn with_env(p: &ConnParams, env: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> PoolKey {
        use sha2::Digest;
        PoolKey {
            user: p.user.clone(),
            host: p.host.clone(),
            port: p.port,
            policy: p.policy,
            known_hosts: p.known_hosts.clone(),
            identities: p.identities.clone(),
            password: p.password_env.as_ref().map(|var| {
                let hash = env(var).map(|v| {
                    sha2::Sha256::digest(std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()))
                        .into()
                });
                (var.clone(), hash)
            }),
            agent: env("SSH_AUTH_SOCK").filter(|s| !s.is_empty()),
            keepalive: p.keepalive_interval(),
        }
    }
}

/// The connections of one pool key, behind their own lock.
type HostSlot = Arc<Mutex<Vec<Weak<Conn>>>>;

/// The `ssh` transport. Connections are shared by the testers of one
/// (user, host, port) whose security settings are the same ([`PoolKey`]),
/// and kept while a channel uses them.
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
    fn conn_for(&self, p: &ConnParams, max_sessions: usize, stop: &StopProbe) -> Result<Arc<Conn>> {
        // Keep room for one short channel of the transport (signal,
        // clean-up, SFTP) besides the testers' shells.
        let limit = max_sessions.saturating_sub(1).max(1);
        if self.unshared {
            self.opened
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let c = Arc::new(Conn::connect(p, limit, stop)?);
            c.sessions.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return Ok(c);
        }
        // A tester never uses a connection opened with other security
        // settings than its own: its host key policy and credentials are
        // checked for every connection it uses.
        let key = PoolKey::of(p);
        let slot = {
            let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            pool.entry(key).or_default().clone()
        };
        // One lock per host: testers of one host wait for the first
        // connection instead of each opening their own.
        let mut conns = slot.lock().unwrap_or_else(|e| e.into_inner());
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
        let c = Arc::new(Conn::connect(p, limit, stop)?);
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

    fn option_keys(&self) -> &'static [&'static str] {
        crate::config::KNOWN_KEYS
    }

    fn check_option(&self, key: &str, value: &str) -> std::result::Result<(), String> {
        let one = std::collections::BTreeMap::from([(key.to_string(), value.to_string())]);
        crate::config::TesterOptions::parse(&one).map(|_| ())
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
    /// The output half, until the capture thread takes it.
    output: Option<SshOutput>,
    pty: bool,
    target: String,
    /// The remote shell's pid (also its session id) and its watchdog's.
    started: Started,
    /// The marks of the tester's processes (`DTEST_RUN_ID`, `DTEST_TESTER`).
    marks: Option<Marks>,
    /// What `close` stopped beyond the session ([`SshChannel::close_report`]).
    report: Vec<String>,
    closed: bool,
    status: Option<ExitStatus>,
    /// The session's working directory (relative put/get paths start there).
    cwd: Option<String>,
    /// The run's stop probe (signals give up when the run stops).
    stop: StopProbe,
    /// What the connection said when the channel was opened (a newly
    /// accepted host key), for the tester's log.
    pub note: Option<String>,
}

/// The output half of an [`SshChannel`]: its queue, filled by the
/// connection's I/O thread (stdout and stderr chunks in the order they were
/// read, stderr first when both were ready).
#[derive(Debug)]
pub struct SshOutput {
    conn: Arc<Conn>,
    shared: Arc<ChanShared>,
}

impl Output for SshOutput {
    fn read(&mut self, buf: &mut [u8], deadline: Instant) -> Result<ReadEvent> {
        read_queue(&self.conn, &self.shared, buf, deadline)
    }
}

/// Reads a channel's queue until `deadline`. Every queued byte is read
/// before the end (or the loss of the connection) is reported.
fn read_queue(
    conn: &Conn,
    shared: &ChanShared,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<ReadEvent> {
    let mut b = shared.buf.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some((stream, n, nudge)) = b.take(buf) {
            drop(b);
            if nudge {
                // Wake the I/O thread so it reads this channel again.
                conn.nudge();
            }
            return Ok(ReadEvent::Data { stream, n });
        }
        if b.eof {
            return Ok(ReadEvent::Closed {
                status: b.status.clone(),
            });
        }
        if let Some(l) = &b.lost {
            return Err(SessionError::Other(l.clone()));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(ReadEvent::Timeout);
        }
        b = shared
            .cond
            .wait_timeout(b, deadline - now)
            .map(|(g, _)| g)
            .unwrap_or_else(|e| e.into_inner().0);
    }
}

/// An error of opening `target`: the run stopping as it is, anything else
/// as [`SessionError::Open`].
fn open_err(target: &str, e: SessionError) -> SessionError {
    match e {
        SessionError::Stopped(_) | SessionError::Open { .. } => e,
        SessionError::Other(reason) | SessionError::Closed(reason) => SessionError::Open {
            target: target.to_string(),
            reason,
        },
        e => SessionError::Open {
            target: target.to_string(),
            reason: e.to_string(),
        },
    }
}

impl SshChannel {
    /// Connects (or reuses a connection) and starts the shell; gives up
    /// within 100 ms of `spec.stop` saying so.
    pub fn open(t: &SshTransport, spec: &OpenSpec) -> Result<SshChannel> {
        let opts = TesterOptions::from_spec(spec)?;
        let p = SshTransport::params(spec, &opts)?;
        let target = format!("{} on ssh://{}", spec.shell, p.label());
        if opts.x11 {
            return Err(SessionError::Open {
                target,
                reason: "x11 = true needs the openssh:// transport (the system ssh client \
                         forwards X11)"
                    .into(),
            });
        }
        let until = Until::new(
            Instant::now() + p.connect_timeout + Duration::from_secs(5),
            spec.stop.clone(),
        );
        let command = remote::start_command(spec);
        let mut attempts = 0;
        let (conn, id, shared) = loop {
            attempts += 1;
            let conn = t
                .conn_for(&p, opts.max_sessions, &spec.stop)
                .map_err(|e| open_err(&target, e))?;
            match conn.open(&command, spec.pty, &until) {
                Ok((id, shared)) => break (conn, id, shared),
                Err(OpenError::Full(e)) => {
                    conn.sessions
                        .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    conn.full.store(true, std::sync::atomic::Ordering::SeqCst);
                    if attempts > 3 {
                        return Err(open_err(
                            &target,
                            SessionError::Other(format!("the server refused a new session: {e}")),
                        ));
                    }
                }
                Err(OpenError::Other(e)) => {
                    conn.sessions
                        .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    return Err(open_err(&target, e));
                }
            }
        };
        let mut ch = SshChannel {
            note: conn.note.clone(),
            output: Some(SshOutput {
                conn: Arc::clone(&conn),
                shared: Arc::clone(&shared),
            }),
            conn,
            id,
            shared,
            pty: spec.pty,
            target: target.clone(),
            started: Started {
                sid: 0,
                watchdog: 0,
            },
            marks: Marks::from_spec(spec),
            report: Vec::new(),
            closed: false,
            status: None,
            cwd: spec.cwd.clone(),
            stop: spec.stop.clone(),
        };
        ch.started = ch.read_pid(&until).map_err(|e| open_err(&target, e))?;
        Ok(ch)
    }

    /// Reads output until the pid marker; puts back what followed it (and
    /// what came on stderr meanwhile), so the output half serves it first.
    fn read_pid(&mut self, until: &Until) -> Result<Started> {
        let mut out = Vec::new();
        let mut errs: Vec<Vec<u8>> = Vec::new();
        let mut buf = vec![0u8; 4096];
        let printed = |out: &[u8], errs: &[Vec<u8>]| {
            let mut all = out.to_vec();
            all.extend(errs.iter().flatten());
            String::from_utf8_lossy(&all).trim().to_string()
        };
        loop {
            match read_queue(&self.conn, &self.shared, &mut buf, until.slice())? {
                ReadEvent::Data {
                    stream: dtest_trace::Stream::Stdout,
                    n,
                } => {
                    out.extend_from_slice(&buf[..n]);
                    if let Some((started, end)) = remote::find_started(&out) {
                        let mut b = self.shared.buf.lock().unwrap_or_else(|e| e.into_inner());
                        b.unread(dtest_trace::Stream::Stdout, out[end..].to_vec());
                        for e in errs.into_iter().rev() {
                            b.unread(dtest_trace::Stream::Stderr, e);
                        }
                        return Ok(started);
                    }
                }
                ReadEvent::Data { n, .. } => errs.push(buf[..n].to_vec()),
                ReadEvent::Timeout => match until.check("") {
                    Err(SessionError::TimedOut(_)) => {
                        return Err(SessionError::Other(format!(
                            "the remote shell did not start in time; it printed: {:?}",
                            printed(&out, &errs)
                        )))
                    }
                    Err(e) => return Err(e),
                    Ok(()) => {}
                },
                ReadEvent::Closed { status } => {
                    let st = status.map(|s| s.to_string()).unwrap_or_else(|| "?".into());
                    return Err(SessionError::Other(format!(
                        "the remote shell exited (status {st}) before it started: {}",
                        printed(&out, &errs)
                    )));
                }
            }
        }
    }

    /// The remote shell's process id (= its session id).
    pub fn remote_pid(&self) -> i32 {
        self.started.sid
    }

    /// The remote watchdog's process id (0: none).
    pub fn watchdog_pid(&self) -> i32 {
        self.started.watchdog
    }

    /// `remote` against the session's cwd (SFTP resolves what is still
    /// relative against the login directory, as the shell does).
    fn remote_path(&self, remote: &str) -> String {
        remote::resolve(self.cwd.as_deref(), remote)
    }
}

/// Runs `script` (the clean-up) over a fresh connection, when the shared
/// one is gone (or does not answer) but the host may still run our
/// processes; gives up at `budget`. Returns the script's output.
fn cleanup_reconnect(p: &ConnParams, script: &str, budget: Instant) -> Option<Vec<u8>> {
    let left = budget.saturating_duration_since(Instant::now());
    if left < Duration::from_millis(200) {
        return None;
    }
    let mut p = p.clone();
    p.connect_timeout = p.connect_timeout.min(Duration::from_secs(5)).min(left);
    let c = Conn::connect(&p, 2, &StopProbe::never()).ok()?;
    c.exec(script, &Until::new(budget, StopProbe::never()))
        .ok()
        .map(|(_, out)| out)
}

impl Channel for SshChannel {
    fn close_report(&self) -> Vec<String> {
        self.report.clone()
    }

    fn target(&self) -> String {
        self.target.clone()
    }

    fn is_pty(&self) -> bool {
        self.pty
    }

    fn take_output(&mut self) -> Result<Box<dyn Output>> {
        remote::take_output(&mut self.output)
    }

    fn write(&mut self, bytes: &[u8], until: &Until) -> Result<()> {
        remote::check_open(self.closed)?;
        self.conn.write(self.id, bytes, until)
    }

    fn signal(&mut self, sig: Signal) -> Result<Option<usize>> {
        remote::check_open(self.closed)?;
        if self.started.sid <= 0 {
            return Ok(None);
        }
        let until = Until::new(Instant::now() + Duration::from_secs(10), self.stop.clone());
        let (_, out) = self
            .conn
            .exec(&remote::signal_command(self.started.sid, sig), &until)
            .map_err(|e| match e {
                SessionError::Stopped(_) => e,
                e => SessionError::Other(format!("cannot signal {sig} on {}: {e}", self.target)),
            })?;
        Ok(remote::signalled(&out))
    }

    fn foreground_job(&mut self) -> Option<bool> {
        if self.closed || !self.pty || self.started.sid <= 0 {
            return None;
        }
        let until = Until::new(Instant::now() + Duration::from_secs(5), self.stop.clone());
        let (_, out) = self
            .conn
            .exec(&remote::foreground_command(self.started.sid), &until)
            .ok()?;
        remote::foreground(&out)
    }

    fn put(&mut self, local: &Path, remote: &str, until: &Until) -> Result<FileInfo> {
        remote::check_open(self.closed)?;
        let meta = std::fs::metadata(local)
            .map_err(|e| remote::transfer_err("put", &local.display().to_string(), e.into()))?;
        if !meta.is_file() {
            return Err(SessionError::Transfer {
                op: "put",
                path: local.display().to_string(),
                reason: "not a regular file (only regular files are copied)".into(),
            });
        }
        let t = self
            .conn
            .put(local, &self.remote_path(remote), until)
            .map_err(|e| remote::transfer_err("put", remote, e))?;
        Ok(FileInfo {
            local: local.to_path_buf(),
            remote: t.path,
            size: t.size,
            sha256: t.sha256,
        })
    }

    fn get(&mut self, remote: &str, local: &Path, until: &Until) -> Result<FileInfo> {
        remote::check_open(self.closed)?;
        let t = self
            .conn
            .get(&self.remote_path(remote), local, until)
            .map_err(|e| remote::transfer_err("get", remote, e))?;
        Ok(FileInfo {
            local: PathBuf::from(local),
            remote: t.path,
            size: t.size,
            sha256: t.sha256,
        })
    }

    /// Ends the remote watchdog, kills the remote session and the tester's
    /// processes that left it (over a fresh connection if the shared one
    /// is lost; see [`SshChannel::close_report`]), then waits up to 2 s for
    /// the channel's end, which the capture thread reads to the last byte.
    /// Bounded: `grace` + 12 s at most, whatever the network does.
    fn close(&mut self, grace: Duration) -> Result<Option<ExitStatus>> {
        if self.closed {
            return Ok(self.status.clone());
        }
        self.closed = true;
        let budget = Instant::now() + grace + Duration::from_secs(10);
        // An output half never taken has no reader: its queue is discarded
        // below so that the channel can reach its end.
        let unread = self.output.take().is_some();
        self.conn.eof(self.id);
        if self.started.sid > 0 {
            let script = remote::cleanup_command(
                self.started,
                self.marks.as_ref(),
                grace.as_millis() as u64,
            );
            let u = Until::new(
                budget.min(Instant::now() + grace + Duration::from_secs(5)),
                StopProbe::never(),
            );
            let out = match self.conn.exec(&script, &u) {
                Ok((_, out)) => Some(out),
                Err(_) => cleanup_reconnect(&self.conn.params, &script, budget),
            };
            if let Some(out) = out {
                self.report =
                    remote::cleanup_report(&out, &format!("ssh://{}", self.conn.params.label()));
            }
        }
        // The shell's status arrives with the channel's close.
        let until = if self.started.sid > 0 {
            Instant::now() + Duration::from_secs(2)
        } else {
            Instant::now()
        };
        {
            let mut b = self.shared.buf.lock().unwrap_or_else(|e| e.into_inner());
            while !b.eof && b.lost.is_none() && Instant::now() < until {
                if unread {
                    b.queue.clear();
                    b.queued = 0;
                    b.front_off = 0;
                    if b.stalled {
                        b.stalled = false;
                        self.conn.nudge();
                    }
                }
                let left = until.saturating_duration_since(Instant::now());
                b = self
                    .shared
                    .cond
                    .wait_timeout(b, left.min(Duration::from_millis(100)))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ConnParams {
        ConnParams {
            host: "127.0.0.2".into(),
            port: 22,
            user: "bob".into(),
            identities: vec![PathBuf::from("/k/id_ed25519")],
            password_env: None,
            known_hosts: PathBuf::from("/k/known_hosts"),
            policy: HostKeyPolicy::AcceptNew,
            connect_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(5),
        }
    }

    #[test]
    fn testers_share_a_connection_only_with_the_same_security_settings() {
        let none = |_: &str| None;
        let base = params();
        let key = PoolKey::with_env(&base, &none);
        // What does not decide whether a connection may be opened is not
        // in the key.
        let mut p = base.clone();
        p.connect_timeout = Duration::from_secs(60);
        assert_eq!(PoolKey::with_env(&p, &none), key);
        let variants: [fn(&mut ConnParams); 8] = [
            |p| p.policy = HostKeyPolicy::Strict,
            |p| p.known_hosts = PathBuf::from("/k/empty"),
            |p| p.identities.push(PathBuf::from("/k/other")),
            |p| p.identities.clear(),
            |p| p.user = "eve".into(),
            |p| p.port = 2222,
            |p| p.keepalive = Duration::from_secs(30),
            |p| p.password_env = Some("PW".into()),
        ];
        for (i, f) in variants.iter().enumerate() {
            let mut p = base.clone();
            f(&mut p);
            assert_ne!(PoolKey::with_env(&p, &none), key, "variant {i}");
        }
        let agent = |k: &str| (k == "SSH_AUTH_SOCK").then(|| "/tmp/agent.1".into());
        assert_ne!(PoolKey::with_env(&base, &agent), key);
        // The password's value counts, as a hash: same variable, another
        // value (or none), another key.
        let mut p = base.clone();
        p.password_env = Some("PW".into());
        let pw = |v: &'static str| move |k: &str| (k == "PW").then(|| v.into());
        let one = PoolKey::with_env(&p, &pw("Secret-one"));
        assert_eq!(PoolKey::with_env(&p, &pw("Secret-one")), one);
        assert_ne!(PoolKey::with_env(&p, &pw("Secret-two")), one);
        assert_ne!(PoolKey::with_env(&p, &none), one);
        assert!(!format!("{one:?}").contains("Secret"));
    }
}
