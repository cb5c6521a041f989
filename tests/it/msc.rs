//! End-to-end tests of `dtest msc`: every chart it writes goes through the
//! real tools (mscgen for mscgen output; xmllint and rsvg-convert for SVG),
//! on the traces in `traces/`, on hostile traces built here, and on a
//! 50-actor synthetic trace. The layout logic itself is unit-tested in
//! crates/dtest-msc.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use dtest_trace::{Actor, ActorKind, Directive, EventData, ExitStatus, Header, Recorder, Stream};

use crate::common::{dtest, repo_root, require_tool, run, show};

/// Runs `dtest msc TRACE ARGS... -o OUT` and returns OUT's bytes.
fn msc(trace: &Path, out: &Path, args: &[&str]) -> Vec<u8> {
    let o = run(dtest().arg("msc").arg(trace).args(args).arg("-o").arg(out));
    assert!(
        o.status.success(),
        "dtest msc {}: {}",
        trace.display(),
        show(&o)
    );
    std::fs::read(out).unwrap()
}

/// The SVG parses (xmllint) and renders (rsvg-convert).
fn check_svg(svg: &Path) {
    let xmllint = require_tool("xmllint", "libxml2-utils");
    let o = run(Command::new(xmllint).arg("--noout").arg(svg));
    assert!(
        o.status.success(),
        "xmllint {}: {}",
        svg.display(),
        show(&o)
    );
    let rsvg = require_tool("rsvg-convert", "librsvg2-bin");
    // Into a temporary file: the SVG may be a checked-in one.
    let png = tempfile::Builder::new().suffix(".png").tempfile().unwrap();
    let png = png.path();
    // Rendered 1000 px wide: the whole document is parsed and drawn, without
    // making a gigapixel PNG of the big charts.
    let o = run(Command::new(rsvg)
        .args(["-w", "1000", "-a", "-o"])
        .arg(png)
        .arg(svg));
    assert!(
        o.status.success(),
        "rsvg-convert {}: {}",
        svg.display(),
        show(&o)
    );
    assert!(std::fs::metadata(png).unwrap().len() > 0);
}

/// The mscgen file is accepted by the real mscgen.
fn check_mscgen(msc: &Path) {
    let mscgen = require_tool("mscgen", "mscgen");
    let out = msc.with_extension("mscgen.svg");
    let o = run(Command::new(mscgen)
        .args(["-T", "svg", "-o"])
        .arg(&out)
        .arg("-i")
        .arg(msc));
    assert!(o.status.success(), "mscgen {}: {}", msc.display(), show(&o));
}

/// Draws `trace` in both formats with `args` and runs the real tools on
/// both; returns the SVG text.
fn both(trace: &Path, dir: &Path, stem: &str, args: &[&str]) -> String {
    let svg = dir.join(format!("{stem}.svg"));
    let text = String::from_utf8(msc(trace, &svg, args)).expect("SVG is UTF-8");
    check_svg(&svg);
    let m = dir.join(format!("{stem}.msc"));
    msc(trace, &m, args);
    check_mscgen(&m);
    text
}

/// The `data-` attributes of every event element of an SVG, by index.
fn events(svg: &str) -> HashMap<u64, HashMap<String, String>> {
    let mut out = HashMap::new();
    for chunk in svg.split("<g class=\"ev ").skip(1) {
        let tag = &chunk[..chunk.find('>').expect("tag ends")];
        let mut attrs = HashMap::new();
        for part in tag.split("\" ") {
            if let Some((k, v)) = part.split_once("=\"") {
                if let Some(k) = k.strip_prefix("data-") {
                    attrs.insert(k.to_string(), v.trim_end_matches('"').to_string());
                }
            }
        }
        let i: u64 = attrs["index"].parse().unwrap();
        out.insert(i, attrs);
    }
    out
}

