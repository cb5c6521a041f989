//! `dtest exec`: load a scenario, run it, print TAP; logs and the trace go
//! to the run directory. Scenario mistakes are printed as
//! `FILE:LINE:COL: message` (exit 2); a failed test exits 1; SIGINT and
//! SIGTERM end the run cleanly with 130 and 143.
//!
//! The run directory is locked for the run's duration (an advisory
//! `flock` on its `dtest.lock`, which the kernel releases when dtest ends,
//! however it ends): a second run into the same directory is refused
//! (exit 2) instead of overwriting the first one's trace and logs. Output
//! paths are checked before anything runs: `--junit` may not be the trace,
//! a log or the lock file of the run, nor the scenario or the spec.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use dtest_exec::report::status::StatusReporter;
use dtest_exec::report::TapVersion;
use dtest_exec::scenario::{LOCK_FILE, LOG_EXTENSIONS, TRACE_FILE};
use dtest_exec::{ExtraPoint, LoadOptions, RunOptions, Scenario, TransportRegistry};

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
    /// Validate the scenario and print its plan (testers, steps with their
    /// deadlines, barriers with their participants) without running
    /// anything: exit 0, or 2 with the mistakes.
    #[arg(long)]
    pub dry_run: bool,
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
    /// The TAP version line: 13 (what every harness reads, the default) or 14.
    #[arg(long, value_name = "N", default_value_t = 13,
          value_parser = clap::value_parser!(u32).range(13..=14))]
    pub tap_version: u32,
    /// No live status on stderr (shown by default when stderr is a
    /// terminal; also off with DTEST_NO_STATUS=1 or TERM=dumb).
    #[arg(long)]
    pub no_status: bool,
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
        Some(path) => Some(crate::cmd_check::read_spec(path)?),
        None => None,
    };
    if args.dry_run {
        print!("{}", dtest_exec::plan::render(&sc));
        if let Some(spec) = &spec {
            println!(
                "\nproperties: {} (checked on the trace at the end)",
                spec.len()
            );
        }
        return Ok(0);
    }
    let out = args.out.clone().unwrap_or_else(|| default_out(&sc.name));
    // Before anything runs: the directory, the output paths, its lock.
    std::fs::create_dir_all(&out).map_err(|e| {
        CliError::Input(format!(
            "cannot create the run directory {}: {e}",
            out.display()
        ))
    })?;
    check_outputs(&args, &sc, &out)?;
    let _lock = lock_run_dir(&out)?;
    if let Err(e) = dtest_exec::signals::install() {
        return Err(CliError::Internal(format!(
            "cannot install signal handlers: {e}"
        )));
    }
    let mut ro = RunOptions::new(&out, Box::new(std::io::stdout()));
    if args.tap_version == 14 {
        ro.tap_version = TapVersion::V14;
    }
    if status_wanted(args.no_status) {
        let names = sc.testers.iter().map(|t| t.name.clone()).collect();
        let status = StatusReporter::new(Box::new(std::io::stderr()), names, Box::new(term_size));
        if is_tty(1) {
            // TAP on the same terminal: written between two frames.
            ro.tap = Box::new(status.tap_writer(std::io::stdout()));
        }
        ro.reporters.push(Box::new(status));
    }
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
            crate::cmd_report::write_after_exec(&out, &report.trace, &report.points);
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

/// Whether file descriptor `fd` is a terminal.
fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// The live status is drawn when stderr is a terminal, unless turned off
/// (`--no-status`, `DTEST_NO_STATUS` set to anything but `0` or empty,
/// `TERM=dumb`).
fn status_wanted(no_status: bool) -> bool {
    let env_off = std::env::var_os("DTEST_NO_STATUS").is_some_and(|v| !v.is_empty() && v != "0");
    let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    !no_status && !env_off && !dumb && is_tty(2)
}

/// The size (columns, rows) of the terminal on stderr.
fn term_size() -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ fills a winsize we own.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
}

