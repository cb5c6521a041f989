//! Runner unit tests on the mock transport (data-driven).
//!
//! Every [`Case`] is a scenario (TOML, hosts `mock://...`), the expected
//! TAP outcome of each tester's points, substrings of their messages, and
//! optionally an interrupt (SIGINT) after some milliseconds. Each case runs
//! on a pty and on pipes (a `pty = ...` line is added to every tester),
//! with the mock's output cut in chunks of [`Case::chunk`] bytes so that
//! markers are split across reads. Every run is also checked for what
//! holds whatever the case: a TAP plan met by consecutive points, TAP
//! lines that agree with the report, the exit code, a complete trace that
//! validates, and a run time far below the case's deadline.
//!
//! `DTEST_CASE=name cargo test -p dtest-exec --lib runner` runs one case.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dtest_trace::{Dir, EventData, Trace};

use super::{run, InterruptProbe, RunOptions, RunReport};
use crate::report::{DiagValue, Point};
use crate::session::mock::MockTransport;
use crate::session::{Signal, TransportRegistry};
use crate::LoadOptions;

/// A TAP sink the test can read after the run.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One scenario and what its run must give.
struct Case {
    name: &'static str,
    /// The scenario, without its `name` (added) and without `pty` keys
    /// (added to every `[[tester]]`).
    toml: &'static str,
    /// Per tester, its points in order: `ok`, `not-ok`, `skip` (ok #
    /// SKIP), `todo`, `int` (not ok # interrupted).
    points: &'static [(&'static str, &'static str)],
    /// (tester, index of its point from 0, text the point's description or
    /// diagnostics contain).
    messages: &'static [(&'static str, usize, &'static str)],
    /// SIGINT after this many milliseconds.
    interrupt_ms: Option<u64>,
    /// The run's exit code.
    exit: u8,
    /// The run must end before this (a deadline the case would reach if
    /// the runner waited where it should not; the cases end far sooner).
    /// With an interrupt: counted from the interrupt.
    within_ms: u64,
    /// The mock's output chunk size.
    chunk: usize,
    /// Run on a pty (`true`), on pipes (`false`).
    ptys: &'static [bool],
    /// Checks of the case's own.
    extra: Option<fn(&Ran)>,
}

const CASE: Case = Case {
    name: "",
    toml: "",
    points: &[],
    messages: &[],
    interrupt_ms: None,
    exit: 0,
    within_ms: 5000,
    chunk: 5,
    ptys: &[true, false],
    extra: None,
};

/// A finished run of a case.
struct Ran {
    case: &'static str,
    pty: bool,
    report: RunReport,
    tap: String,
    elapsed: Duration,
    dir: tempfile::TempDir,
    trace: Trace,
    mock: MockTransport,
}

impl Ran {
    fn points_of(&self, tester: &str) -> Vec<&Point> {
        self.report
            .points
            .iter()
            .filter(|p| p.tester == tester)
            .collect()
    }

