//! End-to-end tests of `dtest trace` (show, stats, validate, export, synth),
//! its handling of bad input, of a recording process killed with SIGKILL, of
//! events too big for the format, and of hostile names in the text outputs.

use std::path::Path;
use std::time::{Duration, Instant};

use dtest_trace::{Actor, ActorKind, Dir, EventData, Header, Kind, Recorder, Trace, Writer};

use crate::common::{dtest, repo_root, run, show, spawn_exec};

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

/// Kills, by pid, the processes whose command line contains `marker` (what a
/// `kill -9` of dtest may leave behind), also when the test fails.
struct KillMarked(String);

impl Drop for KillMarked {
    fn drop(&mut self) {
        let Ok(o) = std::process::Command::new("pgrep")
            .args(["-f", &self.0])
            .output()
        else {
            return;
        };
        for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                // SAFETY: kill(2) with a pid and a signal number.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// The tools on a trace whose run was SIGKILLed: each reads it, says it is
/// incomplete, and none calls it bad input (exit 2).
fn assert_killed_trace_is_readable(trace: &Path) {
    let o = run(dtest().args(["trace", "show"]).arg(trace));
    assert_eq!(o.status.code(), Some(0), "show: {}", show(&o));
    assert!(stderr(&o).contains("trace is incomplete"), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("# trace "),
        "{}",
        show(&o)
    );
    let o = run(dtest().args(["trace", "validate"]).arg(trace));
    assert_eq!(o.status.code(), Some(0), "validate: {}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(": valid (") && out.contains(", incomplete)"),
        "{}",
        show(&o)
    );
    let o = run(dtest().args(["trace", "stats"]).arg(trace));
    assert_eq!(o.status.code(), Some(0), "stats: {}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("INCOMPLETE"),
        "{}",
        show(&o)
    );
    let msc = trace.with_extension("msc");
    let o = run(dtest().arg("msc").arg(trace).arg("-o").arg(&msc));
    assert_eq!(o.status.code(), Some(0), "msc: {}", show(&o));
    assert!(std::fs::read_to_string(&msc)
        .unwrap()
        .contains("incomplete trace"));
    // Incomplete: the verdicts are inconclusive (exit 1), never bad input.
    let spec = repo_root().join("properties/generic.spec");
    let o = run(dtest().arg("check").arg(&spec).arg(trace));
    assert_eq!(o.status.code(), Some(1), "check: {}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("inconclusive"),
        "{}",
        show(&o)
    );
}

/// Issue 11, item 7: dtest killed with SIGKILL 300 ms after it started
/// leaves a valid, incomplete trace, also when nothing was recorded yet (a
/// session still connecting): the header is in the file from the start.
#[test]
fn kill_9_early_leaves_a_readable_incomplete_trace() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    // A unique duration marks this test's sleep, for the clean-up.
    let secs = format!("30.{}{nanos:09}", std::process::id());
    let _cleanup = KillMarked(format!("sleep {secs}"));
    // An SSH "server" that accepts connections and never says a word: the
    // session stays in its handshake, so nothing is recorded before the kill.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    for host in [
        "local".to_string(),
        format!("ssh://nobody@127.0.0.1:{port}"),
    ] {
        let toml = format!(
            "name = \"killed-early\"\n\
             [[tester]]\nname = \"t1\"\nhost = \"{host}\"\n\
             steps = [ {{ run = \"sleep {secs}\" }}, {{ wait = \"60s\" }} ]\n"
        );
        let started = Instant::now();
        let (dir, mut child) = spawn_exec(&toml, &[], &[]);
        let trace = dir.path().join("run/trace.dtrace");
        // 300 ms after the start; on a loaded machine, not before the
        // trace file exists (plus a moment to write its header).
        let deadline = started + Duration::from_secs(20);
        while !trace.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50));
        if let Some(rest) = Duration::from_millis(300).checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        assert!(trace.is_file(), "{host}: no trace");
        assert!(
            std::fs::metadata(&trace).unwrap().len() > 0,
            "{host}: an empty trace file"
        );
        assert_killed_trace_is_readable(&trace);
        let t = Trace::load(&trace).unwrap();
        assert!(!t.complete, "{host}");
        if host != "local" {
            assert!(t.is_empty(), "{host}: {} events", t.len());
        }
    }
}

