//! The transaction timers (RFC 3261 §17 and Table 4 of Appendix A; RFC 6026 §8.4 and
//! §8.7 for Timers M and L), all derived from three constants so that a deployment tunes
//! T1, T2 and T4 and never a timer by itself.

use std::fmt;
use std::time::{Duration, Instant};

use super::error::TransactionError;

/// RFC 3261 §17.1.1.1: the round-trip time estimate, 500 ms by default.
pub const DEFAULT_T1: Duration = Duration::from_millis(500);
/// RFC 3261 §17.1.2.2: the longest retransmission interval of non-INVITE requests and
/// INVITE responses.
pub const DEFAULT_T2: Duration = Duration::from_secs(4);
/// RFC 3261 §17.1.2.2: how long a message may stay in the network.
pub const DEFAULT_T4: Duration = Duration::from_secs(5);
/// RFC 3261 §17.2.1: an INVITE server sends 100 Trying itself when the TU has not
/// answered within 200 ms.
pub const DEFAULT_TRYING_DELAY: Duration = Duration::from_millis(200);
/// RFC 3261 §17.1.1.2: Timer D is at least 32 s on unreliable transports, because the
/// client does not know the server's T1 (its Timer H is 64·T1 = 32 s by default).
const TIMER_D_MIN: Duration = Duration::from_secs(32);

/// The named timers of RFC 3261 §17 and RFC 6026.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// INVITE request retransmission (client, unreliable transports): T1, doubling.
    A,
    /// INVITE transaction timeout (client, Calling): 64·T1.
    B,
    /// Wait for response retransmissions (INVITE client, Completed).
    D,
    /// Non-INVITE request retransmission (client, unreliable): T1 doubling up to T2.
    E,
    /// Non-INVITE transaction timeout (client): 64·T1.
    F,
    /// INVITE final response retransmission (server, unreliable): T1 doubling up to T2.
    G,
    /// Wait for the ACK (INVITE server, Completed): 64·T1.
    H,
    /// Wait for ACK retransmissions (INVITE server, Confirmed).
    I,
    /// Wait for request retransmissions (non-INVITE server, Completed).
    J,
    /// Wait for response retransmissions (non-INVITE client, Completed).
    K,
    /// RFC 6026: wait for INVITE retransmissions after a 2xx (server, Accepted): 64·T1.
    L,
    /// RFC 6026: wait for 2xx retransmissions (INVITE client, Accepted): 64·T1.
    M,
}

impl fmt::Display for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timer {self:?}")
    }
}

/// T1, T2, T4 and the automatic 100 Trying of INVITE servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate (default 500 ms). Must be non-zero.
    pub t1: Duration,
    /// Cap of the E and G retransmission intervals (default 4 s). Must be at least T1.
    pub t2: Duration,
    /// Maximum message lifetime in the network (default 5 s).
    pub t4: Duration,
    /// When an INVITE server sends 100 Trying by itself if the TU has not sent a
    /// provisional or final response yet (§17.2.1, default 200 ms). `Some(ZERO)`: at once
    /// (what a stateful proxy does, §16.2); `None`: never (the TU sends its own).
    pub trying_delay: Option<Duration>,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: DEFAULT_T1,
            t2: DEFAULT_T2,
            t4: DEFAULT_T4,
            trying_delay: Some(DEFAULT_TRYING_DELAY),
        }
    }
}

impl TimerConfig {
    /// Refuses values the timers cannot run with: T1 zero (a retransmission timer would
    /// fire in a loop) or T2 below T1.
    pub fn check(&self) -> Result<(), TransactionError> {
        if self.t1.is_zero() {
            return Err(TransactionError::BadTimers("T1 is zero"));
        }
        if self.t2 < self.t1 {
            return Err(TransactionError::BadTimers("T2 is below T1"));
        }
        Ok(())
    }

    fn t1x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// The first interval of `timer` (the only one for the timers that do not repeat),
    /// on a reliable or unreliable transport. A, E and G do not run on reliable transports
    /// (the value is still T1: callers ask only for unreliable ones).
    pub fn duration(&self, timer: Timer, reliable: bool) -> Duration {
        let unreliable_only = |d: Duration| if reliable { Duration::ZERO } else { d };
        match timer {
            Timer::A | Timer::E | Timer::G => self.t1,
            Timer::B | Timer::F | Timer::H | Timer::L | Timer::M => self.t1x64(),
            Timer::D => unreliable_only(self.t1x64().max(TIMER_D_MIN)),
            Timer::I | Timer::K => unreliable_only(self.t4),
            Timer::J => unreliable_only(self.t1x64()),
        }
    }

    /// The interval after `current` for a retransmission timer: Timer A doubles without
    /// limit (§17.1.1.2); Timers E and G double up to T2 (§17.1.2.2, §17.2.1).
    pub fn next_interval(&self, timer: Timer, current: Duration) -> Duration {
        let doubled = current.saturating_mul(2);
        match timer {
            Timer::A => doubled,
            _ => doubled.min(self.t2),
        }
    }
}

