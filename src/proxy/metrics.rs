//! The proxy core's counters as Prometheus metrics, published by the driver as deltas (the
//! core itself has no I/O and knows nothing of a recorder).

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
/// Requests waiting for their final response.
pub const IN_FLIGHT: &str = "sipwire_proxy_in_flight";

/// What was published last.
#[derive(Debug, Default)]
pub(crate) struct Published(ProxyCounters);

impl Published {
    /// Publishes what changed since the last call.
    pub(crate) fn publish(&mut self, now: &ProxyCounters, in_flight: usize) {
        if *now == self.0 {
            gauge!(IN_FLIGHT).set(in_flight as f64);
            return;
        }
        let last = &self.0;
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
        gauge!(IN_FLIGHT).set(in_flight as f64);
        self.0 = now.clone();
    }
}
