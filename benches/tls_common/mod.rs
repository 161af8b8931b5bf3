//! Shared by the TLS benchmarks (`tls_throughput`, `tls_memory`): certificates from the
//! tests' PKI (tests/support/pki.rs) made at start-up, rustls configurations that both the sipwire endpoints and the bare
//! tokio-rustls baseline use (same certificates, cipher suites, resumption settings), SIP
//! messages of a given size, and the bare tokio-rustls endpoints.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::SupportedProtocolVersion;
use sipwire::transport::receive::stream_message;
use sipwire::wire::{Frame, Limits, StreamFramer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "../../tests/support/pki.rs"]
mod pki;
#[path = "../../tests/support/poll.rs"]
pub mod poll;

/// A CA and a server certificate for localhost, 127.0.0.1 and ::1 (ECDSA P-256, rcgen's
/// default), from the tests' PKI.
pub struct Pki {
    pub ca: CertificateDer<'static>,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: Vec<u8>,
}

impl Pki {
    /// The server presents its certificate alone, without the CA: the handshakes the
    /// benchmarks measure keep their size.
    pub fn generate() -> Pki {
        let l = pki::Localhost::generate();
        Pki {
            ca: l.ca.der(),
            chain: vec![l.server.chain[0].clone()],
            key: l.server.key,
        }
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// A fresh server configuration (its own session cache) for one protocol version;
    /// server authentication only. rustls defaults: a 256-entry session cache, TLS 1.3
    /// stateful tickets (two per handshake), TLS 1.2 session ids.
    pub fn server(&self, version: Version) -> Arc<rustls::ServerConfig> {
        self.server_counted(version).0
    }

    /// [`Pki::server`] whose session cache counts hits (resumptions it accepted).
    pub fn server_counted(&self, version: Version) -> (Arc<rustls::ServerConfig>, Arc<Hits>) {
        let hits = Arc::new(Hits::default());
        let mut cfg = rustls::ServerConfig::builder_with_provider(Self::provider())
            .with_protocol_versions(version.versions())
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                self.chain.clone(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone())),
            )
            .expect("server cert");
        cfg.session_storage = Arc::new(CountingStore {
            inner: rustls::server::ServerSessionMemoryCache::new(256),
            hits: Arc::clone(&hits),
        });
        (Arc::new(cfg), hits)
    }

    /// A fresh client configuration (its own session cache) trusting the CA; resumption
    /// on (rustls' default in-memory cache) or off.
    pub fn client(&self, version: Version, resume: bool) -> Arc<rustls::ClientConfig> {
        self.client_cached(version, resume).0
    }

    /// [`Pki::client`] and its session cache (rustls' in-memory cache of 256 entries,
    /// the default), to check what it holds.
    pub fn client_cached(
        &self,
        version: Version,
        resume: bool,
    ) -> (
        Arc<rustls::ClientConfig>,
        Arc<rustls::client::ClientSessionMemoryCache>,
    ) {
        let cache = Arc::new(rustls::client::ClientSessionMemoryCache::new(256));
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).expect("root");
        let mut cfg = rustls::ClientConfig::builder_with_provider(Self::provider())
            .with_protocol_versions(version.versions())
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.resumption = if resume {
            Resumption::store(cache.clone())
        } else {
            Resumption::disabled()
        };
        (Arc::new(cfg), cache)
    }
}

/// Resumptions a server session cache served.
#[derive(Debug, Default)]
pub struct Hits(pub AtomicUsize);

impl Hits {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// rustls' server session cache (the default one, 256 entries) counting its hits.
#[derive(Debug)]
struct CountingStore {
    inner: Arc<rustls::server::ServerSessionMemoryCache>,
    hits: Arc<Hits>,
}

impl CountingStore {
    fn hit(&self, v: Option<Vec<u8>>) -> Option<Vec<u8>> {
        if v.is_some() {
            self.hits.0.fetch_add(1, Ordering::Relaxed);
        }
        v
    }
}

impl rustls::server::StoresServerSessions for CountingStore {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.inner.put(key, value)
    }
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.hit(self.inner.get(key))
    }
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.hit(self.inner.take(key))
    }
    fn can_cache(&self) -> bool {
        self.inner.can_cache()
    }
}

/// Protocol version of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Tls13,
    Tls12,
}

impl Version {
    pub fn versions(self) -> &'static [&'static SupportedProtocolVersion] {
        static V13: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        static V12: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
        match self {
            Version::Tls13 => &V13,
            Version::Tls12 => &V12,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Version::Tls13 => "TLS 1.3",
            Version::Tls12 => "TLS 1.2",
        }
    }
}

