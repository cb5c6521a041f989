//! The master: barrier coordination, recorded through the `master` actor.
//!
//! A barrier is identified by its name and its *generation*: the k-th time
//! a tester names barrier `B` it meets the others' k-th `B`. The master
//! receives every `barrier_enter` before it sends any `barrier_leave`, so
//! after a barrier every participant's clock dominates every participant's
//! enter. A barrier breaks (timeout, a tester aborted, the run stopped) for
//! everyone: the testers waiting there get `barrier_broken` at once, later
//! arrivals get it as soon as they enter. Every message the master sends is
//! received by its tester before [`Master::enter`] returns. A tester that
//! names a barrier it is not a participant of is answered `barrier_broken`
//! at once.
//!
//! # Coordination does not depend on the trace
//!
//! The barriers work the same whether the [`Recorder`] succeeds or fails
//! (disk full, file size limit, recorder already finished): the master
//! decides and answers first, and records what it can. A message whose send
//! could not be recorded is answered all the same, and its receive is then
//! not recorded either, so the trace misses whole messages, never one side
//! of them. The first recording error is kept: [`Master::trace_error`]
//! returns it, so the runner can report that the trace is incomplete, while
//! [`Master::enter`] keeps returning the barrier's outcome only.
//!
//! # How it is fast
//!
//! Each barrier name has its own lock, over its generations still in play
//! (released generations are dropped at once, broken ones when their last
//! participant has come), and nothing is recorded under it: a tester's
//! `barrier_enter` is received by the master *before* its arrival counts,
//! so the arrival that completes a generation finds every enter received.
//! Each tester has its own wake-up slot (a mutex and a condition variable).
//! A release or a break is decided under the barrier's lock; the master's
//! messages are then recorded and put into the slots of the testers
//! concerned outside that lock, so a release wakes each participant once,
//! and nobody else. Per barrier the path allocates only the events' own
//! strings, one flag per participant and the participant list `enter`
//! returns. A waiter wakes at least every 50 ms to check its deadline and
//! its stop condition; [`Master::wake_all`] makes them all check at once.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use dtest_trace::{ActorId, EventData, MsgId, Recorder};

/// The longest a waiter goes without checking its deadline and its stop
/// condition.
const SLICE: Duration = Duration::from_millis(50);

/// Why a barrier step did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken(pub String);

/// One generation of a barrier, from its first arrival (or its abandon)
/// until it is released, or, broken, until all its participants came.
#[derive(Debug)]
struct Gen {
    /// Which participants (by position in [`Barrier::members`]) arrived.
    here: Vec<bool>,
    /// How many of them.
    count: usize,
    /// Why it broke: what later arrivals are answered.
    broken: Option<String>,
}

impl Gen {
    fn new(members: usize) -> Gen {
        Gen {
            here: vec![false; members],
            count: 0,
            broken: None,
        }
    }
}

/// A barrier name and its generations.
#[derive(Debug)]
struct Barrier {
    name: String,
    /// Participating testers, without repeats.
    members: Vec<usize>,
    /// Position in `members` of each tester, `None` for non-participants.
    pos: Vec<Option<usize>>,
    /// The participants' names, shared by every `barrier_leave`.
    participants: Arc<[String]>,
    /// The generations in play.
    gens: Mutex<HashMap<u32, Gen>>,
}

