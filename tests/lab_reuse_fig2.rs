//! RFC 5923 Figure 2 and Figure 4 in network namespaces with the RFC's addresses: P1
//! (example.com) 192.0.2.1, P2 (example.net) 192.0.2.128, TLS on 5061, a real DNS server
//! (dnsmasq) serving the SRV records. Needs root (lab VM).

mod support;

use sipwire::alias::{AliasDecision, RowOrigin};
use sipwire::TransportKind;
use support::fig::{p1_tables, p2_tables};
use support::lab::fig::{figure, figure_with, FigOptions, P1, P2};

#[tokio::test]
async fn lab_figure2_without_alias_two_connections() {
    let l = figure(false);
    let a = l.p1.send("example.com", "example.net", "w1").await;
    let at_p2 = l.p2.next_request().await;
    assert_eq!(at_p2.decision, None);
    let b = l.p2.send("example.net", "example.com", "w2").await;
    assert!(!b.reused);
    let at_p1 = l.p1.next_request().await;
    assert_ne!(at_p1.flow, a.flow);
    assert_eq!(l.p1.state().await.opened, (1, 1));
    assert_eq!(l.p2.state().await.opened, (1, 1));
    l.p1.stop().await;
    l.p2.stop().await;
}

#[tokio::test]
async fn lab_figure2_with_alias_one_connection_and_figure4_rows() {
    let l = figure(true);
    let a = l.p1.send("example.com", "example.net", "a1").await;
    let at_p2 = l.p2.next_request().await;
    assert_eq!(at_p2.decision, Some(AliasDecision::Added));
    let b = l.p2.send("example.net", "example.com", "a2").await;
    assert!(b.reused);
    assert_eq!(b.flow, at_p2.flow);
    let at_p1 = l.p1.next_request().await;
    assert_eq!(at_p1.flow, a.flow);
    let s1 = l.p1.state().await;
    let s2 = l.p2.state().await;
    assert_eq!(s1.opened, (0, 1));
    assert_eq!(s2.opened, (1, 0));
    // RFC 5923 Figure 4, exactly.
    assert_eq!(s1.dump, p1_tables(P2, a.flow, RowOrigin::Outbound));
    assert_eq!(s2.dump, p2_tables(P1, at_p2.flow, RowOrigin::Inbound));
    l.p1.stop().await;
    l.p2.stop().await;
}

/// The same over TLS over SCTP: one association carries both directions, and the rows name
/// the TLS-SCTP transport with the association as the descriptor.
#[tokio::test]
async fn lab_figure2_over_tls_sctp_with_alias_one_association_and_figure4_rows() {
    let l = figure_with(
        FigOptions {
            transport: TransportKind::TlsSctp,
            ..FigOptions::new(true)
        },
        |_| {},
    );
    let a = l.p1.send("example.com", "example.net", "s1").await;
    assert_eq!(a.flow.kind(), TransportKind::TlsSctp);
    let at_p2 = l.p2.next_request().await;
    assert_eq!(at_p2.decision, Some(AliasDecision::Added));
    let b = l.p2.send("example.net", "example.com", "s2").await;
    assert!(b.reused);
    assert_eq!(b.flow, at_p2.flow);
    let at_p1 = l.p1.next_request().await;
    assert_eq!(
        at_p1.flow, a.flow,
        "P2's request came back on P1's association"
    );
    let over_sctp = |mut d: Vec<sipwire::alias::TableDump>| {
        for t in &mut d {
            for r in &mut t.rows {
                r.transport = TransportKind::TlsSctp;
            }
        }
        d
    };
    assert_eq!(l.p1.state().await.opened, (0, 1));
    assert_eq!(l.p2.state().await.opened, (1, 0));
    assert_eq!(
        l.p1.state().await.dump,
        over_sctp(p1_tables(P2, a.flow, RowOrigin::Outbound))
    );
    assert_eq!(
        l.p2.state().await.dump,
        over_sctp(p2_tables(P1, at_p2.flow, RowOrigin::Inbound))
    );
    l.p1.stop().await;
    l.p2.stop().await;
}
