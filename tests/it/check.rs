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
