//! The spec parser (nom): source text to [`ast::Spec`].
//!
//! Every token parser skips the blanks and `#` comments before it. Errors
//! carry the byte offset where they were found; [`parse_spec`] turns the
//! first one into a [`SpecError`] with line, column and the source line.
//! Once a construct is recognised (an opening parenthesis, an operator), a
//! missing piece is a committed failure (`nom::Err::Failure`) so that the
//! message names what was expected there.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::{char, digit1};
use nom::combinator::{opt, recognize};
use nom::sequence::pair;

use crate::ast::*;
use crate::error::SpecError;

/// A parse error: where (the rest of the input) and what.
#[derive(Debug)]
pub struct PErr<'a> {
    at: &'a str,
    msg: String,
}

impl<'a> nom::error::ParseError<&'a str> for PErr<'a> {
    fn from_error_kind(input: &'a str, _kind: nom::error::ErrorKind) -> Self {
        PErr {
            at: input,
            msg: String::new(),
        }
    }
    fn append(_: &'a str, _: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
    fn or(self, other: Self) -> Self {
        // Keep the error that got further (less input left), then the one
        // with a message.
        if other.at.len() < self.at.len()
            || (other.at.len() == self.at.len() && self.msg.is_empty())
        {
            other
        } else {
            self
        }
    }
}

type PResult<'a, T> = nom::IResult<&'a str, T, PErr<'a>>;

/// Words that are operators or keywords: not usable as let names.
pub const RESERVED: &[&str] = &[
    "let",
    "property",
    "true",
    "false",
    "not",
    "and",
    "or",
    "implies",
    "next",
    "eventually",
    "always",
    "until",
    "once",
    "historically",
    "since",
    "X",
    "WX",
    "F",
    "G",
    "U",
    "W",
    "R",
    "Y",
    "WY",
    "O",
    "H",
    "S",
    "CO",
    "CH",
    "CF",
    "CG",
    "CC",
    "causally_once",
    "causally_historically",
    "causally_eventually",
    "causally_always",
    "concurrently",
    "count",
    "forall",
    "exists",
    "in",
    "any",
    "inf",
];

/// Whether `w` is a reserved word or an event kind name.
pub fn is_reserved(w: &str) -> bool {
    RESERVED.contains(&w) || dtest_trace::Kind::from_name(w).is_some()
}

fn failure<T>(at: &str, msg: impl Into<String>) -> PResult<'_, T> {
    Err(nom::Err::Failure(PErr {
        at,
        msg: msg.into(),
    }))
}

fn soft<T>(at: &str) -> PResult<'_, T> {
    Err(nom::Err::Error(PErr {
        at,
        msg: String::new(),
    }))
}

/// Skips blanks and comments.
fn ws(mut i: &str) -> &str {
    loop {
        let t = i.trim_start();
        if let Some(rest) = t.strip_prefix('#') {
            i = rest.find('\n').map(|p| &rest[p..]).unwrap_or("");
        } else {
            return t;
        }
    }
}

/// What the next token looks like, for messages.
fn describe(i: &str) -> String {
    let i = ws(i);
    match i.chars().next() {
        None => "end of file".into(),
        Some(c) if c.is_alphanumeric() || c == '_' => {
            let w: String = i
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            format!("`{w}`")
        }
        Some(c) => format!("`{c}`"),
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn raw_ident(i: &str) -> PResult<'_, &str> {
    recognize(pair(take_while1(is_ident_start), take_while(is_ident_char)))(i)
}

/// An identifier (any word, reserved or not).
fn word(i: &str) -> PResult<'_, &str> {
    raw_ident(ws(i))
}

/// The keyword `kw` as a whole word.
fn kw<'a>(kw: &'static str) -> impl Fn(&'a str) -> PResult<'a, &'a str> {
    move |i| {
        let (rest, w) = word(i)?;
        if w == kw {
            Ok((rest, w))
        } else {
            soft(i)
        }
    }
}

/// The symbol `s`.
fn sym<'a>(s: &'static str) -> impl Fn(&'a str) -> PResult<'a, &'a str> {
    move |i| tag(s)(ws(i))
}

