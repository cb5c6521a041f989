//! The step runner: one thread per tester, the master, TAP points as steps
//! end, tester logs, and every event recorded into the trace.
//!
//! Invariants:
//! * every step yields exactly one TAP point, so the plan printed first is
//!   always met, whatever the exit path (abort, interrupt, timeout);
//! * every message recorded is received before the trace ends: session
//!   messages are recorded send-and-receive at once when the tester reads
//!   them, barrier messages are received by their tester before
//!   [`Master::enter`] returns, and every tester thread is joined before
//!   [`Recorder::finish`];
//! * every wait has a deadline and checks the run's stop condition (signal,
//!   global timeout, `abort-all`) at least every 100 ms;
//! * every session is closed (its processes killed) before its tester
//!   thread ends.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dtest_trace::{
    Actor, ActorId, ActorKind, Directive, EventData, ExitStatus, Header, Recorder, Stream, Transfer,
};

use crate::duration::fmt_duration;
use crate::master::{Master, StopCheck};
use crate::matcher::{Hit, Pattern};
use crate::report::{write_junit, DiagValue, Point, TapWriter};
use crate::scenario::{CustomContext, OnFail, Scenario, Step, StepKind};
use crate::session::shell::{Piece, ShellSession};
use crate::session::{HostUrl, OpenSpec, Signal, TransportRegistry};
use crate::vars;

/// Output kept for an expect that is not running yet (bounded).
const BACKLOG_MAX: usize = 1 << 20;
/// Output kept for diagnostics (the last lines received).
const TAIL_MAX: usize = 4096;

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

/// Called with the finished trace's path once the run is over; returns the
/// extra TAP points (as many as [`RunOptions::extra_points`] announced).
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
    /// Run once the trace is finished; its points end the TAP output.
    pub after: Option<AfterHook>,
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
            meta: Vec::new(),
            fsync: false,
        }
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport {
    /// No point failed and the run was not stopped.
    pub ok: bool,
    /// Every TAP point, in number order.
    pub points: Vec<Point>,
    /// The signal that interrupted the run.
    pub interrupted: Option<Signal>,
    /// Whether the scenario's global timeout stopped the run.
    pub timed_out: bool,
    /// The trace file.
    pub trace: PathBuf,
}

