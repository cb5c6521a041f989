//! End-to-end tests of `dtest exec`: the md5 example, the port of the
//! original's self-test, scenario-file errors, failure handling, floods,
//! signals, cleanup, many testers, TAP (checked by Perl's TAP::Parser) and
//! JUnit (checked by xmllint). Every run has a deadline; no timing is
//! asserted.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{dtest, repo_root, require_tool, show, spawn_exec, wait_deadline};

/// Runs `dtest exec` on scenario text written to a temp dir.
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
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    fn code(&self) -> Option<i32> {
        self.out.status.code()
    }
    fn line(&self, needle: &str) -> String {
        self.stdout()
            .lines()
            .find(|l| l.contains(needle))
            .map(String::from)
            .unwrap_or_else(|| panic!("no TAP line with {needle:?}\n{}", show(&self.out)))
    }
    /// The TAP point whose line contains `needle`, with its YAML block
    /// (`  ---` ... `  ...`) when it has one: how the step went.
    fn block(&self, needle: &str) -> String {
        let out = self.stdout();
        let mut lines = out.lines().skip_while(|l| !l.contains(needle));
        let first = lines
            .next()
            .unwrap_or_else(|| panic!("no TAP line with {needle:?}\n{}", show(&self.out)));
        let mut b = format!("{first}\n");
        let mut rest = lines.peekable();
        if rest.peek() == Some(&"  ---") {
            for l in rest {
                b.push_str(l);
                b.push('\n');
                if l == "  ..." {
                    break;
                }
            }
        }
        b
    }
}

fn exec_text(toml: &str, extra: &[&str], secs: u64) -> Run {
    let (dir, child) = spawn_exec(toml, &[], extra);
    let out = wait_deadline(child, secs, "dtest exec");
    Run { dir, out }
}

/// Parses TAP with Perl's stock TAP::Parser (Debian 12: Test::Harness
/// 3.44, which knows TAP 12 and 13 and refuses 14), unmodified: no parse
/// errors, a good plan, version 13.
fn check_tap(tap: &[u8]) {
    require_tool("perl", "perl");
    let script = r#"
use TAP::Parser;
my $tap = do { local $/; <STDIN> };
my $p = TAP::Parser->new({ tap => $tap });
while (my $r = $p->next) {}
my @e = $p->parse_errors;
print "parse_error: $_\n" for @e;
print "good_plan: ", ($p->is_good_plan ? 1 : 0), "\n";
print "version: ", $p->version, "\n";
exit(@e ? 1 : 0);
"#;
    let mut child = Command::new("perl")
        .arg("-e")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("perl");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(tap).expect("write TAP");
    }
    let out = wait_deadline(child, 60, "perl TAP::Parser");
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "TAP::Parser errors:\n{s}\n--- TAP ---\n{}",
        String::from_utf8_lossy(tap)
    );
    assert!(
        s.contains("good_plan: 1"),
        "bad plan:\n{s}\n--- TAP ---\n{}",
        String::from_utf8_lossy(tap)
    );
    assert!(s.contains("version: 13"), "{s}");
}

fn validate_trace(path: &Path) {
    let o = dtest()
        .args(["trace", "validate"])
        .arg(path)
        .output()
        .expect("dtest trace validate");
    assert!(o.status.success(), "trace validate:\n{}", show(&o));
}

