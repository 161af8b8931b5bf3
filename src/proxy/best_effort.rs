//! Best-effort TLS (RFC 5630 §5.3: "Proxies SHOULD transport requests using a SIP URI over
//! TLS when it is possible to set up a TLS connection"), for a `sip:` request whose hop has
//! it on. The Request-URI stays `sip:` (§5.3 forbids the upgrade), our Via says `TLS`, and
//! `transport=tls` is never written; only the order of the targets changes:
//!
//! - TLS-family targets RFC 3263 gave (NAPTR `SIPS+D2T`/`SIPS+D2S`, which §4.1 keeps for a
//!   SIP URI when the client supports TLS; `_sips` SRV, which the driver also asks for such
//!   a hop) go before the plain ones, in their own order.
//! - Without any: a TCP target at 5060 gets a TLS attempt at 5061 on the same address just
//!   before it (the RFC 3261 §19.1.2 default ports; another port says nothing of where TLS
//!   is, so no attempt), checked against the URI's host when it is a name.
//!
//! The plain targets stay, so a refused connection or a failed handshake moves on to them
//! (RFC 3263 §4.3 failover).

use std::net::SocketAddr;

use crate::{Target, TransportKind};

/// `targets` in best-effort TLS order; `aus`: the identity a made-up TLS target is checked
/// against (the URI's host name), `None` for a numeric one; `make_up`: TLS attempts may be
/// added (there is a TLS listener).
pub(crate) fn order(targets: Vec<Target>, aus: Option<&str>, make_up: bool) -> Vec<Target> {
    let (secure, plain): (Vec<Target>, Vec<Target>) =
        targets.into_iter().partition(|t| t.transport.is_secure());
    if !secure.is_empty() || !make_up {
        return secure.into_iter().chain(plain).collect();
    }
    let mut out = Vec::with_capacity(plain.len() * 2);
    for t in plain {
        if t.transport == TransportKind::Tcp && t.addr.port() == 5060 {
            let mut tls = Target::new(TransportKind::Tls, SocketAddr::new(t.addr.ip(), 5061));
            if let Some(name) = aus {
                tls = tls.with_server_name(name);
            }
            if !out.contains(&tls) {
                out.push(tls);
            }
        }
        out.push(t);
    }
    out
}
