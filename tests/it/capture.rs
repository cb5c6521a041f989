//! End-to-end tests of continuous session capture in `dtest exec`: every
//! session is read all the time (a capture thread per session), output is
//! stamped when it arrives, and the bugs found with the old "read only
//! while a step pumps" design stay fixed. Each test names the problem of
//! the issue it comes from (numbered 1 to 10 as in the issue).
//!
//! Real processes only (sh, perl, coreutils), loopback only, every child
//! bounded by `wait_deadline`. Where a test shows that something happens
//! "at once rather than after a deadline", the deadline is long (60 s) and
//! the bound asserted generous (< 20 s), so it holds on a loaded machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{dtest, dtest_bin, require_tool, show, spawn_exec, wait_deadline};

/// A finished `dtest exec`, with its temp dir (scenario in `s.toml`, run
/// directory `run/`) and how long it took.
struct Run {
    dir: tempfile::TempDir,
    out: Output,
    elapsed: Duration,
}

impl Run {
    fn out_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }
    fn trace(&self) -> PathBuf {
        self.out_dir().join("trace.dtrace")
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    fn code(&self) -> Option<i32> {
        self.out.status.code()
    }
    fn all(&self) -> String {
        format!("elapsed: {:?}\n{}", self.elapsed, show(&self.out))
    }
    /// The TAP line containing `needle`.
    fn line(&self, needle: &str) -> String {
        self.stdout()
            .lines()
            .find(|l| l.contains(needle))
            .map(String::from)
            .unwrap_or_else(|| panic!("no TAP line with {needle:?}\n{}", self.all()))
    }
    /// The TAP point whose line contains `needle`, with its YAML block
    /// (`  ---` ... `  ...`) when it has one.
    fn block(&self, needle: &str) -> String {
        let out = self.stdout();
        let mut lines = out.lines().skip_while(|l| !l.contains(needle));
        let first = lines
            .next()
            .unwrap_or_else(|| panic!("no TAP line with {needle:?}\n{}", self.all()));
        let mut b = format!("{first}\n");
        let mut rest = lines.peekable();
        if rest.peek() == Some(&"  ---") {
            for l in rest {
                b.push_str(l);
                b.push('\n');
                if l == "  ..." {
                    break;
                }
            }
        }
        b
    }
    /// Asserts that every TAP point is `ok`.
    fn all_ok(&self) {
        let out = self.stdout();
        assert!(
            out.starts_with("TAP version 13\n") && !out.contains("not ok"),
            "every point ok:\n{}",
            self.all()
        );
    }
    /// The file names in the tester's default cwd, `run/<tester>`.
    fn cwd_files(&self, tester: &str) -> Vec<String> {
        std::fs::read_dir(self.out_dir().join(tester))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Runs `dtest exec` on scenario text, at most `secs` seconds.
fn exec_files(toml: &str, files: &[(&str, &str)], extra: &[&str], secs: u64) -> Run {
    let t0 = Instant::now();
    let (dir, child) = spawn_exec(toml, files, extra);
    let out = wait_deadline(child, secs, "dtest exec");
    Run {
        dir,
        out,
        elapsed: t0.elapsed(),
    }
}

fn exec_text(toml: &str, extra: &[&str], secs: u64) -> Run {
    exec_files(toml, &[], extra, secs)
}

/// Runs a (short) command to its end, at most `secs` seconds.
fn bounded(cmd: &mut Command, secs: u64, what: &str) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    wait_deadline(child, secs, what)
}

fn validate_trace(path: &Path) {
    let o = bounded(
        dtest().args(["trace", "validate"]).arg(path),
        60,
        "dtest trace validate",
    );
    assert!(o.status.success(), "trace validate:\n{}", show(&o));
}

/// The events of a trace, from `dtest trace show --format jsonl`.
fn events(trace: &Path) -> Vec<Value> {
    let o = bounded(
        dtest()
            .args(["trace", "show", "--format", "jsonl"])
            .arg(trace),
        60,
        "dtest trace show",
    );
    assert!(o.status.success(), "trace show:\n{}", show(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad jsonl line {l}: {e}")))
        .collect()
}

fn s<'v>(e: &'v Value, key: &str) -> &'v str {
    e[key].as_str().unwrap_or("")
}

fn time_ns(e: &Value) -> u64 {
    e["time_ns"].as_u64().expect("time_ns")
}

/// The one event with this kind, actor and direction whose text contains
/// `text`.
fn event<'v>(evs: &'v [Value], kind: &str, actor: &str, dir: &str, text: &str) -> &'v Value {
    evs.iter()
        .find(|e| {
            s(e, "kind") == kind
                && s(e, "actor") == actor
                && s(e, "dir") == dir
                && s(e, "text").contains(text)
        })
        .unwrap_or_else(|| {
            let all: Vec<String> = evs.iter().map(|e| e.to_string()).collect();
            panic!(
                "no {kind} event of {actor} ({dir}) with {text:?}:\n{}",
                all.join("\n")
            )
        })
}

