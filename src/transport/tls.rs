//! TLS over TCP: the server and client handshakes of a flow (through [`super::session`]), and
//! their outcome in metrics and errors.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

use super::error::TransportError;
use super::flow::Direction;
use super::manager::Inner;
use super::metrics;
use super::session::{self, Established, HandshakeError};

/// Counts a handshake's outcome, both directions alike.
fn counted(
    inner: &Inner,
    direction: Direction,
    r: Result<Established, HandshakeError>,
) -> Result<Established, HandshakeError> {
    match &r {
        Ok(_) => inner.metrics.handshake_done(direction),
        Err(e) => metrics::handshake_failed(direction, e.reason()),
    }
    r
}

/// Server side of the handshake on an accepted connection.
pub(crate) async fn accept(
    config: Arc<rustls::ServerConfig>,
    tcp: &TcpStream,
    inner: &Inner,
) -> Result<Established, HandshakeError> {
    let timeout = inner.limits().handshake_timeout;
    let r = session::accept(tcp, config, &inner.identities, timeout).await;
    counted(inner, Direction::Inbound, r)
}

/// Client side of the handshake, verifying the server against `name` (also sent as SNI
/// when it is a DNS name).
pub(crate) async fn connect(
    config: Arc<rustls::ClientConfig>,
    tcp: &TcpStream,
    name: &str,
    addr: SocketAddr,
    inner: &Inner,
) -> Result<Established, TransportError> {
    let cfg = &inner.cfg;
    let server_name = ServerName::try_from(name.to_owned())
        .map_err(|_| TransportError::BadServerName(name.to_owned()))?;
    let r = session::connect(
        tcp,
        config,
        server_name,
        &inner.identities,
        cfg.require_alpn,
        inner.limits().handshake_timeout,
    )
    .await;
    counted(inner, Direction::Outbound, r).map_err(|e| {
        if e.is_identity_mismatch() {
            // RFC 5922 §7.3: the connection is closed (rustls sent bad_certificate).
            TransportError::IdentityMismatch {
                addr,
                domain: name.to_owned(),
            }
        } else {
            TransportError::Handshake {
                addr,
                reason: e.reason(),
                source: e,
            }
        }
    })
}
