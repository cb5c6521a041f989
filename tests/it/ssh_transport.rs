//! The SSH transports (library level) against real OpenSSH servers on
//! loopback (the harness is tests/it/sshd.rs): shell I/O, exit statuses,
//! signals, put/get, shared connections, host keys, authentication,
//! timeouts and clean-up of remote processes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::sshd::{self, Client, Sshd};
use dtest_exec::session::shell::{Piece, ShellSession};
use dtest_exec::session::{HostUrl, OpenSpec, Signal, Transport};
use dtest_ssh::{OpenSshTransport, SshTransport};
use dtest_trace::ExitStatus;

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
    }
}

fn run(s: &mut ShellSession, cmd: &str) -> (String, Option<ExitStatus>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    s.run(cmd).unwrap();
    let mut out = Vec::new();
    let mut exit = None;
    while s.running() && Instant::now() < deadline {
        s.poll(deadline, &mut |p| match p {
            Piece::Output(_, d) => out.extend_from_slice(d),
            Piece::Exit(st) => exit = Some(st),
            Piece::Closed(_) => {}
        })
        .unwrap();
    }
    (String::from_utf8_lossy(&out).replace('\r', ""), exit)
}

fn start(t: &dyn Transport, sp: &OpenSpec) -> ShellSession {
    let ch = t
        .open(sp)
        .unwrap_or_else(|e| panic!("open {}: {e}", sp.host));
    ShellSession::start(ch, Instant::now() + Duration::from_secs(10))
        .unwrap()
        .0
}

fn open_err(t: &dyn Transport, sp: &OpenSpec) -> String {
    match t.open(sp) {
        Ok(_) => panic!("{} opened", sp.host),
        Err(e) => e.to_string(),
    }
}

fn exercise(t: &dyn Transport, sp: &OpenSpec, marker: &str) {
    let mut s = start(t, sp);
    let (out, st) = run(&mut s, "echo hello; false");
    assert_eq!(out, "hello\n");
    assert_eq!(st, Some(ExitStatus::Code(1)));
    let (out, _) = run(&mut s, "cd /tmp && export X=1; echo \"$X\" `pwd` $LANG");
    assert_eq!(out, "1 /tmp C\n");
    // put/get keep the mode; size and sha256 are reported.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.sh");
    std::fs::write(&src, b"#!/bin/sh\necho script ran\n").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&src).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&src, std::os::unix::fs::PermissionsExt::from_mode(0o750)).unwrap();
    let remote = dir.path().join("remote/dst.sh");
    let info = s.channel().put(&src, remote.to_str().unwrap()).unwrap();
    assert_eq!(info.size, 26);
    let (out, _) = run(
        &mut s,
        &format!("{} && stat -c %a {}", remote.display(), remote.display()),
    );
    assert_eq!(out, "script ran\n750\n");
    let back = dir.path().join("back.sh");
    let info2 = s.channel().get(remote.to_str().unwrap(), &back).unwrap();
    assert_eq!(info2.sha256, info.sha256);
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&src).unwrap());
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&back).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o750);
    // A command ignoring INT is stopped by TERM.
    s.run(&format!("trap '' INT; sleep 3{marker}")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(!sshd::pgrep(&format!("sleep 3{marker}")).is_empty());
    s.signal(Signal::Int).unwrap();
    s.channel().signal(Signal::Int).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(s.running(), "INT was ignored");
    s.signal(Signal::Term).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut exit = None;
    while s.running() && Instant::now() < deadline {
        s.poll(deadline, &mut |p| {
            if let Piece::Exit(st) = p {
                exit = Some(st)
            }
        })
        .unwrap();
    }
    assert_eq!(exit, Some(ExitStatus::Signal("TERM".into())));
    // Background processes, even ignoring HUP and TERM, are gone after close.
    let _ = run(
        &mut s,
        &format!("(trap '' HUP TERM; sleep 4{marker}) & sleep 5{marker} &"),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sshd::pgrep(marker).len(), 2, "{:?}", sshd::pgrep(marker));
    s.close(Duration::from_millis(300)).unwrap();
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
    for s in &mut v {
        assert_eq!(run(s, "echo $((6*7))").0, "42\n");
    }
    assert_eq!(
        t.connections_opened(),
        2,
        "one for the first tester, one shared by three"
    );
    for mut s in v {
        s.close(Duration::from_millis(200)).unwrap();
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
    let mut s = start(&t, &spec(&a.url(), &c, &[("host_key", "accept-new")]));
    assert_eq!(run(&mut s, "echo ok").0, "ok\n");
    s.close(Duration::from_millis(100)).unwrap();
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
