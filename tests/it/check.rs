//! End-to-end tests of `dtest check`: verdicts on traces with known verdicts
//! (an md5-shaped run recorded here, synthetic traces), exit codes, the parse
//! error format, the JSON report, `--property`, and truncated traces.

use std::path::{Path, PathBuf};
use std::process::Output;

use dtest_trace::{Actor, ActorKind, EventData, ExitStatus, Header, Recorder, Stream, Transfer};

use crate::common::{dtest, repo_root, run, show};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn actors() -> Vec<Actor> {
    let a = |id, name: &str, kind| Actor {
        id,
        name: name.into(),
        kind,
        host: "local".into(),
    };
    vec![
        a(0, "master", ActorKind::Master),
        a(1, "tester1", ActorKind::Tester),
        a(2, "tester1@local", ActorKind::Session),
        a(3, "tester2", ActorKind::Tester),
        a(4, "tester2@local", ActorKind::Session),
    ]
}

fn transfer(local: &str, remote: &str) -> Transfer {
    Transfer {
        local: local.into(),
        remote: remote.into(),
        size: 10,
        sha256: [0; 32],
    }
}

/// Records a run shaped like the md5 example. `md5_before_barrier`: tester2
/// computes its sum before the barrier (a broken run); `finish`: whether the
/// run records its `end` event (false: a killed run, a truncated trace).
fn md5_trace(dir: &Path, name: &str, md5_before_barrier: bool, finish: bool) -> PathBuf {
    let path = dir.join(name);
    let rec = Recorder::create(&path, Header::new("md5-copy", actors())).unwrap();
    let cmd = |rec: &Recorder, t: u32, s: u32, line: &str, out: Option<&str>| {
        rec.message(
            t,
            s,
            EventData::Start {
                command: line.into(),
            },
        )
        .unwrap();
        if let Some(out) = out {
            rec.message(
                s,
                t,
                EventData::Output {
                    bytes: out.as_bytes().to_vec(),
                    stream: Stream::Stdout,
                },
            )
            .unwrap();
            rec.local(
                t,
                EventData::Match {
                    pattern: "md5done".into(),
                    matched: "md5done".into(),
                    captures: vec![],
                },
            )
            .unwrap();
        }
        rec.message(
            s,
            t,
            EventData::Exit {
                status: ExitStatus::Code(0),
            },
        )
        .unwrap();
    };
    rec.message(
        1,
        2,
        EventData::Put(transfer("md5script.sh", "md5script.sh")),
    )
    .unwrap();
    rec.message(
        3,
        4,
        EventData::Put(transfer("md5script.sh", "md5script.sh")),
    )
    .unwrap();
    cmd(&rec, 1, 2, "chmod +x md5script.sh", None);
    cmd(
        &rec,
        1,
        2,
        "./md5script.sh source.bin source.md5",
        Some("md5done\n"),
    );
    if md5_before_barrier {
        cmd(
            &rec,
            3,
            4,
            "./md5script.sh dest.bin dest.md5",
            Some("md5done\n"),
        );
    }
    rec.message(2, 1, EventData::Get(transfer("source_file", "source.bin")))
        .unwrap();
    rec.message(2, 1, EventData::Get(transfer("res1", "source.md5")))
        .unwrap();
    let enter = |_tester: u32| EventData::BarrierEnter {
        name: "source gotten".into(),
    };
    rec.message(3, 0, enter(3)).unwrap();
    rec.message(1, 0, enter(1)).unwrap();
    for t in [1, 3] {
        rec.message(
            0,
            t,
            EventData::BarrierLeave {
                name: "source gotten".into(),
                participants: vec!["tester1".into(), "tester2".into()].into(),
            },
        )
        .unwrap();
    }
    rec.message(3, 4, EventData::Put(transfer("source_file", "dest.bin")))
        .unwrap();
    if !md5_before_barrier {
        cmd(
            &rec,
            3,
            4,
            "./md5script.sh dest.bin dest.md5",
            Some("md5done\n"),
        );
    }
    rec.message(4, 3, EventData::Get(transfer("res2", "dest.md5")))
        .unwrap();
    rec.local(
        3,
        EventData::Custom {
            name: "compare res1 with res2".into(),
            status: 0,
            output: String::new(),
        },
    )
    .unwrap();
    for (t, number) in [(1, 1), (3, 2)] {
        rec.local(
            t,
            EventData::Verdict {
                number,
                ok: true,
                description: "done".into(),
                directive: None,
                reason: String::new(),
            },
        )
        .unwrap();
    }
    if finish {
        rec.finish(0, true, "2 tests, all ok").unwrap();
    } else {
        rec.flush().unwrap();
    }
    drop(rec);
    path
}

