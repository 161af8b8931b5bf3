//! Hijack attempts against RFC 5923 reuse that must fail (checklist 41-43), live on loopback.
//! P1 (example.com) is 127.0.0.1, P2 (example.net) is 127.0.0.2; the attacker connects from
//! P1's IP address and claims P1's alias. In every case P2's table gets no row that would
//! carry example.com's requests, the refusal is counted by reason, and P2's next request to
//! sips:example.com reaches the real P1, never the attacker.

mod support;

use bytes::Bytes;
use sipwire::alias::{AliasDecision, AliasPolicy, IgnoreReason};
use sipwire::resolve::{Scheme, SipTarget};
use sipwire::transport::{Target, TransportKind};
use support::fig::{figure_with, forged, Fig, FigSpec};
use support::pki::{Leaf, Spec};
use support::reuse::*;
use support::sip::*;

/// The figure with alias on both sides, P2 also on plain TCP and deciding with `policy`.
async fn lab(policy: AliasPolicy) -> Fig {
    figure_with(FigSpec {
        p2_tcp: true,
        p2_policy: policy,
        ..FigSpec::new(true, TLS13)
    })
    .await
}

/// An attacker on P1's IP address presenting `cert` (or none) as a TLS client.
async fn attacker(l: &Fig, cert: Option<&Leaf>) -> Peer {
    let own = l.ca.sip_leaf(&["attacker.example.org"]);
    bind(
        "127.0.0.1",
        l.ca.server_config(&own, &[], TLS13),
        l.ca.client_config(cert, TLS13),
        false,
    )
    .await
    .start(
        None,
        config(vec![domain("example.org", "attacker.example.org")], false),
    )
}

async fn send_forged(att: &Peer, to: Target, bytes: Bytes) {
    att.transport
        .send_to(&to, bytes)
        .await
        .expect("attacker connects");
}

fn tls_to(l: &Fig) -> Target {
    Target::new(TransportKind::Tls, l.p2.tls).with_server_name("example.net")
}

/// P2 sends to sips:example.com; asserts it reaches the real P1 and not the attacker.
async fn p2_reaches_real_p1(l: &mut Fig, att: &mut Peer, call: &str) -> bool {
    let r = forwarded("OPTIONS", "sips:example.com", "example.net", call, 1);
    let target = sips("example.com");
    let s =
        l.p2.endpoint
            .send_request("example.net", &target, &r, &format!("z9hG4bK{call}"))
            .await
            .expect("P2 -> example.com");
    let at_p1 = l.p1.next_request().await;
    assert_eq!(at_p1.message.call_id(), call, "the real P1 got it");
    while let Ok(seen) = att.seen.try_recv() {
        assert!(
            !seen.message.is_request(),
            "the attacker received a request: {:?}",
            seen.message
        );
    }
    s.reused
}

fn sent_by_p1(l: &Fig) -> String {
    format!("p1.example.com:{}", l.p1.tls.port())
}

#[tokio::test]
async fn hijack_alias_without_client_certificate_is_ignored() {
    let mut l = lab(AliasPolicy::accept_all()).await;
    let mut att = attacker(&l, None).await;
    send_forged(&att, tls_to(&l), forged("TLS", &sent_by_p1(&l), "h1")).await;
    let seen = l.p2.next_request().await;
    assert_eq!(
        seen.decision,
        Some(AliasDecision::Ignored(IgnoreReason::NoClientCertificate))
    );
    assert!(
        l.p2.endpoint.dump().is_empty(),
        "§9.2: MUST NOT update the table"
    );
    assert!(!p2_reaches_real_p1(&mut l, &mut att, "h1b").await);
    let c = l.p2.endpoint.counters();
    assert_eq!(c.ignored.get(IgnoreReason::NoClientCertificate), 1);
}

