//! The one-line JSON result of a run.

use std::fmt::Write;
use std::net::SocketAddr;
use std::time::Duration;

use crate::flow::Stats;

/// The generator counts as the bottleneck from this share of its cores on.
const GENERATOR_BOUND_SHARE: f64 = 0.9;

/// What a run measured.
#[derive(Debug)]
pub struct Report {
    /// `--label`.
    pub label: Option<String>,
    /// `udp`, `tcp`, `tls`, `sctp` or `tls-sctp`.
    pub transport: &'static str,
    /// `options` or `call`.
    pub scenario: &'static str,
    /// T1 when requests were retransmitted (UDP), in ms.
    pub t1_ms: Option<u64>,
    /// Streams per association (SCTP).
    pub sctp_streams: Option<u16>,
    /// `1.2` or `1.3` for TLS.
    pub tls_version: Option<&'static str>,
    /// Negotiated TLS version and cipher suite (first flow).
    pub tls_cipher: Option<String>,
    /// `closed` or `open`.
    pub mode: &'static str,
    /// Server address.
    pub target: SocketAddr,
    /// Flows.
    pub flows: u32,
    /// Outstanding requests per flow (closed loop).
    pub window: usize,
    /// Total rate asked for (open loop).
    pub rate_target: Option<f64>,
    /// Warm-up length.
    pub warmup: Duration,
    /// Measured window length.
    pub measured: Duration,
    /// Merged counters.
    pub stats: Stats,
    /// The generator's CPU time over the window.
    pub tool_cpu: Option<Duration>,
    /// Cores the generator can use (runtime threads, limited by its CPU affinity).
    pub tool_cores: usize,
    /// The server processes' CPU time over the window.
    pub server_cpu: Option<Duration>,
    /// How many server processes were sampled.
    pub server_pids: usize,
}

impl Report {
    /// The JSON object, on one line.
    pub fn to_json(&self) -> String {
        let s = &self.stats;
        let secs = self.measured.as_secs_f64().max(1e-9);
        let per_s = |n: u64| n as f64 / secs;
        let h = &s.latency_us;
        let quantile = |h: &hdrhistogram::Histogram<u64>, p: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(p)
            }
        };
        let q = |p: f64| quantile(h, p);
        let responded = s.answered + s.non_200;
        let tool_util = self.tool_cpu.map(|c| c.as_secs_f64() / secs);
        let bound = tool_util.is_some_and(|u| u >= GENERATOR_BOUND_SHARE * self.tool_cores as f64);
        let mut o = String::with_capacity(1024);
        o.push('{');
        field(
            &mut o,
            "label",
            &self.label.as_deref().map_or("null".to_owned(), json_str),
        );
        field(&mut o, "transport", &json_str(self.transport));
        field(&mut o, "scenario", &json_str(self.scenario));
        field(
            &mut o,
            "t1_ms",
            &self.t1_ms.map_or("null".to_owned(), |t| t.to_string()),
        );
        field(
            &mut o,
            "sctp_streams",
            &self
                .sctp_streams
                .map_or("null".to_owned(), |n| n.to_string()),
        );
        field(
            &mut o,
            "tls_version",
            &self.tls_version.map_or("null".to_owned(), json_str),
        );
        field(
            &mut o,
            "tls_cipher",
            &self
                .tls_cipher
                .as_deref()
                .map_or("null".to_owned(), json_str),
        );
        field(&mut o, "mode", &json_str(self.mode));
        field(&mut o, "target", &json_str(&self.target.to_string()));
        field(&mut o, "flows", &self.flows.to_string());
        field(&mut o, "window", &self.window.to_string());
        field(&mut o, "rate_target", &opt_num(self.rate_target));
        field(&mut o, "warmup_s", &num(self.warmup.as_secs_f64()));
        field(&mut o, "measured_s", &num(secs));
        field(&mut o, "sent", &s.sent.to_string());
        field(&mut o, "offered_per_s", &num(per_s(s.sent)));
        field(&mut o, "answered", &s.answered.to_string());
        field(&mut o, "answered_per_s", &num(per_s(s.answered)));
        field(&mut o, "non_200", &s.non_200.to_string());
        field(&mut o, "unanswered", &s.unanswered.to_string());
        field(&mut o, "duplicates", &s.duplicates.to_string());
        field(&mut o, "late", &s.late.to_string());
        field(&mut o, "provisional", &s.provisional.to_string());
        field(&mut o, "stray", &s.stray.to_string());
        field(&mut o, "io_errors", &s.io_errors.to_string());
        // Requests sent again on Timer A/E (UDP), and ACKs repeated for a repeated 2xx.
        field(&mut o, "retransmissions", &s.retransmissions.to_string());
        field(&mut o, "lat_p50_us", &q(0.50).to_string());
        field(&mut o, "lat_p90_us", &q(0.90).to_string());
        field(&mut o, "lat_p99_us", &q(0.99).to_string());
        field(&mut o, "lat_p999_us", &q(0.999).to_string());
        field(
            &mut o,
            "lat_max_us",
            &(if h.is_empty() { 0 } else { h.max() }).to_string(),
        );
        let b = &s.bye_latency_us;
        field(&mut o, "bye_lat_p50_us", &quantile(b, 0.50).to_string());
        field(&mut o, "bye_lat_p99_us", &quantile(b, 0.99).to_string());
        field(
            &mut o,
            "tool_cpu_s",
            &opt_num(self.tool_cpu.map(|c| c.as_secs_f64())),
        );
        field(&mut o, "tool_cpu_util", &opt_num(tool_util));
        field(&mut o, "tool_cores", &self.tool_cores.to_string());
        field(
            &mut o,
            "generator_bound",
            if bound { "true" } else { "false" },
        );
        field(&mut o, "server_pids", &self.server_pids.to_string());
        field(
            &mut o,
            "server_cpu_s",
            &opt_num(self.server_cpu.map(|c| c.as_secs_f64())),
        );
        let per_req = self
            .server_cpu
            .filter(|_| responded > 0)
            .map(|c| c.as_secs_f64() * 1e6 / responded as f64);
        field(&mut o, "server_cpu_us_per_req", &opt_num(per_req));
        o.pop(); // the last comma
        o.push('}');
        o
    }
}

