//! Runs one SIP codec workload N times, for `benches/callgrind-parse.sh`: instruction
//! counts under callgrind are repeatable on a noisy machine, unlike wall-clock time.
//!
//! `parse_count <sipwire|rsip|ezk> <full|frame> <message-name> <iterations>`

#[path = "../benches/codecs/mod.rs"]
mod codecs;

use std::hint::black_box;

use bytes::Bytes;
use codecs::{run, Lib, Workload, MESSAGES};

/// The measured loop (callgrind collects only inside this function).
#[inline(never)]
fn measure_loop(lib: Lib, work: Workload, msg: &Bytes, n: u64) -> usize {
    let mut acc = 0usize;
    for _ in 0..n {
        acc = acc.wrapping_add(black_box(run(lib, work, black_box(msg))).unwrap_or(0));
    }
    acc
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: parse_count <sipwire|rsip|ezk> <full|frame> <message> <iterations>";
    let (Some(lib), Some(work), Some(name), Some(n)) =
        (args.get(1), args.get(2), args.get(3), args.get(4))
    else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let lib = match lib.as_str() {
        "sipwire" => Lib::Sipwire,
        "rsip" => Lib::Rsip,
        "ezk" => Lib::Ezk,
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let work = match work.as_str() {
        "full" => Workload::Full,
        "frame" => Workload::FrameTopVia,
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let Some((_, raw)) = MESSAGES.iter().find(|(m, _)| m == name) else {
        eprintln!(
            "unknown message {name}; one of: {:?}",
            MESSAGES.map(|m| m.0)
        );
        std::process::exit(2);
    };
    let Ok(n) = n.parse::<u64>() else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let msg = Bytes::from_static(raw);
    if run(lib, work, &msg).is_none() {
        eprintln!("{} refused {name}", lib.name());
        std::process::exit(1);
    }
    println!("{}", measure_loop(lib, work, &msg, n));
}
