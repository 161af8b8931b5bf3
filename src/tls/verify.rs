//! Client-side server verification (RFC 5922 §7.3): the chain, validity and EKU are
//! checked by webpki against the configured CAs (RFC 5280, row 46); the name check is
//! the RFC 5922 identity comparison against the domain of the URI being resolved (the
//! AUS domain, passed as the TLS server name), not webpki's DNS-name rules (which
//! allow wildcards and ignore `sip:` URI SANs).

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::error::TlsError;
use super::identity::SipIdentities;
use super::material::provider;

/// The server's certificate does not assert the SIP domain we connected for (RFC 5922
/// §7.3: the client MUST close the connection). Carried inside
/// `rustls::Error::InvalidCertificate(CertificateError::Other(..))`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server certificate does not assert SIP domain {domain} (identities: {identities:?})")]
pub struct IdentityMismatch {
    /// The domain we expected (the AUS domain).
    pub domain: String,
    /// What the certificate asserts.
    pub identities: Vec<String>,
}

impl IdentityMismatch {
    /// True if a rustls error is an identity mismatch.
    pub fn is(err: &rustls::Error) -> bool {
        matches!(err, rustls::Error::InvalidCertificate(CertificateError::Other(o))
            if o.0.downcast_ref::<IdentityMismatch>().is_some())
    }
}

/// Server certificate verifier: webpki chain validation, then RFC 5922 identities.
pub struct SipServerVerifier {
    webpki: Arc<WebPkiServerVerifier>,
}

impl fmt::Debug for SipServerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SipServerVerifier")
    }
}

impl SipServerVerifier {
    /// A verifier trusting `roots`.
    pub fn new(roots: Arc<RootCertStore>) -> Result<Arc<SipServerVerifier>, TlsError> {
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
        Ok(Arc::new(SipServerVerifier { webpki }))
    }
}

impl ServerCertVerifier for SipServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain (signatures, validity, EKU serverAuth, revocation)
        // before the name; a name error therefore means the chain itself is valid.
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            // An IP address target has no SIP domain: webpki's iPAddress check stands.
            Ok(v) if matches!(server_name, ServerName::IpAddress(_)) => return Ok(v),
            Ok(_)
            | Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => {}
            Err(e) => return Err(e),
        }
        let domain = match server_name {
            ServerName::DnsName(d) => d.as_ref().to_owned(),
            ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
            _ => String::new(),
        };
        let ids = SipIdentities::of_certificate(end_entity);
        if ids.matches(&domain) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(IdentityMismatch {
                    domain,
                    identities: ids.into_names(),
                })),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
