//! The flow table: every flow's info and sink, the RFC 3261 §18 reuse index, the UDP flows
//! (socket, peer) with their least-recently-used bound. Bookkeeping only: no I/O, no clock
//! (the caller passes `now`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;

use super::flow::{Direction, Flow, FlowInfo};
use super::sink::{ConnSink, Sink};
use crate::idhash::{FlowIdMap, SeededMap};
use crate::{PeerIdentities, TransportKind};

/// Reuse key: RFC 3261 §18 indexes connections by far-end address, port and transport;
/// TLS adds the verified server name so that one name's connection never serves another,
/// and the scope (RFC 5923 §9.3: a local domain's connections are its own).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ReuseKey {
    pub(crate) kind: TransportKind,
    pub(crate) peer: SocketAddr,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) scope: Option<Arc<str>>,
}

/// One flow.
#[derive(Debug)]
pub(crate) struct FlowEntry {
    pub(crate) info: FlowInfo,
    pub(crate) sink: Sink,
    /// Connections offered for reuse; taken out when the flow starts closing.
    pub(crate) reuse_key: Option<ReuseKey>,
    /// UDP flows: the last datagram either way (the LRU order).
    pub(crate) last_seen: Instant,
}

/// What the table holds, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TableCounts {
    pub(crate) stream_flows: usize,
    pub(crate) udp_flows: usize,
    pub(crate) reuse_entries: usize,
}

/// The flows of one transport.
#[derive(Debug, Default)]
pub(crate) struct FlowTable {
    /// Keyed by flow id (ours, not a peer's: a cheap hasher is safe).
    flows: FlowIdMap<FlowEntry>,
    /// Keys hold peer addresses: a seeded hasher.
    reuse: SeededMap<ReuseKey, Flow>,
    /// Connections and associations by transport and peer address, whoever opened them:
    /// where a response goes back when only the address is known (a stateless proxy).
    by_peer: SeededMap<(TransportKind, SocketAddr), Flow>,
    udp_index: HashMap<(usize, SocketAddr), u64>,
    pub(crate) udp_sockets: Vec<(Arc<UdpSocket>, SocketAddr)>,
    pub(crate) listeners: Vec<(TransportKind, SocketAddr)>,
}

/// A UDP flow looked up or created by [`FlowTable::udp_flow`].
pub(crate) struct UdpFlow {
    pub(crate) info: FlowInfo,
    /// A least recently used flow was forgotten to make room.
    pub(crate) evicted: bool,
}

impl FlowTable {
    /// Registers a connection, offered for reuse under `key` if given.
    pub(crate) fn insert_conn(
        &mut self,
        info: FlowInfo,
        sink: Arc<ConnSink>,
        key: Option<ReuseKey>,
        now: Instant,
    ) {
        self.insert_flow(info, Sink::Conn(sink), key, now);
    }

    /// Registers a connection or association, offered for reuse under `key` if given.
    pub(crate) fn insert_flow(
        &mut self,
        info: FlowInfo,
        sink: Sink,
        key: Option<ReuseKey>,
        now: Instant,
    ) {
        if let Some(k) = &key {
            self.reuse.insert(k.clone(), info.flow);
        }
        if !matches!(sink, Sink::Datagram { .. }) {
            self.by_peer
                .insert((info.flow.kind(), info.peer), info.flow);
        }
        self.flows.insert(
            info.flow.id(),
            FlowEntry {
                info,
                sink,
                reuse_key: key,
                last_seen: now,
            },
        );
    }

    pub(crate) fn get(&self, flow: Flow) -> Option<&FlowEntry> {
        self.flows.get(&flow.id())
    }

    /// The open stream flow of `kind` whose peer is `peer`, whichever side opened it.
    pub(crate) fn stream_flow_to(&self, kind: TransportKind, peer: SocketAddr) -> Option<Flow> {
        self.by_peer.get(&(kind, peer)).copied()
    }

    /// The flow reusable under `key`.
    pub(crate) fn reusable(&self, key: &ReuseKey) -> Option<Flow> {
        self.reuse.get(key).copied()
    }

    /// Takes a flow out of the reuse index (it starts no new transaction).
    pub(crate) fn unindex(&mut self, flow: Flow) {
        let key = self
            .flows
            .get_mut(&flow.id())
            .and_then(|e| e.reuse_key.take());
        if let Some(k) = key {
            self.unreuse(k, flow);
        }
    }

