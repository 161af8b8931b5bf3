//! Addresses with prefix lengths, restricted to the documentation ranges.

use crate::LabError;
use std::net::IpAddr;

/// An address with its prefix length, e.g. `192.0.2.1/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Parses `addr/prefix` (or a bare address: /24 for IPv4, /64 for IPv6) and refuses anything
    /// outside the documentation ranges.
    pub fn parse_documentation(s: &str) -> Result<Self, LabError> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| LabError::BadCidr(s.to_owned()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .parse::<u8>()
                .map_err(|_| LabError::BadCidr(s.to_owned()))?,
            None if addr.is_ipv4() => 24,
            None => 64,
        };
        if prefix > max {
            return Err(LabError::BadCidr(s.to_owned()));
        }
        if !is_documentation_addr(addr) {
            return Err(LabError::NotDocumentation(s.to_owned()));
        }
        Ok(Self { addr, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// True for 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32 (RFC 5737, RFC 3849).
pub fn is_documentation_addr(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            matches!(
                (o[0], o[1], o[2]),
                (192, 0, 2) | (198, 51, 100) | (203, 0, 113)
            )
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            s[0] == 0x2001 && s[1] == 0x0db8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documentation_ranges_only() {
        assert!(Cidr::parse_documentation("192.0.2.1/24").is_ok());
        assert!(Cidr::parse_documentation("198.51.100.7").is_ok());
        assert!(Cidr::parse_documentation("203.0.113.9/32").is_ok());
        assert!(Cidr::parse_documentation("2001:db8::1/64").is_ok());
        for bad in [
            "10.0.0.1/8",
            "192.168.1.1",
            "8.8.8.8",
            "2001:db9::1",
            "127.0.0.1",
        ] {
            assert!(matches!(
                Cidr::parse_documentation(bad),
                Err(LabError::NotDocumentation(_))
            ));
        }
        assert!(matches!(
            Cidr::parse_documentation("192.0.2.1/33"),
            Err(LabError::BadCidr(_))
        ));
    }
}
