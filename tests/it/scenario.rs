//! Scenario language: failing loudly (`run` with `status`, `--set` typos,
//! misspelt step and tester keys).

use crate::common::{spawn_exec, wait_deadline};

fn exec(toml: &str, extra: &[&str]) -> (tempfile::TempDir, std::process::Output) {
    let (dir, child) = spawn_exec(toml, &[], extra);
    let out = wait_deadline(child, 60, "dtest exec");
    (dir, out)
}

fn text(o: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn run_with_status_checks_the_exit_status() {
    let toml = r#"
name = "status"
[defaults]
on_fail = "continue"
[[tester]]
name = "a"
pty = false
steps = [
  { run = "test 6380 != 6380", status = 0, name = "new primary is not the old one" },
  { run = "echo last words; (exit 3)", status = 3 },
  { run = "true", status = 0, timeout = "20s" },
]
"#;
    let (_d, o) = exec(toml, &[]);
    let (out, err) = text(&o);
    let all = format!("{out}\n--- stderr ---\n{err}");
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(
        out.contains("\nnot ok 1 - a: new primary is not the old one\n"),
        "{all}"
    );
    assert!(out.contains("expected status 0, got 1"), "{all}");
    assert!(
        out.contains("\nok 2 - a: run `echo last words; (exit 3)` (status 3)\n"),
        "{all}"
    );
    assert!(out.contains("\nok 3 - a: run `true` (status 0)\n"), "{all}");
}

#[test]
fn run_with_status_shows_the_last_lines() {
    let toml = r#"
name = "status"
[[tester]]
name = "a"
pty = false
steps = [{ run = "echo sentinel-down; (exit 4)", status = 0 }]
"#;
    let (_d, o) = exec(toml, &[]);
    let (out, err) = text(&o);
    let all = format!("{out}\n--- stderr ---\n{err}");
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(
        out.contains("\nnot ok 1 - a: run `echo sentinel-down; (exit 4)` (status 0)\n"),
        "{all}"
    );
    assert!(out.contains("expected status 0, got 4"), "{all}");
    assert!(out.contains("last_lines"), "{all}");
    assert!(out.contains("sentinel-down"), "{all}");
}

#[test]
fn run_with_status_times_out() {
    let toml = r#"
name = "status"
[[tester]]
name = "a"
pty = false
steps = [{ run = "sleep 30", status = 0, timeout = "300ms" }]
"#;
    let (_d, o) = exec(toml, &[]);
    let (out, err) = text(&o);
    let all = format!("{out}\n--- stderr ---\n{err}");
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(out.contains("not ok 1"), "{all}");
    assert!(out.contains("still running after 300ms"), "{all}");
}

#[test]
fn a_set_of_no_variable_is_an_error() {
    let toml = r#"
name = "set"
[vars]
port = "6379"
[[tester]]
name = "a"
steps = [{ run = "echo ${port}", status = 0 }]
"#;
    let (d, o) = exec(toml, &["--set", "prot=1234"]);
    let (out, err) = text(&o);
    let all = format!("{out}\n--- stderr ---\n{err}");
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(
        err.contains("s.toml:1:1: --set prot: the scenario has no variable `prot` (did you mean `port`?); it has: port"),
        "{all}"
    );
    assert!(!d.path().join("run").join("trace.dtrace").exists(), "{all}");
    // A variable the scenario uses is fine.
    let (_d, o) = exec(toml, &["--set", "port=1234"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
}

#[test]
fn misspelt_keys_are_named_with_their_position() {
    let toml =
        "name = \"k\"\n[[tester]]\nname = \"a\"\nsteps = [{ run = \"x\" }, { expcet = \"a\" }]\n";
    let (_d, o) = exec(toml, &[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}\n{err}");
    assert!(
        err.contains("s.toml:4:27: unknown key `expcet` in a step; did you mean `expect`?"),
        "{err}"
    );
    let toml = "name = \"k\"\n[[tester]]\nname = \"a\"\nstep = [{ run = \"x\" }]\n";
    let (_d, o) = exec(toml, &[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}\n{err}");
    assert!(
        err.contains("s.toml:4:1: unknown key `step` in a tester (did you mean `steps`?)"),
        "{err}"
    );
}

#[test]
fn a_failed_command_no_step_checks_is_reported() {
    let toml = r#"
name = "unchecked"
[[tester]]
name = "a"
pty = false
steps = [
  { run = "(exit 3)" },
  { sleep = "300ms" },
  { run = "false" },
  { run = "true" },
  { run = "(exit 5)" },
  { wait = true },
  { run = "(exit 6)" },
  { expect = "never", timeout = "100ms", on_fail = "continue" },
  { run = "echo end" },
]
"#;
    let (d, o) = exec(toml, &[]);
    let (out, err) = text(&o);
    let all = format!("{out}\n--- stderr ---\n{err}");
    // Reported, not failed: the points stay ok.
    for n in [1, 2, 3, 4, 5, 6, 7, 9] {
        // (8, the expect, fails: the command ended before its pattern.)
        assert!(out.contains(&format!("\nok {n} - ")), "point {n}: {all}");
    }
    let m3 = "command `(exit 3)` ended with status 3 and no step checked it";
    let m1 = "command `false` ended with status 1 and no step checked it";
    let m6 = "command `(exit 6)` ended with status 6 and no step checked it";
    assert!(out.contains(m3), "{all}");
    assert!(out.contains(m1), "{all}");
    // The failed expect said how the command ended: not reported again.
    assert!(
        out.contains("command ended with status 6 before the pattern appeared"),
        "{all}"
    );
    assert!(!out.contains(m6), "{all}");
    assert!(
        !out.contains("`(exit 5)` ended"),
        "`wait` checked it: {all}"
    );
    assert!(!out.contains("`true` ended"), "{all}");
    // On the point where it was seen: the sleep (2), the next run (4).
    let at = |m: &str| {
        let i = out.find(m).unwrap();
        out[..i]
            .rfind("ok ")
            .map(|j| out[j..].split(' ').nth(1).unwrap().to_string())
    };
    assert_eq!(at(m3).as_deref(), Some("2"), "{all}");
    assert_eq!(at(m1).as_deref(), Some("4"), "{all}");
    let log = std::fs::read_to_string(d.path().join("run").join("a.err")).unwrap();
    for m in [m3, m1] {
        assert!(log.contains(m), "{log}");
    }
}
