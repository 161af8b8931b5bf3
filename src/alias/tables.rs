//! The alias tables of every local (virtual) domain, and the client/server rules of RFC 5923.

use super::decision::{AliasCounters, AliasDecision, IgnoreReason};
use super::dump::{RowDump, TableDump};
use super::key::{is_alias_transport, AliasKey, DEFAULT_ALIAS_PORT};
use super::policy::AliasPolicy;
use super::table::{AliasTable, RowOrigin};
use crate::resolve::parse_host;
use crate::PeerIdentities;
use crate::TransportKind;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;

/// Default row limit per local domain.
pub const DEFAULT_MAX_ROWS_PER_TABLE: usize = 10_000;

/// What the server knows when a request arrives (RFC 5923 §8.2, §9.2).
#[derive(Debug, Clone)]
pub struct InboundAlias<'a, D> {
    /// The local domain the flow was accepted for (the certificate we presented / SNI).
    pub local_domain: &'a str,
    /// The top Via has the `alias` parameter.
    pub has_alias_param: bool,
    /// The top Via's transport.
    pub via_transport: TransportKind,
    /// The transport the request actually arrived on.
    pub flow_transport: TransportKind,
    /// The top Via's sent-by host (name or IP).
    pub sent_by_host: &'a str,
    /// The top Via's sent-by port (`None`: 5061 is used).
    pub sent_by_port: Option<u16>,
    /// The source IP of the request (`received`).
    pub received: IpAddr,
    /// The flow is TLS/DTLS with a client certificate verified per RFC 5922 §7.4.
    pub client_cert_verified: bool,
    /// The client's identities from that certificate.
    pub client_identities: &'a PeerIdentities,
    /// The accepting flow.
    pub descriptor: D,
}

/// Alias tables keyed by local domain: a flow opened or accepted for one domain is never used
/// on behalf of another, in either direction (§9.3).
#[derive(Debug, Clone)]
pub struct AliasTables<D> {
    tables: HashMap<String, AliasTable<D>>,
    descriptor_domain: HashMap<D, String>,
    counters: AliasCounters,
    max_rows_per_table: usize,
}

impl<D: Clone + Eq + Hash> Default for AliasTables<D> {
    fn default() -> Self {
        AliasTables::new(DEFAULT_MAX_ROWS_PER_TABLE)
    }
}

fn normalize_local(domain: &str) -> String {
    domain
        .strip_suffix('.')
        .unwrap_or(domain)
        .to_ascii_lowercase()
}

impl<D: Clone + Eq + Hash> AliasTables<D> {
    /// Empty tables, each limited to `max_rows_per_table` rows.
    pub fn new(max_rows_per_table: usize) -> AliasTables<D> {
        AliasTables {
            tables: HashMap::new(),
            descriptor_domain: HashMap::new(),
            counters: AliasCounters::default(),
            max_rows_per_table,
        }
    }

    /// Client side (§8.1, §9.1): after opening `descriptor` to the resolved address `key` and
    /// authenticating the server (RFC 5922 §7.3), record it with the server's identities.
    /// A row with the same key and identities is updated to the new descriptor (a dead flow
    /// replaced by a new one, §8.1).
    pub fn add_outbound(
        &mut self,
        local_domain: &str,
        key: AliasKey,
        server_identities: &PeerIdentities,
        descriptor: D,
    ) -> AliasDecision<D> {
        let decision = self.add_outbound_inner(local_domain, key, server_identities, &descriptor);
        self.count(&decision);
        decision
    }

    fn add_outbound_inner(
        &mut self,
        local_domain: &str,
        key: AliasKey,
        ids: &PeerIdentities,
        descriptor: &D,
    ) -> AliasDecision<D> {
        if !is_alias_transport(key.transport) {
            return AliasDecision::Ignored(IgnoreReason::NotTlsFamily);
        }
        if ids.is_empty() {
            return AliasDecision::Ignored(IgnoreReason::NoUsableIdentity);
        }
        self.upsert(local_domain, key, ids, descriptor, RowOrigin::Outbound)
    }

    /// Server side (§8.2, §9.2): decides whether the request's `alias` creates or updates a row.
    /// Whatever the decision, the request itself proceeds normally.
    pub fn on_inbound_request(
        &mut self,
        req: InboundAlias<'_, D>,
        policy: &AliasPolicy,
    ) -> AliasDecision<D> {
        let decision = self.inbound_inner(&req, policy);
        match &decision {
            AliasDecision::Ignored(reason) if *reason != IgnoreReason::NoAliasParam => {
                tracing::debug!(
                    %reason,
                    local_domain = req.local_domain,
                    received = %req.received,
                    sent_by = req.sent_by_host,
                    "RFC 5923 alias ignored"
                );
            }
            _ => {}
        }
        self.count(&decision);
        decision
    }

