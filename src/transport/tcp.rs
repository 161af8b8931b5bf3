//! TCP (and TLS over TCP) listeners and outbound connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tracing::Instrument;

use super::error::TransportError;
use super::flow::{Direction, Flow, FlowInfo};
use super::manager::{Admission, Inner};
use super::metrics;
use super::session::Session;
use super::stream;
use super::table::ReuseKey;
use crate::PeerIdentities;
use crate::Target;
use crate::TransportKind;

/// A listening socket with the buffers asked for (0: the kernel's default), set before
/// `listen` so that accepted connections inherit them. Returns it with the buffers granted.
fn listen_socket(
    addr: SocketAddr,
    recv_buffer: usize,
    send_buffer: usize,
) -> std::io::Result<(TcpListener, (usize, usize))> {
    let s = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    s.set_reuseaddr(true)?;
    if recv_buffer > 0 {
        s.set_recv_buffer_size(u32::try_from(recv_buffer).unwrap_or(u32::MAX))?;
    }
    if send_buffer > 0 {
        s.set_send_buffer_size(u32::try_from(send_buffer).unwrap_or(u32::MAX))?;
    }
    s.bind(addr)?;
    let granted = (
        s.recv_buffer_size()? as usize,
        s.send_buffer_size()? as usize,
    );
    Ok((s.listen(1024)?, granted))
}

