//! A bounded TTL cache with the clock passed in (`now`), used for DNS answers.

use super::plan::{Answer, Query};
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Limits applied to every TTL given to [`TtlCache::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlBounds {
    /// TTLs below this are raised to it.
    pub min: Duration,
    /// TTLs above this are lowered to it.
    pub max: Duration,
}

impl Default for TtlBounds {
    fn default() -> Self {
        TtlBounds {
            min: Duration::ZERO,
            max: Duration::from_secs(86_400),
        }
    }
}

#[derive(Debug, Clone)]
struct Entry<V> {
    value: V,
    expires: Instant,
}

/// Entries expire at `insert time + ttl`; when full, expired entries go first, then the entry
/// closest to expiry.
#[derive(Debug, Clone)]
pub struct TtlCache<K, V> {
    entries: HashMap<K, Entry<V>>,
    max_entries: usize,
    bounds: TtlBounds,
}

/// The DNS answer cache used by the driver.
pub type DnsCache = TtlCache<Query, Answer>;

impl<K: Eq + Hash + Clone, V> TtlCache<K, V> {
    /// An empty cache holding at most `max_entries` (0 disables caching).
    pub fn new(max_entries: usize, bounds: TtlBounds) -> TtlCache<K, V> {
        TtlCache {
            entries: HashMap::new(),
            max_entries,
            bounds,
        }
    }

    /// The value for `key` if it has not expired at `now`.
    pub fn get(&self, key: &K, now: Instant) -> Option<&V> {
        self.entries
            .get(key)
            .filter(|e| e.expires > now)
            .map(|e| &e.value)
    }

    /// Stores `value` for `ttl` (clamped to the bounds). A zero TTL stores nothing.
    pub fn insert(&mut self, key: K, value: V, ttl: Duration, now: Instant) {
        let ttl = ttl.clamp(self.bounds.min, self.bounds.max.max(self.bounds.min));
        let Some(expires) = now.checked_add(ttl) else {
            return;
        };
        if ttl.is_zero() || self.max_entries == 0 {
            self.entries.remove(&key);
            return;
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max_entries {
            self.purge(now);
            if self.entries.len() >= self.max_entries {
                let victim = self
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(k, _)| k.clone());
                if let Some(v) = victim {
                    self.entries.remove(&v);
                }
            }
        }
        self.entries.insert(key, Entry { value, expires });
    }

    /// Drops expired entries; returns how many.
    pub fn purge(&mut self, now: Instant) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, e| e.expires > now);
        before - self.entries.len()
    }

    /// Removes one key.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.entries.remove(key).map(|e| e.value)
    }

    /// Number of stored entries (expired ones included until purged).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn expires_by_the_given_clock() {
        let t0 = Instant::now();
        let mut c: TtlCache<&str, u32> = TtlCache::new(10, TtlBounds::default());
        c.insert("a", 1, secs(30), t0);
        assert_eq!(c.get(&"a", t0), Some(&1));
        assert_eq!(c.get(&"a", t0 + secs(29)), Some(&1));
        assert_eq!(c.get(&"a", t0 + secs(30)), None);
        assert_eq!(c.len(), 1);
        assert_eq!(c.purge(t0 + secs(31)), 1);
        assert!(c.is_empty());
    }

    #[test]
    fn bounds_clamp_ttl() {
        let t0 = Instant::now();
        let bounds = TtlBounds {
            min: secs(5),
            max: secs(60),
        };
        let mut c: TtlCache<u8, u8> = TtlCache::new(10, bounds);
        c.insert(1, 1, secs(1), t0);
        assert_eq!(c.get(&1, t0 + secs(4)), Some(&1));
        c.insert(2, 2, secs(10_000), t0);
        assert_eq!(c.get(&2, t0 + secs(59)), Some(&2));
        assert_eq!(c.get(&2, t0 + secs(60)), None);
    }

    #[test]
    fn zero_ttl_and_zero_capacity_store_nothing() {
        let t0 = Instant::now();
        let mut c: TtlCache<u8, u8> = TtlCache::new(10, TtlBounds::default());
        c.insert(1, 1, Duration::ZERO, t0);
        assert!(c.is_empty());
        let mut c: TtlCache<u8, u8> = TtlCache::new(0, TtlBounds::default());
        c.insert(1, 1, secs(10), t0);
        assert!(c.is_empty());
    }

    #[test]
    fn full_cache_evicts_expired_then_soonest() {
        let t0 = Instant::now();
        let mut c: TtlCache<u8, u8> = TtlCache::new(2, TtlBounds::default());
        c.insert(1, 1, secs(10), t0);
        c.insert(2, 2, secs(100), t0);
        c.insert(3, 3, secs(50), t0);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&1, t0), None);
        assert_eq!(c.get(&2, t0), Some(&2));
        assert_eq!(c.get(&3, t0), Some(&3));
        // At t0+60, entry 3 expired: it is dropped first, 2 survives.
        c.insert(4, 4, secs(10), t0 + secs(60));
        assert_eq!(c.get(&2, t0 + secs(60)), Some(&2));
        assert_eq!(c.get(&4, t0 + secs(60)), Some(&4));
        // Replacing an existing key never evicts another.
        c.insert(4, 5, secs(10), t0 + secs(60));
        assert_eq!(c.len(), 2);
        assert_eq!(c.remove(&4), Some(5));
    }
}
