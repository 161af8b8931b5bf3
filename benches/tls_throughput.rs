//! TLS throughput of sipwire endpoints against a bare tokio-rustls baseline, measured in
//! the same run (issue 4):
//!
//! - handshakes/s, full and resumed, TLS 1.3 and TLS 1.2: a client `Transport`
//!   connecting to a server `Transport` (`bind_tls`), each connection closed after its
//!   handshake, vs `TlsConnector`/`TlsAcceptor` doing the same;
//! - messages/s over one established TLS connection: a ~1 KiB MESSAGE answered by a
//!   200, a window of requests in flight, vs a bare server framing by Content-Length with
//!   sipwire's `StreamFramer` and a bare client doing the same.
//!
//! Both sides use the same certificates (rcgen ECDSA P-256), the same rustls
//! configurations (ring provider, default suites) and the same resumption settings;
//! client and server run in this process on one tokio runtime with two workers.
//! Rounds interleave the implementations (alternating which goes first); the report is
//! the median of the rounds and the ratio sipwire / bare.
//!
//! `cargo bench --bench tls_throughput` (or `benches/tls_throughput.sh`). Environment:
//! `TLS_BENCH_ROUNDS` (7), `TLS_BENCH_HANDSHAKES` per round (500), `TLS_BENCH_MESSAGES`
//! per round (20000), `TLS_BENCH_WINDOW` (16), `TLS_BENCH_CONCURRENCY` handshakes in
//! parallel (4), `TLS_BENCH_ONLY` (`handshakes` or `messages`).

#[path = "tls_common/mod.rs"]
mod tls_common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rustls::client::ClientSessionStore;
use rustls::pki_types::ServerName;
use sipwire::transport::{Incoming, Target, Transport, TransportConfig, TransportKind};
use sipwire::wire::{Frame, Limits, StreamFramer};
use tls_common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const LIMIT: Duration = Duration::from_secs(60);

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bench_config() -> TransportConfig {
    TransportConfig {
        max_connections: 100_000,
        max_connections_per_ip: 100_000,
        ..TransportConfig::default()
    }
}

/// A sipwire server with a TLS listener, and a client transport using `client`.
struct SipPair {
    server: Transport,
    client: Transport,
    addr: SocketAddr,
    _srx: Option<mpsc::Receiver<Incoming>>,
    crx: mpsc::Receiver<Incoming>,
    next_scope: usize,
    cache: Option<Arc<rustls::client::ClientSessionMemoryCache>>,
}

impl SipPair {
    /// `answer`: the server answers every message with it (a responder task).
    async fn start(
        server_cfg: Arc<rustls::ServerConfig>,
        client_cfg: Arc<rustls::ClientConfig>,
        answer: Option<Bytes>,
    ) -> SipPair {
        let (server, mut srx) = Transport::new(bench_config());
        let addr = server
            .bind_tls("127.0.0.1:0".parse().expect("addr"), server_cfg)
            .await
            .expect("bind_tls");
        let (client, crx) = Transport::new(bench_config());
        client.set_tls_client(Arc::clone(&client_cfg));
        let keep = match answer {
            Some(a) => {
                let s = server.clone();
                tokio::spawn(async move {
                    while let Some(inc) = srx.recv().await {
                        if s.send(inc.flow, a.clone()).is_err() {
                            return;
                        }
                    }
                });
                None
            }
            None => Some(srx),
        };
        SipPair {
            server,
            client,
            addr,
            _srx: keep,
            crx,
            next_scope: 0,
            cache: None,
        }
    }

    /// A target no earlier connection can be reused for (each its own reuse scope), so
    /// that every `connect` handshakes.
    fn fresh_target(&mut self) -> Target {
        self.next_scope += 1;
        Target::new(TransportKind::Tls, self.addr)
            .with_server_name("localhost")
            .with_scope(&format!("s{}", self.next_scope))
    }
}

