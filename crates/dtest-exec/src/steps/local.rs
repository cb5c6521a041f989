//! `local`: runs a command on the controller (`/bin/sh -c`, in the run
//! directory, in its own process group); its exit status is the verdict.
//!
//! The wait for it is stop-aware and bounded by the step's timeout; its
//! output is collected by two reader threads that are given a moment after
//! the command ends and are then left behind: a daemon the command started
//! (`setsid server &`) may keep the pipes open for as long as it lives.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dtest_trace::EventData;

use super::Outcome;
use crate::duration::fmt_duration;
use crate::report::DiagValue;
use crate::runner::tester::TesterRun;
use crate::session::sys::{kill, RUN_ID_VAR, TESTER_VAR};
use crate::session::SessionError;

/// Output kept from a `local` command (for the trace and diagnostics).
const KEEP: usize = 64 << 10;
/// How long the readers get after the command ended.
const READERS_GRACE: Duration = Duration::from_millis(200);

pub(super) fn run(
    tr: &mut TesterRun<'_>,
    name: Option<String>,
    cmd: &str,
    timeout: Duration,
) -> Outcome {
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(cmd)
        .current_dir(tr.out_dir())
        .env("DTEST_RUN_DIR", tr.out_dir())
        .env(TESTER_VAR, tr.name())
        .env(RUN_ID_VAR, tr.run_id())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = match c.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::fail(format!("cannot run /bin/sh: {e}")),
    };
    let pid = child.id() as i32;
    // Collect output in threads so a chatty command never blocks.
    let (tx, rx) = mpsc::channel::<(usize, Vec<u8>)>();
    let readers: Vec<Box<dyn Read + Send>> = [
        child
            .stdout
            .take()
            .map(|x| Box::new(x) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|x| Box::new(x) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .collect();
    let n_readers = readers.len();
    for (i, mut r) in readers.into_iter().enumerate() {
        let tx = tx.clone();
        let _ = std::thread::Builder::new()
            .name("local-output".into())
            .stack_size(64 << 10)
            .spawn(move || {
                let mut v = Vec::new();
                let mut buf = [0u8; 8192];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if v.len() < KEEP {
                        v.extend_from_slice(&buf[..n]);
                    }
                }
                let _ = tx.send((i, v));
            });
    }
    drop(tx);
    let until = tr.until(timeout);
    let mut why = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) => {}
            Err(e) => {
                why = Some(e.to_string());
                break None;
            }
        }
        match until.check("") {
            Ok(()) => std::thread::sleep(Duration::from_millis(10)),
            Err(SessionError::TimedOut(_)) => {
                why = Some(format!("timed out after {}", fmt_duration(timeout)));
            }
            Err(e) => why = Some(e.to_string()),
        }
        if why.is_some() {
            kill(-pid, libc::SIGKILL);
            let _ = child.wait();
            break None;
        }
    };
    // What the command left running (`server &`, a daemon on its way to
    // `setsid`) runs on: it carries the run's marks and is stopped, and
    // reported, when the tester ends. Killing the process group here would
    // kill a daemon or not depending on whether it had left the group yet.
    let mut parts: Vec<Vec<u8>> = vec![Vec::new(); n_readers];
    let until = Instant::now() + READERS_GRACE;
    for _ in 0..n_readers {
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok((i, v)) => parts[i] = v,
            Err(_) => break,
        }
    }
    let out = parts.concat();
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = status.and_then(|s| s.code()).unwrap_or(-1);
    tr.record_local(EventData::Custom {
        name: name.unwrap_or_else(|| cmd.to_string()),
        status: code,
        output: text.chars().take(4096).collect(),
    });
    if why.is_none() && code == 0 {
        Outcome::pass()
    } else {
        let msg = why.unwrap_or_else(|| format!("exit status {code}"));
        let lines: Vec<String> = text.lines().rev().take(10).map(String::from).collect();
        Outcome::fail(msg).diag(
            "output",
            DiagValue::Lines(lines.into_iter().rev().collect()),
        )
    }
}
