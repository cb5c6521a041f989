//! The HTML report of a dtest run: one self-contained file (no network, no
//! CDN) that a person opens after a run.
//!
//! It holds, in order: the summary (failed points first with their
//! diagnostics, then the rest; the property verdicts of `--check`, each
//! violation linking to its events), an interactive chart of the trace
//! (zoom, scroll, lanes shown or hidden, kinds filtered, search, an event's
//! full text, time, vector clock and step, its causal past on demand) and a
//! time-merged log of every session's output, line by line (a line split
//! across reads is one line), each line linked to the event in which it
//! ended (see [`log`]).
//!
//! The trace is read in one streaming pass and embedded compactly, so the
//! file grows linearly with the trace:
//!
//! - per event, varint columns (actor, kind and direction, time delta,
//!   message partner, vector clock *differences* from the actor's previous
//!   event, the actor's own entry left implicit) in one base64 string;
//! - the events' texts as one JSON array (a receive's text is its send's,
//!   stored once), the kind-specific fields of the few events that have
//!   them as a sparse list;
//! - the log's lines: per line its event and a slice of that event's text,
//!   or (for a line joined from several reads) its own text.
//!
//! The page decodes that once and draws only what is visible (a canvas for
//! the chart, a handful of DOM rows for the log), so a million-event trace
//! opens in seconds and scrolls smoothly.
//!
//! ```no_run
//! let stats = dtest_report::write(
//!     std::path::Path::new("run/trace.dtrace"),
//!     &dtest_report::Options::default(),
//!     std::path::Path::new("run/report.html"),
//! ).unwrap();
//! println!("{} events, {} bytes", stats.events, stats.bytes);
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use dtest_trace::{ActorKind, Dir, EventData, Reader, Stream};

mod log;

/// The report's file name in a run directory.
pub const REPORT_FILE: &str = "report.html";

const TEMPLATE: &str = include_str!("report.html");
const DATA_MARK: &str = "<!--DTEST-DATA-->";
const TITLE_MARK: &str = "<!--DTEST-TITLE-->";

/// One TAP point of the run, as the summary shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Point {
    /// TAP number, from 1.
    pub number: u32,
    /// The tester it belongs to (`""` for a property).
    pub tester: String,
    /// `ok` or `not ok`.
    pub ok: bool,
    /// Whether it counts as a failure (a failed TODO does not).
    pub failed: bool,
    /// Its description.
    pub description: String,
    /// `SKIP reason` or `TODO reason`.
    pub directive: Option<String>,
    /// Its diagnostics (key, text).
    pub diag: Vec<(String, String)>,
    /// Events it names (a property's deciding events, the events of a
    /// failed step), linked from the summary.
    pub events: Vec<u64>,
    /// A property verdict of `--check`.
    pub property: bool,
    /// Whether the diagnostics were derived from the trace (the run's own
    /// TAP diagnostics are not in the run directory).
    pub derived: bool,
}

/// What the report shows besides the trace.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The run's TAP points with their diagnostics (what `dtest exec`
    /// knows). Without them, the points are the trace's verdict events and
    /// their diagnostics are derived from the trace.
    pub points: Option<Vec<Point>>,
    /// More points after those (property verdicts of `dtest report --check`).
    pub extra_points: Vec<Point>,
}

/// What was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Events in the trace.
    pub events: u64,
    /// Size of the report in bytes.
    pub bytes: u64,
    /// Failed points.
    pub failed: usize,
}

/// Why a report could not be written.
#[derive(Debug)]
pub enum Error {
    /// The trace could not be read (its message names the position).
    Trace(dtest_trace::Error),
    /// The report could not be written.
    Write(PathBuf, io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Trace(e) => write!(f, "{e}"),
            Error::Write(p, e) => write!(f, "cannot write {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for Error {}

impl From<dtest_trace::Error> for Error {
    fn from(e: dtest_trace::Error) -> Error {
        Error::Trace(e)
    }
}

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        s.push(T[(n >> 18) as usize & 63] as char);
        s.push(T[(n >> 12) as usize & 63] as char);
        s.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        s.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    s
}

/// Writes `[[k, v], ...]` (JSON strings) to `out`.
fn js_pairs<'a>(out: &mut String, pairs: impl Iterator<Item = &'a (String, String)>) {
    out.push('[');
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        js_str(out, k);
        out.push(',');
        js_str(out, v);
        out.push(']');
    }
    out.push(']');
}

/// A JSON string literal, safe inside an HTML `<script>` (no `<`).
fn js_str(out: &mut String, s: &str) {
    let j = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    if j.contains('<') {
        out.push_str(&j.replace('<', "\\u003c"));
    } else {
        out.push_str(&j);
    }
}

