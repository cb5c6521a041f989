//! End-to-end tests of the ssh area: `dtest exec` with testers on real
//! OpenSSH servers (tests/it/sshd.rs) through both transports: the md5
//! example across two hosts, and faults (server killed, wrong or unknown
//! host key, authentication failure, nothing listening, output flood, a
//! command ignoring SIGINT, a connection cut at a barrier), a password
//! that never reaches a log or the trace, and X11 forwarding under Xvfb.
//! Every run has a deadline; no timing is asserted.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{dtest, repo_root, require_tool, show, wait_deadline};
use crate::sshd::{self, Client, Sshd, SshdOptions};

/// A finished `dtest exec`.
struct Run {
    dir: tempfile::TempDir,
    out: Output,
}

impl Run {
    fn out_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    fn all(&self) -> String {
        show(&self.out)
    }
    fn not_ok(&self, needle: &str) {
        let s = self.stdout();
        assert!(
            s.lines()
                .any(|l| l.starts_with("not ok") && l.contains(needle))
                || (s.contains("not ok") && self.logs().contains(needle)),
            "no `not ok` with {needle:?}\n{}\n--- logs ---\n{}",
            self.all(),
            self.logs()
        );
        assert_eq!(self.out.status.code(), Some(1), "{}", self.all());
        validate_trace(&self.out_dir().join("trace.dtrace"));
    }
    /// Every tester log, concatenated.
    fn logs(&self) -> String {
        let mut s = String::new();
        if let Ok(rd) = std::fs::read_dir(self.out_dir()) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "err" || x == "out") {
                    s.push_str(&String::from_utf8_lossy(
                        &std::fs::read(&p).unwrap_or_default(),
                    ));
                }
            }
        }
        s
    }
}

