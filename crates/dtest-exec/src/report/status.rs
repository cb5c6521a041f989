//! The live status: one line per tester (its step, elapsed time and
//! deadline), redrawn in place on a terminal, erased at the end.
//!
//! ```text
//! rtig      barrier "All Billard(s) ended"  12.4s/40s
//! billard1  expect /Collision/  0.3s/10s
//! billard2  done
//! ```
//!
//! Plain ANSI (cursor up, erase down; no cursor hiding, so a `kill -9`
//! leaves the terminal as it was), no dependency: what is drawn is fully
//! known here, so the TAP lines of a terminal stdout can be written between
//! two frames (see [`StatusReporter::tap_writer`]), the output is any
//! `Write` (unit tests read it from a buffer), and dtest-exec stays free of
//! terminal detection: the reporter only writes to the writer it is given;
//! the CLI decides whether there is a terminal (only the CLI touches the
//! terminal), gives it stderr and the terminal's size. `indicatif` would
//! bring its own terminal handling (console), its own draw thread and rate
//! limit, and a `suspend` dance for every TAP line, for lines that are
//! plain text here.
//!
//! [`Reporter::event`] only updates the state (under the runner's lock, a
//! few field writes); a thread of its own draws every
//! [`StatusReporter::INTERVAL`] (and at once when a step starts), so that a
//! slow or stopped terminal never holds a tester.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Reporter, RunEvent};
use crate::duration::fmt_duration;

/// Gives the terminal's size (columns, rows), when known.
pub type SizeFn = Box<dyn Fn() -> Option<(u16, u16)> + Send + Sync>;

/// What a tester is doing.
#[derive(Clone, Debug)]
enum Phase {
    /// Before its first step (opening its session).
    Starting,
    /// In a step.
    Step {
        description: String,
        started: Instant,
        deadline: Option<Duration>,
    },
    /// Every step reported.
    Done,
}

#[derive(Debug)]
struct Tester {
    name: String,
    phase: Phase,
    steps: Option<usize>,
    points: usize,
}

#[derive(Debug)]
struct State {
    testers: Vec<Tester>,
    started: Instant,
    /// Draw at once (a step started, a TAP line erased the status).
    dirty: bool,
    stop: bool,
}

/// The terminal side: the output and how many lines are on it.
struct Term {
    out: Box<dyn Write + Send>,
    drawn: usize,
    /// A write failed: draw nothing more.
    failed: bool,
}

impl Term {
    /// Erases what was drawn (the cursor ends where the status began).
    fn erase(&mut self) {
        if self.drawn == 0 || self.failed {
            return;
        }
        let s = format!("\r\x1b[{}A\x1b[J", self.drawn);
        self.drawn = 0;
        if self.out.write_all(s.as_bytes()).is_err() || self.out.flush().is_err() {
            self.failed = true;
        }
    }

    /// Replaces what was drawn by `lines`, in one write.
    fn draw(&mut self, lines: &[String]) {
        if self.failed {
            return;
        }
        let mut s = String::new();
        if self.drawn > 0 {
            s.push_str(&format!("\r\x1b[{}A", self.drawn));
        }
        s.push_str("\x1b[J");
        for l in lines {
            s.push_str(l);
            s.push('\n');
        }
        self.drawn = lines.len();
        if self.out.write_all(s.as_bytes()).is_err() || self.out.flush().is_err() {
            self.failed = true;
        }
    }
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    term: Mutex<Term>,
    size: SizeFn,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// The lines to draw now, fitted to the terminal.
    fn frame(&self) -> Vec<String> {
        let (cols, rows) = match (self.size)() {
            Some((c, r)) if c > 0 && r > 0 => (c as usize, r as usize),
            _ => (80, 24),
        };
        let st = lock(&self.state);
        frame(&st, Instant::now(), cols, rows)
    }

    fn draw(&self) {
        let lines = self.frame();
        lock(&self.term).draw(&lines);
    }
}

