//! RFC 5923 Figure 2 and Figure 4 in network namespaces with the RFC's addresses: P1
//! (example.com) 192.0.2.1, P2 (example.net) 192.0.2.128, TLS on 5061, a real DNS server
//! (dnsmasq) serving the SRV records. Needs root (lab VM).

mod lab_reuse_support;
mod reuse_support;

use lab_reuse_support::*;
use reuse_support::pki::Ca;
use sipwire::alias::{AliasDecision, RowDump, RowOrigin, TableDump};
use sipwire::gateway::reuse::LocalDomain;
use sipwire::resolve::Transport;
use sipwire_lab::{Topology, Zone};
use std::net::IpAddr;
use std::sync::Arc;

struct Lab {
    _lab: Topology,
    p1: Agent,
    p2: Agent,
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn figure(add_alias: bool) -> Lab {
    let mut lab = Topology::new().expect("lab (run as root, in the lab VM)");
    let h1 = lab.host("p1").expect("host p1");
    let h2 = lab.host("p2").expect("host p2");
    lab.link(&h1, &["192.0.2.1/24"], &h2, &["192.0.2.128/24"])
        .expect("link");
    let zone = Zone::new()
        .srv("_sips._tcp.example.com", "p1.example.com", SIPS_PORT, 0, 0)
        .host("p1.example.com", &[ip("192.0.2.1")])
        .srv("_sips._tcp.example.net", "p2.example.net", SIPS_PORT, 0, 0)
        .host("p2.example.net", &[ip("192.0.2.128")]);
    let dns = lab.dns(&h2, ip("192.0.2.128"), &zone).expect("dnsmasq");
    let ca = Arc::new(Ca::new());
    let c1 = ca.leaf(
        &["example.com", "p1.example.com"],
        &["sip:example.com", "sip:p1.example.com"],
    );
    let c2 = ca.leaf(
        &["example.net", "p2.example.net"],
        &["sip:example.net", "sip:p2.example.net"],
    );
    let mut s1 = spec(
        "192.0.2.1",
        &c1,
        vec![LocalDomain::new("example.com", "p1.example.com")],
    );
    s1.dns = Some(dns);
    s1.add_alias = add_alias;
    let mut s2 = spec(
        "192.0.2.128",
        &c2,
        vec![LocalDomain::new("example.net", "p2.example.net")],
    );
    s2.dns = Some(dns);
    s2.add_alias = add_alias;
    let p1 = Agent::start(&h1, Arc::clone(&ca), s1);
    let p2 = Agent::start(&h2, ca, s2);
    Lab { _lab: lab, p1, p2 }
}

fn row(addr: &str, ids: &[&str], descriptor: String, origin: RowOrigin) -> RowDump {
    RowDump {
        ip: ip(addr),
        port: 5061,
        transport: Transport::Tls,
        identities: ids.iter().map(|s| s.to_string()).collect(),
        descriptor,
        origin,
    }
}

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
    assert_eq!(
        s1.dump,
        vec![TableDump {
            local_domain: "example.com".into(),
            rows: vec![row(
                "192.0.2.128",
                &["example.net", "p2.example.net"],
                a.flow.to_string(),
                RowOrigin::Outbound
            )],
        }]
    );
    assert_eq!(
        s2.dump,
        vec![TableDump {
            local_domain: "example.net".into(),
            rows: vec![row(
                "192.0.2.1",
                &["example.com", "p1.example.com"],
                at_p2.flow.to_string(),
                RowOrigin::Inbound
            )],
        }]
    );
    l.p1.stop().await;
    l.p2.stop().await;
}
