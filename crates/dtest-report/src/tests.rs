use super::*;
use dtest_trace::{Actor, ActorKind, EventData, Header, Recorder};
use log::LINE_MAX;

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

/// The embedded data of a written report.
fn data_of(html: &str) -> serde_json::Value {
    let data = &html[html.find("<script id=\"dtest-data\"").unwrap()..];
    let data = &data[data.find('>').unwrap() + 1..data.find("</script>").unwrap()];
    serde_json::from_str(data).unwrap()
}

fn b64decode(s: &str) -> Vec<u8> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        acc = (acc << 6) | T.iter().position(|&t| t == c).unwrap() as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// A log line as the page shows it: its event, its text, whether cut.
#[derive(Debug, PartialEq, Eq)]
struct Shown {
    ev: u64,
    text: String,
    cut: bool,
}

fn shown(ev: u64, text: &str) -> Shown {
    Shown {
        ev,
        text: text.into(),
        cut: false,
    }
}

/// The report's log, decoded as report.html decodes it.
fn log_lines(html: &str) -> Vec<Shown> {
    let v = data_of(html);
    let col = b64decode(v["log"].as_str().unwrap());
    let mut pos = 0;
    let mut vi = || {
        let (mut x, mut s) = (0u64, 0);
        loop {
            let b = col[pos];
            pos += 1;
            x |= u64::from(b & 127) << s;
            s += 7;
            if b & 128 == 0 {
                return x;
            }
        }
    };
    let n = vi();
    let mut ev = 0i64;
    let mut lines = Vec::new();
    for _ in 0..n {
        let z = vi() as i64;
        ev += (z >> 1) ^ -(z & 1);
        let code = vi();
        let line = if code % 2 == 1 {
            Shown {
                ev: ev as u64,
                text: v["logtexts"][(code / 4) as usize]
                    .as_str()
                    .unwrap()
                    .to_string(),
                cut: code % 4 == 3,
            }
        } else {
            let t: Vec<u16> = v["texts"][ev as usize]
                .as_str()
                .unwrap()
                .encode_utf16()
                .collect();
            let from = (code / 2) as usize;
            let to = t[from..]
                .iter()
                .position(|&c| c == u16::from(b'\n'))
                .map_or(t.len(), |p| from + p);
            let s = String::from_utf16(&t[from..to]).unwrap();
            shown(ev as u64, s.strip_suffix('\r').unwrap_or(&s))
        };
        lines.push(line);
    }
    lines
}

/// A trace of two testers with a session each, and the index of each
/// output chunk's event (its send, on the session).
struct Chunks {
    rec: Recorder,
    events: u64,
}

impl Chunks {
    fn new(path: &Path) -> Chunks {
        let actor = |id, name: &str, kind| Actor {
            id,
            name: name.into(),
            kind,
            host: "local".into(),
        };
        let actors = vec![
            actor(0, "master", ActorKind::Master),
            actor(1, "t1", ActorKind::Tester),
            actor(2, "t1@local", ActorKind::Session),
            actor(3, "t2", ActorKind::Tester),
            actor(4, "t2@local", ActorKind::Session),
        ];
        Chunks {
            rec: Recorder::create(path, Header::new("chunks", actors)).unwrap(),
            events: 0,
        }
    }

    /// An output chunk of session `s` (2 or 4) on `stream`; its event.
    fn out(&mut self, s: u32, stream: dtest_trace::Stream, bytes: &[u8]) -> u64 {
        self.rec.output(s, s - 1, stream, bytes).unwrap();
        self.events += 2;
        self.events - 2
    }

    fn stdout(&mut self, s: u32, bytes: &[u8]) -> u64 {
        self.out(s, dtest_trace::Stream::Stdout, bytes)
    }

    /// Finishes the trace and writes its report; the report's log.
    fn report(self, dir: &Path) -> Vec<Shown> {
        self.rec.finish(0, true, "done").unwrap();
        drop(self.rec);
        let out = dir.join("r.html");
        write(&dir.join("t.dtrace"), &Options::default(), &out).unwrap();
        log_lines(&std::fs::read_to_string(&out).unwrap())
    }
}