/// `n` connections, `conc` at a time, each: TCP connect, handshake, one request answered
/// by the server (so that the client has read the TLS 1.3 session tickets, which follow
/// the handshake), then closed; done when the server side has seen every connection
/// finish. Returns handshakes per second.
async fn sip_handshakes(p: &mut SipPair, req: &Bytes, n: usize, conc: usize) -> f64 {
    let base = p.server.stats().opened_inbound;
    let targets: Vec<Target> = (0..n).map(|_| p.fresh_target()).collect();
    let mut targets = targets.into_iter();
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let spawn = |set: &mut tokio::task::JoinSet<()>, t: Target| {
        let client = p.client.clone();
        let req = req.clone();
        set.spawn(async move {
            client.send_to(&t, req).await.expect("sipwire send_to");
        });
    };
    for t in targets.by_ref().take(conc) {
        spawn(&mut set, t);
    }
    let mut answered = 0;
    while answered < n {
        tokio::select! {
            Some(r) = set.join_next() => r.expect("connect task"),
            inc = p.crx.recv() => {
                let inc = inc.expect("client channel");
                p.client.abort(inc.flow);
                answered += 1;
                if let Some(t) = targets.next() {
                    spawn(&mut set, t);
                }
            }
            _ = tokio::time::sleep(LIMIT) => panic!("sipwire handshakes stalled"),
        }
    }
    let (server, client) = (p.server.clone(), p.client.clone());
    let ok = wait_until(LIMIT, || {
        let s = server.stats();
        s.opened_inbound >= base + n && s.stream_flows == 0 && client.stats().stream_flows == 0
    })
    .await;
    assert!(ok, "sipwire server did not finish the connections");
    n as f64 / start.elapsed().as_secs_f64()
}

/// Reads until one whole message is framed.
async fn read_one<S: tokio::io::AsyncRead + Unpin>(s: &mut S, framer: &mut StreamFramer) {
    loop {
        if let Some(Frame::Message(_)) = framer.next_frame().expect("framing") {
            return;
        }
        let buf = framer.buffer_mut();
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(8192);
        }
        let n = s.read_buf(buf).await.expect("read");
        assert!(n > 0, "server closed");
    }
}

async fn bare_handshakes(
    server: &BareServer,
    cfg: &Arc<rustls::ClientConfig>,
    req: &Bytes,
    n: usize,
    conc: usize,
) -> f64 {
    let base = server.done.load(Ordering::Relaxed);
    let addr = server.addr;
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for c in 0..conc {
        let cfg = Arc::clone(cfg);
        let req = req.clone();
        let k = n / conc + usize::from(c < n % conc);
        set.spawn(async move {
            for _ in 0..k {
                let mut s = bare_connect(&cfg, addr).await.expect("bare connect");
                s.write_all(&req).await.expect("write");
                s.flush().await.expect("flush");
                read_one(&mut s, &mut StreamFramer::new(Limits::default())).await;
                drop(s);
            }
        });
    }
    let all = async {
        while let Some(r) = set.join_next().await {
            r.expect("handshake task");
        }
    };
    tokio::time::timeout(LIMIT, all)
        .await
        .expect("bare handshakes stalled");
    let done = Arc::clone(&server.done);
    let ok = wait_until(LIMIT, || done.load(Ordering::Relaxed) >= base + n).await;
    assert!(ok, "bare server did not finish the connections");
    n as f64 / start.elapsed().as_secs_f64()
}

/// `m` request/response exchanges over one connection, `window` requests in flight.
async fn sip_messages(
    p: &mut SipPair,
    flow: sipwire::transport::Flow,
    req: &Bytes,
    m: usize,
    window: usize,
) -> f64 {
    let start = Instant::now();
    let mut sent = 0;
    while sent < window.min(m) {
        p.client.send(flow, req.clone()).expect("send");
        sent += 1;
    }
    let mut got = 0;
    while got < m {
        let inc = tokio::time::timeout(LIMIT, p.crx.recv())
            .await
            .expect("sipwire response in time")
            .expect("client channel");
        debug_assert_eq!(inc.message.status_code(), Some(200));
        got += 1;
        if sent < m {
            p.client.send(flow, req.clone()).expect("send");
            sent += 1;
        }
    }
    m as f64 / start.elapsed().as_secs_f64()
}

