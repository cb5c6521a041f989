//! The SSH transports (library level) against real OpenSSH servers on
//! loopback (the harness is tests/it/sshd.rs): shell I/O, exit statuses,
//! signals, put/get, shared connections, host keys, authentication,
//! timeouts and clean-up of remote processes; stderr and floods captured
//! while the tester does nothing; a frozen server detected in a bounded
//! time; Ctrl-C while connecting.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::sshd::{self, Client, Sshd};
use dtest_exec::matcher::Pattern;
use dtest_exec::session::capture::CollectSink;
use dtest_exec::session::shell::{ExpectEnd, ShellSession};
use dtest_exec::session::{HostUrl, OpenSpec, SessionError, Signal, StopProbe, Transport, Until};
use dtest_ssh::{OpenSshTransport, SshTransport};
use dtest_trace::{ExitStatus, Stream};

fn spec(url: &str, c: &Client, extra: &[(&str, &str)]) -> OpenSpec {
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
    for (k, v) in extra {
        options.insert(k.to_string(), v.to_string());
    }
    OpenSpec {
        tester: "t".into(),
        host: HostUrl::parse(url).unwrap(),
        shell: "/bin/sh".into(),
        pty: true,
        cwd: None,
        create_cwd: true,
        env: vec![("LANG".into(), "C".into())],
        connect_timeout: Duration::from_secs(5),
        options,
        stop: StopProbe::never(),
    }
}

fn until(secs: u64) -> Until {
    Until::after(Duration::from_secs(secs))
}

/// A session and the sink its output goes to.
struct Sess {
    s: ShellSession,
    sink: CollectSink,
}

impl Sess {
    /// Runs `cmd` to its end; returns its output (both streams) and status.
    fn run(&mut self, cmd: &str) -> (String, Option<ExitStatus>) {
        let before = self.sink.bytes().len();
        let u = until(20);
        self.s.run(cmd, &u).unwrap();
        let st = self.s.wait_end(&u).unwrap();
        let out = self.sink.bytes()[before..].to_vec();
        (String::from_utf8_lossy(&out).replace('\r', ""), st)
    }

    /// Everything that arrived on `stream` so far.
    fn stream(&self, stream: Stream) -> String {
        let o = self.sink.output.lock().unwrap();
        let b: Vec<u8> = o
            .iter()
            .filter(|(s, _)| *s == stream)
            .flat_map(|(_, b)| b.iter().copied())
            .collect();
        String::from_utf8_lossy(&b).into_owned()
    }
}

fn start(t: &dyn Transport, sp: &OpenSpec) -> Sess {
    let ch = t
        .open(sp)
        .unwrap_or_else(|e| panic!("open {}: {e}", sp.host));
    let sink = CollectSink::default();
    let s = ShellSession::start(ch, Box::new(sink.clone()), &until(10)).unwrap();
    Sess { s, sink }
}

fn open_err(t: &dyn Transport, sp: &OpenSpec) -> String {
    match t.open(sp) {
        Ok(_) => panic!("{} opened", sp.host),
        Err(e) => e.to_string(),
    }
}

