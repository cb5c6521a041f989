//! What part of a trace a chart shows: the lanes (`--actors`, sessions
//! folded into their tester's lane or not), the window (already cut by
//! [`Events`]), the kinds (`--kinds`), the highlight marks (`--highlight`),
//! and which events a folded lane draws as one mark.

use std::collections::HashMap;

use dtest_trace::{ActorId, ActorKind, Dir, EventData, Kind};

use crate::error::{Error, Result};
use crate::source::Events;
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
    /// Shown too, on another lane: a full arrow.
    Drawn(u64),
    /// On the same lane (a tester and its own session, folded): the
    /// message is one mark on the lane.
    Own(u64),
    /// On a lane that is not shown (or of a kind not shown): an arrow to
    /// the lane's edge.
    Hidden(u64, ActorId),
    /// Outside the window: an arrow to the lane's edge.
    Outside(u64, ActorId),
    /// Not in the trace at all (a message still in flight when the trace
    /// ends, or a damaged trace).
    Missing,
}

const NONE: u32 = u32::MAX;

/// The shown part of a trace.
#[derive(Debug)]
pub(crate) struct View<'t> {
    pub trace: &'t Events,
    /// The actors heading the lanes, left to right.
    pub lanes: Vec<ActorId>,
    /// The actors drawn on each lane (the head first, then folded sessions).
    pub lane_actors: Vec<Vec<ActorId>>,
    lane_of: Vec<Option<u32>>,
    default_pos: Vec<u32>,
    /// First event index shown.
    pub from: u64,
    /// One past the last event index shown.
    pub to: u64,
    kinds: [bool; Kind::ALL.len()],
    /// Window events not drawn although on a shown lane: the receive of a
    /// message drawn as one mark by its send, the later members of a run.
    folded: Vec<bool>,
    /// Runs of output chunks from a session to its own tester drawn as one
    /// mark (by the first send): all their events, sends and receives.
    pub runs: Vec<Vec<u64>>,
    /// Fans: the `barrier_leave` sends of one release (consecutive events
    /// of one actor for one barrier), drawn on one row.
    pub fans: Vec<Vec<u64>>,
    fan_of: HashMap<u64, u32>,
    run_of: Vec<u32>,
    /// For a message (by its send index, or its receive when the send is
    /// not in the window): the text a later `match` of its receiver found
    /// in it.
    matched: HashMap<u64, String>,
    /// For a `match`: the line of output it matched in.
    match_line: HashMap<u64, String>,
    /// Whether the layout follows time (rows in time order) rather than
    /// causality alone.
    pub time_rows: bool,
    /// A compact chart ([`crate::Detail::Compact`]).
    pub compact: bool,
    /// Whether the compact chart left the master's lane out.
    pub no_master: bool,
    /// For each window event drawn as part of another mark (compact
    /// charts, see [`crate::attach`]): that mark.
    host_of: Vec<u64>,
    /// For each host: the marks drawn with it, in order.
    with: HashMap<u64, Vec<u64>>,
    /// For a host repeated in a row (see [`crate::attach`]): how many more
    /// times, and when the last repeat ended (ns).
    repeats: HashMap<u64, (u32, u64, usize)>,
}

const NO_HOST: u64 = u64::MAX;

/// The default lane order: masters, then each tester followed by its
/// sessions (`<tester>@<host>`), then any other actor, in table order.
pub(crate) fn default_order(header: &dtest_trace::Header) -> Vec<ActorId> {
    let actors = &header.actors;
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
        for j in sessions_of(header, i) {
            take(j, &mut order);
        }
    }
    for i in 0..actors.len() {
        take(i, &mut order);
    }
    order
}

/// The sessions of tester `t` (`<tester>@<host>`).
fn sessions_of(header: &dtest_trace::Header, t: usize) -> Vec<usize> {
    let prefix = format!("{}@", header.actors[t].name);
    header
        .actors
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == ActorKind::Session && s.name.starts_with(&prefix))
        .map(|(j, _)| j)
        .collect()
}

