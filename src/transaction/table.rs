//! The transactions of one element, keyed for matching (§17.1.3, §17.2.3), with a
//! deadline heap so that the driver asks one table for one next timeout.
//!
//! Pure: the driver feeds received messages, the TU's responses and transport errors with
//! `now`, calls [`Transactions::handle_timeout`] at [`Transactions::deadline`], and drains
//! [`Transactions::poll_action`]. A transaction leaves the table once its
//! [`Action::Terminated`] has been polled.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::time::Instant;

use crate::idhash::SeededMap;
use crate::wire::Message;
use crate::TransportKind;

use super::action::{Action, State};
use super::error::TransactionError;
use super::key::{ClientKey, ServerKey, TransactionKey};
use super::machine::Transaction;
use super::timers::TimerConfig;

/// A handle on a transaction of a [`Transactions`] table. Ids are never reused within a
/// table, so a stale handle misses instead of reaching a newer transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(u64);

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "txn#{}", self.0)
    }
}

/// Where a received message went.
#[derive(Debug, Clone)]
pub enum Received {
    /// Handed to this transaction; its actions say what follows.
    Matched(TransactionId),
    /// A request that matches no transaction (ACK excepted): the TU decides whether to
    /// start a server transaction ([`Transactions::start_server`]) or to act statelessly.
    NewRequest(Message),
    /// An ACK that matches no transaction: the ACK for a 2xx, which belongs to the TU
    /// (§17.2.3, §13.3.1.4).
    StrayAck(Message),
    /// A response that matches no client transaction: drop it (RFC 6026 changes §18.1.2:
    /// elements other than stateless proxies discard stray responses instead of passing
    /// them to the core); the table counts it.
    StrayResponse(Message),
}

#[derive(Debug)]
struct Entry {
    txn: Transaction,
    /// The deadline last pushed to the heap; heap items that differ are stale.
    scheduled: Option<Instant>,
    /// In the ready queue.
    ready: bool,
}

/// The transactions of one element.
#[derive(Debug)]
pub struct Transactions {
    timers: TimerConfig,
    next_id: u64,
    entries: SeededMap<TransactionId, Entry>,
    clients: SeededMap<ClientKey, TransactionId>,
    servers: SeededMap<ServerKey, TransactionId>,
    heap: BinaryHeap<Reverse<(Instant, TransactionId)>>,
    ready: VecDeque<TransactionId>,
    stray_responses: u64,
}

impl Transactions {
    /// An empty table whose transactions use `timers`.
    pub fn new(timers: TimerConfig) -> Transactions {
        Transactions {
            timers,
            next_id: 0,
            entries: SeededMap::default(),
            clients: SeededMap::default(),
            servers: SeededMap::default(),
            heap: BinaryHeap::new(),
            ready: VecDeque::new(),
            stray_responses: 0,
        }
    }

    /// The timer values of new transactions.
    pub fn timers(&self) -> &TimerConfig {
        &self.timers
    }

    /// Files `txn` under `key` (its own, computed once by the caller).
    fn insert(&mut self, txn: Transaction, key: TransactionKey) -> TransactionId {
        let id = TransactionId(self.next_id);
        self.next_id += 1;
        match key {
            TransactionKey::Client(k) => self.clients.insert(k, id),
            TransactionKey::Server(k) => self.servers.insert(k, id),
        };
        self.entries.insert(
            id,
            Entry {
                txn,
                scheduled: None,
                ready: false,
            },
        );
        self.touch(id);
        id
    }

    /// Starts a client transaction for `request`, to be sent over `transport`; its first
    /// action sends the request.
    pub fn start_client(
        &mut self,
        request: Message,
        transport: TransportKind,
        now: Instant,
    ) -> Result<TransactionId, TransactionError> {
        let key = ClientKey::from_request(&request)?;
        if self.clients.contains_key(&key) {
            return Err(TransactionError::Duplicate);
        }
        let txn = Transaction::client_keyed(key.clone(), request, transport, self.timers, now)?;
        Ok(self.insert(txn, TransactionKey::Client(key)))
    }

    /// Starts a server transaction for a request [`Transactions::receive`] reported as
    /// [`Received::NewRequest`], received over `transport`; its first action passes the
    /// request up.
    pub fn start_server(
        &mut self,
        request: Message,
        transport: TransportKind,
        now: Instant,
    ) -> Result<TransactionId, TransactionError> {
        if request.method() == Some("ACK") {
            return Err(TransactionError::AckStartsNoTransaction);
        }
        let key = ServerKey::from_request(&request)?;
        if self.servers.contains_key(&key) {
            return Err(TransactionError::Duplicate);
        }
        let txn = Transaction::server_keyed(key.clone(), request, transport, self.timers, now)?;
        Ok(self.insert(txn, TransactionKey::Server(key)))
    }

    /// Routes a received message: a response to its client transaction, a request to its
    /// server transaction. Messages whose top Via has no usable branch where one is
    /// needed get a typed error.
    pub fn receive(
        &mut self,
        message: Message,
        now: Instant,
    ) -> Result<Received, TransactionError> {
        if message.is_response() {
            let key = ClientKey::from_response(&message)?;
            let Some(&id) = self.clients.get(&key) else {
                self.stray_responses += 1;
                tracing::debug!(branch = key.branch(), "stray response dropped");
                return Ok(Received::StrayResponse(message));
            };
            return self.deliver(id, message, now);
        }
        let key = ServerKey::from_request(&message)?;
        let found = self.servers.get(&key).copied().filter(|id| {
            self.entries
                .get(id)
                .is_some_and(|e| e.txn.matches_request(&message))
        });
        match found {
            Some(id) => self.deliver(id, message, now),
            None if message.method() == Some("ACK") => Ok(Received::StrayAck(message)),
            None => Ok(Received::NewRequest(message)),
        }
    }

