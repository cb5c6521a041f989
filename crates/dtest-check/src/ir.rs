//! The IR: a small set of operators the evaluator implements, as a DAG shared
//! by all properties of a spec, and the lowering from the AST.
//!
//! Lowering resolves lets, checks kinds, fields, values, regexes and
//! variables (every error carries a position), and rewrites every operator
//! into the core below: `G p = !F !p`, `F[I] p = true U[I] p`,
//! `p W q = (p U q) || G p`, `p R q = !(!p U !q)`, `WX p = !X !p`,
//! `H p = !O !p`, `O[I] p = true S[I] p`, `WY p = !Y !p`, `CH p = !CO !p`,
//! `CG p = !CF !p`, counts become `count >= n` and its negation.
//!
//! **Invariant:** a node's children have smaller ids than the node, so
//! evaluating nodes in id order evaluates children first. Nodes are
//! hash-consed: a subformula that occurs twice is evaluated once.

use std::collections::HashMap;

use regex::Regex;

use crate::ast::{self, *};
use crate::columns::KeyRequest;
use crate::error::SpecError;
use crate::fields::{self, FieldType, FIELDS};

/// Index of a node in [`Ir::nodes`].
pub type NodeId = u32;

/// A time window `[lo, hi]` in nanoseconds, both inclusive (`hi = u64::MAX`: inf).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Win {
    /// Lower bound.
    pub lo: u64,
    /// Upper bound.
    pub hi: u64,
}

impl Win {
    /// `[0, inf]`: no constraint.
    pub const ALL: Win = Win {
        lo: 0,
        hi: u64::MAX,
    };

    /// Whether the window constrains nothing.
    pub fn is_all(self) -> bool {
        self == Win::ALL
    }

    /// Whether `d` is in the window.
    pub fn contains(self, d: u64) -> bool {
        self.lo <= d && d <= self.hi
    }

    fn of(iv: Option<Interval>) -> Win {
        match iv {
            None => Win::ALL,
            Some(iv) => Win {
                lo: iv.lo.nanos(),
                hi: iv.hi.map(|d| d.nanos()).unwrap_or(u64::MAX),
            },
        }
    }
}

/// How a join atom relates to the event bound by its quantifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JoinOp {
    /// The bound event itself.
    Here,
    /// Some event at or after it, within the window (`F[a,b]`).
    Future,
    /// Some event at or before it, within the window (`O[a,b]`).
    Past,
    /// Some event in its causal past (`CO`).
    CausalPast,
    /// Some event in its causal future (`CF`).
    CausalFuture,
    /// Some event concurrent with it (`CC`).
    Concurrent,
}

/// The IR operators.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    /// A constant.
    Const(bool),
    /// An atom (index into [`Ir::atoms`]).
    Atom(u32),
    /// Negation.
    Not(NodeId),
    /// Conjunction.
    And(NodeId, NodeId),
    /// Disjunction.
    Or(NodeId, NodeId),
    /// Strong next.
    Next(NodeId),
    /// Strong previous.
    Prev(NodeId),
    /// `p U[w] q`.
    Until(NodeId, NodeId, Win),
    /// `p S[w] q`.
    Since(NodeId, NodeId, Win),
    /// Some event in the causal past (or this one) satisfies the child.
    CausalPast(NodeId),
    /// Some event in the causal future (or this one) satisfies the child.
    CausalFuture(NodeId),
    /// Some event concurrent with this one satisfies the child.
    Concurrent(NodeId),
    /// At least `n` events `j <= i` with `t(i) - t(j)` in the window satisfy the child.
    CountGe(NodeId, Win, u64),
    /// `forall` (true) / `exists` (false) over quantifier `q`'s events.
    Quant(bool, u32, NodeId),
    /// A join atom of quantifier `q`: atom `a` related by `op` (and window).
    Join(JoinOp, u32, u32, Win),
}

impl Node {
    /// The children of the node.
    pub fn children(&self) -> Vec<NodeId> {
        match *self {
            Node::Const(_) | Node::Atom(_) | Node::Join(..) => vec![],
            Node::Not(c)
            | Node::Next(c)
            | Node::Prev(c)
            | Node::CausalPast(c)
            | Node::CausalFuture(c)
            | Node::Concurrent(c)
            | Node::CountGe(c, ..)
            | Node::Quant(_, _, c) => vec![c],
            Node::And(a, b) | Node::Or(a, b) | Node::Until(a, b, _) | Node::Since(a, b, _) => {
                vec![a, b]
            }
        }
    }

