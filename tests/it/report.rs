//! End-to-end tests of the HTML report (`dtest report`, and the one `dtest
//! exec` writes): generated from real runs, opened in a real browser
//! (Debian's headless Chromium, driven over WebDriver by chromedriver).
//!
//! The WebDriver client is a few blocking HTTP/1.1 requests over
//! `std::net::TcpStream` to chromedriver on 127.0.0.1: no async runtime and
//! no new crate to build on a small machine. Every wait polls a condition
//! with a generous deadline; chromedriver and Chromium are ended (and their
//! absence checked) when a test ends, passing or not.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{dtest, repo_root, require_tool, run, show, spawn_exec, wait_deadline};

const FAILING: &str = r#"
name = "failing"
timeout = "60s"
[defaults]
expect_timeout = "2s"
[[tester]]
name = "alpha"
host = "local"
steps = [
  { run = "echo hello from alpha; echo second line" },
  { expect = "hello" },
  { expect = "never printed" },
]
[[tester]]
name = "beta"
host = "local"
steps = [
  { run = "echo beta says hi" },
  { expect = "beta says" },
  { run = "false" },
  { wait = "5s", status = 0 },
]
"#;

/// A property the failing run violates (beta's `false` exits with 1).
const SPEC: &str = "property no_failed_command:\n    G !exit(_, \"1\")\n";

/// A failing run's directory (the report written by `dtest exec --check`
/// in it).
fn failing_run() -> (tempfile::TempDir, PathBuf) {
    let spec_dir = tempfile::tempdir().unwrap();
    let spec = spec_dir.path().join("p.spec");
    std::fs::write(&spec, SPEC).unwrap();
    let (dir, child) = spawn_exec(FAILING, &[], &["--check", spec.to_str().unwrap()]);
    let out = wait_deadline(child, 120, "dtest exec");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let run_dir = dir.path().join("run");
    assert!(
        run_dir.join("report.html").is_file(),
        "dtest exec wrote no report\n{}",
        show(&out)
    );
    (dir, run_dir)
}

// ---- a minimal blocking WebDriver client ----

/// One HTTP/1.1 request to 127.0.0.1:port; the response's JSON body.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    // chromedriver may keep the connection open: read the header, then
    // as many bytes as it announces (or chunks up to the last one).
    let mut resp = Vec::new();
    let mut buf = [0u8; 65536];
    let (split, head) = loop {
        if let Some(p) = resp.windows(4).position(|w| w == b"\r\n\r\n") {
            break (p, String::from_utf8_lossy(&resp[..p]).to_ascii_lowercase());
        }
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before the header's end".into());
        }
        resp.extend_from_slice(&buf[..n]);
    };
    let chunked =
        head.contains("transfer-encoding: chunked") || head.contains("transfer-encoding:chunked");
    let len: Option<usize> = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "content-length").then(|| v.trim().parse().ok())?
    });
    loop {
        let body = &resp[split + 4..];
        let done = match len {
            Some(n) => body.len() >= n,
            None if chunked => body.windows(5).any(|w| w == b"0\r\n\r\n"),
            None => false,
        };
        if done {
            break;
        }
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        resp.extend_from_slice(&buf[..n]);
    }
    let mut body = resp[split + 4..].to_vec();
    if let Some(n) = len {
        body.truncate(n);
    } else if chunked {
        body = dechunk(&body);
    }
    serde_json::from_slice(&body).map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&body)))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if n == 0 || b.len() < eol + 2 + n {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[(eol + 4 + n).min(b.len())..];
    }
}

