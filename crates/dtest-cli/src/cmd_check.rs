//! `dtest check` (being built; see its issue).

use crate::{CliError, CliResult};

/// Arguments of `dtest check`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `dtest check`.
pub fn run(_args: Args) -> CliResult {
    Err(CliError::Input("dtest check is not available in this build yet".into()))
}
