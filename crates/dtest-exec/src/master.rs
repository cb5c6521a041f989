//! The master: barrier coordination, recorded through the `master` actor.
//!
//! A barrier is identified by its name and its *generation*: the k-th time
//! a tester names barrier `B` it meets the others' k-th `B`. The master
//! receives every `barrier_enter` before it sends any `barrier_leave`, so
//! after a barrier every participant's clock dominates every participant's
//! enter. A barrier breaks (timeout, a tester aborted, the run stopped) for
//! everyone: the testers waiting there get `barrier_broken` at once, later
//! arrivals get it as soon as they enter. Every message the master sends is
//! received by its tester before [`Master::enter`] returns.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dtest_trace::{ActorId, EventData, MsgId, Recorder};

/// Why a barrier step did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken(pub String);

#[derive(Debug, Default)]
struct Gen {
    arrived: Vec<usize>,
    broken: Option<String>,
    released: bool,
    /// Messages sent by the master, not yet received by their tester.
    pending: HashMap<usize, MsgId>,
    participants: Vec<String>,
}

/// Coordinates the barriers of one run.
#[derive(Debug)]
pub struct Master {
    state: Mutex<HashMap<(String, u32), Gen>>,
    wake: Condvar,
    /// Participants (tester indices) of each barrier name.
    members: HashMap<String, Vec<usize>>,
    names: Vec<String>,
    actors: Vec<ActorId>,
    master: ActorId,
}

/// What the run loop checks while a tester waits: whether to stop.
pub trait StopCheck {
    /// A reason to stop waiting (interrupt, run aborted), if any.
    fn stop_reason(&self) -> Option<String>;
}

impl Master {
    /// A master for testers `names` (their trace actors in `actors`) and
    /// barriers `members` (name to participating tester indices).
    pub fn new(
        names: Vec<String>,
        actors: Vec<ActorId>,
        master: ActorId,
        members: HashMap<String, Vec<usize>>,
    ) -> Master {
        Master {
            state: Mutex::new(HashMap::new()),
            wake: Condvar::new(),
            members,
            names,
            actors,
            master,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(String, u32), Gen>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn break_gen(&self, rec: &Recorder, name: &str, g: &mut Gen, reason: &str) {
        if g.broken.is_some() || g.released {
            return;
        }
        g.broken = Some(reason.to_string());
        for &t in &g.arrived {
            if let Ok(m) = rec.send(
                self.master,
                EventData::BarrierBroken {
                    name: name.to_string(),
                    reason: reason.to_string(),
                },
            ) {
                g.pending.insert(t, m);
            }
        }
    }

    /// Tester `t` enters generation `gen` of barrier `name` and waits until
    /// all participants are there (`Ok(participants)`), or the barrier
    /// breaks (`Err`): timeout at `deadline`, another tester's abort, or
    /// `stop` saying the run stops.
    pub fn enter(
        &self,
        rec: &Recorder,
        t: usize,
        name: &str,
        gen: u32,
        timeout: Duration,
        stop: &dyn StopCheck,
    ) -> Result<Vec<String>, Broken> {
        let deadline = Instant::now() + timeout;
        let me = self.actors[t];
        let enter = rec
            .send(
                me,
                EventData::BarrierEnter {
                    name: name.to_string(),
                },
            )
            .ok();
        let mut st = self.lock();
        if let Some(m) = enter {
            let _ = rec.recv(self.master, m);
        }
        let key = (name.to_string(), gen);
        let members = self.members.get(name).cloned().unwrap_or_default();
        {
            let g = st.entry(key.clone()).or_default();
            g.arrived.push(t);
            if let Some(reason) = g.broken.clone() {
                // Broken before we came: answered at once.
                if let Ok(m) = rec.send(
                    self.master,
                    EventData::BarrierBroken {
                        name: name.to_string(),
                        reason: reason.clone(),
                    },
                ) {
                    let _ = rec.recv(me, m);
                }
                return Err(Broken(reason));
            }
            if members.iter().all(|m| g.arrived.contains(m)) {
                g.released = true;
                let participants: std::sync::Arc<[String]> =
                    members.iter().map(|&i| self.names[i].clone()).collect();
                g.participants = participants.to_vec();
                for &p in &members {
                    if let Ok(m) = rec.send(
                        self.master,
                        EventData::BarrierLeave {
                            name: name.to_string(),
                            participants: std::sync::Arc::clone(&participants),
                        },
                    ) {
                        g.pending.insert(p, m);
                    }
                }
                self.wake.notify_all();
            }
        }
        loop {
            let g = st.entry(key.clone()).or_default();
            if let Some(m) = g.pending.remove(&t) {
                let _ = rec.recv(me, m);
                return if g.released {
                    Ok(g.participants.clone())
                } else {
                    Err(Broken(g.broken.clone().unwrap_or_default()))
                };
            }
            let now = Instant::now();
            let stop_reason = stop.stop_reason();
            if now >= deadline || stop_reason.is_some() {
                let reason = match stop_reason {
                    Some(r) => r,
                    None => {
                        let missing: Vec<&str> = members
                            .iter()
                            .filter(|m| !g.arrived.contains(m))
                            .map(|&m| self.names[m].as_str())
                            .collect();
                        format!(
                            "timeout after {} waiting for {}",
                            crate::duration::fmt_duration(timeout),
                            missing.join(", ")
                        )
                    }
                };
                self.break_gen(rec, name, g, &reason);
                self.wake.notify_all();
                continue;
            }
            let slice = (deadline - now).min(Duration::from_millis(50));
            st = self
                .wake
                .wait_timeout(st, slice)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Tester `t` will not join `barriers` (name, generation) any more: they
    /// break with `reason` for everyone.
    pub fn abandon(&self, rec: &Recorder, barriers: &[(String, u32)], reason: &str) {
        let mut st = self.lock();
        for (name, gen) in barriers {
            let g = st.entry((name.clone(), *gen)).or_default();
            self.break_gen(rec, name, g, reason);
        }
        self.wake.notify_all();
    }

    /// Wakes every waiting tester (they then check their stop condition).
    pub fn wake_all(&self) {
        let _g = self.lock();
        self.wake.notify_all();
    }
}
