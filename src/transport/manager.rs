//! The connection manager: the flow table, the reuse index (RFC 3261 §18 persistent
//! connections), admission limits, and the public [`Transport`] handle.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch, Notify};

use super::config::TransportConfig;
use super::dialer::Dialer;
use super::error::TransportError;
use super::flow::{Direction, Flow, FlowInfo};
use super::limits::{AdmitError, ConnectionLimits, WriteBudget};
use super::live::{LiveCell, LiveLimits};
use super::metrics;
use super::reroute;
use super::sink::{ConnSink, PushError, Sink};
use super::table::FlowTable;
pub(crate) use super::table::ReuseKey;
use crate::wire::Message;
use crate::PeerIdentities;
use crate::Target;
use crate::TransportKind;

/// A received message with everything known about where it came from.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The message (requests carry `received`/`rport` in their top Via).
    pub message: Message,
    /// The flow it arrived on: answer on it (RFC 3261 §18.2.2).
    pub flow: Flow,
    /// The peer's address.
    pub source: SocketAddr,
    /// Our address it arrived at.
    pub local: SocketAddr,
    /// Verified identities of the peer (empty if none).
    pub identities: PeerIdentities,
    /// Who opened the flow.
    pub direction: Direction,
    /// TLS family. Inbound: the SNI the client sent (the local domain it asked for), if
    /// any. Outbound: the name we verified the server against.
    pub server_name: Option<Arc<str>>,
    /// TLS family: the peer presented a certificate that verified (inbound: a client
    /// certificate, RFC 5923 §9.2).
    pub peer_certificate: bool,
}

impl Incoming {
    /// A message received on the flow `info` describes: everything the layer above needs
    /// arrives with it, with no lookup in the flow table.
    pub(crate) fn new(message: Message, info: &FlowInfo) -> Incoming {
        Incoming {
            message,
            flow: info.flow,
            source: info.peer,
            local: info.local,
            identities: info.identities.clone(),
            direction: info.direction,
            server_name: info.server_name.clone(),
            peer_certificate: info.peer_certificate,
        }
    }

    /// The transport it arrived over.
    pub fn transport(&self) -> TransportKind {
        self.flow.kind()
    }
}

/// Longest pause of the UDP sweep.
const SWEEP_MAX: Duration = Duration::from_secs(30);
/// How often the UDP sockets' kernel counters (drops) are read.
const STATS_PERIOD: Duration = Duration::from_secs(5);

/// Shared state behind every [`Transport`] clone and driver task.
pub(crate) struct Inner {
    /// The settings given at the start; the changeable ones are read from `live`.
    pub(crate) cfg: TransportConfig,
    /// The limits in force ([`Transport::set_limits`]).
    pub(crate) live: LiveCell,
    /// Refusals by the connection limits not logged yet (one line a second at most).
    refusals: RefusalLog,
    next_id: AtomicU64,
    tables: Mutex<FlowTable>,
    limits: Mutex<ConnectionLimits>,
    /// The receivers' queues, one per shard ([`Transport::new_sharded`]).
    pub(crate) incoming: super::shard::IncomingQueues,
    pub(crate) tls_client: Mutex<Option<Arc<rustls::ClientConfig>>>,
    /// Client configurations per reuse scope (a local domain's own client certificate).
    tls_client_by_scope: Mutex<HashMap<Arc<str>, Arc<rustls::ClientConfig>>>,
    /// Connects one at a time per reuse key.
    pub(crate) dialer: Dialer,
    pub(crate) shutdown: watch::Sender<bool>,
    live_tasks: AtomicUsize,
    tasks_done: Notify,
    /// Called when a stream flow starts closing or is gone (RFC 5923 alias rows follow).
    close_hooks: Mutex<Vec<CloseHook>>,
    /// Stream connections registered since the start, by direction (inbound, outbound).
    opened: [AtomicUsize; 2],
    /// Metric handles, registered once per transport.
    pub(crate) metrics: metrics::TransportMetrics,
    /// TLS peers' identities, per certificate.
    pub(crate) identities: super::session::Identities,
    /// SCTP sockets and associations.
    pub(crate) sctp: super::sctp::SctpState,
    /// Per-source flood limits.
    pub(crate) flood: super::flood::FloodGate,
    /// The kernel's source address per destination (which listener a packet leaves by).
    pub(crate) egress: super::egress::Egress,
    /// UDP listeners' buffers and kernel drop counters.
    udp_stats: Mutex<Vec<super::sockstats::UdpSocketEntry>>,
}

/// A function told about every stream flow that starts closing or is gone; it may be called
/// twice for one flow and must not call back into the transport's tables.
pub type CloseHook = Arc<dyn Fn(Flow) + Send + Sync>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the tables inconsistent in a
    // way worse than losing one entry; keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Holds one admitted connection against the limits; releases it on drop.