    /// Removes a flow (a connection whose driver ended, a UDP flow closed or forgotten).
    pub(crate) fn remove(&mut self, flow: Flow) -> Option<FlowEntry> {
        let e = self.flows.remove(&flow.id())?;
        if let Some(k) = e.reuse_key.clone() {
            self.unreuse(k, flow);
        }
        if let std::collections::hash_map::Entry::Occupied(p) =
            self.by_peer.entry((flow.kind(), e.info.peer))
        {
            if *p.get() == flow {
                p.remove();
            }
        }
        if let Sink::Datagram { sock_idx, peer, .. } = e.sink {
            self.udp_index.remove(&(sock_idx, peer));
        }
        Some(e)
    }

    /// Removes `key` from the reuse index if it still names `flow` (one lookup).
    fn unreuse(&mut self, key: ReuseKey, flow: Flow) {
        if let std::collections::hash_map::Entry::Occupied(e) = self.reuse.entry(key) {
            if *e.get() == flow {
                e.remove();
            }
        }
    }

    /// The UDP flow of (socket, peer), created with a new id from `next_flow` if new; the
    /// least recently used flow is forgotten when `max` are held. `None` for an unknown socket.
    pub(crate) fn udp_flow(
        &mut self,
        sock_idx: usize,
        peer: SocketAddr,
        direction: Direction,
        now: Instant,
        max: usize,
        next_flow: impl FnOnce() -> Flow,
    ) -> Option<UdpFlow> {
        if let Some(id) = self.udp_index.get(&(sock_idx, peer)).copied() {
            if let Some(e) = self.flows.get_mut(&id) {
                e.last_seen = now;
                return Some(UdpFlow {
                    info: e.info.clone(),
                    evicted: false,
                });
            }
        }
        let (socket, local) = self.udp_sockets.get(sock_idx).cloned()?;
        let mut evicted = false;
        if self.udp_index.len() >= max {
            let oldest = self
                .flows
                .values()
                .filter(|e| matches!(e.sink, Sink::Datagram { .. }))
                .map(|e| (e.last_seen, e.info.flow))
                .min();
            if let Some((_, f)) = oldest {
                evicted = self.remove(f).is_some();
            }
        }
        let flow = next_flow();
        let info = FlowInfo {
            flow,
            direction,
            local,
            peer,
            identities: PeerIdentities::none(),
            server_name: None,
            peer_certificate: false,
            alpn: None,
        };
        self.udp_index.insert((sock_idx, peer), flow.id());
        self.flows.insert(
            flow.id(),
            FlowEntry {
                info: info.clone(),
                sink: Sink::Datagram {
                    socket,
                    sock_idx,
                    peer,
                },
                reuse_key: None,
                last_seen: now,
            },
        );
        Some(UdpFlow { info, evicted })
    }

    /// Forgets the UDP flows not seen since `cutoff`.
    pub(crate) fn sweep_udp(&mut self, cutoff: Instant) {
        let stale: Vec<Flow> = self
            .flows
            .values()
            .filter(|e| matches!(e.sink, Sink::Datagram { .. }) && e.last_seen < cutoff)
            .map(|e| e.info.flow)
            .collect();
        for f in stale {
            self.remove(f);
        }
    }

    /// Forgets every UDP flow (shutdown).
    pub(crate) fn clear_udp(&mut self) {
        self.flows
            .retain(|_, e| !matches!(e.sink, Sink::Datagram { .. }));
        self.udp_index.clear();
    }

    /// Replaces a flow's info (same flow id).
    pub(crate) fn update_info(&mut self, info: FlowInfo) {
        if let Some(e) = self.flows.get_mut(&info.flow.id()) {
            e.info = info;
        }
    }

    /// Every flow's info.
    pub(crate) fn infos(&self) -> Vec<FlowInfo> {
        self.flows.values().map(|e| e.info.clone()).collect()
    }

    /// The sinks of every connection (to close or abort them all).
    pub(crate) fn conn_sinks(&self) -> Vec<Arc<ConnSink>> {
        self.flows
            .values()
            .filter_map(|e| match &e.sink {
                Sink::Conn(c) => Some(Arc::clone(c)),
                Sink::Assoc(_) | Sink::Datagram { .. } => None,
            })
            .collect()
    }