impl RunReport {
    /// The exit code: 0 ok, 1 failed or timed out, 130/143 interrupted.
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
    /// The trace could not be written.
    #[error("trace: {0}")]
    Trace(#[from] dtest_trace::Error),
    /// TAP or JUnit could not be written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The scenario is not valid (builder scenarios are validated here).
    #[error("invalid scenario: {0}")]
    Invalid(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Stop {
    Interrupted(Signal),
    Timeout(Duration),
    AbortAll(String),
}

impl Stop {
    fn reason(&self) -> String {
        match self {
            Stop::Interrupted(s) => format!("interrupted by SIG{s}"),
            Stop::Timeout(d) => format!("run timeout ({}) reached", fmt_duration(*d)),
            Stop::AbortAll(t) => format!("{t} aborted the run"),
        }
    }
}

struct Control {
    stop: Mutex<Option<Stop>>,
    deadline: Instant,
    timeout: Duration,
    interrupt: Option<InterruptProbe>,
}

/// The last component of `path`: where `put` and `get` copy to by default.
fn file_name_of(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
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

impl Control {
    fn check(&self) -> Option<Stop> {
        let mut s = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        if s.is_none() {
            if let Some(sig) = self.interrupt.as_ref().and_then(|f| f()) {
                *s = Some(Stop::Interrupted(sig));
            } else if Instant::now() >= self.deadline {
                *s = Some(Stop::Timeout(self.timeout));
            }
        }
        s.clone()
    }

    fn set(&self, stop: Stop) {
        let mut s = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        if s.is_none() {
            *s = Some(stop);
        }
    }
}

impl StopCheck for Control {
    fn stop_reason(&self) -> Option<String> {
        self.check().map(|s| s.reason())
    }
}

struct Tap {
    w: TapWriter<Box<dyn Write + Send>>,
    next: u32,
    points: Vec<Point>,
    broken_pipe: bool,
}

struct Ctx<'a> {
    sc: &'a Scenario,
    rec: &'a Recorder,
    master: &'a Master,
    control: &'a Control,
    tap: &'a Mutex<Tap>,
    out_dir: &'a Path,
    registry: &'a TransportRegistry,
    vars: &'a BTreeMap<String, String>,
    tester_actor: Vec<ActorId>,
    session_actor: Vec<ActorId>,
}

impl Ctx<'_> {
    /// Emits a point: numbers it, writes it, records the verdict.
    fn emit(&self, tester: usize, mut p: Point) {
        let mut tap = self.tap.lock().unwrap_or_else(|e| e.into_inner());
        tap.next += 1;
        p.number = tap.next;
        if !tap.broken_pipe && tap.w.point(&p).is_err() {
            tap.broken_pipe = true;
        }
        let _ = self.rec.local(
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
        tap.points.push(p);
    }
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
    let rec = Recorder::create(&trace_path, header)?;

    let members: HashMap<String, Vec<usize>> = sc
        .barriers()
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().map(|(t, _)| t).collect()))
        .collect();
    let names: Vec<String> = sc.testers.iter().map(|t| t.name.clone()).collect();
    let tester_actor: Vec<ActorId> = (1..=n as ActorId).collect();
    let session_actor: Vec<ActorId> = (n as ActorId + 1..=2 * n as ActorId).collect();
    let master = Master::new(names.clone(), tester_actor.clone(), 0, members);
    let control = Control {
        stop: Mutex::new(None),
        deadline: Instant::now() + sc.timeout,
        timeout: sc.timeout,
        interrupt,
    };
    let plan = sc.plan() + extra_points;
    let tap = Mutex::new(Tap {
        w: TapWriter::start(tap, plan)?,
        next: 0,
        points: Vec::new(),
        broken_pipe: false,
    });
    let ctx = Ctx {
        sc,
        rec: &rec,
        master: &master,
        control: &control,
        tap: &tap,
        out_dir: &out_dir,
        registry: &registry,
        vars: &vmap,
        tester_actor,
        session_actor,
    };

    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for (ti, url) in hosts.iter().enumerate() {
            let ctx = &ctx;
            let h = std::thread::Builder::new()
                .name(format!("tester-{}", sc.testers[ti].name))
                .stack_size(256 << 10)
                .spawn_scoped(s, move || run_tester(ctx, ti, url));
            match h {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // No thread: report its steps as failed, break its barriers.
                    let mut tr = TesterRun::new(ctx, ti, url.clone());
                    tr.errlog(&format!("cannot start the tester thread: {e}"));
                    tr.skip_rest(0, &format!("cannot start the tester: {e}"), false);
                }
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

    let stop = control.check_final();
    let mut tap = tap.into_inner().unwrap_or_else(|e| e.into_inner());
    let failed = tap.points.iter().filter(|p| p.failed()).count();
    let ok = failed == 0 && stop.is_none();
    let summary = format!(
        "{} tests, {} failed{}",
        tap.points.len(),
        failed,
        stop.as_ref()
            .map(|s| format!(", {}", s.reason()))
            .unwrap_or_default()
    );
    rec.finish(0, ok, summary)?;
    if fsync {
        rec.sync()?;
    }
    drop(rec);

    // Extra points (property checks) on the finished trace.
    let mut extra = match after {
        Some(f) => f(&trace_path),
        None => Vec::new(),
    };
    extra.truncate(extra_points);
    while extra.len() < extra_points {
        extra.push(ExtraPoint {
            ok: false,
            description: "check did not run".into(),
            diagnostics: Vec::new(),
        });
    }
    let mut any_extra_failed = false;
    for e in extra {
        tap.next += 1;
        any_extra_failed |= !e.ok;
        let p = Point {
            number: tap.next,
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
        if !tap.broken_pipe && tap.w.point(&p).is_err() {
            tap.broken_pipe = true;
        }
        tap.points.push(p);
    }
    if let Some(s) = &stop {
        let _ = tap.w.comment(&s.reason());
    }
    if let Some(j) = &junit {
        let f = File::create(j).map_err(|e| RunError::OutDir {
            path: j.clone(),
            source: e,
        })?;
        write_junit(BufWriter::new(f), &sc.name, &names, &tap.points)?;
        if fsync {
            File::open(j)?.sync_all()?;
        }
    }
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
        ok: ok && !any_extra_failed,
        points: tap.points,
        interrupted,
        timed_out: matches!(stop, Some(Stop::Timeout(_))),
        trace: trace_path,
    })
}

impl Control {
    /// The stop condition at the end of the run: `abort-all` is a failure
    /// like any other, not a stop of the whole process.
    fn check_final(&self) -> Option<Stop> {
        let s = self.stop.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match s {
            Some(Stop::AbortAll(_)) => None,
            other => other,
        }
    }
}

/// The outcome of one step.
struct Outcome {
    ok: bool,
    desc: String,
    directive: Option<(Directive, String)>,
    diag: Vec<(String, DiagValue)>,
}

impl Outcome {
    fn pass(desc: String) -> Outcome {
        Outcome {
            ok: true,
            desc,
            directive: None,
            diag: Vec::new(),
        }
    }
    fn fail(desc: String, message: impl Into<String>) -> Outcome {
        Outcome {
            ok: false,
            desc,
            directive: None,
            diag: vec![("message".into(), DiagValue::Text(message.into()))],
        }
    }
}

struct Logs {
    inp: Option<BufWriter<File>>,
    out: Option<BufWriter<File>>,
    err: Option<BufWriter<File>>,
}

impl Logs {
    fn open(dir: &Path, tester: &str) -> Logs {
        let f = |ext: &str| {
            File::create(dir.join(format!("{tester}.{ext}")))
                .ok()
                // Chunks of 64 KiB or more (a flood) bypass the buffer.
                .map(|f| BufWriter::with_capacity(64 << 10, f))
        };
        Logs {
            inp: f("in"),
            out: f("out"),
            err: f("err"),
        }
    }
    fn flush(&mut self) {
        for w in [&mut self.inp, &mut self.out, &mut self.err]
            .into_iter()
            .flatten()
        {
            let _ = w.flush();
        }
    }
}

/// What the tester has read from its session and not consumed.
struct Io {
    logs: Logs,
    backlog: Vec<u8>,
    backlog_dropped: u64,
    tail: Vec<u8>,
    last_exit: Option<ExitStatus>,
    closed: Option<Option<ExitStatus>>,
}

impl Io {
    fn push_tail(&mut self, d: &[u8]) {
        if d.len() >= TAIL_MAX {
            self.tail.clear();
            self.tail.extend_from_slice(&d[d.len() - TAIL_MAX..]);
        } else {
            self.tail.extend_from_slice(d);
            if self.tail.len() > 2 * TAIL_MAX {
                let cut = self.tail.len() - TAIL_MAX;
                self.tail.drain(..cut);
            }
        }
    }
    fn push_backlog(&mut self, d: &[u8]) {
        self.backlog.extend_from_slice(d);
        if self.backlog.len() > BACKLOG_MAX {
            let cut = self.backlog.len() - BACKLOG_MAX / 2;
            self.backlog.drain(..cut);
            self.backlog_dropped += cut as u64;
        }
    }
    fn last_lines(&self, n: usize) -> Vec<String> {
        let from = self.tail.len().saturating_sub(TAIL_MAX);
        let text = String::from_utf8_lossy(&self.tail[from..]).replace('\r', "");
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(n);
        lines[start..].iter().map(|s| s.to_string()).collect()
    }
}

struct TesterRun<'c, 'a> {
    ctx: &'c Ctx<'a>,
    ti: usize,
    name: String,
    url: HostUrl,
    me: ActorId,
    sess_actor: ActorId,
    session: Option<ShellSession>,
    open_error: Option<String>,
    io: Io,
    vars: BTreeMap<String, String>,
    barrier_gen: HashMap<String, u32>,
    started: Instant,
}

fn run_tester(ctx: &Ctx<'_>, ti: usize, url: &HostUrl) {
    let mut tr = TesterRun::new(ctx, ti, url.clone());
    tr.open();
    tr.steps();
    tr.close();
}

impl<'c, 'a> TesterRun<'c, 'a> {
    fn new(ctx: &'c Ctx<'a>, ti: usize, url: HostUrl) -> TesterRun<'c, 'a> {
        let t = &ctx.sc.testers[ti];
        let mut vars = ctx.vars.clone();
        vars.insert("tester".into(), t.name.clone());
        TesterRun {
            ctx,
            ti,
            name: t.name.clone(),
            url,
            me: ctx.tester_actor[ti],
            sess_actor: ctx.session_actor[ti],
            session: None,
            open_error: None,
            io: Io {
                logs: Logs::open(ctx.out_dir, &t.name),
                backlog: Vec::new(),
                backlog_dropped: 0,
                tail: Vec::new(),
                last_exit: None,
                closed: None,
            },
            vars,
            barrier_gen: HashMap::new(),
            started: Instant::now(),
        }
    }