/// chromedriver, a Chromium session, and the cleanup of both.
struct Browser {
    driver: Child,
    port: u16,
    session: Option<String>,
    profile: tempfile::TempDir,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    fn start() -> Browser {
        let chromium = require_tool("chromium", "chromium");
        let chromedriver = require_tool("chromedriver", "chromium-driver");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let profile = tempfile::tempdir().expect("tempdir");
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: the cleanup ends Chromium with it.
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let mut b = Browser {
            driver,
            port,
            session: None,
            profile,
        };
        b.wait("chromedriver ready", 60, |b| {
            http(b.port, "GET", "/status", None)
                .ok()
                .and_then(|v| v["value"]["ready"].as_bool())
                .filter(|&r| r)
        });
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1400,1000",
                    format!("--user-data-dir={}", b.profile.path().display()),
                ]
            }
        }}});
        let v = http(port, "POST", "/session", Some(&caps)).expect("new session");
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        b.session = Some(id);
        b
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let sid = self.session.as_deref().expect("a session");
        let v = http(
            self.port,
            method,
            &format!("/session/{sid}{path}"),
            Some(&body.unwrap_or(json!({}))),
        )
        .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        if v["value"].get("error").is_some() {
            panic!("WebDriver {method} {path}: {v}");
        }
        v["value"].clone()
    }

    fn open(&self, file: &Path) {
        let url = format!("file://{}", file.canonicalize().unwrap().display());
        self.cmd("POST", "/url", Some(json!({ "url": url })));
        self.wait("the report is interactive", 120, |b| {
            (b.js("return document.body.dataset.ready || ''") == "1").then_some(())
        });
    }

    /// Opens a file that is not a report (an SVG chart): no readiness to
    /// wait for beyond the page load WebDriver waits for.
    fn goto(&self, file: &Path) {
        let url = format!("file://{}", file.canonicalize().unwrap().display());
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    fn js(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    fn find(&self, css: &str) -> String {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        self.cmd("POST", &format!("/element/{id}/click"), None);
    }

    fn text(&self, css: &str) -> String {
        let id = self.find(css);
        self.cmd("GET", &format!("/element/{id}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn type_text(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn screenshot(&self, to: &Path) {
        let v = self.cmd("GET", "/screenshot", None);
        let png = b64decode(v.as_str().expect("base64 PNG"));
        std::fs::write(to, png).expect("write the screenshot");
    }

    /// Polls `f` until it gives a value, at most `secs` seconds.
    fn wait<T>(&self, what: &str, secs: u64, mut f: impl FnMut(&Self) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            if Instant::now() > deadline {
                panic!("{what}: not after {secs}s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(sid) = self.session.take() {
            let _ = http(self.port, "DELETE", &format!("/session/{sid}"), None);
        }
        // chromedriver and whatever is left in its process group.
        let pgid = self.driver.id() as i32;
        // SAFETY: a signal to the process group this test started.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = self.driver.wait();
        // No Chromium left behind (its processes name the profile).
        let profile = self.profile.path().display().to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = Command::new("pgrep")
                .arg("-f")
                .arg(&profile)
                .output()
                .map(|o| !o.stdout.is_empty())
                .unwrap_or(false);
            if !left {
                break;
            }
            if Instant::now() > deadline {
                if !std::thread::panicking() {
                    panic!("Chromium processes left behind (profile {profile})");
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn b64decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            _ => 63,
        }
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for c in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &b) in c.iter().enumerate() {
            n |= val(b) << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if c.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if c.len() > 3 {
            out.push(n as u8);
        }
    }
    out
}

// ---- the tests ----

#[test]
fn report_command_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dtest().arg("report").arg(dir.path().join("nope")));
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope"));
    // A directory without a trace.
    let o = run(dtest().arg("report").arg(dir.path()));
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("trace.dtrace"));
    // A file that is not a trace: file and position.
    std::fs::write(dir.path().join("trace.dtrace"), b"DTRACE??garbage").unwrap();
    let o = run(dtest().arg("report").arg(dir.path()));
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("trace.dtrace") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn report_of_a_trace_with_check() {
    let dir = tempfile::tempdir().unwrap();
    let trace = repo_root().join("traces/md5.dtrace");
    let spec = dir.path().join("p.spec");
    std::fs::write(
        &spec,
        "property never_fails:\n    G !verdict(_, _, ok = false)\nproperty no_put:\n    G !put\n",
    )
    .unwrap();
    let out = dir.path().join("r.html");
    let o = run(dtest()
        .arg("report")
        .arg(&trace)
        .arg("--check")
        .arg(&spec)
        .arg("--out")
        .arg(&out));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("1 failed points"),
        "{}",
        show(&o)
    );
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(
        html.contains("\"desc\":\"property never_fails\""),
        "no property point"
    );
    // The violation names its events (the first put of the md5 run).
    let at = html
        .find("\"desc\":\"property no_put\"")
        .expect("the violated property");
    assert!(html[at..].contains("\"events\":[2"), "no events linked");
    assert!(!html.contains("http://") && !html.contains("https://"));
}

#[test]
fn report_rebuilt_from_a_checked_run() {
    let (_dir, run_dir) = failing_run();
    let spec_dir = tempfile::tempdir().unwrap();
    let spec = spec_dir.path().join("p.spec");
    std::fs::write(&spec, SPEC).unwrap();
    let count = |html: &str, what: &str| html.matches(what).count();
    // From the trace alone: the property verdict exec recorded, as a property.
    let a = spec_dir.path().join("a.html");
    let o = run(dtest().arg("report").arg(&run_dir).arg("-o").arg(&a));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let html = std::fs::read_to_string(&a).unwrap();
    assert_eq!(count(&html, "\"property\":true"), 1);
    assert!(html.contains("\"desc\":\"property no_failed_command\""));
    // Checked again: replaced, not doubled, and with its diagnostics.
    let b = spec_dir.path().join("b.html");
    let o = run(dtest()
        .arg("report")
        .arg(&run_dir)
        .arg("--check")
        .arg(&spec)
        .arg("-o")
        .arg(&b));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let html = std::fs::read_to_string(&b).unwrap();
    assert_eq!(count(&html, "\"property\":true"), 1);
    assert!(
        html.contains("[\"formula\",\"G !exit(_, \\\"1\\\")\"]"),
        "no formula"
    );
}

#[test]
fn failing_run_report_in_chromium() {
    let (_dir, run_dir) = failing_run();
    let report = run_dir.join("report.html");
    let b = Browser::start();
    b.open(&report);

    // The summary: failed points first, with their diagnostics.
    let first = b.text("#failed-points .point.failed .ptitle");
    assert!(first.starts_with("not ok"), "{first}");
    let k = b
        .js("return [...document.querySelectorAll('#failed-points .point.failed')].findIndex(d => d.textContent.includes('never printed'))")
        .as_i64()
        .unwrap();
    assert!(k >= 0, "no failed point for the expect");
    b.click(&format!(
        "#failed-points .point.failed:nth-of-type({}) .ptitle",
        k + 1
    ));
    let detail = b.wait(
        "the failed point's diagnostic in the detail panel",
        30,
        |b| {
            let t = b.text("#detail");
            t.contains("before the pattern appeared").then_some(t)
        },
    );
    assert!(detail.contains("verdict on alpha"), "{detail}");
    assert!(detail.contains("step:"), "{detail}");

    // The violated property links to its events.
    let prop = b.text("#properties .point.failed");
    assert!(prop.contains("no_failed_command"), "{prop}");
    b.click("#properties .point.failed a.ev");
    b.wait("the violation's event in the detail panel", 30, |b| {
        let t = b.text("#detail h3");
        t.contains("exit on beta").then_some(())
    });
    assert!(b.text("#detail").contains("named by: not ok"));

    // A lane hidden: fewer rows, the lane's box unchecked.
    let rows = |b: &Browser| b.js("return +document.getElementById('chart-wrap').dataset.rows");
    let before = rows(&b).as_u64().unwrap();
    b.click("input[data-lane='beta']");
    let after = b.wait("fewer rows with the lane beta hidden", 30, |b| {
        rows(b).as_u64().filter(|&n| n < before)
    });
    assert!(after > 0);
    b.click("input[data-lane='beta']");
    b.wait("the lane back", 30, |b| {
        rows(b).as_u64().filter(|&n| n == before)
    });

    // A kind hidden, then shown again.
    b.click("input[data-kind='output']");
    b.wait("fewer rows without output events", 30, |b| {
        rows(b).as_u64().filter(|&n| n < before)
    });
    b.click("input[data-kind='output']");
    b.wait("the output events back", 30, |b| {
        rows(b).as_u64().filter(|&n| n == before)
    });

    // Zoom, and a click in the chart selects the event under it.
    let zoom = b.text("#zoom-level");
    b.click("#zoom-in");
    b.wait("another zoom level", 30, |b| {
        (b.text("#zoom-level") != zoom).then_some(())
    });
    b.click("#chart-scroll");
    b.wait("the clicked event in the detail panel", 30, |b| {
        let t = b.text("#detail");
        (t.starts_with('#') && t.contains("clock:")).then_some(())
    });

    // Search: the matching event selected, its full text shown.
    b.type_text("#search", "second line");
    b.wait("the search's count", 30, |b| {
        let t = b.text("#search-count");
        t.ends_with("match")
            .then_some(())
            .or(t.ends_with("matches").then_some(()))
    });
    b.wait("a match selected", 30, |b| {
        let t = b.text("#detail");
        t.contains("second line").then_some(t)
    });
    let n: u64 = b
        .text("#search-count")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n >= 2, "the start and the output match: {n}");

    // The log: a line links to its event.
    b.click(".logline");
    b.wait("the log line's event selected", 30, |b| {
        b.text("#detail").contains("output").then_some(())
    });
}

/// The log shows a line split across reads as one line, linked to the read
/// that ended it; a line too long is cut and marked.
#[test]
fn log_lines_joined_across_reads_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("split.dtrace");
    let actor = |id, name: &str, kind| dtest_trace::Actor {
        id,
        name: name.into(),
        kind,
        host: "local".into(),
    };
    let actors = vec![
        actor(0, "master", dtest_trace::ActorKind::Master),
        actor(1, "t1", dtest_trace::ActorKind::Tester),
        actor(2, "t1@local", dtest_trace::ActorKind::Session),
    ];
    let rec =
        dtest_trace::Recorder::create(&trace, dtest_trace::Header::new("split", actors)).unwrap();
    let out = dtest_trace::Stream::Stdout;
    // Events: each chunk is a send (2, 4, 6, ...) and its receive.
    rec.local(0, dtest_trace::EventData::Open { target: "x".into() })
        .unwrap();
    rec.local(1, dtest_trace::EventData::Open { target: "y".into() })
        .unwrap();
    for chunk in [
        &b"hel"[..],
        b"lo wo",
        b"rld\r\nwhole\nsta",
        b"rt \xc3",
        b"\xa9nd",
    ] {
        rec.output(2, 1, out, chunk).unwrap();
    }
    rec.output(2, 1, out, &vec![b'z'; 70_000]).unwrap();
    rec.output(2, 1, out, b"\n").unwrap();
    rec.finish(0, true, "done").unwrap();
    drop(rec);
    let html = dir.path().join("split.html");
    let o = run(dtest().arg("report").arg(&trace).arg("-o").arg(&html));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let b = Browser::start();
    b.open(&html);
    let lines = b.js(
        "return [...document.querySelectorAll('.logline')].filter(d => d.style.display !== 'none')\
         .sort((x, y) => x.dataset.line - y.dataset.line)\
         .map(d => [+d.dataset.ev, d.children[2].textContent.slice(0, 12), d.classList.contains('cut')])",
    );
    assert_eq!(
        lines,
        json!([
            [6, "hello world", false],
            [6, "whole", false],
            [12, "✂ start éndz", true],
            [14, "zzzzzzzzzzzz", false]
        ])
    );
    assert!(b
        .text("#log-count")
        .starts_with("(4 lines from 7 output events"));
    // A line links to the read that ended it.
    b.click(".logline[data-line='0']");
    b.wait("the line's event selected", 30, |b| {
        b.text("#detail h3").starts_with("#6 output").then_some(())
    });
    // A read in which no line ended (part of one) still selects.
    b.js("location.hash = '#e8'; return 0");
    b.wait("the partial read selected", 30, |b| {
        b.text("#detail h3").starts_with("#8 output").then_some(())
    });
}

