//! Fuzz target: see `exercise::stream_framer` for what it does with the input.
#![no_main]

#[path = "../exercise.rs"]
mod exercise;

libfuzzer_sys::fuzz_target!(|data: &[u8]| exercise::stream_framer(data));