/// The kind-specific fields an event's text does not show.
fn extra(data: &EventData) -> Option<String> {
    let s = match data {
        EventData::Output {
            stream: dtest_trace::Stream::Stderr,
            ..
        } => "stream: stderr".to_string(),
        EventData::Input { secret: true, .. } => "secret input (recorded redacted)".to_string(),
        EventData::Match {
            matched, captures, ..
        } => {
            let mut s = format!("matched: {matched}");
            for (k, v) in captures {
                s.push_str(&format!("\ncapture {k} = {v}"));
            }
            s
        }
        EventData::Timeout { waited_ns, .. } => {
            format!("timed out after {:.3}s", *waited_ns as f64 / 1e9)
        }
        EventData::BarrierLeave { participants, .. } => {
            format!("participants: {}", participants.join(", "))
        }
        EventData::BarrierBroken { reason, .. } => format!("reason: {reason}"),
        EventData::Put(t) | EventData::Get(t) => format!(
            "local: {}\nremote: {}\nsize: {} bytes\nsha256: {}",
            t.local,
            t.remote,
            t.size,
            dtest_trace::model::hex(&t.sha256)
        ),
        EventData::Verdict {
            number,
            ok,
            directive,
            reason,
            ..
        } => {
            let mut s = format!("{} {number}", if *ok { "ok" } else { "not ok" });
            if let Some(d) = directive {
                s.push_str(&format!(" # {} {reason}", d.name()));
            }
            s
        }
        EventData::Custom { status, output, .. } => {
            format!("status: {status}\noutput:\n{output}")
        }
        EventData::End { ok, .. } => format!("run ok: {ok}"),
        _ => return None,
    };
    Some(s)
}

/// The longest text of one event the report embeds (bytes); a longer one
/// is shortened, the cut marked.
const EVENT_TEXT_MAX: usize = 64 * 1024;
/// Past this much text in all, each event's text is shortened to
/// [`EVENT_TEXT_MAX_OVER_BUDGET`]: a trace of huge outputs gives a report
/// a browser opens (and memory in proportion), still linear in the events.
const TEXT_BUDGET: usize = 256 << 20;
const EVENT_TEXT_MAX_OVER_BUDGET: usize = 512;

