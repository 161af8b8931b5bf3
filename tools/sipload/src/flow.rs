//! One flow's bookkeeping, free of I/O and clocks: which request to send next and when,
//! what is outstanding, what timed out, and the counters and latency histogram of the
//! measured window. The drivers in [`crate::driver`] feed it `now` and received responses.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::sip::Response;

/// Highest latency the histogram records (longer ones are clamped): far beyond any
/// sensible timeout.
const MAX_LATENCY_US: u64 = 60_000_000;

/// The phases of a run, the same for every flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// When sending starts.
    pub start: Instant,
    /// Requests sent from here on are measured.
    pub warm_end: Instant,
    /// No request is sent from here on.
    pub end: Instant,
}

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Keep `window` requests outstanding: a new one goes out when one completes.
    Closed {
        /// Outstanding requests per flow.
        window: usize,
    },
    /// One request every `interval`, whatever the responses do, from `first` on.
    Open {
        /// Time between two requests of this flow.
        interval: Duration,
        /// When the flow's first request is due (flows are staggered).
        first: Instant,
    },
}

/// The measured-request budget shared by all flows (`--requests`); unlimited when `None`.
#[derive(Debug, Clone, Default)]
pub struct Budget(Option<(Arc<AtomicU64>, u64)>);

impl Budget {
    /// A budget of `limit` measured requests in total.
    pub fn limited(limit: u64) -> Budget {
        Budget(Some((Arc::new(AtomicU64::new(0)), limit)))
    }

    /// Takes one request from the budget; false once it is spent.
    pub fn take(&self) -> bool {
        match &self.0 {
            None => true,
            Some((used, limit)) => used.fetch_add(1, Ordering::Relaxed) < *limit,
        }
    }

    /// True once every request of the budget was taken.
    pub fn spent(&self) -> bool {
        match &self.0 {
            None => false,
            Some((used, limit)) => used.load(Ordering::Relaxed) >= *limit,
        }
    }
}

/// Counters of one flow (and, merged, of the run). Everything counts measured requests
/// only, i.e. those sent after the warm-up.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Requests sent.
    pub sent: u64,
    /// 200 responses.
    pub answered: u64,
    /// Final responses other than 200.
    pub non_200: u64,
    /// Requests with no final response within the timeout.
    pub unanswered: u64,
    /// Responses to a (measured) request that already had its final response.
    pub duplicates: u64,
    /// Responses that came after their (measured) request had timed out.
    pub late: u64,
    /// Provisional (1xx) responses, which do not complete a request.
    pub provisional: u64,
    /// Received messages (after the warm-up) that were not responses to this run's requests.
    pub stray: u64,
    /// I/O errors (send failures, ICMP errors on UDP, a broken connection).
    pub io_errors: u64,
    /// Latency of answered (any final status) requests, µs.
    pub latency_us: Histogram<u64>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            sent: 0,
            answered: 0,
            non_200: 0,
            unanswered: 0,
            duplicates: 0,
            late: 0,
            provisional: 0,
            stray: 0,
            io_errors: 0,
            // Valid bounds (1 ≤ low, high ≥ 2·low, sigfig 3) cannot fail.
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid")),
        }
    }
}

impl Stats {
    /// Adds another flow's counters.
    pub fn merge(&mut self, o: &Stats) {
        self.sent += o.sent;
        self.answered += o.answered;
        self.non_200 += o.non_200;
        self.unanswered += o.unanswered;
        self.duplicates += o.duplicates;
        self.late += o.late;
        self.provisional += o.provisional;
        self.stray += o.stray;
        self.io_errors += o.io_errors;
        // Same bounds on both sides: adding cannot fail.
        let _ = self.latency_us.add(&o.latency_us);
    }
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    at: Instant,
    measured: bool,
}

/// One flow's state.
#[derive(Debug)]
pub struct Flow {
    pace: Pace,
    schedule: Schedule,
    timeout: Duration,
    budget: Budget,
    /// Next open-loop send time.
    next_due: Option<Instant>,
    next_seq: u64,
    /// The first measured request (sequence numbers grow with send times, so every later
    /// one is measured too).
    first_measured: Option<u64>,
    /// No more requests (budget spent or connection lost).
    stopped: bool,
    outstanding: BTreeMap<u64, Sent>,
    /// One bit per sequence number: got its final response (tells duplicates from late
    /// responses).
    completed: Vec<u64>,
    /// The counters.
    pub stats: Stats,
}

