//! The secure session of a stream flow, fed like rustls's `ConnectionCommon`: records in,
//! plaintext out, records to send; it never owns the socket. Plain TCP is the session that
//! adds nothing (the driver reads into and writes from the flow core directly). TLS is one
//! rustls connection (TLS over TCP now; one per SCTP stream pair next). An OpenSSL DTLS
//! session over a memory BIO (DTLS over SCTP) is a further variant of the same shape.
//!
//! The handshake runs before the flow is registered ([`accept`], [`connect`]); its failures
//! are a [`HandshakeError`] that keeps rustls's error as its source and names a metrics label.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use rustls::server::Acceptor;
use tokio::net::TcpStream;

use super::config::IdentityFn;
use crate::idhash::SeededMap;
use crate::PeerIdentities;

/// Certificates whose identities are kept: a peer presents the same certificate on every
/// connection (and a resumed session the same again), and parsing it costs more than the
/// rest of a resumed handshake.
const IDENTITY_CACHE_ENTRIES: usize = 512;

/// The RFC 5922 identities of verified peer certificates, through the transport's
/// [`IdentityFn`], remembered per certificate (bounded; forgotten all at once when full).
pub(crate) struct Identities {
    extract: Option<IdentityFn>,
    seen: Mutex<SeededMap<Box<[u8]>, PeerIdentities>>,
}

impl Identities {
    pub(crate) fn new(extract: Option<IdentityFn>) -> Identities {
        Identities {
            extract,
            seen: Mutex::new(SeededMap::default()),
        }
    }

    pub(crate) fn of(&self, ee: &rustls_pki_types::CertificateDer<'_>) -> PeerIdentities {
        let Some(f) = &self.extract else {
            return PeerIdentities::none();
        };
        let lock = || self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ids) = lock().get(ee.as_ref()) {
            return ids.clone();
        }
        let ids = PeerIdentities::from_names((f.0)(ee));
        let mut seen = lock();
        if seen.len() >= IDENTITY_CACHE_ENTRIES {
            seen.clear();
        }
        seen.insert(Box::from(ee.as_ref()), ids.clone());
        ids
    }
}

/// Why a TLS handshake failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The handshake did not finish in time.
    #[error("TLS handshake timed out")]
    Timeout,
    /// The peer closed the connection during the handshake.
    #[error("peer closed the connection during the TLS handshake")]
    Eof,
    /// The socket failed.
    #[error("I/O error during the TLS handshake: {0}")]
    Io(#[source] io::Error),
    /// rustls refused the handshake (the alert it sent, if any, was written).
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] rustls::Error),
    /// Server side, `alpn_policy = require`: the client offered no ALPN protocol.
    #[error("client offered no ALPN protocol (alpn_policy = require): {0}")]
    NoAlpnOffered(#[source] rustls::Error),
    /// Client side, `require_alpn`: the server selected none of our protocols.
    #[error("server selected no application protocol (ALPN required)")]
    NoApplicationProtocol,
    /// DTLS over SCTP: OpenSSL refused the handshake (`reason` as in the metrics).
    #[error("DTLS handshake failed ({reason})")]
    Dtls {
        /// Metrics label (`bad_certificate`, `dtls_handshake`, ...).
        reason: &'static str,
        /// OpenSSL's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl HandshakeError {
    /// A short, bounded label (`sipwire_transport_tls_handshake_failures_total{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            HandshakeError::Timeout => "timeout",
            HandshakeError::Eof => "eof",
            HandshakeError::Io(_) => "io",
            HandshakeError::NoAlpnOffered(_) => "no_alpn_offered",
            HandshakeError::NoApplicationProtocol => "no_application_protocol",
            HandshakeError::Dtls { reason, .. } => reason,
            HandshakeError::Tls(e) => match e {
                e if crate::tls::IdentityMismatch::is(e) => "identity_mismatch",
                rustls::Error::InvalidCertificate(_) => "bad_certificate",
                rustls::Error::NoCertificatesPresented => "no_certificate",
                rustls::Error::AlertReceived(_) => "alert_received",
                rustls::Error::NoApplicationProtocol => "no_application_protocol",
                rustls::Error::PeerIncompatible(_) => "incompatible",
                rustls::Error::PeerMisbehaved(_) => "misbehaved",
                rustls::Error::InappropriateMessage { .. }
                | rustls::Error::InappropriateHandshakeMessage { .. }
                | rustls::Error::InvalidMessage(_) => "protocol",
                _ => "other",
            },
        }
    }

    /// True for an RFC 5922 §7.3 identity mismatch (the server does not prove the domain).
    pub fn is_identity_mismatch(&self) -> bool {
        matches!(self, HandshakeError::Tls(e) if crate::tls::IdentityMismatch::is(e))
    }
}

/// A `Read`/`Write` over a tokio socket's non-blocking calls, for rustls's record I/O.
struct SyncIo<'a>(&'a TcpStream);

impl Read for SyncIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for SyncIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The most of a server's first flight kept.
const FIRST_FLIGHT_MAX: usize = 64 * 1024;