/// Asserts that every drawn message goes down and every actor's events go
/// down in trace order, by the `data-y` of the elements.
fn assert_causal(svg: &str) {
    let ev = events(svg);
    let y = |i: u64| -> f64 { ev[&i]["y"].parse().unwrap() };
    let mut arrows = 0;
    for (&i, a) in &ev {
        if a["dir"] == "send" {
            if let Some(j) = a.get("partner").and_then(|p| p.parse::<u64>().ok()) {
                if ev.contains_key(&j) {
                    assert!(y(i) < y(j), "message #{i} -> #{j} drawn upside down");
                    arrows += 1;
                }
            }
        }
    }
    let mut by_actor: HashMap<&str, Vec<u64>> = HashMap::new();
    for (&i, a) in &ev {
        by_actor.entry(a["actor"].as_str()).or_default().push(i);
    }
    for (actor, mut v) in by_actor {
        v.sort_unstable();
        for w in v.windows(2) {
            assert!(y(w[0]) < y(w[1]), "{actor}: #{} not above #{}", w[0], w[1]);
        }
    }
    assert!(arrows > 0 || ev.len() < 2, "no message drawn");
}

fn synth(dir: &Path, testers: &str, events: &str) -> PathBuf {
    let p = dir.join(format!("synth-{testers}x{events}.dtrace"));
    let o = run(dtest()
        .args([
            "trace",
            "synth",
            "--testers",
            testers,
            "--events",
            events,
            "--seed",
            "3",
            "-o",
        ])
        .arg(&p));
    assert!(o.status.success(), "dtest trace synth: {}", show(&o));
    p
}

const NASTY: &str =
    "q\"uo'te <tag> & \\back\\slash \\n \u{1b}[31mred\r\n\u{0}\u{7f}\u{85}\u{fffe}\ttab ]]> -->";

/// A trace with hostile actor names and payloads; complete or not.
fn hostile(path: &Path, complete: bool) {
    let actor = |id, name: &str, kind| Actor {
        id,
        name: name.into(),
        kind,
        host: "h\"ost".into(),
    };
    let header = Header::new(
        format!("hostile {NASTY}"),
        vec![
            actor(0, "master", ActorKind::Master),
            actor(1, "t\"1<&>\\", ActorKind::Tester),
            actor(2, "t\"1<&>\\@h\nost", ActorKind::Session),
            actor(3, "t2 \u{1}", ActorKind::Tester),
            actor(4, "t2 \u{1}@h\u{2}", ActorKind::Session),
        ],
    );
    let rec = Recorder::create(path, header).unwrap();
    let m = rec
        .send(
            1,
            EventData::Start {
                command: NASTY.into(),
            },
        )
        .unwrap();
    rec.recv(2, m).unwrap();
    let m = rec
        .send(
            3,
            EventData::Start {
                command: "x".repeat(5000),
            },
        )
        .unwrap();
    rec.recv(4, m).unwrap();
    let mut bytes = NASTY.as_bytes().to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28, b'\n', 0xe2, 0x82, b'"', b'\\']);
    bytes.extend(std::iter::repeat_n(b'z', 2_000));
    let m = rec
        .send(
            2,
            EventData::Output {
                bytes: bytes.clone(),
                stream: Stream::Stderr,
            },
        )
        .unwrap();
    rec.recv(1, m).unwrap();
    let m = rec
        .send(
            1,
            EventData::Input {
                bytes,
                secret: false,
            },
        )
        .unwrap();
    rec.recv(2, m).unwrap();
    rec.local(
        1,
        EventData::Match {
            pattern: NASTY.into(),
            matched: NASTY.into(),
            captures: vec![(NASTY.into(), NASTY.into())],
        },
    )
    .unwrap();
    for t in [1, 3] {
        let m = rec
            .send(t, EventData::BarrierEnter { name: NASTY.into() })
            .unwrap();
        rec.recv(0, m).unwrap();
    }
    let leave = || EventData::BarrierLeave {
        name: NASTY.into(),
        participants: vec![NASTY.into()].into(),
    };
    let l1 = rec.send(0, leave()).unwrap();
    let l3 = rec.send(0, leave()).unwrap();
    rec.recv(3, l3).unwrap();
    rec.recv(1, l1).unwrap();
    let m = rec
        .send(
            4,
            EventData::Exit {
                status: ExitStatus::Signal(NASTY.into()),
            },
        )
        .unwrap();
    rec.recv(3, m).unwrap();
    rec.local(
        3,
        EventData::Timeout {
            pattern: NASTY.into(),
            waited_ns: 2_000_000_000,
        },
    )
    .unwrap();
    for (n, ok, d) in [
        (1, true, None),
        (2, false, None),
        (3, false, Some(Directive::Todo)),
        (4, true, Some(Directive::Skip)),
    ] {
        rec.local(
            1,
            EventData::Verdict {
                number: n,
                ok,
                description: NASTY.into(),
                directive: d,
                reason: NASTY.into(),
            },
        )
        .unwrap();
    }
    rec.local(
        3,
        EventData::Custom {
            name: NASTY.into(),
            status: 1,
            output: NASTY.into(),
        },
    )
    .unwrap();
    // A message still in flight when the trace ends.
    rec.send(1, EventData::Signal { name: NASTY.into() })
        .unwrap();
    if complete {
        rec.finish(0, false, NASTY).unwrap();
    }
}

