//! `sipwire run`: the SIP transport gateway built on the `sipwire` library, and the other
//! `sipwire` subcommands. Everything an operator touches lives here — the TOML
//! configuration, the development CA, the admin socket, the Prometheus exporter, signals
//! and the command line — so that a vendor embedding the library pulls none of it.

pub mod admin;
pub mod cli;
pub mod config;
pub mod dev_tls;
pub mod responder;
pub mod run;
pub mod tls_setup;
