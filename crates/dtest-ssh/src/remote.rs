//! The shell commands dtest runs on a remote host, shared by both
//! transports: the session's start line (with its watchdog), signals to the
//! running command, and the clean-up that leaves no process behind.
//!
//! The remote shell is started by `exec`, so it keeps the process id sshd
//! gave the session's first process, which sshd made a session leader
//! (`setsid`). Every process the shell starts keeps that session id unless
//! it calls `setsid` itself, so `pkill -s SID` reaches all of them. The start
//! line prints the id in a marker before exec'ing the shell; the transport
//! reads and removes that marker before the shell protocol starts.
//!
//! **Marks.** The runner puts `DTEST_RUN_ID` (random, one per run) and
//! `DTEST_TESTER` in every session's environment ([`Marks`]); every process
//! the session starts inherits them, also one that leaves the session
//! (`setsid`, a double fork, a daemon), unless it clears its environment.
//! The clean-up finds those by their environment (`grep -z` on
//! `/proc/*/environ`, Linux) and reports them.
//!
//! **Watchdog.** The start line also starts a watchdog: a small `sh` loop in
//! a session of its own (so the tester's signals, the counts of `terminate`
//! and `pkill -s` never see it), holding no descriptor of the channel (its
//! output never reaches the shell protocol), ignoring `HUP`, without the
//! tester's marks (a sweep never takes it for the tester's). It waits for
//! the connection's sshd process (the shell's parent at start) to end,
//! checking every 0.25 s, and checks every 5 s that the shell is still the
//! same live process (start times, so a reused pid does not fool it); once
//! either is gone without dtest's clean-up having run (dtest killed with
//! `kill -9`, the connection cut), it stops the session and the tester's
//! marked processes (`TERM`, `KILL` 0.3 s later, for 2 s at most) and
//! exits. The clean-up ends the watchdog first (by its pid, checked against
//! its own mark `DTEST_SSH_WATCHDOG=SID`), so that what it stops is in its
//! report.

use dtest_exec::session::shell::shell_quote;
use dtest_exec::session::{OpenSpec, Output, Result, SessionError, Signal};

/// The byte around the pid marker (ASCII record separator).
pub const RS: u8 = 0x1e;

/// The environment variable holding the run's id (see the runner).
pub const RUN_ID_VAR: &str = "DTEST_RUN_ID";
/// The environment variable holding the tester's name.
pub const TESTER_VAR: &str = "DTEST_TESTER";
/// The watchdog's own mark (`DTEST_SSH_WATCHDOG=SID`).
pub const WATCHDOG_VAR: &str = "DTEST_SSH_WATCHDOG";

/// The marks of a tester's processes: `DTEST_RUN_ID` and `DTEST_TESTER`
/// from the session's environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marks {
    /// The run's id.
    pub run_id: String,
    /// The tester's name.
    pub tester: String,
}

impl Marks {
    /// The marks in `spec.env`, when both are there (and not empty).
    pub fn from_spec(spec: &OpenSpec) -> Option<Marks> {
        let get = |k: &str| {
            spec.env
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        Some(Marks {
            run_id: get(RUN_ID_VAR)?,
            tester: get(TESTER_VAR)?,
        })
    }
}

/// What the start line printed: the shell's pid (its session id) and the
/// watchdog's pid (0: none, `setsid` is missing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Started {
    /// The remote shell's pid, also its session id.
    pub sid: i32,
    /// The watchdog's pid, also its own session id; 0 when none.
    pub watchdog: i32,
}