/// Every trace checked in under traces/ is drawn in both formats, and the
/// tools accept both.
#[test]
fn every_trace_in_traces_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(repo_root().join("traces"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dtrace"))
        .collect();
    paths.sort();
    for p in paths {
        let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
        let svg = both(&p, dir.path(), &stem, &[]);
        assert_causal(&svg);
        n += 1;
    }
    assert!(n > 0, "no trace in traces/");
}

/// Quotes, `<>&`, backslashes, control characters, invalid UTF-8, newlines
/// and long payloads, in actor names and payloads, complete or cut short.
#[test]
fn hostile_payloads_and_names() {
    let dir = tempfile::tempdir().unwrap();
    for complete in [true, false] {
        let t = dir.path().join(format!("hostile-{complete}.dtrace"));
        hostile(&t, complete);
        let svg = both(&t, dir.path(), &format!("hostile-{complete}"), &[]);
        assert_causal(&svg);
        assert!(!svg.contains("<tag>"));
        assert!(svg.contains("&lt;tag&gt;"));
        assert_eq!(svg.contains("INCOMPLETE TRACE"), !complete);
        // Long payloads: the first line and the counts; the tooltip is capped.
        assert!(
            svg.contains(" lines, "),
            "no `... (N lines, M bytes)` label"
        );
        assert!(
            svg.len() < 200_000,
            "tooltips are not capped: {} bytes",
            svg.len()
        );
        let m =
            std::fs::read_to_string(dir.path().join(format!("hostile-{complete}.msc"))).unwrap();
        // traces/hostile.dtrace is this trace, cut short: regenerate it with
        // DTEST_MSC_WRITE_HOSTILE=$PWD/traces/hostile.dtrace.
        if let (Ok(dest), false) = (std::env::var("DTEST_MSC_WRITE_HOSTILE"), complete) {
            std::fs::copy(&t, dest).unwrap();
        }
        assert_eq!(m.contains("incomplete trace"), !complete);
        assert!(
            m.lines().all(|l| l.chars().count() < 400),
            "mscgen labels are not capped"
        );
    }
}

#[test]
fn fifty_actor_synthetic_trace() {
    let dir = tempfile::tempdir().unwrap();
    // 25 testers and their sessions, plus the master: 51 actors.
    let t = synth(dir.path(), "25", "3000");
    let svg = both(&t, dir.path(), "fifty", &[]);
    assert_causal(&svg);
    assert_eq!(svg.matches("class=\"life\"").count(), 51);
    assert_eq!(events(&svg).len(), 3000);
    let m = std::fs::read_to_string(dir.path().join("fifty.msc")).unwrap();
    assert!(m.contains("arcskip"));
    assert!(m.contains(" abox ") || m.contains("--- [label=\"barrier"));
}

#[test]
fn actors_window_and_highlight() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = synth(d, "4", "600");

    // --actors: only those lanes, in that order; messages to the others
    // are stubs.
    let svg = both(
        &t,
        d,
        "actors",
        &["--actors", "tester2@host2,tester2,master"],
    );
    assert_causal(&svg);
    let lanes: Vec<&str> = svg
        .split("<g class=\"lane ")
        .skip(1)
        .map(|c| {
            c.split("data-actor=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(lanes[..3], ["tester2@host2", "tester2", "master"]);
    assert_eq!(lanes.len(), 6, "names at the top and at the bottom");
    let ev = events(&svg);
    assert!(ev
        .values()
        .all(|a| ["tester2@host2", "tester2", "master"].contains(&a["actor"].as_str())));
    assert!(
        svg.contains(" stub"),
        "barrier messages to hidden testers are drawn to the edge"
    );

    // --from/--to: inclusive window of event indexes.
    let svg = both(&t, d, "window", &["--from", "100", "--to", "299"]);
    assert_causal(&svg);
    let ev = events(&svg);
    assert_eq!(ev.len(), 200);
    assert!(ev.keys().all(|&i| (100..=299).contains(&i)));

    // --highlight: both accepted shapes of a report.
    for (name, json) in [
        ("plain", r#"{"events": [250]}"#.to_string()),
        ("check", r#"[{"property": "p", "holds": true, "events": []}, {"property": "q", "holds": false, "events": [250, 251]}]"#.to_string()),
    ] {
        let report = d.join(format!("{name}.json"));
        std::fs::write(&report, json).unwrap();
        let svg = both(&t, d, &format!("hl-{name}"), &["--highlight", report.to_str().unwrap()]);
        let ev = events(&svg);
        assert!(svg.contains("class=\"dtest-msc highlighting\""));
        assert!(ev[&250].contains_key("index"));
        let classes = |i: u64| {
            let start = svg.find(&format!("data-index=\"{i}\"")).unwrap();
            let tag_start = svg[..start].rfind("<g class=\"").unwrap();
            svg[tag_start..start].to_string()
        };
        assert!(classes(250).contains(" hit"), "{}", classes(250));
        assert!(classes(0).contains(" past"), "the first events are in every event's past");
        assert!(classes(599).contains(" dim"), "the end is in nobody's past");
    }
}

#[test]
fn same_input_same_bytes_and_format_from_extension() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = synth(d, "3", "400");
    let a = msc(&t, &d.join("a.svg"), &[]);
    let b = msc(&t, &d.join("b.svg"), &[]);
    assert!(a == b, "two runs gave different SVG");
    let o = run(dtest().arg("msc").arg(&t));
    assert!(o.status.success(), "{}", show(&o));
    assert!(o.stdout == a, "stdout and -o differ");
    let m1 = msc(&t, &d.join("a.msc"), &[]);
    let m2 = msc(&t, &d.join("b.txt"), &["-f", "mscgen"]);
    assert!(m1 == m2);
    assert!(String::from_utf8(m1).unwrap().contains("msc {"));
}

/// Bad input: one line naming the file, exit 2, no output file left behind.
#[test]
fn bad_input_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = synth(d, "2", "100");
    let bad_json = d.join("bad.json");
    std::fs::write(&bad_json, "{\"events\": [1, ").unwrap();
    let not_report = d.join("other.json");
    std::fs::write(&not_report, "{\"count\": 3}").unwrap();
    let far = d.join("far.json");
    std::fs::write(&far, "{\"events\": [100000]}").unwrap();
    let mut corrupt = std::fs::read(&t).unwrap();
    let at = corrupt.len() / 2;
    corrupt[at] ^= 0xff;
    let corrupt_path = d.join("corrupt.dtrace");
    std::fs::write(&corrupt_path, &corrupt).unwrap();
    let garbage = d.join("garbage.dtrace");
    std::fs::write(&garbage, "hello, not a trace").unwrap();

    let s = |p: &Path| p.to_str().unwrap().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![s(&t), "--actors".into(), "nobody".into()],
            "unknown actor `nobody`",
        ),
        (
            vec![
                s(&t),
                "--from".into(),
                "50".into(),
                "--to".into(),
                "10".into(),
            ],
            "empty window",
        ),
        (vec![s(&t), "--from".into(), "1000".into()], "empty window"),
        (
            vec![s(&t), "--highlight".into(), s(&bad_json)],
            "bad.json: highlight report: line 1",
        ),
        (
            vec![s(&t), "--highlight".into(), s(&not_report)],
            "no \"events\"",
        ),
        (
            vec![s(&t), "--highlight".into(), s(&far)],
            "far.json: highlight report names event 100000",
        ),
        (vec![s(&corrupt_path)], "corrupt.dtrace: byte "),
        (
            vec![s(&garbage)],
            "garbage.dtrace: byte 0: not a dtest trace",
        ),
        (vec![s(&d.join("missing.dtrace"))], "missing.dtrace: "),
        (vec![s(&t), "-f".into(), "png".into()], "png"),
    ];
    for (args, want) in cases {
        let out = d.join("out.svg");
        let o = run(dtest().arg("msc").args(&args).arg("-o").arg(&out));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", show(&o));
        assert!(
            err.contains(want),
            "{args:?}: want {want:?} in: {}",
            show(&o)
        );
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "{}",
            show(&o)
        );
        if !want.contains("png") {
            assert_eq!(
                err.trim_end().lines().count(),
                1,
                "{args:?}: not one line: {err}"
            );
        }
        assert!(!out.exists(), "{args:?}: an output file was left behind");
    }
}

