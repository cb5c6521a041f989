//! Compact charts: which marks of a tester's lane are drawn as part of an
//! earlier mark of the same lane (its *host*), on the host's row.
//!
//! Walking each shown tester's events in order, a mark joins the current
//! host's class when all of these hold:
//!
//! - **It belongs to what the tester was doing**, by kind: an `ok`
//!   verdict (drawn as a numbered badge); a `match` right after the output
//!   it found its text in; the tester's `barrier_enter` (the wait that
//!   follows is drawn down to the release); the output and the exit of
//!   the command (or signal) the class sent to its session, or of the
//!   session whose output the host is; a signal or input to that session;
//!   the tester's next command once the last one ended (not the same
//!   command again: that is a repeat, below).
//! - **It is of the same moment**: all its events are at most `within` ns
//!   after the host's time (its telling line's, for output; `within` is
//!   the time layout's slice), so a row still means one moment and reading
//!   down is still reading in time.
//! - **Nothing happened in between**: the previous event of each of its
//!   events' actors is already in the class. So the class is a stretch of
//!   the tester's events and of its session's, with nothing else inside,
//!   and drawing it on one row cannot hide an order that matters: every
//!   event outside the class is either before all of it or after all of
//!   it on those actors.
//!
//! The master's `ok` verdicts in a row (property points) are one mark.
//! And a session's normal `close` joins the class of the session's last
//! mark when it follows within `within` (an abnormal one, a lost session
//! or processes left behind, stays a mark of its own).
//!
//! An attached mark is not drawn on its own (the layout sees it as a hidden
//! event, which still orders the others), so causality is still never
//! drawn upside down.

use std::collections::HashSet;

use dtest_trace::{ActorId, ActorKind, Dir, EventData, Kind};

use crate::view::{Other, View};

/// The class of marks being drawn as one.
struct Class {
    /// Time of the host's first event.
    t0: u64,
    /// Every event drawn by the class (marks, folded receives, runs).
    events: HashSet<u64>,
    /// The session the class's last command or signal went to.
    cmd: Option<ActorId>,
    /// The class's last command (its start mark), and whether its exit is
    /// in the class.
    last_start: Option<u64>,
    ended: bool,
}

impl Class {
    fn new(view: &View, host: u64, events: Vec<u64>) -> Class {
        let t = view.trace;
        // Where the mark is drawn in time (a run of output: where its
        // telling line arrived).
        let t0 = view.telling_time(host);
        let e = t.event(host);
        let cmd = match (e.kind(), e.dir, view.other(host)) {
            // (The receive may be outside the window: its actor from the
            // pairing.)
            (Kind::Start | Kind::Signal | Kind::Input, Dir::Send, Other::Own(_)) => {
                t.partner(host).map(|(_, a)| a)
            }
            // Output of a session: more of it, and its exit, may follow.
            (Kind::Output, Dir::Send, Other::Own(_)) => Some(e.actor),
            _ => None,
        };
        Class {
            t0,
            events: events.into_iter().collect(),
            cmd,
            last_start: (e.kind() == Kind::Start && cmd.is_some()).then_some(host),
            ended: false,
        }
    }

    /// Takes mark `m` (drawing `evs`) into the class.
    fn take(&mut self, view: &View, m: u64, evs: Vec<u64>) {
        let t = view.trace;
        let e = t.event(m);
        match e.kind() {
            Kind::Start | Kind::Signal | Kind::Input => {
                self.cmd = t.partner(m).map(|(_, a)| a);
                if e.kind() == Kind::Start {
                    self.last_start = Some(m);
                    self.ended = false;
                }
            }
            Kind::Exit if self.cmd == Some(e.actor) => self.ended = true,
            _ => {}
        }
        self.events.extend(evs);
    }

