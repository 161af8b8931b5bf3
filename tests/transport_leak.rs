//! Many connections opened and closed leave no leak: file descriptors, RSS, flow table,
//! limit table and tasks come back to their baseline.
//!
//! The count is `SIPWIRE_LEAK_CONNECTIONS` (default 10,000 TCP connections, plus a tenth of
//! that over TLS); `benches/transport_leak.sh` runs it in release mode. This file holds a
//! single test because it measures the whole process.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use sipwire::transport::{Transport, TransportConfig};
use sipwire::wire::response::response_to;
use support::pki::Localhost;
use support::poll::{eventually, WAIT};
use support::sip::options;
use support::transport::*;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd must be readable for this test")
        .count()
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

async fn one<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    local: SocketAddr,
    server: SocketAddr,
    i: usize,
) {
    s.write_all(options("TCP", local, server, &format!("l{i}")).as_bytes())
        .await
        .expect("send");
    let mut f = framer();
    assert_eq!(read_message(s, &mut f).await.status_code(), Some(200));
}

async fn tcp_batch(addr: SocketAddr, start: usize, n: usize) {
    let mut set = tokio::task::JoinSet::new();
    for i in start..start + n {
        set.spawn(async move {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            let local = s.local_addr().expect("local");
            one(&mut s, local, addr, i).await;
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("connection task");
    }
}

async fn tls_batch(addr: SocketAddr, cc: Arc<rustls::ClientConfig>, start: usize, n: usize) {
    let mut set = tokio::task::JoinSet::new();
    for i in start..start + n {
        let cc = Arc::clone(&cc);
        set.spawn(async move {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            let local = tcp.local_addr().expect("local");
            let mut s = tokio_rustls::TlsConnector::from(cc)
                .connect(ServerName::try_from("localhost").expect("name"), tcp)
                .await
                .expect("handshake");
            one(&mut s, local, addr, i).await;
            let _ = s.shutdown().await;
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("connection task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_connections_leave_no_leak() {
    let count: usize = match std::env::var("SIPWIRE_LEAK_CONNECTIONS") {
        Ok(v) => v
            .parse()
            .expect("SIPWIRE_LEAK_CONNECTIONS must be a number"),
        Err(_) => 10_000,
    };
    let batch = 100;
    let pki = Localhost::generate();
    let (srv, mut rx) = Transport::new(TransportConfig {
        max_connections_per_ip: batch * 2,
        max_connections: batch * 4,
        ..TransportConfig::default()
    });
    let tcp = srv
        .bind_tcp("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let tls = srv
        .bind_tls("127.0.0.1:0".parse().expect("addr"), pki.server_config())
        .await
        .expect("bind");
    let s2 = srv.clone();
    tokio::spawn(async move {
        while let Some(inc) = rx.recv().await {
            let _ = s2.send(inc.flow, response_to(&inc.message, 200, "OK"));
        }
    });
    let cc = pki.client_config(false);
    let settle = |what: &'static str| {
        let srv = srv.clone();
        async move {
            eventually(WAIT, what, || {
                let s = srv.stats();
                s.stream_flows == 0 && s.admitted == 0 && s.tracked_ips == 0 && s.tasks == 2
            })
            .await
        }
    };

    // Warm up with the same concurrency so allocator high-water marks are reached.
    tcp_batch(tcp, 0, batch).await;
    tls_batch(tls, Arc::clone(&cc), 0, batch / 10).await;
    settle("warm-up connections closed").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (fd0, rss0) = (fd_count(), rss_kib());

    let mut done = 0;
    while done < count {
        let n = batch.min(count - done);
        tcp_batch(tcp, done, n).await;
        done += n;
    }
    let tls_count = count / 10;
    let mut done = 0;
    while done < tls_count {
        let n = (batch / 4).min(tls_count - done);
        tls_batch(tls, Arc::clone(&cc), done, n).await;
        done += n;
    }
    settle("all connections closed").await;
    let s = srv.stats();
    assert_eq!(s.reuse_entries, 0, "reuse index emptied: {s:?}");

    // Sockets in the kernel may take a moment to be released after the peers closed.
    eventually(WAIT, "file descriptors back to baseline", || {
        fd_count() <= fd0
    })
    .await;
    let rss1 = rss_kib();
    println!(
        "{count} TCP + {tls_count} TLS connections: fds {fd0} -> {}, RSS {rss0} KiB -> {rss1} KiB",
        fd_count()
    );
    assert!(
        rss1 <= rss0 + 16 * 1024,
        "RSS grew from {rss0} KiB to {rss1} KiB"
    );
}