    pub(crate) fn counts(&self) -> TableCounts {
        TableCounts {
            stream_flows: self.flows.len() - self.udp_index.len(),
            udp_flows: self.udp_index.len(),
            reuse_entries: self.reuse.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn info(id: u64, kind: TransportKind) -> FlowInfo {
        FlowInfo {
            flow: Flow::new(id, kind),
            direction: Direction::Outbound,
            local: "127.0.0.1:5060".parse().unwrap(),
            peer: "192.0.2.1:5060".parse().unwrap(),
            identities: PeerIdentities::none(),
            server_name: None,
            alpn: None,
            peer_certificate: false,
        }
    }

    fn key(port: u16) -> ReuseKey {
        ReuseKey {
            kind: TransportKind::Tcp,
            peer: SocketAddr::new("192.0.2.1".parse().unwrap(), port),
            name: None,
            scope: None,
        }
    }

    #[test]
    fn reuse_index_follows_the_flow() {
        let mut t = FlowTable::default();
        let now = Instant::now();
        t.insert_conn(
            info(1, TransportKind::Tcp),
            ConnSink::new(),
            Some(key(5060)),
            now,
        );
        let f = Flow::new(1, TransportKind::Tcp);
        assert_eq!(t.reusable(&key(5060)), Some(f));
        t.unindex(f);
        assert_eq!(t.reusable(&key(5060)), None, "closing: no new transaction");
        assert!(t.get(f).is_some(), "still there until its driver ends");
        // A newer flow under the same key is not removed by the old one leaving.
        t.insert_conn(
            info(2, TransportKind::Tcp),
            ConnSink::new(),
            Some(key(5060)),
            now,
        );
        t.remove(f);
        assert_eq!(
            t.reusable(&key(5060)),
            Some(Flow::new(2, TransportKind::Tcp))
        );
        assert_eq!(t.counts().stream_flows, 1);
    }

    #[test]
    fn flows_are_found_by_peer_whoever_opened_them_until_removed() {
        let mut t = FlowTable::default();
        let now = Instant::now();
        let peer: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        // An inbound TLS connection: not offered for reuse, but found by its peer.
        let mut tls = info(1, TransportKind::Tls);
        tls.direction = Direction::Inbound;
        t.insert_conn(tls, ConnSink::new(), None, now);
        let f = Flow::new(1, TransportKind::Tls);
        assert_eq!(t.stream_flow_to(TransportKind::Tls, peer), Some(f));
        assert_eq!(
            t.stream_flow_to(TransportKind::Tcp, peer),
            None,
            "by transport too"
        );
        // A newer flow from the same peer takes the entry; the old one leaving keeps it.
        t.insert_conn(info(2, TransportKind::Tls), ConnSink::new(), None, now);
        t.remove(f);
        let g = Flow::new(2, TransportKind::Tls);
        assert_eq!(t.stream_flow_to(TransportKind::Tls, peer), Some(g));
        t.remove(g);
        assert_eq!(t.stream_flow_to(TransportKind::Tls, peer), None);
    }

    #[tokio::test]
    async fn udp_flows_are_bounded_lru_and_swept() {
        let mut t = FlowTable::default();
        let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let local = sock.local_addr().unwrap();
        t.udp_sockets.push((sock, local));
        let t0 = Instant::now();
        let mut next = 0u64;
        let mut id = || {
            next += 1;
            Flow::new(next, TransportKind::Udp)
        };
        let p = |n: u16| SocketAddr::new("192.0.2.1".parse().unwrap(), n);
        let s = Duration::from_secs(1);
        let a = t
            .udp_flow(0, p(1), Direction::Inbound, t0, 2, &mut id)
            .unwrap();
        let b = t
            .udp_flow(0, p(2), Direction::Inbound, t0 + s, 2, &mut id)
            .unwrap();
        // Seen again: same flow, fresher.
        let a2 = t
            .udp_flow(0, p(1), Direction::Inbound, t0 + 2 * s, 2, &mut id)
            .unwrap();
        assert_eq!(a.info.flow, a2.info.flow);
        // Full: the least recently used (b) is forgotten.
        let c = t
            .udp_flow(0, p(3), Direction::Inbound, t0 + 3 * s, 2, &mut id)
            .unwrap();
        assert!(c.evicted);
        assert!(t.get(b.info.flow).is_none());
        assert_eq!(t.counts().udp_flows, 2);
        t.sweep_udp(t0 + 3 * s);
        assert!(t.get(a.info.flow).is_none(), "not seen since 2 s");
        assert!(t.get(c.info.flow).is_some());
        assert!(t
            .udp_flow(9, p(4), Direction::Inbound, t0, 2, &mut id)
            .is_none());
    }
}
