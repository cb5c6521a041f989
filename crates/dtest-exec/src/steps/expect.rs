//! `expect`: waits until the output received since the previous match
//! matches; fails as soon as the command has ended without it.

use std::time::{Duration, Instant};

use dtest_trace::EventData;

use super::Outcome;
use crate::duration::fmt_duration;
use crate::matcher::{shown, Pattern};
use crate::report::DiagValue;
use crate::runner::tester::TesterRun;
use crate::session::capture::BACKLOG_MAX;
use crate::session::shell::ExpectEnd;

pub(super) fn run(tr: &mut TesterRun<'_>, pat: &str, literal: bool, timeout: Duration) -> Outcome {
    let pattern = match Pattern::new(pat, literal) {
        Ok(p) => p,
        Err(e) => return Outcome::fail(e),
    };
    let shown = shown(pat, literal);
    wait_for(tr, pattern, pat, &shown, timeout)
}

/// The unordered form (`expect = ["a", "b"]`): waits until each pattern
/// has appeared in the output since the previous match, in any order.
pub(super) fn run_all(
    tr: &mut TesterRun<'_>,
    pats: &[String],
    literal: bool,
    timeout: Duration,
) -> Outcome {
    let mut parts = Vec::with_capacity(pats.len());
    for p in pats {
        match Pattern::new(p, literal) {
            Ok(x) => parts.push(x),
            Err(e) => return Outcome::fail(format!("`{p}`: {e}")),
        }
    }
    let shown: Vec<String> = pats.iter().map(|p| shown(p, literal)).collect();
    let shown = format!("all of {}", shown.join(", "));
    wait_for(tr, Pattern::all(parts), &pats.join(" & "), &shown, timeout)
}

fn wait_for(
    tr: &mut TesterRun<'_>,
    pattern: Pattern,
    pat: &str,
    shown: &str,
    timeout: Duration,
) -> Outcome {
    let start = Instant::now();
    let until = tr.until(timeout);
    let r = match tr.session() {
        Ok(s) => s.expect(&pattern, &until),
        Err(o) => return o,
    };
    let waited = start.elapsed();
    let msg = match r.end {
        ExpectEnd::Hit(h) => {
            for (k, v) in &h.captures {
                tr.vars.insert(k.clone(), v.clone());
            }
            tr.record_local(EventData::Match {
                pattern: pat.to_string(),
                matched: h.matched.clone(),
                captures: h.captures.clone(),
            });
            return Outcome::pass();
        }
        ExpectEnd::Ended(Some(st)) => {
            format!("command ended with status {st} before the pattern appeared")
        }
        ExpectEnd::Ended(None) => {
            "no command is running and the output received did not match".to_string()
        }
        ExpectEnd::Closed(_, Some(lost)) => {
            format!("the connection was lost ({lost}) before {shown} matched")
        }
        ExpectEnd::Closed(Some(st), None) => {
            format!("the session's shell exited (status {st}) before {shown} matched")
        }
        ExpectEnd::Closed(None, None) => format!("the session was closed before {shown} matched"),
        ExpectEnd::TimedOut => format!("timed out after {}", fmt_duration(timeout)),
        ExpectEnd::Stopped(r) => r,
    };
    tr.record_local(EventData::Timeout {
        pattern: pat.to_string(),
        waited_ns: waited.as_nanos() as u64,
    });
    let mut o = Outcome::fail(msg)
        .text("pattern", pat)
        .text("waited", fmt_duration(waited));
    if r.dropped > 0 {
        o = o.text(
            "backlog_dropped",
            format!(
                "{} bytes of output that arrived while no expect waited were dropped from \
                 the expect backlog ({} KiB); they are in the logs and the trace",
                r.dropped,
                BACKLOG_MAX >> 10
            ),
        );
    }
    if let Ok(s) = tr.session() {
        if let Some(st) = s.last_exit() {
            o = o.text("command_ended", format!("status {st}"));
        }
        let lines = s.last_lines(10);
        o = o.diag("last_lines", DiagValue::Lines(lines));
    }
    o
}
