//! Runs dtest scenarios: testers driving shell sessions, expect, barriers,
//! TAP and JUnit reports, tester logs and a recorded trace.

pub mod session;
