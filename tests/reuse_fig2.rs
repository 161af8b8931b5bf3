//! RFC 5923 Figure 2 and Figure 4 live, on loopback: P1 (example.com, 127.0.0.1) sends a
//! request to P2 (example.net, 127.0.0.2) over TLS, then P2 sends one back. Without `alias`
//! two connections exist; with it, one, and the alias tables hold exactly the Figure 4 rows.
//! Also §8.1/§8.2 (checklist 40): a dead connection is replaced and the row updated; a CANCEL
//! after the connection died goes over a new connection.

mod support;

use sipwire::alias::{AliasDecision, RowOrigin};
use std::time::Duration;
use support::fig::{figure, p1_tables, p2_tables};
use support::poll::{eventually, WAIT};
use support::reuse::*;
use support::sip::*;

#[tokio::test]
async fn figure2_without_alias_two_connections() {
    let mut f = figure(false, TLS13).await;
    let r = forwarded("OPTIONS", "sips:example.net", "example.com", "f2a", 1);
    let s1 =
        f.p1.endpoint
            .send_request("example.com", &sips("example.net"), &r, "z9hG4bKp1a")
            .await
            .expect("P1 -> P2");
    assert!(!s1.reused);
    let at_p2 = f.p2.next_request().await;
    let via = at_p2.message.top_via().expect("via");
    assert!(!via.alias, "no alias when disabled");
    assert_eq!(at_p2.decision, None);
    f.p1.next_response().await;

    let r = forwarded("OPTIONS", "sips:example.com", "example.net", "f2b", 1);
    let s2 =
        f.p2.endpoint
            .send_request("example.net", &sips("example.com"), &r, "z9hG4bKp2a")
            .await
            .expect("P2 -> P1");
    assert!(!s2.reused, "without alias P2 cannot reuse P1's connection");
    let at_p1 = f.p1.next_request().await;
    assert_ne!(at_p1.flow, s1.flow, "a second connection");
    f.p2.next_response().await;
    assert_eq!(f.p1.opened(), (1, 1), "P1: one accepted, one opened");
    assert_eq!(f.p2.opened(), (1, 1), "P2: one accepted, one opened");
    assert_eq!(f.p1.transport.stats().stream_flows, 2);
    assert_eq!(f.p2.transport.stats().stream_flows, 2);
}