fn expect<'a>(i: &'a str, s: &'static str) -> PResult<'a, &'a str> {
    match sym(s)(i) {
        Ok(r) => Ok(r),
        Err(_) => failure(ws(i), format!("expected `{s}`, found {}", describe(i))),
    }
}

/// How deep a formula may nest (parentheses, operators): deeper specs are
/// refused with an error instead of overflowing the stack later.
pub const MAX_DEPTH: usize = 100;

/// A parser over one source; knows the source to compute offsets.
struct P<'a> {
    src: &'a str,
    depth: std::cell::Cell<usize>,
}

impl<'a> P<'a> {
    fn off(&self, i: &str) -> usize {
        self.src.len() - i.len()
    }

    fn span(&self, start: &str, end: &str) -> Span {
        Span::new(self.off(ws(start)), self.off(end))
    }

    fn spec(&self, mut i: &'a str) -> PResult<'a, Spec> {
        let mut items = Vec::new();
        loop {
            i = ws(i);
            if i.is_empty() {
                return Ok((i, Spec { items }));
            }
            let (rest, w) = match word(i) {
                Ok(r) => r,
                Err(_) => {
                    return failure(
                        i,
                        format!("expected `let` or `property`, found {}", describe(i)),
                    )
                }
            };
            let kind = match w {
                "let" => ItemKind::Let,
                "property" => ItemKind::Property,
                _ => {
                    return failure(
                        i,
                        format!("expected `let` or `property`, found {}", describe(i)),
                    )
                }
            };
            let name_at = ws(rest);
            let (rest, name) = match word(rest) {
                Ok(r) => r,
                Err(_) => {
                    return failure(
                        name_at,
                        format!("expected a name, found {}", describe(rest)),
                    )
                }
            };
            if is_reserved(name) {
                return failure(
                    name_at,
                    format!(
                        "`{name}` is a reserved word, it cannot name a {}",
                        if kind == ItemKind::Let {
                            "let"
                        } else {
                            "property"
                        }
                    ),
                );
            }
            let name_span = self.span(name_at, rest);
            let (rest, _) = match kind {
                ItemKind::Let => expect(rest, "=")?,
                ItemKind::Property => expect(rest, ":")?,
            };
            let (rest, formula) = self.formula(rest)?;
            let after = ws(rest);
            if !after.is_empty() && kw("let")(after).is_err() && kw("property")(after).is_err() {
                return failure(
                    after,
                    format!("unexpected {} after the formula", describe(after)),
                );
            }
            items.push(Item {
                kind,
                name: name.to_string(),
                name_span,
                formula,
            });
            i = rest;
        }
    }

    /// A whole formula (the loosest level).
    fn formula(&self, i: &'a str) -> PResult<'a, Formula> {
        self.iff(i)
    }

    fn mk(&self, start: &'a str, end: &'a str, kind: FormulaKind) -> Formula {
        Formula {
            kind,
            span: self.span(start, end),
        }
    }

    fn iff(&self, i: &'a str) -> PResult<'a, Formula> {
        let (mut i0, mut l) = self.implies(i)?;
        let mut chain = 0;
        while let Ok((rest, _)) = sym("<->")(i0) {
            chain += 1;
            self.chain_ok(rest, chain)?;
            let (rest, r) = self.required(rest, Self::implies)?;
            l = self.mk(
                i,
                rest,
                FormulaKind::Bool(BoolOp::Iff, Box::new(l), Box::new(r)),
            );
            i0 = rest;
        }
        Ok((i0, l))
    }

    fn implies(&self, i: &'a str) -> PResult<'a, Formula> {
        let (rest, l) = self.or(i)?;
        if let Ok((r2, _)) = alt((sym("->"), kw("implies")))(rest) {
            let (r3, r) = self.required(r2, Self::implies)?;
            return Ok((
                r3,
                self.mk(
                    i,
                    r3,
                    FormulaKind::Bool(BoolOp::Implies, Box::new(l), Box::new(r)),
                ),
            ));
        }
        Ok((rest, l))
    }

    fn or(&self, i: &'a str) -> PResult<'a, Formula> {
        let (mut i0, mut l) = self.and(i)?;
        let mut chain = 0;
        while let Ok((rest, _)) = alt((sym("||"), kw("or")))(i0) {
            chain += 1;
            self.chain_ok(rest, chain)?;
            let (rest, r) = self.required(rest, Self::and)?;
            l = self.mk(
                i,
                rest,
                FormulaKind::Bool(BoolOp::Or, Box::new(l), Box::new(r)),
            );
            i0 = rest;
        }
        Ok((i0, l))
    }

    fn and(&self, i: &'a str) -> PResult<'a, Formula> {
        let (mut i0, mut l) = self.temporal(i)?;
        let mut chain = 0;
        while let Ok((rest, _)) = alt((sym("&&"), kw("and")))(i0) {
            chain += 1;
            self.chain_ok(rest, chain)?;
            let (rest, r) = self.required(rest, Self::temporal)?;
            l = self.mk(
                i,
                rest,
                FormulaKind::Bool(BoolOp::And, Box::new(l), Box::new(r)),
            );
            i0 = rest;
        }
        Ok((i0, l))
    }

    fn temporal(&self, i: &'a str) -> PResult<'a, Formula> {
        let (rest, l) = self.unary(i)?;
        let op = match word(rest) {
            Ok((r2, w)) => match w {
                "U" | "until" => Some((r2, TempOp::Until)),
                "W" => Some((r2, TempOp::WeakUntil)),
                "R" => Some((r2, TempOp::Release)),
                "S" | "since" => Some((r2, TempOp::Since)),
                _ => None,
            },
            Err(_) => None,
        };
        let Some((r2, op)) = op else {
            return Ok((rest, l));
        };
        let (r2, iv) = self.opt_interval(r2, op.takes_interval(), op.symbol())?;
        let (r3, r) = self.required(r2, Self::temporal)?;
        Ok((
            r3,
            self.mk(
                i,
                r3,
                FormulaKind::Temporal(op, iv, Box::new(l), Box::new(r)),
            ),
        ))
    }

    /// A chain of `chain` left-associative operators nests that deep.
    fn chain_ok(&self, at: &'a str, chain: usize) -> PResult<'a, ()> {
        if self.depth.get() + chain >= MAX_DEPTH {
            return failure(
                ws(at),
                format!("formula nested too deeply (more than {MAX_DEPTH} levels)"),
            );
        }
        Ok((at, ()))
    }

    /// Runs `f`; a soft failure becomes "expected a formula".
    fn required(
        &self,
        i: &'a str,
        f: fn(&Self, &'a str) -> PResult<'a, Formula>,
    ) -> PResult<'a, Formula> {
        let d = self.depth.get();
        if d >= MAX_DEPTH {
            return failure(
                ws(i),
                format!("formula nested too deeply (more than {MAX_DEPTH} levels)"),
            );
        }
        self.depth.set(d + 1);
        let r = f(self, i);
        self.depth.set(d);
        match r {
            Err(nom::Err::Error(_)) => {
                failure(ws(i), format!("expected a formula, found {}", describe(i)))
            }
            r => r,
        }
    }

    fn opt_interval(&self, i: &'a str, allowed: bool, op: &str) -> PResult<'a, Option<Interval>> {
        let Ok((rest, _)) = sym("[")(i) else {
            return Ok((i, None));
        };
        if !allowed {
            return failure(ws(i), format!("`{op}` takes no interval"));
        }
        let (rest, lo) = self.duration(rest)?;
        let (rest, _) = expect(rest, ",")?;
        let (rest, hi) = match kw("inf")(rest) {
            Ok((r, _)) => (r, None),
            Err(_) => {
                let (r, d) = self.duration(rest)?;
                (r, Some(d))
            }
        };
        let (rest, _) = expect(rest, "]")?;
        if let Some(h) = hi {
            if h.nanos() < lo.nanos() {
                return failure(
                    ws(i),
                    "empty interval: the lower bound is above the upper bound",
                );
            }
        }
        Ok((rest, Some(Interval { lo, hi })))
    }

    fn duration(&self, i: &'a str) -> PResult<'a, Duration> {
        let at = ws(i);
        let (rest, digits) = match digit1::<_, PErr>(at) {
            Ok(r) => r,
            Err(_) => {
                return failure(
                    at,
                    format!("expected a duration (like `2s`), found {}", describe(at)),
                )
            }
        };
        let Ok(value) = digits.parse::<u64>() else {
            return failure(at, "duration too large");
        };
        let (rest2, unit) = take_while::<_, _, PErr>(|c: char| c.is_ascii_alphabetic())(rest)?;
        let unit = match unit {
            "ns" => Unit::Ns,
            "us" => Unit::Us,
            "ms" => Unit::Ms,
            "s" => Unit::S,
            "m" => Unit::M,
            "h" => Unit::H,
            "" if value == 0 => Unit::S,
            "" => return failure(rest, "missing time unit (ns, us, ms, s, m or h)"),
            u => {
                return failure(
                    rest,
                    format!("unknown time unit `{u}` (ns, us, ms, s, m or h)"),
                )
            }
        };
        if value.checked_mul(unit.nanos()).is_none() {
            return failure(at, "duration too large");
        }
        Ok((rest2, Duration { value, unit }))
    }

    fn unary(&self, i: &'a str) -> PResult<'a, Formula> {
        if let Ok((rest, _)) = sym("!")(i) {
            if !rest.starts_with('=') {
                let (rest, f) = self.required(rest, Self::unary)?;
                return Ok((
                    rest,
                    self.mk(i, rest, FormulaKind::Unary(UnOp::Not, None, Box::new(f))),
                ));
            }
        }
        if let Ok((rest, w)) = word(i) {
            let op = match w {
                "not" => Some(UnOp::Not),
                "X" | "next" => Some(UnOp::Next),
                "WX" => Some(UnOp::WeakNext),
                "F" | "eventually" => Some(UnOp::Eventually),
                "G" | "always" => Some(UnOp::Always),
                "Y" => Some(UnOp::Prev),
                "WY" => Some(UnOp::WeakPrev),
                "O" | "once" => Some(UnOp::Once),
                "H" | "historically" => Some(UnOp::Historically),
                "CO" | "causally_once" => Some(UnOp::CausallyOnce),
                "CH" | "causally_historically" => Some(UnOp::CausallyHistorically),
                "CF" | "causally_eventually" => Some(UnOp::CausallyEventually),
                "CG" | "causally_always" => Some(UnOp::CausallyAlways),
                "CC" | "concurrently" => Some(UnOp::Concurrently),
                _ => None,
            };
            if let Some(op) = op {
                let (rest, iv) = self.opt_interval(rest, op.takes_interval(), op.symbol())?;
                let (rest, f) = self.required(rest, Self::unary)?;
                return Ok((
                    rest,
                    self.mk(i, rest, FormulaKind::Unary(op, iv, Box::new(f))),
                ));
            }
        }
        self.primary(i)
    }

    fn primary(&self, i: &'a str) -> PResult<'a, Formula> {
        if let Ok((rest, _)) = sym("(")(i) {
            let (rest, f) = self.required(rest, Self::formula)?;
            let (rest, _) = expect(rest, ")")?;
            return Ok((rest, f));
        }
        let at = ws(i);
        if at.starts_with('"') || at.starts_with('/') {
            let e = if at.starts_with('"') {
                string_lit(at).map(|_| ())
            } else {
                regex_lit(at).map(|_| ())
            };
            if let Err(e @ nom::Err::Failure(_)) = e {
                return Err(e);
            }
            return failure(
                at,
                "a string or regex is an atom's argument here, like output(_, \"text\")",
            );
        }
        let Ok((rest, w)) = word(i) else {
            return soft(at);
        };
        match w {
            "true" => Ok((rest, self.mk(i, rest, FormulaKind::Const(true)))),
            "false" => Ok((rest, self.mk(i, rest, FormulaKind::Const(false)))),
            "count" => self.count(i, rest),
            "forall" | "exists" => self.quant(i, rest, w == "forall"),
            _ => {
                if w == "any" || dtest_trace::Kind::from_name(w).is_some() {
                    let (rest, a) = self.atom(i)?;
                    return Ok((rest, self.mk(i, rest, FormulaKind::Atom(a))));
                }
                if is_reserved(w) {
                    return soft(at);
                }
                if sym("(")(rest).is_ok() {
                    return failure(
                        at,
                        format!(
                            "unknown event kind `{w}` (kinds: {}, any)",
                            dtest_trace::Kind::ALL.map(|k| k.name()).join(" ")
                        ),
                    );
                }
                Ok((rest, self.mk(i, rest, FormulaKind::Ref(w.to_string()))))
            }
        }
    }

    fn count(&self, start: &'a str, i: &'a str) -> PResult<'a, Formula> {
        let (rest, iv) = self.opt_interval(i, true, "count")?;
        let (rest, _) = expect(rest, "(")?;
        let (rest, body) = self.required(rest, Self::formula)?;
        let (rest, _) = expect(rest, ")")?;
        let at = ws(rest);
        let (rest, op) = match alt((
            sym("=="),
            sym("!="),
            sym("<="),
            sym(">="),
            sym("<"),
            sym(">"),
        ))(rest)
        {
            Ok(r) => r,
            Err(_) => {
                return failure(
                    at,
                    format!(
                        "expected a comparison (== != < <= > >=), found {}",
                        describe(at)
                    ),
                )
            }
        };
        let cmp = match op {
            "==" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            "<=" => CmpOp::Le,
            ">=" => CmpOp::Ge,
            "<" => CmpOp::Lt,
            _ => CmpOp::Gt,
        };
        let at = ws(rest);
        let (rest, digits) = match digit1::<_, PErr>(at) {
            Ok(r) => r,
            Err(_) => return failure(at, format!("expected a number, found {}", describe(at))),
        };
        let Ok(n) = digits.parse::<u64>() else {
            return failure(at, "number too large");
        };
        Ok((
            rest,
            self.mk(
                start,
                rest,
                FormulaKind::Count {
                    interval: iv,
                    body: Box::new(body),
                    cmp,
                    n,
                },
            ),
        ))
    }

    fn quant(&self, start: &'a str, i: &'a str, forall: bool) -> PResult<'a, Formula> {
        let at = ws(i);
        let (rest, var) = match word(i) {
            Ok((r, v)) if !is_reserved(v) => (r, v),
            _ => {
                return failure(
                    at,
                    format!("expected an event variable name, found {}", describe(at)),
                )
            }
        };
        let rest = match kw("in")(rest) {
            Ok((r, _)) => r,
            Err(_) => return failure(ws(rest), format!("expected `in`, found {}", describe(rest))),
        };
        let at = ws(rest);
        let binder = match word(rest) {
            Ok((_, w)) if w == "any" || dtest_trace::Kind::from_name(w).is_some() => {
                let (r, a) = self.atom(rest)?;
                (r, a)
            }
            _ => {
                return failure(
                    at,
                    format!(
                        "expected an event atom (like `input(client)`), found {}",
                        describe(at)
                    ),
                )
            }
        };
        let (rest, binder) = binder;
        let (rest, _) = expect(rest, ":")?;
        let (rest, body) = self.required(rest, Self::formula)?;
        Ok((
            rest,
            self.mk(
                start,
                rest,
                FormulaKind::Quant {
                    forall,
                    var: var.to_string(),
                    binder,
                    body: Box::new(body),
                },
            ),
        ))
    }

    fn atom(&self, i: &'a str) -> PResult<'a, Atom> {
        let (mut rest, w) = word(i)?;
        let kind = if w == "any" {
            AtomKind::Any
        } else {
            match dtest_trace::Kind::from_name(w) {
                Some(k) => AtomKind::Kind(k),
                None => return soft(ws(i)),
            }
        };
        let mut atom = Atom {
            kind,
            actor: ActorPat::Any,
            text: TextPat::Any,
            fields: Vec::new(),
            span: Span::default(),
        };
        if let Ok((r, _)) = sym("(")(rest) {
            rest = r;
            let mut positional = 0;
            if let Ok((r, _)) = sym(")")(rest) {
                rest = r;
            } else {
                loop {
                    let at = ws(rest);
                    // A named argument: FIELD = or FIELD != or $N.
                    let named = match self.field_ref(rest) {
                        Ok((r, f)) => match alt((sym("!="), sym("=")))(r) {
                            Ok((r2, op)) => Some((r2, f, op == "!=")),
                            Err(_) => None,
                        },
                        Err(_) => None,
                    };
                    if let Some((r2, field, negated)) = named {
                        let (r3, value) = self.value(r2)?;
                        atom.fields.push(FieldTest {
                            field,
                            negated,
                            value,
                            span: self.span(at, r3),
                        });
                        positional = 2;
                        rest = r3;
                    } else if atom.fields.is_empty() && positional < 2 {
                        let (r2, ()) = if positional == 0 {
                            self.actor_arg(rest, &mut atom)?
                        } else {
                            self.text_arg(rest, &mut atom)?
                        };
                        positional += 1;
                        rest = r2;
                    } else if positional >= 2 && atom.fields.is_empty() {
                        return failure(at, "an atom takes at most two positional arguments (actor, text); name the others (`FIELD = VALUE`)");
                    } else {
                        return failure(
                            at,
                            format!(
                                "expected a named argument (`FIELD = VALUE`), found {}",
                                describe(at)
                            ),
                        );
                    }
                    if let Ok((r, _)) = sym(",")(rest) {
                        rest = r;
                        continue;
                    }
                    let (r, _) = expect(rest, ")")?;
                    rest = r;
                    break;
                }
            }
        }
        atom.span = self.span(i, rest);
        Ok((rest, atom))
    }

    fn field_ref(&self, i: &'a str) -> PResult<'a, FieldRef> {
        if let Ok((rest, _)) = sym("$")(i) {
            let (rest, d) = match digit1::<_, PErr>(rest) {
                Ok(r) => r,
                Err(_) => return failure(rest, "expected a group number after `$`"),
            };
            let Ok(n) = d.parse::<u32>() else {
                return failure(rest, "group number too large");
            };
            return Ok((rest, FieldRef::Capture(n)));
        }
        let (rest, w) = word(i)?;
        Ok((rest, FieldRef::Named(w.to_string())))
    }

    fn actor_arg(&self, i: &'a str, atom: &mut Atom) -> PResult<'a, ()> {
        let at = ws(i);
        if let Ok((rest, s)) = string_lit(at) {
            atom.actor = ActorPat::Name(s);
            return Ok((rest, ()));
        }
        match word(at) {
            Ok((rest, "_")) => Ok((rest, ())),
            Ok((rest, w)) => {
                atom.actor = ActorPat::Name(w.to_string());
                Ok((rest, ()))
            }
            Err(_) => failure(
                at,
                format!(
                    "expected an actor (a name, a string or `_`), found {}",
                    describe(at)
                ),
            ),
        }
    }

    fn text_arg(&self, i: &'a str, atom: &mut Atom) -> PResult<'a, ()> {
        let at = ws(i);
        if let Ok((rest, s)) = string_lit(at) {
            atom.text = TextPat::Eq(s);
            return Ok((rest, ()));
        }
        if let Ok((rest, (source, icase))) = regex_lit(at) {
            atom.text = TextPat::Regex { source, icase };
            return Ok((rest, ()));
        }
        if let Ok((rest, "_")) = word(at) {
            return Ok((rest, ()));
        }
        failure(
            at,
            format!(
                "expected a text (a string, a /regex/ or `_`), found {}",
                describe(at)
            ),
        )
    }

    fn value(&self, i: &'a str) -> PResult<'a, Value> {
        let at = ws(i);
        if let Ok((rest, s)) = string_lit(at) {
            return Ok((rest, Value::Str(s)));
        }
        if let Ok((rest, n)) = recognize::<_, _, PErr, _>(pair(opt(char('-')), digit1))(at) {
            return match n.parse::<i64>() {
                Ok(v) => Ok((rest, Value::Int(v))),
                Err(_) => failure(at, "number too large"),
            };
        }
        if let Ok((rest, w)) = word(at) {
            if let Ok((r2, _)) = tag::<_, _, PErr>(".")(rest) {
                let (r3, f) = match self.field_ref(r2) {
                    Ok(r) => r,
                    Err(_) => return failure(r2, format!("expected a field after `{w}.`")),
                };
                return Ok((r3, Value::Var(w.to_string(), f)));
            }
            return Ok((
                rest,
                match w {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => Value::Word(w.to_string()),
                },
            ));
        }
        failure(at, format!("expected a value, found {}", describe(at)))
    }
}

/// A `"..."` string with `\" \\ \n \t` escapes.
fn string_lit(i: &str) -> PResult<'_, String> {
    let Some(body) = i.strip_prefix('"') else {
        return soft(i);
    };
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((k, c)) = chars.next() {
        match c {
            '"' => return Ok((&body[k + 1..], out)),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((j, other)) => {
                    return failure(
                        &body[j..],
                        format!("unknown escape `\\{other}` in a string"),
                    )
                }
                None => break,
            },
            '\n' => {
                return failure(
                    &body[k..],
                    "unterminated string (strings end on their line)",
                )
            }
            c => out.push(c),
        }
    }
    failure(i, "unterminated string")
}

/// A `/.../` regex with an optional `i` flag; `\/` stands for `/`.
fn regex_lit(i: &str) -> PResult<'_, (String, bool)> {
    let Some(body) = i.strip_prefix('/') else {
        return soft(i);
    };
    let mut chars = body.char_indices();
    while let Some((k, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, '\n')) | None = chars.next() {
                    break;
                }
            }
            '/' => {
                let source = body[..k].to_string();
                let rest = &body[k + 1..];
                if let Some(r) = rest.strip_prefix('i') {
                    if !r.starts_with(is_ident_char) {
                        return Ok((r, (source, true)));
                    }
                }
                if rest.starts_with(is_ident_char) {
                    return failure(rest, "unknown regex flag (only `i` is supported)");
                }
                return Ok((rest, (source, false)));
            }
            '\n' => break,
            _ => {}
        }
    }
    failure(i, "unterminated regex (a /regex/ ends on its line)")
}

fn to_spec_error(file: &str, src: &str, e: nom::Err<PErr<'_>>) -> SpecError {
    match e {
        nom::Err::Error(e) | nom::Err::Failure(e) => {
            let msg = if e.msg.is_empty() {
                format!("unexpected {}", describe(e.at))
            } else {
                e.msg
            };
            SpecError::at(file, src, src.len() - e.at.len(), msg)
        }
        nom::Err::Incomplete(_) => SpecError::at(file, src, src.len(), "unexpected end of file"),
    }
}

/// Parses a spec (syntax only; see [`crate::Spec::parse`] for the checks).
pub fn parse_spec(file: &str, src: &str) -> Result<Spec, SpecError> {
    let p = P {
        src,
        depth: std::cell::Cell::new(0),
    };
    match p.spec(src) {
        Ok((_, spec)) => Ok(spec),
        Err(e) => Err(to_spec_error(file, src, e)),
    }
}

/// Parses one formula (the whole input).
pub fn parse_formula(src: &str) -> Result<Formula, SpecError> {
    let p = P {
        src,
        depth: std::cell::Cell::new(0),
    };
    match p.required(src, P::formula) {
        Ok((rest, f)) => {
            let rest = ws(rest);
            if rest.is_empty() {
                Ok(f)
            } else {
                Err(SpecError::at(
                    "<formula>",
                    src,
                    src.len() - rest.len(),
                    format!("unexpected {} after the formula", describe(rest)),
                ))
            }
        }
        Err(e) => Err(to_spec_error("<formula>", src, e)),
    }
}
