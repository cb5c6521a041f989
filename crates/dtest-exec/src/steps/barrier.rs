//! `barrier`: meets the other testers naming this barrier, through the
//! master. The session is still read meanwhile (by its capture thread).

use std::time::{Duration, Instant};

use super::Outcome;
use crate::duration::fmt_duration;
use crate::runner::tester::TesterRun;

pub(super) fn run(tr: &mut TesterRun<'_>, b: &str, timeout: Duration) -> Outcome {
    let gen = tr.next_barrier_gen(b);
    let t0 = Instant::now();
    tr.publish(b, gen);
    match tr.enter_barrier(b, gen, timeout) {
        Ok(_) => {
            tr.import(b, gen);
            Outcome::pass()
        }
        Err(br) => {
            tr.note(&format!("barrier \"{b}\" broken: {}", br.0));
            Outcome::fail(format!("barrier broken: {}", br.0))
                .text("waited", fmt_duration(t0.elapsed()))
        }
    }
}
