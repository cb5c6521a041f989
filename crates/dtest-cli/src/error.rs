//! CLI errors: a kind that maps to an exit code, and one line for the user.

use std::io;
use std::process::ExitCode;

/// An error the CLI reports as one line on stderr with an exit code.
#[derive(Debug)]
pub enum CliError {
    /// Bad usage or bad input (scenario, spec, trace): exit 2.
    Input(String),
    /// The test failed or a property is violated: exit 1 (already reported).
    Failed(String),
    /// Something broke that is not the user's fault: exit 2, with a hint.
    Internal(String),
    /// stdout was closed (`dtest ... | head`): exit quietly.
    BrokenPipe,
}

impl CliError {
    /// Prints the error (if any) and returns its exit code.
    pub fn report(self) -> ExitCode {
        match self {
            CliError::Input(m) => {
                eprintln!("dtest: error: {m}");
                ExitCode::from(2)
            }
            CliError::Failed(m) => {
                if !m.is_empty() {
                    eprintln!("dtest: {m}");
                }
                ExitCode::from(1)
            }
            CliError::Internal(m) => {
                eprintln!("dtest: internal error: {m} (please report this)");
                ExitCode::from(2)
            }
            CliError::BrokenPipe => ExitCode::from(0),
        }
    }

    /// An error about a file: `FILE: message`.
    pub fn file(path: &std::path::Path, msg: impl std::fmt::Display) -> CliError {
        CliError::Input(format!("{}: {msg}", path.display()))
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> CliError {
        if e.kind() == io::ErrorKind::BrokenPipe {
            CliError::BrokenPipe
        } else {
            CliError::Input(e.to_string())
        }
    }
}

/// Result of a subcommand: the exit code on success.
pub type CliResult = Result<u8, CliError>;
