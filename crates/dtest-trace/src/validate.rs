//! Consistency checks of a trace: clocks, message pairs, times.

use std::collections::HashMap;

use crate::clock;
use crate::model::{Dir, Event, Kind, MsgId};

/// One inconsistency, with the index of the event where it shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Index of the offending event.
    pub index: u64,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "event {}: {}", self.index, self.message)
    }
}

struct SendInfo {
    index: u64,
    actor: u32,
    kind: Kind,
    clock: Vec<u32>,
}

/// Streaming validator: feed it every event in order, then [`Validator::finish`].
///
/// It checks that per-actor clocks strictly increase (the own entry by one,
/// no entry going down), that a local event or a send changes no other entry,
/// that each receive's clock dominates its send's clock, that message ids pair
/// up (one send, one receive on another actor, the same kind), that times do
/// not run backwards per actor, that indexes follow positions and that nothing
/// follows the `end` event. Memory: one clock per actor plus the messages in
/// flight.
#[derive(Default)]
pub struct Validator {
    last: Vec<Option<(Vec<u32>, u64)>>,
    inflight: HashMap<MsgId, SendInfo>,
    received: HashMap<MsgId, u64>,
    next_index: u64,
    end_at: Option<u64>,
    violations: Vec<Violation>,
    limit: usize,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("violations", &self.violations.len())
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// A validator for a trace with `actors` actors.
    pub fn new(actors: usize) -> Validator {
        Validator {
            last: vec![None; actors],
            limit: 10_000,
            ..Validator::default()
        }
    }

    fn report(&mut self, index: u64, message: String) {
        if self.violations.len() < self.limit {
            self.violations.push(Violation { index, message });
        }
    }

    /// Checks one event.
    pub fn push(&mut self, e: &Event) {
        let i = e.index;
        if i != self.next_index {
            self.report(i, format!("index {i} at position {}", self.next_index));
        }
        self.next_index += 1;
        if let Some(end) = self.end_at {
            self.report(i, format!("event after the end event {end}"));
        }
        if e.kind() == Kind::End {
            self.end_at = Some(i);
        }
        let a = e.actor as usize;
        if a >= self.last.len() {
            self.report(i, format!("unknown actor {a}"));
            return;
        }
        let c = e.clock.as_slice();
        let (prev_clock, prev_time) = match &self.last[a] {
            Some((pc, pt)) => (pc.clone(), *pt),
            None => (vec![0; self.last.len()], 0),
        };
        let own_prev = prev_clock.get(a).copied().unwrap_or(0);
        if e.clock.get(e.actor) != own_prev + 1 {
            self.report(
                i,
                format!(
                    "own clock entry is {}, expected {} (one more than the actor's previous event)",
                    e.clock.get(e.actor),
                    own_prev + 1
                ),
            );
        }
        if !clock::happens_before(&prev_clock, c) {
            self.report(
                i,
                "clock does not strictly increase over the actor's previous event".into(),
            );
        }
        if e.time_ns < prev_time {
            self.report(
                i,
                format!(
                    "time runs backwards on this actor ({} ns after {} ns)",
                    e.time_ns, prev_time
                ),
            );
        }
        match (e.dir, e.msg) {
            (Dir::Send | Dir::Recv, None) => {
                self.report(i, format!("{} without a message id", e.dir.name()))
            }
            (Dir::Local, _) | (Dir::Send, _) => {
                let mut expect = prev_clock.clone();
                if let Some(x) = expect.get_mut(a) {
                    *x += 1;
                }
                if c.iter()
                    .zip(&expect)
                    .enumerate()
                    .any(|(j, (x, y))| j != a && x != y)
                {
                    self.report(
                        i,
                        format!(
                            "a {} event changed other actors' clock entries",
                            e.dir.name()
                        ),
                    );
                }
                if let (Dir::Send, Some(m)) = (e.dir, e.msg) {
                    if self.inflight.contains_key(&m) || self.received.contains_key(&m) {
                        self.report(i, format!("message id {m} sent twice"));
                    } else {
                        self.inflight.insert(
                            m,
                            SendInfo {
                                index: i,
                                actor: e.actor,
                                kind: e.kind(),
                                clock: c.to_vec(),
                            },
                        );
                    }
                }
            }
            (Dir::Recv, Some(m)) => match self.inflight.remove(&m) {
                None => {
                    if let Some(r) = self.received.get(&m) {
                        self.report(
                            i,
                            format!("message {m} received twice (first at event {r})"),
                        );
                    } else {
                        self.report(
                            i,
                            format!("receive of message {m}, which was never sent before"),
                        );
                    }
                }
                Some(s) => {
                    self.received.insert(m, i);
                    if s.actor == e.actor {
                        self.report(i, format!("message {m} received by its own sender"));
                    }
                    if s.kind != e.kind() {
                        self.report(
                            i,
                            format!(
                                "message {m} sent as {} but received as {}",
                                s.kind,
                                e.kind()
                            ),
                        );
                    }
                    if !clock::dominates(c, &s.clock) {
                        self.report(
                            i,
                            format!(
                                "receive clock does not dominate its send's (event {})",
                                s.index
                            ),
                        );
                    }
                }
            },
        }
        self.last[a] = Some((c.to_vec(), e.time_ns));
    }

    /// Ends the check. `complete` says whether the trace has its `end` event:
    /// only then is a message never received a violation (in a truncated
    /// trace it may be in flight).
    pub fn finish(mut self, complete: bool) -> Vec<Violation> {
        if complete {
            let mut open: Vec<_> = self.inflight.values().map(|s| s.index).collect();
            open.sort_unstable();
            for i in open {
                self.report(i, "message sent but never received".into());
            }
        }
        self.violations.sort_by_key(|v| v.index);
        self.violations
    }
}

/// Validates a whole in-memory trace.
pub fn validate(trace: &crate::Trace) -> Vec<Violation> {
    let mut v = Validator::new(trace.header.actors.len());
    for e in &trace.events {
        v.push(e);
    }
    v.finish(trace.complete)
}
