//! The `openssh://[user@]alias` transport: the system OpenSSH client runs
//! the tester's shell (`ssh -tt` under a local pty, or `ssh -T` on pipes),
//! so the user's ssh_config applies in full (ProxyJump, ControlMaster,
//! certificates, agent). Signals, clean-up and file copies are further
//! `ssh` invocations with the same options.
//!
//! dtest adds options of its own: `BatchMode=yes` (never a prompt that
//! would hang), `StrictHostKeyChecking=yes` unless the tester or the config
//! says `accept-new`, a connect timeout, keepalives, and `-e none` so no
//! byte of a test is taken for an escape sequence.

use std::collections::VecDeque;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dtest_exec::session::shell::shell_quote;
use dtest_exec::session::sys::{
    self, spawn_in_session, try_status, FdOutput, SharedChild, Spawned,
};
use dtest_exec::session::{
    hash_copy, Channel, FileInfo, HostUrl, OpenSpec, Output, ReadEvent, Result, SessionError,
    Signal, StopProbe, Transport, Until,
};
use dtest_trace::{ExitStatus, Stream};

use crate::config::{parse_url, HostConfig, HostKeyPolicy, TesterOptions};
use crate::remote::{self, Marks, Started};

/// The `openssh` transport.
#[derive(Debug, Default)]
pub struct OpenSshTransport {
    /// The client to run (`ssh`).
    program: String,
}

impl OpenSshTransport {
    /// Runs `ssh` from `PATH`.
    pub fn new() -> OpenSshTransport {
        OpenSshTransport {
            program: "ssh".into(),
        }
    }
}

impl Transport for OpenSshTransport {
    fn scheme(&self) -> &str {
        "openssh"
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
        Ok(Box::new(OpenSshChannel::open(&self.program, spec)?))
    }
}

/// The `ssh` command line of a tester, without the remote command.
#[derive(Clone, Debug)]
struct SshArgs {
    program: String,
    args: Vec<String>,
    dest: String,
    /// The run's id, put in every client's environment: the controller's
    /// watchdog then ends the clients when dtest dies, which drops their
    /// connections (a pipes-mode client would otherwise keep its connection,
    /// and so the remote processes, alive). Not the tester's name: a
    /// clean-up on this same machine must not take the clients for
    /// processes of the tester.
    run_id: Option<String>,
    /// The tester's URL (`openssh://alias`), for messages.
    url: String,
}

impl SshArgs {
    fn new(program: &str, spec: &OpenSpec, opts: &TesterOptions) -> Result<SshArgs> {
        let parts = parse_url(&spec.host)?;
        let mut a: Vec<String> = vec!["-e".into(), "none".into()];
        let cfg_file = opts.explicit_config();
        if let Some(f) = &cfg_file {
            a.push("-F".into());
            a.push(f.display().to_string());
        }
        let cfg = HostConfig::load(&opts.config_file(), &parts.host).unwrap_or_default();
        let o = |a: &mut Vec<String>, s: String| {
            a.push("-o".into());
            a.push(s);
        };
        o(&mut a, "BatchMode=yes".into());
        o(
            &mut a,
            format!(
                "ConnectTimeout={}",
                opts.connect_timeout(spec).as_secs().max(1)
            ),
        );
        o(
            &mut a,
            format!("ServerAliveInterval={}", opts.keepalive.as_secs().max(1)),
        );
        o(&mut a, "ServerAliveCountMax=3".into());
        let policy = opts.host_key.unwrap_or(if cfg.accept_new {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        });
        o(
            &mut a,
            match policy {
                HostKeyPolicy::Strict => "StrictHostKeyChecking=yes".into(),
                HostKeyPolicy::AcceptNew => "StrictHostKeyChecking=accept-new".into(),
            },
        );
        if let Some(k) = &opts.known_hosts {
            o(&mut a, format!("UserKnownHostsFile={}", k.display()));
        }
        if let Some(id) = &opts.identity {
            a.push("-i".into());
            a.push(id.display().to_string());
        }
        if opts.password_env.is_some() {
            return Err(SessionError::Open {
                target: spec.host.raw.clone(),
                reason: "password_env is for ssh:// hosts; the openssh client never reads a \
                         password from dtest (use a key or an agent)"
                    .into(),
            });
        }
        if let Some(p) = parts.port {
            a.push("-p".into());
            a.push(p.to_string());
        }
        if let Some(u) = &parts.user {
            a.push("-l".into());
            a.push(u.clone());
        }
        Ok(SshArgs {
            program: program.into(),
            args: a,
            dest: parts.host,
            run_id: Marks::from_spec(spec).map(|m| m.run_id),
            url: spec.host.raw.clone(),
        })
    }