impl<'t> View<'t> {
    pub fn new(trace: &'t Events, opts: &Options) -> Result<View<'t>> {
        let header = &trace.header;
        let n = header.actors.len();
        let order = default_order(header);
        let mut default_pos = vec![0; n];
        for (p, &a) in order.iter().enumerate() {
            default_pos[a as usize] = p as u32;
        }
        let compact = opts.detail == crate::Detail::Compact;
        let listed = match &opts.actors {
            // A compact chart draws no master lane when the master did
            // nothing but barrier bookkeeping (and the end, which the
            // subtitle says).
            None if compact && order.len() > 1 => {
                let busy = |m: ActorId| {
                    (trace.from()..trace.to()).any(|i| {
                        let e = trace.event(i);
                        e.actor == m && !bookkeeping(e) && e.kind() != Kind::End
                    })
                };
                order
                    .into_iter()
                    .filter(|&a| header.actors[a as usize].kind != ActorKind::Master || busy(a))
                    .collect()
            }
            None => order,
            Some(names) => {
                if names.is_empty() {
                    return Err(Error::BadActors("no actor to show".into()));
                }
                let mut lanes = Vec::with_capacity(names.len());
                for name in names {
                    let Some(a) = header.actor_by_name(name) else {
                        let known: Vec<&str> =
                            header.actors.iter().map(|a| a.name.as_str()).collect();
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
                if !opts.sessions {
                    // A tester's sessions come with it (folded into its lane).
                    for &a in lanes.clone().iter() {
                        if header.actors[a as usize].kind == ActorKind::Tester {
                            for s in sessions_of(header, a as usize) {
                                if !lanes.contains(&(s as ActorId)) {
                                    lanes.push(s as ActorId);
                                }
                            }
                        }
                    }
                }
                lanes
            }
        };
        // Fold: a session goes on its tester's lane when the tester is shown.
        let mut lanes: Vec<ActorId> = Vec::new();
        let mut lane_actors: Vec<Vec<ActorId>> = Vec::new();
        let mut lane_of = vec![None; n];
        let owner = |s: ActorId| -> Option<ActorId> {
            let a = &header.actors[s as usize];
            if a.kind != ActorKind::Session {
                return None;
            }
            let (t, _) = a.name.split_once('@')?;
            let t = header.actor_by_name(t)?;
            (t.kind == ActorKind::Tester).then_some(t.id)
        };
        for &a in &listed {
            if !opts.sessions {
                if let Some(t) = owner(a) {
                    if listed.contains(&t) {
                        continue;
                    }
                }
            }
            lane_of[a as usize] = Some(lanes.len() as u32);
            lanes.push(a);
            lane_actors.push(vec![a]);
        }
        if !opts.sessions {
            for &a in &listed {
                if let Some(t) = owner(a) {
                    if let Some(l) = lane_of[t as usize] {
                        if lane_of[a as usize].is_none() {
                            lane_of[a as usize] = Some(l);
                            lane_actors[l as usize].push(a);
                        }
                    }
                }
            }
        }
        let mut kinds = [true; Kind::ALL.len()];
        if let Some(k) = &opts.kinds {
            kinds = [false; Kind::ALL.len()];
            for &x in k {
                kinds[x as usize] = true;
            }
        }
        let no_master = lanes.len() < n
            && opts.actors.is_none()
            && header.actors.iter().any(|a| a.kind == ActorKind::Master)
            && header
                .actors
                .iter()
                .all(|a| a.kind != ActorKind::Master || lane_of[a.id as usize].is_none());
        let m = trace.len();
        let mut view = View {
            trace,
            lanes,
            lane_actors,
            lane_of,
            default_pos,
            from: trace.from(),
            to: trace.to(),
            kinds,
            folded: vec![false; m],
            runs: Vec::new(),
            fans: Vec::new(),
            fan_of: HashMap::new(),
            run_of: vec![NONE; m],
            matched: HashMap::new(),
            match_line: HashMap::new(),
            time_rows: opts.layout == crate::LayoutKind::Time,
            compact,
            no_master: false,
            host_of: vec![NO_HOST; m],
            with: HashMap::new(),
            repeats: HashMap::new(),
        };
        view.no_master = no_master && compact;
        view.fold();
        view.find_fans();
        view.find_matches();
        // Lines a property matched come first: the user asked about them.
        for (i, line) in &opts.matched_lines {
            let line = line.trim();
            let Some(e) = trace.get(*i) else { continue };
            if let EventData::Output { bytes, .. } = &e.data {
                if !line.is_empty() && String::from_utf8_lossy(bytes).contains(line) {
                    let key = view.message_key(*i);
                    view.matched.insert(key, line.to_string());
                }
            }
        }
        if compact {
            let found = crate::attach::find(&view, view.slice_ns());
            for (mark, host) in found.pairs {
                let k = (mark - view.from) as usize;
                view.folded[k] = true;
                view.host_of[k] = host;
                view.with.entry(host).or_default().push(mark);
            }
            for (host, times, last, own) in found.repeats {
                view.repeats.insert(host, (times, last, own));
            }
        }
        Ok(view)
    }

    /// A moment: the time a row of the time layout may span, and the
    /// longest a compact mark may last: 1/100 of the window, at least 1 ms.
    pub fn slice_ns(&self) -> u64 {
        let t = self.trace;
        match (t.get(self.from), t.get(self.to.saturating_sub(1))) {
            (Some(a), Some(b)) => (b.time_ns.saturating_sub(a.time_ns) / 100).max(1_000_000),
            _ => 1_000_000,
        }
    }

    /// The mark that draws event `i` (before compact attachments): itself
    /// when shown, the first send of its run of output, the send of a
    /// message to its own lane; `None` when `i` is not drawn at all.
    pub fn mark_of(&self, i: u64) -> Option<u64> {
        if !self.visible(i) {
            return None;
        }
        if let Some(run) = self.run(i) {
            return run.first().copied();
        }
        if self.trace.event(i).dir == Dir::Recv {
            if let Other::Own(s) = self.other(i) {
                if self.in_window(s) {
                    return Some(self.run(s).and_then(|r| r.first().copied()).unwrap_or(s));
                }
            }
        }
        (self.shown(i) || self.host(i).is_some()).then_some(i)
    }

    /// The events mark `m` draws: those of its run, or itself and the
    /// other side of a message to its own lane.
    pub fn mark_events(&self, m: u64) -> Vec<u64> {
        if let Some(run) = self.run(m) {
            return run.to_vec();
        }
        match self.other(m) {
            Other::Own(j) if self.in_window(j) => vec![m, j],
            _ => vec![m],
        }
    }

    /// The marks drawn as part of mark `i` (compact charts), in order.
    pub fn attached(&self, i: u64) -> &[u64] {
        self.with.get(&i).map(Vec::as_slice).unwrap_or(&[])
    }

    /// For a mark repeated in a row (compact charts): how many more times,
    /// and when the last repeat ended (ns).
    pub fn repeats(&self, i: u64) -> Option<(u32, u64)> {
        self.repeats.get(&i).map(|&(n, last, _)| (n, last))
    }

    /// The marks drawn with mark `i` that are its own (not its repeats').
    pub fn own_attached(&self, i: u64) -> &[u64] {
        let all = self.attached(i);
        match self.repeats.get(&i) {
            Some(&(_, _, own)) => &all[..own.min(all.len())],
            None => all,
        }
    }

    /// The mark event `i` is drawn with (compact charts), if any.
    pub fn host(&self, i: u64) -> Option<u64> {
        let h = *self.host_of.get(i.checked_sub(self.from)? as usize)?;
        (h != NO_HOST).then_some(h)
    }

    /// The shown event whose mark draws event `i`, if any.
    pub fn drawn_by(&self, i: u64) -> Option<u64> {
        let m = self.mark_of(i)?;
        Some(self.host(m).unwrap_or(m))
    }

    /// Whether event `i` is a barrier condition on its lane: a participant's
    /// receive of a release (or of a broken barrier), drawn as a hexagon.
    pub fn is_condition(&self, i: u64) -> bool {
        let e = self.trace.event(i);
        e.dir == Dir::Recv && matches!(e.kind(), Kind::BarrierLeave | Kind::BarrierBroken)
    }

    /// Whether event `i` is a tester's `barrier_enter` drawn as a mark on
    /// its lane (compact charts draw no arrow to the master).
    pub fn enter_mark(&self, i: u64) -> bool {
        let e = self.trace.event(i);
        self.compact
            && e.kind() == Kind::BarrierEnter
            && e.dir == Dir::Send
            && !matches!(self.other(i), Other::Drawn(_))
    }

    /// Marks what folded lanes draw as one mark: a message between a
    /// tester and its own session is drawn by its send alone (by its
    /// receive when the send is before the window), and a run of output
    /// chunks that nothing else interrupts on either side is drawn by its
    /// first send.
    fn fold(&mut self) {
        let t = self.trace;
        for i in self.from..self.to {
            if !self.visible(i) {
                continue;
            }
            let e = t.event(i);
            if e.dir == Dir::Recv {
                if let Other::Own(j) = self.other(i) {
                    // Drawn by its send, when the send is in the window.
                    if self.in_window(j) {
                        self.folded[(i - self.from) as usize] = true;
                    }
                }
            }
        }
        if !self.kinds[Kind::Output as usize] {
            return;
        }
        // Runs: per receiving actor, consecutive own-lane output receives
        // whose sends are consecutive events of one session.
        for a in 0..t.header.actors.len() {
            let mut run: Vec<(u64, u64)> = Vec::new();
            let close = |run: &mut Vec<(u64, u64)>, v: &mut View| {
                if run.len() >= 2 {
                    let r = v.runs.len() as u32;
                    let mut all = Vec::with_capacity(2 * run.len());
                    for (k, &(s, rc)) in run.iter().enumerate() {
                        all.push(s);
                        all.push(rc);
                        v.run_of[(s - v.from) as usize] = r;
                        v.run_of[(rc - v.from) as usize] = r;
                        if k > 0 {
                            v.folded[(s - v.from) as usize] = true;
                        }
                    }
                    all.sort_unstable();
                    v.runs.push(all);
                }
                run.clear();
            };
            for &r in t.actor_events(a as ActorId) {
                let e = t.event(r);
                let send = match (e.dir, e.kind(), self.other(r)) {
                    (Dir::Recv, Kind::Output, Other::Own(s))
                        if self.visible(r) && self.in_window(s) =>
                    {
                        Some(s)
                    }
                    _ => None,
                };
                let Some(s) = send else {
                    close(&mut run, self);
                    continue;
                };
                let extends = run.last().is_some_and(|&(ps, _)| {
                    let (pa, sa) = (t.event(ps).actor, t.event(s).actor);
                    let chain = t.actor_events(sa);
                    pa == sa
                        && chain
                            .binary_search(&ps)
                            .is_ok_and(|k| chain.get(k + 1) == Some(&s))
                });
                if !extends {
                    close(&mut run, self);
                }
                run.push((s, r));
            }
            close(&mut run, self);
        }
    }

    /// Finds the fans: runs of shown `barrier_leave` sends of one actor,
    /// one barrier name, consecutive in the actor's events.
    fn find_fans(&mut self) {
        let t = self.trace;
        for a in 0..t.header.actors.len() {
            let mut cur: Vec<u64> = Vec::new();
            let mut name: Option<&str> = None;
            for &i in t.actor_events(a as ActorId) {
                let e = t.event(i);
                let this = match (&e.data, e.dir) {
                    (EventData::BarrierLeave { name, .. }, Dir::Send) if self.shown(i) => {
                        Some(name.as_str())
                    }
                    _ => None,
                };
                if this.is_none() || this != name {
                    if cur.len() >= 2 {
                        let f = self.fans.len() as u32;
                        for &x in &cur {
                            self.fan_of.insert(x, f);
                        }
                        self.fans.push(std::mem::take(&mut cur));
                    }
                    cur.clear();
                }
                name = this;
                if this.is_some() {
                    cur.push(i);
                }
            }
            if cur.len() >= 2 {
                let f = self.fans.len() as u32;
                for &x in &cur {
                    self.fan_of.insert(x, f);
                }
                self.fans.push(cur);
            }
        }
    }

    /// The fan event `i` belongs to, if any.
    pub fn fan(&self, i: u64) -> Option<&[u64]> {
        let f = *self.fan_of.get(&i)?;
        self.fans.get(f as usize).map(Vec::as_slice)
    }

    /// Links each `match` to the output it found its text in: the most
    /// recent output message received by the matching actor since its last
    /// match whose text contains the matched text.
    fn find_matches(&mut self) {
        let t = self.trace;
        for a in 0..t.header.actors.len() {
            let mut pending: Vec<u64> = Vec::new();
            for &i in t.actor_events(a as ActorId) {
                let e = t.event(i);
                match (&e.data, e.dir) {
                    (EventData::Output { .. }, Dir::Recv) => pending.push(i),
                    (EventData::Match { matched, .. }, _) if !matched.is_empty() => {
                        for &r in pending.iter().rev() {
                            if let EventData::Output { bytes, .. } = &t.event(r).data {
                                let text = String::from_utf8_lossy(bytes);
                                if let Some(line) = crate::describe::line_with(&text, matched) {
                                    self.match_line.insert(i, line.to_string());
                                    let key = self.message_key(r);
                                    self.matched.insert(key, matched.clone());
                                    break;
                                }
                            }
                        }
                        pending.clear();
                    }
                    _ => {}
                }
            }
        }
    }

    /// The event a message is known by: its send when in the window, else
    /// its receive.
    fn message_key(&self, i: u64) -> u64 {
        let e = self.trace.event(i);
        match (e.dir, self.trace.partner(i)) {
            (Dir::Recv, Some((s, _))) if self.in_window(s) => s,
            _ => i,
        }
    }

    /// The matched text found in message `i`'s output (or in the run it
    /// draws), if a `match` found it there.
    pub fn matched_in(&self, i: u64) -> Option<&str> {
        if let Some(r) = self.run(i) {
            return r
                .iter()
                .rev()
                .find_map(|&x| self.matched.get(&x).map(String::as_str));
        }
        self.matched.get(&self.message_key(i)).map(String::as_str)
    }

    /// The line of output the `match` event `i` matched in, if known.
    pub fn match_line(&self, i: u64) -> Option<&str> {
        self.match_line.get(&i).map(String::as_str)
    }

    /// When the mark of event `i` says what it says: for a run of output,
    /// the time of the chunk holding its telling line (the matched one,
    /// else the last chunk with a non-blank line); else the event's time.
    pub fn telling_time(&self, i: u64) -> u64 {
        let t = self.trace;
        let Some(run) = self.run(i) else {
            return t.event(i).time_ns;
        };
        let sends = run.iter().copied().filter(|&x| t.event(x).dir == Dir::Send);
        let text = |x: u64| match &t.event(x).data {
            EventData::Output { bytes, .. } => String::from_utf8_lossy(bytes).into_owned(),
            _ => String::new(),
        };
        let matched = self.matched_in(i);
        let pick = match matched {
            Some(m) => sends.clone().rfind(|&x| text(x).contains(m)),
            None => None,
        }
        .or_else(|| sends.clone().rfind(|&x| !text(x).trim().is_empty()))
        .or_else(|| sends.clone().next_back());
        pick.map(|x| t.event(x).time_ns)
            .unwrap_or_else(|| t.event(i).time_ns)
    }

    /// The run of output chunks event `i` belongs to, if any.
    pub fn run(&self, i: u64) -> Option<&[u64]> {
        let r = *self.run_of.get(i.checked_sub(self.from)? as usize)?;
        self.runs.get(r as usize).map(Vec::as_slice)
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

    /// Whether event `i` is in the window, on a shown lane, of a shown kind.
    fn visible(&self, i: u64) -> bool {
        if !self.in_window(i) {
            return false;
        }
        let e = self.trace.event(i);
        self.lane(e.actor).is_some()
            && self.kinds[e.kind() as usize]
            && !(self.compact && bookkeeping(e))
    }

    /// Whether event `i` is drawn (visible and not folded into a mark).
    pub fn shown(&self, i: u64) -> bool {
        self.visible(i) && !self.folded[(i - self.from) as usize]
    }

    /// The other side of message event `i`.
    pub fn other(&self, i: u64) -> Other {
        let t = self.trace;
        match t.partner(i) {
            None => Other::Missing,
            Some((j, actor)) => {
                let me = self.lane(t.event(i).actor);
                let there = self.lane(actor);
                if me.is_some() && me == there && self.kinds[t.event(i).kind() as usize] {
                    Other::Own(j)
                } else if !self.in_window(j) {
                    Other::Outside(j, actor)
                } else if there.is_none()
                    || !self.kinds[t.event(j).kind() as usize]
                    || (self.compact && bookkeeping(t.event(j)))
                {
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
            (Some(a), Some(b)) if a != b => b < a,
            _ => p(to) < p(from),
        }
    }

    /// The highlight mark of event `i`. A mark standing for several events
    /// (a message on its own lane, a run) takes the strongest of theirs.
    pub fn mark(&self, i: u64) -> Mark {
        let one = |x: u64| match self.trace.in_hit_past(x) {
            None => Mark::Plain,
            Some(_) if self.trace.is_hit(x) => Mark::Hit,
            Some(true) => Mark::Past,
            Some(false) => Mark::Dim,
        };
        let rank = |m: Mark| match m {
            Mark::Hit => 3,
            Mark::Past => 2,
            Mark::Dim => 1,
            Mark::Plain => 0,
        };
        let mut best = one(i);
        let mut take = |x: u64| {
            let m = one(x);
            if rank(m) > rank(best) {
                best = m;
            }
        };
        for &m in std::iter::once(&i).chain(self.attached(i)) {
            self.mark_events(m).into_iter().for_each(&mut take);
        }
        best
    }

    /// Whether a highlight was asked for.
    pub fn highlighting(&self) -> bool {
        self.trace.highlighting()
    }
}

/// Whether `e` is the master's side of barrier bookkeeping (a tester
/// entering, the master releasing or breaking a barrier), which compact
/// charts do not draw: the release is drawn on the participants' lanes.
fn bookkeeping(e: &dtest_trace::Event) -> bool {
    matches!(
        (e.kind(), e.dir),
        (Kind::BarrierEnter, Dir::Recv) | (Kind::BarrierLeave | Kind::BarrierBroken, Dir::Send)
    )
}
