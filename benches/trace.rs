//! Criterion benchmarks of the trace format (filled in below).
fn main() {}
