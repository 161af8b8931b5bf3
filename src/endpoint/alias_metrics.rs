//! Metrics of RFC 5923 connection reuse (`metrics` facade; names in docs/alias.md).

use crate::alias::{AliasCounters, IgnoreReason};

/// Publishes what changed between two snapshots of one endpoint's counters (deltas, so that
/// several endpoints in one process add up).
pub(crate) fn publish_delta(last: &AliasCounters, now: &AliasCounters) {
    if now.rows != last.rows {
        metrics::gauge!("sipwire_alias_rows").increment(now.rows as f64 - last.rows as f64);
    }
    let delta = |a: u64, b: u64| b.saturating_sub(a);
    for (name, d) in [
        (
            "sipwire_alias_rows_added_total",
            delta(last.added, now.added),
        ),
        (
            "sipwire_alias_rows_updated_total",
            delta(last.updated, now.updated),
        ),
        (
            "sipwire_alias_rows_removed_total",
            delta(last.removed, now.removed),
        ),
    ] {
        if d > 0 {
            metrics::counter!(name).increment(d);
        }
    }
}

/// A request went over an aliased flow.
pub(crate) fn reused() {
    metrics::counter!("sipwire_alias_reuses_total").increment(1);
}

/// A request went over a flow opened (or RFC 3261-reused) instead of an aliased one.
pub(crate) fn connected() {
    metrics::counter!("sipwire_alias_new_flows_total").increment(1);
}

/// A peer's `alias` was not honoured.
pub(crate) fn refused(reason: IgnoreReason) {
    metrics::counter!("sipwire_alias_refusals_total", "reason" => reason.as_str()).increment(1);
}
