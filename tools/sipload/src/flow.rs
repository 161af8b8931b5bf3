//! One flow's bookkeeping, free of I/O and clocks: which message to send next and when,
//! what is outstanding, what to retransmit (RFC 3261 Timers A and E, unreliable transports
//! only), what timed out, and the counters and latency histograms of the measured window.
//! An item is one OPTIONS transaction or one call (INVITE, ACK, BYE). The drivers in
//! [`crate::driver`] feed it `now` and received responses.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::sip::{Dialog, Method, Response, Txn};

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
    /// Keep `window` items outstanding: a new one starts when one completes.
    Closed {
        /// Outstanding items per flow.
        window: usize,
    },
    /// One item every `interval`, whatever the responses do, from `first` on.
    Open {
        /// Time between two items of this flow.
        interval: Duration,
        /// When the flow's first item is due (flows are staggered).
        first: Instant,
    },
}

/// What one item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scenario {
    /// One OPTIONS transaction.
    #[default]
    Options,
    /// INVITE → 200 → ACK → BYE → 200.
    Call,
}

/// Retransmission timers of an unreliable transport (RFC 3261 §17.1.1.2, §17.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retransmit {
    /// First retransmission interval (T1, 500 ms by default).
    pub t1: Duration,
    /// Cap of the non-INVITE interval (T2, 4 s).
    pub t2: Duration,
}

/// The interval after one of `interval` has run out and the request was sent again, or
/// `None` when it is not to be sent again: INVITE doubles (Timer A) and stops once a
/// provisional response came; non-INVITE doubles up to T2 (Timer E), and is T2 once a
/// provisional response came.
pub fn next_interval(
    txn: Txn,
    interval: Duration,
    proceeding: bool,
    t2: Duration,
) -> Option<Duration> {
    match txn {
        Txn::Invite if proceeding => None,
        Txn::Invite => Some(interval * 2),
        _ if proceeding => Some(t2),
        _ => Some((interval * 2).min(t2)),
    }
}

/// The measured-item budget shared by all flows (`--requests`); unlimited when `None`.
#[derive(Debug, Clone, Default)]
pub struct Budget(Option<(Arc<AtomicU64>, u64)>);

impl Budget {
    /// A budget of `limit` measured items in total.
    pub fn limited(limit: u64) -> Budget {
        Budget(Some((Arc::new(AtomicU64::new(0)), limit)))
    }

    /// Takes one item from the budget; false once it is spent.
    pub fn take(&self) -> bool {
        match &self.0 {
            None => true,
            Some((used, limit)) => used.fetch_add(1, Ordering::Relaxed) < *limit,
        }
    }

    /// True once every item of the budget was taken.
    pub fn spent(&self) -> bool {
        match &self.0 {
            None => false,
            Some((used, limit)) => used.load(Ordering::Relaxed) >= *limit,
        }
    }
}

fn histogram() -> Histogram<u64> {
    // Valid bounds (1 ≤ low, high ≥ 2·low, sigfig 3) cannot fail.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
        .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid"))
}

/// Counters of one flow (and, merged, of the run). Everything counts measured items only,
/// i.e. those started after the warm-up.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Items started (OPTIONS requests or calls).
    pub sent: u64,
    /// Items completed with 200 (calls: 2xx to INVITE and to BYE).
    pub answered: u64,
    /// Items that ended with a final response other than 200 (calls: a non-2xx to INVITE
    /// or BYE).
    pub non_200: u64,
    /// Items with a transaction that got no final response within the timeout.
    pub unanswered: u64,
    /// Responses to a transaction that already had its final response (a 2xx to INVITE
    /// again is ACKed again).
    pub duplicates: u64,
    /// Responses that came after their (measured) item had timed out.
    pub late: u64,
    /// Provisional (1xx) responses, which do not complete a transaction.
    pub provisional: u64,
    /// Received messages (after the warm-up) that were not responses to this run's requests.
    pub stray: u64,
    /// I/O errors (send failures, ICMP errors on UDP, a broken connection).
    pub io_errors: u64,
    /// Requests sent again by Timer A/E, and ACKs sent again for a repeated 2xx.
    pub retransmissions: u64,
    /// Latency of OPTIONS, or of INVITE to its final response, µs.
    pub latency_us: Histogram<u64>,
    /// Latency of BYE to its final response, µs (calls).
    pub bye_latency_us: Histogram<u64>,
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
            retransmissions: 0,
            latency_us: histogram(),
            bye_latency_us: histogram(),
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
        self.retransmissions += o.retransmissions;
        // Same bounds on both sides: adding cannot fail.
        let _ = self.latency_us.add(&o.latency_us);
        let _ = self.bye_latency_us.add(&o.bye_latency_us);
    }
}

