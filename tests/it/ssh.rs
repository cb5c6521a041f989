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
    let pw = test_password();
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

// ---------------------------------------------------------------------
// Issue 11: pooling and security settings (item 9), processes that leave
// their session (item 6) and `kill -9` of dtest (item 5) on SSH hosts.
// ---------------------------------------------------------------------

/// Whether `tester` has a `not ok` point and its log says `needle`.
fn failed_with(r: &Run, tester: &str, needle: &str) -> bool {
    let point = r
        .stdout()
        .lines()
        .any(|l| l.starts_with("not ok") && l.contains(&format!(" - {tester}:")));
    point && tester_output(r, tester).contains(needle)
}

/// What `tester`'s session printed (its `.out` and `.err` logs).
fn tester_output(r: &Run, tester: &str) -> String {
    let mut s = String::new();
    for ext in ["out", "err"] {
        s.push_str(
            &std::fs::read_to_string(r.out_dir().join(format!("{tester}.{ext}")))
                .unwrap_or_default(),
        );
    }
    s
}

/// Item 9: a tester shares a pooled `ssh://` connection only with testers
/// whose security settings are the same. 20 pairs on one sshd, in one run:
/// a tester that trusts the host, and a strict one whose known_hosts file
/// is empty. Every strict one fails with the host key error and never runs
/// a command; every trusting one runs. Twice, so 40 strict testers in all.
#[test]
fn pooled_connections_are_never_lent_across_host_key_settings() {
    let c = Client::new();
    let a = Sshd::start(16, &c);
    c.trust(&a);
    c.write_config(&[]);
    let empty = c.home.path().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let mut toml = String::from("name = \"pool\"\ntimeout = \"120s\"\n");
    for i in 0..20 {
        let strict = format!(
            "host_key = \"strict\"\nknown_hosts = \"{}\"\n",
            empty.display()
        );
        for (who, keys) in [("good", String::new()), ("strict", strict)] {
            toml.push_str(&format!(
                "[[tester]]\nname = \"{who}{i}\"\nhost = \"{}\"\n{keys}steps = [ \
                 {{ run = \"echo {who}{i}-ran-$((40+2))\" }}, {{ expect = \"{who}{i}-ran-42\" }} ]\n",
                a.url()
            ));
        }
    }
    for round in 0..2 {
        let r = exec(&c, &toml, &[], 150);
        assert_eq!(r.out.status.code(), Some(1), "round {round}\n{}", r.all());
        for i in 0..20 {
            let good = format!("good{i}");
            let strict = format!("strict{i}");
            assert!(
                !r.stdout()
                    .lines()
                    .any(|l| l.starts_with("not ok") && l.contains(&format!("{good}:"))),
                "round {round}: {good} failed\n{}\n{}",
                r.all(),
                tester_output(&r, &good)
            );
            assert!(
                tester_output(&r, &good).contains(&format!("{good}-ran-42")),
                "round {round}: {good} did not run\n{}",
                r.all()
            );
            assert!(
                failed_with(&r, &strict, "unknown host key"),
                "round {round}: {strict} did not fail with the host key error\n{}\n{}",
                r.all(),
                tester_output(&r, &strict)
            );
            assert!(
                !tester_output(&r, &strict).contains(&format!("{strict}-ran-42")),
                "round {round}: {strict} ran a command over another tester's connection\n{}",
                r.all()
            );
        }
        validate_trace(&r.out_dir().join("trace.dtrace"));
    }
}

/// The password of the test user (the same in every test of this process:
/// they may run in parallel and set it).
fn test_password() -> String {
    format!("Pw-{}-secret", std::process::id())
}