#[test]
fn md5_example_all_ok() {
    require_tool("md5sum", "coreutils");
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let child = dtest()
        .current_dir(repo_root())
        .args(["exec", "examples/md5/md5.toml", "--out"])
        .arg(dir.path().join("run"))
        .arg("--junit")
        .arg(&junit)
        // The fsync path (trace, logs, JUnit, run directory) on a real run.
        .arg("--fsync")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_deadline(child, 120, "md5 example");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let tap = String::from_utf8_lossy(&out.stdout);
    assert!(tap.starts_with("TAP version 13\n1..21\n"), "{tap}");
    assert!(!tap.contains("not ok"), "{tap}");
    assert!(tap.contains("compare res1 with res2"), "{tap}");
    check_tap(&out.stdout);
    let run = dir.path().join("run");
    assert_eq!(
        std::fs::read(run.join("res1")).unwrap(),
        std::fs::read(run.join("res2")).unwrap()
    );
    for f in [
        "tester1.in",
        "tester1.out",
        "tester1.err",
        "tester2.in",
        "tester2.out",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let out1 = std::fs::read_to_string(run.join("tester1.out")).unwrap();
    assert!(out1.contains("md5done"), "{out1}");
    validate_trace(&run.join("trace.dtrace"));
    require_tool("xmllint", "libxml2-utils");
    let x = Command::new("xmllint")
        .arg("--noout")
        .arg(&junit)
        .output()
        .unwrap();
    assert!(x.status.success(), "xmllint: {}", show(&x));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testsuite name=\"tester1\""), "{xml}");
    // Test case names are the points' descriptions, without their numbers.
    assert!(
        xml.contains("<testcase name=\"tester2: compare res1 with res2\""),
        "{xml}"
    );
}

/// Stock `prove` (Test::Harness 3.44 on Debian 12, no option but the
/// command that runs a "test file") passes on the md5 example.
#[test]
fn stock_prove_passes_on_the_md5_example() {
    require_tool("prove", "perl");
    require_tool("md5sum", "coreutils");
    let dir = tempfile::tempdir().unwrap();
    // `prove --exec CMD FILE` runs `CMD FILE` and reads its TAP; the run
    // directory is the default one, under the current directory.
    let child = Command::new("prove")
        .arg("--exec")
        .arg(format!("{} exec", crate::common::dtest_bin().display()))
        .arg(repo_root().join("examples/md5/md5.toml"))
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prove");
    let out = wait_deadline(child, 180, "prove on the md5 example");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", show(&out));
    assert!(text.contains("Result: PASS"), "{}", show(&out));
}

/// A point's description is the same from run to run: two runs of the md5
/// example (into different run directories, with other timings) give the
/// same descriptions, in TAP and as JUnit test case names.
#[test]
fn md5_descriptions_are_the_same_from_run_to_run() {
    require_tool("md5sum", "coreutils");
    let dir = tempfile::tempdir().unwrap();
    let mut tap = Vec::new();
    let mut junit = Vec::new();
    for i in 0..2 {
        let j = dir.path().join(format!("junit{i}.xml"));
        let child = dtest()
            .current_dir(repo_root())
            .args(["exec", "examples/md5/md5.toml", "--out"])
            .arg(dir.path().join(format!("run-{i}")))
            .arg("--junit")
            .arg(&j)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_deadline(child, 120, "md5 example");
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        let mut d: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(" - ").map(|(_, d)| d.to_string()))
            .collect();
        d.sort();
        tap.push(d);
        let xml = std::fs::read_to_string(&j).unwrap();
        let mut names: Vec<String> = xml
            .lines()
            .filter_map(|l| l.trim().strip_prefix("<testcase name=\""))
            .map(|l| l.split('"').next().unwrap_or("").to_string())
            .collect();
        names.sort();
        junit.push(names);
    }
    assert_eq!(tap[0].len(), 21, "{:?}", tap[0]);
    assert_eq!(tap[0], tap[1]);
    assert_eq!(junit[0], junit[1]);
    for d in &tap[0] {
        assert!(!d.contains("after "), "a timing in {d:?}");
        assert!(!d.contains("run-0"), "the run directory in {d:?}");
    }
    assert!(
        tap[0]
            .iter()
            .any(|d| d.contains("${run_dir}/hostA/source.bin")),
        "{:?}",
        tap[0]
    );
    assert!(
        junit[0].iter().all(|n| n.starts_with("tester")),
        "no point number in a test case name: {:?}",
        junit[0]
    );
}

#[test]
fn checked_in_md5_trace_is_valid() {
    validate_trace(&repo_root().join("traces/md5.dtrace"));
}