async fn bare_messages<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    req: &Bytes,
    m: usize,
    window: usize,
) -> f64 {
    let start = Instant::now();
    let mut framer = StreamFramer::new(Limits::default());
    let mut sent = 0;
    while sent < window.min(m) {
        s.write_all(req).await.expect("write");
        sent += 1;
    }
    s.flush().await.expect("flush");
    let mut got = 0;
    let mut out = BytesMut::new();
    let work = async {
        while got < m {
            let buf = framer.buffer_mut();
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(8192);
            }
            let n = s.read_buf(buf).await.expect("read");
            assert!(n > 0, "bare server closed");
            while let Some(f) = framer.next_frame().expect("framing") {
                if let Frame::Message(_) = f {
                    got += 1;
                    if sent < m {
                        out.extend_from_slice(req);
                        sent += 1;
                    }
                }
            }
            if !out.is_empty() {
                s.write_all(&out).await.expect("write");
                s.flush().await.expect("flush");
                out.clear();
            }
        }
    };
    tokio::time::timeout(LIMIT, work)
        .await
        .expect("bare responses in time");
    m as f64 / start.elapsed().as_secs_f64()
}

struct Row {
    what: String,
    sip: Vec<f64>,
    bare: Vec<f64>,
}

impl Row {
    fn print(&self, unit: &str) {
        let (s, b) = (median(&self.sip), median(&self.bare));
        println!(
            "| {} | {:.0} | {:.0} | {:.1}% | {} rounds; sipwire min/max {:.0}/{:.0}, bare {:.0}/{:.0} {unit} |",
            self.what,
            s,
            b,
            100.0 * s / b,
            self.sip.len(),
            self.sip.iter().cloned().fold(f64::INFINITY, f64::min),
            self.sip.iter().cloned().fold(0.0, f64::max),
            self.bare.iter().cloned().fold(f64::INFINITY, f64::min),
            self.bare.iter().cloned().fold(0.0, f64::max),
        );
    }
}

async fn handshakes(pki: &Pki, rounds: usize, n: usize, conc: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    for version in [Version::Tls13, Version::Tls12] {
        for resume in [false, true] {
            let a: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
            let b: SocketAddr = "127.0.0.1:5061".parse().expect("addr");
            let (req, resp) = (request(a, b, 400), response(a, b));
            let (ccfg, cache) = pki.client_cached(version, resume);
            let mut sip = SipPair::start(pki.server(version), ccfg, Some(resp.clone())).await;
            sip.cache = Some(cache);
            let bare = BareServer::start(pki.server(version), Some(resp)).await;
            let bare_cfg = pki.client(version, resume);
            // Warm-up: fills the session caches for the resumed cases.
            sip_handshakes(&mut sip, &req, conc * 2, conc).await;
            bare_handshakes(&bare, &bare_cfg, &req, conc * 2, conc).await;
            let mut row = Row {
                what: format!(
                    "{} handshakes/s, {} (+ one 400 B request answered)",
                    version.label(),
                    if resume { "resumed" } else { "full" }
                ),
                sip: Vec::new(),
                bare: Vec::new(),
            };
            for r in 0..rounds {
                if r % 2 == 0 {
                    row.sip.push(sip_handshakes(&mut sip, &req, n, conc).await);
                    row.bare
                        .push(bare_handshakes(&bare, &bare_cfg, &req, n, conc).await);
                } else {
                    row.bare
                        .push(bare_handshakes(&bare, &bare_cfg, &req, n, conc).await);
                    row.sip.push(sip_handshakes(&mut sip, &req, n, conc).await);
                }
            }
            check_resumption(&sip, &bare_cfg, bare.addr, version, resume).await;
            sip.server.shutdown(Duration::from_millis(100)).await;
            sip.client.shutdown(Duration::from_millis(100)).await;
            row.print("handshakes/s");
            rows.push(row);
        }
    }
    rows
}