/// The chart checked in next to the md5 example's trace is valid, and
/// draws that trace (regenerate with
/// `dtest msc traces/md5.dtrace -o traces/md5.svg`).
#[test]
fn checked_in_md5_chart() {
    let svg = repo_root().join("traces/md5.svg");
    check_svg(&svg);
    let text = std::fs::read_to_string(&svg).unwrap();
    let trace = dtest_trace::Trace::load(&repo_root().join("traces/md5.dtrace")).unwrap();
    assert_eq!(
        events(&text).len(),
        trace.len(),
        "traces/md5.svg is out of date"
    );
    assert_causal(&text);
}

/// A run killed before its first event leaves a header-only trace: both
/// charts are still accepted by the tools (mscgen rejects a chart without
/// any row).
#[test]
fn header_only_trace() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("empty.dtrace");
    let header = Header::new(
        "empty",
        vec![Actor {
            id: 0,
            name: "master".into(),
            kind: ActorKind::Master,
            host: "local".into(),
        }],
    );
    drop(Recorder::create(&t, header).unwrap());
    let svg = both(&t, dir.path(), "empty", &[]);
    assert!(svg.contains("INCOMPLETE TRACE"));
}

/// `dtest check --format json` output is a highlight report: its violating
/// events, and only those of the drawn trace, are the ones marked.
#[test]
fn highlight_from_dtest_check_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let trace = repo_root().join("traces/synth-small.dtrace");
    let spec = repo_root().join("properties/generic.spec");
    let o = run(dtest()
        .args(["check", "--format", "json"])
        .arg(&spec)
        .arg(&trace)
        .arg(repo_root().join("traces/md5.dtrace")));
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", show(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut want: Vec<u64> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["trace"].as_str().unwrap().ends_with("synth-small.dtrace"))
        .flat_map(|r| {
            r["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_u64().unwrap())
        })
        .collect();
    want.sort_unstable();
    want.dedup();
    assert!(
        !want.is_empty(),
        "the generic properties hold on synth-small: pick another"
    );
    let path = d.join("report.json");
    std::fs::write(&path, &o.stdout).unwrap();
    let svg = both(
        &trace,
        d,
        "checked",
        &["--highlight", path.to_str().unwrap()],
    );
    let mut hits: Vec<u64> = svg
        .split("<g class=\"ev ")
        .skip(1)
        .filter(|c| c[..c.find('"').unwrap()].split(' ').any(|w| w == "hit"))
        .map(|c| {
            c.split("data-index=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    hits.sort_unstable();
    assert_eq!(hits, want);
}

/// A trace torn by a killed run is drawn up to its last readable event,
/// marked incomplete, with the reader's warning on stderr.
#[test]
fn torn_trace_is_drawn_and_marked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = synth(d, "2", "300");
    let bytes = std::fs::read(&t).unwrap();
    let torn = d.join("torn.dtrace");
    std::fs::write(&torn, &bytes[..bytes.len() - 7]).unwrap();
    let out = d.join("torn.svg");
    let o = run(dtest().arg("msc").arg(&torn).arg("-o").arg(&out));
    assert!(o.status.success(), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning") && err.contains("torn.dtrace"),
        "{}",
        show(&o)
    );
    let svg = both(&torn, d, "torn", &[]);
    assert!(svg.contains("INCOMPLETE TRACE"));
    assert_causal(&svg);
}