pub(crate) struct Admission {
    inner: Arc<Inner>,
    ip: IpAddr,
}

impl Drop for Admission {
    fn drop(&mut self) {
        lock(&self.inner.limits).release(self.ip);
    }
}

/// Counts a running driver task; [`Transport::shutdown`] waits for them.
pub(crate) struct TaskGuard(Arc<Inner>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.live_tasks.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.tasks_done.notify_waiters();
        }
    }
}

/// Removes a stream flow from the tables when its driver ends.
pub(crate) struct StreamGuard {
    pub(crate) inner: Arc<Inner>,
    pub(crate) flow: Flow,
    pub(crate) reason: &'static str,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.inner.remove_stream(self.flow);
        self.inner
            .metrics
            .connection_closed(self.flow.kind(), self.reason);
    }
}

/// The parts a stream driver needs, created when the flow is registered.
pub(crate) struct StreamParts {
    pub(crate) info: FlowInfo,
    pub(crate) sink: Arc<ConnSink>,
}

/// Logs refusals by the connection limits without letting a flood of connects flood the
/// log: the first refusal of each second is logged with how many were not.
#[derive(Debug)]
struct RefusalLog {
    start: Instant,
    /// The second (since `start`) of the last line, plus one (0: none yet).
    last_second: AtomicU64,
    unlogged: AtomicU64,
}

impl RefusalLog {
    fn new() -> Self {
        RefusalLog {
            start: Instant::now(),
            last_second: AtomicU64::new(0),
            unlogged: AtomicU64::new(0),
        }
    }

    /// Whether to log a refusal now; with how many refusals went unlogged before it.
    fn take(&self, now: Instant) -> Option<u64> {
        let second = now.saturating_duration_since(self.start).as_secs() + 1;
        let last = self.last_second.load(Ordering::Relaxed);
        if last != second
            && self
                .last_second
                .compare_exchange(last, second, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.unlogged.swap(0, Ordering::Relaxed));
        }
        self.unlogged.fetch_add(1, Ordering::Relaxed);
        None
    }
}

impl Inner {
    /// The limits in force.
    pub(crate) fn limits(&self) -> LiveLimits {
        self.live.get()
    }

    /// The byte bound of write queues in force.
    pub(crate) fn budget(&self) -> WriteBudget {
        self.live.get().budget()
    }

    /// Remembers a bound UDP socket for [`Transport::udp_sockets`] and the drop counter.
    pub(crate) fn add_udp_socket(&self, entry: super::sockstats::UdpSocketEntry) {
        lock(&self.udp_stats).push(entry);
    }

    /// Reads the UDP sockets' kernel counters now (and moves the exported counters).
    pub(crate) fn refresh_udp_socket_stats(&self) -> Vec<super::sockstats::UdpSocketStats> {
        lock(&self.udp_stats).iter().map(|e| e.refresh()).collect()
    }

    /// Counts and logs an accepted connection the limits refused.
    pub(crate) fn refused(&self, kind: TransportKind, peer: SocketAddr, e: AdmitError) {
        metrics::drop(kind, e.reason());
        if let Some(unlogged) = self.refusals.take(Instant::now()) {
            tracing::warn!(transport = %kind, %peer, reason = e.reason(), error = %e,
                also_refused = unlogged, "connection refused by the connection limits");
        }
    }

    pub(crate) fn next_flow(&self, kind: TransportKind) -> Flow {
        Flow::new(self.next_id.fetch_add(1, Ordering::Relaxed), kind)
    }

    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, TransportError> {
        lock(&self.limits).admit(ip)?;
        Ok(Admission {
            inner: Arc::clone(self),
            ip,
        })
    }

    pub(crate) fn task(self: &Arc<Self>) -> TaskGuard {
        self.live_tasks.fetch_add(1, Ordering::AcqRel);
        TaskGuard(Arc::clone(self))
    }

