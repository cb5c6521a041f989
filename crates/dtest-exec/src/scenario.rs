//! The scenario model and its Rust builder API: [`Scenario`], [`Tester`],
//! [`Step`]. Scenario files ([`crate::load`]) produce the same model.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::matcher::Pattern;
use crate::session::Signal;
use crate::vars;

/// What happens after a failed step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFail {
    /// Run the next step anyway (the original DTest's behaviour).
    Continue,
    /// End this tester: remaining steps skipped, its barriers broken.
    Abort,
    /// End the whole run the same way.
    AbortAll,
}

impl OnFail {
    /// Parses `continue`, `abort`, `abort-all`.
    pub fn parse(s: &str) -> Option<OnFail> {
        match s {
            "continue" => Some(OnFail::Continue),
            "abort" => Some(OnFail::Abort),
            "abort-all" | "abort_all" => Some(OnFail::AbortAll),
            _ => None,
        }
    }
}

/// Values steps use when they do not set their own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Defaults {
    /// Deadline of an `expect`.
    pub expect_timeout: Duration,
    /// Deadline of a `barrier`.
    pub barrier_timeout: Duration,
    /// Deadline of a `wait` (and of the implicit wait of `run`), and of `local`.
    pub wait_timeout: Duration,
    /// Grace period between the signals of a `terminate`.
    pub terminate_grace: Duration,
    /// What a failed step does.
    pub on_fail: OnFail,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            expect_timeout: Duration::from_secs(10),
            barrier_timeout: Duration::from_secs(60),
            wait_timeout: Duration::from_secs(30),
            terminate_grace: Duration::from_secs(2),
            on_fail: OnFail::Abort,
        }
    }
}

/// The result a `custom` closure returns: `Ok(output)` passes,
/// `Err(message)` fails.
pub type CustomResult = Result<String, String>;

/// What a `custom` closure sees.
#[derive(Debug)]
pub struct CustomContext<'a> {
    /// The tester running the step.
    pub tester: &'a str,
    /// The run directory (`--out`).
    pub run_dir: &'a std::path::Path,
    /// The tester's variables at this point (captures included).
    pub vars: &'a BTreeMap<String, String>,
}

/// A closure run as a `custom` step.
pub type CustomFn = Arc<dyn Fn(&CustomContext<'_>) -> CustomResult + Send + Sync>;

/// What a step does.
#[derive(Clone)]
pub enum StepKind {
    /// An explicit verdict: passes when `pass`, with an optional directive.
    Ok {
        /// TAP description.
        description: String,
        /// Whether the verdict is `ok`.
        pass: bool,
        /// `# SKIP reason`.
        skip: Option<String>,
        /// `# TODO reason`.
        todo: Option<String>,
    },
    /// Starts a command in the session; with `status`, also waits for its
    /// end and checks its exit status (one step).
    Run {
        /// The command line.
        command: String,
        /// The exit status it must end with, if checked.
        status: Option<i32>,
    },
    /// Waits for a pattern in the output.
    Expect {
        /// Regex (or literal text).
        pattern: String,
        /// Whether `pattern` is literal text.
        literal: bool,
    },
    /// Waits until each of several patterns has appeared in the output,
    /// in any order (`expect = ["a", "b"]`).
    ExpectAll {
        /// Regexes (or literal texts).
        patterns: Vec<String>,
        /// Whether the patterns are literal text.
        literal: bool,
    },
    /// Runs a command again and again, every `every`, until it succeeds
    /// (ends with status 0; with `until`, its output matches `until`), within
    /// the step's deadline.
    Poll {
        /// The command line.
        command: String,
        /// A regex its output must match (then the status does not matter).
        until: Option<String>,
        /// The pause between the end of an attempt and the next start.
        every: Duration,
    },
    /// Writes text to the session.
    Send {
        /// The text (escapes already decoded by TOML).
        text: String,
        /// Recorded redacted.
        secret: bool,
    },
    /// Copies a controller file to the session's host.
    Put {
        /// Controller path (relative: to the run directory).
        from: String,
        /// Host path (relative: to the session's cwd); default the file name.
        to: Option<String>,
    },
    /// Copies a file of the session's host to the controller.
    Get {
        /// Host path.
        from: String,
        /// Controller path; default the run directory and the file name.
        to: Option<String>,
    },
    /// Meets the other testers naming this barrier.
    Barrier(String),
    /// Signals the running command, escalating to TERM then KILL.
    Terminate(Signal),
    /// Stops (SIGSTOP) the running command and every process it started:
    /// a stalled node (see `SCENARIO.md`).
    Pause,
    /// Continues (SIGCONT) what [`StepKind::Pause`] stopped.
    Resume,
    /// Waits for the running command to end.
    Wait {
        /// The exit status it must have.
        status: Option<i32>,
    },
    /// Pauses the tester.
    Sleep(Duration),
    /// Runs a command on the controller; its status is the verdict.
    Local(String),
    /// Runs a Rust closure on the controller.
    Custom(CustomFn),
}

impl fmt::Debug for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepKind::Custom(_) => f.write_str("Custom(..)"),
            StepKind::Ok {
                description, pass, ..
            } => write!(f, "Ok({description:?}, {pass})"),
            StepKind::Run { command, status } => write!(f, "Run({command:?}, {status:?})"),
            StepKind::Expect { pattern, .. } => write!(f, "Expect({pattern:?})"),
            StepKind::ExpectAll { patterns, .. } => write!(f, "ExpectAll({patterns:?})"),
            StepKind::Poll {
                command,
                until,
                every,
            } => write!(f, "Poll({command:?}, {until:?}, {every:?})"),
            StepKind::Send { secret, .. } => write!(f, "Send(secret: {secret})"),
            StepKind::Put { from, to } => write!(f, "Put({from:?}, {to:?})"),
            StepKind::Get { from, to } => write!(f, "Get({from:?}, {to:?})"),
            StepKind::Barrier(b) => write!(f, "Barrier({b:?})"),
            StepKind::Terminate(s) => write!(f, "Terminate({s})"),
            StepKind::Pause => f.write_str("Pause"),
            StepKind::Resume => f.write_str("Resume"),
            StepKind::Wait { status } => write!(f, "Wait({status:?})"),
            StepKind::Sleep(d) => write!(f, "Sleep({d:?})"),
            StepKind::Local(c) => write!(f, "Local({c:?})"),
        }
    }
}