/// Item 9, credentials: testers with the right password, a wrong one, and
/// a `password_env` that is not set, on one password-only sshd. Only the
/// first ones connect; the others fail authentication every time.
#[test]
fn pooled_connections_are_never_lent_across_passwords() {
    let c = Client::new();
    let pw = test_password();
    let user = password_user(&pw)
        .expect("cannot create a local user with a password (useradd/chpasswd, as root)");
    let a = Sshd::start_with(
        17,
        &c,
        &SshdOptions {
            password: true,
            extra: String::new(),
        },
    );
    c.trust(&a);
    c.write_config(&[]);
    let url = format!("ssh://{user}@{}:{}", a.addr, a.port);
    let mut toml = String::from("name = \"pool-pw\"\ntimeout = \"120s\"\n");
    for i in 0..6 {
        for (who, var) in [
            ("right", "DTEST_TEST_PW"),
            ("wrong", "DTEST_TEST_PW_WRONG"),
            ("unset", "DTEST_TEST_PW_UNSET_7519"),
        ] {
            toml.push_str(&format!(
                "[[tester]]\nname = \"{who}{i}\"\nhost = \"{url}\"\npassword_env = \"{var}\"\nsteps = [ \
                 {{ run = \"echo {who}{i}-ran-$((40+2))\" }}, {{ expect = \"{who}{i}-ran-42\" }} ]\n"
            ));
        }
    }
    let (d, ch) = spawn(
        &c,
        &toml,
        &[],
        &[
            ("DTEST_TEST_PW", &pw),
            ("DTEST_TEST_PW_WRONG", "wrong-Pw-7519"),
        ],
    );
    let r = finish(d, ch, 150);
    assert_eq!(r.out.status.code(), Some(1), "{}", r.all());
    for i in 0..6 {
        assert!(
            tester_output(&r, &format!("right{i}")).contains(&format!("right{i}-ran-42")),
            "right{i} did not run\n{}",
            r.all()
        );
        for (who, needle) in [("wrong", "authentication of"), ("unset", "not set")] {
            let t = format!("{who}{i}");
            assert!(
                failed_with(&r, &t, needle),
                "{t} did not fail with {needle:?}\n{}\n{}",
                r.all(),
                tester_output(&r, &t)
            );
            assert!(
                !tester_output(&r, &t).contains(&format!("{t}-ran-42")),
                "{t} ran a command over another tester's connection\n{}",
                r.all()
            );
        }
    }
    assert!(!r.all().contains("wrong-Pw-7519") && !r.all().contains(&pw));
}

/// The pids of processes whose command line matches the regex `pat`.
fn running(pat: &str) -> Vec<i32> {
    sshd::pgrep(pat)
}

/// Waits until every pattern matches a running process (20 s at most).
fn wait_all_started(pats: &[&str]) {
    for p in pats {
        wait_started(p);
    }
}

