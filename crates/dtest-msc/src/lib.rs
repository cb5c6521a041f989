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
//! // The tester and its session share a lane: the command is a mark on it.
//! assert!(msc.contains(r#""tester1" box "tester1" [label="$ echo <hi> & \"bye\"""#));
//! ```
//!
//! # Pipeline
//!
//! 1. **Window** ([`Events`]): the events to draw, read from the trace in
//!    one streaming pass ([`Events::read`]) or taken from a trace in memory
//!    ([`Events::from_trace`]). A window is given by event index or time
//!    ([`Bound`]: `--from 120`, `--from 2.5s`) or by barrier
//!    (`--from-barrier NAME`: from the master's first `barrier_leave` of
//!    that barrier; `--to-barrier NAME`: until that release reached every
//!    participant). Reading stops once the window is read, every message
//!    sent in it received and every highlighted event seen: memory is
//!    that of the window (and of the messages in flight at its start), not
//!    that of the trace. A window over [`MAX_WINDOW_EVENTS`] is refused
//!    with a message naming the options that narrow it.
//! 2. **View** ([`Options`]): which lanes (`actors`, in the order given;
//!    by default the master, then each tester), which kinds (`kinds`:
//!    hidden events still order the others), the highlight marks. Each
//!    session is drawn on its tester's lane (`sessions: true` keeps them
//!    apart): a message between a tester and its own session is one mark
//!    on that lane (drawn by its send), and a run of output chunks that
//!    nothing interrupts on either side is one mark. A compact chart (the
//!    default, see "Detail") draws more events as part of one mark.
//! 3. **Layout**: a row for every shown event, from the happens-before
//!    graph (a petgraph `DiGraph`: one node per event of the window, an edge
//!    per step of an actor and per message). The receives of one barrier
//!    release are merged into one node, which puts them on one row, and so
//!    are its sends (a fan from the master, labelled once) and the events
//!    of a run of output. Rows are assigned in a topological
//!    order, each node on the first row below all its predecessors where the
//!    room it needs is free. So: causality is never drawn upside down (a
//!    send is always above its receive, also through hidden lanes);
//!    events on one row are concurrent, except barrier releases (their
//!    receives, and the master's sends, which follow one another within
//!    microseconds), which are real synchronisations; nothing overlaps;
//!    and the result depends on the trace alone (same input, same bytes
//!    out).
//! 4. **Writers**: SVG (self-contained, readable without script, split into
//!    pages past 32000 px) or mscgen (accepted by mscgen 0.20). Both
//!    describe events the same way.
//!
//! # Layouts: time or causal
//!
//! [`LayoutKind::Time`] (the default) places nodes in time order (by time,
//! then index) and cuts the run into moments: a moment starts with the
//! first node more than 1/100 of the window (at least 1 ms) after the
//! start of the previous one, and all its rows come below the rows of the
//! moments before it. Reading down is reading the run as it happened, to
//! within a moment; inside a moment, nodes go as high as causality and room
//! allow (what happened within a few milliseconds on different testers
//! shares rows). A left-hand column gives the time of each row (of its
//! earliest event, when it changes, to the millisecond), and a run of
//! output goes where its telling line arrived. Causality still holds (a
//! receive is stamped after its send, and the topological order is kept),
//! so it is never upside down. Use it to follow a run, above all when causality is not all
//! captured: two testers that watch the same server are linked by nothing
//! in the trace, and only time puts the server's death above the
//! watchers' reaction.
//!
//! [`LayoutKind::Causal`] places nodes by event index, each as high as
//! happens-before allows: the most compact chart, where one row means
//! "concurrent" and height means nothing else. Use it to see what could
//! have happened in another order (races), or when wall clocks cannot be
//! trusted (testers on several hosts whose clocks drift: dtest stamps
//! times on the machine running it, but a remote command's own timing
//! does not show).
//!
//! # Detail: compact or full
//!
//! [`Detail::Compact`] (the default) draws the story of a run so that it
//! fits on a screen (the md5, redis and 7-tester sentinel examples: 622,
//! 626 and 890 px high):
//!
//! - **No master lane** when the master did nothing but barriers (and the
//!   end, which the subtitle says): the testers' `barrier_enter` arrows and
//!   the master's release fan are not drawn; a release is still a hexagon
//!   on each participant's lane, on one row, and a bar on each lane shows
//!   the wait from where the tester entered the barrier.
//! - **One mark per moment of a tester** (see `attach.rs`): a command with
//!   its output and its exit (and the tester's next commands in the same
//!   moment), a `match` with the output it found its line in, the step's
//!   `ok` verdicts (a green badge with their numbers), the barrier entry, a
//!   normal session close. A mark takes another only
//!   within the moment of its first (the time layout's 1/100 of the window)
//!   and only when nothing else happened in between on the tester and on
//!   its session, so reading down is still reading in time; the events it
//!   takes are hidden events to the layout (they still order the others).
//!   Its label joins what its events say with `→`: an exit status 0 is the
//!   mark's light green instead of words, a non-zero one is said in red.
//! - **Repeats**: the same command with the same output and exit, again
//!   and again in a row on one tester (a `poll`'s attempts), is one mark
//!   saying `×N`, with a grey bar down to the row of its last attempt.
//!
//! Failures are never folded away: `not ok` verdicts, timeouts, broken
//! barriers and abnormal closes stay marks of their own. Every event
//! remains in the SVG: in the `data-with` list of the mark that draws it,
//! and in its tooltip (which keeps about 16 KiB of text). [`Detail::Full`] (`--detail full`) draws every event on
//! its own: barrier messages as arrows to the master, each verdict a box.
//!
//! # Labels
//!
//! Labels are cut to the room they have (the tooltip has everything). An
//! output mark shows its most telling line: the line a property matched
//! (the `details` of a `dtest check` report given to `--highlight`, see
//! [`parse_highlight_lines_for`]), else the line a later `match` of its
//! tester found the matched text in, else its last non-empty line, and
//! how many lines there were; a line too long keeps its end (from the
//! matched text, or without a log prefix such as `12618:M 01 Dec 2026
//! 05:51:53.111 * `), marked with `…`. A `match` shows the line it
//! matched.
//!
//! # Pages
//!
//! rsvg-convert refuses images over 32767 px, and browsers give up on them
//! too. A chart taller than 32000 px is written as pages ([`write_pages`]:
//! the CLI names them `chart-1.svg`, `chart-2.svg`, ..., numbers padded so
//! they sort), each with the title, the lane names at top and bottom and
//! the legend; arrows crossing a page boundary are drawn on both pages,
//! cut at the edge. [`write()`] and [`write_one`] refuse a chart that needs
//! pages ([`Error::TooBig`]). A chart too wide (over 32000 px) squeezes its
//! lanes, and is refused when they would get narrower than 120 px.
//!
//! # What the SVG holds
//!
//! - Each lane's name at the top and at the bottom; one `<line>` per
//!   lifeline, so the size grows with the events, not events x lanes.
//! - Every shown event is one `<g>` with CSS classes `ev`, its direction
//!   (`send`, `recv`, `local`), `k-<kind>` (`k-output`, `k-verdict`, ...),
//!   `a<actor id>`, `own` for a message drawn as a mark on its lane, a
//!   status (`ok`, `notok`, `skip`, `todo`, `fail`) and a highlight mark
//!   (`hit`, `past`, `dim`), and the attributes `data-index`,
//!   `data-actor` (name), `data-kind`, `data-dir`, `data-time` (ns since the
//!   run started), `data-clock` (the vector clock, entry *i* for the actor
//!   whose lane header has `data-actor-id` *i*), `data-row`, `data-y` (the
//!   event's vertical position), for paired messages `data-partner`, and
//!   for a run of output `data-run` (its number of chunks), for a compact
//!   mark `data-with` (the indexes of the other events it draws, which have
//!   no element of their own). Its `<title>` (a tooltip) has the full text,
//!   capped at 4 KiB per event. A compact mark's verdicts are a
//!   `<g class="badge">`; a mark whose command ended with status 0 has the
//!   class `ended`.
//! - A message is drawn by its send (the arrow and its label) and its
//!   receive (the arrowhead). A message whose other side is on a hidden lane
//!   or outside the window is a dashed arrow to the edge of its lane's
//!   column, labelled with the other actor.
//! - Control characters are shown in caret notation (`^[`), invalid UTF-8
//!   as U+FFFD; text is escaped for XML.
//! - A barrier release is a hexagon on each participant's lane, on one row,
//!   joined by a line (`<g class="barrier">`). In a compact chart a bar
//!   (`<line class="wait">`) runs down each lane from where its tester
//!   entered the barrier, and one (`<line class="span">`) from a repeated
//!   mark to the row of its last repeat.
//! - An incomplete trace (no `end` event: a killed run) is marked at the top
//!   and where the lifelines stop.
//! - A legend of the arrow and box styles closes the chart. Lanes are 190
//!   to 330 px apart, as wide as nine labels in ten need but within 1900
//!   px (a screen) as long as lanes 190 px apart fit in it; labels use a
//!   monospace font (`"DejaVu Sans Mono", monospace`) so their width is known
//!   without a font engine, and nothing on one row overlaps.
//! - The root has `data-page` and `data-pages`; the events are inside a
//!   nested `<svg class="body">` whose viewport shows the page's rows.
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
//! to the room mscgen gives them (`hscale` x 600 px shared by the lanes,
//! 7.5 px per character), so they stay inside their boxes; `"` is written
//! `\"`, a newline `\n`, control characters in caret notation. mscgen has
//! no escape for a backslash: it is written as it is, followed by a WORD
//! JOINER (U+2060, drawn as nothing) where mscgen would read it as an
//! escape (before `n` or `"`, and at the end of a label).

