//! One transport abstraction over UDP, TCP and TLS today, and SCTP, TLS-SCTP and
//! DTLS-SCTP (from `sipwire-sys`) later.
//!
//! - [`Transport`]: listeners ([`Transport::bind_udp`], [`Transport::bind_tcp`],
//!   [`Transport::bind_tls`]), outbound connect-or-reuse ([`Transport::connect`],
//!   [`Transport::send_to`]), sending on a flow ([`Transport::send`]), graceful close
//!   and shutdown. Received messages arrive as [`Incoming`] on the channel returned by
//!   [`Transport::new`].
//! - [`Flow`]: a `Copy + Eq + Hash + Ord` handle on whatever carries messages (a UDP
//!   socket + peer, a connection, an association or a stream of one): the RFC 5923
//!   alias descriptor.
//! - Pure policy, no I/O and no clock: [`limits`], [`keepalive`], [`idle`], [`close`],
//!   [`receive`], [`reroute`], [`stun`]. Thin tokio drivers: `udp`, `tcp`, `tls`,
//!   `stream`, `manager`.
//!
//! See docs/transport.md for limits, metrics names, keep-alive and close behaviour.

mod close;
mod config;
mod dialer;
mod error;
mod flow;
mod flow_core;
mod idhash;
mod idle;
mod keepalive;
mod limits;
mod manager;
pub mod metrics;
pub mod receive;
mod reroute;
mod session;
mod sink;
mod stream;
mod stun;
mod table;
mod tcp;
mod tls;
mod udp;

pub use crate::kind::TransportKind;
pub use crate::PeerIdentities;
pub use crate::Target;
pub use config::{IdentityExtractor, IdentityFn, TransportConfig};
pub use limits::{AdmitError, QueueOverflow};
pub use error::TransportError;
pub use flow::{Direction, Flow, FlowInfo};
pub use manager::{CloseHook, Incoming, Transport, TransportStats};
pub use session::HandshakeError;