/// The original DTest's self-test, ported: barriers, a timed barrier one
/// tester reaches too late, skip and todo verdicts, a failing verdict, a
/// custom (local) step.
const SELF_TEST: &str = r#"
name = "selftest"
timeout = "60s"
[defaults]
on_fail = "continue"
[[tester]]
name = "t1"
steps = [
  { ok = "t1 starting", skip = "informational" },
  { run = "echo t1-ready" },
  { expect = "t1-ready" },
  { barrier = "both ready" },
  { barrier = "late", timeout = "500ms" },
  { ok = "a known bug", pass = false, todo = "not fixed yet" },
  { ok = "deliberate failure", pass = false },
  { local = "test -d ${run_dir}", name = "the run dir exists" },
  { local = "exit 3", name = "a failing local step" },
]
[[tester]]
name = "t2"
pty = false
steps = [
  { run = "echo t2-ready" },
  { expect = 't2-(?P<word>\w+)' },
  { send = "${word}\n" },
  { barrier = "both ready" },
  { sleep = "1500ms" },
  { barrier = "late", timeout = "5s" },
  { ok = "t2 done" },
]
"#;

#[test]
fn self_test_port() {
    let r = exec_text(SELF_TEST, &[], 60);
    assert_eq!(r.code(), Some(1), "{}", show(&r.out));
    assert!(r.line("t1 starting").starts_with("ok "));
    assert!(r.line("t1 starting").ends_with("# SKIP informational"));
    assert!(r.line("t1: barrier \"both ready\"").starts_with("ok "));
    assert!(r.line("t2: barrier \"both ready\"").starts_with("ok "));
    // t1 waits 500ms at "late", t2 comes after 1.5s: broken for both.
    let l = r.block("t1: barrier \"late\"");
    assert!(
        l.starts_with("not ok") && l.contains("broken: timeout"),
        "{l}"
    );
    let l = r.block("t2: barrier \"late\"");
    assert!(l.starts_with("not ok") && l.contains("broken"), "{l}");
    let l = r.line("a known bug");
    assert!(
        l.starts_with("not ok") && l.ends_with("# TODO not fixed yet"),
        "{l}"
    );
    assert!(r.line("deliberate failure").starts_with("not ok"));
    assert!(r.line("the run dir exists").starts_with("ok "));
    assert!(r.line("a failing local step").starts_with("not ok"));
    assert!(r.line("t2: expect").starts_with("ok "));
    assert!(r.line("t2 done").starts_with("ok "));
    check_tap(&r.out.stdout);
    validate_trace(&r.out_dir().join("trace.dtrace"));
    let inp = std::fs::read_to_string(r.out_dir().join("t2.in")).unwrap();
    assert!(inp.contains("ready\n"), "captured variable sent: {inp}");
    let err = std::fs::read_to_string(r.out_dir().join("t1.err")).unwrap();
    assert!(err.contains("barrier \"late\" broken"), "{err}");
}

