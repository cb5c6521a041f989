//! The runner: starts one thread per tester and the master, reports every
//! point as its step ends, and finishes the trace.
//!
//! * [`control`]: the run's stop condition and the stop-aware wait bound;
//! * [`tester`]: one tester: its session, its steps, `on_fail`;
//! * [`sink`]: where captured output goes (logs, trace) and the record's
//!   health (a trace or log write error fails the run);
//! * the steps themselves are in [`crate::steps`], the reporters in
//!   [`crate::report`], the sessions in [`crate::session`].
//!
//! Invariants:
//! * every step yields exactly one TAP point, so the plan printed first is
//!   always met, whatever the exit path (abort, interrupt, timeout);
//! * every message recorded is received before the trace ends: session
//!   messages are recorded send-and-receive at once (output and exits by
//!   the capture thread as they arrive), barrier messages are received by
//!   their tester before [`Master::enter`] returns, and every tester thread
//!   (and its capture thread) is joined before [`Recorder::finish`];
//! * every wait has a deadline and checks the run's stop condition (signal,
//!   global timeout, `abort-all`) at least every 100 ms;
//! * every session is closed (its processes killed) before its tester
//!   thread ends.

pub(crate) mod control;
pub(crate) mod sink;
pub(crate) mod tester;
#[cfg(test)]
mod tests;
mod watchdog;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dtest_trace::{Actor, ActorId, ActorKind, Dir, EventData, Header, Reader, Recorder};

use crate::master::Master;
use crate::report::junit::JunitReporter;
use crate::report::tap::TapReporter;
use crate::report::{DiagValue, Point, Reporter, RunEvent, TapVersion};
use crate::scenario::Scenario;
use crate::session::{HostUrl, Signal, TransportRegistry};
use crate::vars;
use control::{Control, Stop};
use sink::Health;

/// A TAP point added after the run by a hook (e.g. one per property of
/// `dtest exec --check`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraPoint {
    /// Whether it passed.
    pub ok: bool,
    /// Its description.
    pub description: String,
    /// Diagnostics (key, text) shown under a failed point.
    pub diagnostics: Vec<(String, String)>,
}

/// Called once the testers are done, before the trace's `end` event is
/// written, with the path of a complete copy of the run's trace (every
/// event of the run, then a provisional `end` event saying how the steps
/// went; the copy is removed afterwards); returns the extra TAP points (as
/// many as [`RunOptions::extra_points`] announced). The points are part of
/// the run: recorded as verdicts of the master and counted in the trace's
/// real `end` event, like the steps' points.
pub type AfterHook = Box<dyn FnOnce(&Path) -> Vec<ExtraPoint> + Send>;

/// Says whether the process received SIGINT or SIGTERM
/// (see [`crate::signals::received`]).
pub type InterruptProbe = Arc<dyn Fn() -> Option<Signal> + Send + Sync>;

/// How to run a scenario.
pub struct RunOptions {
    /// The run directory: trace, logs, default tester directories.
    pub out_dir: PathBuf,
    /// Where TAP goes (stdout in the CLI).
    pub tap: Box<dyn Write + Send>,
    /// JUnit XML output file.
    pub junit: Option<PathBuf>,
    /// The transports for the testers' hosts.
    pub registry: TransportRegistry,
    /// Polled to learn about SIGINT/SIGTERM.
    pub interrupt: Option<InterruptProbe>,
    /// Points the `after` hook adds (counted in the plan).
    pub extra_points: usize,
    /// Run once the testers are done, before the trace's end (see
    /// [`AfterHook`]); its points end the TAP output.
    pub after: Option<AfterHook>,
    /// The TAP version line (13 by default).
    pub tap_version: TapVersion,
    /// More reporters fed with the run's events (after TAP, before JUnit),
    /// such as the CLI's live status ([`crate::report::status`]).
    pub reporters: Vec<Box<dyn Reporter>>,
    /// Trace header metadata (command line, version).
    pub meta: Vec<(String, String)>,
    /// Wait until the trace, the logs and the JUnit file are on disk before
    /// returning (`fsync`). Off by default: every event and log byte reaches
    /// the OS as the run goes, which survives dtest being killed; only a
    /// crash of the machine needs this, and it costs the disk's write time.
    pub fsync: bool,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("out_dir", &self.out_dir)
            .field("junit", &self.junit)
            .field("extra_points", &self.extra_points)
            .finish_non_exhaustive()
    }
}