impl Barrier {
    fn lock(&self) -> MutexGuard<'_, HashMap<u32, Gen>> {
        self.gens.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The master's answer to a waiting tester.
#[derive(Debug)]
struct Answer {
    barrier: usize,
    gen: u32,
    /// The message recorded for it (`None`: recording failed).
    msg: Option<MsgId>,
    /// `None`: released; `Some(reason)`: broken.
    broken: Option<String>,
}

/// A tester's wake-up slot, on its own cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Slot {
    answer: Mutex<Option<Answer>>,
    wake: Condvar,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, Option<Answer>> {
        self.answer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why a waiter or [`Master::abandon`] breaks a generation.
enum Cause<'a> {
    Timeout(Duration),
    Reason(&'a str),
}

/// Coordinates the barriers of one run.
#[derive(Debug)]
pub struct Master {
    barriers: Vec<Barrier>,
    /// Barrier index by name.
    index: HashMap<String, usize>,
    /// One per tester.
    slots: Vec<Slot>,
    names: Vec<String>,
    actors: Vec<ActorId>,
    master: ActorId,
    /// The first recording error.
    trace_error: OnceLock<String>,
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
        let testers = names.len().min(actors.len());
        let mut barriers = Vec::with_capacity(members.len());
        let mut index = HashMap::with_capacity(members.len());
        for (name, list) in members {
            let mut pos = vec![None; testers];
            let mut ms = Vec::with_capacity(list.len());
            for t in list {
                if t < testers && pos[t].is_none() {
                    pos[t] = Some(ms.len());
                    ms.push(t);
                }
            }
            let participants: Arc<[String]> = ms.iter().map(|&t| names[t].clone()).collect();
            index.insert(name.clone(), barriers.len());
            barriers.push(Barrier {
                name,
                members: ms,
                pos,
                participants,
                gens: Mutex::new(HashMap::new()),
            });
        }
        Master {
            barriers,
            index,
            slots: (0..testers).map(|_| Slot::default()).collect(),
            names,
            actors,
            master,
            trace_error: OnceLock::new(),
        }
    }

    /// The first error the trace recorder returned to the master (a
    /// barrier event that could not be recorded), if any. The barriers
    /// worked all the same; the trace misses those events.
    pub fn trace_error(&self) -> Option<String> {
        self.trace_error.get().cloned()
    }

    /// The value of a recording, keeping the first error.
    fn note<T>(&self, r: dtest_trace::Result<T>, what: &str, name: &str) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.trace_error
                    .get_or_init(|| format!("cannot record {what} of barrier \"{name}\": {e}"));
                None
            }
        }
    }

    /// Puts `a` into tester `t`'s slot and wakes it.
    fn deliver(&self, t: usize, a: Answer) {
        let slot = &self.slots[t];
        *slot.lock() = Some(a);
        slot.wake.notify_one();
    }

    /// Tester `t` enters generation `gen` of barrier `name` and waits until
    /// all participants are there (`Ok(participants)`), or the barrier
    /// breaks (`Err`): `timeout` elapsed, another tester's abort, or `stop`
    /// saying the run stops (checked at least every 50 ms, and at each
    /// [`Master::wake_all`]). The outcome does not depend on the recorder:
    /// a recording error is kept for [`Master::trace_error`].
    pub fn enter(
        &self,
        rec: &Recorder,
        t: usize,
        name: &str,
        gen: u32,
        timeout: Duration,
        stop: &dyn StopCheck,
    ) -> Result<Vec<String>, Broken> {
        let deadline = Instant::now().checked_add(timeout);
        let Some(&me) = self.actors.get(t).filter(|_| t < self.slots.len()) else {
            return Err(Broken(format!("tester {t} is unknown to the master")));
        };
        let entered = self.note(
            rec.send(
                me,
                EventData::BarrierEnter {
                    name: name.to_string(),
                },
            ),
            "barrier_enter",
            name,
        );
        // The master receives the enter before the arrival counts (under
        // the barrier's lock, below): so whoever counts the last arrival
        // and releases finds every enter received, without recording under
        // the lock.
        if let Some(m) = entered {
            self.note(rec.recv(self.master, m), "barrier_enter", name);
        }
        let found = self
            .index
            .get(name)
            .map(|&b| (b, &self.barriers[b]))
            .and_then(|(b, bar)| Some((b, bar, bar.pos[t]?)));
        let Some((b, bar, p)) = found else {
            let reason = format!(
                "{} is not a participant of barrier \"{name}\"",
                self.names[t]
            );
            return Err(self.answer_now(rec, me, name, reason));
        };
        let mut gens = bar.lock();
        let g = gens
            .entry(gen)
            .or_insert_with(|| Gen::new(bar.members.len()));
        if let Some(reason) = &g.broken {
            // Broken before we came: answered at once.
            let reason = reason.clone();
            if !g.here[p] {
                g.here[p] = true;
                g.count += 1;
                if g.count == bar.members.len() {
                    gens.remove(&gen);
                }
            }
            drop(gens);
            return Err(self.answer_now(rec, me, name, reason));
        }
        if g.here[p] {
            // Already waiting there: a caller's mistake, which must not
            // release the barrier.
            drop(gens);
            let reason = format!(
                "{} entered generation {gen} of barrier \"{name}\" twice",
                self.names[t]
            );
            return Err(self.answer_now(rec, me, name, reason));
        }
        g.here[p] = true;
        g.count += 1;
        if g.count == bar.members.len() {
            gens.remove(&gen);
            drop(gens);
            self.release(rec, b, gen);
        } else {
            drop(gens);
        }
        self.wait(rec, t, me, b, gen, deadline, timeout, stop)
    }

    /// Answers tester `me` at once that the barrier is broken.
    fn answer_now(&self, rec: &Recorder, me: ActorId, name: &str, reason: String) -> Broken {
        let sent = self.note(
            rec.send(
                self.master,
                EventData::BarrierBroken {
                    name: name.to_string(),
                    reason: reason.clone(),
                },
            ),
            "barrier_broken",
            name,
        );
        if let Some(m) = sent {
            self.note(rec.recv(me, m), "barrier_broken", name);
        }
        Broken(reason)
    }

    /// Sends `barrier_leave` to every participant of generation `gen` of
    /// barrier `b`, which all arrived (and which nobody else touches now).
    fn release(&self, rec: &Recorder, b: usize, gen: u32) {
        let bar = &self.barriers[b];
        for &t in &bar.members {
            let msg = self.note(
                rec.send(
                    self.master,
                    EventData::BarrierLeave {
                        name: bar.name.clone(),
                        participants: Arc::clone(&bar.participants),
                    },
                ),
                "barrier_leave",
                &bar.name,
            );
            self.deliver(
                t,
                Answer {
                    barrier: b,
                    gen,
                    msg,
                    broken: None,
                },
            );
        }
    }

    /// Breaks generation `gen` of barrier `b` unless it is already released
    /// or broken, and answers the testers waiting there. `create`: the
    /// generation may have no arrival yet (an abandon), else a missing
    /// generation is a released one.
    fn break_gen(&self, rec: &Recorder, b: usize, gen: u32, cause: Cause<'_>, create: bool) {
        let bar = &self.barriers[b];
        let mut gens = bar.lock();
        let g = if create {
            gens.entry(gen)
                .or_insert_with(|| Gen::new(bar.members.len()))
        } else {
            match gens.get_mut(&gen) {
                Some(g) => g,
                None => return,
            }
        };
        if g.broken.is_some() {
            return;
        }
        let reason = match cause {
            Cause::Reason(r) => r.to_string(),
            Cause::Timeout(timeout) => {
                let missing: Vec<&str> = bar
                    .members
                    .iter()
                    .zip(&g.here)
                    .filter(|(_, &h)| !h)
                    .map(|(&t, _)| self.names[t].as_str())
                    .collect();
                format!(
                    "timeout after {} waiting for {}",
                    crate::duration::fmt_duration(timeout),
                    missing.join(", ")
                )
            }
        };
        g.broken = Some(reason.clone());
        let waiting: Vec<usize> = bar
            .members
            .iter()
            .zip(&g.here)
            .filter(|(_, &h)| h)
            .map(|(&t, _)| t)
            .collect();
        drop(gens);
        for t in waiting {
            let msg = self.note(
                rec.send(
                    self.master,
                    EventData::BarrierBroken {
                        name: bar.name.clone(),
                        reason: reason.clone(),
                    },
                ),
                "barrier_broken",
                &bar.name,
            );
            self.deliver(
                t,
                Answer {
                    barrier: b,
                    gen,
                    msg,
                    broken: Some(reason.clone()),
                },
            );
        }
    }

    /// Tester `t` (actor `me`) waits for its answer at generation `gen` of
    /// barrier `b`, breaking it at `deadline` or when `stop` says so.
    #[allow(clippy::too_many_arguments)]
    fn wait(
        &self,
        rec: &Recorder,
        t: usize,
        me: ActorId,
        b: usize,
        gen: u32,
        deadline: Option<Instant>,
        timeout: Duration,
        stop: &dyn StopCheck,
    ) -> Result<Vec<String>, Broken> {
        let slot = &self.slots[t];
        let mut slice = Duration::ZERO;
        // Whether the generation is released or broken: the answer is then
        // in the slot or on its way.
        let mut decided = false;
        loop {
            let answer = {
                let mut a = slot.lock();
                if a.is_none() && !slice.is_zero() {
                    a = slot
                        .wake
                        .wait_timeout(a, slice)
                        .map(|(a, _)| a)
                        .unwrap_or_else(|e| e.into_inner().0);
                }
                a.take()
            };
            match answer {
                Some(a) if a.barrier == b && a.gen == gen => {
                    let bar = &self.barriers[b];
                    if let Some(m) = a.msg {
                        let what = if a.broken.is_some() {
                            "barrier_broken"
                        } else {
                            "barrier_leave"
                        };
                        self.note(rec.recv(me, m), what, &bar.name);
                    }
                    return match a.broken {
                        None => Ok(bar.participants.to_vec()),
                        Some(reason) => Err(Broken(reason)),
                    };
                }
                // An answer for another wait cannot happen (one answer per
                // arrival, taken before `enter` returns); dropped.
                Some(_) | None => {}
            }
            let now = Instant::now();
            if !decided {
                let cause = match stop.stop_reason() {
                    Some(r) => Some(r),
                    None if deadline.is_some_and(|d| now >= d) => None,
                    None => {
                        slice = deadline
                            .map_or(SLICE, |d| d.saturating_duration_since(now))
                            .min(SLICE);
                        continue;
                    }
                };
                let cause = match &cause {
                    Some(r) => Cause::Reason(r),
                    None => Cause::Timeout(timeout),
                };
                self.break_gen(rec, b, gen, cause, false);
                decided = true;
            }
            slice = SLICE;
        }
    }

    /// Tester `t` will not join `barriers` (name, generation) any more: they
    /// break with `reason` for everyone.
    pub fn abandon(&self, rec: &Recorder, barriers: &[(String, u32)], reason: &str) {
        for (name, gen) in barriers {
            if let Some(&b) = self.index.get(name.as_str()) {
                self.break_gen(rec, b, *gen, Cause::Reason(reason), true);
            }
        }
    }

    /// Wakes every waiting tester (they then check their stop condition).
    pub fn wake_all(&self) {
        for slot in &self.slots {
            slot.wake.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dtest_trace::{Actor, ActorKind, Dir, Header, Kind, Trace};
    use std::sync::atomic::{AtomicBool, Ordering};

    struct Never;
    impl StopCheck for Never {
        fn stop_reason(&self) -> Option<String> {
            None
        }
    }

    struct Flag(AtomicBool);
    impl StopCheck for Flag {
        fn stop_reason(&self) -> Option<String> {
            self.0
                .load(Ordering::SeqCst)
                .then(|| "run interrupted".to_string())
        }
    }

    /// A recorder for `n` testers (actors 1..=n, the master is 0) and a
    /// master whose barrier `b` has them all.
    fn setup(n: usize) -> (tempfile::TempDir, Recorder, Master) {
        let dir = tempfile::tempdir().unwrap();
        let mut actors = vec![Actor {
            id: 0,
            name: "master".into(),
            kind: ActorKind::Master,
            host: "local".into(),
        }];
        for i in 0..n {
            actors.push(Actor {
                id: 0,
                name: format!("t{i}"),
                kind: ActorKind::Tester,
                host: "local".into(),
            });
        }
        let rec = Recorder::create(&dir.path().join("t.dtrace"), Header::new("m", actors)).unwrap();
        let names: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
        let mut members = HashMap::new();
        members.insert("b".to_string(), (0..n).collect::<Vec<_>>());
        let master = Master::new(names, (1..=n as ActorId).collect(), 0, members);
        (dir, rec, master)
    }

    /// Closes the trace and returns it, checked valid with nothing in flight.
    fn finish(dir: &tempfile::TempDir, rec: &Recorder) -> Trace {
        assert!(rec.in_flight().is_empty(), "{:?}", rec.in_flight());
        rec.finish(0, true, "done").unwrap();
        let tr = Trace::load(&dir.path().join("t.dtrace")).unwrap();
        assert!(dtest_trace::validate(&tr).is_empty());
        tr
    }

    /// Testers `who` enter generation `gen` of `b` at once; each result
    /// with the time `enter` took.
    fn enter_all(
        rec: &Recorder,
        master: &Master,
        who: &[usize],
        gen: u32,
        timeout: Duration,
        stop: &(dyn StopCheck + Sync),
    ) -> Vec<(Result<Vec<String>, Broken>, Duration)> {
        std::thread::scope(|s| {
            let hs: Vec<_> = who
                .iter()
                .map(|&t| {
                    s.spawn(move || {
                        let t0 = Instant::now();
                        let r = master.enter(rec, t, "b", gen, timeout, stop);
                        (r, t0.elapsed())
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn three_testers_pass_and_the_leaves_follow_every_enter() {
        let (dir, rec, master) = setup(3);
        for gen in 0..2 {
            for (r, _) in enter_all(
                &rec,
                &master,
                &[0, 1, 2],
                gen,
                Duration::from_secs(60),
                &Never,
            ) {
                assert_eq!(r, Ok(names(&["t0", "t1", "t2"])));
            }
        }
        assert_eq!(master.trace_error(), None);
        let tr = finish(&dir, &rec);
        // Per tester: its enters (sends) and leaves (receives), in order.
        let of = |kind: Kind, dir: Dir| -> Vec<Vec<u64>> {
            (1..=3)
                .map(|a| {
                    tr.events
                        .iter()
                        .filter(|e| e.actor == a && e.kind() == kind && e.dir == dir)
                        .map(|e| e.index)
                        .collect()
                })
                .collect()
        };
        let enters = of(Kind::BarrierEnter, Dir::Send);
        let leaves = of(Kind::BarrierLeave, Dir::Recv);
        for gen in 0..2 {
            for l in &leaves {
                for e in &enters {
                    assert!(tr.happens_before(e[gen], l[gen]));
                }
            }
        }
    }

    #[test]
    fn many_testers_many_generations() {
        let (dir, rec, master) = setup(8);
        std::thread::scope(|s| {
            for t in 0..8 {
                let (rec, master) = (&rec, &master);
                s.spawn(move || {
                    for gen in 0..200 {
                        let r = master.enter(rec, t, "b", gen, Duration::from_secs(60), &Never);
                        assert_eq!(r.unwrap().len(), 8);
                    }
                });
            }
        });
        // Released generations are not kept.
        assert!(master.barriers[0].lock().is_empty());
        let tr = finish(&dir, &rec);
        assert_eq!(
            tr.events
                .iter()
                .filter(|e| e.kind() == Kind::BarrierLeave)
                .count(),
            2 * 8 * 200
        );
    }

    #[test]
    fn a_timeout_breaks_the_barrier_for_waiters_and_later_arrivals() {
        let (dir, rec, master) = setup(3);
        let timeout = Duration::from_millis(300);
        let results = enter_all(&rec, &master, &[0, 1], 0, timeout, &Never);
        // Someone waited out the deadline; a tester that arrived after the
        // break (a loaded machine) was answered at once.
        assert!(results.iter().any(|(_, took)| *took >= timeout));
        for (r, took) in results {
            let reason = r.unwrap_err().0;
            // The barrier breaks at the first deadline, naming who was
            // missing then: t2, and t1 too if a loaded machine started its
            // thread after t0's deadline.
            assert!(
                reason.contains("timeout")
                    && (reason.ends_with("waiting for t2")
                        || reason.ends_with("waiting for t1, t2")),
                "{reason}"
            );
            assert!(took < Duration::from_secs(5), "{took:?}");
        }
        // The late tester is answered at once, with the same reason.
        let t0 = Instant::now();
        let r = master.enter(&rec, 2, "b", 0, Duration::from_secs(60), &Never);
        assert!(r.unwrap_err().0.contains("t2"));
        assert!(t0.elapsed() < Duration::from_secs(1));
        // Everybody came: the broken generation is forgotten.
        assert!(master.barriers[0].lock().is_empty());
        let tr = finish(&dir, &rec);
        assert_eq!(
            tr.events
                .iter()
                .filter(|e| e.kind() == Kind::BarrierBroken && e.dir == Dir::Recv)
                .count(),
            3
        );
    }

    #[test]
    fn abandon_breaks_the_barrier_for_waiters_at_once() {
        let (dir, rec, master) = setup(3);
        let t0 = Instant::now();
        let results = std::thread::scope(|s| {
            let h =
                s.spawn(|| enter_all(&rec, &master, &[0, 1], 0, Duration::from_secs(60), &Never));
            std::thread::sleep(Duration::from_millis(200));
            master.abandon(
                &rec,
                &[("b".to_string(), 0), ("b".to_string(), 1)],
                "t2 aborted",
            );
            h.join().unwrap()
        });
        for (r, _) in results {
            assert_eq!(r, Err(Broken("t2 aborted".into())));
        }
        assert!(t0.elapsed() < Duration::from_secs(5));
        // A generation abandoned before anyone came breaks at arrival.
        let t1 = Instant::now();
        let r = master.enter(&rec, 0, "b", 1, Duration::from_secs(60), &Never);
        assert_eq!(r, Err(Broken("t2 aborted".into())));
        assert!(t1.elapsed() < Duration::from_secs(1));
        finish(&dir, &rec);
    }

    #[test]
    fn a_stop_breaks_the_barrier_within_the_check_period() {
        let (dir, rec, master) = setup(3);
        let stop = Flag(AtomicBool::new(false));
        let results = std::thread::scope(|s| {
            let h =
                s.spawn(|| enter_all(&rec, &master, &[0, 1], 0, Duration::from_secs(60), &stop));
            std::thread::sleep(Duration::from_millis(200));
            stop.0.store(true, Ordering::SeqCst);
            let t0 = Instant::now();
            let r = h.join().unwrap();
            (r, t0.elapsed())
        });
        for (r, _) in results.0 {
            assert_eq!(r, Err(Broken("run interrupted".into())));
        }
        // Without wake_all: the waiters check at least every 100 ms.
        assert!(results.1 < Duration::from_secs(1), "{:?}", results.1);
        finish(&dir, &rec);
    }

    #[test]
    fn a_non_participant_is_answered_at_once() {
        let (dir, rec, mut master) = setup(3);
        master = Master::new(
            master.names.clone(),
            master.actors.clone(),
            0,
            HashMap::from([("b".to_string(), vec![0, 1])]),
        );
        let r = master.enter(&rec, 2, "b", 0, Duration::from_secs(60), &Never);
        assert_eq!(
            r,
            Err(Broken("t2 is not a participant of barrier \"b\"".into()))
        );
        let r = master.enter(&rec, 0, "nope", 0, Duration::from_secs(60), &Never);
        assert!(r.is_err());
        finish(&dir, &rec);
    }

    /// CPU time of the calling thread.
    fn thread_cpu() -> Duration {
        // SAFETY: rusage is plain integers, for which all zeros is valid.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a valid rusage to fill.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
        assert_eq!(rc, 0);
        let tv = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }

    #[test]
    fn barriers_work_the_same_when_the_recorder_fails() {
        let (_dir, rec, master) = setup(3);
        // A finished recorder refuses every later event.
        rec.finish(0, true, "early").unwrap();
        for (r, _) in enter_all(
            &rec,
            &master,
            &[0, 1, 2],
            0,
            Duration::from_secs(60),
            &Never,
        ) {
            assert_eq!(r, Ok(names(&["t0", "t1", "t2"])));
        }
        let err = master.trace_error().expect("the recording error is kept");
        assert!(
            err.contains("barrier_enter") && err.contains("finished"),
            "{err}"
        );

        // A broken barrier: the waiters wait (no spin) and are answered.
        let timeout = Duration::from_secs(1);
        let results = std::thread::scope(|s| {
            let hs: Vec<_> = [0, 1]
                .iter()
                .map(|&t| {
                    let (rec, master) = (&rec, &master);
                    s.spawn(move || {
                        let (cpu, t0) = (thread_cpu(), Instant::now());
                        let r = master.enter(rec, t, "b", 1, timeout, &Never);
                        (r, t0.elapsed(), thread_cpu() - cpu)
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        // As in the timeout test: a tester that arrived after the break (a
        // loaded machine) was answered at once, naming t1 too.
        assert!(results.iter().any(|(_, took, _)| *took >= timeout));
        for (r, took, cpu) in results {
            assert!(r.unwrap_err().0.contains("waiting for"));
            assert!(took < Duration::from_secs(5), "{took:?}");
            assert!(
                cpu < Duration::from_millis(200),
                "{cpu:?} of CPU in a 1 s wait"
            );
        }
        // Later arrivals, and abandons, are answered at once too.
        let r = master.enter(&rec, 2, "b", 1, Duration::from_secs(60), &Never);
        assert!(r.unwrap_err().0.ends_with("waiting for t2"));
        let t0 = Instant::now();
        let results = std::thread::scope(|s| {
            let h =
                s.spawn(|| enter_all(&rec, &master, &[0, 1], 2, Duration::from_secs(60), &Never));
            std::thread::sleep(Duration::from_millis(100));
            master.abandon(&rec, &[("b".to_string(), 2)], "t2 aborted");
            h.join().unwrap()
        });
        for (r, _) in results {
            assert_eq!(r, Err(Broken("t2 aborted".into())));
        }
        assert!(t0.elapsed() < Duration::from_secs(5));
        // The first error stays.
        assert_eq!(master.trace_error(), Some(err));
    }
}
