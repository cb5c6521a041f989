//! `ok`: an explicit verdict, with an optional SKIP or TODO directive.

use dtest_trace::Directive;

use super::Outcome;

pub(super) fn run(
    pass: bool,
    skip: Option<Result<String, String>>,
    todo: Option<Result<String, String>>,
) -> Outcome {
    let directive = match (skip, todo) {
        (Some(Err(e)), _) | (_, Some(Err(e))) => return Outcome::fail(e),
        (Some(Ok(r)), _) => Some((Directive::Skip, r)),
        (_, Some(Ok(r))) => Some((Directive::Todo, r)),
        _ => None,
    };
    let mut o = if pass {
        Outcome::pass()
    } else {
        Outcome::fail("verdict is false")
    };
    o.directive = directive;
    o
}
