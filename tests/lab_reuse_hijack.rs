//! RFC 5923 hijack attempts in network namespaces: attackers on P1's host (same IP
//! 192.0.2.1, other ports) claim P1's alias at P2 (192.0.2.128). None gets a row that carries
//! example.com's requests; P2's requests to example.com reach the real P1. Over TLS (RFC 5923's
//! figures) and again over TLS over SCTP (RFC 5923 names it as a transport alias rows cover).
//! Needs root (lab VM).

mod support;

use sipwire::alias::{AliasDecision, IgnoreReason};
use sipwire::endpoint::LocalDomain;
use sipwire::transport::{Target, TransportKind};
use std::net::SocketAddr;
use std::sync::Arc;
use support::fig::forged;
use support::lab::fig::{figure_with, ip, FigOptions, Lab};
use support::lab::*;

/// The figure with alias on both sides over `secure`, and P2 also on plain TCP.
fn lab(secure: TransportKind) -> Lab {
    figure_with(
        FigOptions {
            p2_tcp: true,
            transport: secure,
            ..FigOptions::new(true)
        },
        |_| {},
    )
}

/// The Via token of `secure`.
fn token(secure: TransportKind) -> &'static str {
    secure.via_token()
}

/// An attacker on P1's host and address, listening on `port`, with this client certificate.
fn attacker(l: &Lab, port: u16, cert: Option<&[&str]>, secure: TransportKind) -> Agent {
    let own = l.ca.sip_leaf(&["attacker.example.org"]);
    let mut s = spec(
        "192.0.2.1",
        &own,
        vec![LocalDomain::new("example.org", "attacker.example.org")],
    );
    s.port = port;
    s.client_cert = cert.map(|names| l.ca.sip_leaf(names));
    s.add_alias = false;
    s.transport = secure;
    Agent::start(&l.h1, Arc::clone(&l.ca), s)
}

fn p2_tls(secure: TransportKind) -> Target {
    Target::new(secure, SocketAddr::new(ip("192.0.2.128"), SIPS_PORT))
        .with_server_name("example.net")
}

#[tokio::test]
async fn lab_hijack_attempts_get_no_usable_row() {
    hijack_attempts_get_no_usable_row(TransportKind::Tls).await;
}

#[tokio::test]
async fn lab_hijack_attempts_over_tls_sctp_get_no_usable_row() {
    hijack_attempts_get_no_usable_row(TransportKind::TlsSctp).await;
}

async fn hijack_attempts_get_no_usable_row(secure: TransportKind) {
    let l = lab(secure);
    // (attacker port, client certificate names, transport to P2, expected refusal)
    type Case = (
        u16,
        Option<&'static [&'static str]>,
        TransportKind,
        IgnoreReason,
    );
    let cases: [Case; 3] = [
        (
            5071,
            None,
            TransportKind::Tls,
            IgnoreReason::NoClientCertificate,
        ),
        (5072, None, TransportKind::Tcp, IgnoreReason::NotTlsFamily),
        (
            5073,
            Some(&["example.org"]),
            TransportKind::Tls,
            IgnoreReason::SentByNotAuthenticated,
        ),
    ];
    let mut attackers = Vec::new();
    for (i, (port, cert, kind, reason)) in cases.into_iter().enumerate() {
        let a = attacker(&l, port, cert, secure);
        let (to, via) = match kind {
            TransportKind::Tcp => (
                Target::new(TransportKind::Tcp, SocketAddr::new(ip("192.0.2.128"), 5060)),
                "TCP",
            ),
            _ => (p2_tls(secure), token(secure)),
        };
        a.raw(to, forged(via, "p1.example.com", &format!("h{i}")))
            .await;
        let seen = l.p2.next_request().await;
        assert_eq!(
            seen.decision,
            Some(AliasDecision::Ignored(reason)),
            "case {i}"
        );
        attackers.push(a);
    }
    assert!(l.p2.state().await.dump.is_empty(), "no row at all");
    // An attacker authenticated as example.org, numeric sent-by = P1's address and port:
    // a row under example.org's name that never carries example.com's requests.
    let a = attacker(&l, 5074, Some(&["example.org"]), secure);
    a.raw(
        p2_tls(secure),
        forged(token(secure), "192.0.2.1:5061", "h9"),
    )
    .await;
    assert_eq!(
        l.p2.next_request().await.decision,
        Some(AliasDecision::Added)
    );
    attackers.push(a);

    let s = l.p2.send("example.net", "example.com", "real1").await;
    assert!(!s.reused);
    assert_eq!(l.p1.next_request().await.call_id, "real1", "the real P1");
    let s = l.p2.send("example.net", "example.com", "real2").await;
    assert!(s.reused, "the verified connection to P1");
    assert_eq!(l.p1.next_request().await.call_id, "real2");
    let st = l.p2.state().await;
    assert_eq!(st.counters.ignored.total(), 3);
    for a in attackers {
        a.stop().await;
    }
    l.p1.stop().await;
    l.p2.stop().await;
}

#[tokio::test]
async fn lab_hijack_second_connection_from_same_ip_claiming_same_alias() {
    second_connection_claiming_same_alias(TransportKind::Tls).await;
}

#[tokio::test]
async fn lab_hijack_second_association_over_tls_sctp_claiming_same_alias() {
    second_connection_claiming_same_alias(TransportKind::TlsSctp).await;
}

async fn second_connection_claiming_same_alias(secure: TransportKind) {
    let l = lab(secure);
    let a = l.p1.send("example.com", "example.net", "s1").await;
    let legit = l.p2.next_request().await;
    assert_eq!(legit.decision, Some(AliasDecision::Added));
    let att = attacker(&l, 5071, Some(&["p1.example.com"]), secure);
    att.raw(
        p2_tls(secure),
        forged(token(secure), "p1.example.com", "s2"),
    )
    .await;
    let seen = l.p2.next_request().await;
    assert_eq!(
        seen.decision,
        Some(AliasDecision::Ignored(
            IgnoreReason::AlreadyAliasedByOtherFlow
        ))
    );
    let s = l.p2.send("example.net", "example.com", "s3").await;
    assert!(s.reused);
    assert_eq!(s.flow, legit.flow);
    let at_p1 = l.p1.next_request().await;
    assert_eq!(at_p1.call_id, "s3");
    assert_eq!(at_p1.flow, a.flow);
    att.stop().await;
    l.p1.stop().await;
    l.p2.stop().await;
}
