//! `dtest msc`: draw a trace as a Message Sequence Chart (SVG or mscgen).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use dtest_msc::{Bound, Detail, Events, Format, LayoutKind, Options};
use dtest_trace::{Kind, Reader};

use crate::{CliError, CliResult};

/// Output formats of `dtest msc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Scalable Vector Graphics (the default).
    Svg,
    /// Input of the mscgen tool.
    Mscgen,
}

/// Row layouts of `dtest msc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LayoutArg {
    /// Rows in time order; causality still never upside down (the default).
    Time,
    /// Rows from causality alone: the most compact; one row means concurrent.
    Causal,
}

/// How much `dtest msc` draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DetailArg {
    /// The story (the default): no master lane for barrier bookkeeping (a
    /// release is drawn on its participants' lanes, the wait before it as a
    /// bar), and what a tester did in one moment as one mark (a command
    /// with its output and exit, a match with its output, `ok` verdicts as
    /// numbered badges).
    Compact,
    /// Every event on its own: barrier messages as arrows to the master,
    /// each verdict as a box.
    Full,
}

/// Arguments of `dtest msc`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The format defaults to the output file's extension (.svg, .msc), \
else SVG. Sessions are drawn on their tester's lane (--sessions keeps them apart); \
output chunks nothing interrupts are one mark showing the line an expect matched, \
else the last line (the whole text in the tooltip). By default the chart is compact: \
no master lane when it only kept barriers, and what a tester did in one moment is one \
mark (a command with its output and exit, a match, ok verdicts as a numbered badge); \
--detail full draws every event on its own. An SVG taller than 32000 px is \
split into pages FILE-1.svg, FILE-2.svg, ... (lane names on each). --highlight takes \
`dtest check --format json` output, or any JSON with \"events\": [indexes]; the events \
and their causal past stand out, the rest is faded."
)]
pub struct Args {
    /// The trace to draw.
    pub trace: PathBuf,
    /// Output format.
    #[arg(short = 'f', long, value_enum)]
    pub format: Option<FormatArg>,
    /// Write to this file instead of stdout (`-` is stdout); a chart of several pages
    /// goes to FILE-1.svg, FILE-2.svg, ...
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Show only these actors' lanes, in this order (messages to the others
    /// are drawn to the lane's edge; a tester's sessions come with it).
    #[arg(long, value_delimiter = ',', value_name = "A,B,...")]
    pub actors: Option<Vec<String>>,
    /// Start of the window: an event index (120) or a time since the run
    /// started (2.5s, 300ms, 1m), inclusive.
    #[arg(long, value_name = "N|TIME", value_parser = parse_bound)]
    pub from: Option<Bound>,
    /// End of the window: an event index or a time, inclusive.
    #[arg(long, value_name = "N|TIME", value_parser = parse_bound)]
    pub to: Option<Bound>,
    /// Start the window where this barrier released its participants.
    #[arg(long, value_name = "NAME", conflicts_with = "from")]
    pub from_barrier: Option<String>,
    /// End the window once this barrier has released its participants.
    #[arg(long, value_name = "NAME", conflicts_with = "to")]
    pub to_barrier: Option<String>,
    /// Kinds to show (output,match,...) or to hide (-output,-input); hidden
    /// events still order the others. Kinds: open, close, start, input,
    /// output, signal, exit, match, timeout, barrier_enter, barrier_leave,
    /// barrier_broken, put, get, verdict, custom, end.
    #[arg(long, value_name = "KINDS", allow_hyphen_values = true, value_parser = parse_kinds)]
    pub kinds: Option<KindList>,
    /// Keep sessions on lanes of their own instead of on their tester's.
    #[arg(long)]
    pub sessions: bool,
    /// Row layout: `time` (rows in time order) or `causal` (rows from
    /// happens-before alone, the most compact).
    #[arg(long, value_enum, default_value = "time")]
    pub layout: LayoutArg,
    /// How much to draw: `compact` (the story: one mark per moment of a
    /// tester, barriers as releases) or `full` (every event on its own).
    #[arg(long, value_enum, default_value = "compact")]
    pub detail: DetailArg,
    /// Highlight the events of this report (JSON) and their causal past.
    #[arg(long, value_name = "REPORT.json")]
    pub highlight: Option<PathBuf>,
}

fn parse_bound(s: &str) -> Result<Bound, String> {
    s.parse::<Bound>().map_err(|e| e.to_string())
}

/// The kinds `--kinds` shows.
#[derive(Clone, Debug)]
pub struct KindList(pub Vec<Kind>);

fn parse_kinds(s: &str) -> Result<KindList, String> {
    dtest_msc::parse_kinds(s)
        .map(KindList)
        .map_err(|e| e.to_string())
}