impl StepKind {
    /// The step's keyword in scenario files.
    pub fn keyword(&self) -> &'static str {
        match self {
            StepKind::Ok { .. } => "ok",
            StepKind::Run { .. } => "run",
            StepKind::Expect { .. } | StepKind::ExpectAll { .. } => "expect",
            StepKind::Poll { .. } => "poll",
            StepKind::Send { .. } => "send",
            StepKind::Put { .. } => "put",
            StepKind::Get { .. } => "get",
            StepKind::Barrier(_) => "barrier",
            StepKind::Terminate(_) => "terminate",
            StepKind::Pause => "pause",
            StepKind::Resume => "resume",
            StepKind::Wait { .. } => "wait",
            StepKind::Sleep(_) => "sleep",
            StepKind::Local(_) => "local",
            StepKind::Custom(_) => "custom",
        }
    }
}

/// One step of a tester, with its own overrides.
#[derive(Clone, Debug)]
pub struct Step {
    /// What it does.
    pub kind: StepKind,
    /// A description replacing the automatic one.
    pub name: Option<String>,
    /// Deadline overriding the default for this kind.
    pub timeout: Option<Duration>,
    /// What a failure does, overriding the default.
    pub on_fail: Option<OnFail>,
}

impl Step {
    fn of(kind: StepKind) -> Step {
        Step {
            kind,
            name: None,
            timeout: None,
            on_fail: None,
        }
    }
    /// A passing verdict.
    pub fn ok(description: impl Into<String>) -> Step {
        Step::of(StepKind::Ok {
            description: description.into(),
            pass: true,
            skip: None,
            todo: None,
        })
    }
    /// A verdict that passes when `pass`.
    pub fn verdict(pass: bool, description: impl Into<String>) -> Step {
        Step::of(StepKind::Ok {
            description: description.into(),
            pass,
            skip: None,
            todo: None,
        })
    }
    /// Starts a command.
    pub fn run(command: impl Into<String>) -> Step {
        Step::of(StepKind::Run {
            command: command.into(),
            status: None,
        })
    }
    /// Runs a command, waits for its end and checks its exit status.
    pub fn run_status(command: impl Into<String>, status: i32) -> Step {
        Step::of(StepKind::Run {
            command: command.into(),
            status: Some(status),
        })
    }
    /// Waits for a regex in the output.
    pub fn expect(pattern: impl Into<String>) -> Step {
        Step::of(StepKind::Expect {
            pattern: pattern.into(),
            literal: false,
        })
    }
    /// Waits for literal text in the output.
    pub fn expect_literal(text: impl Into<String>) -> Step {
        Step::of(StepKind::Expect {
            pattern: text.into(),
            literal: true,
        })
    }
    /// Waits until each pattern (regex) has appeared, in any order.
    pub fn expect_all<S: Into<String>>(patterns: impl IntoIterator<Item = S>) -> Step {
        Step::of(StepKind::ExpectAll {
            patterns: patterns.into_iter().map(Into::into).collect(),
            literal: false,
        })
    }
    /// Runs `command` every `every` until it ends with status 0.
    pub fn poll(command: impl Into<String>, every: Duration) -> Step {
        Step::of(StepKind::Poll {
            command: command.into(),
            until: None,
            every,
        })
    }
    /// Runs `command` every `every` until its output matches `until`.
    pub fn poll_until(
        command: impl Into<String>,
        until: impl Into<String>,
        every: Duration,
    ) -> Step {
        Step::of(StepKind::Poll {
            command: command.into(),
            until: Some(until.into()),
            every,
        })
    }
    /// Writes text to the session.
    pub fn send(text: impl Into<String>) -> Step {
        Step::of(StepKind::Send {
            text: text.into(),
            secret: false,
        })
    }
    /// Writes text recorded redacted.
    pub fn send_secret(text: impl Into<String>) -> Step {
        Step::of(StepKind::Send {
            text: text.into(),
            secret: true,
        })
    }
    /// Copies a controller file to the host.
    pub fn put(from: impl Into<String>, to: impl Into<String>) -> Step {
        Step::of(StepKind::Put {
            from: from.into(),
            to: Some(to.into()),
        })
    }
    /// Copies a host file to the controller.
    pub fn get(from: impl Into<String>, to: impl Into<String>) -> Step {
        Step::of(StepKind::Get {
            from: from.into(),
            to: Some(to.into()),
        })
    }
    /// Meets the other testers at a barrier.
    pub fn barrier(name: impl Into<String>) -> Step {
        Step::of(StepKind::Barrier(name.into()))
    }
    /// Signals the running command.
    pub fn terminate(sig: Signal) -> Step {
        Step::of(StepKind::Terminate(sig))
    }
    /// Stops the running command and everything it started (SIGSTOP).
    pub fn pause() -> Step {
        Step::of(StepKind::Pause)
    }
    /// Continues a paused command (SIGCONT).
    pub fn resume() -> Step {
        Step::of(StepKind::Resume)
    }
    /// Waits for the running command to end.
    pub fn wait() -> Step {
        Step::of(StepKind::Wait { status: None })
    }
    /// Waits for the running command to end with `status`.
    pub fn wait_status(status: i32) -> Step {
        Step::of(StepKind::Wait {
            status: Some(status),
        })
    }
    /// Pauses.
    pub fn sleep(d: Duration) -> Step {
        Step::of(StepKind::Sleep(d))
    }
    /// Runs a command on the controller.
    pub fn local(command: impl Into<String>) -> Step {
        Step::of(StepKind::Local(command.into()))
    }
    /// Runs a closure on the controller; `name` describes it.
    pub fn custom(
        name: impl Into<String>,
        f: impl Fn(&CustomContext<'_>) -> CustomResult + Send + Sync + 'static,
    ) -> Step {
        let mut s = Step::of(StepKind::Custom(Arc::new(f)));
        s.name = Some(name.into());
        s
    }
    /// Sets the description.
    pub fn named(mut self, name: impl Into<String>) -> Step {
        self.name = Some(name.into());
        self
    }
    /// Sets the deadline.
    pub fn timeout(mut self, d: Duration) -> Step {
        self.timeout = Some(d);
        self
    }
    /// Sets what a failure does.
    pub fn on_fail(mut self, f: OnFail) -> Step {
        self.on_fail = Some(f);
        self
    }
    /// Marks a verdict `# SKIP reason`.
    pub fn skip(mut self, reason: impl Into<String>) -> Step {
        if let StepKind::Ok { skip, .. } = &mut self.kind {
            *skip = Some(reason.into());
        }
        self
    }
    /// Marks a verdict `# TODO reason`.
    pub fn todo(mut self, reason: impl Into<String>) -> Step {
        if let StepKind::Ok { todo, .. } = &mut self.kind {
            *todo = Some(reason.into());
        }
        self
    }
}

/// A tester: one session, a list of steps.
#[derive(Clone, Debug)]
pub struct Tester {
    /// Unique name.
    pub name: String,
    /// Host URL (`local`, `ssh://user@host:port`).
    pub host: String,
    /// Shell to start.
    pub shell: String,
    /// Whether the shell runs on a pty.
    pub pty: bool,
    /// Working directory of the session.
    pub cwd: Option<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Whether the session's output goes to the `.out`/`.err` logs and the
    /// trace (default). `false` keeps only the matching and the last lines
    /// for diagnostics: for commands printing gigabytes.
    pub record_output: bool,
    /// Transport-specific keys (`identity`, `x11`, ...), passed to the
    /// transport untouched (see [`crate::session::OpenSpec::options`]).
    pub options: BTreeMap<String, String>,
    /// This tester's step defaults, replacing the scenario's (`None`: the
    /// scenario's).
    pub defaults: Option<Defaults>,
}

impl Tester {
    /// A local tester with the default shell on a pty.
    pub fn new(name: impl Into<String>) -> Tester {
        Tester {
            name: name.into(),
            host: "local".into(),
            shell: "/bin/sh".into(),
            pty: true,
            cwd: None,
            env: Vec::new(),
            steps: Vec::new(),
            record_output: true,
            options: BTreeMap::new(),
            defaults: None,
        }
    }
    /// Sets the host URL.
    pub fn host(mut self, h: impl Into<String>) -> Tester {
        self.host = h.into();
        self
    }
    /// Sets the shell.
    pub fn shell(mut self, s: impl Into<String>) -> Tester {
        self.shell = s.into();
        self
    }
    /// Chooses pty or pipes.
    pub fn pty(mut self, pty: bool) -> Tester {
        self.pty = pty;
        self
    }
    /// Sets the working directory.
    pub fn cwd(mut self, c: impl Into<String>) -> Tester {
        self.cwd = Some(c.into());
        self
    }
    /// Adds an environment variable.
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Tester {
        self.env.push((k.into(), v.into()));
        self
    }
    /// Chooses whether the output is logged and traced.
    pub fn record_output(mut self, yes: bool) -> Tester {
        self.record_output = yes;
        self
    }
    /// Sets a transport-specific option.
    pub fn option(mut self, k: impl Into<String>, v: impl Into<String>) -> Tester {
        self.options.insert(k.into(), v.into());
        self
    }
    /// Sets this tester's step defaults (replacing the scenario's).
    pub fn defaults(mut self, d: Defaults) -> Tester {
        self.defaults = Some(d);
        self
    }
    /// Appends a step.
    pub fn step(mut self, s: Step) -> Tester {
        self.steps.push(s);
        self
    }
}

/// A whole scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Name (used in the default run directory and the trace).
    pub name: String,
    /// Free text.
    pub description: String,
    /// Deadline of the whole run.
    pub timeout: Duration,
    /// User variables, in definition order (values may use `${...}`).
    pub vars: Vec<(String, String)>,
    /// The variables of `vars` that hold a free port chosen for this run
    /// (`free_ports`): point descriptions show them by name.
    pub free_ports: Vec<String>,
    /// Defaults of the steps.
    pub defaults: Defaults,
    /// The testers.
    pub testers: Vec<Tester>,
    /// Directory of the scenario file (`${scenario_dir}`).
    pub scenario_dir: std::path::PathBuf,
}