    /// Whether mark `m` (drawing `evs`) joins the class; `prev` is the mark
    /// just before it on the tester.
    fn accepts(&self, view: &View, m: u64, evs: &[u64], prev: u64, within: u64) -> bool {
        let t = view.trace;
        let e = t.event(m);
        let kind = match (&e.data, e.dir) {
            (
                EventData::Verdict {
                    ok: true,
                    directive: None,
                    ..
                },
                Dir::Local,
            ) => true,
            (EventData::Match { .. }, Dir::Local) => t.event(prev).kind() == Kind::Output,
            (EventData::BarrierEnter { .. }, Dir::Send) => true,
            (EventData::Output { .. } | EventData::Exit { .. }, Dir::Send) => {
                self.cmd == Some(e.actor) && matches!(view.other(m), Other::Own(_))
            }
            // The tester's next command in the same moment, once the last
            // one ended (not the same command again: that is a repeat);
            // a signal or input to the running one.
            (EventData::Start { command }, Dir::Send) => {
                matches!(view.other(m), Other::Own(_))
                    && (self.cmd.is_none() || self.ended)
                    && self.last_start.is_none_or(|s| {
                        !matches!(&t.event(s).data, EventData::Start { command: c } if c == command)
                    })
            }
            (EventData::Signal { .. } | EventData::Input { .. }, Dir::Send) => {
                matches!(view.other(m), Other::Own(_))
            }
            _ => false,
        };
        kind && evs
            .iter()
            .all(|&y| t.event(y).time_ns <= self.t0.saturating_add(within))
            && self.adjoins(view, evs)
    }

    /// Whether nothing happened between the class and `evs`: the previous
    /// event of each of their actors is in the class or in `evs`.
    fn adjoins(&self, view: &View, evs: &[u64]) -> bool {
        let t = view.trace;
        evs.iter().all(|&y| {
            let chain = t.actor_events(t.event(y).actor);
            chain.binary_search(&y).is_ok_and(|k| {
                k > 0 && (self.events.contains(&chain[k - 1]) || evs.contains(&chain[k - 1]))
            })
        })
    }
}

/// What [`find`] found.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// `(mark, host)`: each mark drawn as part of its host.
    pub pairs: Vec<(u64, u64)>,
    /// `(host, times, last, own)`: a host whose class was repeated `times`
    /// more times in a row (the same command, output and exit: a `poll`'s
    /// attempts), the last repeat ending at `last` (ns); the first `own`
    /// marks drawn with the host are its own class's, the rest repeats'.
    pub repeats: Vec<(u64, u32, u64, usize)>,
}

/// The attachments of a view. `within` is the longest a class may last,
/// in ns.
///
/// Then, on each lane, a class that repeats the one before it (nothing
/// else in between on the tester, the same command, output and exit, no
/// verdict: a `poll`'s attempts) is drawn with it; the mark says how many
/// times (its tooltip until when), and a bar on the lane shows how long.
pub(crate) fn find(view: &View, within: u64) -> Found {
    let t = view.trace;
    let mut found = Found::default();
    for (a, actor) in t.header.actors.iter().enumerate() {
        if actor.kind != ActorKind::Tester || view.lane(a as ActorId).is_none() {
            continue;
        }
        // The classes of this lane: host, marks, and whether the class
        // right before it on the tester is the previous one.
        let mut classes: Vec<(u64, Vec<u64>, bool)> = Vec::new();
        let mut cur: Option<Class> = None;
        let mut last: Option<u64> = None;
        let mut next_follows = false;
        for &x in t.actor_events(a as ActorId) {
            let Some(m) = view.mark_of(x) else {
                cur = None;
                last = None;
                next_follows = false;
                continue;
            };
            if Some(m) == last {
                continue;
            }
            let prev = last.replace(m);
            let evs = view.mark_events(m);
            match (&mut cur, prev) {
                (Some(c), Some(p)) if c.accepts(view, m, &evs, p, within) => {
                    c.take(view, m, evs);
                    if let Some(cl) = classes.last_mut() {
                        cl.1.push(m);
                    }
                }
                // A mark drawn as an arrow (a session on a lane of its
                // own) has no box to carry others: it hosts nothing.
                _ if !can_host(view, m) => {
                    cur = None;
                    next_follows = false;
                }
                _ => {
                    // Nothing in between on the session either.
                    let follows =
                        next_follows && cur.as_ref().is_some_and(|c| c.adjoins(view, &evs));
                    cur = Some(Class::new(view, m, evs));
                    classes.push((m, Vec::new(), follows));
                    next_follows = true;
                }
            }
        }
        // Repeats: folded into the first of their series.
        let mut k = 0;
        while k < classes.len() {
            let (host, ref marks, _) = classes[k];
            let sig = signature(view, host, marks);
            let mut j = k + 1;
            let mut last_ns = 0;
            while j < classes.len()
                && classes[j].2
                && sig.is_some()
                && signature(view, classes[j].0, &classes[j].1) == sig
            {
                let (h, ref ms, _) = classes[j];
                for &m in std::iter::once(&h).chain(ms) {
                    found.pairs.push((m, host));
                    for y in view.mark_events(m) {
                        last_ns = last_ns.max(t.event(y).time_ns);
                    }
                }
                j += 1;
            }
            for &m in marks {
                found.pairs.push((m, host));
            }
            if j > k + 1 {
                found
                    .repeats
                    .push((host, (j - k - 1) as u32, last_ns, marks.len()));
            }
            k = j;
        }
    }
    closes(view, within, &mut found);
    master_verdicts(view, within, &mut found);
    found.pairs.sort_unstable();
    found
}