fn md5_spec() -> PathBuf {
    repo_root().join("properties/md5.spec")
}

/// `(property, verdict word)` pairs of a text report.
fn verdicts(o: &Output) -> Vec<(String, String)> {
    stdout(o)
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.contains(" checked: "))
        .map(|l| {
            let mut w = l.split_whitespace();
            let v = w.next().unwrap_or_default().to_string();
            (w.next().unwrap_or_default().to_string(), v)
        })
        .collect()
}

#[test]
fn md5_spec_holds_on_a_good_run() {
    let dir = tempfile::tempdir().unwrap();
    let t = md5_trace(dir.path(), "good.dtrace", false, true);
    let o = run(dtest().arg("check").arg(md5_spec()).arg(&t));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let v = verdicts(&o);
    assert_eq!(v.len(), 8, "{}", show(&o));
    assert!(v.iter().all(|(_, w)| w == "holds"), "{}", show(&o));
}

#[test]
fn md5_spec_catches_md5_before_the_barrier() {
    let dir = tempfile::tempdir().unwrap();
    let t = md5_trace(dir.path(), "bad.dtrace", true, true);
    let o = run(dtest().arg("check").arg(md5_spec()).arg(&t));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let v = verdicts(&o);
    let word = |p: &str| v.iter().find(|(n, _)| n == p).map(|(_, w)| w.clone());
    assert_eq!(
        word("md5_after_barrier").as_deref(),
        Some("VIOLATED"),
        "{}",
        show(&o)
    );
    assert_eq!(
        word("md5_causally_after_entry").as_deref(),
        Some("VIOLATED")
    );
    assert_eq!(word("sums_not_concurrent").as_deref(), Some("VIOLATED"));
    assert_eq!(word("commands_succeed").as_deref(), Some("holds"));
    assert_eq!(word("run_ok").as_deref(), Some("holds"));
    // The deciding event is named with its actor, kind and text.
    assert!(
        stdout(&o).contains("(tester2 match \"md5done\")"),
        "{}",
        show(&o)
    );
}

#[test]
fn json_report_names_the_deciding_events() {
    let dir = tempfile::tempdir().unwrap();
    let t = md5_trace(dir.path(), "bad.dtrace", true, true);
    let o = run(dtest()
        .arg("check")
        .arg(md5_spec())
        .arg(&t)
        .args(["--format", "json"]));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    assert_eq!(v["version"], 1);
    assert_eq!(v["summary"]["checked"], 8);
    let results = v["results"].as_array().unwrap();
    let bad = results
        .iter()
        .find(|r| r["property"] == "md5_after_barrier")
        .unwrap();
    assert_eq!(bad["verdict"], "violated");
    let events = bad["events"].as_array().unwrap();
    assert!(!events.is_empty());
    assert_eq!(bad["details"][0]["kind"], "match");
    assert_eq!(bad["details"][0]["actor"], "tester2");
    let top: Vec<u64> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_u64().unwrap())
        .collect();
    assert!(top.contains(&events[0].as_u64().unwrap()));
    for r in results.iter().filter(|r| r["verdict"] == "holds") {
        assert_eq!(r["events"].as_array().unwrap().len(), 0);
    }
}

#[test]
fn property_filter() {
    let dir = tempfile::tempdir().unwrap();
    let t = md5_trace(dir.path(), "bad.dtrace", true, true);
    let o = run(dtest().arg("check").arg(md5_spec()).arg(&t).args([
        "--property",
        "run_ok",
        "--property",
        "commands_succeed",
    ]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let names: Vec<String> = verdicts(&o).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["commands_succeed", "run_ok"]);

    let o = run(dtest()
        .arg("check")
        .arg(md5_spec())
        .arg(&t)
        .args(["--property", "nope"]));
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        stderr(&o).contains("no property named `nope`"),
        "{}",
        show(&o)
    );
}