    fn log(&self, tester: &str, ext: &str) -> String {
        let p = self.dir.path().join(format!("{tester}.{ext}"));
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// The time of the verdict of point `number`.
    fn verdict_time(&self, number: u32) -> u64 {
        self.trace
            .events
            .iter()
            .find(|e| matches!(&e.data, EventData::Verdict { number: n, .. } if *n == number))
            .map(|e| e.time_ns)
            .unwrap_or_else(|| panic!("{}: no verdict {number} in the trace", self.case))
    }

    /// The events but the receive sides of messages (which repeat their
    /// send's data).
    fn sent(&self) -> impl Iterator<Item = &dtest_trace::Event> {
        self.trace.events.iter().filter(|e| e.dir != Dir::Recv)
    }

    /// The time of the output event with which the trace's output (in
    /// order, chunks joined) first contains `text`.
    fn output_time(&self, text: &str) -> u64 {
        let mut all = String::new();
        for e in self.sent() {
            if let EventData::Output { bytes, .. } = &e.data {
                all.push_str(&String::from_utf8_lossy(bytes));
                if all.contains(text) {
                    return e.time_ns;
                }
            }
        }
        panic!("{}: no output {text:?} in the trace: {all:?}", self.case)
    }

    /// Every output byte of the trace, in order.
    fn traced_output(&self) -> String {
        let mut s = String::new();
        for e in self.sent() {
            if let EventData::Output { bytes, .. } = &e.data {
                s.push_str(&String::from_utf8_lossy(bytes));
            }
        }
        s
    }

    fn where_(&self) -> String {
        format!(
            "case {} ({}):\n{}",
            self.case,
            if self.pty { "pty" } else { "pipes" },
            self.tap
        )
    }
}

/// Everything a point says: its description, its directive and its
/// diagnostics.
fn point_text(p: &Point) -> String {
    let mut s = p.description.clone();
    if let Some((_, r)) = &p.directive {
        s.push_str(" # ");
        s.push_str(r);
    }
    if let Some(n) = &p.note {
        s.push_str(" # ");
        s.push_str(n);
    }
    for (k, v) in &p.diag {
        match v {
            DiagValue::Text(t) => s.push_str(&format!("\n{k}: {t}")),
            DiagValue::Lines(ls) => s.push_str(&format!("\n{k}: {}", ls.join(" | "))),
        }
    }
    s
}

fn registry(mock: &MockTransport) -> TransportRegistry {
    let mut r = TransportRegistry::with_local();
    r.register(Arc::new(mock.clone()));
    r
}

/// Runs `case` with every tester on a pty or on pipes.
fn run_case(case: &Case, pty: bool) -> Ran {
    let text = format!(
        "name = \"{}\"\n{}",
        case.name,
        case.toml
            .replace("[[tester]]\n", &format!("[[tester]]\npty = {pty}\n"))
    );
    let mock = MockTransport::new().chunk(case.chunk);
    let reg = registry(&mock);
    let opts = LoadOptions {
        registry: Some(reg.clone()),
        ..LoadOptions::default()
    };
    let sc = crate::load_str(
        &text,
        &format!("{}.toml", case.name),
        PathBuf::from("."),
        &opts,
    )
    .unwrap_or_else(|e| panic!("case {}: {e}\n{text}", case.name));
    let dir = tempfile::tempdir().unwrap();
    let tap = SharedBuf::default();
    let mut o = RunOptions::new(dir.path(), Box::new(tap.clone()));
    o.registry = reg;
    let t0 = Instant::now();
    if let Some(ms) = case.interrupt_ms {
        let probe: InterruptProbe =
            Arc::new(move || (t0.elapsed() >= Duration::from_millis(ms)).then_some(Signal::Int));
        o.interrupt = Some(probe);
    }
    let report = run(&sc, o).unwrap_or_else(|e| panic!("case {}: {e}", case.name));
    let elapsed = t0.elapsed();
    let tap = String::from_utf8(tap.0.lock().unwrap().clone()).unwrap();
    let trace = Trace::load(&report.trace).unwrap();
    Ran {
        case: case.name,
        pty,
        report,
        tap,
        elapsed,
        dir,
        trace,
        mock,
    }
}

/// The outcome word of a TAP line.
fn outcome_of(line: &str) -> &'static str {
    let ok = line.starts_with("ok ");
    match (ok, line.rsplit_once(" # ").map(|(_, d)| d)) {
        (true, Some(d)) if d.starts_with("SKIP") => "skip",
        (_, Some(d)) if d.starts_with("TODO") => "todo",
        (false, Some("interrupted")) => "int",
        (true, _) => "ok",
        (false, _) => "not-ok",
    }
}

/// The checks every run of every case passes.
fn check(case: &Case, r: &Ran) {
    let w = r.where_();
    // The plan is met by consecutive points, and TAP agrees with the report.
    let mut lines = r.tap.lines();
    assert_eq!(lines.next(), Some("TAP version 13"), "{w}");
    let plan = lines.next().unwrap_or("");
    let points: Vec<&str> = lines
        .filter(|l| l.starts_with("ok ") || l.starts_with("not ok "))
        .collect();
    assert_eq!(plan, format!("1..{}", points.len()), "{w}");
    assert_eq!(points.len(), r.report.points.len(), "{w}");
    for (i, (line, p)) in points.iter().zip(&r.report.points).enumerate() {
        let head = format!("{} {} - ", if p.ok { "ok" } else { "not ok" }, i + 1);
        assert!(line.starts_with(&head), "{w}point {}: {line}", i + 1);
        assert_eq!(p.number as usize, i + 1, "{w}");
    }
    // The outcome of each tester's points.
    for (tester, want) in case.points {
        let got: Vec<&str> = points
            .iter()
            .zip(&r.report.points)
            .filter(|(_, p)| p.tester == *tester)
            .map(|(l, _)| outcome_of(l))
            .collect();
        assert_eq!(got.join(" "), *want, "{w}tester {tester}");
    }
    let listed: usize = case
        .points
        .iter()
        .map(|(_, p)| p.split_whitespace().count())
        .sum();
    assert_eq!(listed, r.report.points.len(), "{w}every point is listed");
    for (tester, k, text) in case.messages {
        let ps = r.points_of(tester);
        let p = ps
            .get(*k)
            .unwrap_or_else(|| panic!("{w}tester {tester} has no point {k}"));
        let t = point_text(p);
        assert!(
            t.contains(text),
            "{w}point {k} of {tester} should contain {text:?}:\n{t}"
        );
    }
    assert_eq!(r.report.exit_code(), case.exit, "{w}exit code");
    // Far below the deadline the runner would reach if it waited wrongly.
    let limit = Duration::from_millis(case.within_ms + case.interrupt_ms.unwrap_or(0));
    assert!(
        r.elapsed < limit,
        "{w}took {:?} (limit {limit:?})",
        r.elapsed
    );
    // The record.
    assert!(r.trace.complete, "{w}the trace is not complete");
    let v = dtest_trace::validate(&r.trace);
    assert!(v.is_empty(), "{w}trace violations: {v:?}");
    assert_eq!(r.report.record_error, None, "{w}");
    for t in ["t1.out", "t1.err", "t1.in"] {
        let log = std::fs::read(r.dir.path().join(t)).unwrap_or_default();
        assert!(!log.contains(&0x1e), "{w}a marker byte leaked into {t}");
    }
    assert!(
        !r.traced_output().contains('\u{1e}'),
        "{w}a marker byte leaked into the trace"
    );
    if let Some(f) = case.extra {
        f(r);
    }
}

