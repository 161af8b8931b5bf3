//! RFC 5923 §4 Figure 3 live, on loopback: P1 (example.com, 127.0.0.1) forwards a UAC's
//! INVITE to P2 (example.net, 127.0.0.2) and puts itself in Record-Route; the 200 and the ACK
//! use that connection. Later the far side hangs up: P2 forwards the BYE by the route set the
//! UAS built from Record-Route, so P2's next hop is P1's Record-Route URI, resolved by RFC 3263
//! (the AUS is that URI's host, p1.example.com). Without `alias` P2 opens a second TLS
//! connection for the BYE (the figure's "Create connection 2"); with it, the BYE goes over
//! connection 1 and the alias tables hold exactly the RFC 5923 §5 rows.

mod support;

use sipwire::alias::{AliasDecision, RowOrigin};
use sipwire::endpoint::Sent;
use support::fig::{figure, p1_tables, p2_tables, Fig};
use support::reuse::*;
use support::sip::*;

/// What the dialog set-up left behind.
struct Dialog {
    /// Connection 1: the flow P1 opened for the INVITE.
    invite: Sent,
    /// Connection 1 as P2 accepted it.
    at_p2: Seen,
    /// The route set the UAS side (behind P2) keeps for the dialog.
    route_set: Vec<String>,
}

/// P1's Record-Route URI: the host its certificate proves, and its listening port (5061 in the
/// netns version, where it is left out).
fn p1_record_route(f: &Fig) -> String {
    format!("sips:p1.example.com:{};lr", f.p1.tls.port())
}

/// INVITE (record-routed by P1) → 200 → ACK, all over connection 1.
async fn set_up_dialog(f: &mut Fig, call: &str) -> Dialog {
    let invite = forwarded("INVITE", "sips:bob@example.net", "example.com", call, 1);
    let invite = with_record_route(&invite, &p1_record_route(f));
    let sent =
        f.p1.endpoint
            .send_request(
                "example.com",
                &sips("example.net"),
                &invite,
                &format!("z9hG4bK{call}i"),
            )
            .await
            .expect("INVITE P1 -> P2");
    assert!(!sent.reused, "the INVITE opens connection 1");
    let at_p2 = f.p2.next_request().await;
    assert_eq!(at_p2.message.method(), Some("INVITE"));
    let route_set = uas_route_set(&at_p2.message);
    assert_eq!(route_set, [p1_record_route(f)], "P1 record-routed");
    let ok = f.p1.next_response().await;
    assert_eq!(ok.message.status_code(), Some(200));
    assert_eq!(ok.flow, sent.flow, "the 200 comes back over connection 1");

    let ack = forwarded("ACK", "sips:bob@example.net", "example.com", call, 1);
    let a =
        f.p1.endpoint
            .send_request(
                "example.com",
                &sips("example.net"),
                &ack,
                &format!("z9hG4bK{call}a"),
            )
            .await
            .expect("ACK P1 -> P2");
    assert!(a.reused, "the ACK reuses connection 1");
    assert_eq!(a.flow, sent.flow);
    let at_p2_ack = f.p2.next_request().await;
    assert_eq!(at_p2_ack.message.method(), Some("ACK"));
    assert_eq!(at_p2_ack.flow, at_p2.flow);
    Dialog {
        invite: sent,
        at_p2,
        route_set,
    }
}

/// The far side's BYE, forwarded by P2 to the top of the dialog's route set.
async fn bye_from_far_side(f: &mut Fig, d: &Dialog, call: &str) -> (Sent, Seen) {
    let bye = in_dialog(
        "BYE",
        "sips:alice@ua.example.com",
        "example.net",
        call,
        2,
        &d.route_set,
    );
    let hop = next_hop(&bye);
    assert_eq!(
        hop.aus(),
        "p1.example.com",
        "the next hop is the Route URI, not the Request-URI"
    );
    let sent =
        f.p2.endpoint
            .send_request("example.net", &hop, &bye, &format!("z9hG4bK{call}b"))
            .await
            .expect("BYE P2 -> P1");
    assert_eq!(sent.aus, "p1.example.com");
    assert_eq!(sent.target.addr, f.p1.tls, "the Route URI resolves to P1");
    let at_p1 = f.p1.next_request().await;
    assert_eq!(at_p1.message.method(), Some("BYE"));
    let ok = f.p2.next_response().await;
    assert_eq!(ok.message.status_code(), Some(200));
    assert_eq!(
        ok.flow, sent.flow,
        "the 200 to the BYE over the BYE's connection"
    );
    (sent, at_p1)
}

