//! OpenSSL DTLS configurations from the test CA (DTLS over SCTP, RFC 6083): mutual
//! authentication, as a SIP peer wants it (RFC 5922 identities both ways).

use super::pki::{Ca, Leaf};
use openssl::pkey::PKey;
use openssl::ssl::{SslAcceptor, SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::X509;

fn cert_and_key(leaf: &Leaf) -> (X509, PKey<openssl::pkey::Private>) {
    (
        X509::from_der(leaf.chain[0].as_ref()).expect("leaf"),
        PKey::private_key_from_pkcs8(&leaf.key).expect("key"),
    )
}

/// A DTLS server presenting `leaf`, requiring a client certificate from `ca`.
pub fn acceptor(ca: &Ca, leaf: &Leaf) -> openssl::ssl::SslAcceptorBuilder {
    let (cert, key) = cert_and_key(leaf);
    let mut a = SslAcceptor::mozilla_intermediate_v5(SslMethod::dtls()).expect("acceptor");
    a.set_certificate(&cert).expect("cert");
    a.set_private_key(&key).expect("key");
    a.cert_store_mut()
        .add_cert(X509::from_pem(ca.pem().as_bytes()).expect("ca"))
        .expect("ca");
    a.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    a
}

/// A DTLS client trusting `ca`, presenting `leaf`.
pub fn connector(ca: &Ca, leaf: &Leaf) -> openssl::ssl::SslConnectorBuilder {
    let (cert, key) = cert_and_key(leaf);
    let mut c = SslConnector::builder(SslMethod::dtls()).expect("connector");
    c.cert_store_mut()
        .add_cert(X509::from_pem(ca.pem().as_bytes()).expect("ca"))
        .expect("ca");
    c.set_certificate(&cert).expect("cert");
    c.set_private_key(&key).expect("key");
    c
}
