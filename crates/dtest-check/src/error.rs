//! Errors of the checker: spec errors (with positions) and trace errors.

use std::path::PathBuf;

/// A problem in a spec, with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// The spec file (`<spec>` when parsed from a string).
    pub file: String,
    /// Line, from 1.
    pub line: usize,
    /// Column (in characters), from 1.
    pub col: usize,
    /// What is wrong, a lowercase fragment.
    pub message: String,
    /// The source line the error is on.
    pub source_line: String,
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}\n  {}\n  {}^",
            self.file,
            self.line,
            self.col,
            self.message,
            self.source_line,
            " ".repeat(self.col.saturating_sub(1))
        )
    }
}

impl std::error::Error for SpecError {}

impl SpecError {
    /// An error at byte `offset` of `src`.
    pub fn at(file: &str, src: &str, offset: usize, message: impl Into<String>) -> SpecError {
        let offset = offset.min(src.len());
        let mut offset = offset;
        while !src.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &src[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|p| p + 1).unwrap_or(0);
        let line_end = src[offset..]
            .find('\n')
            .map(|p| p + offset)
            .unwrap_or(src.len());
        let col = src[line_start..offset].chars().count() + 1;
        SpecError {
            file: file.to_string(),
            line,
            col,
            message: message.into(),
            source_line: src[line_start..line_end].trim_end_matches('\r').to_string(),
        }
    }
}

/// Everything that can go wrong while checking.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec does not parse or refers to unknown kinds, fields or lets.
    #[error("{0}")]
    Spec(#[from] SpecError),
    /// A spec or trace file cannot be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The trace cannot be decoded.
    #[error("{}: {source}", path.display())]
    Trace {
        /// The trace file.
        path: PathBuf,
        /// The decoder's error.
        source: dtest_trace::Error,
    },
    /// `--property NAME` names no property of the spec.
    #[error("no property named `{0}` in the spec")]
    UnknownProperty(String),
}

/// Result with the checker's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