    fn errlog(&mut self, msg: &str) {
        let t = self.started.elapsed().as_secs_f64();
        if let Some(w) = &mut self.io.logs.err {
            let _ = writeln!(w, "[{t:.3}s] dtest: {msg}");
            let _ = w.flush();
        }
    }

    fn expand(&self, s: &str) -> Result<String, String> {
        vars::expand(s, &|n| self.vars.get(n).cloned()).map_err(|(_, m)| m)
    }

    fn open(&mut self) {
        let t = &self.ctx.sc.testers[self.ti];
        let cwd = match &t.cwd {
            Some(c) => match self.expand(c) {
                Ok(c) => Some(c),
                Err(e) => {
                    self.open_error = Some(e);
                    return;
                }
            },
            None if self.url.scheme == "local" => {
                Some(self.ctx.out_dir.join(&t.name).display().to_string())
            }
            None => None,
        };
        let mut env = Vec::new();
        for (k, v) in &t.env {
            env.push((k.clone(), self.expand(v).unwrap_or_else(|_| v.clone())));
        }
        let spec = OpenSpec {
            tester: t.name.clone(),
            host: self.url.clone(),
            shell: t.shell.clone(),
            pty: t.pty,
            cwd,
            create_cwd: true,
            env,
            connect_timeout: Duration::from_secs(30),
            options: t.options.clone(),
        };
        let deadline = Instant::now() + spec.connect_timeout;
        let res = self
            .ctx
            .registry
            .open(&spec)
            .and_then(|ch| ShellSession::start(ch, deadline));
        if !t.record_output {
            self.errlog("record_output = false: the session's output is not logged nor traced");
        }
        match res {
            Ok((s, banner)) => {
                let _ = self
                    .ctx
                    .rec
                    .local(self.sess_actor, EventData::Open { target: s.target() });
                if !banner.is_empty() {
                    if let Some(w) = &mut self.io.logs.out {
                        let _ = w.write_all(&banner);
                    }
                }
                self.session = Some(s);
            }
            Err(e) => {
                let msg = format!("cannot open session on {}: {e}", self.url);
                self.errlog(&msg);
                self.open_error = Some(msg);
            }
        }
    }

    fn close(&mut self) {
        if self.running() {
            self.stop_command(Signal::Int, Duration::from_millis(200));
        }
        if let Some(mut s) = self.session.take() {
            let st = s.close(Duration::from_millis(300));
            let reason = match (&self.io.closed, st) {
                (Some(Some(st)), _) => format!("shell exited with status {st}"),
                (_, Ok(Some(st))) => format!("closed (shell status {st})"),
                (_, Ok(None)) => "closed".to_string(),
                (_, Err(e)) => format!("closed with an error: {e}"),
            };
            let _ = self
                .ctx
                .rec
                .local(self.sess_actor, EventData::Close { reason });
        }
        self.io.logs.flush();
        let _ = self.ctx.rec.flush();
    }

