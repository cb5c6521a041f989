//! Warnings for atoms that cannot mean what they say on a trace: an actor
//! the trace does not have, a kind that never occurs, a string that no
//! text equals while the same text as a regex would be found.

use dtest_trace::{Event, Kind};
use regex::Regex;
use serde::Serialize;

use crate::fields;
use crate::ir::{AtomIr, Ir, Needs, TextTest};

/// A warning about an atom of the spec on one trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckWarning {
    /// The spec file.
    pub file: String,
    /// Line of the atom, from 1.
    pub line: usize,
    /// Column of the atom, from 1.
    pub col: usize,
    /// The atom as written.
    pub atom: String,
    /// The trace.
    pub trace: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for CheckWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: warning: `{}` on {}: {}",
            self.file, self.line, self.col, self.atom, self.trace, self.message
        )
    }
}

/// What a pass over a trace learns for the warnings.
#[derive(Clone, Debug, Default)]
pub struct TraceStats {
    /// Events per kind (by tag).
    pub kind_counts: Vec<u64>,
    /// Atoms (ids) with a string text that no event's text equals while
    /// the string as a regex is found in one.
    pub eq_as_regex: Vec<u32>,
    /// Atoms (ids) that hold somewhere.
    pub held: Vec<u32>,
}

/// Tracks, for atoms with a string text, whether the string read as a
/// regex would be found in the text of an event of the atom's kind and
/// actor (it stops looking at the first hit).
pub(crate) struct EqAsRegex<'a> {
    atoms: Vec<(u32, &'a AtomIr, Regex, bool)>,
}

impl<'a> EqAsRegex<'a> {
    pub fn new(ir: &'a Ir, needs: &Needs) -> EqAsRegex<'a> {
        let mut atoms = Vec::new();
        let mut ids: Vec<u32> = needs.atoms.clone();
        ids.extend(needs.keys.iter().map(|k| k.atom));
        ids.sort_unstable();
        ids.dedup();
        for a in ids {
            let atom = &ir.atoms[a as usize];
            if let TextTest::Eq(s) = &atom.text {
                // A string that does not compile as a regex (or is too big
                // for one) is looked for as itself; failing that, no warning.
                let re = Regex::new(s).or_else(|_| Regex::new(&regex::escape(s)));
                if let Ok(re) = re {
                    atoms.push((a, atom, re, false));
                }
            }
        }
        EqAsRegex { atoms }
    }

    #[inline]
    pub fn event(&mut self, e: &Event) {
        if !self.atoms.is_empty() {
            self.look(e);
        }
    }

    fn look(&mut self, e: &Event) {
        let kind = e.data.kind();
        for (_, atom, re, seen) in &mut self.atoms {
            if *seen || atom.kind.is_some_and(|k| k != kind) {
                continue;
            }
            *seen = re.is_match(&fields::text(&e.data));
        }
    }

    /// The atoms whose string as a regex was found.
    pub fn finish(&self) -> Vec<u32> {
        self.atoms.iter().filter(|x| x.3).map(|x| x.0).collect()
    }
}

/// The warnings for the atoms of `needs` on a trace with these actors.
pub(crate) fn warnings(
    ir: &Ir,
    needs: &Needs,
    actor_names: &[String],
    stats: &TraceStats,
    file: &str,
    trace: &str,
) -> Vec<CheckWarning> {
    let mut ids: Vec<u32> = needs.atoms.clone();
    ids.extend(needs.keys.iter().map(|k| k.atom));
    ids.sort_unstable();
    ids.dedup();
    let have = || {
        let mut v: Vec<&str> = actor_names.iter().map(String::as_str).collect();
        v.truncate(12);
        let more = actor_names.len().saturating_sub(12);
        let mut s = v.join(", ");
        if more > 0 {
            s.push_str(&format!(" and {more} more"));
        }
        s
    };
    let mut out = Vec::new();
    for a in ids {
        let atom = &ir.atoms[a as usize];
        let mut msgs = Vec::new();
        let mut names: Vec<&str> = atom.actor.as_deref().into_iter().collect();
        names.extend(
            atom.fields
                .iter()
                .filter(|(f, neg, _)| *f == fields::ACTOR && !neg)
                .map(|(_, _, v)| v.as_str()),
        );
        for n in names {
            if !actor_names.iter().any(|x| x == n) {
                msgs.push(format!(
                    "the trace has no actor `{n}` (its actors: {})",
                    have()
                ));
            }
        }
        if let Some(k) = atom.kind {
            if stats.kind_counts.get(k as usize).copied().unwrap_or(0) == 0 {
                msgs.push(format!("no `{}` event occurs in the trace", k.name()));
            }
        }
        if msgs.is_empty() && stats.eq_as_regex.contains(&a) && !stats.held.contains(&a) {
            if let TextTest::Eq(s) = &atom.text {
                let whole = match atom.kind {
                    Some(Kind::Input | Kind::Output) | None => "a whole line",
                    Some(_) => "the whole text",
                };
                let source = if Regex::new(s).is_ok() {
                    s.clone()
                } else {
                    regex::escape(s)
                };
                msgs.push(format!(
                    "no event's text equals {} (a string means {whole}), but /{}/ would match: write a /regex/ to search in the text",
                    crate::print::quote(s),
                    source.replace('/', "\\/")
                ));
            }
        }
        for m in msgs {
            for &(line, col) in atom.pos.iter().take(1) {
                out.push(CheckWarning {
                    file: file.to_string(),
                    line,
                    col,
                    atom: atom.source.clone(),
                    trace: trace.to_string(),
                    message: m.clone(),
                });
            }
        }
    }
    out.sort_by_key(|a| (a.line, a.col));
    out
}
