//! The `--highlight` report: which events to make stand out.
//!
//! See the crate docs ("Highlight reports") for the accepted JSON shapes.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

/// Reads the event indexes of a highlight report (sorted, without repeats).
///
/// Every member named `"events"` whose value is an array, wherever it is in
/// the document, contributes its elements, which must be non-negative
/// integers (or objects with an integer `"index"`, as the jsonl export
/// writes events). A document without any `"events"` array is an error: it
/// is probably not a report.
pub fn parse_highlight(json: &str) -> Result<Vec<u64>> {
    parse(json, None)
}

/// Like [`parse_highlight`], for a report that may cover several traces:
/// when objects of the report name their trace (a `"trace"` member, as
/// `dtest check` writes), only the `"events"` of the objects naming
/// `trace` count (same path, or same file once both are resolved).
pub fn parse_highlight_for(json: &str, trace: &Path) -> Result<Vec<u64>> {
    parse(json, Some(trace))
}

/// The lines a property matched, from a `dtest check --format json` report:
/// every object with an integer `"index"` and a string `"text"` (its
/// `details`), for the results of `trace` as in [`parse_highlight_for`].
/// A text cut by the report (ending in `…`) is given without the `…`. The
/// chart shows these lines on their output events.
pub fn parse_highlight_lines_for(json: &str, trace: &Path) -> Result<Vec<(u64, String)>> {
    Ok(parse_all(json, Some(trace))?.1)
}

fn parse(json: &str, trace: Option<&Path>) -> Result<Vec<u64>> {
    Ok(parse_all(json, trace)?.0)
}

/// `(index, text)` pairs of a report's event details.
type Lines = Vec<(u64, String)>;

fn parse_all(json: &str, trace: Option<&Path>) -> Result<(Vec<u64>, Lines)> {
    let v: Value = serde_json::from_str(json).map_err(|e| Error::HighlightJson {
        line: e.line(),
        column: e.column(),
        msg: e.to_string(),
    })?;
    let mut named = Vec::new();
    names(&v, &mut named);
    let mut c = Collect {
        trace: trace.filter(|_| !named.is_empty()),
        out: Vec::new(),
        texts: Vec::new(),
        found: false,
    };
    c.walk(&v, "$", false)?;
    if !c.found {
        if let Some(t) = c.trace {
            named.sort();
            named.dedup();
            return Err(Error::HighlightFormat(format!(
                "no result for {} in the report (it has results for: {})",
                t.display(),
                named.join(", ")
            )));
        }
        return Err(Error::HighlightFormat(
            "no \"events\" list of event indexes found (expected {\"events\": [3, 7]} or the output of `dtest check --format json`)".into(),
        ));
    }
    let mut out = c.out;
    out.sort_unstable();
    out.dedup();
    Ok((out, c.texts))
}

/// The `"trace"` names of the objects of a report.
fn names(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(t)) = m.get("trace") {
                out.push(t.clone());
            }
            m.values().for_each(|x| names(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| names(x, out)),
        _ => {}
    }
}

fn same_file(a: &str, b: &Path) -> bool {
    let a = Path::new(a);
    a == b
        || match (a.canonicalize(), b.canonicalize()) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
}

struct Collect<'a> {
    /// Only count objects naming this trace (and what they contain).
    trace: Option<&'a Path>,
    out: Vec<u64>,
    /// `(index, text)` of the event objects that have both.
    texts: Vec<(u64, String)>,
    found: bool,
}

