//! One tester: opens its session (read from then on by the session's
//! capture thread), runs its steps one after another, turns each outcome
//! into a TAP point, applies `on_fail`, and closes the session.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dtest_trace::{ActorId, Directive, EventData};

use super::control::Stop;
use super::sink::{self, Logs, SharedLogs, TesterSink};
use super::Ctx;
use crate::master::Broken;
use crate::report::{DiagValue, Point};
use crate::scenario::{Defaults, OnFail, Step, StepKind};
use crate::session::shell::{ShellSession, Terminated};
use crate::session::sys::{describe_stopped, stop_marked, RUN_ID_VAR, TESTER_VAR};
use crate::session::{HostUrl, OpenSpec, SessionError, Signal, Until};
use crate::steps::{self, Outcome};
use crate::vars;

/// How long a session may take to open (connect, start the shell, answer
/// the protocol), within the run's timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A tester while it runs.
pub(crate) struct TesterRun<'a> {
    ctx: &'a Ctx<'a>,
    ti: usize,
    name: String,
    url: HostUrl,
    me: ActorId,
    sess_actor: ActorId,
    session: Option<ShellSession>,
    open_error: Option<String>,
    logs: SharedLogs,
    /// The tester's variables (captures of its expects included).
    pub(crate) vars: BTreeMap<String, String>,
    barrier_gen: HashMap<String, u32>,
    started: Instant,
    /// The command of the last `run` without `status`, until a step
    /// observes its end (reported if it ended non-zero unchecked).
    pub(crate) unchecked: Option<String>,
}

/// Runs tester `ti` to its end.
pub(crate) fn run_tester(ctx: &Ctx<'_>, ti: usize, url: &HostUrl) {
    let mut tr = TesterRun::new(ctx, ti, url.clone());
    tr.open();
    tr.steps();
    tr.close();
}

/// Reports every step of tester `ti` as failed when its thread could not
/// start, and breaks its barriers.
pub(crate) fn cannot_start(ctx: &Ctx<'_>, ti: usize, url: &HostUrl, why: &str) {
    let mut tr = TesterRun::new(ctx, ti, url.clone());
    tr.note(&format!("cannot start the tester thread: {why}"));
    tr.open_error = Some(format!("cannot start the tester: {why}"));
    tr.steps();
}

