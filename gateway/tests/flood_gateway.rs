//! Flood limits against the real thing: `sipwire run` with a `[flood]` section, a bounded flood
//! from one loopback address (127.0.0.2: 5,000 OPTIONS over UDP and 200 TCP connection
//! attempts) while a second address (127.0.0.3) is served normally over UDP, TCP and TLS, and
//! a third (127.0.0.4) spends its budget of failed TLS handshakes. The flooder gets 503s with
//! Retry-After and refused connections, the normal client gets a 200 to every request, and
//! the Prometheus exporter counts exactly the refusals the clients saw. A reload that
//! allow-lists the flooder serves it again.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use support::poll::WAIT;
use support::prometheus::scrape;
use support::sip::{options, parse};
use support::transport::{framer, read_message};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

const FLOODER: [u8; 4] = [127, 0, 0, 2];
const NORMAL: [u8; 4] = [127, 0, 0, 3];
const TLS_ABUSER: [u8; 4] = [127, 0, 0, 4];

/// The limits under test: 100 requests/s (bursts of 50), 5 connections/s (bursts of 10),
/// 3 failed TLS handshakes a minute then a minute without TLS.
const FLOOD: &str = "[flood]\nrequests_per_second = 100\nrequest_burst = 50\n\
     connections_per_second = 5\nconnection_burst = 10\ntls_failures = 3\n\
     tls_failure_window_secs = 60\ntls_ban_secs = 60\nretry_after_secs = 7\n";

fn config(dir: &std::path::Path, metrics: SocketAddr, flood: &str) -> String {
    format!(
        "[[listener]]\nname = 'u'\ntransport = 'udp'\naddr = '127.0.0.1:0'\n\
         [[listener]]\nname = 't'\ntransport = 'tcp'\naddr = '127.0.0.1:0'\n\
         [[listener]]\nname = 's'\ntransport = 'tls'\naddr = '127.0.0.1:0'\ndomain = 'localhost'\n\
         [tls]\ndev_ca = true\n[state]\ndir = '{}'\n[metrics]\nprometheus = '{metrics}'\n{flood}",
        dir.join("state").display()
    )
}

fn from(ip: [u8; 4]) -> SocketAddr {
    (ip, 0).into()
}

/// A TCP connection from `ip` to `to`.
async fn connect_from(ip: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(from(ip))?;
    s.connect(to).await
}

/// Sends an OPTIONS on a stream and returns the status of its response.
async fn stream_options<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    transport: &str,
    local: SocketAddr,
    server: SocketAddr,
    branch: &str,
) -> u16 {
    s.write_all(options(transport, local, server, branch).as_bytes())
        .await
        .expect("send");
    let resp = tokio::time::timeout(WAIT, read_message(s, &mut framer()))
        .await
        .expect("a response in time");
    resp.status_code().expect("a response")
}

/// What the flooder's UDP socket received.
#[derive(Debug, Default)]
struct UdpSeen {
    ok: usize,
    unavailable: usize,
    retry_after_7: usize,
    other: usize,
}

