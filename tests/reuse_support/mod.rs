//! Shared by the tests/reuse_*.rs integration tests: RFC 5923 peers (a Transport + a
//! ReuseEndpoint + a task answering requests) on loopback addresses, certificates from a test
//! CA, an in-process DNS server.
#![allow(dead_code)]

pub mod dns;
pub mod fig;
pub mod pki;

use bytes::Bytes;
use sipwire::alias::AliasDecision;
use sipwire::endpoint::{LocalDomain, ReuseConfig, ReuseEndpoint};
use sipwire::resolve::{DnsConfig, DnsResolver, Scheme, SipTarget};
use sipwire::transport::{Flow, Transport, TransportConfig, TransportKind};
use sipwire::wire::Message;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Bound for every wait.
pub const WAIT: Duration = Duration::from_secs(10);

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
    let ip: std::net::IpAddr = ip.parse().expect("ip");
    let cfg = TransportConfig {
        identities: Some(pki::sip_identities()),
        outbound_ip: Some(ip),
        linger: Duration::from_millis(200),
        ..TransportConfig::default()
    };
    let (transport, rx) = Transport::new(cfg);
    transport.set_tls_client(client);
    let tls = transport
        .bind_tls(SocketAddr::new(ip, port), server)
        .await
        .unwrap_or_else(|e| panic!("bind TLS on {ip}: {e} (127.0.0.x must be bindable)"));
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
                    let _ = transport.send(inc.flow, ok(&inc.message));
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

/// A request as forwarded by a proxy: the UA's Via below the one the endpoint adds.
pub fn request(method: &str, ruri: &str, from_domain: &str, call: &str, cseq: u32) -> Message {
    let raw = format!(
        "{method} {ruri} SIP/2.0\r\n\
Via: SIP/2.0/TLS ua.{from_domain};branch=z9hG4bKua{call}\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@{from_domain}>;tag=a{call}\r\n\
To: <{ruri}>\r\n\
Call-ID: {call}\r\n\
CSeq: {cseq} {method}\r\n\
Content-Length: 0\r\n\r\n"
    );
    Message::parse(Bytes::from(raw)).expect("test request parses")
}

/// A 200 to `req`: its Vias, From, To, Call-ID, CSeq.
pub fn ok(req: &Message) -> Bytes {
    let mut s = String::from("SIP/2.0 200 OK\r\n");
    for h in req.headers() {
        let keep = ["via", "v", "from", "f", "to", "t", "call-id", "i", "cseq"]
            .iter()
            .any(|n| h.name.eq_ignore_ascii_case(n));
        if keep {
            s.push_str(h.name);
            s.push_str(": ");
            s.push_str(h.value_str().unwrap_or(""));
            s.push_str("\r\n");
        }
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    Bytes::from(s)
}

/// Waits until `f` holds (bounded).
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The URI a request goes to next (RFC 3261 §8.1.2, §16.12): the topmost Route value when
/// there is one (loose routing, `;lr`), else the Request-URI, reduced to what RFC 3263 needs.
/// Its host is the AUS the next hop's certificate (or alias row) must prove.
pub fn next_hop(msg: &Message) -> SipTarget {
    let uri = match msg.routes().next() {
        Some(r) => {
            let r = r.expect("Route value parses");
            r.sip_uri().expect("Route URI is a SIP URI")
        }
        None => msg
            .request_sip_uri()
            .expect("a request")
            .expect("Request-URI is a SIP URI"),
    };
    sip_target(&uri)
}

/// A wire URI as an RFC 3263 target (scheme, host, port, `transport` parameter).
pub fn sip_target(uri: &sipwire::wire::Uri<'_>) -> SipTarget {
    let scheme = match uri.scheme {
        sipwire::wire::Scheme::Sip => Scheme::Sip,
        sipwire::wire::Scheme::Sips => Scheme::Sips,
    };
    SipTarget::new(scheme, uri.host_raw, uri.port, uri.transport_param()).expect("target")
}

/// The route set a UAS builds from a dialog-creating request (RFC 3261 §12.1.1): the
/// Record-Route URIs in the order they appear.
pub fn uas_route_set(msg: &Message) -> Vec<String> {
    msg.record_routes()
        .map(|r| r.expect("Record-Route value parses").uri.to_owned())
        .collect()
}

/// `msg` with `Record-Route: <uri>` on top (what a record-routing proxy adds, §16.6 step 4).
pub fn with_record_route(msg: &Message, uri: &str) -> Message {
    let mut ed = msg.edit();
    ed.prepend_record_route(uri).expect("Record-Route");
    ed.finish_message().expect("edited request parses")
}

/// An in-dialog request (BYE, re-INVITE) whose Route header field holds `route_set`, top first
/// (RFC 3261 §12.2.1.1).
pub fn in_dialog(
    method: &str,
    ruri: &str,
    from_domain: &str,
    call: &str,
    cseq: u32,
    route_set: &[String],
) -> Message {
    let mut msg = request(method, ruri, from_domain, call, cseq);
    // Bottom value first, each on top of the previous one.
    for uri in route_set.iter().rev() {
        let mut ed = msg.edit();
        ed.prepend_route(uri).expect("Route");
        msg = ed.finish_message().expect("in-dialog request parses");
    }
    msg
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
