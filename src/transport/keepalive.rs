//! RFC 5626 CRLF keep-alive on stream flows (§4.4.1, §5.4), as a clock-free state
//! machine: the driver feeds events with the current time and asks what to do.
//!
//! - Answering: a CRLFCRLF ping between messages is answered with CRLF at once
//!   ([`KeepAlive::on_ping`]); this needs no state.
//! - Pinging (optional): every `interval` of silence we send CRLFCRLF; if no CRLF pong
//!   arrives within `pong_timeout` (10 s in RFC 5626 §4.4.1) the flow has failed.

use std::time::{Duration, Instant};

/// RFC 5626 §4.4.1: a pong must arrive within 10 seconds.
pub(super) const PONG_TIMEOUT: Duration = Duration::from_secs(10);

/// The CRLFCRLF ping.
pub(super) const PING: &[u8] = b"\r\n\r\n";
/// The CRLF pong.
pub(super) const PONG: &[u8] = b"\r\n";

/// What the driver must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeepAliveAction {
    /// Send [`PING`] between two messages and tell the framer a pong is awaited.
    SendPing,
    /// No pong came in time: the flow has failed; close it.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Pinging disabled.
    Off,
    /// The next ping is due at this time (pushed back by traffic).
    Idle { next_ping: Instant },
    /// A ping was sent; the pong is due by this time.
    AwaitingPong { deadline: Instant },
}

/// Keep-alive state of one flow.
#[derive(Debug, Clone)]
pub(super) struct KeepAlive {
    interval: Option<Duration>,
    pong_timeout: Duration,
    state: State,
}

impl KeepAlive {
    /// Keep-alive that pings after `interval` of inbound silence (`None`: never ping,
    /// only answer the peer's pings).
    pub(super) fn new(interval: Option<Duration>, pong_timeout: Duration, now: Instant) -> Self {
        let state = match interval {
            Some(i) => State::Idle { next_ping: now + i },
            None => State::Off,
        };
        KeepAlive {
            interval,
            pong_timeout,
            state,
        }
    }

    /// The answer to a ping from the peer: always a pong, at once (RFC 5626 §5.4).
    pub(super) fn on_ping(&self) -> &'static [u8] {
        PONG
    }

    /// A pong arrived.
    pub(super) fn on_pong(&mut self, now: Instant) {
        if let State::AwaitingPong { .. } = self.state {
            self.rearm(now);
        }
    }

    /// Bytes arrived from the peer: the flow is alive, the next ping moves back. A flow
    /// awaiting a pong keeps waiting for it (the pong itself proves liveness).
    pub(super) fn on_inbound(&mut self, now: Instant) {
        if let State::Idle { .. } = self.state {
            self.rearm(now);
        }
    }

    fn rearm(&mut self, now: Instant) {
        self.state = match self.interval {
            Some(i) => State::Idle { next_ping: now + i },
            None => State::Off,
        };
    }

    /// A new ping interval (a reload). A flow waiting for its next ping waits the new
    /// interval from `now`; a ping already out keeps waiting for its pong, and the new
    /// interval follows it (`None`: pinging stops then).
    pub(super) fn set_interval(&mut self, interval: Option<Duration>, now: Instant) {
        if self.interval == interval {
            return;
        }
        self.interval = interval;
        match self.state {
            State::AwaitingPong { .. } => {}
            State::Off | State::Idle { .. } => self.rearm(now),
        }
    }

    /// When [`KeepAlive::poll`] has something to do next.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Off => None,
            State::Idle { next_ping } => Some(next_ping),
            State::AwaitingPong { deadline } => Some(deadline),
        }
    }

    /// True while a pong is awaited.
    #[cfg(test)]
    pub(super) fn awaiting_pong(&self) -> bool {
        matches!(self.state, State::AwaitingPong { .. })
    }

    /// What to do at `now`. After `SendPing` the pong timer runs.
    pub(super) fn poll(&mut self, now: Instant) -> Option<KeepAliveAction> {
        match self.state {
            State::Off => None,
            State::Idle { next_ping } if now >= next_ping => {
                self.state = State::AwaitingPong {
                    deadline: now + self.pong_timeout,
                };
                Some(KeepAliveAction::SendPing)
            }
            State::AwaitingPong { deadline } if now >= deadline => Some(KeepAliveAction::Failed),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_pong_cycle() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut k = KeepAlive::new(Some(30 * s), PONG_TIMEOUT, t0);
        assert_eq!(k.poll(t0 + 29 * s), None);
        k.on_inbound(t0 + 20 * s);
        assert_eq!(k.deadline(), Some(t0 + 50 * s));
        assert_eq!(k.poll(t0 + 50 * s), Some(KeepAliveAction::SendPing));
        assert!(k.awaiting_pong());
        // Other traffic does not cancel the wait for the pong.
        k.on_inbound(t0 + 55 * s);
        assert_eq!(k.poll(t0 + 59 * s), None);
        k.on_pong(t0 + 59 * s);
        assert!(!k.awaiting_pong());
        assert_eq!(k.deadline(), Some(t0 + 89 * s));
    }

    #[test]
    fn no_pong_fails_after_ten_seconds() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut k = KeepAlive::new(Some(5 * s), PONG_TIMEOUT, t0);
        assert_eq!(k.poll(t0 + 5 * s), Some(KeepAliveAction::SendPing));
        assert_eq!(k.poll(t0 + 14 * s), None);
        assert_eq!(k.poll(t0 + 15 * s), Some(KeepAliveAction::Failed));
    }

    #[test]
    fn a_new_interval_applies_from_now_and_after_a_pending_pong() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut k = KeepAlive::new(None, PONG_TIMEOUT, t0);
        k.set_interval(Some(30 * s), t0 + 5 * s);
        assert_eq!(k.deadline(), Some(t0 + 35 * s));
        k.set_interval(Some(30 * s), t0 + 20 * s);
        assert_eq!(k.deadline(), Some(t0 + 35 * s), "unchanged: not re-armed");
        assert_eq!(k.poll(t0 + 35 * s), Some(KeepAliveAction::SendPing));
        k.set_interval(None, t0 + 36 * s);
        assert!(k.awaiting_pong(), "the ping out still waits for its pong");
        k.on_pong(t0 + 37 * s);
        assert_eq!(k.deadline(), None);
    }

    #[test]
    fn off_only_answers() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(None, PONG_TIMEOUT, t0);
        assert_eq!(k.deadline(), None);
        assert_eq!(k.poll(t0 + Duration::from_secs(3600)), None);
        assert_eq!(k.on_ping(), b"\r\n");
        k.on_pong(t0);
        assert_eq!(k.deadline(), None);
    }
}
