//! RFC 5923 §9.3 (checklist 43) live on loopback: P1 hosts example.com and example.net on one
//! address and port (127.0.0.1, certificates selected by SNI); P2 (example.org, 127.0.0.2)
//! has the example.com connection P1 opened aliased. A request from P2 to example.net
//! resolves to the same {IP, port, TLS} but must NOT reuse it: two rows, two connections.
//! P1 keeps one alias table per local domain and never sends for one domain over the other's
//! connection.

mod support;

use sipwire::alias::{AliasDecision, AliasKey, RowOrigin};
use sipwire::TransportKind;
use support::dns::{start_dns, TestDns, Zone};
use support::pki::Ca;
use support::reuse::*;
use support::sip::*;

/// P1 serving example.com and example.net on 127.0.0.1 (server certificate chosen by SNI), P2
/// serving example.org on 127.0.0.2, and the DNS server publishing the three domains. With
/// `per_domain_client`, P1 presents each local domain's own certificate when it connects;
/// otherwise example.com's for both.
async fn virtual_pair(per_domain_client: bool) -> (Peer, Peer, TestDns) {
    let ca = Ca::new("reuse CA");
    let com = ca.sip_leaf(&["example.com", "p1.example.com"]);
    let net = ca.sip_leaf(&["example.net", "p1.example.net"]);
    let org = ca.sip_leaf(&["example.org", "p2.example.org"]);
    let b1 = bind(
        "127.0.0.1",
        ca.server_config(&com, &[("example.com", &com), ("example.net", &net)], TLS13),
        ca.client_config((!per_domain_client).then_some(&com), TLS13),
        false,
    )
    .await;
    if per_domain_client {
        b1.transport
            .set_tls_client_for("example.com", ca.client_config(Some(&com), TLS13));
        b1.transport
            .set_tls_client_for("example.net", ca.client_config(Some(&net), TLS13));
    }
    let b2 = bind(
        "127.0.0.2",
        ca.server_config(&org, &[], TLS13),
        ca.client_config(Some(&org), TLS13),
        false,
    )
    .await;
    let p1_port = b1.tls.port();
    let dns = start_dns(vec![
        Zone::new("example.com.")
            .srv("_sips._tcp.example.com.", 0, 0, p1_port, "p1.example.com.")
            .a("p1.example.com.", "127.0.0.1"),
        Zone::new("example.net.")
            .srv("_sips._tcp.example.net.", 0, 0, p1_port, "p1.example.net.")
            .a("p1.example.net.", "127.0.0.1"),
        Zone::new("example.org.")
            .srv(
                "_sips._tcp.example.org.",
                0,
                0,
                b2.tls.port(),
                "p2.example.org.",
            )
            .a("p2.example.org.", "127.0.0.2"),
    ])
    .await;
    let p1 = b1.start(
        Some(dns.addr),
        config(
            vec![
                domain("example.com", "p1.example.com"),
                domain("example.net", "p1.example.net"),
            ],
            true,
        ),
    );
    let p2 = b2.start(
        Some(dns.addr),
        config(vec![domain("example.org", "p2.example.org")], true),
    );
    (p1, p2, dns)
}