    /// Whether the node looks only at the present and the past in trace
    /// order (it can be checked by one forward pass with constant state).
    pub fn is_past_op(&self) -> bool {
        matches!(
            self,
            Node::Const(_)
                | Node::Atom(_)
                | Node::Not(_)
                | Node::And(..)
                | Node::Or(..)
                | Node::Prev(_)
                | Node::Since(..)
                | Node::CausalPast(_)
                | Node::CountGe(..)
        )
    }

    /// Whether the node needs vector clocks.
    pub fn is_causal(&self) -> bool {
        matches!(
            self,
            Node::CausalPast(_)
                | Node::CausalFuture(_)
                | Node::Concurrent(_)
                | Node::Join(
                    JoinOp::CausalPast | JoinOp::CausalFuture | JoinOp::Concurrent,
                    ..
                )
        )
    }
}

/// The text test of an atom.
#[derive(Clone, Debug)]
pub enum TextTest {
    /// No test.
    Any,
    /// The text equals this.
    Eq(String),
    /// The regex is found in the text.
    Regex(Regex),
}

/// Which value of an event a join compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyPart {
    /// A field (by id).
    Field(usize),
    /// A capture group of the atom's regex.
    Capture(u32),
}

/// A lowered atom.
#[derive(Clone, Debug)]
pub struct AtomIr {
    /// The kind, `None` for `any`.
    pub kind: Option<dtest_trace::Kind>,
    /// The actor name, `None` for any.
    pub actor: Option<String>,
    /// The text test.
    pub text: TextTest,
    /// Field tests: field id, negated, value as text.
    pub fields: Vec<(usize, bool, String)>,
    /// Join key: this atom's side of each equality with the bound event.
    pub key: Vec<KeyPart>,
    /// The bound event's side of each equality.
    pub var_key: Vec<KeyPart>,
    /// The atom as written.
    pub source: String,
    /// Where it is written (line, column), every place.
    pub pos: Vec<(usize, usize)>,
}

impl AtomIr {
    /// Whether the atom tests the text (a positional text or `text =`):
    /// then it is matched per line on input and output events.
    pub fn is_texty(&self) -> bool {
        !matches!(self.text, TextTest::Any) || self.fields.iter().any(|f| f.0 == fields::TEXT)
    }
}

/// A quantifier: the atom its variable ranges over.
#[derive(Clone, Debug)]
pub struct QuantIr {
    /// The variable.
    pub var: String,
    /// The binder atom (index into [`Ir::atoms`]).
    pub binder: u32,
}

/// A property of the spec, lowered.
#[derive(Clone, Debug)]
pub struct PropertyIr {
    /// The name.
    pub name: String,
    /// The root node.
    pub root: NodeId,
    /// The formula as written (pretty-printed).
    pub source: String,
}

/// The lowered spec.
#[derive(Clone, Debug, Default)]
pub struct Ir {
    /// The nodes; children before parents.
    pub nodes: Vec<Node>,
    /// The atoms.
    pub atoms: Vec<AtomIr>,
    /// The quantifiers.
    pub quants: Vec<QuantIr>,
    /// The properties, in source order.
    pub properties: Vec<PropertyIr>,
    dedup: HashMap<Node, NodeId>,
    atom_dedup: HashMap<String, u32>,
}

/// What the columns must hold for a set of properties.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Atoms to test on every event.
    pub atoms: Vec<u32>,
    /// Join keys to compute.
    pub keys: Vec<KeyRequest>,
    /// Whether vector clocks are needed.
    pub clocks: bool,
}

impl Needs {
    /// Adds what `other` needs.
    pub fn union(&mut self, other: &Needs) {
        for a in &other.atoms {
            if !self.atoms.contains(a) {
                self.atoms.push(*a);
            }
        }
        for k in &other.keys {
            if !self.keys.contains(k) {
                self.keys.push(k.clone());
            }
        }
        self.clocks |= other.clocks;
    }
}

impl Ir {
    /// Adds a node (or finds the equal one).
    pub fn add(&mut self, n: Node) -> NodeId {
        // Light simplification keeps printed and random formulas small.
        let n = match n {
            Node::Not(c) => match self.nodes[c as usize] {
                Node::Not(cc) => return cc,
                Node::Const(b) => Node::Const(!b),
                _ => Node::Not(c),
            },
            n => n,
        };
        if let Some(&id) = self.dedup.get(&n) {
            return id;
        }
        let id = self.nodes.len() as NodeId;
        self.nodes.push(n.clone());
        self.dedup.insert(n, id);
        id
    }