/// Characters that must not reach a terminal raw from a trace: controls
/// (C0 with ESC, CR, NUL; DEL; C1 with CSI), the Unicode line separators
/// and the bidirectional formatting characters. A newline is allowed only
/// as the line end.
fn assert_no_raw_control(what: &str, out: &[u8]) {
    let text = std::str::from_utf8(out).unwrap_or_else(|e| panic!("{what}: not UTF-8: {e}"));
    for (i, c) in text.char_indices() {
        let bad = (c.is_control() && c != '\n')
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        assert!(
            !bad,
            "{what}: raw {:?} at byte {i}: {:?}",
            c,
            &text[text[..i].rfind('\n').map_or(0, |n| n + 1)..(i + 1).min(text.len())]
        );
    }
}

/// Issue 11, item 15: names and texts with terminal escapes, CR, NUL, DEL,
/// C1 controls, newlines and bidi overrides are escaped by `show` (one line
/// per event), `stats` and the ShiViz export; `jsonl` stays JSON.
#[test]
fn hostile_names_are_escaped_in_text_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("hostile.dtrace");
    let evil =
        |s: &str| format!("{s}\x1b[31m\r\n7 +0.000000s forged\0\x7f\u{9b}2J\u{202e}\u{2028}\t\\");
    let names = [evil("master"), evil("t1"), evil("t1@host")];
    let actors = names
        .iter()
        .enumerate()
        .map(|(i, n)| Actor {
            id: i as u32,
            name: n.clone(),
            kind: [ActorKind::Master, ActorKind::Tester, ActorKind::Session][i],
            host: evil("host"),
        })
        .collect();
    let mut h = Header::new(evil("scenario"), actors);
    h.meta.push((evil("key"), evil("value")));
    let rec = Recorder::create(&p, h).unwrap();
    rec.message(
        1,
        2,
        EventData::Start {
            command: evil("cmd"),
        },
    )
    .unwrap();
    rec.output(2, 1, dtest_trace::Stream::Stdout, evil("out").as_bytes())
        .unwrap();
    rec.local(
        1,
        EventData::Match {
            pattern: evil("pat"),
            matched: evil("matched"),
            captures: vec![(evil("cap"), evil("val"))],
        },
    )
    .unwrap();
    let m = rec
        .send(1, EventData::BarrierEnter { name: evil("bar") })
        .unwrap();
    rec.recv(0, m).unwrap();
    rec.message(
        0,
        1,
        EventData::BarrierLeave {
            name: evil("bar"),
            participants: std::sync::Arc::from(vec![names[1].clone(), evil("stranger")]),
        },
    )
    .unwrap();
    rec.local(
        1,
        EventData::Custom {
            name: evil("custom"),
            status: 1,
            output: evil("coutput"),
        },
    )
    .unwrap();
    rec.local(
        1,
        EventData::Verdict {
            number: 1,
            ok: false,
            description: evil("desc"),
            directive: Some(dtest_trace::Directive::Todo),
            reason: evil("reason"),
        },
    )
    .unwrap();
    rec.finish(0, false, evil("summary")).unwrap();
    drop(rec);
    let t = Trace::load(&p).unwrap();
    let events = t.len();

    let o = run(dtest().args(["trace", "show"]).arg(&p));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_no_raw_control("show", &o.stdout);
    assert_no_raw_control("show stderr", &o.stderr);
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1 + events, "one line per event:\n{out}");
    assert!(lines[0].starts_with("# trace "), "{}", lines[0]);
    assert!(
        lines[0].contains("scenario\\u{1b}[31m\\r\\n7"),
        "{}",
        lines[0]
    );
    for (i, l) in lines[1..].iter().enumerate() {
        assert_eq!(
            l.split_whitespace().next(),
            Some(i.to_string().as_str()),
            "{l}"
        );
        assert!(
            l.contains(
                "\\u{1b}[31m\\r\\n7 +0.000000s forged\\0\\u{7f}\\u{9b}2J\\u{202e}\\u{2028}\\t\\\\"
            ),
            "{l}"
        );
    }

    let o = run(dtest().args(["trace", "stats"]).arg(&p));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_no_raw_control("stats", &o.stdout);
    let s = String::from_utf8(o.stdout).unwrap();
    assert_eq!(
        s.lines().filter(|l| l.contains("\\u{1b}[31m")).count(),
        1 + 3,
        "the scenario line, one line per actor:\n{s}"
    );

    let o = run(dtest()
        .args(["trace", "export", "--format", "shiviz"])
        .arg(&p));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_no_raw_control("shiviz", &o.stdout);
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2 * events, "two lines per event:\n{out}");
    for pair in lines.chunks(2) {
        let (host, clock) = pair[0].split_once(' ').unwrap();
        assert!(!host.contains(char::is_whitespace));
        let c: serde_json::Value = serde_json::from_str(clock).unwrap();
        assert!(c[host].as_u64().unwrap() >= 1, "{}", pair[0]);
    }

    // jsonl: JSON escapes, and the names read back exactly.
    let o = run(dtest().args(["trace", "show", "--format", "jsonl"]).arg(&p));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_no_raw_control("jsonl", &o.stdout);
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(out.lines().count(), events);
    for (l, e) in out.lines().zip(&t.events) {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["actor"], names[e.actor as usize].as_str());
        assert_eq!(v["text"], e.text().as_ref());
    }
}

