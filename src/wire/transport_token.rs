//! The transport token of a Via header (`SIP/2.0/<token>`) and of the URI `transport`
//! parameter: one of the six [`TransportKind`]s, or a token sipwire does not carry (`WS`,
//! `WSS`, `DTLS`, ...) kept as written.

use std::fmt;

use crate::TransportKind;

/// A Via transport. Tokens are case-insensitive on the wire; unknown ones are kept as
/// written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransportToken {
    /// One of the transports sipwire knows (`UDP`, `TCP`, `TLS`, `SCTP`, `TLS-SCTP`,
    /// `DTLS-SCTP`).
    Known(TransportKind),
    /// Any other token (`WS`, `WSS`, `DTLS`, ...), as written.
    Other(Box<str>),
}

impl From<TransportKind> for TransportToken {
    fn from(k: TransportKind) -> Self {
        TransportToken::Known(k)
    }
}

impl TransportToken {
    /// Parses a Via transport token (case-insensitive). Never fails: unknown tokens
    /// become `Other`.
    pub fn from_token(t: &str) -> TransportToken {
        match TransportKind::from_via_token(t) {
            Some(k) => TransportToken::Known(k),
            None => TransportToken::Other(t.into()),
        }
    }

    /// The transport, when sipwire knows it.
    pub fn kind(&self) -> Option<TransportKind> {
        match self {
            TransportToken::Known(k) => Some(*k),
            TransportToken::Other(_) => None,
        }
    }

    /// The token as sent in a Via (upper case for the known ones).
    pub fn as_str(&self) -> &str {
        match self {
            TransportToken::Known(k) => k.via_token(),
            TransportToken::Other(t) => t,
        }
    }

    /// True for transports that retransmit by themselves (so SIP timers A/E/G do not
    /// run). Of the unknown tokens, only DTLS over UDP (`DTLS`) is unreliable.
    pub fn is_reliable(&self) -> bool {
        match self {
            TransportToken::Known(k) => k.is_reliable(),
            TransportToken::Other(t) => !t.eq_ignore_ascii_case("DTLS"),
        }
    }

    /// True for transports secured by TLS or DTLS (`TLS`, `TLS-SCTP`, `DTLS-SCTP`, and the
    /// unknown `WSS`, `DTLS`). RFC 5923 aliases are only honoured on these (RFC 5923 §9.3).
    pub fn is_secure(&self) -> bool {
        match self {
            TransportToken::Known(k) => k.is_secure(),
            TransportToken::Other(t) => ["WSS", "DTLS"].iter().any(|k| t.eq_ignore_ascii_case(k)),
        }
    }

    /// Default port for a sent-by without a port: 5061 for the secure transports, else
    /// 5060 (RFC 3261 §18.2.2, RFC 4168).
    pub fn default_port(&self) -> u16 {
        if self.is_secure() {
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

    fn known(k: TransportKind) -> TransportToken {
        TransportToken::Known(k)
    }

    #[test]
    fn known_tokens_case_insensitive() {
        let t = TransportToken::from_token;
        assert_eq!(t("udp"), known(TransportKind::Udp));
        assert_eq!(t("Tcp"), known(TransportKind::Tcp));
        assert_eq!(t("TLS"), known(TransportKind::Tls));
        assert_eq!(t("sctp"), known(TransportKind::Sctp));
        assert_eq!(t("tls-SCTP"), known(TransportKind::TlsSctp));
        assert_eq!(t("dtls-sctp"), known(TransportKind::DtlsSctp));
        assert_eq!(t("dtls-sctp").as_str(), "DTLS-SCTP");
    }

    #[test]
    fn unknown_tokens_preserved() {
        let ws = TransportToken::from_token("WS");
        assert_eq!(ws, TransportToken::Other("WS".into()));
        assert_eq!(ws.as_str(), "WS");
        assert!(!ws.is_secure() && ws.kind().is_none());
        assert_eq!(ws.default_port(), 5060);
        let wss = TransportToken::from_token("wss");
        assert!(wss.is_secure());
        assert_eq!(wss.default_port(), 5061);
    }

    #[test]
    fn properties() {
        assert!(!known(TransportKind::Udp).is_reliable());
        assert!(known(TransportKind::Sctp).is_reliable());
        assert!(!known(TransportKind::Sctp).is_secure());
        assert!(known(TransportKind::TlsSctp).is_secure());
        assert!(known(TransportKind::DtlsSctp).is_secure());
        assert_eq!(known(TransportKind::Tls).default_port(), 5061);
        assert_eq!(known(TransportKind::TlsSctp).default_port(), 5061);
        assert_eq!(known(TransportKind::Tcp).default_port(), 5060);
        assert!(!TransportToken::from_token("dtls").is_reliable());
    }
}