#[tokio::test]
async fn figure2_with_alias_one_connection_and_figure4_rows() {
    let mut f = figure(true, TLS13).await;
    let r = forwarded("OPTIONS", "sips:example.net", "example.com", "f4a", 1);
    let s1 =
        f.p1.endpoint
            .send_request("example.com", &sips("example.net"), &r, "z9hG4bKa7c8dze")
            .await
            .expect("P1 -> P2");
    assert!(!s1.reused);
    assert_eq!(
        s1.aus, "example.net",
        "the AUS is the URI domain, not the SRV target"
    );
    let at_p2 = f.p2.next_request().await;
    let via = at_p2.message.top_via().expect("via");
    assert!(via.alias, "alias over TLS (RFC 5923 Figure 3)");
    assert_eq!(via.host.to_string(), "p1.example.com");
    assert_eq!(at_p2.decision, Some(AliasDecision::Added));
    f.p1.next_response().await;

    // Backwards direction: P2 reuses the connection P1 opened.
    let r = forwarded("OPTIONS", "sips:example.com", "example.net", "f4b", 1);
    let s2 =
        f.p2.endpoint
            .send_request("example.net", &sips("example.com"), &r, "z9hG4bKp2b")
            .await
            .expect("P2 -> P1");
    assert!(s2.reused, "P2 reuses the aliased connection");
    assert_eq!(s2.flow, at_p2.flow, "the connection P1 opened");
    let at_p1 = f.p1.next_request().await;
    assert_eq!(at_p1.flow, s1.flow, "arrives on P1's outbound connection");
    f.p2.next_response().await;

    assert_eq!(f.p1.opened(), (0, 1), "P1 opened exactly one connection");
    assert_eq!(
        f.p2.opened(),
        (1, 0),
        "P2 accepted exactly one and opened none"
    );
    assert_eq!(f.p1.transport.stats().stream_flows, 1);
    assert_eq!(f.p2.transport.stats().stream_flows, 1);

    // Figure 4: P1's row for P2, P2's row for P1 (ports are the listeners' ports here; 5061
    // in the netns version).
    assert_eq!(
        f.p1.endpoint.dump(),
        p1_tables(f.p2.tls, s1.flow, RowOrigin::Outbound)
    );
    assert_eq!(
        f.p2.endpoint.dump(),
        p2_tables(f.p1.tls, at_p2.flow, RowOrigin::Inbound)
    );

    // More requests both ways: still one connection.
    for i in 0..5u32 {
        let r = forwarded(
            "OPTIONS",
            "sips:example.com",
            "example.net",
            &format!("m{i}"),
            2 + i,
        );
        let s =
            f.p2.endpoint
                .send_request(
                    "example.net",
                    &sips("example.com"),
                    &r,
                    &format!("z9hG4bKm{i}"),
                )
                .await
                .expect("P2 -> P1");
        assert!(s.reused);
        let r = forwarded(
            "OPTIONS",
            "sips:example.net",
            "example.com",
            &format!("n{i}"),
            2 + i,
        );
        let s =
            f.p1.endpoint
                .send_request(
                    "example.com",
                    &sips("example.net"),
                    &r,
                    &format!("z9hG4bKn{i}"),
                )
                .await
                .expect("P1 -> P2");
        assert!(s.reused);
    }
    assert_eq!(f.p1.opened(), (0, 1));
    assert_eq!(f.p2.opened(), (1, 0));
}

#[tokio::test]
async fn figure2_with_alias_over_tls12() {
    let mut f = figure(true, TLS12).await;
    let r = forwarded("OPTIONS", "sips:example.net", "example.com", "t12a", 1);
    f.p1.endpoint
        .send_request("example.com", &sips("example.net"), &r, "z9hG4bKt12a")
        .await
        .expect("P1 -> P2");
    assert_eq!(
        f.p2.next_request().await.decision,
        Some(AliasDecision::Added)
    );
    let r = forwarded("OPTIONS", "sips:example.com", "example.net", "t12b", 1);
    let s =
        f.p2.endpoint
            .send_request("example.net", &sips("example.com"), &r, "z9hG4bKt12b")
            .await
            .expect("P2 -> P1");
    assert!(s.reused);
    f.p1.next_request().await;
    assert_eq!(f.p1.opened(), (0, 1));
    assert_eq!(f.p2.opened(), (1, 0));
}

/// Checklist 40: the connection goes away; both tables forget it; the next request opens a
/// new connection and the row is recorded again with the new descriptor.
#[tokio::test]
async fn dead_connection_is_replaced_and_rows_updated() {
    let mut f = figure(true, TLS13).await;
    let r = forwarded("OPTIONS", "sips:example.net", "example.com", "d1", 1);
    let s1 =
        f.p1.endpoint
            .send_request("example.com", &sips("example.net"), &r, "z9hG4bKd1")
            .await
            .expect("P1 -> P2");
    let at_p2 = f.p2.next_request().await;
    assert_eq!(at_p2.decision, Some(AliasDecision::Added));
    f.p1.next_response().await;

    // P2 closes it (RFC 5923 §8.3).
    f.p2.transport.close(at_p2.flow, Duration::from_millis(50));
    eventually(WAIT, "P2 forgets the closed flow", || {
        f.p2.endpoint.counters().rows == 0
    })
    .await;
    eventually(WAIT, "P1 forgets the closed flow", || {
        f.p1.endpoint.counters().rows == 0
    })
    .await;

    // P2 -> P1 now needs a connection of its own.
    let r = forwarded("OPTIONS", "sips:example.com", "example.net", "d2", 1);
    let s2 =
        f.p2.endpoint
            .send_request("example.net", &sips("example.com"), &r, "z9hG4bKd2")
            .await
            .expect("P2 -> P1");
    assert!(!s2.reused);
    assert_ne!(s2.flow, at_p2.flow);
    let at_p1 = f.p1.next_request().await;
    assert_eq!(at_p1.decision, Some(AliasDecision::Added));
    f.p2.next_response().await;

    // P1 -> P2 reuses P2's new connection (its inbound alias), not the dead one.
    let r = forwarded("OPTIONS", "sips:example.net", "example.com", "d3", 2);
    let s3 =
        f.p1.endpoint
            .send_request("example.com", &sips("example.net"), &r, "z9hG4bKd3")
            .await
            .expect("P1 -> P2 again");
    assert!(s3.reused);
    assert_ne!(s3.flow, s1.flow);
    assert_eq!(s3.flow, at_p1.flow);
    f.p2.next_request().await;
    let c = f.p2.endpoint.counters();
    assert_eq!(c.rows, 1);
    assert_eq!(c.removed, 1);
}

