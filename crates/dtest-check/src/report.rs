//! Results and their two renderings: text (one line per property and trace,
//! then the deciding events) and JSON (documented in properties/README.md,
//! read by `dtest msc --highlight`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::columns::Columns;
use crate::eval::{Outcome, Verdict};
use crate::{Error, Result, Spec};

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
    let mut wanted: Vec<u64> = outcomes
        .iter()
        .flat_map(|(_, o)| o.notes.iter().filter_map(|n| n.event))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let texts = fetch_texts(trace, &wanted)?;
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
                EventInfo {
                    index: e,
                    actor: cols.actor_name(i).to_string(),
                    kind: cols.kind(i).name().to_string(),
                    text: texts.get(&e).cloned().unwrap_or_default(),
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
        });
    }
    Ok(out)
}

/// Reads the texts of a few events (the columns do not keep texts): one
/// pass over the trace up to the last wanted event.
fn fetch_texts(trace: &Path, wanted: &[u64]) -> Result<BTreeMap<u64, String>> {
    let mut out = BTreeMap::new();
    let Some(&last) = wanted.last() else {
        return Ok(out);
    };
    let terr = |source| Error::Trace {
        path: trace.to_path_buf(),
        source,
    };
    let mut r = dtest_trace::Reader::open(trace).map_err(terr)?;
    let mut k = 0;
    while let Some(e) = r.next_event().map_err(terr)? {
        if e.index > last {
            break;
        }
        if wanted.get(k) == Some(&e.index) {
            out.insert(e.index, shorten(&e.text()));
            k += 1;
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
    let width = results.iter().map(|r| r.property.len()).max().unwrap_or(0);
    for r in results {
        out.push_str(&format!(
            "{:<12} {:<width$}  {}\n",
            r.verdict.word(),
            r.property,
            r.trace
        ));
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

/// The exit code for a set of results: 0 when every property holds, 1
/// otherwise (violated or inconclusive).
pub fn exit_code(results: &[PropertyResult]) -> u8 {
    if results.iter().all(PropertyResult::holds) {
        0
    } else {
        1
    }
}
