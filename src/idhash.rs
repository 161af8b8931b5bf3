//! Hashers for the tables on the per-message path (flows, transactions, proxy contexts):
//! one for flow ids, a seeded one for the rest.
//!
//! Flow ids are numbers this crate hands out from a counter (never chosen by a peer), so
//! the flow table needs no keyed, flooding-resistant hash: std's SipHash costs more than
//! the rest of a lookup. One multiplication by an odd constant spreads consecutive ids
//! over the whole word: the high bits (which the table uses as tags) differ, and the low
//! bits (which pick the bucket) stay a one-to-one function of the id's low bits, so
//! consecutive ids never share a bucket.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// 2^64 divided by the golden ratio, made odd (Fibonacci hashing).
const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// Hashes a `u64` with one multiplication; other input (not used by the tables here,
/// but `Hasher` requires it) is folded in byte by byte.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FlowIdHasher(u64);

impl Hasher for FlowIdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(K);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(K);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by values a peer may choose (addresses, names): foldhash, seeded at
/// random per map like std's `RandomState`, so collisions cannot be planned, but several
/// times cheaper than SipHash for short keys.
pub(crate) type SeededMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A map keyed by flow ids.
pub(crate) type FlowIdMap<V> = HashMap<u64, V, BuildHasherDefault<FlowIdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn consecutive_ids_spread() {
        let b = BuildHasherDefault::<FlowIdHasher>::default();
        let hashes: Vec<u64> = (1..=1024u64).map(|id| b.hash_one(id)).collect();
        // Low 10 bits: a permutation of the 1024 buckets.
        let mut low: Vec<u64> = hashes.iter().map(|h| h & 1023).collect();
        low.sort_unstable();
        low.dedup();
        assert_eq!(low.len(), 1024);
        // High 7 bits (hashbrown's tags): all 128 values show up.
        let mut high: Vec<u64> = hashes.iter().map(|h| h >> 57).collect();
        high.sort_unstable();
        high.dedup();
        assert_eq!(high.len(), 128);
    }

    #[test]
    fn works_as_map() {
        let mut m: FlowIdMap<u32> = FlowIdMap::default();
        for id in 0..10_000u64 {
            m.insert(id, id as u32);
        }
        assert!((0..10_000u64).all(|id| m.get(&id) == Some(&(id as u32))));
        assert_eq!(m.remove(&42), Some(42));
        assert_eq!(m.len(), 9_999);
    }
}
