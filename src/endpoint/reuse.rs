//! RFC 5923 connection reuse made live: the thin tokio driver joining the RFC 3263 resolver,
//! the pure alias tables (`crate::alias`) and the transport.
//!
//! - Client side (§8.1, §9.1): [`ReuseEndpoint::send_request`] resolves the URI (the AUS stays
//!   the URI's domain), and for the target being tried either reuses a flow whose row has the
//!   resolved {IP, port, transport} and proves the AUS, or opens a new flow verified against the
//!   AUS (in the reuse scope of the local domain, §9.3) and records it with the server's
//!   identities. A dead flow is forgotten and replaced (§8.1/§8.2).
//!   [`ReuseEndpoint::send_to_target`] sends to an already chosen target (CANCEL, ACK of a
//!   non-2xx: same target, a new connection if the old one died).
//! - Server side (§8.2, §9.2): [`ReuseEndpoint::on_incoming`] feeds every received request's
//!   top Via to `AliasTables::on_inbound_request` in the table of the local domain the flow
//!   was accepted for (SNI, else the listener's domain).
//! - Rows follow flows: the transport's close hook removes a closing flow's rows at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::alias_metrics;
use super::response::{response_route, ResponseRoute};
use crate::alias::{
    our_via, route, AliasCounters, AliasDecision, AliasKey, AliasPolicy, AliasTables, Route,
    TableDump, ViaAlias, DEFAULT_MAX_ROWS_PER_TABLE,
};
use crate::resolve::{
    resolve_with, Answer, DnsError, DnsResolver, PlanError, Resolution, ResolveConfig,
    ResolvedTargets, SipTarget, Target,
};
use crate::transport::{self, Direction, Flow, Incoming, Transport, TransportError, TransportKind};
use crate::wire::{EditError, Host, Message};
use bytes::Bytes;

/// One local (virtual) domain we send requests for (§9.3: each has its own alias table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDomain {
    /// The domain (e.g. `example.com`).
    pub name: String,
    /// Via sent-by host of our requests: a name our certificate proves (§8.2), e.g.
    /// `p1.example.com`, or our IP address.
    pub sent_by: String,
    /// Our listening port per transport: the Via sent-by port, i.e. where the peer reaches
    /// us and the port of its alias row for us. Missing: no port in the Via (the default).
    pub ports: HashMap<TransportKind, u16>,
}

impl LocalDomain {
    /// A domain with a sent-by host and no ports yet.
    pub fn new(name: &str, sent_by: &str) -> LocalDomain {
        LocalDomain {
            name: name.to_ascii_lowercase(),
            sent_by: sent_by.to_owned(),
            ports: HashMap::new(),
        }
    }

    /// The same domain listening on `port` for `kind`.
    pub fn with_port(mut self, kind: TransportKind, port: u16) -> LocalDomain {
        self.ports.insert(kind, port);
        self
    }

    fn is_named(&self, name: &str) -> bool {
        let n = name.strip_suffix('.').unwrap_or(name);
        self.name.eq_ignore_ascii_case(n) || self.sent_by.eq_ignore_ascii_case(n)
    }
}

/// Settings of a [`ReuseEndpoint`].
#[derive(Debug, Clone)]
pub struct ReuseConfig {
    /// Put `;alias` in our Via over TLS-family transports (§8.1). Off: plain RFC 3261
    /// behaviour (the peer opens its own connection back to us).
    pub add_alias: bool,
    /// Whether to honour the peers' `alias` (§8.2).
    pub policy: AliasPolicy,
    /// Row limit per local domain.
    pub max_rows_per_table: usize,
    /// Our local domains.
    pub domains: Vec<LocalDomain>,
    /// The local domain of an inbound flow whose client sent no SNI naming one of ours, by
    /// the local address the flow was accepted on.
    pub listener_domains: HashMap<SocketAddr, String>,
    /// The local domain of inbound flows nothing else names.
    pub default_domain: Option<String>,
    /// RFC 3263 policy used when no DNS resolver is configured (numeric targets only).
    pub resolve: ResolveConfig,
}

