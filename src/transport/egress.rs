//! Which local address a packet to a destination leaves from. A gateway between an access and
//! a core network has a listener on each; a datagram or connection to a core host must leave
//! from the core listener, or the host's answer goes to an address it has no route to. The
//! caller may say (a relay names the listener its Via and Record-Route carry: `Target::source`);
//! otherwise the kernel's routing table is asked, once per destination.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Mutex;

/// Destinations remembered; the cache starts afresh when full (routes rarely change, and a
/// miss costs three system calls).
const CACHE_LIMIT: usize = 4096;

/// The kernel's choice of source address per destination, cached.
#[derive(Debug, Default)]
pub(crate) struct Egress {
    cache: Mutex<HashMap<IpAddr, Option<IpAddr>>>,
}

impl Egress {
    /// The source address the kernel would use toward `dest`, or `None` when it has no route
    /// (or cannot say).
    pub(crate) fn source_for(&self, dest: IpAddr) -> Option<IpAddr> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(src) = cache.get(&dest) {
            return *src;
        }
        let src = kernel_source(dest);
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(dest, src);
        src
    }
}

/// Asks the routing table: a UDP socket "connected" to `dest` sends nothing but gets the
/// source address a packet to `dest` would carry.
fn kernel_source(dest: IpAddr) -> Option<IpAddr> {
    let any = match dest {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let probe = UdpSocket::bind(SocketAddr::new(any, 0)).ok()?;
    probe.connect(SocketAddr::new(dest, 9)).ok()?;
    Some(probe.local_addr().ok()?.ip())
}

/// Of the local addresses `locals`, the index of the one to leave from toward `dest`: the one
/// bound to `source` (the caller's choice, else the kernel's), else a wildcard of the same
/// family; `None` when neither exists (the caller falls back to its own rule).
pub(crate) fn pick<'a>(
    locals: impl Iterator<Item = &'a SocketAddr> + Clone,
    dest: SocketAddr,
    source: Option<IpAddr>,
) -> Option<usize> {
    let family = |l: &SocketAddr| l.is_ipv4() == dest.is_ipv4();
    let src = source?;
    locals
        .clone()
        .position(|l| family(l) && l.ip() == src)
        .or_else(|| {
            locals
                .clone()
                .position(|l| family(l) && l.ip().is_unspecified())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn picks_the_local_address_bound_to_the_source() {
        let locals = [
            a("192.0.2.1:5060"),
            a("198.51.100.1:5060"),
            a("[2001:db8::1]:5060"),
        ];
        let core = Some("198.51.100.1".parse().unwrap());
        assert_eq!(pick(locals.iter(), a("198.51.100.12:5070"), core), Some(1));
        // Another family's address is never picked, even if it were named.
        assert_eq!(pick(locals.iter(), a("[2001:db8::9]:5060"), core), None);
        assert_eq!(pick(locals.iter(), a("198.51.100.12:5070"), None), None);
    }

    #[test]
    fn a_wildcard_listener_serves_any_source_of_its_family() {
        let locals = [a("192.0.2.1:5060"), a("0.0.0.0:5062")];
        let other = Some("203.0.113.1".parse().unwrap());
        assert_eq!(pick(locals.iter(), a("203.0.113.9:5060"), other), Some(1));
    }

    #[test]
    fn the_kernel_routes_loopback_from_loopback() {
        let e = Egress::default();
        let src = e.source_for("127.0.0.1".parse().unwrap());
        assert_eq!(src, Some("127.0.0.1".parse().unwrap()));
        // Cached: the same answer again.
        assert_eq!(e.source_for("127.0.0.1".parse().unwrap()), src);
    }
}
