//! `put` and `get`: file copies between the controller and the session's
//! host, recorded as messages with the size and SHA-256 the channel reports.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dtest_trace::{EventData, Transfer};

use super::Outcome;
use crate::runner::tester::TesterRun;

/// Deadline of a copy when its step has no `timeout`.
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The last component of `path`: where `put` and `get` copy to by default.
pub(super) fn file_name_of(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}

fn local_path(tr: &TesterRun<'_>, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        tr.out_dir().join(p)
    }
}

/// A `put` (controller to host: the tester sends the file to its session)
/// or a `get` (the session sends it to the tester).
pub(super) fn run(
    tr: &mut TesterRun<'_>,
    put: bool,
    from: &str,
    to: &str,
    timeout: Duration,
) -> Outcome {
    let local = local_path(tr, if put { from } else { to });
    let until = tr.until(timeout);
    let result = match tr.session() {
        Ok(s) => {
            if put {
                s.channel().put(&local, to, &until)
            } else {
                s.channel().get(from, &local, &until)
            }
        }
        Err(o) => return o,
    };
    match result {
        Ok(fi) => {
            let t = Transfer {
                local: fi.local.display().to_string(),
                remote: fi.remote.clone(),
                size: fi.size,
                sha256: fi.sha256,
            };
            if put {
                tr.record_to_session(EventData::Put(t));
            } else {
                tr.record_from_session(EventData::Get(t));
            }
            // The size and the sum are in the trace.
            Outcome::pass()
        }
        Err(e) => Outcome::fail(e.to_string()),
    }
}
