//! End-to-end tests of issue 11 (hostile).
//!
//! Items 10 to 13 (bad input that costs too much or lands in the wrong
//! place) and the `pause`/`resume` fault steps. Every test drives the real
//! binary. The ones that could eat the machine before the fix (an
//! expansion bomb, `/dev/zero` as a scenario) run dtest under a 2 GiB
//! address-space limit and a deadline, so a regression fails the test
//! instead of the machine.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{dtest, dtest_bin, run, show, spawn_exec, wait_deadline};
use crate::sshd::{Client, Sshd};

/// `dtest ARGS` under a 2 GiB address-space limit (`ulimit -v`), stdin
/// closed, output piped.
fn limited(args: &[&str]) -> Command {
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg("ulimit -v 2097152 && exec \"$@\"")
        .arg("sh")
        .arg(dtest_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs `cmd` with a deadline of `secs`.
fn run_deadline(mut cmd: Command, secs: u64, what: &str) -> Output {
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    wait_deadline(child, secs, what)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A marker unique to this test process and call.
fn marker(tag: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("dtest_h11_{tag}_{}_{n}", std::process::id())
}

/// The processes whose command line holds `m` (pgrep -f).
fn pgrep(m: &str) -> String {
    let o = run(Command::new("pgrep").arg("-a").arg("-f").arg(m));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The events of a trace as JSON objects (`dtest trace show --format jsonl`).
fn events(trace: &Path) -> Vec<serde_json::Value> {
    let o = run(dtest()
        .args(["trace", "show", "--format", "jsonl"])
        .arg(trace));
    assert!(o.status.success(), "{}", show(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a jsonl line"))
        .collect()
}

fn validate(trace: &Path) {
    let o = run(dtest().args(["trace", "validate"]).arg(trace));
    assert!(o.status.success(), "trace validate: {}", show(&o));
}

// ---------------------------------------------------------------- item 10

/// A scenario of a few hundred bytes whose `[vars]` double up to 64 GiB:
/// refused at load, with the position of the first value over 1 MiB,
/// exit 2, quickly and without memory to speak of.
#[test]
fn expansion_bomb_is_refused_before_anything_runs() {
    let mut toml =
        String::from("name = \"bomb\"\n[vars]\nv0 = \"0123456789abcdef0123456789abcdef\"\n");
    for i in 1..=7 {
        toml.push_str(&format!(
            "v{i} = \"{}\"\n",
            format!("${{v{}}}", i - 1).repeat(8)
        ));
    }
    // v0 is 32 bytes, v_k is 32 * 8^k: v5 is 1 MiB, v6 (line 9) 8 MiB.
    toml.push_str("[[tester]]\nname = \"t\"\nsteps = [{ run = \"echo ${v7}\" }]\n");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.toml");
    std::fs::write(&f, &toml).unwrap();
    let out = dir.path().join("run");
    let t0 = Instant::now();
    let o = run_deadline(
        limited(&["exec", f.to_str().unwrap(), "--out", out.to_str().unwrap()]),
        60,
        "dtest exec of an expansion bomb",
    );
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let e = stderr(&o);
    let want = format!(
        "{}:9:6: `v6` expands to 8 MiB, more than the 1 MiB",
        f.display()
    );
    assert!(e.contains(&want), "want {want:?}\n{}", show(&o));
    assert!(
        !out.join("trace.dtrace").exists(),
        "nothing ran: {}",
        show(&o)
    );
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
}

// ---------------------------------------------------------------- item 11

/// `/dev/zero` as a scenario or a spec, and files over 16 MiB: one error,
/// exit 2, at once (before: 12 GB in 30 s).
#[test]
fn reading_a_scenario_or_a_spec_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.dtrace");
    let o = run(dtest()
        .args([
            "trace",
            "synth",
            "--testers",
            "2",
            "--events",
            "50",
            "--seed",
            "1",
            "-o",
        ])
        .arg(&trace));
    assert!(o.status.success(), "{}", show(&o));
    let out = dir.path().join("run");
    let (t, o_) = (trace.to_str().unwrap(), out.to_str().unwrap());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["exec", "/dev/zero", "--out", o_],
            "/dev/zero:1:1: cannot read the scenario: it is a character device, not a regular file",
        ),
        (
            vec!["check", "/dev/zero", t],
            "/dev/zero: cannot read the spec: it is a character device, not a regular file",
        ),
        (
            vec!["exec", "/dev/null", "--out", o_],
            "/dev/null:1:1: cannot read the scenario: it is a character device",
        ),
    ];
    for (args, want) in &cases {
        let o = run_deadline(limited(args), 30, &format!("dtest {args:?}"));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", show(&o));
        assert!(
            stderr(&o).contains(want),
            "{args:?}: want {want:?}\n{}",
            show(&o)
        );
        assert_eq!(stderr(&o).lines().count(), 1, "one line: {}", show(&o));
    }
    // A regular file over 16 MiB (a comment, so that it would parse).
    let big = dir.path().join("big.toml");
    let mut text = String::from("name = \"x\"\n[[tester]]\nname = \"t\"\n#");
    text.push_str(&"x".repeat(17 << 20));
    text.push('\n');
    std::fs::write(&big, &text).unwrap();
    let big_spec = dir.path().join("big.spec");
    std::fs::write(&big_spec, format!("# {}\n", "x".repeat(17 << 20))).unwrap();
    let good = dir.path().join("s.toml");
    std::fs::write(
        &good,
        "name = \"x\"\n[[tester]]\nname = \"t\"\nsteps = [{ run = \"true\" }]\n",
    )
    .unwrap();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["exec", big.to_str().unwrap(), "--out", o_],
            format!("{}:1:1: the scenario is bigger than 16 MiB", big.display()),
        ),
        (
            vec!["check", big_spec.to_str().unwrap(), t],
            format!("{}: the spec is bigger than 16 MiB", big_spec.display()),
        ),
        (
            vec![
                "exec",
                good.to_str().unwrap(),
                "--out",
                o_,
                "--check",
                "/dev/zero",
            ],
            "/dev/zero: cannot read the spec: it is a character device".to_string(),
        ),
        (
            vec!["exec", dir.path().to_str().unwrap(), "--out", o_],
            "cannot read the scenario: it is a directory, not a regular file".to_string(),
        ),
    ];
    for (args, want) in &cases {
        let o = run_deadline(limited(args), 30, &format!("dtest {args:?}"));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", show(&o));
        assert!(
            stderr(&o).contains(want.as_str()),
            "{args:?}: want {want:?}\n{}",
            show(&o)
        );
    }
    assert!(!out.join("trace.dtrace").exists(), "nothing ran");
}

// ---------------------------------------------------------------- item 12

/// A tester named `..` would run in the parent of the run directory, one
/// named `trace.dtrace` would collide with the trace, a capture named
/// `run_dir` would replace the built-in: all refused at load, with
/// positions, before anything runs.
#[test]
fn names_that_escape_the_run_directory_are_refused() {
    let cases = [
        (
            "name = \"x\"\n[[tester]]\nname = \"..\"\nsteps = [{ run = \"touch escaped\" }]\n",
            "s.toml:3:8: bad tester name `..`",
        ),
        (
            "name = \"x\"\n[[tester]]\nname = \"trace.dtrace\"\nsteps = [{ run = \"touch escaped\" }]\n",
            "s.toml:3:8: tester `trace.dtrace` collides with the run directory's `trace.dtrace`",
        ),
        (
            "name = \"x\"\n[[tester]]\nname = \"a\"\nsteps = [{ run = \"touch escaped\" }]\n[[tester]]\nname = \"a.out\"\n",
            "s.toml:6:8: tester `a.out` collides with tester `a`'s log `a.out`",
        ),
        (
            "name = \"x\"\n[[tester]]\nname = \"t\"\nsteps = [\n  { run = \"echo dir=/x; touch escaped\" },\n  { expect = 'dir=(?P<run_dir>\\S+)' },\n  { run = \"touch ${run_dir}/escaped\" },\n]\n",
            "s.toml:6:19: the capture group `run_dir` has the name of a built-in variable",
        ),
        (
            "name = \"x\"\n[vars]\nscenario_dir = \"/tmp\"\n[[tester]]\nname = \"t\"\nsteps = [{ run = \"touch escaped\" }]\n",
            "s.toml:3:1: `scenario_dir` is a built-in variable",
        ),
    ];
    for (toml, want) in cases {
        let (dir, child) = spawn_exec(toml, &[], &[]);
        let o = wait_deadline(child, 60, "dtest exec");
        assert_eq!(o.status.code(), Some(2), "{toml}\n{}", show(&o));
        assert!(stderr(&o).contains(want), "want {want:?}\n{}", show(&o));
        // Nothing ran: no file outside (or inside) the run directory.
        assert!(!dir.path().join("escaped").exists(), "{toml}");
        assert!(
            !dir.path().join("run").join("trace.dtrace").exists(),
            "{toml}"
        );
    }
    let o = {
        let (_dir, child) = spawn_exec(
            "name = \"x\"\n[[tester]]\nname = \"t\"\nsteps = [{ run = \"true\" }]\n",
            &[],
            &["--set", "run_dir=/etc"],
        );
        wait_deadline(child, 60, "dtest exec --set run_dir")
    };
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        stderr(&o).contains("--set run_dir: `run_dir` is a built-in variable"),
        "{}",
        show(&o)
    );
}

