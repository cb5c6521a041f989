//! The evaluator: a property's value at the first event, in time linear in
//! the trace length.
//!
//! Full mode computes, for every node in id order (children first), the set
//! of events where it holds: future operators in one backward pass, past
//! operators in one forward pass, metric intervals with two pointers over
//! the (sorted) times. Past-only mode (`G p` with `p` past-only, or a
//! past-only formula) streams the events once and keeps only a constant
//! state per node (plus, for an interval `[a, b]` with `a > 0` or a counted
//! window, the times of the child's events inside the window).
//!
//! Truncated traces (no `end` event) are evaluated twice at once: `lo`
//! assumes the unseen rest of the trace is as bad as it can be for every
//! strong future operator, `hi` as good as it can be. Negation swaps the
//! two. A property holds when `lo` holds at the first event, is violated
//! when `hi` does not, and is inconclusive otherwise. On a complete trace
//! `lo == hi` (only `lo` is computed).

// Index loops over parallel columns read better than zipped iterators here.
#![allow(clippy::needless_range_loop)]

use std::collections::{HashMap, VecDeque};

use crate::columns::{Bits, Columns, NONE};
use crate::ir::{Ir, JoinOp, Node, NodeId, PropertyIr, Win};

/// The verdict of a property on a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The property holds.
    Holds,
    /// The property is violated.
    Violated,
    /// The trace is truncated and the verdict depends on what is missing.
    Inconclusive,
}

impl Verdict {
    /// `holds`, `VIOLATED`, `inconclusive` (the text report's words).
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Violated => "VIOLATED",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// One line of an explanation: an event (if any) and what about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The event the note is about.
    pub event: Option<u64>,
    /// What is true or false there.
    pub message: String,
}

/// The result of evaluating one property on one trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The verdict.
    pub verdict: Verdict,
    /// Why (for violations, and for inconclusive verdicts).
    pub notes: Vec<Note>,
}

/// Values of a node: `lo`, and `hi` when it differs (truncated traces).
#[derive(Clone, Debug)]
struct Vals {
    lo: Bits,
    hi: Option<Bits>,
}

impl Vals {
    fn hi(&self) -> &Bits {
        self.hi.as_ref().unwrap_or(&self.lo)
    }
}

/// Evaluation context for one property on one trace.
struct Ctx<'a> {
    ir: &'a Ir,
    cols: &'a Columns,
    /// The events looked at: all of them, or a prefix (to explain a
    /// past-only violation, which the prefix decides).
    n: usize,
    truncated: bool,
}

/// Checks one property.
pub fn check(ir: &Ir, prop: &PropertyIr, cols: &Columns) -> Outcome {
    let mut ctx = Ctx {
        ir,
        cols,
        n: cols.n,
        truncated: !cols.complete,
    };
    let root = prop.root;
    if cols.n == 0 {
        let lo = ctx.virtual_value(root, false);
        let hi = ctx.virtual_value(root, true);
        let verdict = verdict_of(lo, hi);
        let notes = if verdict == Verdict::Holds {
            vec![]
        } else {
            vec![Note {
                event: None,
                message: "the trace has no event".into(),
            }]
        };
        return Outcome { verdict, notes };
    }
    // Past-only fast path: stream with constant state per node.
    if let Some(bad) = ir.always_past(root) {
        let mut s = Stream::new(ir, bad, Some(cols), cols.n_actors());
        let mut first_bad = None;
        for i in 0..cols.n {
            if s.step(i, &[], &cols.cur(i)) {
                first_bad = Some(i);
                break;
            }
        }
        match first_bad {
            None if cols.complete => {
                return Outcome {
                    verdict: Verdict::Holds,
                    notes: vec![],
                }
            }
            None => {
                return Outcome {
                    verdict: Verdict::Inconclusive,
                    notes: vec![Note {
                        event: None,
                        message: "no violation so far, but the trace is truncated (no end event)"
                            .into(),
                    }],
                }
            }
            Some(i) => {
                // Past-only: the prefix up to the violation decides it, so
                // the explanation only evaluates that prefix.
                ctx.n = i + 1;
                ctx.truncated = false;
            }
        }
    } else if ir.is_past_only(root) {
        let mut s = Stream::new(ir, root, Some(cols), cols.n_actors());
        let v = s.step(0, &[], &cols.cur(0));
        if v {
            return Outcome {
                verdict: Verdict::Holds,
                notes: vec![],
            };
        }
    }
    let vals = ctx.eval_all(root);
    let v = &vals[&root];
    let verdict = verdict_of(v.lo.get(0), v.hi().get(0));
    let mut notes = Vec::new();
    match verdict {
        Verdict::Holds => {}
        Verdict::Violated => {
            let mut ex = Explainer {
                ctx: &ctx,
                vals: &vals,
                notes: &mut notes,
                pessimistic: false,
            };
            ex.explain(root, 0, false, 0);
        }
        Verdict::Inconclusive => {
            notes.push(Note {
                event: None,
                message: "the trace is truncated (no end event) and the verdict depends on what came after it".into(),
            });
            let mut ex = Explainer {
                ctx: &ctx,
                vals: &vals,
                notes: &mut notes,
                pessimistic: true,
            };
            ex.explain(root, 0, false, 0);
        }
    }
    Outcome { verdict, notes }
}

