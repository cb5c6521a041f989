//! `terminate`: stops the running command, escalating to TERM then KILL.

use std::time::Duration;

use super::Outcome;
use crate::runner::tester::TesterRun;
use crate::session::Signal;

pub(super) fn run(tr: &mut TesterRun<'_>, sig: Signal, grace: Duration) -> Outcome {
    let running = match tr.session() {
        Ok(s) => s.running(),
        Err(o) => return o,
    };
    // The point says what the step is (`terminate (INT)`), never how it
    // went: the signals sent are in the trace, and in the diagnostics of a
    // failure.
    if !running {
        return Outcome::pass();
    }
    let t = tr.stop_command(sig, grace);
    let via: Vec<&str> = t.sent.iter().map(|s| s.name()).collect();
    if t.ended {
        Outcome::pass()
    } else if let Some(r) = t.interrupted {
        Outcome::fail(r).text("signals", via.join(", "))
    } else {
        Outcome::fail(format!("the command survived {}", via.join(", ")))
    }
}
