//! `[proxy] workers = 2`: two proxy cores behind one transport, messages split by Call-ID.
//! Calls through `sipwire run` complete over UDP→UDP and TLS→TLS — INVITE / 200 / ACK / BYE
//! through the Record-Route set, and an INVITE cancelled (CANCEL, 487, ACK) — with calls
//! chosen so that each transport puts work on both shards; the per-shard counters show that
//! both cores got messages, and the in-flight gauge (the sum of both cores') is back at 0.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;

use bytes::Bytes;
use sipwire::transport::{shard_of, Incoming, Transport, TransportKind};
use sipwire::wire::Message;
use sipwire::Target;
use support::gateway;
use support::pki::{Ca, Spec};
use support::poll::WAIT;
use support::prometheus::{scrape, value};
use support::tls::{tls_client, tls_server};
use support::transport::{any, next, transport};
use tokio::sync::mpsc;

const SHARDS: usize = 2;

/// One side of the test (UAC or UAS): a transport and what it receives.
struct Ua {
    t: Transport,
    rx: mpsc::Receiver<Incoming>,
}

impl Ua {
    /// The next message that is not a 100 Trying.
    async fn next(&mut self) -> Incoming {
        loop {
            let inc = next(&mut self.rx).await;
            if inc.message.status_code() != Some(100) {
                return inc;
            }
        }
    }
}

/// How the UAC reaches the gateway and the UAS is named, per transport.
struct Leg {
    /// `UDP` or `TLS` (Via token).
    via: &'static str,
    /// `;transport=tls` or nothing.
    param: &'static str,
    to_gateway: Target,
    /// The UAS's user part (its route) and address.
    user: &'static str,
    uas: SocketAddr,
}

/// A request of the UAC; `to_tag`: in the dialog (or the ACK of a failure), To has the UAS's
/// tag. BYE is CSeq 2, every other 1 (CANCEL and ACK repeat the INVITE's).
/// The branch and the From tag are made of the Call-ID with its `@` (not a token character,
/// RFC 3261 §25.1) turned into a `.`.
fn request(leg: &Leg, method: &str, ruri: &str, call: &str, branch: &str, to_tag: bool) -> String {
    let cseq = if method == "BYE" { 2 } else { 1 };
    let branch = branch.replace('@', ".");
    let tag = call.replace('@', ".");
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/{} 127.0.0.1:5999;branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@example.org>;tag=a{tag}\r\n\
         To: <sip:{}@example.net>{}\r\nCall-ID: {call}\r\nCSeq: {cseq} {method}\r\n\
         Contact: <sip:alice@127.0.0.1:5999{}>\r\nContent-Length: 0\r\n\r\n",
        leg.via,
        leg.user,
        if to_tag { ";tag=uas" } else { "" },
        leg.param
    )
}

/// `req` with `route` (a `Route: ...\r\n` line) after its Max-Forwards.
fn with_route(req: String, route: &str) -> Bytes {
    Bytes::from(req.replacen(
        "Max-Forwards: 70\r\n",
        &format!("Max-Forwards: 70\r\n{route}"),
        1,
    ))
}

/// The UAS's response to `req`: its Vias, From, To with a tag, Call-ID, CSeq, `extra`.
fn reply(req: &Message, code: u16, extra: &str) -> Bytes {
    let mut r = format!("SIP/2.0 {code} X\r\n");
    for v in req.header_lines("Via") {
        r.push_str(&format!("Via: {}\r\n", String::from_utf8_lossy(v)));
    }
    let h = |n: &str| String::from_utf8_lossy(req.header(n).expect(n)).into_owned();
    let to = match req.to_tag() {
        Some(_) => h("To"),
        None => format!("{};tag=uas", h("To")),
    };
    let cseq = req.cseq();
    r.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {} {}\r\n{extra}Content-Length: 0\r\n\r\n",
        h("From"),
        req.call_id(),
        cseq.seq,
        cseq.method
    ));
    Bytes::from(r)
}

/// Sends the UAC's request `req` (a `method`) to the gateway and returns what the UAS receives
/// next, which must be that method.
async fn relayed(
    leg: &Leg,
    uac: &Ua,
    uas: &mut Ua,
    req: Bytes,
    method: &str,
    call: &str,
) -> Incoming {
    uac.t
        .send_to(&leg.to_gateway, req)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"));
    let got = uas.next().await;
    assert_eq!(got.message.method(), Some(method), "{call}");
    got
}

