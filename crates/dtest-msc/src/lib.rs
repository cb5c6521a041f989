//! Message Sequence Charts of dtest traces, as SVG and as mscgen.
//!
//! A trace records a distributed run as events on actors (the master, the
//! testers, their sessions) linked by messages, each with its vector clock.
//! This crate draws it as a Message Sequence Chart: one vertical lane per
//! actor, an arrow per message, a box per local event (expect matches,
//! timeouts, verdicts), a hexagon per barrier participant. `dtest msc` is a
//! thin layer over [`write()`].
//!
//! ```
//! use dtest_msc::{Format, Options};
//! use dtest_trace::{Actor, ActorKind, EventData, Header, Recorder, Trace};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("t.dtrace");
//! let actor = |id, name: &str, kind| Actor { id, name: name.into(), kind, host: "local".into() };
//! let header = Header::new("hello", vec![
//!     actor(0, "master", ActorKind::Master),
//!     actor(1, "tester1", ActorKind::Tester),
//!     actor(2, "tester1@local", ActorKind::Session),
//! ]);
//! let rec = Recorder::create(&path, header).unwrap();
//! let m = rec.send(1, EventData::Start { command: "echo <hi> & \"bye\"".into() }).unwrap();
//! rec.recv(2, m).unwrap();
//! rec.finish(0, true, "1 test, all ok").unwrap();
//! drop(rec);
//! let trace = Trace::load(&path).unwrap();
//!
//! let mut svg = Vec::new();
//! dtest_msc::write(&trace, &Options::default(), Format::Svg, &mut svg).unwrap();
//! let svg = String::from_utf8(svg).unwrap();
//! assert!(svg.contains("$ echo &lt;hi&gt; &amp; &quot;bye&quot;"));
//! assert!(svg.contains(r#"data-index="0" data-actor="tester1""#));
//!
//! let mut msc = Vec::new();
//! dtest_msc::write(&trace, &Options::default(), Format::Mscgen, &mut msc).unwrap();
//! let msc = String::from_utf8(msc).unwrap();
//! assert!(msc.contains(r#""tester1" => "tester1@local" [label="$ echo <hi> & \"bye\"", arcskip="1"]"#));
//! ```
//!
//! # Pipeline
//!
//! 1. **View** ([`Options`]): which lanes (`actors`, in the order given),
//!    which window of event indexes (`from`, `to`, both inclusive), which
//!    events to highlight. Lanes default to the master, then each tester
//!    followed by its sessions.
//! 2. **Layout**: a row for every shown event, from the happens-before
//!    graph (a petgraph `DiGraph`: one node per event of the window, an edge
//!    per step of an actor and per message), not from recording order. The
//!    receives of one barrier release are merged into one node so they share
//!    a row. Rows are assigned in topological order, smallest event index
//!    first, each node on the first row below all its predecessors where the
//!    room it needs is free. So: causality is never drawn upside down (a
//!    send is always above its receive, also through hidden lanes);
//!    events on one row are concurrent, except barrier releases, which are
//!    real synchronisations; nothing overlaps; and the result depends on the
//!    trace alone (same input, same bytes out).
//! 3. **Writers**: SVG (self-contained, readable without script) or mscgen
//!    (accepted by mscgen 0.20). Both describe events the same way.
//!
//! # What the SVG holds
//!
//! - Each lane's name at the top and at the bottom; one `<line>` per
//!   lifeline, so the size grows with the events, not events x lanes.
//! - Every shown event is one `<g>` with CSS classes `ev`, its direction
//!   (`send`, `recv`, `local`), `k-<kind>` (`k-output`, `k-verdict`, ...),
//!   `a<actor id>`, a status (`ok`, `notok`, `skip`, `todo`, `fail`) and a
//!   highlight mark (`hit`, `past`, `dim`), and the attributes `data-index`,
//!   `data-actor` (name), `data-kind`, `data-dir`, `data-time` (ns since the
//!   run started), `data-clock` (the vector clock, entry *i* for the actor
//!   whose lane header has `data-actor-id` *i*), `data-row`, `data-y` (the
//!   event's vertical position) and, for paired messages, `data-partner`.
//!   Its `<title>` (a tooltip) has the full text, capped at 4 KiB.
//! - A message is drawn by its send (the arrow and its label) and its
//!   receive (the arrowhead). A message whose other side is on a hidden lane
//!   or outside the window is a dashed arrow to the edge of its lane's
//!   column, labelled with the other actor.
//! - Labels show the first line of a payload, cut to fit, and
//!   `... (N lines, M bytes)` when there is more. Control characters are
//!   shown in caret notation (`^[`), invalid UTF-8 as U+FFFD; text is
//!   escaped for XML.
//! - A barrier release is a hexagon on each participant's lane, on one row,
//!   joined by a line (`<g class="barrier">`).
//! - An incomplete trace (no `end` event: a killed run) is marked at the top
//!   and where the lifelines stop.
//! - A legend of the arrow and box styles closes the chart. Lanes are 190
//!   to 330 px apart, as wide as nine labels in ten need; labels use a
//!   monospace font (`"DejaVu Sans Mono", monospace`) so their width is known
//!   without a font engine, and nothing on one row overlaps.
//!
//! # Highlight reports
//!
//! [`parse_highlight`] reads the JSON given to `dtest msc --highlight`. It
//! takes the event indexes of every member named `"events"` whose value is
//! an array, wherever it is in the document; the elements are event indexes
//! (non-negative integers) or objects with an integer `"index"`. So all of
//! these work:
//!
//! ```json
//! {"events": [12, 40]}
//! [{"property": "p1", "events": [12, 40]}, {"property": "p2", "events": []}]
//! {"results": [{"violations": [{"events": [{"index": 12}]}]}]}
//! ```
//!
//! `dtest check --format json` writes an object with the union of the
//! violating events at the top and one result per property and trace:
//!
//! ```json
//! {"events": [8, 143], "results": [
//!   {"property": "p", "trace": "run.dtrace", "verdict": "violated", "events": [8, 143], ...}]}
//! ```
//!
//! When objects of the report name their trace (`"trace"`), as there, the
//! CLI uses [`parse_highlight_for`]: only the `"events"` of the objects
//! naming the drawn trace count (same path, or the same file once both are
//! resolved), so one report of several traces highlights each trace right.
//! A document without any `"events"` array is an error, so is a report
//! without a result for the drawn trace, and an index outside the trace.
//! An empty list (every property holds) is fine: everything is faded.
//! The highlighted events and their causal past are drawn normally (the
//! events themselves in red), the rest faded.
//!
//! # mscgen
//!
//! One statement line per row, concurrent statements joined by `,`,
//! `arcskip` for receives rows below their send, `|||` for rows where
//! nothing starts. Barrier releases are an `abox` over the participants
//! when their lanes are contiguous, else a `---` line naming them.
//! Messages to hidden lanes are a `note` on the shown lane. Labels are cut
//! to 200 columns and 3 lines; `"` is written `\"`, a newline `\n`, a
//! backslash U+29F5, control characters in caret notation.