#[tokio::test]
async fn hijack_alias_over_plain_tcp_is_ignored() {
    let mut l = lab(AliasPolicy::accept_all()).await;
    let p2_tcp = l.p2.tcp.expect("P2 listens on TCP");
    let mut att = attacker(&l, None).await;
    let tcp = Target::new(TransportKind::Tcp, p2_tcp);
    // Claiming TLS in the Via, and honestly TCP: both refused, plain TCP is never aliased.
    send_forged(&att, tcp.clone(), forged("TLS", &sent_by_p1(&l), "t1")).await;
    send_forged(&att, tcp, forged("TCP", &sent_by_p1(&l), "t2")).await;
    for _ in 0..2 {
        let seen = l.p2.next_request().await;
        assert_eq!(
            seen.decision,
            Some(AliasDecision::Ignored(IgnoreReason::NotTlsFamily))
        );
    }
    assert!(l.p2.endpoint.dump().is_empty());
    assert!(!p2_reaches_real_p1(&mut l, &mut att, "t3").await);
    assert_eq!(
        l.p2.endpoint
            .counters()
            .ignored
            .get(IgnoreReason::NotTlsFamily),
        2
    );
}

#[tokio::test]
async fn hijack_certificate_for_example_org_claiming_p1_example_com_is_ignored() {
    let mut l = lab(AliasPolicy::accept_all()).await;
    let org = l.ca.sip_leaf(&["example.org"]);
    let mut att = attacker(&l, Some(&org)).await;
    send_forged(&att, tls_to(&l), forged("TLS", &sent_by_p1(&l), "o1")).await;
    let seen = l.p2.next_request().await;
    assert_eq!(
        seen.decision,
        Some(AliasDecision::Ignored(IgnoreReason::SentByNotAuthenticated))
    );
    assert!(l.p2.endpoint.dump().is_empty());
    assert!(!p2_reaches_real_p1(&mut l, &mut att, "o2").await);
    assert_eq!(
        l.p2.endpoint
            .counters()
            .ignored
            .get(IgnoreReason::SentByNotAuthenticated),
        1
    );
}

#[tokio::test]
async fn hijack_second_connection_from_same_ip_claiming_same_alias_is_ignored() {
    let mut l = lab(AliasPolicy::accept_all()).await;
    // The real P1 connects first and is aliased.
    let r = forwarded("OPTIONS", "sips:example.net", "example.com", "s1", 1);
    let target = sips("example.net");
    l.p1.endpoint
        .send_request("example.com", &target, &r, "z9hG4bKs1")
        .await
        .expect("P1 -> P2");
    let legit = l.p2.next_request().await;
    assert_eq!(legit.decision, Some(AliasDecision::Added));
    let before = l.p2.endpoint.dump();

    // A second connection from the same IP, with a certificate proving p1.example.com only
    // (overlapping, not the same peer): the authenticated row is kept.
    let partial = l.ca.sip_leaf(&["p1.example.com"]);
    let mut att = attacker(&l, Some(&partial)).await;
    send_forged(&att, tls_to(&l), forged("TLS", &sent_by_p1(&l), "s2")).await;
    let seen = l.p2.next_request().await;
    assert_ne!(seen.flow, legit.flow);
    assert_eq!(
        seen.decision,
        Some(AliasDecision::Ignored(
            IgnoreReason::AlreadyAliasedByOtherFlow
        ))
    );
    assert_eq!(l.p2.endpoint.dump(), before, "row unchanged");
    assert!(
        p2_reaches_real_p1(&mut l, &mut att, "s3").await,
        "still P1's connection"
    );
    assert_eq!(l.p2.opened(), (2, 0));
}