/// A reader that keeps a copy of what it reads (the server's first flight, kept to explain a
/// refusal after the fact).
struct Recording<'a, 'b> {
    io: SyncIo<'a>,
    copy: Option<&'b mut Vec<u8>>,
}

impl Read for Recording<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.io.read(buf)?;
        if let Some(c) = self.copy.as_deref_mut() {
            // A ClientHello fits in far less; never keep more than this for a peer.
            if c.len() < FIRST_FLIGHT_MAX {
                c.extend_from_slice(buf.get(..n).unwrap_or(&[]));
            }
        }
        Ok(n)
    }
}

/// True when the ClientHello in `first_flight` offers ALPN protocols.
fn offers_alpn(first_flight: &[u8]) -> bool {
    let mut acceptor = Acceptor::default();
    let mut rd = first_flight;
    while !rd.is_empty() {
        if acceptor.read_tls(&mut rd).is_err() {
            return false;
        }
        match acceptor.accept() {
            Ok(Some(a)) => return a.client_hello().alpn().is_some(),
            Ok(None) => {}
            Err(_) => return false,
        }
    }
    false
}

/// What one read from the socket gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Received {
    /// This many plaintext bytes were appended (0: records that held no application data).
    Plain(usize),
    /// The peer closed (FIN, or TLS close_notify).
    Closed,
}

/// The session of one stream flow.
#[derive(Debug)]
pub(crate) enum Session {
    /// Plain TCP.
    Plain,
    /// TLS (rustls, client or server).
    Tls(Box<rustls::Connection>),
}

impl Session {
    /// Reads what the socket has: plaintext is appended to `plain`. `Err(WouldBlock)` when
    /// nothing was ready.
    pub(crate) fn read(&mut self, tcp: &TcpStream, plain: &mut BytesMut) -> io::Result<Received> {
        match self {
            Session::Plain => match tcp.try_read_buf(plain)? {
                0 => Ok(Received::Closed),
                n => Ok(Received::Plain(n)),
            },
            Session::Tls(conn) => {
                if conn.read_tls(&mut SyncIo(tcp))? == 0 {
                    return Ok(Received::Closed);
                }
                let state = conn.process_new_packets().map_err(|e| {
                    // Send the alert rustls queued, best effort.
                    let _ = conn.write_tls(&mut SyncIo(tcp));
                    io::Error::new(io::ErrorKind::InvalidData, e)
                })?;
                let (avail, closed) = (state.plaintext_bytes_to_read(), state.peer_has_closed());
                let n = take_plaintext(conn, avail, plain);
                if closed && n == 0 {
                    Ok(Received::Closed)
                } else {
                    Ok(Received::Plain(n))
                }
            }
        }
    }

    /// Plaintext the session decrypted already (e.g. application data that came with the
    /// last handshake flight), appended to `plain`; no socket I/O.
    pub(crate) fn buffered(&mut self, plain: &mut BytesMut) -> usize {
        match self {
            Session::Plain => 0,
            Session::Tls(conn) => match conn.process_new_packets() {
                Ok(state) => take_plaintext(conn, state.plaintext_bytes_to_read(), plain),
                Err(_) => 0,
            },
        }
    }