    /// The description a step has before it runs (for skipped points).
    fn describe(&self, step: &Step) -> String {
        if let Some(n) = &step.name {
            return format!(
                "{}: {}",
                self.name,
                self.expand(n).unwrap_or_else(|_| n.clone())
            );
        }
        let x = |s: &str| self.expand(s).unwrap_or_else(|_| s.to_string());
        let d = match &step.kind {
            StepKind::Ok { description, .. } => x(description),
            StepKind::Run(c) => format!("run `{}`", x(c)),
            StepKind::Expect { pattern, literal } => {
                if *literal {
                    format!("expect \"{}\"", x(pattern))
                } else {
                    format!("expect /{}/", x(pattern))
                }
            }
            StepKind::Send { text, secret } => {
                if *secret {
                    "send (secret)".into()
                } else {
                    format!("send {:?}", x(text))
                }
            }
            StepKind::Put { from, .. } => format!("put {}", x(from)),
            StepKind::Get { from, .. } => format!("get {}", x(from)),
            StepKind::Barrier(b) => format!("barrier \"{}\"", x(b)),
            StepKind::Terminate(s) => format!("terminate ({s})"),
            StepKind::Wait { .. } => "wait for the command to end".into(),
            StepKind::Sleep(d) => format!("sleep {}", fmt_duration(*d)),
            StepKind::Local(c) => format!("local `{}`", x(c)),
            StepKind::Custom(_) => "custom step".into(),
        };
        format!("{}: {d}", self.name)
    }

    fn steps(&mut self) {
        let steps = &self.ctx.sc.testers[self.ti].steps;
        let defaults = &self.ctx.sc.defaults;
        let mut i = 0;
        while i < steps.len() {
            let step = &steps[i];
            if let Some(stop) = self.ctx.control.check() {
                self.stopped_rest(i, &stop);
                return;
            }
            let t0 = Instant::now();
            let outcome = if let Some(e) = self.open_error.clone() {
                Outcome::fail(self.describe(step), e)
            } else {
                self.step(step)
            };
            let failed = !outcome.ok && !matches!(outcome.directive, Some((Directive::Todo, _)));
            if failed {
                let msg = match outcome.diag.first() {
                    Some((_, DiagValue::Text(t))) => format!("{}: {t}", outcome.desc),
                    _ => outcome.desc.clone(),
                };
                self.errlog(&format!("step {}: not ok: {msg}", i + 1));
            }
            self.ctx.emit(
                self.ti,
                Point {
                    number: 0,
                    tester: self.name.clone(),
                    ok: outcome.ok,
                    description: outcome.desc,
                    directive: outcome.directive,
                    diag: outcome.diag,
                    duration: t0.elapsed(),
                    note: None,
                },
            );
            self.io.logs.flush();
            let _ = self.ctx.rec.flush();
            i += 1;
            if failed {
                if let Some(stop) = self.ctx.control.check() {
                    self.stopped_rest(i, &stop);
                    return;
                }
                let on_fail = if self.open_error.is_some() {
                    OnFail::Abort
                } else {
                    step.on_fail.unwrap_or(defaults.on_fail)
                };
                match on_fail {
                    OnFail::Continue => {}
                    OnFail::Abort => {
                        self.abort(i, &format!("{} aborted", self.name), "tester aborted");
                        return;
                    }
                    OnFail::AbortAll => {
                        self.ctx.control.set(Stop::AbortAll(self.name.clone()));
                        self.abort(
                            i,
                            &format!("{} aborted the run", self.name),
                            "tester aborted the run",
                        );
                        return;
                    }
                }
            }
        }
    }

    /// The barriers (name, generation) steps `from..` would still join.
    fn remaining_barriers(&self, from: usize) -> Vec<(String, u32)> {
        let mut gens = self.barrier_gen.clone();
        let mut v = Vec::new();
        for s in &self.ctx.sc.testers[self.ti].steps[from..] {
            if let StepKind::Barrier(b) = &s.kind {
                let b = self.expand(b).unwrap_or_else(|_| b.clone());
                let g = gens.entry(b.clone()).or_insert(0);
                v.push((b, *g));
                *g += 1;
            }
        }
        v
    }

    fn abort(&mut self, from: usize, barrier_reason: &str, skip_reason: &str) {
        let bars = self.remaining_barriers(from);
        self.ctx.master.abandon(self.ctx.rec, &bars, barrier_reason);
        if self.running() {
            let g = self
                .ctx
                .sc
                .defaults
                .terminate_grace
                .min(Duration::from_secs(1));
            self.stop_command(Signal::Int, g);
        }
        self.skip_rest(from, skip_reason, false);
    }

    fn stopped_rest(&mut self, from: usize, stop: &Stop) {
        match stop {
            Stop::AbortAll(t) => {
                let reason = format!("run aborted by {t}");
                let bars = self.remaining_barriers(from);
                self.ctx.master.abandon(self.ctx.rec, &bars, &reason);
                self.skip_rest(from, &reason, false);
            }
            other => {
                let bars = self.remaining_barriers(from);
                self.ctx
                    .master
                    .abandon(self.ctx.rec, &bars, &other.reason());
                self.skip_rest(from, "interrupted", true);
            }
        }
    }

    /// Reports steps `from..` as skipped (`ok # SKIP`) or, when
    /// `interrupted`, as `not ok ... # interrupted`.
    fn skip_rest(&mut self, from: usize, reason: &str, interrupted: bool) {
        let steps = &self.ctx.sc.testers[self.ti].steps;
        for step in &steps[from..] {
            let desc = self.describe(step);
            let p = if interrupted {
                Point {
                    number: 0,
                    tester: self.name.clone(),
                    ok: false,
                    description: desc,
                    directive: None,
                    diag: Vec::new(),
                    duration: Duration::ZERO,
                    note: Some(reason.to_string()),
                }
            } else {
                Point {
                    number: 0,
                    tester: self.name.clone(),
                    ok: true,
                    description: desc,
                    directive: Some((Directive::Skip, reason.to_string())),
                    diag: Vec::new(),
                    duration: Duration::ZERO,
                    note: None,
                }
            };
            self.ctx.emit(self.ti, p);
        }
    }

