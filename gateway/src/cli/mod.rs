//! Command-line subcommands other than `run` (debugging and inspection tools).

pub mod alias_table;
pub mod parse;