impl Default for ReuseConfig {
    fn default() -> Self {
        ReuseConfig {
            add_alias: true,
            policy: AliasPolicy::accept_all(),
            max_rows_per_table: DEFAULT_MAX_ROWS_PER_TABLE,
            domains: Vec::new(),
            listener_domains: HashMap::new(),
            default_domain: None,
            resolve: ResolveConfig::default(),
        }
    }
}

/// Errors of the reuse layer.
#[derive(Debug, thiserror::Error)]
pub enum ReuseError {
    /// The local domain is not configured.
    #[error("unknown local domain {0}")]
    UnknownLocalDomain(String),
    /// Server location failed.
    #[error(transparent)]
    Dns(#[from] DnsError),
    /// Server location failed (no resolver configured, name target).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Our Via could not be added.
    #[error(transparent)]
    Edit(#[from] EditError),
    /// Every target failed; the last error.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// Where a request went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The flow that carries it.
    pub flow: Flow,
    /// The resolved target (keep it for CANCEL and ACK, RFC 3263 §4).
    pub target: Target,
    /// The AUS the server was (or had been) verified against.
    pub aus: String,
    /// True if an aliased flow was reused, false if a flow was opened (or, for non-TLS
    /// transports, taken from the transport's own RFC 3261 reuse index).
    pub reused: bool,
}

/// What [`ReuseEndpoint::try_alias`] did.
enum Aliased {
    /// Sent over this aliased flow.
    Sent(Flow),
    /// No usable row: open a flow, record it or not, verify this name.
    Connect(bool, String),
}

struct Shared {
    tables: Mutex<AliasTables<Flow>>,
    /// What this endpoint last published: metrics move by deltas, so that several endpoints
    /// in one process add up.
    published: Mutex<AliasCounters>,
}

impl Shared {
    /// Publishes the change since the last call (called with the tables locked).
    fn publish(&self, t: &AliasTables<Flow>) {
        let now = t.counters();
        let mut last = self.published.lock().unwrap_or_else(|p| p.into_inner());
        alias_metrics::publish_delta(&last, &now);
        *last = now;
    }

    fn tables(&self) -> MutexGuard<'_, AliasTables<Flow>> {
        // A panic while holding the lock loses at most one table update; keep serving.
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn forget(&self, flow: Flow) {
        let mut t = self.tables();
        if t.remove_descriptor(&flow) > 0 {
            self.publish(&t);
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The endpoint's rows leave the process-wide gauge with it.
        let last = self
            .published
            .get_mut()
            .map(|c| c.clone())
            .unwrap_or_default();
        alias_metrics::publish_delta(
            &last,
            &AliasCounters {
                rows: 0,
                ..last.clone()
            },
        );
    }
}

/// The reuse layer over one [`Transport`]. Cheap to clone.
#[derive(Clone)]
pub struct ReuseEndpoint {
    transport: Transport,
    dns: Option<Arc<DnsResolver>>,
    cfg: Arc<ReuseConfig>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ReuseEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReuseEndpoint")
            .field("counters", &self.counters())
            .finish()
    }
}

impl ReuseEndpoint {
    /// A reuse layer over `transport`; `dns` resolves names (without it only numeric targets
    /// work). Registers a close hook on the transport so that rows follow flows.
    pub fn new(transport: Transport, dns: Option<DnsResolver>, cfg: ReuseConfig) -> ReuseEndpoint {
        let shared = Arc::new(Shared {
            tables: Mutex::new(AliasTables::new(cfg.max_rows_per_table)),
            published: Mutex::new(AliasCounters::default()),
        });
        let weak: Weak<Shared> = Arc::downgrade(&shared);
        let hook: transport::CloseHook = Arc::new(move |flow: Flow| {
            if let Some(s) = weak.upgrade() {
                s.forget(flow);
            }
        });
        transport.on_flow_closing(hook);
        ReuseEndpoint {
            transport,
            dns: dns.map(Arc::new),
            cfg: Arc::new(cfg),
            shared,
        }
    }

    /// The transport underneath.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The settings.
    pub fn config(&self) -> &ReuseConfig {
        &self.cfg
    }

    fn domain(&self, name: &str) -> Result<&LocalDomain, ReuseError> {
        self.cfg
            .domains
            .iter()
            .find(|d| {
                d.name
                    .eq_ignore_ascii_case(name.strip_suffix('.').unwrap_or(name))
            })
            .ok_or_else(|| ReuseError::UnknownLocalDomain(name.to_owned()))
    }

    /// RFC 3263 resolution of `uri` (the AUS is the URI host).
    pub async fn resolve(&self, uri: &SipTarget) -> Result<ResolvedTargets, ReuseError> {
        match &self.dns {
            Some(d) => Ok(d.resolve(uri).await?),
            None => {
                let plan = Resolution::new(uri, &self.cfg.resolve)?;
                Ok(resolve_with(plan, &mut rand::rng(), |q| {
                    Answer::empty(q.kind)
                })?)
            }
        }
    }

    /// Sends `request` (our Via is added on top of its Vias) for `local_domain` to `uri`:
    /// resolves it, then tries the targets in RFC 3263 order (a transport failure moves on,
    /// §4.3), reusing an aliased flow when one proves the URI's domain. `branch` goes in our
    /// Via.
    pub async fn send_request(
        &self,
        local_domain: &str,
        uri: &SipTarget,
        request: &Message,
        branch: &str,
    ) -> Result<Sent, ReuseError> {
        self.domain(local_domain)?;
        let resolved = self.resolve(uri).await?;
        let mut last = None;
        for target in &resolved.targets {
            match self
                .send_to_target(local_domain, &resolved.aus, target, request, branch)
                .await
            {
                Ok(s) => return Ok(s),
                Err(ReuseError::Transport(e)) => {
                    tracing::debug!(%e, target = %AliasKey::from(target), "target failed, trying the next");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(match last {
            Some(e) => ReuseError::Transport(e),
            None => ReuseError::Plan(PlanError::NoTargets(resolved.aus)),
        })
    }

    /// Sends `request` for `local_domain` to one resolved `target` of a URI whose domain is
    /// `aus`: over an aliased flow if one proves `aus`, else over a new (or, for non-TLS
    /// transports, RFC 3261-reused) flow, recorded after the server authenticated. Used for
    /// CANCEL and ACK too (same target as the INVITE; a new connection if it died, §8.1).
    pub async fn send_to_target(
        &self,
        local_domain: &str,
        aus: &str,
        target: &Target,
        request: &Message,
        branch: &str,
    ) -> Result<Sent, ReuseError> {
        let domain = self.domain(local_domain)?;
        let kind = target.transport;
        let with_via = |kind: TransportKind| -> Result<Bytes, ReuseError> {
            let via = our_via(
                kind,
                sent_by_host(&domain.sent_by),
                domain.ports.get(&kind).copied(),
                branch,
                self.cfg.add_alias,
            );
            let mut ed = request.edit();
            ed.prepend_via(&via)?;
            Ok(ed.finish()?)
        };
        let bytes = with_via(kind)?;
        let (record, server_name) = match self.try_alias(domain, aus, target, &bytes)? {
            Aliased::Sent(flow) => return Ok(self.reused(flow, target, aus)),
            Aliased::Connect(record, server_name) => (record, server_name),
        };
        let tt = self.scoped(domain, target, &server_name);
        let flow = if kind == TransportKind::Udp
            && bytes.len() > self.transport.config().udp_max_request
        {
            // RFC 3261 §18.1.1, decided before our Via is written: a large request for a UDP
            // target goes over TCP, with a TCP Via; over UDP after all if TCP is refused.
            let tcp = Target::new(TransportKind::Tcp, target.addr).with_scope(&domain.name);
            match self
                .transport
                .send_to(&tcp, with_via(TransportKind::Tcp)?)
                .await
            {
                Ok(flow) => flow,
                Err(TransportError::Connect { source, .. })
                    if source.kind() == std::io::ErrorKind::ConnectionRefused =>
                {
                    tracing::debug!(addr = %target.addr, "TCP refused, large request over UDP");
                    let flow = self.transport.connect(&tt).await?;
                    self.transport.send(flow, bytes)?;
                    flow
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            self.transport.send_to(&tt, bytes).await?
        };
        Ok(self.opened(domain, aus, target, flow, record))
    }

    /// Sends `request`, which already carries the sender's own Via on top (a proxy writes
    /// its Via, branch and `alias` itself), for `local_domain` to `target`, a resolved
    /// target of a URI whose domain is `aus`: over an aliased flow if one proves `aus`
    /// (§8.1, rows learnt in either direction), else over a new (or, for non-TLS
    /// transports, RFC 3261-reused) flow, recorded after the server authenticated.
    /// Nothing is added to the message and the transport is not changed.
    pub async fn send_prepared(
        &self,
        local_domain: &str,
        aus: &str,
        target: &Target,
        request: Bytes,
    ) -> Result<Sent, ReuseError> {
        let domain = self.domain(local_domain)?;
        let (record, server_name) = match self.try_alias(domain, aus, target, &request)? {
            Aliased::Sent(flow) => return Ok(self.reused(flow, target, aus)),
            Aliased::Connect(record, server_name) => (record, server_name),
        };
        let tt = self.scoped(domain, target, &server_name);
        let flow = self.transport.send_to(&tt, request).await?;
        Ok(self.opened(domain, aus, target, flow, record))
    }

    /// Sends `bytes` over an aliased flow proving `aus` when the table has one; else says
    /// what a new flow needs.
    fn try_alias(
        &self,
        domain: &LocalDomain,
        aus: &str,
        target: &Target,
        bytes: &Bytes,
    ) -> Result<Aliased, ReuseError> {
        let choice = {
            let mut t = self.shared.tables();
            let c = route(&mut t, &domain.name, aus, target, |f| {
                self.transport.flow_info(*f).is_some()
            });
            self.shared.publish(&t);
            c
        };
        Ok(match choice {
            Route::Reuse { flow, .. } => match self.transport.send(flow, bytes.clone()) {
                Ok(()) => {
                    alias_metrics::reused();
                    Aliased::Sent(flow)
                }
                Err(e) => {
                    // Died between the lookup and the send: a new connection (§8.1).
                    tracing::debug!(%flow, %e, "aliased flow unusable, opening a new one");
                    self.shared.forget(flow);
                    Aliased::Connect(true, aus.to_owned())
                }
            },
            Route::Connect {
                record,
                server_name,
                ..
            } => Aliased::Connect(record, server_name),
        })
    }

    fn reused(&self, flow: Flow, target: &Target, aus: &str) -> Sent {
        Sent {
            flow,
            target: target.clone(),
            aus: aus.to_owned(),
            reused: true,
        }
    }

    /// The target in the reuse scope of `domain`, verified against `server_name` (TLS).
    fn scoped(&self, domain: &LocalDomain, target: &Target, server_name: &str) -> Target {
        let mut tt = target.clone().with_scope(&domain.name);
        if target.transport.is_secure() {
            tt = tt.with_server_name(server_name);
        }
        tt
    }

    /// Records a flow just opened for `domain` (TLS family, when asked).
    fn opened(
        &self,
        domain: &LocalDomain,
        aus: &str,
        target: &Target,
        flow: Flow,
        record: bool,
    ) -> Sent {
        alias_metrics::connected();
        if record && flow.kind().is_secure() {
            // The handshake verified the server against the AUS (RFC 5922 §7.3).
            if let Some(info) = self.transport.flow_info(flow) {
                let ids = info.identities.clone();
                let mut t = self.shared.tables();
                let d = t.add_outbound(&domain.name, AliasKey::from(target), &ids, flow);
                if let AliasDecision::Ignored(r) = d {
                    tracing::debug!(reason = %r, %flow, "outbound flow not aliased");
                }
                self.shared.publish(&t);
            }
        }
        Sent {
            flow,
            target: target.clone(),
            aus: aus.to_owned(),
            reused: false,
        }
    }

    /// The local domain a flow serves. A flow we opened: the domain we opened it for. An
    /// accepted flow: the SNI the client sent if it names one of our domains, else the
    /// listener's domain. Else the default.
    pub fn local_domain_of(&self, inc: &Incoming) -> Option<String> {
        if let Some(d) = self.shared.tables().domain_of(&inc.flow) {
            return Some(d.to_owned());
        }
        let sni = inc
            .server_name
            .as_ref()
            .filter(|_| inc.direction == Direction::Inbound)
            .and_then(|n| {
                self.cfg
                    .domains
                    .iter()
                    .find(|d| d.is_named(n))
                    .map(|d| d.name.clone())
            });
        sni.or_else(|| self.cfg.listener_domains.get(&inc.local).cloned())
            .or_else(|| self.cfg.default_domain.clone())
    }

    /// Server side (§8.2, §9.2): applies the top Via's `alias` of a received request. `None`
    /// for responses, unparsable Vias and flows of no local domain. The request proceeds
    /// whatever the decision.
    pub fn on_incoming(&self, inc: &Incoming) -> Option<AliasDecision<Flow>> {
        if !inc.message.is_request() {
            return None;
        }
        let via = inc.message.top_via().ok()?;
        // Most requests carry no `alias`: decided before the sent-by is copied out.
        if !via.alias {
            return None;
        }
        let va = ViaAlias::of(&via);
        let local = self.local_domain_of(inc)?;
        let ids = &inc.identities;
        // A verified client certificate (§9.2); identities imply one.
        let cert = !ids.is_empty() || inc.peer_certificate;
        let req = va.inbound(
            &local,
            inc.transport(),
            inc.source.ip(),
            cert,
            ids,
            inc.flow,
        );
        let mut t = self.shared.tables();
        let d = t.on_inbound_request(req, &self.cfg.policy);
        if let AliasDecision::Ignored(r) = &d {
            alias_metrics::refused(*r);
        }
        self.shared.publish(&t);
        drop(t);
        // The flow may have closed while we decided: never keep a row for a dead flow.
        if d.is_recorded() && self.transport.flow_info(inc.flow).is_none() {
            self.shared.forget(inc.flow);
        }
        Some(d)
    }

    /// Sends `response` to the request `request` carried (RFC 3261 §18.2.2, RFC 3581 §4):
    /// on the flow the request came on (UDP: to the source, or to `received` at the sent-by
    /// port without `rport`). When a reliable flow has closed meanwhile, a new connection
    /// goes to the `received` address at the sent-by port (the default port of the
    /// transport if none), over the same transport.
    pub async fn send_response(
        &self,
        request: &Incoming,
        response: Bytes,
    ) -> Result<Flow, ReuseError> {
        let flow = match response_route(request) {
            ResponseRoute::Datagram { flow, to } => {
                self.transport.send_datagram_via(flow, to, &response)?;
                return Ok(flow);
            }
            ResponseRoute::Flow(flow) => flow,
        };
        match self.transport.send(flow, response.clone()) {
            Err(TransportError::UnknownFlow(_)) if request.transport().is_reliable() => {
                let via = request.message.top_via().map_err(EditError::Parse)?;
                let ip = via.received.unwrap_or(request.source.ip());
                let kind = request.transport();
                let port = via.port.unwrap_or(kind.default_port());
                let target = transport::Target::new(kind, SocketAddr::new(ip, port));
                Ok(self.transport.send_to(&target, response).await?)
            }
            r => r.map(|()| flow).map_err(ReuseError::from),
        }
    }

    /// Counters of every table.
    pub fn counters(&self) -> AliasCounters {
        self.shared.tables().counters()
    }

    /// A snapshot of every table (descriptors as `tls#12`).
    pub fn dump(&self) -> Vec<TableDump> {
        self.shared.tables().dump()
    }

    /// The flow a request of `local_domain` to `aus` resolved at `key` would reuse now
    /// (counts as a lookup).
    pub fn lookup(&self, local_domain: &str, key: &AliasKey, aus: &str) -> Option<Flow> {
        self.shared.tables().lookup(local_domain, key, aus)
    }
}

fn sent_by_host(s: &str) -> Host<'_> {
    Host::parse(s.as_bytes()).unwrap_or(Host::Name(s.into()))
}
