//! `sleep`: pauses the tester (its session is still read), stop-aware.

use std::time::Duration;

use super::Outcome;
use crate::runner::tester::TesterRun;
use crate::session::SessionError;

pub(super) fn run(tr: &mut TesterRun<'_>, d: Duration) -> Outcome {
    let until = tr.until(d);
    loop {
        match until.check("") {
            Ok(()) => std::thread::sleep(
                until
                    .slice()
                    .saturating_duration_since(std::time::Instant::now()),
            ),
            Err(SessionError::TimedOut(_)) => return Outcome::pass(),
            Err(e) => return Outcome::fail(e.to_string()),
        }
    }
}
