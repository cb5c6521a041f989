//! The part of a trace a chart draws, read in one streaming pass.
//!
//! [`Events`] holds the events of the window (by index, time or barrier; see
//! [`Options`]) with their clocks, the other side of each of their messages
//! (index and actor, even when it is outside the window), the clock frontier
//! of the highlighted events, and what is known of the rest of the trace.
//! Reading stops as soon as nothing more is needed: after the window, once
//! every message sent in it has been received and every highlighted event
//! has been seen. So the memory a chart takes is that of its window (plus the
//! messages in flight when it starts), not that of the trace.

use std::collections::HashMap;
use std::io::Read;

use dtest_trace::{
    clock, ActorId, Dir, Event, EventData, Header, Kind, MsgId, Reader, Trace, Warning,
};

use crate::error::{Error, Result};
use crate::{Bound, Options};

/// Most events a window may hold: past this, narrowing it is the answer.
pub const MAX_WINDOW_EVENTS: usize = 500_000;

/// The events of a chart's window and what it needs to know of the rest.
#[derive(Clone, Debug)]
pub struct Events {
    /// The trace's header.
    pub header: Header,
    first: u64,
    events: Vec<Event>,
    by_actor: Vec<Vec<u64>>,
    partner: Vec<Option<(u64, ActorId)>>,
    /// Number of events of the trace, when it was read to its end.
    pub total: Option<u64>,
    /// Whether the trace has its `end` event; `None` when it was not read to
    /// its end (the window ends earlier).
    pub complete: Option<bool>,
    /// The `end` event's outcome and summary, if it was read.
    pub end: Option<(bool, String)>,
    /// What the reader noticed (torn tail, cut events).
    pub warnings: Vec<Warning>,
    hits: Vec<u64>,
    frontier: Option<Vec<u32>>,
}

impl Events {
    /// Reads the window `opts` asks for from a trace reader, in one pass.
    pub fn read<R: Read>(mut reader: Reader<R>, opts: &Options) -> Result<Events> {
        let mut c = Collector::new(reader.header().clone(), opts)?;
        let mut stopped = false;
        while let Some(e) = reader.next_event()? {
            if !c.push(e)? {
                stopped = true;
                break;
            }
        }
        let complete = (!stopped).then(|| reader.is_complete());
        c.finish(complete, reader.warnings().to_vec())
    }

    /// Takes the window `opts` asks for from a trace in memory.
    pub fn from_trace(trace: &Trace, opts: &Options) -> Result<Events> {
        let mut c = Collector::new(trace.header.clone(), opts)?;
        let mut stopped = false;
        for e in &trace.events {
            // A receive shows its send's data (hand-built traces may leave
            // it empty).
            let fixed;
            let e = match (e.dir, trace.partner(e.index)) {
                (Dir::Recv, Some(s)) => {
                    let mut r = e.clone();
                    r.data = trace.events[s as usize].data.clone();
                    fixed = r;
                    &fixed
                }
                _ => e,
            };
            if !c.push(e)? {
                stopped = true;
                break;
            }
        }
        let complete = (!stopped).then_some(trace.complete);
        c.finish(complete, trace.warnings.clone())
    }

    /// Index of the first event of the window.
    pub fn from(&self) -> u64 {
        self.first
    }

    /// One past the index of the last event of the window.
    pub fn to(&self) -> u64 {
        self.first + self.events.len() as u64
    }

    /// Number of events in the window.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the window is empty (only for a trace without events).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Event `i` of the trace, which must be in the window.
    pub fn event(&self, i: u64) -> &Event {
        &self.events[(i - self.first) as usize]
    }

    /// Event `i` of the trace, if it is in the window.
    pub fn get(&self, i: u64) -> Option<&Event> {
        self.events.get(i.checked_sub(self.first)? as usize)
    }

