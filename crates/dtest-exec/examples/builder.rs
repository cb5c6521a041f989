//! A scenario written in Rust with the builder API: two local testers, a
//! captured variable, a barrier and a `custom` step running a closure.
//!
//! ```sh
//! cargo run -p dtest-exec --example builder
//! ```

use std::time::Duration;

use dtest_exec::{run, RunOptions, Scenario, Step, Tester};

fn main() {
    let sc = Scenario::new("builder-demo")
        .timeout(Duration::from_secs(60))
        .tester(
            Tester::new("server")
                .step(Step::run("echo listening on port=4242"))
                .step(Step::expect(r"port=(?P<port>\d+)"))
                .step(Step::barrier("server ready"))
                .step(Step::custom("the port was captured", |cx| {
                    match cx.vars.get("port").map(String::as_str) {
                        Some("4242") => Ok("port 4242".into()),
                        other => Err(format!("unexpected port {other:?}")),
                    }
                })),
        )
        .tester(
            Tester::new("client")
                .pty(false)
                .step(Step::barrier("server ready"))
                .step(Step::run("echo connected"))
                .step(Step::expect_literal("connected").timeout(Duration::from_secs(5)))
                .step(Step::wait_status(0)),
        );
    let out = std::env::temp_dir().join(format!("dtest-builder-demo-{}", std::process::id()));
    match run(&sc, RunOptions::new(&out, Box::new(std::io::stdout()))) {
        Ok(report) => {
            eprintln!("run directory: {}", out.display());
            std::process::exit(i32::from(report.exit_code()));
        }
        Err(e) => {
            eprintln!("builder-demo: {e}");
            std::process::exit(2);
        }
    }
}
