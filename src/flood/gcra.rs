//! A token bucket written as GCRA (the generic cell rate algorithm): one `Instant` per
//! bucket instead of a token count and a refill time, so a tracked source costs a few bytes
//! and a check is two comparisons. Fed `now`; no clock.

use std::time::{Duration, Instant};

/// A rate: `count` events per `per`, with bursts of up to `burst` events back to back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Events allowed per `per` on average.
    pub count: u32,
    /// The period `count` is measured over.
    pub per: Duration,
    /// Events allowed at once after a quiet spell (at least 1).
    pub burst: u32,
}

impl Rate {
    /// `count` events per second, bursts of `burst`.
    pub fn per_second(count: u32, burst: u32) -> Rate {
        Rate {
            count,
            per: Duration::from_secs(1),
            burst,
        }
    }

    /// The time one event "costs": `per / count` (a zero count costs the whole period).
    pub(crate) fn interval(&self) -> Duration {
        self.per / self.count.max(1)
    }

    /// How far ahead of `now` the bucket may run: `burst` intervals.
    fn tolerance(&self) -> Duration {
        self.interval().saturating_mul(self.burst.max(1))
    }
}

/// One bucket: the theoretical arrival time of the next event at the sustained rate.
/// An event conforms when that time is less than `burst` intervals ahead of `now`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    tat: Instant,
}

impl Bucket {
    /// A full bucket (a burst is available at once).
    pub(crate) fn full(now: Instant) -> Bucket {
        Bucket { tat: now }
    }

    /// Takes one event: `Ok` if it conforms (the bucket is charged), else `Err` with how
    /// long until one would (the bucket is left alone: refused events cost nothing, so a
    /// source that stops flooding recovers at the sustained rate).
    pub(crate) fn take(&mut self, rate: &Rate, now: Instant) -> Result<(), Duration> {
        let tat = self.tat.max(now);
        let next = tat + rate.interval();
        let ahead = next.saturating_duration_since(now);
        let tolerance = rate.tolerance();
        if ahead <= tolerance {
            self.tat = next;
            Ok(())
        } else {
            Err(ahead - tolerance)
        }
    }

    /// True when the bucket is full again: it remembers nothing worth keeping.
    #[cfg(test)]
    pub(crate) fn is_full(&self, now: Instant) -> bool {
        self.tat <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_sustained_rate() {
        let t0 = Instant::now();
        let r = Rate::per_second(10, 5);
        let mut b = Bucket::full(t0);
        for _ in 0..5 {
            assert_eq!(b.take(&r, t0), Ok(()));
        }
        // The sixth at once is refused; one interval (100 ms) later it conforms.
        let wait = b.take(&r, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        assert!(b.take(&r, t0 + Duration::from_millis(99)).is_err());
        assert_eq!(b.take(&r, t0 + Duration::from_millis(100)), Ok(()));
        // At exactly the sustained rate everything conforms.
        let mut t = t0 + Duration::from_millis(100);
        for _ in 0..100 {
            t += Duration::from_millis(100);
            assert_eq!(b.take(&r, t), Ok(()));
        }
        // After a quiet second the bucket is full: a whole burst again.
        let t = t + Duration::from_secs(1);
        assert!(b.is_full(t));
        for _ in 0..5 {
            assert_eq!(b.take(&r, t), Ok(()));
        }
        assert!(b.take(&r, t).is_err());
    }

    #[test]
    fn refusals_cost_nothing() {
        let t0 = Instant::now();
        let r = Rate::per_second(1, 1);
        let mut b = Bucket::full(t0);
        assert!(b.take(&r, t0).is_ok());
        for i in 0..1000 {
            assert!(b.take(&r, t0 + Duration::from_micros(i)).is_err());
        }
        assert!(b.take(&r, t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn slow_rates() {
        // 5 per minute, bursts of 5: the sixth waits 12 s.
        let t0 = Instant::now();
        let r = Rate {
            count: 5,
            per: Duration::from_secs(60),
            burst: 5,
        };
        let mut b = Bucket::full(t0);
        for _ in 0..5 {
            assert!(b.take(&r, t0).is_ok());
        }
        assert_eq!(b.take(&r, t0), Err(Duration::from_secs(12)));
    }
}