/// One line per tester, at most `rows - 1` lines (running testers first
/// when they do not all fit), each at most `cols - 1` characters.
fn frame(st: &State, now: Instant, cols: usize, rows: usize) -> Vec<String> {
    let width = st
        .testers
        .iter()
        .map(|t| t.name.chars().count())
        .max()
        .unwrap_or(0);
    let max = rows.saturating_sub(1).max(1);
    let mut shown: Vec<&Tester> = st.testers.iter().collect();
    if shown.len() > max {
        shown.retain(|t| !matches!(t.phase, Phase::Done));
    }
    let mut more = 0;
    if shown.len() > max {
        more = shown.len() - (max - 1);
        shown.truncate(max - 1);
    }
    let mut lines: Vec<String> = shown
        .iter()
        .map(|t| line(t, width, st.started, now, cols.saturating_sub(1).max(10)))
        .collect();
    if more > 0 {
        lines.push(format!("... and {more} more testers"));
    }
    lines
}

/// `name  what  elapsed/deadline`, cut to `cols` characters (the
/// description is cut first).
fn line(t: &Tester, width: usize, run_start: Instant, now: Instant, cols: usize) -> String {
    let (what, time) = match &t.phase {
        Phase::Starting => (
            "starting".to_string(),
            elapsed(now.saturating_duration_since(run_start), None),
        ),
        Phase::Step {
            description,
            started,
            deadline,
        } => (
            printable(description),
            elapsed(now.saturating_duration_since(*started), *deadline),
        ),
        Phase::Done => ("done".to_string(), String::new()),
    };
    let name = format!("{:<width$}", printable(&t.name));
    let fixed = name.chars().count() + 2 + if time.is_empty() { 0 } else { 2 + time.len() };
    let room = cols.saturating_sub(fixed);
    let what = if what.chars().count() > room {
        let mut w: String = what.chars().take(room.saturating_sub(3)).collect();
        w.push_str("...");
        w
    } else {
        what
    };
    let mut l = format!("{name}  {what}");
    if !time.is_empty() {
        l.push_str("  ");
        l.push_str(&time);
    }
    l.chars().take(cols).collect()
}

fn elapsed(d: Duration, deadline: Option<Duration>) -> String {
    let e = format!("{:.1}s", d.as_secs_f64());
    match deadline {
        Some(dl) => format!("{e}/{}", fmt_duration(dl)),
        None => e,
    }
}

/// One line of printable characters (a command line may hold a newline).
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The live status reporter (see the module's documentation).
pub struct StatusReporter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for StatusReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusReporter").finish_non_exhaustive()
    }
}

impl StatusReporter {
    /// How often the status is redrawn.
    pub const INTERVAL: Duration = Duration::from_millis(100);

    /// A status of `testers` (in this order) drawn on `out`, a terminal of
    /// the size `size` gives (80x24 when unknown). Starts its drawing
    /// thread; nothing is drawn before the first step starts.
    pub fn new(out: Box<dyn Write + Send>, testers: Vec<String>, size: SizeFn) -> StatusReporter {
        Self::build(out, testers, size, true)
    }

    /// [`StatusReporter::new`]; without its thread (`draw: false`), frames
    /// are drawn only when a test asks.
    fn build(
        out: Box<dyn Write + Send>,
        testers: Vec<String>,
        size: SizeFn,
        draw: bool,
    ) -> StatusReporter {
        let now = Instant::now();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                testers: testers
                    .into_iter()
                    .map(|name| Tester {
                        name,
                        phase: Phase::Starting,
                        steps: None,
                        points: 0,
                    })
                    .collect(),
                started: now,
                dirty: false,
                stop: false,
            }),
            wake: Condvar::new(),
            term: Mutex::new(Term {
                out,
                drawn: 0,
                failed: false,
            }),
            size,
        });
        let s = Arc::clone(&shared);
        let thread = draw
            .then(|| {
                std::thread::Builder::new()
                    .name("dtest-status".into())
                    .stack_size(128 << 10)
                    .spawn(move || draw_loop(&s))
                    .ok()
            })
            .flatten();
        StatusReporter { shared, thread }
    }

    /// A writer for TAP on a terminal that may be the status's own: every
    /// complete line is written with the status erased (it is drawn again
    /// below the line at once), so that TAP lines and status lines never
    /// mix. Not needed when TAP goes elsewhere (a pipe, a file).
    pub fn tap_writer<W: Write + Send>(&self, inner: W) -> StatusTap<W> {
        StatusTap {
            shared: Arc::clone(&self.shared),
            inner,
            buf: Vec::new(),
        }
    }

    /// Stops drawing and erases the status (once).
    fn stop(&mut self) {
        lock(&self.shared.state).stop = true;
        self.shared.wake.notify_all();
        match self.thread.take() {
            Some(h) => {
                let _ = h.join();
            }
            None => lock(&self.shared.term).erase(),
        }
    }
}

