//! A peer's authenticated SIP identities: the domain names a certificate the TLS layer
//! verified asserts (RFC 5922 §7.1), normalized once when the handshake finishes and then
//! carried by the flow, every received message and the RFC 5923 alias rows.
//! Compared exactly and case-insensitively (RFC 5922 §7.2: no wildcard, no suffix).

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::resolve::target::normalize_domain;

/// A sorted set of lowercase domain names a peer authenticated as; empty when the peer was
/// not authenticated. Cheap to clone (one shared allocation; the empty set allocates nothing).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PeerIdentities(Arc<[String]>);

impl PeerIdentities {
    /// The identities of an unauthenticated peer.
    pub fn none() -> PeerIdentities {
        static EMPTY: OnceLock<PeerIdentities> = OnceLock::new();
        EMPTY
            .get_or_init(|| PeerIdentities(Arc::from(Vec::new())))
            .clone()
    }

    /// Builds the set from names given by the TLS layer. Accepted forms: `example.com` and
    /// `sip:example.com`. Dropped: `sips:` URIs and URIs with a user part (not identities,
    /// RFC 5922 §7.1), wildcards and anything that is not a valid host name.
    pub fn from_names<I, S>(names: I) -> PeerIdentities
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set: Vec<String> = names
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
        if set.is_empty() {
            return PeerIdentities::none();
        }
        set.sort_unstable();
        set.dedup();
        PeerIdentities(Arc::from(set))
    }

    /// Exact, case-insensitive match of a URI domain (a trailing dot is ignored).
    pub fn matches(&self, domain: &str) -> bool {
        let d = domain.strip_suffix('.').unwrap_or(domain);
        self.0.iter().any(|n| n.eq_ignore_ascii_case(d))
    }

    /// True if the two sets share at least one identity.
    pub fn overlaps(&self, other: &PeerIdentities) -> bool {
        self.0.iter().any(|n| other.0.contains(n))
    }

    /// The identities, sorted.
    pub fn names(&self) -> &[String] {
        &self.0
    }
}

impl Default for PeerIdentities {
    fn default() -> Self {
        PeerIdentities::none()
    }
}

impl Deref for PeerIdentities {
    type Target = [String];

    fn deref(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Debug for PeerIdentities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.iter()).finish()
    }
}

impl Serialize for PeerIdentities {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for PeerIdentities {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<String>::deserialize(d).map(PeerIdentities::from_names)
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
            "example.net",
        ]);
        assert_eq!(ids.names(), ["example.net", "p2.example.net"]);
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

    #[test]
    fn serde_and_empty() {
        let ids = PeerIdentities::from_names(["b.example", "a.example"]);
        let json = serde_json::to_string(&ids).unwrap();
        assert_eq!(json, r#"["a.example","b.example"]"#);
        assert_eq!(serde_json::from_str::<PeerIdentities>(&json).unwrap(), ids);
        assert!(PeerIdentities::default().is_empty());
        assert_eq!(PeerIdentities::none(), PeerIdentities::from_names([""; 0]));
    }
}