    fn deliver(
        &mut self,
        id: TransactionId,
        message: Message,
        now: Instant,
    ) -> Result<Received, TransactionError> {
        let result = match self.entries.get_mut(&id) {
            Some(e) => e.txn.handle_message(message, now),
            None => Err(TransactionError::UnknownTransaction),
        };
        self.touch(id);
        result.map(|()| Received::Matched(id))
    }

    /// The server transaction of the INVITE a received CANCEL cancels (§9.2), if it is
    /// still in the table. The TU answers the CANCEL itself (200, or 481 when this is
    /// `None`) and, when the INVITE has no final response yet, sends 487 on it.
    pub fn cancel_target(
        &self,
        cancel: &Message,
    ) -> Result<Option<TransactionId>, TransactionError> {
        if cancel.method() != Some("CANCEL") {
            return Err(TransactionError::WrongMethod(
                cancel.method().unwrap_or_default().into(),
            ));
        }
        let key = ServerKey::from_request(cancel)?;
        let Some(invite_key) = key.cancelled_invite() else {
            return Ok(None);
        };
        let found = self.servers.get(&invite_key).copied().filter(|id| {
            self.entries.get(id).is_some_and(|e| {
                // The RFC 2543 fallback also compares the To tag (§9.1: the CANCEL's To
                // is the INVITE's).
                invite_key.is_rfc3261() || cancel.to_tag() == e.txn.request().to_tag()
            })
        });
        Ok(found)
    }

    /// The TU's response for a server transaction.
    pub fn send_response(
        &mut self,
        id: TransactionId,
        response: Message,
        now: Instant,
    ) -> Result<(), TransactionError> {
        let result = match self.entries.get_mut(&id) {
            Some(e) => e.txn.send_response(response, now),
            None => Err(TransactionError::UnknownTransaction),
        };
        self.touch(id);
        result
    }

    /// The transport failed to send for this transaction.
    pub fn transport_error(
        &mut self,
        id: TransactionId,
        now: Instant,
    ) -> Result<(), TransactionError> {
        let Some(e) = self.entries.get_mut(&id) else {
            return Err(TransactionError::UnknownTransaction);
        };
        e.txn.handle_transport_error(now);
        self.touch(id);
        Ok(())
    }

    /// Fires the timers due at `now` in every transaction.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut fired = Vec::new();
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            if let Some(e) = self.entries.get_mut(&id) {
                if e.scheduled == Some(at) {
                    e.scheduled = None;
                    fired.push(id);
                }
            }
        }
        for id in fired {
            if let Some(e) = self.entries.get_mut(&id) {
                e.txn.handle_timeout(now);
            }
            self.touch(id);
        }
        self.tidy();
    }

    /// The earliest deadline of all transactions.
    pub fn deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The next action of any transaction, with its id. Actions of one transaction come
    /// in order; after its [`Action::Terminated`] the transaction is gone.
    pub fn poll_action(&mut self) -> Option<(TransactionId, Action)> {
        while let Some(&id) = self.ready.front() {
            let Some(e) = self.entries.get_mut(&id) else {
                self.ready.pop_front();
                continue;
            };
            match e.txn.poll_action() {
                Some(Action::Terminated) => {
                    self.ready.pop_front();
                    self.remove(id);
                    return Some((id, Action::Terminated));
                }
                Some(action) => return Some((id, action)),
                None => {
                    e.ready = false;
                    self.ready.pop_front();
                }
            }
        }
        None
    }

    /// A transaction of the table.
    pub fn get(&self, id: TransactionId) -> Option<&Transaction> {
        self.entries.get(&id).map(|e| &e.txn)
    }

    /// The state of a transaction of the table.
    pub fn state(&self, id: TransactionId) -> Option<State> {
        self.get(id).map(Transaction::state)
    }

    /// Number of transactions (terminated ones stay until their last action is polled).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the table holds no transaction.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Responses that matched no client transaction, since the table was made.
    pub fn stray_responses(&self) -> u64 {
        self.stray_responses
    }

    fn remove(&mut self, id: TransactionId) {
        if let Some(e) = self.entries.remove(&id) {
            match e.txn.key() {
                TransactionKey::Client(k) => {
                    if self.clients.get(&k) == Some(&id) {
                        self.clients.remove(&k);
                    }
                }
                TransactionKey::Server(k) => {
                    if self.servers.get(&k) == Some(&id) {
                        self.servers.remove(&k);
                    }
                }
            }
        }
        self.tidy();
    }

    /// After any change to `id`: reschedule it and queue it for polling.
    fn touch(&mut self, id: TransactionId) {
        if let Some(e) = self.entries.get_mut(&id) {
            let d = e.txn.deadline();
            if d != e.scheduled {
                e.scheduled = d;
                if let Some(at) = d {
                    self.heap.push(Reverse((at, id)));
                }
            }
            if !e.ready && e.txn.has_actions() {
                e.ready = true;
                self.ready.push_back(id);
            }
        }
        self.tidy();
    }

    /// Drops stale heap items from the top (so that [`Transactions::deadline`] is exact)
    /// and rebuilds the heap when stale items pile up.
    fn tidy(&mut self) {
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            if self
                .entries
                .get(&id)
                .is_some_and(|e| e.scheduled == Some(at))
            {
                break;
            }
            self.heap.pop();
        }
        if self.heap.len() > 64 + 4 * self.entries.len() {
            self.heap = self
                .entries
                .iter()
                .filter_map(|(&id, e)| e.scheduled.map(|at| Reverse((at, id))))
                .collect();
        }
    }
}