// ---------------------------------------------------------------------------
// The cases

const CASES: &[Case] = &[
    // The shell dies while an expect waits: the expect ends at once.
    Case {
        name: "drop_mid_expect",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { run = "out hello; wait 100; drop" },
  { expect = "never", timeout = "20s" },
  { run = "out after" },
]
"#,
        points: &[("t1", "ok not-ok skip")],
        messages: &[
            ("t1", 1, "closed before /never/ matched"),
            ("t1", 1, "last_lines: hello"),
            ("t1", 2, "tester aborted"),
        ],
        exit: 1,
        within_ms: 5000,
        ..CASE
    },
    Case {
        name: "shell_exits_mid_expect",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { run = "out hello; wait 100; drop 7" },
  { expect = "never", timeout = "20s" },
]
"#,
        points: &[("t1", "ok not-ok")],
        messages: &[(
            "t1",
            1,
            "the session's shell exited (status 7) before /never/",
        )],
        exit: 1,
        within_ms: 5000,
        ..CASE
    },
    Case {
        name: "connection_lost_mid_expect",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { run = "out hello; wait 100; lose" },
  { expect = "never", timeout = "20s" },
]
"#,
        points: &[("t1", "ok not-ok")],
        messages: &[("t1", 1, "the connection was lost (")],
        exit: 1,
        within_ms: 5000,
        ..CASE
    },
    // A `run` after the shell died fails, saying why.
    Case {
        name: "run_after_shell_exit",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { run = "out bye; drop 3" },
  { wait = "20s" },
  { run = "out x" },
]
"#,
        points: &[("t1", "ok ok not-ok")],
        messages: &[("t1", 2, "shell exited (status 3)")],
        exit: 1,
        ..CASE
    },
    // The command ended without the pattern: the expect fails at once,
    // not at its deadline.
    Case {
        name: "expect_after_command_ended",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { run = "out a; wait 50; exit 3" },
  { expect = "never", timeout = "20s", on_fail = "continue" },
  { wait = true, status = 3 },
  { run = "exit 3" },
  { wait = true },
  { expect = "never", timeout = "20s" },
]
"#,
        points: &[("t1", "ok not-ok ok ok ok not-ok")],
        messages: &[
            (
                "t1",
                1,
                "command ended with status 3 before the pattern appeared",
            ),
            ("t1", 1, "command_ended: status 3"),
            (
                "t1",
                5,
                "command ended with status 3 before the pattern appeared",
            ),
        ],
        exit: 1,
        within_ms: 5000,
        ..CASE
    },
    // INT and TERM are ignored; KILL ends the command.
    Case {
        name: "terminate_stubborn",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { run = "out up; stubborn" },
  { expect = "up" },
  { terminate = "INT", timeout = "100ms" },
  { wait = true, status = 137 },
]
"#,
        points: &[("t1", "ok ok ok ok")],
        // The point is named after the step, not after how it went (the
        // signals are in the trace, the status is checked by the wait).
        messages: &[("t1", 2, "t1: terminate (INT)")],
        within_ms: 4000,
        extra: Some(|r| {
            let log = &r.mock.opened()[0];
            // Each signal but KILL is followed by a CONT (a paused command
            // receives nothing else until continued).
            let all = log.signals();
            let sigs = without_cont(&all);
            assert_eq!(
                all.iter().filter(|s| **s == Signal::Cont).count(),
                2,
                "{}",
                r.where_()
            );
            let written = log.written_text();
            if r.pty {
                // INT is the interrupt character on a pty.
                assert_eq!(sigs, [Signal::Term, Signal::Kill], "{}", r.where_());
                assert!(written.contains('\u{3}'), "{}", r.where_());
            } else {
                assert_eq!(
                    sigs,
                    [Signal::Int, Signal::Term, Signal::Kill],
                    "{}",
                    r.where_()
                );
                assert!(!written.contains('\u{3}'), "{}", r.where_());
            }
            let signals: Vec<&str> = r
                .trace
                .events
                .iter()
                .filter_map(|e| match &e.data {
                    EventData::Signal { name } if e.dir == Dir::Send => Some(name.as_str()),
                    _ => None,
                })
                .collect();
            assert_eq!(signals, ["INT", "TERM", "KILL"], "{}", r.where_());
        }),
        ..CASE
    },
    // A command that ends on INT: no TERM.
    Case {
        name: "terminate_ends_on_int",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { run = "out up; hang" },
  { expect = "up" },
  { terminate = true, timeout = "10s" },
  { wait = true, status = 130 },
  { terminate = "TERM" },
]
"#,
        points: &[("t1", "ok ok ok ok ok")],
        messages: &[
            ("t1", 2, "t1: terminate (INT)"),
            ("t1", 4, "t1: terminate (TERM)"),
        ],
        within_ms: 5000,
        extra: Some(|r| {
            let sigs = without_cont(&r.mock.opened()[0].signals());
            let want: &[Signal] = if r.pty { &[] } else { &[Signal::Int] };
            assert_eq!(sigs, want, "{}", r.where_());
        }),
        ..CASE
    },
    // terminate right after run: the signal waits until the command began.
    Case {
        name: "terminate_right_after_run",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { run = "hang" },
  { terminate = "TERM", timeout = "10s" },
  { wait = true, status = 143 },
]
"#,
        points: &[("t1", "ok ok ok")],
        messages: &[("t1", 1, "t1: terminate (TERM)")],
        within_ms: 5000,
        ..CASE
    },
    // An open that blocks is given up within 100 ms of the interrupt.
    Case {
        name: "slow_open_interrupted",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://slow"
steps = [
  { run = "out x" },
  { expect = "x" },
]

[[tester]]
name = "t2"
host = "mock://ok"
steps = [
  { run = "hang" },
  { wait = "20s" },
  { run = "out z" },
]
"#,
        points: &[("t1", "int int"), ("t2", "ok not-ok int")],
        messages: &[("t1", 0, "interrupted"), ("t2", 1, "interrupted by SIGINT")],
        interrupt_ms: Some(300),
        exit: 130,
        // The slow open gives up by itself after 5 s.
        within_ms: 2000,
        extra: Some(|r| {
            assert_eq!(r.report.interrupted, Some(Signal::Int), "{}", r.where_());
            assert!(
                r.tap.contains("\n# interrupted by SIGINT"),
                "{}",
                r.where_()
            );
        }),
        ..CASE
    },
    // A failed open fails the tester's first point, skips the others and
    // breaks, at once, the barriers it would have joined.
    Case {
        name: "failed_open_breaks_barrier",
        toml: r#"
[defaults]
barrier_timeout = "30s"

[[tester]]
name = "t1"
host = "mock://fail"
steps = [
  { run = "out x" },
  { barrier = "b" },
  { expect = "x" },
]

[[tester]]
name = "t2"
host = "mock://ok"
steps = [
  { run = "out y" },
  { barrier = "b" },
  { run = "out z" },
]
"#,
        points: &[("t1", "not-ok skip skip"), ("t2", "ok not-ok skip")],
        messages: &[
            ("t1", 0, "cannot open session on /bin/sh on mock://fail"),
            ("t1", 1, "no session"),
            ("t2", 1, "barrier broken: t1 could not open its session"),
        ],
        exit: 1,
        within_ms: 5000,
        extra: Some(|r| {
            let p = r.points_of("t1")[0];
            let t = point_text(p);
            assert_eq!(
                t.matches("cannot open session").count(),
                1,
                "{}{t}",
                r.where_()
            );
            let line = r
                .tap
                .lines()
                .find(|l| l.starts_with("not ok") && l.contains("t1: run"))
                .unwrap_or("");
            let block: String = r
                .tap
                .split(line)
                .nth(1)
                .and_then(|rest| rest.split("\n  ...").next())
                .unwrap_or("")
                .to_string();
            assert_eq!(
                format!("{line}{block}")
                    .matches("cannot open session")
                    .count(),
                1,
                "{}",
                r.where_()
            );
            assert!(
                r.log("t1", "err").contains("cannot open session"),
                "{}",
                r.where_()
            );
        }),
        ..CASE
    },
    // A tester that aborts breaks the barrier its partner waits at.
    Case {
        name: "dying_tester_breaks_barrier",
        toml: r#"
[defaults]
barrier_timeout = "30s"

[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { run = "wait 100; exit 1" },
  { wait = true, status = 0 },
  { barrier = "b" },
]

[[tester]]
name = "t2"
host = "mock://ok"
steps = [
  { barrier = "b" },
  { run = "out z" },
]
"#,
        points: &[("t1", "ok not-ok skip"), ("t2", "not-ok skip")],
        messages: &[
            ("t1", 1, "expected status 0, got 1"),
            ("t2", 0, "barrier broken: t1 aborted"),
        ],
        exit: 1,
        within_ms: 5000,
        ..CASE
    },
    // abort-all stops the other tester's running step and skips the rest.
    Case {
        name: "abort_all_stops_the_others",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { run = "wait 100; exit 1" },
  { wait = true, status = 0, on_fail = "abort-all" },
  { run = "out x" },
]