    /// The events of the window, in trace order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Indexes of the window's events of `actor`, in order.
    pub fn actor_events(&self, actor: ActorId) -> &[u64] {
        self.by_actor
            .get(actor as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The other side of message event `i` (in the window): its index and
    /// actor, wherever it is in the trace; `None` if it is not in the trace.
    pub fn partner(&self, i: u64) -> Option<(u64, ActorId)> {
        *self.partner.get(i.checked_sub(self.first)? as usize)?
    }

    /// Event `a` happened before event `b` (both in the window).
    pub fn happens_before(&self, a: u64, b: u64) -> bool {
        let (ea, eb) = (self.event(a), self.event(b));
        a != b && clock::event_precedes(ea.clock.as_slice(), ea.actor, eb.clock.as_slice())
    }

    /// Neither of two events of the window happened before the other.
    pub fn concurrent(&self, a: u64, b: u64) -> bool {
        a != b && !self.happens_before(a, b) && !self.happens_before(b, a)
    }

    /// The name of an actor.
    pub fn actor_name(&self, id: ActorId) -> &str {
        self.header.actor_name(id)
    }

    /// Whether event `i` is one of the highlighted events.
    pub fn is_hit(&self, i: u64) -> bool {
        self.hits.binary_search(&i).is_ok()
    }

    /// Whether event `i` (in the window) happened before a highlighted
    /// event; `None` when no highlight was asked for.
    pub fn in_hit_past(&self, i: u64) -> Option<bool> {
        let f = self.frontier.as_ref()?;
        let e = self.event(i);
        let mine = e.clock.get(e.actor);
        Some(mine > 0 && f.get(e.actor as usize).is_some_and(|&m| mine <= m))
    }

    /// Whether a highlight was asked for.
    pub fn highlighting(&self) -> bool {
        self.frontier.is_some()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Before,
    In,
    After,
}

/// The streaming selection: fed every event in order, keeps the window.
struct Collector<'o> {
    opts: &'o Options,
    header: Header,
    phase: Phase,
    first: u64,
    events: Vec<Event>,
    partner: Vec<Option<(u64, ActorId)>>,
    /// Messages sent before the window and not yet received.
    before: HashMap<MsgId, (u64, ActorId)>,
    /// Messages sent in the window and not yet received: their position.
    open: HashMap<MsgId, usize>,
    /// Barrier names released before the window (for error messages).
    barriers: Vec<String>,
    /// `--to-barrier`: leave messages of its release still to be received.
    release_left: Option<usize>,
    hits: Vec<u64>,
    next_hit: usize,
    frontier: Option<Vec<u32>>,
    seen: u64,
    last_time: u64,
    end: Option<(bool, String)>,
}

impl<'o> Collector<'o> {
    fn new(header: Header, opts: &'o Options) -> Result<Self> {
        if let (Some(Bound::Index(a)), Some(Bound::Index(b))) = (opts.from, opts.to) {
            if b < a {
                return Err(Error::EmptyWindow(format!(
                    "--from {a} --to {b}: the window ends before it starts"
                )));
            }
        }
        if let (Some(Bound::Time(a)), Some(Bound::Time(b))) = (opts.from, opts.to) {
            if b < a {
                return Err(Error::EmptyWindow(format!(
                    "--from {} --to {}: the window ends before it starts",
                    crate::text::secs(a),
                    crate::text::secs(b)
                )));
            }
        }
        let n = header.actors.len();
        let mut hits = opts.highlight.clone().unwrap_or_default();
        hits.sort_unstable();
        hits.dedup();
        Ok(Collector {
            opts,
            header,
            phase: Phase::Before,
            first: 0,
            events: Vec::new(),
            partner: Vec::new(),
            before: HashMap::new(),
            open: HashMap::new(),
            barriers: Vec::new(),
            release_left: None,
            frontier: opts.highlight.as_ref().map(|_| vec![0; n]),
            hits,
            next_hit: 0,
            seen: 0,
            last_time: 0,
            end: None,
        })
    }

    fn starts(&self, e: &Event) -> bool {
        if let Some(name) = &self.opts.from_barrier {
            return is_release(e, name);
        }
        match self.opts.from {
            None => true,
            Some(Bound::Index(n)) => e.index >= n,
            Some(Bound::Time(t)) => e.time_ns >= t,
        }
    }

    /// Takes one event; returns false when nothing more is needed.
    fn push(&mut self, e: &Event) -> Result<bool> {
        self.seen = e.index + 1;
        self.last_time = e.time_ns;
        if let EventData::End { ok, summary } = &e.data {
            self.end = Some((*ok, summary.clone()));
        }
        if self.phase == Phase::Before && self.starts(e) {
            self.phase = Phase::In;
            self.first = e.index;
        }
        if self.phase == Phase::In {
            if let Some(Bound::Time(t)) = self.opts.to {
                if e.time_ns > t {
                    self.phase = Phase::After;
                }
            }
        }
        match self.phase {
            Phase::Before => {
                if let EventData::BarrierLeave { name, .. } = &e.data {
                    if e.dir == Dir::Send
                        && self.barriers.len() < 100
                        && !self.barriers.contains(name)
                    {
                        self.barriers.push(name.clone());
                    }
                }
                match (e.dir, e.msg) {
                    (Dir::Send, Some(m)) => {
                        self.before.insert(m, (e.index, e.actor));
                    }
                    (Dir::Recv, Some(m)) => {
                        self.before.remove(&m);
                    }
                    _ => {}
                }
            }
            Phase::In => {
                if self.events.len() >= MAX_WINDOW_EVENTS {
                    return Err(Error::TooBig(format!(
                        "the window holds more than {MAX_WINDOW_EVENTS} events (from #{}); \
                         narrow it with --from/--to (an event index, or a time such as 2.5s), \
                         --from-barrier/--to-barrier, --actors or --kinds",
                        self.first
                    )));
                }
                let pos = self.events.len();
                let mut partner = None;
                match (e.dir, e.msg) {
                    (Dir::Send, Some(m)) => {
                        self.open.insert(m, pos);
                    }
                    (Dir::Recv, Some(m)) => {
                        if let Some(s) = self.open.remove(&m) {
                            self.partner[s] = Some((e.index, e.actor));
                            partner = Some((self.events[s].index, self.events[s].actor));
                        } else {
                            partner = self.before.remove(&m);
                        }
                    }
                    _ => {}
                }
                self.events.push(e.clone());
                self.partner.push(partner);
                if let Some(name) = &self.opts.to_barrier {
                    if self.release_left.is_none() && is_release(e, name) {
                        if let EventData::BarrierLeave { participants, .. } = &e.data {
                            self.release_left = Some(participants.len().max(1));
                        }
                    }
                    if let (Some(left), EventData::BarrierLeave { name: n, .. }) =
                        (self.release_left.as_mut(), &e.data)
                    {
                        if e.dir == Dir::Recv && n == name {
                            *left = left.saturating_sub(1);
                            if *left == 0 {
                                self.phase = Phase::After;
                            }
                        }
                    }
                }
                if let Some(Bound::Index(n)) = self.opts.to {
                    if e.index >= n {
                        self.phase = Phase::After;
                    }
                }
            }
            Phase::After => {
                if let (Dir::Recv, Some(m)) = (e.dir, e.msg) {
                    if let Some(s) = self.open.remove(&m) {
                        self.partner[s] = Some((e.index, e.actor));
                    }
                }
            }
        }
        while self.next_hit < self.hits.len() && self.hits[self.next_hit] <= e.index {
            if self.hits[self.next_hit] == e.index {
                if let Some(f) = self.frontier.as_mut() {
                    for (m, &c) in f.iter_mut().zip(e.clock.as_slice()) {
                        *m = (*m).max(c);
                    }
                }
            }
            self.next_hit += 1;
        }
        Ok(!(self.phase == Phase::After
            && self.open.is_empty()
            && self.next_hit == self.hits.len()))
    }

    fn finish(self, complete: Option<bool>, warnings: Vec<Warning>) -> Result<Events> {
        if let Some(&h) = self.hits.get(self.next_hit) {
            return Err(Error::HighlightOutOfRange {
                index: h,
                len: self.seen as usize,
            });
        }
        if self.phase == Phase::Before && self.seen > 0 {
            let len = self.seen;
            let msg = if let Some(name) = &self.opts.from_barrier {
                if self.barriers.is_empty() {
                    format!(
                        "--from-barrier {}: no barrier was released in this trace",
                        crate::text::printable(name)
                    )
                } else {
                    format!(
                        "--from-barrier {}: no barrier of that name was released (released: {})",
                        crate::text::printable(name),
                        crate::text::printable(&{
                            let mut l = self.barriers[..self.barriers.len().min(20)].join(", ");
                            if self.barriers.len() > 20 {
                                l.push_str(", ...");
                            }
                            l
                        })
                    )
                }
            } else {
                match self.opts.from {
                    Some(Bound::Time(t)) => format!(
                        "--from {} is after the last event of the trace (at {})",
                        crate::text::secs(t),
                        crate::text::secs(self.last_time)
                    ),
                    Some(Bound::Index(n)) => format!(
                        "--from {n} selects no event of the {len} events (indexes 0 to {})",
                        len - 1
                    ),
                    None => "no event".into(),
                }
            };
            return Err(Error::EmptyWindow(msg));
        }
        if self.phase != Phase::Before && self.events.is_empty() {
            return Err(Error::EmptyWindow(
                "the window selects no event (--to is before the first event of --from)".into(),
            ));
        }
        if let (Some(name), None) = (&self.opts.to_barrier, self.release_left) {
            return Err(Error::EmptyWindow(format!(
                "--to-barrier {}: no barrier of that name was released in the window",
                crate::text::printable(name)
            )));
        }
        let mut by_actor = vec![Vec::new(); self.header.actors.len()];
        for e in &self.events {
            if let Some(v) = by_actor.get_mut(e.actor as usize) {
                v.push(e.index);
            }
        }
        let total = complete.map(|_| self.seen);
        Ok(Events {
            header: self.header,
            first: self.first,
            events: self.events,
            by_actor,
            partner: self.partner,
            total,
            complete,
            end: self.end,
            warnings,
            hits: self.hits,
            frontier: self.frontier,
        })
    }
}

/// Whether `e` is the first event of the release of barrier `name` (a
/// `barrier_leave` send of the master).
fn is_release(e: &Event, name: &str) -> bool {
    e.dir == Dir::Send
        && e.data.kind() == Kind::BarrierLeave
        && matches!(&e.data, EventData::BarrierLeave { name: n, .. } if n == name)
}
