//! `wait`: waits for the running command to end, checks its status.

use std::time::{Duration, Instant};

use dtest_trace::ExitStatus;

use super::Outcome;
use crate::duration::fmt_duration;
use crate::report::DiagValue;
use crate::runner::tester::TesterRun;
use crate::session::{SessionError, Signal};

pub(super) fn run(tr: &mut TesterRun<'_>, status: Option<i32>, timeout: Duration) -> Outcome {
    let start = Instant::now();
    let until = tr.until(timeout);
    let r = match tr.session() {
        Ok(s) => s.wait_end(&until),
        Err(o) => return o,
    };
    let st = match r {
        Ok(Some(st)) => st,
        Ok(None) => {
            if status.is_some() {
                return Outcome::fail("no command ran");
            }
            return Outcome::pass();
        }
        Err(SessionError::TimedOut(_)) => {
            return Outcome::fail(format!(
                "the command is still running after {}",
                fmt_duration(timeout)
            ))
        }
        Err(e) => return Outcome::fail(e.to_string()),
    };
    let matches = match (status, &st) {
        (None, _) => true,
        (Some(want), ExitStatus::Code(c)) => want == *c,
        (Some(want), ExitStatus::Signal(name)) => Signal::parse(name)
            .map(|s| 128 + s.number() == want)
            .unwrap_or(false),
    };
    if matches {
        Outcome::pass()
    } else {
        let lines = tr.session().map(|s| s.last_lines(10)).unwrap_or_default();
        Outcome::fail(format!("expected status {}, got {st}", status.unwrap_or(0)))
            .text("waited", fmt_duration(start.elapsed()))
            .diag("last_lines", DiagValue::Lines(lines))
    }
}