/// The clock entry of `actor` in event `e` (0 when absent).
fn clock_of(e: &Value, actor: &str) -> u64 {
    e["clock"][actor].as_u64().unwrap_or(0)
}

/// `e` happened before `f` (or is `f`), by the vector clocks.
fn happened_before(e: &Value, f: &Value) -> bool {
    let a = s(e, "actor");
    clock_of(e, a) <= clock_of(f, a)
}

/// The data of the session's output events (`ACTOR@local`, the send side)
/// of one stream, concatenated in trace order.
fn traced_output(evs: &[Value], session: &str, stream: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for e in evs {
        if s(e, "kind") == "output"
            && s(e, "actor") == session
            && s(e, "dir") == "send"
            && s(e, "stream") == stream
        {
            v.extend_from_slice(s(e, "text").as_bytes());
        }
    }
    v
}

fn strip_cr(b: &[u8]) -> Vec<u8> {
    b.iter().copied().filter(|&c| c != b'\r').collect()
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// The scenario of problem 1: `chatty` floods its session with ~12 MB
/// then touches a file and joins a barrier at once; `checker` joins it
/// only after seeing that file from the controller.
fn chatty_scenario(pty: bool) -> String {
    format!(
        r#"
name = "chatty"
timeout = "120s"
[defaults]
barrier_timeout = "60s"
[[tester]]
name = "chatty"
pty = {pty}
steps = [
  {{ run = "head -c 3000000 /dev/zero | od -v; touch DONE_FILE" }},
  {{ barrier = "b" }},
]
[[tester]]
name = "checker"
steps = [
  {{ sleep = "3s" }},
  {{ local = "i=0; while [ ! -f ${{run_dir}}/chatty/DONE_FILE ] && [ $i -lt 250 ]; do sleep 0.1; i=$((i+1)); done; test -f ${{run_dir}}/chatty/DONE_FILE", name = "DONE_FILE exists while chatty waits at the barrier", on_fail = "continue" }},
  {{ barrier = "b" }},
]
"#
    )
}

fn chatty_never_blocks(pty: bool) {
    require_tool("od", "coreutils");
    let r = exec_text(&chatty_scenario(pty), &[], 180);
    let l = r.line("DONE_FILE exists");
    assert!(l.starts_with("ok "), "pty {pty}: {l}\n{}", r.all());
    assert_eq!(r.code(), Some(0), "pty {pty}: {}", r.all());
    r.all_ok();
    validate_trace(&r.trace());
}

/// Problem 1: a tester parked at a barrier keeps reading its session, so a
/// command writing ~12 MB on a pty runs to its end meanwhile (the checker
/// sees its DONE_FILE before joining the barrier).
#[test]
fn chatty_command_runs_while_its_tester_waits_at_a_barrier_pty() {
    chatty_never_blocks(true);
}

/// Problem 1, on pipes (`pty = false`): the same, stdout through a pipe.
#[test]
fn chatty_command_runs_while_its_tester_waits_at_a_barrier_pipes() {
    chatty_never_blocks(false);
}

/// Problem 2: output is stamped when it arrives and the clocks tell the
/// truth. `a` prints `early-line` and waits 2 s at a barrier for `b`: the
/// output event comes before a's barrier entry and well before its leave;
/// a property saying so holds; the output's send event is concurrent with
/// b's events before the barrier.
///
/// a sleeps 1 s between its `run` and the barrier (a sleep does not read
/// the session either in the old code), so that "before a's barrier
/// entry" does not race with the echo itself; b sleeps 3 s, so a waits
/// about 2 s at the barrier.
#[test]
fn output_is_stamped_when_it_arrives() {
    let t = r#"
name = "stamp"
timeout = "60s"
[defaults]
barrier_timeout = "60s"
[[tester]]
name = "a"
steps = [
  { run = "echo early-line" },
  { sleep = "1s" },
  { barrier = "b" },
]
[[tester]]
name = "b"
steps = [
  { sleep = "3s" },
  { barrier = "b" },
]
"#;
    let r = exec_text(t, &[], 90);
    assert_eq!(r.code(), Some(0), "{}", r.all());
    validate_trace(&r.trace());
    let evs = events(&r.trace());
    let out = event(&evs, "output", "a@local", "send", "early-line");
    let enter = event(&evs, "barrier_enter", "a", "send", "b");
    let leave = event(&evs, "barrier_leave", "a", "recv", "b");
    assert!(
        time_ns(out) < time_ns(enter),
        "output stamped at {} ns, after a's barrier entry at {} ns",
        time_ns(out),
        time_ns(enter)
    );
    assert!(
        time_ns(leave).saturating_sub(time_ns(out)) > 1_500_000_000,
        "output stamped at {} ns, not 1.5 s before a's barrier leave at {} ns",
        time_ns(out),
        time_ns(leave)
    );
    // The clocks: the output (sent by a's session) and b's sleep are
    // concurrent; neither happened before the other.
    let sleep = event(&evs, "verdict", "b", "local", "b: sleep");
    assert!(
        !happened_before(out, sleep) && !happened_before(sleep, out),
        "output {out} and b's sleep {sleep} must be concurrent"
    );
    // The barrier leave on a does not happen before the output.
    assert!(
        !happened_before(leave, out),
        "a's barrier leave {leave} happened before the output {out}"
    );

    let spec = r.dir.path().join("p.spec");
    std::fs::write(
        &spec,
        "property early_before_leave:\n    \
         G (barrier_leave(a, \"b\") -> O output(\"a@local\", /early-line/))\n",
    )
    .unwrap();
    let o = bounded(
        dtest().arg("check").arg(&spec).arg(r.trace()),
        60,
        "dtest check",
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.starts_with("holds") && l.contains("early_before_leave")),
        "{}",
        show(&o)
    );
}