/// Starts `dtest exec` on `toml` (or a file) with the client's environment.
fn spawn(
    c: &Client,
    toml: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (tempfile::TempDir, Child) {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = if toml.ends_with(".toml") && !toml.contains('\n') {
        repo_root().join(toml)
    } else {
        let f = dir.path().join("s.toml");
        std::fs::write(&f, toml).expect("write scenario");
        f
    };
    let mut cmd = dtest();
    cmd.current_dir(repo_root())
        .arg("exec")
        .arg(&f)
        .arg("--out")
        .arg(dir.path().join("run"))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in c.env() {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    (dir, cmd.spawn().expect("spawn dtest"))
}

fn finish(dir: tempfile::TempDir, child: Child, secs: u64) -> Run {
    let out = wait_deadline(child, secs, "dtest exec");
    Run { dir, out }
}

fn exec(c: &Client, toml: &str, extra: &[&str], secs: u64) -> Run {
    let (d, ch) = spawn(c, toml, extra, &[]);
    finish(d, ch, secs)
}

fn validate_trace(path: &Path) {
    let o = dtest()
        .args(["trace", "validate"])
        .arg(path)
        .output()
        .expect("dtest trace validate");
    assert!(
        o.status.success(),
        "trace validate {}:\n{}",
        path.display(),
        show(&o)
    );
}

/// Waits (bounded) until a process matching `marker` runs.
fn wait_started(marker: &str) {
    let until = Instant::now() + Duration::from_secs(20);
    while sshd::pgrep(marker).is_empty() {
        assert!(Instant::now() < until, "{marker} never started");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_gone(marker: &str) {
    let left = sshd::wait_gone(marker, Duration::from_secs(10));
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

fn md5_ok(r: &Run) {
    assert_eq!(
        r.out.status.code(),
        Some(0),
        "{}\n--- logs ---\n{}",
        r.all(),
        r.logs()
    );
    assert!(!r.stdout().contains("not ok"), "{}", r.all());
    assert!(r.stdout().contains("compare res1 with res2"), "{}", r.all());
    validate_trace(&r.out_dir().join("trace.dtrace"));
}

#[test]
fn md5_example_across_two_sshd_native_and_openssh() {
    require_tool("md5sum", "coreutils");
    let c = Client::new();
    let a = Sshd::start(2, &c);
    let b = Sshd::start(3, &c);
    c.trust(&a);
    c.trust(&b);
    c.write_config(&[("hosta", &a), ("hostb", &b)]);
    let r = exec(
        &c,
        "examples/md5/md5.toml",
        &[
            "--host",
            &format!("tester1={}", a.url()),
            "--host",
            &format!("tester2={}", b.url()),
        ],
        120,
    );
    md5_ok(&r);
    let r = exec(
        &c,
        "examples/md5/md5.toml",
        &[
            "--host",
            "tester1=openssh://hosta",
            "--host",
            "tester2=openssh://hostb",
        ],
        120,
    );
    md5_ok(&r);
}

fn one_tester(host: &str, keys: &str, steps: &str) -> String {
    format!(
        "name = \"ssh-fault\"\ntimeout = \"90s\"\n[[tester]]\nname = \"t1\"\nhost = \"{host}\"\n{keys}\nsteps = [\n{steps}\n]\n"
    )
}

#[test]
fn host_keys_wrong_unknown_and_accept_new() {
    let c = Client::new();
    let a = Sshd::start(4, &c);
    let b = Sshd::start(5, &c);
    c.write_config(&[]);
    let steps = "{ run = \"echo hi\" }, { expect = \"hi\" }";
    // Unknown, strict: refused, with the fingerprint and how to accept.
    let r = exec(&c, &one_tester(&a.url(), "", steps), &[], 60);
    r.not_ok("t1");
    assert!(
        r.all().contains(&a.fingerprint()) || r.logs().contains(&a.fingerprint()),
        "{}",
        r.all()
    );
    // The openssh client refuses too.
    let r = exec(
        &c,
        &one_tester(&format!("openssh://{}:{}", a.addr, a.port), "", steps),
        &[],
        60,
    );
    r.not_ok("t1");
    // accept-new records it, and the run passes.
    let r = exec(
        &c,
        &one_tester(&a.url(), "host_key = \"accept-new\"", steps),
        &[],
        60,
    );
    assert_eq!(r.out.status.code(), Some(0), "{}", r.all());
    let kh = std::fs::read_to_string(c.ssh_path("known_hosts")).unwrap();
    assert!(kh.contains(&a.known_hosts_line()), "{kh}");
    // Wrong key: b's address recorded with a's key.
    let wrong = a.known_hosts_line().replace(
        &format!("[{}]:{}", a.addr, a.port),
        &format!("[{}]:{}", b.addr, b.port),
    );
    std::fs::write(c.ssh_path("known_hosts"), wrong + "\n").unwrap();
    let r = exec(
        &c,
        &one_tester(&b.url(), "host_key = \"accept-new\"", steps),
        &[],
        60,
    );
    r.not_ok("t1");
    let text = format!("{}{}", r.all(), r.logs());
    assert!(
        text.contains("HOST KEY MISMATCH") && text.contains(&b.fingerprint()),
        "{text}"
    );
}

#[test]
fn auth_failure_and_nothing_listening() {
    let c = Client::new();
    let stranger = Client::new();
    let a = Sshd::start(6, &c);
    stranger.trust(&a);
    stranger.write_config(&[]);
    let steps = "{ run = \"echo hi\" }";
    let r = exec(&stranger, &one_tester(&a.url(), "", steps), &[], 60);
    r.not_ok("t1");
    assert!(
        format!("{}{}", r.all(), r.logs()).contains("authentication of"),
        "{}",
        r.all()
    );
    let r = exec(
        &stranger,
        &one_tester("ssh://127.0.0.7:1", "", steps),
        &[],
        60,
    );
    r.not_ok("t1");
    // A port that accepts but never speaks: the tester's connect timeout.
    let l = std::net::TcpListener::bind("127.0.0.7:0").unwrap();
    let url = format!("ssh://127.0.0.7:{}", l.local_addr().unwrap().port());
    let r = exec(
        &stranger,
        &one_tester(&url, "connect_timeout = \"1s\"", steps),
        &[],
        60,
    );
    r.not_ok("t1");
    drop(l);
}

#[test]
fn sshd_killed_during_a_run() {
    let c = Client::new();
    let mut a = Sshd::start(8, &c);
    c.trust(&a);
    c.write_config(&[]);
    let toml = one_tester(
        &a.url(),
        "keepalive = \"1s\"",
        "{ run = \"sh -c 'sleep 61' mark-7401\" }, { expect = \"never printed\", timeout = \"50s\" }",
    );
    let (d, ch) = spawn(&c, &toml, &[], &[]);
    wait_started("mark-7401");
    a.kill_all();
    let r = finish(d, ch, 90);
    r.not_ok("t1");
    assert!(r.stdout().contains("lost"), "{}", r.all());
    assert_gone("mark-7401");
}

#[test]
fn connection_cut_while_testers_wait_at_a_barrier() {
    let c = Client::new();
    let a = Sshd::start(9, &c);
    let b = Sshd::start(10, &c);
    c.trust(&a);
    c.trust(&b);
    c.write_config(&[]);
    let toml = format!(
        "name = \"cut\"\ntimeout = \"90s\"\n\
         [[tester]]\nname = \"t1\"\nhost = \"{}\"\nkeepalive = \"1s\"\nsteps = [\n\
           {{ run = \"sh -c 'sleep 62' mark-7402\" }},\n\
           {{ expect = \"never printed\", timeout = \"60s\" }},\n\
           {{ barrier = \"b\", timeout = \"60s\" }},\n]\n\
         [[tester]]\nname = \"t2\"\nhost = \"{}\"\nsteps = [\n\
           {{ run = \"sh -c 'sleep 63' mark-7403\" }},\n\
           {{ barrier = \"b\", timeout = \"60s\" }},\n]\n",
        a.url(),
        b.url()
    );
    let (d, ch) = spawn(&c, &toml, &[], &[]);
    wait_started("mark-7402");
    wait_started("mark-7403");
    a.cut_connections();
    let r = finish(d, ch, 60);
    r.not_ok("t1");
    let s = r.stdout();
    assert!(
        s.lines()
            .any(|l| l.starts_with("not ok") && l.contains("t2")),
        "t2 was not released with not ok:\n{}",
        r.all()
    );
    assert_gone("mark-7402");
    assert_gone("mark-7403");
}

#[test]
fn remote_flood_and_command_ignoring_sigint() {
    let c = Client::new();
    let a = Sshd::start(11, &c);
    c.trust(&a);
    c.write_config(&[("hosta", &a)]);
    for host in [a.url(), "openssh://hosta".to_string()] {
        let toml = one_tester(
            &host,
            "",
            "{ run = \"yes flood-7404 | head -c 300000000; echo END\" },\n\
             { expect = \"NEVER-IN-OUTPUT\", timeout = \"3s\", on_fail = \"continue\" },\n\
             { terminate = \"INT\" },\n\
             { run = \"trap '' INT; sleep 64 # mark-7405\" },\n\
             { sleep = \"300ms\" },\n\
             { terminate = \"INT\" },\n\
             { wait = \"20s\" },\n\
             { run = \"echo alive\" }, { expect = \"alive\" }",
        );
        let r = exec(&c, &toml, &[], 120);
        let s = r.stdout();
        assert!(
            s.lines()
                .any(|l| l.starts_with("not ok") && l.contains("NEVER-IN-OUTPUT")),
            "{}",
            r.all()
        );
        assert!(
            s.lines()
                .any(|l| l.starts_with("ok") && l.contains("alive")),
            "the session survived neither the flood nor the terminate:\n{}",
            r.all()
        );
        validate_trace(&r.out_dir().join("trace.dtrace"));
        assert_gone("mark-7405");
        assert_gone("flood-7404");
    }
}

/// A local user with a password, for the password test (we run as root
/// in CI; `useradd` and `chpasswd` are in Debian's passwd package).
fn password_user(pw: &str) -> Option<String> {
    let name = "dtestpw";
    if !Command::new("id").arg(name).output().ok()?.status.success() {
        let st = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", name])
            .status()
            .ok()?;
        if !st.success() {
            return None;
        }
    }
    let mut ch = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .ok()?;
    {
        use std::io::Write;
        ch.stdin
            .take()?
            .write_all(format!("{name}:{pw}\n").as_bytes())
            .ok()?;
    }
    ch.wait().ok()?.success().then(|| name.to_string())
}

#[test]
fn password_from_env_never_reaches_logs_or_trace() {
    let c = Client::new();
    let pw = format!("Pw-{}-secret", std::process::id());
    let user = password_user(&pw)
        .expect("cannot create a local user with a password (useradd/chpasswd, as root)");
    let a = Sshd::start_with(
        12,
        &c,
        &SshdOptions {
            password: true,
            extra: String::new(),
        },
    );
    c.trust(&a);
    c.write_config(&[]);
    let url = format!("ssh://{user}@{}:{}", a.addr, a.port);
    let toml = one_tester(
        &url,
        "password_env = \"DTEST_TEST_PW\"",
        "{ run = \"id -un\" }, { expect = \"dtestpw\" }",
    );
    let (d, ch) = spawn(&c, &toml, &[], &[("DTEST_TEST_PW", &pw)]);
    let r = finish(d, ch, 60);
    assert_eq!(r.out.status.code(), Some(0), "{}", r.all());
    // A wrong password fails cleanly, without echoing what was tried.
    let (d2, ch2) = spawn(&c, &toml, &[], &[("DTEST_TEST_PW", "wrong-Pw-0000")]);
    let r2 = finish(d2, ch2, 60);
    r2.not_ok("t1");
    for (run, secret) in [(&r, pw.as_str()), (&r2, "wrong-Pw-0000")] {
        assert!(!run.all().contains(secret), "password on the console");
        for e in walk(&run.out_dir()) {
            let data = std::fs::read(&e).unwrap_or_default();
            assert!(
                !data.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "password in {}",
                e.display()
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                v.extend(walk(&p));
            } else {
                v.push(p);
            }
        }
    }
    v
}

#[test]
fn x11_forwarding_under_xvfb() {
    let xvfb = require_tool("Xvfb", "xvfb");
    require_tool("xdpyinfo", "x11-utils");
    require_tool("xauth", "xauth");
    let c = Client::new();
    let a = Sshd::start(13, &c);
    c.trust(&a);
    c.write_config(&[("hosta", &a)]);
    let display = 87;
    let mut x = Command::new(xvfb)
        .arg(format!(":{display}"))
        .args(["-screen", "0", "1234x567x24", "-nolisten", "tcp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb");
    let sock = format!("/tmp/.X11-unix/X{display}");
    let until = Instant::now() + Duration::from_secs(10);
    while !Path::new(&sock).exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let toml = one_tester(
        "openssh://hosta",
        "x11 = true",
        "{ run = \"xdpyinfo | grep dimensions\" }, { expect = \"1234x567 pixels\" }, { wait = \"20s\", status = 0 }",
    );
    let (d, ch) = spawn(&c, &toml, &[], &[("DISPLAY", &format!(":{display}"))]);
    let r = finish(d, ch, 60);
    let _ = x.kill();
    let _ = x.wait();
    assert_eq!(r.out.status.code(), Some(0), "{}\n{}", r.all(), r.logs());
}

#[test]
fn more_testers_than_max_sessions_on_one_host() {
    let c = Client::new();
    let a = Sshd::start_with(
        14,
        &c,
        &SshdOptions {
            password: false,
            extra: "MaxSessions 4".into(),
        },
    );
    c.trust(&a);
    c.write_config(&[]);
    let mut toml = String::from("name = \"many\"\ntimeout = \"90s\"\n");
    for i in 0..9 {
        toml.push_str(&format!(
            "[[tester]]\nname = \"t{i}\"\nhost = \"{}\"\nmax_sessions = 4\nsteps = [ {{ run = \"echo t{i}-says-$((40+2))\" }}, {{ expect = \"t{i}-says-42\" }}, {{ barrier = \"all\" }}, {{ wait = \"10s\", status = 0 }} ]\n",
            a.url()
        ));
    }
    let r = exec(&c, &toml, &[], 90);
    assert_eq!(r.out.status.code(), Some(0), "{}\n{}", r.all(), r.logs());
    validate_trace(&r.out_dir().join("trace.dtrace"));
}
