//! One alias table: the rows of one local (virtual) domain (RFC 5923 §5, §9.3).

use super::decision::{AliasDecision, IgnoreReason};
use super::key::AliasKey;
use crate::PeerIdentities;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::Hash;

/// Who created a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RowOrigin {
    /// Client side (§8.1): we opened the flow and authenticated the server.
    Outbound,
    /// Server side (§8.2): the peer opened the flow, sent `alias` and a verified certificate.
    Inbound,
}

/// One row: destination {IP, port, transport}, peer identities, and the flow to reuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRow<D> {
    /// The resolved address.
    pub key: AliasKey,
    /// The identities the peer authenticated as on this flow.
    pub identities: PeerIdentities,
    /// The flow handle (TLS connection, TLS-SCTP stream session, DTLS-SCTP association, ...).
    pub descriptor: D,
    /// How the row was created.
    pub origin: RowOrigin,
    seq: u64,
}

/// Rows of one local domain. Several rows may share a key when their identity sets differ
/// (virtual servers behind one address, §9.3); at most one row per (key, descriptor).
#[derive(Debug, Clone)]
pub struct AliasTable<D> {
    rows: HashMap<AliasKey, Vec<AliasRow<D>>>,
    len: usize,
    next_seq: u64,
}

impl<D> Default for AliasTable<D> {
    fn default() -> Self {
        AliasTable {
            rows: HashMap::new(),
            len: 0,
            next_seq: 0,
        }
    }
}

impl<D: Clone + Eq + Hash> AliasTable<D> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the table has no row.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// All rows (unordered).
    pub fn rows(&self) -> impl Iterator<Item = &AliasRow<D>> {
        self.rows.values().flatten()
    }

    /// The row to reuse for `key` and `uri_domain`: the resolved address must be in the table
    /// AND the URI domain must be one of the row's identities (§8.1). Newest row wins.
    pub fn find(&self, key: &AliasKey, uri_domain: &str) -> Option<&AliasRow<D>> {
        self.rows
            .get(key)?
            .iter()
            .filter(|r| r.identities.matches(uri_domain))
            .max_by_key(|r| r.seq)
    }

    /// Adds or updates a row. Inbound rows follow stricter rules: a flow advertises one address
    /// (an inbound row of the same flow at another key moves), and identities overlapping a row
    /// held by another flow without being equal are refused.
    pub(crate) fn upsert(
        &mut self,
        key: AliasKey,
        identities: &PeerIdentities,
        descriptor: &D,
        origin: RowOrigin,
        max_rows: usize,
    ) -> AliasDecision<D> {
        let inbound = origin == RowOrigin::Inbound;
        let at_key: &[AliasRow<D>] = self.rows.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        let same_ids_other = at_key
            .iter()
            .position(|r| r.descriptor != *descriptor && r.identities == *identities);
        let own = at_key.iter().position(|r| r.descriptor == *descriptor);
        if inbound
            && same_ids_other.is_none()
            && at_key
                .iter()
                .any(|r| r.descriptor != *descriptor && r.identities.overlaps(identities))
        {
            return AliasDecision::Ignored(IgnoreReason::AlreadyAliasedByOtherFlow);
        }
        let moving = if inbound {
            self.rows
                .iter()
                .filter(|(k, _)| **k != key)
                .flat_map(|(_, v)| v.iter())
                .filter(|r| r.descriptor == *descriptor && r.origin == RowOrigin::Inbound)
                .count()
        } else {
            0
        };
        let grows = own.is_none() && same_ids_other.is_none();
        if grows && self.len.saturating_sub(moving) >= max_rows {
            return AliasDecision::Ignored(IgnoreReason::TableFull);
        }

        // Decided: mutate.
        let moved = moving > 0
            && self.remove_where(|r| {
                r.key != key && r.descriptor == *descriptor && r.origin == RowOrigin::Inbound
            }) > 0;
        let seq = self.next_seq;
        self.next_seq += 1;
        let rows = self.rows.entry(key).or_default();
        if let Some(i) = same_ids_other {
            let mut replaced = None;
            if let Some(row) = rows.get_mut(i) {
                replaced = Some(std::mem::replace(&mut row.descriptor, descriptor.clone()));
                row.origin = origin;
                row.seq = seq;
            }
            // Keep one row per (key, descriptor).
            if let Some(j) = own {
                if j < rows.len() {
                    rows.remove(j);
                    self.len -= 1;
                }
            }
            return AliasDecision::Updated { replaced };
        }
        if let Some(row) = own.and_then(|i| rows.get_mut(i)) {
            if row.identities == *identities && !moved {
                return AliasDecision::Unchanged;
            }
            row.identities = identities.clone();
            row.seq = seq;
            return AliasDecision::Updated { replaced: None };
        }
        rows.push(AliasRow {
            key,
            identities: identities.clone(),
            descriptor: descriptor.clone(),
            origin,
            seq,
        });
        self.len += 1;
        if moved {
            AliasDecision::Updated { replaced: None }
        } else {
            AliasDecision::Added
        }
    }

    /// Removes every row of `descriptor` (the flow is gone); returns how many.
    pub(crate) fn remove_descriptor(&mut self, descriptor: &D) -> usize {
        self.remove_where(|r| r.descriptor == *descriptor)
    }

    fn remove_where(&mut self, pred: impl Fn(&AliasRow<D>) -> bool) -> usize {
        let mut removed = 0;
        self.rows.retain(|_, v| {
            let before = v.len();
            v.retain(|r| !pred(r));
            removed += before - v.len();
            !v.is_empty()
        });
        self.len -= removed;
        removed
    }
}
