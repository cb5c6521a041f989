//! The mscgen writer.
//!
//! mscgen draws one statement line per row, arcs joined by `,` on one row.
//! The rows are dtest's own layout (the same happens-before layering as the
//! SVG, with mscgen's room rules: an arc takes the lanes between its ends, a
//! box its own lane); a message whose receive is rows below its send gets
//! `arcskip`; a row with nothing starting on it is `|||`. Entity names and
//! labels are always quoted and escaped (see [`crate::text::mscgen`]), labels
//! are capped at [`LABEL_COLS`] columns and three lines.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write;

use dtest_trace::{Dir, EventData, Kind};

use crate::describe;
use crate::error::Result;
use crate::layout::{Geometry, Layout, Span};
use crate::text;
use crate::view::{Mark, Other, View};

/// Widest label, in columns.
pub(crate) const LABEL_COLS: usize = 200;
const LABEL_LINES: usize = 3;
/// Room per character of mscgen's label font (Helvetica 12 px: a little
/// over its average advance, so that mscgen does not wrap the label).
const CHAR_PX: f64 = 7.5;

pub(crate) struct Msc;

fn contiguous(view: &View, members: &[u64]) -> Option<(usize, usize)> {
    let lanes: Vec<usize> = members
        .iter()
        .filter_map(|&m| view.lane(view.trace.event(m).actor))
        .collect();
    let (&lo, &hi) = (lanes.first()?, lanes.last()?);
    (hi - lo + 1 == lanes.len()).then_some((lo, hi))
}

impl Geometry for Msc {
    fn span(&self, view: &View, i: u64) -> Option<Span> {
        let e = &view.trace.event(i);
        let l = 2.0 * view.lane(e.actor)? as f64;
        let own = Some((l - 1.0, l + 1.0));
        if e.dir == Dir::Local || view.is_condition(i) {
            return own;
        }
        match view.other(i) {
            Other::Own(_) => own,
            Other::Drawn(j) if e.dir == Dir::Send => {
                let m = 2.0 * view.lane(view.trace.event(j).actor)? as f64;
                Some((l.min(m), l.max(m)))
            }
            Other::Drawn(_) => None,
            // A message to or from a lane not drawn is a note on this lane.
            _ => own,
        }
    }

    fn group_span(&self, view: &View, members: &[u64]) -> Option<Span> {
        match contiguous(view, members) {
            Some((lo, hi)) => Some((2.0 * lo as f64 - 1.0, 2.0 * hi as f64 + 1.0)),
            None => Some((f64::NEG_INFINITY, f64::INFINITY)),
        }
    }
}

