//! The one test PKI: a CA (rcgen) issuing leaf certificates with exactly the names a test asks
//! for, and rustls configurations over them. Which names a certificate carries decides the SIP
//! identities (RFC 5922 §7.1: the `sip:` URI SANs when there are any, else the dNSNames, else
//! the subject CN), so [`Spec`] spells every field out. Standalone (the TLS benchmarks include
//! it with `#[path]`).

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::SupportedProtocolVersion;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

type Versions = [&'static SupportedProtocolVersion];

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

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Spec {
    pub fn dns(names: &[&str]) -> Spec {
        Spec {
            dns: strings(names),
            ..Spec::default()
        }
    }

    pub fn uris(uris: &[&str]) -> Spec {
        Spec {
            uris: strings(uris),
            ..Spec::default()
        }
    }

    pub fn cn(cn: &str) -> Spec {
        Spec {
            cn: Some(cn.to_owned()),
            ..Spec::default()
        }
    }

    /// A SIP server's certificate: these dNSNames (what TLS server-name verification checks)
    /// and a `sip:` URI SAN for each (the SIP identities), in the same order.
    pub fn sip(names: &[&str]) -> Spec {
        Spec {
            dns: strings(names),
            uris: names.iter().map(|n| format!("sip:{n}")).collect(),
            ..Spec::default()
        }
    }

    pub fn with_cn(mut self, cn: &str) -> Spec {
        self.cn = Some(cn.to_owned());
        self
    }

    pub fn with_dns(mut self, names: &[&str]) -> Spec {
        self.dns.extend(strings(names));
        self
    }

    pub fn with_ips(mut self, ips: &[&str]) -> Spec {
        self.ips.extend(strings(ips));
        self
    }

    pub fn expired(mut self) -> Spec {
        self.expired = true;
        self
    }
}

/// A certificate chain (leaf, then the CA) and its key.
#[derive(Clone)]
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    /// PKCS#8 DER.
    pub key: Vec<u8>,
    /// The chain and the key in PEM, for configuration files.
    pem: String,
    key_pem: String,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Leaf {
    /// The end-entity certificate.
    pub fn der(&self) -> &[u8] {
        self.chain[0].as_ref()
    }

    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()))
    }

    /// The chain with its signing key, as a rustls certificate resolver hands it out.
    pub fn certified(&self) -> Arc<CertifiedKey> {
        let key = provider()
            .key_provider
            .load_private_key(self.private_key())
            .expect("signing key");
        Arc::new(CertifiedKey::new(self.chain.clone(), key))
    }

    /// PEM files (chain, key) in `dir` named `<name>.pem` / `<name>.key`.
    pub fn write_pem(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, &self.pem).expect("write cert");
        std::fs::write(&key, &self.key_pem).expect("write key");
        (cert, key)
    }
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

    /// The CA certificate in PEM (for a peer's `ca_files`).
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// [`Ca::pem`] written to `dir/ca.pem`.
    pub fn write_pem(&self, dir: &Path) -> PathBuf {
        let p = dir.join("ca.pem");
        std::fs::write(&p, self.pem()).expect("ca pem");
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
            chain: vec![cert.der().clone(), self.der()],
            key: key.serialize_der(),
            pem: format!("{}{}", cert.pem(), self.pem()),
            key_pem: key.serialize_pem(),
        }
    }

    /// [`Ca::leaf`] of [`Spec::sip`]: the certificate of a SIP server named `names`.
    pub fn sip_leaf(&self, names: &[&str]) -> Leaf {
        self.leaf(&Spec::sip(names))
    }

    /// A server config presenting `default`, or the certificate registered for the SNI the
    /// client sent; client certificates from this CA are requested (RFC 5923 §9.2), not
    /// required.
    pub fn server_config(
        &self,
        default: &Leaf,
        by_sni: &[(&str, &Leaf)],
        versions: &Versions,
    ) -> Arc<rustls::ServerConfig> {
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(self.roots(), provider())
                .allow_unauthenticated()
                .build()
                .expect("verifier");
        let resolver = SniCerts {
            default: default.certified(),
            by_name: by_sni
                .iter()
                .map(|(n, l)| (n.to_ascii_lowercase(), l.certified()))
                .collect(),
        };
        let cfg = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(resolver));
        Arc::new(cfg)
    }

    /// A client config trusting this CA, presenting `cert` if given.
    pub fn client_config(
        &self,
        cert: Option<&Leaf>,
        versions: &Versions,
    ) -> Arc<rustls::ClientConfig> {
        client_config(self.roots(), cert, versions)
    }
}

/// A client config trusting `roots`, presenting `cert` if given.
pub fn client_config(
    roots: Arc<rustls::RootCertStore>,
    cert: Option<&Leaf>,
    versions: &Versions,
) -> Arc<rustls::ClientConfig> {
    let b = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots);
    let cfg = match cert {
        Some(l) => b
            .with_client_auth_cert(l.chain.clone(), l.private_key())
            .expect("client cert"),
        None => b.with_no_client_auth(),
    };
    Arc::new(cfg)
}

/// Picks the certificate by the client's SNI, case-insensitively.
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

/// The certificates of tests that only need "a server" and "a client": a server certificate
/// for localhost, 127.0.0.1 and ::1, a client certificate for client.example.net.
pub struct Localhost {
    pub ca: Ca,
    pub server: Leaf,
    pub client: Leaf,
}

impl Localhost {
    pub fn generate() -> Localhost {
        let ca = Ca::new("sipwire test CA");
        let server = ca.leaf(&Spec::dns(&["localhost"]).with_ips(&["127.0.0.1", "::1"]));
        let client = ca.leaf(&Spec::dns(&["client.example.net"]));
        Localhost { ca, server, client }
    }

    /// TLS 1.2 and 1.3; requests (does not require) a client certificate.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.ca
            .server_config(&self.server, &[], rustls::DEFAULT_VERSIONS)
    }

    /// Trusts the CA; presents the client certificate if asked.
    pub fn client_config(&self, with_cert: bool) -> Arc<rustls::ClientConfig> {
        self.ca
            .client_config(with_cert.then_some(&self.client), rustls::DEFAULT_VERSIONS)
    }
}
