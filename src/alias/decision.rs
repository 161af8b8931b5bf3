//! What the alias table did with an add or an inbound `alias`, and why it refused.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an alias was not recorded. In every case the request itself proceeds as if `alias` were
/// absent (RFC 5923 §8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IgnoreReason {
    /// The top Via has no `alias` parameter.
    NoAliasParam,
    /// The flow is not TLS over TCP, TLS over SCTP or DTLS over SCTP (§9.3: never plain TCP/SCTP).
    NotTlsFamily,
    /// The Via transport differs from the transport the request arrived on.
    ViaTransportMismatch,
    /// No verified client certificate (§9.2: MUST NOT update the table).
    NoClientCertificate,
    /// The certificate gave no usable identity (no sip: URI / dNSName; wildcards dropped).
    NoUsableIdentity,
    /// Local policy refuses aliases (globally or for this peer).
    PolicyRefused,
    /// The sent-by host is not valid.
    InvalidSentBy,
    /// The sent-by is a name not among the client's identities, or an IP other than the source.
    SentByNotAuthenticated,
    /// Another live flow already holds an alias for this address with overlapping but different
    /// identities: the existing authenticated row is kept.
    AlreadyAliasedByOtherFlow,
    /// The flow is already bound to another local (virtual) domain (§9.3).
    DescriptorBoundToOtherDomain,
    /// The table reached its row limit.
    TableFull,
}

/// Every reason, in a stable order (for counters and metrics labels).
pub const ALL_IGNORE_REASONS: [IgnoreReason; 11] = [
    IgnoreReason::NoAliasParam,
    IgnoreReason::NotTlsFamily,
    IgnoreReason::ViaTransportMismatch,
    IgnoreReason::NoClientCertificate,
    IgnoreReason::NoUsableIdentity,
    IgnoreReason::PolicyRefused,
    IgnoreReason::InvalidSentBy,
    IgnoreReason::SentByNotAuthenticated,
    IgnoreReason::AlreadyAliasedByOtherFlow,
    IgnoreReason::DescriptorBoundToOtherDomain,
    IgnoreReason::TableFull,
];

impl IgnoreReason {
    /// A short snake_case name (metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreReason::NoAliasParam => "no_alias_param",
            IgnoreReason::NotTlsFamily => "not_tls_family",
            IgnoreReason::ViaTransportMismatch => "via_transport_mismatch",
            IgnoreReason::NoClientCertificate => "no_client_certificate",
            IgnoreReason::NoUsableIdentity => "no_usable_identity",
            IgnoreReason::PolicyRefused => "policy_refused",
            IgnoreReason::InvalidSentBy => "invalid_sent_by",
            IgnoreReason::SentByNotAuthenticated => "sent_by_not_authenticated",
            IgnoreReason::AlreadyAliasedByOtherFlow => "already_aliased_by_other_flow",
            IgnoreReason::DescriptorBoundToOtherDomain => "descriptor_bound_to_other_domain",
            IgnoreReason::TableFull => "table_full",
        }
    }

    fn index(self) -> usize {
        ALL_IGNORE_REASONS
            .iter()
            .position(|r| *r == self)
            .unwrap_or(0)
    }
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Outcome of an add (client side) or of an inbound `alias` (server side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AliasDecision<D> {
    /// A new row was created.
    Added,
    /// An existing row now points at the new descriptor (or its address/identities changed).
    /// `replaced` is the descriptor that lost the row, if another one did.
    Updated {
        /// The descriptor previously in the row.
        replaced: Option<D>,
    },
    /// The same flow announced the same alias again: nothing changed.
    Unchanged,
    /// Nothing recorded.
    Ignored(IgnoreReason),
}

impl<D> AliasDecision<D> {
    /// True when a row was created or updated.
    pub fn is_recorded(&self) -> bool {
        matches!(self, AliasDecision::Added | AliasDecision::Updated { .. })
    }

    /// The refusal reason, if ignored.
    pub fn ignored(&self) -> Option<IgnoreReason> {
        match self {
            AliasDecision::Ignored(r) => Some(*r),
            _ => None,
        }
    }
}

/// Counts of ignored aliases, one per reason (serialized as a map reason -> count).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreCounts([u64; ALL_IGNORE_REASONS.len()]);

impl Serialize for IgnoreCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(ALL_IGNORE_REASONS.len()))?;
        for (reason, count) in self.iter() {
            map.serialize_entry(reason.as_str(), &count)?;
        }
        map.end()
    }
}

impl IgnoreCounts {
    /// Adds one for `reason`.
    pub fn record(&mut self, reason: IgnoreReason) {
        if let Some(c) = self.0.get_mut(reason.index()) {
            *c += 1;
        }
    }

    /// The count for `reason`.
    pub fn get(&self, reason: IgnoreReason) -> u64 {
        self.0.get(reason.index()).copied().unwrap_or(0)
    }

    /// (reason, count) for every reason.
    pub fn iter(&self) -> impl Iterator<Item = (IgnoreReason, u64)> + '_ {
        ALL_IGNORE_REASONS.iter().map(|r| (*r, self.get(*r)))
    }

    /// Sum over all reasons.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// Plain counters for the driver to publish (e.g. with the `metrics` crate).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AliasCounters {
    /// Rows currently stored (all tables).
    pub rows: u64,
    /// Rows created.
    pub added: u64,
    /// Rows updated (new descriptor, address or identities).
    pub updated: u64,
    /// Rows removed (dead descriptors).
    pub removed: u64,
    /// Lookups that found a connection to reuse.
    pub reuses: u64,
    /// Lookups that found nothing usable (a new connection is needed).
    pub misses: u64,
    /// Ignored aliases by reason.
    pub ignored: IgnoreCounts,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_reason() {
        let mut c = IgnoreCounts::default();
        c.record(IgnoreReason::NoClientCertificate);
        c.record(IgnoreReason::NoClientCertificate);
        c.record(IgnoreReason::TableFull);
        assert_eq!(c.get(IgnoreReason::NoClientCertificate), 2);
        assert_eq!(c.get(IgnoreReason::TableFull), 1);
        assert_eq!(c.get(IgnoreReason::PolicyRefused), 0);
        assert_eq!(c.total(), 3);
        assert_eq!(c.iter().count(), ALL_IGNORE_REASONS.len());
        let names: std::collections::HashSet<&str> =
            ALL_IGNORE_REASONS.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), ALL_IGNORE_REASONS.len());
    }
}
