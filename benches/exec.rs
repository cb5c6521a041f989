//! Criterion benchmarks of dtest-exec (to be written).
fn main() {}
