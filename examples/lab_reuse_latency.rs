//! Benchmark (run by benches/lab_reuse_latency.sh; needs root, network namespaces and netem):
//! the latency of the first backwards-direction request (P2 -> P1 right after P1 opened a
//! connection to P2) with RFC 5923 reuse and without, over TLS 1.3 and TLS 1.2.
//!
//! Printed as RTT multiples measured in the same run: each latency is measured with a 50 ms RTT
//! (25 ms each way) and with no delay; `(L_50 - L_0) / RTT` counts the round trips the request
//! costs independently of CPU speed (the lab VM emulates the CPU), where RTT is measured the same
//! way on a request over an already open connection.

// The parts of tests/support the lab peers need (tests/support/mod.rs as a whole names the
// test-only `CARGO_BIN_EXE_sipwire`); they find each other through `super::`.
#[allow(dead_code)]
#[path = "../tests/support/dns.rs"]
mod dns;
#[allow(dead_code)]
#[path = "../tests/support/fig.rs"]
mod fig;
#[allow(dead_code)]
#[path = "../tests/support/lab/mod.rs"]
mod lab;
#[allow(dead_code)]
#[path = "../tests/support/pki.rs"]
mod pki;
#[allow(dead_code)]
#[path = "../tests/support/poll.rs"]
mod poll;
#[allow(dead_code)]
#[path = "../tests/support/reuse.rs"]
mod reuse;
#[allow(dead_code)]
#[path = "../tests/support/sip.rs"]
mod sip;

use lab::fig::{figure_with, FigOptions};
use lab::*;
use sipwire_lab::Impairment;
use std::time::Duration;

const SAMPLES: usize = 9;
const ONE_WAY_MS: u32 = 25;

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
    // DNS on each host: resolution costs no round trip over the delayed link.
    let lab = figure_with(
        FigOptions {
            dns_on_each_host: true,
            ..FigOptions::new(add_alias)
        },
        |s| {
            s.dns_cache = true;
            // Full handshakes: a first backwards connection has no session to resume.
            s.resumption = false;
            s.versions = versions;
        },
    );
    let (p1, p2, link) = (lab.p1, lab.p2, lab.link);
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
