//! The DNS driver: runs a [`Resolution`]'s queries with hickory-resolver against one configured
//! name server, caching answers in a [`DnsCache`] (clock read here, in the driver only).

use super::cache::{DnsCache, TtlBounds};
use super::naptr::NaptrRecord;
use super::plan::{
    Answer, PlanError, Query, QueryKind, Resolution, ResolveConfig, ResolvedTargets,
};
use super::srv::SrvRecord;
use super::target::{SipTarget, ViaTarget};
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// TransportKind used to talk to the name server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameServerProtocol {
    /// DNS over UDP (TCP is not tried on truncation).
    #[default]
    Udp,
    /// DNS over TCP.
    Tcp,
    /// UDP, with TCP on truncation or error.
    UdpAndTcp,
}

/// Configuration of the DNS driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// The name server (IP and port).
    pub name_server: SocketAddr,
    /// How to reach it.
    pub protocol: NameServerProtocol,
    /// Timeout of one DNS query.
    pub timeout: Duration,
    /// Attempts per query.
    pub attempts: usize,
    /// Maximum number of cached answers (0 disables the cache).
    pub cache_entries: usize,
    /// TTL bounds for cached answers.
    pub ttl_bounds: TtlBounds,
    /// TTL of "no records" answers when the server gave no SOA minimum.
    pub negative_ttl: Duration,
    /// RFC 3263 policy (supported transports, SRV ordering, address families).
    pub resolve: ResolveConfig,
}

impl DnsConfig {
    /// Defaults around one name server: UDP, 2 s timeout, 2 attempts, 1024 cached answers.
    pub fn new(name_server: SocketAddr) -> DnsConfig {
        DnsConfig {
            name_server,
            protocol: NameServerProtocol::Udp,
            timeout: Duration::from_secs(2),
            attempts: 2,
            cache_entries: 1024,
            ttl_bounds: TtlBounds::default(),
            negative_ttl: Duration::from_secs(30),
            resolve: ResolveConfig::default(),
        }
    }
}

/// Errors of the DNS driver.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The resolver could not be built from the configuration.
    #[error("cannot build the DNS resolver: {0}")]
    Build(#[source] NetError),
    /// The RFC 3263 plan failed (unsupported transport, no target...).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Nothing was found and at least one query failed (timeout, SERVFAIL, I/O): the failure is
    /// reported instead of "no target".
    #[error("DNS query {query:?} failed: {source}")]
    Query {
        /// The failed query.
        query: Query,
        /// The resolver's error.
        #[source]
        source: NetError,
    },
    /// A query task panicked or was cancelled.
    #[error("DNS query task failed: {0}")]
    Task(String),
}

/// RFC 3263 resolver over hickory-resolver. Cheap to clone (shared cache).
#[derive(Clone)]
pub struct DnsResolver {
    resolver: TokioResolver,
    cache: Arc<Mutex<DnsCache>>,
    config: Arc<DnsConfig>,
}

impl std::fmt::Debug for DnsResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsResolver")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

type QueryOutcome = (Query, Result<(Answer, Duration), NetError>);