    fn inbound_inner(
        &mut self,
        req: &InboundAlias<'_, D>,
        policy: &AliasPolicy,
    ) -> AliasDecision<D> {
        use IgnoreReason::*;
        if !req.has_alias_param {
            return AliasDecision::Ignored(NoAliasParam);
        }
        if !is_alias_transport(req.flow_transport) {
            return AliasDecision::Ignored(NotTlsFamily);
        }
        if req.via_transport != req.flow_transport {
            return AliasDecision::Ignored(ViaTransportMismatch);
        }
        if !req.client_cert_verified {
            return AliasDecision::Ignored(NoClientCertificate);
        }
        let ids = req.client_identities;
        if ids.is_empty() {
            return AliasDecision::Ignored(NoUsableIdentity);
        }
        if !policy.allows(ids) {
            return AliasDecision::Ignored(PolicyRefused);
        }
        let Ok(host) = parse_host(req.sent_by_host) else {
            return AliasDecision::Ignored(InvalidSentBy);
        };
        let authenticated = match host.ip() {
            // A numeric sent-by must be the address the request came from.
            Some(ip) => ip == req.received,
            // A sent-by name must be one the certificate proves.
            None => ids.matches(host.name().unwrap_or_default()),
        };
        if !authenticated {
            return AliasDecision::Ignored(SentByNotAuthenticated);
        }
        if req.sent_by_port == Some(0) {
            return AliasDecision::Ignored(InvalidSentBy);
        }
        let key = AliasKey::new(
            req.received,
            req.sent_by_port.unwrap_or(DEFAULT_ALIAS_PORT),
            req.via_transport,
        );
        self.upsert(
            req.local_domain,
            key,
            ids,
            &req.descriptor,
            RowOrigin::Inbound,
        )
    }

    fn upsert(
        &mut self,
        local_domain: &str,
        key: AliasKey,
        ids: &PeerIdentities,
        descriptor: &D,
        origin: RowOrigin,
    ) -> AliasDecision<D> {
        let domain = normalize_local(local_domain);
        if let Some(bound) = self.descriptor_domain.get(descriptor) {
            if *bound != domain {
                return AliasDecision::Ignored(IgnoreReason::DescriptorBoundToOtherDomain);
            }
        }
        let table = self.tables.entry(domain.clone()).or_default();
        let decision = table.upsert(key, ids, descriptor, origin, self.max_rows_per_table);
        if table.is_empty() {
            self.tables.remove(&domain);
        }
        if decision.is_recorded() {
            self.descriptor_domain.insert(descriptor.clone(), domain);
        }
        decision
    }

    /// Client side reuse (§8.1; also the server acting as client, §8.2): the flow to use for a
    /// request of `local_domain` whose RFC 3263 resolution of a URI with domain `uri_domain` gave
    /// `key`, or `None` to open a new flow.
    pub fn lookup(&mut self, local_domain: &str, key: &AliasKey, uri_domain: &str) -> Option<D> {
        let found = self
            .table(local_domain)
            .and_then(|t| t.find(key, uri_domain))
            .map(|r| r.descriptor.clone());
        if found.is_some() {
            self.counters.reuses += 1;
        } else {
            self.counters.misses += 1;
        }
        found
    }

    /// Forgets a dead flow in every table; returns how many rows were removed. The next
    /// request opens a new flow and `add_outbound` records it (§8.1, §8.2).
    pub fn remove_descriptor(&mut self, descriptor: &D) -> usize {
        let mut removed = 0;
        self.tables.retain(|_, t| {
            removed += t.remove_descriptor(descriptor);
            !t.is_empty()
        });
        self.descriptor_domain.remove(descriptor);
        self.counters.removed += removed as u64;
        removed
    }

    /// The local domain a descriptor is bound to (the first table that recorded it), if any.
    pub fn domain_of(&self, descriptor: &D) -> Option<&str> {
        self.descriptor_domain.get(descriptor).map(String::as_str)
    }

    /// The table of one local domain, if it has rows.
    pub fn table(&self, local_domain: &str) -> Option<&AliasTable<D>> {
        // No allocation on the per-request path when the domain is already normalized.
        let normal =
            !local_domain.ends_with('.') && !local_domain.bytes().any(|b| b.is_ascii_uppercase());
        if normal {
            self.tables.get(local_domain)
        } else {
            self.tables.get(&normalize_local(local_domain))
        }
    }

    /// Current counters (`rows` is computed now).
    pub fn counters(&self) -> AliasCounters {
        let mut c = self.counters.clone();
        c.rows = self.tables.values().map(|t| t.len() as u64).sum();
        c
    }

    /// A snapshot of every table, descriptors rendered with `Display`.
    pub fn dump(&self) -> Vec<TableDump>
    where
        D: fmt::Display,
    {
        self.dump_with(|d| d.to_string())
    }

    /// A snapshot of every table, descriptors rendered by `render`. Sorted for stable output.
    pub fn dump_with(&self, render: impl Fn(&D) -> String) -> Vec<TableDump> {
        let mut out: Vec<TableDump> = self
            .tables
            .iter()
            .map(|(domain, t)| {
                let mut rows: Vec<RowDump> = t
                    .rows()
                    .map(|r| RowDump {
                        ip: r.key.ip,
                        port: r.key.port,
                        transport: r.key.transport,
                        identities: r.identities.to_vec(),
                        descriptor: render(&r.descriptor),
                        origin: r.origin,
                    })
                    .collect();
                rows.sort_by(|a, b| {
                    a.key()
                        .cmp(&b.key())
                        .then_with(|| a.identities.cmp(&b.identities))
                });
                TableDump {
                    local_domain: domain.clone(),
                    rows,
                }
            })
            .collect();
        out.sort_by(|a, b| a.local_domain.cmp(&b.local_domain));
        out
    }

    fn count(&mut self, decision: &AliasDecision<D>) {
        match decision {
            AliasDecision::Added => self.counters.added += 1,
            AliasDecision::Updated { .. } => self.counters.updated += 1,
            AliasDecision::Unchanged => {}
            AliasDecision::Ignored(r) => self.counters.ignored.record(*r),
        }
    }
}
