//! `sipload serve`: the stateless UAS of [`crate::uas`] on one listening socket, so that a
//! proxy benchmark has a callee (UAC sipload → proxy → UAS sipload). UDP answers to the
//! datagram's source; TCP and TLS on the connection; SCTP (one-to-many socket) and TLS-SCTP
//! on the association and stream the request came on; DTLS-SCTP through sipwire's transport
//! (see [`crate::dtls_sctp`]). Runs until killed; prints one JSON
//! line with the address it listens on first.

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use sipwire_sys::{
    AssocState, Event, Family, InitMsg, Notification, Received, RecvBuf, SctpOptions, SctpSocket,
    SendInfo, DEFAULT_RECV_LIMIT,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio_rustls::TlsAcceptor;

use crate::sip::{self, Frame};
use crate::tls_sctp::Sessions;
use crate::uas::Uas;

/// Streams offered both ways on SCTP associations.
const SCTP_STREAMS: u16 = 256;

/// The transports `serve` listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// SCTP (RFC 4168).
    Sctp,
    /// TLS over SCTP (RFC 3436), one session per stream.
    TlsSctp,
    /// DTLS over SCTP (RFC 6083), through sipwire's transport.
    DtlsSctp,
}

impl Listen {
    /// The Via transport token.
    pub fn via(self) -> &'static str {
        match self {
            Listen::Udp => "UDP",
            Listen::Tcp => "TCP",
            Listen::Tls => "TLS",
            Listen::Sctp => "SCTP",
            Listen::TlsSctp => "TLS-SCTP",
            Listen::DtlsSctp => crate::dtls_sctp::VIA,
        }
    }
}

/// Why `serve` stopped.
#[derive(Debug)]
pub enum ServeError {
    /// A socket call failed.
    Io(&'static str, std::io::Error),
    /// An SCTP socket call failed (or the kernel has no SCTP).
    Sctp(&'static str, sipwire_sys::SctpError),
    /// The certificate or key could not be used.
    Tls(String),
    /// The DTLS-SCTP listener (sipwire's transport) failed.
    Dtls(crate::dtls_sctp::DtlsError),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Io(what, e) => write!(f, "{what}: {e}"),
            ServeError::Sctp(what, e) => write!(f, "{what}: {e}"),
            ServeError::Tls(m) => write!(f, "TLS: {m}"),
            ServeError::Dtls(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Io(_, e) => Some(e),
            ServeError::Sctp(_, e) => Some(e),
            ServeError::Tls(_) => None,
            ServeError::Dtls(e) => Some(e),
        }
    }
}

/// A TLS server configuration from a PEM certificate chain and key.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, ServeError> {
    let read =
        |p: &Path| std::fs::read(p).map_err(|e| ServeError::Tls(format!("{}: {e}", p.display())));
    let certs = rustls_pemfile::certs(&mut read(cert)?.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServeError::Tls(format!("{}: {e}", cert.display())))?;
    let key = rustls_pemfile::private_key(&mut read(key)?.as_slice())
        .map_err(|e| ServeError::Tls(format!("{}: {e}", key.display())))?
        .ok_or_else(|| ServeError::Tls(format!("{}: no private key", key.display())))?;
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| ServeError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| ServeError::Tls(e.to_string()))?;
    Ok(Arc::new(config))
}

fn announce(listen: Listen, local: SocketAddr) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{{\"listening\":\"{local}\",\"transport\":\"{}\"}}",
        listen.via().to_ascii_lowercase()
    );
    let _ = out.flush();
}

/// Serves until an error on the listening socket. `tls`: the rustls configuration of TLS
/// and TLS-SCTP; `files`: the certificate and key files of DTLS-SCTP (OpenSSL).
pub async fn serve(
    listen: Listen,
    addr: SocketAddr,
    tls: Option<Arc<ServerConfig>>,
    files: Option<(&Path, &Path)>,
    trying: bool,
) -> Result<(), ServeError> {
    match listen {
        Listen::DtlsSctp => {
            let Some((cert, key)) = files else {
                return Err(ServeError::Tls("dtls-sctp needs --cert and --key".into()));
            };
            crate::dtls_sctp::serve(addr, cert, key, trying, |local| announce(listen, local))
                .await
                .map_err(ServeError::Dtls)
        }
        Listen::Udp => udp(addr, trying).await,
        Listen::Tcp | Listen::Tls => tcp(listen, addr, tls, trying).await,
        Listen::Sctp | Listen::TlsSctp => sctp(listen, addr, tls, trying).await,
    }
}

async fn udp(addr: SocketAddr, trying: bool) -> Result<(), ServeError> {
    let sock = UdpSocket::bind(addr)
        .await
        .map_err(|e| ServeError::Io("UDP bind", e))?;
    let local = sock
        .local_addr()
        .map_err(|e| ServeError::Io("UDP local address", e))?;
    let uas = Uas::new(local, "UDP", trying);
    announce(Listen::Udp, local);
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::new();
    loop {
        // ICMP errors of earlier sends show up here: not the listener's fault.
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        uas.answer(&buf[..n], &mut out);
        for r in out.drain(..) {
            let _ = sock.send_to(&r, from).await;
        }
    }
}

