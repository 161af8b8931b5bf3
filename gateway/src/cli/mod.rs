//! Command-line subcommands other than `run`: inspection tools, and the clients of a
//! running gateway's admin socket.

pub mod admin_client;
pub mod alias_table;
pub mod check_config;
pub mod flows;
pub mod log_level;
pub mod parse;
pub mod reload;
pub mod transactions;