impl RunOptions {
    /// Options writing TAP to `tap` and everything else to `out_dir`.
    pub fn new(out_dir: impl Into<PathBuf>, tap: Box<dyn Write + Send>) -> RunOptions {
        RunOptions {
            out_dir: out_dir.into(),
            tap,
            junit: None,
            registry: TransportRegistry::with_local(),
            interrupt: None,
            extra_points: 0,
            after: None,
            tap_version: TapVersion::default(),
            reporters: Vec::new(),
            meta: Vec::new(),
            fsync: false,
        }
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport {
    /// No point failed, the record is complete and the run was not stopped.
    pub ok: bool,
    /// Every TAP point, in number order.
    pub points: Vec<Point>,
    /// The signal that interrupted the run.
    pub interrupted: Option<Signal>,
    /// Whether the scenario's global timeout stopped the run.
    pub timed_out: bool,
    /// The first error writing the trace or a log: the record of the run
    /// is incomplete, and the run fails.
    pub record_error: Option<String>,
    /// The trace file.
    pub trace: PathBuf,
}

impl RunReport {
    /// The exit code: 0 ok, 1 failed, timed out or not fully recorded,
    /// 130/143 interrupted.
    pub fn exit_code(&self) -> u8 {
        match self.interrupted {
            Some(Signal::Int) => 130,
            Some(Signal::Term) => 143,
            Some(_) => 128,
            None if self.ok => 0,
            None => 1,
        }
    }
}

/// Errors that prevent a run from starting or completing its outputs.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The run directory could not be created or written.
    #[error("run directory {path}: {source}")]
    OutDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The trace could not be created.
    #[error("trace: {0}")]
    Trace(#[from] dtest_trace::Error),
    /// TAP or JUnit could not be written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The scenario is not valid (builder scenarios are validated here).
    #[error("invalid scenario: {0}")]
    Invalid(String),
}

/// The reporters and the points so far.
struct Reporting {
    reporters: Vec<Box<dyn Reporter>>,
    /// A reporter that failed (a closed pipe) gets nothing more.
    failed: Vec<bool>,
    next: u32,
    points: Vec<Point>,
}

impl Reporting {
    fn send(&mut self, e: &RunEvent<'_>) {
        for (r, failed) in self.reporters.iter_mut().zip(self.failed.iter_mut()) {
            if !*failed && r.event(e).is_err() {
                *failed = true;
            }
        }
    }
}

/// What every tester of a run shares.
pub(crate) struct Ctx<'a> {
    pub(crate) sc: &'a Scenario,
    pub(crate) rec: Arc<Recorder>,
    pub(crate) master: &'a Master,
    pub(crate) control: Arc<Control>,
    reporting: &'a Mutex<Reporting>,
    pub(crate) out_dir: &'a Path,
    pub(crate) registry: &'a TransportRegistry,
    pub(crate) vars: &'a BTreeMap<String, String>,
    /// The variables as point descriptions show them: what is known only
    /// at run time stays as written (`${run_dir}`, and the `[vars]` made
    /// of it), so that a description is the same from run to run.
    pub(crate) stable_vars: &'a BTreeMap<String, String>,
    pub(crate) tester_actor: Vec<ActorId>,
    pub(crate) session_actor: Vec<ActorId>,
    pub(crate) health: Arc<Health>,
    /// The run's id, in every session's environment (`DTEST_RUN_ID`).
    pub(crate) run_id: String,
    /// Values shared across testers (`${X.name}`): what each tester had
    /// captured when it reached each barrier occurrence, keyed by barrier,
    /// generation and tester; read by the other participants after it.
    pub(crate) published: Mutex<SharedValues>,
}

/// Per barrier occurrence and tester, the values it published there.
pub(crate) type SharedValues = HashMap<(String, u32, usize), Vec<(String, String)>>;

impl Ctx<'_> {
    /// A TAP comment (`# ...`) between points.
    pub(crate) fn comment(&self, text: &str) {
        let mut rep = self.reporting.lock().unwrap_or_else(|e| e.into_inner());
        rep.send(&RunEvent::Comment(text));
    }