/// Writes the mscgen chart of `view` to `out`.
pub(crate) fn write(view: &View, out: &mut dyn Write) -> Result<()> {
    let layout = Layout::new(view, &Msc);
    let trace = view.trace;
    let mut b = String::with_capacity(1 << 16);
    let _ = writeln!(
        b,
        "# dtest msc: {} ({}{})",
        text::printable(&trace.header.scenario),
        match trace.total {
            Some(t) => format!("{t} events"),
            None => "window of a longer trace".into(),
        },
        if trace.complete == Some(false) {
            ", incomplete"
        } else {
            ""
        }
    );
    if view.from > 0 || trace.total != Some(view.to) {
        let _ = writeln!(
            b,
            "# window: events #{} to #{}",
            view.from,
            view.to.saturating_sub(1)
        );
    }
    let hs = hscale(view);
    let _ = writeln!(b, "msc {{\n  hscale=\"{hs:.1}\";");
    // Width of one entity's column in mscgen's pixels: labels are cut to
    // the room they have, so they stay inside their boxes.
    let col_w = 600.0 * hs / view.lanes.len().max(1) as f64;
    let room = |lanes: f64| -> usize {
        (((lanes * col_w - 16.0) / CHAR_PX) as usize).clamp(4, LABEL_COLS)
    };

    // Entities: the escaped actor names, made unique if escaping merged two.
    let mut names: Vec<String> = Vec::with_capacity(view.lanes.len());
    let mut seen = HashSet::new();
    for &a in &view.lanes {
        let mut n = String::new();
        text::mscgen(&mut n, &text::short(trace.actor_name(a), 60));
        if n.is_empty() || !seen.insert(n.clone()) {
            let _ = write!(n, " #{a}");
            seen.insert(n.clone());
        }
        names.push(n);
    }
    // mscgen wants at least one entity and one row.
    if names.is_empty() {
        names.push("(no actor)".into());
    }
    let name = |i: u64| -> &str {
        let a = trace.event(i).actor;
        view.lane(a).map(|l| names[l].as_str()).unwrap_or("?")
    };
    b.push_str("  ");
    for (k, n) in names.iter().enumerate() {
        let _ = write!(b, "{}\"{n}\"", if k > 0 { ", " } else { "" });
    }
    b.push_str(";\n");

    // Statements by row, each with its lane for a stable order.
    let mut rows: Vec<Vec<(usize, u64, String)>> = vec![Vec::new(); layout.rows.max(1) as usize];
    for g in &layout.groups {
        let mut s = String::new();
        let mut label = String::new();
        match contiguous(view, &g.members) {
            Some((lo, hi)) => {
                text::mscgen(
                    &mut label,
                    &text::short(&g.name, room((hi - lo + 1) as f64)),
                );
                let first = g.members[0];
                let last = g.members[g.members.len() - 1];
                let _ = write!(
                    s,
                    "\"{}\" abox \"{}\" [label=\"{label}\", textbgcolour=\"#efe6f7\"]",
                    name(first),
                    name(last)
                );
            }
            None => {
                let who: Vec<&str> = g
                    .members
                    .iter()
                    .map(|&m| trace.actor_name(trace.event(m).actor))
                    .collect();
                let mut l = String::new();
                text::mscgen(
                    &mut l,
                    &text::short(
                        &format!("barrier {}: {}", g.name, who.join(", ")),
                        room(view.lanes.len() as f64),
                    ),
                );
                let _ = write!(s, "--- [label=\"{l}\", linecolour=\"#7a4fa3\"]");
            }
        }
        rows[g.row as usize].push((0, g.members[0], s));
    }
    for i in view.from..view.to {
        let Some(row) = layout.row(i) else { continue };
        if layout.group(i).is_some() {
            continue;
        }
        if let Some(s) = statement(view, &layout, i, row, &name, &room) {
            let lane = view.lane(trace.event(i).actor).unwrap_or(0);
            rows[row as usize].push((lane, i, s));
        }
    }
    out.write_all(b.as_bytes())?;
    b.clear();
    for mut r in rows {
        if r.is_empty() {
            b.push_str("  |||;\n");
        } else {
            r.sort_by_key(|&(lane, i, _)| (lane, i));
            b.push_str("  ");
            for (k, (_, _, s)) in r.iter().enumerate() {
                if k > 0 {
                    b.push_str(",\n  ");
                }
                b.push_str(s);
            }
            b.push_str(";\n");
        }
        if b.len() > 1 << 16 {
            out.write_all(b.as_bytes())?;
            b.clear();
        }
    }
    if trace.complete == Some(false) {
        b.push_str("  --- [label=\"incomplete trace: no end event\", textcolour=\"#c62828\", linecolour=\"#c62828\"];\n");
    }
    b.push_str("}\n");
    out.write_all(b.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// The horizontal scale: mscgen gives the whole chart 600 px times
/// `hscale`, shared by the lanes. Wide enough for nine labels in ten of the
/// boxes and of the messages between neighbour lanes to fit on one line
/// (about 6.5 px per character), up to 60 characters.
fn hscale(view: &View) -> f64 {
    let trace = view.trace;
    let mut want: Vec<usize> = Vec::new();
    for i in view.from..view.to {
        let e = &trace.event(i);
        let Some(l) = view.lane(e.actor) else {
            continue;
        };
        if !view.shown(i) {
            continue;
        }
        let near = match (e.dir, view.other(i)) {
            (Dir::Local, _) | (_, Other::Own(_)) => true,
            (Dir::Send, Other::Drawn(j)) => view
                .lane(trace.event(j).actor)
                .is_some_and(|m| m.abs_diff(l) == 1),
            _ => false,
        };
        if near {
            let label = describe::label_of(view, i, 60, 1);
            want.push(text::cols(&label));
        }
    }
    want.sort_unstable();
    let p90 = want.get(want.len() * 9 / 10).copied().unwrap_or(0) as f64;
    let lanes = view.lanes.len().max(1) as f64;
    let h = (lanes * (p90 * 6.5 + 20.0) / 600.0).max(1.0);
    (h * 10.0).ceil() / 10.0
}

/// Colour attributes for an event's status and highlight mark.
fn colours(view: &View, i: u64, data: &EventData, boxed: bool) -> String {
    let mut a = String::new();
    match view.mark(i) {
        Mark::Hit => {
            a.push_str(", linecolour=\"#e00000\", textcolour=\"#e00000\"");
        }
        Mark::Dim => {
            a.push_str(", linecolour=\"#bbbbbb\", textcolour=\"#bbbbbb\"");
        }
        Mark::Plain | Mark::Past => {
            if !boxed && describe::status(data) == Some("fail") {
                a.push_str(", linecolour=\"#c62828\", textcolour=\"#c62828\"");
            }
        }
    }
    if boxed {
        let bg = match (describe::status(data), data.kind()) {
            (Some("ok"), _) => Some("#d5f2d5"),
            (Some("notok"), _) | (Some("fail"), _) => Some("#f9cfcf"),
            (Some("skip"), _) => Some("#ececec"),
            (Some("todo"), _) => Some("#fff3c4"),
            (_, Kind::Match) => Some("#e6eefc"),
            (_, Kind::BarrierLeave) => Some("#efe6f7"),
            _ => None,
        };
        if let Some(bg) = bg {
            let _ = write!(a, ", textbgcolour=\"{bg}\"");
        }
    }
    a
}

fn statement<'a>(
    view: &View,
    layout: &Layout,
    i: u64,
    row: u32,
    name: &dyn Fn(u64) -> &'a str,
    room: &dyn Fn(f64) -> usize,
) -> Option<String> {
    let trace = view.trace;
    let e = &trace.event(i);
    let data = describe::data(view, i);
    let me = name(i);
    let mut label = String::new();
    let mut s = String::new();
    if e.dir == Dir::Local
        || view.is_condition(i)
        || matches!(view.other(i), Other::Own(_))
        || view.enter_mark(i)
    {
        // A compact mark's verdicts (a badge in SVG) lead its label.
        let badge = describe::badge(view, i)
            .map(|b| format!("ok {b}: "))
            .unwrap_or_default();
        let l = describe::label_of(view, i, room(1.0).saturating_sub(badge.len()).max(8), 1);
        text::mscgen(&mut label, &format!("{badge}{l}"));
        let shape = match (e.kind(), describe::status(data)) {
            (Kind::Verdict | Kind::Match | Kind::End, _) => "rbox",
            (Kind::BarrierLeave | Kind::BarrierBroken, _) => "abox",
            _ => "box",
        };
        let _ = write!(
            s,
            "\"{me}\" {shape} \"{me}\" [label=\"{label}\"{}]",
            colours(view, i, data, true)
        );
        return Some(s);
    }
    let other = view.other(i);
    match (e.dir, other) {
        (Dir::Send, Other::Drawn(j)) => {
            let span = view
                .lane(trace.event(j).actor)
                .zip(view.lane(e.actor))
                .map(|(a, b)| a.abs_diff(b) as f64)
                .unwrap_or(1.0)
                .max(1.0);
            if view.fan(i).is_none_or(|f| f[0] == i) {
                // One label for the sends of a release, on the first.
                text::mscgen(
                    &mut label,
                    &describe::label_of(view, i, room(span), LABEL_LINES),
                );
            }
            let arc = match e.kind() {
                Kind::Start | Kind::Input | Kind::Signal | Kind::Put => "=>",
                Kind::Output | Kind::Exit | Kind::Get => ">>",
                _ => "->",
            };
            let skip = layout.row(j).map(|r| r.saturating_sub(row)).unwrap_or(0);
            let _ = write!(s, "\"{me}\" {arc} \"{}\" [label=\"{label}\"", name(j));
            if skip > 0 {
                let _ = write!(s, ", arcskip=\"{skip}\"");
            }
            let _ = write!(s, "{}]", colours(view, i, data, false));
            Some(s)
        }
        (Dir::Recv, Other::Drawn(_)) => None,
        (dir, o) => {
            let word = if dir == Dir::Send { "to" } else { "from" };
            let head = match o {
                Other::Hidden(_, a) | Other::Outside(_, a) => {
                    format!("{word} {}", trace.actor_name(a))
                }
                _ if dir == Dir::Send => "never received".into(),
                _ => "send not in trace".into(),
            };
            let l = describe::label_of(view, i, room(1.0), 1);
            text::mscgen(&mut label, &text::short(&format!("{head}: {l}"), room(1.0)));
            let _ = write!(
                s,
                "\"{me}\" note \"{me}\" [label=\"{label}\"{}]",
                colours(view, i, data, false)
            );
            Some(s)
        }
    }
}
