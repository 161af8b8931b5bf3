//! The transport token of a Via header (`SIP/2.0/<token>`) and of the URI `transport`
//! parameter.

use std::fmt;

/// A Via transport. Tokens are case-insensitive on the wire; unknown ones are kept as
/// written. `DTLS-SCTP` has no RFC-assigned Via token (RFC-CHECKLIST "Key facts"): it is an
/// `Other` value that the transport layer recognises by configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransportToken {
    /// `UDP`.
    Udp,
    /// `TCP`.
    Tcp,
    /// `TLS` (TLS over TCP).
    Tls,
    /// `SCTP` (RFC 4168).
    Sctp,
    /// `TLS-SCTP` (RFC 4168 §4, TLS over SCTP per RFC 3436).
    TlsSctp,
    /// Any other token (`WS`, `WSS`, `DTLS-SCTP`, ...), as written.
    Other(Box<str>),
}

impl TransportToken {
    /// Parses a Via transport token (case-insensitive). Never fails: unknown tokens
    /// become `Other`.
    pub fn from_token(t: &str) -> TransportToken {
        if t.eq_ignore_ascii_case("UDP") {
            TransportToken::Udp
        } else if t.eq_ignore_ascii_case("TCP") {
            TransportToken::Tcp
        } else if t.eq_ignore_ascii_case("TLS") {
            TransportToken::Tls
        } else if t.eq_ignore_ascii_case("SCTP") {
            TransportToken::Sctp
        } else if t.eq_ignore_ascii_case("TLS-SCTP") {
            TransportToken::TlsSctp
        } else {
            TransportToken::Other(t.into())
        }
    }

    /// The token as sent in a Via (upper case for the known ones).
    pub fn as_str(&self) -> &str {
        match self {
            TransportToken::Udp => "UDP",
            TransportToken::Tcp => "TCP",
            TransportToken::Tls => "TLS",
            TransportToken::Sctp => "SCTP",
            TransportToken::TlsSctp => "TLS-SCTP",
            TransportToken::Other(t) => t,
        }
    }

    /// True for transports that retransmit by themselves (so SIP timers A/E/G do not
    /// run). Only UDP and DTLS over UDP (`DTLS`) are unreliable.
    pub fn is_reliable(&self) -> bool {
        match self {
            TransportToken::Udp => false,
            TransportToken::Other(t) => !t.eq_ignore_ascii_case("DTLS"),
            _ => true,
        }
    }

    /// True for transports secured by TLS or DTLS (`TLS`, `TLS-SCTP`, `DTLS-SCTP`, `WSS`,
    /// `DTLS`). RFC 5923 aliases are only honoured on these (RFC 5923 §9.3).
    pub fn is_tls_family(&self) -> bool {
        match self {
            TransportToken::Tls | TransportToken::TlsSctp => true,
            TransportToken::Other(t) => ["DTLS-SCTP", "WSS", "DTLS"]
                .iter()
                .any(|k| t.eq_ignore_ascii_case(k)),
            _ => false,
        }
    }

    /// True for stream transports framed by Content-Length (everything but UDP and DTLS).
    pub fn is_stream(&self) -> bool {
        self.is_reliable()
    }

    /// Default port for a sent-by without a port: 5061 for the TLS family, else 5060
    /// (RFC 3261 §18.2.2, RFC 4168).
    pub fn default_port(&self) -> u16 {
        if self.is_tls_family() {
            5061
        } else {
            5060
        }
    }
}

impl fmt::Display for TransportToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_tokens_case_insensitive() {
        assert_eq!(TransportToken::from_token("udp"), TransportToken::Udp);
        assert_eq!(TransportToken::from_token("Tcp"), TransportToken::Tcp);
        assert_eq!(TransportToken::from_token("TLS"), TransportToken::Tls);
        assert_eq!(TransportToken::from_token("sctp"), TransportToken::Sctp);
        assert_eq!(
            TransportToken::from_token("tls-SCTP"),
            TransportToken::TlsSctp
        );
    }

    #[test]
    fn unknown_tokens_preserved() {
        let t = TransportToken::from_token("DTLS-SCTP");
        assert_eq!(t, TransportToken::Other("DTLS-SCTP".into()));
        assert_eq!(t.as_str(), "DTLS-SCTP");
        assert!(t.is_tls_family() && t.is_reliable());
        assert_eq!(t.default_port(), 5061);
        let ws = TransportToken::from_token("WS");
        assert_eq!(ws.as_str(), "WS");
        assert!(!ws.is_tls_family());
        assert_eq!(ws.default_port(), 5060);
    }

    #[test]
    fn properties() {
        assert!(!TransportToken::Udp.is_reliable());
        assert!(TransportToken::Sctp.is_reliable());
        assert!(!TransportToken::Sctp.is_tls_family());
        assert!(TransportToken::TlsSctp.is_tls_family());
        assert_eq!(TransportToken::Tls.default_port(), 5061);
        assert_eq!(TransportToken::TlsSctp.default_port(), 5061);
        assert_eq!(TransportToken::Tcp.default_port(), 5060);
        assert!(!TransportToken::from_token("dtls").is_reliable());
    }
}
