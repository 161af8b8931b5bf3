//! What server location starts from: a SIP/SIPS URI target (RFC 3263 §4) or a Via sent-by for
//! responses (RFC 3263 §5).

use crate::TransportKind;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv6Addr};

pub use crate::wire::Scheme;

pub use crate::wire::Host;

/// Why a target could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The host is neither an IP address nor a valid domain name.
    #[error("invalid host {0:?}")]
    InvalidHost(String),
    /// Port 0 is not a valid destination.
    #[error("port 0 is not a valid destination port")]
    ZeroPort,
    /// The `transport` URI parameter names a transport this stack does not know.
    #[error("unknown transport parameter {0:?}")]
    UnknownTransport(String),
    /// `sips:` with `transport=udp` (RFC 3261 §26.2.2: refused).
    #[error("a SIPS URI cannot use transport=udp")]
    SipsOverUdp,
    /// `sips:` with a transport that is not secured by TLS/DTLS.
    #[error("a SIPS target cannot use the insecure transport {0}")]
    SipsInsecure(TransportKind),
}

/// Parses a URI or Via host for server location: `[v6]`, bare IPv6, IPv4, or a domain name
/// (lowercased, trailing dot removed, owned).
pub fn parse_host(text: &str) -> Result<Host<'static>, TargetError> {
    let invalid = || TargetError::InvalidHost(text.to_string());
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or_else(invalid)?;
        return inner
            .parse::<Ipv6Addr>()
            .map(Host::Ipv6)
            .map_err(|_| invalid());
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(Host::from_ip(ip));
    }
    let name = normalize_domain(text).ok_or_else(invalid)?;
    Ok(Host::Name(name.into()))
}

/// Validates a DNS host name (LDH labels of 1..=63 bytes, at most 253 bytes) and returns it
/// lowercase without a trailing dot. `None` for anything else (wildcards, empty labels, spaces).
pub fn normalize_domain(text: &str) -> Option<String> {
    let name = text.strip_suffix('.').unwrap_or(text);
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    for label in name.split('.') {
        let bytes = label.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= 63
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            && bytes.first() != Some(&b'-')
            && bytes.last() != Some(&b'-');
        if !ok {
            return None;
        }
    }
    Some(name.to_ascii_lowercase())
}

/// A SIP or SIPS URI reduced to what RFC 3263 §4 needs: scheme, host, port, transport parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SipTarget {
    /// `sip:` or `sips:`.
    pub scheme: Scheme,
    /// Host (numeric or name).
    pub host: Host<'static>,
    /// Explicit port, if the URI had one.
    pub port: Option<u16>,
    /// TransportKind from the `transport` URI parameter, already combined with the scheme
    /// (`sips:` + `transport=tcp` is TLS over TCP, `sips:` + `transport=sctp` is TLS over SCTP).
    pub transport: Option<TransportKind>,
}

impl SipTarget {
    /// Builds a target from URI parts. `transport_param` is the raw `transport=` value.
    pub fn new(
        scheme: Scheme,
        host: &str,
        port: Option<u16>,
        transport_param: Option<&str>,
    ) -> Result<SipTarget, TargetError> {
        let host = parse_host(host)?;
        if port == Some(0) {
            return Err(TargetError::ZeroPort);
        }
        let transport = match transport_param {
            None => None,
            Some(p) => Some(transport_from_param(scheme, p)?),
        };
        Ok(SipTarget {
            scheme,
            host,
            port,
            transport,
        })
    }

    /// The application unique string's domain (RFC 5922 §7.3: the identity the server's
    /// certificate must match): the URI host, lowercase.
    pub fn aus(&self) -> String {
        match self.host.ip() {
            Some(ip) => ip.to_string(),
            None => self.host.name().unwrap_or_default().to_owned(),
        }
    }
}

/// Maps a `transport` URI parameter to a transport given the scheme (RFC 3263 §4.1, RFC 4168 §6,
/// RFC 5630 §3.1.4: `transport=tls` is deprecated but accepted).
pub fn transport_from_param(scheme: Scheme, param: &str) -> Result<TransportKind, TargetError> {
    let p = param.to_ascii_lowercase();
    let t = match (scheme, p.as_str()) {
        (Scheme::Sips, "udp") => return Err(TargetError::SipsOverUdp),
        (Scheme::Sip, "udp") => TransportKind::Udp,
        (Scheme::Sip, "tcp") => TransportKind::Tcp,
        (Scheme::Sips, "tcp") => TransportKind::Tls,
        (_, "tls") => TransportKind::Tls,
        (Scheme::Sip, "sctp") => TransportKind::Sctp,
        (Scheme::Sips, "sctp") => TransportKind::TlsSctp,
        (_, "tls-sctp") => TransportKind::TlsSctp,
        (_, "dtls-sctp") => TransportKind::DtlsSctp,
        _ => return Err(TargetError::UnknownTransport(param.to_string())),
    };
    if scheme == Scheme::Sips && !t.is_secure() {
        return Err(TargetError::SipsInsecure(t));
    }
    Ok(t)
}