#[test]
fn rust_builder_scenario_runs() {
    use dtest_exec::{run, RunOptions, Scenario, Step, Tester};
    let dir = tempfile::tempdir().unwrap();
    let sc = Scenario::new("builder")
        .tester(
            Tester::new("a")
                .step(Step::run("echo from-a"))
                .step(Step::expect("from-a"))
                .step(Step::barrier("meet"))
                .step(Step::custom("closure sees vars", |cx| {
                    if cx.tester == "a" {
                        Ok("fine".into())
                    } else {
                        Err("wrong tester".into())
                    }
                })),
        )
        .tester(Tester::new("b").pty(false).step(Step::barrier("meet")));
    let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    struct W(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for W {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let report = run(
        &sc,
        RunOptions::new(dir.path().join("run"), Box::new(W(buf.clone()))),
    )
    .unwrap();
    let tap = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    assert!(report.ok, "{tap}");
    assert_eq!(report.points.len(), 5);
    assert!(
        tap.contains("ok 5 - ") || tap.contains("closure sees vars"),
        "{tap}"
    );
}

fn expect_error(toml: &str, want: &str) {
    let r = exec_text(toml, &[], 30);
    assert_eq!(r.code(), Some(2), "{}", show(&r.out));
    let e = r.stderr();
    let first = e.lines().next().unwrap_or("");
    assert!(
        first.contains("s.toml:") && first.contains(want),
        "want {want:?} in the first line of:\n{e}"
    );
    // FILE:LINE:COL: message
    let after = first.split("s.toml:").nth(1).unwrap_or("");
    let mut parts = after.splitn(3, ':');
    let line: usize = parts.next().unwrap_or("").parse().unwrap_or(0);
    let col: usize = parts.next().unwrap_or("").parse().unwrap_or(0);
    assert!(line > 0 && col > 0, "no LINE:COL in {first}");
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn scenario_errors_have_file_line_col() {
    let head = "name = \"e\"\n";
    expect_error(
        &format!("{head}colour = 1\n[[tester]]\nname = \"a\"\n"),
        ":2:1: unknown key `colour`",
    );
    expect_error(
        &format!("{head}[[tester]]\nname = \"a\"\npty = 1\n"),
        ":4:7: `pty` must be true or false",
    );
    expect_error(
        &format!("{head}[[tester]]\nname = \"a\"\nsteps = [{{ run = \"cat ${{nope}}\" }}]\n"),
        ":4:23: undefined variable `${nope}`",
    );
    expect_error(
        &format!("{head}[[tester]]\nname = \"a\"\nsteps = [{{ expect = \"(unclosed\" }}]\n"),
        ":4:21: bad regex",
    );
    expect_error(
        &format!("{head}[[tester]]\nname = \"a\"\nsteps = [{{ sleep = \"5 fortnights\" }}]\n"),
        ":4:20: `sleep`: bad duration",
    );
    expect_error(
        &format!("{head}[[tester]]\nname = \"a\"\nsteps = [{{ barrier = \"alone\" }}]\n"),
        "barrier `alone` is joined by tester `a` only",
    );
    expect_error(
        &format!("{head}[[tester]]\nname = \"a\"\n[[tester]]\nname = \"a\"\n"),
        ":5:8: duplicate tester `a`",
    );
    expect_error(
        &format!("{head}[[tester]]\nname = \"a\"\nsteps = [{{ run = 3 }}]\n"),
        "`run` must be a string",
    );
    expect_error("name = \"x\"\n[[tester\n", "invalid TOML");
}

#[test]
fn host_override_is_checked() {
    let t = "name = \"h\"\n[[tester]]\nname = \"a\"\nsteps = [{ run = \"true\" }]\n";
    let r = exec_text(t, &["--host", "a=gopher://x"], 30);
    assert_eq!(r.code(), Some(2), "{}", show(&r.out));
    assert!(
        r.stderr().contains("tester `a`") && r.stderr().contains("gopher"),
        "{}",
        r.stderr()
    );
    let r = exec_text(t, &["--host", "zz=local"], 30);
    assert_eq!(r.code(), Some(2));
    assert!(
        r.stderr().contains("no tester named `zz`"),
        "{}",
        r.stderr()
    );
    let r = exec_text(t, &["--host", "a=local"], 30);
    assert_eq!(r.code(), Some(0), "{}", show(&r.out));
}

fn on_fail_scenario(on_fail: &str) -> String {
    format!(
        r#"
name = "onfail"
[[tester]]
name = "a"
steps = [
  {{ run = "echo nothing-useful; sleep 30" }},
  {{ expect = "never-printed", timeout = "300ms", on_fail = "{on_fail}" }},
  {{ ok = "after the expect" }},
  {{ barrier = "end", timeout = "20s" }},
]
[[tester]]
name = "b"
steps = [
  {{ sleep = "200ms" }},
  {{ barrier = "end", timeout = "20s" }},
  {{ ok = "b after barrier" }},
]
"#
    )
}

#[test]
fn expect_timeout_with_each_on_fail() {
    // continue: the next step runs; the barrier is met.
    let r = exec_text(&on_fail_scenario("continue"), &[], 60);
    assert_eq!(r.code(), Some(1), "{}", show(&r.out));
    let l = r.block("expect /never-printed/");
    assert!(
        l.starts_with("not ok") && l.contains("timed out after 300ms"),
        "{l}"
    );
    assert!(
        r.stdout().contains("pattern: \"never-printed\""),
        "{}",
        r.stdout()
    );
    assert!(
        r.stdout().contains("nothing-useful"),
        "last lines shown: {}",
        r.stdout()
    );
    assert!(r.line("after the expect").starts_with("ok "));
    assert!(r.line("b after barrier").starts_with("ok "));
    check_tap(&r.out.stdout);

    // abort: the rest of a is skipped, b's barrier breaks (no hang).
    let r = exec_text(&on_fail_scenario("abort"), &[], 60);
    assert_eq!(r.code(), Some(1), "{}", show(&r.out));
    assert!(r
        .line("after the expect")
        .ends_with("# SKIP tester aborted"));
    let l = r.block("b: barrier");
    assert!(
        l.starts_with("not ok") && l.contains("barrier broken: a aborted")
            || l.contains("broken: a aborted"),
        "{l}"
    );
    assert!(
        r.line("b after barrier").contains("# SKIP"),
        "{}",
        r.stdout()
    );
    check_tap(&r.out.stdout);
    validate_trace(&r.out_dir().join("trace.dtrace"));

    // abort-all: b is stopped too.
    let r = exec_text(&on_fail_scenario("abort-all"), &[], 60);
    assert_eq!(r.code(), Some(1), "{}", show(&r.out));
    assert!(r.line("after the expect").contains("# SKIP"));
    assert!(
        r.line("b after barrier").contains("# SKIP"),
        "{}",
        r.stdout()
    );
    check_tap(&r.out.stdout);
    validate_trace(&r.out_dir().join("trace.dtrace"));
}

#[test]
fn barrier_broken_when_a_tester_dies() {
    // a's shell exits under it: its remaining steps fail, it aborts, and b,
    // waiting at the barrier with a long timeout, gets broken at once.
    let t = r#"
name = "dies"
[[tester]]
name = "a"
steps = [
  { run = "exit 7" },
  { expect = "anything", timeout = "30s" },
  { barrier = "meet", timeout = "60s" },
]
[[tester]]
name = "b"
steps = [ { barrier = "meet", timeout = "60s" } ]
"#;
    let r = exec_text(t, &[], 40);
    assert_eq!(r.code(), Some(1), "{}", show(&r.out));
    let l = r.block("a: expect");
    assert!(l.starts_with("not ok") && l.contains("exited"), "{l}");
    let l = r.block("b: barrier");
    assert!(l.starts_with("not ok") && l.contains("a aborted"), "{l}");
    validate_trace(&r.out_dir().join("trace.dtrace"));
}

#[test]
fn output_flood_then_marker() {
    for pty in ["false", "true"] {
        let mib = if pty == "false" { 256 } else { 16 };
        let t = format!(
            r#"
name = "flood"
[[tester]]
name = "a"
pty = {pty}
steps = [
  {{ run = "head -c {mib}M /dev/zero | tr '\\0' 'x'; echo; echo FLOOD_END" }},
  {{ expect = "FLOOD_END", timeout = "120s" }},
  {{ wait = "30s", status = 0 }},
]
"#
        );
        let r = exec_text(&t, &[], 300);
        assert_eq!(r.code(), Some(0), "pty {pty}: {}", show(&r.out));
        let size = std::fs::metadata(r.out_dir().join("a.out")).unwrap().len();
        assert!(size >= mib << 20, "the .out log has all the output: {size}");
    }
}

#[test]
fn binary_and_invalid_utf8_output() {
    let t = r#"
name = "binary"
[[tester]]
name = "a"
pty = false
steps = [
  { run = "printf 'head\\377\\376\\000\\200 tail BIN_END\\n'" },
  { expect = 'tail BIN_END' },
  { wait = "10s", status = 0 },
]
"#;
    let r = exec_text(t, &[], 30);
    assert_eq!(r.code(), Some(0), "{}", show(&r.out));
    let out = std::fs::read(r.out_dir().join("a.out")).unwrap();
    assert!(
        out.windows(6).any(|w| w == b"\xff\xfe\x00\x80 t"),
        "raw bytes kept in the log: {out:?}"
    );
    check_tap(&r.out.stdout);
    validate_trace(&r.out_dir().join("trace.dtrace"));
}

#[test]
fn command_exits_before_its_expect() {
    let t = r#"
name = "early"
[[tester]]
name = "a"
steps = [
  { run = "echo bye" },
  { expect = "never", timeout = "500ms" },
]
"#;
    let r = exec_text(t, &[], 30);
    assert_eq!(r.code(), Some(1), "{}", show(&r.out));
    assert!(r.line("expect /never/").starts_with("not ok"));
    assert!(
        r.stdout().contains("command_ended: \"status 0\""),
        "{}",
        r.stdout()
    );
    check_tap(&r.out.stdout);
}

fn marker() -> String {
    format!(
        "dtestorphan{}x{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    )
}

fn survivors(mark: &str) -> String {
    let o = Command::new("pgrep")
        .args(["-a", "-f", mark])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn wait_no_survivors(mark: &str) {
    // Killed processes may take a moment to be reaped by init.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = survivors(mark);
        if s.trim().is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("processes survived dtest:\n{s}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stubborn_scenario(mark: &str, tail: &str) -> String {
    format!(
        r#"
name = "stubborn"
[[tester]]
name = "a"
steps = [
  {{ run = "sh -c 'trap \"\" INT TERM HUP; while :; do sleep 1; done' {mark}-bg &" }},
  {{ run = "sh -c 'trap \"\" INT; echo started; while :; do sleep 1; done' {mark}-fg" }},
  {{ expect = "started" }},
  {tail}
]
"#
    )
}

#[test]
fn no_process_survives() {
    require_tool("pgrep", "procps");
    let mark = marker();
    let t = stubborn_scenario(&mark, r#"{ terminate = "INT", timeout = "300ms" },"#);
    let r = exec_text(&t, &[], 60);
    assert_eq!(r.code(), Some(0), "{}", show(&r.out));
    // The point is named after the step; the escalation is in the trace.
    assert!(
        r.line("terminate (INT)").starts_with("ok "),
        "{}",
        r.stdout()
    );
    let t = dtest_trace::Trace::load(&r.out_dir().join("trace.dtrace")).unwrap();
    let sent: Vec<&str> = t
        .events
        .iter()
        .filter_map(|e| match &e.data {
            dtest_trace::EventData::Signal { name } if e.dir == dtest_trace::Dir::Send => {
                Some(name.as_str())
            }
            _ => None,
        })
        .filter(|n| *n != "CONT")
        .collect();
    assert!(sent.starts_with(&["INT", "TERM"]), "escalated: {sent:?}");
    wait_no_survivors(&mark);
}

fn interrupt_with(sig: i32, code: i32) {
    require_tool("pgrep", "procps");
    let mark = marker();
    let t = stubborn_scenario(&mark, r#"{ sleep = "60s" }, { ok = "never reached" },"#);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.toml");
    std::fs::write(&f, t).unwrap();
    let mut child = dtest()
        .arg("exec")
        .arg(&f)
        .arg("--out")
        .arg(dir.path().join("run"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the foreground command runs (its process exists).
    let deadline = Instant::now() + Duration::from_secs(30);
    while survivors(&format!("{mark}-fg")).trim().is_empty() {
        assert!(Instant::now() < deadline, "the command never started");
        if let Ok(Some(st)) = child.try_wait() {
            panic!("dtest ended early: {st:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
    let out = wait_deadline(child, 60, "interrupted dtest");
    assert_eq!(out.status.code(), Some(code), "{}", show(&out));
    let tap = String::from_utf8_lossy(&out.stdout);
    assert!(
        tap.lines()
            .any(|l| l.starts_with("not ok") && l.ends_with(" # interrupted")),
        "{tap}"
    );
    assert!(
        tap.lines()
            .last()
            .unwrap_or("")
            .starts_with("# interrupted by SIG"),
        "{tap}"
    );
    check_tap(&out.stdout);
    validate_trace(&dir.path().join("run/trace.dtrace"));
    wait_no_survivors(&mark);
}

#[test]
fn sigint_ends_the_run_cleanly() {
    interrupt_with(libc::SIGINT, 130);
}

#[test]
fn sigterm_ends_the_run_cleanly() {
    interrupt_with(libc::SIGTERM, 143);
}

#[test]
fn two_hundred_testers() {
    let mut t = String::from("name = \"many\"\ntimeout = \"240s\"\n");
    for i in 0..200 {
        t.push_str(&format!(
            "[[tester]]\nname = \"t{i}\"\npty = {}\nsteps = [{{ run = \"echo hello-t{i}\" }}, {{ expect = \"hello-t{i}\", timeout = \"120s\" }}, {{ barrier = \"all\", timeout = \"180s\" }}]\n",
            i % 2 == 0
        ));
    }
    let r = exec_text(&t, &[], 300);
    assert_eq!(r.code(), Some(0), "{}", show(&r.out));
    let tap = r.stdout();
    assert!(tap.contains("1..600\n"), "{tap}");
    assert_eq!(tap.lines().filter(|l| l.starts_with("ok ")).count(), 600);
    check_tap(&r.out.stdout);
    validate_trace(&r.out_dir().join("trace.dtrace"));
}

#[test]
fn junit_is_well_formed_with_failures() {
    require_tool("xmllint", "libxml2-utils");
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("j.xml");
    let r = exec_text(SELF_TEST, &["--junit", junit.to_str().unwrap()], 60);
    assert_eq!(r.code(), Some(1), "{}", show(&r.out));
    let x = Command::new("xmllint")
        .arg("--noout")
        .arg(&junit)
        .output()
        .unwrap();
    assert!(x.status.success(), "xmllint: {}", show(&x));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<failure"), "{xml}");
    assert!(xml.contains("<skipped"), "{xml}");
}

#[test]
fn after_hook_adds_points_on_the_finished_trace() {
    use dtest_exec::{run, ExtraPoint, RunOptions, Scenario, Step, Tester};
    let dir = tempfile::tempdir().unwrap();
    let sc = Scenario::new("hook").tester(Tester::new("a").pty(false).step(Step::run("true")));
    let tap = dir.path().join("tap.txt");
    let f = std::fs::File::create(&tap).unwrap();
    let mut o = RunOptions::new(dir.path().join("run"), Box::new(f));
    o.extra_points = 2;
    o.after = Some(Box::new(|trace: &Path| {
        let t = dtest_trace::Trace::load(trace).expect("the trace is finished before the hook");
        assert!(t.complete);
        vec![ExtraPoint {
            ok: false,
            description: "property: never exit".into(),
            diagnostics: vec![("witness".into(), "event 3".into())],
        }]
    }));
    let report = run(&sc, o).unwrap();
    assert!(!report.ok);
    let text = std::fs::read_to_string(&tap).unwrap();
    assert!(text.starts_with("TAP version 13\n1..3\n"), "{text}");
    assert!(
        text.contains("not ok 2 - property: never exit\n  ---\n  witness: \"event 3\""),
        "{text}"
    );
    assert!(text.contains("not ok 3 - check did not run"), "{text}");
    check_tap(text.as_bytes());
    // The hook's points are the run's: in the trace's end event, and the
    // complete copy the hook read is gone.
    let t = dtest_trace::Trace::load(&report.trace).unwrap();
    match &t.events.last().unwrap().data {
        dtest_trace::EventData::End { ok, summary } => {
            assert!(!ok);
            assert_eq!(summary, "3 tests, 2 failed");
        }
        other => panic!("last event: {other:?}"),
    }
    let left: Vec<_> = std::fs::read_dir(dir.path().join("run"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dtrace"))
        .collect();
    assert_eq!(left, ["trace.dtrace"]);
}

/// Regression: a `terminate` right after `run` sent Ctrl-C before the shell
/// had read the command line; the terminal flushed the line and the
/// command never ended (found with bash). Signals now wait for the
/// command's start marker.
#[test]
fn terminate_right_after_run() {
    for shell in ["/bin/sh", "/bin/bash"] {
        let t = format!(
            r#"
name = "quick-terminate"
[[tester]]
name = "a"
shell = "{shell}"
steps = [
  {{ run = "sleep 30" }},
  {{ terminate = "INT" }},
  {{ wait = "10s", status = 130 }},
  {{ run = "echo still-alive" }},
  {{ expect = "still-alive" }},
]
"#
        );
        let r = exec_text(&t, &[], 60);
        assert_eq!(r.code(), Some(0), "{shell}: {}", show(&r.out));
    }
}

#[test]
fn record_output_false_matches_without_logging() {
    let t = r#"
name = "norec"
[[tester]]
name = "a"
pty = false
record_output = false
steps = [
  { run = "echo secret-ish-line; echo NOREC_END" },
  { expect = "NOREC_END" },
  { wait = "10s", status = 0 },
]
"#;
    let r = exec_text(t, &[], 30);
    assert_eq!(r.code(), Some(0), "{}", show(&r.out));
    let out = std::fs::read_to_string(r.out_dir().join("a.out")).unwrap();
    assert!(!out.contains("secret-ish-line"), "{out}");
    let err = std::fs::read_to_string(r.out_dir().join("a.err")).unwrap();
    assert!(err.contains("record_output = false"), "{err}");
    validate_trace(&r.out_dir().join("trace.dtrace"));
}

/// `dtest exec --check SPEC`: one TAP point per property after the steps,
/// counted in the plan; a violated property fails the run with its deciding
/// events in the diagnostic; a bad spec is refused before anything runs.
#[test]
fn exec_check_adds_one_point_per_property() {
    let toml = r#"
name = "check-hook"
[[tester]]
name = "a"
steps = [
  { run = "echo ready" },
  { expect = "ready" },
  { ok = "a finished" },
]
"#;
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("p.spec");
    std::fs::write(
        &spec,
        "property matched: F match(a, \"ready\")\n\
         property never_ready: G !match(a, /ready/)\n",
    )
    .unwrap();
    let r = exec_text(toml, &["--check", spec.to_str().unwrap()], 60);
    assert_eq!(r.code(), Some(1), "{}", show(&r.out));
    let tap = r.stdout();
    assert!(tap.contains("\n1..5\n"), "{tap}");
    assert!(r.line("property matched").starts_with("ok 4 "), "{tap}");
    assert!(
        r.line("property never_ready").starts_with("not ok 5 "),
        "{tap}"
    );
    assert!(tap.contains("VIOLATED"), "{tap}");
    check_tap(&r.out.stdout);
    // The trace says what TAP and the exit code say: the property points
    // are verdicts of the run (the master's), counted in its end event.
    let t = dtest_trace::Trace::load(&r.out_dir().join("trace.dtrace")).unwrap();
    assert!(t.complete);
    match &t.events.last().unwrap().data {
        dtest_trace::EventData::End { ok, summary } => {
            assert!(!ok, "{summary}");
            assert_eq!(summary, "5 tests, 1 failed");
        }
        other => panic!("last event: {other:?}"),
    }
    let verdicts: Vec<(u32, bool, &str)> = t
        .events
        .iter()
        .filter_map(|e| match &e.data {
            dtest_trace::EventData::Verdict {
                number,
                ok,
                description,
                ..
            } => Some((*number, *ok, description.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(verdicts.len(), 5, "{verdicts:?}");
    assert_eq!(verdicts[3], (4, true, "property matched"));
    assert_eq!(verdicts[4].0, 5);
    assert!(!verdicts[4].1, "{verdicts:?}");
    validate_trace(&r.out_dir().join("trace.dtrace"));
    // TAP 14 on request.
    let r = exec_text(
        toml,
        &["--check", spec.to_str().unwrap(), "--tap-version", "14"],
        60,
    );
    assert!(
        r.stdout().starts_with("TAP version 14\n1..5\n"),
        "{}",
        r.stdout()
    );

    let bad = dir.path().join("bad.spec");
    std::fs::write(&bad, "property x: G (").unwrap();
    let r = exec_text(toml, &["--check", bad.to_str().unwrap()], 60);
    assert_eq!(r.code(), Some(2), "{}", show(&r.out));
    assert!(r.stderr().contains("bad.spec:1:16:"), "{}", r.stderr());
    assert!(r.stdout().is_empty(), "nothing ran: {}", r.stdout());
}
