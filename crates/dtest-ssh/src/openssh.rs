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

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dtest_exec::session::shell::shell_quote;
use dtest_exec::session::{
    signal_name, Channel, FileInfo, HostUrl, OpenSpec, ReadEvent, Result, SessionError, Signal,
    Transport,
};
use dtest_trace::{ExitStatus, Stream};

use crate::config::{parse_url, HostConfig, HostKeyPolicy, TesterOptions};
use crate::pty::Proc;
use crate::remote;

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
        })
    }

    /// A `Command` running `remote` on the host (`tty`: -tt, else -T).
    fn command(&self, tty: bool, x11: bool, remote: &str) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        c.arg(if tty { "-tt" } else { "-T" });
        if x11 {
            c.arg("-X");
        } else {
            c.arg("-x");
        }
        c.arg("--").arg(&self.dest).arg(remote);
        c
    }

    /// Runs a short command; returns its status and output (stdout then
    /// stderr), killing the client at the deadline.
    fn run(
        &self,
        remote: &str,
        input: Option<&Path>,
        deadline: Instant,
    ) -> std::result::Result<(i32, Vec<u8>, Vec<u8>), String> {
        let mut c = self.command(false, false, remote);
        c.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.program))?;
        let feeder = match (input, child.stdin.take()) {
            (Some(p), Some(mut w)) => {
                let mut f = std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
                Some(std::thread::spawn(move || {
                    let _ = std::io::copy(&mut f, &mut w);
                }))
            }
            _ => None,
        };
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        let t_out = std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(o) = out.as_mut() {
                let _ = o.read_to_end(&mut v);
            }
            v
        });
        let t_err = std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(o) = err.as_mut() {
                let _ = o.read_to_end(&mut v);
            }
            v
        });
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err("timed out".into());
                }
            }
        };
        if let Some(f) = feeder {
            let _ = f.join();
        }
        let o = t_out.join().unwrap_or_default();
        let e = t_err.join().unwrap_or_default();
        Ok((status.code().unwrap_or(-1), o, e))
    }
}

/// A tester's shell run by the system ssh client.
#[derive(Debug)]
pub struct OpenSshChannel {
    proc: Proc,
    ssh: SshArgs,
    target: String,
    pty: bool,
    sid: i32,
    /// Output read past the pid marker, served first.
    pending: Vec<u8>,
    cwd: Option<String>,
    closed: bool,
    status: Option<ExitStatus>,
}

impl OpenSshChannel {
    /// Starts the client and waits for the remote shell's pid marker.
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
        let proc =
            Proc::spawn(cmd, spec.pty).map_err(|e| fail(format!("cannot run {program}: {e}")))?;
        let mut ch = OpenSshChannel {
            proc,
            ssh,
            target: target.clone(),
            pty: spec.pty,
            sid: 0,
            pending: Vec::new(),
            cwd: spec.cwd.clone(),
            closed: false,
            status: None,
        };
        let deadline = Instant::now() + opts.connect_timeout(spec) + Duration::from_secs(5);
        let mut seen = Vec::new();
        let mut errs = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            match ch.proc.read(&mut buf, deadline) {
                Ok(Some((_, 0))) => {
                    let st = ch.proc.kill(Duration::from_millis(100));
                    seen.extend_from_slice(&errs);
                    let text = String::from_utf8_lossy(&seen).replace('\r', "");
                    let code = st.and_then(|s| s.code()).unwrap_or(-1);
                    return Err(fail(format!(
                        "ssh exited with status {code}: {}",
                        text.trim().replace('\n', "; ")
                    )));
                }
                Ok(Some((Stream::Stderr, n))) => errs.extend_from_slice(&buf[..n]),
                Ok(Some((_, n))) => {
                    seen.extend_from_slice(&buf[..n]);
                    if let Some((pid, end)) = remote::find_pid(&seen) {
                        ch.sid = pid;
                        ch.pending = seen[end..].to_vec();
                        return Ok(ch);
                    }
                }
                Ok(None) => {
                    seen.extend_from_slice(&errs);
                    return Err(fail(format!(
                        "the remote shell did not start within {:?}; ssh printed: {:?}",
                        opts.connect_timeout(spec),
                        String::from_utf8_lossy(&seen)
                    )));
                }
                Err(e) => return Err(fail(e.to_string())),
            }
        }
    }

    fn remote_path(&self, p: &str) -> String {
        match &self.cwd {
            Some(c) if !p.starts_with('/') => format!("{}/{p}", c.trim_end_matches('/')),
            _ => p.to_string(),
        }
    }
}