/// The topmost Via of a request, reduced to what RFC 3263 §5 (and RFC 3261 §18.2.2, RFC 3581)
/// needs to locate the client again when sending a response fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViaTarget {
    /// Via transport (`TLS` means TLS over TCP).
    pub transport: TransportKind,
    /// sent-by host.
    pub host: Host<'static>,
    /// sent-by port, if present.
    pub port: Option<u16>,
    /// `received` parameter (the request's source IP), if present.
    pub received: Option<IpAddr>,
    /// `rport` value (RFC 3581), if present with a value.
    pub rport: Option<u16>,
}

impl ViaTarget {
    /// Builds a Via target from its parts.
    pub fn new(
        transport: TransportKind,
        sent_by_host: &str,
        sent_by_port: Option<u16>,
        received: Option<IpAddr>,
        rport: Option<u16>,
    ) -> Result<ViaTarget, TargetError> {
        if sent_by_port == Some(0) || rport == Some(0) {
            return Err(TargetError::ZeroPort);
        }
        Ok(ViaTarget {
            transport,
            host: parse_host(sent_by_host)?,
            port: sent_by_port,
            received,
            rport,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn host_parsing() {
        assert_eq!(
            parse_host("192.0.2.1"),
            Ok(Host::Ipv4(Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert_eq!(
            parse_host("[2001:db8::1]"),
            Ok(Host::Ipv6("2001:db8::1".parse().unwrap()))
        );
        assert_eq!(
            parse_host("2001:db8::1"),
            Ok(Host::Ipv6("2001:db8::1".parse().unwrap()))
        );
        assert_eq!(
            parse_host("P2.Example.NET."),
            Ok(Host::Name("p2.example.net".into()))
        );
        for bad in [
            "",
            ".",
            "a..b",
            "*.example.com",
            "-a.example.com",
            "a b",
            "[2001:db8::1",
            "[192.0.2.1]",
            "ex@mple.com",
        ] {
            assert!(parse_host(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("{}.com", "a".repeat(64));
        assert!(parse_host(&long).is_err());
    }

    #[test]
    fn transport_params_follow_the_scheme() {
        use Scheme::*;
        assert_eq!(transport_from_param(Sip, "UDP"), Ok(TransportKind::Udp));
        assert_eq!(transport_from_param(Sip, "tcp"), Ok(TransportKind::Tcp));
        assert_eq!(transport_from_param(Sips, "tcp"), Ok(TransportKind::Tls));
        assert_eq!(transport_from_param(Sip, "tls"), Ok(TransportKind::Tls));
        assert_eq!(transport_from_param(Sip, "sctp"), Ok(TransportKind::Sctp));
        assert_eq!(
            transport_from_param(Sips, "sctp"),
            Ok(TransportKind::TlsSctp)
        );
        assert_eq!(
            transport_from_param(Sip, "tls-sctp"),
            Ok(TransportKind::TlsSctp)
        );
        assert_eq!(
            transport_from_param(Sips, "dtls-sctp"),
            Ok(TransportKind::DtlsSctp)
        );
        assert_eq!(
            transport_from_param(Sips, "udp"),
            Err(TargetError::SipsOverUdp)
        );
        assert_eq!(
            transport_from_param(Sip, "ws"),
            Err(TargetError::UnknownTransport("ws".into()))
        );
    }

    #[test]
    fn target_construction() {
        let t = SipTarget::new(Scheme::Sips, "Example.COM", None, None).unwrap();
        assert_eq!(t.aus(), "example.com");
        assert!(SipTarget::new(Scheme::Sip, "example.com", Some(0), None).is_err());
        let t = SipTarget::new(Scheme::Sip, "[2001:db8::5]", Some(5070), Some("tcp")).unwrap();
        assert_eq!(t.aus(), "2001:db8::5");
        assert_eq!(t.transport, Some(TransportKind::Tcp));
        assert_eq!(t.host.to_string(), "[2001:db8::5]");
    }
}
