//! Helpers shared by the transport integration tests: certificates generated per test
//! (rcgen), rustls configurations, SIP message builders and bounded readers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sipwire::transport::{IdentityFn, Incoming};
use sipwire::wire::{Frame, Limits, Message, StreamFramer};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

/// Bound for every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// A CA, a server certificate for localhost/127.0.0.1/::1 and a client certificate.
pub struct Pki {
    pub ca: CertificateDer<'static>,
    pub server_chain: Vec<CertificateDer<'static>>,
    pub server_key: Vec<u8>,
    pub client_chain: Vec<CertificateDer<'static>>,
    pub client_key: Vec<u8>,
}

fn leaf(
    names: &[&str],
    ips: &[&str],
    issuer: &CertifiedIssuer<'static, KeyPair>,
) -> (CertificateDer<'static>, Vec<u8>) {
    let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("params");
    for ip in ips {
        p.subject_alt_names
            .push(SanType::IpAddress(ip.parse().expect("ip")));
    }
    let key = KeyPair::generate().expect("key");
    let cert = p.signed_by(&key, issuer).expect("sign");
    (cert.der().clone(), key.serialize_der())
}

impl Pki {
    pub fn generate() -> Pki {
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "sipwire test CA");
        let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("ca key"))
            .expect("ca cert");
        let (s, sk) = leaf(&["localhost"], &["127.0.0.1", "::1"], &issuer);
        let (c, ck) = leaf(&["client.example.net"], &[], &issuer);
        Pki {
            ca: issuer.der().clone(),
            server_chain: vec![s],
            server_key: sk,
            client_chain: vec![c],
            client_key: ck,
        }
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn roots(&self) -> rustls::RootCertStore {
        let mut r = rustls::RootCertStore::empty();
        r.add(self.ca.clone()).expect("root");
        r
    }

    /// Server config that requests (but does not require) a client certificate.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(self.roots()),
            Self::provider(),
        )
        .allow_unauthenticated()
        .build()
        .expect("verifier");
        let cfg = rustls::ServerConfig::builder_with_provider(Self::provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                self.server_chain.clone(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone())),
            )
            .expect("server cert");
        Arc::new(cfg)
    }

    /// Client config trusting the test CA, with or without a client certificate.
    pub fn client_config(&self, with_cert: bool) -> Arc<rustls::ClientConfig> {
        let b = rustls::ClientConfig::builder_with_provider(Self::provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(self.roots());
        let cfg = if with_cert {
            b.with_client_auth_cert(
                self.client_chain.clone(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.client_key.clone())),
            )
            .expect("client cert")
        } else {
            b.with_no_client_auth()
        };
        Arc::new(cfg)
    }
}

/// Identities for tests: the library's RFC 5922 §7.1 extraction.
pub fn dns_identities() -> IdentityFn {
    sipwire::tls::identity_fn()
}

/// Formats an address as a Via sent-by / URI host:port.
pub fn hostport(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v) => format!("{}:{}", v.ip(), v.port()),
        SocketAddr::V6(v) => format!("[{}]:{}", v.ip(), v.port()),
    }
}

/// An OPTIONS request from `from` (Via sent-by) to `to`, with `extra` header lines and
/// a body padded to make the message at least `min_len` bytes.
pub fn options(transport: &str, from: SocketAddr, to: SocketAddr, branch: &str) -> String {
    request("OPTIONS", transport, from, to, branch, 0)
}

pub fn request(
    method: &str,
    transport: &str,
    from: SocketAddr,
    to: SocketAddr,
    branch: &str,
    body_len: usize,
) -> String {
    let body = "x".repeat(body_len);
    format!(
        "{method} sip:{to} SIP/2.0\r\n\
Via: SIP/2.0/{transport} {from};branch=z9hG4bK{branch};rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:test@{from}>;tag=t{branch}\r\n\
To: <sip:{to}>\r\n\
Call-ID: {branch}@test\r\n\
CSeq: 1 {method}\r\n\
Content-Length: {len}\r\n\r\n{body}",
        to = hostport(to),
        from = hostport(from),
        len = body.len(),
    )
}

/// Receives the next message from a transport's channel, bounded by [`WAIT`].
pub async fn next(rx: &mut mpsc::Receiver<Incoming>) -> Incoming {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("timed out waiting for a message")
        .expect("channel closed")
}

/// Reads one frame (message, ping or pong) from a raw stream, bounded by [`WAIT`].
pub async fn read_frame<R: AsyncRead + Unpin>(rd: &mut R, framer: &mut StreamFramer) -> Frame {
    framer.set_awaiting_pong(true);
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(f) = framer.next_frame().expect("framing") {
                return f;
            }
            let mut buf = [0u8; 4096];
            let n = rd.read(&mut buf).await.expect("read");
            assert!(n > 0, "peer closed while a frame was expected");
            framer.push(&buf[..n]);
        }
    })
    .await
    .expect("timed out reading a frame")
}

/// Reads one SIP message from a raw stream.
pub async fn read_message<R: AsyncRead + Unpin>(rd: &mut R, framer: &mut StreamFramer) -> Message {
    loop {
        if let Frame::Message(b) = read_frame(rd, framer).await {
            return Message::parse(b).expect("parse");
        }
    }
}

pub fn framer() -> StreamFramer {
    StreamFramer::new(Limits::default())
}

pub fn parse(b: &[u8]) -> Message {
    Message::parse(Bytes::copy_from_slice(b)).expect("parse")
}

/// Waits until `f` is true, polling every 10 ms, at most [`WAIT`].
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the peer closes the stream (read returns 0 or an error); returns how
/// long it took. Fails after `limit`.
pub async fn closed_within<R: AsyncRead + Unpin>(rd: &mut R, limit: Duration) -> Duration {
    let start = std::time::Instant::now();
    tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("peer did not close in time");
    start.elapsed()
}
