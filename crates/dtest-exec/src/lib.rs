//! Runs dtest scenarios: testers driving shell sessions, expect, barriers,
//! TAP and JUnit reports, tester logs and a recorded trace.
//!
//! A [`Scenario`] (loaded from TOML by [`load_file`], or built in Rust) has
//! testers; each drives one shell session through a [`session::Channel`]
//! (local, SSH, mock) and runs its [`Step`]s. [`run`] starts one thread per
//! tester and the barrier coordinator ([`master::Master`]), prints a TAP
//! point per step as it ends, writes the `.in`/`.out`/`.err` logs and
//! records every event, with vector clocks, through a
//! [`dtest_trace::Recorder`]. Every session is read continuously by its
//! own capture thread ([`session::capture`]), whatever its tester does, so
//! output is logged and traced the moment it arrives. The scenario keys are documented in
//! `SCENARIO.md` next to this crate's manifest.
//!
//! ```
//! use dtest_exec::{run, RunOptions, Scenario, Step, Tester};
//!
//! let sc = Scenario::new("doc")
//!     .tester(Tester::new("a")
//!         .step(Step::run("echo hello from a"))
//!         .step(Step::expect(r"hello from (?P<who>\w+)"))
//!         .step(Step::barrier("met")))
//!     .tester(Tester::new("b").pty(false)
//!         .step(Step::barrier("met"))
//!         .step(Step::custom("closures are steps", |cx| Ok(cx.tester.to_string()))));
//! let dir = tempfile::tempdir().unwrap();
//! let report = run(&sc, RunOptions::new(dir.path(), Box::new(std::io::sink()))).unwrap();
//! assert!(report.ok);
//! assert_eq!(report.points.len(), 5);
//! assert!(dtest_trace::validate(&dtest_trace::Trace::load(&report.trace).unwrap()).is_empty());
//! ```
//!
//! Layers, from the bottom: [`session`] (the transport traits, the local
//! transport, the shell protocol with its markers, the capture thread, the
//! tester's session handle), [`matcher`] (the streaming expect),
//! [`scenario`] and [`load`] (the model and the TOML loader), [`master`]
//! (barriers), [`runner`] (testers, the stop condition, the record),
//! [`steps`] (the step table and one file per step kind), [`report`] (TAP,
//! JUnit).

pub mod duration;
pub mod load;
pub mod master;
pub mod matcher;
pub mod order;
pub mod plan;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod session;
pub mod signals;
pub mod steps;
pub mod vars;

pub use load::{load_file, load_str, LoadOptions, ScenarioError, ScenarioErrors};
pub use runner::{run, ExtraPoint, RunError, RunOptions, RunReport};
pub use scenario::{CustomContext, Defaults, OnFail, Scenario, Step, StepKind, Tester};
pub use session::{Channel, Signal, Transport, TransportRegistry};