/// A program writing `%08d\n` lines, counting from 0, as fast as it can.
/// SIGINT sets a flag; the current line is finished, the number of bytes
/// written goes to the file named by the first argument (nothing more to
/// stdout), and it exits 0.
const STREAM_PL: &str = r#"
use strict;
use warnings;
my $stop = 0;
$SIG{INT} = sub { $stop = 1 };
my ($n, $bytes) = (0, 0);
until ($stop) {
    my $l = sprintf "%08d\n", $n++;
    my $off = 0;
    while ($off < length $l) {
        my $w = syswrite STDOUT, $l, length($l) - $off, $off;
        if (defined $w) { $off += $w; $bytes += $w; }
    }
}
open my $f, '>', $ARGV[0] or die "cannot write $ARGV[0]: $!";
print $f $bytes;
close $f or die "cannot close $ARGV[0]: $!";
exit 0;
"#;

/// The number of bytes, from the first `00000000\n` of `data` on, that
/// are the `%08d\n` stream without a gap.
fn stream_bytes(data: &[u8]) -> usize {
    let Some(start) = data.windows(9).position(|w| w == b"00000000\n") else {
        return 0;
    };
    let mut n = 0usize;
    let mut at = start;
    loop {
        let want = format!("{n:08}\n");
        if data.len() >= at + 9 && &data[at..at + 9] == want.as_bytes() {
            at += 9;
            n += 1;
        } else {
            return n * 9;
        }
    }
}