fn exercise(t: &dyn Transport, sp: &OpenSpec, marker: &str) {
    let mut x = start(t, sp);
    let (out, st) = x.run("echo hello; false");
    assert_eq!(out, "hello\n");
    assert_eq!(st, Some(ExitStatus::Code(1)));
    let (out, _) = x.run("cd /tmp && export X=1; echo \"$X\" `pwd` $LANG");
    assert_eq!(out, "1 /tmp C\n");
    // put/get keep the mode; size and sha256 are reported.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.sh");
    std::fs::write(&src, b"#!/bin/sh\necho script ran\n").unwrap();
    std::fs::set_permissions(&src, std::os::unix::fs::PermissionsExt::from_mode(0o750)).unwrap();
    let remote = dir.path().join("remote/dst.sh");
    let info =
        x.s.channel()
            .put(&src, remote.to_str().unwrap(), &until(30))
            .unwrap();
    assert_eq!(info.size, 26);
    let (out, _) = x.run(&format!(
        "{} && stat -c %a {}",
        remote.display(),
        remote.display()
    ));
    assert_eq!(out, "script ran\n750\n");
    let back = dir.path().join("back.sh");
    let info2 =
        x.s.channel()
            .get(remote.to_str().unwrap(), &back, &until(30))
            .unwrap();
    assert_eq!(info2.sha256, info.sha256);
    assert_eq!(info2.size, 26);
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&src).unwrap());
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&back).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o750);
    // Only regular files are copied.
    let e =
        x.s.channel()
            .get("/tmp", &dir.path().join("tmp"), &until(30))
            .unwrap_err();
    assert!(
        matches!(e, SessionError::Transfer { .. }) && e.to_string().contains("regular file"),
        "{e}"
    );
    let e =
        x.s.channel()
            .get(
                &format!("/nonexistent-{marker}"),
                &dir.path().join("x"),
                &until(30),
            )
            .unwrap_err();
    assert!(matches!(e, SessionError::Transfer { .. }), "{e}");
    // A command ignoring INT is stopped by TERM; the transport's signal
    // says how many processes it reached.
    x.s.run(&format!("trap '' INT; sleep 3{marker}"), &until(10))
        .unwrap();
    assert!(x.s.wait_started(&until(10)).unwrap());
    let t0 = Instant::now();
    let n = loop {
        match x.s.channel().signal(Signal::Int).unwrap() {
            Some(0) if t0.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            n => break n,
        }
    };
    assert!(matches!(n, Some(k) if k >= 1), "{n:?}");
    assert!(!sshd::pgrep(&format!("sleep 3{marker}")).is_empty());
    x.s.signal(Signal::Int, &until(10)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(x.s.running(), "INT was ignored");
    let t = x.s.terminate(
        Signal::Term,
        Duration::from_secs(5),
        &until(20),
        &mut |_| {},
    );
    assert!(t.ended, "{t:?}");
    assert_eq!(t.sent, [Signal::Term]);
    assert_eq!(x.s.last_exit(), Some(ExitStatus::Signal("TERM".into())));
    // Background processes, even ignoring HUP and TERM, are gone after close.
    let _ = x.run(&format!(
        "(trap '' HUP TERM; sleep 4{marker}) & sleep 5{marker} &"
    ));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sshd::pgrep(marker).len(), 2, "{:?}", sshd::pgrep(marker));
    x.s.close(Duration::from_millis(300)).unwrap();
    assert_eq!(
        sshd::wait_gone(marker, Duration::from_secs(5)),
        Vec::<i32>::new()
    );
}

#[test]
fn native_transport_shares_one_connection() {
    let c = Client::new();
    let a = Sshd::start(2, &c);
    c.trust(&a);
    c.write_config(&[("hosta", &a)]);
    let t = SshTransport::new();
    exercise(&t, &spec(&a.url(), &c, &[]), "7301");
    // Three testers at once: one TCP connection; through the config alias.
    let sp = spec("ssh://hosta", &c, &[]);
    let mut v: Vec<_> = (0..3).map(|_| start(&t, &sp)).collect();
    for x in &mut v {
        assert_eq!(x.run("echo $((6*7))").0, "42\n");
    }
    assert_eq!(
        t.connections_opened(),
        2,
        "one for the first tester, one shared by three"
    );
    for mut x in v {
        x.s.close(Duration::from_millis(200)).unwrap();
    }
}

#[test]
fn openssh_transport() {
    let c = Client::new();
    let a = Sshd::start(3, &c);
    c.trust(&a);
    c.write_config(&[("hostb", &a)]);
    exercise(
        &OpenSshTransport::new(),
        &spec("openssh://hostb", &c, &[]),
        "7302",
    );
}

