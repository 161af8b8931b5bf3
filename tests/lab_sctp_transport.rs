//! SIP over SCTP (RFC 4168) between two lab hosts, through the library's `Transport`: round
//! trips, 1,000 concurrent transactions over 16 streams, a 60 KiB message, multihoming with a
//! failed path, bad input on one association beside a good one, association close. Needs root
//! and kernel SCTP (the lab VM).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use sipwire::transport::{Incoming, Transport, TransportConfig};
use sipwire::wire::response::response_to;
use sipwire::{Target, TransportKind};
use sipwire_lab::{Host, Topology};
use support::sip::request;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(30);

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

fn sctp_config() -> TransportConfig {
    let mut c = TransportConfig::default();
    c.sctp.streams = 16;
    c.sctp.max_inbound_streams = 16;
    // Fail paths over quickly in the multihoming test (milliseconds, not the defaults' seconds).
    c.sctp.rto_initial = Duration::from_millis(200);
    c.sctp.rto_min = Duration::from_millis(100);
    c.sctp.rto_max = Duration::from_millis(400);
    c.sctp.heartbeat_interval = Some(Duration::from_millis(200));
    c.sctp.path_max_retrans = 2;
    c
}

async fn next(rx: &mut mpsc::Receiver<Incoming>) -> Incoming {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("timed out waiting for a message")
        .expect("channel closed")
}

/// Two hosts linked by 192.0.2.0/24 and, when `multihomed`, also by 198.51.100.0/24.
fn pair(multihomed: bool) -> (Topology, Host, Host) {
    let mut lab = Topology::new().expect("lab (run as root)");
    let a = lab.host("a").expect("host a");
    let b = lab.host("b").expect("host b");
    lab.link(&a, &["192.0.2.1/24"], &b, &["192.0.2.2/24"])
        .expect("link 1");
    if multihomed {
        lab.link(&a, &["198.51.100.1/24"], &b, &["198.51.100.2/24"])
            .expect("link 2");
    }
    (lab, a, b)
}

type Served = sipwire_lab::HostTask<(usize, Vec<sipwire::Flow>)>;

/// Host a's server: binds SCTP on `addrs` and answers every request with 200 on the flow it
/// came on, until `count` requests were answered. Returns once it is listening; the task gives
/// the number answered and the flows they came on.
fn responder(a: &Host, addrs: Vec<SocketAddr>, count: usize) -> Served {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let task = a.run(move || async move {
        let (t, mut rx) = Transport::new(sctp_config());
        t.bind_sctp(TransportKind::Sctp, &addrs)
            .await
            .expect("bind SCTP");
        let _ = ready_tx.send(());
        let mut flows = Vec::new();
        for _ in 0..count {
            let inc = next(&mut rx).await;
            assert_eq!(inc.transport(), TransportKind::Sctp);
            assert!(inc.message.is_request());
            if !flows.contains(&inc.flow) {
                flows.push(inc.flow);
            }
            t.send(inc.flow, response_to(&inc.message, 200, "OK"))
                .expect("send response");
        }
        // The client closes first (after checking its own association count): the server
        // waits for that rather than a guessed time, so its close never races the client's
        // last look at the association.
        support::poll::eventually(WAIT, "the client to close its associations", || {
            t.stats().sctp_associations == 0
        })
        .await;
        t.shutdown(Duration::from_millis(100)).await;
        (count, flows)
    });
    ready_rx
        .recv_timeout(WAIT)
        .expect("the responder did not start listening");
    task
}

async fn connect(t: &Transport, target: &Target) -> sipwire::Flow {
    t.connect(target).await.expect("SCTP association")
}