/// `ok` verdicts the master gives in a row within a moment (the property
/// points of `exec --check`) are one mark, listing them.
fn master_verdicts(view: &View, within: u64, found: &mut Found) {
    let t = view.trace;
    let ok = |x: u64| {
        view.shown(x)
            && matches!(
                t.event(x).data,
                EventData::Verdict {
                    ok: true,
                    directive: None,
                    ..
                }
            )
    };
    for (a, actor) in t.header.actors.iter().enumerate() {
        if actor.kind != ActorKind::Master || view.lane(a as ActorId).is_none() {
            continue;
        }
        let mut host: Option<u64> = None;
        for &x in t.actor_events(a as ActorId) {
            if !ok(x) {
                host = None;
                continue;
            }
            match host {
                Some(h) if t.event(x).time_ns <= t.event(h).time_ns.saturating_add(within) => {
                    found.pairs.push((x, h));
                }
                _ => host = Some(x),
            }
        }
    }
}

/// A session's normal `close` (the shell ended, nothing left behind) right
/// after its last mark (within `within` of it, nothing else of the session
/// or of its tester in between) is drawn with that mark.
fn closes(view: &View, within: u64, found: &mut Found) {
    let t = view.trace;
    let host: std::collections::HashMap<u64, u64> = found.pairs.iter().copied().collect();
    let mut more = Vec::new();
    for (s, actor) in t.header.actors.iter().enumerate() {
        if actor.kind != ActorKind::Session {
            continue;
        }
        let chain = t.actor_events(s as ActorId);
        for (k, &c) in chain.iter().enumerate() {
            let normal = match &t.event(c).data {
                EventData::Close { reason } => {
                    reason == "closed"
                        || (reason.starts_with("closed (shell status ")
                            && reason.ends_with(')')
                            && !reason.contains(';'))
                }
                _ => false,
            };
            if k == 0 || !normal || !view.shown(c) {
                continue;
            }
            let Some(m) = view.mark_of(chain[k - 1]) else {
                continue;
            };
            let h = host.get(&m).copied().unwrap_or(m);
            let Some(lane) = view.lane(s as ActorId) else {
                continue;
            };
            // And nothing of the tester came after that mark (the close
            // is not tied to the tester by a message: only time says it
            // came after the tester's last step).
            let time = t.event(c).time_ns;
            let tester = view.lanes[lane];
            let last = t
                .actor_events(tester)
                .iter()
                .take_while(|&&x| t.event(x).time_ns <= time)
                .last()
                .and_then(|&x| view.mark_of(x))
                .map(|x| host.get(&x).copied().unwrap_or(x));
            if view.lane(t.event(h).actor) == Some(lane)
                && can_host(view, h)
                && last.is_none_or(|x| x == h)
                && time <= view.telling_time(h).saturating_add(within)
            {
                more.push((c, h));
            }
        }
    }
    found.pairs.extend(more);
}

/// Whether mark `m` is drawn as a box or a condition on its lane, which can
/// carry the marks drawn with it (their words, a badge).
fn can_host(view: &View, m: u64) -> bool {
    let e = view.trace.event(m);
    e.dir == Dir::Local
        || matches!(view.other(m), Other::Own(_))
        || view.enter_mark(m)
        || view.is_condition(m)
}

/// What a class of a command says (its command, output and exit), to
/// tell repeats; `None` for a class that is not a command or holds a
/// verdict or anything else.
fn signature(view: &View, host: u64, marks: &[u64]) -> Option<Vec<(Kind, Vec<u8>)>> {
    let t = view.trace;
    let mut sig = Vec::new();
    for &m in std::iter::once(&host).chain(marks) {
        let e = t.event(m);
        let bytes = match &e.data {
            EventData::Start { command } if m == host => command.as_bytes().to_vec(),
            EventData::Output { bytes, .. } if m != host => match view.run(m) {
                Some(run) => crate::describe::run_text(view, run, 1 << 16).into_bytes(),
                None => bytes.clone(),
            },
            EventData::Exit { status } if m != host => status.to_string().into_bytes(),
            _ => return None,
        };
        sig.push((e.kind(), bytes));
    }
    Some(sig)
}
