//! SRV ordering: priority, then RFC 2782 weighted random selection, or a deterministic order for
//! stateless proxies (RFC 3263 §4.4).

use super::target::normalize_domain;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// An SRV record as returned by DNS (no I/O types here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SrvRecord {
    /// Priority: lower first, strictly.
    pub priority: u16,
    /// Relative weight among records of equal priority.
    pub weight: u16,
    /// Port to connect to.
    pub port: u16,
    /// Target host name (`.` means "service not available here").
    pub target: String,
}

/// How records of equal priority are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SrvSelection {
    /// RFC 2782 weighted random selection (stateful elements).
    #[default]
    Weighted,
    /// Same input, same order (RFC 3263 §4.4: stateless proxies). Equal priority records are
    /// ordered by weight (highest first), then target name, then port.
    Deterministic,
}

/// Orders SRV records for use. Records whose target is `.` or not a valid host name are
/// dropped (RFC 2782); targets are returned lowercase without a trailing dot.
pub fn order_srv<R: Rng + ?Sized>(
    records: &[SrvRecord],
    selection: SrvSelection,
    rng: &mut R,
) -> Vec<SrvRecord> {
    let mut recs: Vec<SrvRecord> = records
        .iter()
        .filter(|r| r.port != 0)
        .filter_map(|r| {
            normalize_domain(&r.target).map(|target| SrvRecord {
                target,
                ..r.clone()
            })
        })
        .collect();
    match selection {
        SrvSelection::Deterministic => {
            recs.sort_by(|a, b| {
                a.priority
                    .cmp(&b.priority)
                    .then(b.weight.cmp(&a.weight))
                    .then_with(|| a.target.cmp(&b.target))
                    .then(a.port.cmp(&b.port))
            });
            recs.dedup();
            recs
        }
        SrvSelection::Weighted => {
            // Stable sort: zero weights first inside each priority (RFC 2782).
            recs.sort_by_key(|r| (r.priority, r.weight != 0));
            let mut out = Vec::with_capacity(recs.len());
            let mut rest = recs.as_slice();
            while let Some(first) = rest.first() {
                let len = rest
                    .iter()
                    .position(|r| r.priority != first.priority)
                    .unwrap_or(rest.len());
                let (group, tail) = rest.split_at(len);
                weighted_shuffle(group.to_vec(), rng, &mut out);
                rest = tail;
            }
            out
        }
    }
}