#[tokio::test]
async fn figure3_without_alias_bye_opens_a_second_connection() {
    let mut f = figure(false, TLS13).await;
    let d = set_up_dialog(&mut f, "g3a").await;
    assert_eq!(d.at_p2.decision, None, "no alias in P1's Via");
    let (bye, at_p1) = bye_from_far_side(&mut f, &d, "g3a").await;
    assert!(!bye.reused, "without alias P2 opens connection 2");
    assert_ne!(bye.flow, d.at_p2.flow);
    assert_ne!(at_p1.flow, d.invite.flow, "the BYE arrives on connection 2");
    assert_eq!(f.p1.opened(), (1, 1), "P1: connection 1 opened, 2 accepted");
    assert_eq!(f.p2.opened(), (1, 1), "P2: connection 1 accepted, 2 opened");
    assert_eq!(f.p1.transport.stats().stream_flows, 2);
    assert_eq!(f.p2.transport.stats().stream_flows, 2);

    // Each side only has the row of the connection it opened (RFC 5923 §8.1); no inbound
    // rows, since nobody offered an alias.
    assert_eq!(
        f.p1.endpoint.dump(),
        p1_tables(f.p2.tls, d.invite.flow, RowOrigin::Outbound)
    );
    assert_eq!(
        f.p2.endpoint.dump(),
        p2_tables(f.p1.tls, bye.flow, RowOrigin::Outbound)
    );
}

#[tokio::test]
async fn figure3_with_alias_bye_reuses_connection_one() {
    let mut f = figure(true, TLS13).await;
    let d = set_up_dialog(&mut f, "g3b").await;
    assert_eq!(d.at_p2.decision, Some(AliasDecision::Added));
    let (bye, at_p1) = bye_from_far_side(&mut f, &d, "g3b").await;
    assert!(bye.reused, "P2 reuses P1's connection for the BYE");
    assert_eq!(bye.flow, d.at_p2.flow);
    assert_eq!(at_p1.flow, d.invite.flow, "the BYE arrives on connection 1");
    assert_eq!(f.p1.opened(), (0, 1), "one connection in all");
    assert_eq!(f.p2.opened(), (1, 0));
    assert_eq!(f.p1.transport.stats().stream_flows, 1);
    assert_eq!(f.p2.transport.stats().stream_flows, 1);

    // RFC 5923 §5: P1's row for P2 (outbound), P2's row for P1 (inbound, port from the Via).
    assert_eq!(
        f.p1.endpoint.dump(),
        p1_tables(f.p2.tls, d.invite.flow, RowOrigin::Outbound)
    );
    assert_eq!(
        f.p2.endpoint.dump(),
        p2_tables(f.p1.tls, d.at_p2.flow, RowOrigin::Inbound)
    );
    let c = f.p2.endpoint.counters();
    assert_eq!(c.rows, 1);
    assert_eq!(c.reuses, 1, "the BYE was the one reuse at P2");
}

/// The identity check is on the Route URI's host: a route set naming a host P1's certificate
/// does not prove (same address and port) never reuses connection 1.
#[tokio::test]
async fn figure3_route_uri_not_proven_by_p1_is_not_reused() {
    let mut f = figure(true, TLS13).await;
    let d = set_up_dialog(&mut f, "g3c").await;
    assert_eq!(d.at_p2.decision, Some(AliasDecision::Added));
    let route = format!("sips:127.0.0.1:{};lr", f.p1.tls.port());
    let bye = in_dialog(
        "BYE",
        "sips:alice@ua.example.com",
        "example.net",
        "g3c",
        2,
        &[route],
    );
    let hop = next_hop(&bye);
    assert_eq!(hop.aus(), "127.0.0.1");
    // Same {IP, port, TLS} as P2's row for P1, but the AUS is the address, which P1's
    // certificate does not name: no reuse, and the new connection's handshake fails on it.
    assert_eq!(
        f.p2.endpoint.lookup(
            "example.net",
            &sipwire::alias::AliasKey::new(
                f.p1.tls.ip(),
                f.p1.tls.port(),
                sipwire::TransportKind::Tls
            ),
            "127.0.0.1"
        ),
        None
    );
    let r =
        f.p2.endpoint
            .send_request("example.net", &hop, &bye, "z9hG4bKg3cb")
            .await;
    let e = r.expect_err("P1's certificate does not prove 127.0.0.1");
    assert!(
        matches!(e, sipwire::endpoint::ReuseError::Transport(_)),
        "the handshake fails: {e}"
    );
    assert_eq!(f.p1.opened(), (0, 1));
}
