//! RFC 5923 peers on loopback addresses: a Transport, a ReuseEndpoint and a task answering
//! every request 200 and reporting what it saw.

use super::poll::WAIT;
use sipwire::alias::AliasDecision;
use sipwire::endpoint::{LocalDomain, ReuseConfig, ReuseEndpoint};
use sipwire::resolve::{DnsConfig, DnsResolver};
use sipwire::transport::{Flow, Transport, TransportConfig, TransportKind};
use sipwire::wire::response::response_to;
use sipwire::wire::Message;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
pub const TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// What a peer's serving task saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub message: Message,
    pub flow: Flow,
    pub source: SocketAddr,
    pub local: SocketAddr,
    /// The alias decision for a request (None: no `alias`, or a response).
    pub decision: Option<AliasDecision<Flow>>,
}

/// A transport bound on `ip` (TLS, and TCP if asked), not serving yet.
pub struct Bound {
    pub transport: Transport,
    rx: mpsc::Receiver<sipwire::transport::Incoming>,
    pub tls: SocketAddr,
    pub tcp: Option<SocketAddr>,
}

pub async fn bind(
    ip: &str,
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    with_tcp: bool,
) -> Bound {
    bind_port(ip, 0, server, client, with_tcp).await
}

/// As [`bind`], TLS on a given port and TCP on the port below (5060 for 5061; 0: any).
pub async fn bind_port(
    ip: &str,
    port: u16,
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    with_tcp: bool,
) -> Bound {
    bind_port_over(TransportKind::Tls, ip, port, server, client, with_tcp).await
}

/// [`bind_port`] with the secure listener over `kind`: TLS over TCP, or TLS over SCTP (lab
/// kernel only).
pub async fn bind_port_over(
    kind: TransportKind,
    ip: &str,
    port: u16,
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    with_tcp: bool,
) -> Bound {
    let ip: std::net::IpAddr = ip.parse().expect("ip");
    let cfg = TransportConfig {
        identities: Some(sipwire::tls::identity_fn()),
        outbound_ip: Some(ip),
        linger: Duration::from_millis(200),
        ..TransportConfig::default()
    };
    let (transport, rx) = Transport::new(cfg);
    transport.set_tls_client(client);
    let at = SocketAddr::new(ip, port);
    let tls = match kind {
        TransportKind::TlsSctp => transport
            .bind_tls_sctp(&[at], server)
            .await
            .unwrap_or_else(|e| panic!("bind TLS-SCTP on {ip}: {e}"))[0],
        _ => transport
            .bind_tls(at, server)
            .await
            .unwrap_or_else(|e| panic!("bind TLS on {ip}: {e} (127.0.0.x must be bindable)")),
    };
    let tcp = if with_tcp {
        Some(
            transport
                .bind_tcp(SocketAddr::new(ip, port.saturating_sub(1)))
                .await
                .expect("bind TCP"),
        )
    } else {
        None
    };
    Bound {
        transport,
        rx,
        tls,
        tcp,
    }
}

/// A serving peer.
pub struct Peer {
    pub transport: Transport,
    pub endpoint: ReuseEndpoint,
    pub tls: SocketAddr,
    pub tcp: Option<SocketAddr>,
    pub seen: mpsc::UnboundedReceiver<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A resolver over the test DNS server, without cache (every resolution asks the server).
pub fn resolver(dns: SocketAddr) -> DnsResolver {
    resolver_with_cache(dns, 0)
}

/// A resolver over the test DNS server caching up to `entries` answers.
pub fn resolver_with_cache(dns: SocketAddr, entries: usize) -> DnsResolver {
    let mut cfg = DnsConfig::new(dns);
    cfg.timeout = Duration::from_secs(2);
    cfg.cache_entries = entries;
    DnsResolver::new(cfg).expect("resolver")
}

impl Bound {
    /// Starts serving: every request goes through `on_incoming`, is answered 200 on its flow,
    /// and is reported on `seen`, as is every response.
    pub fn start(self, dns: Option<SocketAddr>, cfg: ReuseConfig) -> Peer {
        self.start_with(dns.map(resolver), cfg)
    }