/// Issue 11, item 14: events over the format's 16 MiB limit are recorded
/// cut, never dropped, and the tools say so: `validate` counts them, every
/// reading command warns.
#[test]
fn oversized_events_are_cut_visibly() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.dtrace");
    let big = 17 << 20;
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
    let rec = Recorder::create(&p, Header::new("big", actors)).unwrap();
    let name = "n".repeat(big);
    let m = rec
        .send(1, EventData::BarrierEnter { name: name.clone() })
        .unwrap();
    rec.recv(0, m).unwrap();
    rec.message(
        0,
        1,
        EventData::BarrierLeave {
            name,
            participants: std::sync::Arc::from(vec!["t1".to_string()]),
        },
    )
    .unwrap();
    rec.output(2, 1, dtest_trace::Stream::Stdout, &vec![b'o'; big])
        .unwrap();
    rec.finish(0, true, "done").unwrap();
    drop(rec);

    let o = run(dtest().args(["trace", "validate"]).arg(&p));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("valid (7 events, 3 cut)"),
        "{}",
        show(&o)
    );
    for sub in ["validate", "show", "stats"] {
        let o = run(dtest().args(["trace", sub]).arg(&p));
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        let all = format!("{}{}", stderr(&o), String::from_utf8_lossy(&o.stdout));
        assert!(
            all.contains("event 0 (byte ")
                && all.contains("was too big for the trace format")
                && all.contains("3 events were cut in all"),
            "{sub}: {}",
            show(&o)
        );
    }
    let o = run(dtest().args(["trace", "show", "--format", "jsonl"]).arg(&p));
    let lines: Vec<serde_json::Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|v| v["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "barrier_enter",
            "barrier_enter",
            "barrier_leave",
            "barrier_leave",
            "output",
            "output",
            "end"
        ]
    );
    let marker = format!("… [cut: {} bytes]", big - (8 << 20));
    for v in &lines[..6] {
        assert!(v["text"].as_str().unwrap().ends_with(&marker), "{marker}");
    }
    assert_eq!(lines[0]["text"], lines[2]["text"], "enter and leave pair");
}
