//! sipwire: an SCTP-first, multi-transport SIP transport stack for telecom elements
//! (P-CSCF, IBCF, SBC).
//!
//! What an element embeds is re-exported here:
//! - [`Transport`] (with [`TransportConfig`]): listeners, flows and sending over UDP, TCP and
//!   TLS (the SCTP family next), one [`Flow`] handle per connection, association or UDP peer;
//!   received messages arrive as [`Incoming`], carrying the flow's transport, the peer's
//!   authenticated [`PeerIdentities`] and the SNI it asked for.
//! - [`ReuseEndpoint`]: RFC 3263 server location → RFC 5923 alias tables → transport for
//!   outbound requests, and the server-side alias rules; [`response_route`] and
//!   [`ReuseEndpoint::send_response`] for RFC 3261 §18.2.2 responses.
//! - The shared vocabulary: [`TransportKind`], [`Target`], [`PeerIdentities`], and the
//!   codec's [`Message`].
//!
//! - [`flood`]: per-source request, connection and TLS handshake limits (pike-like).
//! - [`capture`]: HEP v3 mirroring of every message sent and received, to Homer, sngrep or
//!   any HEP collector.
//!
//! The modules, lowest layer first: [`wire`] (the SIP codec, pure), [`tls`] (rustls
//! configuration and RFC 5922 identities), [`transport`] (the transport layer), [`alias`]
//! (RFC 5923 tables, pure), [`resolve`] (RFC 3263: pure ordering + a hickory-resolver
//! driver), [`transaction`] (RFC 3261 §17 with RFC 6026, pure and clock-free), [`proxy`] (the
//! RFC 3261 §16 proxy core over the transaction layer, pure), [`endpoint`]
//! (the outbound and response API). The `sipwire run` gateway is a
//! separate crate (`sipwire-gateway`) so that embedding the library pulls no configuration
//! parser, CLI or HTTP exporter. See docs/architecture.md.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod alias;
pub mod capture;
pub mod endpoint;
pub mod flood;
mod identities;
mod idhash;
mod kind;
pub mod proxy;
pub mod resolve;
mod target;
pub mod tls;
pub mod transaction;
pub mod transport;
pub mod wire;

pub use identities::PeerIdentities;
pub use kind::{TransportKind, UnknownTransport};
pub use target::Target;

pub use endpoint::{
    response_route, LocalDomain, ResponseRoute, ReuseConfig, ReuseEndpoint, ReuseError, Sent,
};
pub use resolve::{DnsConfig, DnsResolver};
pub use transport::{
    CloseHook, Direction, Flow, FlowInfo, IdentityFn, Incoming, Transport, TransportConfig,
    TransportError, TransportStats,
};
pub use wire::Message;