/// Writes a screenshot of the md5 example's report to the file named by
/// `DTEST_REPORT_SCREENSHOT` (the one in docs/):
/// `DTEST_REPORT_SCREENSHOT=$PWD/docs/report-md5.png cargo test -p dtest-tests --test it -- report::screenshot --ignored`
#[test]
#[ignore = "writes docs/report-md5.png on demand"]
fn screenshot_md5() {
    let to =
        PathBuf::from(std::env::var("DTEST_REPORT_SCREENSHOT").expect("DTEST_REPORT_SCREENSHOT"));
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let o = run(dtest()
        .arg("exec")
        .arg(repo_root().join("examples/md5/md5.toml"))
        .arg("--out")
        .arg(&run_dir));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let b = Browser::start();
    b.cmd(
        "POST",
        "/window/rect",
        Some(json!({"width": 1400, "height": 1250})),
    );
    b.open(&run_dir.join("report.html"));
    // The second md5 sum's output selected, its causal past highlighted.
    b.type_text("#search", "md5done");
    b.wait("a match", 30, |b| {
        b.text("#search-count").contains("match").then_some(())
    });
    // The matches in trace order: tester1's output, its receipt and match,
    // then tester2's output (on its session).
    for _ in 0..10 {
        if b.text("#detail h3").contains("output on tester2@") {
            break;
        }
        b.click("#search-next");
    }
    assert!(b.text("#detail h3").contains("output on tester2@"));
    b.click("#causal");
    b.wait("the causal past", 30, |b| {
        b.text("#detail").contains("happened before").then_some(())
    });
    b.screenshot(&to);
}

