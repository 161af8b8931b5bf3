//! RFC 5922 §7.1/§7.2 SIP identities of a certificate.
//!
//! Which names a verified certificate asserts for SIP, and how a SIP domain is compared
//! with them. Pure: input is the DER certificate, output a set of lower-cased names.
//!
//! Rules (RFC 5922 §7.1, checklist rows 47-49):
//! - a `uniformResourceIdentifier` SAN with scheme `sip` and no user part is an identity
//!   (its host part); `sips:` URIs, other schemes and URIs with a user part are not;
//! - `dNSName` SANs count only when no SAN gave a `sip:` URI identity;
//! - the subject Common Name counts only when the certificate has no SubjectAltName
//!   extension at all;
//! - comparison (§7.2) is exact and case-insensitive: no wildcard, no suffix matching. A
//!   name holding `*` can never match a domain and is therefore not kept.

use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::OID_X509_EXT_SUBJECT_ALT_NAME;

use crate::transport::IdentityFn;

/// Why identities could not be read from a certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The bytes are not a DER X.509 certificate.
    #[error("certificate is not valid DER X.509")]
    BadCertificate,
    /// The SubjectAltName extension is present but unreadable (or duplicated).
    #[error("unreadable SubjectAltName extension")]
    BadSubjectAltName,
}

/// Where the identities of a certificate came from (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentitySource {
    /// `sip:` URI SubjectAltNames.
    SipUri,
    /// dNSName SubjectAltNames (no `sip:` URI identity present).
    DnsName,
    /// The subject Common Name (no SubjectAltName extension).
    CommonName,
    /// No identity at all.
    None,
}

/// The SIP identities (lower-cased domain names) a certificate asserts (RFC 5922 §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipIdentities {
    names: Vec<String>,
    source: IdentitySource,
}

impl SipIdentities {
    /// Reads the identities of a DER certificate. The certificate must have been
    /// verified (chain, validity) by the caller: this only reads names.
    pub fn from_der(der: &[u8]) -> Result<SipIdentities, IdentityError> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|_| IdentityError::BadCertificate)?;
        let has_san_ext = cert
            .extensions()
            .iter()
            .any(|e| e.oid == OID_X509_EXT_SUBJECT_ALT_NAME);
        if !has_san_ext {
            let names: Vec<String> = cert
                .subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .filter_map(dns_identity)
                .collect();
            return Ok(Self::with(names, IdentitySource::CommonName));
        }
        let san = cert
            .subject_alternative_name()
            .map_err(|_| IdentityError::BadSubjectAltName)?
            .ok_or(IdentityError::BadSubjectAltName)?;
        let general = &san.value.general_names;
        let uris: Vec<String> = general
            .iter()
            .filter_map(|n| match n {
                GeneralName::URI(u) => sip_uri_identity(u),
                _ => None,
            })
            .collect();
        if !uris.is_empty() {
            return Ok(Self::with(uris, IdentitySource::SipUri));
        }
        let dns: Vec<String> = general
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => dns_identity(d),
                _ => None,
            })
            .collect();
        Ok(Self::with(dns, IdentitySource::DnsName))
    }

    /// Identities of a certificate, or none when it cannot be read.
    pub fn of_certificate(der: &CertificateDer<'_>) -> SipIdentities {
        Self::from_der(der.as_ref())
            .unwrap_or_else(|_| Self::with(Vec::new(), IdentitySource::None))
    }

    fn with(mut names: Vec<String>, source: IdentitySource) -> SipIdentities {
        names.sort();
        names.dedup();
        let source = if names.is_empty() {
            IdentitySource::None
        } else {
            source
        };
        SipIdentities { names, source }
    }

    /// RFC 5922 §7.2: true if `domain` equals one identity, ignoring ASCII case and a
    /// trailing dot. No wildcard and no suffix matching.
    pub fn matches(&self, domain: &str) -> bool {
        let d = domain.strip_suffix('.').unwrap_or(domain);
        !d.is_empty() && self.names.iter().any(|n| n.eq_ignore_ascii_case(d))
    }

    /// The identities, sorted and lower-cased.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Where they came from.
    pub fn source(&self) -> IdentitySource {
        self.source
    }

    /// True when the certificate asserts no SIP identity.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The names, consumed.
    pub fn into_names(self) -> Vec<String> {
        self.names
    }
}

/// The [`IdentityFn`] of the transport layer: RFC 5922 identities of the peer's
/// end-entity certificate. The gateway and the tests use it.
pub fn identity_fn() -> IdentityFn {
    IdentityFn(Arc::new(|der: &CertificateDer<'_>| {
        SipIdentities::of_certificate(der).into_names()
    }))
}

/// A dNSName (or CN) as an identity: lower-cased, trailing dot removed; names with a
/// wildcard or characters outside host names are not identities.
fn dns_identity(name: &str) -> Option<String> {
    let n = name.trim();
    let n = n.strip_suffix('.').unwrap_or(n);
    let ok = !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then(|| n.to_ascii_lowercase())
}

