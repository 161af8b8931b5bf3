//! When a TCP collector may be dialled again after a failure: exponential, bounded, pure
//! (fed `now`), so that a collector that is down costs one connect attempt per delay, not
//! one per captured message.

use std::time::{Duration, Instant};

/// Reconnect timing of one collector.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    delay: Duration,
    not_before: Option<Instant>,
}

impl Backoff {
    /// Waits `min` after the first failure, doubling up to `max` while failures follow.
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            delay: min,
            not_before: None,
        }
    }

    /// Whether a connect may be tried at `now`.
    pub(crate) fn may_try(&self, now: Instant) -> bool {
        match self.not_before {
            None => true,
            Some(t) => now >= t,
        }
    }

    /// A connect (or a write on the connection) failed at `now`.
    pub(crate) fn failed(&mut self, now: Instant) {
        self.not_before = Some(now + self.delay);
        self.delay = (self.delay * 2).min(self.max);
    }

    /// Connected: the next failure waits `min` again.
    pub(crate) fn connected(&mut self) {
        self.delay = self.min;
        self.not_before = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_bound_and_resets() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        let mut b = Backoff::new(ms(100), ms(350));
        assert!(b.may_try(t0));
        b.failed(t0);
        assert!(!b.may_try(t0 + ms(99)));
        assert!(b.may_try(t0 + ms(100)));
        let t1 = t0 + ms(100);
        b.failed(t1);
        assert!(!b.may_try(t1 + ms(199)));
        assert!(b.may_try(t1 + ms(200)));
        let t2 = t1 + ms(200);
        b.failed(t2);
        assert!(b.may_try(t2 + ms(350)), "bounded at max");
        b.failed(t2 + ms(350));
        assert!(b.may_try(t2 + ms(700)));
        b.connected();
        assert!(b.may_try(t2 + ms(700)));
        b.failed(t0);
        assert!(b.may_try(t0 + ms(100)), "back to min after a success");
    }
}