mod describe;
mod error;
mod highlight;
mod layout;
mod mscgen;
mod svg;
mod text;
mod view;

use std::io::Write;

use dtest_trace::Trace;

pub use error::{Error, Result};
pub use highlight::{parse_highlight, parse_highlight_for};

/// What to draw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The lanes to show, by actor name, left to right; `None`: every actor
    /// in the default order.
    pub actors: Option<Vec<String>>,
    /// First event index to show (inclusive).
    pub from: Option<u64>,
    /// Last event index to show (inclusive).
    pub to: Option<u64>,
    /// Events to highlight (see [`parse_highlight`]); `None`: no highlight.
    pub highlight: Option<Vec<u64>>,
}

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Scalable Vector Graphics.
    Svg,
    /// The input language of mscgen.
    Mscgen,
}

impl Format {
    /// The format a file name asks for by its extension (`.svg`, `.msc`,
    /// `.mscgen`), if any.
    pub fn from_path(path: &std::path::Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "svg" => Some(Format::Svg),
            "msc" | "mscgen" => Some(Format::Mscgen),
            _ => None,
        }
    }
}

/// Draws `trace` in `format` to `out`.
///
/// Fails only on bad options (an unknown actor, an empty window, a highlight
/// index outside the trace) or when writing fails; any trace, damaged or
/// hostile, gives a chart.
pub fn write(trace: &Trace, opts: &Options, format: Format, out: &mut dyn Write) -> Result<()> {
    let view = view::View::new(trace, opts)?;
    match format {
        Format::Svg => svg::write(&view, out),
        Format::Mscgen => mscgen::write(&view, out),
    }
}

#[cfg(test)]
mod tests;