/// The host part of a `sip:` URI without user part, lower-cased; `None` for any other URI
/// (`sips:`, other schemes, a user part, no host).
fn sip_uri_identity(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.trim().split_once(':')?;
    if !scheme.eq_ignore_ascii_case("sip") {
        return None;
    }
    // hostport ends at the URI parameters or headers.
    let hostport = rest.split([';', '?']).next().unwrap_or(rest);
    if hostport.contains('@') {
        return None;
    }
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        let (inner, _) = v6.split_once(']')?;
        return (!inner.is_empty() && inner.parse::<std::net::Ipv6Addr>().is_ok())
            .then(|| inner.to_ascii_lowercase());
    } else {
        hostport.split(':').next().unwrap_or(hostport)
    };
    dns_identity(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    fn cert(dns: &[&str], uris: &[&str], cn: Option<&str>, no_san: bool) -> Vec<u8> {
        let mut p =
            CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        for u in uris {
            p.subject_alt_names
                .push(SanType::URI((*u).try_into().unwrap()));
        }
        if no_san {
            p.subject_alt_names.clear();
        }
        p.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            p.distinguished_name.push(DnType::CommonName, cn);
        }
        let key = KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    fn ids(der: &[u8]) -> SipIdentities {
        SipIdentities::from_der(der).unwrap()
    }

    #[test]
    fn sip_uri_without_user_is_an_identity() {
        let i = ids(&cert(&[], &["sip:Example.COM"], None, false));
        assert_eq!(i.names(), ["example.com"]);
        assert_eq!(i.source(), IdentitySource::SipUri);
        assert!(i.matches("EXAMPLE.com"));
        assert!(i.matches("example.com."));
    }

    #[test]
    fn sip_uri_port_and_params_are_not_part_of_the_identity() {
        let i = ids(&cert(
            &[],
            &["sip:example.com:5061;transport=tcp"],
            None,
            false,
        ));
        assert_eq!(i.names(), ["example.com"]);
    }

    #[test]
    fn sips_uri_is_not_an_identity() {
        let i = ids(&cert(&[], &["sips:example.com"], None, false));
        assert!(i.is_empty());
        assert!(!i.matches("example.com"));
    }

    #[test]
    fn sips_uri_does_not_hide_dns_names() {
        // A sips: URI is no identity, so dNSName SANs still count.
        let i = ids(&cert(
            &["proxy.example.com"],
            &["sips:example.com"],
            None,
            false,
        ));
        assert_eq!(i.names(), ["proxy.example.com"]);
        assert_eq!(i.source(), IdentitySource::DnsName);
    }

    #[test]
    fn uri_with_user_part_is_not_an_identity() {
        let i = ids(&cert(
            &[],
            &["sip:alice@example.com", "http://example.com"],
            None,
            false,
        ));
        assert!(i.is_empty());
    }

    #[test]
    fn dns_names_only_without_sip_uri_identity() {
        let only_dns = ids(&cert(&["a.example.com", "B.example.com"], &[], None, false));
        assert_eq!(only_dns.names(), ["a.example.com", "b.example.com"]);
        let both = ids(&cert(
            &["proxy.example.com"],
            &["sip:example.com"],
            None,
            false,
        ));
        assert_eq!(both.names(), ["example.com"]);
        assert!(!both.matches("proxy.example.com"));
    }

    #[test]
    fn common_name_only_without_subject_alt_name() {
        let cn = ids(&cert(&[], &[], Some("Example.org"), true));
        assert_eq!(cn.names(), ["example.org"]);
        assert_eq!(cn.source(), IdentitySource::CommonName);
        let with_san = ids(&cert(&["other.example"], &[], Some("example.org"), false));
        assert_eq!(with_san.names(), ["other.example"]);
    }

    #[test]
    fn common_name_ignored_when_san_present_but_useless() {
        let i = ids(&cert(
            &[],
            &["sips:example.org"],
            Some("example.org"),
            false,
        ));
        assert!(i.is_empty());
    }

    #[test]
    fn wildcard_and_suffix_never_match() {
        let w = ids(&cert(&["*.example.com"], &[], None, false));
        assert!(w.is_empty());
        assert!(!w.matches("sip.example.com"));
        let plain = ids(&cert(&["example.com"], &[], None, false));
        assert!(!plain.matches("sip.example.com"));
        assert!(!plain.matches("xexample.com"));
        assert!(!plain.matches(""));
    }

    #[test]
    fn garbage_is_a_typed_error_and_no_identity() {
        assert_eq!(
            SipIdentities::from_der(b"\x30\x03abc"),
            Err(IdentityError::BadCertificate)
        );
        let f = identity_fn();
        assert!((f.0)(&CertificateDer::from(vec![0u8; 8])).is_empty());
    }

    #[test]
    fn uri_host_parsing() {
        assert_eq!(
            sip_uri_identity("SIP:Host.Example"),
            Some("host.example".into())
        );
        assert_eq!(
            sip_uri_identity("sip:[2001:db8::1]:5061"),
            Some("2001:db8::1".into())
        );
        assert_eq!(sip_uri_identity("sip:a@b"), None);
        assert_eq!(sip_uri_identity("sip:"), None);
        assert_eq!(sip_uri_identity("sip:?x"), None);
        assert_eq!(sip_uri_identity("tel:+1555"), None);
        assert_eq!(sip_uri_identity("sip:*.example.com"), None);
    }
}