    fn timeout_of(&self, step: &Step, default: Duration) -> Duration {
        step.timeout.unwrap_or(default)
    }

    fn step(&mut self, step: &Step) -> Outcome {
        let desc = self.describe(step);
        let d = &self.ctx.sc.defaults;
        let named = step.name.is_some();
        macro_rules! x {
            ($s:expr) => {
                match self.expand($s) {
                    Ok(v) => v,
                    Err(e) => return Outcome::fail(desc, e),
                }
            };
        }
        match &step.kind {
            StepKind::Ok {
                description: _,
                pass,
                skip,
                todo,
            } => {
                let directive = if let Some(r) = skip {
                    Some((Directive::Skip, x!(r)))
                } else if let Some(r) = todo {
                    Some((Directive::Todo, x!(r)))
                } else {
                    None
                };
                let mut o = Outcome::pass(desc);
                o.ok = *pass;
                o.directive = directive;
                if !o.ok {
                    o.diag
                        .push(("message".into(), DiagValue::Text("verdict is false".into())));
                }
                o
            }
            StepKind::Run(c) => {
                let cmd = x!(c);
                self.run_cmd(desc, &cmd, self.timeout_of(step, d.wait_timeout))
            }
            StepKind::Expect { pattern, literal } => {
                let pat = x!(pattern);
                let t = self.timeout_of(step, d.expect_timeout);
                self.expect(desc, named, &pat, *literal, t)
            }
            StepKind::Send { text, secret } => {
                let text = x!(text);
                self.send(desc, text.as_bytes(), *secret)
            }
            StepKind::Put { from, to } => {
                let from = x!(from);
                let to = match to {
                    Some(t) => x!(t),
                    None => file_name_of(&from),
                };
                self.put(desc, named, &from, &to)
            }
            StepKind::Get { from, to } => {
                let from = x!(from);
                let to = match to {
                    Some(t) => x!(t),
                    None => file_name_of(&from),
                };
                self.get(desc, named, &from, &to)
            }
            StepKind::Barrier(b) => {
                let b = x!(b);
                let t = self.timeout_of(step, d.barrier_timeout);
                self.barrier(desc, named, &b, t)
            }
            StepKind::Terminate(sig) => {
                let grace = step.timeout.unwrap_or(d.terminate_grace);
                self.terminate(desc, named, *sig, grace)
            }
            StepKind::Wait { status } => {
                let t = self.timeout_of(step, d.wait_timeout);
                self.wait(desc, named, *status, t)
            }
            StepKind::Sleep(dur) => {
                let end = Instant::now() + *dur;
                loop {
                    let now = Instant::now();
                    if now >= end {
                        break Outcome::pass(desc);
                    }
                    if let Some(s) = self.ctx.control.check() {
                        break Outcome::fail(desc, s.reason());
                    }
                    std::thread::sleep((end - now).min(Duration::from_millis(50)));
                }
            }
            StepKind::Local(c) => {
                let cmd = x!(c);
                let t = self.timeout_of(step, d.wait_timeout);
                self.local(desc, step.name.clone(), &cmd, t)
            }
            StepKind::Custom(f) => {
                let f = Arc::clone(f);
                let cx = CustomContext {
                    tester: &self.name,
                    run_dir: self.ctx.out_dir,
                    vars: &self.vars,
                };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&cx)));
                let (status, output, o) = match r {
                    Ok(Ok(out)) => (0, out, Outcome::pass(desc.clone())),
                    Ok(Err(msg)) => (1, msg.clone(), Outcome::fail(desc.clone(), msg)),
                    Err(_) => (
                        101,
                        "the custom step panicked".to_string(),
                        Outcome::fail(desc.clone(), "the custom step panicked"),
                    ),
                };
                let _ = self.ctx.rec.local(
                    self.me,
                    EventData::Custom {
                        name: step.name.clone().unwrap_or_else(|| "custom".into()),
                        status,
                        output,
                    },
                );
                o
            }
        }
    }

    /// Reads once from the session (until `deadline` at most), logging and
    /// recording everything; output goes to `matcher` until it hits, the
    /// rest to the backlog. Returns whether anything arrived.
    fn pump(
        &mut self,
        deadline: Instant,
        mut matcher: Option<(&mut crate::matcher::Matcher<'_>, &mut Option<Hit>)>,
    ) -> Result<bool, String> {
        let Some(s) = self.session.as_mut() else {
            return Err("no session".into());
        };
        let rec = self.ctx.rec;
        let (me, sa) = (self.me, self.sess_actor);
        let record = self.ctx.sc.testers[self.ti].record_output;
        let io = &mut self.io;
        let r = s.poll(deadline, &mut |p| match p {
            Piece::Output(_, d) if !record => {
                io.push_tail(d);
                match &mut matcher {
                    Some((m, hit)) if hit.is_none() => {
                        if let Some(h) = m.feed(d) {
                            io.push_backlog(&d[h.end..]);
                            **hit = Some(h);
                        }
                    }
                    _ => io.push_backlog(d),
                }
            }
            Piece::Output(stream, d) => {
                let log = if stream == Stream::Stderr {
                    &mut io.logs.err
                } else {
                    &mut io.logs.out
                };
                if let Some(w) = log {
                    let _ = w.write_all(d);
                }
                let _ = rec.output(sa, me, stream, d);
                io.push_tail(d);
                match &mut matcher {
                    Some((m, hit)) if hit.is_none() => {
                        if let Some(h) = m.feed(d) {
                            io.push_backlog(&d[h.end..]);
                            **hit = Some(h);
                        }
                    }
                    _ => io.push_backlog(d),
                }
            }
            Piece::Exit(st) => {
                let _ = rec.message(sa, me, EventData::Exit { status: st.clone() });
                io.last_exit = Some(st);
            }
            Piece::Closed(st) => {
                io.closed = Some(st);
            }
        });
        r.map_err(|e| e.to_string())
    }

    fn session_gone(&self) -> Option<String> {
        if self.session.is_none() {
            return Some("no session".into());
        }
        match &self.io.closed {
            Some(Some(st)) => Some(format!("the session's shell exited (status {st})")),
            Some(None) => Some("the session was closed".into()),
            None => None,
        }
    }

    /// Waits until no command runs (or `deadline`); output goes to the backlog.
    fn drain_until_idle(&mut self, deadline: Instant) -> Result<bool, String> {
        loop {
            let running = self.session.as_ref().map(|s| s.running()).unwrap_or(false);
            if !running {
                return Ok(true);
            }
            if let Some(stop) = self.ctx.control.check() {
                return Err(stop.reason());
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            self.pump(deadline.min(now + Duration::from_millis(100)), None)?;
        }
    }

    fn run_cmd(&mut self, desc: String, cmd: &str, wait: Duration) -> Outcome {
        if let Some(g) = self.session_gone() {
            return Outcome::fail(desc, g);
        }
        match self.drain_until_idle(Instant::now() + wait) {
            Ok(true) => {}
            Ok(false) => {
                return Outcome::fail(
                    desc,
                    format!(
                    "the previous command is still running after {} (add a wait or terminate step)",
                    fmt_duration(wait)
                ),
                )
            }
            Err(e) => return Outcome::fail(desc, e),
        }
        if let Some(g) = self.session_gone() {
            return Outcome::fail(desc, g);
        }
        let _ = self.ctx.rec.message(
            self.me,
            self.sess_actor,
            EventData::Start {
                command: cmd.to_string(),
            },
        );
        if let Some(w) = &mut self.io.logs.inp {
            let _ = writeln!(w, "{cmd}");
        }
        self.io.last_exit = None;
        let Some(s) = self.session.as_mut() else {
            return Outcome::fail(desc, "no session");
        };
        match s.run(cmd) {
            Ok(()) => Outcome::pass(desc),
            Err(e) => Outcome::fail(desc, e.to_string()),
        }
    }

    fn expect(
        &mut self,
        desc: String,
        named: bool,
        pat: &str,
        literal: bool,
        timeout: Duration,
    ) -> Outcome {
        let pattern = match Pattern::new(pat, literal) {
            Ok(p) => p,
            Err(e) => return Outcome::fail(desc, e),
        };
        let shown = if pattern.is_literal() && literal {
            format!("\"{pat}\"")
        } else {
            format!("/{pat}/")
        };
        let start = Instant::now();
        let deadline = start + timeout;
        let mut m = pattern.matcher();
        let mut hit: Option<Hit> = None;
        let backlog = std::mem::take(&mut self.io.backlog);
        if let Some(h) = m.feed(&backlog) {
            self.io.backlog = backlog[h.end..].to_vec();
            hit = Some(h);
        }
        let mut failure: Option<String> = None;
        while hit.is_none() {
            if let Some(stop) = self.ctx.control.check() {
                failure = Some(stop.reason());
                break;
            }
            if let Some(g) = self.session_gone() {
                failure = Some(format!("{g} before {shown} matched"));
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let r = self.pump(
                deadline.min(now + Duration::from_millis(100)),
                Some((&mut m, &mut hit)),
            );
            if let Err(e) = r {
                failure = Some(e);
                break;
            }
        }
        let waited = start.elapsed();
        let name = self.name.clone();
        match hit {
            Some(h) => {
                for (k, v) in &h.captures {
                    self.vars.insert(k.clone(), v.clone());
                }
                let _ = self.ctx.rec.local(
                    self.me,
                    EventData::Match {
                        pattern: pat.to_string(),
                        matched: h.matched.clone(),
                        captures: h.captures.clone(),
                    },
                );
                let d = if named {
                    desc
                } else {
                    format!(
                        "{name}: expect {shown} matched after {}",
                        fmt_duration(waited)
                    )
                };
                Outcome::pass(d)
            }
            None => {
                let _ = self.ctx.rec.local(
                    self.me,
                    EventData::Timeout {
                        pattern: pat.to_string(),
                        waited_ns: waited.as_nanos() as u64,
                    },
                );
                let msg =
                    failure.unwrap_or_else(|| format!("timed out after {}", fmt_duration(timeout)));
                let d = if named {
                    desc
                } else {
                    format!("{name}: expect {shown} {msg}")
                };
                let mut o = Outcome::fail(d, msg);
                o.diag
                    .push(("pattern".into(), DiagValue::Text(pat.to_string())));
                o.diag
                    .push(("waited".into(), DiagValue::Text(fmt_duration(waited))));
                if let Some(st) = &self.io.last_exit {
                    o.diag.push((
                        "command_ended".into(),
                        DiagValue::Text(format!("status {st}")),
                    ));
                }
                o.diag.push((
                    "last_lines".into(),
                    DiagValue::Lines(self.io.last_lines(10)),
                ));
                o
            }
        }
    }

    fn send(&mut self, desc: String, bytes: &[u8], secret: bool) -> Outcome {
        if let Some(g) = self.session_gone() {
            return Outcome::fail(desc, g);
        }
        let recorded = if secret {
            b"<redacted>".to_vec()
        } else {
            bytes.to_vec()
        };
        let _ = self.ctx.rec.message(
            self.me,
            self.sess_actor,
            EventData::Input {
                bytes: recorded,
                secret,
            },
        );
        if let Some(w) = &mut self.io.logs.inp {
            if secret {
                let _ = writeln!(w, "<secret: {} bytes>", bytes.len());
            } else {
                let _ = w.write_all(bytes);
            }
        }
        let Some(s) = self.session.as_mut() else {
            return Outcome::fail(desc, "no session");
        };
        match s.send(bytes) {
            Ok(()) => Outcome::pass(desc),
            Err(e) => Outcome::fail(desc, e.to_string()),
        }
    }

    fn local_path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.ctx.out_dir.join(p)
        }
    }

    fn put(&mut self, desc: String, named: bool, from: &str, to: &str) -> Outcome {
        self.transfer(desc, named, true, from, to)
    }

    fn get(&mut self, desc: String, named: bool, from: &str, to: &str) -> Outcome {
        self.transfer(desc, named, false, from, to)
    }

    /// A `put` (controller to host: the tester sends the file to its
    /// session) or a `get` (the session sends it to the tester), recorded
    /// with the size and sha256 the channel reports.
    fn transfer(&mut self, desc: String, named: bool, put: bool, from: &str, to: &str) -> Outcome {
        if let Some(g) = self.session_gone() {
            return Outcome::fail(desc, g);
        }
        let local = self.local_path(if put { from } else { to });
        let Some(s) = self.session.as_mut() else {
            return Outcome::fail(desc, "no session");
        };
        let result = if put {
            s.channel().put(&local, to)
        } else {
            s.channel().get(from, &local)
        };
        match result {
            Ok(fi) => {
                let t = Transfer {
                    local: fi.local.display().to_string(),
                    remote: fi.remote.clone(),
                    size: fi.size,
                    sha256: fi.sha256,
                };
                let (sender, receiver, data) = if put {
                    (self.me, self.sess_actor, EventData::Put(t))
                } else {
                    (self.sess_actor, self.me, EventData::Get(t))
                };
                let _ = self.ctx.rec.message(sender, receiver, data);
                let d = if named {
                    desc
                } else {
                    let op = if put { "put" } else { "get" };
                    format!("{}: {op} {} -> {} ({} bytes)", self.name, from, to, fi.size)
                };
                Outcome::pass(d)
            }
            Err(e) => Outcome::fail(desc, e.to_string()),
        }
    }

    fn barrier(&mut self, desc: String, named: bool, b: &str, timeout: Duration) -> Outcome {
        let g = self.barrier_gen.entry(b.to_string()).or_insert(0);
        let gen = *g;
        *g += 1;
        let t0 = Instant::now();
        // While waiting, nobody reads the session: its output waits in the
        // kernel's buffer (the command blocks when that is full).
        match self
            .ctx
            .master
            .enter(self.ctx.rec, self.ti, b, gen, timeout, self.ctx.control)
        {
            Ok(parts) => {
                let d = if named {
                    desc
                } else {
                    format!(
                        "{}: barrier \"{b}\" passed with {} after {}",
                        self.name,
                        parts.join(", "),
                        fmt_duration(t0.elapsed())
                    )
                };
                Outcome::pass(d)
            }
            Err(br) => {
                let d = if named {
                    desc
                } else {
                    format!("{}: barrier \"{b}\" broken: {}", self.name, br.0)
                };
                self.errlog(&format!("barrier \"{b}\" broken: {}", br.0));
                Outcome::fail(d, format!("barrier broken: {}", br.0))
            }
        }
    }

    fn running(&self) -> bool {
        self.session.as_ref().map(|s| s.running()).unwrap_or(false)
    }

    /// Signals the running command with `first`, then TERM, then KILL,
    /// `grace` apart, until it ends. Returns the signals sent and whether
    /// it ended.
    fn stop_command(&mut self, first: Signal, grace: Duration) -> (Vec<Signal>, bool) {
        let mut seq = vec![first];
        for x in [Signal::Term, Signal::Kill] {
            if !seq.contains(&x) && first != Signal::Kill {
                seq.push(x);
            }
        }
        let mut sent = Vec::new();
        // A signal sent before the shell has read the command line would
        // miss the command (on a pty, Ctrl-C even flushes the line): wait
        // for its start marker first.
        let until = Instant::now() + grace.max(Duration::from_secs(1));
        while self.running()
            && !self.session.as_ref().map(|s| s.started()).unwrap_or(true)
            && Instant::now() < until
        {
            let now = Instant::now();
            if self
                .pump(until.min(now + Duration::from_millis(50)), None)
                .is_err()
            {
                break;
            }
        }
        // On a pty, Ctrl-C must reach the command's job, not the shell:
        // give the shell a moment to hand the terminal to the job (after
        // that, a command made of shell builtins gets the Ctrl-C anyway).
        if first == Signal::Int {
            let until = Instant::now() + Duration::from_millis(500);
            while self.running()
                && self.session.as_mut().and_then(|s| s.foreground_job()) == Some(false)
                && Instant::now() < until
            {
                let now = Instant::now();
                if self
                    .pump(until.min(now + Duration::from_millis(10)), None)
                    .is_err()
                {
                    break;
                }
            }
        }
        for sig in seq {
            if !self.running() {
                break;
            }
            let _ = self.ctx.rec.message(
                self.me,
                self.sess_actor,
                EventData::Signal {
                    name: sig.name().to_string(),
                },
            );
            sent.push(sig);
            let Some(s) = self.session.as_mut() else {
                break;
            };
            if s.signal(sig).is_err() {
                break;
            }
            let wait = if sig == Signal::Kill {
                Duration::from_secs(2)
            } else {
                grace
            };
            let until = Instant::now() + wait;
            while self.running() && Instant::now() < until {
                let now = Instant::now();
                if self
                    .pump(until.min(now + Duration::from_millis(50)), None)
                    .is_err()
                {
                    break;
                }
            }
        }
        (sent, !self.running())
    }

    fn terminate(&mut self, desc: String, named: bool, sig: Signal, grace: Duration) -> Outcome {
        if let Some(g) = self.session_gone() {
            return Outcome::fail(desc, g);
        }
        if !self.running() {
            let d = if named {
                desc
            } else {
                format!("{}: terminate ({sig}): no command running", self.name)
            };
            return Outcome::pass(d);
        }
        let (sent, ended) = self.stop_command(sig, grace);
        let via: Vec<&str> = sent.iter().map(|s| s.name()).collect();
        if ended {
            let st = self
                .io
                .last_exit
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "?".into());
            let d = if named {
                desc
            } else {
                format!(
                    "{}: terminate ({}): command ended with status {st}",
                    self.name,
                    via.join(" -> ")
                )
            };
            Outcome::pass(d)
        } else {
            Outcome::fail(desc, format!("the command survived {}", via.join(", ")))
        }
    }

    fn wait(
        &mut self,
        desc: String,
        named: bool,
        status: Option<i32>,
        timeout: Duration,
    ) -> Outcome {
        let start = Instant::now();
        match self.drain_until_idle(start + timeout) {
            Ok(true) => {}
            Ok(false) => {
                return Outcome::fail(
                    desc,
                    format!(
                        "the command is still running after {}",
                        fmt_duration(timeout)
                    ),
                )
            }
            Err(e) => return Outcome::fail(desc, e),
        }
        let Some(st) = self.io.last_exit.clone() else {
            if status.is_some() {
                return Outcome::fail(desc, "no command ran");
            }
            let d = if named {
                desc
            } else {
                format!("{}: wait: no command running", self.name)
            };
            return Outcome::pass(d);
        };
        let matches = match (status, &st) {
            (None, _) => true,
            (Some(want), ExitStatus::Code(c)) => want == *c,
            (Some(want), ExitStatus::Signal(name)) => Signal::parse(name)
                .map(|s| 128 + s.number() == want)
                .unwrap_or(false),
        };
        let d = if named {
            desc.clone()
        } else {
            format!(
                "{}: wait: command ended with status {st} after {}",
                self.name,
                fmt_duration(start.elapsed())
            )
        };
        if matches {
            Outcome::pass(d)
        } else {
            let mut o = Outcome::fail(
                d,
                format!("expected status {}, got {st}", status.unwrap_or(0)),
            );
            o.diag.push((
                "last_lines".into(),
                DiagValue::Lines(self.io.last_lines(10)),
            ));
            o
        }
    }

    fn local(
        &mut self,
        desc: String,
        name: Option<String>,
        cmd: &str,
        timeout: Duration,
    ) -> Outcome {
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};
        let mut c = Command::new("/bin/sh");
        c.arg("-c")
            .arg(cmd)
            .current_dir(self.ctx.out_dir)
            .env("DTEST_RUN_DIR", self.ctx.out_dir)
            .env("DTEST_TESTER", &self.name)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = match c.spawn() {
            Ok(c) => c,
            Err(e) => return Outcome::fail(desc, format!("cannot run /bin/sh: {e}")),
        };
        let pid = child.id() as i32;
        // Collect output in threads so a chatty command never blocks.
        let grab = |r: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                if let Some(mut r) = r {
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = r.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        if v.len() < 64 << 10 {
                            v.extend_from_slice(&buf[..n]);
                        }
                    }
                }
                v
            })
        };
        let ho = grab(
            child
                .stdout
                .take()
                .map(|x| Box::new(x) as Box<dyn Read + Send>),
        );
        let he = grab(
            child
                .stderr
                .take()
                .map(|x| Box::new(x) as Box<dyn Read + Send>),
        );
        let deadline = Instant::now() + timeout;
        let mut why = None;
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break Some(st),
                Ok(None) => {}
                Err(e) => {
                    why = Some(e.to_string());
                    break None;
                }
            }
            if let Some(s) = self.ctx.control.check() {
                why = Some(s.reason());
            } else if Instant::now() >= deadline {
                why = Some(format!("timed out after {}", fmt_duration(timeout)));
            }
            if why.is_some() {
                // SAFETY: kill has no memory effects.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // Anything the command left in its process group goes too.
        // SAFETY: as above.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let mut out = ho.join().unwrap_or_default();
        out.extend(he.join().unwrap_or_default());
        let text = String::from_utf8_lossy(&out).into_owned();
        let code = status.and_then(|s| s.code()).unwrap_or(-1);
        let _ = self.ctx.rec.local(
            self.me,
            EventData::Custom {
                name: name.unwrap_or_else(|| cmd.to_string()),
                status: code,
                output: text.chars().take(4096).collect(),
            },
        );
        if why.is_none() && code == 0 {
            Outcome::pass(desc)
        } else {
            let msg = why.unwrap_or_else(|| format!("exit status {code}"));
            let mut o = Outcome::fail(desc, msg);
            let lines: Vec<String> = text.lines().rev().take(10).map(String::from).collect();
            o.diag.push((
                "output".into(),
                DiagValue::Lines(lines.into_iter().rev().collect()),
            ));
            o
        }
    }
}