[[tester]]
name = "t2"
host = "mock://ok"
steps = [
  { run = "hang" },
  { wait = "20s" },
  { run = "out z" },
]
"#,
        points: &[("t1", "ok not-ok skip"), ("t2", "ok not-ok skip")],
        messages: &[
            ("t1", 2, "tester aborted the run"),
            ("t2", 1, "t1 aborted the run"),
            ("t2", 2, "run aborted by t1"),
        ],
        exit: 1,
        within_ms: 5000,
        ..CASE
    },
    // send with no command running is refused (the shell would run it);
    // the session is still in step afterwards.
    Case {
        name: "send_to_idle_shell_refused",
        toml: r#"
[defaults]
on_fail = "continue"

[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { send = "SECRET-LINE\n" },
  { run = "out a; exit 4" },
  { wait = true, status = 4 },
  { send = "SECRET-LINE\n" },
  { run = "exit 5" },
  { wait = "20s", status = 5 },
]
"#,
        points: &[("t1", "not-ok ok ok not-ok ok ok")],
        messages: &[
            ("t1", 0, "no command is running"),
            ("t1", 3, "no command is running"),
        ],
        exit: 1,
        extra: Some(|r| {
            let w = r.mock.opened()[0].written_text();
            assert!(!w.contains("SECRET-LINE"), "{}{w}", r.where_());
            assert!(!r.log("t1", "in").contains("SECRET-LINE"), "{}", r.where_());
        }),
        ..CASE
    },
    // send reaches the running command.
    Case {
        name: "send_to_running_command",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { run = "read; read; exit 5" },
  { send = "hello\n" },
  { expect = "read: hello" },
  { send = "pass\n", secret = true },
  { wait = true, status = 5 },
]
"#,
        points: &[("t1", "ok ok ok ok ok")],
        extra: Some(|r| {
            let inp = r.log("t1", "in");
            assert!(
                inp.contains("hello") && !inp.contains("pass"),
                "{}{inp}",
                r.where_()
            );
            assert!(!r.traced_output().is_empty(), "{}", r.where_());
            // The secret was delivered, but is only in the command's output.
            assert!(r.log("t1", "out").contains("read: pass"), "{}", r.where_());
        }),
        ..CASE
    },
    // Output that arrives while the tester sleeps is logged and traced as
    // it arrives, before the sleep's verdict.
    Case {
        name: "output_while_sleeping",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { run = "wait 50; out during-sleep; wait 50; err also-during; out last; exit 0" },
  { sleep = "500ms" },
  { expect = "last" },
  { wait = true, status = 0 },
]
"#,
        points: &[("t1", "ok ok ok ok")],
        within_ms: 5000,
        extra: Some(|r| {
            let w = r.where_();
            let sleep = r.points_of("t1")[1].number;
            let verdict = r.verdict_time(sleep);
            for text in ["during-sleep", "also-during", "last"] {
                assert!(r.output_time(text) < verdict, "{w}{text}");
            }
            assert!(r.log("t1", "out").contains("during-sleep"), "{w}");
            let err_log = if r.pty { "out" } else { "err" };
            assert!(r.log("t1", err_log).contains("also-during"), "{w}");
            // The exit is traced before the sleep ends, too.
            let exit = r
                .trace
                .events
                .iter()
                .find(|e| matches!(e.data, EventData::Exit { .. }))
                .map(|e| e.time_ns)
                .unwrap();
            assert!(exit < verdict, "{w}");
        }),
        ..CASE
    },
    // Markers split at every byte, both streams, several commands.
    Case {
        name: "markers_split_everywhere",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { run = "out alpha; err beta; out gamma; exit 0" },
  { expect = "gamma" },
  { wait = true, status = 0 },
  { run = "exit 7" },
  { wait = true, status = 7 },
  { run = "out port=4242 end" },
  { expect = 'port=(?P<port>\d+) ' },
  { run = "out got ${port}" },
  { expect = "got 4242" },
]
"#,
        points: &[("t1", "ok ok ok ok ok ok ok ok ok")],
        chunk: 1,
        extra: Some(|r| {
            let out = r.log("t1", "out");
            assert!(
                out.contains("alpha") && out.contains("gamma"),
                "{}",
                r.where_()
            );
            let beta = if r.pty { "out" } else { "err" };
            assert!(r.log("t1", beta).contains("beta"), "{}", r.where_());
        }),
        ..CASE
    },
    // On pipes stderr written just before the end is never missed.
    Case {
        name: "stderr_before_end",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { run = "err late-err; exit 0" },
  { wait = true, status = 0 },
  { expect = "late-err" },
]
"#,
        points: &[("t1", "ok ok ok")],
        chunk: 3,
        ..CASE
    },
    Case {
        name: "expect_timeout",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { run = "out something; hang" },
  { expect = "nothing", timeout = "200ms" },
  { run = "out x" },
]
"#,
        points: &[("t1", "ok not-ok skip")],
        messages: &[
            ("t1", 1, "timed out after 200ms"),
            ("t1", 1, "last_lines: something"),
        ],
        exit: 1,
        within_ms: 4000,
        ..CASE
    },
    Case {
        name: "interrupt_during_expect",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { run = "hang" },
  { expect = "x", timeout = "20s" },
  { run = "out y" },
]
"#,
        points: &[("t1", "ok not-ok int")],
        messages: &[("t1", 1, "interrupted by SIGINT")],
        interrupt_ms: Some(200),
        exit: 130,
        within_ms: 2000,
        ..CASE
    },
    Case {
        name: "previous_command_still_running",
        toml: r#"
[defaults]
wait_timeout = "200ms"

[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { run = "hang" },
  { run = "out x" },
]
"#,
        points: &[("t1", "ok not-ok")],
        messages: &[("t1", 1, "the previous command is still running after 200ms")],
        exit: 1,
        within_ms: 4000,
        ..CASE
    },
    Case {
        name: "wait_status_mismatch",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { run = "out some output; exit 2" },
  { wait = true, status = 0 },
]
"#,
        points: &[("t1", "ok not-ok")],
        messages: &[
            ("t1", 1, "expected status 0, got 2"),
            ("t1", 1, "last_lines: some output"),
        ],
        exit: 1,
        ..CASE
    },
    Case {
        name: "unknown_command",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { run = "frobnicate now" },
  { wait = true, status = 127 },
  { expect = "not found" },
]
"#,
        points: &[("t1", "ok ok ok")],
        ..CASE
    },
    // What a shell prints before it is ready is logged, not expected.
    Case {
        name: "banner_is_not_command_output",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
banner = "Welcome to the mock"
steps = [
  { run = "out a" },
  { expect = "Welcome", timeout = "20s" },
]
"#,
        points: &[("t1", "ok not-ok")],
        messages: &[(
            "t1",
            1,
            "command ended with status 0 before the pattern appeared",
        )],
        exit: 1,
        extra: Some(|r| {
            assert!(
                r.log("t1", "out").starts_with("Welcome to the mock"),
                "{}",
                r.where_()
            );
        }),
        ..CASE
    },
    // A shell that never answers the protocol: the run's timeout ends it.
    Case {
        name: "silent_shell_run_timeout",
        toml: r#"
timeout = "400ms"

[[tester]]
name = "t1"
host = "mock://silent"
steps = [
  { run = "out x" },
  { expect = "x" },
]
"#,
        points: &[("t1", "int int")],
        exit: 1,
        // The connect timeout is 30 s.
        within_ms: 3000,
        extra: Some(|r| {
            assert!(r.report.timed_out, "{}", r.where_());
            assert!(
                r.tap.contains("# run timeout (400ms) reached"),
                "{}",
                r.where_()
            );
        }),
        ..CASE
    },
    // More than the backlog arrives while no expect waits: the expect
    // still finds the end of it, and says what was dropped when it fails.
    Case {
        name: "flood_overflows_the_backlog",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
record_output = false
steps = [
  { run = "flood 1500000; out tail-mark" },
  { wait = true, status = 0 },
  { expect = "tail-mark" },
  { run = "flood 1500000" },
  { wait = true, status = 0 },
  { expect = "never" },
]
"#,
        points: &[("t1", "ok ok ok ok ok not-ok")],
        messages: &[("t1", 5, "were dropped from the expect backlog")],
        exit: 1,
        chunk: 65536,
        ptys: &[false],
        ..CASE
    },
    // Pipes: the two end markers may come in either order.
    Case {
        name: "stdout_end_marker_first",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
ends = "stdout-first"
steps = [
  { run = "err e1; out o1; exit 3" },
  { wait = true, status = 3 },
  { expect = "e1" },
  { run = "exit 4" },
  { wait = true, status = 4 },
]
"#,
        points: &[("t1", "ok ok ok ok ok")],
        chunk: 2,
        ptys: &[false],
        ..CASE
    },
    // Pipes: a command that closes the shell's stderr loses its stderr end
    // marker; the command still ends (after the capture's grace).
    Case {
        name: "stderr_closed_by_the_command",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { run = "closeerr; out x; exit 4" },
  { wait = "20s", status = 4 },
  { expect = "x" },
]
"#,
        points: &[("t1", "ok ok ok")],
        ptys: &[false],
        within_ms: 6000,
        ..CASE
    },
    // Output takes 30 ms to arrive (a network): nothing changes.
    Case {
        name: "latency",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
latency_ms = 30
steps = [
  { run = "out a; exit 2" },
  { expect = "a" },
  { wait = true, status = 2 },
  { run = "read; exit 0" },
  { send = "in\n" },
  { expect = "read: in" },
  { run = "out up; hang" },
  { expect = "up" },
  { terminate = true },
  { wait = true, status = 130 },
]
"#,
        points: &[("t1", "ok ok ok ok ok ok ok ok ok ok")],
        ..CASE
    },
    // A point's description comes from the step's definition only: the
    // same whether the step passes or fails, whatever it waited or saw,
    // and from run to run (run-time values stay as written).
    Case {
        name: "stable_descriptions",
        toml: r#"
[vars]
d = "${run_dir}/x"
[defaults]
on_fail = "continue"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { ok = "in ${d} as ${tester}" },
  { run = "out port=42" },
  { expect = 'port=(?P<port>\d+)' },
  { ok = "port ${port}" },
  { wait = true },
  { run = "hang" },
  { expect = "never", timeout = "100ms" },
  { terminate = "INT" },
  { terminate = "INT" },
  { run = "out x; exit 3" },
  { wait = "5s", status = 0 },
  { barrier = "b", timeout = "100ms" },
]
[[tester]]
name = "t2"
host = "mock://ok"
steps = [
  { sleep = "300ms" },
  { barrier = "b" },
]
"#,
        points: &[
            ("t1", "ok ok ok ok ok ok not-ok ok ok ok not-ok not-ok"),
            ("t2", "ok not-ok"),
        ],
        messages: &[
            ("t1", 6, "timed out after 100ms"),
            ("t1", 10, "expected status 0, got 3"),
            ("t1", 11, "barrier broken"),
        ],
        exit: 1,
        extra: Some(|r| {
            let got: Vec<&str> = r
                .report
                .points
                .iter()
                .map(|p| p.description.as_str())
                .filter(|d| d.starts_with("t1"))
                .collect();
            assert_eq!(
                got,
                [
                    "t1: in ${run_dir}/x as t1",
                    "t1: run `out port=42`",
                    "t1: expect /port=(?P<port>\\d+)/",
                    "t1: port ${port}",
                    "t1: wait for the command's end",
                    "t1: run `hang`",
                    "t1: expect /never/",
                    "t1: terminate (INT)",
                    "t1: terminate (INT)",
                    "t1: run `out x; exit 3`",
                    "t1: wait for the command's end (status 0)",
                    "t1: barrier \"b\"",
                ],
                "{}",
                r.where_()
            );
            // The trace's verdicts carry the same descriptions.
            let traced: Vec<&str> = r
                .trace
                .events
                .iter()
                .filter_map(|e| match &e.data {
                    EventData::Verdict { description, .. } => Some(description.as_str()),
                    _ => None,
                })
                .filter(|d| d.starts_with("t1"))
                .collect();
            assert_eq!(traced, got, "{}", r.where_());
        }),
        ..CASE
    },
    Case {
        name: "put_and_get",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { put = "some/file.txt", to = "remote.txt" },
  { get = "remote.txt" },
]
"#,
        points: &[("t1", "ok ok")],
        messages: &[
            ("t1", 0, "t1: put some/file.txt -> remote.txt"),
            ("t1", 1, "t1: get remote.txt -> remote.txt"),
        ],
        extra: Some(|r| {
            let kinds: Vec<&str> = r
                .sent()
                .filter_map(|e| match &e.data {
                    EventData::Put(_) => Some("put"),
                    EventData::Get(_) => Some("get"),
                    _ => None,
                })
                .collect();
            assert_eq!(kinds, ["put", "get"], "{}", r.where_());
        }),
        ..CASE
    },
];