fn verdict_of(lo: bool, hi: bool) -> Verdict {
    if lo {
        Verdict::Holds
    } else if !hi {
        Verdict::Violated
    } else {
        Verdict::Inconclusive
    }
}

impl<'a> Ctx<'a> {
    fn node(&self, id: NodeId) -> &'a Node {
        &self.ir.nodes[id as usize]
    }

    /// The value at the only position of an empty trace; `hi` selects the
    /// optimistic bound on a truncated trace.
    fn virtual_value(&self, id: NodeId, hi: bool) -> bool {
        let open = self.truncated && hi;
        match *self.node(id) {
            Node::Const(b) => b,
            Node::Atom(_) | Node::Prev(_) | Node::Since(..) | Node::CausalPast(_) => false,
            Node::CountGe(..) => false,
            Node::Join(..) => false,
            Node::Not(c) => !self.virtual_value(c, !hi),
            Node::And(a, b) => self.virtual_value(a, hi) && self.virtual_value(b, hi),
            Node::Or(a, b) => self.virtual_value(a, hi) || self.virtual_value(b, hi),
            Node::Next(_) | Node::Until(..) | Node::CausalFuture(_) | Node::Concurrent(_) => open,
            Node::Quant(forall, _, _) => {
                if self.truncated {
                    hi
                } else {
                    forall
                }
            }
        }
    }

    /// Evaluates every node reachable from `root`.
    fn eval_all(&self, root: NodeId) -> HashMap<NodeId, Vals> {
        let mut vals: HashMap<NodeId, Vals> = HashMap::new();
        for id in self.ir.reachable(root) {
            let v = self.eval(id, &vals);
            vals.insert(id, v);
        }
        vals
    }

    /// Applies `f` to `lo` children with boundary `false`, and to `hi`
    /// children with boundary `true` when needed. `future`: the operator
    /// looks past the end of the trace.
    fn lift(&self, kids: &[&Vals], future: bool, f: impl Fn(&[&Bits], bool) -> Bits) -> Vals {
        let los: Vec<&Bits> = kids.iter().map(|v| &v.lo).collect();
        let lo = f(&los, false);
        let need_hi = self.truncated && (future || kids.iter().any(|v| v.hi.is_some()));
        let hi = need_hi.then(|| {
            let his: Vec<&Bits> = kids.iter().map(|v| v.hi()).collect();
            f(&his, true)
        });
        Vals { lo, hi }
    }

    fn eval(&self, id: NodeId, vals: &HashMap<NodeId, Vals>) -> Vals {
        let n = self.n;
        let get = |c: &NodeId| &vals[c];
        match *self.node(id) {
            Node::Const(b) => Vals {
                lo: Bits::new(n, b),
                hi: None,
            },
            Node::Atom(a) => Vals {
                lo: self.atom(a),
                hi: None,
            },
            Node::Not(c) => {
                let v = get(&c);
                Vals {
                    lo: v.hi().not(),
                    hi: v.hi.as_ref().map(|_| v.lo.not()),
                }
            }
            Node::And(a, b) => self.lift(&[get(&a), get(&b)], false, |k, _| k[0].and(k[1])),
            Node::Or(a, b) => self.lift(&[get(&a), get(&b)], false, |k, _| k[0].or(k[1])),
            Node::Next(c) => self.lift(&[get(&c)], true, |k, bnd| {
                let mut out = Bits::new(n, false);
                for i in 0..n {
                    out.set(i, if i + 1 < n { k[0].get(i + 1) } else { bnd });
                }
                out
            }),
            Node::Until(p, q, w) => {
                let times = &self.cols.times[..n];
                let p_true = *self.node(p) == Node::Const(true);
                self.lift(&[get(&p), get(&q)], true, |k, bnd| {
                    until(k[0], k[1], w, times, bnd, p_true)
                })
            }
            Node::CausalFuture(c) => self.lift(&[get(&c)], true, |k, bnd| {
                if bnd {
                    return Bits::new(n, true);
                }
                self.causal_future(k[0])
            }),
            Node::Concurrent(c) => self.lift(&[get(&c)], true, |k, bnd| {
                if bnd {
                    return Bits::new(n, true);
                }
                self.concurrent(k[0])
            }),
            Node::Prev(_) | Node::Since(..) | Node::CausalPast(_) | Node::CountGe(..) => {
                let kids: Vec<&Vals> = self.node(id).children().iter().map(get).collect();
                self.lift(&kids, false, |k, _| {
                    let mut st = PastState::new(self.node(id), self.cols.n_actors());
                    let mut out = Bits::new(n, false);
                    for i in 0..n {
                        let a = k[0].get(i);
                        let b = k.get(1).map(|x| x.get(i)).unwrap_or(false);
                        out.set(i, st.step(self.node(id), a, b, &self.cols.cur(i)));
                    }
                    out
                })
            }
            Node::Quant(forall, q, body) => {
                let binder = self.atom(self.ir.quants[q as usize].binder);
                let v = get(&body);
                let over = |b: &Bits| -> bool {
                    if forall {
                        (0..n).all(|i| !binder.get(i) || b.get(i))
                    } else {
                        (0..n).any(|i| binder.get(i) && b.get(i))
                    }
                };
                let lo_v = over(&v.lo) && !(self.truncated && forall);
                let hi_v = over(v.hi()) || (self.truncated && !forall);
                Vals {
                    lo: Bits::new(n, lo_v),
                    hi: (lo_v != hi_v).then(|| Bits::new(n, hi_v)),
                }
            }
            Node::Join(op, q, a, w) => {
                let lo = self.join(op, q, a, w, false);
                let hi = (self.truncated
                    && matches!(
                        op,
                        JoinOp::Future | JoinOp::CausalFuture | JoinOp::Concurrent
                    ))
                .then(|| self.join(op, q, a, w, true));
                Vals { lo, hi }
            }
        }
    }

    /// Where atom `a` holds, over the events looked at.
    fn atom(&self, a: u32) -> Bits {
        let mut b = self.cols.atom(a);
        b.truncate(self.n);
        b
    }

    /// `CF c`: some `c` event `f` with this event before or equal to it.
    fn causal_future(&self, c: &Bits) -> Bits {
        let cols = self.cols;
        let n = self.n;
        let na = cols.n_actors();
        let mut max = vec![0u32; na];
        for f in 0..n {
            if c.get(f) {
                for (m, &x) in max.iter_mut().zip(cols.clock(f)) {
                    *m = (*m).max(x);
                }
            }
        }
        let mut out = Bits::new(n, false);
        for i in 0..n {
            let a = cols.actors[i] as usize;
            out.set(
                i,
                max.get(a).copied().unwrap_or(0) >= cols.seq(i) && cols.seq(i) > 0,
            );
        }
        out
    }

    /// `CC c`: some `c` event concurrent with this one.
    fn concurrent(&self, c: &Bits) -> Bits {
        let cols = self.cols;
        let n = self.n;
        let na = cols.n_actors();
        let mut per_actor: Vec<Vec<usize>> = vec![Vec::new(); na];
        for f in 0..n {
            if c.get(f) {
                if let Some(v) = per_actor.get_mut(cols.actors[f] as usize) {
                    v.push(f);
                }
            }
        }
        let mut out = Bits::new(n, false);
        for i in 0..n {
            out.set(i, self.concurrent_in(i, &per_actor));
        }
        out
    }

    /// Whether one of the events in `per_actor` (per actor, in trace
    /// order) is concurrent with event `i`.
    fn concurrent_in(&self, i: usize, per_actor: &[Vec<usize>]) -> bool {
        let cols = self.cols;
        let ai = cols.actors[i] as usize;
        let si = cols.seq(i);
        per_actor.iter().enumerate().any(|(a, list)| {
            if a == ai || list.is_empty() {
                return false;
            }
            // Events of `a` not in i's causal past: seq > clock_i[a]. The
            // first of them has the smallest view of i's actor.
            let ca = cols.clock_at(i, a);
            let pos = list.partition_point(|&f| cols.seq(f) <= ca);
            list.get(pos).is_some_and(|&f| cols.clock_at(f, ai) < si)
        })
    }

    /// A join atom at the events its quantifier binds.
    fn join(&self, op: JoinOp, q: u32, a: u32, w: Win, bnd: bool) -> Bits {
        let cols = self.cols;
        let n = self.n;
        let [jk, bk] = self.ir.join_keys(q, a);
        let binder = self.atom(self.ir.quants[q as usize].binder);
        let mut out = Bits::new(n, false);
        let (Some(jkeys), Some(bkeys)) = (cols.key_col(&jk), cols.key_col(&bk)) else {
            return out;
        };
        let t_last = cols.times[..n].last().copied().unwrap_or(0);
        match op {
            JoinOp::Here => {
                for i in 0..n {
                    out.set(i, binder.get(i) && bkeys[i] != NONE && jkeys[i] == bkeys[i]);
                }
            }
            JoinOp::Future => {
                // Backward: per key, the times of the join atom's events
                // from here on, in decreasing order.
                let mut seen: HashMap<u32, Vec<u64>> = HashMap::new();
                for i in (0..n).rev() {
                    if jkeys[i] != NONE {
                        seen.entry(jkeys[i]).or_default().push(cols.times[i]);
                    }
                    if binder.get(i) {
                        let t = cols.times[i];
                        let ta = t.saturating_add(w.lo);
                        let tb = t.saturating_add(w.hi);
                        let found = bkeys[i] != NONE
                            && seen.get(&bkeys[i]).is_some_and(|v| {
                                let k = v.partition_point(|&x| x >= ta);
                                k > 0 && v[k - 1] <= tb
                            });
                        out.set(i, found || (bnd && tb >= t_last));
                    }
                }
            }
            JoinOp::Past => {
                let mut seen: HashMap<u32, Vec<u64>> = HashMap::new();
                for i in 0..n {
                    if jkeys[i] != NONE {
                        seen.entry(jkeys[i]).or_default().push(cols.times[i]);
                    }
                    if binder.get(i) && bkeys[i] != NONE {
                        let t = cols.times[i];
                        if t < w.lo {
                            continue;
                        }
                        let hi_t = t - w.lo;
                        let lo_t = t.saturating_sub(w.hi);
                        let found = seen.get(&bkeys[i]).is_some_and(|v| {
                            let k = v.partition_point(|&x| x <= hi_t);
                            k > 0 && v[k - 1] >= lo_t
                        });
                        out.set(i, found);
                    }
                }
            }
            JoinOp::CausalPast => {
                let na = cols.n_actors();
                let mut first: HashMap<u32, Vec<u32>> = HashMap::new();
                for i in 0..n {
                    if jkeys[i] != NONE {
                        let v = first.entry(jkeys[i]).or_insert_with(|| vec![u32::MAX; na]);
                        let a = cols.actors[i] as usize;
                        if let Some(x) = v.get_mut(a) {
                            *x = (*x).min(cols.seq(i));
                        }
                    }
                    if binder.get(i) && bkeys[i] != NONE {
                        let found = first.get(&bkeys[i]).is_some_and(|v| {
                            v.iter().enumerate().any(|(a, &s)| s <= cols.clock_at(i, a))
                        });
                        out.set(i, found);
                    }
                }
            }
            JoinOp::CausalFuture => {
                if bnd {
                    return binder;
                }
                let na = cols.n_actors();
                let mut max: HashMap<u32, Vec<u32>> = HashMap::new();
                for f in 0..n {
                    if jkeys[f] != NONE {
                        let v = max.entry(jkeys[f]).or_insert_with(|| vec![0; na]);
                        for (m, &x) in v.iter_mut().zip(cols.clock(f)) {
                            *m = (*m).max(x);
                        }
                    }
                }
                for i in 0..n {
                    if binder.get(i) && bkeys[i] != NONE {
                        let ai = cols.actors[i] as usize;
                        let found = max
                            .get(&bkeys[i])
                            .is_some_and(|v| v.get(ai).copied().unwrap_or(0) >= cols.seq(i));
                        out.set(i, found);
                    }
                }
            }
            JoinOp::Concurrent => {
                if bnd {
                    return binder;
                }
                let na = cols.n_actors();
                let mut lists: HashMap<u32, Vec<Vec<usize>>> = HashMap::new();
                for f in 0..n {
                    if jkeys[f] != NONE {
                        let v = lists
                            .entry(jkeys[f])
                            .or_insert_with(|| vec![Vec::new(); na]);
                        if let Some(l) = v.get_mut(cols.actors[f] as usize) {
                            l.push(f);
                        }
                    }
                }
                for i in 0..n {
                    if binder.get(i) && bkeys[i] != NONE {
                        let found = lists
                            .get(&bkeys[i])
                            .is_some_and(|per| self.concurrent_in(i, per));
                        out.set(i, found);
                    }
                }
            }
        }
        out
    }
}

