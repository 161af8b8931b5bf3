//! UDP sockets: one receive task per socket; a flow is (listener, peer).

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tracing::Instrument;

use super::error::TransportError;
use super::flow::Direction;
use super::manager::{send_datagram, Incoming, Inner};
use super::metrics;
use super::receive::{self, Inbound};
use super::sockstats::UdpSocketEntry;
use super::stun;
use crate::flood::RequestVerdict;
use crate::TransportKind;

/// Largest UDP payload plus one, so that nothing is ever truncated silently.
const RECV_BUF: usize = 65_536;

/// A non-blocking UDP socket bound to `addr`, with the buffers asked for (0: the
/// kernel's default); `reuse_port`: one of a group on the same address (SO_REUSEPORT: the
/// kernel spreads the peers over the group by their address and port).
fn socket(
    addr: SocketAddr,
    recv_buffer: usize,
    send_buffer: usize,
    reuse_port: bool,
) -> std::io::Result<UdpSocket> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    if recv_buffer > 0 {
        s.set_recv_buffer_size(recv_buffer)?;
    }
    if send_buffer > 0 {
        s.set_send_buffer_size(send_buffer)?;
    }
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

/// Binds a UDP listener and spawns its receive loop: with several shards, one socket per
/// shard on the same address (SO_REUSEPORT), each with its own loop. The first socket is the
/// listener's in the tables (flows, sends); the others only receive, under the same socket
/// index, so that a peer is one flow whichever socket the kernel hands its datagrams to.
pub(crate) async fn bind(
    inner: &Arc<Inner>,
    addr: SocketAddr,
) -> Result<SocketAddr, TransportError> {
    let err = |source| TransportError::Bind {
        kind: TransportKind::Udp,
        addr,
        source,
    };
    let (want_recv, want_send) = (inner.cfg.udp_recv_buffer, inner.cfg.udp_send_buffer);
    let group = inner.incoming.shards();
    let first = Arc::new(socket(addr, want_recv, want_send, group > 1).map_err(err)?);
    let local = first.local_addr().map_err(err)?;
    // The others bind the address the first got (its port, when `addr` asked for any).
    let mut sockets = vec![Arc::clone(&first)];
    for _ in 1..group {
        let s =
            socket(local, want_recv, want_send, true).map_err(|source| TransportError::Bind {
                kind: TransportKind::Udp,
                addr: local,
                source,
            })?;
        sockets.push(Arc::new(s));
    }
    let granted = {
        let s = socket2::SockRef::from(&*first);
        (
            s.recv_buffer_size().map_err(err)?,
            s.send_buffer_size().map_err(err)?,
        )
    };
    super::sockstats::report_buffers(TransportKind::Udp, local, (want_recv, want_send), granted);
    let fds: Vec<_> = sockets.iter().map(|s| s.as_raw_fd()).collect();
    inner.add_udp_socket(UdpSocketEntry::new(&fds, local, granted.0, granted.1));
    let idx = {
        let mut t = inner.tables();
        t.udp_sockets.push((first, local));
        t.listeners.push((TransportKind::Udp, local));
        t.udp_sockets.len() - 1
    };
    for (member, sock) in sockets.into_iter().enumerate() {
        let task = inner.task();
        let inner2 = Arc::clone(inner);
        let span = tracing::info_span!("listener", transport = "udp", addr = %local, member);
        tokio::spawn(
            async move {
                let _task = task;
                recv_loop(inner2, idx, sock, local).await;
            }
            .instrument(span),
        );
    }
    Ok(local)
}

/// Datagrams read by one `recvmmsg` at most.
const BATCH: usize = 32;

async fn recv_loop(inner: Arc<Inner>, idx: usize, sock: Arc<UdpSocket>, local: SocketAddr) {
    // 32 slots of 64 KiB of address space; only the pages datagrams were written into are
    // ever touched.
    let mut batch = sipwire_sys::RecvBatch::new(BATCH, RECV_BUF);
    let fd = sock.as_raw_fd();
    let counters = inner.metrics.flow(TransportKind::Udp).clone();
    let mut stop = inner.shutdown.subscribe();
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        let r = tokio::select! {
            _ = stop.changed() => return,
            r = sock.readable() => r,
        };
        if let Err(e) = r {
            tracing::debug!(error = %e, "UDP socket not readable");
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        // Read until the socket is empty: one system call per batch of datagrams.
        loop {
            let n = match sock.try_io(Interest::READABLE, || batch.recv(fd)) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // ICMP errors of earlier sends surface here on some systems; keep going.
                    tracing::debug!(error = %e, "UDP receive error");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    break;
                }
            };
            // One allocation for the whole batch, cut into one `Bytes` per datagram.
            let total: usize = batch.datagrams().iter().map(|d| d.len).sum();
            let mut all = BytesMut::with_capacity(total);
            for i in 0..n {
                all.extend_from_slice(batch.payload(i));
            }
            let mut all = all.freeze();
            for d in batch.datagrams() {
                let raw = all.split_to(d.len);
                counters.bytes_in.increment(d.len as u64);
                if d.truncated {
                    metrics::drop(TransportKind::Udp, "udp_truncated");
                    continue;
                }
                on_datagram(&inner, idx, &sock, local, &counters, raw, d.peer);
            }
            if n < batch.slots() {
                // The socket had fewer than a batch: most likely empty now.
                break;
            }
        }
    }
}

/// What one received datagram leads to.
fn on_datagram(
    inner: &Inner,
    idx: usize,
    sock: &UdpSocket,
    local: SocketAddr,
    counters: &metrics::FlowCounters,
    raw: Bytes,
    peer: SocketAddr,
) {
    match receive::datagram(raw, peer, &inner.limits().message) {
        Inbound::Deliver(message) => {
            counters.msgs_in.increment(1);
            // Before a UDP flow is made for it: a flood must not fill the flow table.
            match inner.flood.message(TransportKind::Udp, peer, &message) {
                RequestVerdict::Admit => {}
                RequestVerdict::Reply(r, _) => {
                    if inner.cfg.capture.is_some() {
                        inner.capture(TransportKind::Udp, peer, local, message.as_bytes());
                        inner.capture(TransportKind::Udp, local, peer, &r);
                    }
                    let _ = send_datagram(sock, peer, &r, counters);
                    return;
                }
                RequestVerdict::Drop(_) => return,
            }
            let Some(info) = inner.udp_flow(idx, peer, Direction::Inbound, Instant::now()) else {
                return;
            };
            inner.capture(TransportKind::Udp, peer, info.local, message.as_bytes());
            let inc = Incoming::new(message, &info);
            if inner.incoming.try_send(inc).is_err() {
                metrics::drop(TransportKind::Udp, "incoming_queue_full");
            }
        }
        Inbound::Reply(r) => {
            if inner.cfg.capture.is_some() {
                if let Ok(local) = sock.local_addr() {
                    inner.capture(TransportKind::Udp, local, peer, &r);
                }
            }
            let _ = send_datagram(sock, peer, &r, counters);
        }
        Inbound::Stun(b) => {
            metrics::keepalive(TransportKind::Udp, "stun");
            if let Some(r) = stun::binding_response(&b, peer) {
                let _ = send_datagram(sock, peer, &r, counters);
            }
        }
        Inbound::KeepAlive => metrics::keepalive(TransportKind::Udp, "crlf"),
        Inbound::Discard(reason) => metrics::drop(TransportKind::Udp, reason),
    }
}
