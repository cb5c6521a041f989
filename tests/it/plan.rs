//! `dtest exec --dry-run`: the plan of a scenario, nothing started.

use crate::common::*;

#[test]
fn dry_run_prints_the_expanded_plan_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let sc = dir.path().join("p.toml");
    std::fs::write(
        &sc,
        format!(
            r#"name = "plan"
free_ports = ["port"]
[vars]
marker = "{}"
[steps]
serve = [{{ run = "touch ${{marker}}; serve ${{port}}" }}, {{ expect = "up" }}]
[[tester]]
name = "node${{index}}"
count = 2
timeout = "40s"
steps = [{{ include = "serve" }}, {{ barrier = "all up" }}]
"#,
            marker.display()
        ),
    )
    .unwrap();
    let out = run(dtest().arg("exec").arg(&sc).arg("--dry-run"));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("scenario \"plan\": 2 testers, 6 points"),
        "{text}"
    );
    assert!(text.contains("tester node1\n"), "{text}");
    assert!(text.contains("tester node2\n"), "{text}");
    assert!(
        text.contains("deadlines: expect 40s, barrier 40s, wait 40s"),
        "{text}"
    );
    assert!(text.contains("\"all up\": node1, node2"), "{text}");
    // The free port is expanded in the commands.
    let port = text
        .lines()
        .find_map(|l| l.strip_prefix("  port = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("the port variable");
    assert!(text.contains(&format!("serve {port}`")), "{text}");
    // Nothing ran.
    assert!(!marker.exists());
}

#[test]
fn dry_run_refuses_a_deadlock_with_both_positions() {
    let dir = tempfile::tempdir().unwrap();
    let sc = dir.path().join("d.toml");
    std::fs::write(
        &sc,
        r#"name = "dead"
[[tester]]
name = "a"
steps = [{ barrier = "A" }, { barrier = "B" }]
[[tester]]
name = "b"
steps = [{ barrier = "B" }, { barrier = "A" }]
"#,
    )
    .unwrap();
    for extra in [&["--dry-run"][..], &[][..]] {
        let out = run(dtest().arg("exec").arg(&sc).args(extra));
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        let f = sc.display().to_string();
        assert!(
            err.contains(&format!("{f}:4:41: these barriers must deadlock")),
            "{err}"
        );
        assert!(
            err.contains(&format!("{f}:7:41: these barriers must deadlock")),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "nothing ran: {}", show(&out));
    }
}