#[test]
fn lab_sctp_request_response_round_trip_and_large_message() {
    let (_lab, a, b) = pair(false);
    let server = responder(&a, vec![addr("192.0.2.1:5060")], 2);
    let client = b.run(|| async {
        let (t, mut rx) = Transport::new(sctp_config());
        let local = t
            .bind_sctp(TransportKind::Sctp, &[addr("192.0.2.2:5060")])
            .await
            .expect("bind")[0];
        let target = Target::new(TransportKind::Sctp, addr("192.0.2.1:5060"));
        let flow = connect(&t, &target).await;
        // A small request, then one of 60 KiB (bigger than any one SCTP packet).
        for (branch, body) in [("small", 10), ("large", 60 * 1024)] {
            let req = request("MESSAGE", "SCTP", local, target.addr, branch, body);
            t.send(flow, Bytes::from(req)).expect("send");
            let resp = next(&mut rx).await;
            assert_eq!(
                resp.flow, flow,
                "the response comes back on the association"
            );
            assert_eq!(resp.message.status_code(), Some(200));
            assert_eq!(resp.message.call_id(), format!("{branch}@test"));
        }
        let info = t.flow_info(flow).expect("flow");
        assert_eq!(info.peer, target.addr);
        assert_eq!(info.local.ip(), local.ip());
        assert_eq!(t.stats().sctp_associations, 1);
        t.shutdown(Duration::from_millis(100)).await;
    });
    client.join().expect("client");
    let (n, flows) = server.join().expect("server");
    assert_eq!(n, 2);
    assert_eq!(flows.len(), 1, "one association carried both");
}

#[test]
fn lab_sctp_thousand_concurrent_transactions_over_16_streams_no_loss() {
    const N: usize = 1000;
    let (_lab, a, b) = pair(false);
    let server = responder(&a, vec![addr("192.0.2.1:5060")], N);
    let client = b.run(|| async {
        let (t, mut rx) = Transport::new(sctp_config());
        let local = t
            .bind_sctp(TransportKind::Sctp, &[addr("192.0.2.2:5060")])
            .await
            .expect("bind")[0];
        let target = Target::new(TransportKind::Sctp, addr("192.0.2.1:5060"));
        let flow = connect(&t, &target).await;
        for i in 0..N {
            let req = request("OPTIONS", "SCTP", local, target.addr, &format!("c{i}"), 0);
            t.send(flow, Bytes::from(req)).expect("send");
        }
        let mut seen = std::collections::HashSet::new();
        for _ in 0..N {
            let r = next(&mut rx).await;
            assert_eq!(r.message.status_code(), Some(200));
            assert!(
                seen.insert(r.message.call_id().to_owned()),
                "duplicate response"
            );
        }
        t.shutdown(Duration::from_millis(100)).await;
        seen.len()
    });
    assert_eq!(client.join().expect("client"), N);
    assert_eq!(server.join().expect("server").0, N);
}

