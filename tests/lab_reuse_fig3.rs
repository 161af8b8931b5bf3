//! RFC 5923 §4 Figure 3 in network namespaces with the RFC's addresses: P1 (example.com)
//! 192.0.2.1, P2 (example.net) 192.0.2.128, TLS on 5061, a real DNS server (dnsmasq). P1
//! forwards an INVITE to P2 and record-routes with `<sips:p1.example.com;lr>`; 200 and ACK
//! use connection 1. The far side's BYE leaves P2 toward the top of the UAS route set: P2
//! resolves the Route URI through the lab DNS (no SRV for p1.example.com: its A record, port
//! 5061) and verifies against its host, p1.example.com. Without `alias` the BYE opens
//! connection 2; with it, connection 1 carries it. Needs root (lab VM).

mod support;

use sipwire::alias::{AliasDecision, RowOrigin};
use std::net::SocketAddr;
use support::fig::{p1_tables, p2_tables};
use support::lab::fig::{figure, ip, Lab, P1, P2};
use support::lab::{SeenInfo, SentInfo};
use support::sip::{forwarded, in_dialog, next_hop, sips, uas_route_set, with_record_route};

/// What P1 puts in Record-Route: the name its certificate proves, default port 5061.
const P1_RECORD_ROUTE: &str = "sips:p1.example.com;lr";

/// INVITE (record-routed by P1) → 200 → ACK over connection 1. Returns the INVITE as sent,
/// the INVITE as P2 saw it, and the UAS route set.
async fn set_up_dialog(l: &Lab, call: &str) -> (SentInfo, SeenInfo, Vec<String>) {
    let invite = forwarded("INVITE", "sips:bob@example.net", "example.com", call, 1);
    let invite = with_record_route(&invite, P1_RECORD_ROUTE);
    let sent =
        l.p1.send_message(
            "example.com",
            sips("example.net"),
            invite,
            &format!("z9hG4bK{call}i"),
        )
        .await;
    assert!(!sent.reused, "the INVITE opens connection 1");
    assert_eq!(sent.answered_on, Some(sent.flow), "200 over connection 1");
    let at_p2 = l.p2.next_request().await;
    assert_eq!(at_p2.message.method(), Some("INVITE"));
    let route_set = uas_route_set(&at_p2.message);
    assert_eq!(route_set, [P1_RECORD_ROUTE]);

    let ack = forwarded("ACK", "sips:bob@example.net", "example.com", call, 1);
    let a =
        l.p1.send_message(
            "example.com",
            sips("example.net"),
            ack,
            &format!("z9hG4bK{call}a"),
        )
        .await;
    assert!(a.reused, "the ACK reuses connection 1");
    assert_eq!(a.flow, sent.flow);
    let at_p2_ack = l.p2.next_request().await;
    assert_eq!(at_p2_ack.message.method(), Some("ACK"));
    assert_eq!(at_p2_ack.flow, at_p2.flow);
    (sent, at_p2, route_set)
}

/// The far side's BYE, sent by P2 to the next hop its Route header names.
async fn bye(l: &Lab, route_set: &[String], call: &str) -> (SentInfo, SeenInfo) {
    let bye = in_dialog(
        "BYE",
        "sips:alice@ua.example.com",
        "example.net",
        call,
        2,
        route_set,
    );
    let hop = next_hop(&bye);
    assert_eq!(hop.aus(), "p1.example.com", "the next hop is the Route URI");
    let sent =
        l.p2.send_message("example.net", hop, bye, &format!("z9hG4bK{call}b"))
            .await;
    assert_eq!(sent.aus, "p1.example.com");
    assert_eq!(
        sent.target.addr,
        SocketAddr::new(ip("192.0.2.1"), 5061),
        "the lab DNS resolves the Route URI to P1"
    );
    assert_eq!(
        sent.answered_on,
        Some(sent.flow),
        "200 over the BYE's connection"
    );
    let at_p1 = l.p1.next_request().await;
    assert_eq!(at_p1.message.method(), Some("BYE"));
    (sent, at_p1)
}

#[tokio::test]
async fn lab_figure3_without_alias_bye_opens_a_second_connection() {
    let l = figure(false);
    let (invite, at_p2, route_set) = set_up_dialog(&l, "h3a").await;
    assert_eq!(at_p2.decision, None);
    let (b, at_p1) = bye(&l, &route_set, "h3a").await;
    assert!(!b.reused, "without alias P2 opens connection 2");
    assert_ne!(b.flow, at_p2.flow);
    assert_ne!(at_p1.flow, invite.flow);
    let s1 = l.p1.state().await;
    let s2 = l.p2.state().await;
    assert_eq!(s1.opened, (1, 1), "2 connections: P1 opened 1, accepted 2");
    assert_eq!(s2.opened, (1, 1));
    assert_eq!(s1.stream_flows, 2);
    assert_eq!(s2.stream_flows, 2);
    // Only the rows of the connections each side opened; nobody offered an alias.
    assert_eq!(s1.dump, p1_tables(P2, invite.flow, RowOrigin::Outbound));
    assert_eq!(s2.dump, p2_tables(P1, b.flow, RowOrigin::Outbound));
    l.p1.stop().await;
    l.p2.stop().await;
}

#[tokio::test]
async fn lab_figure3_with_alias_bye_reuses_connection_one() {
    let l = figure(true);
    let (invite, at_p2, route_set) = set_up_dialog(&l, "h3b").await;
    assert_eq!(at_p2.decision, Some(AliasDecision::Added));
    let (b, at_p1) = bye(&l, &route_set, "h3b").await;
    assert!(b.reused, "P2 reuses P1's connection for the BYE");
    assert_eq!(b.flow, at_p2.flow);
    assert_eq!(at_p1.flow, invite.flow, "the BYE arrives on connection 1");
    let s1 = l.p1.state().await;
    let s2 = l.p2.state().await;
    assert_eq!(s1.opened, (0, 1), "1 connection in all");
    assert_eq!(s2.opened, (1, 0));
    assert_eq!(s1.stream_flows, 1);
    assert_eq!(s2.stream_flows, 1);
    // RFC 5923 §5, exactly: P1's row for P2, P2's row for P1.
    assert_eq!(s1.dump, p1_tables(P2, invite.flow, RowOrigin::Outbound));
    assert_eq!(s2.dump, p2_tables(P1, at_p2.flow, RowOrigin::Inbound));
    assert_eq!(s2.counters.reuses, 1, "the BYE was P2's one reuse");
    l.p1.stop().await;
    l.p2.stop().await;
}
