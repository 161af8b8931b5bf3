//! Opening a flow: a connected UDP socket, a TCP connection, or a TLS connection (1.2 or
//! 1.3, verified against a given CA file and name). Everything is set up before the run
//! starts, so that handshakes are not part of the measurement.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Why a flow could not be opened or TLS could not be configured.
#[derive(Debug)]
pub enum ConnError {
    /// A socket operation failed.
    Io(&'static str, io::Error),
    /// The CA file could not be used.
    Ca(String),
    /// rustls refused the configuration.
    Tls(rustls::Error),
    /// The verify name is not a DNS name or IP address.
    ServerName(String),
    /// Connecting (TCP + TLS handshake) took too long.
    Timeout(Duration),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Io(what, e) => write!(f, "{what}: {e}"),
            ConnError::Ca(msg) => write!(f, "CA file: {msg}"),
            ConnError::Tls(e) => write!(f, "TLS configuration: {e}"),
            ConnError::ServerName(n) => write!(f, "invalid TLS server name {n:?}"),
            ConnError::Timeout(d) => write!(f, "connect timed out after {d:?}"),
        }
    }
}

impl std::error::Error for ConnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnError::Io(_, e) => Some(e),
            ConnError::Tls(e) => Some(e),
            _ => None,
        }
    }
}

/// TLS protocol version offered (only that one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2.
    V12,
    /// TLS 1.3.
    V13,
}

/// What every TLS flow needs.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl TlsClient {
    /// Trusts the certificates of `ca_file` (PEM), offers only `version`, verifies the
    /// server as `name` (also sent as SNI when it is a DNS name).
    pub fn new(ca_file: &Path, version: TlsVersion, name: &str) -> Result<TlsClient, ConnError> {
        let pem = std::fs::read(ca_file)
            .map_err(|e| ConnError::Ca(format!("{}: {e}", ca_file.display())))?;
        let mut roots = RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| ConnError::Ca(format!("{}: {e}", ca_file.display())))?;
            roots.add(cert).map_err(ConnError::Tls)?;
        }
        if roots.is_empty() {
            return Err(ConnError::Ca(format!(
                "{}: no certificate",
                ca_file.display()
            )));
        }
        let versions: &[&'static rustls::SupportedProtocolVersion] = match version {
            TlsVersion::V12 => &[&rustls::version::TLS12],
            TlsVersion::V13 => &[&rustls::version::TLS13],
        };
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(versions)
                .map_err(ConnError::Tls)?
                .with_root_certificates(roots)
                .with_no_client_auth();
        let name = ServerName::try_from(name.to_owned())
            .map_err(|_| ConnError::ServerName(name.to_owned()))?;
        Ok(TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }
}

/// An open flow.
pub enum Conn {
    /// A UDP socket connected to the server.
    Udp(UdpSocket),
    /// A TCP connection.
    Tcp(TcpStream),
    /// A TLS connection.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    /// The negotiated TLS version and cipher suite, e.g. `TLSv1_3/TLS13_AES_256_GCM_SHA384`.
    pub fn tls_cipher(&self) -> Option<String> {
        let Conn::Tls(s) = self else { return None };
        let c = s.get_ref().1;
        Some(format!(
            "{:?}/{:?}",
            c.protocol_version()?,
            c.negotiated_cipher_suite()?.suite()
        ))
    }

    /// The local address (for the Via sent-by).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Conn::Udp(s) => s.local_addr(),
            Conn::Tcp(s) => s.local_addr(),
            Conn::Tls(s) => s.get_ref().0.local_addr(),
        }
    }
}

/// How to reach the server.
#[derive(Clone)]
pub enum Dial {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls(TlsClient),
}

/// Opens one flow to `server`.
pub async fn open(dial: &Dial, server: SocketAddr, timeout: Duration) -> Result<Conn, ConnError> {
    match dial {
        Dial::Udp => {
            let local: SocketAddr = if server.is_ipv4() {
                (std::net::Ipv4Addr::LOCALHOST, 0).into()
            } else {
                (std::net::Ipv6Addr::LOCALHOST, 0).into()
            };
            let s = UdpSocket::bind(local)
                .await
                .map_err(|e| ConnError::Io("UDP bind", e))?;
            s.connect(server)
                .await
                .map_err(|e| ConnError::Io("UDP connect", e))?;
            Ok(Conn::Udp(s))
        }
        Dial::Tcp => Ok(Conn::Tcp(tcp(server, timeout).await?)),
        Dial::Tls(c) => {
            let handshake = async {
                let tcp = tcp(server, timeout).await?;
                c.connector
                    .connect(c.name.clone(), tcp)
                    .await
                    .map_err(|e| ConnError::Io("TLS handshake", e))
            };
            let tls = tokio::time::timeout(timeout, handshake)
                .await
                .map_err(|_| ConnError::Timeout(timeout))??;
            Ok(Conn::Tls(Box::new(tls)))
        }
    }
}

async fn tcp(server: SocketAddr, timeout: Duration) -> Result<TcpStream, ConnError> {
    let s = tokio::time::timeout(timeout, TcpStream::connect(server))
        .await
        .map_err(|_| ConnError::Timeout(timeout))?
        .map_err(|e| ConnError::Io("TCP connect", e))?;
    // Requests are small and must go out at once.
    s.set_nodelay(true)
        .map_err(|e| ConnError::Io("TCP_NODELAY", e))?;
    Ok(s)
}