/// Checklist 40: a CANCEL for an INVITE whose connection died goes to the same target over a
/// new connection.
#[tokio::test]
async fn cancel_after_connection_died_uses_a_new_connection() {
    let mut f = figure(true, TLS13).await;
    let invite = forwarded("INVITE", "sips:bob@example.net", "example.com", "c1", 1);
    let sent =
        f.p1.endpoint
            .send_request("example.com", &sips("example.net"), &invite, "z9hG4bKc1")
            .await
            .expect("INVITE");
    let at_p2 = f.p2.next_request().await;
    f.p1.next_response().await;
    f.p1.transport.abort(sent.flow);
    eventually(WAIT, "P1 forgets the aborted flow", || {
        f.p1.endpoint.counters().rows == 0
    })
    .await;
    eventually(WAIT, "P2 sees the connection gone", || {
        f.p2.transport.flow_info(at_p2.flow).is_none()
    })
    .await;

    let cancel = forwarded("CANCEL", "sips:bob@example.net", "example.com", "c1", 1);
    let c =
        f.p1.endpoint
            .send_to_target("example.com", &sent.aus, &sent.target, &cancel, "z9hG4bKc1")
            .await
            .expect("CANCEL");
    assert!(!c.reused);
    assert_ne!(c.flow, sent.flow, "a new connection");
    assert_eq!(c.target, sent.target, "the INVITE's target");
    let at_p2 = f.p2.next_request().await;
    assert_eq!(at_p2.message.method(), Some("CANCEL"));
    assert_eq!(
        at_p2.message.top_via().expect("via").branch,
        Some("z9hG4bKc1")
    );
    assert_eq!(f.p1.opened(), (0, 2));
    assert_eq!(
        f.p1.endpoint.counters().rows,
        1,
        "the new connection is recorded"
    );
}

/// Concurrent first requests to one peer share one connection and one row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_share_one_connection() {
    let mut f = figure(true, TLS13).await;
    let mut tasks = Vec::new();
    for i in 0..20u32 {
        let ep = f.p1.endpoint.clone();
        tasks.push(tokio::spawn(async move {
            let r = forwarded(
                "OPTIONS",
                "sips:example.net",
                "example.com",
                &format!("c{i}"),
                1,
            );
            ep.send_request(
                "example.com",
                &sips("example.net"),
                &r,
                &format!("z9hG4bKc{i}"),
            )
            .await
            .map(|s| s.flow)
        }));
    }
    let mut flows = std::collections::HashSet::new();
    for t in tasks {
        flows.insert(t.await.expect("task").expect("send"));
    }
    for _ in 0..20 {
        f.p2.next_request().await;
    }
    assert_eq!(flows.len(), 1, "one connection");
    assert_eq!(f.p1.opened(), (0, 1));
    assert_eq!(f.p2.opened(), (1, 0));
    assert_eq!(f.p1.endpoint.counters().rows, 1);
    assert_eq!(f.p2.endpoint.counters().rows, 1);
}
