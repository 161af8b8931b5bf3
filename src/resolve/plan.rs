//! The RFC 3263 resolution state machine: fed DNS answers, it asks for the next queries and ends
//! with an ordered list of targets. No I/O, no clock; randomness is passed in.

use super::naptr::{select_naptr, NaptrRecord};
use super::srv::{order_srv, SrvRecord, SrvSelection};
use super::target::{Scheme, SipTarget, ViaTarget};
use crate::TransportKind;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

/// Which address records to query and in which order to use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum IpFamily {
    /// A only.
    V4Only,
    /// AAAA only.
    V6Only,
    /// A and AAAA; IPv4 addresses of a host before its IPv6 ones.
    #[default]
    V4First,
    /// A and AAAA; IPv6 addresses of a host before its IPv4 ones.
    V6First,
}

/// Resolution policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveConfig {
    /// Transports this element can use, in preference order (used when no NAPTR record exists).
    pub supported: Vec<TransportKind>,
    /// SRV ordering: weighted random (stateful) or deterministic (stateless proxy, §4.4).
    pub srv_selection: SrvSelection,
    /// Address families and their order.
    pub ip_family: IpFamily,
    /// Without NAPTR, also query `_sips._tcp`/`_sips._sctp` for `sip:` URIs (best-effort TLS,
    /// RFC 5630 §5.3). Off by default: RFC 3263 §4.1 uses `_sip` for SIP URIs.
    pub tls_srv_for_sip_uris: bool,
    /// Upper bound on distinct host names expanded to addresses (protects against huge SRV sets).
    pub max_hosts: usize,
}

impl Default for ResolveConfig {
    fn default() -> Self {
        ResolveConfig {
            supported: TransportKind::ALL
                .into_iter()
                .filter(|t| *t != TransportKind::DtlsSctp)
                .collect(),
            srv_selection: SrvSelection::Weighted,
            ip_family: IpFamily::V4First,
            tls_srv_for_sip_uris: false,
            max_hosts: 16,
        }
    }
}

/// DNS record type of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QueryKind {
    /// NAPTR.
    Naptr,
    /// SRV.
    Srv,
    /// A.
    A,
    /// AAAA.
    Aaaa,
}

/// A DNS query the resolution needs answered (name lowercase, no trailing dot).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Query {
    /// Name to query.
    pub name: String,
    /// Record type.
    pub kind: QueryKind,
}

/// The answer to a [`Query`]. An empty list means "no records" (NXDOMAIN, NODATA, or a failed
/// query: the driver decides; RFC 3263 then falls through to the next step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// NAPTR records.
    Naptr(Vec<NaptrRecord>),
    /// SRV records.
    Srv(Vec<SrvRecord>),
    /// A or AAAA addresses.
    Addrs(Vec<IpAddr>),
}

impl Answer {
    /// An empty answer of the right shape for `kind`.
    pub fn empty(kind: QueryKind) -> Answer {
        match kind {
            QueryKind::Naptr => Answer::Naptr(Vec::new()),
            QueryKind::Srv => Answer::Srv(Vec::new()),
            QueryKind::A | QueryKind::Aaaa => Answer::Addrs(Vec::new()),
        }
    }

    fn fits(&self, kind: QueryKind) -> bool {
        matches!(
            (self, kind),
            (Answer::Naptr(_), QueryKind::Naptr)
                | (Answer::Srv(_), QueryKind::Srv)
                | (Answer::Addrs(_), QueryKind::A | QueryKind::Aaaa)
        )
    }
}

pub use crate::Target;

/// The outcome of a resolution: targets in the order to try them, and the AUS domain the
/// server's certificate must match (RFC 5922 §7.3), which is never the SRV target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedTargets {
    /// The URI host (or Via sent-by host for responses), lowercase.
    pub aus: String,
    /// Ordered, duplicate-free targets.
    pub targets: Vec<Target>,
}

impl ResolvedTargets {
    /// A failover cursor over the targets (RFC 3263 §4.3).
    pub fn failover(&self) -> super::failover::Failover {
        super::failover::Failover::new(self.targets.clone())
    }
}

