//! `run`: starts a command in the session, after the previous one ended.

use std::time::Duration;

use dtest_trace::EventData;

use super::Outcome;
use crate::duration::fmt_duration;
use crate::runner::tester::TesterRun;
use crate::session::SessionError;

pub(super) fn run(tr: &mut TesterRun<'_>, cmd: &str, wait: Duration) -> Outcome {
    let until = tr.until(wait);
    let s = match tr.session() {
        Ok(s) => s,
        Err(o) => return o,
    };
    match s.wait_end(&until) {
        Ok(_) => {}
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
        Ok(Ok(())) => Outcome::pass(),
        Ok(Err(e)) => Outcome::fail(e.to_string()),
        Err(o) => o,
    }
}