/// Checks that the case measured what it says: resumed handshakes were resumed, full
/// ones were not (one more connection from the bare client).
async fn check_resumption(
    sip: &SipPair,
    cfg: &Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    version: Version,
    resume: bool,
) {
    let mut s = bare_connect(cfg, addr).await.expect("check connect");
    let (a, b): (SocketAddr, SocketAddr) = ("127.0.0.1:1".parse().expect("a"), addr);
    s.write_all(&request(a, b, 400)).await.expect("write");
    read_one(&mut s, &mut StreamFramer::new(Limits::default())).await;
    let conn = s.get_ref().1;
    let kind = conn.handshake_kind();
    let expected = if resume {
        rustls::HandshakeKind::Resumed
    } else {
        rustls::HandshakeKind::Full
    };
    assert_eq!(kind, Some(expected), "{} handshake kind", version.label());
    assert_eq!(
        conn.protocol_version(),
        Some(match version {
            Version::Tls13 => rustls::ProtocolVersion::TLSv1_3,
            Version::Tls12 => rustls::ProtocolVersion::TLSv1_2,
        })
    );
    // The sipwire client's session cache holds what it needs to resume too.
    let name = ServerName::try_from("localhost").expect("name");
    let store = sip.cache.as_ref().expect("session cache");
    let cached = match version {
        Version::Tls13 => store.take_tls13_ticket(&name).is_some(),
        Version::Tls12 => store.tls12_session(&name).is_some(),
    };
    assert_eq!(cached, resume, "sipwire client session cache");
    eprintln!(
        "# {} {}: suite {:?}",
        version.label(),
        if resume { "resumed" } else { "full" },
        conn.negotiated_cipher_suite().map(|s| s.suite())
    );
}

async fn messages(pki: &Pki, rounds: usize, m: usize, window: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    for version in [Version::Tls13, Version::Tls12] {
        // Addresses in the messages only matter for their length.
        let a: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        let b: SocketAddr = "127.0.0.1:5061".parse().expect("addr");
        let req = request(a, b, 1024);
        let resp = response(a, b);
        let mut sip = SipPair::start(
            pki.server(version),
            pki.client(version, true),
            Some(resp.clone()),
        )
        .await;
        let target = Target::new(TransportKind::Tls, sip.addr).with_server_name("localhost");
        let flow = sip.client.connect(&target).await.expect("sipwire connect");
        let bare = BareServer::start(pki.server(version), Some(resp.clone())).await;
        let mut bs = bare_connect(&pki.client(version, true), bare.addr)
            .await
            .expect("bare connect");
        sip_messages(&mut sip, flow, &req, m / 10, window).await;
        bare_messages(&mut bs, &req, m / 10, window).await;
        let mut row = Row {
            what: format!(
                "{} messages/s ({} B request + {} B 200, window {window})",
                version.label(),
                req.len(),
                resp.len()
            ),
            sip: Vec::new(),
            bare: Vec::new(),
        };
        for r in 0..rounds {
            if r % 2 == 0 {
                row.sip
                    .push(sip_messages(&mut sip, flow, &req, m, window).await);
                row.bare.push(bare_messages(&mut bs, &req, m, window).await);
            } else {
                row.bare.push(bare_messages(&mut bs, &req, m, window).await);
                row.sip
                    .push(sip_messages(&mut sip, flow, &req, m, window).await);
            }
        }
        sip.server.shutdown(Duration::from_millis(100)).await;
        sip.client.shutdown(Duration::from_millis(100)).await;
        row.print("messages/s");
        rows.push(row);
    }
    rows
}

fn main() {
    let rounds = env("TLS_BENCH_ROUNDS", 7).max(1);
    let n = env("TLS_BENCH_HANDSHAKES", 500).max(1);
    let m = env("TLS_BENCH_MESSAGES", 20_000).max(10);
    let window = env("TLS_BENCH_WINDOW", 16).max(1);
    let conc = env("TLS_BENCH_CONCURRENCY", 4).max(1);
    let only = std::env::var("TLS_BENCH_ONLY").unwrap_or_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let pki = Pki::generate();
        println!("| case | sipwire | bare tokio-rustls | sipwire / bare | notes |");
        println!("|---|---|---|---|---|");
        if only.is_empty() || only == "handshakes" {
            handshakes(&pki, rounds, n, conc).await;
        }
        if only.is_empty() || only == "messages" {
            messages(&pki, rounds, m, window).await;
        }
    });
}