#[test]
fn truncated_trace_is_inconclusive_for_the_future() {
    let dir = tempfile::tempdir().unwrap();
    let t = md5_trace(dir.path(), "cut.dtrace", false, false);
    let o = run(dtest().arg("check").arg(md5_spec()).arg(&t));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let v = verdicts(&o);
    let word = |p: &str| v.iter().find(|(n, _)| n == p).map(|(_, w)| w.clone());
    // Future-dependent: the missing part could still violate or satisfy it.
    assert_eq!(
        word("run_ok").as_deref(),
        Some("inconclusive"),
        "{}",
        show(&o)
    );
    assert_eq!(word("md5_after_barrier").as_deref(), Some("inconclusive"));
    // `F ... && G ...` where F is already satisfied but G is still open.
    assert_eq!(word("compare_ok").as_deref(), Some("inconclusive"));
    assert!(stdout(&o).contains("truncated"), "{}", show(&o));
    // A property decided by the events present is not inconclusive.
    let spec = dir.path().join("p.spec");
    std::fs::write(&spec, "property started: F start\nproperty never: G !put\n").unwrap();
    let o = run(dtest().arg("check").arg(&spec).arg(&t));
    assert_eq!(
        verdicts(&o),
        [
            ("started".to_string(), "holds".to_string()),
            ("never".to_string(), "VIOLATED".to_string())
        ],
        "{}",
        show(&o)
    );
}

#[test]
fn parse_errors_name_file_line_column_with_a_caret() {
    let dir = tempfile::tempdir().unwrap();
    let t = md5_trace(dir.path(), "good.dtrace", false, true);
    let spec = dir.path().join("bad.spec");
    std::fs::write(
        &spec,
        "# a comment\nproperty ok: F end\nproperty bad:\n    G (start -> F exti(_, _, status = 0))\n",
    )
    .unwrap();
    let o = run(dtest().arg("check").arg(&spec).arg(&t));
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = stderr(&o);
    let want = format!("{}:4:19: unknown event kind `exti`", spec.display());
    assert!(err.contains(&want), "{}", show(&o));
    assert!(
        err.contains("    G (start -> F exti(_, _, status = 0))"),
        "{}",
        show(&o)
    );
    let caret = err.lines().find(|l| l.trim() == "^").expect("a caret line");
    assert_eq!(
        caret.find('^'),
        err.lines()
            .find(|l| l.contains("exti("))
            .unwrap()
            .find("exti")
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(o.stdout.is_empty(), "nothing is checked on a bad spec");

    for (src, msg) in [
        (
            "property p: exit(_, _, stauts = 0)",
            "1:24: unknown field `stauts`",
        ),
        ("property p: F nope", "1:15: unknown let `nope`"),
    ] {
        std::fs::write(&spec, src).unwrap();
        let o = run(dtest().arg("check").arg(&spec).arg(&t));
        assert_eq!(o.status.code(), Some(2), "{}", show(&o));
        assert!(stderr(&o).contains(msg), "{}", show(&o));
    }
}

#[test]
fn bad_traces_and_missing_files_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.dtrace");
    std::fs::write(&junk, "not a trace at all").unwrap();
    let o = run(dtest().arg("check").arg(md5_spec()).arg(&junk));
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(stderr(&o).contains("junk.dtrace"), "{}", show(&o));
    let o = run(dtest()
        .arg("check")
        .arg(dir.path().join("missing.spec"))
        .arg(&junk));
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
}

#[test]
fn generic_spec_on_synthetic_traces() {
    let dir = tempfile::tempdir().unwrap();
    let mut traces = Vec::new();
    for seed in [1, 2] {
        let p = dir.path().join(format!("s{seed}.dtrace"));
        let o = run(dtest()
            .args([
                "trace",
                "synth",
                "--testers",
                "3",
                "--events",
                "3000",
                "--seed",
            ])
            .arg(seed.to_string())
            .arg("-o")
            .arg(&p));
        assert!(o.status.success(), "{}", show(&o));
        traces.push(p);
    }
    let o = run(dtest()
        .arg("check")
        .arg(repo_root().join("properties/generic.spec"))
        .args(&traces)
        .args(["--format", "json"]));
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2 * 7);
    // Synthetic runs never break barriers, and every barrier entry is left;
    // their outputs are random words, "panic" among them.
    for r in results {
        match r["property"].as_str().unwrap() {
            "barriers_never_broken" | "every_barrier_entry_left" => {
                assert_eq!(r["verdict"], "holds", "{r}")
            }
            "output_never_panics" => assert_eq!(r["verdict"], "violated", "{r}"),
            _ => {}
        }
    }
}

