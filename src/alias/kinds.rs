//! Conversions between the resolver's [`Transport`] (what RFC 3263 chose, the alias key) and the
//! transport layer's [`TransportKind`] (what carries the bytes). Both name the same six
//! transports; the wire codec's Via token maps to them too.

use crate::resolve::Transport;
use crate::transport::TransportKind;
use crate::wire::TransportToken;

/// The transport layer's kind for a resolved transport.
pub fn kind_of(t: Transport) -> TransportKind {
    match t {
        Transport::Udp => TransportKind::Udp,
        Transport::Tcp => TransportKind::Tcp,
        Transport::Tls => TransportKind::Tls,
        Transport::Sctp => TransportKind::Sctp,
        Transport::TlsSctp => TransportKind::TlsSctp,
        Transport::DtlsSctp => TransportKind::DtlsSctp,
    }
}

/// The resolver's transport for a flow kind.
pub fn transport_of(k: TransportKind) -> Transport {
    match k {
        TransportKind::Udp => Transport::Udp,
        TransportKind::Tcp => Transport::Tcp,
        TransportKind::Tls => Transport::Tls,
        TransportKind::Sctp => Transport::Sctp,
        TransportKind::TlsSctp => Transport::TlsSctp,
        TransportKind::DtlsSctp => Transport::DtlsSctp,
    }
}

/// The transport a Via token names, if sipwire knows it.
pub fn transport_of_token(t: &TransportToken) -> Option<Transport> {
    TransportKind::from_token(t).map(transport_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for k in TransportKind::ALL {
            assert_eq!(kind_of(transport_of(k)), k);
            assert_eq!(transport_of_token(&k.via_token()), Some(transport_of(k)));
            assert_eq!(transport_of(k).is_secure(), k.is_tls_family());
        }
    }
}
