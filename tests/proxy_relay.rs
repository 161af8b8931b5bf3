//! The proxy core under its tokio driver on loopback: a UAC on UDP, the proxy (UDP access
//! listener, TCP core listener), a UAS on TCP. OPTIONS and an INVITE dialog (INVITE / 180
//! / 200 / ACK / BYE / 200) are relayed, with the transport change and the double
//! Record-Route of RFC 5658.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use sipwire::proxy::driver::{run, ListenerMap};
use sipwire::proxy::{Listener, Proxy, ProxyConfig, RouteMatch, RouteRule, RouteTarget};
use sipwire::resolve::{DnsConfig, DnsResolver};
use sipwire::transaction::TimerConfig;
use sipwire::transport::{Incoming, Target, Transport, TransportKind};
use sipwire::wire::Message;
use support::dns::{start_dns, Zone};
use support::transport::{any, next, transport};
use tokio::sync::mpsc;

struct Net {
    uac: Transport,
    uac_rx: mpsc::Receiver<Incoming>,
    uac_addr: SocketAddr,
    uas: Transport,
    uas_rx: mpsc::Receiver<Incoming>,
    p_udp: SocketAddr,
    p_tcp: SocketAddr,
}

async fn setup() -> Net {
    setup_with(None).await
}

/// [`setup`] with a DNS resolver for the proxy.
async fn setup_with(dns: Option<DnsResolver>) -> Net {
    let (pt, prx) = transport();
    let p_udp = pt.bind_udp(any()).await.expect("proxy udp");
    let p_tcp = pt.bind_tcp(any()).await.expect("proxy tcp");
    let (uas, uas_rx) = transport();
    let uas_addr = uas.bind_tcp(any()).await.expect("uas tcp");
    let (uac, uac_rx) = transport();
    let uac_addr = uac.bind_udp(any()).await.expect("uac udp");

    let mut cfg = ProxyConfig::new(vec![
        Listener::new("udp-a", TransportKind::Udp, "127.0.0.1", Some(p_udp.port()))
            .on_network("access"),
        Listener::new("tcp-c", TransportKind::Tcp, "127.0.0.1", Some(p_tcp.port()))
            .on_network("core"),
    ]);
    cfg.routes.push(RouteRule {
        matches: RouteMatch {
            domain: Some("example.net".into()),
            ..RouteMatch::default()
        },
        targets: vec![RouteTarget::new(
            TransportKind::Tcp,
            "127.0.0.1",
            Some(uas_addr.port()),
        )],
        best_effort_tls: None,
    });
    let timers = TimerConfig {
        trying_delay: Some(Duration::ZERO),
        ..TimerConfig::default()
    };
    let proxy = Proxy::new(cfg, timers, 7).expect("proxy");
    let map = ListenerMap::new().with(p_udp, "udp-a").with(p_tcp, "tcp-c");
    tokio::spawn(run(proxy, pt, prx, map, dns));
    Net {
        uac,
        uac_rx,
        uac_addr,
        uas,
        uas_rx,
        p_udp,
        p_tcp,
    }
}

fn text(m: &Message) -> String {
    String::from_utf8_lossy(m.as_bytes()).into_owned()
}

/// The UAS's response to `req`: all Vias, From, To with a tag, Call-ID, CSeq, `extra`.
fn reply(req: &Message, code: u16, extra: &str) -> Bytes {
    let mut r = format!("SIP/2.0 {code} X\r\n");
    for v in req.header_lines("Via") {
        r.push_str(&format!("Via: {}\r\n", String::from_utf8_lossy(v)));
    }
    let h = |n: &str| String::from_utf8_lossy(req.header(n).unwrap()).into_owned();
    r.push_str(&format!("From: {}\r\n", h("From")));
    match req.to_tag() {
        Some(_) => r.push_str(&format!("To: {}\r\n", h("To"))),
        None => r.push_str(&format!("To: {};tag=uas1\r\n", h("To"))),
    }
    let cseq = req.cseq();
    r.push_str(&format!(
        "Call-ID: {}\r\nCSeq: {} {}\r\n{extra}Content-Length: 0\r\n\r\n",
        req.call_id(),
        cseq.seq,
        cseq.method
    ));
    Bytes::from(r)
}

fn rr_echo(req: &Message) -> String {
    req.header_lines("Record-Route")
        .map(|v| format!("Record-Route: {}\r\n", String::from_utf8_lossy(v)))
        .collect()
}

/// Next message, skipping 100 Trying.
async fn next_final_or_provisional(rx: &mut mpsc::Receiver<Incoming>) -> Incoming {
    loop {
        let inc = next(rx).await;
        if inc.message.status_code() != Some(100) {
            return inc;
        }
    }
}

