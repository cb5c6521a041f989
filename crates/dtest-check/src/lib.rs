//! `dtest check`: temporal-logic properties checked on dtest traces.
//!
//! A spec (see `properties/README.md` for the language) is parsed with nom
//! into an [`ast::Spec`], checked and lowered into a small [`ir::Ir`] (a DAG
//! of core operators shared by the properties), and evaluated on a trace
//! held in columns ([`columns::Columns`]) in time linear in the trace
//! length ([`eval`]). Properties and traces are checked in parallel (rayon).
//!
//! ```
//! use dtest_check::{Spec, Verdict};
//! use dtest_trace::{Actor, ActorKind, EventData, Header, Recorder};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("t.dtrace");
//! let actors = vec![
//!     Actor { id: 0, name: "master".into(), kind: ActorKind::Master, host: "local".into() },
//!     Actor { id: 1, name: "tester1".into(), kind: ActorKind::Tester, host: "local".into() },
//!     Actor { id: 2, name: "tester1@local".into(), kind: ActorKind::Session, host: "local".into() },
//! ];
//! let rec = Recorder::create(&path, Header::new("doc", actors)).unwrap();
//! let m = rec.send(1, EventData::Start { command: "make".into() }).unwrap();
//! rec.recv(2, m).unwrap();
//! rec.finish(0, true, "ok").unwrap();
//! drop(rec);
//!
//! let spec = Spec::parse("doc.spec", r#"
//!     property started: F start(tester1, /make/)
//!     property no_panic: G !output(_, /panic/)
//!     property exits: G (start -> F exit)
//! "#).unwrap();
//! let results = dtest_check::check_trace(&spec, &[], &path).unwrap();
//! let verdicts: Vec<Verdict> = results.iter().map(|r| r.verdict).collect();
//! assert_eq!(verdicts, [Verdict::Holds, Verdict::Holds, Verdict::Violated]);
//! ```

pub mod ast;
pub mod columns;
mod error;
pub mod eval;
pub mod fields;
pub mod ir;
mod lines;
mod online;
pub mod parse;
pub mod print;
pub mod report;
mod warn;

#[cfg(test)]
mod naive;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use rayon::prelude::*;

pub use error::{Error, Result, SpecError};
pub use eval::Verdict;
pub use report::{EventInfo, PropertyResult, ReportNote};
pub use warn::CheckWarning;

/// The results of a spec on one trace, and the warnings about its atoms
/// there (an actor the trace does not have, a kind that never occurs, a
/// string no text equals that would match as a regex).
#[derive(Clone, Debug)]
pub struct TraceReport {
    /// The trace.
    pub trace: PathBuf,
    /// One result per property checked, in the spec's order.
    pub results: Vec<PropertyResult>,
    /// Warnings, in the spec's order.
    pub warnings: Vec<CheckWarning>,
}

/// Stack of the thread that parses a spec.
const PARSE_STACK: usize = 64 << 20;

/// A parsed and checked spec, ready to evaluate.
#[derive(Debug)]
pub struct Spec {
    /// The file it came from (as given), for messages and reports.
    pub file: String,
    /// The syntax tree.
    pub ast: ast::Spec,
    /// The lowered properties.
    pub ir: ir::Ir,
}

impl Spec {
    /// Parses and checks a spec; `file` names it in error messages.
    /// Unknown kinds, fields, lets and variables, bad values and bad
    /// regexes are errors here, before any trace is read.
    pub fn parse(file: &str, src: &str) -> std::result::Result<Spec, SpecError> {
        // The parser and the lowering recurse once per nesting level (at
        // most `parse::MAX_DEPTH`); a thread with a roomy stack keeps that
        // safe whatever the caller's stack.
        std::thread::scope(|s| {
            match std::thread::Builder::new()
                .name("dtest-check-parse".into())
                .stack_size(PARSE_STACK)
                .spawn_scoped(s, || Self::parse_here(file, src))
            {
                Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                Err(_) => Self::parse_here(file, src),
            }
        })
    }

    fn parse_here(file: &str, src: &str) -> std::result::Result<Spec, SpecError> {
        let ast = parse::parse_spec(file, src)?;
        let ir = ir::lower(&ast, file, src)?;
        Ok(Spec {
            file: file.to_string(),
            ast,
            ir,
        })
    }