impl Scenario {
    /// An empty scenario.
    pub fn new(name: impl Into<String>) -> Scenario {
        Scenario {
            name: name.into(),
            description: String::new(),
            timeout: Duration::from_secs(600),
            vars: Vec::new(),
            free_ports: Vec::new(),
            defaults: Defaults::default(),
            testers: Vec::new(),
            scenario_dir: std::env::current_dir().unwrap_or_default(),
        }
    }
    /// Sets the global deadline.
    pub fn timeout(mut self, d: Duration) -> Scenario {
        self.timeout = d;
        self
    }
    /// Sets a variable.
    pub fn var(mut self, k: impl Into<String>, v: impl Into<String>) -> Scenario {
        let k = k.into();
        self.vars.retain(|(n, _)| *n != k);
        self.vars.push((k, v.into()));
        self
    }
    /// Sets the defaults.
    pub fn defaults(mut self, d: Defaults) -> Scenario {
        self.defaults = d;
        self
    }
    /// Adds a tester.
    pub fn tester(mut self, t: Tester) -> Scenario {
        self.testers.push(t);
        self
    }

    /// Number of TAP points the run yields (one per step).
    pub fn plan(&self) -> usize {
        self.testers.iter().map(|t| t.steps.len()).sum()
    }

    /// Barrier names and, per name, the testers (indices) taking part and
    /// how many times each names it.
    pub fn barriers(&self) -> BTreeMap<String, Vec<(usize, usize)>> {
        let mut m: BTreeMap<String, Vec<(usize, usize)>> = BTreeMap::new();
        for (ti, t) in self.testers.iter().enumerate() {
            for s in &t.steps {
                if let StepKind::Barrier(b) = &s.kind {
                    let v = m.entry(b.clone()).or_default();
                    match v.iter_mut().find(|(i, _)| *i == ti) {
                        Some(e) => e.1 += 1,
                        None => v.push((ti, 1)),
                    }
                }
            }
        }
        m
    }