#[tokio::test]
async fn section_9_3_virtual_domains_on_one_address_never_share_a_connection() {
    let (mut p1, mut p2, _dns) = virtual_pair(false).await;
    let p1_port = p1.tls.port();

    // A UA of example.com sends through P1 to example.org: P2 aliases P1's connection.
    let r = forwarded("OPTIONS", "sips:example.org", "example.com", "v1", 1);
    let s_com = p1
        .endpoint
        .send_request("example.com", &sips("example.org"), &r, "z9hG4bKv1")
        .await
        .expect("P1(example.com) -> P2");
    let at_p2 = p2.next_request().await;
    assert_eq!(at_p2.decision, Some(AliasDecision::Added));
    p1.next_response().await;

    // P2 -> example.com: reused.
    let r = forwarded("OPTIONS", "sips:example.com", "example.org", "v2", 1);
    let s = p2
        .endpoint
        .send_request("example.org", &sips("example.com"), &r, "z9hG4bKv2")
        .await
        .expect("P2 -> example.com");
    assert!(s.reused);
    assert_eq!(p1.next_request().await.flow, s_com.flow);
    p2.next_response().await;

    // P2 -> example.net: same resolved address, other identity: a new connection.
    let r = forwarded("OPTIONS", "sips:example.net", "example.org", "v3", 1);
    let s_net = p2
        .endpoint
        .send_request("example.org", &sips("example.net"), &r, "z9hG4bKv3")
        .await
        .expect("P2 -> example.net");
    assert!(
        !s_net.reused,
        "example.com's connection must not carry example.net's request"
    );
    assert_eq!(
        AliasKey::from(&s_net.target),
        AliasKey::new(
            "127.0.0.1".parse().expect("ip"),
            p1_port,
            TransportKind::Tls
        ),
        "the same resolved address as example.com"
    );
    let at_p1 = p1.next_request().await;
    assert_ne!(at_p1.flow, s_com.flow);
    assert_eq!(at_p1.decision, Some(AliasDecision::Added));
    p2.next_response().await;

    assert_eq!(p2.opened(), (1, 1), "P2: two connections to one address");
    assert_eq!(p1.opened(), (1, 1));
    let dump = p2.endpoint.dump();
    assert_eq!(dump.len(), 1);
    let rows = &dump[0].rows;
    assert_eq!(rows.len(), 2, "two rows at one address: {rows:?}");
    assert!(rows
        .iter()
        .all(|r| r.key() == AliasKey::from(&s_net.target)));
    assert_eq!(rows[0].identities, ["example.com", "p1.example.com"]);
    assert_eq!(rows[0].origin, RowOrigin::Inbound);
    assert_eq!(rows[1].identities, ["example.net", "p1.example.net"]);
    assert_eq!(rows[1].origin, RowOrigin::Outbound);

    // P1: one table per local domain; the example.net connection (SNI example.net) is in
    // example.net's table only.
    let d1 = p1.endpoint.dump();
    let domains: Vec<&str> = d1.iter().map(|t| t.local_domain.as_str()).collect();
    assert_eq!(domains, ["example.com", "example.net"]);
    assert_eq!(d1[0].rows.len(), 1);
    assert_eq!(d1[0].rows[0].descriptor, s_com.flow.to_string());
    assert_eq!(d1[1].rows.len(), 1);
    assert_eq!(d1[1].rows[0].descriptor, at_p1.flow.to_string());

    // P1 sending for example.net uses example.net's connection, for example.com its own:
    // never one domain's connection for the other.
    let r = forwarded("OPTIONS", "sips:example.org", "example.net", "v4", 1);
    let s = p1
        .endpoint
        .send_request("example.net", &sips("example.org"), &r, "z9hG4bKv4")
        .await
        .expect("P1(example.net) -> P2");
    assert!(s.reused);
    assert_eq!(s.flow, at_p1.flow);
    assert_eq!(p2.next_request().await.flow, s_net.flow);
    let r = forwarded("OPTIONS", "sips:example.org", "example.com", "v5", 2);
    let s = p1
        .endpoint
        .send_request("example.com", &sips("example.org"), &r, "z9hG4bKv5")
        .await
        .expect("P1(example.com) -> P2");
    assert_eq!(s.flow, s_com.flow);
    assert_eq!(p2.next_request().await.flow, at_p2.flow);
    assert_eq!(p1.opened(), (1, 1));
    assert_eq!(p2.opened(), (1, 1));
}

/// Each local domain connects with its own client certificate (`set_tls_client_for`) and its
/// own connection, even to the same peer; the peer aliases both (disjoint identities at one
/// address) and sends each domain's requests back over that domain's connection.
#[tokio::test]
async fn section_9_3_client_side_one_connection_and_certificate_per_local_domain() {
    let (mut p1, mut p2, _dns) = virtual_pair(true).await;
    let mut flows = Vec::new();
    for (i, local) in ["example.com", "example.net", "example.com", "example.net"]
        .iter()
        .enumerate()
    {
        let r = forwarded("OPTIONS", "sips:example.org", local, &format!("s{i}"), 1);
        let s = p1
            .endpoint
            .send_request(local, &sips("example.org"), &r, &format!("z9hG4bKs{i}"))
            .await
            .expect("P1 -> P2");
        let seen = p2.next_request().await;
        assert_eq!(seen.flow.kind(), sipwire::transport::TransportKind::Tls);
        if i < 2 {
            assert_eq!(seen.decision, Some(AliasDecision::Added), "{local}");
        }
        flows.push(s.flow);
    }
    assert_eq!(p1.opened(), (0, 2), "one connection per local domain");
    assert_ne!(flows[0], flows[1]);
    assert_eq!(flows[0], flows[2]);
    assert_eq!(flows[1], flows[3]);
    let d = p1.endpoint.dump();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].rows[0].descriptor, flows[0].to_string());
    assert_eq!(d[1].rows[0].descriptor, flows[1].to_string());
    // P2 aliased both, each under its own identities, at one address.
    let rows = &p2.endpoint.dump()[0].rows;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].identities, ["example.com", "p1.example.com"]);
    assert_eq!(rows[1].identities, ["example.net", "p1.example.net"]);
    // Backwards: each domain's requests over that domain's connection.
    for (domain, flow) in [("example.com", flows[0]), ("example.net", flows[1])] {
        let r = forwarded(
            "OPTIONS",
            &format!("sips:{domain}"),
            "example.org",
            domain,
            1,
        );
        let s = p2
            .endpoint
            .send_request(
                "example.org",
                &sips(domain),
                &r,
                &format!("z9hG4bKb{domain}"),
            )
            .await
            .expect("P2 -> P1");
        assert!(s.reused, "{domain}");
        assert_eq!(p1.next_request().await.flow, flow, "{domain}");
    }
    assert_eq!(p2.opened(), (2, 0));
}