    /// A `Command` running `remote` on the host (`tty`: -tt, else -T).
    fn command(&self, tty: bool, x11: bool, remote: &str) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        if let Some(id) = &self.run_id {
            c.env(remote::RUN_ID_VAR, id).env_remove(remote::TESTER_VAR);
        }
        c.arg(if tty { "-tt" } else { "-T" });
        if x11 {
            c.arg("-X");
        } else {
            c.arg("-x");
        }
        c.arg("--").arg(&self.dest).arg(remote);
        c
    }

    /// Runs a short command (`ssh -T`), feeding it `input` (hashed on the
    /// way) and handing its stdout to `on_out` as it arrives; the client is
    /// killed when `until` says to give up.
    fn run(
        &self,
        remote: &str,
        input: Option<std::fs::File>,
        until: &Until,
        on_out: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<RunOut> {
        let cmd = self.command(false, false, remote);
        let Spawned {
            child,
            input: stdin,
            out,
            err,
        } = spawn_in_session(cmd, false)
            .map_err(|e| SessionError::Other(format!("cannot run {}: {e}", self.program)))?;
        let client = Client::new(child);
        let mut output = FdOutput::new(out, err, Arc::clone(&client.child));
        let feeder = match input {
            Some(f) => {
                let u = until.clone();
                Some(std::thread::spawn(move || {
                    hash_copy(f, FdWriter(&stdin, &u), &u)
                    // `stdin` closes here: the remote `cat` sees the end.
                }))
            }
            None => {
                drop(stdin);
                None
            }
        };
        let mut stderr = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        let r = loop {
            match output.read(&mut buf, until.slice()) {
                Ok(ReadEvent::Data {
                    stream: Stream::Stdout,
                    n,
                }) => {
                    if let Err(e) = on_out(&buf[..n]) {
                        break Err(SessionError::Io(e));
                    }
                }
                Ok(ReadEvent::Data { n, .. }) => {
                    if stderr.len() < (64 << 10) {
                        stderr.extend_from_slice(&buf[..n]);
                    }
                }
                Ok(ReadEvent::Timeout) => {
                    if let Err(e) = until.check(&format!("{} did not finish in time", self.program))
                    {
                        break Err(e);
                    }
                }
                Ok(ReadEvent::Closed { status }) => break Ok(status),
                Err(e) => break Err(e),
            }
        };
        let status = match r {
            Ok(st) => st.or_else(|| client.end(Duration::from_secs(1))),
            Err(e) => {
                client.end(Duration::ZERO);
                if let Some(f) = feeder {
                    let _ = f.join();
                }
                return Err(e);
            }
        };
        let fed = match feeder.map(|f| f.join()) {
            None => None,
            Some(Ok(r)) => Some(r?),
            Some(Err(_)) => return Err(SessionError::Other("the input feeder panicked".into())),
        };
        Ok(RunOut {
            code: match status {
                Some(ExitStatus::Code(c)) => c,
                _ => -1,
            },
            stderr: String::from_utf8_lossy(&stderr).trim().to_string(),
            fed,
        })
    }
}

/// What a short `ssh` run did.
struct RunOut {
    /// Its exit code (-1: killed or unknown).
    code: i32,
    /// What it printed on stderr (the first 64 KiB), trimmed.
    stderr: String,
    /// Size and SHA-256 of the input it was fed.
    fed: Option<(u64, [u8; 32])>,
}

/// Writes to a non-blocking descriptor as an `Until` allows.
struct FdWriter<'a>(&'a OwnedFd, &'a Until);

impl std::io::Write for FdWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        sys::write_all(self.0, buf, self.1).map_err(|e| match e {
            SessionError::Io(e) => e,
            e => std::io::Error::other(e.to_string()),
        })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A local `ssh` client process: the leader of its own session and process
/// group (so that a ProxyCommand it started goes with it).
#[derive(Debug)]
struct Client {
    child: SharedChild,
    pid: i32,
}

impl Client {
    fn new(child: Child) -> Client {
        let pid = child.id() as i32;
        Client {
            child: Arc::new(Mutex::new(child)),
            pid,
        }
    }

