//! `sipwire run`: the gateway that relays SIP between transports.

pub mod admin;
pub mod alias_metrics;
pub mod config;
pub mod dev_tls;
pub mod responder;
pub mod reuse;
pub mod run;
pub mod tls_setup;
