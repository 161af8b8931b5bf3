//! RFC 5923 §10 in network namespaces: P1 (example.com, 192.0.2.1) sends to sips:example.net,
//! which a real DNS server (dnsmasq, on its own host) publishes as three SRV targets
//! s1/s2/s3.example.net (192.0.2.11/.12/.13, port 5061, weights 20/30/50), each on its own
//! host with a certificate for example.net. P1 ends with exactly three connections and three
//! alias rows, one per server, and the requests are still spread by weight. Loopback version:
//! tests/reuse_srv.rs. Needs root (lab VM).
//!
//! Wiring: a veth link from P1 to each server, 192.0.2.1/32 on P1's ends and a host route per
//! server (the lab has point-to-point links only); the DNS host on 198.51.100.0/24.

mod support;

use sipwire::alias::{RowOrigin, TableDump};
use sipwire::endpoint::LocalDomain;
use sipwire_lab::{Topology, Zone};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use support::lab::fig::{ip, row};
use support::lab::*;
use support::pki::Ca;
use support::reuse::assert_spread_by_weight;

/// Enough requests for every server to get several (P(a server gets none) = 0.8^300).
const REQUESTS: usize = 300;
const SERVERS: [(&str, &str, u16); 3] = [
    ("s1", "192.0.2.11", 20),
    ("s2", "192.0.2.12", 30),
    ("s3", "192.0.2.13", 50),
];

#[tokio::test]
async fn lab_section_10_srv_one_aliased_connection_per_server_spread_by_weight() {
    let mut lab = Topology::new().expect("lab (run as root, in the lab VM)");
    let h1 = lab.host("p1").expect("host p1");
    let hdns = lab.host("dns").expect("host dns");
    lab.link(&h1, &["198.51.100.1/24"], &hdns, &["198.51.100.53/24"])
        .expect("link to the DNS host");
    let mut zone = Zone::new();
    let mut hosts = Vec::new();
    for (name, addr, weight) in SERVERS {
        let h = lab.host(name).expect("server host");
        let link = lab
            .link(&h1, &["192.0.2.1/32"], &h, &[&format!("{addr}/32")])
            .expect("link to a server");
        h1.ip(&["route", "add", &format!("{addr}/32"), "dev", &link.a.ifname])
            .expect("route to the server");
        h.ip(&["route", "add", "192.0.2.1/32", "dev", &link.b.ifname])
            .expect("route to P1");
        let target = format!("{name}.example.net");
        zone = zone
            .srv("_sips._tcp.example.net", &target, SIPS_PORT, 10, weight)
            .host(&target, &[ip(addr)]);
        hosts.push(h);
    }
    let dns = lab.dns(&hdns, ip("198.51.100.53"), &zone).expect("dnsmasq");

    let ca = Arc::new(Ca::new("lab CA"));
    let c1 = ca.sip_leaf(&["example.com", "p1.example.com"]);
    let mut s1 = spec(
        "192.0.2.1",
        &c1,
        vec![LocalDomain::new("example.com", "p1.example.com")],
    );
    s1.dns = Some(dns);
    let p1 = Agent::start(&h1, Arc::clone(&ca), s1);
    // One certificate per server, each proving exactly sip:example.net (the AUS).
    let servers: Vec<Agent> = SERVERS
        .iter()
        .zip(&hosts)
        .map(|((name, addr, _), h)| {
            let cert = ca.sip_leaf(&["example.net"]);
            let s = spec(
                addr,
                &cert,
                vec![LocalDomain::new(
                    "example.net",
                    &format!("{name}.example.net"),
                )],
            );
            Agent::start(h, Arc::clone(&ca), s)
        })
        .collect();

    let mut per_addr: HashMap<std::net::IpAddr, usize> = HashMap::new();
    let mut flows = HashSet::new();
    let mut reused = 0;
    for i in 0..REQUESTS {
        let s = p1
            .send("example.com", "example.net", &format!("w{i}"))
            .await;
        assert_eq!(
            s.aus, "example.net",
            "the AUS is the URI domain, not the SRV target"
        );
        assert_eq!(s.target.addr.port(), SIPS_PORT);
        *per_addr.entry(s.target.addr.ip()).or_default() += 1;
        flows.insert(s.flow);
        reused += usize::from(s.reused);
    }
    // Every server received exactly what P1 sent it (bounded waits).
    let mut received = Vec::new();
    for ((_, addr, _), server) in SERVERS.iter().zip(&servers) {
        let n = per_addr.get(&ip(addr)).copied().unwrap_or(0);
        let mut calls = HashSet::new();
        let mut flow = None;
        for _ in 0..n {
            let seen = server.next_request().await;
            calls.insert(seen.call_id);
            assert!(flow.is_none() || flow == Some(seen.flow), "one connection");
            flow = Some(seen.flow);
        }
        assert_eq!(calls.len(), n);
        received.push(n);
    }

    assert_eq!(flows.len(), 3, "one connection per SRV target");
    assert_eq!(
        reused,
        REQUESTS - 3,
        "all but the first to each server reused"
    );
    let st = p1.state().await;
    assert_eq!(st.opened, (0, 3), "exactly three connections");
    assert_eq!(st.stream_flows, 3);
    assert_eq!(st.counters.rows, 3);
    assert_eq!(st.counters.reuses as usize, REQUESTS - 3);
    // Exactly three rows: one per server address, identity example.net, the connection P1
    // opened to it (descriptors are taken from the rows: the flow ids are P1's own).
    let rows = st.dump.first().map(|t| t.rows.clone()).unwrap_or_default();
    let by_ip: HashMap<String, String> = rows
        .iter()
        .map(|r| (r.ip.to_string(), r.descriptor.clone()))
        .collect();
    let expected_rows = SERVERS
        .iter()
        .map(|(_, addr, _)| {
            row(
                addr,
                &["example.net"],
                by_ip.get(*addr).cloned().unwrap_or_default(),
                RowOrigin::Outbound,
            )
        })
        .collect();
    assert_eq!(
        st.dump,
        vec![TableDump {
            local_domain: "example.com".into(),
            rows: expected_rows,
        }]
    );
    let descriptors: HashSet<String> = flows.iter().map(|f| f.to_string()).collect();
    let row_descriptors: HashSet<String> = by_ip.values().cloned().collect();
    assert_eq!(
        row_descriptors, descriptors,
        "the rows are P1's three connections"
    );
    for server in &servers {
        let s = server.state().await;
        assert_eq!(s.opened, (1, 0), "each server accepted one connection");
        assert_eq!(s.counters.rows, 1, "and aliased P1 once");
    }
    // Spread by weight 20/30/50 (60/90/150 of 300; ±12 points is > 4 sigma).
    assert_spread_by_weight(&received, &[20, 30, 50], 12.0);

    p1.stop().await;
    for s in servers {
        s.stop().await;
    }
}
