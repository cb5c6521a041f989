//! The steps: one table of step definitions ([`STEPS`]: keyword, keys,
//! what it does) from which the scenario loader takes its keywords and
//! allowed keys, and one file per step kind that runs it.
//!
//! A step returns an [`Outcome`]: facts (passed or not, a failure message,
//! diagnostics), never a formatted TAP line; the tester turns it into a
//! point. A point's description comes from the step's definition only
//! ([`describe`]): how the step went (how long it waited, which status or
//! signal ended a command) goes to the diagnostics, so that the point keeps
//! its name from run to run.

mod barrier;
mod custom;
mod expect;
mod local;
mod pause;
mod poll;
mod run;
mod send;
mod sleep;
mod terminate;
mod transfer;
mod verdict;
mod wait;

use dtest_trace::{Directive, ExitStatus};

use crate::duration::fmt_duration;
use crate::matcher::shown;
use crate::report::DiagValue;
use crate::runner::tester::TesterRun;
use crate::scenario::{Step, StepKind};
use crate::session::Signal;

/// One step kind: its keyword in scenario files, the keys it takes besides
/// [`COMMON_KEYS`], and one line saying what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepDef {
    /// The action key (`expect`).
    pub keyword: &'static str,
    /// Its other keys (`literal`).
    pub keys: &'static [&'static str],
    /// What it does.
    pub summary: &'static str,
}

/// The pause between the attempts of a `poll` that names none.
pub const POLL_EVERY: std::time::Duration = poll::DEFAULT_EVERY;

/// Keys every step takes.
pub const COMMON_KEYS: &[&str] = &["name", "timeout", "on_fail"];

/// Every step kind of scenario files (`custom` exists in the Rust API only).
pub const STEPS: &[StepDef] = &[
    StepDef {
        keyword: "ok",
        keys: &["pass", "skip", "todo"],
        summary: "an explicit verdict",
    },
    StepDef {
        keyword: "run",
        keys: &["status"],
        summary: "starts a command in the session",
    },
    StepDef {
        keyword: "expect",
        keys: &["literal"],
        summary: "waits until the output matches a pattern",
    },
    StepDef {
        keyword: "poll",
        keys: &["until", "every"],
        summary: "runs a command every interval until it succeeds (or its output matches)",
    },
    StepDef {
        keyword: "send",
        keys: &["secret"],
        summary: "writes text to the running command's input",
    },
    StepDef {
        keyword: "put",
        keys: &["to"],
        summary: "copies a controller file to the session's host",
    },
    StepDef {
        keyword: "get",
        keys: &["to"],
        summary: "copies a file of the session's host to the controller",
    },
    StepDef {
        keyword: "barrier",
        keys: &[],
        summary: "meets the other testers naming the barrier",
    },
    StepDef {
        keyword: "terminate",
        keys: &[],
        summary: "stops the running command (signal, then TERM, then KILL)",
    },
    StepDef {
        keyword: "pause",
        keys: &[],
        summary: "stops the running command and what it started (SIGSTOP), not the shell",
    },
    StepDef {
        keyword: "resume",
        keys: &[],
        summary: "continues a paused command (SIGCONT)",
    },
    StepDef {
        keyword: "wait",
        keys: &["status"],
        summary: "waits for the running command to end",
    },
    StepDef {
        keyword: "sleep",
        keys: &[],
        summary: "pauses the tester",
    },
    StepDef {
        keyword: "local",
        keys: &[],
        summary: "runs a command on the controller; its status is the verdict",
    },
];

/// The definition of `keyword`.
pub fn def(keyword: &str) -> Option<&'static StepDef> {
    STEPS.iter().find(|d| d.keyword == keyword)
}

/// Every key a step may have (actions, their keys, the common keys).
pub fn all_keys() -> impl Iterator<Item = &'static str> {
    STEPS
        .iter()
        .flat_map(|d| std::iter::once(d.keyword).chain(d.keys.iter().copied()))
        .chain(COMMON_KEYS.iter().copied())
}

/// What a step found.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    pub(crate) ok: bool,
    /// Why it failed.
    pub(crate) message: Option<String>,
    pub(crate) directive: Option<(Directive, String)>,
    /// Diagnostics after the message.
    pub(crate) diag: Vec<(String, DiagValue)>,
}

