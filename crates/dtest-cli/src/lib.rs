//! The `dtest` command line: a thin layer over the library crates.
//!
//! Each subcommand lives in its own module with a clap `Args` struct and a
//! `run` function returning an exit code or a [`CliError`]. Only this crate
//! talks to the terminal; the libraries return typed errors, which are turned
//! into one clear line on stderr and an exit code here:
//! 0 success, 1 test failed or property violated, 2 bad usage or input,
//! 130/143 interrupted.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod cmd_check;
pub mod cmd_exec;
pub mod cmd_msc;
pub mod cmd_report;
pub mod cmd_trace;
mod error;

pub use error::{CliError, CliResult};

/// The one-line error for a trace that cannot be read: `FILE: byte N: what`.
pub fn trace_error(path: &std::path::Path, e: dtest_trace::Error) -> CliError {
    match e {
        dtest_trace::Error::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe => {
            CliError::BrokenPipe
        }
        e => CliError::file(path, e),
    }
}

/// dtest: run distributed test scenarios, draw and check their traces.
#[derive(Debug, Parser)]
#[command(name = "dtest", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario: TAP on stdout, logs and a trace in the run directory.
    Exec(cmd_exec::Args),
    /// Draw a trace as a Message Sequence Chart (SVG or mscgen).
    Msc(cmd_msc::Args),
    /// Check temporal-logic properties on traces.
    Check(cmd_check::Args),
    /// Write the HTML report of a run (summary, interactive chart, log).
    Report(cmd_report::Args),
    /// Inspect, validate, export and synthesize traces.
    #[command(subcommand)]
    Trace(cmd_trace::Command),
}

/// Runs the command line in `std::env::args` and returns the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Exec(a) => cmd_exec::run(a),
        Command::Msc(a) => cmd_msc::run(a),
        Command::Check(a) => cmd_check::run(a),
        Command::Report(a) => cmd_report::run(a),
        Command::Trace(c) => cmd_trace::run(c),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => e.report(),
    }
}
