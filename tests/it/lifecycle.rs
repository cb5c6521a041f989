//! End-to-end tests of issue 11 (process lifecycle and secrets): nothing
//! survives, nothing hangs, a secret is never executed. Each test names
//! the item of the issue it pins. Processes are found by a marker unique
//! to the test (an odd `sleep` duration), never by name.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::{show, spawn_exec, wait_deadline};

/// A `sleep` duration no other process uses: the test's marker.
fn marker(base: u32) -> String {
    format!(
        "{}.{}",
        base,
        (std::process::id() % 1000) * 1000 + Instant::now().elapsed().subsec_nanos() % 1000
    )
}

/// The processes whose command line contains `sleep MARKER`.
fn survivors(mark: &str) -> String {
    let o = Command::new("pgrep")
        .args(["-a", "-f", &format!("sleep {mark}")])
        .output()
        .expect("pgrep (package procps)");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Waits up to `secs` for every process with `mark` to be gone.
fn gone_within(mark: &str, secs: u64) -> Result<(), String> {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = survivors(mark);
        if s.is_empty() {
            return Ok(());
        }
        if Instant::now() >= until {
            let _ = Command::new("pkill")
                .args(["-KILL", "-f", &format!("sleep {mark}")])
                .status();
            return Err(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn exec(toml: &str, secs: u64) -> (tempfile::TempDir, Output, Duration) {
    let t0 = Instant::now();
    let (dir, child) = spawn_exec(toml, &[], &[]);
    let out = wait_deadline(child, secs, "dtest exec");
    (dir, out, t0.elapsed())
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Item 1: a `local` step that starts a daemon (`setsid sleep &`) ends at
/// once instead of hanging on the pipe the daemon keeps open, and the
/// daemon is stopped and reported at the end of its tester (item 6).
#[test]
fn local_step_with_a_daemon_does_not_hang_and_the_daemon_is_stopped() {
    let m = marker(700);
    let t = format!(
        r#"
name = "local-daemon"
timeout = "60s"
[[tester]]
name = "t"
steps = [
  {{ local = "setsid sleep {m} &", timeout = "3s", name = "start a daemon" }},
  {{ ok = "after the daemon" }},
]
"#
    );
    let (dir, o, took) = exec(&t, 60);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let out = stdout(&o);
    assert!(
        out.contains("# t: stopped 1 process that left its session: pid ")
            && out.contains(" sleep"),
        "{out}"
    );
    let err = std::fs::read_to_string(dir.path().join("run/t.err")).unwrap();
    assert!(
        err.contains("stopped 1 process that left its session"),
        "{err}"
    );
    gone_within(&m, 5).unwrap_or_else(|s| panic!("survivors: {s}"));
}

/// Item 6: daemons of a session (`setsid`, a double fork) are found by
/// their environment mark and stopped at the end of their tester, which
/// says so in TAP, its `.err` log and the trace's close event.
#[test]
fn daemons_of_a_session_are_stopped_and_reported() {
    let m = marker(701);
    let t = format!(
        r#"
name = "daemons"
timeout = "60s"
[[tester]]
name = "t"
steps = [
  {{ run = "setsid sleep {m} & setsid sh -c 'sleep {m} & exit 0'; echo up" }},
  {{ expect = "up" }},
  {{ wait = "10s" }},
]
"#
    );
    let (dir, o, _) = exec(&t, 60);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = stdout(&o);
    assert!(
        out.contains("# t: stopped 2 processes that left their session: pid "),
        "{out}"
    );
    gone_within(&m, 5).unwrap_or_else(|s| panic!("survivors: {s}"));
    let show = Command::new(crate::common::dtest_bin())
        .args(["trace", "show"])
        .arg(dir.path().join("run/trace.dtrace"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains(" close ") && l.contains("stopped 2 processes")),
        "{text}"
    );
}

/// Item 2: a big `send` on pipes to a command that does not read ends at
/// its step's deadline instead of blocking forever.
#[test]
fn send_to_a_command_that_does_not_read_ends_at_its_deadline() {
    let m = marker(702);
    let big = "x".repeat(200 << 10);
    let t = format!(
        r#"
name = "send-block"
timeout = "60s"
[[tester]]
name = "t"
pty = false
steps = [
  {{ run = "sleep {m}" }},
  {{ send = "{big}", timeout = "2s", on_fail = "continue" }},
  {{ terminate = "KILL" }},
]
"#
    );
    let (_dir, o, took) = exec(&t, 60);
    // Without the 200 KiB of `x`: the report stays readable.
    let out = stdout(&o).replace(&big, "<200 KiB>");
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let send = out.lines().find(|l| l.contains("send")).unwrap();
    assert!(send.starts_with("not ok"), "{out}");
    assert!(out.contains("does not read its input"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("ok") && l.contains("terminate")),
        "{out}"
    );
    gone_within(&m, 5).unwrap_or_else(|s| panic!("survivors: {s}"));
}

/// Item 3: `get` of a FIFO or of a device is refused at once (a FIFO used
/// to block forever, `/dev/urandom` filled the disk).
#[test]
fn get_refuses_what_is_not_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let t = format!(
        r#"
name = "get-special"
timeout = "60s"
[[tester]]
name = "t"
steps = [
  {{ get = "{}", to = "f", on_fail = "continue" }},
  {{ get = "/dev/urandom", to = "u", timeout = "200ms", on_fail = "continue" }},
]
"#,
        fifo.display()
    );
    let (run, o, took) = exec(&t, 60);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let out = stdout(&o);
    assert_eq!(out.matches("not a regular file").count(), 2, "{}", show(&o));
    let u = run.path().join("run/u");
    assert!(
        std::fs::metadata(&u).map(|m| m.len()).unwrap_or(0) == 0,
        "nothing copied from /dev/urandom"
    );
}

/// Item 5: `kill -9` of dtest leaves nothing behind: a HUP-ignoring
/// command, a background job, a daemon and pipe-mode commands are all
/// stopped by the run's watchdog within 2 s.
#[test]
fn kill_9_of_dtest_leaves_no_process() {
    let m = marker(703);
    let t = format!(
        r#"
name = "kill9"
timeout = "120s"
[[tester]]
name = "a"
steps = [
  {{ run = "sh -c 'trap \"\" HUP; exec sleep {m}' & sleep {m}" }},
  {{ sleep = "100s" }},
]
[[tester]]
name = "p"
pty = false
steps = [
  {{ run = "sleep {m} & setsid sleep {m} & sleep {m}" }},
  {{ sleep = "100s" }},
]
"#
    );
    let (_dir, mut child) = spawn_exec(&t, &[], &[]);
    let until = Instant::now() + Duration::from_secs(30);
    while survivors(&m).lines().count() < 5 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(survivors(&m).lines().count(), 5, "{}", survivors(&m));
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    gone_within(&m, 2).unwrap_or_else(|s| panic!("survivors 2 s after kill -9: {s}"));
}

/// Item 8: a secret sent while no command reads it is refused, so the
/// shell never executes it and it reaches neither a log nor the trace.
#[test]
fn a_secret_sent_to_an_idle_shell_is_never_executed() {
    for pty in [true, false] {
        let t = format!(
            r#"
name = "secret"
timeout = "60s"
[[tester]]
name = "t"
pty = {pty}
steps = [
  {{ send = "MY-SECRET-PW; touch EXECUTED\n", secret = true, on_fail = "continue" }},
  {{ run = "ls" }},
  {{ wait = "10s", status = 0 }},
]
"#
        );
        let (dir, o, _) = exec(&t, 60);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(1), "{}", show(&o));
        assert!(out.contains("no command is running"), "{out}");
        let run = dir.path().join("run");
        assert!(
            !run.join("t/EXECUTED").exists(),
            "pty {pty}: the secret ran"
        );
        for f in ["t.out", "t.err", "t.in", "trace.dtrace"] {
            let b = std::fs::read(run.join(f)).unwrap();
            assert!(
                !String::from_utf8_lossy(&b).contains("MY-SECRET-PW"),
                "pty {pty}: the secret is in {f}"
            );
        }
    }
}
