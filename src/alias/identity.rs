//! Peer identities cached in alias rows: the domain names a verified certificate asserts
//! (RFC 5922 §7.1), compared exactly and case-insensitively (§7.2: no wildcard, no suffix).

use crate::resolve::target::normalize_domain;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A set of lowercase domain names a peer authenticated as.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PeerIdentities(BTreeSet<String>);

impl PeerIdentities {
    /// Builds the set from names given by the TLS layer. Accepted forms: `example.com` and
    /// `sip:example.com`. Dropped: `sips:` URIs and URIs with a user part (not identities,
    /// RFC 5922 §7.1), wildcards and anything that is not a valid host name.
    pub fn from_names<I, S>(names: I) -> PeerIdentities
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let set = names
            .into_iter()
            .filter_map(|n| {
                let n = n.as_ref().trim();
                let domain = match n.get(..4) {
                    Some(p) if p.eq_ignore_ascii_case("sip:") => n.get(4..)?,
                    _ => n,
                };
                normalize_domain(domain)
            })
            .collect();
        PeerIdentities(set)
    }

    /// True when no usable identity is present.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of identities.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Exact, case-insensitive match of a URI domain (a trailing dot is ignored).
    pub fn matches(&self, domain: &str) -> bool {
        let d = domain.strip_suffix('.').unwrap_or(domain);
        if d.bytes().any(|b| b.is_ascii_uppercase()) {
            self.0.contains(&d.to_ascii_lowercase())
        } else {
            self.0.contains(d)
        }
    }

    /// True if the two sets share at least one identity.
    pub fn overlaps(&self, other: &PeerIdentities) -> bool {
        self.0.iter().any(|n| other.0.contains(n))
    }

    /// The identities, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_and_filtering() {
        let ids = PeerIdentities::from_names([
            "sip:Example.NET",
            "p2.example.net.",
            "sips:secure.example.net",
            "sip:alice@example.net",
            "*.example.net",
            "",
            "bad host",
        ]);
        let v: Vec<&str> = ids.iter().collect();
        assert_eq!(v, ["example.net", "p2.example.net"]);
    }

    #[test]
    fn exact_match_only() {
        let ids = PeerIdentities::from_names(["example.com"]);
        assert!(ids.matches("example.com"));
        assert!(ids.matches("EXAMPLE.com"));
        assert!(ids.matches("example.com."));
        assert!(!ids.matches("p1.example.com"), "no suffix matching");
        assert!(!ids.matches("com"));
        assert!(!ids.matches("example.com.evil.org"));
        let wild = PeerIdentities::from_names(["*.example.com"]);
        assert!(wild.is_empty(), "wildcards are never identities");
        assert!(!wild.matches("a.example.com"));
    }

    #[test]
    fn overlap() {
        let a = PeerIdentities::from_names(["a.example", "b.example"]);
        let b = PeerIdentities::from_names(["b.example", "c.example"]);
        let c = PeerIdentities::from_names(["c.example"]);
        assert!(a.overlaps(&b));
        assert!(!a.overlaps(&c));
    }
}
