//! End-to-end tests of `dtest trace` (show, stats, validate, export, synth),
//! its handling of bad input, and of a recording process killed with SIGKILL.

use std::path::Path;
use std::time::{Duration, Instant};

use dtest_trace::{Actor, ActorKind, Dir, EventData, Header, Kind, Recorder, Trace, Writer};

use crate::common::{dtest, repo_root, run, show};

fn synth(dir: &Path, name: &str, testers: usize, events: u64, seed: u64) -> std::path::PathBuf {
    let p = dir.join(name);
    let o = run(dtest()
        .args([
            "trace",
            "synth",
            "--testers",
            &testers.to_string(),
            "--events",
        ])
        .arg(events.to_string())
        .args(["--seed", &seed.to_string(), "-o"])
        .arg(&p));
    assert!(o.status.success(), "{}", show(&o));
    p
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn synth_show_stats_validate() {
    let dir = tempfile::tempdir().unwrap();
    let p = synth(dir.path(), "s.dtrace", 3, 300, 4);
    let again = synth(dir.path(), "s2.dtrace", 3, 300, 4);
    assert_eq!(
        std::fs::read(&p).unwrap(),
        std::fs::read(&again).unwrap(),
        "synth is deterministic"
    );

    let o = run(dtest().args(["trace", "show"]).arg(&p));
    assert!(o.status.success(), "{}", show(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 300);
    assert!(text.lines().last().unwrap().contains(" end "), "{text}");

    let o = run(dtest().args(["trace", "stats"]).arg(&p));
    assert!(o.status.success(), "{}", show(&o));
    let s = String::from_utf8(o.stdout).unwrap();
    for needle in [
        "status:     complete",
        "events:     300",
        "tester3@host3",
        "barrier_enter",
        "duration:",
    ] {
        assert!(s.contains(needle), "missing {needle:?} in\n{s}");
    }

    let o = run(dtest().args(["trace", "validate"]).arg(&p));
    assert!(o.status.success(), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("valid (300 events)"));
}

#[test]
fn jsonl_schema() {
    let dir = tempfile::tempdir().unwrap();
    let p = synth(dir.path(), "j.dtrace", 2, 200, 8);
    let o = run(dtest().args(["trace", "show", "--format", "jsonl"]).arg(&p));
    assert!(o.status.success(), "{}", show(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 200);
    let t = Trace::load(&p).unwrap();
    for (v, e) in lines.iter().zip(&t.events) {
        for key in [
            "index", "actor", "kind", "dir", "msg", "time_ns", "clock", "text",
        ] {
            assert!(v.get(key).is_some(), "no {key} in {v}");
        }
        assert_eq!(v["index"], e.index);
        assert_eq!(v["kind"], e.kind().name());
        assert_eq!(v["actor"], t.actor_name(e.actor));
        assert_eq!(v["time_ns"], e.time_ns);
        assert_eq!(v["text"], e.text().as_ref());
        let own = v["clock"][t.actor_name(e.actor)].as_u64().unwrap();
        assert_eq!(own, u64::from(e.clock.get(e.actor)));
        match e.kind() {
            Kind::Output => assert!(v["stream"].is_string() && v["bytes"].is_u64()),
            Kind::Verdict => assert!(v["ok"].is_boolean() && v["number"].is_u64()),
            Kind::Exit => assert!(v.get("status").is_some()),
            Kind::Match => assert!(v["captures"].is_object()),
            _ => {}
        }
        if e.dir == Dir::Local {
            assert!(v["msg"].is_null());
        }
    }
}

#[test]
fn shiviz_export() {
    let dir = tempfile::tempdir().unwrap();
    let p = synth(dir.path(), "v.dtrace", 2, 100, 2);
    let o = run(dtest()
        .args(["trace", "export", "--format", "shiviz"])
        .arg(&p));
    assert!(o.status.success(), "{}", show(&o));
    assert!(stderr(&o).contains("(?<host>\\S*) (?<clock>{.*})\\n(?<event>.*)"));
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 200, "two lines per event");
    for pair in lines.chunks(2) {
        let (host, clock) = pair[0].split_once(' ').unwrap();
        let c: serde_json::Value = serde_json::from_str(clock).unwrap();
        assert!(
            c[host].as_u64().unwrap() >= 1,
            "the host's own entry is in its clock: {}",
            pair[0]
        );
    }
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let not = dir.path().join("not.dtrace");
    std::fs::write(&not, "this is not a trace\n").unwrap();
    let missing = dir.path().join("missing.dtrace");
    let good = synth(dir.path(), "g.dtrace", 2, 400, 1);
    let bytes = std::fs::read(&good).unwrap();

    // Unknown major version.
    let mut major = bytes.clone();
    major[8] = 99;
    let major_p = dir.path().join("major.dtrace");
    std::fs::write(&major_p, &major).unwrap();

    for (p, needle) in [
        (&not, "byte 0: not a dtest trace"),
        (&missing, "missing.dtrace"),
        (&major_p, "byte 8: unsupported trace format version 99."),
    ] {
        for sub in ["show", "stats", "validate"] {
            let o = run(dtest().args(["trace", sub]).arg(p));
            assert_eq!(
                o.status.code(),
                Some(2),
                "{sub} {}: {}",
                p.display(),
                show(&o)
            );
            let e = stderr(&o);
            assert_eq!(e.lines().count(), 1, "one line: {e}");
            assert!(
                e.contains(needle) && e.contains(&*p.to_string_lossy()),
                "{e}"
            );
            assert!(!e.contains("panicked"), "{e}");
        }
    }
}

#[test]
fn truncated_and_corrupt_traces() {
    let dir = tempfile::tempdir().unwrap();
    // Many small blocks: write through a Writer flushed every 10 events.
    let src = dtest_trace::synth::generate(&dtest_trace::synth::Config {
        testers: 3,
        events: 500,
        seed: 11,
        payload: 8,
    });
    let mut w = Writer::new(Vec::new(), src.header.clone()).unwrap();
    for (i, e) in src.events.iter().enumerate() {
        w.append_event(e).unwrap();
        if i % 10 == 9 {
            w.flush().unwrap();
        }
    }
    let bytes = w.into_inner().unwrap();

    // Torn: cut in the middle of the file, inside a block.
    let cut = bytes.len() * 2 / 3 + 3;
    let torn = dir.path().join("torn.dtrace");
    std::fs::write(&torn, &bytes[..cut]).unwrap();
    let o = run(dtest().args(["trace", "show"]).arg(&torn));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let e = stderr(&o);
    assert!(
        e.contains("truncated at byte") && e.contains("incomplete"),
        "{e}"
    );
    let shown = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count();
    let t = Trace::load(&torn).unwrap();
    assert_eq!(shown, t.len());
    assert!(t.len() > 300 && !t.complete);
    assert_eq!(&t.events[..], &src.events[..t.len()]);
    let o = run(dtest().args(["trace", "stats"]).arg(&torn));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("INCOMPLETE"),
        "{}",
        show(&o)
    );

    // Corrupt: one byte flipped in the middle.
    let mut bad = bytes.clone();
    let mid = bytes.len() / 2;
    bad[mid] ^= 0xff;
    let corrupt = dir.path().join("corrupt.dtrace");
    std::fs::write(&corrupt, &bad).unwrap();
    for sub in ["show", "stats", "validate"] {
        let o = run(dtest().args(["trace", sub]).arg(&corrupt));
        assert_eq!(o.status.code(), Some(2), "{}", show(&o));
        let e = stderr(&o);
        assert!(e.contains("corrupt trace") && e.contains(": byte "), "{e}");
        let off: u64 = e
            .split(": byte ")
            .nth(1)
            .unwrap()
            .split(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            off as usize <= mid,
            "offset {off} names the damaged block, before byte {mid}"
        );
    }
}

#[test]
fn validate_lists_violations_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.dtrace");
    let actors = ["master", "t1", "t1@local"]
        .iter()
        .enumerate()
        .map(|(i, n)| Actor {
            id: i as u32,
            name: n.to_string(),
            kind: [ActorKind::Master, ActorKind::Tester, ActorKind::Session][i],
            host: "local".into(),
        })
        .collect();
    let mut w = dtest_trace::create(&p, Header::new("bad", actors)).unwrap();
    let start = EventData::Start {
        command: "x".into(),
    };
    w.append(1, 10, Dir::Send, Some(0), &[0, 1, 0], &start)
        .unwrap();
    w.append(2, 20, Dir::Recv, Some(0), &[0, 0, 1], &start)
        .unwrap(); // does not dominate
    w.append(
        1,
        5,
        Dir::Local,
        None,
        &[0, 2, 0],
        &EventData::Close {
            reason: String::new(),
        },
    )
    .unwrap();
    w.append(
        0,
        30,
        Dir::Local,
        None,
        &[1, 0, 0],
        &EventData::End {
            ok: true,
            summary: String::new(),
        },
    )
    .unwrap();
    w.flush().unwrap();
    drop(w);
    let o = run(dtest().args(["trace", "validate"]).arg(&p));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("event 1: receive clock does not dominate its send's (event 0)"),
        "{out}"
    );
    assert!(out.contains("event 2: time runs backwards"), "{out}");
}

