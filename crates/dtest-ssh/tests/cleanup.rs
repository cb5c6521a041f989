//! The remote clean-up of both transports against a real OpenSSH server on
//! loopback (the harness of the end-to-end tests, tests/it/sshd.rs):
//! processes of a tester that left their session are stopped at `close`
//! and named in `close_report`; the remote watchdog runs in a session of
//! its own (signals never count it) and is ended by `close`.

#[path = "../../../tests/it/sshd.rs"]
mod sshd;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dtest_exec::session::{Channel, HostUrl, OpenSpec, ReadEvent, Signal, StopProbe, Until};
use dtest_ssh::openssh::OpenSshChannel;
use dtest_ssh::{SshChannel, SshTransport};
use sshd::{Client, Sshd};

fn spec(url: &str, c: &Client, marks: Option<(&str, &str)>) -> OpenSpec {
    let mut options = BTreeMap::new();
    options.insert(
        "identity".to_string(),
        c.ssh_path("id_ed25519").display().to_string(),
    );
    options.insert(
        "known_hosts".to_string(),
        c.ssh_path("known_hosts").display().to_string(),
    );
    options.insert(
        "ssh_config".to_string(),
        c.ssh_path("config").display().to_string(),
    );
    let mut env = vec![("LANG".to_string(), "C".to_string())];
    if let Some((id, t)) = marks {
        env.push(("DTEST_RUN_ID".into(), id.into()));
        env.push(("DTEST_TESTER".into(), t.into()));
    }
    OpenSpec {
        tester: "t".into(),
        host: HostUrl::parse(url).unwrap(),
        shell: "/bin/sh".into(),
        pty: true,
        cwd: None,
        create_cwd: true,
        env,
        connect_timeout: Duration::from_secs(10),
        options,
        stop: StopProbe::never(),
    }
}

/// Reads a channel's output until its end, in a thread.
fn drain<C: Channel + ?Sized>(ch: &mut C) -> std::thread::JoinHandle<Vec<u8>> {
    let mut out = ch.take_output().unwrap();
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = vec![0u8; 65536];
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            match out.read(&mut buf, Instant::now() + Duration::from_millis(100)) {
                Ok(ReadEvent::Data { n, .. }) => all.extend_from_slice(&buf[..n]),
                Ok(ReadEvent::Timeout) if Instant::now() < until => {}
                _ => return all,
            }
        }
    })
}