    /// Reads, parses and checks a spec file.
    pub fn parse_file(path: &Path) -> Result<Spec> {
        let src = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Spec::parse(&path.display().to_string(), &src)?)
    }

    /// The names of the properties, in source order.
    pub fn property_names(&self) -> Vec<&str> {
        self.ir.properties.iter().map(|p| p.name.as_str()).collect()
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.ir.properties.len()
    }

    /// Whether the spec has no property.
    pub fn is_empty(&self) -> bool {
        self.ir.properties.is_empty()
    }

    /// Indexes of the properties named in `only` (all when empty).
    pub fn select(&self, only: &[String]) -> Result<Vec<usize>> {
        if only.is_empty() {
            return Ok((0..self.len()).collect());
        }
        let mut out = Vec::new();
        for name in only {
            match self.ir.properties.iter().position(|p| &p.name == name) {
                Some(i) => {
                    if !out.contains(&i) {
                        out.push(i)
                    }
                }
                None => return Err(Error::UnknownProperty(name.clone())),
            }
        }
        out.sort_unstable();
        Ok(out)
    }
}

/// Reads a trace into columns holding what the selected properties need.
pub fn load_columns(spec: &Spec, props: &[usize], trace: &Path) -> Result<columns::Columns> {
    let mut needs = ir::Needs::default();
    for &p in props {
        needs.union(&spec.ir.needs(spec.ir.properties[p].root));
    }
    let terr = |source| Error::Trace {
        path: trace.to_path_buf(),
        source,
    };
    let reader = dtest_trace::Reader::open(trace)
        .map_err(terr)?
        .with_options(columns::read_options(&spec.ir, &needs));
    columns::Columns::read(reader, &spec.ir, &needs).map_err(terr)
}

/// Checks the properties named in `only` (all when empty) on one trace, in
/// parallel. Results are in the spec's order.
pub fn check_trace(spec: &Spec, only: &[String], trace: &Path) -> Result<Vec<PropertyResult>> {
    Ok(check_trace_report(spec, only, trace)?.results)
}

/// Like [`check_trace`], with the warnings.
pub fn check_trace_report(spec: &Spec, only: &[String], trace: &Path) -> Result<TraceReport> {
    let props = spec.select(only)?;
    if props
        .iter()
        .all(|&p| online::streamable(&spec.ir, spec.ir.properties[p].root))
    {
        return online::check(spec, &props, trace);
    }
    check_columns(spec, &props, trace)
}

/// Checks properties `props` on the columns of the whole trace.
pub(crate) fn check_columns(spec: &Spec, props: &[usize], trace: &Path) -> Result<TraceReport> {
    let mut needs = ir::Needs::default();
    for &p in props {
        needs.union(&spec.ir.needs(spec.ir.properties[p].root));
    }
    let cols = load_columns(spec, props, trace)?;
    let outcomes: Vec<(usize, eval::Outcome)> = props
        .par_iter()
        .map(|&p| (p, eval::check(&spec.ir, &spec.ir.properties[p], &cols)))
        .collect();
    let results = report::build(spec, trace, &cols, outcomes)?;
    let warnings = warn::warnings(
        &spec.ir,
        &needs,
        &cols.actor_names,
        &cols.stats(&needs),
        &spec.file,
        &trace.display().to_string(),
    );
    Ok(TraceReport {
        trace: trace.to_path_buf(),
        results,
        warnings,
    })
}

/// Checks the selected properties on several traces (in parallel).
/// Results are grouped by trace, in the order given; the first trace
/// that cannot be read is the error.
pub fn check(spec: &Spec, only: &[String], traces: &[PathBuf]) -> Result<Vec<PropertyResult>> {
    let mut out = Vec::new();
    for r in check_each(spec, only, traces)? {
        out.extend(r?.results);
    }
    Ok(out)
}

/// Checks the selected properties on each trace (in parallel): one report
/// or one error per trace, in the order given (a bad trace does not hide
/// the others' verdicts). Fails only when `only` names no property.
pub fn check_each(
    spec: &Spec,
    only: &[String],
    traces: &[PathBuf],
) -> Result<Vec<Result<TraceReport>>> {
    spec.select(only)?;
    Ok(traces
        .par_iter()
        .map(|t| check_trace_report(spec, only, t))
        .collect())
}

/// Parses `spec_path` and checks all its properties on `trace_path`: what
/// `dtest exec --check SPEC` calls after a run (one TAP point per result).
pub fn check_file(spec_path: &Path, trace_path: &Path) -> Result<Vec<PropertyResult>> {
    let spec = Spec::parse_file(spec_path)?;
    check_trace(&spec, &[], trace_path)
}