#[test]
fn host_keys_unknown_changed_accept_new() {
    let c = Client::new();
    let a = Sshd::start(4, &c);
    c.write_config(&[]);
    let t = SshTransport::new();
    let e = open_err(&t, &spec(&a.url(), &c, &[]));
    assert!(
        e.contains("unknown host key") && e.contains(&a.fingerprint()),
        "{e}"
    );
    assert!(e.contains("accept-new"), "{e}");
    let e = open_err(
        &OpenSshTransport::new(),
        &spec(&format!("openssh://{}:{}", a.addr, a.port), &c, &[]),
    );
    assert!(e.contains("Host key verification failed"), "{e}");
    // accept-new records the key, then it matches.
    let mut x = start(&t, &spec(&a.url(), &c, &[("host_key", "accept-new")]));
    assert_eq!(x.run("echo ok").0, "ok\n");
    x.s.close(Duration::from_millis(100)).unwrap();
    let kh = std::fs::read_to_string(c.ssh_path("known_hosts")).unwrap();
    assert!(kh.contains(&a.known_hosts_line()), "{kh}");
    // A different server on the same address and port: a changed key.
    let b = Sshd::start(5, &c);
    std::fs::write(
        c.ssh_path("known_hosts"),
        a.known_hosts_line().replace(
            &format!("[{}]:{}", a.addr, a.port),
            &format!("[{}]:{}", b.addr, b.port),
        ) + "\n",
    )
    .unwrap();
    let e = open_err(
        &SshTransport::new(),
        &spec(&b.url(), &c, &[("host_key", "accept-new")]),
    );
    assert!(
        e.contains("HOST KEY MISMATCH") && e.contains(&b.fingerprint()),
        "{e}"
    );
}

#[test]
fn auth_failure_and_timeouts() {
    let c = Client::new();
    let other = Client::new();
    let a = Sshd::start(6, &c);
    other.trust(&a);
    other.write_config(&[]);
    let e = open_err(&SshTransport::new(), &spec(&a.url(), &other, &[]));
    assert!(
        e.contains("authentication of") && e.contains("failed"),
        "{e}"
    );
    // Nothing listening.
    let e = open_err(
        &SshTransport::new(),
        &spec("ssh://127.0.0.7:1", &other, &[]),
    );
    assert!(e.contains("cannot connect to 127.0.0.7:1"), "{e}");
    // Something listening that never speaks: the connect timeout.
    let l = std::net::TcpListener::bind("127.0.0.7:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut sp = spec(&format!("ssh://127.0.0.7:{port}"), &other, &[]);
    sp.connect_timeout = Duration::from_secs(1);
    let t0 = Instant::now();
    let e = open_err(&SshTransport::new(), &sp);
    assert!(t0.elapsed() < Duration::from_secs(10), "{e}");
    assert!(e.contains("handshake"), "{e}");
}

/// Stderr a command writes just before it ends is captured before its end
/// is reported, over ssh:// on pipes (the two streams travel apart).
#[test]
fn native_pipes_stderr_before_the_end_is_captured() {
    let c = Client::new();
    let a = Sshd::start(21, &c);
    c.trust(&a);
    c.write_config(&[]);
    let mut sp = spec(&a.url(), &c, &[]);
    sp.pty = false;
    let mut x = start(&SshTransport::new(), &sp);
    for i in 0..20 {
        let (_, st) = x.run(&format!("echo out{i}; echo err{i} >&2"));
        assert_eq!(st, Some(ExitStatus::Code(0)));
        let err = x.stream(Stream::Stderr);
        assert!(err.contains(&format!("err{i}\n")), "run {i}: {err:?}");
        assert!(x.stream(Stream::Stdout).contains(&format!("out{i}\n")));
    }
    x.s.close(Duration::from_millis(200)).unwrap();
}

/// A chatty command (3 MB) runs to its end while its tester does nothing:
/// the capture thread reads the connection all the time.
#[test]
fn native_chatty_command_runs_while_the_tester_is_idle() {
    let c = Client::new();
    let a = Sshd::start(22, &c);
    c.trust(&a);
    c.write_config(&[]);
    let dir = tempfile::tempdir().unwrap();
    for pty in [false, true] {
        let mut sp = spec(&a.url(), &c, &[]);
        sp.pty = pty;
        let mut x = start(&SshTransport::new(), &sp);
        let mark = dir.path().join(format!("done-{pty}"));
        x.s.run(
            &format!(
                "yes chatty-7306 | head -c 3000000; touch {}",
                mark.display()
            ),
            &until(10),
        )
        .unwrap();
        // The tester does nothing: no wait, no expect.
        let t0 = Instant::now();
        while !mark.exists() && t0.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            mark.exists(),
            "pty {pty}: the command did not run to its end"
        );
        while x.s.running() && t0.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!x.s.running(), "pty {pty}: the end was not seen");
        let n = x.sink.bytes().len();
        assert!(n >= 3_000_000, "pty {pty}: {n} bytes captured");
        assert_eq!(
            x.sink.exits.lock().unwrap().last(),
            Some(&ExitStatus::Code(0))
        );
        x.s.close(Duration::from_millis(200)).unwrap();
    }
}

