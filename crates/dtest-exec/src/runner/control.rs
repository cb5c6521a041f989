//! The run's stop condition and the one stop-aware wait every tester uses.
//!
//! A run stops on SIGINT/SIGTERM, at its global timeout, or when a tester
//! with `on_fail = "abort-all"` fails. [`Control::until`] turns a step's
//! deadline into an [`Until`] that also carries this condition: every wait
//! of a step (connect, expect, barrier, terminate's grace, wait, sleep,
//! local, put/get) loops on [`Until::check`] with slices of at most 100 ms.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::duration::fmt_duration;
use crate::master::StopCheck;
use crate::session::{Signal, StopProbe, Until};

use super::InterruptProbe;

/// Why the run stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    Interrupted(Signal),
    Timeout(Duration),
    AbortAll(String),
}

impl Stop {
    pub(crate) fn reason(&self) -> String {
        match self {
            Stop::Interrupted(s) => format!("interrupted by SIG{s}"),
            Stop::Timeout(d) => format!("run timeout ({}) reached", fmt_duration(*d)),
            Stop::AbortAll(t) => format!("{t} aborted the run"),
        }
    }
}

/// The run's stop condition, shared by every thread of the run.
pub(crate) struct Control {
    stop: Mutex<Option<Stop>>,
    pub(crate) deadline: Instant,
    timeout: Duration,
    interrupt: Option<InterruptProbe>,
}

impl Control {
    pub(crate) fn new(timeout: Duration, interrupt: Option<InterruptProbe>) -> Arc<Control> {
        Arc::new(Control {
            stop: Mutex::new(None),
            deadline: Instant::now() + timeout,
            timeout,
            interrupt,
        })
    }

    /// The stop condition now (asks the signal probe and the clock).
    pub(crate) fn check(&self) -> Option<Stop> {
        let mut s = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        if s.is_none() {
            if let Some(sig) = self.interrupt.as_ref().and_then(|f| f()) {
                *s = Some(Stop::Interrupted(sig));
            } else if Instant::now() >= self.deadline {
                *s = Some(Stop::Timeout(self.timeout));
            }
        }
        s.clone()
    }

    /// Stops the run (the first reason wins).
    pub(crate) fn set(&self, stop: Stop) {
        let mut s = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        if s.is_none() {
            *s = Some(stop);
        }
    }

    /// The stop condition at the end of the run: `abort-all` is a failure
    /// like any other, not a stop of the whole process.
    pub(crate) fn check_final(&self) -> Option<Stop> {
        let s = self.stop.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match s {
            Some(Stop::AbortAll(_)) => None,
            other => other,
        }
    }

    /// The stop condition as a probe for the session layer.
    pub(crate) fn probe(self: &Arc<Self>) -> StopProbe {
        let c = Arc::clone(self);
        StopProbe::new(move || c.check().map(|s| s.reason()))
    }

    /// A wait bound: `d` from now, never past the run's deadline, with the
    /// stop condition.
    pub(crate) fn until(self: &Arc<Self>, d: Duration) -> Until {
        let deadline = Instant::now()
            .checked_add(d)
            .unwrap_or(self.deadline)
            .min(self.deadline);
        Until::new(deadline, self.probe())
    }

    /// A bound for clean-up after the run stopped: `d` from now, with no
    /// stop probe (clean-up must complete), but never more than 5 s past
    /// the run's deadline.
    pub(crate) fn cleanup_until(&self, d: Duration) -> Until {
        let cap = self.deadline.max(Instant::now()) + Duration::from_secs(5);
        Until::new((Instant::now() + d).min(cap), StopProbe::never())
    }
}

impl StopCheck for Control {
    fn stop_reason(&self) -> Option<String> {
        self.check().map(|s| s.reason())
    }
}