impl Flow {
    /// A flow that starts sending at `schedule.start`.
    pub fn new(pace: Pace, schedule: Schedule, timeout: Duration, budget: Budget) -> Flow {
        let next_due = match pace {
            Pace::Open { first, .. } => Some(first.max(schedule.start)),
            Pace::Closed { .. } => None,
        };
        Flow {
            pace,
            schedule,
            timeout,
            budget,
            next_due,
            next_seq: 0,
            first_measured: None,
            stopped: false,
            outstanding: BTreeMap::new(),
            completed: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// The sequence number of a request to send now, if one is due; the caller sends it
    /// (the flow counts it as sent at the due time, so that open-loop latency includes any
    /// lag of the generator itself). Call until `None`.
    pub fn poll_send(&mut self, now: Instant) -> Option<u64> {
        if self.stopped || now < self.schedule.start {
            return None;
        }
        let at = match self.pace {
            Pace::Closed { window } => {
                if now >= self.schedule.end || self.outstanding.len() >= window {
                    return None;
                }
                now
            }
            Pace::Open { interval, .. } => {
                let due = self.next_due?;
                if due > now || due >= self.schedule.end {
                    return None;
                }
                self.next_due = Some(due + interval);
                due
            }
        };
        let measured = at >= self.schedule.warm_end;
        if measured && !self.budget.take() {
            self.stopped = true;
            return None;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.outstanding.insert(seq, Sent { at, measured });
        if measured {
            self.stats.sent += 1;
            self.first_measured.get_or_insert(seq);
        }
        Some(seq)
    }

    /// A response from this flow's socket arrived.
    pub fn on_response(&mut self, now: Instant, r: &Response) {
        let measured = self.first_measured.is_some_and(|f| r.seq >= f);
        if (100..200).contains(&r.status) {
            if measured {
                self.stats.provisional += 1;
            }
            return;
        }
        match self.outstanding.remove(&r.seq) {
            Some(sent) => {
                self.mark_completed(r.seq);
                if sent.measured {
                    let us = now.saturating_duration_since(sent.at).as_micros();
                    let us = u64::try_from(us)
                        .unwrap_or(u64::MAX)
                        .clamp(1, MAX_LATENCY_US);
                    // Clamped into the histogram's range: recording cannot fail.
                    let _ = self.stats.latency_us.record(us);
                    if r.status == 200 {
                        self.stats.answered += 1;
                    } else {
                        self.stats.non_200 += 1;
                    }
                }
            }
            None if r.seq >= self.next_seq => {
                if now >= self.schedule.warm_end {
                    self.stats.stray += 1;
                }
            }
            // Responses to warm-up requests are not counted, whatever they are.
            None if !measured => {}
            None if self.is_completed(r.seq) => self.stats.duplicates += 1,
            None => self.stats.late += 1,
        }
    }

    /// A message that is not a response to this flow arrived.
    pub fn on_stray(&mut self, now: Instant) {
        if now >= self.schedule.warm_end {
            self.stats.stray += 1;
        }
    }

    /// An I/O error; `fatal` stops the flow (its outstanding requests then time out).
    pub fn on_io_error(&mut self, now: Instant, fatal: bool) {
        if now >= self.schedule.warm_end {
            self.stats.io_errors += 1;
        }
        if fatal {
            self.stopped = true;
        }
    }

    /// Gives up on requests older than the timeout.
    pub fn on_timers(&mut self, now: Instant) {
        while let Some(entry) = self.outstanding.first_entry() {
            if now.saturating_duration_since(entry.get().at) < self.timeout {
                break;
            }
            if entry.remove().measured {
                self.stats.unanswered += 1;
            }
        }
    }

    /// When the flow next needs to act without a response arriving.
    pub fn next_deadline(&self) -> Option<Instant> {
        let expiry = self
            .outstanding
            .first_key_value()
            .map(|(_, s)| s.at + self.timeout);
        // A closed loop sends when a response comes or a request times out, never on a
        // clock of its own (the drivers start flows at `schedule.start`).
        let send = match self.pace {
            _ if self.stopped => None,
            Pace::Open { .. } => self.next_due.filter(|d| *d < self.schedule.end),
            Pace::Closed { .. } => None,
        };
        match (expiry, send) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// True when nothing more will be sent and nothing is outstanding.
    pub fn done(&self, now: Instant) -> bool {
        let sending_over = self.stopped
            || now >= self.schedule.end
            || matches!(self.pace, Pace::Open { .. })
                && self.next_due.map_or(true, |d| d >= self.schedule.end);
        sending_over && self.outstanding.is_empty()
    }

    /// Requests outstanding now.
    #[cfg(test)]
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    fn mark_completed(&mut self, seq: u64) {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if self.completed.len() <= word {
            self.completed.resize(word + 1, 0);
        }
        self.completed[word] |= 1 << bit;
    }

    fn is_completed(&self, seq: u64) -> bool {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        self.completed
            .get(word)
            .is_some_and(|w| w & (1 << bit) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn schedule(t0: Instant) -> Schedule {
        Schedule {
            start: t0,
            warm_end: t0 + 100 * MS,
            end: t0 + 1100 * MS,
        }
    }

    fn ok(seq: u64) -> Response {
        Response {
            status: 200,
            flow: 0,
            seq,
        }
    }

    fn drain(f: &mut Flow, now: Instant) -> Vec<u64> {
        std::iter::from_fn(|| f.poll_send(now)).collect()
    }

    #[test]
    fn closed_loop_keeps_the_window_full() {
        let t0 = Instant::now();
        let mut f = Flow::new(
            Pace::Closed { window: 3 },
            schedule(t0),
            500 * MS,
            Budget::default(),
        );
        assert_eq!(drain(&mut f, t0), [0, 1, 2]);
        f.on_response(t0 + MS, &ok(1));
        assert_eq!(drain(&mut f, t0 + MS), [3]);
        assert_eq!(f.outstanding(), 3);
        // Warm-up requests are not counted.
        assert_eq!(f.stats.sent, 0);
        assert_eq!(f.stats.answered, 0);
    }

    #[test]
    fn measured_latency_timeouts_duplicates_and_late_responses() {
        let t0 = Instant::now();
        let s = schedule(t0);
        let mut f = Flow::new(Pace::Closed { window: 2 }, s, 500 * MS, Budget::default());
        let now = s.warm_end;
        assert_eq!(drain(&mut f, now), [0, 1]);
        f.on_response(now + 2 * MS, &ok(0));
        f.on_response(now + 3 * MS, &ok(0));
        f.on_response(
            now + 4 * MS,
            &Response {
                status: 100,
                ..ok(1)
            },
        );
        assert_eq!(f.next_deadline(), Some(now + 500 * MS));
        f.on_timers(now + 500 * MS);
        f.on_response(now + 600 * MS, &ok(1));
        f.on_response(now + 600 * MS, &ok(99));
        let st = &f.stats;
        assert_eq!(
            (
                st.sent,
                st.answered,
                st.duplicates,
                st.provisional,
                st.unanswered,
                st.late,
                st.stray
            ),
            (2, 1, 1, 1, 1, 1, 1)
        );
        assert!(st.latency_us.equivalent(st.latency_us.max(), 2000));
    }

    #[test]
    fn late_responses_to_warm_up_requests_are_not_counted() {
        let t0 = Instant::now();
        let s = schedule(t0);
        let mut f = Flow::new(Pace::Closed { window: 1 }, s, 50 * MS, Budget::default());
        assert_eq!(drain(&mut f, t0), [0]);
        f.on_timers(t0 + 60 * MS);
        assert_eq!(drain(&mut f, s.warm_end), [1]);
        f.on_response(s.warm_end + MS, &ok(0));
        f.on_response(s.warm_end + MS, &ok(1));
        f.on_response(s.warm_end + MS, &ok(1));
        let st = &f.stats;
        assert_eq!(
            (st.sent, st.answered, st.late, st.duplicates, st.unanswered),
            (1, 1, 0, 1, 0)
        );
    }

    #[test]
    fn non_200_is_answered_but_counted_apart() {
        let t0 = Instant::now();
        let s = schedule(t0);
        let mut f = Flow::new(Pace::Closed { window: 1 }, s, 500 * MS, Budget::default());
        assert_eq!(drain(&mut f, s.warm_end), [0]);
        f.on_response(
            s.warm_end + MS,
            &Response {
                status: 480,
                ..ok(0)
            },
        );
        assert_eq!((f.stats.answered, f.stats.non_200), (0, 1));
    }

    #[test]
    fn closed_loop_stops_at_the_end_and_finishes_when_drained() {
        let t0 = Instant::now();
        let s = schedule(t0);
        let mut f = Flow::new(Pace::Closed { window: 1 }, s, 500 * MS, Budget::default());
        assert_eq!(drain(&mut f, s.end - MS), [0]);
        assert!(!f.done(s.end));
        f.on_response(s.end, &ok(0));
        assert!(drain(&mut f, s.end).is_empty());
        assert!(f.done(s.end));
        assert_eq!(f.next_deadline(), None);
    }

    #[test]
    fn open_loop_paces_and_catches_up() {
        let t0 = Instant::now();
        let s = schedule(t0);
        let pace = Pace::Open {
            interval: 10 * MS,
            first: t0 + 5 * MS,
        };
        let mut f = Flow::new(pace, s, 500 * MS, Budget::default());
        assert!(drain(&mut f, t0).is_empty());
        assert_eq!(f.next_deadline(), Some(t0 + 5 * MS));
        // Woken late: everything that was due goes out at once.
        assert_eq!(drain(&mut f, t0 + 36 * MS), [0, 1, 2, 3]);
        assert_eq!(f.next_deadline(), Some(t0 + 45 * MS));
        // The last request is the one due before the end: 5 + 10k < 1100 ⇒ k ≤ 109.
        let all = drain(&mut f, s.end + 10 * MS);
        assert_eq!(all.last(), Some(&109));
        // Requests due from the warm-up end on are measured: 105, 115, …, 1095 ms.
        assert_eq!(f.stats.sent, 100);
        assert!(!f.done(s.end));
        f.on_timers(s.end + 600 * MS);
        assert!(f.done(s.end + 600 * MS));
        assert_eq!(f.stats.unanswered, 100);
    }

    #[test]
    fn open_loop_latency_counts_from_the_due_time() {
        let t0 = Instant::now();
        let s = schedule(t0);
        let pace = Pace::Open {
            interval: 10 * MS,
            first: s.warm_end,
        };
        let mut f = Flow::new(pace, s, 500 * MS, Budget::default());
        assert_eq!(drain(&mut f, s.warm_end + 3 * MS), [0]);
        f.on_response(s.warm_end + 4 * MS, &ok(0));
        assert!(f
            .stats
            .latency_us
            .equivalent(f.stats.latency_us.max(), 4000));
    }

    #[test]
    fn budget_is_shared_and_stops_flows() {
        let t0 = Instant::now();
        let s = schedule(t0);
        let b = Budget::limited(3);
        let mut f1 = Flow::new(Pace::Closed { window: 2 }, s, 500 * MS, b.clone());
        let mut f2 = Flow::new(Pace::Closed { window: 2 }, s, 500 * MS, b.clone());
        assert_eq!(drain(&mut f1, s.warm_end), [0, 1]);
        assert_eq!(drain(&mut f2, s.warm_end), [0]);
        assert!(b.spent());
        f2.on_response(s.warm_end + MS, &ok(0));
        assert!(f2.done(s.warm_end + MS));
        assert_eq!(f1.stats.sent + f2.stats.sent, 3);
    }

    #[test]
    fn merge_adds_up() {
        let mut a = Stats::default();
        let mut b = Stats::default();
        a.answered = 2;
        b.answered = 3;
        a.latency_us.record(10).unwrap();
        b.latency_us.record(20).unwrap();
        a.merge(&b);
        assert_eq!(a.answered, 5);
        assert_eq!(a.latency_us.len(), 2);
        assert_eq!(a.latency_us.max(), 20);
    }
}