/// A message for the driver to send on the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The item (OPTIONS or call) it belongs to.
    pub seq: u64,
    /// What to send.
    pub method: Method,
    /// For ACK and BYE: the dialog the INVITE's final response set up.
    pub dialog: Option<Arc<Dialog>>,
    /// Sent before (Timer A/E, or an ACK for a repeated 2xx).
    pub retransmission: bool,
}

/// One outstanding item: the transaction it waits on and its timers.
#[derive(Debug)]
struct Item {
    measured: bool,
    txn: Txn,
    /// When the current transaction started (open loop: the item's due time).
    txn_start: Instant,
    proceeding: bool,
    /// Next retransmission and the interval that led to it.
    retransmit: Option<(Instant, Duration)>,
    /// The current transaction gives up here.
    expires: Instant,
    dialog: Option<Arc<Dialog>>,
}

impl Item {
    fn wake(&self) -> Instant {
        self.retransmit
            .map_or(self.expires, |(at, _)| at.min(self.expires))
    }
}

/// One flow's state.
#[derive(Debug)]
pub struct Flow {
    pace: Pace,
    schedule: Schedule,
    timeout: Duration,
    budget: Budget,
    scenario: Scenario,
    rtx: Option<Retransmit>,
    /// Next open-loop send time.
    next_due: Option<Instant>,
    next_seq: u64,
    /// The first measured item (sequence numbers grow with start times, so every later one
    /// is measured too).
    first_measured: Option<u64>,
    /// No more items (budget spent or connection lost).
    stopped: bool,
    outstanding: BTreeMap<u64, Item>,
    /// (wake-up, seq) of every outstanding item.
    timers: BTreeSet<(Instant, u64)>,
    /// Messages other than new items' first requests, in order.
    queue: VecDeque<Transmit>,
    /// One bit per sequence number: ended with a final response (tells duplicates from late
    /// responses).
    completed: Vec<u64>,
    /// The counters.
    pub stats: Stats,
}

impl Flow {
    /// A flow of OPTIONS without retransmissions that starts sending at `schedule.start`.
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
            scenario: Scenario::Options,
            rtx: None,
            next_due,
            next_seq: 0,
            first_measured: None,
            stopped: false,
            outstanding: BTreeMap::new(),
            timers: BTreeSet::new(),
            queue: VecDeque::new(),
            completed: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// Items are `scenario`.
    pub fn with_scenario(mut self, scenario: Scenario) -> Flow {
        self.scenario = scenario;
        self
    }

    /// Retransmits requests (UDP).
    pub fn with_retransmit(mut self, rtx: Option<Retransmit>) -> Flow {
        self.rtx = rtx;
        self
    }

    /// The next message to send now, if one is due; the caller sends it. A new item counts
    /// as started at its due time, so that open-loop latency includes any lag of the
    /// generator itself. Call until `None`.
    pub fn poll_send(&mut self, now: Instant) -> Option<Transmit> {
        if let Some(t) = self.queue.pop_front() {
            return Some(t);
        }
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
        let txn = match self.scenario {
            Scenario::Options => Txn::Options,
            Scenario::Call => Txn::Invite,
        };
        self.insert(
            seq,
            Item {
                measured,
                txn,
                txn_start: at,
                proceeding: false,
                retransmit: None,
                expires: at,
                dialog: None,
            },
            at,
        );
        if measured {
            self.stats.sent += 1;
            self.first_measured.get_or_insert(seq);
        }
        Some(Transmit {
            seq,
            method: Method::of(txn),
            dialog: None,
            retransmission: false,
        })
    }

