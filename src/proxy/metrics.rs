//! The proxy core's counters as Prometheus metrics, published by the driver as deltas (the
//! core itself has no I/O and knows nothing of a recorder). Deltas also for the in-flight
//! gauge: with several cores (shards) each moves it by its own change, so it shows the sum.

use metrics::{counter, gauge};

use super::core::ProxyCounters;

/// Branches forwarded with a client transaction (every failover attempt counts).
pub const BRANCHES: &str = "sipwire_proxy_branches_total";
/// RFC 3263 §4.3 failovers: branches after the first of a request.
pub const FAILOVERS: &str = "sipwire_proxy_failovers_total";
/// Requests forwarded statelessly (§16.11), ACKs for 2xx included.
pub const STATELESS: &str = "sipwire_proxy_forwarded_stateless_total";
/// Responses sent upstream: `origin` is `downstream` or `proxy`.
pub const RESPONSES: &str = "sipwire_proxy_responses_total";
/// Messages dropped, by `reason`.
pub const DROPPED: &str = "sipwire_proxy_dropped_total";
/// Requests answered by the proxy instead of forwarded, by `reason`.
pub const REFUSED: &str = "sipwire_proxy_refused_total";
/// 2xx responses to INVITE sent upstream again by the proxy (unreliable upstream, no ACK
/// yet).
pub const OK_RETRANSMITTED: &str = "sipwire_proxy_2xx_retransmitted_total";
/// Copies of an ACK for a 2xx already forwarded, absorbed.
pub const ACKS_ABSORBED: &str = "sipwire_proxy_acks_absorbed_total";
/// 2xx responses to INVITE whose ACK did not come within 64·T1.
pub const OK_UNACKNOWLEDGED: &str = "sipwire_proxy_2xx_unacknowledged_total";
/// Requests waiting for their final response (summed over the shards).
pub const IN_FLIGHT: &str = "sipwire_proxy_in_flight";
/// Received messages handed to one proxy core, by `shard` (a driver run with
/// [`super::driver::DriverOptions::shard`]): how the load spreads over the shards.
pub const SHARD_MESSAGES: &str = "sipwire_proxy_shard_messages_total";

/// What was published last.
#[derive(Debug, Default)]
pub(crate) struct Published {
    counters: ProxyCounters,
    /// The in-flight count this driver added to the gauge.
    in_flight: usize,
}

impl Published {
    /// Makes the in-flight gauge exist (at 0 unless another core moved it) before anything
    /// is in flight.
    pub(crate) fn register(&self) {
        gauge!(IN_FLIGHT).increment(0.0);
    }

    /// Publishes what changed since the last call. The in-flight gauge moves by this core's
    /// change, so that several cores (shards) publishing into it give their sum.
    pub(crate) fn publish(&mut self, now: &ProxyCounters, in_flight: usize) {
        if in_flight != self.in_flight {
            let g = gauge!(IN_FLIGHT);
            if in_flight > self.in_flight {
                g.increment((in_flight - self.in_flight) as f64);
            } else {
                g.decrement((self.in_flight - in_flight) as f64);
            }
            self.in_flight = in_flight;
        }
        if *now == self.counters {
            return;
        }
        let last = &self.counters;
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let bump = |name: &'static str, by: u64| {
            if by > 0 {
                counter!(name).increment(by);
            }
        };
        bump(BRANCHES, d(now.branches, last.branches));
        bump(FAILOVERS, d(now.failovers, last.failovers));
        bump(
            STATELESS,
            d(now.forwarded_stateless, last.forwarded_stateless),
        );
        bump(
            OK_RETRANSMITTED,
            d(now.ok_retransmitted, last.ok_retransmitted),
        );
        bump(ACKS_ABSORBED, d(now.acks_absorbed, last.acks_absorbed));
        bump(
            OK_UNACKNOWLEDGED,
            d(now.ok_unacknowledged, last.ok_unacknowledged),
        );
        for (origin, by) in [
            (
                "downstream",
                d(now.responses_forwarded, last.responses_forwarded),
            ),
            (
                "proxy",
                d(now.responses_generated, last.responses_generated),
            ),
        ] {
            if by > 0 {
                counter!(RESPONSES, "origin" => origin).increment(by);
            }
        }
        for (reason, by) in [
            (
                "not_our_via",
                d(now.dropped_not_our_via, last.dropped_not_our_via),
            ),
            ("stray", d(now.dropped_stray, last.dropped_stray)),
            (
                "malformed",
                d(now.dropped_malformed, last.dropped_malformed),
            ),
            (
                "unroutable",
                d(now.dropped_unroutable, last.dropped_unroutable),
            ),
        ] {
            if by > 0 {
                counter!(DROPPED, "reason" => reason).increment(by);
            }
        }
        for (reason, by) in [
            ("sips_target", d(now.sips_refused, last.sips_refused)),
            (
                "shutting_down",
                d(now.refused_draining, last.refused_draining),
            ),
        ] {
            if by > 0 {
                counter!(REFUSED, "reason" => reason).increment(by);
            }
        }
        self.counters = now.clone();
    }

    /// Takes this core's share out of the in-flight gauge (its driver ends).
    pub(crate) fn retire(&mut self) {
        self.publish(&self.counters.clone(), 0);
    }
}

/// Counts the messages one shard's core was handed, published once per driver turn.
#[derive(Debug)]
pub(crate) struct ShardCount {
    label: Option<String>,
    pending: u64,
}

impl ShardCount {
    /// For the shard `shard` (`None`: not counted).
    pub(crate) fn new(shard: Option<usize>) -> ShardCount {
        ShardCount {
            label: shard.map(|s| s.to_string()),
            pending: 0,
        }
    }

    /// One more message.
    pub(crate) fn add(&mut self) {
        self.pending += 1;
    }

    /// Publishes what was counted since the last call.
    pub(crate) fn publish(&mut self) {
        if self.pending == 0 {
            return;
        }
        if let Some(l) = &self.label {
            counter!(SHARD_MESSAGES, "shard" => l.clone()).increment(self.pending);
        }
        self.pending = 0;
    }
}
