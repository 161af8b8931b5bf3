//! SIP over DTLS over SCTP (RFC 6083) between two lab hosts, through the library's `Transport`:
//! round trips with identities both ways, the SCTP-AUTH state read back through the socket API
//! on both ends after the key switch, 1,000 transactions over 16 streams, a message over 2^14
//! bytes refused while the association goes on, and peers without SCTP-AUTH refused both ways.
//! Needs root and kernel SCTP (the lab VM).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use sipwire::transport::{Incoming, SctpAuthInfo, Transport, TransportConfig};
use sipwire::wire::response::response_to;
use sipwire::{Target, TransportError, TransportKind};
use sipwire_lab::{Host, Topology};
use support::dtls::{acceptor, connector};
use support::pki::{Ca, Spec};
use support::sip::request;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(30);
/// SCTP chunk type of DATA.
const DATA: u8 = 0;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

fn config() -> TransportConfig {
    let mut c = TransportConfig::default();
    c.sctp.streams = 16;
    c.sctp.max_inbound_streams = 16;
    c.sctp.rto_initial = Duration::from_millis(200);
    c.sctp.rto_min = Duration::from_millis(100);
    c.sctp.rto_max = Duration::from_millis(400);
    c
}

async fn next(rx: &mut mpsc::Receiver<Incoming>) -> Incoming {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("timed out waiting for a message")
        .expect("channel closed")
}

fn pair(auth_a: bool, auth_b: bool) -> (Topology, Host, Host) {
    let mut lab = Topology::new().expect("lab (run as root)");
    let a = lab.host("a").expect("host a");
    let b = lab.host("b").expect("host b");
    lab.link(&a, &["192.0.2.1/24"], &b, &["192.0.2.2/24"])
        .expect("link");
    let on = |x: bool| if x { "1" } else { "0" };
    a.sysctl("net/sctp/auth_enable", on(auth_a))
        .expect("sysctl a");
    b.sysctl("net/sctp/auth_enable", on(auth_b))
        .expect("sysctl b");
    (lab, a, b)
}

fn assert_switched(side: &str, auth: &SctpAuthInfo) {
    assert!(auth.peer_supports_auth, "{side}: peer AUTH");
    assert_eq!(
        auth.active_key, 1,
        "{side}: key 1 active after the handshake"
    );
    assert!(auth.local_chunks.contains(&DATA), "{side}: {auth:?}");
    assert!(auth.peer_chunks.contains(&DATA), "{side}: {auth:?}");
    assert!(auth.handshake_key_deleted, "{side}: key 0 deleted");
    assert!(auth.key_fingerprint.is_some(), "{side}: key 1 set");
}