mod attach;
mod describe;
mod error;
mod highlight;
mod layout;
mod mscgen;
mod source;
mod svg;
mod text;
mod view;

use std::io::Write;

use dtest_trace::{Kind, Trace};

pub use error::{Error, Result};
pub use highlight::{parse_highlight, parse_highlight_for, parse_highlight_lines_for};
pub use source::{Events, MAX_WINDOW_EVENTS};

/// One end of a window: an event index or a time since the run started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// An event index (inclusive).
    Index(u64),
    /// Nanoseconds since the run started: from the first event at or after
    /// it, to the last event at or before it.
    Time(u64),
}

impl std::str::FromStr for Bound {
    type Err = Error;
    /// `120` is an event index; `2.5s`, `300ms`, `1m`, `1500us`, `10ns` are
    /// times since the run started.
    fn from_str(s: &str) -> Result<Bound> {
        let s = s.trim();
        if let Ok(n) = s.parse::<u64>() {
            return Ok(Bound::Index(n));
        }
        let bad = || {
            Error::BadOption(format!(
                "`{}` is neither an event index (120) nor a time (2.5s, 300ms, 1m)",
                text::printable(s)
            ))
        };
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, unit) = s.split_at(split);
        let scale = match unit {
            "ns" => 1e0,
            "us" | "\u{b5}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" | "min" => 60e9,
            _ => return Err(bad()),
        };
        let v: f64 = num.parse().map_err(|_| bad())?;
        if !v.is_finite() || v < 0.0 || v * scale > u64::MAX as f64 / 2.0 {
            return Err(bad());
        }
        Ok(Bound::Time((v * scale).round() as u64))
    }
}

