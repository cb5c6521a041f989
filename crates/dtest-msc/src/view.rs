//! What part of a trace a chart shows: the lanes (`--actors`), the window of
//! event indexes (`--from`/`--to`) and the highlight marks (`--highlight`).

use dtest_trace::{ActorId, ActorKind, Dir, Trace};

use crate::error::{Error, Result};
use crate::Options;

/// How an event is drawn with respect to a highlight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mark {
    /// No highlight asked for.
    Plain,
    /// One of the events of the report.
    Hit,
    /// In the causal past of an event of the report.
    Past,
    /// Neither: drawn faded.
    Dim,
}

/// Where the other side of a message is, seen from a shown event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Other {
    /// Shown too: a full arrow.
    Drawn(u64),
    /// On a lane that is not shown: an arrow to the lane's edge.
    Hidden(u64, ActorId),
    /// Outside the window: an arrow to the lane's edge.
    Outside(u64, ActorId),
    /// Not in the trace at all (a message still in flight when the trace
    /// ends, or a damaged trace).
    Missing,
}

/// The shown part of a trace.
#[derive(Debug)]
pub(crate) struct View<'t> {
    pub trace: &'t Trace,
    /// The actors shown, left to right.
    pub lanes: Vec<ActorId>,
    lane_of: Vec<Option<u32>>,
    default_pos: Vec<u32>,
    /// First event index shown.
    pub from: u64,
    /// One past the last event index shown.
    pub to: u64,
    marks: Option<Vec<Mark>>,
}

/// The default lane order: masters, then each tester followed by its
/// sessions (`<tester>@<host>`), then any other actor, in table order.
pub(crate) fn default_order(trace: &Trace) -> Vec<ActorId> {
    let actors = &trace.header.actors;
    let mut order = Vec::with_capacity(actors.len());
    let mut taken = vec![false; actors.len()];
    let mut take = |i: usize, order: &mut Vec<ActorId>| {
        if !taken[i] {
            taken[i] = true;
            order.push(i as ActorId);
        }
    };
    for (i, a) in actors.iter().enumerate() {
        if a.kind == ActorKind::Master {
            take(i, &mut order);
        }
    }
    for (i, a) in actors.iter().enumerate() {
        if a.kind != ActorKind::Tester {
            continue;
        }
        take(i, &mut order);
        let prefix = format!("{}@", a.name);
        for (j, s) in actors.iter().enumerate() {
            if s.kind == ActorKind::Session && s.name.starts_with(&prefix) {
                take(j, &mut order);
            }
        }
    }
    for i in 0..actors.len() {
        take(i, &mut order);
    }
    order
}

impl<'t> View<'t> {
    pub fn new(trace: &'t Trace, opts: &Options) -> Result<View<'t>> {
        let n = trace.header.actors.len();
        let order = default_order(trace);
        let mut default_pos = vec![0; n];
        for (p, &a) in order.iter().enumerate() {
            default_pos[a as usize] = p as u32;
        }
        let lanes = match &opts.actors {
            None => order,
            Some(names) => {
                if names.is_empty() {
                    return Err(Error::BadActors("no actor to show".into()));
                }
                let mut lanes = Vec::with_capacity(names.len());
                for name in names {
                    let Some(a) = trace.header.actor_by_name(name) else {
                        let known: Vec<&str> = trace
                            .header
                            .actors
                            .iter()
                            .map(|a| a.name.as_str())
                            .collect();
                        return Err(Error::UnknownActor {
                            name: crate::text::printable(name),
                            known: crate::text::printable(&known.join(", ")),
                        });
                    };
                    if lanes.contains(&a.id) {
                        return Err(Error::BadActors(format!(
                            "actor `{}` named twice",
                            crate::text::printable(name)
                        )));
                    }
                    lanes.push(a.id);
                }
                lanes
            }
        };
        let mut lane_of = vec![None; n];
        for (l, &a) in lanes.iter().enumerate() {
            lane_of[a as usize] = Some(l as u32);
        }
        let len = trace.len() as u64;
        let from = opts.from.unwrap_or(0);
        let to = opts.to.map(|t| t.saturating_add(1).min(len)).unwrap_or(len);
        if len > 0 && (from >= len || from >= to) {
            return Err(Error::EmptyWindow(format!(
                "--from {from}{} selects no event of the {len} events (indexes 0 to {})",
                opts.to.map(|t| format!(" --to {t}")).unwrap_or_default(),
                len - 1
            )));
        }
        let mut view = View {
            trace,
            lanes,
            lane_of,
            default_pos,
            from: from.min(len),
            to,
            marks: None,
        };
        if let Some(hits) = &opts.highlight {
            view.marks = Some(marks(trace, hits)?);
        }
        Ok(view)
    }

    /// The lane of an actor, if shown.
    pub fn lane(&self, actor: ActorId) -> Option<usize> {
        self.lane_of
            .get(actor as usize)
            .copied()
            .flatten()
            .map(|l| l as usize)
    }

    /// Whether event `i` is inside the window.
    pub fn in_window(&self, i: u64) -> bool {
        i >= self.from && i < self.to
    }

    /// Whether event `i` is drawn (inside the window, on a shown lane).
    pub fn shown(&self, i: u64) -> bool {
        self.in_window(i) && self.lane(self.trace.events[i as usize].actor).is_some()
    }

    /// The other side of message event `i`.
    pub fn other(&self, i: u64) -> Other {
        match self.trace.partner(i) {
            None => Other::Missing,
            Some(j) => {
                let actor = self.trace.events[j as usize].actor;
                if !self.in_window(j) {
                    Other::Outside(j, actor)
                } else if self.lane(actor).is_none() {
                    Other::Hidden(j, actor)
                } else {
                    Other::Drawn(j)
                }
            }
        }
    }

    /// Whether an arrow from `from`'s lane towards actor `to` points left
    /// (by the default lane order, so it also works for hidden actors).
    pub fn points_left(&self, from: ActorId, to: ActorId) -> bool {
        let p = |a: ActorId| self.default_pos.get(a as usize).copied().unwrap_or(0);
        match (self.lane(from), self.lane(to)) {
            (Some(a), Some(b)) => b < a,
            _ => p(to) < p(from),
        }
    }

    /// The highlight mark of event `i`.
    pub fn mark(&self, i: u64) -> Mark {
        match &self.marks {
            None => Mark::Plain,
            Some(m) => m[i as usize],
        }
    }

    /// Whether a highlight was asked for.
    pub fn highlighting(&self) -> bool {
        self.marks.is_some()
    }
}

/// Marks the report's events, their causal past (by messages and per-actor
/// order, over the whole trace) and dims the rest.
fn marks(trace: &Trace, hits: &[u64]) -> Result<Vec<Mark>> {
    let n = trace.len();
    let mut marks = vec![Mark::Dim; n];
    let mut prev = vec![None; n];
    for a in 0..trace.header.actors.len() {
        for w in trace.actor_events(a as ActorId).windows(2) {
            prev[w[1] as usize] = Some(w[0]);
        }
    }
    let mut stack = Vec::new();
    for &h in hits {
        if h >= n as u64 {
            return Err(Error::HighlightOutOfRange { index: h, len: n });
        }
        marks[h as usize] = Mark::Hit;
        stack.push(h);
    }
    while let Some(e) = stack.pop() {
        let send = match trace.events[e as usize].dir {
            Dir::Recv => trace.partner(e),
            _ => None,
        };
        for p in [prev[e as usize], send].into_iter().flatten() {
            if marks[p as usize] == Mark::Dim {
                marks[p as usize] = Mark::Past;
                stack.push(p);
            }
        }
    }
    Ok(marks)
}
