//! `barrier`: meets the other testers naming this barrier, through the
//! master. The session is still read meanwhile (by its capture thread).

use std::time::{Duration, Instant};

use super::Outcome;
use crate::duration::fmt_duration;
use crate::runner::tester::TesterRun;

pub(super) fn run(tr: &mut TesterRun<'_>, b: &str, timeout: Duration) -> Outcome {
    let gen = tr.next_barrier_gen(b);
    let t0 = Instant::now();
    match tr.enter_barrier(b, gen, timeout) {
        Ok(parts) => Outcome::pass().summary(format!(
            "barrier \"{b}\" passed with {} after {}",
            parts.join(", "),
            fmt_duration(t0.elapsed())
        )),
        Err(br) => {
            tr.note(&format!("barrier \"{b}\" broken: {}", br.0));
            Outcome::fail(format!("barrier broken: {}", br.0))
                .summary(format!("barrier \"{b}\" broken: {}", br.0))
        }
    }
}