    /// Files `item` with a new transaction started at `at` (timers from there).
    fn insert(&mut self, seq: u64, mut item: Item, at: Instant) {
        item.txn_start = at;
        item.proceeding = false;
        item.expires = at + self.timeout;
        item.retransmit = self.rtx.map(|r| (at + r.t1, r.t1));
        self.timers.insert((item.wake(), seq));
        self.outstanding.insert(seq, item);
    }

    fn remove(&mut self, seq: u64) -> Option<Item> {
        let item = self.outstanding.remove(&seq)?;
        self.timers.remove(&(item.wake(), seq));
        Some(item)
    }

    /// A response from this flow's socket arrived.
    pub fn on_response(&mut self, now: Instant, r: &Response) {
        let measured = self.first_measured.is_some_and(|f| r.seq >= f);
        let provisional = (100..200).contains(&r.status);
        let Some(item) = self.outstanding.get_mut(&r.seq) else {
            if r.seq >= self.next_seq {
                if now >= self.schedule.warm_end {
                    self.stats.stray += 1;
                }
            } else if !measured {
                // Responses to warm-up items are not counted, whatever they are.
            } else if provisional {
                self.stats.provisional += 1;
            } else if self.is_completed(r.seq) {
                self.stats.duplicates += 1;
            } else {
                self.stats.late += 1;
            }
            return;
        };
        if r.txn != item.txn {
            // A response to the call's earlier INVITE while its BYE is under way.
            if provisional {
                if item.measured {
                    self.stats.provisional += 1;
                }
            } else if r.txn == Txn::Invite && item.txn == Txn::Bye {
                if item.measured {
                    self.stats.duplicates += 1;
                }
                if (200..300).contains(&r.status) {
                    // The 2xx came again: our ACK may have been lost (RFC 3261 §13.2.2.4).
                    if item.measured {
                        self.stats.retransmissions += 1;
                    }
                    let dialog = item.dialog.clone();
                    self.queue.push_back(Transmit {
                        seq: r.seq,
                        method: Method::Ack,
                        dialog,
                        retransmission: true,
                    });
                }
            } else if now >= self.schedule.warm_end {
                self.stats.stray += 1;
            }
            return;
        }
        if provisional {
            if item.measured {
                self.stats.provisional += 1;
            }
            if !item.proceeding {
                item.proceeding = true;
                if item.txn == Txn::Invite && item.retransmit.is_some() {
                    // Timer A stops in the Proceeding state.
                    let old = item.wake();
                    item.retransmit = None;
                    let new = item.wake();
                    self.timers.remove(&(old, r.seq));
                    self.timers.insert((new, r.seq));
                }
            }
            return;
        }
        let Some(mut item) = self.remove(r.seq) else {
            return;
        };
        if item.measured {
            let us = now.saturating_duration_since(item.txn_start).as_micros();
            let us = u64::try_from(us)
                .unwrap_or(u64::MAX)
                .clamp(1, MAX_LATENCY_US);
            let h = match item.txn {
                Txn::Bye => &mut self.stats.bye_latency_us,
                _ => &mut self.stats.latency_us,
            };
            // Clamped into the histogram's range: recording cannot fail.
            let _ = h.record(us);
        }
        let success = match item.txn {
            Txn::Options => r.status == 200,
            _ => (200..300).contains(&r.status),
        };
        if item.txn == Txn::Invite {
            let dialog = r.dialog.clone();
            if success {
                // ACK the 2xx, and hang up at once.
                self.queue.push_back(Transmit {
                    seq: r.seq,
                    method: Method::Ack,
                    dialog: dialog.clone(),
                    retransmission: false,
                });
                self.queue.push_back(Transmit {
                    seq: r.seq,
                    method: Method::Bye,
                    dialog: dialog.clone(),
                    retransmission: false,
                });
                item.txn = Txn::Bye;
                item.dialog = dialog;
                self.insert(r.seq, item, now);
                return;
            }
            // The INVITE transaction ACKs a failure itself (RFC 3261 §17.1.1.3).
            self.queue.push_back(Transmit {
                seq: r.seq,
                method: Method::AckFailure,
                dialog,
                retransmission: false,
            });
        }
        self.mark_completed(r.seq);
        if item.measured {
            if success {
                self.stats.answered += 1;
            } else {
                self.stats.non_200 += 1;
            }
        }
    }

