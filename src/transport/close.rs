//! Graceful close of a stream flow (RFC 5923 §8.3, RFC 3261 §18), clock-free.
//!
//! Local close: the flow stops being offered for new transactions at once, keeps
//! delivering responses while it drains (the upper layer finishes or abandons its
//! transactions), then flushes its write queue, sends TLS close_notify (or a TCP FIN) and
//! discards what still arrives until the peer closes too or the linger time ends.
//!
//! Peer close (TLS close_notify or FIN): we start no new transaction on the flow, flush
//! what is queued, and close our side.

use std::time::{Duration, Instant};

/// How long we wait for the peer's close after sending ours.
pub(super) const DEFAULT_LINGER: Duration = Duration::from_secs(2);

/// Where a flow is in its close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClosePhase {
    /// Normal operation.
    Open,
    /// Local close requested: finish transactions until `until`.
    Draining {
        /// End of the drain period.
        until: Instant,
    },
    /// Write out what is queued, then send our close.
    Flushing,
    /// Our close was sent; inbound data is discarded until the peer closes.
    AwaitingPeerClose {
        /// Give up waiting at this time.
        until: Instant,
    },
    /// The peer closed first: flush, then close our side.
    PeerClosed,
    /// Finished: drop the connection.
    Closed,
}

/// What the driver must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CloseAction {
    /// Shut the write side down (TLS close_notify, TCP FIN).
    SendClose,
    /// Drop the connection.
    Finish,
}

/// The close state of one flow.
#[derive(Debug, Clone)]
pub(super) struct CloseMachine {
    phase: ClosePhase,
    linger: Duration,
}

impl Default for CloseMachine {
    fn default() -> Self {
        Self::new(DEFAULT_LINGER)
    }
}

impl CloseMachine {
    /// An open flow that waits `linger` for the peer's close after sending its own.
    pub(super) fn new(linger: Duration) -> Self {
        CloseMachine {
            phase: ClosePhase::Open,
            linger,
        }
    }

    /// The current phase.
    #[cfg(test)]
    pub(super) fn phase(&self) -> ClosePhase {
        self.phase
    }

    /// Starts a local close, draining for `drain` first. Has no effect once closing.
    pub(super) fn close(&mut self, now: Instant, drain: Duration) {
        if self.phase == ClosePhase::Open {
            self.phase = if drain.is_zero() {
                ClosePhase::Flushing
            } else {
                ClosePhase::Draining { until: now + drain }
            };
        }
    }

    /// The upper layer has no transaction left on the flow: stop draining now.
    #[cfg(test)]
    pub(super) fn drained(&mut self) {
        if let ClosePhase::Draining { .. } = self.phase {
            self.phase = ClosePhase::Flushing;
        }
    }

    /// The peer closed its side (close_notify or end of stream).
    pub(super) fn peer_closed(&mut self) {
        self.phase = match self.phase {
            ClosePhase::Open | ClosePhase::Draining { .. } | ClosePhase::Flushing => {
                ClosePhase::PeerClosed
            }
            ClosePhase::AwaitingPeerClose { .. } | ClosePhase::Closed => ClosePhase::Closed,
            ClosePhase::PeerClosed => ClosePhase::PeerClosed,
        };
    }

    /// The flow may be chosen for a new outbound transaction.
    #[cfg(test)]
    pub(super) fn reusable(&self) -> bool {
        self.phase == ClosePhase::Open
    }

    /// A new request from the peer may be delivered (RFC 5923 §8.3: a closing flow
    /// starts no new transaction).
    pub(super) fn accepts_requests(&self) -> bool {
        self.phase == ClosePhase::Open
    }

    /// Received messages are still delivered (responses finish transactions); after our
    /// close was sent everything is discarded.
    pub(super) fn delivers(&self) -> bool {
        !matches!(
            self.phase,
            ClosePhase::AwaitingPeerClose { .. } | ClosePhase::Closed
        )
    }

    /// New writes are still taken.
    pub(super) fn writable(&self) -> bool {
        matches!(
            self.phase,
            ClosePhase::Open
                | ClosePhase::Draining { .. }
                | ClosePhase::Flushing
                | ClosePhase::PeerClosed
        )
    }

    /// The next time [`CloseMachine::poll`] must run without other events.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.phase {
            ClosePhase::Draining { until } | ClosePhase::AwaitingPeerClose { until } => Some(until),
            _ => None,
        }
    }

    /// Advances with the time and whether all queued bytes are written.
    pub(super) fn poll(&mut self, now: Instant, writes_idle: bool) -> Option<CloseAction> {
        match self.phase {
            ClosePhase::Draining { until } if now >= until => {
                self.phase = ClosePhase::Flushing;
                self.poll(now, writes_idle)
            }
            ClosePhase::Flushing if writes_idle => {
                self.phase = ClosePhase::AwaitingPeerClose {
                    until: now + self.linger,
                };
                Some(CloseAction::SendClose)
            }
            ClosePhase::PeerClosed if writes_idle => {
                self.phase = ClosePhase::Closed;
                Some(CloseAction::SendClose)
            }
            ClosePhase::AwaitingPeerClose { until } if now >= until => {
                self.phase = ClosePhase::Closed;
                Some(CloseAction::Finish)
            }
            ClosePhase::Closed => Some(CloseAction::Finish),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_close_drains_flushes_then_waits_for_peer() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut c = CloseMachine::new(2 * s);
        assert!(c.reusable() && c.accepts_requests());
        c.close(t0, 5 * s);
        assert!(!c.reusable() && !c.accepts_requests() && c.delivers());
        assert_eq!(c.poll(t0 + 4 * s, true), None);
        assert_eq!(c.poll(t0 + 5 * s, false), None, "still writing");
        assert_eq!(c.phase(), ClosePhase::Flushing);
        assert_eq!(c.poll(t0 + 6 * s, true), Some(CloseAction::SendClose));
        assert!(!c.delivers(), "data after our close_notify is discarded");
        assert_eq!(c.deadline(), Some(t0 + 8 * s));
        c.peer_closed();
        assert_eq!(c.poll(t0 + 6 * s, true), Some(CloseAction::Finish));
    }

    #[test]
    fn linger_expires() {
        let t0 = Instant::now();
        let mut c = CloseMachine::new(Duration::from_secs(2));
        c.close(t0, Duration::ZERO);
        assert_eq!(c.poll(t0, true), Some(CloseAction::SendClose));
        assert_eq!(c.poll(t0 + Duration::from_secs(1), true), None);
        assert_eq!(
            c.poll(t0 + Duration::from_secs(2), true),
            Some(CloseAction::Finish)
        );
    }

    #[test]
    fn peer_close_flushes_then_closes() {
        let t0 = Instant::now();
        let mut c = CloseMachine::default();
        c.peer_closed();
        assert!(!c.reusable() && !c.accepts_requests() && c.writable());
        assert_eq!(c.poll(t0, false), None);
        assert_eq!(c.poll(t0, true), Some(CloseAction::SendClose));
        assert_eq!(c.poll(t0, true), Some(CloseAction::Finish));
    }

    #[test]
    fn drained_early() {
        let t0 = Instant::now();
        let mut c = CloseMachine::default();
        c.close(t0, Duration::from_secs(30));
        c.drained();
        assert_eq!(c.poll(t0, true), Some(CloseAction::SendClose));
    }
}
