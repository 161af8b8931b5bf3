//! TLS throughput of sipwire endpoints against a bare tokio-rustls baseline, measured in
//! the same run (issue 4):
//!
//! - handshakes/s, full and resumed, TLS 1.3 and TLS 1.2: a client `Transport`
//!   connecting to a server `Transport` (`bind_tls`), each connection closed after its
//!   handshake, vs `TlsConnector`/`TlsAcceptor` doing the same, and vs bare endpoints
//!   that also pass every message they receive through sipwire's receive step (parse,
//!   Via `received`/`rport`), which sipwire's drivers do and the plain bare ones do not;
//! - messages/s over one established TLS connection: a ~1 KiB MESSAGE answered by a
//!   200, a window of requests in flight, vs a bare server framing by Content-Length with
//!   sipwire's `StreamFramer` and a bare client doing the same.
//!
//! Both sides use the same certificates (rcgen ECDSA P-256), the same rustls
//! configurations (ring provider, default suites) and the same resumption settings;
//! client and server run in this process on one tokio runtime with two workers.
//! Rounds interleave the implementations (rotating which goes first); the report is the
//! median of the rounds and the median of the per-round ratios sipwire / baseline.
//!
//! `cargo bench --bench tls_throughput`. Environment:
//! `TLS_BENCH_ROUNDS` (11), `TLS_BENCH_HANDSHAKES` per round (300), `TLS_BENCH_MESSAGES`
//! per round (10000), `TLS_BENCH_WINDOW` (16), `TLS_BENCH_CONCURRENCY` handshakes in
//! parallel (4), `TLS_BENCH_ONLY` (`handshakes` or `messages`), `TLS_BENCH_CASE` (only the
//! cases whose label contains it), `TLS_BENCH_SIDE` (`sipwire`, `bare` or `bare-parse` only,
//! for profiling), `TLS_BENCH_MAIN=1` (measure from the `block_on` thread instead of a
//! worker task).

#[path = "tls_common/mod.rs"]
mod tls_common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rustls::client::ClientSessionStore;
use rustls::pki_types::ServerName;
use sipwire::transport::receive::stream_message;
use sipwire::transport::{Incoming, Target, Transport, TransportConfig, TransportKind};
use sipwire::wire::{Frame, Limits, StreamFramer};
use tls_common::poll::eventually;
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

/// `TLS_BENCH_CASE`: only the cases whose label contains it.
fn selected(label: &str) -> bool {
    std::env::var("TLS_BENCH_CASE").map_or(true, |c| label.contains(&c))
}

/// `TLS_BENCH_SIDE` (`sipwire`, `bare` or `bare-parse`, the bare endpoints with the receive
/// step): run one side only (for profiling; no ratio).
fn side_runs(side: &str) -> bool {
    std::env::var("TLS_BENCH_SIDE").map_or(true, |s| s == side)
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
    let targets = Arc::new(std::sync::Mutex::new(targets.into_iter()));
    // Like the bare client: `conc` long-lived tasks, each opening its next connection when
    // an answer has come in (a turn), rather than a task per connection; one deadline for
    // the round rather than a timer per answer.
    let turns = Arc::new(tokio::sync::Semaphore::new(conc));
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..conc {
        let (client, req) = (p.client.clone(), req.clone());
        let (targets, turns) = (Arc::clone(&targets), Arc::clone(&turns));
        set.spawn(async move {
            loop {
                let Ok(turn) = turns.acquire().await else {
                    return;
                };
                turn.forget();
                let Some(t) = targets.lock().expect("targets").next() else {
                    return;
                };
                client
                    .send_to(&t, req.clone())
                    .await
                    .expect("sipwire send_to");
            }
        });
    }
    let stall = tokio::time::sleep(LIMIT);
    tokio::pin!(stall);
    let mut answered = 0;
    while answered < n {
        tokio::select! {
            Some(r) = set.join_next() => r.expect("connect task"),
            inc = p.crx.recv() => {
                let inc = inc.expect("client channel");
                p.client.abort(inc.flow);
                answered += 1;
                turns.add_permits(1);
            }
            _ = &mut stall => panic!("sipwire handshakes stalled"),
        }
    }
    turns.close();
    while let Some(r) = set.join_next().await {
        r.expect("connect task");
    }
    let (server, client) = (p.server.clone(), p.client.clone());
    eventually(
        LIMIT,
        "the sipwire server finishing the connections",
        || {
            let s = server.stats();
            s.opened_inbound >= base + n && s.stream_flows == 0 && client.stats().stream_flows == 0
        },
    )
    .await;
    n as f64 / start.elapsed().as_secs_f64()
}