/// Where `s` is cut to at most `max` bytes (a character boundary).
fn cut_point(s: &str, max: usize) -> usize {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// `s` cut to at most `max` bytes (at a character boundary), the cut marked.
fn shortened(s: &str, max: usize) -> String {
    let end = cut_point(s, max);
    format!("{}… [{} more bytes in the trace]", &s[..end], s.len() - end)
}

/// What the trace tells about a tester's current step, for the derived
/// diagnostics of a failed point.
#[derive(Default)]
struct StepContext {
    notes: Vec<(String, String)>,
    events: Vec<u64>,
    last_lines: VecDeque<String>,
    /// The line still open on stdout and on stderr: a line that arrived
    /// in several reads is one line.
    partial: [String; 2],
}

const LAST_LINES: usize = 8;
/// The longest open line kept (bytes); past it, it counts as a line.
const PARTIAL_MAX: usize = 4096;

impl StepContext {
    fn output(&mut self, stream: Stream, text: &str) {
        let k = usize::from(stream == Stream::Stderr);
        self.partial[k].push_str(text);
        while let Some(p) = self.partial[k].find('\n') {
            let line: String = self.partial[k].drain(..=p).collect();
            self.line(line.trim_end_matches(['\n', '\r']));
        }
        if self.partial[k].len() > PARTIAL_MAX {
            let line = std::mem::take(&mut self.partial[k]);
            self.line(&line);
        }
    }

    fn line(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        if self.last_lines.len() == LAST_LINES {
            self.last_lines.pop_front();
        }
        self.last_lines.push_back(line.to_string());
    }

    /// The last lines, the open ones (not ended yet) last.
    fn last_lines(&self) -> Vec<String> {
        let open = self
            .partial
            .iter()
            .map(|p| p.trim_end_matches('\r'))
            .filter(|p| !p.trim().is_empty());
        let all: Vec<String> = self
            .last_lines
            .iter()
            .cloned()
            .chain(open.map(str::to_string))
            .collect();
        all[all.len().saturating_sub(LAST_LINES)..].to_vec()
    }
}

/// Writes the report of the trace `trace` to `out` (through a temporary
/// file renamed at the end: a reader never sees half a report).
pub fn write(trace: &Path, opts: &Options, out: &Path) -> Result<Stats, Error> {
    let mut r = Reader::open(trace)?;
    let header = r.header().clone();
    let na = header.actors.len();

    let mut actors: Vec<u32> = Vec::new();
    let mut kd: Vec<u8> = Vec::new();
    let mut times: Vec<u64> = Vec::new();
    let mut partner: Vec<i64> = Vec::new();
    let mut clocks: Vec<u8> = Vec::new();
    let mut inflight: HashMap<u64, u64> = HashMap::new();
    let mut prev_clock: Vec<Vec<u32>> = vec![vec![0; na]; na];
    let mut seq: Vec<u32> = vec![0; na];
    let mut nonstd_clocks = 0u64;
    let mut texts = String::from("[");
    let mut extras = String::from("[");
    let mut verdict_event: HashMap<u32, u64> = HashMap::new();
    let mut derived: Vec<Point> = Vec::new();
    let mut ctx: Vec<StepContext> = (0..na).map(|_| StepContext::default()).collect();
    let mut n: u64 = 0;
    let mut cut_texts: u64 = 0;
    let mut log = log::Log::new(na);

    while let Some(ev) = r.next_event()? {
        let idx = ev.index;
        let a = ev.actor as usize;
        if a >= na {
            // The reader validates actors; be safe anyway.
            continue;
        }
        let dir = match ev.dir {
            Dir::Local => 0u8,
            Dir::Send => 1,
            Dir::Recv => 2,
        };
        actors.push(ev.actor);
        kd.push(((ev.kind() as u8) << 2) | dir);
        times.push(ev.time_ns);
        let mut p = -1i64;
        match (ev.dir, ev.msg) {
            (Dir::Send, Some(m)) => {
                inflight.insert(m, idx);
            }
            (Dir::Recv, Some(m)) => {
                if let Some(s) = inflight.remove(&m) {
                    p = s as i64;
                    if let Some(x) = partner.get_mut(s as usize) {
                        *x = idx as i64;
                    }
                }
            }
            _ => {}
        }
        partner.push(p);

        // Clock differences from the actor's previous event; its own entry
        // is implicit (its count of events).
        seq[a] += 1;
        let cur = ev.clock.as_slice();
        if cur.get(a).copied().unwrap_or(0) != seq[a] {
            nonstd_clocks += 1;
        }
        let prev = &mut prev_clock[a];
        let diffs = prev
            .iter()
            .enumerate()
            .filter(|&(b, &p)| b != a && cur.get(b).copied().unwrap_or(0) != p)
            .count();
        varint(&mut clocks, diffs as u64);
        for (b, p) in prev.iter_mut().enumerate() {
            let v = cur.get(b).copied().unwrap_or(0);
            if b != a && v != *p {
                varint(&mut clocks, b as u64);
                varint(&mut clocks, u64::from(v));
            }
            *p = v;
        }

        if n > 0 {
            texts.push(',');
        }
        if p >= 0 {
            // A receive: its send's text, stored once.
            texts.push('0');
        } else {
            let text = ev.text();
            let under_budget = texts.len() + log.text_bytes() < TEXT_BUDGET;
            let cap = if under_budget {
                EVENT_TEXT_MAX
            } else {
                EVENT_TEXT_MAX_OVER_BUDGET
            };
            let shown = if text.len() > cap {
                cut_texts += 1;
                js_str(&mut texts, &shortened(&text, cap));
                cut_point(&text, cap)
            } else {
                js_str(&mut texts, &text);
                text.len()
            };
            if let EventData::Output { bytes, stream } = &ev.data {
                if ev.dir != Dir::Recv {
                    let max = if under_budget {
                        log::LOG_TEXT_MAX
                    } else {
                        EVENT_TEXT_MAX_OVER_BUDGET
                    };
                    let chunk = log::Chunk {
                        ev: idx,
                        actor: ev.actor,
                        stream: *stream,
                        bytes,
                        text: &text,
                        shown,
                    };
                    log.output(&chunk, max);
                }
            }
            if let Some(x) = extra(&ev.data) {
                if extras.len() > 1 {
                    extras.push(',');
                }
                extras.push_str(&format!("[{idx},"));
                js_str(&mut extras, &x);
                extras.push(']');
            }
        }

        // What a failed step's diagnostics can be derived from.
        let c = &mut ctx[a];
        match &ev.data {
            EventData::Output { bytes, stream } if ev.dir == Dir::Recv => {
                c.output(*stream, &String::from_utf8_lossy(bytes));
            }
            EventData::Timeout { pattern, waited_ns } => {
                c.notes.push((
                    "timeout".into(),
                    format!("/{pattern}/ after {:.3}s", *waited_ns as f64 / 1e9),
                ));
                c.events.push(idx);
            }
            EventData::Exit { status } if ev.dir == Dir::Recv => {
                c.notes.push(("command_ended".into(), status.to_string()));
                c.events.push(idx);
            }
            EventData::BarrierBroken { name, reason } if ev.dir != Dir::Send => {
                c.notes
                    .push(("barrier_broken".into(), format!("\"{name}\": {reason}")));
                c.events.push(idx);
            }
            EventData::Custom {
                name,
                status,
                output,
            } => {
                c.notes.push((
                    "custom".into(),
                    format!("{name}: status {status}\n{output}"),
                ));
                c.events.push(idx);
            }
            EventData::Signal { name } if ev.dir == Dir::Send => {
                c.notes.push(("signal".into(), name.clone()));
                c.events.push(idx);
            }
            EventData::Verdict {
                number,
                ok,
                description,
                directive,
                reason,
            } => {
                verdict_event.insert(*number, idx);
                let directive = directive.map(|d| format!("{} {reason}", d.name().to_uppercase()));
                let failed =
                    !*ok && !matches!(directive.as_deref(), Some(d) if d.starts_with("TODO"));
                let mut diag = Vec::new();
                let mut events = Vec::new();
                if !*ok {
                    diag.append(&mut c.notes);
                    events.append(&mut c.events);
                    let last = c.last_lines();
                    if !last.is_empty() {
                        diag.push(("last_lines".into(), last.join("\n")));
                    }
                }
                c.notes.clear();
                c.events.clear();
                // `dtest exec --check` records its property verdicts on
                // the master, named `property NAME`.
                let property = header.actors[a].kind == ActorKind::Master
                    && description.starts_with("property ");
                derived.push(Point {
                    number: *number,
                    tester: if property {
                        String::new()
                    } else {
                        header.actor_name(ev.actor).to_string()
                    },
                    ok: *ok,
                    failed,
                    description: description.clone(),
                    directive,
                    diag,
                    events,
                    property,
                    derived: true,
                });
            }
            _ => {}
        }
        n += 1;
    }
    texts.push(']');
    extras.push(']');

    // Columns: n, then actor, kind<<2|dir, time delta (zigzag), partner
    // delta (zigzag, 0 = none), clock differences.
    let mut cols = Vec::with_capacity(n as usize * 8 + clocks.len());
    varint(&mut cols, n);
    for &a in &actors {
        varint(&mut cols, u64::from(a));
    }
    cols.extend_from_slice(&kd);
    let mut last = 0u64;
    for &t in &times {
        varint(&mut cols, zigzag(t as i64 - last as i64));
        last = t;
    }
    for (i, &p) in partner.iter().enumerate() {
        varint(&mut cols, if p < 0 { 0 } else { zigzag(p - i as i64) });
    }
    cols.extend_from_slice(&clocks);
    let log_max = if texts.len() + log.text_bytes() < TEXT_BUDGET {
        log::LOG_TEXT_MAX
    } else {
        EVENT_TEXT_MAX_OVER_BUDGET
    };
    let (log_col, log_texts) = log.finish(&times, log_max);
    drop((actors, kd, times, partner, clocks));

    // The points: the run's own, else the trace's verdicts.
    let mut points = match &opts.points {
        Some(p) => p.clone(),
        None => derived,
    };
    if !opts.extra_points.is_empty() {
        // Checked again: these verdicts replace the recorded ones.
        points.retain(|p| !p.property);
    }
    let given = points.len();
    points.extend(opts.extra_points.iter().cloned());
    let failed = points.iter().filter(|p| p.failed).count();

    let mut data = String::with_capacity(
        texts.len() + cols.len() * 4 / 3 + log_col.len() + log_texts.len() + 4096,
    );
    data.push_str("{\"scenario\":");
    js_str(&mut data, &header.scenario);
    data.push_str(&format!(
        ",\"start_unix_ns\":{},\"complete\":{},\"nonstd_clocks\":{nonstd_clocks}",
        header.start_unix_ns,
        r.is_complete()
    ));
    data.push_str(",\"meta\":");
    js_pairs(&mut data, header.meta.iter());
    data.push_str(",\"warnings\":[");
    for (i, w) in r.warnings().iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        js_str(&mut data, &w.to_string());
    }
    if cut_texts > 0 {
        if !r.warnings().is_empty() {
            data.push(',');
        }
        js_str(
            &mut data,
            &format!(
                "{cut_texts} event texts are shortened in this report (at most {} KiB each, {} bytes past {} MiB of text); the trace and the testers' logs have them whole",
                EVENT_TEXT_MAX / 1024,
                EVENT_TEXT_MAX_OVER_BUDGET,
                TEXT_BUDGET >> 20
            ),
        );
    }
    data.push_str("],\"actors\":[");
    let owner = |i: usize| -> usize {
        let a = &header.actors[i];
        if a.kind == ActorKind::Session {
            if let Some((t, _)) = a.name.split_once('@') {
                if let Some(o) = header
                    .actors
                    .iter()
                    .position(|x| x.kind == ActorKind::Tester && x.name == t)
                {
                    return o;
                }
            }
        }
        i
    };
    for (i, a) in header.actors.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        data.push_str("{\"name\":");
        js_str(&mut data, &a.name);
        data.push_str(",\"kind\":");
        js_str(&mut data, a.kind.name());
        data.push_str(",\"host\":");
        js_str(&mut data, &a.host);
        data.push_str(&format!(",\"owner\":{}}}", owner(i)));
    }
    // Lanes: the master(s), then each tester followed by its sessions.
    let mut order: Vec<usize> = Vec::new();
    for (i, a) in header.actors.iter().enumerate() {
        if a.kind == ActorKind::Master {
            order.push(i);
        }
    }
    for (i, a) in header.actors.iter().enumerate() {
        if a.kind == ActorKind::Tester {
            order.push(i);
            for j in 0..na {
                if j != i && owner(j) == i {
                    order.push(j);
                }
            }
        }
    }
    for i in 0..na {
        if !order.contains(&i) {
            order.push(i);
        }
    }
    data.push_str(&format!(
        "],\"order\":{}",
        serde_json::to_string(&order).unwrap_or_else(|_| "[]".into())
    ));
    data.push_str(",\"points\":[");
    for (i, p) in points.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        // A point's verdict event, by its number (not for the points
        // checked here: their numbers are not the trace's).
        let ev = if i < given {
            verdict_event.get(&p.number).map(|e| e.to_string())
        } else {
            None
        };
        data.push_str(&format!(
            "{{\"n\":{},\"ok\":{},\"failed\":{},\"property\":{},\"derived\":{},\"ev\":{},\"tester\":",
            p.number,
            p.ok,
            p.failed,
            p.property,
            p.derived,
            ev.unwrap_or_else(|| "null".into())
        ));
        js_str(&mut data, &p.tester);
        data.push_str(",\"desc\":");
        js_str(&mut data, &p.description);
        data.push_str(",\"directive\":");
        match &p.directive {
            Some(d) => js_str(&mut data, d),
            None => data.push_str("null"),
        }
        data.push_str(",\"diag\":");
        js_pairs(&mut data, p.diag.iter());
        data.push_str(&format!(
            ",\"events\":{}}}",
            serde_json::to_string(&p.events).unwrap_or_else(|_| "[]".into())
        ));
    }
    data.push_str("],\"cols\":\"");
    data.push_str(&base64(&cols));
    drop(cols);
    data.push_str("\",\"extras\":");
    data.push_str(&extras);
    drop(extras);
    data.push_str(",\"texts\":");
    data.push_str(&texts);
    drop(texts);
    data.push_str(&format!(
        ",\"log_line_max\":{},\"log\":\"{log_col}\",\"logtexts\":",
        log::LINE_MAX
    ));
    data.push_str(&log_texts);
    drop(log_texts);
    data.push('}');

    let title = format!(
        "dtest report: {}{}",
        header.scenario,
        if failed > 0 {
            format!(" ({failed} failed)")
        } else {
            String::new()
        }
    );
    let bytes = write_html(out, &html_escape(&title), &data)?;
    Ok(Stats {
        events: n,
        bytes,
        failed,
    })
}

fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

fn write_html(out: &Path, title: &str, data: &str) -> Result<u64, Error> {
    let werr = |e: io::Error| Error::Write(out.to_path_buf(), e);
    let (head, rest) = TEMPLATE
        .split_once(DATA_MARK)
        .expect("the template has its data mark");
    let head = head.replacen(TITLE_MARK, title, 1);
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report.html".into());
    let tmp = out.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let res = (|| -> io::Result<u64> {
        let f = std::fs::File::create(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        w.write_all(head.as_bytes())?;
        w.write_all(b"<script id=\"dtest-data\" type=\"application/json\">")?;
        w.write_all(data.as_bytes())?;
        w.write_all(b"</script>")?;
        w.write_all(rest.as_bytes())?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        let len = f.metadata()?.len();
        drop(f);
        std::fs::rename(&tmp, out)?;
        Ok(len)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(werr)
}

#[cfg(test)]
mod tests;