// ---------------------------------------------------------------- item 13

/// A second run into a directory a run is using is refused (exit 2, one
/// clear line) and the first one is not disturbed: it passes with a valid
/// trace. The first run waits, in a `local` step, for a file the test
/// creates once the second run has been refused: no timing involved.
#[test]
fn a_second_run_into_a_busy_run_directory_is_refused() {
    let toml = "name = \"long\"\n[[tester]]\nname = \"t\"\nsteps = [\n  { run = \"echo started\" },\n  { expect = \"started\" },\n  { local = \"touch started; while [ ! -e go ]; do sleep 0.05; done\", timeout = \"120s\" },\n  { sleep = \"200ms\" },\n]\n";
    let (dir, first) = spawn_exec(toml, &[], &[]);
    let run_dir = dir.path().join("run");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !run_dir.join("started").exists() {
        assert!(Instant::now() < deadline, "the first run did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = dtest()
        .arg("exec")
        .arg(dir.path().join("s.toml"))
        .arg("--out")
        .arg(&run_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o2 = wait_deadline(second, 60, "the second dtest exec");
    std::fs::write(run_dir.join("go"), "").unwrap();
    let o1 = wait_deadline(first, 120, "the first dtest exec");
    assert_eq!(o2.status.code(), Some(2), "second: {}", show(&o2));
    let e = stderr(&o2);
    assert!(
        e.contains("is in use by another dtest run (pid ")
            && e.contains(&run_dir.display().to_string()),
        "second: {}",
        show(&o2)
    );
    assert!(
        o2.stdout.is_empty(),
        "the second run printed no TAP: {}",
        show(&o2)
    );
    assert_eq!(o1.status.code(), Some(0), "first: {}", show(&o1));
    validate(&run_dir.join("trace.dtrace"));
    // The lock goes with its run: a third run into the directory works
    // (`go` is still there, its `local` step ends at once).
    let o3 = run(dtest()
        .arg("exec")
        .arg(dir.path().join("s.toml"))
        .arg("--out")
        .arg(&run_dir)
        .stdin(Stdio::null()));
    assert_eq!(o3.status.code(), Some(0), "third: {}", show(&o3));
}

/// `--junit` pointing at the run's trace or one of its logs is refused
/// before anything runs, and so is the scenario itself.
#[test]
fn junit_may_not_overwrite_the_run_files() {
    let toml = "name = \"x\"\n[[tester]]\nname = \"t\"\nsteps = [{ run = \"touch ran\" }]\n";
    for (target, want) in [
        ("run/trace.dtrace", "is the run's trace"),
        ("run/report.html", "is the run's HTML report"),
        ("run/t.out", "is tester `t`'s log"),
        ("run/../run/t.err", "is tester `t`'s log"),
        ("s.toml", "is the scenario"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.toml"), toml).unwrap();
        let o = run(dtest()
            .current_dir(dir.path())
            .args(["exec", "s.toml", "--out", "run", "--junit", target])
            .stdin(Stdio::null()));
        assert_eq!(o.status.code(), Some(2), "{target}: {}", show(&o));
        assert!(
            stderr(&o).contains(want),
            "{target}: want {want:?}\n{}",
            show(&o)
        );
        assert!(
            !dir.path().join("run/t/ran").exists(),
            "{target}: nothing ran"
        );
        assert!(
            !dir.path().join("run/trace.dtrace").exists(),
            "{target}: nothing ran"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("s.toml")).unwrap(),
            toml
        );
    }
}

/// A log that cannot be created (a directory is in its way) is not skipped
/// silently: the run fails (exit 1) and says which log.
#[test]
fn a_log_that_cannot_be_created_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        "name = \"x\"\n[[tester]]\nname = \"t\"\nsteps = [{ run = \"echo hi\" }, { expect = \"hi\" }]\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("run/t.out")).unwrap();
    let o = run(dtest()
        .current_dir(dir.path())
        .args(["exec", "s.toml", "--out", "run"])
        .stdin(Stdio::null()));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        stderr(&o).contains("the log ") && stderr(&o).contains("t.out could not be created"),
        "{}",
        show(&o)
    );
    validate(&dir.path().join("run/trace.dtrace"));
}

// ------------------------------------------------------ pause and resume

/// A counter every 50 ms, paused for a second: the counts it appends to a
/// file do not move while paused and moves again after `resume`; the
/// trace has the STOP and CONT signals from the tester to its session,
/// and the output after the resume.
fn pause_and_resume(pty: bool, host: &str, env: &[(String, String)]) {
    let m = marker("counter");
    let toml = format!(
        r#"name = "pause"
[defaults]
expect_timeout = "30s"
[[tester]]
name = "t"
pty = {pty}
host = "{host}"
cwd = "${{run_dir}}/t"
steps = [
  {{ run = "sh -c 'i=0; while :; do echo tick $i; echo $i >> count; i=$((i+1)); sleep 0.05; done' {m}" }},
  {{ expect = 'tick 5\s' }},
  {{ pause = true }},
  {{ sleep = "500ms" }},
  {{ local = "cp t/count before" }},
  {{ sleep = "1s" }},
  {{ local = "cmp t/count before", name = "nothing printed while paused" }},
  {{ resume = true }},
  {{ expect = 'tick 150\s' }},
  {{ terminate = "TERM" }},
]
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.toml");
    std::fs::write(&f, &toml).unwrap();
    let child = dtest()
        .arg("exec")
        .arg(&f)
        .arg("--out")
        .arg(dir.path().join("run"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dtest");
    let o = wait_deadline(child, 120, &format!("dtest exec (pause/resume on {host})"));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let tap = String::from_utf8_lossy(&o.stdout);
    assert!(tap.contains("ok 3 - t: pause (SIGSTOP)\n"), "{tap}");
    assert!(
        tap.contains("ok 7 - t: nothing printed while paused"),
        "{tap}"
    );
    assert!(tap.contains("ok 8 - t: resume (SIGCONT)\n"), "{tap}");
    let run_dir = dir.path().join("run");
    // `count` gets one line per tick (appended: one write each, so a
    // pause never leaves half a line).
    let before = std::fs::read_to_string(run_dir.join("before")).unwrap();
    let before: u64 = before
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("count when paused: {before:?}"));
    assert!(before < 150, "paused at tick {before}");
    let trace = run_dir.join("trace.dtrace");
    validate(&trace);
    let ev = events(&trace);
    let signals: Vec<(usize, String, String)> = ev
        .iter()
        .enumerate()
        .filter(|(_, e)| e["kind"] == "signal" && e["dir"] == "send")
        .map(|(i, e)| {
            (
                i,
                e["actor"].as_str().unwrap_or("").to_string(),
                e["text"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let names: Vec<&str> = signals.iter().map(|s| s.2.as_str()).collect();
    assert_eq!(&names[..2], ["STOP", "CONT"], "{signals:?}");
    assert!(signals.iter().all(|s| s.1 == "t"), "{signals:?}");
    // Every tick from 0 to 150, in order, none twice: the command was
    // paused, not restarted; the ones after the pause's settling came
    // after the resume.
    let mut ticks = Vec::new();
    for (i, e) in ev.iter().enumerate() {
        if e["kind"] == "output" && e["dir"] == "send" {
            for w in e["text"].as_str().unwrap_or("").split("tick ").skip(1) {
                let n: String = w.chars().take_while(|c| c.is_ascii_digit()).collect();
                if let Ok(n) = n.parse::<u64>() {
                    ticks.push((n, i));
                }
            }
        }
    }
    let nums: Vec<u64> = ticks
        .iter()
        .map(|t| t.0)
        .take_while(|n| *n <= 150)
        .collect();
    assert_eq!(nums, (0..=150).collect::<Vec<_>>(), "ticks in order");
    let cont = signals[1].0;
    for (n, i) in &ticks {
        if *n > before + 1 {
            assert!(
                *i > cont,
                "tick {n} (event {i}) came before the resume (event {cont})"
            );
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pgrep(&m).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(pgrep(&m).is_empty(), "left: {}", pgrep(&m));
}

#[test]
fn pause_and_resume_on_pipes() {
    pause_and_resume(false, "local", &[]);
}

/// The same through both SSH transports (the loopback sshd): the signals
/// go through `remote::signal_command`, `kill -STOP` and `kill -CONT`.
#[test]
fn pause_and_resume_over_ssh_on_pipes() {
    let c = Client::new();
    let a = Sshd::start(61, &c);
    c.trust(&a);
    c.write_config(&[("pausehost", &a)]);
    pause_and_resume(false, &a.url(), &c.env());
    pause_and_resume(false, "openssh://pausehost", &c.env());
}

/// On a pty the shell is interactive, with job control: it must not see
/// the paused job stop (it would print "Stopped" and its prompt, and the
/// command would count as ended). Needs the transports to stop the shell
/// first and continue it last (`session/local.rs` `signal`, dtest-ssh's
/// `remote::signal_command`), and `ShellSession::terminate` to continue
/// what it signals: see the report of issue 11, item "pause".
#[test]
fn pause_and_resume_on_a_pty() {
    pause_and_resume(true, "local", &[]);
}

/// A command paused and never resumed is stopped at cleanup: nothing of
/// it is left once dtest has exited; and `terminate` of a paused command
/// ends it.
#[test]
fn a_paused_command_is_stopped_at_cleanup() {
    for pty in [false, true] {
        let m = marker("paused");
        let m2 = marker("terminated");
        let toml = format!(
            r#"name = "paused"
[[tester]]
name = "a"
pty = {pty}
steps = [
  {{ run = "sh -c 'while :; do echo alive; sleep 0.05; done' {m}" }},
  {{ expect = "alive" }},
  {{ pause = true }},
]
[[tester]]
name = "b"
pty = {pty}
steps = [
  {{ run = "sh -c 'while :; do echo alive; sleep 0.05; done' {m2}" }},
  {{ expect = "alive" }},
  {{ pause = true }},
  {{ terminate = "TERM", timeout = "1s" }},
  {{ run = "echo after" }},
  {{ expect = "after" }},
]
"#
        );
        let (dir, child) = spawn_exec(&toml, &[], &[]);
        let o = wait_deadline(child, 120, "dtest exec (paused at the end)");
        assert_eq!(o.status.code(), Some(0), "pty {pty}: {}", show(&o));
        validate(&dir.path().join("run/trace.dtrace"));
        // Give the kernel a moment to reap; generous on a loaded machine.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(pgrep(&m).is_empty() && pgrep(&m2).is_empty()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(pgrep(&m).is_empty(), "pty {pty}: left: {}", pgrep(&m));
        assert!(pgrep(&m2).is_empty(), "pty {pty}: left: {}", pgrep(&m2));
    }
}

/// `terminate = "STOP"` is refused (a stopped command never ends), with
/// its position, and `pause` takes `true` only.
#[test]
fn pause_is_not_a_terminate_signal() {
    for (steps, want) in [
        (
            "[{ run = \"sleep 5\" }, { terminate = \"STOP\" }]",
            "s.toml:4:45: `terminate` cannot send STOP",
        ),
        (
            "[{ run = \"sleep 5\" }, { pause = \"yes\" }]",
            "s.toml:4:41: `pause` takes `true`",
        ),
    ] {
        let toml = format!("name = \"x\"\n[[tester]]\nname = \"t\"\nsteps = {steps}\n");
        let (_dir, child) = spawn_exec(&toml, &[], &[]);
        let o = wait_deadline(child, 60, "dtest exec");
        assert_eq!(o.status.code(), Some(2), "{}", show(&o));
        assert!(stderr(&o).contains(want), "want {want:?}\n{}", show(&o));
    }
}