/// Draws every [`StatusReporter::INTERVAL`], and soon after a change (a
/// step started, a TAP line erased the status), but never more often than
/// every [`MIN_GAP`]: a run of many short steps costs a few frames a second.
fn draw_loop(s: &Shared) {
    let mut last: Option<Instant> = None;
    loop {
        {
            let mut st = lock(&s.state);
            loop {
                if st.stop {
                    drop(st);
                    lock(&s.term).erase();
                    return;
                }
                let now = Instant::now();
                let gap = if st.dirty {
                    MIN_GAP
                } else {
                    StatusReporter::INTERVAL
                };
                let next = last.map_or(now + gap, |t| t + gap);
                let next = if st.dirty && last.is_none() {
                    now
                } else {
                    next
                };
                if now >= next {
                    break;
                }
                st = s
                    .wake
                    .wait_timeout(st, next - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            st.dirty = false;
            // Nothing to show before the first step starts.
            if last.is_none()
                && st
                    .testers
                    .iter()
                    .all(|t| matches!(t.phase, Phase::Starting))
            {
                continue;
            }
        }
        s.draw();
        last = Some(Instant::now());
    }
}

/// The shortest time between two frames.
const MIN_GAP: Duration = Duration::from_millis(40);

impl Reporter for StatusReporter {
    fn event(&mut self, e: &RunEvent<'_>) -> io::Result<()> {
        match e {
            RunEvent::StepStart {
                tester,
                steps,
                description,
                deadline,
                ..
            } => {
                let mut st = lock(&self.shared.state);
                if let Some(t) = st.testers.iter_mut().find(|t| t.name == *tester) {
                    t.steps = Some(*steps);
                    t.phase = Phase::Step {
                        description: description.to_string(),
                        started: Instant::now(),
                        deadline: *deadline,
                    };
                    st.dirty = true;
                    self.shared.wake.notify_all();
                }
            }
            RunEvent::Point(p) => {
                let mut st = lock(&self.shared.state);
                if let Some(t) = st.testers.iter_mut().find(|t| t.name == p.tester) {
                    t.points += 1;
                    if t.steps.is_some_and(|n| t.points >= n) {
                        t.phase = Phase::Done;
                    }
                }
            }
            RunEvent::End { .. } => self.stop(),
            RunEvent::Plan(_) | RunEvent::Comment(_) => {}
        }
        Ok(())
    }
}

impl Drop for StatusReporter {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop();
        }
    }
}

/// TAP through the status (see [`StatusReporter::tap_writer`]).
pub struct StatusTap<W: Write> {
    shared: Arc<Shared>,
    inner: W,
    /// The start of a line not complete yet.
    buf: Vec<u8>,
}

impl<W: Write> std::fmt::Debug for StatusTap<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusTap").finish_non_exhaustive()
    }
}

impl<W: Write> StatusTap<W> {
    /// Writes `n` buffered bytes with the status erased.
    fn emit(&mut self, n: usize) -> io::Result<()> {
        {
            let mut term = lock(&self.shared.term);
            term.erase();
            let r = self
                .inner
                .write_all(&self.buf[..n])
                .and_then(|()| self.inner.flush());
            self.buf.drain(..n);
            r?;
        }
        lock(&self.shared.state).dirty = true;
        self.shared.wake.notify_all();
        Ok(())
    }
}

