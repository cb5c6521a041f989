//! Results and their two renderings: text (one line per property and trace,
//! then the deciding events) and JSON (documented in properties/README.md,
//! read by `dtest msc --highlight`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::columns::{Columns, Matcher};
use crate::eval::{Outcome, Verdict};
use crate::{fields, lines, Error, Result, Spec};

/// Longest event text kept in a report (in characters).
const MAX_TEXT: usize = 120;

/// An event named by a result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventInfo {
    /// Position in the trace, from 0.
    pub index: u64,
    /// Actor name.
    pub actor: String,
    /// Kind name.
    pub kind: String,
    /// The event's text (shortened to 120 characters).
    pub text: String,
    /// Nanoseconds since the run started.
    pub time_ns: u64,
}

/// One line of why a property is violated (or inconclusive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportNote {
    /// The event the note is about (its index), if any.
    pub event: Option<u64>,
    /// What about it.
    pub message: String,
}

/// The verdict of one property on one trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PropertyResult {
    /// The property's name.
    pub property: String,
    /// Its formula, pretty-printed.
    pub formula: String,
    /// The trace file.
    pub trace: String,
    /// Holds, violated or inconclusive.
    pub verdict: Verdict,
    /// The deciding events' indexes (empty when the property holds).
    pub events: Vec<u64>,
    /// The deciding events.
    pub details: Vec<EventInfo>,
    /// Why, step by step.
    pub why: Vec<ReportNote>,
    /// For a property that holds only vacuously: the left sides of its
    /// implications, none of which was ever true (empty otherwise).
    pub vacuous: Vec<String>,
}

impl PropertyResult {
    /// Whether the property holds.
    pub fn holds(&self) -> bool {
        self.verdict == Verdict::Holds
    }
}

/// Turns outcomes into results, looking up the deciding events.
pub(crate) fn build(
    spec: &Spec,
    trace: &Path,
    cols: &Columns,
    outcomes: Vec<(usize, Outcome)>,
) -> Result<Vec<PropertyResult>> {
    // Per wanted event, the atoms said to match there (to show the line).
    let mut wanted: BTreeMap<u64, Vec<(u32, u32)>> = BTreeMap::new();
    for (_, o) in &outcomes {
        for n in &o.notes {
            if let Some(e) = n.event {
                let v = wanted.entry(e).or_default();
                if let Some(a) = n.atom {
                    if !v.contains(&(a, n.nth)) {
                        v.push((a, n.nth));
                    }
                }
            }
        }
    }
    let texts = fetch_texts(spec, trace, &wanted)?;
    let mut out = Vec::new();
    for (p, o) in outcomes {
        let prop = &spec.ir.properties[p];
        let mut events: Vec<u64> = o.notes.iter().filter_map(|n| n.event).collect();
        events.sort_unstable();
        events.dedup();
        let details = events
            .iter()
            .filter(|&&e| (e as usize) < cols.n)
            .map(|&e| {
                let i = e as usize;
                // The line the first note on this event says matched, else
                // the event's text.
                let text = o
                    .notes
                    .iter()
                    .filter(|n| n.event == Some(e))
                    .find_map(|n| texts.get(&(e, Some((n.atom?, n.nth)))))
                    .or_else(|| texts.get(&(e, None)))
                    .cloned()
                    .unwrap_or_default();
                EventInfo {
                    index: e,
                    actor: cols.actor_name(i).to_string(),
                    kind: cols.kind(i).name().to_string(),
                    text,
                    time_ns: cols.times[i],
                }
            })
            .collect();
        out.push(PropertyResult {
            property: prop.name.clone(),
            formula: prop.source.clone(),
            trace: trace.display().to_string(),
            verdict: o.verdict,
            events,
            details,
            why: o
                .notes
                .into_iter()
                .map(|n| ReportNote {
                    event: n.event,
                    message: n.message,
                })
                .collect(),
            vacuous: o.vacuous,
        });
    }
    Ok(out)
}

/// The texts of the events a report names: `(event, None)` its text,
/// `(event, Some((atom, n)))` the `n`th of its lines that the atom matches.
type Texts = BTreeMap<(u64, Option<(u32, u32)>), String>;