/// The flooder: `n` OPTIONS over UDP in batches, reading the answers until 1 s of silence.
async fn udp_flood(server: SocketAddr, n: usize) -> UdpSeen {
    let sock = std::sync::Arc::new(UdpSocket::bind(from(FLOODER)).await.expect("bind"));
    let local = sock.local_addr().expect("local");
    let reader = {
        let sock = sock.clone();
        tokio::spawn(async move {
            let mut seen = UdpSeen::default();
            let mut buf = vec![0u8; 65536];
            while let Ok(Ok((len, _))) =
                tokio::time::timeout(Duration::from_secs(1), sock.recv_from(&mut buf)).await
            {
                let m = parse(&buf[..len]);
                match m.status_code() {
                    Some(200) => seen.ok += 1,
                    Some(503) => {
                        seen.unavailable += 1;
                        if String::from_utf8_lossy(&buf[..len]).contains("\r\nRetry-After: 7\r\n") {
                            seen.retry_after_7 += 1;
                        }
                    }
                    _ => seen.other += 1,
                }
            }
            seen
        })
    };
    for i in 0..n {
        let req = options("UDP", local, server, &format!("flood{i}"));
        sock.send_to(req.as_bytes(), server).await.expect("send");
        if i % 50 == 49 {
            // About 5,000 a second: bounded, so that the test measures the limiter more
            // than the kernel's socket buffers.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    reader.await.expect("reader")
}

/// The flooder's connection attempts: how many were answered (admitted) and how many were
/// closed or reset before any answer (refused).
async fn tcp_flood(server: SocketAddr, n: usize) -> (usize, usize, Vec<TcpStream>) {
    let (mut admitted, mut refused) = (0, 0);
    let mut kept = Vec::new();
    for i in 0..n {
        let mut s = match connect_from(FLOODER, server).await {
            Ok(s) => s,
            Err(_) => {
                refused += 1;
                continue;
            }
        };
        let local = s.local_addr().expect("local");
        let req = options("TCP", local, server, &format!("conn{i}"));
        if s.write_all(req.as_bytes()).await.is_err() {
            refused += 1;
            continue;
        }
        let mut buf = [0u8; 12];
        match tokio::time::timeout(WAIT, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                assert!(buf.starts_with(b"SIP/2.0 "), "{buf:?}");
                admitted += 1;
                kept.push(s);
            }
            Ok(_) => refused += 1,
            Err(_) => panic!("connection {i}: neither answered nor closed"),
        }
    }
    (admitted, refused, kept)
}

/// The normal client: `n` OPTIONS over UDP, one transaction at a time, retransmitted as
/// RFC 3261 §17.1.2.2 says (Timer A from 500 ms, doubling) since the flood may overflow the
/// gateway's socket buffer in the kernel, before any limiter sees it. Returns each final
/// status (0: none within Timer F, 32 s) and the retransmissions made.
async fn udp_normal(server: SocketAddr, n: usize) -> (Vec<u16>, usize) {
    let sock = UdpSocket::bind(from(NORMAL)).await.expect("bind");
    let local = sock.local_addr().expect("local");
    let mut buf = vec![0u8; 65536];
    let mut statuses = Vec::new();
    let mut retransmissions = 0;
    for i in 0..n {
        let branch = format!("normal{i}");
        let req = options("UDP", local, server, &branch);
        let call_id = format!("{branch}@test");
        let timer_f = Instant::now() + Duration::from_secs(32);
        let mut timer_a = Duration::from_millis(500);
        let status = 'transaction: loop {
            sock.send_to(req.as_bytes(), server).await.expect("send");
            let until = Instant::now() + timer_a;
            while let Ok(r) = tokio::time::timeout(
                until.saturating_duration_since(Instant::now()),
                sock.recv_from(&mut buf),
            )
            .await
            {
                let (len, _) = r.expect("recv");
                let m = parse(&buf[..len]);
                // An answer to a retransmission of an earlier transaction is not this one's.
                if m.call_id() == call_id {
                    break 'transaction m.status_code().expect("a response");
                }
            }
            if Instant::now() >= timer_f {
                break 0;
            }
            retransmissions += 1;
            timer_a *= 2;
        };
        statuses.push(status);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (statuses, retransmissions)
}

/// The normal client over TCP: `n` connections, one OPTIONS each.
async fn tcp_normal(server: SocketAddr, n: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..n {
        let mut s = connect_from(NORMAL, server).await.expect("connect");
        let local = s.local_addr().expect("local");
        statuses.push(stream_options(&mut s, "TCP", local, server, &format!("ntcp{i}")).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    statuses
}

/// A TLS client from `ip` verifying the gateway against its development CA.
async fn tls_options(dir: &std::path::Path, ip: [u8; 4], server: SocketAddr, branch: &str) -> u16 {
    let roots = support::gateway::dev_ca_roots(&dir.join("state"));
    let cc = support::pki::client_config(roots, None, rustls::DEFAULT_VERSIONS);
    let raw = connect_from(ip, server).await.expect("connect");
    let local = raw.local_addr().expect("local");
    let mut s = tokio_rustls::TlsConnector::from(cc)
        .connect(ServerName::try_from("localhost").expect("name"), raw)
        .await
        .expect("TLS handshake");
    stream_options(&mut s, "TLS", local, server, branch).await
}

/// A connection that fails its TLS handshake (garbage instead of a ClientHello); returns once
/// the gateway closed it.
async fn failed_handshake(ip: [u8; 4], server: SocketAddr) {
    let mut s = connect_from(ip, server).await.expect("connect");
    let _ = s.write_all(b"NOT TLS AT ALL\r\n\r\n").await;
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(WAIT, s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(_)) => {}
            Err(_) => panic!("the gateway kept a failed handshake open"),
        }
    }
}

/// The value of one series (labels in the exporter's order), 0 when absent.
fn value(exported: &str, series: &str) -> u64 {
    support::prometheus::value(exported, series).map_or(0, |v| v as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooder_is_refused_while_a_normal_client_is_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free TCP port");
    let gw = support::gateway::start(dir.path(), &config(dir.path(), metrics, FLOOD));
    let (udp, tcp, tls) = (gw.listener("udp"), gw.listener("tcp"), gw.listener("tls"));

    // The flood and the normal client at the same time.
    let started = Instant::now();
    let flood = tokio::spawn(async move {
        let udp_seen = udp_flood(udp, 5_000).await;
        let tcp_seen = tcp_flood(tcp, 200).await;
        (udp_seen, tcp_seen)
    });
    let normal =
        tokio::spawn(async move { (udp_normal(udp, 100).await, tcp_normal(tcp, 5).await) });
    let ((normal_udp, retransmissions), normal_tcp) = normal.await.expect("normal client");
    let (udp_seen, (admitted, refused, _kept)) = flood.await.expect("flooder");
    let flood_time = started.elapsed();
    assert!(flood_time < Duration::from_secs(10), "{flood_time:?}");

    // The normal client: every request answered 200, over UDP and TCP, and over TLS.
    assert!(normal_udp.iter().all(|s| *s == 200), "{normal_udp:?}");
    assert_eq!(normal_udp.len(), 100);
    assert_eq!(normal_tcp, [200; 5]);
    assert_eq!(tls_options(dir.path(), NORMAL, tls, "ntls").await, 200);

    // The flooder: a burst and the sustained rate answered, the rest refused with 503 and
    // Retry-After (a few answers may be lost in the flooder's own socket buffer).
    let secs = flood_time.as_secs_f64();
    eprintln!(
        "flood in {secs:.2} s: UDP {udp_seen:?}; TCP: {admitted} admitted, {refused} refused; \
         normal client: {retransmissions} UDP retransmissions"
    );
    assert_eq!(udp_seen.other, 0);
    assert!(udp_seen.ok >= 50, "{udp_seen:?}");
    assert!(
        (udp_seen.ok as f64) <= 50.0 + 100.0 * secs + 5.0,
        "{udp_seen:?} in {secs} s"
    );
    assert!(udp_seen.unavailable >= 3_000, "{udp_seen:?}");
    assert_eq!(udp_seen.retry_after_7, udp_seen.unavailable);
    assert!(admitted >= 10, "{admitted}");
    assert!((admitted as f64) <= 10.0 + 5.0 * secs + 2.0, "{admitted}");
    assert_eq!(admitted + refused, 200);

    // A source over its failed-handshake budget is refused TLS.
    for _ in 0..4 {
        failed_handshake(TLS_ABUSER, tls).await;
    }
    let roots = support::gateway::dev_ca_roots(&dir.path().join("state"));
    let cc = support::pki::client_config(roots, None, rustls::DEFAULT_VERSIONS);
    // Reset at once: the connect itself may already see it.
    let refused_tls = match connect_from(TLS_ABUSER, tls).await {
        Err(e) => Err(e),
        Ok(s) => tokio_rustls::TlsConnector::from(cc)
            .connect(ServerName::try_from("localhost").expect("name"), s)
            .await
            .map(drop),
    };
    assert!(refused_tls.is_err(), "TLS accepted from a banned source");
    // ...while the normal client still gets TLS.
    assert_eq!(tls_options(dir.path(), NORMAL, tls, "ntls2").await, 200);

    // The exporter counts exactly what the clients saw refused.
    let exported = scrape(metrics).await;
    let drops = |transport: &str, reason: &str| {
        value(
            &exported,
            &format!(
                "sipwire_transport_drops_total{{transport=\"{transport}\",reason=\"{reason}\"}}"
            ),
        )
    };
    // Every request the gateway did not answer 200 was refused, each with a 503.
    let udp_refused = drops("udp", "request_rate");
    assert!(
        udp_refused >= udp_seen.unavailable as u64 && udp_refused <= 5_000 - udp_seen.ok as u64,
        "{udp_refused} {udp_seen:?}"
    );
    assert_eq!(
        value(
            &exported,
            "sipwire_transport_flood_replies_total{transport=\"udp\"}"
        ),
        udp_refused,
        "{exported}"
    );
    assert_eq!(
        drops("tcp", "connection_rate"),
        refused as u64,
        "{exported}"
    );
    assert_eq!(drops("tls", "tls_handshake_budget"), 1, "{exported}");

    // A reload that allow-lists the flooder: the limiter is replaced and it is served again.
    let path = dir.path().join("sipwire.toml");
    std::fs::write(
        &path,
        config(
            dir.path(),
            metrics,
            &format!("{FLOOD}allow = ['127.0.0.2/32']\n"),
        ),
    )
    .expect("rewrite");
    let pid = gw.child.id().to_string();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    let end = Instant::now() + WAIT;
    loop {
        let l = gw
            .lines
            .recv_timeout(end.saturating_duration_since(Instant::now()))
            .expect("reload reported");
        assert!(!l.contains("refused"), "{l}");
        if l.starts_with("sipwire: configuration reloaded from") {
            break;
        }
    }
    let again = udp_flood(udp, 300).await;
    assert_eq!((again.ok, again.unavailable), (300, 0), "{again:?}");
}
