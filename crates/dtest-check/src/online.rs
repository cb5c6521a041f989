//! Online checking: when every property to check is past-only (`G p` with
//! `p` past-only, or a past-only formula), the trace is checked as it is
//! read, with no columns at all: each event's atoms are tested (input and
//! output line by line), each property's [`Stream`] advances one step with
//! constant state. A violated property is then explained from the columns
//! of the prefix that decides it.
//!
//! A final line without newline belongs to the last event of its stream,
//! which is only known at the end: when such a line would match an atom,
//! the verdicts are computed again from columns (rare: it takes a final
//! line without newline that an atom matches).

use std::path::Path;

use dtest_trace::Reader;

use crate::columns::{read_options, Columns, Matcher, KINDS};
use crate::eval::{self, more_notes, Cur, Note, Outcome, Stream, Verdict, MORE_EVENTS};
use crate::ir::{Ir, Needs, NodeId};
use crate::lines::{Probe, Probes};
use crate::warn::{EqAsRegex, TraceStats};
use crate::{report, Error, Result, Spec, TraceReport};

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
    /// Further violations of `G p` (up to a few) and their total.
    more: Vec<usize>,
    total: u64,
    /// `!p` when it is an atom.
    bad_atom: Option<u32>,
    ante: Vec<NodeId>,
}

/// Checks properties that are all [`streamable`], reading `trace` once.
pub(crate) fn check(spec: &Spec, props: &[usize], trace: &Path) -> Result<TraceReport> {
    let ir = &spec.ir;
    let terr = |source| Error::Trace {
        path: trace.to_path_buf(),
        source,
    };
    let mut needs = Needs::default();
    for &p in props {
        needs.union(&ir.needs(ir.properties[p].root));
    }
    let mut reader = Reader::open(trace)
        .map_err(terr)?
        .with_options(read_options(ir, &needs));
    let names: Vec<String> = reader
        .header()
        .actors
        .iter()
        .map(|a| a.name.clone())
        .collect();
    let probes: Vec<Probe<'_>> = needs
        .atoms
        .iter()
        .map(|&a| Probe {
            atom: a,
            m: Matcher::new(&ir.atoms[a as usize], &names),
            parts: None,
        })
        .collect();
    let mut pr = Probes::new(probes, &names);
    let mut eq = EqAsRegex::new(ir, &needs);
    let mut kind_counts = vec![0u64; KINDS];
    let mut held = vec![false; ir.atoms.len()];
    let mut live = vec![0u32; ir.atoms.len()];
    let mut ps: Vec<Prop<'_>> = props
        .iter()
        .map(|&p| {
            let root = ir.properties[p].root;
            let (node, always) = match ir.always_past(root) {
                Some(bad) => (bad, true),
                None => (root, false),
            };
            let ante = eval::antecedents(ir, root);
            let mut stream = Stream::new(ir, node, None, names.len());
            stream.watch(&ante);
            Prop {
                stream,
                always,
                decided: None,
                more: Vec::new(),
                total: 0,
                bad_atom: if always {
                    eval::atom_of(ir, node)
                } else {
                    None
                },
                ante,
            }
        })
        .collect();
    let mut n = 0usize;
    let mut last_t = 0u64;
    while let Some(e) = reader.next_event().map_err(terr)? {
        kind_counts[e.data.kind() as usize] += 1;
        eq.event(e);
        pr.event(n, e);
        for &k in &pr.touched {
            let a = pr.probes()[k].atom as usize;
            live[a] = pr.count[k];
            held[a] = true;
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
        for p in ps.iter_mut() {
            if !p.always && p.decided.is_some() {
                continue;
            }
            let v = p.stream.step(n, &live, &cur);
            if !p.always {
                p.decided = Some((n, v));
            } else if v {
                p.total += 1;
                if p.decided.is_none() {
                    p.decided = Some((n, false));
                } else if p.more.len() < MORE_EVENTS {
                    p.more.push(n);
                }
            }
        }
        for &k in &pr.touched {
            live[pr.probes()[k].atom as usize] = 0;
        }
        n += 1;
    }
    let complete = reader.is_complete();
    drop(reader);
    let late = if complete { pr.finish() } else { Vec::new() };
    if n == 0 || !late.is_empty() {
        // The empty trace, or a final line without newline that an atom
        // matches (at an event already streamed): the columns decide.
        return crate::check_columns(spec, props, trace);
    }
    let mut stats = TraceStats {
        kind_counts,
        eq_as_regex: eq.finish(),
        held: Vec::new(),
    };
    stats.held = held
        .iter()
        .enumerate()
        .filter(|x| *x.1)
        .map(|x| x.0 as u32)
        .collect();
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
    let mut vneeds = Needs::default();
    for &p in &violated {
        vneeds.union(&ir.needs(ir.properties[p].root));
    }
    let reader = Reader::open(trace)
        .map_err(terr)?
        .with_options(read_options(ir, &vneeds));
    let cols = Columns::read_prefix(reader, ir, &vneeds, limit).map_err(terr)?;
    let outcomes = props
        .iter()
        .zip(&ps)
        .map(|(&p, st)| {
            let o = match st.decided {
                Some((_, false)) => {
                    let mut o = eval::check(ir, &ir.properties[p], &cols);
                    if st.always {
                        // The prefix ends at the first violation: the others
                        // were seen while streaming.
                        o.notes.retain(|n| {
                            let more = n.message.starts_with("also violated")
                                || (n.event.is_none() && n.message.starts_with("and "));
                            !more
                        });
                        o.notes
                            .extend(more_notes(&st.more, st.total, st.bad_atom, "violated"));
                    }
                    o
                }
                Some((_, true)) => {
                    let mut o = Outcome {
                        verdict: Verdict::Holds,
                        notes: vec![],
                        vacuous: Vec::new(),
                    };
                    o.vacuous = st.stream.never_true(ir, &st.ante);
                    o
                }
                None if complete => Outcome {
                    verdict: Verdict::Holds,
                    notes: vec![],
                    vacuous: st.stream.never_true(ir, &st.ante),
                },
                None => Outcome {
                    verdict: Verdict::Inconclusive,
                    notes: vec![Note::new(
                        None,
                        "no violation so far, but the trace is truncated (no end event)",
                    )],
                    vacuous: Vec::new(),
                },
            };
            (p, o)
        })
        .collect();
    let results = report::build(spec, trace, &cols, outcomes)?;
    Ok(TraceReport {
        trace: trace.to_path_buf(),
        results,
        warnings: crate::warn::warnings(
            ir,
            &needs,
            &names,
            &stats,
            &spec.file,
            &trace.display().to_string(),
        ),
    })
}
