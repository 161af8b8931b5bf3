//! Hosts as they appear in URIs and in Via sent-by: a name, an IPv4 address or an IPv6
//! reference (`[2001:db8::1]`).

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// A host from a URI or a Via header: borrowed from the message when parsed, owned
/// (`Host<'static>`) when kept, e.g. by RFC 3263 server location.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Host<'a> {
    /// A domain name, as written (compare case-insensitively).
    Name(Cow<'a, str>),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (written as a reference, in brackets).
    Ipv6(Ipv6Addr),
}

/// `a.b.c.d`, each part 0–255 in decimal without leading zeros (what
/// `Ipv4Addr::from_str` accepts), read without the formatting machinery: every Via
/// sent-by and most URIs carry one, read several times per message.
fn dotted_quad(s: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split(|&b| b == b'.');
    for o in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || (part.len() > 1 && part.first() == Some(&b'0')) {
            return None;
        }
        let mut v = 0u16;
        for &d in part {
            if !d.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u16::from(d - b'0');
        }
        *o = u8::try_from(v).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

impl<'a> Host<'a> {
    /// Parses a host: `[v6]`, dotted IPv4, or a host name (letters, digits, `-`, `.`, and
    /// `_` which is tolerated although RFC 3261 does not allow it).
    pub fn parse(s: &'a [u8]) -> Option<Host<'a>> {
        if s.is_empty() {
            return None;
        }
        if s.first() == Some(&b'[') {
            let inner = s.get(1..s.len().checked_sub(1)?)?;
            if s.last() != Some(&b']') {
                return None;
            }
            let text = std::str::from_utf8(inner).ok()?;
            return text.parse::<Ipv6Addr>().ok().map(Host::Ipv6);
        }
        if s.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
            return dotted_quad(s).map(Host::Ipv4);
        }
        let ok = s
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !ok || s.first() == Some(&b'.') || s.first() == Some(&b'-') {
            return None;
        }
        std::str::from_utf8(s)
            .ok()
            .map(|n| Host::Name(Cow::Borrowed(n)))
    }

    /// The host of a literal address.
    pub fn from_ip(ip: IpAddr) -> Host<'static> {
        match ip {
            IpAddr::V4(a) => Host::Ipv4(a),
            IpAddr::V6(a) => Host::Ipv6(a),
        }
    }

    /// The name, when the host is not a literal address.
    pub fn name(&self) -> Option<&str> {
        match self {
            Host::Name(n) => Some(n),
            _ => None,
        }
    }

    /// The same host owning its name.
    pub fn into_owned(self) -> Host<'static> {
        match self {
            Host::Name(n) => Host::Name(Cow::Owned(n.into_owned())),
            Host::Ipv4(a) => Host::Ipv4(a),
            Host::Ipv6(a) => Host::Ipv6(a),
        }
    }

    /// The address when the host is a literal IP address.
    pub fn ip(&self) -> Option<IpAddr> {
        match *self {
            Host::Name(_) => None,
            Host::Ipv4(a) => Some(IpAddr::V4(a)),
            Host::Ipv6(a) => Some(IpAddr::V6(a)),
        }
    }

    /// True when both denote the same host: names compare case-insensitively (a trailing
    /// dot ignored), addresses by value.
    pub fn same_as(&self, other: &Host<'_>) -> bool {
        match (self, other) {
            (Host::Name(a), Host::Name(b)) => a
                .trim_end_matches('.')
                .eq_ignore_ascii_case(b.trim_end_matches('.')),
            (Host::Ipv4(a), Host::Ipv4(b)) => a == b,
            (Host::Ipv6(a), Host::Ipv6(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// Length of the host at the start of `s` (an IPv6 reference up to `]`, otherwise host
/// name characters).
pub(crate) fn host_len(s: &[u8]) -> usize {
    if s.first() == Some(&b'[') {
        match s.iter().position(|&b| b == b']') {
            Some(p) => p + 1,
            None => s.len(),
        }
    } else {
        s.iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')))
            .unwrap_or(s.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_host_forms() {
        assert_eq!(
            Host::parse(b"example.com"),
            Some(Host::Name("example.com".into()))
        );
        assert_eq!(
            Host::parse(b"192.0.2.1"),
            Some(Host::Ipv4(Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert_eq!(
            Host::parse(b"[2001:db8::1]"),
            Some(Host::Ipv6("2001:db8::1".parse().unwrap()))
        );
        assert_eq!(
            Host::parse(b"[::ffff:192.0.2.1]").map(|h| h.ip().is_some()),
            Some(true)
        );
    }

    #[test]
    fn dotted_quads_read_as_std_reads_them() {
        let mut inputs: Vec<String> = [
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            ".1.2.3",
            "1.2.3.",
            "1234.1.1.1",
            "00.0.0.0",
            "9.99.199.249",
            "",
            ".",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for a in [0, 7, 10, 99, 100, 199, 200, 249, 250, 255, 256, 999] {
            inputs.push(format!("{a}.{a}.0.{a}"));
            inputs.push(format!("0{a}.1.1.1"));
        }
        for text in inputs {
            assert_eq!(
                dotted_quad(text.as_bytes()),
                text.parse::<Ipv4Addr>().ok(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn refuses_bad_hosts() {
        for bad in [
            &b""[..],
            b"192.0.2.300",
            b"[2001:db8::1",
            b"2001:db8::1",
            b"[not-v6]",
            b"a b",
            b".lead",
            b"[]",
            b"[",
        ] {
            assert_eq!(Host::parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn compares_hosts() {
        let a = Host::parse(b"AtLanTa.CoM").unwrap();
        let b = Host::parse(b"atlanta.com.").unwrap();
        assert!(a.same_as(&b));
        let v6a = Host::parse(b"[2001:DB8:0::1]").unwrap();
        let v6b = Host::parse(b"[2001:db8::1]").unwrap();
        assert!(v6a.same_as(&v6b));
        assert_eq!(v6b.to_string(), "[2001:db8::1]");
        assert!(!a.same_as(&v6a));
    }

    #[test]
    fn host_length() {
        assert_eq!(host_len(b"[2001:db8::1]:5060"), 13);
        assert_eq!(host_len(b"a.example.com:5060"), 13);
        assert_eq!(host_len(b"[unterminated"), 13);
    }
}
