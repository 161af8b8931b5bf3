//! Keeps DTLS replay detection from dropping records over SCTP (RFC 6083 §3.3).
//!
//! SCTP delivers each stream in order but not the streams in order against each other: after a
//! lost packet, records on other streams overtake the one being retransmitted. DTLS numbers
//! records across the whole connection and drops a record more than 64 behind the newest one
//! it accepted. RFC 6083 says replay detection MUST NOT be used; OpenSSL (built, as Debian
//! ships it, without its SCTP BIO) cannot turn it off. So records are handed to OpenSSL no
//! further than 63 ahead of the oldest one not yet handed over: records that arrive further
//! ahead wait here until the gap fills, which SCTP's retransmission guarantees. Multistreaming
//! keeps its point — up to 63 records pass a missing one — and nothing is lost.
//!
//! What waits is bounded ([`HOLD_LIMIT_RECORDS`], [`HOLD_LIMIT_BYTES`]): a peer that never
//! fills a gap (it abandoned a message with PR-SCTP, or numbers records wrongly) gets the gap
//! skipped and counted, not an association that stops delivering or memory that grows.

use std::collections::BTreeMap;

use super::sctp_dtls::RECORD_HEADER;

/// Records OpenSSL accepts behind the newest one (its replay bitmap is 64 wide).
const WINDOW: u64 = 64;
/// At most this many records wait for a gap to fill...
pub(crate) const HOLD_LIMIT_RECORDS: usize = 4096;
/// ...and at most this many bytes.
pub(crate) const HOLD_LIMIT_BYTES: usize = 4 << 20;

/// Record order of one DTLS connection's received records, for one epoch at a time.
#[derive(Debug, Default)]
pub(crate) struct ReplayGate {
    epoch: u16,
    /// The oldest sequence number of `epoch` not handed over yet.
    next: u64,
    /// Bit i: record `next + i` was handed over (bit 0 is always clear).
    passed: u64,
    /// Records too far ahead of `next`, by sequence number, with their stream.
    held: BTreeMap<u64, (u16, Vec<u8>)>,
    held_bytes: usize,
    /// Gaps given up on since the last [`ReplayGate::take_skipped`].
    skipped: u64,
}

impl ReplayGate {
    /// One received user message (one DTLS record): appends to `out`, in the order to hand
    /// them to DTLS, this record and any waiting ones it lets through.
    pub(crate) fn admit(&mut self, stream: u16, record: &[u8], out: &mut Vec<(u16, Vec<u8>)>) {
        let Some((epoch, seq)) = header(record) else {
            // Not a record DTLS can read: DTLS drops it, and it says nothing about order.
            out.push((stream, record.to_vec()));
            return;
        };
        if epoch < self.epoch {
            // Old epoch (RFC 6083 §4.7 has it acknowledged before the switch): DTLS decides.
            out.push((stream, record.to_vec()));
            return;
        }
        if epoch > self.epoch {
            // A new epoch numbers from 0; whatever waited for the old one goes first.
            self.release_all(out);
            *self = ReplayGate {
                epoch,
                skipped: self.skipped,
                ..ReplayGate::default()
            };
        }
        if seq >= self.next.saturating_add(WINDOW) {
            self.held_bytes += record.len();
            if let Some((_, old)) = self.held.insert(seq, (stream, record.to_vec())) {
                // The same number twice: DTLS drops the copy either way; keep one.
                self.held_bytes -= old.len();
            }
            while self.held.len() > HOLD_LIMIT_RECORDS || self.held_bytes > HOLD_LIMIT_BYTES {
                self.skip_to_oldest_held();
                self.release(out);
            }
            return;
        }
        out.push((stream, record.to_vec()));
        self.mark(seq);
        self.release(out);
    }

    /// How many gaps were skipped since the last call (for the counter and the log).
    pub(crate) fn take_skipped(&mut self) -> u64 {
        std::mem::take(&mut self.skipped)
    }

