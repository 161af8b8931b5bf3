//! Client side: server verification by RFC 5922 identity ([`super::verify`]), SNI = the
//! AUS domain (the transport passes `Target::server_name`), and the client certificate
//! of the local domain a connection is opened for (RFC 5923 §9.3), hot-reloadable.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, SignatureScheme};

use super::alpn::AlpnPolicy;
use super::error::TlsError;
use super::material::provider;
use super::verify::SipServerVerifier;

/// Client certificates: one per local domain, and a default for the others.
#[derive(Clone, Default)]
pub struct ClientCerts {
    default: Option<Arc<CertifiedKey>>,
    by_domain: HashMap<String, Arc<CertifiedKey>>,
}

impl fmt::Debug for ClientCerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCerts")
            .field("default", &self.default.is_some())
            .field("domains", &self.by_domain.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ClientCerts {
    /// A default certificate (`None`: connect without one unless a domain has its own).
    pub fn new(default: Option<Arc<CertifiedKey>>) -> ClientCerts {
        ClientCerts {
            default,
            by_domain: HashMap::new(),
        }
    }

    /// Adds the certificate presented when connecting on behalf of local `domain`.
    pub fn with_domain(mut self, domain: &str, cert: Arc<CertifiedKey>) -> ClientCerts {
        self.by_domain.insert(domain.to_ascii_lowercase(), cert);
        self
    }

    /// The certificate for a local domain (`None`: the default scope).
    pub fn select(&self, domain: Option<&str>) -> Option<&Arc<CertifiedKey>> {
        domain
            .and_then(|d| self.by_domain.get(&d.to_ascii_lowercase()))
            .or(self.default.as_ref())
    }
}

/// The client-certificate resolver of one local domain over shared, replaceable
/// [`ClientCerts`].
struct DomainCertResolver {
    certs: Arc<ArcSwap<ClientCerts>>,
    domain: Option<String>,
}

impl fmt::Debug for DomainCertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DomainCertResolver({:?})", self.domain)
    }
}

impl ResolvesClientCert for DomainCertResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.certs.load().select(self.domain.as_deref()).cloned()
    }

    fn has_certs(&self) -> bool {
        self.certs.load().select(self.domain.as_deref()).is_some()
    }
}

/// Settings of outbound TLS.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// CAs trusted for servers.
    pub roots: Arc<RootCertStore>,
    /// ALPN policy.
    pub alpn: AlpnPolicy,
    /// ALPN ids offered.
    pub alpn_ids: Vec<Vec<u8>>,
    /// Log secrets to the file named by `SSLKEYLOGFILE`.
    pub keylog: bool,
}

/// Outbound TLS: one rustls configuration per local domain (and one for the default
/// scope) sharing replaceable client certificates.
pub struct ClientTls {
    certs: Arc<ArcSwap<ClientCerts>>,
    default: Arc<ClientConfig>,
    by_domain: HashMap<String, Arc<ClientConfig>>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("certs", &self.certs.load())
            .finish()
    }
}

impl ClientTls {
    /// Builds the configurations for the default scope and every `domains` entry: TLS 1.2
    /// and 1.3 only, servers verified by [`SipServerVerifier`].
    pub fn new(
        settings: &ClientSettings,
        certs: ClientCerts,
        domains: &[String],
    ) -> Result<ClientTls, TlsError> {
        let certs = Arc::new(ArcSwap::from_pointee(certs));
        let verifier = SipServerVerifier::new(Arc::clone(&settings.roots))?;
        let build = |domain: Option<&str>| -> Result<Arc<ClientConfig>, TlsError> {
            let mut cc = ClientConfig::builder_with_provider(provider())
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
                .dangerous()
                .with_custom_certificate_verifier(verifier.clone())
                .with_client_cert_resolver(Arc::new(DomainCertResolver {
                    certs: Arc::clone(&certs),
                    domain: domain.map(str::to_ascii_lowercase),
                }));
            cc.alpn_protocols = settings.alpn.protocols(&settings.alpn_ids);
            if settings.keylog {
                cc.key_log = Arc::new(rustls::KeyLogFile::new());
            }
            Ok(Arc::new(cc))
        };
        let default = build(None)?;
        let mut by_domain = HashMap::new();
        for d in domains {
            by_domain.insert(d.to_ascii_lowercase(), build(Some(d))?);
        }
        Ok(ClientTls {
            certs,
            default,
            by_domain,
        })
    }

    /// The configuration of the default scope.
    pub fn default_config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.default)
    }

    /// The configurations per local domain.
    pub fn domain_configs(&self) -> impl Iterator<Item = (&str, &Arc<ClientConfig>)> {
        self.by_domain.iter().map(|(d, c)| (d.as_str(), c))
    }

    /// Installs new client certificates for the next handshakes (hot reload).
    pub fn replace(&self, certs: ClientCerts) {
        self.certs.store(Arc::new(certs));
    }

    /// Installs these configurations in a transport: the default one and one per local
    /// domain (used for targets whose reuse scope is that domain).
    pub fn install(&self, transport: &crate::transport::Transport) {
        transport.set_tls_client(self.default_config());
        for (d, c) in self.domain_configs() {
            transport.set_tls_client_for(d, Arc::clone(c));
        }
    }
}