/// Runs the cases (all, or the one `DTEST_CASE` names), each on a pty and
/// on pipes, a few at a time; reports every failure.
#[test]
fn cases() {
    let only = std::env::var("DTEST_CASE").ok();
    let jobs: Vec<(&Case, bool)> = CASES
        .iter()
        .filter(|c| only.as_deref().is_none_or(|o| o == c.name))
        .flat_map(|c| c.ptys.iter().map(move |&pty| (c, pty)))
        .collect();
    assert!(!jobs.is_empty(), "no case named {only:?}");
    let next = Mutex::new(jobs.into_iter());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let job = next.lock().unwrap().next();
                let Some((case, pty)) = job else { return };
                let r = std::panic::catch_unwind(|| check(case, &run_case(case, pty)));
                if let Err(e) = r {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    let mode = if pty { "pty" } else { "pipes" };
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("{} ({mode}): {msg}", case.name));
                }
            });
        }
    });
    let f = failures.into_inner().unwrap();
    assert!(f.is_empty(), "{} failed:\n\n{}", f.len(), f.join("\n\n"));
}

#[test]
fn case_names_are_unique() {
    let mut names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    names.sort_unstable();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n);
}

#[test]
fn mock_hosts_are_checked_when_loading() {
    let mock = MockTransport::new();
    let opts = LoadOptions {
        registry: Some(registry(&mock)),
        ..LoadOptions::default()
    };
    let text = "name = \"x\"\n[[tester]]\nname = \"t\"\nhost = \"mock://nope\"\n";
    let e = crate::load_str(text, "x.toml", PathBuf::from("."), &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown mock behaviour `nope`"), "{e}");
    // A registry without the mock does not know the scheme.
    let e = crate::load_str(text, "x.toml", PathBuf::from("."), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown host scheme `mock`"), "{e}");
}

/// An unknown mock option is an open error of that tester only.
#[test]
fn unknown_transport_option_is_refused_at_load() {
    // A tester key the transport does not take is refused before anything
    // runs, where it is written (it used to fail the open, mid-run).
    let text = "name = \"o\"\n[[tester]]\nname = \"t1\"\nhost = \"mock://ok\"\ncolour = \"blue\"\nsteps = [{ run = \"out x\" }]\n";
    let mock = MockTransport::new();
    let opts = LoadOptions {
        registry: Some(registry(&mock)),
        ..LoadOptions::default()
    };
    let e = crate::load_str(text, "o.toml", PathBuf::from("."), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("o.toml:5:1: unknown key `colour` in a tester"),
        "{e}"
    );
    assert!(e.contains("a `mock` host also takes:"), "{e}");
    assert!(mock.opened().is_empty());
}

// ---------------------------------------------------------------------------
// Runner bugs the mock shows (these fail until the bug is fixed).

/// Runs a case on each of its modes and checks it.
fn check_case(case: &Case) {
    for &pty in case.ptys {
        check(case, &run_case(case, pty));
    }
}

/// On a pty, an interrupt character that reaches the shell just after the
/// command ended makes the shell print a spare prompt (an end marker with
/// status 130). Over a network (output arrives late) and with a transport
/// that cannot tell whether a job holds the terminal (`foreground_job`
/// `None`, as the SSH transports), `terminate` sends Ctrl-C to a command
/// that has already ended; the spare prompt then arrives after the next
/// `run` set `running`, and the capture takes it as that command's end:
/// the next command "ends" with SIGINT before it even started.
#[test]
fn bug_spare_prompt_taken_as_the_next_commands_end() {
    check_case(&Case {
        name: "spare_prompt",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
latency_ms = 200
foreground_job = "unknown"
steps = [
  { run = "wait 10; exit 0" },
  { terminate = true, timeout = "5s" },
  { run = "out next; exit 0" },
  { wait = true, status = 0 },
  { expect = "next" },
]
"#,
        points: &[("t1", "ok ok ok ok ok")],
        messages: &[("t1", 3, "t1: wait for the command's end (status 0)")],
        ptys: &[true],
        ..CASE
    });
}

/// `send` after the session's shell died says "no command is running"
/// (and tells the user to start one with `run`), instead of saying that
/// the shell exited, as `run` and `expect` do.
#[test]
fn bug_send_after_the_shell_died_misdiagnosed() {
    check_case(&Case {
        name: "send_after_death",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [
  { run = "out bye; drop 3" },
  { sleep = "200ms" },
  { send = "x\n" },
]
"#,
        points: &[("t1", "ok ok not-ok")],
        messages: &[("t1", 2, "exited (status 3)")],
        exit: 1,
        ..CASE
    });
}

/// The trace's `close` event of a session dtest closed normally says
/// "the session's shell exited (status 0)", as for a shell that died on
/// its own: `ShellSession::gone` is always `Some` after `close` (the
/// capture has seen the channel's end), so the tester's
/// "closed (shell status ...)" reason is never used.
#[test]
fn bug_close_reason_of_a_normal_close() {
    check_case(&Case {
        name: "close_reason",
        toml: r#"
[[tester]]
name = "t1"
host = "mock://ok"
steps = [{ run = "out a" }, { wait = true }]

[[tester]]
name = "t2"
host = "mock://ok"
steps = [{ run = "out bye; drop 7" }, { wait = true }]
"#,
        points: &[("t1", "ok ok"), ("t2", "ok ok")],
        extra: Some(|r| {
            let reasons: Vec<(String, &str)> = r
                .sent()
                .filter_map(|e| match &e.data {
                    EventData::Close { reason } => {
                        Some((r.trace.actor_name(e.actor).to_string(), reason.as_str()))
                    }
                    _ => None,
                })
                .collect();
            for (actor, reason) in &reasons {
                if actor.starts_with("t1@") {
                    assert!(
                        reason.starts_with("closed"),
                        "{}a normal close recorded as {reason:?}",
                        r.where_()
                    );
                } else {
                    assert!(
                        reason.contains("exited (status 7)"),
                        "{}{reason}",
                        r.where_()
                    );
                }
            }
            assert_eq!(reasons.len(), 2, "{}", r.where_());
        }),
        ..CASE
    });
}

/// The signals delivered, without the CONT that follows each of them.
fn without_cont(sigs: &[Signal]) -> Vec<Signal> {
    sigs.iter()
        .copied()
        .filter(|s| *s != Signal::Cont)
        .collect()
}
