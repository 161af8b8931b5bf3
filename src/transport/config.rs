//! Settings of a [`super::Transport`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;

use crate::wire::Limits;

/// Extracts the SIP identities (RFC 5922 §7.1) of a peer from its verified end-entity
/// certificate (DER). The TLS layer provides it; without one, TLS peers have no
/// identities.
#[derive(Clone)]
pub struct IdentityFn(pub Arc<IdentityExtractor>);

/// The function behind [`IdentityFn`].
pub type IdentityExtractor = dyn Fn(&CertificateDer<'_>) -> Vec<String> + Send + Sync;

impl fmt::Debug for IdentityFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdentityFn")
    }
}

/// Limits and timers of the transport layer. [`TransportConfig::default`] gives the
/// values documented in docs/transport.md.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Size limits for received messages (framer and parser).
    pub limits: Limits,
    /// Stream connections in total (inbound and outbound, TLS handshakes included).
    pub max_connections: usize,
    /// Stream connections per peer IP.
    pub max_connections_per_ip: usize,
    /// UDP flows remembered (socket + peer); the least recently used is forgotten first.
    pub max_udp_flows: usize,
    /// Bytes queued for one flow before it is closed as stuck.
    pub write_queue_bytes: usize,
    /// Flows without traffic for this long are closed (UDP flows forgotten).
    pub idle_timeout: Duration,
    /// A peer must complete a header block within this time of its first byte (and a
    /// new inbound connection its first header block within this time of the accept).
    pub header_timeout: Duration,
    /// TCP connect timeout for outbound connections.
    pub connect_timeout: Duration,
    /// TLS handshake timeout (both directions).
    pub handshake_timeout: Duration,
    /// Send RFC 5626 CRLFCRLF pings after this much inbound silence (`None`: only
    /// answer the peer's pings).
    pub keepalive_interval: Option<Duration>,
    /// A pong must follow our ping within this time (RFC 5626 §4.4.1: 10 s).
    pub pong_timeout: Duration,
    /// How long to wait for the peer's close after ours.
    pub linger: Duration,
    /// Requests larger than this many bytes for a UDP target go over TCP
    /// (RFC 3261 §18.1.1: 1300 when the path MTU is unknown).
    pub udp_max_request: usize,
    /// Capacity of the channel of received messages.
    pub incoming_queue: usize,
    /// Identity extraction for TLS peers: RFC 5922 identities of the verified peer
    /// certificate by default ([`crate::tls::identity_fn`]); `None` leaves every peer without
    /// identities, and then no RFC 5923 alias row is ever recorded.
    pub identities: Option<IdentityFn>,
    /// Source address of outbound connections (port chosen by the kernel); `None`: the
    /// kernel's choice. A multi-homed element sets its SIP address so that peers see the
    /// address they resolve for it (RFC 5923 alias rows are keyed by the source IP).
    pub outbound_ip: Option<std::net::IpAddr>,
    /// ALPN policy `require` on the client side: an outbound TLS handshake in which the
    /// server selected no protocol of ours is closed (`reason="no_application_protocol"`).
    /// The offered list is the client configuration's `alpn_protocols`.
    pub require_alpn: bool,
    /// SO_RCVBUF of UDP sockets in bytes (0: the kernel's default, net.core.rmem_default).
    /// Linux doubles the value asked for and caps it at net.core.rmem_max; the value granted
    /// is logged at bind and exported ([`crate::transport::metrics::SOCKET_BUFFER`]). What
    /// overflows it is dropped by the kernel and counted
    /// ([`crate::transport::metrics::UDP_KERNEL_DROPS`]).
    pub udp_recv_buffer: usize,
    /// SO_SNDBUF of UDP sockets in bytes (0: the kernel's default).
    pub udp_send_buffer: usize,
    /// SO_RCVBUF of TCP and TLS listeners in bytes, inherited by the connections they
    /// accept (0: the kernel's default and autotuning; a set value turns autotuning off).
    pub tcp_recv_buffer: usize,
    /// SO_SNDBUF of TCP and TLS listeners in bytes, inherited like `tcp_recv_buffer`.
    pub tcp_send_buffer: usize,
    /// SCTP associations (RFC 4168): streams, stream policy, retransmission and heartbeat
    /// parameters, socket buffers.
    pub sctp: SctpConfig,
    /// Mirror every SIP message sent and received to a HEP collector ([`crate::capture`]);
    /// `None` (the default): nothing is mirrored, at the cost of one branch per message.
    pub capture: Option<crate::capture::Capture>,
    /// Per-source flood limits ([`crate::flood`]): request rate, new-connection rate, TLS
    /// handshake budget. `None` (the default): nothing is limited beyond the connection
    /// counts above. [`super::Transport::set_flood`] replaces them at run time.
    pub flood: Option<crate::flood::FloodConfig>,
}

