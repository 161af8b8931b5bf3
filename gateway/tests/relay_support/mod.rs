//! SIPp as the peers of `sipwire run` relaying: the UAC and UAS scenarios of lab/sipp/,
//! started with bounded `-m`, `-timeout` and `-recv_timeout`, and the counters of their
//! `-trace_stat` file.
//!
//! SIPp 3.6's `-timeout` is a soft quit: it stops placing calls but waits for the open ones
//! to end, and a call waiting for a message that never comes (a UAS waiting for a BYE)
//! never ends, so a hung run outlived it. `-recv_timeout` ends such a call (counted failed),
//! and [`wait`] kills what is still running at its limit.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

pub fn scenario(name: &str) -> PathBuf {
    repo().join("lab/sipp").join(name)
}

/// A port free on 127.0.0.1 for both UDP and TCP right now.
pub fn free_port() -> u16 {
    loop {
        let t = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp");
        let port = t.local_addr().expect("addr").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// SIPp's `-t` for a transport name.
pub fn sipp_transport(t: &str) -> &'static str {
    match t {
        "udp" => "u1",
        "tcp" => "t1",
        "sctp" => "s1",
        other => panic!("no SIPp transport for {other}"),
    }
}

/// One SIPp process and where its statistics go.
pub struct Sipp {
    pub child: Child,
    pub stats: PathBuf,
    pub log: PathBuf,
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts SIPp from `cmd` (the `sipp` program, maybe inside a lab host) with `args`, its
/// statistics in `dir/<name>.csv` and its output in `dir/<name>.log`.
pub fn start(mut cmd: Command, dir: &Path, name: &str, args: &[String]) -> Sipp {
    let stats = dir.join(format!("{name}.csv"));
    let log = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log).expect("log");
    let child = cmd
        .current_dir(dir)
        .args(args)
        .args(["-nostdin", "-trace_stat", "-fd", "1", "-stf"])
        .arg(&stats)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .spawn()
        .expect("spawn sipp (Debian package sip-tester)");
    Sipp { child, stats, log }
}

/// The UAS on `ip:port` over `transport`, for `calls` calls.
pub fn uas_args(ip: &str, port: u16, transport: &str, calls: usize) -> Vec<String> {
    [
        "-sf",
        &scenario("relay-uas.xml").display().to_string(),
        "-i",
        ip,
        "-p",
        &port.to_string(),
        "-t",
        sipp_transport(transport),
        "-m",
        &calls.to_string(),
        "-timeout",
        "60s",
        "-recv_timeout",
        RECV_TIMEOUT,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// How long a call waits for its next message: longer than a UDP transaction's 64·T1 (32 s)
/// of retransmissions, shorter than the waits of the tests.
const RECV_TIMEOUT: &str = "40s";

/// The UAC on `ip:port` over `transport` calling the UAS at `uas` through the relay at
/// `relay`, the relay told to go on over `out` (the Request-URI's transport parameter).
#[allow(clippy::too_many_arguments)]
pub fn uac_args(
    ip: &str,
    port: u16,
    transport: &str,
    relay: &str,
    uas: &str,
    out: &str,
    calls: usize,
    rate: usize,
) -> Vec<String> {
    [
        uas,
        "-sf",
        &scenario("relay-uac.xml").display().to_string(),
        "-key",
        "uri_params",
        &format!(";transport={out}"),
        "-rsa",
        relay,
        "-i",
        ip,
        "-p",
        &port.to_string(),
        "-t",
        sipp_transport(transport),
        "-m",
        &calls.to_string(),
        "-r",
        &rate.to_string(),
        "-timeout",
        "60s",
        "-recv_timeout",
        RECV_TIMEOUT,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Waits for SIPp to exit, at most `limit`: its exit code, or -1 after killing it (the
/// statistics it wrote every second stay for the caller's report).
pub fn wait(s: &mut Sipp, limit: Duration) -> i32 {
    let end = Instant::now() + limit;
    loop {
        if let Some(st) = s.child.try_wait().expect("wait") {
            return st.code().unwrap_or(-1);
        }
        if Instant::now() >= end {
            eprintln!("sipp still running after {limit:?}: killed");
            let _ = s.child.kill();
            let _ = s.child.wait();
            return -1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The cumulative counters of the last line of a SIPp `-trace_stat` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub successful: u64,
    pub failed: u64,
    pub retransmissions: u64,
}

impl Stats {
    pub fn read(path: &Path) -> Stats {
        let text = std::fs::read_to_string(path).expect("sipp statistics file");
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<&str> = lines.next().expect("header").split(';').collect();
        let last: Vec<&str> = lines
            .next_back()
            .expect("a statistics line")
            .split(';')
            .collect();
        let col = |name: &str| -> u64 {
            let i = header
                .iter()
                .position(|h| *h == name)
                .unwrap_or_else(|| panic!("no {name} column"));
            last[i].trim().parse().expect("a number")
        };
        Stats {
            successful: col("SuccessfulCall(C)"),
            failed: col("FailedCall(C)"),
            retransmissions: col("Retransmissions(C)"),
        }
    }
}

/// Received retransmissions counted by a SIPp `-trace_counts` file in `dir` (the sum of
/// the `*_Retrans` columns of `*_Recv` messages on its last line).
pub fn received_retransmissions(dir: &Path, scenario_name: &str) -> u64 {
    let file = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(scenario_name) && n.ends_with("_counts.csv"))
        })
        .expect("a -trace_counts file");
    let text = std::fs::read_to_string(file).expect("counts");
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().expect("header").split(';').collect();
    let last: Vec<&str> = lines.next_back().expect("a line").split(';').collect();
    header
        .iter()
        .enumerate()
        .filter(|(i, h)| {
            h.ends_with("_Retrans")
                && header
                    .get(i.wrapping_sub(1))
                    .is_some_and(|p| p.ends_with("_Recv"))
        })
        .filter_map(|(i, _)| last.get(i).and_then(|v| v.trim().parse::<u64>().ok()))
        .sum()
}