fn request(method: &str, ruri: &str, uac: SocketAddr, branch: &str, extra: &str) -> Bytes {
    Bytes::from(format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {uac};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n{extra}From: <sip:alice@example.org>;tag=a1\r\n\
         To: <sip:bob@example.net>{}\r\nCall-ID: relay-{method}@test\r\nCSeq: 1 {method}\r\n\
         Contact: <sip:alice@{uac}>\r\nContent-Length: 0\r\n\r\n",
        if method == "ACK" { ";tag=uas1" } else { "" }
    ))
}

#[tokio::test]
async fn relays_options_udp_in_tcp_out() {
    let mut n = setup().await;
    let to_proxy = Target::new(TransportKind::Udp, n.p_udp);
    let req = request(
        "OPTIONS",
        "sip:bob@example.net",
        n.uac_addr,
        "z9hG4bKo1",
        "",
    );
    n.uac.send_to(&to_proxy, req).await.expect("send");
    let got = next(&mut n.uas_rx).await;
    assert_eq!(got.transport(), TransportKind::Tcp);
    let top = got.message.top_via().unwrap();
    assert_eq!(top.port, Some(n.p_tcp.port()));
    assert_eq!(got.message.via_count(), 2);
    n.uas
        .send(got.flow, reply(&got.message, 200, ""))
        .expect("reply");
    let back = next(&mut n.uac_rx).await;
    assert_eq!(back.message.status_code(), Some(200));
    assert_eq!(back.message.via_count(), 1);
    assert_eq!(back.message.top_via().unwrap().branch, Some("z9hG4bKo1"));
}

#[tokio::test]
async fn relays_an_invite_dialog_udp_in_tcp_out() {
    let mut n = setup().await;
    let to_proxy = Target::new(TransportKind::Udp, n.p_udp);
    let rr_core = format!("sip:127.0.0.1:{};transport=tcp;lr", n.p_tcp.port());
    let rr_access = format!("sip:127.0.0.1:{};lr", n.p_udp.port());

    let invite = request("INVITE", "sip:bob@example.net", n.uac_addr, "z9hG4bKi1", "");
    n.uac.send_to(&to_proxy, invite).await.expect("invite");
    let inv = next(&mut n.uas_rx).await;
    assert_eq!(inv.message.method(), Some("INVITE"));
    let rr: Vec<String> = inv
        .message
        .record_routes()
        .map(|r| r.unwrap().uri.to_owned())
        .collect();
    assert_eq!(
        rr,
        vec![rr_core.clone(), rr_access.clone()],
        "{}",
        text(&inv.message)
    );
    let uas_contact = format!(
        "Contact: <sip:bob@{};transport=tcp>\r\n",
        n.uas.listeners()[0].1
    );
    let extra = format!("{}{uas_contact}", rr_echo(&inv.message));
    n.uas
        .send(inv.flow, reply(&inv.message, 180, &extra))
        .expect("180");
    let r = next_final_or_provisional(&mut n.uac_rx).await;
    assert_eq!(r.message.status_code(), Some(180));
    n.uas
        .send(inv.flow, reply(&inv.message, 200, &extra))
        .expect("200");
    let ok = next_final_or_provisional(&mut n.uac_rx).await;
    assert_eq!(ok.message.status_code(), Some(200));
    assert_eq!(ok.message.via_count(), 1);

    // ACK through the route set (RR reversed) to the UAS's listening address.
    let routes = format!("Route: <{rr_access}>, <{rr_core}>\r\n");
    let uas_listen = n.uas.listeners()[0].1;
    let ruri = format!("sip:bob@{uas_listen};transport=tcp");
    let ack = request("ACK", &ruri, n.uac_addr, "z9hG4bKa1", &routes);
    n.uac.send_to(&to_proxy, ack).await.expect("ack");
    let a = next(&mut n.uas_rx).await;
    assert_eq!(a.message.method(), Some("ACK"));
    assert_eq!(a.message.routes().count(), 0);

    // BYE from the UAS over TCP through the route set (RR in order).
    let bye = format!(
        "BYE sip:alice@{} SIP/2.0\r\nVia: SIP/2.0/TCP {uas_listen};branch=z9hG4bKb1;rport\r\n\
         Max-Forwards: 70\r\nRoute: <{rr_core}>, <{rr_access}>\r\n\
         From: <sip:bob@example.net>;tag=uas1\r\nTo: <sip:alice@example.org>;tag=a1\r\n\
         Call-ID: relay-INVITE@test\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        n.uac_addr
    );
    let to_core = Target::new(TransportKind::Tcp, n.p_tcp);
    n.uas
        .send_to(&to_core, Bytes::from(bye))
        .await
        .expect("bye");
    let b = next(&mut n.uac_rx).await;
    assert_eq!(b.message.method(), Some("BYE"));
    assert_eq!(b.transport(), TransportKind::Udp);
    assert_eq!(b.message.via_count(), 2);
    n.uac
        .send(b.flow, reply(&b.message, 200, ""))
        .expect("200 bye");
    let done = next(&mut n.uas_rx).await;
    assert_eq!(done.message.status_code(), Some(200));
    assert_eq!(done.message.cseq().method, "BYE");
    assert_eq!(done.message.via_count(), 1);
}

