//! A test CA (rcgen) issuing certificates whose dNSName / URI SANs give the SIP identities,
//! rustls configurations (SNI-selected server certificates, optional client certificate), and
//! the identity function (dNSName + `sip:` URI SANs, RFC 5922 §7.1).

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sipwire::transport::IdentityFn;
use std::collections::HashMap;
use std::sync::Arc;

pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

#[derive(Clone)]
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: Vec<u8>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Ca {
    pub fn new() -> Ca {
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "sipwire reuse test CA");
        let issuer =
            CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("ca key")).expect("ca");
        Ca { issuer }
    }

    /// A leaf with these dNSName SANs and `sip:` URI SANs.
    pub fn leaf(&self, dns: &[&str], uris: &[&str]) -> Leaf {
        let mut p = CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
        for u in uris {
            p.subject_alt_names
                .push(SanType::URI((*u).try_into().expect("ia5 uri")));
        }
        let key = KeyPair::generate().expect("key");
        let cert = p.signed_by(&key, &self.issuer).expect("sign");
        Leaf {
            chain: vec![cert.der().clone(), self.issuer.der().clone()],
            key: key.serialize_der(),
        }
    }

    fn roots(&self) -> rustls::RootCertStore {
        let mut r = rustls::RootCertStore::empty();
        r.add(self.issuer.der().clone()).expect("root");
        r
    }

    /// A server config presenting `default`, or the certificate registered for the SNI the
    /// client sent; client certificates are requested (RFC 5923 §9.2), not required.
    pub fn server_config(
        &self,
        default: &Leaf,
        by_sni: &[(&str, &Leaf)],
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ServerConfig> {
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(self.roots()),
            provider(),
        )
        .allow_unauthenticated()
        .build()
        .expect("verifier");
        let resolver = SniCerts {
            default: certified(default),
            by_name: by_sni
                .iter()
                .map(|(n, l)| (n.to_string(), certified(l)))
                .collect(),
        };
        let cfg = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(resolver));
        Arc::new(cfg)
    }

    /// A client config trusting the CA, presenting `cert` if given.
    pub fn client_config(
        &self,
        cert: Option<&Leaf>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ClientConfig> {
        let b = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(self.roots());
        let cfg = match cert {
            Some(l) => b
                .with_client_auth_cert(
                    l.chain.clone(),
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(l.key.clone())),
                )
                .expect("client cert"),
            None => b.with_no_client_auth(),
        };
        Arc::new(cfg)
    }
}

fn certified(l: &Leaf) -> Arc<CertifiedKey> {
    let key = provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            l.key.clone(),
        )))
        .expect("signing key");
    Arc::new(CertifiedKey::new(l.chain.clone(), key))
}

#[derive(Debug)]
struct SniCerts {
    default: Arc<CertifiedKey>,
    by_name: HashMap<String, Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SniCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let c = hello
            .server_name()
            .and_then(|n| self.by_name.get(&n.to_ascii_lowercase()))
            .unwrap_or(&self.default);
        Some(Arc::clone(c))
    }
}

/// SIP identities for tests: the library's RFC 5922 §7.1 extraction.
pub fn sip_identities() -> IdentityFn {
    sipwire::tls::identity_fn()
}