/// `p U[w] q` over the whole trace in one backward pass. `bnd`: the value
/// assumed for the unseen events after the end (`hi` of a truncated trace).
fn until(p: &Bits, q: &Bits, w: Win, times: &[u64], bnd: bool, p_true: bool) -> Bits {
    let n = q.len();
    let mut out = Bits::new(n, false);
    if w.is_all() {
        let mut u = bnd;
        for i in (0..n).rev() {
            u = q.get(i) || ((p_true || p.get(i)) && u);
            out.set(i, u);
        }
        return out;
    }
    let t_last = times.last().copied().unwrap_or(0);
    // m: the first position >= i where p fails (n if none).
    let mut m = n;
    // lo_ptr: the first j >= i with t(j) >= t(i) + a; nq: first q at or after lo_ptr.
    let mut lo_ptr = n;
    let mut nq = n;
    // hi_ptr: one past the last j with t(j) <= t(i) + b.
    let mut hi_ptr = n;
    for i in (0..n).rev() {
        if !p_true && !p.get(i) {
            m = i;
        }
        let ta = times[i].saturating_add(w.lo);
        let tb = times[i].saturating_add(w.hi);
        while lo_ptr > i && times[lo_ptr - 1] >= ta {
            lo_ptr -= 1;
            if q.get(lo_ptr) {
                nq = lo_ptr;
            }
        }
        while hi_ptr > i + 1 && times[hi_ptr - 1] > tb {
            hi_ptr -= 1;
        }
        let end = hi_ptr.min(m + 1);
        let mut v = nq < end && nq >= lo_ptr;
        if !v && bnd && m == n && tb >= t_last {
            v = true;
        }
        out.set(i, v);
    }
    out
}

