//! The SIP transports that server location can select.
//!
//! Kept independent of the wire codec's Via token for now; the lead unifies them later.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A SIP transport, as chosen by RFC 3263 server location.
///
/// `DtlsSctp` is a non-standard hop (no RFC defines a Via token, NAPTR service or SRV name for
/// DTLS over SCTP, RFC 6083): it is only reachable through an explicit `transport=dtls-sctp` URI
/// parameter, never through NAPTR or SRV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Transport {
    /// SIP over UDP.
    Udp,
    /// SIP over TCP.
    Tcp,
    /// SIP over TLS over TCP (Via token `TLS`).
    Tls,
    /// SIP over SCTP (RFC 4168).
    Sctp,
    /// SIP over TLS over SCTP (RFC 4168 + RFC 3436, Via token `TLS-SCTP`).
    TlsSctp,
    /// SIP over DTLS over SCTP (RFC 6083; non-standard for SIP, see the type docs).
    DtlsSctp,
}

/// Every transport, in a stable order.
pub const ALL_TRANSPORTS: [Transport; 6] = [
    Transport::Udp,
    Transport::Tcp,
    Transport::Tls,
    Transport::Sctp,
    Transport::TlsSctp,
    Transport::DtlsSctp,
];

impl Transport {
    /// True for the transports secured by TLS or DTLS (the only ones eligible for RFC 5923 aliases
    /// and the only ones a SIPS URI may use).
    pub fn is_secure(self) -> bool {
        matches!(
            self,
            Transport::Tls | Transport::TlsSctp | Transport::DtlsSctp
        )
    }

    /// True for connection-oriented (reliable) transports.
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// Default port (RFC 3261 §19.1.2, RFC 4168): 5061 for the TLS family, 5060 otherwise.
    pub fn default_port(self) -> u16 {
        if self.is_secure() {
            5061
        } else {
            5060
        }
    }

    /// The NAPTR service field (RFC 3263 §4.1, RFC 4168 §6), if the transport has one.
    pub fn naptr_service(self) -> Option<&'static str> {
        match self {
            Transport::Udp => Some("SIP+D2U"),
            Transport::Tcp => Some("SIP+D2T"),
            Transport::Sctp => Some("SIP+D2S"),
            Transport::Tls => Some("SIPS+D2T"),
            Transport::TlsSctp => Some("SIPS+D2S"),
            Transport::DtlsSctp => None,
        }
    }

    /// Parses a NAPTR service field (case-insensitive).
    pub fn from_naptr_service(service: &str) -> Option<Transport> {
        [
            Transport::Udp,
            Transport::Tcp,
            Transport::Sctp,
            Transport::Tls,
            Transport::TlsSctp,
        ]
        .into_iter()
        .find(|t| {
            t.naptr_service()
                .is_some_and(|s| s.eq_ignore_ascii_case(service))
        })
    }

    /// The SRV service and protocol labels (`_sip._udp`, `_sips._tcp`, ...), if any.
    /// TLS-family transports use `_sips` (RFC 3263 §4.2 also for a SIP URI that wants TLS).
    pub fn srv_prefix(self) -> Option<&'static str> {
        match self {
            Transport::Udp => Some("_sip._udp"),
            Transport::Tcp => Some("_sip._tcp"),
            Transport::Sctp => Some("_sip._sctp"),
            Transport::Tls => Some("_sips._tcp"),
            Transport::TlsSctp => Some("_sips._sctp"),
            Transport::DtlsSctp => None,
        }
    }

    /// The SRV name to query for `domain` (`_sips._tcp.example.com`), if the transport has one.
    pub fn srv_name(self, domain: &str) -> Option<String> {
        self.srv_prefix().map(|p| format!("{p}.{domain}"))
    }

    /// The Via transport token (RFC 3261 §20.42, RFC 4168 §4; `DTLS-SCTP` is the project default
    /// for the non-standard hop).
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::TlsSctp => "TLS-SCTP",
            Transport::DtlsSctp => "DTLS-SCTP",
        }
    }

    /// Parses a Via transport token (case-insensitive).
    pub fn from_via_token(token: &str) -> Option<Transport> {
        ALL_TRANSPORTS
            .into_iter()
            .find(|t| t.via_token().eq_ignore_ascii_case(token))
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.via_token())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ports() {
        assert_eq!(Transport::Udp.default_port(), 5060);
        assert_eq!(Transport::Tcp.default_port(), 5060);
        assert_eq!(Transport::Sctp.default_port(), 5060);
        assert_eq!(Transport::Tls.default_port(), 5061);
        assert_eq!(Transport::TlsSctp.default_port(), 5061);
        assert_eq!(Transport::DtlsSctp.default_port(), 5061);
    }

    #[test]
    fn naptr_services_round_trip() {
        for t in ALL_TRANSPORTS {
            if let Some(s) = t.naptr_service() {
                assert_eq!(Transport::from_naptr_service(s), Some(t));
                assert_eq!(
                    Transport::from_naptr_service(&s.to_ascii_lowercase()),
                    Some(t)
                );
            }
        }
        assert_eq!(Transport::from_naptr_service("SIPS+D2U"), None);
        assert_eq!(Transport::from_naptr_service("E2U+sip"), None);
    }

    #[test]
    fn srv_names() {
        assert_eq!(
            Transport::Tls.srv_name("example.net").as_deref(),
            Some("_sips._tcp.example.net")
        );
        assert_eq!(
            Transport::TlsSctp.srv_name("example.net").as_deref(),
            Some("_sips._sctp.example.net")
        );
        assert_eq!(
            Transport::Udp.srv_name("example.net").as_deref(),
            Some("_sip._udp.example.net")
        );
        assert_eq!(Transport::DtlsSctp.srv_name("example.net"), None);
    }

    #[test]
    fn via_tokens_round_trip() {
        for t in ALL_TRANSPORTS {
            assert_eq!(Transport::from_via_token(t.via_token()), Some(t));
        }
        assert_eq!(
            Transport::from_via_token("tls-sctp"),
            Some(Transport::TlsSctp)
        );
        assert_eq!(Transport::from_via_token("WSS"), None);
    }
}