/// Time until the report named by `DTEST_REPORT_BENCH` is interactive in
/// headless Chromium (benches/report-browser.sh runs it).
#[test]
#[ignore = "a figure, run by benches/report-browser.sh"]
fn time_to_interactive() {
    let file = PathBuf::from(std::env::var("DTEST_REPORT_BENCH").expect("DTEST_REPORT_BENCH"));
    let b = Browser::start();
    let t = Instant::now();
    b.open(&file);
    let wall = t.elapsed();
    let ready = b
        .js("return window.dtestReady")
        .as_f64()
        .unwrap_or(f64::NAN);
    let phases = b.js("return JSON.stringify(window.dtestTimes)");
    // Scrolling: the chart and the log drawn at 60 places through the trace.
    let frames = b.js("return JSON.stringify(window.dtestReport.scrollTest(60))");
    // Searching: the first search (which makes the lower-case copy), another.
    let s1 = b.js("return window.dtestReport.searchTest('panic')");
    let s2 = b.js("return window.dtestReport.searchTest('port=4242')");
    println!(
        "REPORT_TTI wall_ms={} ready_ms={ready:.0} phases={} frames={} search_ms={s1},{s2}",
        wall.as_millis(),
        phases.as_str().unwrap_or_default(),
        frames.as_str().unwrap_or_default()
    );
}