/// The current event, as the past operators see it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cur<'a> {
    /// Its time (non-decreasing).
    pub time: u64,
    /// Its actor.
    pub actor: u32,
    /// Its vector clock (empty when clocks are not read).
    pub clock: &'a [u32],
}

impl Cur<'_> {
    fn clock_at(&self, a: usize) -> u32 {
        self.clock.get(a).copied().unwrap_or(0)
    }
}

impl Columns {
    pub(crate) fn cur(&self, i: usize) -> Cur<'_> {
        Cur {
            time: self.times[i],
            actor: self.actors[i],
            clock: self.clock(i),
        }
    }
}

/// The state of a past operator between events.
#[derive(Debug)]
enum PastState {
    None,
    Prev(bool),
    Since {
        flag: bool,
        times: VecDeque<u64>,
    },
    CausalPast(Vec<u32>),
    Count {
        total: u64,
        times: VecDeque<u64>,
        old: usize,
    },
}

impl PastState {
    fn new(node: &Node, actors: usize) -> PastState {
        match node {
            Node::Prev(_) => PastState::Prev(false),
            Node::Since(..) => PastState::Since {
                flag: false,
                times: VecDeque::new(),
            },
            Node::CausalPast(_) => PastState::CausalPast(vec![u32::MAX; actors]),
            Node::CountGe(..) => PastState::Count {
                total: 0,
                times: VecDeque::new(),
                old: 0,
            },
            _ => PastState::None,
        }
    }

