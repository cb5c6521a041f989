//! `dtest report`: the HTML report of a run (see the `dtest-report` crate):
//! one self-contained file with the summary, an interactive chart and the
//! merged output log. `dtest exec` writes it into the run directory at the
//! end, with the run's own TAP diagnostics; `dtest report RUN_DIR` rebuilds
//! it from the trace alone (the diagnostics of failed points are then
//! derived from the trace) and can check properties on the way.

use std::path::{Path, PathBuf};

use dtest_report::{Options, Point, REPORT_FILE};

use crate::{CliError, CliResult};

/// Arguments of `dtest report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run directory (or a trace file).
    pub run_dir: PathBuf,
    /// Where to write the report [default: RUN_DIR/report.html].
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Check the properties of SPEC on the trace and show their verdicts,
    /// each violation linked to its events.
    #[arg(long, value_name = "SPEC")]
    pub check: Option<PathBuf>,
}

/// Runs `dtest report`.
pub fn run(args: Args) -> CliResult {
    let (trace, dir) = if args.run_dir.is_dir() {
        (
            args.run_dir.join(dtest_exec::scenario::TRACE_FILE),
            args.run_dir.clone(),
        )
    } else if args.run_dir.exists() {
        let dir = args
            .run_dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        (args.run_dir.clone(), dir)
    } else {
        return Err(CliError::file(
            &args.run_dir,
            "no such run directory or trace file",
        ));
    };
    if !trace.is_file() {
        return Err(CliError::file(
            &trace,
            "no trace here (is this a run directory of `dtest exec`?)",
        ));
    }
    let out = args.out.clone().unwrap_or_else(|| dir.join(REPORT_FILE));
    let mut opts = Options::default();
    if let Some(spec) = &args.check {
        let spec = crate::cmd_check::read_spec(spec)?;
        let first = first_free_number(&trace);
        opts.extra_points = property_points(&spec, &trace, first)?;
    }
    let stats = dtest_report::write(&trace, &opts, &out).map_err(|e| match e {
        dtest_report::Error::Trace(e) => crate::trace_error(&trace, e),
        e => CliError::Input(e.to_string()),
    })?;
    eprintln!(
        "dtest: report of {} events ({} failed points) written to {} ({} bytes)",
        stats.events,
        stats.failed,
        out.display(),
        stats.bytes
    );
    Ok(0)
}

/// The number after the trace's last verdict of a step (for the property
/// points; the property verdicts `dtest exec --check` recorded on the
/// master are replaced).
fn first_free_number(trace: &Path) -> u32 {
    let Ok(mut r) = dtest_trace::Reader::open(trace) else {
        return 1;
    };
    let masters: Vec<u32> = r
        .header()
        .actors
        .iter()
        .filter(|a| a.kind == dtest_trace::ActorKind::Master)
        .map(|a| a.id)
        .collect();
    let mut n = 0;
    while let Ok(Some(ev)) = r.next_event() {
        if let dtest_trace::EventData::Verdict {
            number,
            description,
            ..
        } = &ev.data
        {
            if !(masters.contains(&ev.actor) && description.starts_with("property ")) {
                n = n.max(*number);
            }
        }
    }
    n + 1
}

/// One point per property of `spec`, as `dtest exec --check` reports them.
fn property_points(
    spec: &dtest_check::Spec,
    trace: &Path,
    first: u32,
) -> Result<Vec<Point>, CliError> {
    let results =
        dtest_check::check_trace(spec, &[], trace).map_err(|e| CliError::file(trace, e))?;
    Ok(results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let mut diag = Vec::new();
            let mut events = r.events.clone();
            if !r.holds() {
                diag.push(("verdict".to_string(), r.verdict.word().to_string()));
                diag.push(("formula".to_string(), r.formula.clone()));
                for e in &r.details {
                    diag.push((
                        format!("event_{}", e.index),
                        format!("{} {} {:?}", e.actor, e.kind, e.text),
                    ));
                }
                for (k, n) in r.why.iter().enumerate() {
                    let at = n.event.map(|i| format!("_event_{i}")).unwrap_or_default();
                    diag.push((format!("why_{}{at}", k + 1), n.message.clone()));
                    events.extend(n.event);
                }
            }
            events.sort_unstable();
            events.dedup();
            Point {
                number: first + i as u32,
                tester: String::new(),
                ok: r.holds(),
                failed: !r.holds(),
                // Named as `dtest exec --check` names it.
                description: format!("property {}", r.property),
                directive: None,
                diag,
                events,
                property: true,
                derived: false,
            }
        })
        .collect())
}

/// The events a point's diagnostic keys name (`event_12`, `why_2_event_40`).
fn named_events(diag: &[(String, String)]) -> Vec<u64> {
    let mut v: Vec<u64> = diag
        .iter()
        .filter_map(|(k, _)| {
            let i = k.rfind("event_")?;
            k[i + 6..].parse().ok()
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// What `dtest exec` calls at the end of a run: the report of the run in
/// its directory, with the run's own points and diagnostics. A report that
/// cannot be written is said on stderr; it does not change the run's verdict.
pub fn write_after_exec(run_dir: &Path, trace: &Path, points: &[dtest_exec::report::Point]) {
    use dtest_exec::report::DiagValue;
    let points = points
        .iter()
        .map(|p| {
            let diag: Vec<(String, String)> = p
                .diag
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        DiagValue::Text(s) => s.clone(),
                        DiagValue::Lines(l) => l.join("\n"),
                    };
                    (k.clone(), v)
                })
                .collect();
            let property = p.tester.is_empty() && p.description.starts_with("property ");
            Point {
                number: p.number,
                tester: p.tester.clone(),
                ok: p.ok,
                failed: p.failed(),
                description: p.description.clone(),
                directive: p
                    .directive
                    .as_ref()
                    .map(|(d, r)| format!("{} {r}", d.name().to_uppercase())),
                events: named_events(&diag),
                diag,
                property,
                derived: false,
            }
        })
        .collect();
    let opts = Options {
        points: Some(points),
        extra_points: Vec::new(),
    };
    let out = run_dir.join(REPORT_FILE);
    if let Err(e) = dtest_report::write(trace, &opts, &out) {
        eprintln!("dtest: warning: no HTML report: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_named_by_diagnostic_keys() {
        let d = |k: &str| (k.to_string(), String::new());
        assert_eq!(
            named_events(&[d("event_12"), d("why_1_event_40"), d("why_2"), d("message")]),
            vec![12, 40]
        );
    }
}
