//! The `Flow` handle: what carries a message (a UDP socket + peer, a TCP or TLS
//! connection, an SCTP association or one of its streams).
//!
//! A flow is the RFC 5923 "alias descriptor": a small `Copy` value usable as a map key.
//! Its id is never reused during the life of a [`super::Transport`], so a stale handle
//! can only miss, never reach another peer.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::PeerIdentities;

use crate::TransportKind;

/// A stable handle on one flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Flow {
    id: u64,
    kind: TransportKind,
}

impl Flow {
    /// Builds a handle (used by the drivers; ids come from the transport's counter).
    pub(crate) fn new(id: u64, kind: TransportKind) -> Flow {
        Flow { id, kind }
    }

    /// The flow's numeric id, unique within one transport instance.
    pub fn id(self) -> u64 {
        self.id
    }

    /// The transport the flow runs over.
    pub fn kind(self) -> TransportKind {
        self.kind
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.kind, self.id)
    }
}

/// Who opened a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The peer connected to one of our listeners (or sent us a datagram first).
    Inbound,
    /// We connected to the peer (or sent it a datagram first).
    Outbound,
}

impl Direction {
    /// Lower-case name for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// What is known about a flow.
#[derive(Debug, Clone)]
pub struct FlowInfo {
    /// The handle.
    pub flow: Flow,
    /// Who opened it.
    pub direction: Direction,
    /// Our address.
    pub local: SocketAddr,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Verified identities of the peer (TLS family only; empty otherwise).
    pub identities: PeerIdentities,
    /// Outbound TLS: the name we verified the server against. Inbound TLS: the SNI the
    /// client sent (the local domain it asked for), if any.
    pub server_name: Option<Arc<str>>,
    /// The negotiated ALPN protocol (TLS only).
    pub alpn: Option<Arc<[u8]>>,
    /// TLS: the peer presented a certificate that verified (inbound: a client
    /// certificate, always requested per RFC 5923 §9.2). False otherwise.
    pub peer_certificate: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashSet};

    #[test]
    fn usable_as_key() {
        let a = Flow::new(1, TransportKind::Tcp);
        let b = Flow::new(2, TransportKind::Tls);
        let h: HashSet<Flow> = [a, b, a].into_iter().collect();
        assert_eq!(h.len(), 2);
        let o: BTreeSet<Flow> = [b, a].into_iter().collect();
        assert_eq!(o.into_iter().next(), Some(a));
        assert_eq!(a.to_string(), "tcp#1");
    }
}