#[test]
fn log_lines_of_one_chunk_are_slices_of_its_text() {
    let dir = tempfile::tempdir().unwrap();
    let trace = sample(dir.path());
    let out = dir.path().join("r.html");
    write(&trace, &Options::default(), &out).unwrap();
    let html = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        log_lines(&html),
        [shown(2, "hello"), shown(2, "world")],
        "\\r\\n ends a line, no empty line after the last newline"
    );
    // No own text: nothing of the output stored twice.
    assert_eq!(data_of(&html)["logtexts"], serde_json::json!([]));
}

#[test]
fn log_joins_a_line_split_across_two_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Chunks::new(&dir.path().join("t.dtrace"));
    let _first = c.stdout(2, b"hel");
    let second = c.stdout(2, b"lo world\r\n");
    let next = c.stdout(2, b"next\n");
    // One line, linked to the chunk holding its newline.
    assert_eq!(
        c.report(dir.path()),
        [shown(second, "hello world"), shown(next, "next")]
    );
}

#[test]
fn log_joins_a_line_split_across_three_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Chunks::new(&dir.path().join("t.dtrace"));
    c.stdout(2, b"ab");
    // Another session's and another stream's output in between: not mixed in.
    let other = c.stdout(4, b"t2 says\n");
    let err = c.out(2, dtest_trace::Stream::Stderr, b"oops\n");
    // A character split across reads is whole again.
    c.stdout(2, b"c \xc3");
    c.stdout(2, b"\xa9\r");
    let fourth = c.stdout(2, b"\n");
    assert_eq!(
        c.report(dir.path()),
        [
            shown(other, "t2 says"),
            shown(err, "oops"),
            // \r\n split across the last two reads still ends the line.
            shown(fourth, "abc é"),
        ]
    );
}

#[test]
fn log_a_chunk_ending_one_line_holding_two_and_starting_another() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Chunks::new(&dir.path().join("t.dtrace"));
    let _start = c.stdout(2, b"first ");
    let middle = c.stdout(2, b"line\nsecond\r\nthird\nfou");
    let end = c.stdout(2, b"rth\nfifth");
    let lines = c.report(dir.path());
    assert_eq!(
        lines,
        [
            shown(middle, "first line"),
            shown(middle, "second"),
            shown(middle, "third"),
            shown(end, "fourth"),
            // The last line without newline, linked to its last chunk.
            shown(end, "fifth"),
        ]
    );
}

#[test]
fn log_lines_are_in_time_order_of_the_event_they_end_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Chunks::new(&dir.path().join("t.dtrace"));
    let _a = c.stdout(2, b"slow ");
    let b = c.stdout(4, b"quick\n");
    let a2 = c.stdout(2, b"line\n");
    let b2 = c.stdout(4, b"prompt$ ");
    let a3 = c.stdout(2, b"last\n");
    assert_eq!(
        c.report(dir.path()),
        [
            shown(b, "quick"),
            shown(a2, "slow line"),
            // The final line of t2, though flushed at the end, at its time.
            shown(b2, "prompt$ "),
            shown(a3, "last"),
        ]
    );
}

#[test]
fn log_cuts_a_line_that_never_ends() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Chunks::new(&dir.path().join("t.dtrace"));
    let chunk = vec![b'x'; 50 * 1024];
    let e1 = c.stdout(2, &chunk);
    let e2 = c.stdout(2, &chunk);
    let e3 = c.stdout(2, &chunk);
    let e4 = c.stdout(2, b"end\nnext\n");
    let lines = c.report(dir.path());
    let summary: Vec<(u64, bool, usize)> =
        lines.iter().map(|l| (l.ev, l.cut, l.text.len())).collect();
    // 150 KiB + 3 bytes: two pieces of 64 KiB marked cut, each linked to
    // the chunk in which the line went past 64 KiB, then its rest, linked
    // to the chunk holding its newline; own texts shortened to 1 KiB.
    let piece = shortened(&"x".repeat(LINE_MAX), log::LOG_TEXT_MAX);
    let rest = shortened(&format!("{}end", "x".repeat(22 * 1024)), log::LOG_TEXT_MAX);
    assert_eq!(
        summary,
        [
            (e2, true, piece.len()),
            (e3, true, piece.len()),
            (e4, false, rest.len()),
            (e4, false, 4)
        ],
        "{e1}"
    );
    assert_eq!(lines[0].text, piece);
    assert_eq!(lines[2].text, rest);
    assert_eq!(lines[3], shown(e4, "next"));
}