    /// A message that is not a response to this flow arrived.
    pub fn on_stray(&mut self, now: Instant) {
        if now >= self.schedule.warm_end {
            self.stats.stray += 1;
        }
    }

    /// An I/O error; `fatal` stops the flow (its outstanding items then time out).
    pub fn on_io_error(&mut self, now: Instant, fatal: bool) {
        if now >= self.schedule.warm_end {
            self.stats.io_errors += 1;
        }
        if fatal {
            self.stopped = true;
            self.queue.clear();
            // Nothing can be sent any more: retransmissions would only count errors.
            let seqs: Vec<u64> = self.outstanding.keys().copied().collect();
            for seq in seqs {
                if let Some(mut item) = self.remove(seq) {
                    item.retransmit = None;
                    self.timers.insert((item.wake(), seq));
                    self.outstanding.insert(seq, item);
                }
            }
        }
    }

    /// Retransmits what is due and gives up on transactions older than the timeout.
    pub fn on_timers(&mut self, now: Instant) {
        while let Some(&(at, seq)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let Some(item) = self.outstanding.get_mut(&seq) else {
                continue;
            };
            if now >= item.expires {
                let measured = item.measured;
                self.outstanding.remove(&seq);
                if measured {
                    self.stats.unanswered += 1;
                }
                continue;
            }
            if let (Some((_, interval)), Some(rtx)) = (item.retransmit, self.rtx) {
                if item.measured {
                    self.stats.retransmissions += 1;
                }
                self.queue.push_back(Transmit {
                    seq,
                    method: Method::of(item.txn),
                    dialog: item.dialog.clone(),
                    retransmission: true,
                });
                item.retransmit = next_interval(item.txn, interval, item.proceeding, rtx.t2)
                    .map(|next| (now + next, next));
            }
            self.timers.insert((item.wake(), seq));
        }
    }

    /// When the flow next needs to act without a response arriving.
    pub fn next_deadline(&self) -> Option<Instant> {
        let timer = self.timers.first().map(|&(at, _)| at);
        // A closed loop sends when a response comes or an item ends, never on a clock of
        // its own (the drivers start flows at `schedule.start`).
        let send = match self.pace {
            _ if self.stopped => None,
            Pace::Open { .. } => self.next_due.filter(|d| *d < self.schedule.end),
            Pace::Closed { .. } => None,
        };
        match (timer, send) {
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
        sending_over && self.outstanding.is_empty() && self.queue.is_empty()
    }

    /// Items outstanding now.
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
        Response::new(200, 0, seq, Txn::Options)
    }

    fn drain(f: &mut Flow, now: Instant) -> Vec<u64> {
        std::iter::from_fn(|| f.poll_send(now))
            .map(|t| t.seq)
            .collect()
    }

    /// Everything due now, as (seq, method, retransmission).
    fn sends(f: &mut Flow, now: Instant) -> Vec<(u64, Method, bool)> {
        std::iter::from_fn(|| f.poll_send(now))
            .map(|t| (t.seq, t.method, t.retransmission))
            .collect()
    }

    const RTX: Retransmit = Retransmit {
        t1: Duration::from_millis(500),
        t2: Duration::from_millis(4000),
    };

    fn invite_reply(status: u16, seq: u64) -> Response {
        Response {
            dialog: Some(Arc::new(Dialog {
                to_tag: Some("x".into()),
                target: Some("sip:uas@192.0.2.1".into()),
                record_route: vec!["<sip:p@192.0.2.9;lr>".into()],
            })),
            ..Response::new(status, 0, seq, Txn::Invite)
        }
    }

