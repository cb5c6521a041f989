//! The shell commands dtest runs on a remote host, shared by both
//! transports: the session's start line, signals to the running command,
//! and the clean-up that leaves no process behind.
//!
//! The remote shell is started by `exec`, so it keeps the process id sshd
//! gave the session's first process, which sshd made a session leader
//! (`setsid`). Every process the shell starts keeps that session id unless
//! it calls `setsid` itself, so `pkill -s SID` reaches all of them. The start
//! line prints the id in a marker before exec'ing the shell; the transport
//! reads and removes that marker before the shell protocol starts.

use dtest_exec::session::shell::shell_quote;
use dtest_exec::session::{OpenSpec, Output, Result, SessionError, Signal};

/// The byte around the pid marker (ASCII record separator).
pub const RS: u8 = 0x1e;

/// The command run on the remote host to start the tester's shell.
pub fn start_command(spec: &OpenSpec) -> String {
    let mut s = String::from("printf '\\036dtest-pid:%s\\036\\n' $$; ");
    if let Some(cwd) = &spec.cwd {
        let q = shell_quote(cwd);
        if spec.create_cwd {
            s.push_str(&format!("mkdir -p {q} 2>/dev/null; "));
        }
        s.push_str(&format!("cd {q} || exit 97; "));
    }
    for (k, v) in &spec.env {
        if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !k.is_empty() {
            s.push_str(&format!("{k}={}; export {k}; ", shell_quote(v)));
        }
    }
    s.push_str(&format!("PS1= PS2= exec {}", shell_quote(&spec.shell)));
    // Run under /bin/sh whatever the user's login shell is.
    format!("exec /bin/sh -c {}", shell_quote(&s))
}

/// Finds the pid marker in `data`: `Some((pid, end))` where `end` is the
/// index just past the marker's line.
pub fn find_pid(data: &[u8]) -> Option<(i32, usize)> {
    let tag = b"\x1edtest-pid:";
    let start = data.windows(tag.len()).position(|w| w == tag)?;
    let rest = &data[start + tag.len()..];
    let close = rest.iter().position(|&b| b == RS)?;
    let pid: i32 = std::str::from_utf8(&rest[..close]).ok()?.parse().ok()?;
    let mut end = start + tag.len() + close + 1;
    while end < data.len() && (data[end] == b'\r' || data[end] == b'\n') {
        end += 1;
        if data[end - 1] == b'\n' {
            break;
        }
    }
    Some((pid, end))
}

/// Signals every process of session `sid` but the shell itself, and
/// prints how many it reached (`dtest-signalled:N`, see [`signalled`];
/// nothing when `pgrep` is missing).
pub fn signal_command(sid: i32, sig: Signal) -> String {
    format!(
        "command -v pgrep >/dev/null 2>&1 || exit 0; n=0; \
         for p in $(pgrep -s {sid}); do [ \"$p\" = {sid} ] || \
         {{ kill -{s} \"$p\" 2>/dev/null && n=$((n+1)); }}; done; echo \"dtest-signalled:$n\"",
        s = sig.name()
    )
}

/// How many processes [`signal_command`] reached, from its output.
pub fn signalled(out: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(out);
    let rest = &text[text.find("dtest-signalled:")? + "dtest-signalled:".len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Ends session `sid`: HUP/TERM everything, wait up to `grace_ms`, KILL
/// what is left, repeat until the session is empty (bounded).
pub fn cleanup_command(sid: i32, grace_ms: u64) -> String {
    let steps = (grace_ms / 50).clamp(1, 600);
    format!(
        "s={sid}; pkill -HUP -s $s; pkill -TERM -s $s; pkill -CONT -s $s; i=0; \
         while pgrep -s $s >/dev/null && [ $i -lt {steps} ]; do sleep 0.05; i=$((i+1)); done; \
         i=0; while pgrep -s $s >/dev/null && [ $i -lt 100 ]; do pkill -KILL -s $s; sleep 0.05; i=$((i+1)); done; \
         if pgrep -s $s >/dev/null; then echo left; fi 2>/dev/null; true"
    )
}

/// `path` against the session's working directory `cwd` (what is still
/// relative then is relative to the login directory, as for the shell).
pub fn resolve(cwd: Option<&str>, path: &str) -> String {
    match cwd {
        Some(c) if !path.starts_with('/') => format!("{}/{path}", c.trim_end_matches('/')),
        _ => path.to_string(),
    }
}

/// A transfer's error naming the operation and the path; the deadline and
/// the run's stop pass as they are.
pub fn transfer_err(op: &'static str, path: &str, e: SessionError) -> SessionError {
    let reason = match e {
        SessionError::Other(r) | SessionError::Closed(r) => r,
        SessionError::Io(e) => e.to_string(),
        e => return e,
    };
    SessionError::Transfer {
        op,
        path: path.to_string(),
        reason,
    }
}

/// `Err(Closed)` once a channel is closed.
pub fn check_open(closed: bool) -> Result<()> {
    if closed {
        return Err(SessionError::Closed("the channel is closed".into()));
    }
    Ok(())
}

/// Hands over a channel's output half, once.
pub fn take_output<O: Output + 'static>(slot: &mut Option<O>) -> Result<Box<dyn Output>> {
    match slot.take() {
        Some(o) => Ok(Box::new(o)),
        None => Err(SessionError::Other("the output was already taken".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_marker() {
        assert_eq!(
            find_pid(b"motd\n\x1edtest-pid:123\x1e\r\nrest"),
            Some((123, 22))
        );
        assert_eq!(find_pid(b"\x1edtest-pid:12"), None);
        assert_eq!(find_pid(b"\x1edtest-pid:x\x1e"), None);
    }

    #[test]
    fn signal_count() {
        assert_eq!(signalled(b"dtest-signalled:3\n"), Some(3));
        assert_eq!(signalled(b"motd\ndtest-signalled:0\n"), Some(0));
        assert_eq!(signalled(b""), None);
        // The command runs under sh and counts what it reached.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(signal_command(999_999_999, Signal::Term))
            .output()
            .unwrap();
        if std::process::Command::new("pgrep")
            .arg("-V")
            .output()
            .is_ok()
        {
            assert_eq!(signalled(&out.stdout), Some(0), "{out:?}");
        }
    }
}