/// Problem 3: `terminate = "INT"` on a pty loses no output. Every byte the
/// program wrote before it got SIGINT is in the `.out` log, in order and
/// without a gap, and in the trace's output events.
#[test]
fn terminate_int_on_a_pty_loses_no_output() {
    require_tool("perl", "perl");
    let t = r#"
name = "int-no-loss"
timeout = "90s"
[[tester]]
name = "a"
steps = [
  { run = "perl ${scenario_dir}/stream.pl ${run_dir}/count" },
  { expect = "00020000", timeout = "30s" },
  { terminate = "INT", timeout = "10s" },
  { wait = "10s", status = 0 },
]
"#;
    let r = exec_files(t, &[("stream.pl", STREAM_PL)], &[], 120);
    assert_eq!(r.code(), Some(0), "{}", r.all());
    let written: usize = std::fs::read_to_string(r.out_dir().join("count"))
        .expect("the program wrote its count")
        .trim()
        .parse()
        .expect("a count");
    assert!(written >= 20_001 * 9, "count {written}");
    let log = strip_cr(&std::fs::read(r.out_dir().join("a.out")).unwrap());
    let in_log = stream_bytes(&log);
    assert_eq!(
        in_log, written,
        "the .out log has {in_log} stream bytes without a gap, the program wrote {written}"
    );
    // The same stream in the trace: the session's output events, in order.
    let evs = events(&r.trace());
    let traced = strip_cr(&traced_output(&evs, "a@local", "stdout"));
    let in_trace = stream_bytes(&traced);
    assert_eq!(
        in_trace, written,
        "the trace has {in_trace} stream bytes without a gap, the program wrote {written}"
    );
    validate_trace(&r.trace());
}

/// Problem 4: `expect` fails as soon as the command has ended, with its
/// status, instead of waiting for its 60 s deadline.
#[test]
fn expect_fails_as_soon_as_the_command_ends() {
    let t = r#"
name = "ended"
timeout = "120s"
[[tester]]
name = "a"
steps = [
  { run = "sh -c 'echo bye; exit 3'" },
  { expect = "never-printed", timeout = "60s" },
]
"#;
    let r = exec_text(t, &[], 150);
    assert_eq!(r.code(), Some(1), "{}", r.all());
    assert!(
        r.elapsed < Duration::from_secs(20),
        "the expect waited for its deadline: {}",
        r.all()
    );
    let b = r.block("expect /never-printed/");
    assert!(b.starts_with("not ok"), "{b}");
    assert!(
        b.contains("command ended with status 3 before the pattern appeared"),
        "{b}"
    );
}

/// Problem 5: a tester whose session cannot open fails its first point
/// with the reason said once, and breaks the barrier it would have joined
/// at once: the other tester does not wait for its 60 s barrier timeout.
#[test]
fn session_that_cannot_open_breaks_its_barriers_at_once() {
    let t = r#"
name = "no-shell"
timeout = "120s"
[[tester]]
name = "bad"
shell = "/nonexistent/shell"
steps = [
  { run = "true" },
  { barrier = "b" },
]
[[tester]]
name = "good"
steps = [
  { barrier = "b", timeout = "60s" },
]
"#;
    let r = exec_text(t, &[], 150);
    assert_eq!(r.code(), Some(1), "{}", r.all());
    assert!(
        r.elapsed < Duration::from_secs(20),
        "the barrier waited for its timeout: {}",
        r.all()
    );
    let b = r.block("bad: run");
    assert!(b.starts_with("not ok"), "{b}\n{}", r.all());
    assert_eq!(
        count(&b, "cannot open session"),
        1,
        "`cannot open session` once in:\n{b}"
    );
    let g = r.block("good: barrier");
    assert!(
        g.starts_with("not ok") && g.contains("barrier broken"),
        "{g}\n{}",
        r.all()
    );
}

