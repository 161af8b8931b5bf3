//! Address prefixes (CIDR): allow-list entries and the grouping of IPv6 sources.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address prefix such as `10.0.0.0/8` or `2001:db8::/32`; a bare address is a /32 or
/// /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

/// Why a prefix did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// The address part is not an IP address.
    #[error("{0:?} is not an IP address")]
    Address(String),
    /// The length is not a number within the family's bits.
    #[error("prefix length {0:?} is not 0..={1}")]
    Length(String, u8),
}

/// IPv4-mapped IPv6 addresses as their IPv4 address: a dual-stack socket must not give a
/// source two identities.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `ip` with every bit after the first `len` cleared.
pub(crate) fn masked(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & mask))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & mask))
        }
    }
}

impl IpPrefix {
    /// The prefix of `len` bits of `addr` (the length is capped at the family's bits).
    pub fn new(addr: IpAddr, len: u8) -> IpPrefix {
        // An IPv4-mapped prefix (::ffff:a.b.c.d/n, n >= 96) is the IPv4 prefix /(n - 96).
        let len = match addr {
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => len.saturating_sub(96),
            _ => len,
        };
        let addr = canonical(addr);
        let len = len.min(if addr.is_ipv4() { 32 } else { 128 });
        IpPrefix {
            addr: masked(addr, len),
            len,
        }
    }

    /// True when `ip` lies within the prefix (IPv4-mapped IPv6 addresses match IPv4
    /// prefixes).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.addr.is_ipv4() && masked(ip, self.len) == self.addr
    }
}

impl FromStr for IpPrefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<IpPrefix, PrefixError> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| PrefixError::Address(a.to_owned()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l {
            None => max,
            Some(l) => match l.trim().parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(PrefixError::Length(l.to_owned(), max)),
            },
        };
        Ok(IpPrefix::new(addr, len))
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_contains() {
        let p: IpPrefix = "10.1.2.3/8".parse().unwrap();
        assert_eq!(p.to_string(), "10.0.0.0/8");
        assert!(p.contains(ip("10.200.0.1")));
        assert!(p.contains(ip("::ffff:10.9.9.9")));
        assert!(!p.contains(ip("11.0.0.1")));
        assert!(!p.contains(ip("::a00:1")));
        let one: IpPrefix = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: IpPrefix = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        let all: IpPrefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.1")));
        let mapped: IpPrefix = "::ffff:192.0.2.0/120".parse().unwrap();
        assert_eq!(mapped.to_string(), "192.0.2.0/24");
    }

    #[test]
    fn errors() {
        assert!(matches!(
            "10.0.0.0/33".parse::<IpPrefix>(),
            Err(PrefixError::Length(_, 32))
        ));
        assert!(matches!(
            "2001:db8::/129".parse::<IpPrefix>(),
            Err(PrefixError::Length(_, 128))
        ));
        assert!(matches!(
            "example.com/8".parse::<IpPrefix>(),
            Err(PrefixError::Address(_))
        ));
        assert!("10.0.0.0/x".parse::<IpPrefix>().is_err());
    }

    #[test]
    fn masks() {
        assert_eq!(masked(ip("2001:db8:1:2:3:4:5:6"), 64), ip("2001:db8:1:2::"));
        assert_eq!(masked(ip("192.0.2.77"), 24), ip("192.0.2.0"));
        assert_eq!(masked(ip("192.0.2.77"), 0), ip("0.0.0.0"));
        assert_eq!(masked(ip("192.0.2.77"), 32), ip("192.0.2.77"));
    }
}