    pub(crate) fn tables(&self) -> MutexGuard<'_, FlowTable> {
        lock(&self.tables)
    }

    /// Registers a stream flow (after the TLS handshake for TLS).
    pub(crate) fn register_stream(
        &self,
        info: FlowInfo,
        reuse_key: Option<ReuseKey>,
    ) -> StreamParts {
        let sink = ConnSink::new();
        self.tables()
            .insert_conn(info.clone(), Arc::clone(&sink), reuse_key, Instant::now());
        let dir = usize::from(info.direction == Direction::Outbound);
        if let Some(c) = self.opened.get(dir) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.metrics
            .connection_opened(info.flow.kind(), info.direction);
        tracing::debug!(flow = %info.flow, peer = %info.peer, local = %info.local,
            direction = info.direction.as_str(), identities = ?&*info.identities, "flow opened");
        StreamParts { info, sink }
    }

    /// Registers an SCTP association.
    pub(crate) fn register_assoc(
        &self,
        info: FlowInfo,
        sink: Arc<super::sctp::AssocSink>,
        reuse_key: Option<ReuseKey>,
    ) {
        let dir = usize::from(info.direction == Direction::Outbound);
        if let Some(c) = self.opened.get(dir) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.metrics
            .connection_opened(info.flow.kind(), info.direction);
        self.tables()
            .insert_flow(info, Sink::Assoc(sink), reuse_key, Instant::now());
    }

    /// Replaces what is known about a registered flow (TLS over SCTP: who the peer proved to
    /// be, once its first stream's handshake finished).
    pub(crate) fn update_flow_info(&self, info: FlowInfo) {
        self.tables().update_info(info);
    }

    /// Takes a flow out of the reuse index (it starts no new transaction).
    pub(crate) fn unindex(&self, flow: Flow) {
        self.tables().unindex(flow);
        self.closing(flow);
    }

    pub(crate) fn remove_stream(&self, flow: Flow) {
        self.tables().remove(flow);
        self.closing(flow);
    }

    /// Tells the close hooks (outside the tables lock).
    pub(crate) fn closing(&self, flow: Flow) {
        let hooks: Vec<CloseHook> = lock(&self.close_hooks).clone();
        for h in hooks {
            h(flow);
        }
    }

    /// The UDP flow of (socket, peer), created if new; the least recently used flow is
    /// forgotten when the table is full.
    pub(crate) fn udp_flow(
        &self,
        sock_idx: usize,
        peer: SocketAddr,
        direction: Direction,
        now: Instant,
    ) -> Option<FlowInfo> {
        let mut t = self.tables();
        let u = t.udp_flow(
            sock_idx,
            peer,
            direction,
            now,
            self.live.get().max_udp_flows,
            || self.next_flow(TransportKind::Udp),
        )?;
        if u.evicted {
            metrics::drop(TransportKind::Udp, "udp_flow_evicted");
        }
        metrics::udp_flows(t.counts().udp_flows);
        Some(u.info)
    }

    /// Forgets UDP flows idle since before `now - idle_timeout`.
    pub(crate) fn sweep_udp(&self, now: Instant) {
        let Some(cutoff) = now.checked_sub(self.live.get().idle_timeout) else {
            return;
        };
        let mut t = self.tables();
        t.sweep_udp(cutoff);
        metrics::udp_flows(t.counts().udp_flows);
    }

    /// Mirrors one SIP message (sent or received; TLS family: the plaintext) to the capture
    /// sink, if one is configured. Every driver calls it for what it delivers and what it
    /// sends; without capture it is one branch.
    #[inline]
    pub(crate) fn capture(
        &self,
        kind: TransportKind,
        source: SocketAddr,
        destination: SocketAddr,
        message: &Bytes,
    ) {
        if let Some(c) = &self.cfg.capture {
            c.record(kind, source, destination, message.clone());
        }
    }

    /// Queues bytes on a flow without waiting.
    pub(crate) fn send(&self, flow: Flow, bytes: Bytes) -> Result<(), TransportError> {
        let t = self.tables();
        let (sink, ends) = match t.get(flow) {
            None => return Err(TransportError::UnknownFlow(flow)),
            Some(e) => {
                // The addresses are copied only when they will be mirrored.
                let ends = self
                    .cfg
                    .capture
                    .as_ref()
                    .map(|_| (e.info.local, e.info.peer));
                (e.sink.clone(), ends)
            }
        };
        drop(t);
        if let Some((local, peer)) = ends {
            self.capture(flow.kind(), local, peer, &bytes);
        }
        match sink {
            Sink::Datagram { socket, peer, .. } => {
                send_datagram(&socket, peer, &bytes, self.metrics.flow(TransportKind::Udp))
            }
            Sink::Conn(c) => push_result(flow, c.push(bytes, self.budget())),
            Sink::Assoc(a) => push_result(
                flow,
                a.push(bytes, self.budget(), self.metrics.flow(flow.kind())),
            ),
        }
    }

    /// The client configuration for a connection of `scope`.
    pub(crate) fn tls_client_for(
        &self,
        scope: Option<&Arc<str>>,
    ) -> Option<Arc<rustls::ClientConfig>> {
        scope
            .and_then(|s| {
                let by_scope = lock(&self.tls_client_by_scope);
                if by_scope.is_empty() {
                    // Nothing to find: skip lower-casing the scope (an allocation).
                    return None;
                }
                let s = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
                by_scope.get(s.as_str()).cloned()
            })
            .or_else(|| lock(&self.tls_client).clone())
    }

    pub(crate) fn reusable(&self, key: &ReuseKey) -> Option<Flow> {
        self.tables().reusable(key)
    }
}