    /// Sends `sig` to the client's process group unless it has been reaped
    /// (the check and the kill under the child's lock: its pid cannot be
    /// reused meanwhile). Returns its status when it has ended.
    fn signal_group(&self, sig: i32) -> Option<ExitStatus> {
        let mut c = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(Some(st)) = c.try_wait() {
            return Some(sys::convert_status(st));
        }
        sys::kill(-self.pid, sig);
        None
    }

    /// Ends the client: TERM, then KILL after `grace`; its status.
    fn end(&self, grace: Duration) -> Option<ExitStatus> {
        if let Some(st) = self.signal_group(libc::SIGTERM) {
            return Some(st);
        }
        let wait = |d: Duration| {
            let until = Instant::now() + d;
            loop {
                if let Some(st) = try_status(&self.child) {
                    return Some(st);
                }
                if Instant::now() >= until {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        if let Some(st) = wait(grace) {
            return Some(st);
        }
        if let Some(st) = self.signal_group(libc::SIGKILL) {
            return Some(st);
        }
        wait(Duration::from_secs(2))
    }
}

/// The output half of an [`OpenSshChannel`]: the client's output, after
/// what was read with the pid marker (served first).
struct Leftover {
    pending: VecDeque<(Stream, Vec<u8>)>,
    inner: FdOutput,
}

impl Output for Leftover {
    fn read(&mut self, buf: &mut [u8], deadline: Instant) -> Result<ReadEvent> {
        if let Some((stream, mut data)) = self.pending.pop_front() {
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            if n < data.len() {
                data.drain(..n);
                self.pending.push_front((stream, data));
            }
            return Ok(ReadEvent::Data { stream, n });
        }
        self.inner.read(buf, deadline)
    }
}

/// A tester's shell run by the system ssh client.
pub struct OpenSshChannel {
    client: Client,
    /// The client's input (the pty master, or its stdin pipe).
    input: Option<OwnedFd>,
    /// The output half, until the capture thread takes it.
    output: Option<Leftover>,
    ssh: SshArgs,
    target: String,
    pty: bool,
    /// The remote shell's pid (also its session id) and its watchdog's.
    started: Started,
    /// The marks of the tester's processes (`DTEST_RUN_ID`, `DTEST_TESTER`).
    marks: Option<Marks>,
    /// What `close` stopped beyond the session.
    report: Vec<String>,
    cwd: Option<String>,
    stop: StopProbe,
    closed: bool,
    status: Option<ExitStatus>,
}

impl std::fmt::Debug for OpenSshChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenSshChannel")
            .field("target", &self.target)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl OpenSshChannel {
    /// Starts the client and waits for the remote shell's pid marker,
    /// giving up within 100 ms of `spec.stop` saying so.
    pub fn open(program: &str, spec: &OpenSpec) -> Result<OpenSshChannel> {
        let opts = TesterOptions::from_spec(spec)?;
        let target = format!("{} on {}", spec.shell, spec.host.raw);
        let fail = |reason: String| SessionError::Open {
            target: target.clone(),
            reason,
        };
        if opts.x11 && std::env::var_os("DISPLAY").is_none_or(|d| d.is_empty()) {
            return Err(fail("x11 = true but DISPLAY is not set for dtest".into()));
        }
        let ssh = SshArgs::new(program, spec, &opts)?;
        let cmd = ssh.command(spec.pty, opts.x11, &remote::start_command(spec));
        let Spawned {
            child,
            input,
            out,
            err,
        } = spawn_in_session(cmd, spec.pty)
            .map_err(|e| fail(format!("cannot run {program}: {e}")))?;
        let client = Client::new(child);
        let mut output = FdOutput::new(out, err, Arc::clone(&client.child));
        let until = Until::new(
            Instant::now() + opts.connect_timeout(spec) + Duration::from_secs(5),
            spec.stop.clone(),
        );
        let mut seen = Vec::new();
        let mut errs = Vec::new();
        let mut buf = vec![0u8; 4096];
        let printed = |seen: &[u8], errs: &[u8]| {
            let mut all = seen.to_vec();
            all.extend_from_slice(errs);
            String::from_utf8_lossy(&all).replace('\r', "")
        };
        let found = loop {
            match output.read(&mut buf, until.slice()) {
                Ok(ReadEvent::Data {
                    stream: Stream::Stderr,
                    n,
                }) => errs.extend_from_slice(&buf[..n]),
                Ok(ReadEvent::Data { n, .. }) => {
                    seen.extend_from_slice(&buf[..n]);
                    if let Some(found) = remote::find_started(&seen) {
                        break Ok(found);
                    }
                }
                Ok(ReadEvent::Timeout) => match until.check("") {
                    Err(SessionError::TimedOut(_)) => {
                        break Err(fail(format!(
                            "the remote shell did not start within {:?}; ssh printed: {:?}",
                            opts.connect_timeout(spec),
                            printed(&seen, &errs)
                        )))
                    }
                    Err(e) => break Err(e),
                    Ok(()) => {}
                },
                Ok(ReadEvent::Closed { status }) => {
                    let st = match status.or_else(|| client.end(Duration::from_millis(100))) {
                        Some(ExitStatus::Code(c)) => c.to_string(),
                        Some(s) => s.to_string(),
                        None => "?".into(),
                    };
                    break Err(fail(format!(
                        "ssh exited with status {st}: {}",
                        printed(&seen, &errs).trim().replace('\n', "; ")
                    )));
                }
                Err(e) => break Err(fail(e.to_string())),
            }
        };
        let (started, end) = match found {
            Ok(x) => x,
            Err(e) => {
                client.end(Duration::from_millis(100));
                return Err(e);
            }
        };
        // What ssh said on stderr before the shell started (host key
        // notes) and what followed the marker are the output's first bytes.
        let mut pending = VecDeque::new();
        if !errs.is_empty() {
            pending.push_back((Stream::Stderr, errs));
        }
        if end < seen.len() {
            pending.push_back((Stream::Stdout, seen[end..].to_vec()));
        }
        Ok(OpenSshChannel {
            client,
            input: Some(input),
            output: Some(Leftover {
                pending,
                inner: output,
            }),
            ssh,
            target,
            pty: spec.pty,
            started,
            marks: Marks::from_spec(spec),
            report: Vec::new(),
            cwd: spec.cwd.clone(),
            stop: spec.stop.clone(),
            closed: false,
            status: None,
        })
    }

    fn remote_path(&self, p: &str) -> String {
        remote::resolve(self.cwd.as_deref(), p)
    }

    /// The remote shell's process id (= its session id).
    pub fn remote_pid(&self) -> i32 {
        self.started.sid
    }

    /// The remote watchdog's process id (0: none).
    pub fn watchdog_pid(&self) -> i32 {
        self.started.watchdog
    }
}

impl Channel for OpenSshChannel {
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
        let Some(fd) = &self.input else {
            return Err(SessionError::Closed(
                "the ssh client's input is closed".into(),
            ));
        };
        sys::write_all(fd, bytes, until)
    }

    fn signal(&mut self, sig: Signal) -> Result<Option<usize>> {
        remote::check_open(self.closed)?;
        if self.started.sid <= 0 {
            return Ok(None);
        }
        let until = Until::new(Instant::now() + Duration::from_secs(15), self.stop.clone());
        let mut out = Vec::new();
        self.ssh
            .run(
                &remote::signal_command(self.started.sid, sig),
                None,
                &until,
                &mut |d| {
                    out.extend_from_slice(d);
                    Ok(())
                },
            )
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
        let mut out = Vec::new();
        self.ssh
            .run(
                &remote::foreground_command(self.started.sid),
                None,
                &until,
                &mut |d| {
                    out.extend_from_slice(d);
                    Ok(())
                },
            )
            .ok()?;
        remote::foreground(&out)
    }

    fn put(&mut self, local: &Path, remote: &str, until: &Until) -> Result<FileInfo> {
        remote::check_open(self.closed)?;
        let terr = |reason: String| SessionError::Transfer {
            op: "put",
            path: remote.to_string(),
            reason,
        };
        let lerr = |reason: String| SessionError::Transfer {
            op: "put",
            path: local.display().to_string(),
            reason,
        };
        let meta = std::fs::metadata(local).map_err(|e| lerr(e.to_string()))?;
        if !meta.is_file() {
            return Err(lerr(
                "not a regular file (only regular files are copied)".into(),
            ));
        }
        let src = std::fs::File::open(local).map_err(|e| lerr(e.to_string()))?;
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777;
        let path = self.remote_path(remote);
        let q = shell_quote(&path);
        let script = format!(
            "d=$(dirname {q}); mkdir -p \"$d\" && cat > {q} && chmod {mode:o} {q} && \
             (cd \"$d\" && printf '%s/%s' \"$(pwd)\" \"$(basename {q})\")"
        );
        let mut out = Vec::new();
        let r = self
            .ssh
            .run(&script, Some(src), until, &mut |d| {
                out.extend_from_slice(d);
                Ok(())
            })
            .map_err(|e| remote::transfer_err("put", remote, e))?;
        if r.code != 0 {
            return Err(terr(r.stderr));
        }
        let (size, sha256) = r.fed.ok_or_else(|| terr("no input was sent".into()))?;
        Ok(FileInfo {
            local: local.to_path_buf(),
            remote: String::from_utf8_lossy(&out).trim().to_string(),
            size,
            sha256,
        })
    }

    fn get(&mut self, remote: &str, local: &Path, until: &Until) -> Result<FileInfo> {
        use sha2::Digest;
        remote::check_open(self.closed)?;
        let terr = |reason: String| SessionError::Transfer {
            op: "get",
            path: remote.to_string(),
            reason,
        };
        let path = self.remote_path(remote);
        let q = shell_quote(&path);
        let script = format!(
            "if [ ! -e {q} ]; then echo 'no such file' >&2; exit 2; \
             elif [ ! -f {q} ]; then echo 'not a regular file (only regular files are copied)' >&2; exit 3; \
             fi; stat -c %a {q} && exec cat {q}"
        );
        // The first line is the mode; the rest is the file, written and
        // hashed as it arrives.
        let mut head: Option<Vec<u8>> = Some(Vec::new());
        let mut mode = 0o644;
        let mut file: Option<std::io::BufWriter<std::fs::File>> = None;
        let mut h = sha2::Sha256::new();
        let mut size = 0u64;
        let r = self
            .ssh
            .run(&script, None, until, &mut |mut d| {
                if let Some(hd) = &mut head {
                    let Some(i) = d.iter().position(|&b| b == b'\n') else {
                        hd.extend_from_slice(d);
                        return Ok(());
                    };
                    hd.extend_from_slice(&d[..i]);
                    mode =
                        u32::from_str_radix(String::from_utf8_lossy(hd).trim(), 8).unwrap_or(0o644);
                    head = None;
                    d = &d[i + 1..];
                    if let Some(parent) = local.parent() {
                        if !parent.as_os_str().is_empty() {
                            std::fs::create_dir_all(parent)?;
                        }
                    }
                    file = Some(std::io::BufWriter::new(std::fs::File::create(local)?));
                }
                h.update(d);
                size += d.len() as u64;
                match &mut file {
                    Some(f) => f.write_all(d),
                    None => Ok(()),
                }
            })
            .map_err(|e| remote::transfer_err("get", remote, e))?;
        if r.code != 0 {
            return Err(terr(r.stderr));
        }
        let Some(mut f) = file else {
            return Err(terr(format!("no data came back: {}", r.stderr)));
        };
        f.flush()
            .map_err(|e| terr(format!("{}: {e}", local.display())))?;
        drop(f);
        let _ = std::fs::set_permissions(local, std::os::unix::fs::PermissionsExt::from_mode(mode));
        Ok(FileInfo {
            local: local.to_path_buf(),
            remote: path,
            size,
            sha256: h.finalize().into(),
        })
    }

    /// Ends the remote watchdog, kills the remote session and the tester's
    /// processes that left it with another `ssh` run (bounded by `grace` +
    /// 10 s; see [`OpenSshChannel::close_report`]), then ends the client.
    /// The capture thread reads the client's output to its end.
    fn close(&mut self, grace: Duration) -> Result<Option<ExitStatus>> {
        if self.closed {
            return Ok(self.status.clone());
        }
        self.closed = true;
        if self.started.sid > 0 {
            let mut out = Vec::new();
            let r = self.ssh.run(
                &remote::cleanup_command(
                    self.started,
                    self.marks.as_ref(),
                    grace.as_millis() as u64,
                ),
                None,
                &Until::after(grace + Duration::from_secs(10)),
                &mut |d| {
                    out.extend_from_slice(d);
                    Ok(())
                },
            );
            if r.is_ok() {
                self.report = remote::cleanup_report(&out, &self.ssh.url);
            }
        }
        self.input = None;
        let until = Instant::now() + Duration::from_secs(2);
        while self.status.is_none() && Instant::now() < until {
            self.status = try_status(&self.client.child);
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(st) = self.client.end(Duration::from_millis(200)) {
            if self.status.is_none() {
                self.status = Some(st);
            }
        }
        Ok(self.status.clone())
    }
}

impl Drop for OpenSshChannel {
    fn drop(&mut self) {
        let _ = self.close(Duration::from_millis(200));
    }
}
