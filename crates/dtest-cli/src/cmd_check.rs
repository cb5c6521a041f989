//! `dtest check`: check a spec's properties on traces (see
//! properties/README.md for the language and the JSON schema).

use std::io::Write;
use std::path::{Path, PathBuf};

use dtest_check::{report, Error, Spec};

use crate::{CliError, CliResult};

/// Report formats of `dtest check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// One line per property and trace, then the deciding events.
    Text,
    /// The documented JSON report (what `dtest msc --highlight` reads).
    Json,
}

/// Arguments of `dtest check`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when every property holds on every trace, 1 when one is \
violated or inconclusive (a truncated trace, no end event, whose verdict depends on the \
missing part), 2 on a bad spec, a bad trace (the other traces are still checked) or bad \
usage, and with --strict on a warning. Warnings (an atom naming an actor the trace does \
not have, a kind that never occurs in it, a string that no text equals while the same \
text as a /regex/ would match) go to stderr as FILE:LINE:COL: warning: ..."
)]
pub struct Args {
    /// The spec file (`let` and `property` items).
    pub spec: PathBuf,
    /// The traces to check.
    #[arg(required = true)]
    pub traces: Vec<PathBuf>,
    /// Report format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: FormatArg,
    /// Check only this property (repeatable).
    #[arg(long = "property", value_name = "NAME")]
    pub properties: Vec<String>,
    /// Make warnings errors: exit 2 when there is one.
    #[arg(long)]
    pub strict: bool,
}

fn input(e: Error) -> CliError {
    CliError::Input(e.to_string())
}

/// Reads and parses a spec file: a regular file of at most
/// [`dtest_exec::load::MAX_INPUT`] bytes (`/dev/zero`, a FIFO or a bigger
/// file is refused before more is read), so a spec never costs more
/// memory than that to read.
pub fn read_spec(path: &Path) -> Result<Spec, CliError> {
    let file = path.display().to_string();
    let src = dtest_exec::load::read_input(path, "spec", dtest_exec::load::MAX_INPUT).map_err(
        |e| match e.pos {
            Some((line, col)) => CliError::Input(format!("{file}:{line}:{col}: {}", e.message)),
            None => CliError::Input(format!("{file}: {}", e.message)),
        },
    )?;
    Spec::parse(&file, &src).map_err(|e| input(e.into()))
}

/// Runs `dtest check`.
pub fn run(args: Args) -> CliResult {
    let spec = read_spec(&args.spec)?;
    spec.select(&args.properties).map_err(input)?;
    let each = dtest_check::check_each(&spec, &args.properties, &args.traces).map_err(input)?;
    let mut results = Vec::new();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for r in each {
        match r {
            Ok(t) => {
                results.extend(t.results);
                warnings.extend(t.warnings);
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    {
        let mut stderr = std::io::stderr().lock();
        for w in &warnings {
            let _ = writeln!(stderr, "{w}");
        }
        if args.strict && !warnings.is_empty() {
            let _ = writeln!(
                stderr,
                "dtest: error: {} warning(s), and --strict makes them errors",
                warnings.len()
            );
        }
        for e in &errors {
            let _ = writeln!(stderr, "dtest: error: {e}");
        }
    }
    let out = match args.format {
        FormatArg::Text => report::text(&results),
        FormatArg::Json => {
            let v = report::json_full(
                &args.spec.display().to_string(),
                &results,
                &warnings,
                &errors,
            );
            let mut s = serde_json::to_string_pretty(&v)
                .map_err(|e| CliError::Internal(format!("cannot write the JSON report: {e}")))?;
            s.push('\n');
            s
        }
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    if !errors.is_empty() || (args.strict && !warnings.is_empty()) {
        return Ok(2);
    }
    Ok(report::exit_code(&results))
}