fn push_result(flow: Flow, r: Result<(), PushError>) -> Result<(), TransportError> {
    match r {
        Ok(()) => Ok(()),
        Err(PushError::Gone) => Err(TransportError::UnknownFlow(flow)),
        Err(PushError::Overflow(overflow)) => {
            metrics::drop(flow.kind(), "write_queue_full");
            Err(TransportError::Overflow { flow, overflow })
        }
        Err(PushError::TooLarge { len, limit }) => {
            Err(TransportError::MessageTooLarge { flow, len, limit })
        }
    }
}

pub(crate) fn send_datagram(
    socket: &UdpSocket,
    peer: SocketAddr,
    bytes: &[u8],
    counters: &metrics::FlowCounters,
) -> Result<(), TransportError> {
    // A direct non-blocking sendto: tokio's `try_send_to` refuses until the reactor has
    // seen the socket writable once, which a datagram socket almost always is.
    match socket2::SockRef::from(socket).send_to(bytes, &peer.into()) {
        Ok(_) => {
            counters.bytes_out.increment(bytes.len() as u64);
            counters.msgs_out.increment(1);
            Ok(())
        }
        Err(e) => {
            metrics::drop(TransportKind::Udp, "udp_send_failed");
            Err(TransportError::Datagram(peer, e))
        }
    }
}

/// Whether this kernel has SCTP: [`TransportError::Unsupported`] with the reason when not.
pub fn sctp_available() -> Result<(), TransportError> {
    sipwire_sys::kernel_sctp_available().map_err(|e| {
        tracing::debug!(error = %e, "no kernel SCTP");
        TransportError::NoKernelSctp(e)
    })
}

/// Counts of what the transport holds, for tests and the admin endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransportStats {
    /// Stream flows registered.
    pub stream_flows: usize,
    /// UDP flows remembered.
    pub udp_flows: usize,
    /// Connections admitted against the limits (handshakes included).
    pub admitted: usize,
    /// Distinct peer IPs in the per-IP table.
    pub tracked_ips: usize,
    /// Entries of the reuse index.
    pub reuse_entries: usize,
    /// Driver tasks alive (listeners and flows).
    pub tasks: usize,
    /// Stream connections accepted since the start (TLS: after the handshake).
    pub opened_inbound: usize,
    /// Stream connections we opened since the start (TLS: after the handshake).
    pub opened_outbound: usize,
    /// SCTP associations up (also counted in `stream_flows`).
    pub sctp_associations: usize,
    /// Sources the flood limiter remembers.
    pub flood_sources: usize,
}

/// The transport layer: one handle over every listener and flow. Cheap to clone.
#[derive(Clone)]
pub struct Transport {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Transport {
    /// A transport with no listener yet, and the receiver of every message it will
    /// receive. Must be called inside a tokio runtime.
    pub fn new(cfg: TransportConfig) -> (Transport, mpsc::Receiver<Incoming>) {
        let (t, mut rx) = Transport::new_sharded(cfg, 1);
        match rx.pop() {
            Some(rx) => (t, rx),
            // `new_sharded` returns one receiver per shard, at least one.
            None => (t, mpsc::channel(1).1),
        }
    }

    /// [`Transport::new`] with the received messages split over `shards` receivers (at
    /// least 1) by Call-ID ([`super::shard_of`]): every message of a transaction or dialog
    /// reaches the same receiver, so N single-threaded cores can run side by side. Each
    /// receiver's queue holds [`TransportConfig::incoming_queue`] messages. With more than
    /// one shard, each UDP listener is `shards` sockets on the same address (SO_REUSEPORT),
    /// each with its own reader, so that receiving and parsing run in parallel too; they
    /// make one listener (one flow per peer, sends from any of them).
    pub fn new_sharded(
        cfg: TransportConfig,
        shards: usize,
    ) -> (Transport, Vec<mpsc::Receiver<Incoming>>) {
        let (incoming, rx) = super::shard::IncomingQueues::new(shards, cfg.incoming_queue);
        let identities = super::session::Identities::new(cfg.identities.clone());
        let (shutdown, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            live: LiveCell::new(LiveLimits::of(&cfg)),
            refusals: RefusalLog::new(),
            limits: Mutex::new(ConnectionLimits::new(
                cfg.max_connections,
                cfg.max_connections_per_ip,
            )),
            cfg,
            next_id: AtomicU64::new(1),
            tables: Mutex::new(FlowTable::default()),
            incoming,
            tls_client: Mutex::new(None),
            tls_client_by_scope: Mutex::new(HashMap::new()),
            dialer: Dialer::default(),
            shutdown,
            live_tasks: AtomicUsize::new(0),
            tasks_done: Notify::new(),
            close_hooks: Mutex::new(Vec::new()),
            opened: [AtomicUsize::new(0), AtomicUsize::new(0)],
            metrics: metrics::TransportMetrics::default(),
            identities,
            sctp: super::sctp::SctpState::default(),
            flood: super::flood::FloodGate::default(),
            egress: super::egress::Egress::default(),
            udp_stats: Mutex::new(Vec::new()),
        });
        inner.flood.set(inner.cfg.flood.clone());
        let t = Transport { inner };
        t.spawn_udp_sweeper();
        (t, rx)
    }

