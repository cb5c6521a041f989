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
    /// The atom the note says matches there (the report shows the line
    /// that matched).
    pub atom: Option<u32>,
    /// Which of the atom's matching lines there (from 0).
    pub nth: u32,
}

/// The result of evaluating one property on one trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The verdict.
    pub verdict: Verdict,
    /// Why (for violations, and for inconclusive verdicts).
    pub notes: Vec<Note>,
    /// For a property that holds only vacuously: the left sides of its
    /// implications, none of which is ever true.
    pub vacuous: Vec<String>,
}

impl Outcome {
    fn new(verdict: Verdict, notes: Vec<Note>) -> Outcome {
        Outcome {
            verdict,
            notes,
            vacuous: Vec::new(),
        }
    }
}

impl Note {
    /// A note on `event`.
    pub fn new(event: Option<usize>, message: impl Into<String>) -> Note {
        Note {
            event: event.map(|e| e as u64),
            message: message.into(),
            atom: None,
            nth: 0,
        }
    }
}

/// How many more offending events a violation names after the first.
pub const MORE_EVENTS: usize = 3;

/// The notes naming the other offending events of `G p` (`more`: up to
/// [`MORE_EVENTS`] of them; `total`: how many there are, the first one
/// included); `atom`: the atom `!p` is, if it is one.
pub(crate) fn more_notes(more: &[usize], total: u64, atom: Option<u32>, what: &str) -> Vec<Note> {
    let mut out = Vec::new();
    for &k in more {
        let mut n = Note::new(Some(k), format!("also {what}"));
        n.atom = atom;
        out.push(n);
    }
    let left = total.saturating_sub(1 + more.len() as u64);
    if left > 0 {
        out.push(Note::new(
            None,
            format!("and {left} more event(s) where {what}"),
        ));
    }
    out
}

/// The left sides of the implications (`a -> b`, `!a || b`) of the
/// formula at `root`.
pub(crate) fn antecedents(ir: &Ir, root: NodeId) -> Vec<NodeId> {
    let mut out = Vec::new();
    for id in ir.reachable(root) {
        if let Node::Or(x, _) = ir.nodes[id as usize] {
            if let Node::Not(a) = ir.nodes[x as usize] {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
    }
    out
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
            vec![Note::new(None, "the trace has no event")]
        };
        return Outcome::new(verdict, notes);
    }
    let ante = antecedents(ir, root);
    let mut more = Vec::new();
    // `G p` with p past-only: `!p` in one forward pass over the columns
    // (word-wide boolean operators, per-event state for the past ones).
    if let Some(bad) = ir.always_past(root) {
        let vals = ctx.eval_all(bad);
        let b = &vals[&bad].lo;
        match b.next_one(0) {
            None if cols.complete => {
                let mut o = Outcome::new(Verdict::Holds, vec![]);
                if !ante.is_empty()
                    && ante
                        .iter()
                        .all(|a| vals.get(a).is_some_and(|v| v.lo.next_one(0).is_none()))
                {
                    o.vacuous = ante.iter().map(|&a| ir.show(a)).collect();
                }
                return o;
            }
            None => {
                return Outcome::new(
                    Verdict::Inconclusive,
                    vec![Note::new(
                        None,
                        "no violation so far, but the trace is truncated (no end event)",
                    )],
                )
            }
            Some(i) => {
                let mut k = i;
                while more.len() < MORE_EVENTS {
                    match b.next_one(k + 1) {
                        Some(j) => {
                            more.push(j);
                            k = j;
                        }
                        None => break,
                    }
                }
                let total = b.count_ones();
                drop(vals);
                // Past-only: the prefix up to the violation decides it, so
                // the explanation only evaluates that prefix.
                ctx.n = i + 1;
                ctx.truncated = false;
                let mut o = explain_outcome(&ctx, root, Verdict::Violated);
                o.notes
                    .extend(more_notes(&more, total, atom_of(ir, bad), "violated"));
                return o;
            }
        }
    } else if ir.is_past_only(root) {
        let mut s = Stream::new(ir, root, Some(cols), cols.n_actors());
        let v = s.step(0, &[], &cols.cur(0));
        if v {
            return Outcome::new(Verdict::Holds, vec![]);
        }
    }
    let vals = ctx.eval_all(root);
    let v = &vals[&root];
    let verdict = verdict_of(v.lo.get(0), v.hi().get(0));
    let mut o = explain_with(&ctx, &vals, root, verdict);
    // `forall x in A: ...` over no event is vacuous too.
    let ranges: Vec<u32> = ir
        .reachable(root)
        .iter()
        .filter_map(|&id| match ir.nodes[id as usize] {
            Node::Quant(true, q, _) => Some(q),
            _ => None,
        })
        .collect();
    if verdict == Verdict::Holds && !(ante.is_empty() && ranges.is_empty()) {
        let mut never: Vec<String> = ante
            .iter()
            .filter(|a| vals.get(a).is_some_and(|v| v.lo.next_one(0).is_none()))
            .map(|&a| ir.show(a))
            .collect();
        let empty: Vec<String> = ranges
            .iter()
            .filter(|&&q| ctx.atom(ir.quants[q as usize].binder).next_one(0).is_none())
            .map(|&q| {
                let qi = &ir.quants[q as usize];
                format!(
                    "{} (`{}` ranges over no event)",
                    ir.atoms[qi.binder as usize].source, qi.var
                )
            })
            .collect();
        if never.len() == ante.len() && empty.len() == ranges.len() {
            never.extend(empty);
            o.vacuous = never;
        }
    }
    o
}