    /// Tells the reporters that tester `tester` starts step `step` of
    /// `steps` (`description` without the tester's name).
    pub(crate) fn step_start(
        &self,
        tester: usize,
        step: usize,
        steps: usize,
        description: &str,
        deadline: Option<Duration>,
    ) {
        let mut rep = self.reporting.lock().unwrap_or_else(|e| e.into_inner());
        rep.send(&RunEvent::StepStart {
            tester: &self.sc.testers[tester].name,
            step,
            steps,
            description,
            deadline,
        });
    }

    /// Emits a point: numbers it, reports it, records the verdict.
    pub(crate) fn emit(&self, tester: usize, mut p: Point) {
        let mut rep = self.reporting.lock().unwrap_or_else(|e| e.into_inner());
        rep.next += 1;
        p.number = rep.next;
        rep.send(&RunEvent::Point(&p));
        let r = self.rec.local(
            self.tester_actor[tester],
            EventData::Verdict {
                number: p.number,
                ok: p.ok,
                description: p.description.clone(),
                directive: p.directive.as_ref().map(|d| d.0),
                reason: p
                    .directive
                    .as_ref()
                    .map(|d| d.1.clone())
                    .unwrap_or_default(),
            },
        );
        self.health.trace(r);
        rep.points.push(p);
    }
}

/// The complete copy of the trace the `after` hook checks, in the run
/// directory while it runs.
const CHECK_COPY: &str = ".trace-check.dtrace";

/// Writes `dst`: every event of the trace at `src` (flushed, not yet
/// ended), then an `end` event of the master at `end_ns` with `ok` and
/// `summary`: a complete trace, as it would be if the run ended now.
fn complete_copy(
    src: &Path,
    dst: &Path,
    end_ns: u64,
    ok: bool,
    summary: &str,
) -> Result<(), dtest_trace::Error> {
    let mut r = Reader::open(src)?;
    let mut w = dtest_trace::create(dst, r.header().clone())?;
    w.set_cut_oversized(true);
    let mut last = 0;
    while let Some(e) = r.next_event()? {
        last = last.max(e.time_ns);
        w.append_event(e)?;
    }
    w.append_auto(
        0,
        end_ns.max(last),
        Dir::Local,
        None,
        &EventData::End {
            ok,
            summary: summary.to_string(),
        },
    )?;
    w.flush()
}

/// `fsync`s the regular files directly in `dir` (the trace, the testers'
/// logs, which their threads have flushed and closed), then `dir` itself.
fn sync_dir_files(dir: &Path) -> std::io::Result<()> {
    for ent in std::fs::read_dir(dir)? {
        let ent = ent?;
        if ent.file_type()?.is_file() {
            File::open(ent.path())?.sync_all()?;
        }
    }
    File::open(dir)?.sync_all()
}

