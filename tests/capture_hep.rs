//! HEP v3 capture seen from a collector: a transport with `capture` set mirrors every message
//! it receives and sends over UDP, TCP and TLS (plaintext) to a plain UDP socket, which
//! decodes each packet; a TCP collector that is down loses captures (counted) until it comes
//! back; the byte and message bounds of the queue drop what would exceed them.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use sipwire::capture::hep::{self, Decoded, IpProtocol};
use sipwire::capture::{Capture, CaptureConfig, CollectorTransport};
use sipwire::tls::{AlpnPolicy, ClientCertPolicy, ServerCerts};
use sipwire::transport::{Target, Transport, TransportConfig, TransportKind};
use support::pki::{Ca, Spec};
use support::poll::{eventually, WAIT};
use support::sip::options;
use support::transport::{any, next};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UdpSocket};

async fn udp_collector() -> (UdpSocket, SocketAddr) {
    let s = UdpSocket::bind(any()).await.expect("collector");
    let a = s.local_addr().expect("addr");
    (s, a)
}

/// The next HEP packet on a UDP collector, decoded.
async fn next_hep(collector: &UdpSocket) -> Decoded {
    let mut buf = vec![0u8; 70_000];
    let n = tokio::time::timeout(WAIT, collector.recv(&mut buf))
        .await
        .expect("a HEP packet in time")
        .expect("recv");
    let (d, used) = hep::decode(&buf[..n]).expect("a HEP v3 packet");
    assert_eq!(used, n, "one packet per datagram");
    d
}

fn transport_with(capture: Capture) -> (Transport, tokio::sync::mpsc::Receiver<sipwire::Incoming>) {
    Transport::new(TransportConfig {
        identities: Some(sipwire::tls::identity_fn()),
        capture: Some(capture),
        ..TransportConfig::default()
    })
}