/// Reads the texts of a few events (the columns do not keep texts): one
/// pass over the trace up to the last wanted event (to its end when a
/// final line without newline may be wanted).
fn fetch_texts(
    spec: &Spec,
    trace: &Path,
    wanted: &BTreeMap<u64, Vec<(u32, u32)>>,
) -> Result<Texts> {
    let mut out = Texts::new();
    let Some((&last, _)) = wanted.iter().next_back() else {
        return Ok(out);
    };
    let terr = |source| Error::Trace {
        path: trace.to_path_buf(),
        source,
    };
    // Texts and lines only: no clocks.
    let mut r = dtest_trace::Reader::open(trace)
        .map_err(terr)?
        .with_options(dtest_trace::ReadOptions::all().clocks(false));
    let names: Vec<String> = r.header().actors.iter().map(|a| a.name.clone()).collect();
    let matchers: BTreeMap<u32, Matcher<'_>> = wanted
        .values()
        .flatten()
        .map(|&(a, _)| (a, Matcher::new(&spec.ir.atoms[a as usize], &names)))
        .collect();
    let mut bufs: Vec<Vec<u8>> = Vec::new();
    // Per stream: the last event with wanted lines not found yet (a final
    // line without newline may be one of them).
    let mut open: BTreeMap<usize, (u64, Vec<(u32, u32)>)> = BTreeMap::new();
    while let Some(e) = r.next_event().map_err(terr)? {
        if e.index > last && open.is_empty() {
            break;
        }
        let want = wanted.get(&e.index);
        if want.is_some() {
            out.insert((e.index, None), shorten(&fields::text(&e.data)));
        }
        let Some(slot) = lines::stream_slot(e.actor, &e.data) else {
            continue;
        };
        // Another chunk on the stream: its pending line is not final.
        open.remove(&slot);
        if bufs.len() <= slot {
            bufs.resize_with(slot + 1, Vec::new);
        }
        let kind = e.data.kind();
        let atoms: Vec<(u32, u32)> = want
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|(a, _)| matchers[a].per_line(kind))
                    .collect()
            })
            .unwrap_or_default();
        let mut seen = vec![0u32; atoms.len()];
        let mut found = vec![false; atoms.len()];
        lines::split_lines(&mut bufs[slot], lines::payload(&e.data), |l| {
            if atoms.is_empty() {
                return;
            }
            let t = lines::line_text(l);
            for (k, &(a, nth)) in atoms.iter().enumerate() {
                if !found[k] && matchers[&a].test_line(&t) {
                    if seen[k] == nth {
                        found[k] = true;
                        out.insert((e.index, Some((a, nth))), shorten(&t));
                    }
                    seen[k] += 1;
                }
            }
        });
        let missing: Vec<(u32, u32)> = atoms
            .iter()
            .zip(&found)
            .filter(|x| !*x.1)
            .map(|x| *x.0)
            .collect();
        if !missing.is_empty() {
            open.insert(slot, (e.index, missing));
        }
    }
    // The final lines without newline.
    for (slot, (ix, atoms)) in open {
        if let Some(b) = bufs.get(slot).filter(|b| !b.is_empty()) {
            let l = lines::line_text(b.strip_suffix(b"\r").unwrap_or(b));
            for (a, nth) in atoms {
                if matchers[&a].test_line(&l) {
                    out.insert((ix, Some((a, nth))), shorten(&l));
                }
            }
        }
    }
    Ok(out)
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= MAX_TEXT {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX_TEXT).collect();
        t.push('…');
        t
    }
}

/// The text report: one line per property and trace, and for a violation
/// (or an inconclusive verdict) the deciding events and why.
pub fn text(results: &[PropertyResult]) -> String {
    let mut out = String::new();
    // Names are padded to the longest (at most 40 characters).
    let width = results
        .iter()
        .map(|r| r.property.chars().count())
        .max()
        .unwrap_or(0)
        .min(40);
    for r in results {
        let pad = width.saturating_sub(r.property.chars().count());
        out.push_str(&format!(
            "{:<12} {}{}  {}",
            r.verdict.word(),
            r.property,
            " ".repeat(pad),
            r.trace
        ));
        if r.verdict == Verdict::Holds && !r.vacuous.is_empty() {
            out.push_str(&format!(
                "  (vacuously: never true: {})",
                r.vacuous
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out.push('\n');
        if r.verdict == Verdict::Holds {
            continue;
        }
        out.push_str(&format!("    formula: {}\n", r.formula));
        for n in &r.why {
            match n
                .event
                .and_then(|e| r.details.iter().find(|d| d.index == e))
            {
                Some(d) => out.push_str(&format!(
                    "    event {} ({} {} {:?}): {}\n",
                    d.index, d.actor, d.kind, d.text, n.message
                )),
                None => out.push_str(&format!("    {}\n", n.message)),
            }
        }
    }
    let count = |v: Verdict| results.iter().filter(|r| r.verdict == v).count();
    let vacuous = results
        .iter()
        .filter(|r| r.verdict == Verdict::Holds && !r.vacuous.is_empty())
        .count();
    if vacuous > 0 {
        out.push_str(&format!(
            "{vacuous} of the properties that hold hold only vacuously\n"
        ));
    }
    out.push_str(&format!(
        "{} checked: {} hold, {} violated, {} inconclusive\n",
        results.len(),
        count(Verdict::Holds),
        count(Verdict::Violated),
        count(Verdict::Inconclusive)
    ));
    out
}

/// The JSON report (schema version 1, see properties/README.md).
pub fn json(spec: &str, results: &[PropertyResult]) -> serde_json::Value {
    let count = |v: Verdict| results.iter().filter(|r| r.verdict == v).count();
    let mut events: Vec<u64> = results
        .iter()
        .filter(|r| r.verdict == Verdict::Violated)
        .flat_map(|r| r.events.iter().copied())
        .collect();
    events.sort_unstable();
    events.dedup();
    serde_json::json!({
        "version": 1,
        "spec": spec,
        "summary": {
            "checked": results.len(),
            "holds": count(Verdict::Holds),
            "violated": count(Verdict::Violated),
            "inconclusive": count(Verdict::Inconclusive),
        },
        "events": events,
        "results": results,
    })
}

/// The JSON report with the warnings and the traces that could not be
/// checked (`warnings`, `errors`: added to schema version 1).
pub fn json_full(
    spec: &str,
    results: &[PropertyResult],
    warnings: &[crate::CheckWarning],
    errors: &[String],
) -> serde_json::Value {
    let mut v = json(spec, results);
    v["warnings"] = serde_json::to_value(warnings).unwrap_or_default();
    v["errors"] = serde_json::to_value(errors).unwrap_or_default();
    v
}

/// The exit code for a set of results: 0 when every property holds, 1
/// otherwise (violated or inconclusive).
pub fn exit_code(results: &[PropertyResult]) -> u8 {
    if results.iter().all(PropertyResult::holds) {
        0
    } else {
        1
    }
}