    #[test]
    fn timer_schedules() {
        let t2 = 4000 * MS;
        // Timer A doubles without a cap, and stops in Proceeding.
        assert_eq!(
            next_interval(Txn::Invite, 500 * MS, false, t2),
            Some(1000 * MS)
        );
        assert_eq!(
            next_interval(Txn::Invite, 8000 * MS, false, t2),
            Some(16000 * MS)
        );
        assert_eq!(next_interval(Txn::Invite, 500 * MS, true, t2), None);
        // Timer E doubles up to T2, and is T2 in Proceeding.
        assert_eq!(
            next_interval(Txn::Bye, 500 * MS, false, t2),
            Some(1000 * MS)
        );
        assert_eq!(next_interval(Txn::Options, 4000 * MS, false, t2), Some(t2));
        assert_eq!(next_interval(Txn::Options, 500 * MS, true, t2), Some(t2));
    }

    #[test]
    fn call_goes_invite_ack_bye() {
        let t0 = Instant::now();
        let s = schedule(t0);
        let mut f = Flow::new(Pace::Closed { window: 1 }, s, 5000 * MS, Budget::default())
            .with_scenario(Scenario::Call);
        let now = s.warm_end;
        assert_eq!(sends(&mut f, now), [(0, Method::Invite, false)]);
        f.on_response(now + MS, &Response::new(100, 0, 0, Txn::Invite));
        f.on_response(now + 2 * MS, &invite_reply(200, 0));
        let ack = f.poll_send(now + 2 * MS).unwrap();
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.dialog.unwrap().to_tag.as_deref(), Some("x"));
        assert_eq!(sends(&mut f, now + 2 * MS), [(0, Method::Bye, false)]);
        // The 200 to INVITE again: ACKed again.
        f.on_response(now + 3 * MS, &invite_reply(200, 0));
        assert_eq!(sends(&mut f, now + 3 * MS), [(0, Method::Ack, true)]);
        assert_eq!(f.outstanding(), 1);
        f.on_response(now + 5 * MS, &Response::new(200, 0, 0, Txn::Bye));
        // The window is free again: the next call starts.
        assert_eq!(sends(&mut f, now + 5 * MS), [(1, Method::Invite, false)]);
        f.on_response(now + 6 * MS, &Response::new(200, 0, 0, Txn::Bye));
        let st = &f.stats;
        assert_eq!(
            (
                st.sent,
                st.answered,
                st.provisional,
                st.duplicates,
                st.retransmissions
            ),
            (2, 1, 1, 2, 1)
        );
        assert!(st.latency_us.equivalent(st.latency_us.max(), 2000));
        assert!(st.bye_latency_us.equivalent(st.bye_latency_us.max(), 3000));
    }

    #[test]
    fn failed_invite_is_acked_in_its_transaction() {
        let t0 = Instant::now();
        let s = schedule(t0);
        let mut f = Flow::new(Pace::Closed { window: 1 }, s, 5000 * MS, Budget::default())
            .with_scenario(Scenario::Call);
        assert_eq!(drain(&mut f, s.warm_end), [0]);
        f.on_response(s.warm_end + MS, &invite_reply(486, 0));
        let ack = f.poll_send(s.warm_end + MS).unwrap();
        assert_eq!(ack.method, Method::AckFailure);
        assert_eq!((f.stats.answered, f.stats.non_200), (0, 1));
        assert_eq!(f.outstanding(), 0);
    }

    #[test]
    fn udp_invite_retransmits_on_timer_a_until_provisional() {
        let t0 = Instant::now();
        let s = schedule(t0);
        let mut f = Flow::new(
            Pace::Closed { window: 1 },
            s,
            32_000 * MS,
            Budget::default(),
        )
        .with_scenario(Scenario::Call)
        .with_retransmit(Some(RTX));
        let now = s.warm_end;
        assert_eq!(drain(&mut f, now), [0]);
        assert_eq!(f.next_deadline(), Some(now + 500 * MS));
        f.on_timers(now + 500 * MS);
        assert_eq!(sends(&mut f, now + 500 * MS), [(0, Method::Invite, true)]);
        // Next after 1 s more (doubled), then 2 s.
        assert_eq!(f.next_deadline(), Some(now + 1500 * MS));
        f.on_timers(now + 1500 * MS);
        assert_eq!(sends(&mut f, now + 1500 * MS), [(0, Method::Invite, true)]);
        assert_eq!(f.next_deadline(), Some(now + 3500 * MS));
        f.on_response(now + 1600 * MS, &Response::new(180, 0, 0, Txn::Invite));
        // Proceeding: no more retransmissions, only the transaction timeout.
        assert_eq!(f.next_deadline(), Some(now + 32_000 * MS));
        assert_eq!(f.stats.retransmissions, 2);
        f.on_response(now + 1700 * MS, &invite_reply(200, 0));
        assert_eq!(
            sends(&mut f, now + 1700 * MS),
            [(0, Method::Ack, false), (0, Method::Bye, false)]
        );
        // The BYE's own Timer E from its start.
        assert_eq!(f.next_deadline(), Some(now + 2200 * MS));
    }

    #[test]
    fn udp_options_retransmit_on_timer_e_capped_at_t2_then_time_out() {
        let t0 = Instant::now();
        let s = schedule(t0);
        let mut f = Flow::new(
            Pace::Closed { window: 1 },
            s,
            10_000 * MS,
            Budget::default(),
        )
        .with_retransmit(Some(RTX));
        let now = s.warm_end;
        assert_eq!(drain(&mut f, now), [0]);
        let mut fired = Vec::new();
        while let Some(at) = f.next_deadline() {
            f.on_timers(at);
            if !sends(&mut f, at).is_empty() {
                fired.push(at.duration_since(now).as_millis());
            }
        }
        // 0.5, 1.5, 3.5, 7.5 s (doubling, then T2), and the transaction gave up at 10 s.
        assert_eq!(fired, [500, 1500, 3500, 7500]);
        assert_eq!((f.stats.retransmissions, f.stats.unanswered), (4, 1));
        assert_eq!(f.outstanding(), 0);
    }

    #[test]
    fn a_broken_flow_stops_retransmitting_and_times_out() {
        let t0 = Instant::now();
        let s = schedule(t0);
        let mut f = Flow::new(Pace::Closed { window: 2 }, s, 2000 * MS, Budget::default())
            .with_scenario(Scenario::Call)
            .with_retransmit(Some(RTX));
        let now = s.warm_end;
        assert_eq!(drain(&mut f, now), [0, 1]);
        f.on_io_error(now + MS, true);
        assert_eq!(f.next_deadline(), Some(now + 2000 * MS));
        f.on_timers(now + 2000 * MS);
        assert!(sends(&mut f, now + 2000 * MS).is_empty());
        assert!(f.done(now + 2000 * MS));
        let st = &f.stats;
        assert_eq!((st.unanswered, st.retransmissions, st.io_errors), (2, 0, 1));
    }

    #[test]
    fn answer_to_a_retransmitted_request_then_its_duplicate() {
        let t0 = Instant::now();
        let s = schedule(t0);
        let mut f = Flow::new(
            Pace::Closed { window: 1 },
            s,
            10_000 * MS,
            Budget::default(),
        )
        .with_retransmit(Some(RTX));
        let now = s.warm_end;
        assert_eq!(drain(&mut f, now), [0]);
        f.on_timers(now + 500 * MS);
        assert_eq!(sends(&mut f, now + 500 * MS), [(0, Method::Options, true)]);
        f.on_response(now + 501 * MS, &ok(0));
        f.on_response(now + 502 * MS, &ok(0));
        // Answered, with its latency from the first send.
        let st = &f.stats;
        assert_eq!((st.answered, st.duplicates, st.retransmissions), (1, 1, 1));
        assert!(st.latency_us.equivalent(st.latency_us.max(), 501_000));
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
