//! `sipwire run`: the gateway that relays SIP between transports.

pub mod config;