    /// Checks the scenario as a whole: names, variables (and the size of
    /// their expansions, see [`vars::MAX_VALUE`]), patterns, signals,
    /// barriers. Each problem names where it is.
    pub fn validate(&self, builtin_vars: &[&str]) -> Vec<Problem> {
        let mut probs = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (ti, t) in self.testers.iter().enumerate() {
            if let Some(m) = tester_name_problem(&t.name) {
                probs.push(Problem::new(Where::Tester(ti, "name"), m));
            }
            if let Some(first) = seen.insert(&t.name, ti) {
                probs.push(Problem::new(
                    Where::Tester(ti, "name"),
                    format!(
                        "duplicate tester `{}` (tester #{} has that name already)",
                        t.name,
                        first + 1
                    ),
                ));
            }
        }
        // A tester's default working directory, `<run_dir>/<name>`, must not
        // be another tester's log `<other>.in`, `.out` or `.err`.
        for (ti, t) in self.testers.iter().enumerate() {
            for ext in LOG_EXTENSIONS {
                let Some(stem) = t.name.strip_suffix(&format!(".{ext}")) else {
                    continue;
                };
                if seen.contains_key(stem) {
                    probs.push(Problem::new(
                        Where::Tester(ti, "name"),
                        format!(
                            "tester `{}` collides with tester `{stem}`'s log `{}` in the run directory (where `{}` would be its working directory): choose another name",
                            t.name, t.name, t.name
                        ),
                    ));
                }
            }
        }
        // Variables: user vars and built-ins, then captures as they appear,
        // each with the length it expands to (an upper bound; captures,
        // unknown before the run, count 0 and are checked when expanded).
        let builtin_len = |b: &str| -> u64 {
            match b {
                "scenario_dir" => self.scenario_dir.as_os_str().len() as u64,
                _ => vars::RUN_DIR_ALLOWANCE as u64,
            }
        };
        let mut known: HashMap<String, u64> = builtin_vars
            .iter()
            // `${index}` and `${item}` are replaced in tester templates when
            // the scenario is loaded: any left is outside a template.
            .filter(|b| !["tester", "index", "item"].contains(*b))
            .map(|b| (b.to_string(), builtin_len(b)))
            .collect();
        // `${X.name}`: a capture of tester `X`, checked against the
        // barriers below (crate::order).
        let testers: HashMap<&str, usize> = self
            .testers
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.as_str(), i))
            .collect();
        let cross: std::cell::RefCell<Vec<(Where, usize, usize, String)>> = Default::default();
        // Returns the length `s` expands to.
        let check = |w: Where, s: &str, known: &HashMap<String, u64>, probs: &mut Vec<Problem>| {
            match vars::references(s) {
                Err((off, msg)) => {
                    probs.push(Problem::at(w, off, msg));
                    0
                }
                Ok(refs) => {
                    for r in &refs {
                        if known.contains_key(&r.name) {
                            continue;
                        }
                        if let Some((t, n)) = r.name.rsplit_once('.') {
                            if let Some(ti) = testers.get(t) {
                                cross
                                    .borrow_mut()
                                    .push((w.clone(), r.offset, *ti, n.to_string()));
                                continue;
                            }
                        }
                        let msg = if r.name == "tester" && matches!(w, Where::Var(_)) {
                            "`${tester}` cannot be used in [vars], which are the same for every tester (use it in a tester's keys and steps)".to_string()
                        } else if r.name == "index" {
                            "`${index}` is defined in tester templates only (a tester with `count` or `each`)".to_string()
                        } else if r.name == "item" {
                            "`${item}` is defined in `each` templates only (a tester with `each = [...]`)".to_string()
                        } else {
                            format!("undefined variable `${{{}}}`", r.name)
                        };
                        probs.push(Problem::at(w.clone(), r.offset, msg));
                    }
                    vars::expanded_len(s, &|n| known.get(n).copied()).unwrap_or(0)
                }
            }
        };
        let too_big = |w: Where, what: &str, n: u64, probs: &mut Vec<Problem>| {
            if n > vars::MAX_VALUE as u64 {
                let mut size = vars::fmt_size(n);
                if n < 2 * vars::MAX_VALUE as u64 {
                    // `1.0 MiB` alone would not say why it is too big.
                    size.push_str(&format!(" ({n} bytes)"));
                }
                probs.push(Problem::new(
                    w,
                    format!(
                        "{what} expands to {size}, more than the {} an expanded value may have",
                        vars::fmt_size(vars::MAX_VALUE as u64)
                    ),
                ));
            }
        };
        let mut total: u64 = 0;
        let mut total_reported = false;
        for (i, (k, v)) in self.vars.iter().enumerate() {
            if builtin_vars.contains(&k.as_str()) {
                probs.push(Problem::new(
                    Where::Var(i),
                    format!(
                        "`{k}` is a built-in variable: a variable of that name would replace it"
                    ),
                ));
            }
            let n = check(Where::Var(i), v, &known, &mut probs);
            too_big(Where::Var(i), &format!("`{k}`"), n, &mut probs);
            total = total.saturating_add(n.min(vars::MAX_VALUE as u64 + 1));
            if total > vars::MAX_VARS_TOTAL as u64 && !total_reported {
                total_reported = true;
                probs.push(Problem::new(
                    Where::Var(i),
                    format!(
                        "the [vars] values expand to more than {} together (with `{k}`)",
                        vars::fmt_size(vars::MAX_VARS_TOTAL as u64)
                    ),
                ));
            }
            known.insert(k.clone(), n.min(vars::MAX_VALUE as u64 + 1));
        }
        for (ti, t) in self.testers.iter().enumerate() {
            let mut known = known.clone();
            known.insert("tester".into(), t.name.len() as u64);
            let n = check(Where::Tester(ti, "host"), &t.host, &known, &mut probs);
            too_big(Where::Tester(ti, "host"), "`host`", n, &mut probs);
            if let Some(c) = &t.cwd {
                let n = check(Where::Tester(ti, "cwd"), c, &known, &mut probs);
                too_big(Where::Tester(ti, "cwd"), "`cwd`", n, &mut probs);
            }
            for (k, v) in &t.env {
                let n = check(Where::Tester(ti, "env"), v, &known, &mut probs);
                too_big(
                    Where::Tester(ti, "env"),
                    &format!("`env.{k}`"),
                    n,
                    &mut probs,
                );
            }
            for (si, s) in t.steps.iter().enumerate() {
                let w = |f: &'static str| Where::Step(ti, si, f);
                let kw = s.kind.keyword();
                macro_rules! value {
                    ($f:expr, $v:expr) => {{
                        let f: &'static str = $f;
                        let n = check(w(f), $v, &known, &mut probs);
                        too_big(w(f), &format!("`{f}`"), n, &mut probs);
                    }};
                }
                match &s.kind {
                    StepKind::Ok {
                        description,
                        skip,
                        todo,
                        ..
                    } => {
                        value!(kw, description);
                        for (f, r) in [("skip", skip), ("todo", todo)] {
                            if let Some(r) = r {
                                value!(f, r);
                            }
                        }
                        if skip.is_some() && todo.is_some() {
                            probs.push(Problem::new(w("todo"), "a verdict is either skip or todo"));
                        }
                    }
                    StepKind::Run { command: c, .. } | StepKind::Local(c) => value!(kw, c),
                    StepKind::Send { text, .. } => value!(kw, text),
                    StepKind::Put { from, to } | StepKind::Get { from, to } => {
                        value!(kw, from);
                        if let Some(to) = to {
                            value!("to", to);
                        }
                    }
                    StepKind::Barrier(b) => {
                        // Participants are computed from the names as
                        // written, before the run: no variables here.
                        if let Some(off) = b.find("${") {
                            probs.push(Problem::at(
                                w(kw),
                                off,
                                "a barrier name cannot use variables (its participants are known before the run)",
                            ));
                        }
                    }
                    StepKind::Expect { pattern, literal } => {
                        value!(kw, pattern);
                        // Variables are expanded at run time; check the
                        // pattern as written when it has none.
                        let has_vars = pattern.contains("${");
                        match Pattern::new(pattern, *literal) {
                            Ok(p) => {
                                for n in p.capture_names() {
                                    if builtin_vars.contains(&n.as_str()) {
                                        let msg = format!(
                                            "the capture group `{n}` has the name of a built-in variable, which it would replace: rename it"
                                        );
                                        probs.push(match group_offset(pattern, &n) {
                                            Some(off) => Problem::at(w(kw), off, msg),
                                            None => Problem::new(w(kw), msg),
                                        });
                                    }
                                }
                            }
                            Err(e) if !has_vars => probs.push(Problem::new(w(kw), e)),
                            Err(_) => {}
                        }
                    }
                    StepKind::ExpectAll { patterns, literal } => {
                        if patterns.is_empty() {
                            probs.push(Problem::new(
                                w(kw),
                                "an unordered `expect` needs at least one pattern",
                            ));
                        }
                        for pattern in patterns {
                            value!(kw, pattern);
                            if let Err(e) = Pattern::new(pattern, *literal) {
                                if !pattern.contains("${") {
                                    probs.push(Problem::new(w(kw), format!("`{pattern}`: {e}")))
                                }
                            }
                        }
                    }
                    StepKind::Poll { command, until, .. } => {
                        value!(kw, command);
                        if let Some(u) = until {
                            value!("until", u);
                            if let Err(e) = Pattern::new(u, false) {
                                if !u.contains("${") {
                                    probs.push(Problem::new(w("until"), e))
                                }
                            }
                        }
                    }
                    StepKind::Terminate(sig) => {
                        if !sig.terminates() {
                            let use_instead = match sig {
                                Signal::Stop => "a stopped command does not end; `pause` stops it and `resume` continues it",
                                _ => "it does not end a command; `resume` continues a paused one",
                            };
                            probs.push(Problem::new(
                                w(kw),
                                format!(
                                    "`terminate` cannot send {sig}: {use_instead}; expected one of: {}",
                                    Signal::TERMINATING.map(|s| s.name()).join(", ")
                                ),
                            ));
                        }
                    }
                    StepKind::Pause
                    | StepKind::Resume
                    | StepKind::Wait { .. }
                    | StepKind::Sleep(_)
                    | StepKind::Custom(_) => {}
                }
                // The step's captures are variables of the steps after it
                // (a pattern with variables is known at run time only: its
                // groups are read as written, `(?P<name>`).
                for n in crate::order::captures_of(&s.kind) {
                    if !builtin_vars.contains(&n.as_str()) {
                        known.insert(n, 0);
                    }
                }
                if let Some(n) = &s.name {
                    value!("name", n);
                }
            }
        }
        // Values across testers.
        let occ = crate::order::occurrences(self);
        for (w, off, x, name) in cross.into_inner() {
            let r = match &w {
                Where::Step(from, si, _) => {
                    crate::order::cross_use(self, &occ, *from, *si, x, &name)
                }
                _ => Err(format!(
                    "`${{{}.{name}}}`: a tester's keys are used when its session opens, before any barrier: a capture of another tester can only be used in steps",
                    self.testers[x].name
                )),
            };
            if let Err(m) = r {
                probs.push(Problem::at(w, off, m));
            }
        }
        // Barriers: at least two testers, the same number of times each.
        let mut firsts: HashMap<String, (usize, usize)> = HashMap::new();
        for (ti, t) in self.testers.iter().enumerate() {
            for (si, s) in t.steps.iter().enumerate() {
                if let StepKind::Barrier(b) = &s.kind {
                    firsts.entry(b.clone()).or_insert((ti, si));
                }
            }
        }
        for (name, parts) in self.barriers() {
            let (ti, si) = firsts[&name];
            if parts.len() < 2 {
                probs.push(Problem::new(
                    Where::Step(ti, si, "barrier"),
                    format!(
                        "barrier `{name}` is joined by tester `{}` only; a barrier needs at least two testers",
                        self.testers[ti].name
                    ),
                ));
            } else if parts.iter().any(|p| p.1 != parts[0].1) {
                let counts: Vec<String> = parts
                    .iter()
                    .map(|(t, n)| format!("{} {}x", self.testers[*t].name, n))
                    .collect();
                probs.push(Problem::new(
                    Where::Step(ti, si, "barrier"),
                    format!(
                        "barrier `{name}` is joined a different number of times by its testers ({})",
                        counts.join(", ")
                    ),
                ));
            }
        }
        if probs.is_empty() {
            probs.extend(crate::order::deadlocks(self));
        }
        probs
    }
}

