//! RFC 3263 §4.3 failover in `sipwire run` against a real DNS server (hickory, on
//! loopback): a route sends to `example.net` over UDP, whose SRV records name three
//! servers. The first is silent, the second answers 503, the third 200. The request
//! completes on the third after Timer F (64·T1) of the first, and the Prometheus metrics
//! count three branches and two failovers.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use sipwire::wire::Message;
use support::dns::{start_dns, Zone};
use support::gateway;
use support::prometheus::{scrape, value};
use support::transport::final_response_udp;
use tokio::net::UdpSocket;

const T1_MS: u64 = 50;

/// A server that answers every request with `code` (0: never answers) and counts them.
/// A UDP target answering `code` (0: silent) until 8 s pass without a request: longer than the
/// silent target's Timer F plus the gateway's start, so that the third target is still there.
fn server(sock: UdpSocket, code: u16) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut n = 0;
        let mut buf = vec![0u8; 65536];
        while let Ok(Ok((len, from))) =
            tokio::time::timeout(Duration::from_secs(8), sock.recv_from(&mut buf)).await
        {
            n += 1;
            if code == 0 {
                continue;
            }
            let req = Message::parse(Bytes::copy_from_slice(&buf[..len])).expect("SIP");
            let mut r = format!("SIP/2.0 {code} X\r\n");
            for v in req.header_lines("Via") {
                r.push_str(&format!("Via: {}\r\n", String::from_utf8_lossy(v)));
            }
            let h = |n: &str| String::from_utf8_lossy(req.header(n).expect(n)).into_owned();
            r.push_str(&format!(
                "From: {}\r\nTo: {};tag=s{code}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
                h("From"),
                h("To"),
                req.call_id(),
                h("CSeq")
            ));
            let _ = sock.send_to(r.as_bytes(), from).await;
        }
        n
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_then_503_then_200_completes_on_the_third_after_timer_f() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let busy = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let good = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let port = |s: &UdpSocket| s.local_addr().expect("addr").port();
    let zone = Zone::new("example.net.")
        .srv(
            "_sip._udp.example.net.",
            10,
            0,
            port(&silent),
            "p1.example.net.",
        )
        .srv(
            "_sip._udp.example.net.",
            20,
            0,
            port(&busy),
            "p2.example.net.",
        )
        .srv(
            "_sip._udp.example.net.",
            30,
            0,
            port(&good),
            "p3.example.net.",
        )
        .a("p1.example.net.", "127.0.0.1")
        .a("p2.example.net.", "127.0.0.1")
        .a("p3.example.net.", "127.0.0.1");
    let dns = start_dns(vec![zone]).await;
    let (silent, busy, good) = (server(silent, 0), server(busy, 503), server(good, 200));

    let prom = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr")
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "[[listener]]\nname = 'udp'\ntransport = 'udp'\naddr = '127.0.0.1:0'\n\
         [[listener]]\nname = 'tcp'\ntransport = 'tcp'\naddr = '127.0.0.1:0'\n\
         [proxy]\nt1_ms = {T1_MS}\nt2_ms = 400\nname_server = '{}'\n\
         [[route]]\ndomain = 'example.net'\n\
         [[route.target]]\ntransport = 'udp'\nhost = 'example.net'\n\
         [metrics]\nprometheus = '{prom}'\n[state]\ndir = '{}'\n",
        dns.addr,
        dir.path().join("state").display()
    );
    let gw = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || gateway::start(&dir, &config)
    })
    .await
    .expect("start");
    let relay = gw.listener("udp");

    let uac = UdpSocket::bind("127.0.0.1:0").await.expect("uac");
    let me = uac.local_addr().expect("addr");
    let req = format!(
        "OPTIONS sip:bob@example.net SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKfo1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@{me}>;tag=a\r\nTo: <sip:bob@example.net>\r\n\
         Call-ID: failover@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    let start = Instant::now();
    uac.send_to(req.as_bytes(), relay).await.expect("send");
    let resp = final_response_udp(&uac, Duration::from_secs(10)).await;
    let took = start.elapsed();
    assert_eq!(resp.status_code(), Some(200), "completed on the third");
    assert_eq!(
        resp.header("To")
            .map(|t| String::from_utf8_lossy(t).into_owned()),
        Some("<sip:bob@example.net>;tag=s200".to_owned())
    );
    // Timer F of the silent first target (64·T1), then the 503 and the 200 at once.
    let timer_f = Duration::from_millis(64 * T1_MS);
    assert!(
        took >= timer_f && took < timer_f + Duration::from_millis(1500),
        "took {took:?}, Timer F is {timer_f:?}"
    );

    let text = scrape(prom).await;
    assert_eq!(
        value(&text, "sipwire_proxy_branches_total"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "sipwire_proxy_failovers_total"),
        Some(2.0),
        "{text}"
    );
    drop(gw);
    let (s, b, g) = (
        silent.await.expect("silent"),
        busy.await.expect("busy"),
        good.await.expect("good"),
    );
    assert!(
        s > 1,
        "the silent target got retransmissions (Timer E): {s}"
    );
    assert_eq!((b, g), (1, 1), "one request each for the 503 and the 200");
}