fn send_to_idle_shell(pty: bool) {
    let t = format!(
        r#"
name = "idle-send"
timeout = "60s"
[[tester]]
name = "a"
pty = {pty}
steps = [
  {{ send = "\n", on_fail = "continue" }},
  {{ run = "sleep 1; (exit 3)" }},
  {{ wait = "10s", status = 3 }},
]
"#
    );
    let r = exec_text(&t, &[], 90);
    assert_eq!(r.code(), Some(1), "pty {pty}: {}", r.all());
    let b = r.block("a: send");
    assert!(
        b.starts_with("not ok") && b.contains("no command is running"),
        "pty {pty}: {b}\n{}",
        r.all()
    );
    assert!(
        r.line("a: run").starts_with("ok "),
        "pty {pty}: {}",
        r.all()
    );
    assert!(
        r.line("a: wait").starts_with("ok "),
        "pty {pty}: status 3 seen: {}",
        r.all()
    );
    validate_trace(&r.trace());
}

/// Problem 6, on a pty: `send` while no command runs is refused (it would
/// reach the shell) and the shell protocol is not disturbed: the next
/// command's status 3 is seen.
#[test]
fn send_to_an_idle_shell_is_refused_pty() {
    send_to_idle_shell(true);
}

/// Problem 6, on pipes.
#[test]
fn send_to_an_idle_shell_is_refused_pipes() {
    send_to_idle_shell(false);
}

/// The scenario of problem 7: a "shell" that never speaks the protocol.
fn cat_shell_scenario(timeout: &str) -> String {
    format!(
        r#"
name = "cat-shell"
timeout = "{timeout}"
[[tester]]
name = "a"
shell = "/bin/cat"
steps = [
  {{ run = "true" }},
]
"#
    )
}

/// Problem 7a: the scenario's `timeout` stops a tester whose session is
/// still opening (a shell that never answers the protocol).
#[test]
fn scenario_timeout_stops_a_session_that_never_opens() {
    let r = exec_text(&cat_shell_scenario("3s"), &[], 90);
    assert_eq!(r.code(), Some(1), "{}", r.all());
    assert!(
        r.elapsed < Duration::from_secs(15),
        "the 3 s scenario timeout did not stop the opening session: {}",
        r.all()
    );
}

