//! Online checking: when every property to check is past-only (`G p` with
//! `p` past-only, or a past-only formula), the trace is checked as it is
//! read, with no columns at all: each event's atoms are tested, each
//! property's [`Stream`] advances one step with constant state, and reading
//! stops as soon as every property is decided. Only a violated property is
//! then explained, from the columns of the prefix that decides it.

use std::path::Path;

use dtest_trace::Reader;

use crate::columns::{self, Columns, Matcher};
use crate::eval::{self, Cur, Note, Outcome, Stream, Verdict};
use crate::ir::{Ir, Needs, NodeId};
use crate::{report, Error, PropertyResult, Result, Spec};

/// Whether the formula at `root` can be checked online.
pub(crate) fn streamable(ir: &Ir, root: NodeId) -> bool {
    ir.always_past(root).is_some() || ir.is_past_only(root)
}

struct Prop<'c> {
    stream: Stream<'c>,
    /// `G p`: violated at the first event where `!p` holds.
    always: bool,
    /// The event that decided it: the violation of `G p`, or the first
    /// event for a past-only formula.
    decided: Option<(usize, bool)>,
}

/// Checks properties that are all [`streamable`], reading `trace` once.
pub(crate) fn check(spec: &Spec, props: &[usize], trace: &Path) -> Result<Vec<PropertyResult>> {
    let ir = &spec.ir;
    let terr = |source| Error::Trace {
        path: trace.to_path_buf(),
        source,
    };
    let mut needs = Needs::default();
    for &p in props {
        needs.union(&ir.needs(ir.properties[p].root));
    }
    let mut reader = Reader::open(trace).map_err(terr)?;
    let names: Vec<String> = reader
        .header()
        .actors
        .iter()
        .map(|a| a.name.clone())
        .collect();
    let matchers: Vec<(usize, Matcher<'_>)> = needs
        .atoms
        .iter()
        .map(|&a| (a as usize, Matcher::new(&ir.atoms[a as usize], &names)))
        .collect();
    let by_kind = columns::by_kind(matchers.iter().map(|(_, m)| m));
    let mut live = vec![false; ir.atoms.len()];
    let mut ps: Vec<Prop<'_>> = props
        .iter()
        .map(|&p| {
            let root = ir.properties[p].root;
            let (node, always) = match ir.always_past(root) {
                Some(bad) => (bad, true),
                None => (root, false),
            };
            Prop {
                stream: Stream::new(ir, node, None, names.len()),
                always,
                decided: None,
            }
        })
        .collect();
    let mut n = 0usize;
    let mut last_t = 0u64;
    let mut read_all = false;
    loop {
        let Some(e) = reader.next_event().map_err(terr)? else {
            read_all = true;
            break;
        };
        for (a, _) in &matchers {
            live[*a] = false;
        }
        for &k in &by_kind[e.data.kind() as usize] {
            let (a, m) = &matchers[k];
            live[*a] = m.test(e);
        }
        last_t = last_t.max(e.time_ns);
        let cur = Cur {
            time: last_t,
            actor: e.actor,
            clock: if needs.clocks {
                e.clock.as_slice()
            } else {
                &[]
            },
        };
        let mut open = false;
        for p in ps.iter_mut().filter(|p| p.decided.is_none()) {
            let v = p.stream.step(n, &live, &cur);
            if !p.always {
                p.decided = Some((n, v));
            } else if v {
                p.decided = Some((n, false));
            } else {
                open = true;
            }
        }
        n += 1;
        if !open {
            break;
        }
    }
    let complete = read_all && reader.is_complete();
    drop(reader);
    if n == 0 {
        // The empty trace: the columns path knows its verdicts.
        let cols = crate::load_columns(spec, props, trace)?;
        let outcomes = props
            .iter()
            .map(|&p| (p, eval::check(ir, &ir.properties[p], &cols)))
            .collect();
        return report::build(spec, trace, &cols, outcomes);
    }
    // Explain the violations from the prefix that decides them.
    let violated: Vec<usize> = props
        .iter()
        .zip(&ps)
        .filter(|(_, p)| matches!(p.decided, Some((_, false))))
        .map(|(&i, _)| i)
        .collect();
    let limit = ps
        .iter()
        .filter_map(|p| match p.decided {
            Some((i, false)) => Some(i + 1),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let cols = if violated.is_empty() {
        Columns::read_prefix(Reader::open(trace).map_err(terr)?, ir, &Needs::default(), 0)
    } else {
        let mut vneeds = Needs::default();
        for &p in &violated {
            vneeds.union(&ir.needs(ir.properties[p].root));
        }
        Columns::read_prefix(Reader::open(trace).map_err(terr)?, ir, &vneeds, limit)
    }
    .map_err(terr)?;
    let outcomes = props
        .iter()
        .zip(&ps)
        .map(|(&p, st)| {
            let o = match st.decided {
                Some((_, false)) => eval::check(ir, &ir.properties[p], &cols),
                Some((_, true)) => Outcome {
                    verdict: Verdict::Holds,
                    notes: vec![],
                },
                None if complete => Outcome {
                    verdict: Verdict::Holds,
                    notes: vec![],
                },
                None => Outcome {
                    verdict: Verdict::Inconclusive,
                    notes: vec![Note {
                        event: None,
                        message: "no violation so far, but the trace is truncated (no end event)"
                            .into(),
                    }],
                },
            };
            (p, o)
        })
        .collect();
    report::build(spec, trace, &cols, outcomes)
}