    /// The nodes reachable from `root`, in id order (children first).
    pub fn reachable(&self, root: NodeId) -> Vec<NodeId> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![root];
        while let Some(n) = stack.pop() {
            if !std::mem::replace(&mut seen[n as usize], true) {
                stack.extend(self.nodes[n as usize].children());
            }
        }
        (0..self.nodes.len() as NodeId)
            .filter(|&i| seen[i as usize])
            .collect()
    }

    /// What the columns must hold to check the formula at `root`.
    pub fn needs(&self, root: NodeId) -> Needs {
        let mut needs = Needs::default();
        let atom = |a: u32, needs: &mut Needs| {
            if !needs.atoms.contains(&a) {
                needs.atoms.push(a);
            }
        };
        for id in self.reachable(root) {
            let node = &self.nodes[id as usize];
            needs.clocks |= node.is_causal();
            match *node {
                Node::Atom(a) => atom(a, &mut needs),
                Node::Join(_, q, a, _) => {
                    let b = self.quants[q as usize].binder;
                    atom(b, &mut needs);
                    for k in self.join_keys(q, a) {
                        if !needs.keys.contains(&k) {
                            needs.keys.push(k);
                        }
                    }
                }
                Node::Quant(_, q, _) => atom(self.quants[q as usize].binder, &mut needs),
                _ => {}
            }
        }
        needs
    }

    /// The two keys a join compares: the join atom's and the bound event's.
    pub fn join_keys(&self, q: u32, a: u32) -> [KeyRequest; 2] {
        let atom = &self.atoms[a as usize];
        [
            KeyRequest {
                atom: a,
                parts: atom.key.clone(),
            },
            KeyRequest {
                atom: self.quants[q as usize].binder,
                parts: atom.var_key.clone(),
            },
        ]
    }

    /// Whether the formula at `root` is past-only.
    pub fn is_past_only(&self, root: NodeId) -> bool {
        self.reachable(root)
            .iter()
            .all(|&n| self.nodes[n as usize].is_past_op())
    }

    /// If `root` is `G p` with `p` past-only, returns the node of `!p`
    /// (the property is violated at the first event where it holds).
    pub fn always_past(&self, root: NodeId) -> Option<NodeId> {
        let Node::Not(u) = self.nodes[root as usize] else {
            return None;
        };
        let Node::Until(t, bad, w) = self.nodes[u as usize] else {
            return None;
        };
        (w.is_all() && self.nodes[t as usize] == Node::Const(true) && self.is_past_only(bad))
            .then_some(bad)
    }

    /// A readable form of node `id` (for explanations).
    pub fn show(&self, id: NodeId) -> String {
        let s = |c: NodeId| self.show_child(c);
        match &self.nodes[id as usize] {
            Node::Const(b) => b.to_string(),
            Node::Atom(a) => self.atoms[*a as usize].source.clone(),
            Node::Not(c) => match &self.nodes[*c as usize] {
                Node::Until(t, np, w) if self.nodes[*t as usize] == Node::Const(true) => {
                    format!(
                        "G{} {}",
                        show_win(*w),
                        self.show_child(self.negate_view(*np))
                    )
                }
                Node::Since(t, np, w) if self.nodes[*t as usize] == Node::Const(true) => {
                    format!(
                        "H{} {}",
                        show_win(*w),
                        self.show_child(self.negate_view(*np))
                    )
                }
                Node::Next(np) => format!("WX {}", self.show_child(self.negate_view(*np))),
                Node::Prev(np) => format!("WY {}", self.show_child(self.negate_view(*np))),
                Node::CausalPast(np) => format!("CH {}", self.show_child(self.negate_view(*np))),
                Node::CausalFuture(np) => format!("CG {}", self.show_child(self.negate_view(*np))),
                _ => format!("!{}", s(*c)),
            },
            Node::And(a, b) => format!("{} && {}", s(*a), s(*b)),
            Node::Or(a, b) => match &self.nodes[*a as usize] {
                Node::Not(na) => format!("{} -> {}", s(*na), s(*b)),
                _ => format!("{} || {}", s(*a), s(*b)),
            },
            Node::Next(c) => format!("X {}", s(*c)),
            Node::Prev(c) => format!("Y {}", s(*c)),
            Node::Until(p, q, w) => {
                if self.nodes[*p as usize] == Node::Const(true) {
                    format!("F{} {}", show_win(*w), s(*q))
                } else {
                    format!("{} U{} {}", s(*p), show_win(*w), s(*q))
                }
            }
            Node::Since(p, q, w) => {
                if self.nodes[*p as usize] == Node::Const(true) {
                    format!("O{} {}", show_win(*w), s(*q))
                } else {
                    format!("{} S{} {}", s(*p), show_win(*w), s(*q))
                }
            }
            Node::CausalPast(c) => format!("CO {}", s(*c)),
            Node::CausalFuture(c) => format!("CF {}", s(*c)),
            Node::Concurrent(c) => format!("CC {}", s(*c)),
            Node::CountGe(c, w, n) => format!("count{}({}) >= {n}", show_win(*w), self.show(*c)),
            Node::Quant(forall, q, body) => format!(
                "{} {} in {}: {}",
                if *forall { "forall" } else { "exists" },
                self.quants[*q as usize].var,
                self.atoms[self.quants[*q as usize].binder as usize].source,
                self.show(*body)
            ),
            Node::Join(op, _, a, w) => {
                let a = &self.atoms[*a as usize].source;
                match op {
                    JoinOp::Here => a.clone(),
                    JoinOp::Future => format!("F{} {a}", show_win(*w)),
                    JoinOp::Past => format!("O{} {a}", show_win(*w)),
                    JoinOp::CausalPast => format!("CO {a}"),
                    JoinOp::CausalFuture => format!("CF {a}"),
                    JoinOp::Concurrent => format!("CC {a}"),
                }
            }
        }
    }

    fn negate_view(&self, id: NodeId) -> NodeId {
        // `id` is `!p` for some p: find p (it exists, as `!` was added on it).
        match self.nodes[id as usize] {
            Node::Not(p) => p,
            _ => self
                .nodes
                .iter()
                .position(|n| *n == Node::Not(id))
                .map(|p| p as NodeId)
                .unwrap_or(id),
        }
    }

    fn show_child(&self, id: NodeId) -> String {
        let t = self.show(id);
        match &self.nodes[id as usize] {
            Node::Const(_) | Node::Atom(_) | Node::Join(JoinOp::Here, ..) | Node::CountGe(..) => t,
            _ => format!("({t})"),
        }
    }
}

