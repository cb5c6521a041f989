//! The SVG writer.
//!
//! Layout in pixels: lanes 190 to 330 px apart (as the labels need, within a
//! 1900 px screen when the lanes fit one), rows [`ROW_H`] apart, labels in
//! an 11 px monospace font whose advance ([`CHAR_W`]) lets us measure text
//! without a font engine. The document is self-contained: a `<style>` block,
//! then the lane headers, one `<line>` per lifeline, the barrier lines, one
//! `<g>` per shown event in trace order, messages first and then boxes and
//! barrier conditions (which so cover the arrows crossing their lane), and
//! the lane names again at the bottom.

use std::fmt::Write as _;
use std::io::Write;

use dtest_trace::{ActorKind, Dir, Kind};

use crate::describe;
use crate::error::{Error, Result};
use crate::layout::{Geometry, Layout, Span};
use crate::text;
use crate::view::{Mark, Other, View};

/// Narrowest and widest distance between two lanes: the chart picks the
/// width in between that fits most labels whole.
const LANE_MIN: f64 = 190.0;
/// Width of a screen: a chart stays within it while its lanes can be
/// narrowed down to [`LANE_MIN`].
const SCREEN_W: f64 = 1900.0;
const LANE_MAX: f64 = 330.0;
/// Distance between two rows.
pub(crate) const ROW_H: f64 = 24.0;
/// Advance of one character of the label font (DejaVu Sans Mono 11 px:
/// 0.602 em, rounded up).
pub(crate) const CHAR_W: f64 = 6.7;
const MARGIN: f64 = 24.0;
const HEAD_Y: f64 = 52.0;
const HEAD_H: f64 = 26.0;
const FIRST_ROW: f64 = HEAD_Y + HEAD_H + 30.0;
/// Widest message label, in columns.
const MAX_LABEL_COLS: usize = 64;

