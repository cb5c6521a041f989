//! The plan of a scenario, as `dtest exec --dry-run` prints it: what would
//! run, after templates, includes and the variables known before the run
//! are expanded, without starting anything (the original DTest's
//! pseudo-exec).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::duration::fmt_duration;
use crate::matcher::shown;
use crate::scenario::{Defaults, OnFail, Scenario, Step, StepKind, Tester};
use crate::vars;

/// Renders the plan of `sc`: the testers with their host, shell and
/// deadlines, every step numbered in its tester (TAP numbers points in the
/// order they end, which only the run decides), and the barriers with
/// their participants. Variables known only at run time (`${run_dir}`,
/// captures) stay as written.
pub fn render(sc: &Scenario) -> String {
    let known = static_vars(sc);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "scenario \"{}\": {} testers, {} points, run deadline {}",
        sc.name,
        sc.testers.len(),
        sc.plan(),
        fmt_duration(sc.timeout)
    );
    if !sc.vars.is_empty() {
        let _ = writeln!(o, "\nvariables:");
        for (k, _) in &sc.vars {
            let v = known
                .get(k)
                .cloned()
                .unwrap_or_else(|| "(known at run time)".into());
            let _ = writeln!(o, "  {k} = {v:?}");
        }
    }
    for t in &sc.testers {
        let _ = writeln!(o, "\ntester {}", t.name);
        let x = |s: &str| expand(s, &known, t);
        let _ = writeln!(
            o,
            "  host {}, shell {} on {}",
            x(&t.host),
            t.shell,
            if t.pty { "a pty" } else { "pipes" }
        );
        if let Some(c) = &t.cwd {
            let _ = writeln!(o, "  cwd {}", x(c));
        }
        for (k, v) in &t.options {
            let _ = writeln!(o, "  {k} = {:?}", x(v));
        }
        let d = t.defaults.as_ref().unwrap_or(&sc.defaults);
        let _ = writeln!(
            o,
            "  deadlines: expect {}, barrier {}, wait {}; on_fail {}",
            fmt_duration(d.expect_timeout),
            fmt_duration(d.barrier_timeout),
            fmt_duration(d.wait_timeout),
            match d.on_fail {
                OnFail::Continue => "continue",
                OnFail::Abort => "abort",
                OnFail::AbortAll => "abort-all",
            }
        );
        for (i, s) in t.steps.iter().enumerate() {
            let _ = writeln!(o, "  {:>4}. {}", i + 1, step_line(s, d, &x));
        }
    }
    let barriers = sc.barriers();
    if !barriers.is_empty() {
        let _ = writeln!(o, "\nbarriers:");
        for (b, parts) in barriers {
            let names: Vec<String> = parts
                .iter()
                .map(|(ti, n)| {
                    let name = &sc.testers[*ti].name;
                    if *n > 1 {
                        format!("{name} ({n}x)")
                    } else {
                        name.clone()
                    }
                })
                .collect();
            let _ = writeln!(o, "  \"{b}\": {}", names.join(", "));
        }
    }
    o
}

/// The variables known before the run, expanded.
fn static_vars(sc: &Scenario) -> BTreeMap<String, String> {
    let mut known = BTreeMap::new();
    known.insert(
        "scenario_dir".to_string(),
        sc.scenario_dir.display().to_string(),
    );
    for (k, v) in &sc.vars {
        if let Ok(x) = vars::expand(v, &|n| known.get(n).cloned()) {
            known.insert(k.clone(), x);
        }
    }
    known
}

/// Expands what is known; a reference to anything else stays as written.
fn expand(s: &str, known: &BTreeMap<String, String>, t: &Tester) -> String {
    let Ok(refs) = vars::references(s) else {
        return s.to_string();
    };
    let mut vals: Vec<(String, String)> = Vec::new();
    for r in refs {
        let v = match r.name.as_str() {
            "tester" => Some(t.name.clone()),
            n => known.get(n).cloned(),
        };
        if let Some(v) = v {
            vals.push((r.name, v));
        }
    }
    vars::substitute(s, &vals)
}

