//! A test harness that runs real OpenSSH servers on loopback addresses.
//!
//! [`Sshd::start`] writes a config, a fresh ed25519 host key and an
//! authorized_keys file into a temp dir and runs `/usr/sbin/sshd -D -f
//! CONFIG -E LOG` on a free port of `127.0.0.N`; several servers on
//! 127.0.0.2, 127.0.0.3, ... stand for several hosts. [`Client`] is the
//! controller's side: a temp HOME holding `.ssh/id_ed25519`,
//! `.ssh/known_hosts` and `.ssh/config`, used by the tests through `HOME`
//! (native transport) and `DTEST_SSH_CONFIG` (both transports). Every server,
//! and every process it started, is killed on drop.
//!
//! It depends on std, libc and tempfile only, so that a crate's own tests
//! can include it with `#[path]` as well.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's sshd lives.
pub const SSHD: &str = "/usr/sbin/sshd";

/// Fails with a message naming the package when sshd is not installed.
pub fn require_sshd() {
    if !Path::new(SSHD).is_file() {
        panic!("{SSHD} not found: install the Debian package `openssh-server` (the README's test command does)");
    }
    for tool in ["ssh-keygen", "ssh"] {
        let ok = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !ok && tool == "ssh" {
            panic!("`ssh` not found: install the Debian package `openssh-client`");
        }
    }
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "dtest-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run ssh-keygen (openssh-client): {e}"));
    assert!(st.success(), "ssh-keygen failed for {}", path.display());
}

/// The controller's side: a temp HOME with a user key.
#[derive(Debug)]
pub struct Client {
    /// The temp HOME.
    pub home: tempfile::TempDir,
}

impl Client {
    /// A HOME with `.ssh/id_ed25519` and an empty known_hosts.
    pub fn new() -> Client {
        require_sshd();
        let home = tempfile::tempdir().expect("temp dir");
        let ssh = home.path().join(".ssh");
        std::fs::create_dir_all(&ssh).expect("mkdir .ssh");
        keygen(&ssh.join("id_ed25519"));
        std::fs::write(ssh.join("known_hosts"), "").expect("known_hosts");
        Client { home }
    }

    /// `HOME/.ssh/...`.
    pub fn ssh_path(&self, name: &str) -> PathBuf {
        self.home.path().join(".ssh").join(name)
    }

    /// The user key's public line.
    pub fn public_key(&self) -> String {
        std::fs::read_to_string(self.ssh_path("id_ed25519.pub")).expect("public key")
    }

    /// Records a server's host key in `.ssh/known_hosts`.
    pub fn trust(&self, s: &Sshd) {
        let mut kh = std::fs::read_to_string(self.ssh_path("known_hosts")).unwrap_or_default();
        kh.push_str(&s.known_hosts_line());
        kh.push('\n');
        std::fs::write(self.ssh_path("known_hosts"), kh).expect("known_hosts");
    }

    /// Writes `.ssh/config` with a `Host` alias per server (for the
    /// openssh transport, passed as `-F`); returns its path.
    pub fn write_config(&self, hosts: &[(&str, &Sshd)]) -> PathBuf {
        let mut c = String::new();
        for (alias, s) in hosts {
            let _ = writeln!(
                c,
                "Host {alias}\n  HostName {}\n  Port {}\n  User {}\n",
                s.addr,
                s.port,
                user()
            );
        }
        let _ = writeln!(
            c,
            "Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  \
             GlobalKnownHostsFile /dev/null\n  ForwardX11Trusted yes\n  LogLevel ERROR",
            self.ssh_path("id_ed25519").display(),
            self.ssh_path("known_hosts").display()
        );
        let p = self.ssh_path("config");
        std::fs::write(&p, c).expect("ssh config");
        p
    }

    /// Environment for dtest: HOME, DTEST_SSH_CONFIG, no agent.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("HOME".into(), self.home.path().display().to_string()),
            (
                "DTEST_SSH_CONFIG".into(),
                self.ssh_path("config").display().to_string(),
            ),
            ("SSH_AUTH_SOCK".into(), String::new()),
        ]
    }
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

/// The user the tests run as.
pub fn user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            let o = Command::new("id").arg("-un").output().expect("id -un");
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        })
}

/// One running sshd.
#[derive(Debug)]
pub struct Sshd {
    /// The loopback address (`127.0.0.2`).
    pub addr: String,
    /// The port.
    pub port: u16,
    /// Config, keys, log.
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

/// Options of a server.
#[derive(Clone, Debug, Default)]
pub struct SshdOptions {
    /// Password authentication only (no public keys).
    pub password: bool,
    /// Extra config lines.
    pub extra: String,
}

fn free_port(addr: &str) -> u16 {
    let l = TcpListener::bind((addr, 0)).unwrap_or_else(|e| panic!("bind {addr}:0: {e}"));
    l.local_addr().expect("local addr").port()
}

impl Sshd {
    /// Starts a server on `127.0.0.{octet}` accepting `client`'s key.
    pub fn start(octet: u8, client: &Client) -> Sshd {
        Sshd::start_with(octet, client, &SshdOptions::default())
    }

