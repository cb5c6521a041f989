//! `run`: starts a command in the session, after the previous one ended;
//! with `status`, also waits for its end and checks its exit status (the
//! same check as `wait`'s `status`), all in one point.

use std::time::Duration;

use dtest_trace::EventData;

use super::Outcome;
use crate::duration::fmt_duration;
use crate::runner::tester::TesterRun;
use crate::session::SessionError;

pub(super) fn run(
    tr: &mut TesterRun<'_>,
    cmd: &str,
    status: Option<i32>,
    wait: Duration,
) -> Outcome {
    let mut note = None;
    let o = start(tr, cmd, status, wait, &mut note);
    match note {
        Some(m) => {
            tr.note(&m);
            o.text("unchecked", m)
        }
        None => o,
    }
}

fn start(
    tr: &mut TesterRun<'_>,
    cmd: &str,
    status: Option<i32>,
    wait: Duration,
    note: &mut Option<String>,
) -> Outcome {
    let until = tr.until(wait);
    if let Err(o) = tr.session() {
        return o;
    }
    // The previous command, if started by a `run` without `status` and no
    // step checked it, is checked here: its end is seen now.
    let unchecked = super::take_unchecked(tr);
    let s = match tr.session() {
        Ok(s) => s,
        Err(o) => return o,
    };
    match s.wait_end(&until) {
        Ok(st) => {
            if let (Some(c), Some(st)) = (unchecked, st) {
                *note = super::unchecked_message(&c, &st);
            }
        }
        Err(SessionError::TimedOut(_)) => {
            return Outcome::fail(format!(
                "the previous command is still running after {} (add a wait or terminate step)",
                fmt_duration(wait)
            ))
        }
        Err(e) => return Outcome::fail(e.to_string()),
    }
    if let Some(g) = s.gone() {
        return Outcome::fail(g);
    }
    tr.record_to_session(EventData::Start {
        command: cmd.to_string(),
    });
    tr.log_input(format!("{cmd}\n").as_bytes());
    let until = tr.until(wait);
    match tr.session().map(|s| s.run(cmd, &until)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Outcome::fail(e.to_string()),
        Err(o) => return o,
    }
    let Some(want) = status else {
        return Outcome::pass();
    };
    let mut o = super::wait::run(tr, Some(want), wait);
    // The status seen goes to the failure message and the diagnostics.
    if !o.ok {
        if let Some(m) = &o.message {
            o.message = Some(format!("`{cmd}`: {m}"));
        }
    }
    o
}