/// Errors of the resolution state machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The URI's transport parameter (or the Via transport) names a transport we do not support.
    #[error("transport {0} is not supported by this element")]
    UnsupportedTransport(TransportKind),
    /// None of the transports the URI scheme allows is supported.
    #[error("no supported transport for this {0:?} target")]
    NoSupportedTransport(Scheme),
    /// An answer arrived for a query that was not outstanding.
    #[error("answer for a query that was not asked: {0:?}")]
    UnexpectedAnswer(Query),
    /// The answer's record type does not match the query.
    #[error("answer type does not match query {0:?}")]
    AnswerKindMismatch(Query),
    /// `finish` was called while queries are still pending.
    #[error("resolution is not finished")]
    NotFinished,
    /// Every step came back empty.
    #[error("no target found for {0}")]
    NoTargets(String),
}

/// A host to expand to addresses: the transport and port are already decided.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostStep {
    transport: TransportKind,
    name: String,
    port: u16,
}

#[derive(Debug, Clone)]
struct SrvStep {
    transport: TransportKind,
    name: String,
    answer: Option<Vec<SrvRecord>>,
}

#[derive(Debug, Clone)]
enum Phase {
    /// Waiting for the NAPTR answer of the domain.
    Naptr { domain: String, scheme: Scheme },
    /// Waiting for SRV answers; `fallback` is used if all of them are empty.
    Srv {
        steps: Vec<SrvStep>,
        fallback: Option<HostStep>,
    },
    /// Waiting for address answers of `hosts`.
    Addr {
        hosts: Vec<HostStep>,
        answers: Vec<(Query, Vec<IpAddr>)>,
    },
    /// Finished.
    Done,
}

/// RFC 3263 resolution of one target (§4) or one Via (§5). Drive it with [`poll_query`],
/// [`on_answer`], then [`finish`]. All queries of a phase are released together so a driver may
/// run them concurrently and answer in any order.
///
/// [`poll_query`]: Resolution::poll_query
/// [`on_answer`]: Resolution::on_answer
/// [`finish`]: Resolution::finish
#[derive(Debug, Clone)]
pub struct Resolution {
    aus: String,
    supported: Vec<TransportKind>,
    srv_selection: SrvSelection,
    ip_family: IpFamily,
    tls_srv_for_sip_uris: bool,
    max_hosts: usize,
    phase: Phase,
    queue: VecDeque<Query>,
    outstanding: Vec<Query>,
    targets: Vec<Target>,
}

