//! TLS over TCP: server and client handshakes on top of a TCP stream (tokio-rustls),
//! peer identities, and handshake failure reasons for metrics.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::config::IdentityFn;
use super::error::TransportError;
use super::flow::Direction;
use super::manager::Inner;
use super::metrics;
use crate::PeerIdentities;

/// A finished handshake: the stream, the peer's identities and the ALPN protocol.
pub(crate) struct Handshaken<S> {
    pub(crate) stream: S,
    pub(crate) identities: PeerIdentities,
    pub(crate) alpn: Option<Arc<[u8]>>,
    /// The peer presented a (verified) certificate.
    pub(crate) peer_certificate: bool,
}

/// What rustls (0.23) says when the certificate resolver declines a ClientHello.
const NO_CERTIFICATE_RESOLVED: &str = "no server certificate chain resolved";

/// A short, bounded label for a failed handshake.
pub fn failure_reason(err: &std::io::Error) -> &'static str {
    let Some(tls) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return match err.kind() {
            std::io::ErrorKind::UnexpectedEof => "eof",
            std::io::ErrorKind::TimedOut => "timeout",
            _ => "io",
        };
    };
    match tls {
        e if crate::tls::IdentityMismatch::is(e) => "identity_mismatch",
        rustls::Error::InvalidCertificate(_) => "bad_certificate",
        rustls::Error::NoCertificatesPresented => "no_certificate",
        rustls::Error::AlertReceived(_) => "alert_received",
        rustls::Error::NoApplicationProtocol => "no_application_protocol",
        // Our SNI resolver always has a certificate to give; it declines only a client that
        // offers no ALPN under `alpn_policy = require`, and rustls reports that as this error.
        rustls::Error::General(m) if m == NO_CERTIFICATE_RESOLVED => "no_alpn_offered",
        rustls::Error::PeerIncompatible(_) => "incompatible",
        rustls::Error::PeerMisbehaved(_) => "misbehaved",
        rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. }
        | rustls::Error::InvalidMessage(_) => "protocol",
        _ => "other",
    }
}

fn identities_of(
    certs: Option<&[rustls_pki_types::CertificateDer<'static>]>,
    f: Option<&IdentityFn>,
) -> PeerIdentities {
    match (certs.and_then(|c| c.first()), f) {
        (Some(ee), Some(f)) => PeerIdentities::from_names((f.0)(ee)),
        _ => PeerIdentities::none(),
    }
}

/// Server side of the handshake on an accepted connection.
pub(crate) async fn accept(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    inner: &Inner,
) -> Result<Handshaken<tokio_rustls::server::TlsStream<TcpStream>>, &'static str> {
    let (timeout, ids) = (inner.cfg.handshake_timeout, inner.cfg.identities.as_ref());
    let r = tokio::time::timeout(timeout, acceptor.accept(tcp)).await;
    let stream = match r {
        Err(_) => {
            metrics::handshake_failed(Direction::Inbound, "timeout");
            return Err("timeout");
        }
        Ok(Err(e)) => {
            let reason = failure_reason(&e);
            metrics::handshake_failed(Direction::Inbound, reason);
            return Err(reason);
        }
        Ok(Ok(s)) => s,
    };
    inner.metrics.handshake_done(Direction::Inbound);
    let (_, conn) = stream.get_ref();
    let identities = identities_of(conn.peer_certificates(), ids);
    let alpn = conn.alpn_protocol().map(Arc::from);
    let peer_certificate = conn.peer_certificates().is_some_and(|c| !c.is_empty());
    Ok(Handshaken {
        stream,
        identities,
        alpn,
        peer_certificate,
    })
}

/// Client side of the handshake, verifying the server against `name` (also sent as SNI
/// when it is a DNS name).
pub(crate) async fn connect(
    config: Arc<rustls::ClientConfig>,
    tcp: TcpStream,
    name: &str,
    addr: SocketAddr,
    inner: &Inner,
) -> Result<Handshaken<tokio_rustls::client::TlsStream<TcpStream>>, TransportError> {
    let (timeout, ids) = (inner.cfg.handshake_timeout, inner.cfg.identities.as_ref());
    let require_alpn = inner.cfg.require_alpn;
    let server_name = ServerName::try_from(name.to_owned())
        .map_err(|_| TransportError::BadServerName(name.to_owned()))?;
    let connector = TlsConnector::from(config);
    let r = tokio::time::timeout(timeout, connector.connect(server_name, tcp)).await;
    let stream = match r {
        Err(_) => {
            metrics::handshake_failed(Direction::Outbound, "timeout");
            return Err(TransportError::Handshake {
                addr,
                reason: "timeout",
            });
        }
        Ok(Err(e)) => {
            let reason = failure_reason(&e);
            metrics::handshake_failed(Direction::Outbound, reason);
            if reason == "identity_mismatch" {
                // RFC 5922 §7.3: the connection is closed (rustls sent bad_certificate).
                return Err(TransportError::IdentityMismatch {
                    addr,
                    domain: name.to_owned(),
                });
            }
            return Err(TransportError::Handshake { addr, reason });
        }
        Ok(Ok(s)) => s,
    };
    let (_, conn) = stream.get_ref();
    if require_alpn && conn.alpn_protocol().is_none() {
        // ALPN policy `require`: the server ignored our offer (RFC 7301 §3.2 lets it; our
        // policy does not). Close politely and count it like the server side does.
        let mut stream = stream;
        metrics::handshake_failed(Direction::Outbound, "no_application_protocol");
        let _ =
            tokio::time::timeout(timeout, tokio::io::AsyncWriteExt::shutdown(&mut stream)).await;
        return Err(TransportError::Handshake {
            addr,
            reason: "no_application_protocol",
        });
    }
    inner.metrics.handshake_done(Direction::Outbound);
    let identities = identities_of(conn.peer_certificates(), ids);
    let alpn = conn.alpn_protocol().map(Arc::from);
    let peer_certificate = conn.peer_certificates().is_some_and(|c| !c.is_empty());
    Ok(Handshaken {
        stream,
        identities,
        alpn,
        peer_certificate,
    })
}
