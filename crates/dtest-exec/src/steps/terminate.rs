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
    if !running {
        return Outcome::pass().summary(format!("terminate ({sig}): no command running"));
    }
    let t = tr.stop_command(sig, grace);
    let via: Vec<&str> = t.sent.iter().map(|s| s.name()).collect();
    if t.ended {
        let st = tr
            .session()
            .ok()
            .and_then(|s| s.last_exit())
            .map(|s| s.to_string())
            .unwrap_or_else(|| "?".into());
        Outcome::pass().summary(format!(
            "terminate ({}): command ended with status {st}",
            via.join(" -> ")
        ))
    } else if let Some(r) = t.interrupted {
        Outcome::fail(r)
    } else {
        Outcome::fail(format!("the command survived {}", via.join(", ")))
    }
}