async fn tcp(
    listen: Listen,
    addr: SocketAddr,
    tls: Option<Arc<ServerConfig>>,
    trying: bool,
) -> Result<(), ServeError> {
    let l = TcpListener::bind(addr)
        .await
        .map_err(|e| ServeError::Io("TCP bind", e))?;
    let local = l
        .local_addr()
        .map_err(|e| ServeError::Io("TCP local address", e))?;
    let uas = Arc::new(Uas::new(local, listen.via(), trying));
    let acceptor = tls.map(TlsAcceptor::from);
    announce(listen, local);
    loop {
        let (s, _) = l.accept().await.map_err(|e| ServeError::Io("accept", e))?;
        let _ = s.set_nodelay(true);
        let uas = Arc::clone(&uas);
        match &acceptor {
            None => {
                tokio::spawn(async move {
                    let (r, w) = tokio::io::split(s);
                    connection(r, w, &uas).await;
                });
            }
            Some(a) => {
                let a = a.clone();
                tokio::spawn(async move {
                    if let Ok(s) = a.accept(s).await {
                        let (r, w) = tokio::io::split(s);
                        connection(r, w, &uas).await;
                    }
                });
            }
        }
    }
}

/// One TCP or TLS connection: frames requests, answers each, until the peer closes.
async fn connection<R, W>(mut rd: R, mut wr: W, uas: &Uas)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 64 * 1024];
    let mut filled = 0;
    let mut out = Vec::new();
    let mut wbuf = Vec::new();
    loop {
        if filled == buf.len() {
            if buf.len() >= 1 << 20 {
                return;
            }
            buf.resize(buf.len() * 2, 0);
        }
        match rd.read(&mut buf[filled..]).await {
            Ok(n) if n > 0 => filled += n,
            _ => return,
        }
        let mut off = 0;
        loop {
            match sip::next_frame(&buf[off..filled]) {
                Frame::Skip(n) => off += n,
                Frame::Message(n) => {
                    uas.answer(&buf[off..off + n], &mut out);
                    off += n;
                }
                Frame::Incomplete => break,
                Frame::Bad => return,
            }
        }
        buf.copy_within(off..filled, 0);
        filled -= off;
        for r in out.drain(..) {
            wbuf.extend_from_slice(&r);
        }
        if !wbuf.is_empty() {
            if wr.write_all(&wbuf).await.is_err() {
                return;
            }
            wbuf.clear();
        }
    }
}

/// One one-to-many socket for every association: answers on the request's association and
/// stream. TLS-SCTP keeps the sessions of each association until it goes down.
async fn sctp(
    listen: Listen,
    addr: SocketAddr,
    tls: Option<Arc<ServerConfig>>,
    trying: bool,
) -> Result<(), ServeError> {
    let sock = SctpSocket::one_to_many(Family::for_addrs(&[addr]))
        .map_err(|e| ServeError::Sctp("SCTP socket", e))?;
    // As many streams both ways as a client may use: replies go on the request's stream.
    sock.set_init_msg(InitMsg {
        num_ostreams: SCTP_STREAMS,
        max_instreams: SCTP_STREAMS,
        ..InitMsg::default()
    })
    .map_err(|e| ServeError::Sctp("SCTP_INITMSG", e))?;
    sock.bind(&[addr])
        .map_err(|e| ServeError::Sctp("SCTP bind", e))?;
    let ep = sock
        .into_endpoint(true)
        .map_err(|e| ServeError::Sctp("SCTP listen", e))?;
    ep.subscribe(&[Event::AssocChange])
        .map_err(|e| ServeError::Sctp("SCTP events", e))?;
    let _ = ep.set_nodelay(true);
    let local = ep
        .local_addrs(0)
        .map_err(|e| ServeError::Sctp("SCTP local address", e))?
        .first()
        .copied()
        .unwrap_or(addr);
    let uas = Uas::new(local, listen.via(), trying);
    announce(listen, local);
    let mut rb = RecvBuf::new(DEFAULT_RECV_LIMIT);
    let mut sessions: HashMap<i32, Sessions> = HashMap::new();
    let mut out = Vec::new();
    let mut records: Vec<(u16, Vec<u8>)> = Vec::new();
    loop {
        let (assoc, stream) = match ep.recv(&mut rb).await {
            Ok(Received::Message { data, info, .. }) => {
                match &tls {
                    None => uas.answer(data, &mut out),
                    Some(config) => {
                        let s = sessions
                            .entry(info.assoc_id)
                            .or_insert_with(|| Sessions::server(Arc::clone(config)));
                        if s.receive(info.stream, data, &mut records).is_err() {
                            s.drop_stream(info.stream);
                        } else if let Some(plain) = s.plain(info.stream) {
                            let mut off = 0;
                            let mut bad = false;
                            loop {
                                match sip::next_frame(&plain[off..]) {
                                    Frame::Skip(n) => off += n,
                                    Frame::Message(n) => {
                                        uas.answer(&plain[off..off + n], &mut out);
                                        off += n;
                                    }
                                    Frame::Incomplete => break,
                                    Frame::Bad => {
                                        bad = true;
                                        break;
                                    }
                                }
                            }
                            plain.drain(..off);
                            for r in out.drain(..) {
                                s.send(info.stream, &r, &mut records);
                            }
                            if bad {
                                // Cannot be framed any more: forget the stream's session.
                                s.drop_stream(info.stream);
                            }
                        }
                    }
                }
                (info.assoc_id, info.stream)
            }
            Ok(Received::Notification(Notification::AssocChange {
                state, assoc_id, ..
            })) => {
                if !matches!(state, AssocState::CommUp | AssocState::Restart) {
                    sessions.remove(&assoc_id);
                }
                continue;
            }
            Ok(_) => continue,
            Err(e) if e.is_fatal() => return Err(ServeError::Sctp("SCTP receive", e)),
            Err(_) => continue,
        };
        let info = SendInfo::on_stream(stream).assoc(assoc);
        for r in out.drain(..) {
            let _ = ep.send(&r, &info).await;
        }
        for (st, rec) in records.drain(..) {
            let _ = ep.send(&rec, &SendInfo::on_stream(st).assoc(assoc)).await;
        }
    }
}