pub(crate) fn field(o: &mut String, key: &str, value: &str) {
    let _ = write!(o, "\"{key}\":{value},");
}

pub(crate) fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{:.3}", v)
    } else {
        "null".to_owned()
    }
}

fn opt_num(v: Option<f64>) -> String {
    v.map_or("null".to_owned(), num)
}

pub(crate) fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let mut stats = Stats {
            sent: 1000,
            answered: 990,
            non_200: 10,
            ..Stats::default()
        };
        for us in 1..=1000 {
            stats.latency_us.record(us).unwrap();
        }
        Report {
            label: Some("a \"b\"\n".into()),
            transport: "tls",
            scenario: "options",
            t1_ms: None,
            sctp_streams: None,
            tls_version: Some("1.3"),
            tls_cipher: None,
            mode: "closed",
            target: "127.0.0.1:5061".parse().unwrap(),
            flows: 50,
            window: 1,
            rate_target: None,
            warmup: Duration::from_secs(1),
            measured: Duration::from_secs(2),
            stats,
            tool_cpu: Some(Duration::from_millis(1900)),
            tool_cores: 1,
            server_cpu: Some(Duration::from_millis(500)),
            server_pids: 1,
        }
    }

    #[test]
    fn json_fields() {
        let j = report().to_json();
        assert!(j.starts_with("{\"label\":\"a \\\"b\\\"\\u000a\","), "{j}");
        assert!(j.ends_with('}') && !j.contains(",}"));
        assert!(j.contains("\"answered_per_s\":495.000,"));
        assert!(j.contains("\"lat_p50_us\":500,"));
        assert!(j.contains("\"rate_target\":null,"));
        // 1.9 s of CPU in 2 s on one core: the generator is the bottleneck.
        assert!(j.contains("\"generator_bound\":true,"));
        // 0.5 s for 1000 responses.
        assert!(j.contains("\"server_cpu_us_per_req\":500.000}"));
    }

    #[test]
    fn not_bound_below_ninety_percent_of_its_cores() {
        let mut r = report();
        r.tool_cores = 2;
        assert!(r.to_json().contains("\"generator_bound\":false,"));
    }
}