/// RFC 2782 selection inside one priority: sum the weights, draw a uniform number in
/// `0..=sum`, take the first record whose running sum reaches it, remove it, repeat.
fn weighted_shuffle<R: Rng + ?Sized>(
    mut group: Vec<SrvRecord>,
    rng: &mut R,
    out: &mut Vec<SrvRecord>,
) {
    while !group.is_empty() {
        let total: u64 = group.iter().map(|r| u64::from(r.weight)).sum();
        let draw = rng.random_range(0..=total);
        let mut running = 0u64;
        let mut pick = group.len() - 1;
        for (i, r) in group.iter().enumerate() {
            running += u64::from(r.weight);
            if running >= draw {
                pick = i;
                break;
            }
        }
        out.push(group.remove(pick));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn s(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    fn targets(v: &[SrvRecord]) -> Vec<&str> {
        v.iter().map(|r| r.target.as_str()).collect()
    }

    #[test]
    fn priority_is_strict() {
        let mut rng = StdRng::seed_from_u64(1);
        let recs = [
            s(20, 1000, 5060, "c.example.com"),
            s(10, 0, 5060, "a.example.com"),
            s(30, 65535, 5060, "d.example.com"),
            s(10, 0, 5060, "b.example.com"),
        ];
        for _ in 0..100 {
            let got = order_srv(&recs, SrvSelection::Weighted, &mut rng);
            assert_eq!(got.len(), 4);
            let prios: Vec<u16> = got.iter().map(|r| r.priority).collect();
            assert_eq!(prios, vec![10, 10, 20, 30]);
        }
    }

    #[test]
    fn all_zero_weights_keep_dns_order() {
        let mut rng = StdRng::seed_from_u64(2);
        let recs = [
            s(1, 0, 5060, "a.example.com"),
            s(1, 0, 5060, "b.example.com"),
            s(1, 0, 5060, "c.example.com"),
        ];
        for _ in 0..50 {
            let got = order_srv(&recs, SrvSelection::Weighted, &mut rng);
            assert_eq!(
                targets(&got),
                ["a.example.com", "b.example.com", "c.example.com"]
            );
        }
    }

    #[test]
    fn dot_target_and_bad_names_dropped() {
        let mut rng = StdRng::seed_from_u64(3);
        let recs = [
            s(1, 1, 5060, "."),
            s(1, 1, 5060, "*.example.com"),
            s(1, 1, 0, "zero-port.example.com"),
            s(1, 1, 5061, "S1.Example.NET."),
        ];
        let got = order_srv(&recs, SrvSelection::Weighted, &mut rng);
        assert_eq!(targets(&got), ["s1.example.net"]);
        let got = order_srv(&recs, SrvSelection::Deterministic, &mut rng);
        assert_eq!(targets(&got), ["s1.example.net"]);
    }

    #[test]
    fn weights_distribution_first_pick() {
        // RFC 2782: draw uniform in 0..=100; a [0,10] (11/101), b (10,70] (60/101), c (70,100].
        let recs = [
            s(10, 10, 5061, "a.example.net"),
            s(10, 60, 5061, "b.example.net"),
            s(10, 30, 5061, "c.example.net"),
        ];
        let mut rng = StdRng::seed_from_u64(0x5923);
        let draws = 10_000;
        let mut first = [0u32; 3];
        for _ in 0..draws {
            let got = order_srv(&recs, SrvSelection::Weighted, &mut rng);
            assert_eq!(got.len(), 3);
            let idx = match got[0].target.as_str() {
                "a.example.net" => 0,
                "b.example.net" => 1,
                _ => 2,
            };
            first[idx] += 1;
        }
        let expected = [11.0 / 101.0, 60.0 / 101.0, 30.0 / 101.0];
        for (i, e) in expected.iter().enumerate() {
            let got = f64::from(first[i]) / f64::from(draws);
            assert!(
                (got - e).abs() < 0.02,
                "record {i}: {got:.3} vs expected {e:.3} ({first:?})"
            );
        }
    }

    #[test]
    fn zero_weight_rarely_first() {
        // One zero weight among non-zero ones: first only when the draw is 0 (1/(sum+1)).
        let recs = [
            s(1, 0, 5060, "z.example.com"),
            s(1, 99, 5060, "w.example.com"),
        ];
        let mut rng = StdRng::seed_from_u64(7);
        let mut zero_first = 0;
        for _ in 0..10_000 {
            if order_srv(&recs, SrvSelection::Weighted, &mut rng)[0].target == "z.example.com" {
                zero_first += 1;
            }
        }
        assert!(
            (50..=170).contains(&zero_first),
            "zero first {zero_first} times"
        );
    }

    #[test]
    fn deterministic_order_is_stable_across_input_permutations() {
        let a = [
            s(10, 20, 5061, "s2.example.net"),
            s(10, 60, 5061, "s1.example.net"),
            s(5, 0, 5061, "s0.example.net"),
            s(10, 20, 5061, "s3.example.net"),
        ];
        let mut b = a.clone();
        b.reverse();
        let mut rng = StdRng::seed_from_u64(9);
        let x = order_srv(&a, SrvSelection::Deterministic, &mut rng);
        let y = order_srv(&b, SrvSelection::Deterministic, &mut rng);
        assert_eq!(x, y);
        assert_eq!(
            targets(&x),
            [
                "s0.example.net",
                "s1.example.net",
                "s2.example.net",
                "s3.example.net"
            ]
        );
    }

    #[test]
    fn same_seed_same_order() {
        let recs = [
            s(1, 10, 5060, "a.example.com"),
            s(1, 20, 5060, "b.example.com"),
            s(1, 30, 5060, "c.example.com"),
        ];
        let x = order_srv(
            &recs,
            SrvSelection::Weighted,
            &mut StdRng::seed_from_u64(42),
        );
        let y = order_srv(
            &recs,
            SrvSelection::Weighted,
            &mut StdRng::seed_from_u64(42),
        );
        assert_eq!(x, y);
    }
}
