//! RFC 5923 §10 (checklist 45) live on loopback: three servers behind one SRV name
//! (weights 20/30/50). The client ends with exactly three aliased connections, one per target,
//! and the traffic is still spread by weight: the RFC 3263 order decides the target of each
//! request, the alias table only which connection carries it.

mod support;

use sipwire::alias::AliasKey;
use std::collections::{HashMap, HashSet};
use support::dns::{start_dns, Zone};
use support::pki::Ca;
use support::reuse::*;
use support::sip::*;

const REQUESTS: usize = 400;
const WEIGHTS: [u16; 3] = [20, 30, 50];

#[tokio::test]
async fn section_10_srv_load_balancing_one_aliased_connection_per_target() {
    let ca = Ca::new("reuse CA");
    let p1_cert = ca.sip_leaf(&["example.com", "p1.example.com"]);
    let b1 = bind(
        "127.0.0.1",
        ca.server_config(&p1_cert, &[], TLS13),
        ca.client_config(Some(&p1_cert), TLS13),
        false,
    )
    .await;
    let mut bound = Vec::new();
    for (i, ip) in ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
        .iter()
        .enumerate()
    {
        let host = format!("s{}.example.net", i + 1);
        let cert = ca.sip_leaf(&["example.net", &host]);
        let b = bind(
            ip,
            ca.server_config(&cert, &[], TLS13),
            ca.client_config(Some(&cert), TLS13),
            false,
        )
        .await;
        bound.push((host, b));
    }
    let mut zone = Zone::new("example.net.");
    for ((host, b), weight) in bound.iter().zip(WEIGHTS) {
        zone = zone
            .srv(
                "_sips._tcp.example.net.",
                10,
                weight,
                b.tls.port(),
                &format!("{host}."),
            )
            .a(&format!("{host}."), &b.tls.ip().to_string());
    }
    let dns = start_dns(vec![zone]).await;
    let p1 = b1.start(
        Some(dns.addr),
        config(vec![domain("example.com", "p1.example.com")], true),
    );
    let mut servers: Vec<Peer> = bound
        .into_iter()
        .map(|(host, b)| b.start(None, config(vec![domain("example.net", &host)], true)))
        .collect();

    let target = sips("example.net");
    let mut per_target: HashMap<AliasKey, usize> = HashMap::new();
    let mut flows = HashSet::new();
    for i in 0..REQUESTS {
        let r = forwarded(
            "OPTIONS",
            "sips:example.net",
            "example.com",
            &format!("l{i}"),
            1,
        );
        let s = p1
            .endpoint
            .send_request("example.com", &target, &r, &format!("z9hG4bKl{i}"))
            .await
            .expect("P1 -> example.net");
        *per_target.entry(AliasKey::from(&s.target)).or_default() += 1;
        flows.insert(s.flow);
    }
    // Every server received its share (drain the queues; bounded by WAIT each).
    let mut received = Vec::new();
    for s in &mut servers {
        let key = AliasKey::new(s.tls.ip(), s.tls.port(), sipwire::TransportKind::Tls);
        let n = per_target.get(&key).copied().unwrap_or(0);
        for _ in 0..n {
            s.next_request().await;
        }
        received.push(n);
    }
    assert_eq!(flows.len(), 3, "one connection per SRV target");
    assert_eq!(p1.opened(), (0, 3), "exactly three connections opened");
    let dump = p1.endpoint.dump();
    assert_eq!(dump.len(), 1);
    assert_eq!(
        dump[0].rows.len(),
        3,
        "three aliased connections: {:?}",
        dump[0].rows
    );
    for s in &servers {
        assert_eq!(s.endpoint.counters().rows, 1, "each server aliased P1 once");
        assert_eq!(s.opened(), (1, 0));
    }
    let c = p1.endpoint.counters();
    assert_eq!(c.reuses as usize, REQUESTS - 3);
    // Spread by weight 20/30/50 (expected 80/120/200 of 400; ±12 points is > 4 sigma).
    assert_spread_by_weight(&received, &WEIGHTS, 12.0);
}