impl<W: Write> Write for StatusTap<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        if let Some(i) = self.buf.iter().rposition(|&c| c == b'\n') {
            self.emit(i + 1)?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let n = self.buf.len();
            self.emit(n)?;
        }
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Point;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            lock(&self.0).extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(lock(&self.0).clone()).unwrap()
        }
    }

    fn point(tester: &str) -> Point {
        Point {
            number: 1,
            tester: tester.into(),
            ok: true,
            description: format!("{tester}: x"),
            directive: None,
            diag: Vec::new(),
            duration: Duration::ZERO,
            note: None,
        }
    }

    fn start<'a>(tester: &'a str, desc: &'a str, steps: usize) -> RunEvent<'a> {
        RunEvent::StepStart {
            tester,
            step: 0,
            steps,
            description: desc,
            deadline: Some(Duration::from_secs(40)),
        }
    }

    #[test]
    fn lines_and_fitting() {
        let t0 = Instant::now();
        let st = State {
            testers: vec![
                Tester {
                    name: "rtig".into(),
                    phase: Phase::Step {
                        description: "barrier \"All Billard(s) ended\"".into(),
                        started: t0,
                        deadline: Some(Duration::from_secs(40)),
                    },
                    steps: Some(3),
                    points: 1,
                },
                Tester {
                    name: "billard1".into(),
                    phase: Phase::Done,
                    steps: Some(1),
                    points: 1,
                },
                Tester {
                    name: "b2".into(),
                    phase: Phase::Step {
                        description: "run `a\nb`".into(),
                        started: t0,
                        deadline: None,
                    },
                    steps: Some(1),
                    points: 0,
                },
            ],
            started: t0,
            dirty: false,
            stop: false,
        };
        let now = t0 + Duration::from_millis(12_400);
        let f = frame(&st, now, 80, 24);
        assert_eq!(
            f,
            [
                "rtig      barrier \"All Billard(s) ended\"  12.4s/40s",
                "billard1  done",
                "b2        run `a b`  12.4s",
            ]
        );
        // Narrow: the description is cut, the time stays.
        let f = frame(&st, now, 30, 24);
        assert_eq!(f[0], "rtig      barri...  12.4s/40s");
        assert!(f.iter().all(|l| l.chars().count() <= 29), "{f:?}");
        // Short: done testers go first, then a count of the others.
        let f = frame(&st, now, 80, 3);
        assert_eq!(
            f,
            [
                "rtig      barrier \"All Billard(s) ended\"  12.4s/40s",
                "b2        run `a b`  12.4s"
            ]
        );
        let f = frame(&st, now, 80, 2);
        assert_eq!(f, ["... and 2 more testers"]);
    }

    #[test]
    fn draws_then_erases_at_the_end() {
        let out = Buf::default();
        // No drawing thread: frames only where the test draws them.
        let mut r = StatusReporter::build(
            Box::new(out.clone()),
            vec!["a".into(), "bb".into()],
            Box::new(|| Some((80, 24))),
            false,
        );
        r.event(&RunEvent::Plan(2)).unwrap();
        r.event(&start("a", "sleep 2s", 1)).unwrap();
        r.shared.draw();
        r.event(&RunEvent::Point(&point("a"))).unwrap();
        r.shared.draw();
        r.event(&RunEvent::End { points: &[] }).unwrap();
        let s = out.text();
        // (Times depend on the machine's speed: not compared.)
        assert!(s.contains("\x1b[Ja   sleep 2s  "), "{s:?}");
        assert!(s.contains("s/40s\nbb  starting  "), "{s:?}");
        assert!(s.contains("a   done\nbb  starting"), "{s:?}");
        // The last thing written erases the two lines.
        assert!(s.ends_with("\r\x1b[2A\x1b[J"), "{s:?}");
        // Nothing more after the end.
        drop(r);
        assert_eq!(out.text(), s);
    }

    #[test]
    fn tap_lines_are_written_between_frames() {
        let err = Buf::default();
        let tap = Buf::default();
        let r = StatusReporter::build(
            Box::new(err.clone()),
            vec!["a".into()],
            Box::new(|| None),
            false,
        );
        let mut w = r.tap_writer(tap.clone());
        lock(&r.shared.state).testers[0].phase = Phase::Done;
        r.shared.draw();
        assert_eq!(lock(&r.shared.term).drawn, 1);
        write!(w, "ok 1 - a").unwrap();
        // A partial line waits for its end.
        assert_eq!(tap.text(), "");
        writeln!(w, ": x").unwrap();
        assert_eq!(tap.text(), "ok 1 - a: x\n");
        assert_eq!(lock(&r.shared.term).drawn, 0);
        assert!(err.text().ends_with("\r\x1b[1A\x1b[J"), "{:?}", err.text());
        drop(r);
    }
}