    /// The node's value at event `i`, given its children's values there
    /// (`a` the first child, `b` the second).
    fn step(&mut self, node: &Node, a: bool, b: bool, cur: &Cur<'_>) -> bool {
        let t = cur.time;
        match (self, node) {
            (PastState::Prev(last), _) => std::mem::replace(last, a),
            (PastState::Since { flag, times }, Node::Since(_, _, w)) => {
                let (p, q) = (a, b);
                if w.is_all() {
                    *flag = q || (p && *flag);
                    return *flag;
                }
                if !p {
                    times.clear();
                }
                if q {
                    if w.lo == 0 {
                        // Only the newest candidate matters.
                        times.clear();
                    }
                    times.push_back(t);
                }
                while times.front().is_some_and(|&f| t - f > w.hi) {
                    times.pop_front();
                }
                times.front().is_some_and(|&f| t - f >= w.lo)
            }
            (PastState::CausalPast(first), _) => {
                if a {
                    let ai = cur.actor as usize;
                    let seq = cur.clock_at(ai);
                    if let Some(x) = first.get_mut(ai) {
                        *x = (*x).min(seq);
                    }
                }
                first
                    .iter()
                    .enumerate()
                    .any(|(k, &s)| s != u32::MAX && s <= cur.clock_at(k))
            }
            (PastState::Count { total, times, old }, Node::CountGe(_, w, n)) => {
                if w.is_all() {
                    *total += u64::from(a);
                    return *total >= *n;
                }
                if a {
                    times.push_back(t);
                }
                while times.front().is_some_and(|&f| t - f > w.hi) {
                    times.pop_front();
                    *old = old.saturating_sub(1);
                }
                while *old < times.len() && t - times[*old] >= w.lo {
                    *old += 1;
                }
                *old as u64 >= *n
            }
            _ => false,
        }
    }
}

