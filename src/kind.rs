//! The six SIP transports, named once for every layer: the wire codec's Via token, RFC 3263's
//! NAPTR services and SRV labels, the alias key, the transport drivers, configuration and
//! metrics all speak [`TransportKind`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A SIP transport.
///
/// `DtlsSctp` is a non-standard hop (no RFC defines a Via token, NAPTR service or SRV name for
/// SIP over DTLS over SCTP, RFC 6083): its Via token `DTLS-SCTP` is this project's, and it is
/// only reachable through an explicit `transport=dtls-sctp` URI parameter, never through NAPTR
/// or SRV.
///
/// Serialized (configuration, JSON dumps) by its configuration name: `udp`, `tcp`, `tls`,
/// `sctp`, `tls-sctp`, `dtls-sctp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransportKind {
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
    /// SIP over DTLS over SCTP (RFC 6083; see the type docs).
    DtlsSctp,
}

/// A name that is not one of the six transports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown transport {0:?} (expected udp, tcp, tls, sctp, tls-sctp or dtls-sctp)")]
pub struct UnknownTransport(pub String);

impl TransportKind {
    /// Every kind, in declaration order (for metrics and tables).
    pub const ALL: [TransportKind; 6] = [
        TransportKind::Udp,
        TransportKind::Tcp,
        TransportKind::Tls,
        TransportKind::Sctp,
        TransportKind::TlsSctp,
        TransportKind::DtlsSctp,
    ];

