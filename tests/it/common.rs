//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The dtest binary under test.
pub fn dtest_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dtest-under-test"))
}

/// A `Command` for the dtest binary.
pub fn dtest() -> Command {
    Command::new(dtest_bin())
}

/// The repository root (for `traces/`, `examples/`, `properties/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Runs a command and returns its output; panics with a clear message when it
/// cannot be started.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Fails with a message naming the Debian package when a tool is missing.
pub fn require_tool(tool: &str, package: &str) -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
    {
        let p = Path::new(dir).join(tool);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{tool}` not found: install the Debian package `{package}` (the README's test command does)");
}

/// stdout and stderr of an output, for assertion messages.
pub fn show(o: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Waits for `child` at most `secs`, killing it (and failing) after that.
pub fn wait_deadline(mut child: Child, secs: u64, what: &str) -> Output {
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let to = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut v);
        }
        v
    });
    let te = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut v);
        }
        v
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {secs}s (a hang)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: to.join().unwrap_or_default(),
        stderr: te.join().unwrap_or_default(),
    }
}

/// Writes the scenario `toml` (and `files`, next to it: `${scenario_dir}`)
/// to a temp dir and starts `dtest exec` on it, output in `run/`.
pub fn spawn_exec(
    toml: &str,
    files: &[(&str, &str)],
    extra: &[&str],
) -> (tempfile::TempDir, Child) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write scenario file");
    }
    let f = dir.path().join("s.toml");
    std::fs::write(&f, toml).expect("write scenario");
    let child = dtest()
        .arg("exec")
        .arg(&f)
        .arg("--out")
        .arg(dir.path().join("run"))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dtest");
    (dir, child)
}

/// The number in attribute `name="..."` of the first tag in `tag` that has
/// it (an SVG's root size, an element's `data-y`), if any.
pub fn svg_num(tag: &str, name: &str) -> Option<f64> {
    tag.split(&format!(" {name}=\""))
        .nth(1)?
        .split('"')
        .next()?
        .parse()
        .ok()
}