impl DnsResolver {
    /// Builds a resolver that sends every query to `config.name_server` (no system
    /// configuration, no hosts file, hickory's own cache off: ours has the injected clock).
    pub fn new(config: DnsConfig) -> Result<DnsResolver, DnsError> {
        let ns = config.name_server;
        let connections = match config.protocol {
            NameServerProtocol::Udp => vec![ConnectionConfig::udp()],
            NameServerProtocol::Tcp => vec![ConnectionConfig::tcp()],
            NameServerProtocol::UdpAndTcp => vec![ConnectionConfig::udp(), ConnectionConfig::tcp()],
        }
        .into_iter()
        .map(|mut c| {
            c.port = ns.port();
            c
        })
        .collect();
        let ns_config = NameServerConfig::new(ns.ip(), true, connections);
        let mut opts = ResolverOpts::default();
        opts.timeout = config.timeout;
        opts.attempts = config.attempts.max(1);
        opts.cache_size = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.try_tcp_on_error = config.protocol == NameServerProtocol::UdpAndTcp;
        let resolver = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(vec![ns_config]),
            TokioRuntimeProvider::default(),
        )
        .with_options(opts)
        .build()
        .map_err(DnsError::Build)?;
        let cache = DnsCache::new(config.cache_entries, config.ttl_bounds);
        Ok(DnsResolver {
            resolver,
            cache: Arc::new(Mutex::new(cache)),
            config: Arc::new(config),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &DnsConfig {
        &self.config
    }

    /// Resolves a request target (RFC 3263 §4).
    pub async fn resolve(&self, target: &SipTarget) -> Result<ResolvedTargets, DnsError> {
        let plan = Resolution::new(target, &self.config.resolve)?;
        self.run(plan).await
    }

    /// Locates the client of a request from its top Via (RFC 3263 §5).
    pub async fn resolve_response(&self, via: &ViaTarget) -> Result<ResolvedTargets, DnsError> {
        let plan = Resolution::for_response(via, &self.config.resolve)?;
        self.run(plan).await
    }

    /// Drives any resolution to its end: each phase's queries run concurrently.
    pub async fn run(&self, mut plan: Resolution) -> Result<ResolvedTargets, DnsError> {
        let mut last_error: Option<(Query, NetError)> = None;
        while !plan.is_done() {
            let mut batch = Vec::new();
            while let Some(q) = plan.poll_query() {
                batch.push(q);
            }
            if batch.is_empty() {
                // A phase always releases its queries; guard against a stuck plan anyway.
                break;
            }
            let mut tasks: JoinSet<QueryOutcome> = JoinSet::new();
            let mut answered: Vec<(Query, Answer)> = Vec::new();
            for q in batch {
                if let Some(a) = self.cached(&q) {
                    tracing::trace!(?q, "DNS cache hit");
                    answered.push((q, a));
                    continue;
                }
                let resolver = self.resolver.clone();
                let negative_ttl = self.config.negative_ttl;
                tasks.spawn(async move {
                    let r = query_dns(&resolver, &q, negative_ttl).await;
                    (q, r)
                });
            }
            while let Some(joined) = tasks.join_next().await {
                let (q, result) = joined.map_err(|e| DnsError::Task(e.to_string()))?;
                match result {
                    Ok((answer, ttl)) => {
                        self.store(&q, &answer, ttl);
                        answered.push((q, answer));
                    }
                    Err(e) => {
                        tracing::debug!(?q, error = %e, "DNS query failed; treated as empty");
                        let empty = Answer::empty(q.kind);
                        last_error = Some((q.clone(), e));
                        answered.push((q, empty));
                    }
                }
            }
            for (q, a) in answered {
                plan.on_answer(&q, a, &mut rand::rng())?;
            }
        }
        match plan.finish() {
            Err(PlanError::NoTargets(aus)) => match last_error {
                Some((query, source)) => Err(DnsError::Query { query, source }),
                None => Err(DnsError::Plan(PlanError::NoTargets(aus))),
            },
            other => Ok(other?),
        }
    }

    fn cached(&self, q: &Query) -> Option<Answer> {
        let cache = self.cache.lock().ok()?;
        cache.get(q, Instant::now()).cloned()
    }

    fn store(&self, q: &Query, a: &Answer, ttl: Duration) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(q.clone(), a.clone(), ttl, Instant::now());
        }
    }
}

/// Runs one query. "No records" (NXDOMAIN or NODATA) is an empty answer, cached for the SOA
/// negative TTL (or `negative_ttl`); other failures are errors.
async fn query_dns(
    resolver: &TokioResolver,
    q: &Query,
    negative_ttl: Duration,
) -> Result<(Answer, Duration), NetError> {
    let fqdn = format!("{}.", q.name);
    let rtype = match q.kind {
        QueryKind::Naptr => RecordType::NAPTR,
        QueryKind::Srv => RecordType::SRV,
        QueryKind::A => RecordType::A,
        QueryKind::Aaaa => RecordType::AAAA,
    };
    let lookup = match resolver.lookup(fqdn.as_str(), rtype).await {
        Ok(l) => l,
        Err(NetError::Dns(HickoryDnsError::NoRecordsFound(nr))) => {
            let ttl = nr
                .negative_ttl
                .map(|s| Duration::from_secs(u64::from(s)))
                .unwrap_or(negative_ttl);
            return Ok((Answer::empty(q.kind), ttl));
        }
        Err(e) => return Err(e),
    };
    let mut ttl: Option<u32> = None;
    let mut naptr = Vec::new();
    let mut srv = Vec::new();
    let mut addrs = Vec::new();
    for record in lookup.answers() {
        let used = match (&record.data, q.kind) {
            (RData::NAPTR(n), QueryKind::Naptr) => {
                naptr.push(NaptrRecord {
                    order: n.order,
                    preference: n.preference,
                    flags: String::from_utf8_lossy(&n.flags).into_owned(),
                    services: String::from_utf8_lossy(&n.services).into_owned(),
                    regexp: String::from_utf8_lossy(&n.regexp).into_owned(),
                    replacement: n.replacement.to_ascii(),
                });
                true
            }
            (RData::SRV(s), QueryKind::Srv) => {
                srv.push(SrvRecord {
                    priority: s.priority,
                    weight: s.weight,
                    port: s.port,
                    target: s.target.to_ascii(),
                });
                true
            }
            (RData::A(a), QueryKind::A) => {
                addrs.push(std::net::IpAddr::V4(a.0));
                true
            }
            (RData::AAAA(a), QueryKind::Aaaa) => {
                addrs.push(std::net::IpAddr::V6(a.0));
                true
            }
            _ => false,
        };
        if used {
            ttl = Some(ttl.map_or(record.ttl, |t| t.min(record.ttl)));
        }
    }
    let answer = match q.kind {
        QueryKind::Naptr => Answer::Naptr(naptr),
        QueryKind::Srv => Answer::Srv(srv),
        QueryKind::A | QueryKind::Aaaa => Answer::Addrs(addrs),
    };
    let ttl = ttl
        .map(|s| Duration::from_secs(u64::from(s)))
        .unwrap_or(negative_ttl);
    Ok((answer, ttl))
}
