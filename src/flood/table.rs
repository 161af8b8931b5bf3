//! The sources a limiter remembers: a map with a hard cap, the least recently seen source
//! forgotten first. A peer spraying source addresses (trivial over UDP) only churns the
//! table; it cannot grow it. Forgetting a source only makes the limiter more lenient to it
//! (its buckets start full again), and the sources being limited are, by definition, the
//! ones seen most recently.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// Keys chosen by peers: a seeded hash, so collisions cannot be planned.
type Seeded<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A map of at most `cap` entries with least-recently-used eviction.
#[derive(Debug)]
pub(crate) struct Lru<K, V> {
    cap: usize,
    /// Each entry with the stamp of its last use.
    map: Seeded<K, (u64, V)>,
    /// Stamps in use order, oldest first.
    order: BTreeMap<u64, K>,
    next: u64,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    /// An empty table holding at most `cap` entries (at least one).
    pub(crate) fn new(cap: usize) -> Self {
        Lru {
            cap: cap.max(1),
            map: Seeded::default(),
            order: BTreeMap::new(),
            next: 0,
        }
    }

    /// The entry of `key`, marked as just used; made with `make` when absent (evicting the
    /// least recently used entry when the table is full). The flag says whether one was
    /// evicted.
    pub(crate) fn touch(&mut self, key: K, make: impl FnOnce() -> V) -> (&mut V, bool) {
        let stamp = self.next;
        self.next += 1;
        let mut evicted = false;
        if let Some((old, _)) = self.map.get(&key) {
            self.order.remove(old);
        } else if self.map.len() >= self.cap {
            if let Some((_, k)) = self.order.pop_first() {
                self.map.remove(&k);
                evicted = true;
            }
        }
        self.order.insert(stamp, key.clone());
        let e = self.map.entry(key).or_insert_with(|| (stamp, make()));
        e.0 = stamp;
        (&mut e.1, evicted)
    }

    /// The entry of `key` without marking it used.
    pub(crate) fn peek(&self, key: &K) -> Option<&V> {
        self.map.get(key).map(|(_, v)| v)
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_stalest() {
        let mut t: Lru<u32, u32> = Lru::new(3);
        for k in [1, 2, 3] {
            assert!(!t.touch(k, || k * 10).1);
        }
        // 1 is used again: 2 is now the stalest.
        *t.touch(1, || 0).0 += 1;
        let (v, evicted) = t.touch(4, || 40);
        assert_eq!((*v, evicted), (40, true));
        assert!(t.peek(&2).is_none());
        assert_eq!(t.peek(&1), Some(&11));
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn spraying_never_grows_it() {
        let mut t: Lru<u32, ()> = Lru::new(100);
        for k in 0..100_000 {
            t.touch(k, || ());
            // A steady source used between sprayed ones is never the stalest.
            t.touch(u32::MAX, || ());
        }
        assert_eq!(t.len(), 100);
        assert_eq!(t.order.len(), 100);
        assert!(t.peek(&u32::MAX).is_some());
    }
}
