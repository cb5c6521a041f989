//! Typed errors of the chart crate.

use std::io;

/// Everything that can go wrong drawing a chart.
///
/// Messages are lowercase fragments without a trailing period; the CLI
/// prefixes them with the file they concern.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing the chart failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// `--actors` named an actor the trace does not have.
    #[error("unknown actor `{name}` (the trace has: {known})")]
    UnknownActor {
        /// The name asked for.
        name: String,
        /// The trace's actor names, comma-separated.
        known: String,
    },
    /// `--actors` named an actor twice, or named none.
    #[error("{0}")]
    BadActors(String),
    /// The `--from`/`--to` window is empty or outside the trace.
    #[error("empty window: {0}")]
    EmptyWindow(String),
    /// The trace could not be read (the message names the byte offset).
    #[error("{0}")]
    Trace(#[from] dtest_trace::Error),
    /// The chart would be too big to draw: the message says which options
    /// narrow it.
    #[error("{0}")]
    TooBig(String),
    /// A `--from`/`--to`/`--kinds` value is malformed.
    #[error("{0}")]
    BadOption(String),
    /// The highlight report is not JSON.
    #[error("highlight report: line {line}, column {column}: {msg}")]
    HighlightJson {
        /// 1-based line of the JSON error.
        line: usize,
        /// 1-based column of the JSON error.
        column: usize,
        /// What serde_json said.
        msg: String,
    },
    /// The highlight report is JSON but not in a format this crate reads.
    #[error("highlight report: {0}")]
    HighlightFormat(String),
    /// The highlight report names an event the trace does not have.
    #[error("highlight report names event {index}, but the trace has {len} events (is it the report of another trace?)")]
    HighlightOutOfRange {
        /// The event index in the report.
        index: u64,
        /// Number of events of the trace.
        len: usize,
    },
}

/// Result with the chart crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
