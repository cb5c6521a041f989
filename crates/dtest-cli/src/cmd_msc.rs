//! `dtest msc` (being built; see its issue).

use crate::{CliError, CliResult};

/// Arguments of `dtest msc`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `dtest msc`.
pub fn run(_args: Args) -> CliResult {
    Err(CliError::Input("dtest msc is not available in this build yet".into()))
}