/// Binds a TCP listener (TLS when `tls` is given) and spawns its accept loop.
pub(crate) async fn bind(
    inner: &Arc<Inner>,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<SocketAddr, TransportError> {
    let kind = if tls.is_some() {
        TransportKind::Tls
    } else {
        TransportKind::Tcp
    };
    let want = (inner.cfg.tcp_recv_buffer, inner.cfg.tcp_send_buffer);
    let (listener, granted) = listen_socket(addr, want.0, want.1)
        .map_err(|source| TransportError::Bind { kind, addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| TransportError::Bind { kind, addr, source })?;
    super::sockstats::report_buffers(kind, local, want, granted);
    inner.tables().listeners.push((kind, local));
    let task = inner.task();
    let inner2 = Arc::clone(inner);
    let span = tracing::info_span!("listener", transport = %kind, addr = %local);
    tokio::spawn(
        async move {
            let _task = task;
            accept_loop(inner2, listener, local, tls).await;
        }
        .instrument(span),
    );
    Ok(local)
}

async fn accept_loop(
    inner: Arc<Inner>,
    listener: TcpListener,
    local: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let kind = if tls.is_some() {
        TransportKind::Tls
    } else {
        TransportKind::Tcp
    };
    let mut stop = inner.shutdown.subscribe();
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                metrics::drop(kind, "accept_error");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(limit) = inner.flood.connection(kind, peer, tls.is_some()) {
            metrics::drop(kind, limit.reason());
            // Closed with a reset: no TIME_WAIT held on our side for a flooder.
            let _ = socket2::SockRef::from(&tcp).set_linger(Some(Duration::ZERO));
            drop(tcp);
            continue;
        }
        let admission = match inner.admit(peer.ip()) {
            Ok(a) => a,
            Err(e) => {
                if let TransportError::Limit(l) = &e {
                    inner.refused(kind, peer, *l);
                }
                drop(tcp);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().unwrap_or(local);
        match &tls {
            None => {
                let info = FlowInfo {
                    flow: inner.next_flow(TransportKind::Tcp),
                    direction: Direction::Inbound,
                    local,
                    peer,
                    identities: PeerIdentities::none(),
                    server_name: None,
                    alpn: None,
                    peer_certificate: false,
                };
                let key = ReuseKey {
                    kind: TransportKind::Tcp,
                    peer,
                    name: None,
                    scope: None,
                };
                spawn_flow(
                    &inner,
                    tcp,
                    Session::Plain,
                    info,
                    Some(key),
                    admission,
                    true,
                );
            }
            Some(config) => {
                let config = Arc::clone(config);
                let inner2 = Arc::clone(&inner);
                let task = inner.task();
                let span = tracing::debug_span!("tls_accept", %peer);
                // Boxed for the same reason as the flow driver (see spawn_flow).
                tokio::spawn(Box::pin(
                    async move {
                        let _task = task;
                        let r = super::tls::accept(config, &tcp, &inner2).await;
                        match r {
                            Err(e) => {
                                tracing::debug!(reason = e.reason(), error = %e, "TLS handshake failed");
                                inner2.flood.handshake_failed(peer);
                                drop(admission);
                            }
                            Ok(h) => {
                                let info = FlowInfo {
                                    flow: inner2.next_flow(TransportKind::Tls),
                                    direction: Direction::Inbound,
                                    local,
                                    peer,
                                    identities: h.identities,
                                    // The SNI the client sent: the local (virtual)
                                    // domain the connection was opened for.
                                    server_name: h.sni,
                                    alpn: h.alpn,
                                    peer_certificate: h.peer_certificate,
                                };
                                // Inbound TLS connections are not reused by address:
                                // only an RFC 5923 alias bound to the client's verified
                                // identity may make them carry our requests.
                                spawn_flow(&inner2, tcp, h.session, info, None, admission, true);
                            }
                        }
                    }
                    .instrument(span),
                ));
            }
        }
    }
}

/// Registers a stream flow and spawns its driver.
pub(crate) fn spawn_flow(
    inner: &Arc<Inner>,
    tcp: TcpStream,
    session: Session,
    info: FlowInfo,
    key: Option<ReuseKey>,
    admission: Admission,
    expect_header: bool,
) -> Flow {
    let flow = info.flow;
    let span = tracing::debug_span!("flow", id = flow.id(), transport = %flow.kind(),
        peer = %info.peer, direction = info.direction.as_str());
    let parts = inner.register_stream(info, key);
    let task = inner.task();
    let inner2 = Arc::clone(inner);
    // Boxed: the driver's state is a few KiB, and the runtime would otherwise copy it whole on
    // spawn, into the task cell and on completion.
    tokio::spawn(Box::pin(
        async move {
            let _task = task;
            let _admission = admission;
            stream::drive(inner2, tcp, session, parts, expect_header).await;
        }
        .instrument(span),
    ));
    flow
}

/// Opens an outbound TCP or TLS connection to `target`.
pub(crate) async fn connect(
    inner: &Arc<Inner>,
    target: &Target,
    key: ReuseKey,
) -> Result<Flow, TransportError> {
    let addr = target.addr;
    let admission = inner.admit(addr.ip())?;
    let connecting = async {
        match target.source.or(inner.cfg.outbound_ip) {
            Some(ip) if ip.is_ipv4() == addr.is_ipv4() => {
                let sock = if addr.is_ipv4() {
                    TcpSocket::new_v4()?
                } else {
                    TcpSocket::new_v6()?
                };
                sock.bind(SocketAddr::new(ip, 0))?;
                sock.connect(addr).await
            }
            _ => TcpStream::connect(addr).await,
        }
    };
    let tcp = match tokio::time::timeout(inner.limits().connect_timeout, connecting).await {
        Err(_) => {
            return Err(TransportError::Connect {
                addr,
                source: std::io::ErrorKind::TimedOut.into(),
            })
        }
        Ok(Err(source)) => return Err(TransportError::Connect { addr, source }),
        Ok(Ok(s)) => s,
    };
    let _ = tcp.set_nodelay(true);
    let local = tcp
        .local_addr()
        .map_err(|source| TransportError::Connect { addr, source })?;
    match target.transport {
        TransportKind::Tcp => {
            let info = FlowInfo {
                flow: inner.next_flow(TransportKind::Tcp),
                direction: Direction::Outbound,
                local,
                peer: addr,
                identities: PeerIdentities::none(),
                server_name: None,
                alpn: None,
                peer_certificate: false,
            };
            Ok(spawn_flow(
                inner,
                tcp,
                Session::Plain,
                info,
                Some(key),
                admission,
                false,
            ))
        }
        TransportKind::Tls => {
            let config = inner
                .tls_client_for(key.scope.as_ref())
                .ok_or(TransportError::NoTlsClient)?;
            let name: Arc<str> = key
                .name
                .clone()
                .unwrap_or_else(|| addr.ip().to_string().into());
            let h = super::tls::connect(config, &tcp, &name, addr, inner).await?;
            let info = FlowInfo {
                flow: inner.next_flow(TransportKind::Tls),
                direction: Direction::Outbound,
                local,
                peer: addr,
                identities: h.identities,
                server_name: Some(name),
                alpn: h.alpn,
                peer_certificate: h.peer_certificate,
            };
            Ok(spawn_flow(
                inner,
                tcp,
                h.session,
                info,
                Some(key),
                admission,
                false,
            ))
        }
        k => Err(TransportError::Unsupported(k)),
    }
}