/// One step of a streamed formula: an operator on earlier slots.
enum Op<'c> {
    Const(bool),
    /// An atom read from the columns.
    Atom(&'c Bits),
    /// An atom given with each event (index into the `live` values).
    Live(usize),
    Not(usize),
    And(usize, usize),
    Or(usize, usize),
    /// A past operator: its node, its children's slots, its state.
    Past(&'c Node, usize, usize, PastState),
}

/// Streams a past-only formula: one value per node per event, computed
/// from the children's values at the same event and the node's state.
pub(crate) struct Stream<'c> {
    ops: Vec<Op<'c>>,
    values: Vec<bool>,
}

impl<'c> Stream<'c> {
    /// A stream of the formula at `root`; atoms come from `cols` when
    /// given, else from the `live` values passed to [`Stream::step`],
    /// indexed by atom id.
    pub(crate) fn new(
        ir: &'c Ir,
        root: NodeId,
        cols: Option<&'c Columns>,
        actors: usize,
    ) -> Stream<'c> {
        let order = ir.reachable(root);
        let slot: HashMap<NodeId, usize> =
            order.iter().enumerate().map(|(k, &id)| (id, k)).collect();
        let ops = order
            .iter()
            .map(|&id| {
                let node = &ir.nodes[id as usize];
                let c = node.children();
                let s = |k: usize| c.get(k).map(|x| slot[x]).unwrap_or(usize::MAX);
                match *node {
                    Node::Const(b) => Op::Const(b),
                    Node::Atom(a) => match cols {
                        Some(cols) => match cols.atoms.get(a as usize).and_then(Option::as_ref) {
                            Some(bits) => Op::Atom(bits),
                            None => Op::Const(false),
                        },
                        None => Op::Live(a as usize),
                    },
                    Node::Not(_) => Op::Not(s(0)),
                    Node::And(..) => Op::And(s(0), s(1)),
                    Node::Or(..) => Op::Or(s(0), s(1)),
                    _ => Op::Past(node, s(0), s(1), PastState::new(node, actors)),
                }
            })
            .collect();
        Stream {
            values: vec![false; order.len()],
            ops,
        }
    }

    /// Advances to event `i`; returns the root's value there.
    pub(crate) fn step(&mut self, i: usize, live: &[bool], cur: &Cur<'_>) -> bool {
        let vals = &mut self.values;
        for (k, op) in self.ops.iter_mut().enumerate() {
            let v = match op {
                Op::Const(c) => *c,
                Op::Atom(bits) => bits.get(i),
                Op::Live(a) => live.get(*a).copied().unwrap_or(false),
                Op::Not(a) => !vals[*a],
                Op::And(a, b) => vals[*a] && vals[*b],
                Op::Or(a, b) => vals[*a] || vals[*b],
                Op::Past(node, a, b, st) => {
                    let x = vals.get(*a).copied().unwrap_or(false);
                    let y = vals.get(*b).copied().unwrap_or(false);
                    st.step(node, x, y, cur)
                }
            };
            vals[k] = v;
        }
        vals.last().copied().unwrap_or(false)
    }
}

/// Builds the notes of a violation by following the formula down to the
/// events that decide it.
struct Explainer<'e> {
    ctx: &'e Ctx<'e>,
    vals: &'e HashMap<NodeId, Vals>,
    notes: &'e mut Vec<Note>,
    /// Explain why the pessimistic bound fails (why an inconclusive
    /// property does not hold yet: its pending obligations).
    pessimistic: bool,
}

const MAX_NOTES: usize = 8;

