//! Metric names (through the `metrics` facade) and per-flow handles.
//!
//! Labels: `transport` (udp, tcp, tls, ...), `direction` (inbound, outbound), `reason`.

use std::sync::{Mutex, OnceLock};

use metrics::{counter, gauge, Counter, Gauge};

use super::flow::Direction;
use crate::TransportKind;

/// Gauge: open stream connections (TLS counted once the handshake is done).
pub const CONNECTIONS: &str = "sipwire_transport_connections";
/// Gauge: UDP flows remembered.
pub const UDP_FLOWS: &str = "sipwire_transport_udp_flows";
/// Counter: connections opened, by transport and direction.
pub const CONNECTIONS_OPENED: &str = "sipwire_transport_connections_opened_total";
/// Counter: connections closed, by transport and reason.
pub const CONNECTIONS_CLOSED: &str = "sipwire_transport_connections_closed_total";
/// Counter: TLS handshakes completed, by direction.
pub const TLS_HANDSHAKES: &str = "sipwire_transport_tls_handshakes_total";
/// Counter: TLS handshakes failed, by direction and reason.
pub const TLS_HANDSHAKE_FAILURES: &str = "sipwire_transport_tls_handshake_failures_total";
/// Counter: bytes received, by transport.
pub const BYTES_RECEIVED: &str = "sipwire_transport_bytes_received_total";
/// Counter: bytes sent, by transport.
pub const BYTES_SENT: &str = "sipwire_transport_bytes_sent_total";
/// Counter: SIP messages received, by transport.
pub const MESSAGES_RECEIVED: &str = "sipwire_transport_messages_received_total";
/// Counter: SIP messages sent, by transport.
pub const MESSAGES_SENT: &str = "sipwire_transport_messages_sent_total";
/// Counter: things dropped, by transport and reason.
pub const DROPS: &str = "sipwire_transport_drops_total";
/// Counter: keep-alives, by transport and kind (ping_in, pong_out, ping_out, pong_in,
/// stun).
pub const KEEPALIVES: &str = "sipwire_transport_keepalives_total";

/// Counter: 503 responses sent to requests over their source's rate (each also counted in
/// `drops_total{reason="request_rate"}`), by transport.
pub const FLOOD_REPLIES: &str = "sipwire_transport_flood_replies_total";

/// Counts a 503 sent by the flood limits.
pub fn flood_reply(kind: TransportKind) {
    counter!(FLOOD_REPLIES, "transport" => kind.as_str()).increment(1);
}

/// Counts a drop.
pub fn drop(kind: TransportKind, reason: &'static str) {
    drops(kind, reason, 1);
}

/// Counts `n` drops of one reason at once.
pub fn drops(kind: TransportKind, reason: &'static str, n: u64) {
    counter!(DROPS, "transport" => kind.as_str(), "reason" => reason).increment(n);
}

/// Counts a keep-alive event.
pub fn keepalive(kind: TransportKind, what: &'static str) {
    counter!(KEEPALIVES, "transport" => kind.as_str(), "kind" => what).increment(1);
}

/// Counts a failed TLS handshake (completed ones are counted through
/// the transport's own per-direction handles).
pub fn handshake_failed(direction: Direction, reason: &'static str) {
    counter!(TLS_HANDSHAKE_FAILURES, "direction" => direction.as_str(), "reason" => reason)
        .increment(1);
}

/// Handles of one flow's hot counters, looked up once.
#[derive(Clone)]
pub struct FlowCounters {
    /// Bytes received.
    pub bytes_in: Counter,
    /// Bytes sent.
    pub bytes_out: Counter,
    /// Messages received.
    pub msgs_in: Counter,
    /// Messages sent.
    pub msgs_out: Counter,
}

impl FlowCounters {
    /// Handles for `kind`.
    pub fn new(kind: TransportKind) -> Self {
        let t = kind.as_str();
        FlowCounters {
            bytes_in: counter!(BYTES_RECEIVED, "transport" => t),
            bytes_out: counter!(BYTES_SENT, "transport" => t),
            msgs_in: counter!(MESSAGES_RECEIVED, "transport" => t),
            msgs_out: counter!(MESSAGES_SENT, "transport" => t),
        }
    }
}

const KINDS: usize = TransportKind::ALL.len();

fn kind_index(kind: TransportKind) -> usize {
    TransportKind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(0)
}

fn direction_index(direction: Direction) -> usize {
    usize::from(direction == Direction::Outbound)
}