/// How long until no process matches any of `pats` (`None`: some still
/// run after `within`).
fn time_until_gone(pats: &[&str], within: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    loop {
        if pats.iter().all(|p| running(p).is_empty()) {
            return Some(t0.elapsed());
        }
        if t0.elapsed() >= within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn left_over(pats: &[&str]) -> Vec<(String, Vec<i32>)> {
    pats.iter()
        .map(|p| (p.to_string(), running(p)))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

fn kill_pids(pids: &[i32]) {
    for &p in pids {
        // SAFETY: kill has no memory effects.
        unsafe {
            libc::kill(p, libc::SIGKILL);
        }
    }
}

/// Kills the controller's own watchdog of a dtest run (a child of dtest
/// whose arguments hold `dtest-watchdog`), if there is one. The remote host
/// of these tests is this machine, where the controller's watchdog would
/// find and stop the remote processes too: without it, only the SSH
/// transports' remote watchdogs can clean up after a `kill -9`.
fn kill_controller_watchdog(dtest_pid: i32) -> usize {
    let mut n = 0;
    for p in sshd::descendants(dtest_pid) {
        let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        if cmd.split(|&b| b == 0).any(|a| a == b"dtest-watchdog") {
            kill_pids(&[p]);
            n += 1;
        }
    }
    n
}

/// The steps of a tester running a foreground process that ignores HUP and
/// TERM, after a background job (markers: `sleep {bg}` and `sleep {fg}`).
fn survivors_steps(bg: u32, fg: u32) -> String {
    format!(
        "steps = [\n\
           {{ run = \"sleep {bg} &\" }},\n\
           {{ run = \"sh -c 'trap \\\"\\\" HUP TERM; exec sleep {fg}'\" }},\n\
           {{ expect = \"never printed\", timeout = \"100s\" }},\n]\n"
    )
}

/// Item 5 on `ssh://`: `kill -9` of dtest while its testers run a process
/// ignoring HUP and TERM, a background job (on a pty and on pipes) and a
/// pipes-mode command; the controller's own watchdog is killed too, so only the
/// remote watchdogs clean up. Nothing may remain 5 s later (the remote
/// watchdog polls every 0.5 s; about 1 s is typical).
#[test]
fn kill_9_of_dtest_leaves_nothing_on_ssh_hosts_native() {
    let c = Client::new();
    let a = Sshd::start(18, &c);
    c.trust(&a);
    c.write_config(&[]);
    let toml = format!(
        "name = \"kill9\"\ntimeout = \"120s\"\n\
         [[tester]]\nname = \"t1\"\nhost = \"{url}\"\n{s1}\
         [[tester]]\nname = \"t2\"\nhost = \"{url}\"\npty = false\n{s2}",
        url = a.url(),
        s1 = survivors_steps(7521, 7522),
        s2 = survivors_steps(7523, 7524),
    );
    let pats = [
        "^sleep 7521$",
        "^sleep 7522$",
        "^sleep 7523$",
        "^sleep 7524$",
    ];
    let (_d, mut ch) = spawn(&c, &toml, &[], &[]);
    wait_all_started(&pats);
    let n = kill_controller_watchdog(ch.id() as i32);
    eprintln!("killed {n} controller-side watchdog(s) first");
    ch.kill().unwrap();
    let gone = time_until_gone(&pats, Duration::from_secs(5));
    let _ = ch.wait();
    let left = left_over(&pats);
    for (_, p) in &left {
        kill_pids(p);
    }
    let gone = gone.unwrap_or_else(|| panic!("left behind 5 s after kill -9: {left:?}"));
    eprintln!("ssh://: every remote process gone {gone:?} after kill -9 of dtest");
}

/// Item 5 on `openssh://`: the same with the system ssh client (a pty and
/// a pipes tester). The local ssh clients carry the run's id, so the
/// controller's watchdog ends them (a pipes-mode client would otherwise
/// keep its connection open), and the remote watchdogs end the rest.
#[test]
fn kill_9_of_dtest_leaves_nothing_on_ssh_hosts_openssh() {
    let c = Client::new();
    let a = Sshd::start(19, &c);
    c.trust(&a);
    c.write_config(&[("hosta", &a)]);
    let toml = format!(
        "name = \"kill9\"\ntimeout = \"120s\"\n\
         [[tester]]\nname = \"t1\"\nhost = \"openssh://hosta\"\n{s1}\
         [[tester]]\nname = \"t2\"\nhost = \"openssh://hosta\"\npty = false\n{s2}",
        s1 = survivors_steps(7531, 7532),
        s2 = survivors_steps(7533, 7534),
    );
    let pats = [
        "^sleep 7531$",
        "^sleep 7532$",
        "^sleep 7533$",
        "^sleep 7534$",
    ];
    let (_d, mut ch) = spawn(&c, &toml, &[], &[]);
    wait_all_started(&pats);
    ch.kill().unwrap();
    let gone = time_until_gone(&pats, Duration::from_secs(5));
    let _ = ch.wait();
    let left = left_over(&pats);
    for (_, p) in &left {
        kill_pids(p);
    }
    let gone = gone.unwrap_or_else(|| panic!("left behind 5 s after kill -9: {left:?}"));
    eprintln!("openssh://: every remote process gone {gone:?} after kill -9 of dtest");
}

/// Item 5, the remote watchdog alone: the connections of a running dtest
/// are cut while the host's sshd lets nobody log in, so dtest can neither
/// notice in time (`ssh://`: keepalive 30 s) nor log in again to clean up
/// (`openssh://`, whose client ends at once). The remote watchdogs end
/// every process of the sessions within 5 s (about 0.5 s), for both
/// transports.
#[test]
fn remote_watchdog_cleans_up_when_the_connection_drops() {
    let c = Client::new();
    let a = Sshd::start(20, &c);
    c.trust(&a);
    c.write_config(&[("hosta", &a)]);
    let toml = format!(
        "name = \"cut\"\ntimeout = \"120s\"\n\
         [[tester]]\nname = \"n1\"\nhost = \"{url}\"\nkeepalive = \"30s\"\n{s1}\
         [[tester]]\nname = \"n2\"\nhost = \"{url}\"\nkeepalive = \"30s\"\npty = false\n{s2}\
         [[tester]]\nname = \"o1\"\nhost = \"openssh://hosta\"\nkeepalive = \"30s\"\n{s3}\
         [[tester]]\nname = \"o2\"\nhost = \"openssh://hosta\"\nkeepalive = \"30s\"\npty = false\n{s4}",
        url = a.url(),
        s1 = survivors_steps(7541, 7542),
        s2 = survivors_steps(7543, 7544),
        s3 = survivors_steps(7545, 7546),
        s4 = survivors_steps(7547, 7548),
    );
    let pats: Vec<String> = (7541..=7548).map(|n| format!("^sleep {n}$")).collect();
    let pats: Vec<&str> = pats.iter().map(|s| s.as_str()).collect();
    let (d, ch) = spawn(&c, &toml, &[], &[]);
    wait_all_started(&pats);
    a.refuse_logins();
    a.cut_connections();
    let gone = time_until_gone(&pats, Duration::from_secs(5));
    let left = left_over(&pats);
    a.allow_logins(&c);
    // SAFETY: kill has no memory effects.
    unsafe {
        libc::kill(ch.id() as i32, libc::SIGTERM);
    }
    let r = finish(d, ch, 90);
    for (_, p) in &left {
        kill_pids(p);
    }
    let gone = gone.unwrap_or_else(|| {
        panic!(
            "left behind 5 s after the connections dropped: {left:?}\n{}",
            r.all()
        )
    });
    eprintln!("every remote process gone {gone:?} after the connections dropped");
}

/// Item 6: processes that leave their session (`setsid`, a double fork, a
/// daemon closing its descriptors) on an SSH host are stopped at the end
/// of their tester, by the SSH transport itself (the controller's own
/// sweep, which would find them too since the host is this machine, has
/// nothing left to stop), on a pty and on pipes, for both transports.
#[test]
fn processes_that_leave_their_session_are_stopped_at_the_end() {
    let c = Client::new();
    let a = Sshd::start(21, &c);
    c.trust(&a);
    c.write_config(&[("hosta", &a)]);
    for (n, host) in [(0u32, a.url()), (10, "openssh://hosta".to_string())] {
        let steps = |base: u32| {
            format!(
                "steps = [\n\
                   {{ run = \"setsid sleep {x} &\" }},\n\
                   {{ run = \"sh -c '(setsid sleep {y} &)'\" }},\n\
                   {{ run = \"setsid sh -c 'exec sleep {z}' </dev/null >/dev/null 2>&1 &\" }},\n\
                   {{ run = \"echo started-$((40+2))\" }}, {{ expect = \"started-42\" }},\n]\n",
                x = base,
                y = base + 1,
                z = base + 2
            )
        };
        let toml = format!(
            "name = \"daemons\"\ntimeout = \"90s\"\n\
             [[tester]]\nname = \"t1\"\nhost = \"{host}\"\n{s1}\
             [[tester]]\nname = \"t2\"\nhost = \"{host}\"\npty = false\n{s2}",
            s1 = steps(7551 + n),
            s2 = steps(7554 + n),
        );
        let pats: Vec<String> = (7551 + n..7557 + n)
            .map(|k| format!("^sleep {k}$"))
            .collect();
        let pats: Vec<&str> = pats.iter().map(|s| s.as_str()).collect();
        let r = exec(&c, &toml, &[], 90);
        let left = left_over(&pats);
        for (_, p) in &left {
            kill_pids(p);
        }
        assert_eq!(
            r.out.status.code(),
            Some(0),
            "{host}: {}\n{}",
            r.all(),
            r.logs()
        );
        assert!(
            left.is_empty(),
            "{host}: left behind: {left:?}\n{}",
            r.all()
        );
        // The controller's sweep after each tester (`stopped N processes
        // that left their session: ...`, without a host) found nothing: the
        // SSH transport had stopped them on the host.
        let text = format!("{}{}", r.all(), r.logs());
        assert!(
            !text.lines().any(
                |l| l.contains("left its session: pid") && !l.contains("(on ")
                    || l.contains("left their session: pid") && !l.contains("(on ")
            ),
            "{host}: the SSH transport did not stop them, the controller did:\n{text}"
        );
        // And the transport's report reached TAP (a comment per tester).
        for t in ["t1", "t2"] {
            assert!(
                r.stdout()
                    .lines()
                    .any(|l| l.starts_with(&format!("# {t}: stopped "))
                        && l.contains("that left ")
                        && l.contains("(on ")),
                "{host}: no report for {t}:\n{}",
                r.stdout()
            );
        }
        validate_trace(&r.out_dir().join("trace.dtrace"));
    }
}

/// `terminate = "INT"` right after `run` on a remote pty with bash, three
/// testers at once: the Ctrl-C must reach the command, not bash's child
/// before its `exec` (which still has bash's own SIGINT handler: the
/// Ctrl-C would be lost and only TERM would end the command).
#[test]
fn remote_terminate_int_right_after_run() {
    let c = Client::new();
    let a = Sshd::start(25, &c);
    c.trust(&a);
    c.write_config(&[("hosta", &a)]);
    for host in [a.url(), "openssh://hosta".to_string()] {
        let tester = |n: u32| {
            format!(
                "[[tester]]\nname = \"t{n}\"\nhost = \"{host}\"\nshell = \"/bin/bash\"\nsteps = [\n\
                   {{ run = \"sleep 30\" }},\n\
                   {{ terminate = \"INT\" }},\n\
                   {{ wait = \"10s\", status = 130 }},\n\
                   {{ run = \"echo still-alive\" }},\n\
                   {{ expect = \"still-alive\" }},\n]\n"
            )
        };
        let toml = format!(
            "name = \"remote-int\"\ntimeout = \"60s\"\n{}{}{}",
            tester(1),
            tester(2),
            tester(3)
        );
        let r = exec(&c, &toml, &[], 90);
        assert_eq!(r.out.status.code(), Some(0), "{host}: {}", r.all());
    }
}