    /// Forgets idle UDP flows every quarter of the idle timeout in force (it may change at
    /// run time), and refreshes the UDP sockets' kernel counters every few seconds.
    fn spawn_udp_sweeper(&self) {
        let weak = Arc::downgrade(&self.inner);
        let mut stop = self.inner.shutdown.subscribe();
        let period = |idle: Duration| (idle / 4).clamp(Duration::from_millis(100), SWEEP_MAX);
        tokio::spawn(async move {
            let mut last_sweep = Instant::now();
            loop {
                let next = match weak.upgrade() {
                    Some(inner) => period(inner.live.get().idle_timeout).min(STATS_PERIOD),
                    None => return,
                };
                tokio::select! {
                    _ = tokio::time::sleep(next) => {}
                    _ = stop.changed() => return,
                }
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let now = Instant::now();
                // A few milliseconds of slack: a sleep of exactly the period counts as one.
                if now.saturating_duration_since(last_sweep) + Duration::from_millis(5)
                    >= period(inner.live.get().idle_timeout)
                {
                    inner.sweep_udp(now);
                    last_sweep = now;
                }
                inner.refresh_udp_socket_stats();
            }
        });
    }

    /// The settings given to [`Transport::new`]. The changeable ones may have been
    /// replaced since: [`Transport::limits`] has those in force.
    pub fn config(&self) -> &TransportConfig {
        &self.inner.cfg
    }

    /// The limits and timers in force.
    pub fn limits(&self) -> LiveLimits {
        self.inner.live.get()
    }

    /// Replaces the limits and timers at run time without dropping a flow (see
    /// [`LiveLimits`] for which flows see what, and when). Open stream flows are woken to
    /// take their new timers. Lowering a connection limit below the current count closes
    /// nothing: new connections are refused until enough close (logged here).
    pub fn set_limits(&self, limits: LiveLimits) {
        let old = {
            // Under the admission lock: no admission sees the new values half-applied.
            let mut l = lock(&self.inner.limits);
            let over = l.set_max(limits.max_connections, limits.max_connections_per_ip);
            if over.total > 0 || over.ips > 0 {
                tracing::warn!(
                    admitted = l.total(),
                    max_connections = limits.max_connections,
                    over_total = over.total,
                    ips_over_per_ip_limit = over.ips,
                    "connection limits lowered below the connections open: they stay, new \
                     ones are refused until enough close"
                );
            }
            self.inner.live.replace(limits)
        };
        let changed = limits.changed_from(&old);
        if changed.is_empty() {
            return;
        }
        tracing::info!(changed = ?changed, "transport limits replaced");
        for c in self.inner.tables().conn_sinks() {
            c.wake();
        }
    }

    /// Sets the TLS client configuration used for outbound TLS connections.
    pub fn set_tls_client(&self, cfg: Arc<rustls::ClientConfig>) {
        *lock(&self.inner.tls_client) = Some(cfg);
    }

    /// Sets the TLS client configuration for outbound TLS connections of one reuse scope
    /// ([`Target::with_scope`]): e.g. a local domain presenting its own client certificate
    /// (RFC 5923 §9.3). Other scopes use [`Transport::set_tls_client`]'s.
    pub fn set_tls_client_for(&self, scope: &str, cfg: Arc<rustls::ClientConfig>) {
        let scope = scope
            .strip_suffix('.')
            .unwrap_or(scope)
            .to_ascii_lowercase();
        lock(&self.inner.tls_client_by_scope).insert(scope.into(), cfg);
    }

    /// Binds a UDP listener; returns the bound address.
    pub async fn bind_udp(&self, addr: SocketAddr) -> Result<SocketAddr, TransportError> {
        super::udp::bind(&self.inner, addr).await
    }

    /// Binds a TCP listener; returns the bound address.
    pub async fn bind_tcp(&self, addr: SocketAddr) -> Result<SocketAddr, TransportError> {
        super::tcp::bind(&self.inner, addr, None).await
    }

    /// Binds a TLS listener with `server` (certificates, client-certificate policy,
    /// ALPN); returns the bound address.
    pub async fn bind_tls(
        &self,
        addr: SocketAddr,
        server: Arc<rustls::ServerConfig>,
    ) -> Result<SocketAddr, TransportError> {
        super::tcp::bind(&self.inner, addr, Some(server)).await
    }

