//! `dtest exec` (being built; see its issue).

use crate::{CliError, CliResult};

/// Arguments of `dtest exec`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `dtest exec`.
pub fn run(_args: Args) -> CliResult {
    Err(CliError::Input("dtest exec is not available in this build yet".into()))
}
