//! `dtest trace`: show, stats, validate, export, synth.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use dtest_trace::{export, stats::Stats, synth, Reader, Validator};

use crate::{trace_error, CliError, CliResult};

/// The `dtest trace` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the events of a trace, one per line.
    Show {
        /// The trace file.
        trace: PathBuf,
        /// `text` (readable) or `jsonl` (one JSON object per event; schema in
        /// the dtest-trace crate docs).
        #[arg(long, short, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
    /// Count actors, events per kind and per actor, duration and bytes.
    Stats {
        /// The trace file.
        trace: PathBuf,
    },
    /// Check clocks, message pairs and times; exit 1 with the violations.
    Validate {
        /// The trace file.
        trace: PathBuf,
    },
    /// Export a trace for other tools.
    Export {
        /// Target format.
        #[arg(long, short, value_enum)]
        format: ExportFormat,
        /// The trace file.
        trace: PathBuf,
        /// Output file (default: stdout).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Write a random but valid trace, deterministic for a seed.
    Synth {
        /// Number of testers (each with its session).
        #[arg(long, default_value_t = 4)]
        testers: usize,
        /// Number of events, the final `end` included.
        #[arg(long, default_value_t = 1000)]
        events: u64,
        /// Seed of the generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Length of input and output payloads in bytes.
        #[arg(long, default_value_t = 16)]
        payload: usize,
        /// The trace file to write.
        #[arg(long, short)]
        output: PathBuf,
    },
}

/// Formats of `dtest trace show`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ShowFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per line.
    Jsonl,
}

/// Formats of `dtest trace export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// The GoVector log format that ShiViz reads.
    Shiviz,
}

/// Runs a `dtest trace` subcommand.
pub fn run(c: Command) -> CliResult {
    match c {
        Command::Show { trace, format } => show(&trace, format),
        Command::Stats { trace } => stats(&trace),
        Command::Validate { trace } => validate(&trace),
        Command::Export {
            format: ExportFormat::Shiviz,
            trace,
            output,
        } => shiviz(&trace, output.as_deref()),
        Command::Synth {
            testers,
            events,
            seed,
            payload,
            output,
        } => {
            if testers == 0 {
                return Err(CliError::Input("--testers must be at least 1".into()));
            }
            let cfg = synth::Config {
                testers,
                events,
                seed,
                payload,
            };
            synth::write(&output, &cfg).map_err(|e| trace_error(&output, e))?;
            Ok(0)
        }
    }
}

fn open(path: &Path) -> Result<Reader<impl Read>, CliError> {
    Reader::open(path).map_err(|e| trace_error(path, e))
}

/// Prints the reader's warnings and an incomplete-trace note on stderr.
fn warn<R: Read>(path: &Path, r: &Reader<R>) {
    for w in r.warnings() {
        eprintln!("dtest: warning: {}: {w}", path.display());
    }
    if !r.is_complete() {
        eprintln!("dtest: warning: {}: trace is incomplete (no end event: the run did not finish normally)", path.display());
    }
}

fn stdout() -> BufWriter<io::StdoutLock<'static>> {
    BufWriter::with_capacity(1 << 16, io::stdout().lock())
}

fn show(path: &Path, format: ShowFormat) -> CliResult {
    let mut r = open(path)?;
    let mut out = stdout();
    let h = r.header().clone();
    if format == ShowFormat::Text {
        // Every string from the trace is escaped (see dtest_trace::export);
        // the path is the user's.
        writeln!(
            out,
            "# trace {} of scenario \"{}\", {} actors",
            path.display(),
            export::escape_line(&h.scenario, usize::MAX),
            h.actors.len()
        )?;
    }
    loop {
        match r.next_event() {
            Ok(Some(e)) => match format {
                ShowFormat::Text => writeln!(out, "{}", export::show_line(&h, e))?,
                ShowFormat::Jsonl => export::write_jsonl(&mut out, &h, e)?,
            },
            Ok(None) => break,
            Err(e) => {
                out.flush()?;
                return Err(trace_error(path, e));
            }
        }
    }
    out.flush()?;
    warn(path, &r);
    Ok(0)
}

fn stats(path: &Path) -> CliResult {
    let r = open(path)?;
    let s = Stats::compute(r).map_err(|e| trace_error(path, e))?;
    let mut out = stdout();
    write!(out, "{s}")?;
    out.flush()?;
    Ok(0)
}

fn validate(path: &Path) -> CliResult {
    let mut r = open(path)?;
    let mut v = Validator::new(r.header().actors.len());
    let mut n = 0u64;
    while let Some(e) = r.next_event().map_err(|e| trace_error(path, e))? {
        v.push(e);
        n += 1;
    }
    warn(path, &r);
    let violations = v.finish(r.is_complete());
    let mut out = stdout();
    if violations.is_empty() {
        // Cut events (too big for the format, cut by their writer, see the
        // warning) are valid events; they are counted here.
        let cut = match r.cut_events() {
            0 => String::new(),
            1 => ", 1 cut".to_string(),
            c => format!(", {c} cut"),
        };
        writeln!(
            out,
            "{}: valid ({n} events{}{cut})",
            path.display(),
            if r.is_complete() { "" } else { ", incomplete" }
        )?;
        out.flush()?;
        Ok(0)
    } else {
        for x in &violations {
            writeln!(out, "{}: {x}", path.display())?;
        }
        out.flush()?;
        Err(CliError::Failed(format!(
            "{}: {} violation(s)",
            path.display(),
            violations.len()
        )))
    }
}

fn shiviz(path: &Path, output: Option<&Path>) -> CliResult {
    let mut r = open(path)?;
    let h = r.header().clone();
    let mut out: Box<dyn Write> = match output {
        Some(p) => Box::new(BufWriter::new(
            File::create(p).map_err(|e| CliError::file(p, e))?,
        )),
        None => Box::new(stdout()),
    };
    eprintln!("dtest: ShiViz parsing regex: {}", export::SHIVIZ_REGEX);
    while let Some(e) = r.next_event().map_err(|e| trace_error(path, e))? {
        export::write_shiviz(&mut out, &h, e)?;
    }
    out.flush()?;
    warn(path, &r);
    Ok(0)
}