fn show_win(w: Win) -> String {
    if w.is_all() {
        return String::new();
    }
    let f = duration;
    if w.hi == u64::MAX {
        format!("[{}, inf]", f(w.lo))
    } else {
        format!("[{}, {}]", f(w.lo), f(w.hi))
    }
}

/// A duration in nanoseconds in its natural unit: the largest of `h m s
/// ms us ns` that divides it (`0s`, `250ms`, `1s`, `90s`).
pub fn duration(ns: u64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    for (unit, per) in [
        ("h", 3_600_000_000_000u64),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ] {
        if ns % per == 0 {
            return format!("{}{unit}", ns / per);
        }
    }
    format!("{ns}ns")
}

/// Lowers a parsed spec. `file` and `src` are for error messages.
pub fn lower(spec: &Spec, file: &str, src: &str) -> Result<Ir, SpecError> {
    let mut l = Lowerer {
        ir: Ir::default(),
        lets: HashMap::new(),
        scope: Vec::new(),
        file,
        src,
    };
    let mut names = HashMap::new();
    let mut depths: HashMap<String, usize> = HashMap::new();
    for item in &spec.items {
        if names
            .insert((item.kind == ItemKind::Let, item.name.clone()), ())
            .is_some()
        {
            return Err(l.err(item.name_span, format!("`{}` is defined twice", item.name)));
        }
        let d = depth(&item.formula, &depths);
        if d > crate::parse::MAX_DEPTH {
            return Err(l.err(
                item.name_span,
                format!(
                    "`{}` nests {d} levels deep once its lets are inlined (more than {})",
                    item.name,
                    crate::parse::MAX_DEPTH
                ),
            ));
        }
        let id = l.formula(&item.formula, false)?;
        match item.kind {
            ItemKind::Let => {
                l.lets.insert(item.name.clone(), id);
                depths.insert(item.name.clone(), d);
            }
            ItemKind::Property => l.ir.properties.push(PropertyIr {
                name: item.name.clone(),
                root: id,
                source: item.formula.to_string(),
            }),
        }
    }
    Ok(l.ir)
}