/// INVITE → 200 (Record-Route echoed, Contact) → ACK and BYE through the route set → 200.
async fn call(leg: &Leg, uac: &mut Ua, uas: &mut Ua, call: &str) {
    let ruri = format!("sip:{}@example.net", leg.user);
    let invite = request(leg, "INVITE", &ruri, call, &format!("i{call}"), false);
    let inv = relayed(leg, uac, uas, Bytes::from(invite), "INVITE", call).await;
    let rr: Vec<String> = inv
        .message
        .header_lines("Record-Route")
        .map(|v| format!("Record-Route: {}\r\n", String::from_utf8_lossy(v)))
        .collect();
    assert!(!rr.is_empty(), "the relay record-routes");
    let contact = format!("sip:{}@{}{}", leg.user, leg.uas, leg.param);
    let extra = format!("{}Contact: <{contact}>\r\n", rr.concat());
    uas.t
        .send(inv.flow, reply(&inv.message, 200, &extra))
        .expect("200");
    let ok = uac.next().await;
    assert_eq!(ok.message.status_code(), Some(200), "{call}");
    assert_eq!(ok.message.call_id(), call);

    // The route set of the UAC: the 200's Record-Route reversed (RFC 3261 §12.1.2).
    let mut routes: Vec<String> = ok
        .message
        .record_routes()
        .map(|r| format!("<{}>", r.expect("Record-Route").uri))
        .collect();
    routes.reverse();
    let route = format!("Route: {}\r\n", routes.join(", "));
    let ack = with_route(
        request(leg, "ACK", &contact, call, &format!("a{call}"), true),
        &route,
    );
    relayed(leg, uac, uas, ack, "ACK", call).await;

    let bye = with_route(
        request(leg, "BYE", &contact, call, &format!("b{call}"), true),
        &route,
    );
    let b = relayed(leg, uac, uas, bye, "BYE", call).await;
    uas.t
        .send(b.flow, reply(&b.message, 200, ""))
        .expect("200 BYE");
    let done = uac.next().await;
    assert_eq!(done.message.status_code(), Some(200));
    assert_eq!(done.message.cseq().method, "BYE");
}

/// INVITE → (UAS silent) → CANCEL: 200 to the CANCEL, the CANCEL forwarded, the UAS's 487
/// reaches the UAC, whose ACK the relay takes (its own ACK goes to the UAS).
async fn cancelled(leg: &Leg, uac: &mut Ua, uas: &mut Ua, call: &str) {
    let ruri = format!("sip:{}@example.net", leg.user);
    let branch = format!("c{call}");
    let invite = request(leg, "INVITE", &ruri, call, &branch, false);
    let inv = relayed(leg, uac, uas, Bytes::from(invite), "INVITE", call).await;
    uas.t
        .send(inv.flow, reply(&inv.message, 180, ""))
        .expect("180");
    assert_eq!(uac.next().await.message.status_code(), Some(180));

    let cancel = request(leg, "CANCEL", &ruri, call, &branch, false);
    let c = relayed(leg, uac, uas, Bytes::from(cancel), "CANCEL", call).await;
    uas.t
        .send(c.flow, reply(&c.message, 200, ""))
        .expect("200 CANCEL");
    uas.t
        .send(inv.flow, reply(&inv.message, 487, ""))
        .expect("487");
    let mut got = Vec::new();
    while got.len() < 2 {
        let m = uac.next().await.message;
        got.push((m.status_code(), m.cseq().method.to_owned()));
    }
    got.sort();
    assert_eq!(
        got,
        [
            (Some(200), "CANCEL".to_owned()),
            (Some(487), "INVITE".to_owned())
        ],
        "{call}"
    );
    let ack = request(leg, "ACK", &ruri, call, &branch, true);
    // The relay's own ACK for the 487.
    relayed(leg, uac, uas, Bytes::from(ack), "ACK", call).await;
}

/// The first Call-ID `<prefix>-<n>@test` of each shard: calls that cover every shard.
fn one_call_per_shard(prefix: &str) -> Vec<String> {
    (0..SHARDS)
        .map(|s| {
            (0..)
                .map(|n| format!("{prefix}-{n}@test"))
                .find(|id| shard_of(id.as_bytes(), SHARDS) == s)
                .expect("a Call-ID for every shard")
        })
        .collect()
}

