//! The transports a flow can run over.

use std::fmt;

use crate::wire::TransportToken;

/// A transport protocol. SCTP-family variants are present from the start so that code
/// matching on the kind already accounts for them; their drivers come from `sipwire-sys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransportKind {
    /// SIP over UDP.
    Udp,
    /// SIP over TCP.
    Tcp,
    /// SIP over TLS over TCP.
    Tls,
    /// SIP over SCTP (RFC 4168).
    Sctp,
    /// SIP over TLS over SCTP (RFC 3436, RFC 4168).
    TlsSctp,
    /// SIP over DTLS over SCTP (RFC 6083; non-standard Via token `DTLS-SCTP`).
    DtlsSctp,
}

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

    /// The Via transport token.
    pub fn via_token(self) -> TransportToken {
        match self {
            TransportKind::Udp => TransportToken::Udp,
            TransportKind::Tcp => TransportToken::Tcp,
            TransportKind::Tls => TransportToken::Tls,
            TransportKind::Sctp => TransportToken::Sctp,
            TransportKind::TlsSctp => TransportToken::TlsSctp,
            TransportKind::DtlsSctp => TransportToken::Other("DTLS-SCTP".into()),
        }
    }

    /// The kind named by a Via token, if sipwire knows it.
    pub fn from_token(t: &TransportToken) -> Option<TransportKind> {
        match t {
            TransportToken::Udp => Some(TransportKind::Udp),
            TransportToken::Tcp => Some(TransportKind::Tcp),
            TransportToken::Tls => Some(TransportKind::Tls),
            TransportToken::Sctp => Some(TransportKind::Sctp),
            TransportToken::TlsSctp => Some(TransportKind::TlsSctp),
            TransportToken::Other(o) if o.eq_ignore_ascii_case("DTLS-SCTP") => {
                Some(TransportKind::DtlsSctp)
            }
            TransportToken::Other(_) => None,
        }
    }

    /// True for transports that deliver messages reliably (everything but UDP): SIP
    /// retransmission timers do not run and RFC 5626 CRLF keep-alives apply.
    pub fn is_reliable(self) -> bool {
        self != TransportKind::Udp
    }

    /// True for TLS and DTLS transports (the only ones eligible for RFC 5923 reuse).
    pub fn is_tls_family(self) -> bool {
        matches!(
            self,
            TransportKind::Tls | TransportKind::TlsSctp | TransportKind::DtlsSctp
        )
    }

    /// True when messages are framed by Content-Length on a byte stream (TCP, TLS and the
    /// SCTP family, whose user messages may hold several SIP messages or part of one).
    pub fn is_stream(self) -> bool {
        self != TransportKind::Udp
    }

    /// Default port: 5061 for the TLS family, else 5060.
    pub fn default_port(self) -> u16 {
        if self.is_tls_family() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for k in TransportKind::ALL {
            assert_eq!(TransportKind::from_token(&k.via_token()), Some(k));
        }
        assert_eq!(
            TransportKind::from_token(&TransportToken::Other("WS".into())),
            None
        );
    }

    #[test]
    fn properties() {
        assert!(!TransportKind::Udp.is_reliable());
        assert!(TransportKind::Tcp.is_stream());
        assert!(TransportKind::Tls.is_tls_family());
        assert!(!TransportKind::Sctp.is_tls_family());
        assert_eq!(TransportKind::DtlsSctp.default_port(), 5061);
        assert_eq!(TransportKind::Tcp.default_port(), 5060);
    }
}
