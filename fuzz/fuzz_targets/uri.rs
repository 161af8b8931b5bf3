//! Fuzz target: see `exercise::uri` for what it does with the input.
#![no_main]

#[path = "../exercise.rs"]
mod exercise;

libfuzzer_sys::fuzz_target!(|data: &[u8]| exercise::uri(data));