/// What a decoded packet must say about one message.
fn check(d: &Decoded, protocol: IpProtocol, from: SocketAddr, to: SocketAddr, start: &str) {
    let text = String::from_utf8_lossy(&d.payload);
    assert!(text.starts_with(start), "{start:?} expected, got {text:?}");
    assert_eq!(d.protocol, Some(protocol), "{text}");
    assert_eq!((d.source, d.destination), (from, to), "{text}");
    assert_eq!(d.protocol_type, hep::PROTOCOL_SIP);
    assert_eq!(d.capture_id, 4242);
    assert_eq!(d.auth_key.as_deref(), Some(&b"s3cret"[..]));
    let msg = sipwire::Message::parse(Bytes::from(d.payload.clone())).expect("payload parses");
    assert_eq!(d.correlation_id.as_deref(), Some(msg.call_id().as_bytes()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    assert!(
        now.saturating_sub(d.time) < Duration::from_secs(60) && d.time <= now,
        "timestamp {:?} is not now ({now:?})",
        d.time
    );
}

#[tokio::test]
async fn requests_and_responses_on_every_transport_reach_a_udp_collector() {
    let (collector, caddr) = udp_collector().await;
    let capture = Capture::start(CaptureConfig {
        capture_id: 4242,
        auth_key: Some("s3cret".to_owned()),
        ..CaptureConfig::new(caddr, CollectorTransport::Udp)
    })
    .expect("capture");
    let (srv, mut srx) = transport_with(capture);
    let ca = Ca::new("capture CA");
    let leaf = ca.leaf(&Spec::dns(&["localhost"]));
    let (sc, _) = support::tls::server(
        &ca,
        ServerCerts::new(leaf.certified()),
        ClientCertPolicy::Optional,
        AlpnPolicy::Offer,
    );
    let tcp = srv.bind_tcp(any()).await.expect("tcp");
    let udp = srv.bind_udp(tcp).await.expect("udp");
    let tls = srv.bind_tls(any(), sc).await.expect("tls");
    // The client mirrors nothing: every packet the collector gets is the server's.
    let (cli, mut crx) = support::tls::tls_client(&ca);
    cli.bind_udp(any()).await.expect("client udp");

    for (kind, addr, protocol) in [
        (TransportKind::Udp, udp, IpProtocol::Udp),
        (TransportKind::Tcp, tcp, IpProtocol::Tcp),
        (TransportKind::Tls, tls, IpProtocol::Tcp),
    ] {
        let target = Target::new(kind, addr).with_server_name("localhost");
        let flow = cli.connect(&target).await.expect("connect");
        let local = cli.flow_info(flow).expect("flow").local;
        let req = options(kind.via_token(), local, addr, &format!("cap{kind}"));
        cli.send(flow, Bytes::from(req)).expect("send request");
        let inc = next(&mut srx).await;
        assert_eq!(inc.source, local);
        let received = next_hep(&collector).await;
        check(&received, protocol, local, addr, "OPTIONS ");
        // What was mirrored is what was delivered (received/rport stamped by the transport).
        assert_eq!(received.payload, inc.message.as_bytes().as_ref());

        let resp = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/{} {};branch=z9hG4bKcap{kind}\r\n\
             From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: cap{kind}@test\r\n\
             CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            kind.via_token(),
            support::sip::hostport(local)
        );
        srv.send(inc.flow, Bytes::from(resp.clone()))
            .expect("send response");
        let sent = next_hep(&collector).await;
        check(&sent, protocol, addr, local, "SIP/2.0 200 OK");
        assert_eq!(sent.payload, resp.as_bytes(), "TLS: the plaintext");
        assert_eq!(next(&mut crx).await.message.status_code(), Some(200));
    }
}

#[tokio::test]
async fn tcp_collector_down_is_counted_and_dialled_again() {
    // A port nothing listens on yet.
    let l = TcpListener::bind(any()).await.expect("bind");
    let caddr = l.local_addr().expect("addr");
    drop(l);
    let capture = Capture::start(CaptureConfig {
        capture_id: 4242,
        auth_key: Some("s3cret".to_owned()),
        ..CaptureConfig::new(caddr, CollectorTransport::Tcp)
    })
    .expect("capture");
    let a: SocketAddr = "192.0.2.1:5060".parse().expect("a");
    let b: SocketAddr = "192.0.2.2:5070".parse().expect("b");
    let msg = |n: u32| {
        Bytes::from(format!(
            "MESSAGE sip:b SIP/2.0\r\nCall-ID: down{n}\r\nContent-Length: 0\r\n\r\n"
        ))
    };
    capture.record(TransportKind::Tcp, a, b, msg(0));
    eventually(WAIT, "a capture counted as lost", || capture.dropped() == 1).await;

    // The collector comes up: one of the next captures gets through, after the backoff.
    let listener = TcpListener::bind(caddr)
        .await
        .expect("rebind the collector port");
    let mut n = 1;
    let (mut conn, _) = loop {
        capture.record(TransportKind::Tcp, a, b, msg(n));
        n += 1;
        if let Ok(c) = tokio::time::timeout(Duration::from_millis(50), listener.accept()).await {
            break c.expect("accept");
        }
        assert!(n < 400, "the collector was never dialled again");
    };
    let mut buf = Vec::new();
    let d = tokio::time::timeout(WAIT, async {
        loop {
            let mut chunk = [0u8; 4096];
            let k = conn.read(&mut chunk).await.expect("read");
            assert!(k > 0, "collector connection closed");
            buf.extend_from_slice(&chunk[..k]);
            if let Ok((d, _)) = hep::decode(&buf) {
                return d;
            }
        }
    })
    .await
    .expect("a HEP packet on the TCP collector");
    assert_eq!(d.protocol, Some(IpProtocol::Tcp));
    assert_eq!((d.source, d.destination), (a, b));
    assert!(d
        .correlation_id
        .as_deref()
        .is_some_and(|c| c.starts_with(b"down")));
    assert!(capture.dropped() >= 1);
}

#[tokio::test]
async fn the_byte_bound_drops_what_would_exceed_it() {
    let (collector, caddr) = udp_collector().await;
    let capture = Capture::start(CaptureConfig {
        capture_id: 4242,
        auth_key: Some("s3cret".to_owned()),
        queue_bytes: 100,
        ..CaptureConfig::new(caddr, CollectorTransport::Udp)
    })
    .expect("capture");
    let a: SocketAddr = "127.0.0.1:1".parse().expect("a");
    let big = Bytes::from(format!(
        "OPTIONS sip:b SIP/2.0\r\nCall-ID: big\r\nX: {}\r\n\r\n",
        "y".repeat(100)
    ));
    capture.record(TransportKind::Udp, a, a, big);
    assert_eq!(capture.dropped(), 1, "over the byte bound: dropped at once");
    let small = Bytes::from_static(b"OPTIONS sip:b SIP/2.0\r\nCall-ID: small\r\n\r\n");
    capture.record(TransportKind::Udp, a, a, small);
    let d = next_hep(&collector).await;
    assert_eq!(d.correlation_id.as_deref(), Some(&b"small"[..]));
    assert_eq!(capture.dropped(), 1);
}

/// The test runtime runs one task at a time: the sink's task drains nothing until the test
/// awaits, so the message bound is reached deterministically.
#[tokio::test]
async fn the_message_bound_drops_what_would_exceed_it() {
    let (collector, caddr) = udp_collector().await;
    let capture = Capture::start(CaptureConfig {
        capture_id: 4242,
        queue_messages: 2,
        ..CaptureConfig::new(caddr, CollectorTransport::Udp)
    })
    .expect("capture");
    let a: SocketAddr = "127.0.0.1:1".parse().expect("a");
    for n in 0..5 {
        let m = format!("OPTIONS sip:b SIP/2.0\r\nCall-ID: n{n}\r\n\r\n");
        capture.record(TransportKind::Udp, a, a, Bytes::from(m));
    }
    assert_eq!(capture.dropped(), 3, "two queued, three over the bound");
    for n in 0..2 {
        let d = next_hep(&collector).await;
        assert_eq!(d.correlation_id, Some(format!("n{n}").into_bytes()));
    }
}

#[tokio::test]
async fn the_udp_drivers_own_error_response_is_mirrored() {
    let (collector, caddr) = udp_collector().await;
    let capture = Capture::start(CaptureConfig {
        capture_id: 4242,
        auth_key: Some("s3cret".to_owned()),
        ..CaptureConfig::new(caddr, CollectorTransport::Udp)
    })
    .expect("capture");
    let (srv, _rx) = transport_with(capture);
    let udp = srv.bind_udp(any()).await.expect("udp");
    let peer = UdpSocket::bind(any()).await.expect("peer");
    let pl = peer.local_addr().expect("local");
    let bad = options("UDP", pl, udp, "bad").replace("CSeq: 1 OPTIONS", "CSeq: x OPTIONS");
    peer.send_to(bad.as_bytes(), udp).await.expect("send");
    // The request is not delivered (it does not parse); the 400 the driver answers is sent.
    let d = next_hep(&collector).await;
    assert!(d.payload.starts_with(b"SIP/2.0 400 "), "{d:?}");
    assert_eq!(d.protocol, Some(IpProtocol::Udp));
    assert_eq!((d.source, d.destination), (udp, pl));
    assert_eq!(d.correlation_id.as_deref(), Some(&b"bad@test"[..]));
}
