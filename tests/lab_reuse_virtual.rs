//! RFC 5923 §9.3 in network namespaces: P1 hosts example.com and example.net on
//! 192.0.2.1:5061 (certificates by SNI); P2 (example.org, 192.0.2.128) reuses example.com's
//! connection for example.com only; its request to example.net opens a second connection to
//! the same {IP, port, TLS}: two rows, two connections. Needs root (lab VM).

mod support;

use sipwire::alias::{AliasDecision, RowOrigin};
use sipwire::endpoint::LocalDomain;
use sipwire_lab::{Topology, Zone};
use std::sync::Arc;
use support::lab::fig::ip;
use support::lab::*;
use support::pki::Ca;

#[tokio::test]
async fn lab_section_9_3_virtual_domains_on_one_address() {
    let mut lab = Topology::new().expect("lab (run as root, in the lab VM)");
    let h1 = lab.host("p1").expect("host p1");
    let h2 = lab.host("p2").expect("host p2");
    lab.link(&h1, &["192.0.2.1/24"], &h2, &["192.0.2.128/24"])
        .expect("link");
    let zone = Zone::new()
        .srv("_sips._tcp.example.com", "p1.example.com", SIPS_PORT, 0, 0)
        .host("p1.example.com", &[ip("192.0.2.1")])
        .srv("_sips._tcp.example.net", "p1.example.net", SIPS_PORT, 0, 0)
        .host("p1.example.net", &[ip("192.0.2.1")])
        .srv("_sips._tcp.example.org", "p2.example.org", SIPS_PORT, 0, 0)
        .host("p2.example.org", &[ip("192.0.2.128")]);
    let dns = lab.dns(&h2, ip("192.0.2.128"), &zone).expect("dnsmasq");
    let ca = Arc::new(Ca::new("lab CA"));
    let com = ca.sip_leaf(&["example.com", "p1.example.com"]);
    let net = ca.sip_leaf(&["example.net", "p1.example.net"]);
    let org = ca.sip_leaf(&["example.org", "p2.example.org"]);
    let mut s1 = spec(
        "192.0.2.1",
        &com,
        vec![
            LocalDomain::new("example.com", "p1.example.com"),
            LocalDomain::new("example.net", "p1.example.net"),
        ],
    );
    s1.by_sni = vec![
        ("example.com".into(), com.clone()),
        ("example.net".into(), net),
    ];
    s1.dns = Some(dns);
    let mut s2 = spec(
        "192.0.2.128",
        &org,
        vec![LocalDomain::new("example.org", "p2.example.org")],
    );
    s2.dns = Some(dns);
    let p1 = Agent::start(&h1, Arc::clone(&ca), s1);
    let p2 = Agent::start(&h2, ca, s2);

    let a = p1.send("example.com", "example.org", "v1").await;
    assert_eq!(p2.next_request().await.decision, Some(AliasDecision::Added));
    let b = p2.send("example.org", "example.com", "v2").await;
    assert!(b.reused);
    assert_eq!(p1.next_request().await.flow, a.flow);
    let c = p2.send("example.org", "example.net", "v3").await;
    assert!(
        !c.reused,
        "example.com's connection never carries example.net's request"
    );
    let at_p1 = p1.next_request().await;
    assert_ne!(at_p1.flow, a.flow);
    assert_eq!(at_p1.decision, Some(AliasDecision::Added));

    let s2 = p2.state().await;
    assert_eq!(s2.opened, (1, 1), "two connections to 192.0.2.1:5061");
    let rows = &s2.dump[0].rows;
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|r| r.ip == ip("192.0.2.1") && r.port == 5061));
    assert_eq!(rows[0].identities, ["example.com", "p1.example.com"]);
    assert_eq!(rows[0].origin, RowOrigin::Inbound);
    assert_eq!(rows[1].identities, ["example.net", "p1.example.net"]);
    assert_eq!(rows[1].origin, RowOrigin::Outbound);
    let s1 = p1.state().await;
    let domains: Vec<&str> = s1.dump.iter().map(|t| t.local_domain.as_str()).collect();
    assert_eq!(
        domains,
        ["example.com", "example.net"],
        "a table per local domain"
    );

    // P1 for example.net: over example.net's connection only.
    let d = p1.send("example.net", "example.org", "v4").await;
    assert!(d.reused);
    assert_eq!(d.flow, at_p1.flow);
    assert_eq!(p2.next_request().await.flow, c.flow);
    p1.stop().await;
    p2.stop().await;
}
