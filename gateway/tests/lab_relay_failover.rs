//! RFC 3263 §4.3 failover in `sipwire run`, in the lab VM, against the lab's DNS server
//! (dnsmasq on its own host): an INVITE for `example.net` goes to the targets its SRV records
//! name, three servers (addresses of one host) behind the gateway. The first is silent, the second
//! answers 503, the third 200. The call completes on the third after Timer B (64·T1) of the
//! first; the 503 gets its hop-by-hop ACK, the silent one saw Timer A retransmissions, the ACK
//! for the 200 reaches the third through the Record-Route, and the Prometheus metrics count
//! three branches and two failovers. Needs root and network namespaces (the lab VM).

#[path = "../../tests/support/mod.rs"]
mod support;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sipwire::wire::response::response_to;
use sipwire::wire::Message;
use sipwire_lab::{Host, HostTask, Topology, Zone};
use support::gateway;
use support::prometheus::{scrape, value};
use support::transport::final_response_udp;
use tokio::net::UdpSocket;

const T1_MS: u64 = 100;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// What one target saw: INVITEs and ACKs.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    invites: usize,
    acks: usize,
}

/// A UDP target on `host` at `at` answering INVITE with `code` (0: silent) and counting INVITEs
/// and ACKs until `stop`. A 200 carries a Contact and echoes the Record-Route, as a UAS does
/// (RFC 3261 §12.1.1).
fn target(host: &Host, at: SocketAddr, code: u16, stop: Arc<AtomicBool>) -> HostTask<Seen> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let task = host.run(move || async move {
        let sock = UdpSocket::bind(at).await.expect("bind target");
        let _ = ready_tx.send(());
        let mut seen = Seen::default();
        let mut buf = vec![0u8; 65536];
        // Until the test says stop, looking every 100 ms; at most a minute.
        let end = Instant::now() + Duration::from_secs(60);
        while !stop.load(Ordering::Relaxed) && Instant::now() < end {
            let Ok(Ok((len, from))) =
                tokio::time::timeout(Duration::from_millis(100), sock.recv_from(&mut buf)).await
            else {
                continue;
            };
            let Ok(req) = Message::parse(Bytes::copy_from_slice(&buf[..len])) else {
                continue;
            };
            match req.method() {
                Some("ACK") => seen.acks += 1,
                Some("INVITE") => seen.invites += 1,
                _ => continue,
            }
            if code == 0 || req.method() != Some("INVITE") {
                continue;
            }
            let mut resp = String::from_utf8_lossy(&response_to(&req, code, "X")).into_owned();
            if code == 200 {
                let mut extra = format!("Contact: <sip:bob@{at}>\r\n");
                for rr in req.header_lines("Record-Route") {
                    extra.push_str(&format!(
                        "Record-Route: {}\r\n",
                        String::from_utf8_lossy(rr)
                    ));
                }
                let cut = resp.find("Content-Length").expect("Content-Length");
                resp.insert_str(cut, &extra);
            }
            if let Err(e) = sock.send_to(resp.as_bytes(), from).await {
                eprintln!("target {at}: {code} to {from} not sent: {e}");
            }
        }
        seen
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the target did not start");
    task
}

#[test]
fn lab_srv_failover_silent_then_503_then_200_completes_after_timer_b() {
    let mut lab = Topology::new().expect("lab (run as root)");
    let uac = lab.host("uac").expect("host");
    let gw_host = lab.host("gw").expect("host");
    let dns_host = lab.host("dns").expect("host");
    let core = lab.host("core").expect("host");
    lab.link(&uac, &["192.0.2.2/24"], &gw_host, &["192.0.2.1/24"])
        .expect("access link");
    lab.link(
        &gw_host,
        &["203.0.113.1/24"],
        &dns_host,
        &["203.0.113.53/24"],
    )
    .expect("dns link");
    // The three servers: three addresses of one host on the core side.
    lab.link(
        &gw_host,
        &["198.51.100.1/24"],
        &core,
        &["198.51.100.11/24", "198.51.100.12/24", "198.51.100.13/24"],
    )
    .expect("core link");
    let at = |i: usize| addr(&format!("198.51.100.{}:5070", 11 + i));
    let zone = Zone::new()
        .srv("_sip._udp.example.net", "p1.example.net", 5070, 10, 0)
        .srv("_sip._udp.example.net", "p2.example.net", 5070, 20, 0)
        .srv("_sip._udp.example.net", "p3.example.net", 5070, 30, 0)
        .host("p1.example.net", &[at(0).ip()])
        .host("p2.example.net", &[at(1).ip()])
        .host("p3.example.net", &[at(2).ip()]);
    let dns = lab
        .dns(&dns_host, ip("203.0.113.53"), &zone)
        .expect("dnsmasq");
    let stop = Arc::new(AtomicBool::new(false));
    let targets = [
        target(&core, at(0), 0, Arc::clone(&stop)),
        target(&core, at(1), 503, Arc::clone(&stop)),
        target(&core, at(2), 200, Arc::clone(&stop)),
    ];

    let dir = tempfile::tempdir().expect("tempdir");
    let prom = addr("127.0.0.1:9091");
    let config = format!(
        "[[listener]]\nname = 'udp-a'\ntransport = 'udp'\naddr = '192.0.2.1:5060'\nnetwork = 'access'\n\
         [[listener]]\nname = 'tcp-a'\ntransport = 'tcp'\naddr = '192.0.2.1:5060'\nnetwork = 'access'\n\
         [[listener]]\nname = 'udp-c'\ntransport = 'udp'\naddr = '198.51.100.1:5060'\nnetwork = 'core'\n\
         [[listener]]\nname = 'tcp-c'\ntransport = 'tcp'\naddr = '198.51.100.1:5060'\nnetwork = 'core'\n\
         [proxy]\nt1_ms = {T1_MS}\nt2_ms = 800\nname_server = '{dns}'\n\
         [[route]]\ndomain = 'example.net'\n\
         [[route.target]]\ntransport = 'udp'\nhost = 'example.net'\n\
         [metrics]\nprometheus = '{prom}'\n[state]\ndir = '{}'\n",
        dir.path().join("state").display()
    );
    let gw = gateway::start_in(&gw_host, dir.path(), &config);

    let call = uac.run(move || async move {
        let sock = UdpSocket::bind("192.0.2.2:5080").await.expect("uac");
        let me = sock.local_addr().expect("addr");
        let relay = addr("192.0.2.1:5060");
        let invite = format!(
            "INVITE sip:bob@example.net SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKlabfo1;rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@{me}>;tag=a\r\nTo: <sip:bob@example.net>\r\n\
             Call-ID: lab-failover@test\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{me}>\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let start = Instant::now();
        sock.send_to(invite.as_bytes(), relay).await.expect("send");
        let ok = final_response_udp(&sock, Duration::from_secs(30)).await;
        let took = start.elapsed();
        // ACK for the 2xx: to the Contact, through the route set (the Record-Route reversed,
        // RFC 3261 §12.1.2), as its own transaction.
        let mut ack = format!(
            "ACK {} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKlabfo1ack;rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@{me}>;tag=a\r\n",
            ok.header("Contact")
                .map(|c| String::from_utf8_lossy(c)
                    .trim_matches(['<', '>'])
                    .to_owned())
                .unwrap_or_default()
        );
        let rr: Vec<String> = ok
            .header_lines("Record-Route")
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        for r in rr.iter().rev() {
            ack.push_str(&format!("Route: {r}\r\n"));
        }
        ack.push_str(&format!(
            "To: {}\r\nCall-ID: lab-failover@test\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
            String::from_utf8_lossy(ok.header("To").expect("To"))
        ));
        sock.send_to(ack.as_bytes(), relay).await.expect("ack");
        (ok.status_code(), took, rr.len())
    });
    let (code, took, record_routes) = call.join().expect("uac");
    let text = gw_host
        .run(move || async move { scrape(prom).await })
        .join()
        .expect("metrics");
    // Time for the caller's ACK to reach the third target.
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let [silent, busy, good] = targets.map(|t| t.join().expect("target"));
    drop(gw);
    assert_eq!(
        code,
        Some(200),
        "completed on the third target after {took:?}; targets saw {silent:?} {busy:?} {good:?}"
    );
    assert!(record_routes >= 1, "the gateway record-routed the INVITE");
    // Timer B of the silent first target (64·T1), then the 503 and the 200 at once: more
    // than one Timer B and less than two (the VM's emulated CPU is slow and noisy).
    let timer_b = Duration::from_millis(64 * T1_MS);
    assert!(
        took >= timer_b && took < 2 * timer_b,
        "took {took:?}, Timer B is {timer_b:?}"
    );

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
    assert!(
        silent.invites > 1 && silent.acks == 0,
        "the silent target got Timer A retransmissions and no ACK: {silent:?}"
    );
    // The emulated CPU may answer after Timer A fired: a retransmitted INVITE gets the 503
    // again and the relay's client transaction ACKs each 503 it gets.
    assert!(
        busy.invites >= 1 && busy.acks == busy.invites,
        "the 503 target: an INVITE and the relay's ACK for each 503: {busy:?}"
    );
    assert!(
        good.invites >= 1 && good.acks == 1,
        "the 200 target: the INVITE and the caller's ACK through the Record-Route: {good:?}"
    );
}