/// Shell functions shared by the watchdog and the clean-up. They use
/// `s` (the session id), `id` and `t` (the marks; `id` empty: no marks),
/// and `me` (the session of the script itself, never touched). Few
/// processes are started (a clean-up with nothing to stop runs `pgrep` and
/// `grep` twice each): on `ssh://` the clean-ups of the testers sharing a
/// connection take turns on its one spare channel.
///
/// * `sess PID`: the session of PID into `v` (empty: gone or a zombie, or
///   no `/proc`);
/// * `members`: the processes of session `s` but zombies (which a host
///   whose init does not reap orphans keeps for ever);
/// * `marked`: the pids of the live processes marked with this run and
///   tester, outside session `s` and the script's own session;
/// * `hit SIG...`: sends the signals to session `s` and to the marked
///   processes (not `HUP`, which many daemons take for "reload"), and
///   `CONT` so that a stopped process gets them, reporting
///   each marked one once when `report` is set (`dtest-stray:PID COMM`);
/// * `left`: whether anything of the session or a marked process is left;
/// * `stop GRACE KILLS`: `HUP`/`TERM` to the session, `TERM` to the marked
///   processes, up to GRACE rounds of 50 ms for them to end, then `KILL`
///   for up to KILLS rounds; prints `dtest-left` if something is left.
const FUNCTIONS: &str = r#"
seen=" "
proc=; [ -r /proc/self/stat ] && proc=1
sess() {
    v=; l=; read -r l 2>/dev/null < "/proc/$1/stat" || return 0
    l=${l##*") "}; set -- $l; [ "$1" = Z ] || v=$4
}
members() {
    for q in $(pgrep -s "$s" 2>/dev/null); do
        if [ -n "$proc" ]; then sess "$q"; [ -n "$v" ] || continue; fi
        echo "$q"
    done
}
marked() {
    [ -n "$id" ] && [ -n "$proc" ] || return 0
    set -- $(grep -lzxF "DTEST_RUN_ID=$id" /proc/[0-9]*/environ 2>/dev/null)
    [ $# -gt 0 ] || return 0
    for f in $(grep -lzxF "DTEST_TESTER=$t" "$@" 2>/dev/null); do
        p=${f#/proc/}; p=${p%/environ}
        sess "$p"
        [ -n "$v" ] && [ "$v" != "$s" ] && [ "$v" != "$me" ] && echo "$p"
    done
}
hit() {
    for q in $(pgrep -s "$s" 2>/dev/null); do
        for g in "$@" CONT; do kill "-$g" "$q" 2>/dev/null; done
    done
    for p in $(marked); do
        case $seen in
        *" $p "*) ;;
        *)
            seen="$seen$p "
            if [ -n "$report" ]; then
                c=; read -r c 2>/dev/null < "/proc/$p/comm"
                echo "dtest-stray:$p $c"
            fi ;;
        esac
        for g in "$@" CONT; do [ "$g" = HUP ] || kill "-$g" "$p" 2>/dev/null; done
    done
}
left() {
    [ -n "$(members)" ] && return 0
    [ -n "$(marked)" ]
}
stop() {
    hit HUP TERM
    k=1; i=0
    while [ $i -lt "$1" ]; do left || { k=; break; }; sleep 0.05; i=$((i+1)); done
    i=0
    while [ -n "$k" ] && [ $i -lt "$2" ]; do
        hit KILL; sleep 0.05; left || k=; i=$((i+1))
    done
    [ -z "$k" ] || echo dtest-left
}
"#;

/// The watchdog (`sh -c WATCHDOG dtest-ssh-watchdog SID PPID ID TESTER`).
/// Once it knows what to watch, it prints its pid and lets go of its
/// output (nothing when it cannot watch: the start line then says 0). `st`
/// reads a process's start time (`/proc/PID/stat` field 22, empty for a
/// zombie or a process that is gone), so a reused pid is not taken for the
/// original. `pause`
/// waits until the sshd process is gone, 5 s at most, checking every
/// 0.25 s without starting a process each time (GNU `tail --pid`: two
/// processes started every 5 s); without GNU coreutils it sleeps 0.5 s
/// (two short processes a second).
const WATCHDOG: &str = r#"trap '' HUP INT QUIT PIPE
s=$1 p=$2 id=$3 t=$4 me=$$ report=
[ "$s" -gt 1 ] && [ "$p" -gt 1 ] || exit 0
st() {
    v=; l=; read -r l 2>/dev/null < "/proc/$1/stat" || return 0
    l=${l##*") "}; set -- $l; [ "$1" = Z ] || v=${20}
}
if [ -r "/proc/$p/stat" ]; then
    st "$p"; p0=$v; st "$s"; s0=$v
    [ -n "$p0" ] && [ -n "$s0" ] || exit 0
    palive() { st "$p"; [ "$v" = "$p0" ]; }
    alive() { palive || return 1; st "$s"; [ "$v" = "$s0" ]; }
else
    palive() { kill -0 "$p" 2>/dev/null; }
    alive() { palive && kill -0 "$s" 2>/dev/null; }
    alive || exit 0
fi
echo $$; exec </dev/null >/dev/null 2>&1
if tail --version 2>/dev/null | grep -q GNU && timeout --version 2>/dev/null | grep -q GNU; then
    pause() { timeout 5 tail -s 0.25 --pid="$p" -f /dev/null 2>/dev/null; }
else
    pause() { sleep 0.5 2>/dev/null || sleep 1; }
fi
while alive; do pause; done
# The shell ended but its connection lives: dtest is closing the session
# (its clean-up ends this watchdog and reports what it stops), or the
# shell exited by itself. Give the clean-up 10 s; act at once if the
# connection goes.
i=0
while palive && [ $i -lt 40 ]; do sleep 0.25 2>/dev/null || sleep 1; i=$((i+1)); done
"#;

/// The watchdog's script, run as `sh -c SCRIPT dtest-ssh-watchdog SID
/// PPID RUN_ID TESTER` in a session of its own with `DTEST_SSH_WATCHDOG=SID`
/// in its environment: it prints its pid, polls, and once the connection's
/// sshd (PPID) or the shell (SID) is gone, stops the session and the marked
/// processes (`TERM`, `KILL` 0.3 s later, for 2 s at most) and exits.
pub fn watchdog_script() -> String {
    format!("{WATCHDOG}{FUNCTIONS}stop 6 40\n")
}

/// The command run on the remote host to start the tester's shell.
pub fn start_command(spec: &OpenSpec) -> String {
    let (id, tester) = match Marks::from_spec(spec) {
        Some(m) => (m.run_id, m.tester),
        None => (String::new(), String::new()),
    };
    let watchdog = watchdog_script();
    // The watchdog starts before the marks are exported (it carries only
    // its own), in a session of its own; the command substitution ends
    // when it has printed its pid and closed its output.
    let mut s = format!(
        "w=0; if command -v setsid >/dev/null 2>&1 && command -v pgrep >/dev/null 2>&1; then \
         w=$({WATCHDOG_VAR}=$$ setsid /bin/sh -c {wd} dtest-ssh-watchdog $$ $PPID {id} {t} \
         </dev/null 2>/dev/null &); fi; \
         printf '\\036dtest-pid:%s:%s\\036\\n' $$ \"${{w:-0}}\"; ",
        wd = shell_quote(&watchdog),
        id = shell_quote(&id),
        t = shell_quote(&tester),
    );
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

/// Finds the start marker in `data`: `Some((started, end))` where `end` is
/// the index just past the marker's line.
pub fn find_started(data: &[u8]) -> Option<(Started, usize)> {
    let tag = b"\x1edtest-pid:";
    let start = data.windows(tag.len()).position(|w| w == tag)?;
    let rest = &data[start + tag.len()..];
    let close = rest.iter().position(|&b| b == RS)?;
    let text = std::str::from_utf8(&rest[..close]).ok()?;
    let (sid, watchdog) = match text.split_once(':') {
        Some((a, b)) => (a.parse().ok()?, b.trim().parse().unwrap_or(0)),
        None => (text.parse().ok()?, 0),
    };
    let mut end = start + tag.len() + close + 1;
    while end < data.len() && (data[end] == b'\r' || data[end] == b'\n') {
        end += 1;
        if data[end - 1] == b'\n' {
            break;
        }
    }
    Some((Started { sid, watchdog }, end))
}

/// [`find_started`], the shell's pid only.
pub fn find_pid(data: &[u8]) -> Option<(i32, usize)> {
    find_started(data).map(|(s, end)| (s.sid, end))
}

/// Signals every process of session `sid` but the shell itself (and the
/// zombies, which nothing reaches), and prints how many it reached
/// (`dtest-signalled:N`, see [`signalled`]; nothing when `pgrep` is
/// missing). The watchdog is in a session of its own: never signalled nor
/// counted. Runs under `/bin/sh` whatever the login shell.
pub fn signal_command(sid: i32, sig: Signal) -> String {
    // STOP: the shell first; CONT: the shell last. An interactive shell
    // with job control must never see its job stopped (it would report it
    // as ended and go back to its prompt); a stop is only reported while
    // the job is still stopped when the shell runs again.
    let (first, last) = match sig {
        // ... and only once the shell is stopped (state T): `kill`
        // returns before it is, and a shell woken in its `wait` could still
        // collect the job's stop (1 s at most).
        Signal::Stop => (
            format!(
                "kill -STOP {sid} 2>/dev/null && {{ i=0; while [ $i -lt 200 ]; do \
                 l=; read -r l 2>/dev/null < /proc/{sid}/stat; case ${{l##*\") \"}} in T*|t*) break ;; esac; \
                 i=$((i+1)); sleep 0.005 2>/dev/null || break; done; }}; "
            ),
            String::new(),
        ),
        Signal::Cont => (String::new(), format!("kill -CONT {sid} 2>/dev/null; ")),
        _ => (String::new(), String::new()),
    };
    let script = format!(
        "command -v pgrep >/dev/null 2>&1 || exit 0; {first}n=0; \
         for p in $(pgrep -s {sid}); do [ \"$p\" = {sid} ] && continue; \
         l=; read -r l 2>/dev/null < \"/proc/$p/stat\"; case ${{l##*\") \"}} in Z*) continue ;; esac; \
         kill -{s} \"$p\" 2>/dev/null && n=$((n+1)); done; {last}echo \"dtest-signalled:$n\"",
        s = sig.name()
    );
    format!("exec /bin/sh -c {}", shell_quote(&script))
}

/// Tells whether a job other than shell `sid` holds the shell's terminal
/// and already runs another program than the shell (its executable or its
/// command line differ): prints `dtest-fg:1`, else `dtest-fg:0`, and
/// nothing when it cannot tell (no Linux `/proc`). A job holding the
/// terminal may still be the shell's child before its `exec`, with the
/// shell's own SIGINT handler: a Ctrl-C then would be lost (bash). See
/// [`foreground`]. Runs under `/bin/sh` whatever the login shell.
pub fn foreground_command(sid: i32) -> String {
    // /proc/PID/stat after "(comm) ": state ppid pgrp session tty_nr tpgid.
    let script = format!(
        "l=; read -r l 2>/dev/null < /proc/{sid}/stat || exit 0; set -- ${{l##*\") \"}}; pg=$6; \
         case $pg in ''|-*|0) exit 0 ;; esac; \
         if [ \"$pg\" = {sid} ]; then echo dtest-fg:0; exit 0; fi; \
         a=$(readlink /proc/{sid}/exe 2>/dev/null); b=$(readlink /proc/$pg/exe 2>/dev/null); \
         if [ -n \"$b\" ] && [ \"$a\" != \"$b\" ]; then echo dtest-fg:1; exit 0; fi; \
         ca=$(tr '\\000' ' ' < /proc/{sid}/cmdline 2>/dev/null); \
         cb=$(tr '\\000' ' ' < /proc/$pg/cmdline 2>/dev/null); \
         if [ \"$ca\" != \"$cb\" ]; then echo dtest-fg:1; else echo dtest-fg:0; fi"
    );
    format!("exec /bin/sh -c {}", shell_quote(&script))
}

/// What [`foreground_command`] printed: `Some(true)` when the command's
/// job runs, `Some(false)` when not yet, `None` when it could not tell.
pub fn foreground(out: &[u8]) -> Option<bool> {
    let text = String::from_utf8_lossy(out);
    let rest = &text[text.find("dtest-fg:")? + "dtest-fg:".len()..];
    match rest.chars().next()? {
        '1' => Some(true),
        '0' => Some(false),
        _ => None,
    }
}

/// How many processes [`signal_command`] reached, from its output.
pub fn signalled(out: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(out);
    let rest = &text[text.find("dtest-signalled:")? + "dtest-signalled:".len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Ends a tester's processes on the host: its watchdog first (so that it
/// does not race with the report), then session `sid` and every process
/// marked with `marks` that left it: `HUP`/`TERM` to the session, `TERM` to
/// the others, up to `grace_ms` for them to end, then `KILL` until none is
/// left (5 s at most). Prints `dtest-stray:PID COMM` for each marked process
/// outside the session ([`strays`]), and `dtest-left` if something could not
/// be stopped. Runs under `/bin/sh` whatever the login shell.
pub fn cleanup_command(started: Started, marks: Option<&Marks>, grace_ms: u64) -> String {
    let steps = (grace_ms / 50).clamp(1, 600);
    let (id, t) = match marks {
        Some(m) => (m.run_id.as_str(), m.tester.as_str()),
        None => ("", ""),
    };
    let script = format!(
        "s={sid} w={w} id={id} t={t} me=$$ report=1\n\
         command -v pgrep >/dev/null 2>&1 || exit 0\n{FUNCTIONS}\
         if [ \"$w\" -gt 1 ] && grep -qzxF \"{WATCHDOG_VAR}=$s\" \"/proc/$w/environ\" 2>/dev/null; then \
         pkill -KILL -s \"$w\" 2>/dev/null || kill -KILL \"$w\" 2>/dev/null; fi\n\
         stop {steps} 100\ntrue\n",
        sid = started.sid,
        w = started.watchdog,
        id = shell_quote(id),
        t = shell_quote(t),
    );
    format!("exec /bin/sh -c {}", shell_quote(&script))
}

/// The processes outside the session that [`cleanup_command`] stopped
/// (pid, command name), from its output; and whether it left any process.
pub fn strays(out: &[u8]) -> (Vec<(i32, String)>, bool) {
    let text = String::from_utf8_lossy(out);
    let mut v = Vec::new();
    let mut left = false;
    for line in text.lines() {
        if line.trim() == "dtest-left" {
            left = true;
        }
        let Some(rest) = line.strip_prefix("dtest-stray:") else {
            continue;
        };
        let (pid, comm) = rest.split_once(' ').unwrap_or((rest, ""));
        let Ok(pid) = pid.parse::<i32>() else {
            continue;
        };
        let comm: String = comm
            .trim()
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        if !v.iter().any(|(p, _)| *p == pid) {
            v.push((pid, comm));
        }
    }
    (v, left)
}

/// The report of a clean-up on `host` (`user@host:port` or the URL), from
/// its output: "stopped 1 process that left its session: pid 2014 sleep
/// (on bob@aurore:22)", and a line when something could not be stopped.
pub fn cleanup_report(out: &[u8], host: &str) -> Vec<String> {
    let (found, left) = strays(out);
    let mut r = Vec::new();
    if !found.is_empty() {
        let n = found.len();
        let list: Vec<String> = found
            .iter()
            .map(|(p, c)| format!("pid {p} {c}").trim_end().to_string())
            .collect();
        r.push(format!(
            "stopped {n} process{} that left {} session: {} (on {host})",
            if n == 1 { "" } else { "es" },
            if n == 1 { "its" } else { "their" },
            list.join(", ")
        ));
    }
    if left {
        r.push(format!(
            "some processes of the session on {host} could not be stopped (still there after KILL for 5 s)"
        ));
    }
    r
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

    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    #[test]
    fn pid_marker() {
        assert_eq!(
            find_pid(b"motd\n\x1edtest-pid:123\x1e\r\nrest"),
            Some((123, 22))
        );
        assert_eq!(find_pid(b"\x1edtest-pid:12"), None);
        assert_eq!(find_pid(b"\x1edtest-pid:x\x1e"), None);
        assert_eq!(
            find_started(b"\x1edtest-pid:123:456\x1e\nrest"),
            Some((
                Started {
                    sid: 123,
                    watchdog: 456
                },
                20
            ))
        );
        assert_eq!(
            find_started(b"\x1edtest-pid:123:\x1e\n").map(|(s, _)| s.watchdog),
            Some(0)
        );
    }

    #[test]
    fn reports() {
        let out = b"dtest-stray:2014 redis-server\ndtest-stray:2015 a\x1bb\ndtest-stray:2014 x\n";
        assert_eq!(
            strays(out),
            (
                vec![(2014, "redis-server".into()), (2015, "a?b".into())],
                false
            )
        );
        assert_eq!(
            cleanup_report(b"dtest-stray:2014 sleep\n", "ssh://bob@aurore:22"),
            ["stopped 1 process that left its session: pid 2014 sleep (on ssh://bob@aurore:22)"]
        );
        let r = cleanup_report(b"dtest-stray:1 a\ndtest-stray:2 b\ndtest-left\n", "h");
        assert_eq!(
            r[0],
            "stopped 2 processes that left their session: pid 1 a, pid 2 b (on h)"
        );
        assert!(r[1].starts_with("some processes of the session on h could not be stopped"));
        assert!(cleanup_report(b"", "h").is_empty());
    }

    /// Whether this machine has what the scripts need (Linux /proc,
    /// setsid, pgrep, grep -z).
    fn tools() -> bool {
        std::path::Path::new("/proc/self/environ").exists()
            && Command::new("sh")
                .arg("-c")
                .arg("command -v setsid && command -v pgrep && printf 'a\\0' | grep -qzx a")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    }

    /// Starts `sh -c script` as the leader of a new session, with `env`;
    /// a thread reaps it (as sshd or init would). Returns its pid.
    fn spawn_session(script: &str, env: &[(&str, &str)]) -> i32 {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(script).stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            c.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = c.spawn().unwrap();
        let pid = child.id() as i32;
        std::thread::spawn(move || child.wait());
        pid
    }

    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                !s[s.rfind(')').unwrap_or(0) + 1..]
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(false)
    }

    fn children(pid: i32) -> Vec<i32> {
        let o = Command::new("pgrep")
            .arg("-P")
            .arg(pid.to_string())
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    fn kill(pid: i32) {
        // SAFETY: kill has no memory effects.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }

    /// A session (a shell with a HUP-ignoring job), a process of the same
    /// tester that left it, and one of another tester; all marked.
    struct Scene {
        id: String,
        sid: i32,
        job: i32,
        daemon: i32,
        other: i32,
    }

    impl Scene {
        fn new(tag: &str) -> Scene {
            let id = format!("unit-{tag}-{}", std::process::id());
            let t1 = [(RUN_ID_VAR, id.as_str()), (TESTER_VAR, "t1")];
            let sid = spawn_session("trap '' HUP; sleep 60 & exec sleep 61", &t1);
            let daemon = spawn_session("exec sleep 62", &t1);
            let other = spawn_session(
                "exec sleep 63",
                &[(RUN_ID_VAR, id.as_str()), (TESTER_VAR, "t2")],
            );
            let until = Instant::now() + Duration::from_secs(10);
            let job = loop {
                if let Some(&j) = children(sid).first() {
                    break j;
                }
                assert!(Instant::now() < until, "the job never started");
                std::thread::sleep(Duration::from_millis(10));
            };
            Scene {
                id,
                sid,
                job,
                daemon,
                other,
            }
        }

        fn marks(&self) -> Marks {
            Marks {
                run_id: self.id.clone(),
                tester: "t1".into(),
            }
        }

        /// Starts the watchdog of the session, watching `parent`.
        fn watchdog(&self, parent: i32) -> i32 {
            let mut c = Command::new("/bin/sh");
            c.arg("-c")
                .arg(watchdog_script())
                .arg("dtest-ssh-watchdog")
                .arg(self.sid.to_string())
                .arg(parent.to_string())
                .arg(&self.id)
                .arg("t1")
                .env(WATCHDOG_VAR, self.sid.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            // SAFETY: setsid is async-signal-safe.
            unsafe {
                c.pre_exec(|| {
                    libc::setsid();
                    Ok(())
                });
            }
            let mut child = c.spawn().unwrap();
            let mut line = String::new();
            std::io::BufRead::read_line(
                &mut std::io::BufReader::new(child.stdout.take().unwrap()),
                &mut line,
            )
            .unwrap();
            std::thread::spawn(move || child.wait());
            line.trim().parse().unwrap()
        }
    }

    impl Drop for Scene {
        fn drop(&mut self) {
            for p in [self.sid, self.job, self.daemon, self.other] {
                kill(p);
            }
        }
    }

    fn wait_until(within: Duration, f: impl Fn() -> bool) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        f()
    }

    #[test]
    fn watchdog_stops_the_tester_once_the_connection_is_gone() {
        if !tools() {
            return;
        }
        let sc = Scene::new("wd");
        // A stand-in for the connection's sshd process.
        let mut sshd = Command::new("sleep").arg("64").spawn().unwrap();
        let w = sc.watchdog(sshd.id() as i32);
        std::thread::sleep(Duration::from_millis(800));
        assert!(alive(w) && alive(sc.sid) && alive(sc.job) && alive(sc.daemon));
        let _ = sshd.kill();
        let _ = sshd.wait();
        let t0 = Instant::now();
        assert!(
            wait_until(Duration::from_secs(3), || {
                !alive(sc.sid) && !alive(sc.job) && !alive(sc.daemon) && !alive(w)
            }),
            "left: shell {} job {} daemon {} watchdog {}",
            alive(sc.sid),
            alive(sc.job),
            alive(sc.daemon),
            alive(w)
        );
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        // Another tester's process is not touched.
        assert!(alive(sc.other));
    }

    #[test]
    fn watchdog_also_acts_when_the_shell_dies() {
        if !tools() {
            return;
        }
        let sc = Scene::new("wd-shell");
        let mut sshd = Command::new("sleep").arg("65").spawn().unwrap();
        let w = sc.watchdog(sshd.id() as i32);
        kill(sc.sid);
        // Noticed within 5 s; the watchdog then gives dtest's clean-up
        // 10 s (it would end the watchdog and report), and acts.
        assert!(wait_until(Duration::from_secs(20), || {
            !alive(sc.job) && !alive(sc.daemon) && !alive(w)
        }));
        assert!(alive(sc.other));
        let _ = sshd.kill();
        let _ = sshd.wait();
    }

    #[test]
    fn watchdog_acts_at_once_when_the_connection_goes_after_the_shell() {
        if !tools() {
            return;
        }
        let sc = Scene::new("wd-shell-then-sshd");
        let mut sshd = Command::new("sleep").arg("67").spawn().unwrap();
        let w = sc.watchdog(sshd.id() as i32);
        kill(sc.sid);
        std::thread::sleep(Duration::from_millis(300));
        let _ = sshd.kill();
        let _ = sshd.wait();
        assert!(wait_until(Duration::from_secs(8), || {
            !alive(sc.job) && !alive(sc.daemon) && !alive(w)
        }));
        assert!(alive(sc.other));
    }

    #[test]
    fn cleanup_ends_the_watchdog_then_stops_and_reports_what_left_the_session() {
        if !tools() {
            return;
        }
        let sc = Scene::new("cleanup");
        let mut sshd = Command::new("sleep").arg("66").spawn().unwrap();
        let w = sc.watchdog(sshd.id() as i32);
        let started = Started {
            sid: sc.sid,
            watchdog: w,
        };
        let out = Command::new("sh")
            .arg("-c")
            .arg(cleanup_command(started, Some(&sc.marks()), 300))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            strays(&out.stdout),
            (vec![(sc.daemon, "sleep".to_string())], false),
            "{out:?}"
        );
        assert!(wait_until(Duration::from_secs(1), || {
            !alive(w) && !alive(sc.sid) && !alive(sc.job) && !alive(sc.daemon)
        }));
        assert!(alive(sc.other));
        // A pid that is not a watchdog is never taken for one.
        let out = Command::new("sh")
            .arg("-c")
            .arg(cleanup_command(
                Started {
                    sid: 999_999_999,
                    watchdog: sc.other,
                },
                None,
                100,
            ))
            .output()
            .unwrap();
        assert!(out.stdout.is_empty(), "{out:?}");
        assert!(alive(sc.other));
        let _ = sshd.kill();
        let _ = sshd.wait();
    }

    #[test]
    fn foreground_answer() {
        assert_eq!(foreground(b"dtest-fg:1\n"), Some(true));
        assert_eq!(foreground(b"motd line\r\ndtest-fg:0\r\n"), Some(false));
        assert_eq!(foreground(b""), None);
        assert_eq!(foreground(b"dtest-fg:"), None);
        // The script is one `sh -c` word, and reads the terminal's
        // foreground group from field 6 after the command name.
        let c = foreground_command(42);
        assert!(c.starts_with("exec /bin/sh -c '"), "{c}");
        assert!(c.contains("/proc/42/stat") && c.contains("pg=$6"), "{c}");
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
