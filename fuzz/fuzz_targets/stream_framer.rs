//! Fuzz target: see `exercise::stream_framer` for what it does with the input.
#![no_main]

// Each target uses one entry point of the shared module.
#[allow(dead_code)]
#[path = "../exercise.rs"]
mod exercise;

libfuzzer_sys::fuzz_target!(|data: &[u8]| exercise::stream_framer(data));