/// The lock of a run directory, held while the value lives (and released
/// by the kernel when the process ends, however it ends).
#[derive(Debug)]
struct RunDirLock(#[allow(dead_code)] File);

/// Takes the run directory's lock (`flock` on `DIR/dtest.lock`, without
/// waiting) and writes this process's id in it; a directory another run
/// holds is refused, naming that run's process.
fn lock_run_dir(dir: &Path) -> Result<RunDirLock, CliError> {
    let path = dir.join(LOCK_FILE);
    let fail = |e: std::io::Error| {
        CliError::Input(format!(
            "cannot lock the run directory {} ({}): {e}",
            dir.display(),
            path.display()
        ))
    };
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(fail)?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(fail(e));
        }
        let mut holder = String::new();
        let _ = Read::by_ref(&mut f).take(64).read_to_string(&mut holder);
        let holder = holder.trim();
        let who = if !holder.is_empty() && holder.chars().all(|c| c.is_ascii_digit()) {
            format!(" (pid {holder})")
        } else {
            String::new()
        };
        return Err(CliError::Input(format!(
            "the run directory {} is in use by another dtest run{who}: wait for it to end or choose another --out",
            dir.display()
        )));
    }
    // Who holds it, for the message of a second run.
    let _ = f.set_len(0);
    let _ = f.rewind();
    let _ = writeln!(f, "{}", std::process::id());
    Ok(RunDirLock(f))
}

/// `p` made absolute, its parent resolved when it exists (the file itself
/// may not exist yet).
fn resolved(p: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(p) {
        return c;
    }
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    match (abs.parent(), abs.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .map(|d| d.join(name))
            .unwrap_or(abs.clone()),
        _ => abs,
    }
}

/// Whether `a` and `b` name the same file: the same inode when both exist,
/// the same resolved path otherwise.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => resolved(a) == resolved(b),
    }
}

/// Refuses output paths that would overwrite the run's own files, the
/// scenario or the spec: today `--junit`.
fn check_outputs(args: &Args, sc: &Scenario, out: &Path) -> Result<(), CliError> {
    let Some(junit) = &args.junit else {
        return Ok(());
    };
    if junit.is_dir() {
        return Err(CliError::Input(format!(
            "--junit {}: is a directory (give a file name)",
            junit.display()
        )));
    }
    let mut taken: Vec<(PathBuf, String)> = vec![
        (out.join(TRACE_FILE), "the run's trace".to_string()),
        (
            out.join(LOCK_FILE),
            "the run directory's lock file".to_string(),
        ),
        (
            out.join(dtest_exec::scenario::REPORT_FILE),
            "the run's HTML report".to_string(),
        ),
        (args.scenario.clone(), "the scenario".to_string()),
    ];
    if let Some(spec) = &args.check {
        taken.push((spec.clone(), "the --check spec".to_string()));
    }
    for t in &sc.testers {
        for ext in LOG_EXTENSIONS {
            taken.push((
                out.join(format!("{}.{ext}", t.name)),
                format!("tester `{}`'s log", t.name),
            ));
        }
    }
    for (p, what) in taken {
        if same_file(junit, &p) {
            return Err(CliError::Input(format!(
                "--junit {}: is {what} ({}); the report would overwrite it: choose another file",
                junit.display(),
                p.display()
            )));
        }
    }
    Ok(())
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
                // The point is named after the property only (the verdict
                // is its ok / not ok, and a diagnostic when it fails), so
                // that it keeps its name from run to run.
                ExtraPoint {
                    ok: r.holds(),
                    description: format!("property {}", r.property),
                    diagnostics,
                }
            })
            .collect(),
        Err(e) => spec
            .property_names()
            .into_iter()
            .map(|name| ExtraPoint {
                ok: false,
                description: format!("property {name}"),
                diagnostics: vec![
                    ("verdict".to_string(), "not checked".to_string()),
                    ("error".to_string(), e.to_string()),
                ],
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
