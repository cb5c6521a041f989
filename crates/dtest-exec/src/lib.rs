//! Runs dtest scenarios: testers driving shell sessions, expect, barriers,
//! TAP and JUnit reports, tester logs and a recorded trace.

pub mod duration;
pub mod load;
pub mod master;
pub mod matcher;
pub mod report;
pub mod run;
pub mod scenario;
pub mod session;
pub mod signals;
pub mod vars;

pub use load::{load_file, load_str, LoadOptions, ScenarioError, ScenarioErrors};
pub use run::{run, ExtraPoint, RunError, RunOptions, RunReport};
pub use scenario::{CustomContext, Defaults, OnFail, Scenario, Step, StepKind, Tester};
pub use session::{Channel, Signal, Transport, TransportRegistry};