/// How deep a formula nests once the lets it names are inlined (their
/// depths are in `lets`; the parser bounds the recursion here).
fn depth(f: &Formula, lets: &HashMap<String, usize>) -> usize {
    match &f.kind {
        FormulaKind::Const(_) | FormulaKind::Atom(_) => 1,
        FormulaKind::Ref(n) => lets.get(n).copied().unwrap_or(1),
        FormulaKind::Unary(_, _, c) => 1 + depth(c, lets),
        FormulaKind::Bool(_, a, b) | FormulaKind::Temporal(_, _, a, b) => {
            1 + depth(a, lets).max(depth(b, lets))
        }
        FormulaKind::Count { body, .. } | FormulaKind::Quant { body, .. } => 1 + depth(body, lets),
    }
}

struct Lowerer<'a> {
    ir: Ir,
    lets: HashMap<String, NodeId>,
    /// Quantifier variables in scope, innermost last: (name, quant id).
    scope: Vec<(String, u32)>,
    file: &'a str,
    src: &'a str,
}

impl Lowerer<'_> {
    fn err(&self, span: ast::Span, msg: impl Into<String>) -> SpecError {
        SpecError::at(self.file, self.src, span.start, msg)
    }

    fn not(&mut self, c: NodeId) -> NodeId {
        self.ir.add(Node::Not(c))
    }

    fn tt(&mut self) -> NodeId {
        self.ir.add(Node::Const(true))
    }

    /// Lowers `f`; `temporal` is true under a temporal operator (where join
    /// atoms are not allowed).
    fn formula(&mut self, f: &Formula, temporal: bool) -> Result<NodeId, SpecError> {
        Ok(match &f.kind {
            FormulaKind::Const(b) => self.ir.add(Node::Const(*b)),
            FormulaKind::Ref(name) => match self.lets.get(name) {
                Some(&id) => id,
                None => {
                    return Err(self.err(
                        f.span,
                        format!("unknown let `{name}` (lets must be defined before they are used)"),
                    ))
                }
            },
            FormulaKind::Atom(a) => {
                if atom_has_vars(a) {
                    if temporal {
                        return Err(self.err(a.span, "an atom that refers to an event variable must be directly under F, O, CO, CF, CC (or G !, H !, CH !, CG !), or combined with ! && || -> in its quantifier's body"));
                    }
                    let (q, atom) = self.join_atom(a)?;
                    self.ir.add(Node::Join(JoinOp::Here, q, atom, Win::ALL))
                } else {
                    let atom = self.atom(a, None)?;
                    self.ir.add(Node::Atom(atom))
                }
            }
            FormulaKind::Bool(op, l, r) => {
                let a = self.formula(l, temporal)?;
                let b = self.formula(r, temporal)?;
                match op {
                    BoolOp::And => self.ir.add(Node::And(a, b)),
                    BoolOp::Or => self.ir.add(Node::Or(a, b)),
                    BoolOp::Implies => {
                        let na = self.not(a);
                        self.ir.add(Node::Or(na, b))
                    }
                    BoolOp::Iff => {
                        let na = self.not(a);
                        let nb = self.not(b);
                        let l = self.ir.add(Node::Or(na, b));
                        let r = self.ir.add(Node::Or(nb, a));
                        self.ir.add(Node::And(l, r))
                    }
                }
            }
            FormulaKind::Unary(op, iv, c) => {
                if let Some(id) = self.join_under(*op, *iv, c, temporal)? {
                    return Ok(id);
                }
                let inner_temporal = temporal || *op != UnOp::Not;
                let x = self.formula(c, inner_temporal)?;
                let w = Win::of(*iv);
                let t = self.tt();
                match op {
                    UnOp::Not => self.not(x),
                    UnOp::Next => self.ir.add(Node::Next(x)),
                    UnOp::WeakNext => {
                        let nx = self.not(x);
                        let n = self.ir.add(Node::Next(nx));
                        self.not(n)
                    }
                    UnOp::Eventually => self.ir.add(Node::Until(t, x, w)),
                    UnOp::Always => {
                        let nx = self.not(x);
                        let u = self.ir.add(Node::Until(t, nx, w));
                        self.not(u)
                    }
                    UnOp::Prev => self.ir.add(Node::Prev(x)),
                    UnOp::WeakPrev => {
                        let nx = self.not(x);
                        let n = self.ir.add(Node::Prev(nx));
                        self.not(n)
                    }
                    UnOp::Once => self.ir.add(Node::Since(t, x, w)),
                    UnOp::Historically => {
                        let nx = self.not(x);
                        let u = self.ir.add(Node::Since(t, nx, w));
                        self.not(u)
                    }
                    UnOp::CausallyOnce => self.ir.add(Node::CausalPast(x)),
                    UnOp::CausallyHistorically => {
                        let nx = self.not(x);
                        let u = self.ir.add(Node::CausalPast(nx));
                        self.not(u)
                    }
                    UnOp::CausallyEventually => self.ir.add(Node::CausalFuture(x)),
                    UnOp::CausallyAlways => {
                        let nx = self.not(x);
                        let u = self.ir.add(Node::CausalFuture(nx));
                        self.not(u)
                    }
                    UnOp::Concurrently => self.ir.add(Node::Concurrent(x)),
                }
            }
            FormulaKind::Temporal(op, iv, l, r) => {
                let a = self.formula(l, true)?;
                let b = self.formula(r, true)?;
                let w = Win::of(*iv);
                match op {
                    TempOp::Until => self.ir.add(Node::Until(a, b, w)),
                    TempOp::Since => self.ir.add(Node::Since(a, b, w)),
                    TempOp::WeakUntil => {
                        let u = self.ir.add(Node::Until(a, b, Win::ALL));
                        let t = self.tt();
                        let na = self.not(a);
                        let f = self.ir.add(Node::Until(t, na, Win::ALL));
                        let g = self.not(f);
                        self.ir.add(Node::Or(u, g))
                    }
                    TempOp::Release => {
                        let na = self.not(a);
                        let nb = self.not(b);
                        let u = self.ir.add(Node::Until(na, nb, Win::ALL));
                        self.not(u)
                    }
                }
            }
            FormulaKind::Count {
                interval,
                body,
                cmp,
                n,
            } => {
                let c = self.formula(body, true)?;
                let w = Win::of(*interval);
                let n = *n;
                let ge = |k: u64, ir: &mut Ir| -> NodeId {
                    if k == 0 {
                        ir.add(Node::Const(true))
                    } else {
                        ir.add(Node::CountGe(c, w, k))
                    }
                };
                let ge_n = ge(n, &mut self.ir);
                let ge_n1 = ge(n.saturating_add(1), &mut self.ir);
                match cmp {
                    CmpOp::Ge => ge_n,
                    CmpOp::Gt => ge_n1,
                    CmpOp::Le => self.not(ge_n1),
                    CmpOp::Lt => self.not(ge_n),
                    CmpOp::Eq => {
                        let nn = self.not(ge_n1);
                        self.ir.add(Node::And(ge_n, nn))
                    }
                    CmpOp::Ne => {
                        let nn = self.not(ge_n1);
                        let e = self.ir.add(Node::And(ge_n, nn));
                        self.not(e)
                    }
                }
            }
            FormulaKind::Quant {
                forall,
                var,
                binder,
                body,
            } => {
                if atom_has_vars(binder) {
                    return Err(self.err(
                        binder.span,
                        "the atom a variable ranges over cannot refer to event variables",
                    ));
                }
                if self.scope.iter().any(|(v, _)| v == var) {
                    return Err(self.err(f.span, format!("variable `{var}` is already bound here")));
                }
                let b = self.atom(binder, None)?;
                let q = self.ir.quants.len() as u32;
                self.ir.quants.push(QuantIr {
                    var: var.clone(),
                    binder: b,
                });
                self.scope.push((var.clone(), q));
                let body = self.formula(body, false);
                self.scope.pop();
                let body = body?;
                self.ir.add(Node::Quant(*forall, q, body))
            }
        })
    }

    /// `F J`, `O J`, `CO J`, `CF J`, `CC J` and `G !J`, `H !J`, `CH !J`,
    /// `CG !J` with a join atom `J`; `None` when `c` is not such an atom.
    fn join_under(
        &mut self,
        op: UnOp,
        iv: Option<Interval>,
        c: &Formula,
        temporal: bool,
    ) -> Result<Option<NodeId>, SpecError> {
        let (negated, atom) = match &c.kind {
            FormulaKind::Atom(a) if atom_has_vars(a) => (false, a),
            FormulaKind::Unary(UnOp::Not, None, inner) => match &inner.kind {
                FormulaKind::Atom(a) if atom_has_vars(a) => (true, a),
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        let (jop, neg_outside) = match (op, negated) {
            (UnOp::Eventually, false) => (JoinOp::Future, false),
            (UnOp::Always, true) => (JoinOp::Future, true),
            (UnOp::Once, false) => (JoinOp::Past, false),
            (UnOp::Historically, true) => (JoinOp::Past, true),
            (UnOp::CausallyOnce, false) => (JoinOp::CausalPast, false),
            (UnOp::CausallyHistorically, true) => (JoinOp::CausalPast, true),
            (UnOp::CausallyEventually, false) => (JoinOp::CausalFuture, false),
            (UnOp::CausallyAlways, true) => (JoinOp::CausalFuture, true),
            (UnOp::Concurrently, false) => (JoinOp::Concurrent, false),
            (UnOp::Not, _) => return Ok(None),
            _ => {
                return Err(self.err(
                    atom.span,
                    format!("an atom that refers to an event variable cannot be under `{}`{}; use F, O, CO, CF, CC (or G !, H !, CH !, CG !)", op.symbol(), if negated { " !" } else { "" }),
                ))
            }
        };
        if temporal {
            return Err(self.err(atom.span, "an atom that refers to an event variable must be in its quantifier's body, not under another temporal operator"));
        }
        let (q, a) = self.join_atom(atom)?;
        let id = self.ir.add(Node::Join(jop, q, a, Win::of(iv)));
        Ok(Some(if neg_outside { self.not(id) } else { id }))
    }

    fn join_atom(&mut self, a: &Atom) -> Result<(u32, u32), SpecError> {
        let Some(&(ref innermost, q)) = self.scope.last() else {
            return Err(self.err(
                a.span,
                "this atom refers to an event variable, but no `forall`/`exists` binds one here",
            ));
        };
        let innermost = innermost.clone();
        let atom = self.atom(a, Some((&innermost, q)))?;
        Ok((q, atom))
    }

    fn atom(&mut self, a: &Atom, var: Option<(&str, u32)>) -> Result<u32, SpecError> {
        let kind = match a.kind {
            AtomKind::Any => None,
            AtomKind::Kind(k) => Some(k),
        };
        let text = match &a.text {
            TextPat::Any => TextTest::Any,
            TextPat::Eq(s) => TextTest::Eq(s.clone()),
            TextPat::Regex { source, icase } => {
                TextTest::Regex(self.regex(source, *icase, a.span)?)
            }
        };
        let mut ir = AtomIr {
            kind,
            actor: match &a.actor {
                ActorPat::Any => None,
                ActorPat::Name(n) => Some(n.clone()),
            },
            text,
            fields: Vec::new(),
            key: Vec::new(),
            var_key: Vec::new(),
            source: a.to_string(),
            pos: Vec::new(),
        };
        let groups = match &ir.text {
            TextTest::Regex(r) => r.captures_len() as u32 - 1,
            _ => 0,
        };
        for t in &a.fields {
            let own = self.key_part(&t.field, kind, groups, t.span)?;
            if let Value::Var(v, f) = &t.value {
                let Some((name, q)) = var else {
                    return Err(
                        self.err(t.span, format!("`{v}` is not an event variable in scope"))
                    );
                };
                if v != name {
                    let msg = if self.scope.iter().any(|(s, _)| s == v) {
                        format!("`{v}` is not the innermost event variable (`{name}`); an atom can only refer to the innermost one")
                    } else {
                        format!("`{v}` is not an event variable in scope")
                    };
                    return Err(self.err(t.span, msg));
                }
                if t.negated {
                    return Err(self.err(t.span, "a comparison with an event variable must be `=` (joins are on equal values)"));
                }
                let binder = &self.ir.atoms[self.ir.quants[q as usize].binder as usize];
                let bkind = binder.kind;
                let bgroups = match &binder.text {
                    TextTest::Regex(r) => r.captures_len() as u32 - 1,
                    _ => 0,
                };
                let other = self.key_part(f, bkind, bgroups, t.span)?;
                ir.key.push(own);
                ir.var_key.push(other);
                continue;
            }
            let KeyPart::Field(fid) = own else {
                return Err(self.err(t.span, "a capture group can only be compared with an event variable's field (`$1 = r.$1`)"));
            };
            let value = self.check_value(fid, &t.value, t.span)?;
            ir.fields.push((fid, t.negated, value));
        }
        let key = format!(
            "{:?}|{}|{:?}|{:?}",
            ir.source, ir.source, ir.key, ir.var_key
        );
        let at = SpecError::at(self.file, self.src, a.span.start, "");
        let pos = (at.line, at.col);
        if let Some(&id) = self.ir.atom_dedup.get(&key) {
            let p = &mut self.ir.atoms[id as usize].pos;
            if !p.contains(&pos) {
                p.push(pos);
            }
            return Ok(id);
        }
        let id = self.ir.atoms.len() as u32;
        let mut ir = ir;
        ir.pos.push(pos);
        self.ir.atoms.push(ir);
        self.ir.atom_dedup.insert(key, id);
        Ok(id)
    }

    fn key_part(
        &self,
        f: &FieldRef,
        kind: Option<dtest_trace::Kind>,
        groups: u32,
        span: ast::Span,
    ) -> Result<KeyPart, SpecError> {
        match f {
            FieldRef::Capture(n) => {
                if *n == 0 || *n > groups {
                    Err(self.err(
                        span,
                        format!("`${n}`: the atom's regex has {groups} capture group(s)"),
                    ))
                } else {
                    Ok(KeyPart::Capture(*n))
                }
            }
            FieldRef::Named(name) => {
                let Some(id) = fields::field_id(name) else {
                    return Err(self.err(
                        span,
                        format!(
                            "unknown field `{name}` (fields of {}: {})",
                            kind.map(|k| k.name()).unwrap_or("any"),
                            fields::names_for(kind)
                        ),
                    ));
                };
                if !fields::applies(id, kind) {
                    return Err(self.err(
                        span,
                        format!(
                            "`{}` events have no field `{name}` (their fields: {})",
                            kind.map(|k| k.name()).unwrap_or("any"),
                            fields::names_for(kind)
                        ),
                    ));
                }
                Ok(KeyPart::Field(id))
            }
        }
    }

    fn check_value(&self, fid: usize, v: &Value, span: ast::Span) -> Result<String, SpecError> {
        let def = &FIELDS[fid];
        let bad = |what: &str| Err(self.err(span, format!("field `{}` is {what}", def.name)));
        match (def.ty, v) {
            (FieldType::Str, Value::Str(s) | Value::Word(s)) => Ok(s.clone()),
            (FieldType::Str, Value::Int(i)) => Ok(i.to_string()),
            (FieldType::Str, Value::Bool(b)) => Ok(b.to_string()),
            (FieldType::Str, _) => bad("a text"),
            (FieldType::Int, Value::Int(i)) => Ok(i.to_string()),
            (FieldType::Int, _) => bad("an integer"),
            (FieldType::Bool, Value::Bool(b)) => Ok(b.to_string()),
            (FieldType::Bool, _) => bad("a boolean (true or false)"),
            (FieldType::Enum(words), Value::Word(w) | Value::Str(w))
                if words.contains(&w.as_str()) =>
            {
                Ok(w.clone())
            }
            (FieldType::Enum(words), _) => bad(&format!("one of: {}", words.join(", "))),
            (FieldType::Status, Value::Int(i)) => Ok(i.to_string()),
            (FieldType::Status, Value::Word(w) | Value::Str(w)) => {
                if w.parse::<i64>().is_ok() {
                    Ok(w.clone())
                } else {
                    Ok(fields::sig_canon(w).into_owned())
                }
            }
            (FieldType::Status, _) => bad("an exit status (a number or a signal name like KILL)"),
        }
    }

    fn regex(&self, source: &str, icase: bool, span: ast::Span) -> Result<Regex, SpecError> {
        let pat = source.replace("\\/", "/");
        regex::RegexBuilder::new(&pat)
            .case_insensitive(icase)
            .size_limit(1 << 22)
            .build()
            .map_err(|e| {
                let msg = e.to_string();
                let last = msg
                    .lines()
                    .last()
                    .unwrap_or("invalid regex")
                    .trim()
                    .to_string();
                self.err(span, format!("bad regex /{source}/: {last}"))
            })
    }
}

fn atom_has_vars(a: &Atom) -> bool {
    a.fields.iter().any(|t| matches!(t.value, Value::Var(..)))
}