impl Outcome {
    pub(crate) fn pass() -> Outcome {
        Outcome {
            ok: true,
            ..Outcome::default()
        }
    }

    pub(crate) fn fail(message: impl Into<String>) -> Outcome {
        Outcome {
            ok: false,
            message: Some(message.into()),
            ..Outcome::default()
        }
    }

    pub(crate) fn diag(mut self, key: &str, v: DiagValue) -> Outcome {
        self.diag.push((key.to_string(), v));
        self
    }

    pub(crate) fn text(self, key: &str, v: impl Into<String>) -> Outcome {
        self.diag(key, DiagValue::Text(v.into()))
    }
}

/// The description of a step (its point's, after the tester's name): from
/// its definition only, the same whether it passes, fails or is skipped,
/// and from run to run (see [`TesterRun::expand_stable`]).
pub(crate) fn describe(tr: &TesterRun<'_>, step: &Step) -> String {
    let x = |s: &str| tr.expand_stable(s);
    match &step.kind {
        StepKind::Ok { description, .. } => x(description),
        StepKind::Run {
            command,
            status: None,
        } => format!("run `{}`", x(command)),
        StepKind::Run {
            command,
            status: Some(st),
        } => format!("run `{}` (status {st})", x(command)),
        StepKind::Expect { pattern, literal } => format!("expect {}", shown(&x(pattern), *literal)),
        StepKind::ExpectAll { patterns, literal } => {
            let ps: Vec<String> = patterns.iter().map(|p| shown(&x(p), *literal)).collect();
            format!("expect all of {}", ps.join(", "))
        }
        StepKind::Poll { command, until, .. } => match until {
            Some(u) => format!("poll `{}` until /{}/", x(command), x(u)),
            None => format!("poll `{}`", x(command)),
        },
        StepKind::Send { text, secret } => {
            if *secret {
                "send (secret)".into()
            } else {
                format!("send {:?}", x(text))
            }
        }
        StepKind::Put { from, to } | StepKind::Get { from, to } => {
            let op = if matches!(step.kind, StepKind::Put { .. }) {
                "put"
            } else {
                "get"
            };
            let to = match to {
                Some(t) => x(t),
                None => transfer::file_name_of(&x(from)),
            };
            format!("{op} {} -> {to}", x(from))
        }
        StepKind::Barrier(b) => format!("barrier \"{}\"", x(b)),
        StepKind::Terminate(s) => format!("terminate ({s})"),
        StepKind::Pause => "pause (SIGSTOP)".into(),
        StepKind::Resume => "resume (SIGCONT)".into(),
        StepKind::Wait { status: None } => "wait for the command's end".into(),
        StepKind::Wait { status: Some(st) } => format!("wait for the command's end (status {st})"),
        StepKind::Sleep(d) => format!("sleep {}", fmt_duration(*d)),
        StepKind::Local(c) => format!("local `{}`", x(c)),
        StepKind::Custom(_) => "custom step".into(),
    }
}

/// What a step did with an unchecked command (after it ran, so that a
/// command that ended during a `sleep` or a `barrier` is seen).
fn unchecked_after(tr: &mut TesterRun<'_>, step: &Step, o: &Outcome) -> Option<String> {
    let cmd = tr.unchecked.clone()?;
    match &step.kind {
        // They observe the command's end.
        StepKind::Wait { .. } | StepKind::Terminate(_) => {
            tr.unchecked = None;
            None
        }
        // An expect that failed because the command ended said so.
        StepKind::Expect { .. } if o.diag.iter().any(|(k, _)| k == "command_ended") => {
            tr.unchecked = None;
            None
        }
        // They use the running command: a later step may still check it.
        StepKind::Expect { .. } | StepKind::Send { .. } | StepKind::Pause | StepKind::Resume => {
            None
        }
        // `run` waits for the previous command's end itself (run.rs).
        StepKind::Run { .. } => None,
        _ => {
            let (running, st) = match tr.session() {
                Ok(s) => (s.running(), s.last_exit()),
                Err(_) => return None,
            };
            if running {
                return None;
            }
            tr.unchecked = None;
            st.and_then(|st| unchecked_message(&cmd, &st))
        }
    }
}