/// Reads until one whole message is framed; with `parse_from`, passes it through
/// sipwire's receive step too.
async fn read_one<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    framer: &mut StreamFramer,
    parse_from: Option<SocketAddr>,
) {
    loop {
        if let Some(Frame::Message(raw)) = framer.next_frame().expect("framing") {
            if let Some(peer) = parse_from {
                std::hint::black_box(stream_message(raw, peer, &Limits::default()));
            }
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

/// The bare counterpart of [`sip_handshakes`]; with `parse`, the client passes every
/// response through sipwire's receive step (start the server with `parse` too).
async fn bare_handshakes(
    server: &BareServer,
    cfg: &Arc<rustls::ClientConfig>,
    req: &Bytes,
    n: usize,
    conc: usize,
    parse: bool,
) -> f64 {
    let base = server.done.load(Ordering::Relaxed);
    let addr = server.addr;
    let parse = parse.then_some(addr);
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
                read_one(&mut s, &mut StreamFramer::new(Limits::default()), parse).await;
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
    eventually(LIMIT, "the bare server finishing the connections", || {
        done.load(Ordering::Relaxed) >= base + n
    })
    .await;
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
    // One deadline for the round, as for the bare endpoints (not a timer per response).
    let work = async {
        while got < m {
            let inc = p.crx.recv().await.expect("client channel");
            debug_assert_eq!(inc.message.status_code(), Some(200));
            got += 1;
            if sent < m {
                p.client.send(flow, req.clone()).expect("send");
                sent += 1;
            }
        }
    };
    tokio::time::timeout(LIMIT, work)
        .await
        .expect("sipwire responses in time");
    m as f64 / start.elapsed().as_secs_f64()
}

/// `parse_from`: pass every response through sipwire's receive step too.
async fn bare_messages<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    req: &Bytes,
    m: usize,
    window: usize,
    parse_from: Option<SocketAddr>,
) -> f64 {
    let limits = Limits::default();
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
                if let Frame::Message(raw) = f {
                    if let Some(peer) = parse_from {
                        std::hint::black_box(stream_message(raw, peer, &limits));
                    }
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
    /// Messages only: the bare endpoints with sipwire's receive step.
    bare_parse: Vec<f64>,
}

impl Row {
    fn print(&self, unit: &str) {
        let (s, b) = (median(&self.sip), median(&self.bare));
        let bp = if self.bare_parse.is_empty() {
            "| – | – ".to_string()
        } else {
            let p = median(&self.bare_parse);
            format!(
                "| {p:.0} | {:.1}% ",
                100.0 * paired(&self.sip, &self.bare_parse)
            )
        };
        let spread = |v: &[f64]| {
            let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = v.iter().cloned().fold(0.0, f64::max);
            format!("{lo:.0}–{hi:.0}")
        };
        println!(
            "| {} | {s:.0} | {b:.0} | {:.1}% {bp}| {} rounds; ranges: sipwire {}, bare {} {unit} |",
            self.what,
            100.0 * paired(&self.sip, &self.bare),
            self.sip.len(),
            spread(&self.sip),
            spread(&self.bare),
        );
    }
}

/// Median of the per-round ratios a[i] / b[i]: rounds ran side by side, so each ratio
/// compares measurements taken under the same load.
fn paired(a: &[f64], b: &[f64]) -> f64 {
    let r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    median(&r)
}

async fn handshakes(pki: &Pki, rounds: usize, n: usize, conc: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    for version in [Version::Tls13, Version::Tls12] {
        for resume in [false, true] {
            let what = format!(
                "{} handshakes/s, {} (+ one 400 B request answered)",
                version.label(),
                if resume { "resumed" } else { "full" }
            );
            if !selected(&what) {
                continue;
            }
            let a: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
            let b: SocketAddr = "127.0.0.1:5061".parse().expect("addr");
            let (req, resp) = (request(a, b, 400), response(a, b));
            let (ccfg, cache) = pki.client_cached(version, resume);
            let (scfg, sip_hits) = pki.server_counted(version);
            let mut sip = SipPair::start(scfg, ccfg, Some(resp.clone())).await;
            sip.cache = Some(cache);
            let (bcfg, bare_hits) = pki.server_counted(version);
            let bare = BareServer::start(bcfg, Some(resp.clone()), false).await;
            let bare_cfg = pki.client(version, resume);
            // The same bare endpoints, both passing what they receive through sipwire's
            // receive step (parse, Via `received`/`rport`) as sipwire's drivers do.
            let (pcfg, parse_hits) = pki.server_counted(version);
            let bare_p = BareServer::start(pcfg, Some(resp), true).await;
            let parse_cfg = pki.client(version, resume);
            // Warm-up: fills the session caches for the resumed cases.
            sip_handshakes(&mut sip, &req, conc * 2, conc).await;
            bare_handshakes(&bare, &bare_cfg, &req, conc * 2, conc, false).await;
            bare_handshakes(&bare_p, &parse_cfg, &req, conc * 2, conc, true).await;
            let mut row = Row {
                what,
                sip: Vec::new(),
                bare: Vec::new(),
                bare_parse: Vec::new(),
            };
            // Rotate which of the three goes first.
            for r in 0..rounds {
                for k in 0..3 {
                    match (r + k) % 3 {
                        0 if side_runs("sipwire") => {
                            row.sip.push(sip_handshakes(&mut sip, &req, n, conc).await)
                        }
                        1 if side_runs("bare") => row
                            .bare
                            .push(bare_handshakes(&bare, &bare_cfg, &req, n, conc, false).await),
                        2 if side_runs("bare-parse") => row
                            .bare_parse
                            .push(bare_handshakes(&bare_p, &parse_cfg, &req, n, conc, true).await),
                        _ => {}
                    }
                }
            }
            // Every measured handshake of a resumed case was resumed (the server's cache
            // served it), none of a full case.
            let expect = if resume { row.sip.len() * n } else { 0 };
            let (sh, bh, ph) = (sip_hits.get(), bare_hits.get(), parse_hits.get());
            eprintln!(
                "# {}: server cache hits sipwire {sh}, bare {bh}, bare + receive step {ph}",
                row.what
            );
            assert!(sh >= expect && (resume || sh == 0), "sipwire resumptions");
            let expect = if resume { row.bare.len() * n } else { 0 };
            assert!(bh >= expect && (resume || bh == 0), "bare resumptions");
            let expect = if resume { row.bare_parse.len() * n } else { 0 };
            assert!(
                ph >= expect && (resume || ph == 0),
                "bare + parse resumptions"
            );
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
    read_one(&mut s, &mut StreamFramer::new(Limits::default()), None).await;
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
        let what = format!(
            "{} messages/s ({} B request + {} B 200, window {window})",
            version.label(),
            req.len(),
            resp.len()
        );
        if !selected(&what) {
            continue;
        }
        let mut sip = SipPair::start(
            pki.server(version),
            pki.client(version, true),
            Some(resp.clone()),
        )
        .await;
        let target = Target::new(TransportKind::Tls, sip.addr).with_server_name("localhost");
        let flow = sip.client.connect(&target).await.expect("sipwire connect");
        let bare = BareServer::start(pki.server(version), Some(resp.clone()), false).await;
        let mut bs = bare_connect(&pki.client(version, true), bare.addr)
            .await
            .expect("bare connect");
        let bare_p = BareServer::start(pki.server(version), Some(resp.clone()), true).await;
        let mut bsp = bare_connect(&pki.client(version, true), bare_p.addr)
            .await
            .expect("bare connect");
        let pf = Some(bare_p.addr);
        sip_messages(&mut sip, flow, &req, m / 10, window).await;
        bare_messages(&mut bs, &req, m / 10, window, None).await;
        bare_messages(&mut bsp, &req, m / 10, window, pf).await;
        let mut row = Row {
            what,
            sip: Vec::new(),
            bare: Vec::new(),
            bare_parse: Vec::new(),
        };
        // Rotate which of the three goes first.
        for r in 0..rounds {
            for k in 0..3 {
                match (r + k) % 3 {
                    0 if side_runs("sipwire") => row
                        .sip
                        .push(sip_messages(&mut sip, flow, &req, m, window).await),
                    1 if side_runs("bare") => row
                        .bare
                        .push(bare_messages(&mut bs, &req, m, window, None).await),
                    2 if side_runs("bare-parse") => row
                        .bare_parse
                        .push(bare_messages(&mut bsp, &req, m, window, pf).await),
                    _ => {}
                }
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
    let rounds = env("TLS_BENCH_ROUNDS", 11).max(1);
    let n = env("TLS_BENCH_HANDSHAKES", 300).max(1);
    let m = env("TLS_BENCH_MESSAGES", 10_000).max(10);
    let window = env("TLS_BENCH_WINDOW", 16).max(1);
    let conc = env("TLS_BENCH_CONCURRENCY", 4).max(1);
    let only = std::env::var("TLS_BENCH_ONLY").unwrap_or_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // The measuring code runs in a task on the runtime's workers (both sides alike), as a
    // server's code does; `TLS_BENCH_MAIN=1` runs it on the `block_on` thread instead, where
    // every wake-up from a worker is a cross-thread futex wake.
    let on_main = std::env::var("TLS_BENCH_MAIN").is_ok_and(|v| v == "1");
    let body = async move {
        let pki = Pki::generate();
        println!(
            "| case | sipwire (median) | bare tokio-rustls (median) | sipwire / bare \
             (median of per-round ratios) | bare + sipwire receive step | sipwire / that | notes |"
        );
        println!("|---|---|---|---|---|---|---|");
        if only.is_empty() || only == "handshakes" {
            handshakes(&pki, rounds, n, conc).await;
        }
        if only.is_empty() || only == "messages" {
            messages(&pki, rounds, m, window).await;
        }
    };
    if on_main {
        rt.block_on(body);
    } else {
        rt.block_on(rt.spawn(body)).expect("bench task");
    }
}
