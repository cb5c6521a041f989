//! `dtest msc`: draw a trace as a Message Sequence Chart (SVG or mscgen).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use dtest_msc::{Format, Options};
use dtest_trace::Trace;

use crate::{CliError, CliResult};

/// Output formats of `dtest msc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Scalable Vector Graphics (the default).
    Svg,
    /// Input of the mscgen tool.
    Mscgen,
}

/// Arguments of `dtest msc`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The format defaults to the output file's extension (.svg, .msc), \
else SVG. --highlight takes `dtest check --format json` output, or any JSON with \
\"events\": [indexes]; the events and their causal past stand out, the rest is faded."
)]
pub struct Args {
    /// The trace to draw.
    pub trace: PathBuf,
    /// Output format.
    #[arg(short = 'f', long, value_enum)]
    pub format: Option<FormatArg>,
    /// Write to this file instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Show only these actors' lanes, in this order (messages to the others
    /// are drawn to the lane's edge).
    #[arg(long, value_delimiter = ',', value_name = "A,B,...")]
    pub actors: Option<Vec<String>>,
    /// First event index to show (inclusive).
    #[arg(long, value_name = "N")]
    pub from: Option<u64>,
    /// Last event index to show (inclusive).
    #[arg(long, value_name = "N")]
    pub to: Option<u64>,
    /// Highlight the events of this report (JSON) and their causal past.
    #[arg(long, value_name = "REPORT.json")]
    pub highlight: Option<PathBuf>,
}

/// Runs `dtest msc`.
pub fn run(args: Args) -> CliResult {
    let format = match (args.format, &args.output) {
        (Some(FormatArg::Svg), _) => Format::Svg,
        (Some(FormatArg::Mscgen), _) => Format::Mscgen,
        (None, Some(p)) => Format::from_path(p).unwrap_or(Format::Svg),
        (None, None) => Format::Svg,
    };
    let trace = Trace::load(&args.trace).map_err(|e| CliError::file(&args.trace, e))?;
    for w in &trace.warnings {
        eprintln!("dtest: warning: {}: {w}", args.trace.display());
    }
    let highlight = match &args.highlight {
        None => None,
        Some(p) => {
            let json = std::fs::read_to_string(p).map_err(|e| CliError::file(p, e))?;
            Some(
                dtest_msc::parse_highlight_for(&json, &args.trace)
                    .map_err(|e| CliError::file(p, e))?,
            )
        }
    };
    let opts = Options {
        actors: args.actors,
        from: args.from,
        to: args.to,
        highlight,
    };
    let input_error = |e: dtest_msc::Error| -> CliError {
        match (&e, &args.highlight) {
            (dtest_msc::Error::HighlightOutOfRange { .. }, Some(p)) => CliError::file(p, e),
            (dtest_msc::Error::Io(_), _) => CliError::from(io_of(e)),
            _ => CliError::file(&args.trace, e),
        }
    };
    match &args.output {
        None => {
            let stdout = io::stdout();
            let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
            dtest_msc::write(&trace, &opts, format, &mut out).map_err(input_error)?;
            out.flush()?;
        }
        Some(path) => write_file(
            path,
            |out| dtest_msc::write(&trace, &opts, format, out),
            input_error,
        )?,
    }
    Ok(0)
}

fn io_of(e: dtest_msc::Error) -> io::Error {
    match e {
        dtest_msc::Error::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// Writes `path` through a temporary file in the same directory, renamed
/// into place at the end, so that a reader never sees half a chart and a
/// bad option leaves no file behind. Write errors name `path`; the others
/// go through `input_error`.
fn write_file(
    path: &Path,
    draw: impl FnOnce(&mut dyn Write) -> dtest_msc::Result<()>,
    input_error: impl FnOnce(dtest_msc::Error) -> CliError,
) -> Result<(), CliError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "chart".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> Result<(), CliError> {
        let f = File::create(&tmp).map_err(|e| CliError::file(path, e))?;
        let mut out = BufWriter::with_capacity(1 << 16, f);
        draw(&mut out).map_err(|e| match e {
            dtest_msc::Error::Io(e) => CliError::file(path, e),
            other => input_error(other),
        })?;
        out.flush().map_err(|e| CliError::file(path, e))?;
        drop(out);
        std::fs::rename(&tmp, path).map_err(|e| CliError::file(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