#[test]
fn checked_in_traces_are_valid() {
    let mut n = 0;
    for entry in std::fs::read_dir(repo_root().join("traces")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "dtrace") {
            let o = run(dtest().args(["trace", "validate"]).arg(&p));
            // Traces named *incomplete* or *hostile* may be deliberately odd;
            // every trace must at least read without error.
            assert_ne!(o.status.code(), Some(2), "{}: {}", p.display(), show(&o));
            n += 1;
        }
    }
    assert!(n >= 2);
}

/// Not a test on its own: the body of the child process that
/// `killed_recorder_leaves_a_readable_trace` starts and kills.
#[test]
fn recorder_child() {
    let Ok(path) = std::env::var("DTEST_RECORDER_CHILD") else {
        return;
    };
    let actors = (0..3)
        .map(|i| Actor {
            id: i,
            name: format!("a{i}"),
            kind: ActorKind::Tester,
            host: "local".into(),
        })
        .collect();
    let rec = Recorder::create(Path::new(&path), Header::new("killed", actors)).unwrap();
    for k in 0u64.. {
        let m = rec
            .send(
                1,
                EventData::Output {
                    bytes: format!("line {k}\n").into_bytes(),
                    stream: dtest_trace::Stream::Stdout,
                },
            )
            .unwrap();
        rec.recv(2, m).unwrap();
        if k % 50 == 0 {
            rec.flush().unwrap();
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[test]
fn killed_recorder_leaves_a_readable_trace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.dtrace");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "trace::recorder_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DTEST_RECORDER_CHILD", &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until some hundreds of events are in the file.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(t) = Trace::load(&path) {
            if t.len() > 400 {
                break;
            }
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the recording child wrote nothing readable in 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    let _ = child.wait();
    let t = Trace::load(&path).unwrap();
    assert!(!t.complete);
    assert!(t.len() > 400);
    assert!(dtest_trace::validate(&t).is_empty());
    let o = run(dtest().args(["trace", "stats"]).arg(&path));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("INCOMPLETE"));
}
