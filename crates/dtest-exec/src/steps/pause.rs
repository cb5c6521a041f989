//! `pause` and `resume`: SIGSTOP and SIGCONT to the running command and
//! every process it started (the session's processes but its shell),
//! through [`crate::session::Channel::signal`], locally and over SSH. A
//! stalled node, in the manner of Jepsen's nemesis.
//!
//! The signal is recorded as a message from the tester to its session,
//! like `terminate`'s. When a command runs, the step first waits until the
//! shell has begun it (a signal sent before would miss it), then delivers
//! the signal again until it reaches a process (the shell prints the start
//! marker just before it forks). With no command running, the signal goes
//! to the session's background processes; the step fails when it reaches
//! none. A command still paused when its tester ends is stopped by the
//! cleanup (which continues what it kills).

use std::time::Duration;

use dtest_trace::EventData;

use super::Outcome;
use crate::runner::tester::TesterRun;
use crate::session::Signal;

/// Sends `sig` (`STOP` for `pause`, `CONT` for `resume`).
pub(super) fn run(tr: &mut TesterRun<'_>, sig: Signal, timeout: Duration) -> Outcome {
    let verb = match sig {
        Signal::Stop => "pause",
        _ => "resume",
    };
    let until = tr.until(timeout);
    let running = match tr.session() {
        Ok(s) => {
            if let Some(g) = s.gone() {
                return Outcome::fail(g);
            }
            match s.wait_started(&until) {
                Ok(r) => r,
                Err(e) => return Outcome::fail(e.to_string()),
            }
        }
        Err(o) => return o,
    };
    tr.record_to_session(EventData::Signal {
        name: sig.name().to_string(),
    });
    let s = match tr.session() {
        Ok(s) => s,
        Err(o) => return o,
    };
    let reached = loop {
        match s.signal(sig, &until) {
            Ok(Some(0)) if running && s.running() && until.check("").is_ok() => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(n) => break n,
            Err(e) => return Outcome::fail(format!("{verb}: {e}")),
        }
    };
    match reached {
        Some(0) => Outcome::fail(format!(
            "nothing to {verb}: no command runs and the session has no other process"
        )),
        // How many processes it reached varies: not in the point (the
        // signal is in the trace).
        Some(_) | None => Outcome::pass(),
    }
}
