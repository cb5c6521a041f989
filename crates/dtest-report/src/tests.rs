use super::*;
use dtest_trace::{Actor, ActorKind, EventData, Header, Recorder};

fn sample(dir: &Path) -> PathBuf {
    let path = dir.join("t.dtrace");
    let actors = vec![
        Actor {
            id: 0,
            name: "master".into(),
            kind: ActorKind::Master,
            host: "local".into(),
        },
        Actor {
            id: 1,
            name: "t1".into(),
            kind: ActorKind::Tester,
            host: "local".into(),
        },
        Actor {
            id: 2,
            name: "t1@local".into(),
            kind: ActorKind::Session,
            host: "local".into(),
        },
    ];
    let rec = Recorder::create(&path, Header::new("demo </script><b>", actors)).unwrap();
    let m = rec
        .send(
            1,
            EventData::Start {
                command: "echo '</script>'".into(),
            },
        )
        .unwrap();
    rec.recv(2, m).unwrap();
    let m = rec
        .send(
            2,
            EventData::Output {
                bytes: b"hello\r\nworld\r\n".to_vec(),
                stream: dtest_trace::Stream::Stdout,
            },
        )
        .unwrap();
    rec.recv(1, m).unwrap();
    rec.local(
        1,
        EventData::Timeout {
            pattern: "never".into(),
            waited_ns: 1_000_000_000,
        },
    )
    .unwrap();
    rec.local(
        1,
        EventData::Verdict {
            number: 1,
            ok: false,
            description: "t1: expect /never/".into(),
            directive: None,
            reason: String::new(),
        },
    )
    .unwrap();
    rec.finish(0, false, "1 test, 1 failed").unwrap();
    drop(rec);
    path
}

#[test]
fn base64_matches_the_standard() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}

#[test]
fn varints_and_zigzag() {
    let mut b = Vec::new();
    varint(&mut b, 300);
    assert_eq!(b, [0xac, 0x02]);
    assert_eq!(zigzag(0), 0);
    assert_eq!(zigzag(-1), 1);
    assert_eq!(zigzag(1), 2);
}

#[test]
fn the_template_has_its_marks() {
    assert!(TEMPLATE.contains(DATA_MARK));
    assert!(TEMPLATE.contains(TITLE_MARK));
    // Self-contained: nothing fetched from the network.
    assert!(!TEMPLATE.contains("http://") && !TEMPLATE.contains("https://"));
}

#[test]
fn writes_a_self_contained_report_with_derived_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let trace = sample(dir.path());
    let out = dir.path().join("report.html");
    let st = write(&trace, &Options::default(), &out).unwrap();
    assert_eq!(st.events, 7);
    assert_eq!(st.failed, 1);
    let html = std::fs::read_to_string(&out).unwrap();
    assert_eq!(st.bytes, html.len() as u64);
    // The trace's text cannot end the script element.
    let data_start = html.find("<script id=\"dtest-data\"").unwrap();
    let data = &html[data_start..];
    let data = &data[data.find('>').unwrap() + 1..data.find("</script>").unwrap()];
    assert!(!data.contains('<'));
    let v: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(v["texts"].as_array().unwrap().len(), 7);
    // A receive's text is stored once, at its send.
    assert_eq!(v["texts"][1], 0);
    let p = &v["points"][0];
    assert_eq!(p["failed"], true);
    assert_eq!(p["ev"], 5);
    let diag = p["diag"].to_string();
    assert!(diag.contains("timeout") && diag.contains("world"), "{diag}");
    assert!(html.contains("<title>dtest report: demo &lt;/script&gt;&lt;b&gt; (1 failed)</title>"));
    // No temporary file left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
}

#[test]
fn given_points_replace_the_derived_ones() {
    let dir = tempfile::tempdir().unwrap();
    let trace = sample(dir.path());
    let out = dir.path().join("r.html");
    let opts = Options {
        points: Some(vec![Point {
            number: 1,
            tester: "t1".into(),
            ok: false,
            failed: true,
            description: "t1: expect /never/".into(),
            diag: vec![("message".into(), "the real diagnostic".into())],
            ..Point::default()
        }]),
        extra_points: vec![Point {
            number: 2,
            ok: false,
            failed: true,
            description: "property p: violated".into(),
            events: vec![3],
            property: true,
            ..Point::default()
        }],
    };
    let st = write(&trace, &opts, &out).unwrap();
    assert_eq!(st.failed, 2);
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains("the real diagnostic"));
    assert!(html.contains("\"events\":[3]"));
}

#[test]
fn a_bad_trace_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.dtrace");
    std::fs::write(&bad, b"not a trace at all").unwrap();
    let e = write(&bad, &Options::default(), &dir.path().join("r.html")).unwrap_err();
    assert!(matches!(e, Error::Trace(_)), "{e}");
    let missing = write(
        &dir.path().join("none"),
        &Options::default(),
        &dir.path().join("r.html"),
    );
    assert!(missing.is_err());
    let trace = sample(dir.path());
    let e = write(
        &trace,
        &Options::default(),
        &dir.path().join("no/such/dir/r.html"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("cannot write"), "{e}");
}

#[test]
fn an_empty_trace_gives_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.dtrace");
    let actors = vec![Actor {
        id: 0,
        name: "master".into(),
        kind: ActorKind::Master,
        host: "local".into(),
    }];
    drop(Recorder::create(&path, Header::new("empty", actors)).unwrap());
    let st = write(&path, &Options::default(), &dir.path().join("r.html")).unwrap();
    assert_eq!((st.events, st.failed), (0, 0));
}

#[test]
fn long_texts_are_shortened_and_said() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.dtrace");
    let actors = vec![
        Actor {
            id: 0,
            name: "master".into(),
            kind: ActorKind::Master,
            host: "local".into(),
        },
        Actor {
            id: 1,
            name: "t1".into(),
            kind: ActorKind::Tester,
            host: "local".into(),
        },
        Actor {
            id: 2,
            name: "t1@local".into(),
            kind: ActorKind::Session,
            host: "local".into(),
        },
    ];
    let rec = Recorder::create(&path, Header::new("big", actors)).unwrap();
    let mut bytes = "é".repeat(100_000).into_bytes();
    bytes.push(b'!');
    let m = rec
        .send(
            2,
            EventData::Output {
                bytes,
                stream: dtest_trace::Stream::Stdout,
            },
        )
        .unwrap();
    rec.recv(1, m).unwrap();
    rec.finish(0, true, "done").unwrap();
    drop(rec);
    let out = dir.path().join("r.html");
    let st = write(&path, &Options::default(), &out).unwrap();
    // 200 kB of text, cut to 64 KiB (the page itself is about 35 kB).
    assert!(st.bytes < 150_000, "{}", st.bytes);
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains("more bytes in the trace]"));
    assert!(html.contains("1 event texts are shortened"));
    assert_eq!(shortened("aé", 2), "a… [2 more bytes in the trace]");
}
