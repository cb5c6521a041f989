//! `custom`: a Rust closure run on the controller (builder API only).

use std::sync::Arc;

use dtest_trace::EventData;

use super::Outcome;
use crate::runner::tester::TesterRun;
use crate::scenario::{CustomContext, CustomFn};

pub(super) fn run(tr: &mut TesterRun<'_>, name: Option<String>, f: &CustomFn) -> Outcome {
    let f = Arc::clone(f);
    let cx = CustomContext {
        tester: tr.name(),
        run_dir: tr.out_dir(),
        vars: &tr.vars,
    };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&cx)));
    let (status, output, o) = match r {
        Ok(Ok(out)) => (0, out, Outcome::pass()),
        Ok(Err(msg)) => (1, msg.clone(), Outcome::fail(msg)),
        Err(_) => (
            101,
            "the custom step panicked".to_string(),
            Outcome::fail("the custom step panicked"),
        ),
    };
    tr.record_local(EventData::Custom {
        name: name.unwrap_or_else(|| "custom".into()),
        status,
        output,
    });
    o
}