fn hostport(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v) => format!("{}:{}", v.ip(), v.port()),
        SocketAddr::V6(v) => format!("[{}]:{}", v.ip(), v.port()),
    }
}

/// A MESSAGE request from `from` to `to` padded with a body to `size` bytes in total.
pub fn request(from: SocketAddr, to: SocketAddr, size: usize) -> Bytes {
    let head = |body: usize| {
        format!(
            "MESSAGE sip:bench@{to} SIP/2.0\r\n\
Via: SIP/2.0/TLS {from};branch=z9hG4bK-bench-1;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:client@{from}>;tag=c1\r\n\
To: <sip:bench@{to}>\r\n\
Call-ID: bench-1@{from}\r\n\
CSeq: 1 MESSAGE\r\n\
Content-Type: text/plain\r\n\
Content-Length: {body:5}\r\n\r\n",
            to = hostport(to),
            from = hostport(from),
        )
    };
    let body = size.saturating_sub(head(0).len());
    let mut out = head(body);
    out.push_str(&"x".repeat(body));
    Bytes::from(out)
}

/// The 200 answering [`request`].
pub fn response(from: SocketAddr, to: SocketAddr) -> Bytes {
    Bytes::from(format!(
        "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/TLS {from};branch=z9hG4bK-bench-1;rport=1;received=127.0.0.1\r\n\
From: <sip:client@{from}>;tag=c1\r\n\
To: <sip:bench@{to}>;tag=s1\r\n\
Call-ID: bench-1@{from}\r\n\
CSeq: 1 MESSAGE\r\n\
Content-Length: 0\r\n\r\n",
        to = hostport(to),
        from = hostport(from),
    ))
}

/// Median of samples (sorted copy).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// A bare tokio-rustls server: accepts, handshakes, then answers every message framed
/// by Content-Length (sipwire's `StreamFramer`) with `answer` (when given), until EOF.
/// With `parse`, every message also goes through sipwire's receive step
/// (`transport::receive::stream_message`: parse, Via `received`/`rport`), as sipwire's
/// own drivers do.
/// `done` counts connections finished (EOF after a completed handshake).
pub struct BareServer {
    pub addr: SocketAddr,
    pub done: Arc<AtomicUsize>,
    pub handshaken: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BareServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BareServer {
    pub async fn start(
        config: Arc<rustls::ServerConfig>,
        answer: Option<Bytes>,
        parse: bool,
    ) -> BareServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let done = Arc::new(AtomicUsize::new(0));
        let handshaken = Arc::new(AtomicUsize::new(0));
        let (d, h) = (Arc::clone(&done), Arc::clone(&handshaken));
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let (d, h, answer) = (Arc::clone(&d), Arc::clone(&h), answer.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    h.fetch_add(1, Ordering::Relaxed);
                    serve(tls, answer, parse.then_some(peer)).await;
                    d.fetch_add(1, Ordering::Relaxed);
                });
            }
        });
        BareServer {
            addr,
            done,
            handshaken,
            task,
        }
    }
}

const READ_CHUNK: usize = 8 * 1024;

/// Reads, frames and answers until EOF or an error.
async fn serve<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    answer: Option<Bytes>,
    parse_from: Option<SocketAddr>,
) {
    let limits = Limits::default();
    let mut framer = StreamFramer::new(Limits::default());
    let mut out = BytesMut::new();
    loop {
        let buf = framer.buffer_mut();
        if buf.capacity() - buf.len() < READ_CHUNK / 2 {
            buf.reserve(READ_CHUNK);
        }
        match s.read_buf(buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(raw))) => {
                    if let Some(peer) = parse_from {
                        std::hint::black_box(stream_message(raw, peer, &limits));
                    }
                    if let Some(a) = &answer {
                        out.extend_from_slice(a);
                    }
                }
                Ok(Some(Frame::Ping)) => out.extend_from_slice(b"\r\n"),
                Ok(Some(Frame::Pong)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if !out.is_empty() {
            if s.write_all(&out).await.is_err() || s.flush().await.is_err() {
                return;
            }
            out.clear();
        }
    }
}

/// A bare tokio-rustls client connection: TCP connect, nodelay, handshake.
pub async fn bare_connect(
    config: &Arc<rustls::ClientConfig>,
    addr: SocketAddr,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    tokio_rustls::TlsConnector::from(Arc::clone(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
}