/// The handles one transport counts its connections with, each registered with the
/// recorder on first use and kept: building a metric key (its label list is allocated)
/// and looking it up in the recorder cost more than the rest of the bookkeeping of a
/// connection. Handles are registered lazily, so the recorder sees exactly the series it
/// did when they were looked up per event; like the per-flow handles before them, they
/// stay bound to the recorder installed when they were first used (install it before the
/// first connection, as `gateway::run` does).
#[derive(Default)]
pub(crate) struct TransportMetrics {
    flows: [OnceLock<FlowCounters>; KINDS],
    opened: [[OnceLock<Counter>; 2]; KINDS],
    connections: [OnceLock<Gauge>; KINDS],
    handshakes: [OnceLock<Counter>; 2],
    /// Close reasons are `&'static str` from a small set, not an enum: a short list.
    closed: Mutex<Vec<(TransportKind, &'static str, Counter)>>,
}

impl TransportMetrics {
    /// The hot counters of flows of `kind`.
    pub(crate) fn flow(&self, kind: TransportKind) -> &FlowCounters {
        self.flows[kind_index(kind)].get_or_init(|| FlowCounters::new(kind))
    }

    fn connections(&self, kind: TransportKind) -> &Gauge {
        self.connections[kind_index(kind)]
            .get_or_init(|| gauge!(CONNECTIONS, "transport" => kind.as_str()))
    }

    /// A stream connection opened: counter and gauge.
    pub(crate) fn connection_opened(&self, kind: TransportKind, direction: Direction) {
        self.opened[kind_index(kind)][direction_index(direction)]
            .get_or_init(|| {
                counter!(CONNECTIONS_OPENED, "transport" => kind.as_str(),
                    "direction" => direction.as_str())
            })
            .increment(1);
        self.connections(kind).increment(1.0);
    }

    /// A stream connection closed: counter and gauge.
    pub(crate) fn connection_closed(&self, kind: TransportKind, reason: &'static str) {
        let c = {
            let mut closed = self.closed.lock().unwrap_or_else(|p| p.into_inner());
            match closed.iter().find(|(k, r, _)| *k == kind && *r == reason) {
                Some((_, _, c)) => c.clone(),
                None => {
                    let c = counter!(CONNECTIONS_CLOSED, "transport" => kind.as_str(),
                        "reason" => reason);
                    closed.push((kind, reason, c.clone()));
                    c
                }
            }
        };
        c.increment(1);
        self.connections(kind).decrement(1.0);
    }

    /// A TLS handshake completed.
    pub(crate) fn handshake_done(&self, direction: Direction) {
        self.handshakes[direction_index(direction)]
            .get_or_init(|| counter!(TLS_HANDSHAKES, "direction" => direction.as_str()))
            .increment(1);
    }
}

/// SCTP association events (restart, peer address change, remote error), by transport.
pub const SCTP_EVENTS: &str = "sipwire_transport_sctp_events_total";

/// Counts an SCTP association event.
pub fn sctp_event(kind: TransportKind, event: &'static str) {
    counter!(SCTP_EVENTS, "transport" => kind.as_str(), "event" => event).increment(1);
}

/// Sets the UDP flow gauge.
pub fn udp_flows(n: usize) {
    gauge!(UDP_FLOWS).set(n as f64);
}

/// Gauge: the socket buffer the kernel granted a listener (`transport`, `local`,
/// `buffer`: recv or send), in bytes. Linux doubles what was asked for and caps it at
/// net.core.rmem_max / wmem_max: compare with what the configuration asked.
pub const SOCKET_BUFFER: &str = "sipwire_transport_socket_buffer_bytes";

/// Counter: datagrams the kernel dropped because a UDP socket's receive queue was full
/// (`local`: the listener's address), read from /proc/net/udp and /proc/net/udp6 every few
/// seconds. Rising: the receive buffer is too small for the bursts, or the process too slow.
pub const UDP_KERNEL_DROPS: &str = "sipwire_transport_udp_kernel_drops_total";

/// Sets the socket buffer gauges of the listener at `local`.
pub(crate) fn socket_buffers(
    kind: TransportKind,
    local: std::net::SocketAddr,
    recv: usize,
    send: usize,
) {
    let local = local.to_string();
    gauge!(SOCKET_BUFFER, "transport" => kind.as_str(), "local" => local.clone(), "buffer" => "recv")
        .set(recv as f64);
    gauge!(SOCKET_BUFFER, "transport" => kind.as_str(), "local" => local, "buffer" => "send")
        .set(send as f64);
}

/// The kernel drop counter of the UDP listener at `local`.
pub(crate) fn udp_kernel_drops(local: std::net::SocketAddr) -> Counter {
    counter!(UDP_KERNEL_DROPS, "local" => local.to_string())
}
