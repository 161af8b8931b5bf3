//! Server-side policy: whether to honour `alias` at all, and per peer (RFC 5923 §8.2 leaves the
//! choice to the server).

use crate::PeerIdentities;
use std::collections::HashMap;

/// Accept aliases by default or not, with per-peer overrides keyed by certificate identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasPolicy {
    /// Decision for peers without an override.
    pub accept: bool,
    /// Overrides by peer identity (lowercase domain). A refusal for any of the peer's identities
    /// wins over an acceptance.
    pub per_peer: HashMap<String, bool>,
}

impl Default for AliasPolicy {
    fn default() -> Self {
        AliasPolicy::accept_all()
    }
}

impl AliasPolicy {
    /// Honour aliases from every authenticated peer.
    pub fn accept_all() -> AliasPolicy {
        AliasPolicy {
            accept: true,
            per_peer: HashMap::new(),
        }
    }

    /// Never honour aliases (unless a peer override accepts).
    pub fn refuse_all() -> AliasPolicy {
        AliasPolicy {
            accept: false,
            per_peer: HashMap::new(),
        }
    }

    /// Adds an override for one peer identity.
    pub fn with_peer(mut self, identity: &str, accept: bool) -> AliasPolicy {
        let id = identity.strip_suffix('.').unwrap_or(identity);
        self.per_peer.insert(id.to_ascii_lowercase(), accept);
        self
    }

    /// The decision for a peer with these identities.
    pub fn allows(&self, peer: &PeerIdentities) -> bool {
        let mut explicit_accept = false;
        for id in peer.iter() {
            match self.per_peer.get(id) {
                Some(false) => return false,
                Some(true) => explicit_accept = true,
                None => {}
            }
        }
        explicit_accept || self.accept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides() {
        let p = AliasPolicy::accept_all().with_peer("Bad.Example", false);
        assert!(p.allows(&PeerIdentities::from_names(["good.example"])));
        assert!(!p.allows(&PeerIdentities::from_names(["bad.example"])));
        assert!(!p.allows(&PeerIdentities::from_names(["good.example", "bad.example"])));
        let p = AliasPolicy::refuse_all().with_peer("good.example", true);
        assert!(p.allows(&PeerIdentities::from_names(["good.example"])));
        assert!(!p.allows(&PeerIdentities::from_names(["other.example"])));
    }
}
