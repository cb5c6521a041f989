//! The `--highlight` report: which events to make stand out.
//!
//! See the crate docs ("Highlight reports") for the accepted JSON shapes.

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
    let v: Value = serde_json::from_str(json).map_err(|e| Error::HighlightJson {
        line: e.line(),
        column: e.column(),
        msg: e.to_string(),
    })?;
    let mut out = Vec::new();
    let mut found = false;
    collect(&v, "$", &mut out, &mut found)?;
    if !found {
        return Err(Error::HighlightFormat(
            "no \"events\" list of event indexes found (expected {\"events\": [3, 7]} or the output of `dtest check --format json`)".into(),
        ));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn collect(v: &Value, path: &str, out: &mut Vec<u64>, found: &mut bool) -> Result<()> {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{path}.{k}");
                if k == "events" {
                    if let Value::Array(a) = x {
                        *found = true;
                        for (i, e) in a.iter().enumerate() {
                            out.push(index_of(e).ok_or_else(|| {
                                Error::HighlightFormat(format!(
                                    "{p}[{i}]: expected an event index (a non-negative integer), found {}",
                                    brief(e)
                                ))
                            })?);
                        }
                        continue;
                    }
                }
                collect(x, &p, out, found)?;
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                collect(x, &format!("{path}[{i}]"), out, found)?;
            }
        }
        _ => {}
    }
    Ok(())
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