#[test]
fn hostile_and_torn_traces_open_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = dir.path().join("hostile.html");
    let o = run(dtest()
        .arg("report")
        .arg(repo_root().join("traces/hostile.dtrace"))
        .arg("--out")
        .arg(&hostile));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    // A killed run: the trace cut inside a block.
    let md5 = std::fs::read(repo_root().join("traces/md5.dtrace")).unwrap();
    let torn = dir.path().join("torn.dtrace");
    std::fs::write(&torn, &md5[..md5.len() * 2 / 3]).unwrap();
    let torn_html = dir.path().join("torn.html");
    let o = run(dtest().arg("report").arg(&torn).arg("-o").arg(&torn_html));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    // A run killed before its first event: a header and nothing else.
    let empty = dir.path().join("empty.dtrace");
    let actors = vec![dtest_trace::Actor {
        id: 0,
        name: "master".into(),
        kind: dtest_trace::ActorKind::Master,
        host: "local".into(),
    }];
    drop(dtest_trace::Recorder::create(&empty, dtest_trace::Header::new("empty", actors)).unwrap());
    let empty_html = dir.path().join("empty.html");
    let o = run(dtest().arg("report").arg(&empty).arg("-o").arg(&empty_html));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let b = Browser::start();
    b.open(&empty_html);
    assert!(b.text("#rows-count").starts_with("0 of 0"));
    b.open(&hostile);
    // The hostile texts stay text: no element of theirs in the page.
    assert_eq!(
        b.js("return document.querySelectorAll('script').length")
            .as_u64(),
        Some(2)
    );
    b.type_text("#search", "a");
    b.wait("the search ran", 30, |b| {
        b.text("#search-count").contains("match").then_some(())
    });
    b.open(&torn_html);
    assert!(b.text("#warnings").contains("truncated"));
    assert!(b.text("#facts").contains("trace incomplete"));
}

