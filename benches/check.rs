//! Criterion benchmarks of dtest-check (to be written).
fn main() {}
