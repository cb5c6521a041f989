//! End-to-end tests of `dtest msc`: every chart it writes goes through the
//! real tools (mscgen for mscgen output; xmllint and rsvg-convert for SVG),
//! on the traces in `traces/`, on hostile traces built here, and on a
//! 50-actor synthetic trace. The layout logic itself is unit-tested in
//! crates/dtest-msc.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use dtest_trace::{Actor, ActorKind, Directive, EventData, ExitStatus, Header, Recorder, Stream};

use crate::common::{dtest, repo_root, require_tool, run, show, svg_num};

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
            // The sends of one barrier release (a fan) share a row.
            let fan = [w[0], w[1]]
                .iter()
                .all(|i| ev[i]["kind"] == "barrier_leave" && ev[i]["dir"] == "send");
            assert!(
                y(w[0]) < y(w[1]) || (fan && y(w[0]) == y(w[1])),
                "{actor}: #{} not above #{}",
                w[0],
                w[1]
            );
        }
    }
    if svg.contains(", compact") {
        // A compact chart draws each event once: by its own element or in
        // the mark of another (data-with), never both.
        let mut seen = std::collections::HashSet::new();
        for a in ev.values() {
            for w in a.get("with").map(|w| w.split(',')).into_iter().flatten() {
                let w: u64 = w.parse().unwrap();
                assert!(!ev.contains_key(&w), "#{w} drawn alone and with a mark");
                assert!(seen.insert(w), "#{w} drawn with two marks");
            }
        }
    } else {
        assert!(arrows > 0 || ev.len() < 2, "no message drawn");
    }
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
    let svg = both(&t, dir.path(), "fifty", &["--sessions", "--detail", "full"]);
    assert_causal(&svg);
    assert_eq!(svg.matches("class=\"life\"").count(), 51);
    assert_eq!(events(&svg).len(), 3000);
    // By default each session is on its tester's lane, and the master,
    // which only kept the barriers, has none.
    let folded = both(&t, dir.path(), "fifty-folded", &[]);
    assert_causal(&folded);
    assert_eq!(folded.matches("class=\"life\"").count(), 25);
    let m = std::fs::read_to_string(dir.path().join("fifty.msc")).unwrap();
    assert!(m.contains("arcskip"));
    assert!(m.contains(" abox ") || m.contains("--- [label=\"barrier"));
}