    /// Same, with options.
    pub fn start_with(octet: u8, client: &Client, o: &SshdOptions) -> Sshd {
        require_sshd();
        let _ = std::fs::create_dir_all("/run/sshd");
        let addr = format!("127.0.0.{octet}");
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        keygen(&d.join("host_key"));
        std::fs::write(d.join("authorized_keys"), client.public_key()).expect("authorized_keys");
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port(&addr);
            // A password server takes passwords only, so the test proves
            // the password path.
            let (pw, pk) = if o.password {
                ("yes", "no")
            } else {
                ("no", "yes")
            };
            let cfg = format!(
                "ListenAddress {addr}:{port}\n\
                 HostKey {hk}\n\
                 PidFile {pid}\n\
                 AuthorizedKeysFile {ak}\n\
                 PermitRootLogin yes\n\
                 StrictModes no\n\
                 UsePAM no\n\
                 PubkeyAuthentication {pk}\n\
                 PasswordAuthentication {pw}\n\
                 KbdInteractiveAuthentication no\n\
                 PermitEmptyPasswords no\n\
                 X11Forwarding yes\n\
                 X11UseLocalhost yes\n\
                 PrintMotd no\n\
                 UseDNS no\n\
                 MaxStartups 100\n\
                 LogLevel VERBOSE\n\
                 Subsystem sftp internal-sftp\n\
                 {extra}\n",
                hk = d.join("host_key").display(),
                pid = d.join("sshd.pid").display(),
                ak = d.join("authorized_keys").display(),
                extra = o.extra,
            );
            std::fs::write(d.join("sshd_config"), cfg).expect("sshd_config");
            let log = d.join("sshd.log");
            let _ = std::fs::remove_file(&log);
            let child = Command::new(SSHD)
                .arg("-D")
                .arg("-f")
                .arg(d.join("sshd_config"))
                .arg("-E")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {SSHD}: {e}"));
            let mut child = child;
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut up = false;
            while Instant::now() < deadline {
                if TcpStream::connect((addr.as_str(), port)).is_ok() {
                    up = true;
                    break;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if up {
                return Sshd {
                    addr,
                    port,
                    dir,
                    child: Some(child),
                };
            }
            // The port was taken meanwhile, or sshd failed: try again.
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("sshd did not start on {addr}: {last_log}");
    }

    /// `ssh://user@addr:port`.
    pub fn url(&self) -> String {
        format!("ssh://{}@{}:{}", user(), self.addr, self.port)
    }

    /// The known_hosts line of this server's host key.
    pub fn known_hosts_line(&self) -> String {
        let pubk = std::fs::read_to_string(self.dir.path().join("host_key.pub")).expect("host key");
        let mut f = pubk.split_whitespace();
        let (t, k) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
        format!("[{}]:{} {t} {k}", self.addr, self.port)
    }

    /// The SHA256 fingerprint of the host key, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        let o = Command::new("ssh-keygen")
            .arg("-l")
            .arg("-f")
            .arg(self.dir.path().join("host_key.pub"))
            .output()
            .expect("ssh-keygen -l");
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string()
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// The listening sshd's pid.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// Refuses every new login (the authorized keys are emptied; sshd reads
    /// them at each login); established connections go on.
    pub fn refuse_logins(&self) {
        std::fs::write(self.dir.path().join("authorized_keys"), "").expect("authorized_keys");
    }

    /// Undoes [`Sshd::refuse_logins`] for `client`'s key.
    pub fn allow_logins(&self, client: &Client) {
        std::fs::write(self.dir.path().join("authorized_keys"), client.public_key())
            .expect("authorized_keys");
    }

    /// Kills the per-connection sshd processes (the connections drop, the
    /// listener stays): a cut connection.
    pub fn cut_connections(&self) {
        let Some(pid) = self.pid() else { return };
        for p in descendants(pid) {
            if comm(p).starts_with("sshd") {
                kill(p, libc::SIGKILL);
            }
        }
    }

    /// Kills the server and everything it started (a host going down).
    pub fn kill_all(&mut self) {
        if let Some(pid) = self.pid() {
            // Stop the listener first (no new children), list its
            // descendants while they are still linked to it, then kill.
            kill(pid, libc::SIGSTOP);
            for _ in 0..3 {
                for p in descendants(pid) {
                    kill(p, libc::SIGKILL);
                }
            }
            kill(pid, libc::SIGKILL);
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: kill has no memory effects.
    unsafe {
        libc::kill(pid, sig);
    }
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Every descendant of `root` (by parent links in /proc).
pub fn descendants(root: i32) -> Vec<i32> {
    let mut all = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) {
                if let Some(pp) = ppid(pid) {
                    all.push((pid, pp));
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(c, pp) in &all {
            if pp == p && !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

/// Pids of processes whose command line holds `marker` (like `pgrep -f`),
/// this test process excluded.
pub fn pgrep(marker: &str) -> Vec<i32> {
    let o = Command::new("pgrep")
        .arg("-f")
        .arg(marker)
        .output()
        .expect("pgrep (procps)");
    let me = std::process::id() as i32;
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .filter(|p| *p != me)
        .collect()
}

/// Waits (bounded) until no process matches `marker`; returns what is left.
pub fn wait_gone(marker: &str, within: Duration) -> Vec<i32> {
    let until = Instant::now() + within;
    loop {
        let left = pgrep(marker);
        if left.is_empty() || Instant::now() >= until {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
