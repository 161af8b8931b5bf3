//! ALPN policy for `sip/2` (checklist: RFC 7301 — no overlap is the fatal alert
//! `no_application_protocol`; the id list is configurable because some peers reject
//! unknown ids).

use serde::Deserialize;

/// The ALPN id registered for SIP.
pub const SIP_2: &[u8] = b"sip/2";

/// ALPN policy of a TLS endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlpnPolicy {
    /// No ALPN extension is sent or answered.
    Off,
    /// Offer/accept the configured ids; peers without ALPN are accepted. A client that
    /// offers only other ids is refused with `no_application_protocol` (RFC 7301).
    #[default]
    Offer,
    /// Like `Offer`, and peers that do not offer one of the ids are refused.
    Require,
}

impl AlpnPolicy {
    /// The ids to put in a rustls configuration under this policy.
    pub fn protocols(self, ids: &[Vec<u8>]) -> Vec<Vec<u8>> {
        match self {
            AlpnPolicy::Off => Vec::new(),
            AlpnPolicy::Offer | AlpnPolicy::Require => ids.to_vec(),
        }
    }

    /// Server side: may a handshake proceed given what the client offered (`None`: no ALPN
    /// extension)? A non-empty offer without overlap is left to rustls, which answers
    /// `no_application_protocol`.
    pub fn accepts_offer<'a>(
        self,
        ours: &[Vec<u8>],
        theirs: Option<impl Iterator<Item = &'a [u8]>>,
    ) -> bool {
        match (self, theirs) {
            (AlpnPolicy::Require, None) => false,
            (AlpnPolicy::Require, Some(mut t)) => t.any(|p| ours.iter().any(|o| o == p)),
            _ => true,
        }
    }

    /// Either side, after the handshake: is the negotiated protocol acceptable?
    pub fn accepts_negotiated(self, negotiated: Option<&[u8]>) -> bool {
        self != AlpnPolicy::Require || negotiated.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> Vec<Vec<u8>> {
        vec![SIP_2.to_vec()]
    }

    #[test]
    fn offer_accepts_clients_without_alpn() {
        assert!(AlpnPolicy::Offer.accepts_offer(&ours(), None::<std::iter::Empty<&[u8]>>));
        assert!(AlpnPolicy::Offer.accepts_negotiated(None));
    }

    #[test]
    fn require_refuses_missing_or_foreign_alpn() {
        let none = None::<std::iter::Empty<&[u8]>>;
        assert!(!AlpnPolicy::Require.accepts_offer(&ours(), none));
        let h2: [&[u8]; 1] = [b"h2"];
        assert!(!AlpnPolicy::Require.accepts_offer(&ours(), Some(h2.into_iter())));
        let both: [&[u8]; 2] = [b"h2", SIP_2];
        assert!(AlpnPolicy::Require.accepts_offer(&ours(), Some(both.into_iter())));
        assert!(!AlpnPolicy::Require.accepts_negotiated(None));
    }

    #[test]
    fn off_sends_nothing() {
        assert!(AlpnPolicy::Off.protocols(&ours()).is_empty());
        assert_eq!(AlpnPolicy::Offer.protocols(&ours()), ours());
    }
}
