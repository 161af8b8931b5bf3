//! Server side: the certificate chosen by SNI (several virtual domains on one ip:port,
//! RFC 5923 §9.3), a default certificate for no or unknown SNI, hot reload, the
//! client-certificate request (RFC 5923 §9.2) and the ALPN policy.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use serde::Deserialize;

use super::alpn::AlpnPolicy;
use super::error::TlsError;
use super::material::provider;

/// Client-certificate policy of a TLS listener. A certificate is always requested
/// (RFC 5923 §9.2); the policy says whether a client without one is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientCertPolicy {
    /// Request a certificate; accept clients without one (they are not authenticated,
    /// RFC 5922 §7.4).
    #[default]
    Optional,
    /// Refuse clients without a valid certificate.
    Require,
}

/// The certificates of a listener: one per virtual domain, and a default.
#[derive(Clone)]
pub struct ServerCerts {
    default: Arc<CertifiedKey>,
    by_name: HashMap<String, Arc<CertifiedKey>>,
}

impl fmt::Debug for ServerCerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCerts")
            .field("domains", &self.by_name.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ServerCerts {
    /// Only a default certificate.
    pub fn new(default: Arc<CertifiedKey>) -> ServerCerts {
        ServerCerts {
            default,
            by_name: HashMap::new(),
        }
    }

    /// Adds the certificate presented when the client's SNI is `domain`
    /// (case-insensitive).
    pub fn with_domain(mut self, domain: &str, cert: Arc<CertifiedKey>) -> ServerCerts {
        self.by_name.insert(domain.to_ascii_lowercase(), cert);
        self
    }

    /// The certificate for an SNI value (`None`: no SNI): exact, case-insensitive, else
    /// the default.
    pub fn select(&self, sni: Option<&str>) -> &Arc<CertifiedKey> {
        sni.and_then(|n| {
            let n = n.strip_suffix('.').unwrap_or(n);
            self.by_name.get(&n.to_ascii_lowercase())
        })
        .unwrap_or(&self.default)
    }
}

/// The rustls certificate resolver of a listener: SNI selection over certificates that
/// can be replaced at any time ([`SniResolver::replace`]); handshakes in progress and
/// established connections keep what they had.
pub struct SniResolver {
    certs: ArcSwap<ServerCerts>,
    alpn: AlpnPolicy,
    alpn_ids: Vec<Vec<u8>>,
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SniResolver")
            .field("certs", &self.certs.load())
            .field("alpn", &self.alpn)
            .finish()
    }
}

impl SniResolver {
    /// A resolver over `certs`; under [`AlpnPolicy::Require`] a client offering none of
    /// `alpn_ids` gets no certificate (the handshake fails).
    pub fn new(certs: ServerCerts, alpn: AlpnPolicy, alpn_ids: Vec<Vec<u8>>) -> Arc<SniResolver> {
        Arc::new(SniResolver {
            certs: ArcSwap::from_pointee(certs),
            alpn,
            alpn_ids,
        })
    }

    /// Installs new certificates for the next handshakes (hot reload).
    pub fn replace(&self, certs: ServerCerts) {
        self.certs.store(Arc::new(certs));
    }

    /// The certificates in force.
    pub fn current(&self) -> Arc<ServerCerts> {
        self.certs.load_full()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if !self.alpn.accepts_offer(&self.alpn_ids, hello.alpn()) {
            tracing::debug!("client offers no acceptable ALPN id; refused (alpn_policy = require)");
            metrics::counter!(ALPN_REFUSED).increment(1);
            return None;
        }
        Some(Arc::clone(self.certs.load().select(hello.server_name())))
    }
}

/// Counter: inbound handshakes refused because the client offered no ALPN id under
/// `alpn_policy = require` (also counted by the transport as a handshake failure with
/// `reason="no_alpn_offered"`; the client receives the fatal alert `access_denied`).
pub const ALPN_REFUSED: &str = "sipwire_tls_alpn_refused_total";

/// Settings of a TLS listener other than its certificates.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// CAs trusted for client certificates.
    pub client_roots: Arc<RootCertStore>,
    /// Whether a client certificate is required.
    pub client_cert: ClientCertPolicy,
    /// ALPN policy and ids.
    pub alpn: AlpnPolicy,
    /// ALPN ids (e.g. `sip/2`).
    pub alpn_ids: Vec<Vec<u8>>,
    /// Log secrets to the file named by `SSLKEYLOGFILE`.
    pub keylog: bool,
}

/// Builds the rustls server configuration of a listener: TLS 1.2 and 1.3 only
/// (RFC 8996), a client certificate always requested (RFC 5923 §9.2) and verified
/// against `client_roots`, certificates from `resolver`.
pub fn server_config(
    settings: &ServerSettings,
    resolver: Arc<SniResolver>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let b =
        WebPkiClientVerifier::builder_with_provider(Arc::clone(&settings.client_roots), provider());
    let b = match settings.client_cert {
        ClientCertPolicy::Optional => b.allow_unauthenticated(),
        ClientCertPolicy::Require => b,
    };
    let verifier = b.build().map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut sc = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    sc.alpn_protocols = settings.alpn.protocols(&settings.alpn_ids);
    if settings.keylog {
        sc.key_log = Arc::new(rustls::KeyLogFile::new());
    }
    Ok(Arc::new(sc))
}