/// The report of an unchecked command that ended with `st`, if not 0.
pub(crate) fn unchecked_message(cmd: &str, st: &ExitStatus) -> Option<String> {
    if matches!(st, ExitStatus::Code(0)) {
        return None;
    }
    Some(format!(
        "command `{cmd}` ended with status {st} and no step checked it"
    ))
}

/// Takes the unchecked command, if any (for `run`, which waits for its end).
pub(super) fn take_unchecked(tr: &mut TesterRun<'_>) -> Option<String> {
    tr.unchecked.take()
}

/// Runs one step; an earlier command that ended non-zero with no step
/// checking it is reported on this step's point (a diagnostic) and in the
/// tester's `.err` log.
pub(crate) fn run_step(tr: &mut TesterRun<'_>, step: &Step) -> Outcome {
    let was_unchecked = tr.unchecked.is_some();
    let mut o = run_step_inner(tr, step);
    let seen = if was_unchecked {
        unchecked_after(tr, step, &o)
    } else {
        None
    };
    if let StepKind::Run { command, status } = &step.kind {
        // A started command without `status` is unchecked until a step
        // observes its end.
        if status.is_none() && o.ok {
            let cmd = tr.expand(command).unwrap_or_else(|_| command.clone());
            tr.unchecked = Some(cmd);
        }
    }
    if let Some(m) = seen {
        tr.note(&m);
        o = o.text("unchecked", m);
    }
    o
}

fn run_step_inner(tr: &mut TesterRun<'_>, step: &Step) -> Outcome {
    let d = tr.defaults().clone();
    macro_rules! x {
        ($s:expr) => {
            match tr.expand($s) {
                Ok(v) => v,
                Err(e) => return Outcome::fail(e),
            }
        };
    }
    let timeout = |default| step.timeout.unwrap_or(default);
    match &step.kind {
        StepKind::Ok {
            pass, skip, todo, ..
        } => {
            let skip = skip.as_ref().map(|r| tr.expand(r));
            let todo = todo.as_ref().map(|r| tr.expand(r));
            verdict::run(*pass, skip, todo)
        }
        StepKind::Run { command, status } => {
            run::run(tr, &x!(command), *status, timeout(d.wait_timeout))
        }
        StepKind::Expect { pattern, literal } => {
            expect::run(tr, &x!(pattern), *literal, timeout(d.expect_timeout))
        }
        StepKind::ExpectAll { patterns, literal } => {
            let mut ps = Vec::with_capacity(patterns.len());
            for p in patterns {
                ps.push(x!(p));
            }
            expect::run_all(tr, &ps, *literal, timeout(d.expect_timeout))
        }
        StepKind::Poll {
            command,
            until,
            every,
        } => {
            let until = match until {
                Some(u) => Some(x!(u)),
                None => None,
            };
            poll::run(
                tr,
                &x!(command),
                until.as_deref(),
                *every,
                timeout(d.wait_timeout),
            )
        }
        StepKind::Send { text, secret } => {
            send::run(tr, x!(text).as_bytes(), *secret, timeout(d.wait_timeout))
        }
        StepKind::Put { from, to } => {
            let from = x!(from);
            let to = match to {
                Some(t) => x!(t),
                None => transfer::file_name_of(&from),
            };
            transfer::run(tr, true, &from, &to, timeout(transfer::DEFAULT_TIMEOUT))
        }
        StepKind::Get { from, to } => {
            let from = x!(from);
            let to = match to {
                Some(t) => x!(t),
                None => transfer::file_name_of(&from),
            };
            transfer::run(tr, false, &from, &to, timeout(transfer::DEFAULT_TIMEOUT))
        }
        StepKind::Barrier(b) => barrier::run(tr, &x!(b), timeout(d.barrier_timeout)),
        StepKind::Terminate(sig) => terminate::run(tr, *sig, timeout(d.terminate_grace)),
        StepKind::Pause => pause::run(tr, Signal::Stop, timeout(d.wait_timeout)),
        StepKind::Resume => pause::run(tr, Signal::Cont, timeout(d.wait_timeout)),
        StepKind::Wait { status } => wait::run(tr, *status, timeout(d.wait_timeout)),
        StepKind::Sleep(dur) => sleep::run(tr, *dur),
        StepKind::Local(c) => local::run(tr, step.name.clone(), &x!(c), timeout(d.wait_timeout)),
        StepKind::Custom(f) => custom::run(tr, step.name.clone(), f),
    }
}