    /// Records waiting for a gap to fill.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held.len()
    }

    /// Record `seq` (below `next + WINDOW`) was handed over.
    fn mark(&mut self, seq: u64) {
        if seq < self.next {
            return;
        }
        self.passed |= 1 << (seq - self.next);
        let run = self.passed.trailing_ones();
        self.advance(u64::from(run));
    }

    fn advance(&mut self, by: u64) {
        self.next += by;
        self.passed = if by >= WINDOW { 0 } else { self.passed >> by };
    }

    /// Hands over the waiting records that are now close enough to `next`.
    fn release(&mut self, out: &mut Vec<(u16, Vec<u8>)>) {
        while let Some(entry) = self.held.first_entry() {
            let seq = *entry.key();
            if seq >= self.next.saturating_add(WINDOW) {
                break;
            }
            let (stream, record) = entry.remove();
            self.held_bytes -= record.len();
            out.push((stream, record));
            self.mark(seq);
        }
    }

    /// Over the limits: gives up on the missing records in front of the oldest waiting one.
    fn skip_to_oldest_held(&mut self) {
        let Some((&oldest, _)) = self.held.first_key_value() else {
            return;
        };
        let to = oldest + 1 - WINDOW;
        if to > self.next {
            self.skipped += 1;
            self.advance(to - self.next);
            let run = self.passed.trailing_ones();
            self.advance(u64::from(run));
        }
    }

    fn release_all(&mut self, out: &mut Vec<(u16, Vec<u8>)>) {
        if !self.held.is_empty() {
            self.skipped += 1;
        }
        self.held_bytes = 0;
        out.extend(std::mem::take(&mut self.held).into_values());
    }
}