/// The atom a node is (for notes naming the matching line).
pub(crate) fn atom_of(ir: &Ir, id: NodeId) -> Option<u32> {
    match ir.nodes[id as usize] {
        Node::Atom(a) => Some(a),
        _ => None,
    }
}

/// Evaluates and explains a property known to have `verdict`.
fn explain_outcome(ctx: &Ctx<'_>, root: NodeId, verdict: Verdict) -> Outcome {
    let vals = ctx.eval_all(root);
    explain_with(ctx, &vals, root, verdict)
}

fn explain_with(
    ctx: &Ctx<'_>,
    vals: &HashMap<NodeId, Vals>,
    root: NodeId,
    verdict: Verdict,
) -> Outcome {
    let mut notes = Vec::new();
    match verdict {
        Verdict::Holds => {}
        Verdict::Violated => {
            let mut ex = Explainer {
                ctx,
                vals,
                notes: &mut notes,
                pessimistic: false,
                g_false: false,
            };
            ex.explain(root, 0, false, 0);
        }
        Verdict::Inconclusive => {
            notes.push(Note::new(None, "the trace is truncated (no end event) and the verdict depends on what came after it"));
            let mut ex = Explainer {
                ctx,
                vals,
                notes: &mut notes,
                pessimistic: true,
                g_false: false,
            };
            ex.explain(root, 0, false, 0);
        }
    }
    Outcome::new(verdict, notes)
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
                let counted = match *self.node(id) {
                    Node::CountGe(c, ..) => atom_of(self.ir, c),
                    _ => None,
                };
                self.lift(&kids, false, |k, _| {
                    let mut st = PastState::new(self.node(id), self.cols.n_actors());
                    let mut out = Bits::new(n, false);
                    for i in 0..n {
                        let a = k[0].get(i);
                        let b = k.get(1).map(|x| x.get(i)).unwrap_or(false);
                        let m = match counted {
                            Some(at) if a => self.cols.count(at, i),
                            _ => u64::from(a),
                        };
                        out.set(i, st.step(self.node(id), m, b, &self.cols.cur(i)));
                    }
                    out
                })
            }
            Node::Quant(forall, q, body) => {
                let binder = self.atom(self.ir.quants[q as usize].binder);
                let v = get(&body);
                let extra = self.extra_bindings(q, body);
                let mut ixs = HashMap::new();
                let mut over = |b: &Bits, hi: bool| -> bool {
                    let first = if forall {
                        (0..n).all(|i| !binder.get(i) || b.get(i))
                    } else {
                        (0..n).any(|i| binder.get(i) && b.get(i))
                    };
                    let mut at = |&(i, k): &(usize, usize)| {
                        binder.get(i) && self.body_at(q, body, i, k, hi, vals, &mut ixs)
                    };
                    if forall {
                        first && extra.iter().filter(|x| binder.get(x.0)).all(&mut at)
                    } else {
                        first || extra.iter().any(&mut at)
                    }
                };
                let lo_v = over(&v.lo, false) && !(self.truncated && forall);
                let hi_v = over(v.hi(), true) || (self.truncated && !forall);
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

    /// An index of the join atom's events by key, for `op`.
    fn join_index(&self, op: JoinOp, q: u32, a: u32) -> Option<JoinIndex> {
        let cols = self.cols;
        let n = self.n;
        let [jk, bk] = self.ir.join_keys(q, a);
        let (jk, bk) = (cols.key_index(&jk)?, cols.key_index(&bk)?);
        let na = cols.n_actors();
        let mut by = JoinBy::None;
        let each = |f: &mut dyn FnMut(usize, u32)| {
            for j in 0..n {
                for k in cols.keys_at(jk, j) {
                    if k != NONE {
                        f(j, k);
                    }
                }
            }
        };
        match op {
            JoinOp::Here => {}
            JoinOp::Future | JoinOp::Past => {
                let mut m: HashMap<u32, Vec<(u64, usize)>> = HashMap::new();
                each(&mut |j, k| m.entry(k).or_default().push((cols.times[j], j)));
                by = JoinBy::Times(m);
            }
            JoinOp::CausalPast => {
                let mut m: HashMap<u32, Vec<u32>> = HashMap::new();
                each(&mut |j, k| {
                    let v = m.entry(k).or_insert_with(|| vec![u32::MAX; na]);
                    if let Some(x) = v.get_mut(cols.actors[j] as usize) {
                        *x = (*x).min(cols.seq(j));
                    }
                });
                by = JoinBy::Clocks(m);
            }
            JoinOp::CausalFuture => {
                let mut m: HashMap<u32, Vec<u32>> = HashMap::new();
                each(&mut |j, k| {
                    let v = m.entry(k).or_insert_with(|| vec![0; na]);
                    for (x, &c) in v.iter_mut().zip(cols.clock(j)) {
                        *x = (*x).max(c);
                    }
                });
                by = JoinBy::Clocks(m);
            }
            JoinOp::Concurrent => {
                let mut m: HashMap<u32, Vec<Vec<usize>>> = HashMap::new();
                each(&mut |j, k| {
                    let v = m.entry(k).or_insert_with(|| vec![Vec::new(); na]);
                    if let Some(l) = v.get_mut(cols.actors[j] as usize) {
                        if l.last() != Some(&j) {
                            l.push(j);
                        }
                    }
                });
                by = JoinBy::Lists(m);
            }
        }
        Some(JoinIndex { jk, bk, by })
    }

    /// Whether the join holds for the binding of event `i` with `key`.
    fn join_at(&self, ix: &JoinIndex, op: JoinOp, w: Win, i: usize, key: u32, bnd: bool) -> bool {
        let cols = self.cols;
        if key == NONE {
            return false;
        }
        let t = cols.times[i];
        let t_last = cols.times[..self.n].last().copied().unwrap_or(0);
        match (&ix.by, op) {
            (_, JoinOp::Here) => cols.keys_at(ix.jk, i).any(|k| k == key),
            (JoinBy::Times(m), JoinOp::Future) => {
                let ta = t.saturating_add(w.lo);
                let tb = t.saturating_add(w.hi);
                let found = m.get(&key).is_some_and(|v| {
                    let p = v.partition_point(|&(x, j)| j < i || x < ta);
                    p < v.len() && v[p].0 <= tb
                });
                found || (bnd && tb >= t_last)
            }
            (JoinBy::Times(m), JoinOp::Past) => {
                if t < w.lo {
                    return false;
                }
                let hi_t = t - w.lo;
                let lo_t = t.saturating_sub(w.hi);
                m.get(&key).is_some_and(|v| {
                    let p = v.partition_point(|&(x, j)| j <= i && x <= hi_t);
                    p > 0 && v[p - 1].0 >= lo_t
                })
            }
            (JoinBy::Clocks(m), JoinOp::CausalPast) => m.get(&key).is_some_and(|v| {
                v.iter()
                    .enumerate()
                    .any(|(a, &s)| s != u32::MAX && s <= cols.clock_at(i, a))
            }),
            (JoinBy::Clocks(m), JoinOp::CausalFuture) => {
                bnd || m.get(&key).is_some_and(|v| {
                    let ai = cols.actors[i] as usize;
                    v.get(ai).copied().unwrap_or(0) >= cols.seq(i)
                })
            }
            (JoinBy::Lists(m), JoinOp::Concurrent) => {
                bnd || m.get(&key).is_some_and(|per| self.concurrent_in(i, per))
            }
            _ => false,
        }
    }

    /// A join atom at the events its quantifier binds (their first
    /// binding: the first matching line).
    fn join(&self, op: JoinOp, q: u32, a: u32, w: Win, bnd: bool) -> Bits {
        let n = self.n;
        let binder = self.atom(self.ir.quants[q as usize].binder);
        let mut out = Bits::new(n, false);
        let Some(ix) = self.join_index(op, q, a) else {
            return out;
        };
        let bkeys = &self.cols.keys[ix.bk].1;
        for i in 0..n {
            if binder.get(i) {
                out.set(i, self.join_at(&ix, op, w, i, bkeys[i], bnd));
            }
        }
        out
    }

    /// The other bindings of quantifier `q` (an event with several
    /// matching lines binds each): `(event, binding)` with binding >= 1,
    /// when the body compares with the variable.
    fn extra_bindings(&self, q: u32, body: NodeId) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for id in self.ir.reachable(body) {
            if let Node::Join(_, jq, a, _) = self.ir.nodes[id as usize] {
                if jq != q {
                    continue;
                }
                let [_, bk] = self.ir.join_keys(q, a);
                let Some(bk) = self.cols.key_index(&bk) else {
                    continue;
                };
                for (&i, v) in &self.cols.key_extra[bk] {
                    if i < self.n {
                        for b in 1..=v.len() {
                            out.push((i, b));
                        }
                    }
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The body of quantifier `q` at binding `b` of event `i` (`hi`: the
    /// optimistic bound).
    #[allow(clippy::too_many_arguments)]
    fn body_at(
        &self,
        q: u32,
        id: NodeId,
        i: usize,
        b: usize,
        hi: bool,
        vals: &HashMap<NodeId, Vals>,
        ixs: &mut HashMap<NodeId, Option<JoinIndex>>,
    ) -> bool {
        match *self.node(id) {
            Node::Join(op, jq, a, w) if jq == q => {
                let ix = ixs
                    .entry(id)
                    .or_insert_with(|| self.join_index(op, q, a))
                    .take();
                let Some(ix) = ix else {
                    return false;
                };
                let key = self.cols.keys_at(ix.bk, i).nth(b).unwrap_or(NONE);
                let bnd = hi
                    && self.truncated
                    && matches!(
                        op,
                        JoinOp::Future | JoinOp::CausalFuture | JoinOp::Concurrent
                    );
                let v = self.join_at(&ix, op, w, i, key, bnd);
                ixs.insert(id, Some(ix));
                v
            }
            Node::Not(c) => !self.body_at(q, c, i, b, !hi, vals, ixs),
            Node::And(x, y) => {
                self.body_at(q, x, i, b, hi, vals, ixs) && self.body_at(q, y, i, b, hi, vals, ixs)
            }
            Node::Or(x, y) => {
                self.body_at(q, x, i, b, hi, vals, ixs) || self.body_at(q, y, i, b, hi, vals, ixs)
            }
            _ => {
                let v = &vals[&id];
                if hi {
                    v.hi().get(i)
                } else {
                    v.lo.get(i)
                }
            }
        }
    }
}

/// The join atom's events by key.
struct JoinIndex {
    /// The join atom's key request.
    jk: usize,
    /// The bound event's key request.
    bk: usize,
    by: JoinBy,
}

enum JoinBy {
    None,
    /// Per key: (time, event), in trace order.
    Times(HashMap<u32, Vec<(u64, usize)>>),
    /// Per key: per actor, the first position (causal past) or the
    /// largest clock entry (causal future).
    Clocks(HashMap<u32, Vec<u32>>),
    /// Per key: per actor, the events in trace order.
    Lists(HashMap<u32, Vec<Vec<usize>>>),
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
    /// `m`: how many times the first child holds (its lines, for a
    /// counted atom; else 0 or 1).
    fn step(&mut self, node: &Node, m: u64, b: bool, cur: &Cur<'_>) -> bool {
        let a = m > 0;
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
                    *total += m;
                    return *total >= *n;
                }
                for _ in 0..m.min(*n) {
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
    Live(u32),
    Not(u32),
    And(u32, u32),
    Or(u32, u32),
    /// `p S q` without a window: `q || (p && previous value)`, the
    /// previous value being the op's own slot before it is overwritten.
    SinceAll(u32, u32),
    /// A past operator (index into [`Stream::pasts`]).
    Past(u32),
}

/// A past operator of a stream: its node, its children's slots, its
/// state, and for a count of an atom, the atom (its lines are counted).
struct PastOp<'c> {
    node: &'c Node,
    a: usize,
    b: usize,
    state: PastState,
    counted: Option<u32>,
}

/// Streams a past-only formula: one value per node per event, computed
/// from the children's values at the same event and the node's state.
pub(crate) struct Stream<'c> {
    ops: Vec<Op<'c>>,
    pasts: Vec<PastOp<'c>>,
    values: Vec<bool>,
    cols: Option<&'c Columns>,
    slot: HashMap<NodeId, usize>,
    /// Slots watched (the left sides of implications) and whether each
    /// was ever true.
    watched: Vec<(usize, bool)>,
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
        let mut pasts = Vec::new();
        let mut past = |node: &'c Node, a: usize, b: usize, counted: Option<u32>| {
            pasts.push(PastOp {
                node,
                a,
                b,
                state: PastState::new(node, actors),
                counted,
            });
            Op::Past(pasts.len() as u32 - 1)
        };
        let ops = order
            .iter()
            .map(|&id| {
                let node = &ir.nodes[id as usize];
                let c = node.children();
                let s = |k: usize| c.get(k).map(|x| slot[x]).unwrap_or(usize::MAX);
                let s32 = |k: usize| s(k) as u32;
                match *node {
                    Node::Const(b) => Op::Const(b),
                    Node::Atom(a) => match cols {
                        Some(cols) => match cols.atoms.get(a as usize).and_then(Option::as_ref) {
                            Some(bits) => Op::Atom(bits),
                            None => Op::Const(false),
                        },
                        None => Op::Live(a),
                    },
                    Node::Not(_) => Op::Not(s32(0)),
                    Node::And(..) => Op::And(s32(0), s32(1)),
                    Node::Or(..) => Op::Or(s32(0), s32(1)),
                    Node::Since(_, _, w) if w.is_all() => Op::SinceAll(s32(0), s32(1)),
                    Node::CountGe(c, ..) => past(node, s(0), s(1), atom_of(ir, c)),
                    _ => past(node, s(0), s(1), None),
                }
            })
            .collect();
        Stream {
            values: vec![false; order.len()],
            ops,
            pasts,
            cols,
            slot,
            watched: Vec::new(),
        }
    }

    /// Watches these nodes (those in the formula): [`Stream::never_true`]
    /// tells which were never true.
    pub(crate) fn watch(&mut self, nodes: &[NodeId]) {
        self.watched = nodes
            .iter()
            .filter_map(|n| self.slot.get(n).map(|&s| (s, false)))
            .collect();
    }

    /// The watched nodes, shown, when none of them was ever true (and
    /// there is one); else nothing.
    pub(crate) fn never_true(&self, ir: &Ir, nodes: &[NodeId]) -> Vec<String> {
        if nodes.is_empty() || self.watched.len() != nodes.len() || self.watched.iter().any(|w| w.1)
        {
            return Vec::new();
        }
        nodes.iter().map(|&a| ir.show(a)).collect()
    }

    /// `live`: per atom, how many times it holds at event `i` (when the
    /// atoms do not come from columns).
    pub(crate) fn step(&mut self, i: usize, live: &[u32], cur: &Cur<'_>) -> bool {
        let vals = &mut self.values;
        let cols = self.cols;
        for (k, op) in self.ops.iter().enumerate() {
            let v = match *op {
                Op::Const(c) => c,
                Op::Atom(bits) => bits.get(i),
                Op::Live(a) => live.get(a as usize).is_some_and(|&c| c > 0),
                Op::Not(a) => !vals[a as usize],
                Op::And(a, b) => vals[a as usize] && vals[b as usize],
                Op::Or(a, b) => vals[a as usize] || vals[b as usize],
                Op::SinceAll(a, b) => vals[b as usize] || (vals[a as usize] && vals[k]),
                Op::Past(p) => {
                    let PastOp {
                        node,
                        a,
                        b,
                        state,
                        counted,
                    } = &mut self.pasts[p as usize];
                    let x = vals.get(*a).copied().unwrap_or(false);
                    let y = vals.get(*b).copied().unwrap_or(false);
                    let m = match (*counted, x) {
                        (Some(at), true) => match cols {
                            Some(c) => c.count(at, i),
                            None => u64::from(live.get(at as usize).copied().unwrap_or(1)),
                        },
                        _ => u64::from(x),
                    };
                    state.step(node, m, y, cur)
                }
            };
            vals[k] = v;
        }
        for w in &mut self.watched {
            w.1 |= vals[w.0];
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
    /// The `F` being explained is the `F !q` of a false `G q`.
    g_false: bool,
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
        self.note_atom(event, message, None);
    }

    fn note_atom(&mut self, event: Option<usize>, message: String, atom: Option<u32>) {
        if self.notes.len() < MAX_NOTES {
            let mut n = Note::new(event, message);
            n.atom = atom;
            self.notes.push(n);
        }
    }

    /// Explains why node `id` has value `claim` at event `i`.
    fn explain(&mut self, id: NodeId, i: usize, claim: bool, depth: usize) {
        if depth > 12 || self.notes.len() >= MAX_NOTES {
            self.g_false = false;
            return;
        }
        let ir = self.ctx.ir;
        let cols = self.ctx.cols;
        let n = self.ctx.n;
        let show = |x: NodeId| ir.show(x);
        match ir.nodes[id as usize] {
            Node::Const(_) => {}
            Node::Atom(_) | Node::Join(JoinOp::Here, ..) => {
                let atom = match ir.nodes[id as usize] {
                    Node::Atom(a) | Node::Join(JoinOp::Here, _, a, _) if claim => Some(a),
                    _ => None,
                };
                self.note_atom(
                    Some(i),
                    format!(
                        "{} {}",
                        if claim { "matches" } else { "does not match" },
                        show(id)
                    ),
                    atom,
                )
            }
            Node::Not(c) => {
                // `G q` (`!F !q`) false: its `F !q` names several events.
                self.g_false = !claim
                    && matches!(ir.nodes[c as usize], Node::Until(t, _, w)
                        if ir.nodes[t as usize] == Node::Const(true) && w.is_all());
                self.explain(c, i, !claim, depth + 1)
            }
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
                let listing = std::mem::take(&mut self.g_false);
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
                        // `G p` violated: name a few more offending events.
                        let more: Vec<usize> = if listing {
                            (j + 1..n).filter(|&k| qb.get(k)).collect()
                        } else {
                            Vec::new()
                        };
                        self.explain(q, j, true, depth + 1);
                        if !more.is_empty() {
                            let total = 1 + more.len() as u64;
                            let shown = &more[..more.len().min(MORE_EVENTS)];
                            for nt in more_notes(shown, total, atom_of(ir, q), "violated") {
                                self.notes.push(nt);
                            }
                        }
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
                let counted = atom_of(ir, c);
                let count: u64 = (0..=i)
                    .filter(|&j| w.contains(cols.times[i] - cols.times[j]) && cb.get(j))
                    .map(|j| match counted {
                        Some(a) => cols.count(a, j).max(1),
                        None => 1,
                    })
                    .sum();
                let what = if counted.is_some_and(|a| ir.atoms[a as usize].is_texty()) {
                    "time(s) (lines)"
                } else {
                    "time(s)"
                };
                let bound = if claim {
                    format!("more than {}", k - 1)
                } else {
                    format!("fewer than {k}")
                };
                self.note(
                    Some(i),
                    format!(
                        "`{}` held {count} {what}{}: {bound}",
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
                    let batom = ir.quants[q as usize].binder;
                    if let Some(j) =
                        (0..n).find(|&j| binder.get(j) && self.val(body, j, want) == want)
                    {
                        self.note_atom(
                            Some(j),
                            format!("with `{var}` bound to this event:"),
                            Some(batom),
                        );
                        self.explain(body, j, want, depth + 1);
                        return;
                    }
                    // Another line of an event with several.
                    let hi = want == self.pessimistic;
                    let mut ixs = HashMap::new();
                    let extra = self.ctx.extra_bindings(q, body);
                    if let Some(&(j, b)) = extra.iter().find(|&&(j, b)| {
                        binder.get(j)
                            && self.ctx.body_at(q, body, j, b, hi, self.vals, &mut ixs) == want
                    }) {
                        if self.notes.len() < MAX_NOTES {
                            let mut nt = Note::new(
                                Some(j),
                                format!(
                                    "with `{var}` bound to this event's line {} that `{}` matches, the body is {want}",
                                    b + 1,
                                    ir.atoms[batom as usize].source
                                ),
                            );
                            nt.atom = Some(batom);
                            nt.nth = b as u32;
                            self.notes.push(nt);
                        }
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
                let jki = cols.key_index(&jk);
                match (0..n).find(|&j| {
                    key != crate::columns::NONE
                        && (jkeys[j] == key
                            || jki.is_some_and(|x| cols.keys_at(x, j).any(|k| k == key)))
                        && related(j)
                }) {
                    Some(j) => self.note_atom(
                        Some(j),
                        format!("matches {atom}, with the values of `{var}` (event {i})"),
                        Some(a),
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
        format!(" at least {} {dir}", crate::ir::duration(w.lo))
    } else {
        format!(
            " between {} and {} {dir}",
            crate::ir::duration(w.lo),
            crate::ir::duration(w.hi)
        )
    }
}