    /// Binds an SCTP listener (RFC 4168) on one one-to-many socket bound to every address of
    /// `addrs` (multihoming: the same port on each); `kind` is [`TransportKind::Sctp`].
    /// Returns the bound addresses. Fails with [`TransportError::Unsupported`] where the
    /// kernel has no SCTP.
    pub async fn bind_sctp(
        &self,
        kind: TransportKind,
        addrs: &[SocketAddr],
    ) -> Result<Vec<SocketAddr>, TransportError> {
        if kind != TransportKind::Sctp {
            return Err(TransportError::Unsupported(kind));
        }
        sctp_available()?;
        super::sctp::bind(&self.inner, kind, addrs, None)
    }

    /// Binds a TLS over SCTP listener (RFC 3436: one TLS session per stream pair, each
    /// handshake with `server`, the same identity required on every stream) on one
    /// one-to-many socket bound to every address of `addrs`. Returns the bound addresses.
    pub async fn bind_tls_sctp(
        &self,
        addrs: &[SocketAddr],
        server: Arc<rustls::ServerConfig>,
    ) -> Result<Vec<SocketAddr>, TransportError> {
        sctp_available()?;
        super::sctp::bind(&self.inner, TransportKind::TlsSctp, addrs, Some(server))
    }

    /// Replaces the flood limits (`None`: none). Every source starts afresh: a reload
    /// forgets who was being limited.
    pub fn set_flood(&self, cfg: Option<crate::flood::FloodConfig>) {
        self.inner.flood.set(cfg);
    }

    /// Binds a DTLS over SCTP listener (RFC 6083): one DTLS 1.2 connection per association
    /// made from `acceptor` (its certificate, key, verification and ALPN settings; sipwire adds
    /// `NO_QUERY_MTU`, no renegotiation and no tickets), on one one-to-many socket bound to
    /// every address of `addrs`, SCTP-AUTH required on every association. Fails where
    /// `net.sctp.auth_enable` is 0 (SCTP-AUTH off) or the kernel has no SCTP. Returns the
    /// bound addresses. See docs/sctp.md.
    pub async fn bind_dtls_sctp(
        &self,
        addrs: &[SocketAddr],
        acceptor: openssl::ssl::SslAcceptorBuilder,
    ) -> Result<Vec<SocketAddr>, TransportError> {
        sctp_available()?;
        super::sctp::bind_dtls(&self.inner, addrs, acceptor)
    }