/// A command that never reads its input does not hold up the input of the
/// other sessions on the same connection (its write waits for its window;
/// the others' go on).
#[test]
fn native_stuck_input_does_not_hold_up_other_sessions() {
    let c = Client::new();
    let a = Sshd::start(24, &c);
    c.trust(&a);
    c.write_config(&[]);
    let t = SshTransport::new();
    let mut sp = spec(&a.url(), &c, &[]);
    sp.pty = false;
    let mut stuck = start(&t, &sp);
    let mut other = start(&t, &sp);
    assert_eq!(t.connections_opened(), 1);
    stuck.s.run("sleep 30 # mark-7308", &until(10)).unwrap();
    let big = vec![b'x'; 8 << 20];
    let e = stuck
        .s
        .send(&big, &Until::after(Duration::from_secs(2)))
        .unwrap_err();
    assert!(matches!(e, SessionError::TimedOut(_)), "{e}");
    let t0 = Instant::now();
    for i in 0..3 {
        assert_eq!(
            other.run(&format!("echo other{i}")).0,
            format!("other{i}\n")
        );
    }
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    stuck.s.close(Duration::from_millis(200)).unwrap();
    other.s.close(Duration::from_millis(200)).unwrap();
    assert_eq!(
        sshd::wait_gone("mark-7308", Duration::from_secs(5)),
        Vec::<i32>::new()
    );
}

/// Sends `sig` to the sshd listener and every sshd process under it (the
/// per-connection ones), not to the shells they run.
fn signal_sshd(a: &Sshd, sig: i32) -> Vec<i32> {
    let pid = a.pid().expect("sshd runs");
    let mut v = vec![pid];
    for p in sshd::descendants(pid) {
        let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        if comm.starts_with("sshd") {
            v.push(p);
        }
    }
    for &p in &v {
        // SAFETY: kill has no memory effects.
        unsafe {
            libc::kill(p, sig);
        }
    }
    v
}

