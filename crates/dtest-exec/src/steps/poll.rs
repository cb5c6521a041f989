//! `poll`: runs a command in the session again and again, `every` apart,
//! until it succeeds (ends with status 0; with `until`, its output matches
//! `until`), within the step's deadline. One point, whatever the number of
//! attempts; the attempts are counted in its diagnostics.

use std::time::{Duration, Instant};

use dtest_trace::EventData;

use super::Outcome;
use crate::duration::fmt_duration;
use crate::matcher::Pattern;
use crate::report::DiagValue;
use crate::runner::tester::TesterRun;
use crate::session::shell::ExpectEnd;
use crate::session::SessionError;

/// The pause between attempts when the step names none.
pub(super) const DEFAULT_EVERY: Duration = Duration::from_millis(500);

pub(super) fn run(
    tr: &mut TesterRun<'_>,
    cmd: &str,
    until: Option<&str>,
    every: Duration,
    timeout: Duration,
) -> Outcome {
    let pattern = match until.map(|u| Pattern::new(u, false)).transpose() {
        Ok(p) => p,
        Err(e) => return Outcome::fail(format!("`until`: {e}")),
    };
    let start = Instant::now();
    let deadline = tr.until(timeout);
    // The command runs in the session's shell, after the previous command
    // (as `run`): a command started by a `run` without `status` is waited
    // for, and reported if it ended non-zero with no step checking it.
    let unchecked = super::take_unchecked(tr);
    let mut note = None;
    match tr.session() {
        Ok(s) => {
            if let Some(g) = s.gone() {
                return Outcome::fail(g);
            }
            match s.wait_end(&deadline) {
                Ok(st) => {
                    if let (Some(c), Some(st)) = (unchecked, st) {
                        note = super::unchecked_message(&c, &st);
                    }
                }
                Err(SessionError::TimedOut(_)) => {
                    return Outcome::fail(format!(
                        "the previous command is still running after {}: `poll` runs its command \
                         in the session's shell after it (wait for it, or poll from another tester)",
                        fmt_duration(timeout)
                    ))
                }
                Err(e) => return Outcome::fail(e.to_string()),
            }
        }
        Err(o) => return o,
    }
    if let Some(m) = &note {
        tr.note(m);
    }
    let o = attempts(tr, cmd, pattern.as_ref(), every, timeout, start, &deadline);
    match note {
        Some(m) => o.text("unchecked", m),
        None => o,
    }
}

#[allow(clippy::too_many_arguments)]
fn attempts(
    tr: &mut TesterRun<'_>,
    cmd: &str,
    pattern: Option<&Pattern>,
    every: Duration,
    timeout: Duration,
    start: Instant,
    deadline: &crate::session::Until,
) -> Outcome {
    let mut attempts = 0u32;
    let mut last = String::new();
    loop {
        attempts += 1;
        let s = match tr.session() {
            Ok(s) => s,
            Err(o) => return o,
        };
        // This attempt's output only: what earlier attempts left unread
        // must not match.
        s.discard_backlog();
        tr.record_to_session(EventData::Start {
            command: cmd.to_string(),
        });
        tr.log_input(format!("{cmd}\n").as_bytes());
        let r = match tr.session() {
            Ok(s) => s.run(cmd, deadline),
            Err(o) => return o,
        };
        if let Err(e) = r {
            return attempts_failed(tr, format!("{e}"), attempts, start, cmd);
        }
        let s = match tr.session() {
            Ok(s) => s,
            Err(o) => return o,
        };
        let done = match pattern {
            Some(p) => match s.expect(p, deadline).end {
                ExpectEnd::Hit(h) => {
                    for (k, v) in &h.captures {
                        tr.vars.insert(k.clone(), v.clone());
                    }
                    let end = tr.session().map(|s| s.wait_end(deadline));
                    match end {
                        Ok(Ok(_)) => true,
                        Ok(Err(e)) => {
                            return attempts_failed(tr, e.to_string(), attempts, start, cmd)
                        }
                        Err(o) => return o,
                    }
                }
                ExpectEnd::Ended(st) => {
                    last = match st {
                        Some(st) => format!("ended with status {st} without matching"),
                        None => "ended without matching".into(),
                    };
                    false
                }
                ExpectEnd::Closed(_, lost) => {
                    let why = lost.unwrap_or_else(|| "the session ended".into());
                    return attempts_failed(tr, why, attempts, start, cmd);
                }
                ExpectEnd::TimedOut => {
                    last = "was still running at the deadline".into();
                    break;
                }
                ExpectEnd::Stopped(r) => return attempts_failed(tr, r, attempts, start, cmd),
            },
            None => match s.wait_end(deadline) {
                Ok(Some(dtest_trace::ExitStatus::Code(0))) => true,
                Ok(Some(st)) => {
                    last = format!("ended with status {st}");
                    false
                }
                Ok(None) => {
                    last = "did not run".into();
                    false
                }
                Err(SessionError::TimedOut(_)) => {
                    last = "was still running at the deadline".into();
                    break;
                }
                Err(e) => return attempts_failed(tr, e.to_string(), attempts, start, cmd),
            },
        };
        if done {
            return Outcome::pass()
                .text("attempts", attempts.to_string())
                .text("elapsed", fmt_duration(start.elapsed()));
        }
        // The pause, cut short by the deadline or a stop of the run.
        let pause = tr.until(every);
        loop {
            if deadline.check("").is_err() || pause.check("").is_err() {
                break;
            }
            let next = deadline.slice().min(pause.slice());
            std::thread::sleep(
                next.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50)),
            );
        }
        if let Err(e) = deadline.check("") {
            if let SessionError::Stopped(r) = e {
                return attempts_failed(tr, r, attempts, start, cmd);
            }
            break;
        }
    }
    // The deadline passed: a command still running is interrupted so that
    // the session is free for the next step.
    if tr.session().map(|s| s.running()).unwrap_or(false) {
        tr.stop_command(crate::session::Signal::Int, Duration::from_millis(500));
    }
    let why = format!(
        "no attempt succeeded within {} ({attempts} attempts; the last one {last})",
        fmt_duration(timeout)
    );
    attempts_failed(tr, why, attempts, start, cmd)
}

fn attempts_failed(
    tr: &mut TesterRun<'_>,
    why: String,
    attempts: u32,
    start: Instant,
    cmd: &str,
) -> Outcome {
    let lines = tr.session().map(|s| s.last_lines(10)).unwrap_or_default();
    Outcome::fail(format!("`{cmd}`: {why}"))
        .text("attempts", attempts.to_string())
        .text("elapsed", fmt_duration(start.elapsed()))
        .diag("last_lines", DiagValue::Lines(lines))
}