impl<'a> TesterRun<'a> {
    fn new(ctx: &'a Ctx<'a>, ti: usize, url: HostUrl) -> TesterRun<'a> {
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
            logs: Arc::new(Mutex::new(Logs::open(
                ctx.out_dir,
                &t.name,
                Arc::clone(&ctx.health),
            ))),
            vars,
            barrier_gen: HashMap::new(),
            started: Instant::now(),
            unchecked: None,
        }
    }

    /// The tester's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The run's id (`DTEST_RUN_ID`).
    pub(crate) fn run_id(&self) -> &str {
        &self.ctx.run_id
    }

    /// The run directory.
    pub(crate) fn out_dir(&self) -> &Path {
        self.ctx.out_dir
    }

    /// The step defaults: the tester's own, else the scenario's.
    pub(crate) fn defaults(&self) -> &Defaults {
        let t = &self.ctx.sc.testers[self.ti];
        t.defaults.as_ref().unwrap_or(&self.ctx.sc.defaults)
    }

    /// Publishes this tester's values at barrier occurrence `(b, gen)`,
    /// before it enters it (see [`super::Ctx::published`]).
    pub(crate) fn publish(&self, b: &str, gen: u32) {
        let own: Vec<(String, String)> = self
            .vars
            .iter()
            .filter(|(k, _)| !k.contains('.') && !crate::load::BUILTIN_VARS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut p = self.ctx.published.lock().unwrap_or_else(|e| e.into_inner());
        p.insert((b.to_string(), gen, self.ti), own);
    }

    /// After barrier occurrence `(b, gen)` is released: takes the values
    /// the other participants published there as `${tester.name}`.
    pub(crate) fn import(&mut self, b: &str, gen: u32) {
        let p = self.ctx.published.lock().unwrap_or_else(|e| e.into_inner());
        for (ti, t) in self.ctx.sc.testers.iter().enumerate() {
            if ti == self.ti {
                continue;
            }
            if let Some(vals) = p.get(&(b.to_string(), gen, ti)) {
                for (k, v) in vals {
                    self.vars.insert(format!("{}.{k}", t.name), v.clone());
                }
            }
        }
    }

    /// Expands `${...}` with the tester's variables.
    pub(crate) fn expand(&self, s: &str) -> Result<String, String> {
        vars::expand(s, &|n| self.vars.get(n).cloned()).map_err(|(_, m)| m)
    }

    /// Expands `${...}` as point descriptions show them: the values fixed
    /// before the run (`[vars]`, `--set`, `${tester}`) are expanded; those
    /// known only during the run stay as written (`${run_dir}`,
    /// `${scenario_dir}`, the `[vars]` made of them, captures), so that a
    /// description is the same from one run to the next.
    pub(crate) fn expand_stable(&self, s: &str) -> String {
        let lookup = |n: &str| {
            let fixed = match n {
                "tester" => Some(self.name.clone()),
                // A capture (or a capture over a `[vars]` name).
                _ if self.vars.get(n) != self.ctx.vars.get(n) => None,
                _ => self.ctx.stable_vars.get(n).cloned(),
            };
            Some(fixed.unwrap_or_else(|| format!("${{{n}}}")))
        };
        vars::expand(s, &lookup).unwrap_or_else(|_| s.to_string())
    }

    /// A wait bound of `d` from now, within the run's deadline and stop.
    pub(crate) fn until(&self, d: Duration) -> Until {
        self.ctx.control.until(d)
    }

    /// The session, or the failed outcome that says why there is none.
    pub(crate) fn session(&mut self) -> Result<&mut ShellSession, Outcome> {
        match &mut self.session {
            Some(s) => Ok(s),
            None => Err(Outcome::fail(
                self.open_error
                    .clone()
                    .unwrap_or_else(|| "no session".into()),
            )),
        }
    }

    /// A line of dtest's own in the tester's `.err` log, with the time.
    pub(crate) fn note(&self, msg: &str) {
        let t = self.started.elapsed().as_secs_f64();
        sink::lock(&self.logs).note(&format!("[{t:.3}s] dtest: {msg}"));
    }

    /// Writes to the `.in` log.
    pub(crate) fn log_input(&self, bytes: &[u8]) {
        sink::lock(&self.logs).input(bytes);
    }

    /// Records a message from the tester to its session.
    pub(crate) fn record_to_session(&self, data: EventData) {
        let r = self.ctx.rec.message(self.me, self.sess_actor, data);
        self.ctx.health.trace(r);
    }

    /// Records a message from the session to its tester.
    pub(crate) fn record_from_session(&self, data: EventData) {
        let r = self.ctx.rec.message(self.sess_actor, self.me, data);
        self.ctx.health.trace(r);
    }

    /// Records a local event of the tester.
    pub(crate) fn record_local(&self, data: EventData) {
        let r = self.ctx.rec.local(self.me, data);
        self.ctx.health.trace(r);
    }

    /// The generation of the next `barrier` step naming `b`.
    pub(crate) fn next_barrier_gen(&mut self, b: &str) -> u32 {
        let g = self.barrier_gen.entry(b.to_string()).or_insert(0);
        let gen = *g;
        *g += 1;
        gen
    }

    /// Enters barrier `b`, generation `gen`, through the master.
    pub(crate) fn enter_barrier(
        &self,
        b: &str,
        gen: u32,
        timeout: Duration,
    ) -> Result<Vec<String>, Broken> {
        self.ctx
            .master
            .enter(&self.ctx.rec, self.ti, b, gen, timeout, &*self.ctx.control)
    }

    /// Stops the running command (`sig`, TERM, KILL), recording each signal.
    pub(crate) fn stop_command(&mut self, sig: Signal, grace: Duration) -> Terminated {
        let until = self.ctx.control.until(grace * 3 + Duration::from_secs(3));
        self.escalate(sig, grace, &until)
    }

    fn escalate(&mut self, sig: Signal, grace: Duration, until: &Until) -> Terminated {
        let (rec, health, me, sa) = (
            Arc::clone(&self.ctx.rec),
            Arc::clone(&self.ctx.health),
            self.me,
            self.sess_actor,
        );
        let Some(s) = &mut self.session else {
            return Terminated {
                sent: Vec::new(),
                ended: true,
                interrupted: None,
            };
        };
        s.terminate(sig, grace, until, &mut |sig| {
            let r = rec.message(
                me,
                sa,
                EventData::Signal {
                    name: sig.name().to_string(),
                },
            );
            health.trace(r);
        })
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
        // The marks by which every process of this tester is found again,
        // also one that leaves its session (see `session::sys`).
        env.push((RUN_ID_VAR.to_string(), self.ctx.run_id.clone()));
        env.push((TESTER_VAR.to_string(), self.name.clone()));
        let until = self.ctx.control.until(CONNECT_TIMEOUT);
        let spec = OpenSpec {
            tester: t.name.clone(),
            host: self.url.clone(),
            shell: t.shell.clone(),
            pty: t.pty,
            cwd,
            create_cwd: true,
            env,
            connect_timeout: until.deadline.saturating_duration_since(Instant::now()),
            options: t
                .options
                .iter()
                .map(|(k, v)| (k.clone(), self.expand(v).unwrap_or_else(|_| v.clone())))
                .collect(),
            stop: until.stop.clone(),
        };
        if !t.record_output {
            self.note("record_output = false: the session's output is not logged nor traced");
        }
        let res = self.ctx.registry.open(&spec).and_then(|ch| {
            let sink = TesterSink {
                rec: Arc::clone(&self.ctx.rec),
                tester: self.me,
                session: self.sess_actor,
                target: ch.target(),
                record: t.record_output,
                logs: Arc::clone(&self.logs),
                health: Arc::clone(&self.ctx.health),
            };
            ShellSession::start(ch, Box::new(sink), &until)
        });
        match res {
            Ok(s) => self.session = Some(s),
            Err(e) => {
                let msg = match e {
                    SessionError::Open { .. } | SessionError::Stopped(_) => e.to_string(),
                    other => format!("cannot open session on {}: {other}", self.url),
                };
                self.note(&msg);
                self.open_error = Some(msg);
                // Nobody waits for a tester that will never come.
                let bars = self.remaining_barriers(0);
                let reason = format!("{} could not open its session", self.name);
                self.ctx.master.abandon(&self.ctx.rec, &bars, &reason);
            }
        }
    }

    fn close(&mut self) {
        // The last command that no step checked, if it ended non-zero.
        if let (Some(cmd), Some(s)) = (self.unchecked.take(), &self.session) {
            if !s.running() {
                if let Some(m) = s
                    .last_exit()
                    .and_then(|st| steps::unchecked_message(&cmd, &st))
                {
                    self.note(&m);
                    self.ctx.comment(&format!("{}: {m}", self.name));
                }
            }
        }
        let running = self.session.as_ref().is_some_and(|s| s.running());
        if running {
            let until = self.ctx.control.cleanup_until(Duration::from_secs(5));
            self.escalate(Signal::Int, Duration::from_millis(200), &until);
        }
        if let Some(mut s) = self.session.take() {
            // Whether the session ended by itself before dtest closed it.
            let gone = s.gone();
            let st = s.close(Duration::from_millis(300));
            let reason = match (gone, st) {
                (Some(g), _) => g,
                (_, Ok(Some(st))) => format!("closed (shell status {st})"),
                (_, Ok(None)) => "closed".to_string(),
                (_, Err(e)) => format!("closed with an error: {e}"),
            };
            // What left the session is stopped after the session's own
            // processes (on a remote host by the transport's close), and
            // named in the close event, the `.err` log and TAP.
            let mut reason = reason;
            for line in s.close_report() {
                self.note(&line);
                self.ctx.comment(&format!("{}: {line}", self.name));
                reason = format!("{reason}; {line}");
            }
            if let Some(stray) = self.stop_strays() {
                reason = format!("{reason}; {stray}");
            }
            let r = self
                .ctx
                .rec
                .local(self.sess_actor, EventData::Close { reason });
            self.ctx.health.trace(r);
        } else {
            self.stop_strays();
        }
        sink::lock(&self.logs).flush();
        let r = self.ctx.rec.flush();
        self.ctx.health.trace(r);
    }

    /// Stops this tester's processes on the controller that left their
    /// session (daemons of the local session or of `local` steps), and
    /// reports them (the `.err` log, a TAP comment); returns the report.
    fn stop_strays(&self) -> Option<String> {
        let found = stop_marked(
            &self.ctx.run_id,
            Some(&self.name),
            Duration::from_millis(500),
        );
        if found.is_empty() {
            return None;
        }
        let msg = describe_stopped(&found);
        self.note(&msg);
        self.ctx.comment(&format!("{}: {msg}", self.name));
        Some(msg)
    }

    /// The description of a step, without the tester's name: its name, or
    /// the automatic one. It derives from the step's definition only (never
    /// from how the step went), so that it is the same from run to run.
    fn describe_step(&self, step: &Step) -> String {
        match &step.name {
            Some(n) => self.expand_stable(n),
            None => steps::describe(self, step),
        }
    }

    /// A step's point description: the tester's name, then the step's.
    fn describe(&self, step: &Step) -> String {
        format!("{}: {}", self.name, self.describe_step(step))
    }

    fn steps(&mut self) {
        let steps = &self.ctx.sc.testers[self.ti].steps;
        let ctx = self.ctx;
        let defaults = ctx.sc.testers[self.ti]
            .defaults
            .as_ref()
            .unwrap_or(&ctx.sc.defaults);
        let mut i = 0;
        while i < steps.len() {
            let step = &steps[i];
            if let Some(stop) = self.ctx.control.check() {
                self.stopped_rest(i, &stop);
                return;
            }
            let t0 = Instant::now();
            let bare = self.describe_step(step);
            self.ctx
                .step_start(self.ti, i, steps.len(), &bare, deadline(step, defaults));
            let description = format!("{}: {bare}", self.name);
            let outcome = match &self.open_error {
                Some(e) => Outcome::fail(e.clone()),
                None => steps::run_step(self, step),
            };
            let failed = !outcome.ok && !matches!(outcome.directive, Some((Directive::Todo, _)));
            if failed {
                let msg = match &outcome.message {
                    Some(m) if !description.ends_with(m.as_str()) => format!("{description}: {m}"),
                    _ => description.clone(),
                };
                self.note(&format!("step {}: not ok: {msg}", i + 1));
            }
            let mut diag = Vec::new();
            if let Some(m) = outcome.message {
                if !outcome.ok {
                    diag.push(("message".to_string(), DiagValue::Text(m)));
                }
            }
            diag.extend(outcome.diag);
            self.ctx.emit(
                self.ti,
                Point {
                    number: 0,
                    tester: self.name.clone(),
                    ok: outcome.ok,
                    description,
                    directive: outcome.directive,
                    diag,
                    duration: t0.elapsed(),
                    note: None,
                },
            );
            sink::lock(&self.logs).flush();
            let r = self.ctx.rec.flush();
            self.ctx.health.trace(r);
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
                        let reason = if self.open_error.is_some() {
                            "no session"
                        } else {
                            "tester aborted"
                        };
                        self.abort(i, &format!("{} aborted", self.name), reason);
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
        self.ctx
            .master
            .abandon(&self.ctx.rec, &bars, barrier_reason);
        let running = self.session.as_ref().is_some_and(|s| s.running());
        if running {
            let g = self.defaults().terminate_grace.min(Duration::from_secs(1));
            self.stop_command(Signal::Int, g);
        }
        self.skip_rest(from, skip_reason, false);
    }

    fn stopped_rest(&mut self, from: usize, stop: &Stop) {
        let bars = self.remaining_barriers(from);
        match stop {
            Stop::AbortAll(t) => {
                let reason = format!("run aborted by {t}");
                self.ctx.master.abandon(&self.ctx.rec, &bars, &reason);
                self.skip_rest(from, &reason, false);
            }
            other => {
                self.ctx
                    .master
                    .abandon(&self.ctx.rec, &bars, &other.reason());
                self.skip_rest(from, "interrupted", true);
            }
        }
    }

    /// Reports steps `from..` as skipped (`ok # SKIP`) or, when
    /// `interrupted`, as `not ok ... # interrupted`.
    fn skip_rest(&mut self, from: usize, reason: &str, interrupted: bool) {
        let steps = &self.ctx.sc.testers[self.ti].steps;
        for step in &steps[from..] {
            let description = self.describe(step);
            let p = Point {
                number: 0,
                tester: self.name.clone(),
                ok: !interrupted,
                description,
                directive: (!interrupted).then(|| (Directive::Skip, reason.to_string())),
                diag: Vec::new(),
                duration: Duration::ZERO,
                note: interrupted.then(|| reason.to_string()),
            };
            self.ctx.emit(self.ti, p);
        }
    }
}

/// How long `step` may take at most, when it has a deadline (for the live
/// status: "12.4s/40s"): its `timeout`, or its kind's default.
fn deadline(step: &Step, d: &Defaults) -> Option<Duration> {
    let or = |default: Duration| Some(step.timeout.unwrap_or(default));
    match (&step.kind, step.kind.keyword()) {
        (StepKind::Sleep(t), _) => Some(*t),
        (_, "expect") => or(d.expect_timeout),
        (_, "barrier") => or(d.barrier_timeout),
        (_, "run" | "poll" | "send" | "pause" | "resume" | "wait" | "local") => or(d.wait_timeout),
        // The grace period, for each of up to three signals.
        (_, "terminate") => or(d.terminate_grace).map(|g| g * 3),
        (_, "put" | "get") => or(Duration::from_secs(600)),
        _ => step.timeout,
    }
}