#[test]
fn actors_window_and_highlight() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = synth(d, "4", "600");

    // Every event drawn (--detail full), to count them.
    // --actors: only those lanes, in that order; messages to the others
    // are stubs.
    let svg = both(
        &t,
        d,
        "actors",
        &[
            "--actors",
            "tester2@host2,tester2,master",
            "--sessions",
            "--detail",
            "full",
        ],
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
    let svg = both(
        &t,
        d,
        "window",
        &[
            "--from",
            "100",
            "--to",
            "299",
            "--sessions",
            "--detail",
            "full",
        ],
    );
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
        let svg = both(&t, d, &format!("hl-{name}"), &["--highlight", report.to_str().unwrap(), "--sessions", "--detail", "full"]);
        let ev = events(&svg);
        assert!(svg.contains("class=\"dtest-msc highlighting"));
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
    // The chart is what `dtest msc` draws of the trace today, byte for byte.
    let o = run(dtest()
        .arg("msc")
        .arg(repo_root().join("traces/md5.dtrace"))
        .args(["-o", "-"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        o.stdout == text.as_bytes(),
        "traces/md5.svg is out of date: regenerate it"
    );
    assert_causal(&text);
    // And it fits on a screen.
    let root = &text[text.find("<svg ").unwrap()..];
    let root = &root[..root.find('>').unwrap()];
    let (w, h) = (svg_num(root, "width"), svg_num(root, "height"));
    assert!(w <= Some(1920.0) && h <= Some(1080.0), "{w:?} x {h:?}");
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
    let highlight = ["--highlight", path.to_str().unwrap(), "--sessions"];
    // Every event drawn: exactly the report's events are hits.
    let full = [&highlight[..], &["--detail", "full"]].concat();
    let svg = both(&trace, d, "checked", &full);
    let hits = |svg: &str| -> Vec<HashMap<String, String>> {
        let ev = events(svg);
        let mut v: Vec<(u64, HashMap<String, String>)> = svg
            .split("<g class=\"ev ")
            .skip(1)
            .filter(|c| c[..c.find('"').unwrap()].split(' ').any(|w| w == "hit"))
            .map(|c| {
                let i: u64 = c
                    .split("data-index=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                (i, ev[&i].clone())
            })
            .collect();
        v.sort_by_key(|x| x.0);
        v.into_iter().map(|x| x.1).collect()
    };
    let index = |a: &HashMap<String, String>| a["index"].parse::<u64>().unwrap();
    let got: Vec<u64> = hits(&svg).iter().map(index).collect();
    assert_eq!(got, want);
    // Compact: each of them is a hit, or drawn in the mark of one.
    let svg = both(&trace, d, "checked-compact", &highlight);
    let mut got: Vec<u64> = hits(&svg)
        .iter()
        .flat_map(|a| {
            let with = a
                .get("with")
                .map(|w| w.split(',').map(|x| x.parse::<u64>().unwrap()));
            std::iter::once(index(a)).chain(with.into_iter().flatten())
        })
        .collect();
    got.sort_unstable();
    assert!(
        want.iter().all(|w| got.contains(w)),
        "{want:?} not all in {got:?}"
    );
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

/// A Redis-like run, times and all: a primary logging all along (parked at
/// a barrier), a sentinel that notices the primary's death 2.3 s after the
/// KILL with nothing in the trace linking the two.
fn failover(path: &Path) {
    use dtest_trace::Dir;
    let actor = |id, name: &str, kind| Actor {
        id,
        name: name.into(),
        kind,
        host: "local".into(),
    };
    let header = Header::new(
        "failover",
        vec![
            actor(0, "master", ActorKind::Master),
            actor(1, "primary", ActorKind::Tester),
            actor(2, "primary@local", ActorKind::Session),
            actor(3, "sentinel", ActorKind::Tester),
            actor(4, "sentinel@local", ActorKind::Session),
        ],
    );
    let mut w = dtest_trace::create(path, header).unwrap();
    let ms = |t: u64| t * 1_000_000;
    let mut next = 0u64;
    let mut msg = |w: &mut dtest_trace::Writer<_>, t: u64, from, to, data: EventData| {
        let m = next;
        next += 1;
        w.append_auto(from, ms(t), Dir::Send, Some(m), &data)
            .unwrap();
        w.append_auto(to, ms(t), Dir::Recv, Some(m), &data).unwrap();
    };
    let out = |s: &str| EventData::Output {
        bytes: s.as_bytes().to_vec(),
        stream: Stream::Stdout,
    };
    let start = |c: &str| EventData::Start { command: c.into() };
    msg(&mut w, 10, 1, 2, start("redis-server --port 16379"));
    msg(&mut w, 20, 3, 4, start("redis-sentinel sentinel.conf"));
    for k in 0..30u64 {
        let line = if k == 3 {
            "16485:M 01 Dec 2026 10:00:00.130 * Ready to accept connections tcp\r\n".to_string()
        } else {
            format!("16485:M 01 Dec 2026 10:00:00.{k:03} * background chatter {k}\r\n")
        };
        msg(&mut w, 100 + 10 * k, 2, 1, out(&line));
    }
    w.append_auto(
        1,
        ms(500),
        Dir::Local,
        None,
        &EventData::Match {
            pattern: "Ready to accept".into(),
            matched: "Ready to accept".into(),
            captures: Vec::new(),
        },
    )
    .unwrap();
    msg(
        &mut w,
        1000,
        4,
        3,
        out("+monitor master mymaster 127.0.0.1 16379\r\n"),
    );
    // The barrier "primary killed": both enter, the master releases both.
    for (t, a) in [(3990, 3), (4000, 1)] {
        msg(
            &mut w,
            t,
            a,
            0,
            EventData::BarrierEnter {
                name: "primary killed".into(),
            },
        );
    }
    msg(
        &mut w,
        4010,
        1,
        2,
        EventData::Signal {
            name: "KILL".into(),
        },
    );
    for a in [1, 3] {
        msg(
            &mut w,
            4020,
            0,
            a,
            EventData::BarrierLeave {
                name: "primary killed".into(),
                participants: vec!["primary".into(), "sentinel".into()].into(),
            },
        );
    }
    msg(
        &mut w,
        6300,
        4,
        3,
        out("+switch-master mymaster 127.0.0.1 16379 127.0.0.1 16380\r\n"),
    );
    w.append_auto(
        0,
        ms(6400),
        Dir::Local,
        None,
        &EventData::End {
            ok: true,
            summary: "all ok".into(),
        },
    )
    .unwrap();
    w.flush().unwrap();
}

/// The `data-y` of the first event element whose tag has `needle` in it.
fn y_of(svg: &str, needle: &str) -> f64 {
    let at = svg
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in the chart"));
    let tag_start = svg[..at].rfind("<g class=\"ev ").unwrap();
    let tag = &svg[tag_start..tag_start + svg[tag_start..].find('>').unwrap()];
    svg_num(tag, "data-y").expect("data-y")
}

#[test]
fn folded_lanes_time_layout_labels_kinds_and_windows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = d.join("failover.dtrace");
    failover(&t);

    // Default: one lane per tester (its session folded in), no master lane
    // (it only kept the barriers), rows in time order; the chatter and the
    // expect that found its line in it are one mark showing that line.
    let svg = both(&t, d, "default", &[]);
    assert_causal(&svg);
    assert_eq!(
        svg.matches("class=\"life\"").count(),
        2,
        "primary, sentinel"
    );
    assert!(svg.contains("time-layout"));
    assert!(svg.contains(", compact"));
    assert!(
        svg.contains("k-start a1 own") && svg.contains("k-signal a1 own"),
        "marks on the tester's lane"
    );
    assert!(
        svg.contains("match: \u{2026}Ready to accept connections tcp"),
        "the matched line, without its log prefix"
    );
    let kill = y_of(&svg, "data-kind=\"signal\"");
    let switch = y_of(&svg, "+switch-master");
    assert!(kill < switch, "time layout: the KILL is above the switch");
    // A barrier release is drawn on its participants' lanes.
    assert!(svg.contains("<g class=\"barrier\" data-name=\"primary killed\""));

    // Every event: the master's lane and the barrier messages come back,
    // the chatter is one mark of its own.
    let svg = both(&t, d, "full", &["--detail", "full"]);
    assert_causal(&svg);
    assert_eq!(
        svg.matches("class=\"life\"").count(),
        3,
        "master, primary, sentinel"
    );
    assert_eq!(
        svg.matches("data-run=\"30\"").count(),
        1,
        "30 chunks, one mark"
    );
    assert!(
        svg.contains(">\u{2026}Ready to accept connections tcp (30 lines)<"),
        "the matched line, without its log prefix"
    );
    assert!(svg.contains("match: \u{2026}Ready to accept connections tcp"));
    assert!(svg.contains("k-barrier_enter"));
    let kill = y_of(&svg, "data-kind=\"signal\"");
    let switch = y_of(&svg, "+switch-master");
    assert!(kill < switch, "time layout: the KILL is above the switch");

    // --sessions: five lanes with --detail full.
    let apart = both(&t, d, "apart", &["--sessions", "--detail", "full"]);
    assert_eq!(apart.matches("class=\"life\"").count(), 5);

    // --kinds: hide output and input; or show only some kinds.
    let svg = both(&t, d, "kinds", &["--kinds", "-output,-input"]);
    assert!(events(&svg).values().all(|a| a["kind"] != "output"));
    assert!(svg.contains("k-signal"));
    // (The end is on the master's lane, which compact charts leave out.)
    let svg = both(&t, d, "only", &["--kinds=match,end", "--detail", "full"]);
    let ev = events(&svg);
    assert!(
        ev.values()
            .all(|a| ["match", "end"].contains(&a["kind"].as_str())),
        "{ev:?}"
    );
    assert_eq!(ev.len(), 2);

    // Windows by time and by barrier.
    let svg = both(&t, d, "late", &["--from", "4s"]);
    let ev = events(&svg);
    assert!(ev
        .values()
        .all(|a| a["time"].parse::<u64>().unwrap() >= 4_000_000_000));
    assert!(svg.contains("+switch-master"));
    let svg = both(&t, d, "mid", &["--from", "0.5s", "--to", "1000ms"]);
    let ev = events(&svg);
    assert!(ev.values().all(|a| {
        let t = a["time"].parse::<u64>().unwrap();
        (500_000_000..=1_000_000_000).contains(&t)
    }));
    let svg = both(&t, d, "after-kill", &["--from-barrier", "primary killed"]);
    let first = events(&svg).into_iter().min_by_key(|(i, _)| *i).unwrap().1;
    assert_eq!(first["kind"], "barrier_leave");
    let svg = both(&t, d, "before-kill", &["--to-barrier", "primary killed"]);
    assert!(!svg.contains("+switch-master"));
    assert!(svg.contains("primary killed"));

    // Bad values: one line, exit 2.
    for args in [
        &["--from", "2.5parsecs"][..],
        &["--kinds", "-outptu"][..],
        &["--from-barrier", "nope"][..],
        &["--from", "9s"][..],
    ] {
        let o = run(dtest().arg("msc").arg(&t).args(args));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", show(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "{}", show(&o));
    }
}

/// A chart too tall for rsvg-convert is split into pages that all render;
/// to stdout it is refused with a message naming the options.
#[test]
fn tall_charts_are_split_into_pages() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = synth(d, "2", "8000");
    let out = d.join("tall.svg");
    let o = run(dtest().arg("msc").arg(&t).arg("-o").arg(&out));
    assert!(o.status.success(), "{}", show(&o));
    assert!(!out.exists(), "the pages replace the single file");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("tall-")
        })
        .collect();
    pages.sort();
    assert!(pages.len() >= 2, "{pages:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("{} pages", pages.len())));
    for (k, p) in pages.iter().enumerate() {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(name, format!("tall-{}.svg", k + 1));
        let svg = std::fs::read_to_string(p).unwrap();
        let h: f64 = svg
            .split("height=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(h < 32767.0, "{name} is {h} px high");
        assert_eq!(
            svg.matches("<g class=\"lane ").count(),
            2 * 2,
            "lane names on every page (two testers, no master lane)"
        );
        assert!(svg.contains(&format!(
            "data-page=\"{}\" data-pages=\"{}\"",
            k + 1,
            pages.len()
        )));
        // At its own size: under rsvg-convert's limit.
        let png = p.with_extension("png");
        let rsvg = require_tool("rsvg-convert", "librsvg2-bin");
        let o = run(Command::new(rsvg).arg("-o").arg(&png).arg(p));
        assert!(o.status.success(), "rsvg-convert {name}: {}", show(&o));
    }
    let o = run(dtest().arg("msc").arg(&t));
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("-o") && err.contains("--from"), "{err}");
}

/// mscgen: backslashes are shown as backslashes (no missing glyph), and a
/// box's label fits its box, as the real mscgen draws them.
#[test]
fn mscgen_backslashes_and_labels_in_their_boxes() {
    let mscgen = require_tool("mscgen", "mscgen");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = d.join("bs.dtrace");
    {
        use dtest_trace::Dir;
        let actor = |id, name: &str, kind| Actor {
            id,
            name: name.into(),
            kind,
            host: "local".into(),
        };
        let header = Header::new(
            "backslashes",
            vec![
                actor(0, "master", ActorKind::Master),
                actor(1, "t1", ActorKind::Tester),
                actor(2, "t1@local", ActorKind::Session),
                actor(3, "t2", ActorKind::Tester),
            ],
        );
        let mut w = dtest_trace::create(&t, header).unwrap();
        let cmd = EventData::Start {
            command: r#"printf 'a\nb\\' "\"q\"" C:\dir\ end\"#.into(),
        };
        w.append_auto(1, 1, Dir::Send, Some(0), &cmd).unwrap();
        w.append_auto(2, 2, Dir::Recv, Some(0), &cmd).unwrap();
        let long = EventData::Verdict {
            number: 1,
            ok: true,
            description: format!("t1: {}", "a long description that goes on ".repeat(8)),
            directive: None,
            reason: String::new(),
        };
        w.append_auto(1, 3, Dir::Local, None, &long).unwrap();
        w.append_auto(3, 4, Dir::Local, None, &long).unwrap();
        w.flush().unwrap();
    }
    let m = d.join("bs.msc");
    // Every event on its own: the verdicts are boxes of their own.
    let text = String::from_utf8(msc(&t, &m, &["--detail", "full"])).unwrap();
    assert!(!text.contains('\u{29f5}'));
    let svg = d.join("bs.mscgen.svg");
    let o = run(Command::new(&mscgen)
        .args(["-T", "svg", "-o"])
        .arg(&svg)
        .arg("-i")
        .arg(&m));
    assert!(o.status.success(), "{}", show(&o));
    let png = d.join("bs.png");
    let o = run(Command::new(&mscgen)
        .args(["-T", "png", "-o"])
        .arg(&png)
        .arg("-i")
        .arg(&m));
    assert!(o.status.success(), "{}", show(&o));
    // The word joiners after some backslashes are drawn as nothing.
    let out = std::fs::read_to_string(&svg)
        .unwrap()
        .replace("&#x2060;", "")
        .replace('\u{2060}', "");
    assert!(
        out.contains(r#"printf 'a\nb\\' &quot;\&quot;q\&quot;&quot; C:\dir\ end\"#),
        "the command as it is: {:?}",
        out.lines()
            .filter(|l| l.contains("printf"))
            .collect::<Vec<_>>()
    );
    // Box labels fit their entity's column (mscgen writes each text's
    // length in textLength).
    let width: f64 = out
        .split("viewBox=\"0 0 ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let col = width / 3.0;
    let mut boxes = 0;
    for chunk in out.split("<text ").skip(1) {
        let tag = &chunk[..chunk.find('>').unwrap()];
        let body = chunk[chunk.find('>').unwrap() + 1..].trim();
        if body.starts_with("ok 1 - ") {
            let len: f64 = tag
                .split("textLength=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                len < col - 4.0,
                "box label {len} px wide in a {col} px column: {body}"
            );
            boxes += 1;
        }
    }
    assert_eq!(boxes, 2);
}
