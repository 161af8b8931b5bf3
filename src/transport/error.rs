//! Errors of the transport layer.

use std::net::SocketAddr;

use super::flow::Flow;
use super::limits::{AdmitError, QueueOverflow};
use crate::TransportKind;

/// What went wrong when binding, connecting or sending.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// A listener could not be bound.
    #[error("cannot bind {kind} {addr}: {source}")]
    Bind {
        /// Transport.
        kind: TransportKind,
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The transport has no driver in this build or on this kernel.
    #[error("transport {0} is not supported here")]
    Unsupported(TransportKind),
    /// The kernel has no SCTP (the source says how to get it).
    #[error("SCTP is not available here: {0}")]
    NoKernelSctp(#[source] sipwire_sys::SctpError),
    /// No TLS client configuration was set for outbound TLS.
    #[error("no TLS client configuration")]
    NoTlsClient,
    /// No UDP socket of the target's address family is bound.
    #[error("no UDP socket for {0}")]
    NoUdpSocket(SocketAddr),
    /// The server name is not a valid DNS name or IP address.
    #[error("invalid TLS server name {0:?}")]
    BadServerName(String),
    /// Connecting failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Target.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The TLS handshake failed.
    #[error("TLS handshake with {addr} failed: {reason}")]
    Handshake {
        /// Target.
        addr: SocketAddr,
        /// Short reason (also the metrics label).
        reason: &'static str,
        /// What failed.
        source: super::session::HandshakeError,
    },
    /// RFC 5922 §7.3: the server's certificate does not assert the domain we connected
    /// for; the handshake was aborted and the connection closed.
    #[error("TLS server {addr} is not authenticated for SIP domain {domain}")]
    IdentityMismatch {
        /// Target.
        addr: SocketAddr,
        /// The domain expected (the AUS domain).
        domain: String,
    },
    /// A connection limit refused the connection.
    #[error(transparent)]
    Limit(#[from] AdmitError),
    /// The flow is unknown (closed, or never existed).
    #[error("flow {0} is closed or unknown")]
    UnknownFlow(Flow),
    /// The flow's write queue went over its bound; the flow is being closed.
    #[error("flow {flow}: {overflow}")]
    Overflow {
        /// The flow.
        flow: Flow,
        /// Details.
        overflow: QueueOverflow,
    },
    /// The message is larger than the flow carries whole (DTLS over SCTP, RFC 6083 §3.2: one
    /// DTLS record of 2^14 bytes per message, never split); refused, the flow stays up.
    #[error("flow {flow}: SIP message of {len} bytes refused, at most {limit} bytes fit one DTLS record")]
    MessageTooLarge {
        /// The flow.
        flow: Flow,
        /// The message's size.
        len: usize,
        /// The largest message the flow carries.
        limit: usize,
    },
    /// A datagram could not be sent now (socket buffer full); it was dropped.
    #[error("datagram to {0} dropped: {1}")]
    Datagram(SocketAddr, std::io::Error),
    /// The transport is shutting down.
    #[error("transport is shutting down")]
    ShuttingDown,
}