/// RFC 3261 §18.2.2: the UAC's connection closes while its request is downstream; the
/// response goes on a new connection to the Via's `received` address and sent-by port.
#[tokio::test]
async fn a_response_whose_inbound_connection_closed_goes_on_a_new_connection() {
    use tokio::io::AsyncWriteExt;
    let mut n = setup().await;
    let (uac, mut uac_rx) = transport();
    let uac_listen = uac.bind_tcp(any()).await.expect("uac tcp");
    let mut stream = tokio::net::TcpStream::connect(n.p_tcp)
        .await
        .expect("connect");
    let req = format!(
        "OPTIONS sip:bob@example.net SIP/2.0\r\nVia: SIP/2.0/TCP {uac_listen};branch=z9hG4bKc1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@example.org>;tag=a1\r\nTo: <sip:bob@example.net>\r\n\
         Call-ID: closed@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.expect("write");
    let got = next(&mut n.uas_rx).await;
    assert_eq!(got.message.method(), Some("OPTIONS"));
    drop(stream);
    // Let the proxy see the close before the answer comes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    n.uas
        .send(got.flow, reply(&got.message, 200, ""))
        .expect("reply");
    let back = next(&mut uac_rx).await;
    assert_eq!(back.message.status_code(), Some(200));
    assert_eq!(back.transport(), TransportKind::Tcp);
    assert_eq!(
        back.local, uac_listen,
        "a new connection to the sent-by port"
    );
}

/// RFC 3261 §18.2.2 then RFC 3263 §5: the UAC's connection closes while its request is
/// downstream and a new connection to `received` at the sent-by port is refused, so the
/// proxy locates the sent-by, a host name without port, by SRV `_sip._tcp`, and tries its
/// targets in order: the first is refused too, the second gets the response.
#[tokio::test]
async fn a_response_whose_connection_and_received_address_fail_goes_to_the_sent_by_srv() {
    use tokio::io::AsyncWriteExt;
    // The UAC connects from 127.0.0.2: the proxy stamps received=127.0.0.2 (the sent-by is
    // a name), and nothing listens at 127.0.0.2:5060.
    let received: SocketAddr = "127.0.0.2:5060".parse().unwrap();
    assert!(
        tokio::net::TcpStream::connect(received).await.is_err(),
        "precondition: nothing may listen on {received}"
    );
    let (uac, mut uac_rx) = transport();
    let uac_listen = uac.bind_tcp(any()).await.expect("uac tcp");
    let refused = std::net::TcpListener::bind(any())
        .and_then(|l| l.local_addr())
        .expect("a port nothing listens on once closed");
    let zone = Zone::new("uac.test.")
        .srv(
            "_sip._tcp.uac.test.",
            10,
            0,
            refused.port(),
            "down.uac.test.",
        )
        .srv(
            "_sip._tcp.uac.test.",
            20,
            0,
            uac_listen.port(),
            "up.uac.test.",
        )
        .a("down.uac.test.", "127.0.0.1")
        .a("up.uac.test.", "127.0.0.1");
    let dns = start_dns(vec![zone]).await;
    let resolver = DnsResolver::new(DnsConfig::new(dns.addr)).expect("resolver");
    let mut n = setup_with(Some(resolver)).await;

    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.2:0".parse().unwrap())
        .expect("bind 127.0.0.2");
    let mut stream = socket.connect(n.p_tcp).await.expect("connect");
    let req =
        "OPTIONS sip:bob@example.net SIP/2.0\r\nVia: SIP/2.0/TCP uac.test;branch=z9hG4bKsrv1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@example.org>;tag=a1\r\nTo: <sip:bob@example.net>\r\n\
         Call-ID: srv@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    stream.write_all(req.as_bytes()).await.expect("write");
    let got = next(&mut n.uas_rx).await;
    assert_eq!(got.message.method(), Some("OPTIONS"));
    let stamped = text(&got.message);
    assert!(
        stamped.contains("SIP/2.0/TCP uac.test;branch=z9hG4bKsrv1;received=127.0.0.2"),
        "{stamped}"
    );
    drop(stream);
    // Let the proxy see the close before the answer comes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    n.uas
        .send(got.flow, reply(&got.message, 200, ""))
        .expect("reply");
    let back = next(&mut uac_rx).await;
    assert_eq!(back.message.status_code(), Some(200));
    assert_eq!(back.transport(), TransportKind::Tcp);
    assert_eq!(back.local, uac_listen, "the second SRV target");
}

/// A burst for one target that is still connecting leaves in the order it came in.
#[tokio::test]
async fn sends_to_one_target_stay_in_order() {
    let mut n = setup().await;
    let to_proxy = Target::new(TransportKind::Udp, n.p_udp);
    for i in 0..20 {
        let req = request(
            "OPTIONS",
            "sip:bob@example.net",
            n.uac_addr,
            &format!("z9hG4bKburst{i}"),
            "",
        );
        let req = String::from_utf8(req.to_vec())
            .unwrap()
            .replace("CSeq: 1 ", &format!("CSeq: {} ", i + 1))
            .replace("relay-OPTIONS@test", &format!("burst{i}@test"));
        n.uac
            .send_to(&to_proxy, Bytes::from(req))
            .await
            .expect("send");
    }
    for i in 0..20 {
        let got = next(&mut n.uas_rx).await;
        assert_eq!(got.message.cseq().seq, i + 1, "order kept");
    }
}

/// §16.11 stateless forwarding over TLS both ways: the response goes back by the Vias alone,
/// on the TLS connection the request came on, found by its address (`received`:`rport`),
/// although the UAC's Via names a host (a new connection to its ephemeral port would fail,
/// and an inbound TLS connection is never reused for requests).
#[tokio::test]
async fn a_stateless_tls_relay_answers_on_the_callers_connection() {
    use support::pki::{Ca, Spec};
    use support::tls::{tls_client, tls_server};
    let ca = Ca::new("stateless-ca");
    let uas_leaf = ca.leaf(&Spec::dns(&["uas.test"]).with_ips(&["127.0.0.1"]));
    let proxy_leaf = ca.leaf(&Spec::dns(&["proxy.test"]).with_ips(&["127.0.0.1"]));
    let (uas, mut uas_rx, uas_addr) = tls_server(&ca, &uas_leaf).await;
    let (pt, prx, p_tls) = tls_server(&ca, &proxy_leaf).await;
    pt.set_tls_client(support::pki::client_config(
        ca.roots(),
        None,
        rustls::DEFAULT_VERSIONS,
    ));
    let mut cfg = ProxyConfig::new(vec![Listener::new(
        "tls",
        TransportKind::Tls,
        "127.0.0.1",
        Some(p_tls.port()),
    )]);
    cfg.routes.push(RouteRule {
        matches: RouteMatch {
            domain: Some("example.net".into()),
            ..RouteMatch::default()
        },
        targets: vec![
            RouteTarget::new(TransportKind::Tls, "127.0.0.1", Some(uas_addr.port())).stateless(),
        ],
        best_effort_tls: None,
    });
    let proxy = Proxy::new(cfg, TimerConfig::default(), 7).expect("proxy");
    tokio::spawn(run(
        proxy,
        pt,
        prx,
        ListenerMap::new().with(p_tls, "tls"),
        None,
    ));

    let (uac, mut uac_rx) = tls_client(&ca);
    let flow = uac
        .connect(&Target::new(TransportKind::Tls, p_tls))
        .await
        .expect("TLS to the proxy");
    let req = "OPTIONS sip:bob@example.net SIP/2.0\r\n\
               Via: SIP/2.0/TLS uac.test:5061;branch=z9hG4bKstl1;rport\r\n\
               Max-Forwards: 70\r\nFrom: <sip:alice@example.org>;tag=a1\r\n\
               To: <sip:bob@example.net>\r\nCall-ID: stateless-tls@test\r\nCSeq: 1 OPTIONS\r\n\
               Content-Length: 0\r\n\r\n";
    uac.send(flow, Bytes::from_static(req.as_bytes()))
        .expect("send");
    let at_uas = next(&mut uas_rx).await;
    assert_eq!(at_uas.message.method(), Some("OPTIONS"));
    uas.send(at_uas.flow, reply(&at_uas.message, 200, ""))
        .expect("200");
    let answer = next(&mut uac_rx).await;
    assert_eq!(
        answer.message.status_code(),
        Some(200),
        "{}",
        text(&answer.message)
    );
    assert_eq!(answer.flow, flow, "on the caller's own connection");
}
