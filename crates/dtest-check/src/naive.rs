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
    /// Per event: the lines of input or output completed there.
    lines: Vec<Vec<String>>,
}

/// A bound event variable: name, event, the atom it ranges over, and the
/// line it binds (for an atom matched per line).
type Env<'f> = Vec<(&'f str, usize, &'f Atom, Option<String>)>;

fn regex_of(source: &str, icase: bool) -> Regex {
    regex::RegexBuilder::new(&source.replace("\\/", "/"))
        .case_insensitive(icase)
        .build()
        .expect("regexes are checked by the parser's caller")
}

/// The lines of every event, straight from the definition: per stream,
/// all its bytes; a line ends at a newline, in the event holding that
/// newline; the rest of the stream, if any, is a line of its last event
/// (on a complete trace: on a truncated one it is unknown).
fn all_lines(trace: &Trace) -> Vec<Vec<String>> {
    use dtest_trace::{EventData, Stream};
    let mut out = vec![Vec::new(); trace.events.len()];
    type Bytes = Vec<(usize, Option<u8>)>;
    let mut streams: HashMap<(u32, u8), Bytes> = HashMap::new();
    for (i, e) in trace.events.iter().enumerate() {
        let (code, bytes) = match &e.data {
            EventData::Input { bytes, .. } => (0, bytes),
            EventData::Output {
                bytes,
                stream: Stream::Stdout,
            } => (1, bytes),
            EventData::Output { bytes, .. } => (2, bytes),
            _ => continue,
        };
        let s = streams.entry((e.actor, code)).or_default();
        s.extend(bytes.iter().map(|&b| (i, Some(b))));
        // An empty chunk still makes this the stream's last event.
        s.push((i, None));
    }
    let finish = |v: &[u8]| {
        let v = &v[..v.len().min(crate::lines::MAX_LINE)];
        String::from_utf8_lossy(v.strip_suffix(b"\r").unwrap_or(v)).into_owned()
    };
    for s in streams.values() {
        let last = s.last().map(|x| x.0).unwrap_or(0);
        let mut cur = Vec::new();
        for &(i, b) in s {
            match b {
                Some(b'\n') => {
                    out[i].push(finish(&cur));
                    cur.clear();
                }
                Some(b) => cur.push(b),
                None => {}
            }
        }
        if !cur.is_empty() && trace.complete {
            out[last].push(finish(&cur));
        }
    }
    out
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
        Naive {
            trace,
            times,
            lets,
            lines: all_lines(trace),
        }
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

    /// Whether the atom tests the text (then it is matched per line on
    /// input and output).
    fn texty(a: &Atom) -> bool {
        !matches!(a.text, TextPat::Any)
            || a.fields.iter().any(|t| {
                t.field == FieldRef::Named("text".into()) && !matches!(t.value, Value::Var(..))
            })
    }

    fn per_line(a: &Atom, e: &Event) -> bool {
        Self::texty(a) && fields::is_line_kind(e.data.kind())
    }

    fn field_of(&self, e: &Event, f: &FieldRef, atom: &Atom, line: Option<&str>) -> Option<String> {
        let text = || match line {
            Some(l) => l.to_string(),
            None => fields::text(&e.data).into_owned(),
        };
        match f {
            FieldRef::Named(name) if name == "actor" => {
                Some(self.trace.actor_name(e.actor).to_string())
            }
            FieldRef::Named(name) if name == "text" => Some(text()),
            FieldRef::Named(name) => {
                fields::value(fields::field_id(name)?, e.dir, &e.data).map(|c| c.into_owned())
            }
            FieldRef::Capture(g) => {
                let TextPat::Regex { source, icase } = &atom.text else {
                    return None;
                };
                let text = text();
                let caps = regex_of(source, *icase).captures(&text)?;
                caps.get(*g as usize).map(|m| m.as_str().to_string())
            }
        }
    }

    fn atom(&self, a: &Atom, i: usize, env: &Env<'_>) -> bool {
        !self.matches(a, i, env).is_empty()
    }

    /// The ways atom `a` holds at event `i`: its matching lines (for an
    /// atom matched per line), or one `None`.
    fn matches(&self, a: &Atom, i: usize, env: &Env<'_>) -> Vec<Option<String>> {
        if i >= self.n() {
            return vec![];
        }
        let e = self.ev(i);
        if Self::per_line(a, e) {
            self.lines[i]
                .iter()
                .filter(|l| self.atom_on(a, e, Some(l), env))
                .map(|l| Some(l.clone()))
                .collect()
        } else if self.atom_on(a, e, None, env) {
            vec![None]
        } else {
            vec![]
        }
    }

    fn atom_on(&self, a: &Atom, e: &Event, line: Option<&str>, env: &Env<'_>) -> bool {
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
        let signal = line.is_none() && fields::names_signal(&e.data);
        let text = match line {
            Some(l) => l.to_string(),
            None => fields::text(&e.data).into_owned(),
        };
        match &a.text {
            TextPat::Any => {}
            TextPat::Eq(s) => {
                let same = if signal {
                    fields::same_signal(&text, s)
                } else {
                    text == *s
                };
                if !same {
                    return false;
                }
            }
            TextPat::Regex { source, icase } => {
                let r = regex_of(source, *icase);
                let alias = text.strip_prefix("SIG").unwrap_or(&text);
                if !(r.is_match(&text) || (signal && r.is_match(alias))) {
                    return false;
                }
            }
        }
        for t in &a.fields {
            let own = self.field_of(e, &t.field, a, line);
            let want = match &t.value {
                Value::Var(v, f) => {
                    let Some((_, j, binder, bl)) =
                        env.iter().rev().find(|(name, _, _, _)| name == v)
                    else {
                        return false;
                    };
                    match self.field_of(self.ev(*j), f, binder, bl.as_deref()) {
                        Some(x) => x,
                        None => return false,
                    }
                }
                Value::Int(x) => x.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Word(w) | Value::Str(w) => {
                    if t.field == FieldRef::Named("status".into()) && w.parse::<i64>().is_err() {
                        fields::sig_canon(w).into_owned()
                    } else {
                        w.clone()
                    }
                }
            };
            let sigfield = signal
                && matches!(&t.field, FieldRef::Named(f) if f == "text" || f == "name" || f == "status");
            match own {
                None => return false,
                Some(o) => {
                    let same = if sigfield {
                        fields::same_signal(&o, &want)
                    } else {
                        o == want
                    };
                    if same == t.negated {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// The atom a count counts the lines of (through lets and `!!`).
    fn counted_atom<'f>(&'f self, f: &'f Formula) -> Option<&'f Atom> {
        match &f.kind {
            FormulaKind::Atom(a) => Some(a),
            FormulaKind::Ref(n) => self.counted_atom(&self.lets[n]),
            FormulaKind::Unary(UnOp::Not, None, c) => match &c.kind {
                FormulaKind::Unary(UnOp::Not, None, cc) => self.counted_atom(cc),
                FormulaKind::Ref(n) => match &self.lets[n].kind {
                    FormulaKind::Unary(UnOp::Not, None, cc) => self.counted_atom(cc),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        }
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
                let atom = self.counted_atom(body);
                let c: u64 = (0..=i)
                    .filter(|&j| j < n)
                    .filter(|&j| Self::in_win(interval, t(i) - t(j)) && self.eval(body, j, env))
                    .map(|j| match atom {
                        Some(a) => self.matches(a, j, env).len().max(1) as u64,
                        None => 1,
                    })
                    .sum();
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
                let bindings: Vec<(usize, Option<String>)> = (0..n)
                    .flat_map(|j| {
                        self.matches(binder, j, env)
                            .into_iter()
                            .map(move |l| (j, l))
                    })
                    .collect();
                let at = |(j, l): &(usize, Option<String>)| {
                    let mut env2 = env.clone();
                    env2.push((var.as_str(), *j, binder, l.clone()));
                    self.eval(body, *j, &env2)
                };
                if *forall {
                    bindings.iter().all(at)
                } else {
                    bindings.iter().any(at)
                }
            }
        }
    }
}