impl Resolution {
    fn empty(aus: String, cfg: &ResolveConfig) -> Resolution {
        Resolution {
            aus,
            supported: cfg.supported.clone(),
            srv_selection: cfg.srv_selection,
            ip_family: cfg.ip_family,
            tls_srv_for_sip_uris: cfg.tls_srv_for_sip_uris,
            max_hosts: cfg.max_hosts.max(1),
            phase: Phase::Done,
            queue: VecDeque::new(),
            outstanding: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// Starts resolving a request target (RFC 3263 §4.1, §4.2).
    pub fn new(target: &SipTarget, cfg: &ResolveConfig) -> Result<Resolution, PlanError> {
        let mut r = Resolution::empty(target.aus(), cfg);
        if let Some(t) = target.transport {
            if !r.supported.contains(&t) {
                return Err(PlanError::UnsupportedTransport(t));
            }
        }
        let (ip, name) = (target.host.ip(), target.host.name().unwrap_or_default());
        match (ip, target.port, target.transport) {
            // Numeric IP: no DNS at all. TransportKind param, else UDP for sip:, TLS for sips:.
            (Some(ip), port, param) => {
                let t = param.map_or_else(|| r.default_transport(target.scheme), Ok)?;
                r.targets.push(Target::new(
                    t,
                    SocketAddr::new(ip, port.unwrap_or_else(|| t.default_port())),
                ));
                r.phase = Phase::Done;
            }
            // Name with explicit port: A/AAAA only, never SRV (§4.2).
            (None, Some(port), param) => {
                let t = param.map_or_else(|| r.default_transport(target.scheme), Ok)?;
                r.start_addr(vec![HostStep {
                    transport: t,
                    name: name.to_owned(),
                    port,
                }]);
            }
            // Name with transport param, no port: SRV for that transport, then A/AAAA (§4.2).
            (None, None, Some(t)) => r.start_srv_or_addr(t, name),
            // Name only: NAPTR first (§4.1).
            (None, None, None) => {
                r.phase = Phase::Naptr {
                    domain: name.to_owned(),
                    scheme: target.scheme,
                };
                r.queue.push_back(Query {
                    name: name.to_owned(),
                    kind: QueryKind::Naptr,
                });
            }
        }
        Ok(r)
    }

    /// Starts locating the client from the top Via when sending a response failed
    /// (RFC 3261 §18.2.2 then RFC 3263 §5): first `received` (with `rport` on UDP, else the
    /// sent-by port), then sent-by: numeric IP, or name with port (A/AAAA), or name without port
    /// (SRV `_sip`/`_sips` for the Via transport, then A/AAAA at the default port).
    pub fn for_response(via: &ViaTarget, cfg: &ResolveConfig) -> Result<Resolution, PlanError> {
        let t = via.transport;
        let (ip, name) = (via.host.ip(), via.host.name().unwrap_or_default());
        let aus = match ip {
            Some(ip) => ip.to_string(),
            None => name.to_owned(),
        };
        let mut r = Resolution::empty(aus, cfg);
        if !r.supported.contains(&t) {
            return Err(PlanError::UnsupportedTransport(t));
        }
        let sent_by_port = via.port.unwrap_or_else(|| t.default_port());
        if let Some(received) = via.received {
            let port = match (t, via.rport) {
                (TransportKind::Udp, Some(rport)) => rport,
                _ => sent_by_port,
            };
            r.targets
                .push(Target::new(t, SocketAddr::new(received, port)));
        }
        match (ip, via.port) {
            (Some(ip), _) => {
                r.push_target(Target::new(t, SocketAddr::new(ip, sent_by_port)));
                r.phase = Phase::Done;
            }
            (None, Some(port)) => r.start_addr(vec![HostStep {
                transport: t,
                name: name.to_owned(),
                port,
            }]),
            (None, None) => r.start_srv_or_addr(t, name),
        }
        Ok(r)
    }

    /// One transport, a name and no port (§4.2 with a `transport` parameter, §5 for a Via):
    /// the SRV records of that transport's service, else the name's addresses at the
    /// transport's default port (also when the transport has no SRV service).
    fn start_srv_or_addr(&mut self, transport: TransportKind, name: &str) {
        let fallback = HostStep {
            transport,
            name: name.to_owned(),
            port: transport.default_port(),
        };
        match transport.srv_name(name) {
            Some(srv) => self.start_srv(
                vec![SrvStep {
                    transport,
                    name: srv,
                    answer: None,
                }],
                Some(fallback),
            ),
            None => self.start_addr(vec![fallback]),
        }
    }

    /// The next query to send, if any. Every query returned must be answered with
    /// [`Resolution::on_answer`].
    pub fn poll_query(&mut self) -> Option<Query> {
        let q = self.queue.pop_front()?;
        self.outstanding.push(q.clone());
        Some(q)
    }

    /// True once no query is pending and the targets are known.
    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// The AUS domain of this resolution.
    pub fn aus(&self) -> &str {
        &self.aus
    }

    /// Feeds the answer to an outstanding query. `rng` is used for SRV weighted selection.
    pub fn on_answer<R: Rng + ?Sized>(
        &mut self,
        query: &Query,
        answer: Answer,
        rng: &mut R,
    ) -> Result<(), PlanError> {
        let pos = self
            .outstanding
            .iter()
            .position(|q| q == query)
            .ok_or_else(|| PlanError::UnexpectedAnswer(query.clone()))?;
        if !answer.fits(query.kind) {
            return Err(PlanError::AnswerKindMismatch(query.clone()));
        }
        self.outstanding.swap_remove(pos);
        let phase = std::mem::replace(&mut self.phase, Phase::Done);
        match (phase, answer) {
            (Phase::Naptr { domain, scheme }, Answer::Naptr(records)) => {
                self.after_naptr(&domain, scheme, &records);
            }
            (
                Phase::Srv {
                    mut steps,
                    fallback,
                },
                Answer::Srv(records),
            ) => {
                // Two NAPTR services may share one SRV name: one answer serves both.
                for step in steps.iter_mut().filter(|s| s.name == query.name) {
                    step.answer = Some(records.clone());
                }
                if steps.iter().all(|s| s.answer.is_some()) {
                    self.after_srv(steps, fallback, rng);
                } else {
                    self.phase = Phase::Srv { steps, fallback };
                }
            }
            (Phase::Addr { hosts, mut answers }, Answer::Addrs(addrs)) => {
                answers.push((query.clone(), addrs));
                if self.outstanding.is_empty() && self.queue.is_empty() {
                    self.after_addr(&hosts, &answers);
                } else {
                    self.phase = Phase::Addr { hosts, answers };
                }
            }
            (phase, _) => {
                self.phase = phase;
                return Err(PlanError::AnswerKindMismatch(query.clone()));
            }
        }
        Ok(())
    }

    /// The ordered targets. Fails if queries are pending or nothing was found.
    pub fn finish(self) -> Result<ResolvedTargets, PlanError> {
        if !self.is_done() {
            return Err(PlanError::NotFinished);
        }
        if self.targets.is_empty() {
            return Err(PlanError::NoTargets(self.aus));
        }
        Ok(ResolvedTargets {
            aus: self.aus,
            targets: self.targets,
        })
    }

    /// RFC 3263 §4.1: UDP for sip: (TCP if UDP is not supported: RFC 3261 §18 servers listen on
    /// both), TLS over TCP for sips:.
    fn default_transport(&self, scheme: Scheme) -> Result<TransportKind, PlanError> {
        let candidates: &[TransportKind] = match scheme {
            Scheme::Sip => &[TransportKind::Udp, TransportKind::Tcp],
            Scheme::Sips => &[TransportKind::Tls],
        };
        candidates
            .iter()
            .copied()
            .find(|t| self.supported.contains(t))
            .ok_or(PlanError::NoSupportedTransport(scheme))
    }

    fn push_target(&mut self, t: Target) {
        if !self.targets.contains(&t) {
            self.targets.push(t);
        }
    }

    fn start_srv(&mut self, steps: Vec<SrvStep>, fallback: Option<HostStep>) {
        for s in &steps {
            let q = Query {
                name: s.name.clone(),
                kind: QueryKind::Srv,
            };
            if !self.queue.contains(&q) {
                self.queue.push_back(q);
            }
        }
        self.phase = Phase::Srv { steps, fallback };
    }

    fn start_addr(&mut self, mut hosts: Vec<HostStep>) {
        let mut names: Vec<String> = Vec::new();
        hosts.retain(|h| {
            if names.contains(&h.name) {
                return true;
            }
            if names.len() >= self.max_hosts {
                return false;
            }
            names.push(h.name.clone());
            true
        });
        let kinds: &[QueryKind] = match self.ip_family {
            IpFamily::V4Only => &[QueryKind::A],
            IpFamily::V6Only => &[QueryKind::Aaaa],
            IpFamily::V4First | IpFamily::V6First => &[QueryKind::A, QueryKind::Aaaa],
        };
        for h in &hosts {
            // A host that is already an IP literal needs no query.
            if h.name.parse::<IpAddr>().is_ok() {
                continue;
            }
            for kind in kinds {
                let q = Query {
                    name: h.name.clone(),
                    kind: *kind,
                };
                if !self.queue.contains(&q) {
                    self.queue.push_back(q);
                }
            }
        }
        if self.queue.is_empty() {
            self.after_addr(&hosts, &[]);
        } else {
            self.phase = Phase::Addr {
                hosts,
                answers: Vec::new(),
            };
        }
    }

    fn after_naptr(&mut self, domain: &str, scheme: Scheme, records: &[NaptrRecord]) {
        let choices = select_naptr(records, scheme, &self.supported);
        if let Some(first) = choices.first() {
            // §4.2: no SRV at the replacement -> A/AAAA of the domain, transport from NAPTR.
            let fallback = HostStep {
                transport: first.transport,
                name: domain.to_string(),
                port: first.transport.default_port(),
            };
            let steps = choices
                .into_iter()
                .map(|c| SrvStep {
                    transport: c.transport,
                    name: c.srv_name,
                    answer: None,
                })
                .collect();
            self.start_srv(steps, Some(fallback));
            return;
        }
        // No (usable) NAPTR: SRV for each supported transport the scheme allows (§4.1).
        let steps: Vec<SrvStep> = self
            .supported
            .iter()
            .copied()
            .filter(|t| match scheme {
                Scheme::Sips => t.is_secure(),
                Scheme::Sip => !t.is_secure() || self.tls_srv_for_sip_uris,
            })
            .filter_map(|t| {
                t.srv_name(domain).map(|name| SrvStep {
                    transport: t,
                    name,
                    answer: None,
                })
            })
            .collect();
        // The last resort (UDP/TCP for sip:, TLS for sips:) only if we support it; an element
        // with, say, SCTP only still resolves through NAPTR or SRV.
        let fallback = self.default_transport(scheme).ok().map(|t| HostStep {
            transport: t,
            name: domain.to_string(),
            port: t.default_port(),
        });
        if steps.is_empty() {
            self.start_addr(fallback.into_iter().collect());
        } else {
            self.start_srv(steps, fallback);
        }
    }

    fn after_srv<R: Rng + ?Sized>(
        &mut self,
        steps: Vec<SrvStep>,
        fallback: Option<HostStep>,
        rng: &mut R,
    ) {
        let mut hosts = Vec::new();
        for step in steps {
            let records = step.answer.unwrap_or_default();
            for rec in order_srv(&records, self.srv_selection, rng) {
                let h = HostStep {
                    transport: step.transport,
                    name: rec.target,
                    port: rec.port,
                };
                if !hosts.contains(&h) {
                    hosts.push(h);
                }
            }
        }
        if hosts.is_empty() {
            hosts.extend(fallback);
        }
        self.start_addr(hosts);
    }

    fn after_addr(&mut self, hosts: &[HostStep], answers: &[(Query, Vec<IpAddr>)]) {
        let lookup = |name: &str, kind: QueryKind| -> Vec<IpAddr> {
            answers
                .iter()
                .filter(|(q, _)| q.name == name && q.kind == kind)
                .flat_map(|(_, a)| a.iter().copied())
                .filter(|ip| match kind {
                    QueryKind::A => ip.is_ipv4(),
                    _ => ip.is_ipv6(),
                })
                .collect()
        };
        for h in hosts {
            let ips: Vec<IpAddr> = if let Ok(ip) = h.name.parse::<IpAddr>() {
                vec![ip]
            } else {
                let v4 = lookup(&h.name, QueryKind::A);
                let v6 = lookup(&h.name, QueryKind::Aaaa);
                match self.ip_family {
                    IpFamily::V4Only => v4,
                    IpFamily::V6Only => v6,
                    IpFamily::V4First => v4.into_iter().chain(v6).collect(),
                    IpFamily::V6First => v6.into_iter().chain(v4).collect(),
                }
            };
            for ip in ips {
                self.push_target(Target::new(h.transport, SocketAddr::new(ip, h.port)));
            }
        }
        self.phase = Phase::Done;
    }
}

/// Runs a resolution to the end with a synchronous answer function (tests, static tables,
/// answers already cached).
pub fn resolve_with<R, F>(
    mut resolution: Resolution,
    rng: &mut R,
    mut answer: F,
) -> Result<ResolvedTargets, PlanError>
where
    R: Rng + ?Sized,
    F: FnMut(&Query) -> Answer,
{
    while let Some(q) = resolution.poll_query() {
        let a = answer(&q);
        resolution.on_answer(&q, a, rng)?;
    }
    resolution.finish()
}
