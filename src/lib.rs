//! sipwire: an SCTP-first, multi-transport SIP transport stack.
//!
//! The crate is split by role, lowest layer first:
//! - [`wire`]: the SIP wire codec (zero-copy parser, URI, stream framer, editing). Pure, no I/O.
//! - [`tls`]: TLS configuration and RFC 5922 identities from certificates.
//! - [`transport`]: the one transport abstraction (flows, listeners, the connection manager) and the
//!   UDP/TCP/TLS/SCTP drivers.
//! - [`alias`]: the RFC 5923 alias table. Pure.
//! - [`resolve`]: RFC 3263 server location (pure ordering + a hickory-resolver driver).
//! - [`transaction`]: the RFC 3261 §17 transaction layer with RFC 6026 (pure, clock-free).
//! - [`gateway`]: `sipwire run`, the relay between transports.
#![forbid(unsafe_code)]

pub mod alias;
pub mod endpoint;
mod identities;
mod kind;
pub mod resolve;
mod target;
pub mod tls;
pub mod transaction;
pub mod transport;
pub mod wire;

pub use identities::PeerIdentities;
pub use kind::{TransportKind, UnknownTransport};
pub use target::Target;
