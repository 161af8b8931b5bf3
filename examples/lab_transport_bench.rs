//! Benchmark (run by lab/bench/sctp-transports.sh; needs root, network namespaces and kernel
//! SCTP: the lab VM): the SCTP transports next to TCP and TLS over TCP, measured in one run.
//!
//! - Transactions: host b keeps `W` OPTIONS transactions in flight to host a (closed loop) for a
//!   few seconds per transport, transports alternated over rounds; prints transactions/s and
//!   p50/p99 latency per transport and the ratio to TCP (plain) or TLS (secure).
//! - Memory per idle association / connection: host b opens `IDLE` idle associations (or TCP
//!   connections) to a sipwire listener with raw kernel sockets (no userspace state on that
//!   side), TCP first and, with those still open, SCTP, before any other traffic (so that freed
//!   memory is not reused in between); the growth of this process's resident memory divided by
//!   `IDLE` is sipwire's cost per flow (kernel socket memory is not in it).
//!
//! Only ratios mean something: the VM emulates the CPU.

#[allow(dead_code)]
#[path = "../tests/support/dtls.rs"]
mod dtls;
#[allow(dead_code)]
#[path = "../tests/support/pki.rs"]
mod pki;

#[allow(dead_code)]
#[path = "../tests/support/sip.rs"]
mod sip;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sipwire::transport::{Transport, TransportConfig};
use sipwire::wire::response::response_to;
use sipwire::{Target, TransportKind};
use sipwire_lab::{Host, Topology};

const W: usize = 32;
const SECONDS: u64 = 3;
const ROUNDS: usize = 3;
const IDLE: usize = 500;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

fn port(kind: TransportKind) -> u16 {
    match kind {
        TransportKind::Tcp => 5060,
        TransportKind::Tls => 5061,
        TransportKind::Sctp => 5062,
        TransportKind::TlsSctp => 5063,
        _ => 5064,
    }
}