/// Starts `dtest exec`, sends it SIGINT after 1 s, and returns its output
/// and the time from the signal to its end.
fn interrupt_after_1s(toml: &str, env: &[(&str, &Path)]) -> (Output, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("s.toml");
    std::fs::write(&f, toml).expect("write scenario");
    let mut cmd = dtest();
    cmd.arg("exec")
        .arg(&f)
        .arg("--out")
        .arg(dir.path().join("run"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env_remove("SSH_AUTH_SOCK");
    let mut child = cmd.spawn().expect("spawn dtest");
    std::thread::sleep(Duration::from_secs(1));
    if let Ok(Some(st)) = child.try_wait() {
        let out = wait_deadline(child, 10, "dtest exec");
        panic!("dtest ended before the signal: {st:?}\n{}", show(&out));
    }
    let sent = Instant::now();
    // SAFETY: signalling our own child, which has not been reaped.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = wait_deadline(child, 90, "interrupted dtest exec");
    (out, sent.elapsed())
}

/// Problem 7b: SIGINT stops dtest at once even while a session is opening
/// (a shell that never answers the protocol).
#[test]
fn sigint_stops_a_session_that_never_opens() {
    let (out, after) = interrupt_after_1s(&cat_shell_scenario("10m"), &[]);
    assert_eq!(out.status.code(), Some(130), "{}", show(&out));
    assert!(
        after < Duration::from_secs(5),
        "dtest ended {after:?} after SIGINT:\n{}",
        show(&out)
    );
}

/// A TCP server on 127.0.0.1 that accepts connections and never says a
/// word; stopped (its connections closed) when dropped.
struct SilentServer {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SilentServer {
    fn start() -> SilentServer {
        use std::sync::atomic::{AtomicBool, Ordering};
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.set_nonblocking(true).expect("nonblocking");
        let port = l.local_addr().expect("addr").port();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !st.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((c, _)) => held.push(c),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        SilentServer {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Problem 7c: SIGINT stops dtest at once while an SSH session connects to
/// a server that accepts TCP but never answers (the handshake would wait
/// for its 60 s connect timeout).
#[test]
fn sigint_stops_an_ssh_session_that_is_connecting() {
    let srv = SilentServer::start();
    let home = tempfile::tempdir().expect("tempdir");
    let kh = home.path().join("known_hosts");
    std::fs::write(&kh, "").unwrap();
    let t = format!(
        r#"
name = "ssh-silent"
timeout = "10m"
[[tester]]
name = "a"
host = "ssh://127.0.0.1:{port}"
host_key = "accept-new"
known_hosts = "{kh}"
connect_timeout = "60s"
steps = [
  {{ run = "true" }},
]
"#,
        port = srv.port,
        kh = kh.display()
    );
    let (out, after) = interrupt_after_1s(&t, &[("HOME", home.path())]);
    drop(srv);
    assert_eq!(out.status.code(), Some(130), "{}", show(&out));
    assert!(
        after < Duration::from_secs(3),
        "dtest ended {after:?} after SIGINT:\n{}",
        show(&out)
    );
}

/// Problem 8a: on pipes, stderr written just before a command ends is
/// read before the command's end is handled: every `err-i` is in the
/// `.err` log and in the trace (stream stderr).
#[test]
fn pipes_stderr_just_before_the_end_is_kept() {
    let mut steps = String::new();
    for i in 1..=10 {
        steps.push_str(&format!(
            "  {{ run = \"echo out-{i}; echo err-{i} >&2\" }},\n  {{ wait = \"10s\" }},\n"
        ));
    }
    let t = format!(
        "name = \"late-stderr\"\ntimeout = \"60s\"\n[[tester]]\nname = \"a\"\npty = false\nsteps = [\n{steps}]\n"
    );
    let r = exec_text(&t, &[], 90);
    assert_eq!(r.code(), Some(0), "{}", r.all());
    let err =
        String::from_utf8_lossy(&std::fs::read(r.out_dir().join("a.err")).unwrap()).into_owned();
    let evs = events(&r.trace());
    let traced = String::from_utf8_lossy(&traced_output(&evs, "a@local", "stderr")).into_owned();
    for i in 1..=10 {
        let want = format!("err-{i}\n");
        assert!(err.contains(&want), "{want:?} missing from a.err:\n{err}");
        assert!(
            traced.contains(&want),
            "{want:?} missing from the trace's stderr output:\n{traced}"
        );
    }
    validate_trace(&r.trace());
}

/// Problem 8b: on pipes, `send` right after `run` of a reader reaches the
/// reader, never the shell (which would run the text as a command).
#[test]
fn pipes_send_right_after_run_reaches_the_command() {
    let mut steps = String::new();
    for i in 1..=10 {
        steps.push_str(&format!(
            "  {{ run = \"head -n 1\" }},\n  {{ send = \"touch SHOULD_NOT_EXIST_{i}\\n\" }},\n  {{ wait = \"10s\", status = 0 }},\n"
        ));
    }
    let t = format!(
        "name = \"send-after-run\"\ntimeout = \"90s\"\n[[tester]]\nname = \"a\"\npty = false\nsteps = [\n{steps}]\n"
    );
    let r = exec_text(&t, &[], 120);
    let stray: Vec<String> = r
        .cwd_files("a")
        .into_iter()
        .filter(|f| f.starts_with("SHOULD_NOT_EXIST"))
        .collect();
    assert!(
        stray.is_empty(),
        "the shell ran sent text: {stray:?}\n{}",
        r.all()
    );
    assert_eq!(r.code(), Some(0), "{}", r.all());
    r.all_ok();
}

/// Problem 8c: on pipes, `terminate = "KILL"` right after `run` kills the
/// command every time (never "survived KILL").
#[test]
fn pipes_kill_right_after_run() {
    let mut steps = String::new();
    for _ in 0..20 {
        steps.push_str("  { run = \"sleep 30\" },\n  { terminate = \"KILL\" },\n");
    }
    let t = format!(
        "name = \"kill-after-run\"\ntimeout = \"120s\"\n[[tester]]\nname = \"a\"\npty = false\nsteps = [\n{steps}]\n"
    );
    let r = exec_text(&t, &[], 150);
    assert!(!r.stdout().contains("survived KILL"), "{}", r.all());
    assert_eq!(r.code(), Some(0), "{}", r.all());
    r.all_ok();
}

/// The CERTI-like server: `server up` at once, then a file saying so, an
/// `event N` line every 100 ms for 3 s, then it waits (until SIGINT).
const SERVER_PL: &str = r#"
$| = 1;
print "server up\n";
open my $f, '>', $ARGV[0] or die "cannot write $ARGV[0]: $!";
close $f;
for my $i (1 .. 30) {
    select(undef, undef, undef, 0.1);
    print "event $i\n";
}
sleep 600;
"#;

/// Problem 9: a CERTI-like run. The server prints `server up` at once and
/// parks at the barrier `all done` for the whole run; the clients print
/// after it. Properties about the order of outputs across testers that
/// are true in reality hold (before the rewrite the server's output was
/// stamped when it left the barrier, and they were VIOLATED).
#[test]
fn outputs_across_testers_are_ordered_as_they_happened() {
    require_tool("perl", "perl");
    let client = |name: &str, sleep: &str| {
        format!(
            r#"
[[tester]]
name = "{name}"
steps = [
  {{ sleep = "{sleep}" }},
  {{ local = "i=0; while [ ! -f ${{run_dir}}/UP ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; test -f ${{run_dir}}/UP", name = "the server is up" }},
  {{ run = "echo {name} joined" }},
  {{ expect = "{name} joined" }},
  {{ barrier = "all done" }},
]
"#
        )
    };
    let t = format!(
        r#"
name = "certi-like"
timeout = "90s"
[defaults]
barrier_timeout = "60s"
[[tester]]
name = "server"
steps = [
  {{ run = "perl ${{scenario_dir}}/server.pl ${{run_dir}}/UP" }},
  {{ barrier = "all done" }},
  {{ terminate = "INT" }},
]
{c1}{c2}"#,
        c1 = client("c1", "1s"),
        c2 = client("c2", "1500ms"),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("order.spec");
    std::fs::write(
        &spec,
        "property c1_after_server_up:\n    \
             G (output(c1, /c1 joined/) -> O output(server, /server up/))\n\
         property c2_after_server_up:\n    \
             G (output(c2, /c2 joined/) -> O output(server, /server up/))\n\
         property sessions_in_order:\n    \
             G (output(\"c1@local\", /c1 joined/) -> O output(\"server@local\", /server up/))\n",
    )
    .unwrap();
    let r = exec_files(
        &t,
        &[("server.pl", SERVER_PL)],
        &["--check", spec.to_str().unwrap()],
        120,
    );
    for p in [
        "c1_after_server_up",
        "c2_after_server_up",
        "sessions_in_order",
    ] {
        assert!(
            r.line(&format!("property {p}")).starts_with("ok "),
            "{p}:\n{}",
            r.all()
        );
    }
    assert_eq!(r.code(), Some(0), "{}", r.all());
    r.all_ok();
    validate_trace(&r.trace());
}

/// Problem 10: a trace write error is not ignored. Under `ulimit -f` (and
/// SIGXFSZ ignored, so writes fail with EFBIG), a run printing 3 MB ends
/// in time, exits 1 (a failed run, not bad usage) and says the trace could
/// not be written.
#[test]
fn trace_write_error_fails_the_run() {
    let t = r#"
name = "efbig"
timeout = "60s"
[[tester]]
name = "a"
steps = [
  { run = "head -c 3000000 /dev/zero | od -v | head -c 3000000" },
  { wait = "20s" },
  { barrier = "b", timeout = "20s" },
]
[[tester]]
name = "b"
steps = [
  { barrier = "b", timeout = "20s" },
]
"#;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.toml");
    std::fs::write(&f, t).unwrap();
    let t0 = Instant::now();
    let child = Command::new("sh")
        .arg("-c")
        .arg(r#"trap '' XFSZ; ulimit -f 1024; exec "$0" exec "$1" --out "$2""#)
        .arg(dtest_bin())
        .arg(&f)
        .arg(dir.path().join("run"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let out = wait_deadline(child, 30, "dtest exec under ulimit -f");
    let elapsed = t0.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "elapsed {elapsed:?}\n{}",
        show(&out)
    );
    assert!(
        err.contains("trace") && err.contains("could not be written"),
        "{}",
        show(&out)
    );
}
