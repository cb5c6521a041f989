//! `dtest trace`: show, stats, validate, export, synth.

use crate::CliResult;

/// The `dtest trace` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {}

/// Runs a `dtest trace` subcommand.
pub fn run(c: Command) -> CliResult {
    match c {}
}