/// Epoch and sequence number of a DTLS record.
fn header(record: &[u8]) -> Option<(u16, u64)> {
    let h = record.get(..RECORD_HEADER)?;
    let epoch = u16::from_be_bytes([h[3], h[4]]);
    let mut seq = [0u8; 8];
    seq[2..].copy_from_slice(&h[5..11]);
    Some((epoch, u64::from_be_bytes(seq)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(epoch: u16, seq: u64) -> Vec<u8> {
        let mut r = vec![23, 0xfe, 0xfd];
        r.extend_from_slice(&epoch.to_be_bytes());
        r.extend_from_slice(&seq.to_be_bytes()[2..]);
        r.extend_from_slice(&[0, 1, 0]);
        r
    }

    /// The sequence numbers handed over.
    fn feed(g: &mut ReplayGate, seqs: impl IntoIterator<Item = u64>) -> Vec<u64> {
        let mut out = Vec::new();
        for s in seqs {
            g.admit((s % 16) as u16, &rec(1, s), &mut out);
        }
        out.iter().map(|(_, r)| header(r).unwrap().1).collect()
    }

    /// What OpenSSL's replay check does with records in this order: the ones it drops.
    fn dropped_by_window(order: &[u64]) -> Vec<u64> {
        let (mut max, mut seen) = (None::<u64>, std::collections::HashSet::new());
        let mut dropped = Vec::new();
        for &s in order {
            let too_old = max.is_some_and(|m| s + WINDOW <= m);
            if too_old || !seen.insert(s) {
                dropped.push(s);
                continue;
            }
            max = Some(max.map_or(s, |m| m.max(s)));
        }
        dropped
    }

    #[test]
    fn records_in_order_pass_at_once() {
        let mut g = ReplayGate::default();
        assert_eq!(feed(&mut g, 0..1000), (0..1000).collect::<Vec<_>>());
        assert_eq!(g.held(), 0);
    }

    #[test]
    fn a_record_retransmitted_after_many_others_is_never_too_old_for_dtls() {
        // Record 10 is lost and comes back after 500 records on other streams.
        let arrival: Vec<u64> = (0..10).chain(11..511).chain([10]).chain(511..600).collect();
        assert_eq!(dropped_by_window(&arrival), [10], "what happened before");
        let mut g = ReplayGate::default();
        let handed = feed(&mut g, arrival);
        assert!(dropped_by_window(&handed).is_empty(), "{handed:?}");
        assert_eq!(handed.len(), 600);
        assert_eq!(g.held(), 0);
        // Only records 74 and later waited: 63 passed the gap.
        let ten = handed.iter().position(|&s| s == 10).unwrap();
        assert_eq!(ten, 10 + 63);
        assert_eq!(handed[ten + 1], 74);
        assert_eq!(g.take_skipped(), 0);
    }

    #[test]
    fn simulated_loss_and_reordering_never_lose_a_record() {
        // A deterministic shuffle: each record is delayed by 0..300 arrivals, as retransmission
        // after loss on one stream does while the others run.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut arrivals: Vec<(u64, u64)> = (0..5000u64)
            .map(|s| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let delay = if x % 10 == 0 { x % 300 } else { 0 };
                (s + delay, s)
            })
            .collect();
        arrivals.sort();
        let order: Vec<u64> = arrivals.into_iter().map(|(_, s)| s).collect();
        assert!(!dropped_by_window(&order).is_empty());
        let mut g = ReplayGate::default();
        let handed = feed(&mut g, order);
        assert!(dropped_by_window(&handed).is_empty());
        assert_eq!(handed.len(), 5000);
        assert_eq!(g.take_skipped(), 0);
    }

    #[test]
    fn a_gap_never_filled_is_skipped_once_the_limit_is_reached_and_counted() {
        let mut g = ReplayGate::default();
        // Record 0 never comes (abandoned): 63 pass, the rest wait up to the limit.
        let n = 64 + HOLD_LIMIT_RECORDS as u64;
        let handed = feed(&mut g, 1..=n);
        assert_eq!(
            handed.len(),
            n as usize,
            "all handed over once the limit was passed"
        );
        assert!(dropped_by_window(&handed).is_empty());
        assert_eq!(g.take_skipped(), 1);
        assert_eq!(g.held(), 0);
        assert_eq!(feed(&mut g, [n + 1]), [n + 1]);
    }

    #[test]
    fn bytes_are_bounded_too() {
        let mut g = ReplayGate::default();
        let mut out = Vec::new();
        let big = |seq: u64| {
            let mut r = rec(1, seq);
            r.resize(16 * 1024, 0);
            r
        };
        for s in 1..=64 + (HOLD_LIMIT_BYTES / (16 * 1024)) as u64 + 1 {
            g.admit(1, &big(s), &mut out);
            assert!(g.held_bytes <= HOLD_LIMIT_BYTES);
        }
        assert_eq!(g.take_skipped(), 1);
    }

    #[test]
    fn a_new_epoch_starts_from_zero_and_other_bytes_pass_untouched() {
        let mut g = ReplayGate::default();
        let mut out = Vec::new();
        for s in 0..5 {
            g.admit(0, &rec(0, s), &mut out);
        }
        g.admit(0, &rec(1, 0), &mut out);
        g.admit(3, &rec(1, 2), &mut out);
        g.admit(4, &rec(1, 1), &mut out);
        g.admit(0, b"short", &mut out);
        g.admit(0, &rec(0, 9), &mut out);
        let got: Vec<(u16, u64)> = out
            .iter()
            .filter_map(|(_, r)| header(r))
            .collect::<Vec<_>>();
        assert_eq!(
            got,
            [
                (0, 0),
                (0, 1),
                (0, 2),
                (0, 3),
                (0, 4),
                (1, 0),
                (1, 2),
                (1, 1),
                (0, 9)
            ]
        );
        assert_eq!(out.len(), 10);
        assert_eq!(out[8], (0, b"short".to_vec()));
        assert_eq!(out[7].0, 4, "each record keeps its stream");
    }

    #[test]
    fn sequence_numbers_near_the_top_do_not_overflow() {
        let mut g = ReplayGate::default();
        let top = (1u64 << 48) - 1;
        let handed = feed(&mut g, [top, 0, 1]);
        // `top` is far ahead: it waits (and would be skipped to at the limit).
        assert_eq!(handed, [0, 1]);
        assert_eq!(g.held(), 1);
    }
}
