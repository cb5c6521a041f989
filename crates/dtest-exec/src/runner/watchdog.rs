//! The run's watchdog: a small `/bin/sh` process, in its own Unix session,
//! that outlives dtest long enough to stop every process of the run when
//! dtest dies without cleaning up (`kill -9`, a crash, the OOM killer).
//!
//! dtest holds the write end of the watchdog's standard input; whatever
//! way dtest ends, the kernel closes it, the watchdog's `read` returns, and
//! it stops every process whose environment holds this run's
//! `DTEST_RUN_ID` (TERM, then KILL), for at most 5 s, then exits. After a
//! normal run there is nothing left to stop and it exits at once.
//!
//! Why a separate process rather than, say, `PR_SET_PDEATHSIG` on each
//! session: the death signal only reaches direct children and is lost by a
//! process that changes its credentials or leaves its session, which is
//! exactly what daemons do; the environment mark survives `setsid`,
//! double forks and `exec`. Why `sh` and not a re-run of dtest: the
//! library runs in any host program, and `sh`, `grep -z` and `kill` are on
//! every Linux controller. Remote hosts have their own watchdog, started
//! with each session by the SSH transports.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::session::sys::RUN_ID_VAR;

/// The sweep, run once the standard input ends; `$1` is the run id.
const SCRIPT: &str = r#"
read _ 2>/dev/null
sweep() {
    found=
    for e in /proc/[0-9]*/environ; do
        p=${e#/proc/}; p=${p%/environ}
        [ "$p" = "$$" ] && continue
        if grep -qzx "$VAR=$1" "$e" 2>/dev/null; then
            found=1
            kill "-$2" "$p" 2>/dev/null
            kill -CONT "$p" 2>/dev/null
        fi
    done
    [ -n "$found" ]
}
sweep "$1" TERM || exit 0
sleep 0.3
i=0
while sweep "$1" KILL && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
exit 0
"#;

/// A running watchdog; dropping it (or dtest's death) starts its sweep.
#[derive(Debug)]
pub(crate) struct Watchdog {
    stdin: Option<ChildStdin>,
    child: Child,
}

impl Watchdog {
    /// Starts the watchdog of run `run_id`. `None` when it cannot start
    /// (no `/bin/sh`): the run goes on, only `kill -9` cleanup is lost.
    pub(crate) fn start(run_id: &str) -> Option<Watchdog> {
        let mut c = Command::new("/bin/sh");
        c.arg("-c")
            .arg(SCRIPT)
            .arg("dtest-watchdog")
            .arg(run_id)
            .env("VAR", RUN_ID_VAR)
            .env_remove(RUN_ID_VAR)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: setsid is async-signal-safe. Its own session: a Ctrl-C
        // or a hang-up of dtest's terminal does not reach it.
        unsafe {
            c.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = c.spawn().ok()?;
        Some(Watchdog {
            stdin: child.stdin.take(),
            child,
        })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // The run is over and cleaned up: the sweep finds nothing (or a
        // straggler) and the watchdog exits; reap it.
        if let Some(mut s) = self.stdin.take() {
            let _ = s.write_all(b"end\n");
        }
        let _ = self.child.wait();
    }
}