/// The md5 example's real trace (recorded by `dtest exec`): every property
/// of properties/md5.spec holds, and not vacuously.
#[test]
fn md5_spec_on_the_recorded_md5_trace() {
    let trace = repo_root().join("traces/md5.dtrace");
    let o = run(dtest().arg("check").arg(md5_spec()).arg(&trace));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(verdicts(&o).len(), 8, "{}", show(&o));
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("sanity.spec");
    std::fs::write(
        &spec,
        r#"
property has_md5done_b: F match(tester2, "md5done")
property has_leave: F barrier_leave(tester2, "source gotten")
property has_compare: F custom(_, "compare res1 with res2", status = 0)
property md5_before_leave: F (match(tester2, "md5done") && !O barrier_leave(tester2, "source gotten"))
property concurrent_md5: F (match(tester2, "md5done") && CC match(tester1, "md5done"))
property entry_not_causal: F (match(tester2, "md5done") && !CO barrier_enter(tester1, "source gotten"))
"#,
    )
    .unwrap();
    let o = run(dtest().arg("check").arg(&spec).arg(&trace));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let words: Vec<String> = verdicts(&o).into_iter().map(|(_, w)| w).collect();
    assert_eq!(
        words,
        ["holds", "holds", "holds", "VIOLATED", "VIOLATED", "VIOLATED"],
        "{}",
        show(&o)
    );
}

/// A run of one command whose output `out` is recorded in chunks cut at
/// `cuts` (byte offsets), then killed (`signal` KILL, exit by SIGKILL).
fn chunked_run(dir: &Path, name: &str, out: &str, cuts: &[usize]) -> PathBuf {
    let path = dir.join(name);
    let rec = Recorder::create(&path, Header::new("chunks", actors())).unwrap();
    rec.message(
        1,
        2,
        EventData::Start {
            command: "./server".into(),
        },
    )
    .unwrap();
    let mut at = 0;
    for &c in cuts.iter().chain([out.len()].iter()) {
        rec.message(
            2,
            1,
            EventData::Output {
                bytes: out.as_bytes()[at..c].to_vec(),
                stream: Stream::Stdout,
            },
        )
        .unwrap();
        at = c;
    }
    rec.message(
        1,
        2,
        EventData::Signal {
            name: "KILL".into(),
        },
    )
    .unwrap();
    rec.message(
        2,
        1,
        EventData::Exit {
            status: ExitStatus::Signal("KILL".into()),
        },
    )
    .unwrap();
    rec.finish(0, true, "1 test, all ok").unwrap();
    drop(rec);
    path
}

const SERVER_OUT: &str = "booting\nCERTI RTIG up and running\nrequest id=1\nrequest id=2\r\nCollision detected\nreply id=1\nbye";

const LINES_SPEC: &str = r#"
property up: F output(tester1, "CERTI RTIG up and running")
property no_collision: G !output(tester1, /Collision/)
property answered:
    forall r in output(tester1, /^request id=(\d+)$/):
        F output(tester1, /^reply id=(\d+)$/, $1 = r.$1)
property killed: F signal(tester1, "SIGKILL") && F signal(tester1, "KILL") && F exit(tester1, "SIGKILL")
property last_line: F output(tester1, "bye")
"#;

/// Verdict lines and the `event N (...)` lines with the index removed.
fn report_lines(o: &Output) -> (Vec<(String, String)>, Vec<String>) {
    // `event N (ACTOR KIND "TEXT"): MESSAGE`: the `(...)` part of the notes
    // about atoms (the events' indexes depend on the reads).
    let events = stdout(o)
        .lines()
        .filter_map(|l| {
            let l = l.trim_start().strip_prefix("event ")?;
            let (what, msg) = l[l.find(' ')? + 1..].split_once("): ")?;
            (msg.starts_with("matches") || msg.starts_with("with `r` bound"))
                .then(|| format!("{what})"))
        })
        .collect();
    (verdicts(o), events)
}

#[test]
fn output_is_matched_by_line_whatever_the_reads() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("lines.spec");
    std::fs::write(&spec, LINES_SPEC).unwrap();
    let whole = chunked_run(dir.path(), "whole.dtrace", SERVER_OUT, &[]);
    let o = run(dtest().arg("check").arg(&spec).arg(&whole));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let want = report_lines(&o);
    let word = |p: &str| want.0.iter().find(|(n, _)| n == p).unwrap().1.clone();
    assert_eq!(word("up"), "holds", "{}", show(&o));
    assert_eq!(word("no_collision"), "VIOLATED", "{}", show(&o));
    assert_eq!(word("answered"), "VIOLATED", "{}", show(&o));
    assert_eq!(word("killed"), "holds", "{}", show(&o));
    assert_eq!(word("last_line"), "holds", "{}", show(&o));
    // The report shows the line that matched, not the chunk.
    assert!(
        want.1.iter().any(|l| l.contains("\"Collision detected\"")),
        "{}",
        show(&o)
    );
    assert!(
        want.1.iter().any(|l| l.contains("\"request id=2\"")),
        "{}",
        show(&o)
    );
    let n = SERVER_OUT.len();
    for cuts in [
        (1..n).collect::<Vec<_>>(),
        vec![3, 30, 31, 47, 60, 80],
        SERVER_OUT.match_indices('\n').map(|(k, _)| k).collect(),
    ] {
        let t = chunked_run(dir.path(), "cut.dtrace", SERVER_OUT, &cuts);
        let o = run(dtest().arg("check").arg(&spec).arg(&t));
        assert_eq!(o.status.code(), Some(1), "{}", show(&o));
        let got = report_lines(&o);
        assert_eq!(got.0, want.0, "{cuts:?}\n{}", show(&o));
        let mut a = got.1.clone();
        let mut b = want.1.clone();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{cuts:?}\n{}", show(&o));
    }
}