impl Collect<'_> {
    /// `inside`: within an object that names the wanted trace.
    fn walk(&mut self, v: &Value, path: &str, inside: bool) -> Result<()> {
        match v {
            Value::Object(m) => {
                let inside = inside
                    || match (self.trace, m.get("trace")) {
                        (Some(t), Some(Value::String(name))) => {
                            if !same_file(name, t) {
                                return Ok(());
                            }
                            true
                        }
                        _ => false,
                    };
                let counts = self.trace.is_none() || inside;
                if counts {
                    if let (Some(i), Some(Value::String(t))) =
                        (m.get("index").and_then(Value::as_u64), m.get("text"))
                    {
                        let t = t.strip_suffix('\u{2026}').unwrap_or(t);
                        self.texts.push((i, t.to_string()));
                    }
                }
                for (k, x) in m {
                    let p = format!("{path}.{k}");
                    if k == "events" {
                        if let Value::Array(a) = x {
                            if counts {
                                self.found = true;
                                for (i, e) in a.iter().enumerate() {
                                    self.out.push(index_of(e).ok_or_else(|| {
                                        Error::HighlightFormat(format!(
                                            "{p}[{i}]: expected an event index (a non-negative integer), found {}",
                                            brief(e)
                                        ))
                                    })?);
                                }
                            }
                            continue;
                        }
                    }
                    self.walk(x, &p, inside)?;
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    self.walk(x, &format!("{path}[{i}]"), inside)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn index_of(e: &Value) -> Option<u64> {
    match e {
        Value::Number(n) => n.as_u64(),
        Value::Object(m) => m.get("index").and_then(Value::as_u64),
        _ => None,
    }
}

fn brief(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!("{}...", crate::text::cut(&s, 40))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_shapes() {
        assert_eq!(
            parse_highlight(r#"{"events": [7, 3, 7]}"#).unwrap(),
            vec![3, 7]
        );
        assert_eq!(
            parse_highlight(r#"[{"property": "p", "events": [1]}, {"events": [4, 2]}]"#).unwrap(),
            vec![1, 2, 4]
        );
        assert_eq!(
            parse_highlight(r#"{"results": [{"violations": [{"events": [{"index": 5}]}]}]}"#)
                .unwrap(),
            vec![5]
        );
        // A report of a property that holds: nothing to highlight, not an error.
        assert_eq!(
            parse_highlight(r#"[{"events": []}]"#).unwrap(),
            Vec::<u64>::new()
        );
    }

    #[test]
    fn reports_of_several_traces_give_the_events_of_one() {
        // The shape of `dtest check --format json`: a union at the top,
        // per-trace results below.
        let json = r#"{"events": [1, 2, 8], "results": [
            {"trace": "a.dtrace", "events": [1, 2], "why": [{"event": 1}]},
            {"trace": "b.dtrace", "events": [8], "details": [{"index": 9}]}]}"#;
        let a = Path::new("a.dtrace");
        assert_eq!(parse_highlight_for(json, a).unwrap(), vec![1, 2]);
        assert_eq!(
            parse_highlight_for(json, Path::new("b.dtrace")).unwrap(),
            vec![8]
        );
        assert_eq!(parse_highlight(json).unwrap(), vec![1, 2, 8]);
        let e = parse_highlight_for(json, Path::new("c.dtrace"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no result for c.dtrace") && e.contains("a.dtrace, b.dtrace"),
            "{e}"
        );
        // Reports that do not name traces are taken whole.
        assert_eq!(
            parse_highlight_for(r#"{"events": [4]}"#, a).unwrap(),
            vec![4]
        );
    }

    #[test]
    fn lines_a_property_matched() {
        let json = r#"{"events": [1, 8], "results": [
            {"trace": "a.dtrace", "events": [1], "details": [{"index": 1, "text": "READY\u2026"}]},
            {"trace": "b.dtrace", "events": [8], "details": [{"index": 8, "text": "other"}]}]}"#;
        assert_eq!(
            parse_highlight_lines_for(json, Path::new("a.dtrace")).unwrap(),
            vec![(1, "READY".to_string())]
        );
    }

    #[test]
    fn rejects_what_is_not_a_report() {
        let e = parse_highlight("{\"events\": [1,\n -2]}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("$.events[1]") && e.contains("-2"), "{e}");
        let e = parse_highlight("{\"count\": 3}").unwrap_err().to_string();
        assert!(e.contains("no \"events\""), "{e}");
        let e = parse_highlight("{\"events\": [1,").unwrap_err().to_string();
        assert!(e.starts_with("highlight report: line 1, column"), "{e}");
    }
}
