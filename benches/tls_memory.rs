//! Placeholder, filled in by the memory benchmark.
fn main() {}
