//! Opening a flow: a connected UDP socket, a TCP connection, a TLS connection (1.2 or 1.3,
//! verified against a given CA file and name), an SCTP association (one-to-one socket, RFC
//! 4168) or a TLS-over-SCTP association with one TLS session per stream (RFC 3436).
//! Everything is set up before the run starts, so that handshakes are not part of the
//! measurement.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use sipwire_sys::{
    Family, InitMsg, Received, RecvBuf, SctpOptions, SctpSocket, SctpStream, SendInfo,
    DEFAULT_RECV_LIMIT,
};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::dtls_sctp::{DtlsClient, DtlsError, DtlsFlow};
use crate::tls_sctp::Sessions;

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
    /// An SCTP socket call failed (or the kernel has no SCTP).
    Sctp(&'static str, sipwire_sys::SctpError),
    /// A TLS-over-SCTP handshake failed.
    TlsSctp(rustls::Error),
    /// A DTLS-over-SCTP association (sipwire's transport) could not be opened.
    DtlsSctp(DtlsError),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Io(what, e) => write!(f, "{what}: {e}"),
            ConnError::Ca(msg) => write!(f, "CA file: {msg}"),
            ConnError::Tls(e) => write!(f, "TLS configuration: {e}"),
            ConnError::ServerName(n) => write!(f, "invalid TLS server name {n:?}"),
            ConnError::Timeout(d) => write!(f, "connect timed out after {d:?}"),
            ConnError::Sctp(what, e) => write!(f, "{what}: {e}"),
            ConnError::TlsSctp(e) => write!(f, "TLS over SCTP handshake: {e}"),
            ConnError::DtlsSctp(e) => write!(f, "DTLS over SCTP: {e}"),
        }
    }
}

impl std::error::Error for ConnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnError::Io(_, e) => Some(e),
            ConnError::Tls(e) | ConnError::TlsSctp(e) => Some(e),
            ConnError::Sctp(_, e) => Some(e),
            ConnError::DtlsSctp(e) => Some(e),
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
    config: Arc<ClientConfig>,
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
        let config = Arc::new(config);
        Ok(TlsClient {
            connector: TlsConnector::from(Arc::clone(&config)),
            config,
            name,
        })
    }
}

impl TlsClient {
    /// The same client without session resumption: every handshake is a full one (what
    /// `sipload conns` and `sipload handshakes` measure).
    pub fn without_resumption(&self) -> TlsClient {
        let mut config = (*self.config).clone();
        config.resumption = rustls::client::Resumption::disabled();
        let config = Arc::new(config);
        TlsClient {
            connector: TlsConnector::from(Arc::clone(&config)),
            config,
            name: self.name.clone(),
        }
    }

    /// The TLS handshake over an established TCP connection.
    pub async fn handshake(&self, tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        self.connector.connect(self.name.clone(), tcp).await
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
    /// An SCTP association with this many outbound streams (and TLS sessions on each of
    /// them for TLS-SCTP).
    Sctp(SctpStream, u16, Option<Box<Sessions>>),
    /// A DTLS-over-SCTP association through sipwire's transport (it picks the streams).
    DtlsSctp(Box<DtlsFlow>),
}

impl Conn {
    /// The negotiated TLS version and cipher suite, e.g. `TLSv1_3/TLS13_AES_256_GCM_SHA384`.
    pub fn tls_cipher(&self) -> Option<String> {
        if let Conn::Sctp(_, _, Some(t)) = self {
            return t.cipher();
        }
        if let Conn::DtlsSctp(d) = self {
            return d.cipher();
        }
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
            Conn::Sctp(s, _, _) => s
                .local_addrs()
                .map_err(io::Error::other)?
                .first()
                .copied()
                .ok_or_else(|| io::Error::other("SCTP association without a local address")),
            Conn::DtlsSctp(d) => Ok(d.local_addr()),
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
    /// SCTP with this many streams, TLS on each when given.
    Sctp(u16, Option<TlsClient>),
    /// DTLS over SCTP (sipwire's transport).
    DtlsSctp(DtlsClient),
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
        Dial::Sctp(streams, tls) => {
            let open = sctp(server, *streams, tls.as_ref());
            tokio::time::timeout(timeout, open)
                .await
                .map_err(|_| ConnError::Timeout(timeout))?
        }
        Dial::DtlsSctp(c) => {
            // The library bounds the connect and the handshake by `timeout` itself.
            let d = crate::dtls_sctp::open(c, server, timeout)
                .await
                .map_err(ConnError::DtlsSctp)?;
            Ok(Conn::DtlsSctp(Box::new(d)))
        }
    }
}

/// Fails with the kernel's reason (e.g. "the kernel has no SCTP support") where there is no
/// SCTP; called before any flow is opened.
pub fn check_sctp() -> Result<(), ConnError> {
    sipwire_sys::kernel_sctp_available().map_err(|e| ConnError::Sctp("SCTP socket", e))
}

async fn sctp(
    server: SocketAddr,
    streams: u16,
    tls: Option<&TlsClient>,
) -> Result<Conn, ConnError> {
    let sock = SctpSocket::one_to_one(Family::for_addrs(&[server]))
        .map_err(|e| ConnError::Sctp("SCTP socket", e))?;
    sock.set_init_msg(InitMsg {
        num_ostreams: streams,
        max_instreams: streams,
        ..InitMsg::default()
    })
    .map_err(|e| ConnError::Sctp("SCTP_INITMSG", e))?;
    let s = sock
        .connect(&[server])
        .await
        .map_err(|e| ConnError::Sctp("SCTP connect", e))?;
    // Requests are small and must go out at once.
    s.set_nodelay(true)
        .map_err(|e| ConnError::Sctp("SCTP_NODELAY", e))?;
    let Some(tls) = tls else {
        return Ok(Conn::Sctp(s, streams, None));
    };
    // One session per stream, all handshakes done before the run.
    let mut sessions = Sessions::client(Arc::clone(&tls.config), tls.name.clone());
    let mut records = Vec::new();
    for stream in 0..streams {
        sessions
            .open(stream, &mut records)
            .map_err(ConnError::TlsSctp)?;
    }
    let mut rb = RecvBuf::new(DEFAULT_RECV_LIMIT);
    loop {
        for (stream, rec) in records.drain(..) {
            s.send(&rec, &SendInfo::on_stream(stream))
                .await
                .map_err(|e| ConnError::Sctp("SCTP send", e))?;
        }
        if !sessions.handshaking() {
            return Ok(Conn::Sctp(s, streams, Some(Box::new(sessions))));
        }
        match s.recv(&mut rb).await {
            Ok(Received::Message { data, info, .. }) => sessions
                .receive(info.stream, data, &mut records)
                .map_err(ConnError::TlsSctp)?,
            Ok(Received::Notification(_)) => {}
            Ok(Received::Closed) => {
                return Err(ConnError::Io(
                    "TLS over SCTP handshake",
                    io::Error::from(io::ErrorKind::UnexpectedEof),
                ))
            }
            Err(e) => return Err(ConnError::Sctp("SCTP receive", e)),
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
