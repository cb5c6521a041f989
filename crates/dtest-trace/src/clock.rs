//! Vector clocks: one counter per actor, ordered by happens-before.
//!
//! Entry `i` of an actor's clock counts the events of actor `i` that happened
//! before (or are) the actor's current event. A local event or a send ticks the
//! actor's own entry; a receive first takes the element-wise maximum with the
//! sender's clock at the send, then ticks.

use std::cmp::Ordering;

use crate::model::ActorId;

/// A vector clock over the actors of one trace (entry `i` is actor `i`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct VectorClock(pub Vec<u32>);

impl VectorClock {
    /// The zero clock for `n` actors.
    pub fn new(n: usize) -> VectorClock {
        VectorClock(vec![0; n])
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Entry of `actor` (0 when outside the clock).
    pub fn get(&self, actor: ActorId) -> u32 {
        self.0.get(actor as usize).copied().unwrap_or(0)
    }

    /// The entries as a slice.
    pub fn as_slice(&self) -> &[u32] {
        &self.0
    }

    /// Increments `actor`'s own entry (growing the clock if needed).
    pub fn tick(&mut self, actor: ActorId) {
        let i = actor as usize;
        if i >= self.0.len() {
            self.0.resize(i + 1, 0);
        }
        self.0[i] += 1;
    }

    /// Element-wise maximum with `other`.
    pub fn merge(&mut self, other: &[u32]) {
        if other.len() > self.0.len() {
            self.0.resize(other.len(), 0);
        }
        for (a, &b) in self.0.iter_mut().zip(other) {
            if b > *a {
                *a = b;
            }
        }
    }

    /// Partial order of two clocks: `Some(Less)` when `self` happened before
    /// `other`, `None` when they are concurrent.
    pub fn compare(&self, other: &VectorClock) -> Option<Ordering> {
        compare(&self.0, &other.0)
    }

    /// `self` happened before `other` (strictly).
    pub fn happens_before(&self, other: &VectorClock) -> bool {
        happens_before(&self.0, &other.0)
    }

    /// Neither happened before the other, and they differ.
    pub fn concurrent(&self, other: &VectorClock) -> bool {
        compare(&self.0, &other.0).is_none()
    }

    /// Every entry of `self` is at least the entry of `other`.
    pub fn dominates(&self, other: &VectorClock) -> bool {
        dominates(&self.0, &other.0)
    }
}

impl PartialOrd for VectorClock {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.compare(other)
    }
}

fn at(c: &[u32], i: usize) -> u32 {
    c.get(i).copied().unwrap_or(0)
}

/// Partial order of two clock slices (missing entries count as 0).
pub fn compare(a: &[u32], b: &[u32]) -> Option<Ordering> {
    let n = a.len().max(b.len());
    let (mut less, mut greater) = (false, false);
    for i in 0..n {
        match at(a, i).cmp(&at(b, i)) {
            Ordering::Less => less = true,
            Ordering::Greater => greater = true,
            Ordering::Equal => {}
        }
        if less && greater {
            return None;
        }
    }
    Some(match (less, greater) {
        (false, false) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    })
}

/// `a` happened strictly before `b`.
pub fn happens_before(a: &[u32], b: &[u32]) -> bool {
    compare(a, b) == Some(Ordering::Less)
}

/// Every entry of `a` is at least the entry of `b`.
pub fn dominates(a: &[u32], b: &[u32]) -> bool {
    let n = a.len().max(b.len());
    (0..n).all(|i| at(a, i) >= at(b, i))
}

/// Event `e` (clock `ce`, on actor `actor_e`) happened before or is event `f`
/// (clock `cf`): the O(1) test for events of one run, `ce[actor_e] <= cf[actor_e]`.
pub fn event_precedes(ce: &[u32], actor_e: ActorId, cf: &[u32]) -> bool {
    at(ce, actor_e as usize) <= at(cf, actor_e as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_merge_compare() {
        let mut a = VectorClock::new(3);
        let mut b = VectorClock::new(3);
        a.tick(0);
        b.tick(1);
        assert!(a.concurrent(&b));
        let snapshot = a.clone();
        b.merge(snapshot.as_slice());
        b.tick(1);
        assert!(snapshot.happens_before(&b));
        assert!(!b.happens_before(&snapshot));
        assert_eq!(b.0, vec![1, 2, 0]);
        assert!(b.dominates(&snapshot));
        assert_eq!(a.compare(&a.clone()), Some(Ordering::Equal));
        assert!(event_precedes(snapshot.as_slice(), 0, b.as_slice()));
        assert!(!event_precedes(b.as_slice(), 1, snapshot.as_slice()));
    }
}