/// Runs `dtest msc`.
pub fn run(mut args: Args) -> CliResult {
    // `-o -` is stdout, as usual.
    if args.output.as_deref() == Some(std::path::Path::new("-")) {
        args.output = None;
    }
    let format = match (args.format, &args.output) {
        (Some(FormatArg::Svg), _) => Format::Svg,
        (Some(FormatArg::Mscgen), _) => Format::Mscgen,
        (None, Some(p)) => Format::from_path(p).unwrap_or(Format::Svg),
        (None, None) => Format::Svg,
    };
    let (highlight, matched_lines) = match &args.highlight {
        None => (None, Vec::new()),
        Some(p) => {
            let json = std::fs::read_to_string(p).map_err(|e| CliError::file(p, e))?;
            let events = dtest_msc::parse_highlight_for(&json, &args.trace)
                .map_err(|e| CliError::file(p, e))?;
            let lines = dtest_msc::parse_highlight_lines_for(&json, &args.trace)
                .map_err(|e| CliError::file(p, e))?;
            (Some(events), lines)
        }
    };
    let opts = Options {
        actors: args.actors.clone(),
        from: args.from,
        to: args.to,
        from_barrier: args.from_barrier.clone(),
        to_barrier: args.to_barrier.clone(),
        kinds: args.kinds.clone().map(|k| k.0),
        sessions: args.sessions,
        layout: match args.layout {
            LayoutArg::Time => LayoutKind::Time,
            LayoutArg::Causal => LayoutKind::Causal,
        },
        detail: match args.detail {
            DetailArg::Compact => Detail::Compact,
            DetailArg::Full => Detail::Full,
        },
        highlight,
        matched_lines,
    };
    let input_error = |e: dtest_msc::Error| -> CliError {
        match (&e, &args.highlight) {
            (dtest_msc::Error::HighlightOutOfRange { .. }, Some(p)) => CliError::file(p, e),
            (dtest_msc::Error::Io(_), _) => CliError::from(io_of(e)),
            _ => CliError::file(&args.trace, e),
        }
    };
    // One streaming pass: only the window is kept.
    let reader = Reader::open(&args.trace).map_err(|e| CliError::file(&args.trace, e))?;
    let events = Events::read(reader, &opts).map_err(input_error)?;
    for w in &events.warnings {
        eprintln!("dtest: warning: {}: {w}", args.trace.display());
    }
    match &args.output {
        None => {
            let stdout = io::stdout();
            let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
            dtest_msc::write_one(&events, &opts, format, &mut out).map_err(input_error)?;
            out.flush()?;
        }
        Some(path) => {
            let pages = write_files(path, &events, &opts, format, input_error)?;
            if pages.len() > 1 {
                eprintln!(
                    "dtest: the chart is {} pages: {} to {}",
                    pages.len(),
                    pages[0].display(),
                    pages[pages.len() - 1].display()
                );
            }
        }
    }
    Ok(0)
}

fn io_of(e: dtest_msc::Error) -> io::Error {
    match e {
        dtest_msc::Error::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// The file of page `index` (from 0) of `count`: `path` itself for one
/// page, else `stem-1.ext` ... `stem-N.ext`, numbers padded to one width so
/// that the names sort in order.
fn page_path(path: &Path, index: usize, count: usize) -> PathBuf {
    if count <= 1 {
        return path.to_path_buf();
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "chart".into());
    let digits = count.to_string().len();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{:0digits$}.{}", index + 1, ext.to_string_lossy()),
        None => format!("{stem}-{:0digits$}", index + 1),
    };
    path.with_file_name(name)
}

/// Writes the chart's pages through temporary files in the same directory,
/// renamed into place at the end, so that a reader never sees half a chart
/// and a bad option leaves no file behind. Write errors name the file; the
/// others go through `input_error`.
fn write_files(
    path: &Path,
    events: &Events,
    opts: &Options,
    format: Format,
    input_error: impl FnOnce(dtest_msc::Error) -> CliError,
) -> Result<Vec<PathBuf>, CliError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut written: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut failed: Option<CliError> = None;
    let result = {
        let written = &mut written;
        let failed = &mut failed;
        let mut open = |index: usize, count: usize| -> io::Result<Box<dyn Write>> {
            let target = page_path(path, index, count);
            let name = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "chart".into());
            let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
            match File::create(&tmp) {
                Ok(f) => {
                    written.push((tmp, target));
                    Ok(Box::new(BufWriter::with_capacity(1 << 16, f)))
                }
                Err(e) => {
                    *failed = Some(CliError::file(
                        &target,
                        io::Error::new(e.kind(), e.to_string()),
                    ));
                    Err(e)
                }
            }
        };
        dtest_msc::write_pages(events, opts, format, &mut open)
    };
    let outcome = match result {
        Ok(_) => {
            let mut r = Ok(());
            for (tmp, target) in &written {
                if let Err(e) = std::fs::rename(tmp, target) {
                    r = Err(CliError::file(target, e));
                    break;
                }
            }
            r
        }
        Err(e) => Err(match (failed.take(), e) {
            (Some(f), _) => f,
            (None, dtest_msc::Error::Io(e)) => {
                let target = written
                    .last()
                    .map(|(_, t)| t.clone())
                    .unwrap_or_else(|| path.to_path_buf());
                CliError::file(&target, e)
            }
            (None, other) => input_error(other),
        }),
    };
    if let Err(e) = outcome {
        for (tmp, _) in &written {
            let _ = std::fs::remove_file(tmp);
        }
        return Err(e);
    }
    Ok(written.into_iter().map(|(_, t)| t).collect())
}