/// `now + d`, or `None` when that is beyond what `Instant` can hold (then the timer never
/// fires instead of panicking on overflow).
pub(crate) fn after(now: Instant, d: Duration) -> Option<Instant> {
    now.checked_add(d)
}

/// A retransmission timer: when it fires next and the interval that led there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retransmit {
    pub(crate) at: Instant,
    pub(crate) interval: Duration,
}

impl Retransmit {
    /// A firing `interval` after `now` (the next interval is computed from this one).
    pub(crate) fn start(now: Instant, interval: Duration) -> Option<Retransmit> {
        after(now, interval).map(|at| Retransmit { at, interval })
    }
}

/// The timers among `slots` that are due at `now`, earliest first. A machine fires each
/// at most once per `handle_timeout`, so a late driver gets one retransmission, not a
/// burst, and the loop always ends.
pub(crate) fn due_timers<T: Copy + Ord>(slots: &[(T, Option<Instant>)], now: Instant) -> Vec<T> {
    let mut due: Vec<(Instant, T)> = slots
        .iter()
        .filter_map(|&(t, at)| at.filter(|&at| at <= now).map(|at| (at, t)))
        .collect();
    due.sort();
    due.into_iter().map(|(_, t)| t).collect()
}

/// The earliest of the slots' deadlines.
pub(crate) fn earliest<T>(slots: &[(T, Option<Instant>)]) -> Option<Instant> {
    slots.iter().filter_map(|&(_, at)| at).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_table_4() {
        let c = TimerConfig::default();
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        for (timer, unreliable, reliable) in [
            (Timer::A, ms(500), ms(500)),
            (Timer::B, s(32), s(32)),
            (Timer::D, s(32), s(0)),
            (Timer::E, ms(500), ms(500)),
            (Timer::F, s(32), s(32)),
            (Timer::G, ms(500), ms(500)),
            (Timer::H, s(32), s(32)),
            (Timer::I, s(5), s(0)),
            (Timer::J, s(32), s(0)),
            (Timer::K, s(5), s(0)),
            (Timer::L, s(32), s(32)),
            (Timer::M, s(32), s(32)),
        ] {
            assert_eq!(c.duration(timer, false), unreliable, "{timer} unreliable");
            assert_eq!(c.duration(timer, true), reliable, "{timer} reliable");
        }
        assert_eq!(c.trying_delay, Some(ms(200)));
    }

    #[test]
    fn timers_derive_from_t1_t2_t4() {
        let c = TimerConfig {
            t1: Duration::from_secs(1),
            t2: Duration::from_secs(8),
            t4: Duration::from_secs(9),
            trying_delay: None,
        };
        assert_eq!(c.duration(Timer::B, false), Duration::from_secs(64));
        // D is at least 32 s, and covers a server Timer H of 64·T1 when T1 is larger.
        assert_eq!(c.duration(Timer::D, false), Duration::from_secs(64));
        assert_eq!(c.duration(Timer::I, false), Duration::from_secs(9));
        let small = TimerConfig {
            t1: Duration::from_millis(100),
            ..c
        };
        assert_eq!(small.duration(Timer::D, false), Duration::from_secs(32));
        assert_eq!(small.duration(Timer::J, false), Duration::from_millis(6400));
    }

    #[test]
    fn a_doubles_e_and_g_cap_at_t2() {
        let c = TimerConfig::default();
        let mut a = c.duration(Timer::A, false);
        let mut e = c.duration(Timer::E, false);
        let (mut sa, mut se) = (vec![], vec![]);
        for _ in 0..6 {
            sa.push(a.as_millis());
            se.push(e.as_millis());
            a = c.next_interval(Timer::A, a);
            e = c.next_interval(Timer::E, e);
        }
        assert_eq!(sa, [500, 1000, 2000, 4000, 8000, 16000]);
        assert_eq!(se, [500, 1000, 2000, 4000, 4000, 4000]);
        assert_eq!(c.next_interval(Timer::G, Duration::from_secs(4)), c.t2);
    }

    #[test]
    fn bad_configs_are_refused() {
        let zero = TimerConfig {
            t1: Duration::ZERO,
            ..TimerConfig::default()
        };
        assert!(matches!(zero.check(), Err(TransactionError::BadTimers(_))));
        let low_t2 = TimerConfig {
            t2: Duration::from_millis(100),
            ..TimerConfig::default()
        };
        assert!(low_t2.check().is_err());
        assert!(TimerConfig::default().check().is_ok());
        // Huge values never panic.
        let huge = TimerConfig {
            t1: Duration::MAX,
            t2: Duration::MAX,
            ..TimerConfig::default()
        };
        assert_eq!(huge.duration(Timer::B, false), Duration::MAX);
        assert_eq!(after(Instant::now(), Duration::MAX), None);
    }
}