#[test]
fn lab_dtls_sctp_round_trips_auth_keys_and_thousand_transactions_over_16_streams() {
    const N: usize = 1000;
    let ca = Ca::new("lab CA");
    let server_leaf = ca.sip_leaf(&["a.example.net"]);
    let client_leaf = ca.leaf(&Spec::sip(&["b.example.net"]));
    let server_tls = acceptor(&ca, &server_leaf);
    let client_tls = connector(&ca, &client_leaf);
    let (_lab, a, b) = pair(true, true);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = a.run(move || async move {
        let (t, mut rx) = Transport::new(config());
        t.bind_dtls_sctp(&[addr("192.0.2.1:5062")], server_tls)
            .await
            .expect("bind DTLS-SCTP");
        assert_eq!(&*t.via_token(TransportKind::DtlsSctp), "DTLS-SCTP");
        let _ = ready_tx.send(());
        let mut flows = std::collections::HashSet::new();
        let mut auth = None;
        let mut answered = 0;
        // 2 round trips, N transactions, 1 after the refused message.
        for _ in 0..N + 3 {
            let inc = next(&mut rx).await;
            assert_eq!(inc.transport(), TransportKind::DtlsSctp);
            assert_eq!(&*inc.identities, ["b.example.net"], "client identities");
            assert_eq!(inc.server_name.as_deref(), Some("a.example.net"), "SNI");
            assert!(inc.peer_certificate);
            flows.insert(inc.flow);
            if auth.is_none() {
                auth = t.sctp_auth(inc.flow);
            }
            answered += 1;
            t.send(inc.flow, response_to(&inc.message, 200, "OK"))
                .expect("send response");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        t.shutdown(Duration::from_millis(100)).await;
        (flows.len(), auth, answered)
    });
    ready_rx.recv_timeout(WAIT).expect("DTLS-SCTP listener");
    let client = b.run(move || async move {
        let (t, mut rx) = Transport::new(config());
        t.set_dtls_sctp_client(client_tls);
        let target = Target::new(TransportKind::DtlsSctp, addr("192.0.2.1:5062"))
            .with_server_name("a.example.net");
        let flow = t.connect(&target).await.expect("DTLS-SCTP association");
        let info = t.flow_info(flow).expect("flow");
        assert_eq!(&*info.identities, ["a.example.net"], "server identities");
        let local = info.local;
        let early = t.sctp_auth(flow).expect("AUTH state");
        eprintln!("client AUTH state when connect returned: {early:?}");
        // Data after the key switch: two round trips, one with a 16,000-byte body.
        for (branch, body) in [("small", 10), ("near-limit", 15_000)] {
            let req = request("MESSAGE", "DTLS-SCTP", local, target.addr, branch, body);
            t.send(flow, Bytes::from(req)).expect("send");
            let r = next(&mut rx).await;
            assert_eq!(r.flow, flow);
            assert_eq!(r.message.status_code(), Some(200));
            assert_eq!(r.message.call_id(), format!("{branch}@test"));
        }
        for i in 0..N {
            let req = request(
                "OPTIONS",
                "DTLS-SCTP",
                local,
                target.addr,
                &format!("d{i}"),
                0,
            );
            t.send(flow, Bytes::from(req)).expect("send");
        }
        let mut seen = std::collections::HashSet::new();
        for _ in 0..N {
            let r = next(&mut rx).await;
            assert_eq!(r.flow, flow);
            assert_eq!(r.message.status_code(), Some(200));
            assert!(seen.insert(r.message.call_id().to_owned()), "duplicate");
        }
        // Over one DTLS record: refused with a clear error, the association goes on.
        let big = request("MESSAGE", "DTLS-SCTP", local, target.addr, "big", 20_000);
        let err = t.send(flow, Bytes::from(big)).expect_err("too large");
        assert!(
            matches!(err, TransportError::MessageTooLarge { limit: 16384, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("DTLS record"), "{err}");
        let req = request("OPTIONS", "DTLS-SCTP", local, target.addr, "after", 0);
        t.send(flow, Bytes::from(req)).expect("send after refusal");
        let r = next(&mut rx).await;
        assert_eq!(r.message.call_id(), "after@test");
        let auth = t.sctp_auth(flow).expect("AUTH state");
        t.shutdown(Duration::from_millis(100)).await;
        (seen.len(), auth)
    });
    let (n, client_auth) = client.join().expect("client");
    assert_eq!(n, N);
    let (flows, server_auth, answered) = server.join().expect("server");
    assert_eq!(flows, 1, "one association");
    assert_eq!(answered, N + 3);
    let server_auth = server_auth.expect("server AUTH state");
    assert_switched("client", &client_auth);
    assert_switched("server", &server_auth);
    assert_eq!(
        client_auth.key_fingerprint, server_auth.key_fingerprint,
        "the same exporter key on both ends"
    );
}

#[test]
fn lab_dtls_sctp_peers_without_sctp_auth_are_refused() {
    let ca = Ca::new("lab CA");
    let server_leaf = ca.sip_leaf(&["a.example.net"]);
    let client_leaf = ca.leaf(&Spec::sip(&["b.example.net"]));
    let server_tls = acceptor(&ca, &server_leaf);
    let client_tls = connector(&ca, &client_leaf);
    // a has SCTP-AUTH; b's namespace has it off (net.sctp.auth_enable = 0).
    let (_lab, a, b) = pair(true, false);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    // b's plain association goes from its listener's address and port to a's DTLS listener,
    // the very pair a's DTLS connect to b uses: started together they would collide into one
    // association (RFC 4960 §5.2). b starts once a's attempt is over.
    let (a_done_tx, a_done_rx) = tokio::sync::oneshot::channel::<()>();
    let plain_b = b.run(move || async move {
        let (t, mut rx) = Transport::new(config());
        t.bind_sctp(TransportKind::Sctp, &[addr("192.0.2.2:5060")])
            .await
            .expect("bind SCTP");
        let _ = ready_tx.send(());
        // Where AUTH is off, a DTLS-SCTP listener cannot even be bound: clear error.
        let err = t
            .bind_dtls_sctp(&[addr("192.0.2.2:5062")], server_tls)
            .await
            .expect_err("no DTLS-SCTP without SCTP-AUTH");
        assert!(
            err.to_string().to_lowercase().contains("auth"),
            "names SCTP-AUTH: {err}"
        );
        // b, without AUTH, opens a plain SCTP association to a's DTLS-SCTP listener: a
        // aborts it, nothing is delivered.
        let _ = tokio::time::timeout(WAIT, a_done_rx).await;
        let target = Target::new(TransportKind::Sctp, addr("192.0.2.1:5062"));
        let mut gone = false;
        if let Ok(flow) = t.connect(&target).await {
            let req = request(
                "OPTIONS",
                "SCTP",
                addr("192.0.2.2:5060"),
                target.addr,
                "x",
                0,
            );
            let _ = t.send(flow, Bytes::from(req));
            for _ in 0..50 {
                if t.flow_info(flow).is_none() {
                    gone = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        } else {
            gone = true;
        }
        let got = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await;
        t.shutdown(Duration::from_millis(100)).await;
        (gone, got.is_ok())
    });
    ready_rx
        .recv_timeout(WAIT)
        .expect("plain SCTP listener on b");
    let dtls_a = a.run(move || async move {
        let (t, mut rx) = Transport::new(config());
        t.bind_dtls_sctp(&[addr("192.0.2.1:5062")], acceptor_again())
            .await
            .expect("bind DTLS-SCTP on a");
        t.set_dtls_sctp_client(client_tls);
        // a's DTLS client to b, which has no AUTH: refused with a clear error.
        let target = Target::new(TransportKind::DtlsSctp, addr("192.0.2.2:5060"))
            .with_server_name("b.example.net");
        let err = t.connect(&target).await.expect_err("peer without AUTH");
        let _ = a_done_tx.send(());
        let text = format!("{err}");
        assert!(text.contains("SCTP-AUTH"), "clear error: {text}");
        // Give b's plain association time to come and be aborted.
        let delivered = tokio::time::timeout(Duration::from_secs(3), rx.recv()).await;
        let assocs = t.stats().sctp_associations;
        t.shutdown(Duration::from_millis(100)).await;
        (delivered.is_ok(), assocs)
    });
    let (delivered_a, assocs_a) = dtls_a.join().expect("a");
    let (gone_b, delivered_b) = plain_b.join().expect("b");
    assert!(
        !delivered_a,
        "nothing from a peer without AUTH is delivered"
    );
    assert_eq!(assocs_a, 0, "no association without AUTH stays up on a");
    assert!(
        gone_b,
        "b's association to the DTLS-SCTP listener was aborted"
    );
    assert!(!delivered_b);
}

/// A second acceptor for host a's listener in the refusal test (builders are consumed).
fn acceptor_again() -> openssl::ssl::SslAcceptorBuilder {
    let ca = Ca::new("other lab CA");
    acceptor(&ca, &ca.sip_leaf(&["a.example.net"]))
}