/// Runs a scenario to the end and reports how it went. TAP goes to
/// `opts.tap` as steps end; the trace, the tester logs and the JUnit file
/// are written under `opts.out_dir`.
pub fn run(sc: &Scenario, opts: RunOptions) -> Result<RunReport, RunError> {
    let probs = sc.validate(&crate::load::BUILTIN_VARS);
    if let Some(p) = probs.first() {
        return Err(RunError::Invalid(format!("{:?}: {}", p.at, p.message)));
    }
    let RunOptions {
        out_dir,
        tap,
        junit,
        registry,
        interrupt,
        extra_points,
        after,
        tap_version,
        reporters: more_reporters,
        meta,
        fsync,
    } = opts;
    std::fs::create_dir_all(&out_dir).map_err(|e| RunError::OutDir {
        path: out_dir.clone(),
        source: e,
    })?;
    let out_dir = std::fs::canonicalize(&out_dir).unwrap_or(out_dir);

    // Static variables: built-ins, then the user's in order.
    let mut vmap: BTreeMap<String, String> = BTreeMap::new();
    vmap.insert("run_dir".into(), out_dir.display().to_string());
    vmap.insert("scenario_dir".into(), sc.scenario_dir.display().to_string());
    for (k, v) in &sc.vars {
        let val =
            vars::expand(v, &|n| vmap.get(n).cloned()).map_err(|(_, m)| RunError::Invalid(m))?;
        vmap.insert(k.clone(), val);
    }
    // The same, as descriptions show them: the run directory and the
    // scenario's directory (which differ from run to run, or from one
    // checkout to another) as written.
    let mut stable: BTreeMap<String, String> = BTreeMap::new();
    for b in ["run_dir", "scenario_dir"] {
        stable.insert(b.into(), format!("${{{b}}}"));
    }
    // Free ports differ from run to run too: shown by name.
    for k in &sc.free_ports {
        stable.insert(k.clone(), format!("${{{k}}}"));
    }
    for (k, v) in &sc.vars {
        if sc.free_ports.contains(k) {
            continue;
        }
        let val = vars::expand(v, &|n| {
            Some(
                stable
                    .get(n)
                    .cloned()
                    .unwrap_or_else(|| format!("${{{n}}}")),
            )
        })
        .unwrap_or_else(|_| v.clone());
        stable.insert(k.clone(), val);
    }

    // Actors: master, the testers, their sessions.
    let n = sc.testers.len();
    let mut actors = vec![Actor {
        id: 0,
        name: "master".into(),
        kind: ActorKind::Master,
        host: "local".into(),
    }];
    let mut hosts = Vec::new();
    for t in &sc.testers {
        let h = vars::expand(&t.host, &|k| vmap.get(k).cloned()).unwrap_or_else(|_| t.host.clone());
        let url = HostUrl::parse(&h).map_err(|e| RunError::Invalid(e.to_string()))?;
        actors.push(Actor {
            id: actors.len() as ActorId,
            name: t.name.clone(),
            kind: ActorKind::Tester,
            host: "local".into(),
        });
        hosts.push(url);
    }
    for (t, url) in sc.testers.iter().zip(&hosts) {
        actors.push(Actor {
            id: actors.len() as ActorId,
            name: format!("{}@{}", t.name, url.short_host()),
            kind: ActorKind::Session,
            host: url.raw.clone(),
        });
    }
    let mut header = Header::new(sc.name.clone(), actors);
    header
        .meta
        .push(("dtest".into(), env!("CARGO_PKG_VERSION").into()));
    header.meta.extend(meta);
    let trace_path = out_dir.join("trace.dtrace");
    let rec = Arc::new(Recorder::create(&trace_path, header)?);
    let run_id = crate::session::protocol::new_nonce();
    // From here on, a `kill -9` of dtest leaves nothing of the run behind.
    let watchdog = watchdog::Watchdog::start(&run_id);
    let health = Arc::new(Health::default());

    let members: HashMap<String, Vec<usize>> = sc
        .barriers()
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().map(|(t, _)| t).collect()))
        .collect();
    let names: Vec<String> = sc.testers.iter().map(|t| t.name.clone()).collect();
    let tester_actor: Vec<ActorId> = (1..=n as ActorId).collect();
    let session_actor: Vec<ActorId> = (n as ActorId + 1..=2 * n as ActorId).collect();
    let master = Master::new(names.clone(), tester_actor.clone(), 0, members);
    let control = Control::new(sc.timeout, interrupt);
    let plan = sc.plan() + extra_points;
    let mut reporters: Vec<Box<dyn Reporter>> = vec![Box::new(TapReporter::new(tap, tap_version))];
    reporters.extend(more_reporters);
    if let Some(j) = &junit {
        reporters.push(Box::new(JunitReporter::new(
            j.clone(),
            sc.name.clone(),
            names.clone(),
            fsync,
        )));
    }
    let mut reporting = Reporting {
        failed: vec![false; reporters.len()],
        reporters,
        next: 0,
        points: Vec::new(),
    };
    // The TAP header must be written: a failure here is an I/O error.
    reporting.reporters[0].event(&RunEvent::Plan(plan))?;
    let reporting = Mutex::new(reporting);
    let ctx = Ctx {
        sc,
        rec: Arc::clone(&rec),
        master: &master,
        control: Arc::clone(&control),
        reporting: &reporting,
        out_dir: &out_dir,
        registry: &registry,
        vars: &vmap,
        stable_vars: &stable,
        tester_actor,
        session_actor,
        health: Arc::clone(&health),
        run_id,
        published: Mutex::new(HashMap::new()),
    };

    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for (ti, url) in hosts.iter().enumerate() {
            let ctx = &ctx;
            let h = std::thread::Builder::new()
                .name(format!("tester-{}", sc.testers[ti].name))
                .stack_size(256 << 10)
                .spawn_scoped(s, move || tester::run_tester(ctx, ti, url));
            match h {
                Ok(h) => handles.push(h),
                Err(e) => tester::cannot_start(ctx, ti, url, &e.to_string()),
            }
        }
        // Wake barrier waiters regularly so a stop is seen promptly.
        while handles.iter().any(|h| !h.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
            if control.check().is_some() {
                master.wake_all();
            }
        }
        for h in handles {
            let _ = h.join();
        }
    });
    drop(ctx);
    drop(watchdog);
    if let Some(e) = master.trace_error() {
        health.fail(|| format!("the trace could not be written: {e}"));
    }

    let stop = control.check_final();
    let mut rep = reporting.into_inner().unwrap_or_else(|e| e.into_inner());
    let summary = |points: &[Point]| {
        let failed = points.iter().filter(|p| p.failed()).count();
        let text = format!(
            "{} tests, {} failed{}",
            points.len(),
            failed,
            stop.as_ref()
                .map(|s| format!(", {}", s.reason()))
                .unwrap_or_default()
        );
        (failed == 0 && stop.is_none(), text)
    };

    // Extra points (property checks), part of the run: checked on a
    // complete copy of the trace, then recorded and counted in the real
    // `end` event, so that the trace, TAP and the exit code agree.
    if let Some(f) = after {
        let r = rec.flush();
        health.trace(r);
        let (steps_ok, steps_summary) = summary(&rep.points);
        let copy = out_dir.join(CHECK_COPY);
        let end_ns = rec.now_ns();
        let steps_ok = steps_ok && health.error().is_none();
        let mut extra = match complete_copy(&trace_path, &copy, end_ns, steps_ok, &steps_summary) {
            Ok(()) => f(&copy),
            Err(e) => vec![ExtraPoint {
                ok: false,
                description: "check did not run".into(),
                diagnostics: vec![(
                    "error".into(),
                    format!("cannot copy the trace to check it: {e}"),
                )],
            }],
        };
        let _ = std::fs::remove_file(&copy);
        extra.truncate(extra_points);
        while extra.len() < extra_points {
            extra.push(ExtraPoint {
                ok: false,
                description: "check did not run".into(),
                diagnostics: Vec::new(),
            });
        }
        for e in extra {
            rep.next += 1;
            let p = Point {
                number: rep.next,
                tester: String::new(),
                ok: e.ok,
                description: e.description,
                directive: None,
                diag: e
                    .diagnostics
                    .into_iter()
                    .map(|(k, v)| (k, DiagValue::Text(v)))
                    .collect(),
                duration: Duration::ZERO,
                note: None,
            };
            rep.send(&RunEvent::Point(&p));
            let r = rec.local(
                0,
                EventData::Verdict {
                    number: p.number,
                    ok: p.ok,
                    description: p.description.clone(),
                    directive: None,
                    reason: String::new(),
                },
            );
            health.trace(r);
            rep.points.push(p);
        }
    }
    let (points_ok, summary) = summary(&rep.points);
    let ok = points_ok && health.error().is_none();
    let r = rec.finish(0, ok, summary);
    health.trace(r);
    if fsync {
        let r = rec.sync();
        health.trace(r);
    }
    drop(rec);

    if let Some(s) = &stop {
        rep.send(&RunEvent::Comment(&s.reason()));
    }
    let record_error = health.error();
    if let Some(e) = &record_error {
        rep.send(&RunEvent::Comment(e));
    }
    let points = std::mem::take(&mut rep.points);
    if let Some(i) = rep
        .reporters
        .len()
        .checked_sub(1)
        .filter(|_| junit.is_some())
    {
        // JUnit is written at the end; its errors are the run's.
        rep.reporters[i].event(&RunEvent::End { points: &points })?;
        rep.reporters.truncate(i);
    }
    rep.send(&RunEvent::End { points: &points });
    if fsync {
        sync_dir_files(&out_dir).map_err(|e| RunError::OutDir {
            path: out_dir.clone(),
            source: e,
        })?;
    }
    let interrupted = match &stop {
        Some(Stop::Interrupted(s)) => Some(*s),
        _ => None,
    };
    Ok(RunReport {
        ok: ok && record_error.is_none(),
        points,
        interrupted,
        timed_out: matches!(stop, Some(Stop::Timeout(_))),
        record_error,
        trace: trace_path,
    })
}