    /// Writes plaintext: straight to the socket (plain), or into TLS records. Returns the
    /// plaintext bytes taken; `Err(WouldBlock)` when the socket takes nothing now.
    pub(crate) fn write(&mut self, tcp: &TcpStream, data: &[u8]) -> io::Result<usize> {
        match self {
            Session::Plain => tcp.try_write(data),
            Session::Tls(conn) => {
                // Earlier records first; `WouldBlock` when the socket is still full.
                while conn.wants_write() {
                    conn.write_tls(&mut SyncIo(tcp))?;
                }
                let n = conn.writer().write(data)?;
                if n == 0 {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                // Records that do not fit in the socket now stay queued in rustls.
                match conn.write_tls(&mut SyncIo(tcp)) {
                    Ok(_) => Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(n),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// True while encrypted bytes wait for the socket.
    pub(crate) fn has_records(&self) -> bool {
        matches!(self, Session::Tls(c) if c.wants_write())
    }

    /// Writes waiting records; `Err(WouldBlock)` when the socket takes nothing now.
    pub(crate) fn write_records(&mut self, tcp: &TcpStream) -> io::Result<()> {
        if let Session::Tls(conn) = self {
            while conn.wants_write() {
                conn.write_tls(&mut SyncIo(tcp))?;
            }
        }
        Ok(())
    }

    /// Closes our side: TLS close_notify (queued as a record), then the caller shuts the
    /// write side of the socket once the records are out.
    pub(crate) fn send_close(&mut self) {
        if let Session::Tls(conn) = self {
            conn.send_close_notify();
        }
    }
}

/// Moves `avail` decrypted bytes from `conn` to the end of `plain`.
fn take_plaintext(conn: &mut rustls::Connection, avail: usize, plain: &mut BytesMut) -> usize {
    if avail == 0 {
        return 0;
    }
    let start = plain.len();
    plain.resize(start + avail, 0);
    let got = conn
        .reader()
        .read(plain.get_mut(start..).unwrap_or(&mut []))
        .unwrap_or(0);
    plain.truncate(start + got);
    got
}

/// The outcome of a TLS handshake: the session and what it proved.
#[derive(Debug)]
pub(crate) struct Established {
    pub(crate) session: Session,
    pub(crate) identities: PeerIdentities,
    pub(crate) alpn: Option<Arc<[u8]>>,
    /// The peer presented a (verified) certificate.
    pub(crate) peer_certificate: bool,
    /// Server side: the SNI the client sent.
    pub(crate) sni: Option<Arc<str>>,
}

fn established(conn: rustls::Connection, ids: &Identities) -> Established {
    let certs = conn.peer_certificates();
    let identities = match certs.and_then(|c| c.first()) {
        Some(ee) => ids.of(ee),
        None => PeerIdentities::none(),
    };
    let peer_certificate = certs.is_some_and(|c| !c.is_empty());
    let alpn = conn.alpn_protocol().map(Arc::from);
    let sni = match &conn {
        rustls::Connection::Server(s) => s.server_name().map(Arc::from),
        rustls::Connection::Client(_) => None,
    };
    Established {
        session: Session::Tls(Box::new(conn)),
        identities,
        alpn,
        peer_certificate,
        sni,
    }
}

/// Runs `conn`'s handshake over `tcp` to its end.
async fn complete(
    tcp: &TcpStream,
    conn: &mut rustls::Connection,
    mut first_flight: Option<&mut Vec<u8>>,
) -> Result<(), HandshakeError> {
    loop {
        while conn.wants_write() {
            match conn.write_tls(&mut SyncIo(tcp)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    tcp.writable().await.map_err(HandshakeError::Io)?;
                }
                Err(e) => return Err(HandshakeError::Io(e)),
            }
        }
        if !conn.is_handshaking() {
            return Ok(());
        }
        tcp.readable().await.map_err(HandshakeError::Io)?;
        let mut rd = Recording {
            io: SyncIo(tcp),
            copy: first_flight.as_deref_mut(),
        };
        match conn.read_tls(&mut rd) {
            Ok(0) => return Err(HandshakeError::Eof),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(HandshakeError::Io(e)),
        }
        let processed = conn.process_new_packets();
        if conn.wants_write() {
            // The ClientHello was answered: what follows need not be kept.
            first_flight = None;
        }
        if let Err(e) = processed {
            // The alert rustls queued goes out before we give up, best effort.
            while conn.wants_write() {
                if conn.write_tls(&mut SyncIo(tcp)).is_err() {
                    break;
                }
            }
            return Err(HandshakeError::Tls(e));
        }
    }
}

/// Server side: the configuration's SNI resolver picks the certificate of the local domain
/// asked for; a refusal is explained from the ClientHello kept from the first flight.
pub(crate) async fn accept(
    tcp: &TcpStream,
    config: Arc<rustls::ServerConfig>,
    ids: &Identities,
    timeout: Duration,
) -> Result<Established, HandshakeError> {
    let run = async {
        let mut conn = rustls::ServerConnection::new(config)
            .map(rustls::Connection::Server)
            .map_err(HandshakeError::Tls)?;
        let mut first_flight = Vec::new();
        match complete(tcp, &mut conn, Some(&mut first_flight)).await {
            Ok(()) => Ok(established(conn, ids)),
            // Our SNI resolver always has a certificate; it declines only a client that
            // offers no ALPN under `alpn_policy = require` (tls::SniResolver). The
            // ClientHello kept from the first flight tells which it was.
            Err(HandshakeError::Tls(e @ rustls::Error::General(_)))
                if !offers_alpn(&first_flight) =>
            {
                Err(HandshakeError::NoAlpnOffered(e))
            }
            Err(e) => Err(e),
        }
    };
    tokio::time::timeout(timeout, run)
        .await
        .unwrap_or(Err(HandshakeError::Timeout))
}

/// Client side: verifies the server against `name` (also sent as SNI when it is a DNS name).
pub(crate) async fn connect(
    tcp: &TcpStream,
    config: Arc<rustls::ClientConfig>,
    name: rustls_pki_types::ServerName<'static>,
    ids: &Identities,
    require_alpn: bool,
    timeout: Duration,
) -> Result<Established, HandshakeError> {
    let run = async {
        let mut conn = rustls::ClientConnection::new(config, name)
            .map(rustls::Connection::Client)
            .map_err(HandshakeError::Tls)?;
        complete(tcp, &mut conn, None).await?;
        if require_alpn && conn.alpn_protocol().is_none() {
            // The server ignored our offer (RFC 7301 §3.2 lets it; our policy does not):
            // close politely.
            conn.send_close_notify();
            let _ = conn.write_tls(&mut SyncIo(tcp));
            return Err(HandshakeError::NoApplicationProtocol);
        }
        Ok(established(conn, ids))
    };
    tokio::time::timeout(timeout, run)
        .await
        .unwrap_or(Err(HandshakeError::Timeout))
}