impl Channel for OpenSshChannel {
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
        self.proc
            .write_all(bytes)
            .map_err(|e| SessionError::Closed(format!("ssh input: {e}")))
    }

    fn read(&mut self, buf: &mut [u8], deadline: Instant) -> Result<ReadEvent> {
        if !self.pending.is_empty() {
            let n = self.pending.len().min(buf.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            return Ok(ReadEvent::Data {
                stream: Stream::Stdout,
                n,
            });
        }
        match self.proc.read(buf, deadline)? {
            Some((_, 0)) => {
                if self.status.is_none() {
                    let until = Instant::now() + Duration::from_millis(500);
                    while Instant::now() < until.min(deadline) {
                        if let Ok(Some(st)) = self.proc.child.try_wait() {
                            self.status = Some(convert(st));
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                Ok(ReadEvent::Closed {
                    status: self.status.clone(),
                })
            }
            Some((stream, n)) => Ok(ReadEvent::Data { stream, n }),
            None => Ok(ReadEvent::Timeout),
        }
    }

    fn signal(&mut self, sig: Signal) -> Result<()> {
        if self.closed || self.sid <= 0 {
            return Ok(());
        }
        self.ssh
            .run(
                &remote::signal_command(self.sid, sig),
                None,
                Instant::now() + Duration::from_secs(15),
            )
            .map(|_| ())
            .map_err(|e| {
                SessionError::Other(format!("cannot signal {sig} on {}: {e}", self.target))
            })
    }

    fn put(&mut self, local: &Path, remote: &str) -> Result<FileInfo> {
        let terr = |reason: String| SessionError::Transfer {
            op: "put",
            path: remote.to_string(),
            reason,
        };
        let (size, sha256) = {
            let f = std::fs::File::open(local)
                .map_err(|e| terr(format!("{}: {e}", local.display())))?;
            dtest_exec::session::hash_reader(f, std::io::sink()).map_err(|e| terr(e.to_string()))?
        };
        let mode = std::fs::metadata(local)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
            .unwrap_or(0o644);
        let path = self.remote_path(remote);
        let q = shell_quote(&path);
        let script = format!(
            "d=$(dirname {q}); mkdir -p \"$d\" && cat > {q} && chmod {mode:o} {q} && \
             (cd \"$d\" && printf '%s/%s' \"$(pwd)\" \"$(basename {q})\")"
        );
        let (code, out, err) = self
            .ssh
            .run(
                &script,
                Some(local),
                Instant::now() + Duration::from_secs(600),
            )
            .map_err(terr)?;
        if code != 0 {
            return Err(terr(String::from_utf8_lossy(&err).trim().to_string()));
        }
        Ok(FileInfo {
            local: local.to_path_buf(),
            remote: String::from_utf8_lossy(&out).trim().to_string(),
            size,
            sha256,
        })
    }

    fn get(&mut self, remote: &str, local: &Path) -> Result<FileInfo> {
        let terr = |reason: String| SessionError::Transfer {
            op: "get",
            path: remote.to_string(),
            reason,
        };
        let path = self.remote_path(remote);
        let q = shell_quote(&path);
        let script = format!("stat -c %a {q} && cat {q}");
        let (code, out, err) = self
            .ssh
            .run(&script, None, Instant::now() + Duration::from_secs(600))
            .map_err(terr)?;
        if code != 0 {
            return Err(terr(String::from_utf8_lossy(&err).trim().to_string()));
        }
        let nl = out.iter().position(|&b| b == b'\n').unwrap_or(out.len());
        let mode =
            u32::from_str_radix(String::from_utf8_lossy(&out[..nl]).trim(), 8).unwrap_or(0o644);
        let data = out.get(nl + 1..).unwrap_or(&[]);
        if let Some(parent) = local.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| terr(e.to_string()))?;
            }
        }
        let mut f =
            std::fs::File::create(local).map_err(|e| terr(format!("{}: {e}", local.display())))?;
        f.write_all(data).map_err(|e| terr(e.to_string()))?;
        let _ = std::fs::set_permissions(local, std::os::unix::fs::PermissionsExt::from_mode(mode));
        let (size, sha256) = dtest_exec::session::hash_reader(data, std::io::sink())
            .map_err(|e| terr(e.to_string()))?;
        Ok(FileInfo {
            local: local.to_path_buf(),
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
        if self.sid > 0 {
            let _ = self.ssh.run(
                &remote::cleanup_command(self.sid, grace.as_millis() as u64),
                None,
                Instant::now() + grace + Duration::from_secs(15),
            );
        }
        self.proc.close_input();
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            if let Ok(Some(st)) = self.proc.child.try_wait() {
                if self.status.is_none() {
                    self.status = Some(convert(st));
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(st) = self.proc.kill(Duration::from_millis(200)) {
            if self.status.is_none() {
                self.status = Some(convert(st));
            }
        }
        Ok(self.status.clone())
    }
}

fn convert(st: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => ExitStatus::Code(c),
        (None, Some(s)) => ExitStatus::Signal(signal_name(s)),
        _ => ExitStatus::Code(-1),
    }
}

impl Drop for OpenSshChannel {
    fn drop(&mut self) {
        let _ = self.close(Duration::from_millis(200));
    }
}
