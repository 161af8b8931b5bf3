//! Idle and header (slowloris) timers of a stream flow, clock-free.
//!
//! - Idle: a flow with no bytes in either direction for `idle_timeout` is closed
//!   (RFC 3261 §18 asks to keep connections at least 64·T1 = 32 s; the default is 600 s).
//! - Header: a peer must complete a message's header block within `header_timeout` of
//!   its first byte. A new inbound connection is in that state from its accept: a peer
//!   that connects and sends nothing, or drips a header byte by byte, is cut.
//!
//! [`HeaderWatch`] tells, from the framer's buffered bytes, whether a header block is
//! pending; it scans each byte once.

use std::time::{Duration, Instant};

use memchr::memmem;

/// Which timer expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expiry {
    /// No traffic for the idle timeout.
    Idle,
    /// A header block was not completed in time.
    Header,
}

impl Expiry {
    /// Short label for metrics and logs.
    pub(super) fn reason(self) -> &'static str {
        match self {
            Expiry::Idle => "idle_timeout",
            Expiry::Header => "header_timeout",
        }
    }
}

/// Idle and header deadlines of one flow.
#[derive(Debug, Clone)]
pub(super) struct FlowTimers {
    idle_timeout: Duration,
    header_timeout: Duration,
    last_activity: Instant,
    header_since: Option<Instant>,
}

impl FlowTimers {
    /// Timers for a flow opened at `now`. `expect_header` starts the header timer at once
    /// (inbound connections: the peer must send a message soon).
    pub(super) fn new(
        idle_timeout: Duration,
        header_timeout: Duration,
        now: Instant,
        expect_header: bool,
    ) -> Self {
        FlowTimers {
            idle_timeout,
            header_timeout,
            last_activity: now,
            header_since: expect_header.then_some(now),
        }
    }

    /// New timeouts (a reload): the deadlines move at once, still counted from the last
    /// activity and the start of the pending header block.
    pub(super) fn set_timeouts(&mut self, idle_timeout: Duration, header_timeout: Duration) {
        self.idle_timeout = idle_timeout;
        self.header_timeout = header_timeout;
    }

    /// Bytes went in or out.
    pub(super) fn on_activity(&mut self, now: Instant) {
        self.last_activity = now;
    }

    /// The framer now holds a partial header block (`true`) or not (`false`). The timer
    /// keeps its start while the same header stays pending.
    pub(super) fn set_header_pending(&mut self, pending: bool, now: Instant) {
        match (pending, self.header_since) {
            (true, None) => self.header_since = Some(now),
            (false, Some(_)) => self.header_since = None,
            _ => {}
        }
    }

    /// The earliest deadline.
    pub(super) fn deadline(&self) -> Instant {
        let idle = self.last_activity + self.idle_timeout;
        match self.header_since {
            Some(t) => idle.min(t + self.header_timeout),
            None => idle,
        }
    }

    /// Which timer, if any, has expired at `now` (the header timer wins a tie).
    pub(super) fn check(&self, now: Instant) -> Option<Expiry> {
        if self
            .header_since
            .is_some_and(|t| now >= t + self.header_timeout)
        {
            return Some(Expiry::Header);
        }
        (now >= self.last_activity + self.idle_timeout).then_some(Expiry::Idle)
    }
}

/// Tracks whether the partial message at the start of a framer's buffer still lacks the
/// end of its header block.
#[derive(Debug, Default, Clone)]
pub(super) struct HeaderWatch {
    /// Bytes of the current partial message already searched for CRLFCRLF.
    scanned: usize,
    /// The header block of the partial message is complete (body pending).
    complete: bool,
}

impl HeaderWatch {
    /// Re-evaluates after a read. `buffered` is what the framer holds once every complete
    /// frame was taken; `frames_taken` says whether any frame was taken since the last
    /// call (the buffer then starts a new message). Returns true while a header block is
    /// pending.
    pub(super) fn update(&mut self, buffered: &[u8], frames_taken: bool) -> bool {
        if frames_taken {
            self.scanned = 0;
            self.complete = false;
        }
        // Leading CRLFs are keep-alives or padding, not a message yet.
        let start = buffered
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(buffered.len());
        let msg = buffered.get(start..).unwrap_or(&[]);
        if msg.is_empty() {
            self.scanned = 0;
            self.complete = false;
            return false;
        }
        if self.complete {
            return false;
        }
        let from = self.scanned.saturating_sub(3).min(msg.len());
        if memmem::find(msg.get(from..).unwrap_or(&[]), b"\r\n\r\n").is_some() {
            self.complete = true;
            return false;
        }
        self.scanned = msg.len();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_and_header_deadlines() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = FlowTimers::new(600 * s, 5 * s, t0, true);
        assert_eq!(t.deadline(), t0 + 5 * s);
        assert_eq!(t.check(t0 + 5 * s), Some(Expiry::Header));
        t.set_header_pending(false, t0 + 1 * s);
        assert_eq!(t.check(t0 + 5 * s), None);
        t.set_header_pending(true, t0 + 10 * s);
        t.set_header_pending(true, t0 + 12 * s);
        assert_eq!(t.check(t0 + 14 * s), None);
        assert_eq!(t.check(t0 + 15 * s), Some(Expiry::Header));
        t.set_header_pending(false, t0 + 15 * s);
        t.on_activity(t0 + 15 * s);
        assert_eq!(t.deadline(), t0 + 615 * s);
        assert_eq!(t.check(t0 + 615 * s), Some(Expiry::Idle));
    }

    #[test]
    fn new_timeouts_count_from_the_last_activity() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = FlowTimers::new(600 * s, 32 * s, t0, false);
        t.on_activity(t0 + 10 * s);
        t.set_timeouts(60 * s, 5 * s);
        assert_eq!(t.deadline(), t0 + 70 * s);
        t.set_header_pending(true, t0 + 20 * s);
        assert_eq!(t.deadline(), t0 + 25 * s);
        // Already past when lowered: due at once.
        t.set_timeouts(60 * s, 1 * s);
        assert_eq!(t.check(t0 + 22 * s), Some(Expiry::Header));
    }

    #[test]
    fn outbound_starts_without_header_timer() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let t = FlowTimers::new(60 * s, 5 * s, t0, false);
        assert_eq!(t.check(t0 + 30 * s), None);
    }

    #[test]
    fn header_watch() {
        let mut w = HeaderWatch::default();
        assert!(!w.update(b"", false));
        assert!(!w.update(b"\r\n", false), "CRLF alone is not a message");
        assert!(w.update(b"OPTIONS sip:x SIP/2.0\r\n", false));
        assert!(w.update(b"OPTIONS sip:x SIP/2.0\r\nVia: x\r\n\r", false));
        assert!(!w.update(b"OPTIONS sip:x SIP/2.0\r\nVia: x\r\n\r\n", false));
        assert!(!w.update(b"OPTIONS sip:x SIP/2.0\r\nVia: x\r\n\r\nbo", false));
        // Next message after a frame was taken.
        assert!(w.update(b"INV", true));
        assert!(!w.update(b"", true));
    }
}