    /// Sets the DTLS client side of outbound DTLS over SCTP associations (roots, client
    /// certificate; the server is verified against the target's server name or address).
    pub fn set_dtls_sctp_client(&self, connector: openssl::ssl::SslConnectorBuilder) {
        let c = super::sctp_dtls::connector(connector);
        *self
            .inner
            .sctp
            .dtls_client
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(c));
    }

    /// Sets the Via token of DTLS over SCTP (default `DTLS-SCTP`; no RFC defines one, so
    /// peers may expect another spelling).
    pub fn set_dtls_sctp_via_token(&self, token: &str) {
        *self
            .inner
            .sctp
            .dtls_via
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Arc::from(token));
    }

    /// The Via transport token this transport writes for `kind` (only DTLS over SCTP's is
    /// configurable).
    pub fn via_token(&self, kind: TransportKind) -> Arc<str> {
        self.inner.sctp.via_token(kind)
    }

    /// The SCTP-AUTH state of a DTLS over SCTP association (`None` for other flows).
    pub fn sctp_auth(&self, flow: Flow) -> Option<super::sctp::SctpAuthInfo> {
        let sink = match self.inner.tables().get(flow).map(|e| &e.sink) {
            Some(Sink::Assoc(a)) => Arc::clone(a),
            _ => return None,
        };
        // The table's lock is released first: the reader takes the association's DTLS lock
        // and then the table's.
        sink.auth_info()
    }

    /// Every UDP listener's socket buffers and kernel drop count, read now (this also
    /// moves [`super::metrics::UDP_KERNEL_DROPS`], otherwise refreshed every 5 s).
    pub fn udp_sockets(&self) -> Vec<super::sockstats::UdpSocketStats> {
        self.inner.refresh_udp_socket_stats()
    }

    /// The listeners bound so far.
    pub fn listeners(&self) -> Vec<(TransportKind, SocketAddr)> {
        self.inner.tables().listeners.clone()
    }

    /// Queues `bytes` on `flow` without waiting. A stream flow whose queue would exceed
    /// its byte bound is closed ([`TransportError::Overflow`]); a datagram that cannot be
    /// sent now is dropped ([`TransportError::Datagram`]).
    pub fn send(&self, flow: Flow, bytes: Bytes) -> Result<(), TransportError> {
        self.inner.send(flow, bytes)
    }

    /// Sends a datagram from the socket of UDP `flow` to another address (RFC 3261
    /// §18.2.2: a UDP response without `rport` goes to the sent-by port).
    pub fn send_datagram_via(
        &self,
        flow: Flow,
        to: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), TransportError> {
        let (socket, local) = match self.inner.tables().get(flow) {
            Some(e) => match &e.sink {
                Sink::Datagram { socket, .. } => (Arc::clone(socket), e.info.local),
                Sink::Conn(_) | Sink::Assoc(_) => return Err(TransportError::UnknownFlow(flow)),
            },
            None => return Err(TransportError::UnknownFlow(flow)),
        };
        if self.inner.cfg.capture.is_some() {
            let copy = Bytes::copy_from_slice(bytes);
            self.inner.capture(TransportKind::Udp, local, to, &copy);
        }
        send_datagram(
            &socket,
            to,
            bytes,
            self.inner.metrics.flow(TransportKind::Udp),
        )
    }

    /// Returns an open flow to `target`, reusing a connection to the same far end
    /// (transport, address, port and TLS server name), or opening one.
    pub async fn connect(&self, target: &Target) -> Result<Flow, TransportError> {
        if *self.inner.shutdown.borrow() {
            return Err(TransportError::ShuttingDown);
        }
        match target.transport {
            TransportKind::Udp => {
                let idx = self.udp_socket_for(target)?;
                self.inner
                    .udp_flow(idx, target.addr, Direction::Outbound, Instant::now())
                    .map(|i| i.flow)
                    .ok_or(TransportError::NoUdpSocket(target.addr))
            }
            TransportKind::Tcp | TransportKind::Tls => {
                super::dialer::connect(&self.inner, target).await
            }
            TransportKind::Sctp | TransportKind::TlsSctp | TransportKind::DtlsSctp => {
                sctp_available()?;
                super::dialer::connect(&self.inner, target).await
            }
        }
    }

    /// Sends `bytes` to `target` over a reused or new flow and returns that flow.
    /// A request over [`TransportConfig::udp_max_request`] bytes for a UDP target goes
    /// over TCP with its top Via rewritten (RFC 3261 §18.1.1); if the TCP connection is
    /// refused it is sent over UDP after all.
    pub async fn send_to(&self, target: &Target, bytes: Bytes) -> Result<Flow, TransportError> {
        if target.transport == TransportKind::Udp
            && bytes.len() > self.inner.cfg.udp_max_request
            && reroute::looks_like_request(&bytes)
        {
            if let Ok(msg) = Message::parse(bytes.clone()) {
                if let Ok(tcp_bytes) = reroute::rewrite_top_via(&msg, TransportKind::Tcp) {
                    let tcp = Target::new(TransportKind::Tcp, target.addr);
                    match self.connect(&tcp).await {
                        Ok(flow) => {
                            self.send(flow, tcp_bytes)?;
                            return Ok(flow);
                        }
                        Err(TransportError::Connect { source, .. })
                            if source.kind() == std::io::ErrorKind::ConnectionRefused =>
                        {
                            tracing::debug!(addr = %target.addr, "TCP refused, large request over UDP");
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        let flow = self.connect(target).await?;
        self.send(flow, bytes)?;
        Ok(flow)
    }

    /// The open connection or association of `kind` whose peer is exactly `peer`, whichever
    /// side opened it: where a response goes back when only the request's source is known
    /// (a stateless proxy answering by Via `received`/`rport`, RFC 3261 §18.2.2). Not for
    /// requests: an inbound TLS connection carries our requests only through an RFC 5923
    /// alias.
    pub fn stream_flow_to(&self, kind: TransportKind, peer: SocketAddr) -> Option<Flow> {
        self.inner.tables().stream_flow_to(kind, peer)
    }

    /// The local address the host's routing table sends from toward `dest` (cached per
    /// destination); `None` when it has no route.
    pub fn route_source(&self, dest: IpAddr) -> Option<IpAddr> {
        self.inner.egress.source_for(dest)
    }

    /// The UDP socket a datagram to `target` leaves by: the one bound to `target.source`, else
    /// (with several sockets of its family) the one bound to the address the kernel routes
    /// from, else the first of its family that matches its loopback-ness.
    fn udp_socket_for(&self, target: &Target) -> Result<usize, TransportError> {
        let addr = target.addr;
        let t = self.inner.tables();
        let same_family = |l: &SocketAddr| l.is_ipv4() == addr.is_ipv4();
        let locals = t.udp_sockets.iter().map(|(_, l)| l);
        let candidates = locals.clone().filter(|l| same_family(l)).count();
        let source = target.source.or_else(|| {
            (candidates > 1)
                .then(|| self.inner.egress.source_for(addr.ip()))
                .flatten()
        });
        let pick = super::egress::pick(locals.clone(), addr, source)
            .or_else(|| {
                locals
                    .clone()
                    .position(|l| same_family(l) && l.ip().is_loopback() == addr.ip().is_loopback())
            })
            .or_else(|| locals.clone().position(same_family));
        pick.ok_or(TransportError::NoUdpSocket(addr))
    }

    /// Every open flow (connections, associations, remembered UDP peers), by id: for admin
    /// dumps.
    pub fn flows(&self) -> Vec<FlowInfo> {
        let mut v = self.inner.tables().infos();
        v.sort_by_key(|i| i.flow.id());
        v
    }

    /// What is known about a flow (`None` once closed).
    pub fn flow_info(&self, flow: Flow) -> Option<FlowInfo> {
        self.inner.tables().get(flow).map(|e| e.info.clone())
    }

    /// Closes a stream flow gracefully: it is no longer offered for new transactions,
    /// delivers responses for `drain`, flushes, sends close_notify/FIN (RFC 5923 §8.3).
    /// A UDP flow is simply forgotten.
    pub fn close(&self, flow: Flow, drain: Duration) {
        let mut t = self.inner.tables();
        match t.get(flow).map(|e| &e.sink) {
            Some(Sink::Conn(c)) => c.close(drain),
            Some(Sink::Assoc(a)) => {
                let a = Arc::clone(a);
                t.unindex(flow);
                drop(t);
                a.close(drain);
                self.inner.closing(flow);
            }
            Some(Sink::Datagram { .. }) => {
                t.remove(flow);
            }
            None => {}
        }
    }

    /// Closes a stream flow at once (no drain, no flush).
    pub fn abort(&self, flow: Flow) {
        match self.inner.tables().get(flow).map(|e| &e.sink) {
            Some(Sink::Conn(c)) => c.abort("aborted"),
            Some(Sink::Assoc(a)) => a.abort("aborted"),
            _ => {}
        }
    }

    /// Counts of what the transport holds.
    pub fn stats(&self) -> TransportStats {
        let c = self.inner.tables().counts();
        let l = lock(&self.inner.limits);
        TransportStats {
            stream_flows: c.stream_flows,
            udp_flows: c.udp_flows,
            admitted: l.total(),
            tracked_ips: l.tracked_ips(),
            reuse_entries: c.reuse_entries,
            tasks: self.inner.live_tasks.load(Ordering::Acquire),
            opened_inbound: self.inner.opened[0].load(Ordering::Relaxed),
            opened_outbound: self.inner.opened[1].load(Ordering::Relaxed),
            sctp_associations: self.inner.sctp.associations(),
            flood_sources: self.inner.flood.tracked(),
        }
    }

    /// Registers `hook`, called when a stream flow starts closing (either side) or is gone,
    /// so that state keyed by flows (RFC 5923 alias rows) follows. See [`CloseHook`].
    pub fn on_flow_closing(&self, hook: CloseHook) {
        lock(&self.inner.close_hooks).push(hook);
    }

    /// Stops every listener, closes every stream flow gracefully (draining for `drain`),
    /// and waits until all driver tasks ended or `drain` plus the linger time passed;
    /// what is left is aborted.
    pub async fn shutdown(&self, drain: Duration) {
        self.inner.shutdown.send_replace(true);
        for c in self.inner.tables().conn_sinks() {
            c.close(drain);
        }
        for ep in self.inner.sctp.sockets() {
            for a in ep.sinks() {
                a.close(drain);
            }
        }
        let deadline = tokio::time::Instant::now() + drain + self.inner.cfg.linger;
        loop {
            let notified = self.inner.tasks_done.notified();
            if self.inner.live_tasks.load(Ordering::Acquire) == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break;
            }
        }
        for c in self.inner.tables().conn_sinks() {
            c.abort("shutdown");
        }
        for ep in self.inner.sctp.sockets() {
            for a in ep.sinks() {
                a.abort("shutdown");
            }
        }
        self.inner.tables().clear_udp();
    }
}

#[cfg(test)]
mod tests {
    use super::RefusalLog;
    use std::time::Duration;

    #[test]
    fn refusals_are_logged_once_a_second_with_the_count_of_the_others() {
        let log = RefusalLog::new();
        let t0 = log.start;
        assert_eq!(log.take(t0), Some(0));
        assert_eq!(log.take(t0 + Duration::from_millis(300)), None);
        assert_eq!(log.take(t0 + Duration::from_millis(900)), None);
        assert_eq!(log.take(t0 + Duration::from_millis(1100)), Some(2));
        assert_eq!(log.take(t0 + Duration::from_secs(5)), Some(0));
    }
}
