//! The RFC 5923 alias table: which authenticated flow may carry requests to which peer.
//!
//! Pure: no I/O, no clock. Rows are {destination IP, port, transport} + the peer's certificate
//! identities + a generic flow descriptor `D`; one table per local (virtual) domain. Only
//! TLS-family flows (TLS over TCP, TLS over SCTP, DTLS over SCTP) are ever aliased, and a row is
//! reused only when the URI's domain is one of the row's identities. [`route()`] is the client's
//! per-request choice, [`via`] the `alias` Via parameter; the tokio driver that makes it live
//! is [`crate::ReuseEndpoint`]. See docs/alias.md.

pub mod decision;
pub mod dump;
pub mod key;
pub mod policy;
pub mod route;
pub mod table;
pub mod tables;
pub mod via;

pub use crate::PeerIdentities;
pub use decision::{AliasCounters, AliasDecision, IgnoreCounts, IgnoreReason, ALL_IGNORE_REASONS};
pub use dump::{RowDump, TableDump};
pub use key::{is_alias_transport, should_add_alias_param, AliasKey, DEFAULT_ALIAS_PORT};
pub use policy::AliasPolicy;
pub use route::{route, Route};
pub use table::{AliasRow, AliasTable, RowOrigin};
pub use tables::{AliasTables, InboundAlias, DEFAULT_MAX_ROWS_PER_TABLE};
pub use via::{our_via, ViaAlias};

#[cfg(test)]
mod tests;
