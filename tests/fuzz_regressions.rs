//! Replays every file of `tests/data/fuzz-regressions/` through all four fuzz targets
//! (`fuzz/exercise.rs`, the same code cargo-fuzz runs), on stable and in normal CI.
//!
//! A target reads byte 0 of its input as a selector (limits and chunking for the framer,
//! which parser for the URI target, source and Via options for the edit target), so each
//! file is replayed as it is (a crash file reproduces exactly) and once behind every
//! selector value the targets tell apart (they read six bits), so that a plain message
//! file exercises every mode. The seed messages of the fuzz corpus (RFC 4475 torture
//! messages, benchmark messages) are replayed the same way.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[path = "../fuzz/exercise.rs"]
mod exercise;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 4] = [
    ("parse_message", exercise::parse_message),
    ("stream_framer", exercise::stream_framer),
    ("uri", exercise::uri),
    ("edit_roundtrip", exercise::edit_roundtrip),
];

fn files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// Runs `data` through every target, as is and behind each selector byte; returns the
/// failures (target, selector, panic message) instead of stopping at the first one.
fn replay(data: &[u8]) -> Vec<String> {
    let mut failures = Vec::new();
    let mut prefixed = Vec::with_capacity(data.len() + 1);
    for (name, target) in TARGETS {
        let mut run = |input: &[u8], how: String| {
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| target(input))) {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{name} ({how}): {msg}"));
            }
        };
        run(data, "as is".into());
        if name == "parse_message" {
            continue;
        }
        // The targets read at most the low six bits of the selector.
        for sel in 0..64u8 {
            prefixed.clear();
            prefixed.push(sel);
            prefixed.extend_from_slice(data);
            run(&prefixed, format!("selector {sel:#04x}"));
        }
    }
    failures
}

fn replay_dir(dir: &str, min_files: usize) {
    let files = files(dir);
    assert!(
        files.len() >= min_files,
        "{dir}: only {} files",
        files.len()
    );
    let mut failures = Vec::new();
    for f in &files {
        let data = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for msg in replay(&data) {
            failures.push(format!("{}: {msg}", f.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fuzz_regression_inputs_pass_every_target() {
    replay_dir("tests/data/fuzz-regressions", 8);
}

#[test]
fn seed_corpus_passes_every_target() {
    replay_dir("tests/data/rfc4475", 40);
    replay_dir("benches/data", 4);
}