#[test]
fn log_memory_is_bounded_and_cuts_at_a_character() {
    let mut log = log::Log::new(1);
    // 'a' then 1 MiB of 'é' (two bytes, each starting at an odd offset)
    // in odd reads, never a newline.
    let mut bytes = b"a".to_vec();
    bytes.extend("é".repeat(512 * 1024).bytes());
    for (i, chunk) in bytes.chunks(4099).enumerate() {
        let text = String::from_utf8_lossy(chunk);
        let c = log::Chunk {
            ev: i as u64,
            actor: 0,
            stream: dtest_trace::Stream::Stdout,
            bytes: chunk,
            text: &text,
            shown: text.len(),
        };
        log.output(&c, usize::MAX);
        assert!(log.pending_max() <= LINE_MAX);
    }
    let times: Vec<u64> = (0..300).collect();
    let (col, texts) = log.finish(&times, usize::MAX);
    let texts: Vec<String> = serde_json::from_str(&texts).unwrap();
    // Pieces of 64 KiB (the first one byte less: backed off to a
    // character start), whole characters each, all of the line, every
    // piece but the last cut.
    assert_eq!(texts.len(), 17);
    assert!(texts.iter().all(|t| !t.contains('\u{fffd}')));
    assert_eq!(texts[0].len(), LINE_MAX - 1);
    assert!(texts[1..16].iter().all(|t| t.len() == LINE_MAX));
    assert_eq!(texts[16], "é");
    assert_eq!(texts.concat().len(), bytes.len());
    let col = b64decode(&col);
    // 17 lines; codes 4i+3 (cut) for all but the last (4*16+1).
    assert_eq!(col[0], 17);
    let codes: Vec<u8> = col[1..].chunks(2).map(|c| c[1]).collect();
    let cut: Vec<u8> = (0..16).map(|i| 4 * i + 3).chain([65]).collect();
    assert_eq!(codes, cut);
}

#[test]
fn derived_last_lines_join_a_line_split_across_reads() {
    // A failed expect whose output came as "hel" + "lo world\r\nsec" +
    // "ond" (no newline yet): its derived diagnostic says `hello world`
    // and `second`, not `hel`, `lo world`, `sec`, `ond`.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.dtrace");
    let actor = |id, name: &str, kind| Actor {
        id,
        name: name.into(),
        kind,
        host: "local".into(),
    };
    let actors = vec![
        actor(0, "master", ActorKind::Master),
        actor(1, "t1", ActorKind::Tester),
        actor(2, "t1@local", ActorKind::Session),
    ];
    let rec = Recorder::create(&path, Header::new("split", actors)).unwrap();
    let m = rec
        .send(
            1,
            EventData::Start {
                command: "x".into(),
            },
        )
        .unwrap();
    rec.recv(2, m).unwrap();
    for chunk in ["hel", "lo world\r\nsec", "ond"] {
        let m = rec
            .send(
                2,
                EventData::Output {
                    bytes: chunk.as_bytes().to_vec(),
                    stream: dtest_trace::Stream::Stdout,
                },
            )
            .unwrap();
        rec.recv(1, m).unwrap();
    }
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
    let out = dir.path().join("report.html");
    write(&path, &Options::default(), &out).unwrap();
    let v = data_of(&std::fs::read_to_string(&out).unwrap());
    let diag = &v["points"][0]["diag"];
    let last = diag
        .as_array()
        .unwrap()
        .iter()
        .find(|kv| kv[0] == "last_lines")
        .unwrap_or_else(|| panic!("no last_lines in {diag}"));
    assert_eq!(last[1], "hello world\nsecond", "{diag}");
}