const STYLE: &str = r#"
svg.dtest-msc{background:#fff}
text{font-family:"DejaVu Sans Mono",monospace;font-size:11px;fill:#1a1a1a}
.title{font-family:"DejaVu Sans",sans-serif;font-size:15px;font-weight:bold}
.sub{font-family:"DejaVu Sans",sans-serif;font-size:11px;fill:#555}
.lane rect{fill:#eef1f6;stroke:#56657f;stroke-width:1.2}
.lane.master rect{fill:#e8e8e8;stroke:#555}
.lane.session rect{fill:#eaf5f1;stroke:#3b7a68}
.lane text{font-family:"DejaVu Sans",sans-serif;font-size:12px;font-weight:bold;text-anchor:middle}
.life{stroke:#a0a7b4;stroke-width:1;stroke-dasharray:5 3}
.legend text{font-family:"DejaVu Sans",sans-serif;fill:#444}
.l{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
.shaft{fill:none;stroke:#3c4a63;stroke-width:1.2}
.head{fill:#3c4a63}
.stub .shaft{stroke-dasharray:4 3}
.k-output .shaft{stroke:#2f6db5}.k-output .head{fill:#2f6db5}
.k-start .shaft,.k-input .shaft,.k-signal .shaft{stroke:#222}
.k-barrier_enter .shaft,.k-barrier_leave .shaft{stroke:#7a4fa3;stroke-dasharray:2 2}
.k-barrier_enter .head,.k-barrier_leave .head{fill:#7a4fa3}
.k-put .shaft,.k-get .shaft{stroke:#8a5a14;stroke-width:2}
.k-put .head,.k-get .head{fill:#8a5a14}
.fail .shaft{stroke:#c62828}.fail .head{fill:#c62828}.fail text{fill:#b71c1c}
.k-exit.ok text{fill:#1b6e1b}
.box{fill:#f3f3f3;stroke:#8c8c8c;stroke-width:1}
.k-match .box{fill:#e6eefc;stroke:#4f74c4}
.own.k-output .box{fill:#f2f7fd;stroke:#2f6db5}
.own.k-start .box,.own.k-input .box,.own.k-signal .box{fill:#fff;stroke:#222}
.times text{fill:#777;font-size:10px}
.k-timeout .box{fill:#ffe3c4;stroke:#d84315;stroke-width:1.5}
.k-custom .box{fill:#f4e8f7;stroke:#8e44ad}
.k-custom.fail .box{fill:#fbd9d9;stroke:#c62828}
.ok .box{fill:#d5f2d5;stroke:#2e7d32;stroke-width:1.5}
.notok .box{fill:#f9cfcf;stroke:#c62828;stroke-width:1.5}
.notok text{font-weight:bold}
.skip .box{fill:#ececec;stroke:#777;stroke-dasharray:3 2}
.todo .box{fill:#fff3c4;stroke:#b38f00;stroke-dasharray:3 2}
.cond{fill:#efe6f7;stroke:#7a4fa3;stroke-width:1.5}
.k-barrier_broken .cond{fill:#fbd9d9;stroke:#c62828}
.sync{stroke:#7a4fa3;stroke-width:3;stroke-linecap:round;opacity:.55}
.incomplete-mark text{fill:#c62828;font-family:"DejaVu Sans",sans-serif;font-weight:bold;font-size:12px}
.incomplete-mark .torn{fill:none;stroke:#c62828;stroke-width:2}
.incomplete-mark rect{fill:#fde7e7;stroke:#c62828;stroke-width:1.5}
.dim{opacity:.2}
.hit .shaft{stroke:#e00000;stroke-width:3}.hit .head{fill:#e00000}
.hit .box,.hit .cond{stroke:#e00000;stroke-width:3}
.hit text{fill:#c00000;font-weight:bold}
.badge rect{fill:#2e7d32;stroke:none}
.badge text,.ev .badge text{fill:#fff;font-size:10px;font-weight:bold}
line.span{stroke:#6d6d6d;stroke-width:4;opacity:.3;stroke-linecap:round}
line.wait{stroke:#7a4fa3;stroke-width:4;opacity:.3;stroke-linecap:round}
.k-barrier_enter .box{fill:#f6f0fb;stroke:#7a4fa3;stroke-dasharray:2 2}
.ev.ended .box,.legend .ended .box{fill:#e3f4e3;stroke:#2e7d32}
"#;

/// The y of row `r`.
fn row_y(r: u32) -> f64 {
    FIRST_ROW + ROW_H * f64::from(r)
}

/// Where a message's two ends are and how much label room it has.
#[derive(Clone, Copy, Debug)]
struct Arrow {
    /// x of the event's own lane.
    x: f64,
    /// x of the other end (another lane, or the edge of this lane's column).
    x_other: f64,
    /// Whether the other end is a lane that is not drawn (or missing).
    stub: bool,
}

pub(crate) struct Svg {
    lane_w: f64,
    /// Room on the left for the times of the rows (time layout).
    gutter: f64,
    /// Room left and right of the outer lanes for the labels of arrows to
    /// lanes not drawn.
    side: f64,
}

impl Svg {
    /// Picks the lane width: wide enough for nine labels in ten of the
    /// messages between neighbour lanes and of the boxes, within bounds.
    pub(crate) fn new(view: &View) -> Svg {
        let mut want: Vec<usize> = Vec::new();
        let mut stubs = false;
        for i in view.from..view.to {
            if !view.shown(i) {
                continue;
            }
            let e = &view.trace.event(i);
            let Some(l) = view.lane(e.actor) else {
                continue;
            };
            stubs |=
                e.dir != Dir::Local && !matches!(view.other(i), Other::Drawn(_) | Other::Own(_));
            let near = match (e.dir, view.other(i)) {
                (Dir::Local, _) | (_, Other::Own(_)) => true,
                (Dir::Send, Other::Drawn(j)) => view
                    .lane(view.trace.event(j).actor)
                    .map(|m| m.abs_diff(l) == 1)
                    .unwrap_or(false),
                _ => false,
            };
            if near {
                want.push(text::cols(&describe::label_of(view, i, 60, 1)));
            }
        }
        want.sort_unstable();
        let p90 = want.get(want.len() * 9 / 10).copied().unwrap_or(0);
        let gutter = if view.time_rows { GUTTER } else { 0.0 };
        // As wide as the labels want, but no wider than a screen when the
        // lanes can be narrowed to fit one (labels are cut instead).
        let lanes = view.lanes.len().max(1) as f64 + if stubs { 1.2 } else { 0.0 };
        let screen = ((SCREEN_W - 2.0 * MARGIN - gutter) / lanes).floor();
        let lane_w = (p90 as f64 * CHAR_W + 30.0)
            .min(screen)
            .clamp(LANE_MIN, LANE_MAX)
            .round();
        let side = if stubs { (lane_w * 0.6).round() } else { 0.0 };
        Svg {
            lane_w,
            gutter,
            side,
        }
    }

    /// The x of lane `l`.
    fn x(&self, l: usize) -> f64 {
        MARGIN + self.gutter + self.side + self.lane_w * (l as f64 + 0.5)
    }

    /// Length of an arrow to a lane that is not drawn.
    fn stub(&self) -> f64 {
        self.lane_w / 2.0 - 8.0
    }

    /// Widest text in a box on a lane, in columns.
    fn box_cols(&self) -> usize {
        ((self.lane_w - 28.0) / CHAR_W) as usize
    }

    fn arrow(&self, view: &View, i: u64) -> Option<Arrow> {
        let e = &view.trace.event(i);
        let x = self.x(view.lane(e.actor)?);
        Some(match view.other(i) {
            Other::Own(_) => return None,
            Other::Drawn(j) => Arrow {
                x,
                x_other: self.x(view.lane(view.trace.event(j).actor)?),
                stub: false,
            },
            Other::Hidden(_, a) | Other::Outside(_, a) => Arrow {
                x,
                x_other: if view.points_left(e.actor, a) {
                    x - self.stub()
                } else {
                    x + self.stub()
                },
                stub: true,
            },
            Other::Missing => Arrow {
                x,
                x_other: x + self.stub(),
                stub: true,
            },
        })
    }

    /// Label room of a send (or stub), in columns.
    fn label_cols(&self, a: &Arrow) -> usize {
        let room = if a.stub {
            self.lane_w - 24.0
        } else {
            (a.x_other - a.x).abs() - 26.0
        };
        ((room / CHAR_W).max(4.0) as usize).min(MAX_LABEL_COLS)
    }

    /// The label's span: it starts next to the sender's lane and runs
    /// towards the other end.
    fn label_span(a: &Arrow, cols: usize) -> Span {
        let w = cols as f64 * CHAR_W;
        if a.x_other < a.x {
            (a.x - 8.0 - w, a.x - 4.0)
        } else {
            (a.x + 4.0, a.x + 8.0 + w)
        }
    }

    /// A box's label, in the room its lane leaves it (less a badge's).
    fn box_label(&self, view: &View, i: u64) -> String {
        let badge = (Svg::badge_width(view, i) / CHAR_W).ceil() as usize;
        describe::label_of(view, i, self.box_cols().saturating_sub(badge).max(8), 1)
    }

    fn message_label(&self, view: &View, i: u64, a: &Arrow) -> String {
        let e = &view.trace.event(i);
        let mut s = describe::label_of(view, i, self.label_cols(a), 1);
        if a.stub {
            let arrow = if e.dir == Dir::Send { "to" } else { "from" };
            let head = match view.other(i) {
                Other::Hidden(_, x) | Other::Outside(_, x) => {
                    format!("{arrow} {}", text::short(view.trace.actor_name(x), 16))
                }
                Other::Missing | Other::Drawn(_) | Other::Own(_) if e.dir == Dir::Send => {
                    "never received".into()
                }
                Other::Missing | Other::Drawn(_) | Other::Own(_) => "send not in trace".into(),
            };
            s = text::short(&format!("{head}: {s}"), self.label_cols(a));
        }
        s
    }

    fn box_width(label: &str) -> f64 {
        text::cols(label) as f64 * CHAR_W + 14.0
    }

    fn cond_width(label: &str) -> f64 {
        text::cols(label) as f64 * CHAR_W + 24.0
    }

    /// Whether event `i` is drawn as a box or a condition on its lane (a
    /// local event, a message to its own lane, a barrier condition).
    fn is_box(view: &View, i: u64) -> bool {
        view.trace.event(i).dir == Dir::Local
            || matches!(view.other(i), Other::Own(_))
            || view.is_condition(i)
            || view.enter_mark(i)
    }

    /// Width of the verdict badge of mark `i`, with its gap, if any.
    fn badge_width(view: &View, i: u64) -> f64 {
        describe::badge(view, i).map_or(0.0, |b| badge_w(&b) + 3.0)
    }
}

impl Geometry for Svg {
    fn span(&self, view: &View, i: u64) -> Option<Span> {
        let e = &view.trace.event(i);
        let x = self.x(view.lane(e.actor)?);
        if view.is_condition(i) {
            let w = Svg::cond_width(&self.box_label(view, i));
            return Some((x - w / 2.0 - Svg::badge_width(view, i), x + w / 2.0));
        }
        if Svg::is_box(view, i) {
            let w = Svg::box_width(&self.box_label(view, i));
            return Some((x - w / 2.0 - Svg::badge_width(view, i), x + w / 2.0));
        }
        match e.dir {
            Dir::Local => None,
            Dir::Send => {
                // The lane's own point is taken too: two sends of one
                // (folded) lane never share a row.
                let a = self.arrow(view, i)?;
                let l = self.message_label(view, i, &a);
                let (lo, hi) = Svg::label_span(&a, text::cols(&l));
                let (lo, hi) = (lo.min(x - 3.0), hi.max(x + 3.0));
                if a.stub {
                    Some((lo.min(a.x_other), hi.max(a.x_other)))
                } else {
                    Some((lo, hi))
                }
            }
            Dir::Recv => {
                let a = self.arrow(view, i)?;
                if a.stub {
                    let l = self.message_label(view, i, &a);
                    let (lo, hi) = Svg::label_span(&a, text::cols(&l));
                    Some((lo.min(a.x_other), hi.max(a.x_other)))
                } else {
                    Some((x - 10.0, x + 10.0))
                }
            }
        }
    }

    fn group_span(&self, view: &View, members: &[u64]) -> Option<Span> {
        let spans: Vec<Span> = members.iter().filter_map(|&m| self.span(view, m)).collect();
        let lo = spans.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
        let hi = spans.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
        (lo <= hi).then_some((lo, hi))
    }
}

/// Writes a number with at most one decimal.
fn num(out: &mut String, v: f64) {
    let r = (v * 10.0).round() / 10.0;
    if r.fract() == 0.0 {
        let _ = write!(out, "{}", r as i64);
    } else {
        let _ = write!(out, "{r:.1}");
    }
}

/// Tallest page written, in px: rsvg-convert refuses images over 32767 px
/// and browsers give up on them too.
pub(crate) const MAX_PAGE_H: f64 = 32000.0;
/// Widest chart, in px (same reason).
pub(crate) const MAX_W: f64 = 32000.0;
/// Narrowest lane distance before a chart too wide is refused.
const LANE_SQUEEZED: f64 = 120.0;
/// Room on the left for the time of each row (time layout).
const GUTTER: f64 = 58.0;

/// Writes the SVG chart of `view`, in pages of at most [`MAX_PAGE_H`] px,
/// each to the writer `open` gives for it; returns the number of pages.
pub(crate) fn write(view: &View, open: &mut crate::PageSink<'_>) -> Result<usize> {
    let mut g = Svg::new(view);
    let lanes = view.lanes.len().max(1);
    let fixed = 2.0 * MARGIN + g.gutter;
    if fixed + 2.0 * g.side + g.lane_w * lanes as f64 > MAX_W {
        // Squeeze the lanes, down to a point.
        let w = ((MAX_W - fixed) / (lanes as f64 + 1.2)).floor();
        if w < LANE_SQUEEZED {
            return Err(Error::TooBig(format!(
                "{lanes} lanes do not fit in an SVG {MAX_W} px wide (the most rsvg-convert and browsers handle): \
                 show fewer with --actors A,B,... (sessions are folded into their tester's lane unless --sessions)"
            )));
        }
        g.lane_w = w;
        if g.side > 0.0 {
            g.side = (w * 0.6).round();
        }
    }
    let layout = Layout::new(view, &g);
    let width = fixed + 2.0 * g.side + g.lane_w * lanes as f64;
    let incomplete = view.trace.complete == Some(false);
    let foot_extra = 24.0 + if incomplete { 34.0 } else { 0.0 };
    let legend_h = legend_height(width, view.compact);
    // Height below the last row's middle: lifeline end, names, legend.
    let below = -ROW_H / 2.0 + foot_extra + HEAD_H + 22.0 + legend_h + 10.0;
    let rows = layout.rows.max(1);
    let per_page = if row_y(rows) + below <= MAX_PAGE_H {
        rows
    } else {
        (((MAX_PAGE_H - below - FIRST_ROW) / ROW_H).floor() as u32).max(1)
    };
    let pages = rows.div_ceil(per_page) as usize;
    let mut row_time: Vec<Option<u64>> = vec![None; rows as usize];
    for i in view.from..view.to {
        if let Some(r) = layout.row(i) {
            let t = view.telling_time(i);
            let slot = &mut row_time[r as usize];
            *slot = Some(slot.map_or(t, |x| x.min(t)));
        }
    }
    for p in 0..pages {
        let r0 = p as u32 * per_page;
        let r1 = (r0 + per_page).min(rows);
        let mut out = open(p, pages)?;
        let page = Page {
            index: p,
            count: pages,
            r0,
            r1,
            width,
            below,
            legend_h,
            incomplete,
        };
        write_page(view, &g, &layout, &page, &row_time, &mut *out)?;
        out.flush()?;
    }
    Ok(pages)
}

/// One page of a chart: rows `r0..r1`.
struct Page {
    index: usize,
    count: usize,
    r0: u32,
    r1: u32,
    width: f64,
    below: f64,
    legend_h: f64,
    incomplete: bool,
}

fn write_page(
    view: &View,
    g: &Svg,
    layout: &Layout,
    page: &Page,
    row_time: &[Option<u64>],
    out: &mut dyn Write,
) -> Result<()> {
    let trace = view.trace;
    let width = page.width;
    let last = page.index + 1 == page.count;
    // Global y of the page's first row minus this page's: rows keep their
    // global y inside the body, which is shifted up by `shift`.
    let shift = ROW_H * f64::from(page.r0);
    let last_y = row_y(page.r1 - page.r0) - ROW_H / 2.0;
    let foot_y = last_y + 24.0 + if page.incomplete && last { 34.0 } else { 0.0 };
    let legend_y = foot_y + HEAD_H + 22.0;
    let height = legend_y + page.legend_h + 10.0;
    let _ = page.below;
    let mut b = String::with_capacity(1 << 16);

    let mut classes = String::from("dtest-msc");
    if view.highlighting() {
        classes.push_str(" highlighting");
    }
    if page.incomplete {
        classes.push_str(" incomplete");
    }
    if view.time_rows {
        classes.push_str(" time-layout");
    }
    b.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    b.push_str("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"");
    num(&mut b, width);
    b.push_str("\" height=\"");
    num(&mut b, height);
    b.push_str("\" viewBox=\"0 0 ");
    num(&mut b, width);
    b.push(' ');
    num(&mut b, height);
    let _ = write!(
        b,
        "\" class=\"{classes}\" data-events=\"{}\" data-from=\"{}\" data-to=\"{}\" data-complete=\"{}\"",
        trace.total.map(|t| t.to_string()).unwrap_or_default(),
        view.from,
        view.to.saturating_sub(1),
        trace.complete.map(|c| c.to_string()).unwrap_or_default(),
    );
    let _ = writeln!(
        b,
        " data-page=\"{}\" data-pages=\"{}\" data-rows=\"{}-{}\">",
        page.index + 1,
        page.count,
        page.r0,
        page.r1
    );
    b.push_str("<title>");
    text::xml(&mut b, &text::printable(&trace.header.scenario));
    b.push_str(" (dtest msc)</title>\n<style>");
    b.push_str(STYLE);
    b.push_str("</style>\n");
    b.push_str("<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n");

    // Title and subtitle.
    b.push_str("<text class=\"title\" x=\"");
    num(&mut b, MARGIN);
    b.push_str("\" y=\"22\">");
    let mark_w = if page.incomplete { 270.0 } else { 0.0 };
    let title_cols = ((width - 2.0 * MARGIN - mark_w) / 9.5).max(10.0) as usize;
    text::xml(&mut b, &text::short(&trace.header.scenario, title_cols));
    b.push_str("</text>\n<text class=\"sub\" x=\"");
    num(&mut b, MARGIN);
    b.push_str("\" y=\"38\">");
    let shown = (view.from..view.to).filter(|&i| view.shown(i)).count();
    // The outcome first: a narrow chart cuts the end of the line.
    let mut sub = match &trace.end {
        Some((ok, summary)) => {
            format!("{}: {summary} \u{2014} ", if *ok { "ok" } else { "NOT OK" })
        }
        None => String::new(),
    };
    let _ = match trace.total {
        Some(t) => write!(sub, "{shown} of {t} events"),
        None => write!(sub, "{shown} events"),
    };
    if view.from > 0 || trace.total != Some(view.to) {
        let _ = write!(
            sub,
            ", window #{}..#{} ({}..{})",
            view.from,
            view.to.saturating_sub(1),
            trace
                .get(view.from)
                .map(|e| text::secs(e.time_ns))
                .unwrap_or_default(),
            trace
                .get(view.to.saturating_sub(1))
                .map(|e| text::secs(e.time_ns))
                .unwrap_or_default()
        );
    }
    let hidden = trace.header.actors.len() - view.lane_actors.iter().map(Vec::len).sum::<usize>();
    let masters = trace
        .header
        .actors
        .iter()
        .filter(|a| a.kind == ActorKind::Master)
        .count();
    let hidden = hidden.saturating_sub(if view.no_master { masters } else { 0 });
    match hidden {
        0 => {}
        1 => sub.push_str(", 1 actor not shown"),
        n => {
            let _ = write!(sub, ", {n} actors not shown");
        }
    }
    let _ = write!(
        sub,
        ", {} layout",
        if view.time_rows { "time" } else { "causal" }
    );
    if view.compact {
        sub.push_str(", compact (--detail full: every event)");
    }
    if page.count > 1 {
        let _ = write!(sub, ", page {} of {}", page.index + 1, page.count);
    }
    text::xml(&mut b, &text::short(&sub, (width / 6.5) as usize));
    b.push_str("</text>\n");
    if page.incomplete {
        // A mark at the top, where a reader starts.
        let w = 250.0;
        let x = (width - MARGIN - w).max(MARGIN);
        b.push_str("<g class=\"incomplete-mark\"><rect x=\"");
        num(&mut b, x);
        b.push_str("\" y=\"8\" width=\"250\" height=\"22\" rx=\"4\"/><text x=\"");
        num(&mut b, x + 10.0);
        b.push_str("\" y=\"23\">INCOMPLETE TRACE: no end event</text></g>\n");
    }

    lane_heads(&mut b, g, view, HEAD_Y);
    // Lifelines: one element per lane, whatever the number of events.
    b.push_str("<g class=\"lifelines\">\n");
    for l in 0..view.lanes.len() {
        let x = g.x(l);
        b.push_str("<line class=\"life\" x1=\"");
        num(&mut b, x);
        b.push_str("\" y1=\"");
        num(&mut b, HEAD_Y + HEAD_H);
        b.push_str("\" x2=\"");
        num(&mut b, x);
        b.push_str("\" y2=\"");
        num(&mut b, foot_y);
        b.push_str("\"/>\n");
    }
    b.push_str("</g>\n");

    // The body: rows r0..r1 in their global coordinates, seen through a
    // viewport that clips what belongs to other pages.
    let top = HEAD_Y + HEAD_H;
    let body_h = foot_y - top;
    b.push_str("<svg class=\"body\" x=\"0\" y=\"");
    num(&mut b, top);
    b.push_str("\" width=\"");
    num(&mut b, width);
    b.push_str("\" height=\"");
    num(&mut b, body_h);
    b.push_str("\" viewBox=\"0 ");
    num(&mut b, top + shift);
    b.push(' ');
    num(&mut b, width);
    b.push(' ');
    num(&mut b, body_h);
    b.push_str("\">\n");

    if view.time_rows {
        // The time of each row (of its earliest event), when it changes.
        b.push_str("<g class=\"times\">");
        let mut last_label = String::new();
        for r in page.r0..page.r1 {
            let Some(t) = row_time.get(r as usize).copied().flatten() else {
                continue;
            };
            let s = text::secs(t);
            if s != last_label {
                text_at(&mut b, 4.0, row_y(r) + 4.0, "start", &s, false);
                last_label = s;
            }
        }
        b.push_str("</g>\n");
    }

    // Barrier releases: one line joining the participants' conditions.
    for grp in &layout.groups {
        if grp.row < page.r0 || grp.row >= page.r1 {
            continue;
        }
        let xs: Vec<f64> = grp
            .members
            .iter()
            .filter_map(|&m| view.lane(trace.event(m).actor).map(|l| g.x(l)))
            .collect();
        let (Some(lo), Some(hi)) = (xs.first(), xs.last()) else {
            continue;
        };
        let y = row_y(grp.row);
        b.push_str("<g class=\"barrier\" data-name=\"");
        text::xml(&mut b, &text::printable(&grp.name));
        b.push_str("\" data-row=\"");
        let _ = write!(b, "{}\" data-events=\"", grp.row);
        for (k, m) in grp.members.iter().enumerate() {
            let _ = write!(b, "{}{m}", if k > 0 { "," } else { "" });
        }
        b.push_str("\"><line class=\"sync\" x1=\"");
        num(&mut b, *lo);
        b.push_str("\" y1=\"");
        num(&mut b, y);
        b.push_str("\" x2=\"");
        num(&mut b, *hi);
        b.push_str("\" y2=\"");
        num(&mut b, y);
        b.push_str("\"/></g>\n");
    }

    if view.compact {
        wait_bars(&mut b, g, view, layout, page, row_time);
    }
    out.write_all(b.as_bytes())?;
    b.clear();
    // Messages first, then boxes and conditions, which cover the arrows
    // that cross their lane.
    for (class, boxes) in [("messages", false), ("boxes", true)] {
        let _ = writeln!(b, "<g class=\"events {class}\">");
        for i in view.from..view.to {
            let Some(row) = layout.row(i) else { continue };
            if !boxes && row >= page.r0 {
                // A message sent on an earlier page: its shaft comes in
                // from above.
                if let Some(s) = incoming_shaft(view, g, layout, i, page.r0) {
                    b.push_str(&s);
                }
            }
            if row < page.r0 || row >= page.r1 {
                continue;
            }
            if Svg::is_box(view, i) == boxes {
                event(&mut b, g, view, layout, i, row);
            }
            if b.len() > 1 << 16 {
                out.write_all(b.as_bytes())?;
                b.clear();
            }
        }
        b.push_str("</g>\n");
    }
    b.push_str("</svg>\n");

    if page.incomplete && last {
        // The lifelines are torn where the trace stops.
        let y = last_y + 16.0;
        b.push_str("<g class=\"incomplete-mark\"><polyline class=\"torn\" points=\"");
        let mut x = MARGIN;
        let mut up = true;
        while x <= width - MARGIN {
            num(&mut b, x);
            b.push(',');
            num(&mut b, if up { y - 4.0 } else { y + 4.0 });
            b.push(' ');
            x += 8.0;
            up = !up;
        }
        b.push_str("\"/><text x=\"");
        num(&mut b, MARGIN);
        b.push_str("\" y=\"");
        num(&mut b, y + 20.0);
        b.push_str("\">incomplete trace: the run stopped here without its end event</text></g>\n");
    }
    lane_heads(&mut b, g, view, foot_y);
    legend(&mut b, legend_y, width, view.compact);
    b.push_str("</svg>\n");
    out.write_all(b.as_bytes())?;
    Ok(())
}

/// Width of a verdict badge saying `text`.
fn badge_w(text: &str) -> f64 {
    text::cols(text) as f64 * 6.1 + 8.0
}

/// A badge of `ok` verdict numbers, its right end at `right`.
fn badge(b: &mut String, right: f64, y: f64, nums: &str) {
    let w = badge_w(nums);
    b.push_str("<g class=\"badge\"><rect x=\"");
    num(b, right - w);
    b.push_str("\" y=\"");
    num(b, y - 7.0);
    b.push_str("\" width=\"");
    num(b, w);
    b.push_str("\" height=\"14\" rx=\"7\"/>");
    text_at(b, right - w / 2.0, y + 3.5, "middle", nums, false);
    b.push_str("</g>");
}

/// Compact charts: a bar on each lane from where its tester entered a
/// barrier down to where the barrier released (or broke) it.
fn wait_bars(
    b: &mut String,
    g: &Svg,
    view: &View,
    layout: &Layout,
    page: &Page,
    row_time: &[Option<u64>],
) {
    let t = view.trace;
    let bar = |b: &mut String, class: &str, x: f64, r0: u32, r1: u32| {
        if r0 >= r1 || r1 < page.r0 || r0 >= page.r1 {
            return;
        }
        let _ = write!(b, "<line class=\"{class}\" x1=\"");
        num(b, x);
        b.push_str("\" y1=\"");
        num(b, row_y(r0) + 9.0);
        b.push_str("\" x2=\"");
        num(b, x);
        b.push_str("\" y2=\"");
        num(b, row_y(r1) - 10.0);
        b.push_str("\"/>\n");
    };
    b.push_str("<g class=\"waits\">\n");
    for i in view.from..view.to {
        let Some(r1) = layout.row(i) else { continue };
        if let (Some((_, last)), true) = (view.repeats(i), view.time_rows) {
            // A repeated mark: down to the last row of its time.
            let until = (r1..row_time.len() as u32)
                .take_while(|&r| row_time[r as usize].is_none_or(|x| x <= last))
                .last()
                .unwrap_or(r1);
            if let Some(lane) = view.lane(t.event(i).actor) {
                bar(b, "span", g.x(lane), r1, until + 1);
            }
        }
        if !view.is_condition(i) {
            continue;
        }
        let e = t.event(i);
        let Some(lane) = view.lane(e.actor) else {
            continue;
        };
        // The tester's entry: its last `barrier_enter` before the release.
        let chain = t.actor_events(e.actor);
        let Ok(k) = chain.binary_search(&i) else {
            continue;
        };
        let enter = chain[..k]
            .iter()
            .rev()
            .take_while(|&&x| !view.is_condition(x))
            .find(|&&x| t.event(x).kind() == Kind::BarrierEnter);
        let Some(r0) = enter
            .and_then(|&x| view.drawn_by(x))
            .and_then(|d| layout.row(d))
        else {
            continue;
        };
        bar(b, "wait", g.x(lane), r0, r1);
    }
    b.push_str("</g>\n");
}

/// The shaft of a message whose receive (event `i`, on a later page than
/// `r0`'s) was sent on this page or an earlier one, when its send is before
/// this page: drawn whole, the viewport clips it.
fn incoming_shaft(view: &View, g: &Svg, layout: &Layout, i: u64, r0: u32) -> Option<String> {
    let e = view.trace.event(i);
    if e.dir != Dir::Recv {
        return None;
    }
    let Other::Drawn(j) = view.other(i) else {
        return None;
    };
    let (rs, rr) = (layout.row(j)?, layout.row(i)?);
    // Only shafts that cross this page without an end on it.
    if rs >= r0 || rr < r0 {
        return None;
    }
    let xs = g.x(view.lane(view.trace.event(j).actor)?);
    let xr = g.x(view.lane(e.actor)?);
    let mut b = String::new();
    let _ = write!(
        b,
        "<g class=\"ev cont k-{}\"><path class=\"shaft\" d=\"M",
        e.kind().name()
    );
    num(&mut b, xs);
    b.push(' ');
    num(&mut b, row_y(rs));
    b.push('L');
    num(&mut b, xr);
    b.push(' ');
    num(&mut b, row_y(rr));
    b.push_str("\"/></g>\n");
    Some(b)
}

/// The legend's items: a class for the sample and the words.
const LEGEND: [(&str, &str); 11] = [
    ("k-start", "command, input, signal"),
    ("k-output", "output"),
    ("k-output own", "output on its tester"),
    ("k-exit fail", "exit status not 0"),
    ("k-put", "file transfer"),
    ("k-barrier_enter", "barrier message"),
    ("k-barrier_leave recv", "barrier release"),
    ("ok", "ok"),
    ("notok", "not ok"),
    ("skip", "skip"),
    ("todo", "todo"),
];
/// Compact charts: instead of the barrier message, the wait bar and the
/// verdict badge.
const LEGEND_COMPACT: [(&str, &str); 4] = [
    ("ended", "command ended, status 0"),
    ("wait", "waiting at a barrier"),
    ("span", "the same, repeated (\u{d7}N)"),
    ("with-badge", "ok verdicts (numbers)"),
];
const LEGEND_W: f64 = 190.0;

/// The legend's items.
fn legend_items(compact: bool) -> Vec<(&'static str, &'static str)> {
    LEGEND
        .iter()
        .copied()
        .filter(|(c, _)| !(compact && *c == "k-barrier_enter"))
        .chain(LEGEND_COMPACT.iter().copied().filter(|_| compact))
        .collect()
}

fn legend_per_row(width: f64) -> usize {
    (((width - 2.0 * MARGIN) / LEGEND_W) as usize).max(1)
}

fn legend_height(width: f64, compact: bool) -> f64 {
    legend_items(compact).len().div_ceil(legend_per_row(width)) as f64 * 20.0
}

/// A legend of the arrow and box styles, under the lane names.
fn legend(b: &mut String, y: f64, width: f64, compact: bool) {
    let per_row = legend_per_row(width);
    b.push_str("<g class=\"legend\">\n");
    for (k, (class, words)) in legend_items(compact).into_iter().enumerate() {
        let x = MARGIN + LEGEND_W * (k % per_row) as f64;
        let y = y + 20.0 * (k / per_row) as f64;
        let _ = write!(b, "<g class=\"{class}\">");
        match class {
            "wait" | "span" => {
                let _ = write!(b, "<line class=\"{class}\" x1=\"");
                num(b, x + 4.0);
                b.push_str("\" y1=\"");
                num(b, y);
                b.push_str("\" x2=\"");
                num(b, x + 32.0);
                b.push_str("\" y2=\"");
                num(b, y);
                b.push_str("\"/>");
            }
            "with-badge" => badge(b, x + 36.0, y, "3,4"),
            "k-barrier_leave recv" => {
                b.push_str("<polygon class=\"cond\" points=\"");
                for (px, py) in [
                    (0.0, 0.0),
                    (6.0, -7.0),
                    (30.0, -7.0),
                    (36.0, 0.0),
                    (30.0, 7.0),
                    (6.0, 7.0),
                ] {
                    num(b, x + px);
                    b.push(',');
                    num(b, y + py);
                    b.push(' ');
                }
                b.pop();
                b.push_str("\"/>");
            }
            "ok" | "notok" | "skip" | "todo" | "k-output own" | "ended" => {
                b.push_str("<rect class=\"box\" x=\"");
                num(b, x);
                b.push_str("\" y=\"");
                num(b, y - 7.0);
                b.push_str("\" width=\"36\" height=\"14\" rx=\"6\"/>");
            }
            _ => {
                b.push_str("<path class=\"shaft\" d=\"M");
                num(b, x);
                b.push(' ');
                num(b, y);
                b.push('L');
                num(b, x + 36.0);
                b.push(' ');
                num(b, y);
                b.push_str("\"/>");
                head(b, x, y, x + 36.0, y);
            }
        }
        text_at(b, x + 44.0, y + 4.0, "start", words, false);
        b.push_str("</g>\n");
    }
    b.push_str("</g>\n");
}

fn lane_heads(b: &mut String, g: &Svg, view: &View, y: f64) {
    let cols = ((g.lane_w - 20.0) / 7.5) as usize;
    b.push_str("<g class=\"lanes\">\n");
    for (l, &a) in view.lanes.iter().enumerate() {
        let actor = &view.trace.header.actors[a as usize];
        let kind = match actor.kind {
            ActorKind::Master => "master",
            ActorKind::Tester => "tester",
            ActorKind::Session => "session",
        };
        let x = g.x(l);
        let _ = write!(b, "<g class=\"lane {kind} a{a}\" data-actor=\"");
        text::xml(b, &text::printable(&actor.name));
        let _ = write!(b, "\" data-actor-id=\"{a}\"><title>");
        let mut title = format!("{} ({kind} on {})", actor.name, actor.host);
        for &s in view.lane_actors[l].iter().skip(1) {
            let _ = write!(title, "\nwith {}", view.trace.actor_name(s));
        }
        text::xml(b, &text::tooltip(&title, 4096));
        b.push_str("</title><rect x=\"");
        num(b, x - g.lane_w / 2.0 + 10.0);
        b.push_str("\" y=\"");
        num(b, y);
        b.push_str("\" width=\"");
        num(b, g.lane_w - 20.0);
        let _ = write!(b, "\" height=\"{HEAD_H}\" rx=\"5\"/><text x=\"");
        num(b, x);
        b.push_str("\" y=\"");
        num(b, y + 17.0);
        b.push_str("\">");
        text::xml(b, &text::short(&actor.name, cols));
        b.push_str("</text></g>\n");
    }
    b.push_str("</g>\n");
}

/// Writes the element of one shown event.
fn event(b: &mut String, g: &Svg, view: &View, layout: &Layout, i: u64, row: u32) {
    let trace = view.trace;
    let e = &trace.event(i);
    let Some(lane) = view.lane(e.actor) else {
        return;
    };
    let data = describe::data(view, i);
    let kind = e.kind();
    let x = g.x(lane);
    let y = row_y(row);
    let arrow = if Svg::is_box(view, i) {
        None
    } else {
        g.arrow(view, i)
    };

    let _ = write!(
        b,
        "<g class=\"ev {} k-{} a{}",
        e.dir.name(),
        kind.name(),
        e.actor
    );
    if arrow.map(|a| a.stub).unwrap_or(false) {
        b.push_str(" stub");
    }
    if matches!(view.other(i), Other::Own(_)) {
        b.push_str(" own");
    }
    if let Some(s) = describe::status(data) {
        let _ = write!(b, " {s}");
    }
    if describe::mark_fails(view, i) {
        b.push_str(" fail");
    } else if describe::mark_ended(view, i) {
        b.push_str(" ended");
    }
    match view.mark(i) {
        Mark::Plain => {}
        Mark::Hit => b.push_str(" hit"),
        Mark::Past => b.push_str(" past"),
        Mark::Dim => b.push_str(" dim"),
    }
    let _ = write!(b, "\" data-index=\"{i}\" data-actor=\"");
    text::xml(b, &text::printable(trace.actor_name(e.actor)));
    let _ = write!(
        b,
        "\" data-kind=\"{}\" data-dir=\"{}\" data-time=\"{}\" data-clock=\"",
        kind.name(),
        e.dir.name(),
        e.time_ns
    );
    for (k, c) in e.clock.as_slice().iter().enumerate() {
        let _ = write!(b, "{}{c}", if k > 0 { "," } else { "" });
    }
    let _ = write!(b, "\" data-row=\"{row}\" data-y=\"");
    num(b, y);
    b.push('"');
    if let Some((j, _)) = trace.partner(i) {
        let _ = write!(b, " data-partner=\"{j}\"");
    }
    if let Some(run) = view.run(i) {
        let _ = write!(b, " data-run=\"{}\"", run.len() / 2);
    }
    let with = view.attached(i);
    if !with.is_empty() {
        b.push_str(" data-with=\"");
        for (k, m) in with.iter().enumerate() {
            let _ = write!(b, "{}{m}", if k > 0 { "," } else { "" });
        }
        b.push('"');
    }
    b.push_str("><title>");
    text::xml(b, &describe::tooltip(view, i));
    b.push_str("</title>");

    if view.is_condition(i) {
        // A barrier condition: a hexagon on the participant's lane.
        let label = g.box_label(view, i);
        let w = Svg::cond_width(&label);
        let (h, k) = (10.0, 8.0);
        b.push_str("<polygon class=\"cond\" points=\"");
        for (px, py) in [
            (x - w / 2.0, y),
            (x - w / 2.0 + k, y - h),
            (x + w / 2.0 - k, y - h),
            (x + w / 2.0, y),
            (x + w / 2.0 - k, y + h),
            (x - w / 2.0 + k, y + h),
        ] {
            num(b, px);
            b.push(',');
            num(b, py);
            b.push(' ');
        }
        b.pop();
        b.push_str("\"/>");
        text_at(b, x, y + 4.0, "middle", &label, false);
        if let Some(nums) = describe::badge(view, i) {
            badge(b, x - w / 2.0 - 3.0, y, &nums);
        }
        b.push_str("</g>\n");
        return;
    }

    match (e.dir, arrow) {
        (Dir::Local, _) | (_, None) => {
            let label = g.box_label(view, i);
            let w = Svg::box_width(&label);
            b.push_str("<rect class=\"box\" x=\"");
            num(b, x - w / 2.0);
            b.push_str("\" y=\"");
            num(b, y - 9.0);
            b.push_str("\" width=\"");
            num(b, w);
            let rx = if matches!(kind, Kind::Match | Kind::Verdict | Kind::End) {
                8
            } else {
                2
            };
            let _ = write!(b, "\" height=\"18\" rx=\"{rx}\"/>");
            text_at(b, x, y + 4.0, "middle", &label, false);
            if let Some(nums) = describe::badge(view, i) {
                badge(b, x - w / 2.0 - 3.0, y, &nums);
            }
        }
        (Dir::Send, Some(a)) => {
            // The arrow: from here to the receive, or to this column's edge.
            let (x2, y2) = match view.other(i) {
                Other::Drawn(j) => (a.x_other, layout.row(j).map(row_y).unwrap_or(y + ROW_H)),
                _ => (a.x_other, y),
            };
            b.push_str("<path class=\"shaft\" d=\"M");
            num(b, x);
            b.push(' ');
            num(b, y);
            b.push('L');
            num(b, x2);
            b.push(' ');
            num(b, y2);
            b.push_str("\"/>");
            if a.stub {
                head(b, x, y, x2, y2);
            }
            if view.fan(i).is_some_and(|f| f[0] != i) {
                // One label for the sends of a release, drawn by the first.
                b.push_str("</g>\n");
                return;
            }
            let label = g.message_label(view, i, &a);
            let (lo, hi) = Svg::label_span(&a, text::cols(&label));
            if a.x_other < a.x {
                text_at(b, hi - 2.0, y - 5.0, "end", &label, true);
            } else {
                text_at(b, lo + 2.0, y - 5.0, "start", &label, true);
            }
        }
        (Dir::Recv, Some(a)) => {
            if a.stub {
                b.push_str("<path class=\"shaft\" d=\"M");
                num(b, a.x_other);
                b.push(' ');
                num(b, y);
                b.push('L');
                num(b, x);
                b.push(' ');
                num(b, y);
                b.push_str("\"/>");
                head(b, a.x_other, y, x, y);
                let label = g.message_label(view, i, &a);
                let (lo, hi) = Svg::label_span(&a, text::cols(&label));
                if a.x_other < a.x {
                    text_at(b, hi - 2.0, y - 5.0, "end", &label, true);
                } else {
                    text_at(b, lo + 2.0, y - 5.0, "start", &label, true);
                }
            } else {
                let (x0, y0) = match view.other(i) {
                    Other::Drawn(j) => (a.x_other, layout.row(j).map(row_y).unwrap_or(y)),
                    _ => (a.x_other, y),
                };
                head(b, x0, y0, x, y);
            }
        }
    }
    b.push_str("</g>\n");
}

/// An arrowhead at `(x, y)` for a line coming from `(x0, y0)`.
fn head(b: &mut String, x0: f64, y0: f64, x: f64, y: f64) {
    let (dx, dy) = (x - x0, y - y0);
    let len = (dx * dx + dy * dy).sqrt();
    let (ux, uy) = if len > 0.0 {
        (dx / len, dy / len)
    } else {
        (1.0, 0.0)
    };
    let (bx, by) = (x - 9.0 * ux, y - 9.0 * uy);
    let (px, py) = (-uy * 4.0, ux * 4.0);
    b.push_str("<path class=\"head\" d=\"M");
    num(b, x);
    b.push(' ');
    num(b, y);
    b.push('L');
    num(b, bx + px);
    b.push(' ');
    num(b, by + py);
    b.push('L');
    num(b, bx - px);
    b.push(' ');
    num(b, by - py);
    b.push_str("Z\"/>");
}

fn text_at(b: &mut String, x: f64, y: f64, anchor: &str, s: &str, halo: bool) {
    b.push_str("<text");
    if halo {
        b.push_str(" class=\"l\"");
    }
    b.push_str(" x=\"");
    num(b, x);
    b.push_str("\" y=\"");
    num(b, y);
    if anchor != "start" {
        let _ = write!(b, "\" text-anchor=\"{anchor}");
    }
    b.push_str("\">");
    text::xml(b, s);
    b.push_str("</text>");
}
