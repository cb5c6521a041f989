//! The live status of `dtest exec`: one line per tester on stderr when it
//! is a terminal (a pseudo-terminal opened by the test, `openpty`), redrawn
//! in place and erased at the end; nothing of it on stdout, nothing when
//! stderr is a pipe or the status is turned off. The runs wait for the
//! test (a file it creates once it has seen the status), never for a time.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::{dtest, show, wait_deadline};

/// Two testers: `a` waits (at a `local` step) until the test creates
/// `go` in the run directory, `b` waits for `a` at a barrier.
const WAITING: &str = r#"
name = "status"
timeout = "2m"
[[tester]]
name = "a"
steps = [
  { run = "echo hello" },
  { local = "while [ ! -e go ]; do sleep 0.05; done", name = "waits for go", timeout = "90s" },
  { barrier = "end" },
]
[[tester]]
name = "bb"
steps = [
  { barrier = "end", timeout = "90s" },
]
"#;

const QUICK: &str = r#"
name = "quick"
[[tester]]
name = "a"
steps = [
  { run = "echo hello" },
  { expect = "hello" },
  { sleep = "300ms" },
]
"#;

/// A pseudo-terminal of 100x30: (master, slave).
fn openpty() -> (OwnedFd, OwnedFd) {
    let mut m = -1;
    let mut s = -1;
    let ws = libc::winsize {
        ws_row: 30,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors we then own.
    let r = unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are ours.
    unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
}

/// Everything written to a pty, read by a thread until the pty's other
/// side is closed, or until `done` is set and nothing more is pending.
struct PtyReader {
    text: Arc<Mutex<Vec<u8>>>,
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PtyReader {
    fn start(master: OwnedFd) -> PtyReader {
        let text = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let (t, d) = (Arc::clone(&text), Arc::clone(&done));
        let thread = std::thread::spawn(move || {
            let mut f = std::fs::File::from(master);
            let mut buf = [0u8; 4096];
            loop {
                let mut p = libc::pollfd {
                    fd: f.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one pollfd we own.
                let n = unsafe { libc::poll(&mut p, 1, 200) };
                if n == 0 {
                    if d.load(Ordering::SeqCst) {
                        break;
                    }
                    continue;
                }
                match f.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => t.lock().unwrap().extend_from_slice(&buf[..n]),
                }
            }
        });
        PtyReader {
            text,
            done,
            thread: Some(thread),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().unwrap()).into_owned()
    }

    /// Waits (60 s at most) until the pty has shown all of `needles`.
    fn wait_for(&self, needles: &[&str], child: &mut Child) {
        let t0 = Instant::now();
        loop {
            let t = self.text();
            if needles.iter().all(|n| t.contains(n)) {
                return;
            }
            if t0.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("no {needles:?} on the terminal after 60 s:\n{t:?}");
            }
            if let Ok(Some(st)) = child.try_wait() {
                panic!("dtest ended ({st}) before showing {needles:?}:\n{t:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything, once the writer has exited.
    fn finish(mut self) -> String {
        self.done.store(true, Ordering::SeqCst);
        if let Some(h) = self.thread.take() {
            h.join().unwrap();
        }
        self.text()
    }
}

/// Starts `dtest exec` on `toml` with stdin null, stdout and stderr as
/// given, in a temp dir (run directory `run/`).
fn start(
    toml: &str,
    extra: &[&str],
    stdout: Stdio,
    stderr: Stdio,
    env: &[(&str, &str)],
) -> (tempfile::TempDir, Child) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.toml");
    std::fs::write(&f, toml).unwrap();
    let mut c = dtest();
    c.arg("exec")
        .arg(&f)
        .arg("--out")
        .arg(dir.path().join("run"))
        .args(extra)
        .env("TERM", "xterm")
        .env_remove("DTEST_NO_STATUS")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    let child = c.spawn().expect("spawn dtest");
    (dir, child)
}

fn go(dir: &tempfile::TempDir) {
    std::fs::write(dir.path().join("run/go"), "").unwrap();
}

/// The status frame's lines are erased at the end: the last thing dtest
/// writes on the terminal is "cursor up N lines, erase down" for the N
/// lines of its last frame, and the erased lines are the last ones drawn.
fn assert_erased_at_end(term: &str, lines: usize) {
    let erase = format!("\r\x1b[{lines}A\x1b[J");
    assert!(
        term.ends_with(&erase),
        "the status is not erased at the end:\n{term:?}"
    );
}

/// stderr a terminal, stdout a pipe: the status is on the terminal (one
/// line per tester: its step and elapsed/deadline), erased at the end;
/// TAP on stdout has none of it.
#[test]
fn status_on_a_terminal_stderr_then_erased() {
    let (master, slave) = openpty();
    let reader = PtyReader::start(master);
    let (dir, mut child) = start(WAITING, &[], Stdio::piped(), Stdio::from(slave), &[]);
    // Both testers waiting, as the status shows them.
    reader.wait_for(&["a   waits for go  ", "bb  barrier \"end\"  "], &mut child);
    let t = reader.text();
    assert!(t.contains("s/90s\n") || t.contains("s/90s\r\n"), "{t:?}");
    go(&dir);
    let out: Output = wait_deadline(child, 120, "dtest exec (status)");
    let term = reader.finish();
    assert_eq!(out.status.code(), Some(0), "{}\n{term:?}", show(&out));
    assert_erased_at_end(&term, 2);
    // Lines are redrawn in place, never scrolled: every frame but the
    // first starts by going back up over the previous one.
    assert!(term.contains("\r\x1b[2A\x1b[J"), "{term:?}");
    // TAP is untouched.
    let tap = String::from_utf8_lossy(&out.stdout);
    assert!(tap.starts_with("TAP version 13\n1..4\n"), "{tap}");
    assert!(!tap.contains('\x1b'), "{tap:?}");
    assert!(!tap.contains("waits for go  "), "{tap:?}");
    drop(dir);
}

/// stdout and stderr the same terminal: TAP lines are written between two
/// frames, whole, and the status ends erased.
#[test]
fn status_and_tap_on_one_terminal() {
    let (master, slave) = openpty();
    let reader = PtyReader::start(master);
    let slave2 = slave.try_clone().unwrap();
    let (dir, mut child) = start(WAITING, &[], Stdio::from(slave), Stdio::from(slave2), &[]);
    reader.wait_for(
        &["a   waits for go  ", "ok 1 - a: run `echo hello`\r\n"],
        &mut child,
    );
    go(&dir);
    let out = wait_deadline(child, 120, "dtest exec (status, TAP on the terminal)");
    let term = reader.finish();
    assert_eq!(out.status.code(), Some(0), "{term:?}");
    assert!(term.starts_with("TAP version 13\r\n1..4\r\n"), "{term:?}");
    // Each TAP point is written whole, on its own line, with the status
    // erased (`ESC [J`) or not drawn yet (the testers' points may come in
    // any order): a frame drawn in the middle of a TAP line would cut it.
    // (No status line starts with "ok ": the testers are `a` and `bb`.)
    let lines: Vec<&str> = term
        .split("\x1b[J")
        .flat_map(|seg| seg.split("\r\n"))
        .collect();
    let mut points: Vec<String> = lines
        .into_iter()
        .filter(|l| l.starts_with("ok ") || l.starts_with("not ok "))
        .map(|l| {
            assert!(!l.contains('\x1b'), "{l:?} in {term:?}");
            l.split_once(" - ").map(|(_, d)| d.to_string()).unwrap()
        })
        .collect();
    points.sort();
    assert_eq!(
        points,
        [
            "a: barrier \"end\"",
            "a: run `echo hello`",
            "a: waits for go",
            "bb: barrier \"end\"",
        ],
        "{term:?}"
    );
    assert!(term.ends_with("\x1b[J"), "{term:?}");
}

/// stderr a pipe: no status at all (no escape sequence, no status line).
#[test]
fn no_status_when_stderr_is_a_pipe() {
    let (dir, child) = start(QUICK, &[], Stdio::piped(), Stdio::piped(), &[]);
    let out = wait_deadline(child, 60, "dtest exec (stderr a pipe)");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(out.stderr.is_empty(), "{}", show(&out));
    assert!(!out.stdout.contains(&0x1b), "{}", show(&out));
    drop(dir);
}

/// `--no-status` and `DTEST_NO_STATUS=1` turn it off on a terminal.
#[test]
fn no_status_when_turned_off() {
    for (args, env) in [
        (&["--no-status"][..], &[][..]),
        (&[][..], &[("DTEST_NO_STATUS", "1")][..]),
    ] {
        let (master, slave) = openpty();
        let reader = PtyReader::start(master);
        let (dir, child) = start(QUICK, args, Stdio::piped(), Stdio::from(slave), env);
        let out = wait_deadline(child, 60, "dtest exec (status off)");
        let term = reader.finish();
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        assert_eq!(term, "", "{args:?} {env:?}");
        drop(dir);
    }
}

/// A failed run: the status is erased before dtest's closing message.
#[test]
fn status_erased_before_the_failure_message() {
    let toml = r#"
name = "fails"
[[tester]]
name = "a"
steps = [
  { local = "while [ ! -e go ]; do sleep 0.05; done", name = "waits for go", timeout = "90s" },
  { ok = "fails", pass = false },
]
"#;
    let (master, slave) = openpty();
    let reader = PtyReader::start(master);
    let (dir, mut child) = start(toml, &[], Stdio::piped(), Stdio::from(slave), &[]);
    reader.wait_for(&["a  waits for go  "], &mut child);
    go(&dir);
    let out = wait_deadline(child, 120, "dtest exec (failing, status)");
    let term = reader.finish();
    assert_eq!(out.status.code(), Some(1), "{term:?}");
    let (before, msg) = term
        .rsplit_once("\r\x1b[1A\x1b[J")
        .unwrap_or_else(|| panic!("never erased:\n{term:?}"));
    assert!(before.contains("a  waits for go"), "{term:?}");
    assert!(msg.contains("dtest: 1 of 2 tests failed"), "{msg:?}");
    assert!(!msg.contains('\x1b'), "{msg:?}");
}
