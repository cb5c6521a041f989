//! `dtest exec`: load a scenario, run it, print TAP; logs and the trace go
//! to the run directory. Scenario mistakes are printed as
//! `FILE:LINE:COL: message` (exit 2); a failed test exits 1; SIGINT and
//! SIGTERM end the run cleanly with 130 and 143.

use std::path::{Path, PathBuf};

use dtest_exec::{ExtraPoint, LoadOptions, RunOptions, TransportRegistry};

use crate::{CliError, CliResult};

/// Arguments of `dtest exec`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Run directory for the trace and the tester logs
    /// [default: dtest-runs/<name>-<UTC timestamp>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Also write a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Set a scenario variable (overrides [vars]); repeatable.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_pair)]
    pub set: Vec<(String, String)>,
    /// Run a tester on another host (`local`, `ssh://user@host:port`); repeatable.
    #[arg(long = "host", value_name = "TESTER=URL", value_parser = parse_pair)]
    pub host: Vec<(String, String)>,
    /// Check the properties of SPEC (the `dtest check` language) on the run's
    /// trace at the end: one more TAP point per property.
    #[arg(long, value_name = "SPEC")]
    pub check: Option<PathBuf>,
    /// Wait until the trace and the logs are on disk before exiting (fsync).
    /// Without it they are complete in the OS (they survive dtest being
    /// killed), not necessarily on disk if the machine crashes.
    #[arg(long)]
    pub fsync: bool,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected NAME=VALUE, got `{s}`")),
    }
}

/// The transports `dtest exec` knows: `local`, plus those registered here
/// (the SSH transports register themselves in this function).
pub fn registry() -> TransportRegistry {
    let mut reg = TransportRegistry::with_local();
    dtest_ssh::register(&mut reg);
    reg
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time.
fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn default_out(name: &str) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let base = Path::new("dtest-runs").join(format!("{clean}-{}", utc_stamp(secs)));
    let mut p = base.clone();
    let mut i = 2;
    while p.exists() {
        p = PathBuf::from(format!("{}-{i}", base.display()));
        i += 1;
    }
    p
}

/// Runs `dtest exec`.
pub fn run(args: Args) -> CliResult {
    let registry = registry();
    let opts = LoadOptions {
        sets: args.set.clone(),
        hosts: args.host.clone(),
        registry: Some(registry.clone()),
    };
    let sc = match dtest_exec::load_file(&args.scenario, &opts) {
        Ok(s) => s,
        Err(errs) => {
            for e in &errs.0 {
                eprintln!("{e}");
            }
            return Ok(2);
        }
    };
    // The spec is parsed before anything runs: a mistake in it is bad
    // input (exit 2), and the number of properties goes into the TAP plan.
    let spec = match &args.check {
        Some(path) => match dtest_check::Spec::parse_file(path) {
            Ok(spec) => Some(spec),
            Err(e) => return Err(CliError::Input(e.to_string())),
        },
        None => None,
    };
    let out = args.out.clone().unwrap_or_else(|| default_out(&sc.name));
    if let Err(e) = dtest_exec::signals::install() {
        return Err(CliError::Internal(format!(
            "cannot install signal handlers: {e}"
        )));
    }
    let mut ro = RunOptions::new(&out, Box::new(std::io::stdout()));
    ro.junit = args.junit.clone();
    ro.fsync = args.fsync;
    ro.registry = registry;
    ro.interrupt = Some(std::sync::Arc::new(dtest_exec::signals::received));
    if let Some(spec) = spec {
        ro.extra_points = spec.len();
        ro.after = Some(Box::new(move |trace: &Path| check_points(&spec, trace)));
    }
    let argv: Vec<String> = std::env::args().collect();
    ro.meta.push(("command".into(), argv.join(" ")));
    match dtest_exec::run(&sc, ro) {
        Ok(report) => {
            let failed = report.points.iter().filter(|p| p.failed()).count();
            if let Some(e) = &report.record_error {
                // The record is the evidence: a run whose trace or logs
                // could not be written fails (exit 1), whatever its points.
                eprintln!(
                    "dtest: error: {e}; the record of this run (trace and logs) is incomplete; run directory: {}",
                    out.display()
                );
            }
            if let Some(sig) = report.interrupted {
                eprintln!(
                    "dtest: interrupted by SIG{sig}; run directory: {}",
                    out.display()
                );
            } else if report.timed_out {
                eprintln!(
                    "dtest: the scenario's timeout stopped the run; run directory: {}",
                    out.display()
                );
            } else if !report.ok {
                eprintln!(
                    "dtest: {failed} of {} tests failed; run directory: {}",
                    report.points.len(),
                    out.display()
                );
            }
            Ok(report.exit_code())
        }
        Err(dtest_exec::RunError::Invalid(m)) => Err(CliError::Input(m)),
        // The run directory, the trace or the TAP output could not be
        // written: not the user's input, the run failed.
        Err(e) => Err(CliError::Failed(format!("error: {e}"))),
    }
}

/// One TAP point per property of `spec`, checked on the finished trace.
fn check_points(spec: &dtest_check::Spec, trace: &Path) -> Vec<ExtraPoint> {
    match dtest_check::check_trace(spec, &[], trace) {
        Ok(results) => results
            .into_iter()
            .map(|r| {
                let mut diagnostics = Vec::new();
                if !r.holds() {
                    diagnostics.push(("verdict".to_string(), r.verdict.word().to_string()));
                    diagnostics.push(("formula".to_string(), r.formula.clone()));
                    for e in &r.details {
                        diagnostics.push((
                            format!("event_{}", e.index),
                            format!("{} {} {:?}", e.actor, e.kind, e.text),
                        ));
                    }
                    // Keys of a TAP diagnostic block must be unique words (YAMLish).
                    for (k, n) in r.why.iter().enumerate() {
                        let at = n.event.map(|i| format!("_event_{i}")).unwrap_or_default();
                        diagnostics.push((format!("why_{}{at}", k + 1), n.message.clone()));
                    }
                }
                ExtraPoint {
                    ok: r.holds(),
                    description: format!("property {}: {}", r.property, r.verdict.word()),
                    diagnostics,
                }
            })
            .collect(),
        Err(e) => spec
            .property_names()
            .into_iter()
            .map(|name| ExtraPoint {
                ok: false,
                description: format!("property {name}: not checked"),
                diagnostics: vec![("error".to_string(), e.to_string())],
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(1_700_000_000), "20231114T221320Z");
    }
}