/// Settings of SCTP endpoints and their associations. Zero leaves a kernel parameter at the
/// kernel's default (net.sctp.* sysctls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SctpConfig {
    /// Outbound streams asked for on new associations (the peer may grant fewer).
    pub streams: u16,
    /// Inbound streams accepted.
    pub max_inbound_streams: u16,
    /// How messages are put on streams.
    pub policy: super::sctp_core::StreamPolicy,
    /// Initial RTO (zero: the kernel's; RFC 4960 §15 suggests 3 s initial, 1 s minimum, 60 s
    /// maximum).
    pub rto_initial: Duration,
    /// Minimum RTO.
    pub rto_min: Duration,
    /// Maximum RTO.
    pub rto_max: Duration,
    /// Heartbeat interval on idle paths (`None`: the kernel's, 30 s).
    pub heartbeat_interval: Option<Duration>,
    /// Retransmissions on one path before it is marked unreachable (0: kernel default, 5).
    pub path_max_retrans: u16,
    /// Retransmissions on the association before it is declared lost (0: kernel default, 10).
    pub assoc_max_retrans: u16,
    /// SO_RCVBUF in bytes (0: kernel default). Size for bursts: a full buffer makes the
    /// peer's messages wait (SCTP flow control), never lost.
    pub recv_buffer: usize,
    /// SO_SNDBUF in bytes (0: kernel default).
    pub send_buffer: usize,
    /// Associations at most, inbound and outbound together (each also counts against
    /// [`TransportConfig::max_connections`] and the per-IP limit).
    pub max_associations: usize,
}

impl Default for SctpConfig {
    fn default() -> Self {
        SctpConfig {
            streams: 16,
            max_inbound_streams: 64,
            policy: super::sctp_core::StreamPolicy::Spread,
            rto_initial: Duration::ZERO,
            rto_min: Duration::ZERO,
            rto_max: Duration::ZERO,
            heartbeat_interval: None,
            path_max_retrans: 0,
            assoc_max_retrans: 0,
            recv_buffer: 0,
            send_buffer: 0,
            max_associations: 4096,
        }
    }
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            limits: Limits::default(),
            max_connections: 16_384,
            max_connections_per_ip: 1_024,
            max_udp_flows: 65_536,
            write_queue_bytes: 1 << 20,
            idle_timeout: Duration::from_secs(600),
            header_timeout: Duration::from_secs(32),
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            keepalive_interval: None,
            pong_timeout: super::keepalive::PONG_TIMEOUT,
            linger: super::close::DEFAULT_LINGER,
            udp_max_request: 1300,
            incoming_queue: 4096,
            identities: Some(crate::tls::identity_fn()),
            outbound_ip: None,
            require_alpn: false,
            udp_recv_buffer: 0,
            udp_send_buffer: 0,
            tcp_recv_buffer: 0,
            tcp_send_buffer: 0,
            sctp: SctpConfig::default(),
            capture: None,
            flood: None,
        }
    }
}