/// A frozen server (sshd stopped with SIGSTOP: TCP stays up, nothing
/// answers) is detected within the documented bound, 3 x keepalive + 1 s,
/// and the session's close over the dead connection is bounded too.
#[test]
fn native_frozen_server_is_detected() {
    let c = Client::new();
    let a = Sshd::start(23, &c);
    c.trust(&a);
    c.write_config(&[]);
    let keepalive = 2;
    let bound = Duration::from_secs(3 * keepalive + 1);
    let sp = spec(&a.url(), &c, &[("keepalive", "2s")]);
    let t = SshTransport::new();
    let mut x = start(&t, &sp);
    assert_eq!(x.run("echo before").0, "before\n");
    // A live server left idle for longer than the bound is not lost: it
    // answers the keepalives.
    std::thread::sleep(bound + Duration::from_secs(1));
    assert_eq!(x.run("echo idle").0, "idle\n");
    let frozen = signal_sshd(&a, libc::SIGSTOP);
    assert!(
        frozen.len() >= 2,
        "no per-connection sshd found: {frozen:?}"
    );
    let t0 = Instant::now();
    let r = (|| {
        x.s.run("sleep 1; echo after-7307", &until(10))?;
        let pat = Pattern::new("after-7307", true).unwrap();
        Ok::<_, SessionError>(x.s.expect(&pat, &until(60)))
    })();
    let detected = t0.elapsed();
    let gone = x.s.gone();
    signal_sshd(&a, libc::SIGCONT);
    let r = r.unwrap();
    match &r.end {
        ExpectEnd::Closed(_, Some(lost)) => {
            assert!(lost.contains("no answer from"), "{lost}");
            assert!(lost.contains("lost"), "{lost}");
        }
        other => panic!("expected a lost connection, got {other:?}"),
    }
    assert!(
        detected <= bound + Duration::from_secs(3),
        "detected after {detected:?}, bound {bound:?}"
    );
    assert!(
        gone.as_ref().is_some_and(|g| g.contains("lost")),
        "{gone:?}"
    );
    assert!(x.s.wait_end(&until(5)).is_ok());
    // The close reconnects to clean up; it is bounded.
    let t1 = Instant::now();
    let _ = x.s.close(Duration::from_millis(200));
    eprintln!(
        "frozen server: lost after {detected:?} (bound {bound:?}), close took {:?}",
        t1.elapsed()
    );
    assert!(
        t1.elapsed() < Duration::from_secs(15),
        "close took {:?}",
        t1.elapsed()
    );
    // Closing a session whose server froze before the loss is detected:
    // bounded as well (grace + 12 s for the channel, + 2 s of drain).
    let mut y = start(&t, &sp);
    assert_eq!(y.run("echo again").0, "again\n");
    signal_sshd(&a, libc::SIGSTOP);
    let t2 = Instant::now();
    let _ = y.s.close(Duration::from_millis(200));
    let took = t2.elapsed();
    signal_sshd(&a, libc::SIGCONT);
    eprintln!("frozen server: close before the loss was detected took {took:?}");
    assert!(took < Duration::from_secs(20), "close took {took:?}");
}

/// A StopProbe that says stop `after` from now.
fn stop_after(after: Duration) -> StopProbe {
    let t0 = Instant::now();
    StopProbe::new(move || (t0.elapsed() >= after).then(|| "interrupted by SIGINT".to_string()))
}

/// Ctrl-C while connecting to a server that accepts TCP and never speaks:
/// `open` gives up within 100 ms of the stop, both transports.
#[test]
fn ctrl_c_while_connecting() {
    let c = Client::new();
    c.write_config(&[]);
    let l = std::net::TcpListener::bind("127.0.0.7:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // Accept, and keep every connection open without a word.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming() {
            held.push(s);
        }
    });
    let cases: [(&dyn Transport, String); 2] = [
        (&SshTransport::new(), format!("ssh://127.0.0.7:{port}")),
        (
            &OpenSshTransport::new(),
            format!("openssh://127.0.0.7:{port}"),
        ),
    ];
    for (t, url) in cases {
        let mut sp = spec(&url, &c, &[]);
        sp.connect_timeout = Duration::from_secs(30);
        sp.stop = stop_after(Duration::from_millis(300));
        let t0 = Instant::now();
        let r = t.open(&sp);
        let took = t0.elapsed();
        match r {
            Err(SessionError::Stopped(why)) => assert!(why.contains("SIGINT"), "{why}"),
            Err(e) => panic!("{url}: expected Stopped, got {e}"),
            Ok(_) => panic!("{url}: opened"),
        }
        eprintln!("{url}: stopped after {took:?}");
        assert!(
            took < Duration::from_millis(1500),
            "{url}: open took {took:?}"
        );
    }
}
