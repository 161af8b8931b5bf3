//! 2xx responses to INVITE forwarded upstream over an unreliable transport, waiting for
//! their ACK.
//!
//! RFC 3261 §13.3.1.4 puts 2xx retransmission on the UAS core, "independent of whatever
//! transport protocols are used"; but a UAS on a reliable hop often never retransmits (SIPp
//! over TCP or SCTP, many UAs), and a proxy's INVITE transaction ends (or, RFC 6026, only
//! absorbs) once the 2xx is sent. A 2xx or its ACK lost on an unreliable upstream hop would
//! then end the call. So, as an SBC facing a UDP access side does, the proxy retransmits the
//! 2xx itself: T1, doubling up to T2 (the Timer G schedule), until the ACK matching it
//! (Call-ID, CSeq number, To tag) arrives or 64·T1 passes. The first ACK goes downstream;
//! later copies (answers to retransmissions already on the wire) are absorbed, so the
//! downstream hop sees one ACK. A 2xx retransmission that comes from downstream (a UAS that
//! does retransmit) is forwarded and counts as one of ours, so upstream does not get twice
//! as many; one that comes after the ACK went down says that ACK was lost downstream, so
//! the next ACK from upstream is forwarded too. A BYE from upstream in the dialog proves the
//! caller has the 2xx and ends the dialog: retransmissions stop and a late ACK is absorbed
//! (it would reach the UAS after the BYE, for a dialog that is gone).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use crate::idhash::SeededMap;
use crate::transaction::{Timer, TimerConfig};
use crate::wire::Message;

/// What identifies a 2xx and its ACK (RFC 3261 §13.2.2.4, §17.1.1.3): the dialog's Call-ID
/// and To tag and the INVITE's CSeq number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct OkKey {
    call_id: Box<str>,
    cseq: u32,
    to_tag: Box<str>,
}

impl OkKey {
    /// The key of a 2xx or an ACK; `None` without a To tag (a 2xx always has one).
    pub(crate) fn of(m: &Message) -> Option<OkKey> {
        Some(OkKey {
            call_id: m.call_id().into(),
            cseq: m.cseq().seq,
            to_tag: m.to_tag()?.into(),
        })
    }
}

/// Where a 2xx goes upstream: `U` is the driver's handle (the proxy's inbound flow).
#[derive(Debug, Clone)]
struct Entry<U> {
    id: u64,
    upstream: U,
    response: Message,
    /// The next retransmission and the interval that led to it; `None` once acknowledged.
    retransmit: Option<(Instant, Duration)>,
    /// 64·T1 after the first 2xx: the entry is forgotten.
    expires: Instant,
    /// The next ACK goes downstream: none has yet, or a downstream 2xx retransmission came
    /// after the last one did.
    forward_next_ack: bool,
}

impl<U> Entry<U> {
    fn next_at(&self) -> Instant {
        match self.retransmit {
            Some((at, _)) => at.min(self.expires),
            None => self.expires,
        }
    }
}

/// What the ACK for a 2xx should become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckVerdict {
    /// Forward it downstream (the first one, or no 2xx of ours waits for it).
    Forward,
    /// A copy of an ACK already forwarded: absorbed.
    Absorb,
}

/// What a timeout produced.
#[derive(Debug)]
pub(crate) struct Fired<U> {
    /// Send these 2xx upstream again.
    pub(crate) retransmit: Vec<(U, Message)>,
    /// How many 2xx got no ACK within 64·T1.
    pub(crate) gave_up: u64,
}

/// The 2xx responses waiting for their ACK, with one timer each.
#[derive(Debug)]
pub(crate) struct AckWait<U> {
    timers: TimerConfig,
    entries: SeededMap<OkKey, Entry<U>>,
    /// (Call-ID, To tag) → the CSeq numbers of its entries, for a BYE.
    dialogs: SeededMap<(Box<str>, Box<str>), Vec<u32>>,
    by_id: SeededMap<u64, OkKey>,
    /// (when, entry id); stale items (an entry rescheduled or gone) are skipped.
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    next_id: u64,
}

impl<U: Clone> AckWait<U> {
    pub(crate) fn new(timers: TimerConfig) -> AckWait<U> {
        AckWait {
            timers,
            entries: SeededMap::default(),
            dialogs: SeededMap::default(),
            by_id: SeededMap::default(),
            heap: BinaryHeap::new(),
            next_id: 0,
        }
    }

