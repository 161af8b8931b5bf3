//! Command-line subcommands other than `run` (debugging and inspection tools).

pub mod parse;