    /// As [`Bound::start`] with a given resolver.
    pub fn start_with(self, resolver: Option<DnsResolver>, mut cfg: ReuseConfig) -> Peer {
        for d in &mut cfg.domains {
            d.ports.entry(TransportKind::Tls).or_insert(self.tls.port());
            if let Some(t) = self.tcp {
                d.ports.entry(TransportKind::Tcp).or_insert(t.port());
            }
        }
        let endpoint = ReuseEndpoint::new(self.transport.clone(), resolver, cfg);
        let (tx, seen) = mpsc::unbounded_channel();
        let ep = endpoint.clone();
        let transport = self.transport.clone();
        let mut rx = self.rx;
        let task = tokio::spawn(async move {
            while let Some(inc) = rx.recv().await {
                let decision = ep.on_incoming(&inc);
                if inc.message.is_request() && inc.message.method() != Some("ACK") {
                    let _ = transport.send(inc.flow, response_to(&inc.message, 200, "OK"));
                }
                let _ = tx.send(Seen {
                    message: inc.message,
                    flow: inc.flow,
                    source: inc.source,
                    local: inc.local,
                    decision,
                });
            }
        });
        Peer {
            transport: self.transport,
            endpoint,
            tls: self.tls,
            tcp: self.tcp,
            seen,
            task,
        }
    }
}

impl Peer {
    /// The next thing this peer saw, bounded by [`WAIT`].
    pub async fn next(&mut self) -> Seen {
        tokio::time::timeout(WAIT, self.seen.recv())
            .await
            .expect("timed out waiting for a message")
            .expect("peer task ended")
    }

    /// The next request (responses skipped).
    pub async fn next_request(&mut self) -> Seen {
        for _ in 0..16 {
            let s = self.next().await;
            if s.message.is_request() {
                return s;
            }
        }
        panic!("no request among 16 messages");
    }

    /// The next response (requests skipped).
    pub async fn next_response(&mut self) -> Seen {
        for _ in 0..16 {
            let s = self.next().await;
            if s.message.is_response() {
                return s;
            }
        }
        panic!("no response among 16 messages");
    }

    /// Stream connections opened so far (inbound, outbound).
    pub fn opened(&self) -> (usize, usize) {
        let s = self.transport.stats();
        (s.opened_inbound, s.opened_outbound)
    }
}

/// A local domain.
pub fn domain(name: &str, sent_by: &str) -> LocalDomain {
    LocalDomain::new(name, sent_by)
}

/// A reuse config for these domains; inbound flows default to the first.
pub fn config(domains: Vec<LocalDomain>, add_alias: bool) -> ReuseConfig {
    ReuseConfig {
        add_alias,
        default_domain: domains.first().map(|d| d.name.clone()),
        domains,
        ..ReuseConfig::default()
    }
}

/// RFC 5923 §10: with one aliased connection per SRV target, traffic is still spread by the
/// SRV weights. Asserts that each target's share of `received` (in SRV record order) lies
/// within `band` percentage points of its weight's share.
pub fn assert_spread_by_weight(received: &[usize], weights: &[u16], band: f64) {
    assert_eq!(received.len(), weights.len());
    let total: usize = received.iter().sum();
    let wsum: f64 = weights.iter().map(|w| f64::from(*w)).sum();
    assert!(total > 0 && wsum > 0.0, "nothing sent: {received:?}");
    for (n, w) in received.iter().zip(weights) {
        let share = 100.0 * *n as f64 / total as f64;
        let expected = 100.0 * f64::from(*w) / wsum;
        assert!(
            (share - expected).abs() <= band,
            "share {share:.1}% too far from weight {w}'s {expected:.1}% (±{band}): {received:?}"
        );
    }
}