impl Explainer<'_> {
    /// The value used to explain `claim` at `i`: for a false claim the
    /// optimistic bound, for a true claim the pessimistic one.
    fn val(&self, id: NodeId, i: usize, claim: bool) -> bool {
        self.bits(id, claim).get(i)
    }

    /// The bits used to explain `claim` (see [`Explainer::val`]).
    fn bits(&self, id: NodeId, claim: bool) -> &Bits {
        let v = &self.vals[&id];
        // A violation: a true claim is shown on `lo`, a false one on `hi`
        // (negation swaps them). An inconclusive verdict (why it does not
        // hold yet): the other way round.
        if claim != self.pessimistic {
            &v.lo
        } else {
            v.hi()
        }
    }

    fn note(&mut self, event: Option<usize>, message: String) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push(Note {
                event: event.map(|e| e as u64),
                message,
            });
        }
    }

    /// Explains why node `id` has value `claim` at event `i`.
    fn explain(&mut self, id: NodeId, i: usize, claim: bool, depth: usize) {
        if depth > 12 || self.notes.len() >= MAX_NOTES {
            return;
        }
        let ir = self.ctx.ir;
        let cols = self.ctx.cols;
        let n = self.ctx.n;
        let show = |x: NodeId| ir.show(x);
        match ir.nodes[id as usize] {
            Node::Const(_) => {}
            Node::Atom(_) | Node::Join(JoinOp::Here, ..) => self.note(
                Some(i),
                format!(
                    "{} {}",
                    if claim { "matches" } else { "does not match" },
                    show(id)
                ),
            ),
            Node::Not(c) => self.explain(c, i, !claim, depth + 1),
            Node::And(a, b) | Node::Or(a, b) => {
                let is_and = matches!(ir.nodes[id as usize], Node::And(..));
                if claim == is_and {
                    // Both children have the claimed value.
                    self.explain(a, i, claim, depth + 1);
                    self.explain(b, i, claim, depth + 1);
                } else if self.val(a, i, claim) == claim {
                    self.explain(a, i, claim, depth + 1);
                } else {
                    self.explain(b, i, claim, depth + 1);
                }
            }
            Node::Next(c) => {
                if i + 1 < n {
                    self.explain(c, i + 1, claim, depth + 1);
                } else {
                    self.note(Some(i), "is the last event: it has no next event".into());
                }
            }
            Node::Prev(c) => {
                if i > 0 {
                    self.explain(c, i - 1, claim, depth + 1);
                } else {
                    self.note(
                        Some(i),
                        "is the first event: it has no previous event".into(),
                    );
                }
            }
            Node::Until(p, q, w) => {
                let p_true = ir.nodes[p as usize] == Node::Const(true);
                if claim {
                    // The witness: the first j in the window where q holds
                    // with p holding up to it.
                    let (pb, qb) = (self.bits(p, true), self.bits(q, true));
                    let found = (i..n)
                        .take_while(|&j| cols.times[j] - cols.times[i] <= w.hi)
                        .take_while(|&j| j == i || p_true || pb.get(j - 1))
                        .find(|&j| w.contains(cols.times[j] - cols.times[i]) && qb.get(j));
                    if let Some(j) = found {
                        self.explain(q, j, true, depth + 1);
                    }
                } else {
                    let pb = self.bits(p, false);
                    let stop = (i..n).find(|&j| !p_true && !pb.get(j));
                    if let Some(j) = stop {
                        if !self.val(q, j, false) || !w.contains(cols.times[j] - cols.times[i]) {
                            self.note(
                                Some(j),
                                format!("`{}` fails here before `{}` held", show(p), show(q)),
                            );
                            self.explain(p, j, false, depth + 1);
                            return;
                        }
                    }
                    self.note(
                        Some(i),
                        format!(
                            "no event from here on satisfies `{}`{}",
                            show(q),
                            win_words(w, "after")
                        ),
                    );
                }
            }
            Node::Since(p, q, w) => {
                let p_true = ir.nodes[p as usize] == Node::Const(true);
                if claim {
                    let (pb, qb) = (self.bits(p, true), self.bits(q, true));
                    let found = (0..=i)
                        .rev()
                        .take_while(|&j| cols.times[i] - cols.times[j] <= w.hi)
                        .take_while(|&j| j == i || p_true || pb.get(j + 1))
                        .find(|&j| w.contains(cols.times[i] - cols.times[j]) && qb.get(j));
                    if let Some(j) = found {
                        self.explain(q, j, true, depth + 1);
                    }
                } else {
                    self.note(
                        Some(i),
                        format!(
                            "no event up to here satisfies `{}`{}",
                            show(q),
                            win_words(w, "before")
                        ),
                    );
                }
            }
            Node::CausalPast(c) => {
                if claim {
                    let cb = self.bits(c, true);
                    if let Some(j) = (0..=i).rev().find(|&j| {
                        cb.get(j)
                            && dtest_trace::clock::event_precedes(
                                cols.clock(j),
                                cols.actors[j],
                                cols.clock(i),
                            )
                    }) {
                        self.explain(c, j, true, depth + 1);
                    }
                } else {
                    self.note(
                        Some(i),
                        format!("no event in its causal past satisfies `{}`", show(c)),
                    );
                }
            }
            Node::CausalFuture(c) => {
                if claim {
                    let cb = self.bits(c, true);
                    if let Some(j) = (i..n).find(|&j| {
                        cb.get(j)
                            && dtest_trace::clock::event_precedes(
                                cols.clock(i),
                                cols.actors[i],
                                cols.clock(j),
                            )
                    }) {
                        self.explain(c, j, true, depth + 1);
                    }
                } else {
                    self.note(
                        Some(i),
                        format!("no event in its causal future satisfies `{}`", show(c)),
                    );
                }
            }
            Node::Concurrent(c) => {
                if claim {
                    self.note(
                        Some(i),
                        format!("an event concurrent with it satisfies `{}`", show(c)),
                    );
                } else {
                    self.note(
                        Some(i),
                        format!("no event concurrent with it satisfies `{}`", show(c)),
                    );
                }
            }
            Node::CountGe(c, w, k) => {
                let cb = self.bits(c, claim);
                let count = (0..=i)
                    .filter(|&j| w.contains(cols.times[i] - cols.times[j]) && cb.get(j))
                    .count();
                self.note(
                    Some(i),
                    format!(
                        "`{}` held at {count} event(s){} (the bound is {k})",
                        show(c),
                        win_words(w, "before")
                    ),
                );
            }
            Node::Quant(forall, q, body) => {
                let binder = self.ctx.atom(ir.quants[q as usize].binder);
                let var = &ir.quants[q as usize].var;
                let want = !forall;
                if claim != forall {
                    // forall false / exists true: one witness.
                    if let Some(j) =
                        (0..n).find(|&j| binder.get(j) && self.val(body, j, want) == want)
                    {
                        self.note(Some(j), format!("with `{var}` bound to this event:"));
                        self.explain(body, j, want, depth + 1);
                        return;
                    }
                }
                if self.ctx.truncated {
                    self.note(None, format!("events `{var}` could range over may follow the end of the truncated trace"));
                } else {
                    self.note(None, format!("no event bound to `{var}` is a witness"));
                }
            }
            Node::Join(op, q, a, w) => {
                let var = &ir.quants[q as usize].var;
                let atom = &ir.atoms[a as usize].source;
                if !claim {
                    self.note(
                        Some(i),
                        format!(
                            "`{}` is false: no such event has the values it compares with `{var}`",
                            show(id)
                        ),
                    );
                    return;
                }
                let [jk, bk] = ir.join_keys(q, a);
                let (Some(jkeys), Some(bkeys)) = (cols.key_col(&jk), cols.key_col(&bk)) else {
                    return;
                };
                let key = bkeys[i];
                let before = |x: usize, y: usize| {
                    dtest_trace::clock::event_precedes(cols.clock(x), cols.actors[x], cols.clock(y))
                };
                let related = |j: usize| match op {
                    JoinOp::Here => j == i,
                    JoinOp::Future => j >= i && w.contains(cols.times[j] - cols.times[i]),
                    JoinOp::Past => j <= i && w.contains(cols.times[i] - cols.times[j]),
                    JoinOp::CausalPast => before(j, i),
                    JoinOp::CausalFuture => before(i, j),
                    JoinOp::Concurrent => j != i && !before(i, j) && !before(j, i),
                };
                match (0..n).find(|&j| jkeys[j] == key && key != crate::columns::NONE && related(j))
                {
                    Some(j) => self.note(
                        Some(j),
                        format!("matches {atom}, with the values of `{var}` (event {i})"),
                    ),
                    None => self.note(
                        Some(i),
                        format!(
                            "`{}` may hold after the end of the truncated trace",
                            show(id)
                        ),
                    ),
                }
            }
        }
    }
}

fn win_words(w: Win, dir: &str) -> String {
    if w.is_all() {
        String::new()
    } else if w.hi == u64::MAX {
        format!(" at least {} ns {dir}", w.lo)
    } else {
        format!(" between {} and {} ns {dir}", w.lo, w.hi)
    }
}