    /// 2xx responses waiting or kept to absorb ACK copies.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// A 2xx to INVITE went upstream over an unreliable transport. The first of its key
    /// starts the retransmissions; a later one (a downstream retransmission) takes the place
    /// of our next retransmission, or, after the ACK, lets the next ACK through.
    pub(crate) fn forwarded(&mut self, key: OkKey, response: Message, upstream: U, now: Instant) {
        if let Some(e) = self.entries.get_mut(&key) {
            match e.retransmit {
                Some((_, interval)) => {
                    let next = self.timers.next_interval(Timer::G, interval);
                    e.retransmit = now.checked_add(next).map(|at| (at, next));
                    let (id, at) = (e.id, e.next_at());
                    self.heap.push(Reverse((at, id)));
                }
                None => e.forward_next_ack = true,
            }
            return;
        }
        let first = self.timers.duration(Timer::G, false);
        let Some(expires) = now.checked_add(self.timers.duration(Timer::H, false)) else {
            return;
        };
        self.next_id += 1;
        let e = Entry {
            id: self.next_id,
            upstream,
            response,
            retransmit: now.checked_add(first).map(|at| (at, first)),
            expires,
            forward_next_ack: true,
        };
        self.heap.push(Reverse((e.next_at(), e.id)));
        self.by_id.insert(e.id, key.clone());
        self.dialogs
            .entry((key.call_id.clone(), key.to_tag.clone()))
            .or_default()
            .push(key.cseq);
        self.entries.insert(key, e);
    }

    /// An ACK arrived from upstream: forward it or absorb it. Retransmissions stop.
    pub(crate) fn ack(&mut self, key: &OkKey) -> AckVerdict {
        let Some(e) = self.entries.get_mut(key) else {
            return AckVerdict::Forward;
        };
        if e.retransmit.take().is_some() {
            // The entry now lives until it expires, absorbing copies.
            self.heap.push(Reverse((e.expires, e.id)));
        }
        if std::mem::take(&mut e.forward_next_ack) {
            AckVerdict::Forward
        } else {
            AckVerdict::Absorb
        }
    }

    /// A BYE from upstream in the dialog (Call-ID, To tag): its 2xx arrived, the dialog
    /// ends. Retransmissions stop; ACKs from now on are absorbed.
    pub(crate) fn dialog_ended(&mut self, call_id: &str, to_tag: &str) {
        let Some(cseqs) = self.dialogs.get(&(call_id.into(), to_tag.into())) else {
            return;
        };
        for &cseq in cseqs {
            let key = OkKey {
                call_id: call_id.into(),
                cseq,
                to_tag: to_tag.into(),
            };
            if let Some(e) = self.entries.get_mut(&key) {
                e.forward_next_ack = false;
                if e.retransmit.take().is_some() {
                    self.heap.push(Reverse((e.expires, e.id)));
                }
            }
        }
    }

    /// When [`AckWait::handle_timeout`] is due.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Fires what is due at `now`: retransmissions (at most one per entry and call) and
    /// expiries.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Fired<U> {
        let mut fired = Fired {
            retransmit: Vec::new(),
            gave_up: 0,
        };
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            let Some(key) = self.by_id.get(&id) else {
                continue;
            };
            let Some(e) = self.entries.get_mut(key) else {
                continue;
            };
            if e.next_at() != at {
                continue; // stale: rescheduled since
            }
            if e.expires <= now {
                if e.retransmit.is_some() {
                    fired.gave_up += 1;
                }
                let key = key.clone();
                self.entries.remove(&key);
                self.by_id.remove(&id);
                self.forget_dialog(&key);
                continue;
            }
            if let Some((_, interval)) = e.retransmit {
                fired
                    .retransmit
                    .push((e.upstream.clone(), e.response.clone()));
                let next = self.timers.next_interval(Timer::G, interval);
                e.retransmit = now.checked_add(next).map(|at| (at, next));
            }
            self.heap.push(Reverse((e.next_at(), id)));
        }
        fired
    }

    fn forget_dialog(&mut self, key: &OkKey) {
        let dialog = (key.call_id.clone(), key.to_tag.clone());
        if let Some(cseqs) = self.dialogs.get_mut(&dialog) {
            cseqs.retain(|&c| c != key.cseq);
            if cseqs.is_empty() {
                self.dialogs.remove(&dialog);
            }
        }
    }
}
