//! Benchmark (run by benches/lab_reuse_latency.sh; needs root, network namespaces and netem): the latency of
//! the first backwards-direction request (P2 -> P1 right after P1 opened a connection to P2)
//! with RFC 5923 reuse and without, over TLS 1.3 and TLS 1.2, in network namespaces with netem.
//!
//! Printed as RTT multiples measured in the same run: each latency is measured with a 50 ms RTT
//! (25 ms each way) and with no delay; `(L_50 - L_0) / RTT` counts the round trips the request
//! costs independently of CPU speed (the lab VM emulates the CPU), where RTT is measured the same
//! way on a request over an already open connection.

#[path = "../tests/lab_reuse_support/mod.rs"]
mod lab_reuse_support;
#[path = "../tests/reuse_support/mod.rs"]
mod reuse_support;

use lab_reuse_support::*;
use reuse_support::pki::Ca;
use sipwire::gateway::reuse::LocalDomain;
use sipwire_lab::{Impairment, Topology, Zone};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

const SAMPLES: usize = 9;
const ONE_WAY_MS: u32 = 25;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// The minimum: the least disturbed sample (the VM's emulated CPU adds noise, never removes it).
fn best(v: Vec<Duration>) -> Duration {
    v.into_iter().min().unwrap_or_default()
}

async fn wait_idle(a: &Agent) {
    for _ in 0..500 {
        if a.state().await.stream_flows == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("connections did not close");
}

/// Minimum latencies of (first backwards request, request on an open connection) at this delay.
async fn measure(p1: &Agent, p2: &Agent, tag: &str) -> (Duration, Duration) {
    let mut back = Vec::new();
    let mut open = Vec::new();
    for i in 0..SAMPLES {
        let f = p1
            .send("example.com", "example.net", &format!("{tag}f{i}"))
            .await;
        let _ = p2.next_request().await;
        let r = p1
            .send("example.com", "example.net", &format!("{tag}r{i}"))
            .await;
        let _ = p2.next_request().await;
        open.push(r.latency);
        let b = p2
            .send("example.net", "example.com", &format!("{tag}b{i}"))
            .await;
        let _ = p1.next_request().await;
        back.push(b.latency);
        p1.close(f.flow);
        if b.flow != f.flow {
            p2.close(b.flow);
        }
        wait_idle(p1).await;
        wait_idle(p2).await;
    }
    (best(back), best(open))
}

async fn run(
    versions: &'static [&'static rustls::SupportedProtocolVersion],
    add_alias: bool,
) -> (f64, f64, f64) {
    let mut lab = Topology::new().expect("lab (run as root)");
    let h1 = lab.host("p1").expect("host p1");
    let h2 = lab.host("p2").expect("host p2");
    let link = lab
        .link(&h1, &["192.0.2.1/24"], &h2, &["192.0.2.128/24"])
        .expect("link");
    let zone = Zone::new()
        .srv("_sips._tcp.example.com", "p1.example.com", SIPS_PORT, 0, 0)
        .host("p1.example.com", &[ip("192.0.2.1")])
        .srv("_sips._tcp.example.net", "p2.example.net", SIPS_PORT, 0, 0)
        .host("p2.example.net", &[ip("192.0.2.128")]);
    // A DNS server on each host: resolution costs no round trip over the delayed link.
    let dns1 = lab.dns(&h1, ip("192.0.2.1"), &zone).expect("dnsmasq on p1");
    let dns2 = lab
        .dns(&h2, ip("192.0.2.128"), &zone)
        .expect("dnsmasq on p2");
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
    let mut s2 = spec(
        "192.0.2.128",
        &c2,
        vec![LocalDomain::new("example.net", "p2.example.net")],
    );
    s1.dns = Some(dns1);
    s2.dns = Some(dns2);
    for s in [&mut s1, &mut s2] {
        s.dns_cache = true;
        // Full handshakes: a first backwards connection has no session to resume.
        s.resumption = false;
        s.versions = versions;
        s.add_alias = add_alias;
    }
    let p1 = Agent::start(&h1, Arc::clone(&ca), s1);
    let p2 = Agent::start(&h2, ca, s2);
    let (back0, open0) = measure(&p1, &p2, "z").await;
    link.impair(Impairment {
        delay_ms: ONE_WAY_MS,
        ..Impairment::default()
    })
    .expect("netem");
    let (back50, open50) = measure(&p1, &p2, "d").await;
    p1.stop().await;
    p2.stop().await;
    let rtt = open50.saturating_sub(open0).as_secs_f64();
    let cost = back50.saturating_sub(back0).as_secs_f64();
    (cost / rtt, back50.as_secs_f64() * 1e3, rtt * 1e3)
}

#[tokio::main]
async fn main() {
    println!(
        "RFC 5923 reuse: first backwards request, netem RTT {} ms, best of {SAMPLES}",
        2 * ONE_WAY_MS
    );
    println!("| TLS | alias | backwards request (RTT multiples) | at 50 ms RTT (ms) | measured RTT (ms) |");
    println!("|---|---|---|---|---|");
    let mut rows = Vec::new();
    for (name, v) in [("1.3", TLS13_V), ("1.2", TLS12_V)] {
        for alias in [true, false] {
            let (mult, ms, rtt) = run(v, alias).await;
            println!(
                "| {name} | {} | {mult:.2} | {ms:.1} | {rtt:.1} |",
                if alias { "yes (reuse)" } else { "no" }
            );
            rows.push((name, alias, mult));
        }
    }
    // Sanity (not timing): reuse never costs more round trips than a new connection.
    for name in ["1.3", "1.2"] {
        let with = rows.iter().find(|r| r.0 == name && r.1).map(|r| r.2);
        let without = rows.iter().find(|r| r.0 == name && !r.1).map(|r| r.2);
        if let (Some(w), Some(wo)) = (with, without) {
            assert!(
                w < wo,
                "TLS {name}: reuse {w:.2} RTT vs new connection {wo:.2} RTT"
            );
        }
    }
}

const TLS13_V: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12_V: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
