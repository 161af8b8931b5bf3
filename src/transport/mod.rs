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
//! - Inside (private): the flow core (framing, limits, header/idle timers, CRLF keep-alive,
//!   close/drain; pure, tested with simulated time), the session (plain or rustls, fed records),
//!   the sink (how bytes reach a flow), the flow table and the dialer; thin tokio drivers
//!   `udp`, `tcp` and `stream` around them. [`receive`] (what happens to one received
//!   message) is public for the benchmarks' like-for-like baselines.
//!
//! See docs/transport.md for limits, metrics names, keep-alive and close behaviour.

mod close;
mod config;
mod dialer;
mod egress;
mod error;
mod flood;
mod flow;
mod flow_core;
mod idle;
mod keepalive;
mod limits;
mod live;
mod manager;
pub mod metrics;
pub mod receive;
mod reroute;
mod sctp;
mod sctp_core;
mod sctp_dtls;
mod sctp_dtls_gate;
mod sctp_tls;
mod session;
mod shard;
mod sink;
mod sockstats;
mod stream;
mod stun;
mod table;
mod tcp;
mod tls;
mod udp;

pub use crate::kind::TransportKind;
pub use crate::PeerIdentities;
pub use crate::Target;
pub use config::SctpConfig;
pub use config::{IdentityExtractor, IdentityFn, TransportConfig};
pub use error::TransportError;
pub use flow::{Direction, Flow, FlowInfo};
pub use limits::{AdmitError, QueueOverflow};
pub use live::LiveLimits;
pub use manager::{sctp_available, CloseHook, Incoming, Transport, TransportStats};
pub use sctp::SctpAuthInfo;
pub use sctp_core::StreamPolicy;
pub use session::HandshakeError;
pub use shard::shard_of;
pub use sockstats::UdpSocketStats;
