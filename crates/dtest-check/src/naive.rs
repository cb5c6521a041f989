//! A naive evaluator written straight from the semantics in
//! properties/README.md, on the syntax tree and whole events: the oracle
//! the fast evaluator is compared with. Exponential in nesting depth; only
//! for small traces in tests.

use std::collections::HashMap;

use dtest_trace::clock::event_precedes;
use dtest_trace::{Event, Trace};
use regex::Regex;

use crate::ast::*;
use crate::fields;

/// The naive evaluator for one trace.
pub struct Naive<'a> {
    trace: &'a Trace,
    times: Vec<u64>,
    lets: HashMap<String, Formula>,
}

/// A bound event variable: name, event, the atom it ranges over.
type Env<'f> = Vec<(&'f str, usize, &'f Atom)>;

fn regex_of(source: &str, icase: bool) -> Regex {
    regex::RegexBuilder::new(&source.replace("\\/", "/"))
        .case_insensitive(icase)
        .build()
        .expect("regexes are checked by the parser's caller")
}

impl<'a> Naive<'a> {
    /// An evaluator on `trace` with the lets of `spec`.
    pub fn new(trace: &'a Trace, spec: &Spec) -> Naive<'a> {
        let mut last = 0;
        let times = trace
            .events
            .iter()
            .map(|e| {
                last = last.max(e.time_ns);
                last
            })
            .collect();
        let lets = spec
            .items
            .iter()
            .filter(|i| i.kind == ItemKind::Let)
            .map(|i| (i.name.clone(), i.formula.clone()))
            .collect();
        Naive { trace, times, lets }
    }

    fn n(&self) -> usize {
        self.trace.events.len()
    }

    /// The formula's value at the first event (the property's verdict on a
    /// complete trace).
    pub fn holds(&self, f: &Formula) -> bool {
        self.eval(f, 0, &Vec::new())
    }

    fn ev(&self, i: usize) -> &Event {
        &self.trace.events[i]
    }

    fn precedes(&self, a: usize, b: usize) -> bool {
        let (ea, eb) = (self.ev(a), self.ev(b));
        event_precedes(ea.clock.as_slice(), ea.actor, eb.clock.as_slice())
    }

    fn in_win(iv: &Option<Interval>, d: u64) -> bool {
        match iv {
            None => true,
            Some(iv) => d >= iv.lo.nanos() && iv.hi.is_none_or(|h| d <= h.nanos()),
        }
    }

    fn field_of(&self, e: &Event, f: &FieldRef, atom: &Atom) -> Option<String> {
        match f {
            FieldRef::Named(name) if name == "actor" => {
                Some(self.trace.actor_name(e.actor).to_string())
            }
            FieldRef::Named(name) => {
                fields::value(fields::field_id(name)?, e.dir, &e.data).map(|c| c.into_owned())
            }
            FieldRef::Capture(g) => {
                let TextPat::Regex { source, icase } = &atom.text else {
                    return None;
                };
                let text = e.data.text();
                let caps = regex_of(source, *icase).captures(&text)?;
                caps.get(*g as usize).map(|m| m.as_str().to_string())
            }
        }
    }

    fn atom(&self, a: &Atom, i: usize, env: &Env<'_>) -> bool {
        if i >= self.n() {
            return false;
        }
        let e = self.ev(i);
        if let AtomKind::Kind(k) = a.kind {
            if e.data.kind() != k {
                return false;
            }
        }
        if let ActorPat::Name(name) = &a.actor {
            if self.trace.actor_name(e.actor) != name {
                return false;
            }
        }
        let text = e.data.text();
        match &a.text {
            TextPat::Any => {}
            TextPat::Eq(s) => {
                if text != s.as_str() {
                    return false;
                }
            }
            TextPat::Regex { source, icase } => {
                if !regex_of(source, *icase).is_match(&text) {
                    return false;
                }
            }
        }
        for t in &a.fields {
            let own = self.field_of(e, &t.field, a);
            let want = match &t.value {
                Value::Var(v, f) => {
                    let Some(&(_, j, binder)) = env.iter().rev().find(|(name, _, _)| name == v)
                    else {
                        return false;
                    };
                    match self.field_of(self.ev(j), f, binder) {
                        Some(x) => x,
                        None => return false,
                    }
                }
                Value::Int(x) => x.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Word(w) | Value::Str(w) => {
                    if t.field == FieldRef::Named("status".into()) {
                        w.strip_prefix("SIG").unwrap_or(w).to_string()
                    } else {
                        w.clone()
                    }
                }
            };
            match own {
                None => return false,
                Some(o) => {
                    if (o == want) == t.negated {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// The value of `f` at position `i` (`i == n` only for the empty trace).
    pub fn eval<'f>(&self, f: &'f Formula, i: usize, env: &Env<'f>) -> bool {
        let n = self.n();
        let t = |k: usize| self.times[k];
        match &f.kind {
            FormulaKind::Const(b) => *b,
            FormulaKind::Atom(a) => self.atom(a, i, env),
            FormulaKind::Ref(name) => {
                let g = self.lets[name].clone();
                self.eval(&g, i, &Vec::new())
            }
            FormulaKind::Bool(op, l, r) => {
                let a = self.eval(l, i, env);
                let b = self.eval(r, i, env);
                match op {
                    BoolOp::And => a && b,
                    BoolOp::Or => a || b,
                    BoolOp::Implies => !a || b,
                    BoolOp::Iff => a == b,
                }
            }
            FormulaKind::Unary(op, iv, c) => match op {
                UnOp::Not => !self.eval(c, i, env),
                UnOp::Next => i + 1 < n && self.eval(c, i + 1, env),
                UnOp::WeakNext => i + 1 >= n || self.eval(c, i + 1, env),
                UnOp::Eventually => {
                    (i..n).any(|j| Self::in_win(iv, t(j) - t(i)) && self.eval(c, j, env))
                }
                UnOp::Always => {
                    (i..n).all(|j| !Self::in_win(iv, t(j) - t(i)) || self.eval(c, j, env))
                }
                UnOp::Prev => i >= 1 && i <= n && self.eval(c, i - 1, env),
                UnOp::WeakPrev => i == 0 || i > n || self.eval(c, i - 1, env),
                UnOp::Once => (0..=i)
                    .filter(|&j| j < n)
                    .any(|j| Self::in_win(iv, t(i) - t(j)) && self.eval(c, j, env)),
                UnOp::Historically => (0..=i)
                    .filter(|&j| j < n)
                    .all(|j| !Self::in_win(iv, t(i) - t(j)) || self.eval(c, j, env)),
                UnOp::CausallyOnce => {
                    i < n && (0..n).any(|j| self.precedes(j, i) && self.eval(c, j, env))
                }
                UnOp::CausallyHistorically => {
                    i >= n || (0..n).all(|j| !self.precedes(j, i) || self.eval(c, j, env))
                }
                UnOp::CausallyEventually => {
                    i < n && (0..n).any(|j| self.precedes(i, j) && self.eval(c, j, env))
                }
                UnOp::CausallyAlways => {
                    i >= n || (0..n).all(|j| !self.precedes(i, j) || self.eval(c, j, env))
                }
                UnOp::Concurrently => {
                    i < n
                        && (0..n).any(|j| {
                            j != i
                                && !self.precedes(i, j)
                                && !self.precedes(j, i)
                                && self.eval(c, j, env)
                        })
                }
            },
            FormulaKind::Temporal(op, iv, l, r) => match op {
                TempOp::Until => (i..n).any(|j| {
                    Self::in_win(iv, t(j) - t(i))
                        && self.eval(r, j, env)
                        && (i..j).all(|k| self.eval(l, k, env))
                }),
                TempOp::WeakUntil => {
                    (i..n).any(|j| self.eval(r, j, env) && (i..j).all(|k| self.eval(l, k, env)))
                        || (i..n).all(|k| self.eval(l, k, env))
                }
                TempOp::Release => {
                    // p R q = !(!p U !q)
                    !(i..n).any(|j| !self.eval(r, j, env) && (i..j).all(|k| !self.eval(l, k, env)))
                }
                TempOp::Since => (0..=i).filter(|&j| j < n).any(|j| {
                    Self::in_win(iv, t(i) - t(j))
                        && self.eval(r, j, env)
                        && (j + 1..=i).all(|k| self.eval(l, k, env))
                }),
            },
            FormulaKind::Count {
                interval,
                body,
                cmp,
                n: k,
            } => {
                let c = (0..=i)
                    .filter(|&j| j < n)
                    .filter(|&j| Self::in_win(interval, t(i) - t(j)) && self.eval(body, j, env))
                    .count() as u64;
                match cmp {
                    CmpOp::Eq => c == *k,
                    CmpOp::Ne => c != *k,
                    CmpOp::Lt => c < *k,
                    CmpOp::Le => c <= *k,
                    CmpOp::Gt => c > *k,
                    CmpOp::Ge => c >= *k,
                }
            }
            FormulaKind::Quant {
                forall,
                var,
                binder,
                body,
            } => {
                let mut it = (0..n).filter(|&j| self.atom(binder, j, env));
                let at = |j: usize| {
                    let mut env2 = env.clone();
                    env2.push((var.as_str(), j, binder));
                    self.eval(body, j, &env2)
                };
                if *forall {
                    it.all(at)
                } else {
                    it.any(at)
                }
            }
        }
    }
}