    /// Lower-case name used in logs, metrics labels and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Udp => "udp",
            TransportKind::Tcp => "tcp",
            TransportKind::Tls => "tls",
            TransportKind::Sctp => "sctp",
            TransportKind::TlsSctp => "tls-sctp",
            TransportKind::DtlsSctp => "dtls-sctp",
        }
    }

    /// The Via transport token (RFC 3261 §20.42, RFC 4168 §4), upper case.
    pub fn via_token(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
            TransportKind::Sctp => "SCTP",
            TransportKind::TlsSctp => "TLS-SCTP",
            TransportKind::DtlsSctp => "DTLS-SCTP",
        }
    }

    /// The kind a Via token or `transport` URI parameter names (case-insensitive).
    pub fn from_via_token(token: &str) -> Option<TransportKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.via_token().eq_ignore_ascii_case(token))
    }

    /// The NAPTR service field (RFC 3263 §4.1, RFC 4168 §6), if the transport has one.
    pub fn naptr_service(self) -> Option<&'static str> {
        match self {
            TransportKind::Udp => Some("SIP+D2U"),
            TransportKind::Tcp => Some("SIP+D2T"),
            TransportKind::Sctp => Some("SIP+D2S"),
            TransportKind::Tls => Some("SIPS+D2T"),
            TransportKind::TlsSctp => Some("SIPS+D2S"),
            TransportKind::DtlsSctp => None,
        }
    }

    /// The kind a NAPTR service field names (case-insensitive).
    pub fn from_naptr_service(service: &str) -> Option<TransportKind> {
        Self::ALL.into_iter().find(|k| {
            k.naptr_service()
                .is_some_and(|s| s.eq_ignore_ascii_case(service))
        })
    }

    /// The SRV service and protocol labels (`_sip._udp`, `_sips._tcp`, ...), if any. The TLS
    /// family uses `_sips` (RFC 3263 §4.2, also for a SIP URI that wants TLS).
    pub fn srv_prefix(self) -> Option<&'static str> {
        match self {
            TransportKind::Udp => Some("_sip._udp"),
            TransportKind::Tcp => Some("_sip._tcp"),
            TransportKind::Sctp => Some("_sip._sctp"),
            TransportKind::Tls => Some("_sips._tcp"),
            TransportKind::TlsSctp => Some("_sips._sctp"),
            TransportKind::DtlsSctp => None,
        }
    }

    /// The SRV name to query for `domain` (`_sips._tcp.example.com`), if the kind has one.
    pub fn srv_name(self, domain: &str) -> Option<String> {
        self.srv_prefix().map(|p| format!("{p}.{domain}"))
    }

    /// True for transports that deliver reliably (all but UDP): SIP retransmission timers do
    /// not run and RFC 5626 CRLF keep-alives apply.
    pub fn is_reliable(self) -> bool {
        self != TransportKind::Udp
    }

    /// True for transports secured by TLS or DTLS: the only ones a SIPS URI may use
    /// (RFC 5630) and the only ones eligible for RFC 5923 connection reuse.
    pub fn is_secure(self) -> bool {
        matches!(
            self,
            TransportKind::Tls | TransportKind::TlsSctp | TransportKind::DtlsSctp
        )
    }

    /// True when the socket keeps message boundaries (UDP datagrams, SCTP user messages,
    /// DTLS records), as opposed to a byte stream (TCP, TLS records over TCP or an SCTP
    /// stream pair).
    pub fn is_message_oriented(self) -> bool {
        matches!(
            self,
            TransportKind::Udp | TransportKind::Sctp | TransportKind::DtlsSctp
        )
    }

    /// True when SIP messages are framed by Content-Length (everything but UDP: SCTP user
    /// messages may hold part of a SIP message or several).
    pub fn is_stream(self) -> bool {
        self != TransportKind::Udp
    }

    /// True for the SCTP family.
    pub fn is_sctp(self) -> bool {
        matches!(
            self,
            TransportKind::Sctp | TransportKind::TlsSctp | TransportKind::DtlsSctp
        )
    }

    /// Default port (RFC 3261 §19.1.2, RFC 4168): 5061 for the secure kinds, else 5060.
    pub fn default_port(self) -> u16 {
        if self.is_secure() {
            5061
        } else {
            5060
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TransportKind {
    type Err = UnknownTransport;

    /// Parses a configuration name or a Via token, case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .or_else(|| Self::from_via_token(s))
            .ok_or_else(|| UnknownTransport(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties() {
        assert!(!TransportKind::Udp.is_reliable());
        assert!(TransportKind::Tcp.is_stream());
        assert!(TransportKind::Tls.is_secure());
        assert!(!TransportKind::Sctp.is_secure());
        assert!(TransportKind::Sctp.is_message_oriented() && TransportKind::Sctp.is_stream());
        assert!(!TransportKind::TlsSctp.is_message_oriented());
        assert!(TransportKind::TlsSctp.is_sctp() && !TransportKind::Tls.is_sctp());
        for k in TransportKind::ALL {
            let want = if k.is_secure() { 5061 } else { 5060 };
            assert_eq!(k.default_port(), want, "{k}");
        }
    }

    #[test]
    fn names_round_trip() {
        for k in TransportKind::ALL {
            assert_eq!(TransportKind::from_via_token(k.via_token()), Some(k));
            assert_eq!(k.as_str().parse::<TransportKind>(), Ok(k));
            assert_eq!(k.via_token().parse::<TransportKind>(), Ok(k));
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert_eq!(serde_json::from_str::<TransportKind>(&json).unwrap(), k);
        }
        assert_eq!(
            TransportKind::from_via_token("tls-sctp"),
            Some(TransportKind::TlsSctp)
        );
        assert_eq!(TransportKind::from_via_token("WSS"), None);
        assert!("ws".parse::<TransportKind>().is_err());
    }

    #[test]
    fn naptr_services_round_trip() {
        for k in TransportKind::ALL {
            if let Some(s) = k.naptr_service() {
                assert_eq!(TransportKind::from_naptr_service(s), Some(k));
                assert_eq!(
                    TransportKind::from_naptr_service(&s.to_ascii_lowercase()),
                    Some(k)
                );
            }
        }
        assert_eq!(TransportKind::from_naptr_service("SIPS+D2U"), None);
        assert_eq!(TransportKind::from_naptr_service("E2U+sip"), None);
    }

    #[test]
    fn srv_names() {
        let srv = |k: TransportKind| k.srv_name("example.net");
        assert_eq!(
            srv(TransportKind::Tls).as_deref(),
            Some("_sips._tcp.example.net")
        );
        assert_eq!(
            srv(TransportKind::TlsSctp).as_deref(),
            Some("_sips._sctp.example.net")
        );
        assert_eq!(
            srv(TransportKind::Udp).as_deref(),
            Some("_sip._udp.example.net")
        );
        assert_eq!(srv(TransportKind::DtlsSctp), None);
    }
}
