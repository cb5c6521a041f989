//! Typed errors of the trace crate.

use std::io;

/// Everything that can go wrong reading or writing a trace.
///
/// Messages are lowercase fragments; decoding errors name the byte offset in
/// the file where the problem is, so the CLI can print `FILE: byte N: ...`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error of the underlying file.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The file does not start with the trace magic bytes.
    #[error("byte {offset}: not a dtest trace (bad magic bytes)")]
    NotATrace {
        /// Where the problem is.
        offset: u64,
    },
    /// The file's format major version is not one this reader knows.
    #[error("byte {offset}: unsupported trace format version {major}.{minor} (this dtest reads {supported}.x)")]
    UnsupportedVersion {
        /// Where the version is.
        offset: u64,
        /// Major version found.
        major: u16,
        /// Minor version found.
        minor: u16,
        /// Major version supported.
        supported: u16,
    },
    /// A record is damaged (bad checksum, bad encoding) and more data follows.
    #[error("byte {offset}: corrupt trace: {what}")]
    Corrupt {
        /// Where the damaged record starts.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// The file ends inside its header.
    #[error("byte {offset}: trace ends inside its header")]
    TruncatedHeader {
        /// Where the file ends.
        offset: u64,
    },
    /// The writer or recorder was used wrongly (unknown actor, unknown message).
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// The byte offset the error names, if any.
    pub fn offset(&self) -> Option<u64> {
        match self {
            Error::NotATrace { offset }
            | Error::UnsupportedVersion { offset, .. }
            | Error::Corrupt { offset, .. }
            | Error::TruncatedHeader { offset } => Some(*offset),
            Error::Io(_) | Error::Usage(_) => None,
        }
    }
}

/// Result with the trace crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
