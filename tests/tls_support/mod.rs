//! Helpers of the TLS integration tests: a CA (rcgen) issuing the certificates of the
//! RFC 5922 matrix, sipwire TLS configurations over them, a raw rustls client that
//! records the certificate a server presents, and bounded waits.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, SignatureScheme};
use sipwire::tls::{
    material, AlpnPolicy, ClientCertPolicy, ClientCerts, ClientSettings, ClientTls, ServerCerts,
    ServerSettings, SniResolver, SIP_2,
};
use sipwire::transport::{Incoming, Transport, TransportConfig};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Bound for every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// What a test certificate carries.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// dNSName SANs.
    pub dns: Vec<String>,
    /// URI SANs.
    pub uris: Vec<String>,
    /// iPAddress SANs.
    pub ips: Vec<String>,
    /// Subject CN (none: empty subject).
    pub cn: Option<String>,
    /// Already expired.
    pub expired: bool,
}

impl Spec {
    pub fn dns(names: &[&str]) -> Spec {
        Spec {
            dns: names.iter().map(|s| s.to_string()).collect(),
            ..Spec::default()
        }
    }

    pub fn uris(uris: &[&str]) -> Spec {
        Spec {
            uris: uris.iter().map(|s| s.to_string()).collect(),
            ..Spec::default()
        }
    }

    pub fn cn(cn: &str) -> Spec {
        Spec {
            cn: Some(cn.to_owned()),
            ..Spec::default()
        }
    }

    pub fn with_cn(mut self, cn: &str) -> Spec {
        self.cn = Some(cn.to_owned());
        self
    }

    pub fn with_dns(mut self, names: &[&str]) -> Spec {
        self.dns.extend(names.iter().map(|s| s.to_string()));
        self
    }

    pub fn with_ips(mut self, ips: &[&str]) -> Spec {
        self.ips.extend(ips.iter().map(|s| s.to_string()));
        self
    }

    pub fn expired(mut self) -> Spec {
        self.expired = true;
        self
    }
}

/// A certificate chain and its key.
#[derive(Clone)]
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: Vec<u8>,
}

impl Leaf {
    pub fn der(&self) -> &[u8] {
        self.chain[0].as_ref()
    }

    pub fn certified(&self) -> Arc<CertifiedKey> {
        material::certified_key(
            self.chain.clone(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone())),
        )
        .expect("certified key")
    }

    /// PEM files (chain, key) in `dir` named `<name>.pem` / `<name>.key`.
    pub fn write_pem(
        &self,
        dir: &std::path::Path,
        name: &str,
    ) -> (std::path::PathBuf, std::path::PathBuf) {
        let mut pem = String::new();
        for c in &self.chain {
            pem.push_str(&pem_block("CERTIFICATE", c.as_ref()));
        }
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, pem).expect("write cert");
        std::fs::write(&key, pem_block("PRIVATE KEY", &self.key)).expect("write key");
        (cert, key)
    }
}

