//! Criterion benchmarks of dtest-msc (to be written).
fn main() {}
