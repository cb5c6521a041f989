//! Reports of a run: its test points, fed as run events to reporters.
//!
//! The runner emits [`RunEvent`]s (the plan, each step as it starts, each
//! point as its step ends, comments, the end); each [`Reporter`] renders
//! them: [`tap::TapReporter`] writes TAP (version 13 by default, 14 on
//! request) as the run goes, [`junit::JunitReporter`] writes JUnit XML at
//! the end, [`status::StatusReporter`] keeps a live status line per tester
//! on a terminal. A new format is one file with one `Reporter`.
//!
//! A point's description is its identity for CI systems: it derives from
//! the step's definition only (never a timing or a wording that depends on
//! how the step went), so that it is the same from run to run.

pub mod junit;
pub mod status;
pub mod tap;

pub use junit::write_junit;
pub use tap::TapWriter;

use std::io;
use std::time::Duration;

use dtest_trace::Directive;

/// One TAP test point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Point {
    /// TAP number, from 1.
    pub number: u32,
    /// The tester it belongs to (`""` for points added after the run).
    pub tester: String,
    /// `ok` or `not ok`.
    pub ok: bool,
    /// Description (without the number).
    pub description: String,
    /// SKIP or TODO, with its reason.
    pub directive: Option<(Directive, String)>,
    /// Diagnostics: a YAML block under a failed point.
    pub diag: Vec<(String, DiagValue)>,
    /// How long the step took.
    pub duration: Duration,
    /// A comment after the description of a point without directive
    /// (`not ok 7 - tester1: run \`make\` # interrupted`).
    pub note: Option<String>,
}

/// A value in a TAP diagnostic block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiagValue {
    /// A string.
    Text(String),
    /// A list of strings (lines).
    Lines(Vec<String>),
}

impl Point {
    /// Whether the point counts as a failure (a failed TODO does not).
    pub fn failed(&self) -> bool {
        !self.ok && !matches!(self.directive, Some((Directive::Todo, _)))
    }
}

/// Escapes a TAP description: one line, `#` and `\` escaped.
pub fn tap_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '#' => o.push_str("\\#"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            c if c.is_control() => o.push('?'),
            c => o.push(c),
        }
    }
    o
}

/// A YAML double-quoted scalar.
pub fn yaml_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{fffd}' => {
                o.push_str(&format!("\\x{:02x}", c as u32 & 0xff))
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// The TAP version written on the first line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TapVersion {
    /// `TAP version 13`: what every harness reads, Test::Harness 3.44
    /// (Debian 12's `prove`) included, which refuses 14.
    #[default]
    V13,
    /// `TAP version 14` (the same lines: dtest uses nothing 14 adds).
    V14,
}

impl TapVersion {
    /// The version number.
    pub fn number(self) -> u32 {
        match self {
            TapVersion::V13 => 13,
            TapVersion::V14 => 14,
        }
    }
}

/// What a run tells its reporters, in order.
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// The number of points the run will have (first).
    Plan(usize),
    /// A tester starts a step (its point follows when it ends).
    StepStart {
        /// The tester.
        tester: &'a str,
        /// The step's index in the tester's steps, from 0.
        step: usize,
        /// How many steps the tester has.
        steps: usize,
        /// The step's description, without the tester's name (`barrier "b"`).
        description: &'a str,
        /// The step's deadline, from now, when it has one.
        deadline: Option<Duration>,
    },
    /// A point, numbered, as its step ends.
    Point(&'a Point),
    /// A remark (why the run stopped).
    Comment(&'a str),
    /// The run is over (last): every point was reported.
    End {
        /// Every point, in number order.
        points: &'a [Point],
    },
}

/// Renders run events into a format.
///
/// Events are given under the lock every tester takes to report a point:
/// a reporter does no slow work in [`Reporter::event`] (the status
/// reporter only updates its state; its own thread draws).
pub trait Reporter: Send {
    /// Handles one event. An error stops this reporter only.
    fn event(&mut self, e: &RunEvent<'_>) -> io::Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_lines() {
        let mut v = Vec::new();
        let mut t = TapWriter::start(&mut v, 2, TapVersion::default()).unwrap();
        t.point(&Point {
            number: 1,
            tester: "t".into(),
            ok: false,
            description: "a # b\nc".into(),
            directive: Some((Directive::Todo, "later".into())),
            diag: vec![("pattern".into(), DiagValue::Text("x\"\u{1}".into()))],
            duration: Duration::ZERO,
            note: None,
        })
        .unwrap();
        let s = String::from_utf8(v).unwrap();
        assert_eq!(
            s,
            "TAP version 13\n1..2\nnot ok 1 - a \\# b\\nc # TODO later\n  ---\n  pattern: \"x\\\"\\x01\"\n  ...\n"
        );
    }
}