/// A connection authenticated as example.org, aliased at the very address example.com
/// resolves to: it carries nothing for example.com (§9.1: the URI's domain must match).
#[tokio::test]
async fn hijack_connection_not_authenticated_for_the_domain_is_never_used() {
    let mut l = lab(AliasPolicy::accept_all()).await;
    let org = l.ca.sip_leaf(&["example.org"]);
    let mut att = attacker(&l, Some(&org)).await;
    // Numeric sent-by = its real source IP, P1's port: accepted, under example.org's name.
    let sent_by = format!("127.0.0.1:{}", l.p1.tls.port());
    send_forged(&att, tls_to(&l), forged("TLS", &sent_by, "n1")).await;
    let seen = l.p2.next_request().await;
    assert_eq!(seen.decision, Some(AliasDecision::Added));
    assert!(
        !p2_reaches_real_p1(&mut l, &mut att, "n2").await,
        "a new connection to the real P1"
    );
    let dump = l.p2.endpoint.dump();
    assert_eq!(dump[0].rows.len(), 2);
    assert_eq!(dump[0].rows[0].key(), dump[0].rows[1].key());
    assert_eq!(l.p2.opened(), (1, 1));
    // And again: the verified connection to P1 is reused, the attacker's never.
    assert!(p2_reaches_real_p1(&mut l, &mut att, "n3").await);
}

#[tokio::test]
async fn policy_off_proceeds_as_if_alias_were_absent() {
    let mut l = lab(AliasPolicy::refuse_all()).await;
    let r = forwarded("OPTIONS", "sips:example.net", "example.com", "p1", 1);
    let target = sips("example.net");
    l.p1.endpoint
        .send_request("example.com", &target, &r, "z9hG4bKp1")
        .await
        .expect("P1 -> P2");
    let seen = l.p2.next_request().await;
    assert_eq!(
        seen.decision,
        Some(AliasDecision::Ignored(IgnoreReason::PolicyRefused))
    );
    l.p1.next_response().await;
    let mut att = attacker(&l, None).await;
    assert!(!p2_reaches_real_p1(&mut l, &mut att, "p2").await);
    assert_eq!(l.p2.opened(), (1, 1), "two connections, as without alias");
    assert_eq!(
        l.p2.endpoint
            .counters()
            .ignored
            .get(IgnoreReason::PolicyRefused),
        1
    );
}

/// §8.1/§9.3: over plain TCP our Via carries no `alias` and nothing is ever aliased, on
/// either side.
#[tokio::test]
async fn plain_tcp_requests_carry_no_alias_and_are_never_aliased() {
    let mut l = lab(AliasPolicy::accept_all()).await;
    let target = SipTarget::new(Scheme::Sip, "example.net", None, Some("tcp")).expect("target");
    for i in 0..2 {
        let r = forwarded(
            "OPTIONS",
            "sip:example.net;transport=tcp",
            "example.com",
            &format!("tcp{i}"),
            1,
        );
        let s =
            l.p1.endpoint
                .send_request("example.com", &target, &r, &format!("z9hG4bKtcp{i}"))
                .await
                .expect("P1 -> P2 over TCP");
        assert_eq!(s.flow.kind(), TransportKind::Tcp);
        assert!(!s.reused, "plain TCP is never an alias reuse");
        let seen = l.p2.next_request().await;
        let via = seen.message.top_via().expect("via");
        assert_eq!(via.transport_raw, "TCP");
        assert!(!via.alias, "no alias over TCP");
        assert_eq!(seen.decision, None);
    }
    assert!(l.p1.endpoint.dump().is_empty());
    assert!(l.p2.endpoint.dump().is_empty());
    assert_eq!(
        l.p1.opened(),
        (0, 1),
        "RFC 3261 reuse of the TCP connection still applies"
    );
}

/// A verified certificate without a SIP identity (only a wildcard name, RFC 5922 §7.2):
/// refused as `no_usable_identity`.
#[tokio::test]
async fn certificate_without_usable_identity_is_ignored() {
    let mut l = lab(AliasPolicy::accept_all()).await;
    let wild = l.ca.leaf(&Spec::dns(&["*.example.com"]));
    let mut att = attacker(&l, Some(&wild)).await;
    send_forged(&att, tls_to(&l), forged("TLS", &sent_by_p1(&l), "w1")).await;
    assert_eq!(
        l.p2.next_request().await.decision,
        Some(AliasDecision::Ignored(IgnoreReason::NoUsableIdentity))
    );
    assert!(l.p2.endpoint.dump().is_empty());
    assert!(!p2_reaches_real_p1(&mut l, &mut att, "w2").await);
}
