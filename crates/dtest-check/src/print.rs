//! The pretty-printer: formulas back to source text, with the fewest
//! parentheses that parse back to the same tree.

use std::fmt::{self, Display, Formatter, Write};

use crate::ast::*;
use crate::parse::is_reserved;

/// Binding strength of a formula's top operator (higher binds tighter).
fn prec(f: &Formula) -> u8 {
    match &f.kind {
        FormulaKind::Quant { .. } => 0,
        FormulaKind::Bool(BoolOp::Iff, ..) => 1,
        FormulaKind::Bool(BoolOp::Implies, ..) => 2,
        FormulaKind::Bool(BoolOp::Or, ..) => 3,
        FormulaKind::Bool(BoolOp::And, ..) => 4,
        FormulaKind::Temporal(..) => 5,
        FormulaKind::Unary(..) => 6,
        _ => 7,
    }
}

struct Child<'a>(&'a Formula, u8);

impl Display for Child<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if prec(self.0) < self.1 {
            write!(f, "({})", self.0)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// Writes `s` as a string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_plain_ident(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
        && s != "_"
}

impl Display for Duration {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.value, self.unit.suffix())
    }
}

impl Display for Interval {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.hi {
            Some(h) => write!(f, "[{}, {}]", self.lo, h),
            None => write!(f, "[{}, inf]", self.lo),
        }
    }
}

impl Display for FieldRef {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            FieldRef::Named(n) => f.write_str(n),
            FieldRef::Capture(n) => write!(f, "${n}"),
        }
    }
}

impl Display for Value {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Word(w) if is_plain_ident(w) && w != "true" && w != "false" => f.write_str(w),
            Value::Word(w) | Value::Str(w) => f.write_str(&quote(w)),
            Value::Var(v, field) => write!(f, "{v}.{field}"),
        }
    }
}

impl Display for Atom {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.kind {
            AtomKind::Any => f.write_str("any")?,
            AtomKind::Kind(k) => f.write_str(k.name())?,
        }
        let mut args = Vec::new();
        let text = match &self.text {
            TextPat::Any => None,
            TextPat::Eq(s) => Some(quote(s)),
            TextPat::Regex { source, icase } => {
                Some(format!("/{source}/{}", if *icase { "i" } else { "" }))
            }
        };
        match &self.actor {
            ActorPat::Any if text.is_some() => args.push("_".to_string()),
            ActorPat::Any => {}
            ActorPat::Name(n) if is_plain_ident(n) => args.push(n.clone()),
            ActorPat::Name(n) => args.push(quote(n)),
        }
        args.extend(text);
        for t in &self.fields {
            let op = if t.negated { "!=" } else { "=" };
            args.push(format!("{} {op} {}", t.field, t.value));
        }
        if !args.is_empty() {
            write!(f, "({})", args.join(", "))?;
        }
        Ok(())
    }
}

impl Display for Formula {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.kind {
            FormulaKind::Const(b) => write!(f, "{b}"),
            FormulaKind::Atom(a) => write!(f, "{a}"),
            FormulaKind::Ref(n) => f.write_str(n),
            FormulaKind::Unary(op, iv, c) => {
                f.write_str(op.symbol())?;
                if let Some(iv) = iv {
                    write!(f, "{iv}")?;
                }
                if *op != UnOp::Not {
                    f.write_char(' ')?;
                }
                write!(f, "{}", Child(c, 6))
            }
            FormulaKind::Bool(op, l, r) => {
                let (sym, p, lp, rp) = match op {
                    BoolOp::Iff => ("<->", 1, 1, 2),
                    BoolOp::Implies => ("->", 2, 3, 2),
                    BoolOp::Or => ("||", 3, 3, 4),
                    BoolOp::And => ("&&", 4, 4, 5),
                };
                let _ = p;
                write!(f, "{} {sym} {}", Child(l, lp), Child(r, rp))
            }
            FormulaKind::Temporal(op, iv, l, r) => {
                write!(f, "{} {}", Child(l, 6), op.symbol())?;
                if let Some(iv) = iv {
                    write!(f, "{iv}")?;
                }
                write!(f, " {}", Child(r, 5))
            }
            FormulaKind::Count {
                interval,
                body,
                cmp,
                n,
            } => {
                f.write_str("count")?;
                if let Some(iv) = interval {
                    write!(f, "{iv}")?;
                }
                write!(f, "({body}) {} {n}", cmp.symbol())
            }
            FormulaKind::Quant {
                forall,
                var,
                binder,
                body,
            } => {
                let q = if *forall { "forall" } else { "exists" };
                write!(f, "{q} {var} in {binder}: {body}")
            }
        }
    }
}

impl Display for Spec {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for item in &self.items {
            match item.kind {
                ItemKind::Let => writeln!(f, "let {} = {}", item.name, item.formula)?,
                ItemKind::Property => writeln!(f, "property {}:\n    {}", item.name, item.formula)?,
            }
        }
        Ok(())
    }
}

/// Whether `name` can be printed as a bare let or variable name.
pub fn is_valid_name(name: &str) -> bool {
    is_plain_ident(name) && !is_reserved(name)
}
