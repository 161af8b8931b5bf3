//! Bounded waits. Real sockets and tasks settle in their own time, so a test polls for the
//! state it expects instead of sleeping a guessed amount, and gives up loudly. Standalone (the
//! TLS benchmarks include it with `#[path]`).

use std::time::Duration;

/// Bound for every wait of the loopback tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// Waits until `cond` holds, checking every millisecond (fine enough for the benchmarks that
/// time what they wait for); panics naming `what` once `limit` has passed.
pub async fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