/// On every shard, a completed call and a cancelled one over `leg` (Call-IDs `<prefix>-call-…`
/// and `<prefix>-cancel-…`).
async fn calls_on_every_shard(leg: &Leg, uac: &mut Ua, uas: &mut Ua, prefix: &str) {
    for id in one_call_per_shard(&format!("{prefix}-call")) {
        call(leg, uac, uas, &id).await;
    }
    for id in one_call_per_shard(&format!("{prefix}-cancel")) {
        cancelled(leg, uac, uas, &id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_relay_calls_over_udp_and_tls_on_both_shards() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("workers test CA");
    let leaf = ca.leaf(&Spec::dns(&["localhost"]).with_ips(&["127.0.0.1"]));
    let (cert, key) = leaf.write_pem(dir.path(), "gw");
    let ca_pem = ca.write_pem(dir.path());

    // The UASs first: the routes name their addresses.
    let (t, rx) = transport();
    let udp_uas_addr = t.bind_udp(any()).await.expect("UAS UDP");
    let mut udp_uas = Ua { t, rx };
    let (t, rx, tls_uas_addr) = tls_server(&ca, &leaf).await;
    let mut tls_uas = Ua { t, rx };

    let prom = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr")
    };
    let config = format!(
        "[[listener]]\nname = 'udp'\ntransport = 'udp'\naddr = '127.0.0.1:0'\n\
         [[listener]]\nname = 'tcp'\ntransport = 'tcp'\naddr = '127.0.0.1:0'\n\
         [[listener]]\nname = 'tls'\ntransport = 'tls'\naddr = '127.0.0.1:0'\n\
         cert = '{}'\nkey = '{}'\n\
         [tls]\nca_files = ['{}']\n\
         [proxy]\nworkers = {SHARDS}\n\
         [[route]]\nuser = 'udpuas'\n[[route.target]]\ntransport = 'udp'\naddress = '{udp_uas_addr}'\n\
         [[route]]\nuser = 'tlsuas'\n[[route.target]]\ntransport = 'tls'\naddress = '{tls_uas_addr}'\n\
         [metrics]\nprometheus = '{prom}'\n[state]\ndir = '{}'\n",
        cert.display(),
        key.display(),
        ca_pem.display(),
        dir.path().join("state").display()
    );
    let gw = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || gateway::start(&dir, &config)
    })
    .await
    .expect("start");
    assert!(
        gw.printed("sipwire: relaying (stateful, 2 proxy cores")
            .is_some(),
        "{:?}",
        gw.startup
    );

    // UDP → UDP.
    let (t, rx) = transport();
    t.bind_udp(any()).await.expect("UAC UDP");
    let mut uac = Ua { t, rx };
    let leg = Leg {
        via: "UDP",
        param: "",
        to_gateway: Target::new(TransportKind::Udp, gw.listener("udp")),
        user: "udpuas",
        uas: udp_uas_addr,
    };
    calls_on_every_shard(&leg, &mut uac, &mut udp_uas, "udp").await;

    // TLS → TLS.
    let (t, rx) = tls_client(&ca);
    let mut uac = Ua { t, rx };
    let leg = Leg {
        via: "TLS",
        param: ";transport=tls",
        to_gateway: Target::new(TransportKind::Tls, gw.listener("tls"))
            .with_server_name("localhost"),
        user: "tlsuas",
        uas: tls_uas_addr,
    };
    calls_on_every_shard(&leg, &mut uac, &mut tls_uas, "tls").await;

    // Each shard got its calls: per call at least INVITE, 200, ACK, BYE and its 200.
    let text = scrape(prom).await;
    for s in 0..SHARDS {
        let n = value(
            &text,
            &format!("sipwire_proxy_shard_messages_total{{shard=\"{s}\"}}"),
        );
        assert!(n.is_some_and(|n| n >= 10.0), "shard {s}: {n:?}\n{text}");
    }
    // The in-flight gauge is the sum of the cores' counts: back at 0 (never below).
    let mut last = String::new();
    let mut settled = false;
    let end = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < end {
        last = scrape(prom).await;
        if value(&last, "sipwire_proxy_in_flight") == Some(0.0) {
            settled = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(settled, "{last}");
}
