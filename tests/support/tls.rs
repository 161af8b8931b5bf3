//! TLS policy helpers: sipwire server and client TLS configurations over the test CA, and a
//! raw rustls client that records the certificate and ALPN a server presents.

use super::pki::{Ca, Leaf};
use super::poll::WAIT;
use super::transport::{any, transport};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sipwire::tls::{
    material, AlpnPolicy, ClientCertPolicy, ClientCerts, ClientSettings, ClientTls, ServerCerts,
    ServerSettings, SniResolver, SIP_2,
};
use sipwire::transport::{Incoming, Transport};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

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

/// A sipwire TLS server on 127.0.0.1 presenting `leaf` whatever the SNI; client
/// certificates from `ca` optional, ALPN offered.
pub async fn tls_server(ca: &Ca, leaf: &Leaf) -> (Transport, mpsc::Receiver<Incoming>, SocketAddr) {
    let (srv, rx) = transport();
    let (sc, _) = server(
        ca,
        ServerCerts::new(leaf.certified()),
        ClientCertPolicy::Optional,
        AlpnPolicy::Offer,
    );
    let addr = srv.bind_tls(any(), sc).await.expect("bind");
    (srv, rx, addr)
}

/// A sipwire transport whose outbound TLS trusts `ca`, presents no certificate and offers
/// ALPN.
pub fn tls_client(ca: &Ca) -> (Transport, mpsc::Receiver<Incoming>) {
    let (cli, rx) = transport();
    cli.set_tls_client(client(ca, ClientCerts::new(None), &[], AlpnPolicy::Offer).default_config());
    (cli, rx)
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
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_tls12_signature(message, cert, dss)
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
            .with_client_auth_cert(l.chain.clone(), l.private_key())
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
