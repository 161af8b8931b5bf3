//! Failover over resolved targets (RFC 3263 §4.3).
//!
//! Resolution happens once per transaction (§4): the current target stays fixed for
//! retransmissions, the ACK of a non-2xx and CANCEL; only a failure moves to the next target,
//! and the caller then sends a new request (new branch).

use super::plan::Target;

/// The failures that make a client try the next target (RFC 3263 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// A 503 (Service Unavailable) response.
    ServiceUnavailable,
    /// A transport error (connection refused, reset, ICMP unreachable, TLS failure...).
    TransportError,
    /// The transaction timed out.
    Timeout,
}

impl FailureKind {
    /// Maps a final response status to a failover trigger: only 503 qualifies.
    pub fn from_status(status: u16) -> Option<FailureKind> {
        (status == 503).then_some(FailureKind::ServiceUnavailable)
    }
}

/// A cursor over ordered targets: `next()` gives the first target, then each failure moves on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failover {
    targets: Vec<Target>,
    next: usize,
}

impl Failover {
    /// A cursor before the first target.
    pub fn new(targets: Vec<Target>) -> Failover {
        Failover { targets, next: 0 }
    }

    /// The target in use (the last one handed out), if any.
    pub fn current(&self) -> Option<&Target> {
        self.next.checked_sub(1).and_then(|i| self.targets.get(i))
    }

    /// Records a failure of the current target and returns the next one to try, if any.
    pub fn on_failure(&mut self, kind: FailureKind) -> Option<Target> {
        tracing::debug!(?kind, current = ?self.current(), "RFC 3263 failover");
        self.next()
    }

    /// Targets not tried yet.
    pub fn remaining(&self) -> usize {
        self.targets.len().saturating_sub(self.next)
    }

    /// All targets, in order.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }
}

impl Iterator for Failover {
    type Item = Target;

    fn next(&mut self) -> Option<Target> {
        let t = self.targets.get(self.next).cloned();
        if t.is_some() {
            self.next += 1;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TransportKind;

    fn t(port: u16) -> Target {
        Target::new(
            TransportKind::Tls,
            format!("192.0.2.1:{port}").parse().unwrap(),
        )
    }

    #[test]
    fn walks_targets_on_failure() {
        let mut f = Failover::new(vec![t(1), t(2), t(3)]);
        assert_eq!(f.current(), None);
        assert_eq!(f.remaining(), 3);
        assert_eq!(f.next(), Some(t(1)));
        // Retransmissions, ACK and CANCEL stay on the current target.
        assert_eq!(f.current(), Some(&t(1)));
        assert_eq!(f.current(), Some(&t(1)));
        assert_eq!(f.on_failure(FailureKind::ServiceUnavailable), Some(t(2)));
        assert_eq!(f.on_failure(FailureKind::TransportError), Some(t(3)));
        assert_eq!(f.current(), Some(&t(3)));
        assert_eq!(f.on_failure(FailureKind::Timeout), None);
        assert_eq!(f.remaining(), 0);
        assert_eq!(f.current(), Some(&t(3)));
        assert_eq!(f.next(), None);
    }

    #[test]
    fn only_503_triggers_failover() {
        assert_eq!(
            FailureKind::from_status(503),
            Some(FailureKind::ServiceUnavailable)
        );
        for s in [200, 404, 480, 500, 502, 504, 603] {
            assert_eq!(FailureKind::from_status(s), None);
        }
    }

    #[test]
    fn empty_list() {
        let mut f = Failover::new(vec![]);
        assert_eq!(f.next(), None);
        assert_eq!(f.current(), None);
    }
}