/// The charts of `dtest msc` open in Chromium as SVG documents, and every
/// label drawn in a box stays inside its box as Chromium lays the text out
/// (the writer measures text with a fixed advance, without a font engine):
/// the checked-in md5 chart (compact), the same with `--detail full`, and
/// the compact chart of a run whose marks join several events.
#[test]
fn msc_charts_open_in_chromium_with_labels_in_their_boxes() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("md5-full.svg");
    let o = run(dtest()
        .arg("msc")
        .arg(repo_root().join("traces/md5.dtrace"))
        .args(["--detail", "full", "-o"])
        .arg(&full));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let (_run, run_dir) = failing_run();
    let failing = dir.path().join("failing.svg");
    let o = run(dtest()
        .arg("msc")
        .arg(run_dir.join("trace.dtrace"))
        .arg("-o")
        .arg(&failing));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let b = Browser::start();
    for chart in [repo_root().join("traces/md5.svg"), full, failing] {
        b.goto(&chart);
        let name = chart.display();
        let root = b.js(
            "const r = document.documentElement; \
             return [r.namespaceURI, r.localName, document.getElementsByTagName('parsererror').length, \
                     document.querySelectorAll('g.ev').length]",
        );
        assert_eq!(root[0], "http://www.w3.org/2000/svg", "{name}: {root}");
        assert_eq!(root[1], "svg", "{name}: {root}");
        assert_eq!(root[2], 0, "{name}: {root}");
        assert!(root[3].as_u64().unwrap_or(0) > 5, "{name}: {root}");
        let bad = b.js(
            "const bad = []; let boxes = 0; \
             for (const g of document.querySelectorAll('g.ev')) { \
               const r = g.querySelector(':scope > rect.box, :scope > polygon.cond'); \
               const t = g.querySelector(':scope > text'); \
               if (!r || !t) continue; boxes++; \
               const a = r.getBoundingClientRect(), c = t.getBoundingClientRect(); \
               if (c.left < a.left - 1 || c.right > a.right + 1) \
                 bad.push(g.dataset.index + ': ' + t.textContent + ' ' + c.width + ' > ' + a.width); \
             } return [boxes, bad];",
        );
        assert!(bad[0].as_u64().unwrap_or(0) > 5, "{name}: {bad}");
        assert_eq!(bad[1], json!([]), "{name}: labels out of their boxes");
    }
}