/// Parses a `--kinds` list: kind names (`output`, `barrier_enter`, ...)
/// separated by commas. Names alone say which kinds to show; names after a
/// `-` say which to hide (`-output,-input`: all but output and input). Gives
/// the kinds shown.
pub fn parse_kinds(s: &str) -> Result<Vec<Kind>> {
    let mut show: Vec<Kind> = Vec::new();
    let mut hide: Vec<Kind> = Vec::new();
    for item in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        let (neg, name) = match item.strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, item),
        };
        let Some(k) = Kind::from_name(name) else {
            let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            return Err(Error::BadOption(format!(
                "--kinds: unknown kind `{}` (kinds: {})",
                text::printable(name),
                known.join(", ")
            )));
        };
        if neg {
            hide.push(k);
        } else {
            show.push(k);
        }
    }
    if !show.is_empty() && !hide.is_empty() {
        return Err(Error::BadOption(
            "--kinds: give either the kinds to show (output,match) or the kinds to hide (-output,-input), not both".into(),
        ));
    }
    if show.is_empty() && hide.is_empty() {
        return Err(Error::BadOption("--kinds: no kind given".into()));
    }
    if show.is_empty() {
        show = Kind::ALL
            .iter()
            .copied()
            .filter(|k| !hide.contains(k))
            .collect();
    }
    Ok(show)
}

/// How rows are assigned (see the crate docs, "Layouts").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LayoutKind {
    /// Rows in time order (the default): the story as it happened, with
    /// causality still never upside down.
    #[default]
    Time,
    /// Rows from causality alone: as compact as happens-before allows;
    /// events on one row are concurrent.
    Causal,
}

