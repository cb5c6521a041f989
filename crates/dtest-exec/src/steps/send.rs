//! `send`: writes text to the running command's input. Refused when no
//! command runs (the shell would execute it); waits until the shell has
//! begun the command, so the bytes reach it and not the shell.

use std::time::Duration;

use dtest_trace::EventData;

use super::Outcome;
use crate::runner::tester::TesterRun;
use crate::session::shell::idle_send;

pub(super) fn run(
    tr: &mut TesterRun<'_>,
    bytes: &[u8],
    secret: bool,
    timeout: Duration,
) -> Outcome {
    let until = tr.until(timeout);
    let started = match tr.session() {
        Ok(s) => match s.gone() {
            Some(g) => return Outcome::fail(g),
            None => s.wait_started(&until),
        },
        Err(o) => return o,
    };
    match started {
        Ok(true) => {}
        Ok(false) => return Outcome::fail(idle_send().to_string()),
        Err(e) => return Outcome::fail(e.to_string()),
    }
    let recorded = if secret {
        b"<redacted>".to_vec()
    } else {
        bytes.to_vec()
    };
    tr.record_to_session(EventData::Input {
        bytes: recorded,
        secret,
    });
    if secret {
        tr.log_input(format!("<secret: {} bytes>\n", bytes.len()).as_bytes());
    } else {
        tr.log_input(bytes);
    }
    match tr.session().map(|s| s.send(bytes, &until)) {
        Ok(Ok(())) => Outcome::pass(),
        Ok(Err(e)) => Outcome::fail(e.to_string()),
        Err(o) => o,
    }
}
