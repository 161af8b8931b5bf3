//! Metrics of RFC 5923 connection reuse (`metrics` facade; names in docs/alias.md).

use crate::alias::{AliasCounters, IgnoreReason};

/// Publishes the table gauges from the pure counters.
pub fn publish(c: &AliasCounters) {
    metrics::gauge!("sipwire_alias_rows").set(c.rows as f64);
    metrics::counter!("sipwire_alias_rows_added_total").absolute(c.added);
    metrics::counter!("sipwire_alias_rows_updated_total").absolute(c.updated);
    metrics::counter!("sipwire_alias_rows_removed_total").absolute(c.removed);
}

/// A request went over an aliased flow.
pub fn reused() {
    metrics::counter!("sipwire_alias_reuses_total").increment(1);
}

/// A request went over a flow opened (or RFC 3261-reused) instead of an aliased one.
pub fn connected() {
    metrics::counter!("sipwire_alias_new_flows_total").increment(1);
}

/// A peer's `alias` was not honoured.
pub fn refused(reason: IgnoreReason) {
    metrics::counter!("sipwire_alias_refusals_total", "reason" => reason.as_str()).increment(1);
}