/// The trace's file name in the run directory.
pub const TRACE_FILE: &str = "trace.dtrace";

/// The lock file of the run directory: `dtest exec` holds an advisory lock
/// (`flock`) on it while it runs, so two runs never write one directory.
pub const LOCK_FILE: &str = "dtest.lock";

/// The HTML report `dtest exec` writes at the end (`dtest report`).
pub const REPORT_FILE: &str = "report.html";

/// The files of the run directory other than the testers' own: no tester
/// may be named like them (its working directory would be one of them).
pub const RUN_DIR_FILES: [&str; 3] = [TRACE_FILE, LOCK_FILE, REPORT_FILE];

/// The extensions of a tester's logs, `<tester>.in`, `.out`, `.err`.
pub const LOG_EXTENSIONS: [&str; 3] = ["in", "out", "err"];

/// The longest tester name: with a log's extension it stays a valid file
/// name anywhere (`NAME_MAX` is 255 bytes).
pub const MAX_TESTER_NAME: usize = 128;

/// What is wrong with a tester's name, if anything. A name is a file name
/// component in the run directory (its logs, its default working
/// directory `<run_dir>/<name>`) and an actor of the trace.
pub fn tester_name_problem(name: &str) -> Option<String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        return Some(format!(
            "bad tester name `{name}`: use letters, digits, `_`, `-`, `.`"
        ));
    }
    if name == "." || name == ".." {
        return Some(format!(
            "bad tester name `{name}`: it names a directory (`{name}` in a path), not a file of the run directory"
        ));
    }
    if name.len() > MAX_TESTER_NAME {
        return Some(format!(
            "tester name too long ({} characters; at most {MAX_TESTER_NAME})",
            name.len()
        ));
    }
    if name == "master" {
        return Some("`master` is reserved for the barrier coordinator".into());
    }
    if RUN_DIR_FILES.contains(&name) {
        return Some(format!(
            "tester `{name}` collides with the run directory's `{name}` (its working directory would be that file): choose another name"
        ));
    }
    None
}

/// The byte offset of capture group `name` in `pattern` (`(?P<name>` or
/// `(?<name>`), if written that way.
fn group_offset(pattern: &str, name: &str) -> Option<usize> {
    [format!("(?P<{name}>"), format!("(?<{name}>")]
        .iter()
        .filter_map(|g| pattern.find(g.as_str()))
        .min()
}

/// Where a [`Problem`] is in the scenario.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Where {
    /// The `[vars]` entry number `i`.
    Var(usize),
    /// A key of tester `t`.
    Tester(usize, &'static str),
    /// A key of step `s` of tester `t`.
    Step(usize, usize, &'static str),
}

/// A mistake found by [`Scenario::validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where.
    pub at: Where,
    /// Byte offset inside the value's string, when known.
    pub offset: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    fn new(at: Where, message: impl Into<String>) -> Problem {
        Problem {
            at,
            offset: None,
            message: message.into(),
        }
    }
    fn at(at: Where, offset: usize, message: impl Into<String>) -> Problem {
        Problem {
            at,
            offset: Some(offset),
            message: message.into(),
        }
    }
}