/// Sends `n` requests on `flow`, one every `every`, and waits for all the answers; `at(i)` runs
/// before the `i`th send (to cut a path mid-load). Returns each transaction's latency, by index.
async fn paced_load(
    t: &Transport,
    rx: &mut mpsc::Receiver<Incoming>,
    flow: sipwire::Flow,
    (local, to): (SocketAddr, SocketAddr),
    n: usize,
    every: Duration,
    mut at: impl FnMut(usize),
) -> Vec<Duration> {
    let mut sent_at = vec![None; n];
    let mut latency = vec![None; n];
    let mut tick = tokio::time::interval(every);
    let mut next_send = 0;
    let mut answered = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    while answered < n {
        tokio::select! {
            _ = tick.tick(), if next_send < n => {
                at(next_send);
                let req = request("OPTIONS", "SCTP", local, to, &format!("p{next_send}"), 0);
                sent_at[next_send] = Some(std::time::Instant::now());
                t.send(flow, Bytes::from(req)).expect("send");
                next_send += 1;
            }
            r = rx.recv() => {
                let r = r.expect("channel");
                assert_eq!(r.flow, flow, "every answer on the one association");
                let i: usize = r.message.call_id()
                    .strip_prefix('p')
                    .and_then(|x| x.strip_suffix("@test"))
                    .and_then(|x| x.parse().ok())
                    .expect("our call-id");
                if latency[i].is_none() {
                    latency[i] = sent_at[i].map(|s| s.elapsed());
                    answered += 1;
                }
            }
            _ = tokio::time::sleep_until(deadline) => panic!("only {answered} of {n} answered in time"),
        }
    }
    latency.into_iter().map(|l| l.expect("answered")).collect()
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

#[test]
fn lab_sctp_multihomed_association_survives_cutting_its_primary_path_mid_load() {
    const N: usize = 600;
    let (lab, a, b) = pair(true);
    let primary = lab.links()[0].clone();
    let server = responder(
        &a,
        vec![addr("192.0.2.1:5060"), addr("198.51.100.1:5060")],
        N,
    );
    let client = b.run(move || async move {
        let (t, mut rx) = Transport::new(sctp_config());
        let local = t
            .bind_sctp(
                TransportKind::Sctp,
                &[addr("192.0.2.2:5060"), addr("198.51.100.2:5060")],
            )
            .await
            .expect("bind");
        assert_eq!(local.len(), 2, "bound on both addresses: {local:?}");
        let target = Target::new(TransportKind::Sctp, addr("192.0.2.1:5060"))
            .with_extra_addrs([addr("198.51.100.1:5060")]);
        let flow = connect(&t, &target).await;
        // The primary path goes away a third of the way in: the association carries on over
        // the other, nothing is lost, no new association.
        let lat = paced_load(
            &t,
            &mut rx,
            flow,
            (local[0], target.addr),
            N,
            Duration::from_millis(2),
            |i| {
                if i == N / 3 {
                    primary.down().expect("primary path down");
                }
            },
        )
        .await;
        let stats = t.stats();
        t.shutdown(Duration::from_millis(100)).await;
        (lat.len(), stats.opened_outbound, stats.sctp_associations)
    });
    let (answered, opened, live) = client.join().expect("client");
    assert_eq!(answered, N, "no SIP message lost");
    assert_eq!(
        (opened, live),
        (1, 1),
        "the association was not re-established"
    );
    let (n, flows) = server.join().expect("server");
    assert_eq!((n, flows.len()), (N, 1));
}

/// Head-of-line blocking (RFC 4168 §5.1), measured: with 2% loss and 10 ms delay each way, the
/// same paced load over an association with one stream and one with 16, side by side over the
/// same link (the machine's noise falls on both alike). Prints both latency distributions;
/// checks that nothing is lost. It does not assert that 16 streams win at p99: in the lab VM
/// (emulated CPU) a load light enough not to saturate it leaves the p99 to the transactions
/// whose own packets were lost (2% per packet hits ~4% of transactions, more than 1%), the same
/// on both; see docs/benchmarks.md.
#[test]
fn lab_sctp_head_of_line_blocking_one_stream_and_sixteen_under_loss() {
    const N: usize = 300;
    let (lab, a, b) = pair(false);
    lab.links()[0]
        .impair(sipwire_lab::Impairment {
            delay_ms: 10,
            jitter_ms: 0,
            loss_percent: 2.0,
        })
        .expect("netem");
    let server = responder(&a, vec![addr("192.0.2.1:5060")], 2 * N);
    let client = b.run(move || async move {
        let target = Target::new(TransportKind::Sctp, addr("192.0.2.1:5060"));
        let mut ends = Vec::new();
        for (streams, port) in [(1u16, 5071u16), (16, 5072)] {
            let mut cfg = sctp_config();
            cfg.sctp.streams = streams;
            let (t, rx) = Transport::new(cfg);
            let local = t
                .bind_sctp(
                    TransportKind::Sctp,
                    &[SocketAddr::new(addr("192.0.2.2:0").ip(), port)],
                )
                .await
                .expect("bind")[0];
            let flow = connect(&t, &target).await;
            ends.push((t, rx, flow, local));
        }
        let (mut e16, mut e1) = (ends.pop().expect("16"), ends.pop().expect("1"));
        let every = Duration::from_millis(40);
        let (one, sixteen) = tokio::join!(
            paced_load(
                &e1.0,
                &mut e1.1,
                e1.2,
                (e1.3, target.addr),
                N,
                every,
                |_| {}
            ),
            paced_load(
                &e16.0,
                &mut e16.1,
                e16.2,
                (e16.3, target.addr),
                N,
                every,
                |_| {}
            ),
        );
        e1.0.shutdown(Duration::from_millis(100)).await;
        e16.0.shutdown(Duration::from_millis(100)).await;
        (one, sixteen)
    });
    let (one, sixteen) = client.join().expect("client");
    server.join().expect("server");
    let show = |v: &Vec<Duration>| {
        format!(
            "p50 {:?} p90 {:?} p99 {:?} max {:?}",
            percentile(v.clone(), 0.5),
            percentile(v.clone(), 0.9),
            percentile(v.clone(), 0.99),
            percentile(v.clone(), 1.0)
        )
    };
    println!(
        "SCTP, 2% loss, 10 ms each way, {N} transactions each, one every 40 ms, side by side:"
    );
    println!("   1 stream : {}", show(&one));
    println!("  16 streams: {}", show(&sixteen));
    assert_eq!(
        (one.len(), sixteen.len()),
        (N, N),
        "every transaction answered"
    );
}

/// A raw one-to-one SCTP socket (not sipwire) sending `data` as one user message, and what it
/// reads back within a second.
fn raw_exchange(server: SocketAddr, messages: &[&[u8]]) -> Vec<u8> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    use std::io::{Read, Write};
    let s =
        Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::from(132))).expect("SCTP socket");
    s.connect(&SockAddr::from(server)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    let mut conn = std::net::TcpStream::from(s); // only used for Read/Write on the fd
    for m in messages {
        conn.write_all(m).expect("write");
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    got
}

#[test]
fn lab_sctp_bad_input_is_answered_or_dropped_and_other_associations_go_on() {
    let (_lab, a, b) = pair(false);
    // The good association's one request and the bad one's valid request at the end.
    let server = responder(&a, vec![addr("192.0.2.1:5060")], 2);
    let target = addr("192.0.2.1:5060");
    let good = b.run(move || async move {
        let (t, mut rx) = Transport::new(sctp_config());
        let local = t
            .bind_sctp(TransportKind::Sctp, &[addr("192.0.2.2:5070")])
            .await
            .expect("bind")[0];
        let flow = connect(&t, &Target::new(TransportKind::Sctp, target)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let req = request("OPTIONS", "SCTP", local, target, "good", 0);
        t.send(flow, Bytes::from(req)).expect("send");
        let r = next(&mut rx).await;
        t.shutdown(Duration::from_millis(100)).await;
        r.message.call_id().to_owned()
    });
    let bad = b
        .spawn(move || {
            let no_cl = "OPTIONS sip:x@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/SCTP 192.0.2.2:9;branch=z9hG4bKnocl\r\n\
                         From: <sip:a@h>;tag=1\r\nTo: <sip:x@h>\r\nCall-ID: nocl\r\nCSeq: 1 OPTIONS\r\n\r\n";
            let valid = request("OPTIONS", "SCTP", addr("192.0.2.2:9"), target, "valid", 0);
            raw_exchange(
                target,
                &[b"\x00\x01\x02 garbage\r\n\r\n", no_cl.as_bytes(), valid.as_bytes()],
            )
        })
        .join()
        .expect("thread")
        .expect("raw client");
    let text = String::from_utf8_lossy(&bad);
    assert!(
        text.contains("SIP/2.0 400 "),
        "no 400 to the request without Content-Length: {text}"
    );
    assert!(
        text.contains("valid@test"),
        "the valid request after bad input was answered: {text}"
    );
    assert_eq!(good.join().expect("good client"), "good@test");
    assert_eq!(server.join().expect("server").1.len(), 2);
}

/// TLS over SCTP (RFC 3436): host a serves `a.example.net` from a test CA, host b connects
/// presenting a client certificate; 1,000 concurrent requests over 16 streams (one TLS session
/// per stream pair) and a 60 KiB message come back answered; the server sees the client's
/// identities and the SNI on every request. A client expecting another name never gets an association.
#[test]
fn lab_tls_sctp_round_trips_with_identities_on_many_streams() {
    use support::pki::{Ca, Spec};
    const N: usize = 1000;
    let versions = support::reuse::TLS13;
    let ca = Ca::new("lab CA");
    let server_leaf = ca.sip_leaf(&["a.example.net"]);
    let client_leaf = ca.leaf(&Spec::sip(&["b.example.net"]));
    let server_cfg = ca.server_config(&server_leaf, &[], versions);
    let client_cfg = ca.client_config(Some(&client_leaf), versions);
    let (_lab, a, b) = pair(false);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = a.run(move || async move {
        let (t, mut rx) = Transport::new(sctp_config());
        t.bind_tls_sctp(&[addr("192.0.2.1:5061")], server_cfg)
            .await
            .expect("bind TLS-SCTP");
        let _ = ready_tx.send(());
        let mut flows = std::collections::HashSet::new();
        for _ in 0..N + 1 {
            let inc = next(&mut rx).await;
            assert_eq!(inc.transport(), TransportKind::TlsSctp);
            assert_eq!(&*inc.identities, ["b.example.net"], "client identities");
            assert_eq!(inc.server_name.as_deref(), Some("a.example.net"), "SNI");
            assert!(inc.peer_certificate);
            flows.insert(inc.flow);
            t.send(inc.flow, response_to(&inc.message, 200, "OK"))
                .expect("send response");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        t.shutdown(Duration::from_millis(100)).await;
        flows.len()
    });
    ready_rx.recv_timeout(WAIT).expect("TLS-SCTP listener");
    let client_cfg2 = client_cfg.clone();
    let client = b.run(move || async move {
        let (t, mut rx) = Transport::new(sctp_config());
        t.set_tls_client(client_cfg2);
        let local = t
            .bind_sctp(TransportKind::Sctp, &[addr("192.0.2.2:5060")])
            .await
            .expect("bind")[0];
        // A name the server cannot prove: no association is left open.
        let wrong = Target::new(TransportKind::TlsSctp, addr("192.0.2.1:5061"))
            .with_server_name("wrong.example.org");
        let err = t.connect(&wrong).await.expect_err("wrong name refused");
        assert!(
            matches!(
                err,
                sipwire::TransportError::Handshake { .. }
                    | sipwire::TransportError::IdentityMismatch { .. }
            ),
            "{err:?}"
        );
        let target = Target::new(TransportKind::TlsSctp, addr("192.0.2.1:5061"))
            .with_server_name("a.example.net");
        let flow = connect(&t, &target).await;
        let info = t.flow_info(flow).expect("flow");
        assert_eq!(&*info.identities, ["a.example.net"], "server identities");
        for i in 0..N {
            let req = request(
                "OPTIONS",
                "TLS-SCTP",
                local,
                target.addr,
                &format!("t{i}"),
                0,
            );
            t.send(flow, Bytes::from(req)).expect("send");
        }
        let big = request("MESSAGE", "TLS-SCTP", local, target.addr, "big", 60 * 1024);
        t.send(flow, Bytes::from(big)).expect("send");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..N + 1 {
            let r = next(&mut rx).await;
            assert_eq!(r.flow, flow);
            assert_eq!(r.message.status_code(), Some(200));
            seen.insert(r.message.call_id().to_owned());
        }
        assert!(seen.contains("big@test"));
        t.shutdown(Duration::from_millis(100)).await;
        seen.len()
    });
    assert_eq!(client.join().expect("client"), N + 1);
    assert_eq!(server.join().expect("server"), 1, "one association");
}

/// A peer that opens 10,000 associations (kept 400 at a time, each dropped for the next) while
/// another address runs ordinary transactions: the association limits hold, every ordinary
/// transaction is answered, nothing panics.
#[test]
fn lab_sctp_ten_thousand_associations_from_one_peer_leave_others_served() {
    const LEGIT: usize = 100;
    const MAX: usize = 100;
    let mut lab = Topology::new().expect("lab (run as root)");
    let a = lab.host("a").expect("host a");
    let b = lab.host("b").expect("host b");
    lab.link(&a, &["192.0.2.1/24"], &b, &["192.0.2.2/24", "192.0.2.3/24"])
        .expect("link");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = a.run(move || async move {
        // The kernel's retransmission timers, not the fast ones of the multihoming test: the
        // flood loads the emulated machine, and a fast RTO would declare the ordinary
        // association lost while its peer is busy.
        let mut cfg = TransportConfig::default();
        cfg.sctp.max_associations = MAX;
        cfg.max_connections_per_ip = MAX / 2;
        let (t, mut rx) = Transport::new(cfg);
        t.bind_sctp(TransportKind::Sctp, &[addr("192.0.2.1:5060")])
            .await
            .expect("bind");
        let _ = ready_tx.send(());
        let mut peak = 0;
        let mut answered = 0;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        while answered < LEGIT {
            tokio::select! {
                _ = tick.tick() => peak = peak.max(t.stats().sctp_associations),
                inc = rx.recv() => {
                    let inc = inc.expect("channel");
                    t.send(inc.flow, response_to(&inc.message, 200, "OK")).expect("answer");
                    answered += 1;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        t.shutdown(Duration::from_millis(100)).await;
        peak
    });
    ready_rx.recv_timeout(WAIT).expect("listening");
    let flood = b.spawn(|| {
        use socket2::{Domain, Protocol, SockAddr, Socket, Type};
        let server = SockAddr::from(addr("192.0.2.1:5060"));
        let from = SockAddr::from(addr("192.0.2.3:0"));
        let mut open = std::collections::VecDeque::new();
        let mut started = 0;
        for _ in 0..10_000 {
            let Ok(s) = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::from(132))) else {
                continue;
            };
            if s.bind(&from).is_err() || s.set_nonblocking(true).is_err() {
                continue;
            }
            let _ = s.connect(&server);
            started += 1;
            open.push_back(s);
            if open.len() > 400 {
                open.pop_front();
            }
        }
        started
    });
    let client = b.run(|| async {
        let (t, mut rx) = Transport::new(TransportConfig::default());
        let local = t
            .bind_sctp(TransportKind::Sctp, &[addr("192.0.2.2:5060")])
            .await
            .expect("bind")[0];
        let target = Target::new(TransportKind::Sctp, addr("192.0.2.1:5060"));
        let flow = connect(&t, &target).await;
        let lat = paced_load(
            &t,
            &mut rx,
            flow,
            (local, target.addr),
            LEGIT,
            Duration::from_millis(20),
            |_| {},
        )
        .await;
        t.shutdown(Duration::from_millis(100)).await;
        lat.len()
    });
    assert_eq!(
        client.join().expect("client"),
        LEGIT,
        "every ordinary transaction answered"
    );
    let started = flood.join().expect("thread").expect("flood");
    assert!(started >= 9_000, "the flood started {started} associations");
    let peak = server.join().expect("server");
    assert!(peak <= MAX, "{peak} associations at once, limit {MAX}");
    println!("flood: {started} associations started; server peak {peak} (limit {MAX})");
}