fn wait_for(pat: &str) -> i32 {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(&p) = sshd::pgrep(pat).first() {
            return p;
        }
        assert!(Instant::now() < until, "{pat} never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The session id of `pid` (field 6 of /proc/PID/stat).
fn sid_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(3)?.parse().ok()
}

fn environ_has(pid: i32, entry: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .any(|e| e == entry.as_bytes())
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s[s.rfind(')').unwrap_or(0) + 1..]
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// The two channel types, as these tests see them.
trait Remote: Channel {
    /// The shell's and the watchdog's pids.
    fn pids(&self) -> (i32, i32);
    /// What `close` stopped beyond the session.
    fn report(&self) -> Vec<String>;
}

impl Remote for SshChannel {
    fn pids(&self) -> (i32, i32) {
        (self.remote_pid(), self.watchdog_pid())
    }
    fn report(&self) -> Vec<String> {
        self.close_report()
    }
}

impl Remote for OpenSshChannel {
    fn pids(&self) -> (i32, i32) {
        (self.remote_pid(), self.watchdog_pid())
    }
    fn report(&self) -> Vec<String> {
        self.close_report()
    }
}

/// What both transports must do.
fn daemons_are_stopped_and_reported<C: Remote>(ch: &mut C, base: u32, host: &str) {
    let (sid, wd) = ch.pids();
    assert!(sid > 1 && wd > 1, "shell {sid}, watchdog {wd}");
    // The watchdog: its own session, its own mark, none of the tester's.
    assert_eq!(sid_of(wd), Some(wd));
    assert!(environ_has(wd, &format!("DTEST_SSH_WATCHDOG={sid}")));
    assert!(!std::fs::read(format!("/proc/{wd}/environ"))
        .unwrap_or_default()
        .windows(12)
        .any(|w| w == b"DTEST_RUN_ID"));
    let out = drain(ch);
    let u = Until::after(Duration::from_secs(10));
    ch.write(
        format!(
            "setsid sleep {a} & sh -c '(setsid sleep {b} &)'; sleep {c} &\n",
            a = base,
            b = base + 1,
            c = base + 2
        )
        .as_bytes(),
        &u,
    )
    .unwrap();
    let a = wait_for(&format!("^sleep {base}$"));
    let b = wait_for(&format!("^sleep {}$", base + 1));
    let c = wait_for(&format!("^sleep {}$", base + 2));
    assert_ne!(sid_of(a), Some(sid));
    assert_eq!(sid_of(c), Some(sid));
    // Until the forks that lead to the daemons have left the session.
    let until = Instant::now() + Duration::from_secs(10);
    while sshd::pgrep(&format!("^sleep {}$", base + 1)).len() > 1 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    // A signal reaches the background job of the session only: not the
    // watchdog, not the daemons.
    assert_eq!(ch.signal(Signal::Usr1).unwrap(), Some(1), "{host}");
    assert!(alive(wd) && alive(a) && alive(b));
    ch.close(Duration::from_millis(300)).unwrap();
    let _ = out.join();
    for p in [a, b, c, wd] {
        assert!(!alive(p), "{host}: pid {p} survived the close");
    }
    let r = ch.report();
    assert_eq!(r.len(), 1, "{host}: {r:?}");
    let (lo, hi) = (a.min(b), a.max(b));
    assert_eq!(
        r[0],
        format!("stopped 2 processes that left their session: pid {lo} sleep, pid {hi} sleep (on {host})"),
    );
}

#[test]
fn native_close_stops_and_reports_processes_that_left_the_session() {
    let c = Client::new();
    let a = Sshd::start(40, &c);
    c.trust(&a);
    c.write_config(&[]);
    let t = SshTransport::new();
    let id = format!("cleanup-{}-native", std::process::id());
    let sp = spec(&a.url(), &c, Some((&id, "t1")));
    let mut ch = SshChannel::open(&t, &sp).unwrap_or_else(|e| panic!("open: {e}"));
    daemons_are_stopped_and_reported(&mut ch, 7811, &a.url());
}

#[test]
fn openssh_close_stops_and_reports_processes_that_left_the_session() {
    let c = Client::new();
    let a = Sshd::start(41, &c);
    c.trust(&a);
    c.write_config(&[("hosta", &a)]);
    let id = format!("cleanup-{}-openssh", std::process::id());
    let sp = spec("openssh://hosta", &c, Some((&id, "t1")));
    let mut ch = OpenSshChannel::open("ssh", &sp).unwrap_or_else(|e| panic!("open: {e}"));
    daemons_are_stopped_and_reported(&mut ch, 7821, "openssh://hosta");
}

/// Without the marks (a host program that does not set them), the session
/// and the watchdog are still ended; nothing is reported.
#[test]
fn without_marks_the_session_and_the_watchdog_are_still_ended() {
    let c = Client::new();
    let a = Sshd::start(42, &c);
    c.trust(&a);
    c.write_config(&[]);
    let t = SshTransport::new();
    let mut ch = SshChannel::open(&t, &spec(&a.url(), &c, None)).unwrap();
    let (sid, wd) = (ch.remote_pid(), ch.watchdog_pid());
    assert!(alive(sid) && alive(wd));
    let out = drain(&mut ch);
    ch.write(b"sleep 7831 &\n", &Until::after(Duration::from_secs(5)))
        .unwrap();
    let p = wait_for("^sleep 7831$");
    ch.close(Duration::from_millis(300)).unwrap();
    let _ = out.join();
    assert!(!alive(p) && !alive(wd) && !alive(sid));
    assert!(ch.close_report().is_empty(), "{:?}", ch.close_report());
}