/// How much of a run a chart draws (see the crate docs, "Detail").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Detail {
    /// The story (the default): the master's barrier bookkeeping is not
    /// drawn (a release is a hexagon on its participants' lanes, the wait
    /// before it a bar on each lane), and what one tester did in one moment
    /// is one mark: a command with its output and exit, an expect's match
    /// with the output it found, an `ok` verdict as a numbered badge on the
    /// mark of the step it concludes.
    #[default]
    Compact,
    /// Every event on its own: each barrier message an arrow to the master,
    /// each verdict a box.
    Full,
}

/// What to draw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The lanes to show, by actor name, left to right; `None`: every actor
    /// in the default order. A tester's sessions come with it.
    pub actors: Option<Vec<String>>,
    /// Start of the window (inclusive); `None`: the first event.
    pub from: Option<Bound>,
    /// End of the window (inclusive); `None`: the last event.
    pub to: Option<Bound>,
    /// Start the window at the release of this barrier (its first
    /// `barrier_leave`); overrides `from`.
    pub from_barrier: Option<String>,
    /// End the window once this barrier (its first release in the window)
    /// has released every participant.
    pub to_barrier: Option<String>,
    /// The kinds shown (see [`parse_kinds`]); `None`: all. Hidden events
    /// still order the others.
    pub kinds: Option<Vec<Kind>>,
    /// Keep each session on its own lane instead of folding it into its
    /// tester's lane.
    pub sessions: bool,
    /// Row assignment.
    pub layout: LayoutKind,
    /// How much is drawn.
    pub detail: Detail,
    /// Events to highlight (see [`parse_highlight`]); `None`: no highlight.
    pub highlight: Option<Vec<u64>>,
    /// Lines of output a property matched, by event index (see
    /// [`parse_highlight_lines_for`]): an output mark shows its line.
    pub matched_lines: Vec<(u64, String)>,
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

/// Gives the writer of page `index` (from 0) of `count` pages.
pub type PageSink<'a> = dyn FnMut(usize, usize) -> std::io::Result<Box<dyn Write + 'a>> + 'a;

/// Draws `trace` in `format` to `out`, as one page.
///
/// Fails on bad options (an unknown actor, an empty window, a highlight
/// index outside the trace), when writing fails, and when the SVG would be
/// too tall for one page ([`Error::TooBig`], naming the options that narrow
/// it; [`write_pages`] splits it instead). Any trace, damaged or hostile,
/// gives a chart.
pub fn write(trace: &Trace, opts: &Options, format: Format, out: &mut dyn Write) -> Result<()> {
    let events = Events::from_trace(trace, opts)?;
    write_one(&events, opts, format, out)
}

/// Like [`write()`], for events already read (see [`Events::read`]).
pub fn write_one(
    events: &Events,
    opts: &Options,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let mut out = Some(out);
    let mut sink = |_: usize, count: usize| -> std::io::Result<Box<dyn Write + '_>> {
        if count > 1 {
            return Err(std::io::Error::other(TOO_TALL));
        }
        match out.take() {
            Some(o) => Ok(Box::new(o)),
            None => Err(std::io::Error::other(TOO_TALL)),
        }
    };
    match write_pages(events, opts, format, &mut sink) {
        Err(Error::Io(e)) if e.to_string() == TOO_TALL => Err(Error::TooBig(
            "the chart is too tall for one SVG (rsvg-convert and browsers stop at 32767 px): \
             write it to a file (-o chart.svg) to split it into pages, or narrow it with \
             --from/--to (an event index, or a time such as 2.5s), --from-barrier, --kinds or --actors"
                .into(),
        )),
        r => r.map(|_| ()),
    }
}

const TOO_TALL: &str = "dtest-msc: chart needs several pages";

/// Draws the window `opts` selected (`events`) in `format`: an SVG taller
/// than about 32000 px is split into pages (rows in order, lane names and
/// legend on each), each written to the writer `open(page, pages)` gives;
/// mscgen is always one page. Returns the number of pages.
pub fn write_pages(
    events: &Events,
    opts: &Options,
    format: Format,
    open: &mut PageSink<'_>,
) -> Result<usize> {
    let view = view::View::new(events, opts)?;
    match format {
        Format::Svg => svg::write(&view, open),
        Format::Mscgen => {
            let mut out = open(0, 1)?;
            mscgen::write(&view, &mut *out)?;
            Ok(1)
        }
    }
}

#[cfg(test)]
mod tests;