/// Host a: one transport with every listener, answering every request with 200.
fn server(a: &Host, tls: Arc<rustls::ServerConfig>, dtls: openssl::ssl::SslAcceptorBuilder) {
    let (tx, rx) = std::sync::mpsc::channel();
    let task = a.run(move || async move {
        let (t, mut rx_in) = Transport::new(TransportConfig::default());
        t.bind_tcp(addr("192.0.2.1:5060")).await.expect("tcp");
        t.bind_tls(addr("192.0.2.1:5061"), Arc::clone(&tls))
            .await
            .expect("tls");
        t.bind_sctp(TransportKind::Sctp, &[addr("192.0.2.1:5062")])
            .await
            .expect("sctp");
        t.bind_tls_sctp(&[addr("192.0.2.1:5063")], tls)
            .await
            .expect("tls-sctp");
        t.bind_dtls_sctp(&[addr("192.0.2.1:5064")], dtls)
            .await
            .expect("dtls-sctp (net.sctp.auth_enable = 1)");
        let _ = tx.send(());
        while let Some(inc) = rx_in.recv().await {
            let _ = t.send(inc.flow, response_to(&inc.message, 200, "OK"));
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("server listening");
    std::mem::forget(task);
}

/// One closed-loop run of `kind`: (transactions/s, latencies).
fn run(
    b: &Host,
    kind: TransportKind,
    client: Arc<rustls::ClientConfig>,
    dtls: openssl::ssl::SslConnectorBuilder,
) -> (f64, Vec<Duration>) {
    b.run(move || async move {
        let (t, mut rx) = Transport::new(TransportConfig::default());
        t.set_tls_client(client);
        t.set_dtls_sctp_client(dtls);
        let target = Target::new(kind, SocketAddr::new(addr("192.0.2.1:0").ip(), port(kind)))
            .with_server_name("a.example.net");
        let flow = t.connect(&target).await.expect("connect");
        let local = t.flow_info(flow).expect("flow").local;
        let via = kind.via_token();
        let mut sent_at = std::collections::HashMap::new();
        let mut lat = Vec::new();
        let mut n = 0u64;
        let send = |n: u64, sent_at: &mut std::collections::HashMap<String, Instant>| {
            let branch = format!("b{n}");
            let req = sip::request("OPTIONS", via, local, target.addr, &branch, 0);
            sent_at.insert(format!("{branch}@test"), Instant::now());
            t.send(flow, Bytes::from(req)).expect("send");
        };
        for _ in 0..W {
            send(n, &mut sent_at);
            n += 1;
        }
        let start = Instant::now();
        let end = start + Duration::from_secs(SECONDS);
        let mut done = 0u64;
        while Instant::now() < end {
            let Ok(Some(r)) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await else {
                panic!("{kind}: no answer in 10 s");
            };
            if let Some(s) = sent_at.remove(r.message.call_id()) {
                lat.push(s.elapsed());
                done += 1;
                send(n, &mut sent_at);
                n += 1;
            }
        }
        let rate = done as f64 / start.elapsed().as_secs_f64();
        t.shutdown(Duration::from_millis(50)).await;
        (rate, lat)
    })
    .join()
    .expect("client")
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn rss_kib() -> isize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Opens `IDLE` raw idle flows of `kind` (TCP or SCTP) from host b to host a's listener and
/// returns sipwire's resident memory growth per flow, in bytes, and the open sockets.
fn idle_cost(b: &Host, kind: TransportKind) -> (f64, Vec<socket2::Socket>) {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let to = SockAddr::from(SocketAddr::new(addr("192.0.2.1:0").ip(), port(kind)));
    let before = rss_kib();
    let socks = b
        .spawn(move || {
            let proto = if kind == TransportKind::Sctp { 132 } else { 6 };
            let mut v = Vec::new();
            for _ in 0..IDLE {
                let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::from(proto)))
                    .expect("socket");
                s.connect(&to).expect("connect");
                v.push(s);
            }
            v
        })
        .join()
        .expect("thread")
        .expect("host");
    // Let the server register every flow.
    std::thread::sleep(Duration::from_secs(3));
    let after = rss_kib();
    ((after - before) as f64 * 1024.0 / IDLE as f64, socks)
}

fn main() {
    let mut lab = Topology::new().expect("lab (run as root, in the lab VM)");
    let a = lab.host("a").expect("host a");
    let b = lab.host("b").expect("host b");
    lab.link(&a, &["192.0.2.1/24"], &b, &["192.0.2.2/24"])
        .expect("link");
    let ca = pki::Ca::new("bench CA");
    let leaf = ca.sip_leaf(&["a.example.net"]);
    let client_leaf = ca.sip_leaf(&["b.example.net"]);
    let versions: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    for h in [&a, &b] {
        h.sysctl("net/sctp/auth_enable", "1").expect("SCTP-AUTH on");
    }
    server(
        &a,
        ca.server_config(&leaf, &[], versions),
        dtls::acceptor(&ca, &leaf),
    );
    let client = ca.client_config(None, versions);

    // Idle flows first, before any traffic has freed memory that the next flows would reuse.
    let (tcp, tcp_socks) = idle_cost(&b, TransportKind::Tcp);
    let (sctp, sctp_socks) = idle_cost(&b, TransportKind::Sctp);
    drop((tcp_socks, sctp_socks));
    std::thread::sleep(Duration::from_secs(2));
    let kinds = [
        TransportKind::Tcp,
        TransportKind::Sctp,
        TransportKind::Tls,
        TransportKind::TlsSctp,
        TransportKind::DtlsSctp,
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    let mut lats: Vec<Vec<Duration>> = vec![Vec::new(); kinds.len()];
    for round in 0..ROUNDS {
        for (i, k) in kinds.iter().enumerate() {
            let (r, l) = run(
                &b,
                *k,
                Arc::clone(&client),
                dtls::connector(&ca, &client_leaf),
            );
            eprintln!("round {round} {k}: {r:.0} transactions/s");
            rates[i].push(r);
            lats[i].extend(l);
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("| transport | transactions/s (median of {ROUNDS}) | vs baseline | p50 | p99 |");
    println!("|---|---|---|---|---|");
    for (i, k) in kinds.iter().enumerate() {
        let base = if k.is_secure() { 2 } else { 0 };
        let r = median(&rates[i]);
        let ratio = r / median(&rates[base]);
        let mut l = lats[i].clone();
        println!(
            "| {k} | {r:.0} | {ratio:.2} (vs {}) | {:.1} ms | {:.1} ms |",
            kinds[base],
            pct(&mut l, 0.5).as_secs_f64() * 1e3,
            pct(&mut l, 0.99).as_secs_f64() * 1e3
        );
    }
    println!();
    println!("| idle flows ({IDLE}, raw kernel clients) | sipwire memory per flow |");
    println!("|---|---|");
    println!("| TCP connection | {:.1} KiB |", tcp / 1024.0);
    println!(
        "| SCTP association | {:.1} KiB ({:.2}x TCP) |",
        sctp / 1024.0,
        sctp / tcp.max(1.0)
    );
}
