//! Where to send: what RFC 3263 server location hands back (a transport, an address) and
//! what the transport layer connects to (the same, plus the TLS name and reuse scope).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::TransportKind;

/// One place to try: a transport, an IP address and port and, for the TLS family, the name
/// to verify the server against and send as SNI (RFC 5922 §7.3: the domain of the URI being
/// resolved, never the SRV target) and the reuse scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Target {
    /// Transport.
    pub transport: TransportKind,
    /// Destination address and port.
    pub addr: SocketAddr,
    /// TLS server name (defaults to the IP address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<Arc<str>>,
    /// Reuse scope: connections opened for different scopes are never shared (RFC 5923
    /// §9.3: a connection opened on behalf of one local domain never carries another's
    /// requests). `None` is the default scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Arc<str>>,
    /// SCTP multihoming: the peer's other addresses, tried by the kernel when `addr` fails
    /// (`sctp_connectx`). Ignored by other transports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_addrs: Vec<SocketAddr>,
    /// The local address to leave from: a relay's chosen listener, whose address its Via and
    /// Record-Route carry (a gateway between networks must send from the side facing the
    /// peer). `None`: the kernel's routing table decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<IpAddr>,
}

impl Target {
    /// A target without a server name or scope.
    pub fn new(transport: TransportKind, addr: SocketAddr) -> Self {
        Target {
            transport,
            addr,
            server_name: None,
            scope: None,
            extra_addrs: Vec::new(),
            source: None,
        }
    }

    /// The same target with more addresses of the peer (SCTP multihoming).
    pub fn with_extra_addrs(mut self, addrs: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.extra_addrs.extend(addrs);
        self
    }

    /// The same target with a TLS server name.
    pub fn with_server_name(mut self, name: &str) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// The same target, leaving from the local address `ip` (when one of ours is bound to it).
    pub fn with_source(mut self, ip: IpAddr) -> Self {
        self.source = Some(ip);
        self
    }

    /// The same target in a reuse scope (a local domain, RFC 5923 §9.3).
    pub fn with_scope(mut self, scope: &str) -> Self {
        self.scope = Some(scope.into());
        self
    }
}
