//! `sipwire run`: the SIP transport gateway built on the `sipwire` library, and the other
//! `sipwire` subcommands. Everything an operator touches lives here — the TOML
//! configuration, the development CA, the admin socket, the Prometheus exporter, signals
//! and the command line — so that a vendor embedding the library pulls none of it.

pub mod admin;
pub mod cli;
pub mod config;
pub mod config_check;
pub mod dev_tls;
pub mod endpoint_slot;
pub mod logging;
pub mod notify;
pub mod relay;
pub mod relay_config;
pub mod reload;
pub mod run;
pub mod sip_log;
pub mod tls_setup;
