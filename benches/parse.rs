//! SIP codec benchmark: sipwire vs rsip vs ezk-sip-types on the same messages
//! (`benches/data/`), two workloads (see `codecs/mod.rs`). After the criterion groups it
//! runs a side-by-side timing loop (interleaved rounds, median) and prints messages/s
//! and the ratio sipwire / faster of the other two per message and workload.
//!
//! `cargo bench --bench parse` (all), `cargo bench --bench parse -- --ratios-only`
//! (skip criterion, only the side-by-side table).

mod codecs;

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use codecs::{run, Lib, Workload, MESSAGES};
use criterion::{Criterion, Throughput};

fn check_all_parse() {
    for (name, raw) in MESSAGES {
        let msg = Bytes::from_static(raw);
        for work in Workload::ALL {
            for lib in Lib::ALL {
                assert!(
                    run(lib, work, &msg).is_some(),
                    "{} refused {name} ({})",
                    lib.name(),
                    work.name()
                );
            }
        }
    }
}

fn criterion_groups(c: &mut Criterion) {
    for work in Workload::ALL {
        for (name, raw) in MESSAGES {
            let msg = Bytes::from_static(raw);
            let mut g = c.benchmark_group(format!("{}/{}", work.name(), name));
            g.throughput(Throughput::Elements(1));
            g.measurement_time(Duration::from_secs(2));
            g.warm_up_time(Duration::from_millis(500));
            for lib in Lib::ALL {
                g.bench_function(lib.name(), |b| b.iter(|| run(lib, work, black_box(&msg))));
            }
            g.finish();
        }
    }
}

/// Nanoseconds per message for `iters` runs.
fn time_one(lib: Lib, work: Workload, msg: &Bytes, iters: u32) -> f64 {
    let t = Instant::now();
    for _ in 0..iters {
        black_box(run(lib, work, black_box(msg)));
    }
    t.elapsed().as_nanos() as f64 / f64::from(iters)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Side-by-side: for each message and workload, `rounds` rounds, each timing every
/// library once in turn (so machine noise hits all of them alike); medians compared.
fn side_by_side(rounds: usize) {
    println!();
    println!("SIP codec, side by side ({rounds} interleaved rounds, median; messages/s)");
    println!(
        "{:<15} {:<20} {:>12} {:>12} {:>14} {:>8}",
        "workload", "message", "sipwire", "rsip", "ezk-sip-types", "ratio"
    );
    let mut ratios = Vec::new();
    for work in Workload::ALL {
        for (name, raw) in MESSAGES {
            let msg = Bytes::from_static(raw);
            // Calibrate: about 20 ms per library per round.
            let probe = time_one(Lib::Ezk, work, &msg, 200).max(1.0);
            let iters = ((20e6 / probe) as u32).clamp(100, 1_000_000);
            let mut ns: [Vec<f64>; 3] = Default::default();
            for round in 0..rounds {
                for k in 0..3 {
                    // Rotate the order each round.
                    let i = (k + round) % 3;
                    let lib = Lib::ALL[i];
                    ns[i].push(time_one(lib, work, &msg, iters));
                }
            }
            let [s, r, e] = ns.map(|mut v| median(&mut v));
            let ratio = r.min(e) / s;
            ratios.push((work, ratio));
            println!(
                "{:<15} {:<20} {:>12.0} {:>12.0} {:>14.0} {:>7.2}x",
                work.name(),
                name,
                1e9 / s,
                1e9 / r,
                1e9 / e,
                ratio
            );
        }
    }
    for work in Workload::ALL {
        let v: Vec<f64> = ratios
            .iter()
            .filter(|(w, _)| *w == work)
            .map(|(_, r)| *r)
            .collect();
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let geo = (v.iter().map(|r| r.ln()).sum::<f64>() / v.len() as f64).exp();
        println!(
            "{:<15} sipwire / faster-of-two: min {:.2}x, geometric mean {:.2}x",
            work.name(),
            min,
            geo
        );
    }
}

fn main() {
    check_all_parse();
    let args: Vec<String> = std::env::args().collect();
    let ratios_only = args.iter().any(|a| a == "--ratios-only");
    // `cargo test --benches` runs the bench binary with --bench absent: keep it short.
    let quick = !args.iter().any(|a| a == "--bench");
    if !ratios_only && !quick {
        let mut c = Criterion::default().configure_from_args();
        criterion_groups(&mut c);
        c.final_summary();
    }
    let rounds = std::env::var("SIPWIRE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 3 } else { 15 });
    side_by_side(rounds);
}