fn pem_block(label: &str, der: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                b64.push(T[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("ascii"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A test CA.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, name);
        let issuer =
            CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("ca key")).expect("ca");
        Ca { issuer }
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    pub fn roots(&self) -> Arc<rustls::RootCertStore> {
        let mut r = rustls::RootCertStore::empty();
        r.add(self.der()).expect("root");
        Arc::new(r)
    }

    pub fn write_pem(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let p = dir.join("ca.pem");
        std::fs::write(&p, pem_block("CERTIFICATE", self.issuer.der().as_ref())).expect("ca pem");
        p
    }

    /// A leaf certificate following `spec`.
    pub fn leaf(&self, spec: &Spec) -> Leaf {
        let mut p = CertificateParams::new(spec.dns.clone()).expect("params");
        for u in &spec.uris {
            p.subject_alt_names
                .push(SanType::URI(u.as_str().try_into().expect("ia5 uri")));
        }
        for ip in &spec.ips {
            p.subject_alt_names
                .push(SanType::IpAddress(ip.parse().expect("ip")));
        }
        p.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = &spec.cn {
            p.distinguished_name
                .push(rcgen::DnType::CommonName, cn.as_str());
        }
        if spec.expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().expect("key");
        let cert = p.signed_by(&key, &self.issuer).expect("sign");
        Leaf {
            chain: vec![cert.der().clone(), self.issuer.der().clone()],
            key: key.serialize_der(),
        }
    }
}

pub fn sip2() -> Vec<Vec<u8>> {
    vec![SIP_2.to_vec()]
}

/// A sipwire server configuration (SNI resolver over `certs`) trusting `ca` for clients.
pub fn server(
    ca: &Ca,
    certs: ServerCerts,
    client_cert: ClientCertPolicy,
    alpn: AlpnPolicy,
) -> (Arc<rustls::ServerConfig>, Arc<SniResolver>) {
    let resolver = SniResolver::new(certs, alpn, sip2());
    let settings = ServerSettings {
        client_roots: ca.roots(),
        client_cert,
        alpn,
        alpn_ids: sip2(),
        keylog: false,
    };
    let sc = sipwire::tls::server_config(&settings, Arc::clone(&resolver)).expect("server config");
    (sc, resolver)
}

/// sipwire outbound TLS trusting `ca`, with these client certificates.
pub fn client(ca: &Ca, certs: ClientCerts, domains: &[&str], alpn: AlpnPolicy) -> ClientTls {
    let settings = ClientSettings {
        roots: ca.roots(),
        alpn,
        alpn_ids: sip2(),
        keylog: false,
    };
    let domains: Vec<String> = domains.iter().map(|s| s.to_string()).collect();
    ClientTls::new(&settings, certs, &domains).expect("client tls")
}

/// A transport extracting RFC 5922 identities.
pub fn transport() -> (Transport, mpsc::Receiver<Incoming>) {
    Transport::new(TransportConfig {
        identities: Some(sipwire::tls::identity_fn()),
        ..TransportConfig::default()
    })
}

pub fn any() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

/// Receives the next message, bounded by [`WAIT`].
pub async fn next(rx: &mut mpsc::Receiver<Incoming>) -> Incoming {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("timed out waiting for a message")
        .expect("channel closed")
}

/// Accepts any server certificate and remembers it (to look at what a server presents).
#[derive(Debug, Default)]
pub struct Recorder(pub Mutex<Option<Vec<u8>>>);

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.0.lock().expect("lock") = Some(end_entity.as_ref().to_vec());
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What a raw handshake saw.
pub struct Peek {
    /// The server's end-entity certificate.
    pub cert: Vec<u8>,
    /// The negotiated ALPN protocol.
    pub alpn: Option<Vec<u8>>,
    /// The stream, still open.
    pub stream: tokio_rustls::client::TlsStream<TcpStream>,
}

/// A raw rustls handshake to `addr` with SNI `sni` (`None`: no SNI), these ALPN ids,
/// TLS `versions` and optionally a client certificate; the server certificate is
/// recorded, not verified.
pub async fn peek(
    addr: SocketAddr,
    sni: Option<&str>,
    alpn: &[&[u8]],
    client_cert: Option<&Leaf>,
) -> Result<Peek, std::io::Error> {
    peek_versions(addr, sni, alpn, client_cert, rustls::ALL_VERSIONS).await
}

pub async fn peek_versions(
    addr: SocketAddr,
    sni: Option<&str>,
    alpn: &[&[u8]],
    client_cert: Option<&Leaf>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<Peek, std::io::Error> {
    let rec = Arc::new(Recorder::default());
    let b = rustls::ClientConfig::builder_with_provider(material::provider())
        .with_protocol_versions(versions)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(rec.clone());
    let mut cc = match client_cert {
        Some(l) => b
            .with_client_auth_cert(
                l.chain.clone(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(l.key.clone())),
            )
            .expect("client cert"),
        None => b.with_no_client_auth(),
    };
    cc.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    let name = match sni {
        Some(n) => ServerName::try_from(n.to_owned()).expect("dns name"),
        None => ServerName::IpAddress(addr.ip().into()),
    };
    let tcp = TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cc));
    let mut stream = tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    // TLS 1.3: the server checks the client's certificate after our Finished; a short
    // read surfaces its refusal.
    {
        use tokio::io::AsyncReadExt;
        let mut b = [0u8; 1];
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut b)).await {
            match r {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    }
    let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let cert = rec
        .0
        .lock()
        .expect("lock")
        .clone()
        .expect("certificate seen");
    Ok(Peek { cert, alpn, stream })
}

/// The rustls error inside an I/O error, if any.
pub fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
}

/// An OPTIONS request.
pub fn options(from: SocketAddr, to: SocketAddr, branch: &str) -> String {
    format!(
        "OPTIONS sip:{to} SIP/2.0\r\n\
Via: SIP/2.0/TLS {from};branch=z9hG4bK{branch};rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:test@{from}>;tag=t{branch}\r\n\
To: <sip:{to}>\r\n\
Call-ID: {branch}@test\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
    )
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
