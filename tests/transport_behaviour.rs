//! RFC behaviours of the transport layer on loopback: UDP->TCP for large requests,
//! 65,507-byte datagrams, error responses, Content-Length on streams, CRLFs before a
//! start line, STUN and CRLF keep-alives, graceful close and peer close.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use rustls::pki_types::ServerName;
use sipwire::transport::{Target, Transport, TransportConfig, TransportKind};
use support::pki::Localhost;
use support::poll::{eventually, WAIT};
use support::sip::{options, parse, request};
use support::transport::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

async fn udp_client() -> (
    Transport,
    tokio::sync::mpsc::Receiver<sipwire::transport::Incoming>,
    SocketAddr,
) {
    let (t, rx) = Transport::new(TransportConfig::default());
    let a = t
        .bind_udp("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    (t, rx, a)
}

/// A raw peer with TCP and UDP on the same port (RFC 3261 §18.2.1).
async fn raw_peer() -> (TcpListener, UdpSocket, SocketAddr) {
    for _ in 0..20 {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("tcp");
        let a = l.local_addr().expect("addr");
        if let Ok(u) = UdpSocket::bind(a).await {
            return (l, u, a);
        }
    }
    panic!("no port free for both TCP and UDP");
}

#[tokio::test]
async fn large_request_to_udp_target_goes_over_tcp_with_via_rewritten() {
    let (client, _rx, me) = udp_client().await;
    let (tcp, udp, peer) = raw_peer().await;
    let big = request("MESSAGE", "UDP", me, peer, "big", 1400);
    assert!(big.len() > 1300);
    let flow = client
        .send_to(&Target::new(TransportKind::Udp, peer), Bytes::from(big))
        .await
        .expect("send");
    assert_eq!(flow.kind(), TransportKind::Tcp);
    let (mut s, _) = tokio::time::timeout(WAIT, tcp.accept())
        .await
        .expect("accept in time")
        .expect("accept");
    let mut f = framer();
    let m = read_message(&mut s, &mut f).await;
    let via = m.top_via().expect("via");
    assert_eq!(via.transport_raw, "TCP");
    assert_eq!(via.port, Some(me.port()), "sent-by kept");
    assert_eq!(via.branch, Some("z9hG4bKbig"));
    assert_eq!(m.body().len(), 1400);

    // A small request stays on UDP.
    let small = request("MESSAGE", "UDP", me, peer, "small", 10);
    let flow = client
        .send_to(&Target::new(TransportKind::Udp, peer), Bytes::from(small))
        .await
        .expect("send");
    assert_eq!(flow.kind(), TransportKind::Udp);
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(WAIT, udp.recv_from(&mut buf))
        .await
        .expect("in time")
        .expect("recv");
    assert_eq!(
        parse(&buf[..n]).top_via().expect("via").transport_raw,
        "UDP"
    );

    // TCP refused: the large request goes over UDP after all (RFC 3261 §18.1.1).
    drop(tcp);
    drop(s);
    eventually(WAIT, "TCP flow gone", || client.stats().stream_flows == 0).await;
    let big = request("MESSAGE", "UDP", me, peer, "big2", 1400);
    let flow = client
        .send_to(&Target::new(TransportKind::Udp, peer), Bytes::from(big))
        .await
        .expect("send");
    assert_eq!(flow.kind(), TransportKind::Udp);
    let (n, _) = tokio::time::timeout(WAIT, udp.recv_from(&mut buf))
        .await
        .expect("in time")
        .expect("recv");
    assert_eq!(
        parse(&buf[..n]).top_via().expect("via").branch,
        Some("z9hG4bKbig2")
    );
}

#[tokio::test]
async fn udp_accepts_65507_bytes_answers_bad_requests_and_stun() {
    let (srv, mut rx, addr) = udp_client().await;
    let u = UdpSocket::bind("127.0.0.1:0").await.expect("udp");
    let me = u.local_addr().expect("addr");
    let head = request("MESSAGE", "UDP", me, addr, "huge", 0);
    // "Content-Length: 0" becomes a five-digit value.
    let body = 65_507 - head.len() - 4;
    let huge = request("MESSAGE", "UDP", me, addr, "huge", body);
    assert_eq!(huge.len(), 65_507);
    u.send_to(huge.as_bytes(), addr).await.expect("send");
    let inc = next(&mut rx).await;
    assert_eq!(inc.message.body().len(), body, "whole datagram received");

    // Truncated body: 400 (RFC 3261 §18.3).
    let bad = request("MESSAGE", "UDP", me, addr, "trunc", 10)
        .replace("Content-Length: 10", "Content-Length: 20");
    u.send_to(bad.as_bytes(), addr).await.expect("send");
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(WAIT, u.recv_from(&mut buf))
        .await
        .expect("in time")
        .expect("recv");
    assert_eq!(parse(&buf[..n]).status_code(), Some(400));

    // STUN Binding Request -> Binding Success with XOR-MAPPED-ADDRESS (RFC 5626 §4.4.2).
    let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    stun.extend_from_slice(&[9u8; 12]);
    u.send_to(&stun, addr).await.expect("send");
    let (n, _) = tokio::time::timeout(WAIT, u.recv_from(&mut buf))
        .await
        .expect("in time")
        .expect("recv");
    assert_eq!(&buf[..2], &[0x01, 0x01]);
    assert_eq!(n, 32);
    let port = u16::from_be_bytes([buf[26], buf[27]]) ^ 0x2112;
    assert_eq!(port, me.port());
    drop(srv);
}

#[tokio::test]
async fn streams_need_content_length_and_skip_leading_crlf() {
    let (srv, mut rx) = Transport::new(TransportConfig::default());
    let addr = srv
        .bind_tcp("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let me = s.local_addr().expect("addr");
    // CRLFs before the start line are ignored (RFC 3261 §7.5).
    let ok = format!("\r\n{}", options("TCP", me, addr, "lead"));
    s.write_all(ok.as_bytes()).await.expect("send");
    let inc = next(&mut rx).await;
    assert_eq!(
        inc.message.top_via().expect("via").branch,
        Some("z9hG4bKlead")
    );
    // No Content-Length on a stream: 400, then the connection is closed.
    let no_cl = options("TCP", me, addr, "nocl").replace("Content-Length: 0\r\n", "");
    s.write_all(no_cl.as_bytes()).await.expect("send");
    let mut f = framer();
    let r = read_message(&mut s, &mut f).await;
    assert_eq!(r.status_code(), Some(400));
    closed_within(&mut s, Duration::from_secs(5)).await;
}

/// End to end, the driver wires the flow core's keep-alive timer to the socket: a ping after
/// the interval, a pong keeps the flow. The timings themselves (interval, RFC 5626's 10 s pong
/// timeout, failure without a pong) are the flow core's simulated-time tests
/// (`transport::flow_core::tests::our_keepalive_pings_and_the_pong_timeout`).
#[tokio::test]
async fn our_keepalive_pings_reach_the_peer() {
    let (srv, _rx) = Transport::new(TransportConfig {
        keepalive_interval: Some(Duration::from_millis(50)),
        ..TransportConfig::default()
    });
    let addr = srv
        .bind_tcp("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let mut good = TcpStream::connect(addr).await.expect("connect");
    let me = good.local_addr().expect("addr");
    good.write_all(options("TCP", me, addr, "ka").as_bytes())
        .await
        .expect("send");
    for _ in 0..2 {
        let mut buf = [0u8; 4];
        tokio::time::timeout(WAIT, good.read_exact(&mut buf))
            .await
            .expect("ping in time")
            .expect("read");
        assert_eq!(&buf, b"\r\n\r\n");
        good.write_all(b"\r\n").await.expect("pong");
    }
    assert_eq!(srv.stats().stream_flows, 1);
}

#[tokio::test]
async fn closed_by_peer_is_not_reused_and_local_close_sends_close_notify() {
    let pki = Localhost::generate();
    // TCP: the peer half-closes; our next request opens a new connection (RFC 5923 §8.3:
    // no new transaction on a flow whose peer is closing).
    let (client, _rx) = Transport::new(TransportConfig::default());
    let l = TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let addr = l.local_addr().expect("addr");
    let target = Target::new(TransportKind::Tcp, addr);
    let f1 = client.connect(&target).await.expect("connect");
    let (mut s1, _) = l.accept().await.expect("accept");
    s1.shutdown().await.expect("FIN");
    eventually(WAIT, "flow out of the reuse index", || {
        client.stats().reuse_entries == 0
    })
    .await;
    let f2 = client.connect(&target).await.expect("connect");
    assert_ne!(f1, f2);
    let _s2 = l.accept().await.expect("second connection");

    // TLS: a local graceful close sends close_notify (a clean end of stream).
    let (srv, mut srx) = Transport::new(TransportConfig::default());
    let taddr = srv
        .bind_tls("127.0.0.1:0".parse().expect("addr"), pki.server_config())
        .await
        .expect("bind");
    let tcp = TcpStream::connect(taddr).await.expect("connect");
    let me = tcp.local_addr().expect("addr");
    let mut tls = tokio_rustls::TlsConnector::from(pki.client_config(false))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("handshake");
    tls.write_all(options("TLS", me, taddr, "cn").as_bytes())
        .await
        .expect("send");
    let inc = next(&mut srx).await;
    srv.close(inc.flow, Duration::ZERO);
    let mut rest = Vec::new();
    let r = tokio::time::timeout(WAIT, tls.read_to_end(&mut rest))
        .await
        .expect("closed in time");
    assert!(r.is_ok(), "close_notify expected, got {r:?}");
    // Our side answers with its own close; the server flow then ends.
    tls.shutdown().await.expect("close_notify back");
    eventually(WAIT, "server flow gone", || {
        srv.flow_info(inc.flow).is_none()
    })
    .await;
}

/// RFC 3261 §18.1.1 through the outbound API: `ReuseEndpoint` decides UDP or TCP before it
/// writes its Via, so the request leaves with a TCP Via written once (no rewrite), and the
/// upstream Via below it is untouched.
#[tokio::test]
async fn endpoint_sends_a_large_request_for_a_udp_target_over_tcp_with_a_tcp_via() {
    let (client, _rx, me) = udp_client().await;
    let (tcp, _udp, peer) = raw_peer().await;
    let domain = sipwire::LocalDomain::new("example.com", "127.0.0.1")
        .with_port(TransportKind::Udp, me.port())
        .with_port(TransportKind::Tcp, me.port());
    let ep = sipwire::ReuseEndpoint::new(
        client,
        None,
        sipwire::ReuseConfig {
            domains: vec![domain],
            ..Default::default()
        },
    );
    let upstream: SocketAddr = "192.0.2.7:5060".parse().expect("addr");
    let big = parse(request("MESSAGE", "UDP", upstream, peer, "up", 1400).as_bytes());
    let sent = ep
        .send_to_target(
            "example.com",
            "127.0.0.1",
            &Target::new(TransportKind::Udp, peer),
            &big,
            "z9hG4bKep1",
        )
        .await
        .expect("sent");
    assert_eq!(sent.flow.kind(), TransportKind::Tcp);
    let (mut s, _) = tokio::time::timeout(WAIT, tcp.accept())
        .await
        .expect("accept in time")
        .expect("accept");
    let m = read_message(&mut s, &mut framer()).await;
    let vias: Vec<String> = m
        .vias()
        .map(|v| v.expect("via").transport_raw.to_owned())
        .collect();
    assert_eq!(vias, ["TCP", "UDP"]);
    let top = m.top_via().expect("via");
    assert_eq!(top.branch, Some("z9hG4bKep1"));
    assert_eq!(top.port, Some(me.port()));
    assert_eq!(m.body().len(), 1400);
}