#[test]
fn warnings_name_the_atom_and_the_trace_and_strict_makes_them_errors() {
    let dir = tempfile::tempdir().unwrap();
    let t = chunked_run(dir.path(), "run.dtrace", SERVER_OUT, &[10]);
    let spec = dir.path().join("w.spec");
    std::fs::write(
        &spec,
        "property collision:\n    G !output(billiard2, /Collision/)\n\
         property client: G (output(clinet, /x/) -> F exit)\n\
         property rtig: F output(tester1, \"RTIG up\") || true\n",
    )
    .unwrap();
    let o = run(dtest().arg("check").arg(&spec).arg(&t));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let err = stderr(&o);
    let file = spec.display().to_string();
    assert!(
        err.contains(&format!("{file}:2:8: warning: `output(billiard2, /Collision/)` on {}: the trace has no actor `billiard2` (its actors: master, tester1, tester1@local, tester2, tester2@local)", t.display())),
        "{}",
        show(&o)
    );
    assert!(
        err.contains(&format!("{file}:3:21: warning:")),
        "{}",
        show(&o)
    );
    assert!(err.contains("/RTIG up/ would match"), "{}", show(&o));
    // The implication's left side never holds: the verdict line says so.
    let vac = stdout(&o)
        .lines()
        .find(|l| l.contains(" client "))
        .unwrap()
        .to_string();
    assert!(
        vac.starts_with("holds") && vac.contains("vacuously"),
        "{}",
        show(&o)
    );

    let o = run(dtest().arg("check").arg("--strict").arg(&spec).arg(&t));
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(stderr(&o).contains("--strict"), "{}", show(&o));
    // No warning: --strict changes nothing.
    std::fs::write(&spec, "property up: F output(tester1, /RTIG up/)\n").unwrap();
    let o = run(dtest().arg("check").arg("--strict").arg(&spec).arg(&t));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(stderr(&o).is_empty(), "{}", show(&o));
}

#[test]
fn a_corrupt_trace_does_not_hide_the_others_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let a = md5_trace(dir.path(), "a.dtrace", false, true);
    let junk = dir.path().join("junk.dtrace");
    std::fs::write(&junk, "not a trace at all").unwrap();
    let b = md5_trace(dir.path(), "b.dtrace", true, true);
    let o = run(dtest()
        .arg("check")
        .arg(md5_spec())
        .arg(&a)
        .arg(&junk)
        .arg(&b));
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert_eq!(verdicts(&o).len(), 16, "{}", show(&o));
    assert!(stdout(&o).contains("b.dtrace"), "{}", show(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{}", show(&o));
    assert!(err.contains("junk.dtrace"), "{}", show(&o));
    let o = run(dtest()
        .arg("check")
        .arg(md5_spec())
        .arg(&a)
        .arg(&junk)
        .args(["--format", "json"]));
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    assert_eq!(v["summary"]["checked"], 8);
    assert_eq!(v["errors"].as_array().unwrap().len(), 1);
}

#[test]
fn specs_that_used_to_crash_are_errors_or_fine() {
    let dir = tempfile::tempdir().unwrap();
    let t = md5_trace(dir.path(), "good.dtrace", false, true);
    // 400 lets of 95 F each, inlined into each other.
    let mut src = String::from("let l0 = output\n");
    for k in 1..400 {
        src.push_str(&format!("let l{k} = {}l{}\n", "F ".repeat(95), k - 1));
    }
    src.push_str("property p: l399\n");
    let spec = dir.path().join("deep.spec");
    std::fs::write(&spec, src).unwrap();
    let o = run(dtest().arg("check").arg(&spec).arg(&t));
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        stderr(&o).contains("once its lets are inlined"),
        "{}",
        show(&o)
    );
    // A property name of 65 536 characters.
    let name = "p".repeat(65_536);
    std::fs::write(&spec, format!("property {name}: F end\n")).unwrap();
    let o = run(dtest().arg("check").arg(&spec).arg(&t));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(stdout(&o).contains(&name));
}