fn step_line(s: &Step, d: &Defaults, x: &dyn Fn(&str) -> String) -> String {
    let deadline = |def| format!(" (within {})", fmt_duration(s.timeout.unwrap_or(def)));
    let what = match &s.kind {
        StepKind::Ok {
            description,
            pass,
            skip,
            todo,
        } => {
            let mut v = format!("ok {:?}", x(description));
            if !pass {
                v.push_str(" (fails)");
            }
            if let Some(r) = skip {
                v.push_str(&format!(" # SKIP {}", x(r)));
            }
            if let Some(r) = todo {
                v.push_str(&format!(" # TODO {}", x(r)));
            }
            v
        }
        StepKind::Run { command, status } => match status {
            Some(st) => format!(
                "run `{}`, status {st}{}",
                x(command),
                deadline(d.wait_timeout)
            ),
            None => format!("run `{}`", x(command)),
        },
        StepKind::Expect { pattern, literal } => format!(
            "expect {}{}",
            shown(&x(pattern), *literal),
            deadline(d.expect_timeout)
        ),
        StepKind::ExpectAll { patterns, literal } => {
            let ps: Vec<String> = patterns.iter().map(|p| shown(&x(p), *literal)).collect();
            format!(
                "expect all of {}, any order{}",
                ps.join(", "),
                deadline(d.expect_timeout)
            )
        }
        StepKind::Poll {
            command,
            until,
            every,
        } => {
            let until = until
                .as_ref()
                .map(|u| format!(" until /{}/", x(u)))
                .unwrap_or_else(|| " until status 0".into());
            format!(
                "poll `{}`{until}, every {}{}",
                x(command),
                fmt_duration(*every),
                deadline(d.wait_timeout)
            )
        }
        StepKind::Send { text, secret } => {
            if *secret {
                "send (secret)".into()
            } else {
                format!("send {:?}", x(text))
            }
        }
        StepKind::Put { from, to } => format!(
            "put {} -> {}",
            x(from),
            to.as_deref().map(x).unwrap_or_else(|| "(same name)".into())
        ),
        StepKind::Get { from, to } => format!(
            "get {} -> {}",
            x(from),
            to.as_deref().map(x).unwrap_or_else(|| "(same name)".into())
        ),
        StepKind::Barrier(b) => format!("barrier \"{b}\"{}", deadline(d.barrier_timeout)),
        StepKind::Terminate(sig) => format!("terminate ({sig}, then TERM, then KILL)"),
        StepKind::Pause => "pause (SIGSTOP)".into(),
        StepKind::Resume => "resume (SIGCONT)".into(),
        StepKind::Wait { status } => match status {
            Some(st) => format!("wait, status {st}{}", deadline(d.wait_timeout)),
            None => format!("wait{}", deadline(d.wait_timeout)),
        },
        StepKind::Sleep(dur) => format!("sleep {}", fmt_duration(*dur)),
        StepKind::Local(c) => format!("local `{}`{}", x(c), deadline(d.wait_timeout)),
        StepKind::Custom(_) => "custom step".into(),
    };
    match &s.name {
        Some(n) => format!("{} [{what}]", x(n)),
        None => what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Step, Tester};
    use std::time::Duration;

    #[test]
    fn plan_lists_testers_steps_and_barriers() {
        let sc = Scenario::new("p")
            .var("port", "6379")
            .var("dir", "${run_dir}/x")
            .tester(
                Tester::new("srv")
                    .step(Step::run("serve ${port} in ${dir} as ${tester}"))
                    .step(Step::expect("up").timeout(Duration::from_secs(3)))
                    .step(Step::barrier("ready")),
            )
            .tester(
                Tester::new("cli")
                    .step(Step::barrier("ready"))
                    .step(Step::poll("ping ${port}", Duration::from_millis(200))),
            );
        let p = render(&sc);
        assert!(p.starts_with("scenario \"p\": 2 testers, 5 points"), "{p}");
        assert!(
            p.contains("  port = \"6379\"\n  dir = \"(known at run time)\""),
            "{p}"
        );
        assert!(
            p.contains("     1. run `serve 6379 in ${dir} as srv`"),
            "{p}"
        );
        assert!(p.contains("     2. expect /up/ (within 3s)"), "{p}");
        assert!(
            p.contains("     2. poll `ping 6379` until status 0, every 200ms (within 30s)"),
            "{p}"
        );
        assert!(p.contains("barriers:\n  \"ready\": srv, cli"), "{p}");
    }
}
