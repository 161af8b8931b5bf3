//! The alias key: the resolved address {IP, port, transport} (RFC 5923 §2, §5), and which
//! transports may be aliased at all.

use crate::resolve::Target;
use crate::TransportKind;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Default alias port when the Via sent-by has none (RFC 5923 §8.2).
pub const DEFAULT_ALIAS_PORT: u16 = 5061;

/// A resolved address. The transport is part of the key: a TLS row never answers a TLS-SCTP
/// lookup and vice versa. What carries the traffic (a TCP/TLS connection, an SCTP association,
/// a TLS-over-SCTP stream session, a DTLS/SCTP association) is the row's descriptor, not the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AliasKey {
    /// Destination IP address.
    pub ip: IpAddr,
    /// Destination port.
    pub port: u16,
    /// Destination transport.
    pub transport: TransportKind,
}

impl AliasKey {
    /// A key from its parts.
    pub fn new(ip: IpAddr, port: u16, transport: TransportKind) -> AliasKey {
        AliasKey {
            ip,
            port,
            transport,
        }
    }

    /// The socket address of the key.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }
}

impl From<&Target> for AliasKey {
    fn from(t: &Target) -> AliasKey {
        AliasKey::new(t.addr.ip(), t.addr.port(), t.transport)
    }
}

impl fmt::Display for AliasKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.socket_addr(), self.transport.via_token())
    }
}

/// True for the transports whose connections can be aliased: TLS over TCP, TLS over SCTP and
/// DTLS over SCTP. Never plain TCP or SCTP (RFC 5923 §3, §9.3), never UDP.
pub fn is_alias_transport(transport: TransportKind) -> bool {
    transport.is_secure()
}

/// Whether a client should put `;alias` in its Via for a request sent over `transport`
/// (RFC 5923 §8.1): only on the TLS family.
pub fn should_add_alias_param(transport: TransportKind) -> bool {
    is_alias_transport(transport)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TransportKind;

    #[test]
    fn only_tls_family_is_aliased() {
        for t in TransportKind::ALL {
            let expected = matches!(
                t,
                TransportKind::Tls | TransportKind::TlsSctp | TransportKind::DtlsSctp
            );
            assert_eq!(should_add_alias_param(t), expected, "{t}");
            assert_eq!(is_alias_transport(t), expected, "{t}");
        }
    }

    #[test]
    fn key_from_target() {
        let t = Target::new(TransportKind::Tls, "192.0.2.128:5061".parse().unwrap());
        let k = AliasKey::from(&t);
        assert_eq!(k.to_string(), "192.0.2.128:5061/TLS");
    }
}
