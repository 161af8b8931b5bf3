//! One of the four machines behind one interface, for tables and drivers that hold all
//! kinds together.

use std::time::Instant;

use crate::wire::Message;
use crate::TransportKind;

use super::action::{Action, State};
use super::client_invite::InviteClient;
use super::client_non_invite::NonInviteClient;
use super::error::TransactionError;
use super::key::{ClientKey, ServerKey, TransactionKey};
use super::server_invite::InviteServer;
use super::server_non_invite::NonInviteServer;
use super::timers::TimerConfig;

/// Which of the four machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionKind {
    /// §17.1.1.
    InviteClient,
    /// §17.1.2.
    NonInviteClient,
    /// §17.2.1.
    InviteServer,
    /// §17.2.2.
    NonInviteServer,
}

/// A transaction of any kind.
// Every variant holds one to three messages, so the sizes differ but all are large;
// boxing would add an allocation per transaction and save little.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Transaction {
    /// §17.1.1.
    InviteClient(InviteClient),
    /// §17.1.2.
    NonInviteClient(NonInviteClient),
    /// §17.2.1.
    InviteServer(InviteServer),
    /// §17.2.2.
    NonInviteServer(NonInviteServer),
}

macro_rules! each {
    ($self:expr, $t:ident => $e:expr) => {
        match $self {
            Transaction::InviteClient($t) => $e,
            Transaction::NonInviteClient($t) => $e,
            Transaction::InviteServer($t) => $e,
            Transaction::NonInviteServer($t) => $e,
        }
    };
}

impl Transaction {
    /// A client transaction for a request we send: INVITE or non-INVITE by its method.
    pub fn client(
        request: Message,
        transport: TransportKind,
        timers: TimerConfig,
        now: Instant,
    ) -> Result<Transaction, TransactionError> {
        let key = ClientKey::from_request(&request)?;
        Transaction::client_keyed(key, request, transport, timers, now)
    }

    /// [`Transaction::client`] with the key the table computed.
    pub(crate) fn client_keyed(
        key: ClientKey,
        request: Message,
        transport: TransportKind,
        timers: TimerConfig,
        now: Instant,
    ) -> Result<Transaction, TransactionError> {
        if request.method() == Some("INVITE") {
            InviteClient::with_key(key, request, transport, timers, now)
                .map(Transaction::InviteClient)
        } else {
            NonInviteClient::with_key(key, request, transport, timers, now)
                .map(Transaction::NonInviteClient)
        }
    }

    /// [`Transaction::server`] with the key the table computed.
    pub(crate) fn server_keyed(
        key: ServerKey,
        request: Message,
        transport: TransportKind,
        timers: TimerConfig,
        now: Instant,
    ) -> Result<Transaction, TransactionError> {
        if request.method() == Some("INVITE") {
            InviteServer::with_key(key, request, transport, timers, now)
                .map(Transaction::InviteServer)
        } else {
            NonInviteServer::with_key(key, request, transport, timers, now)
                .map(Transaction::NonInviteServer)
        }
    }

    /// A server transaction for a received request that matched none.
    pub fn server(
        request: Message,
        transport: TransportKind,
        timers: TimerConfig,
        now: Instant,
    ) -> Result<Transaction, TransactionError> {
        let key = ServerKey::from_request(&request)?;
        Transaction::server_keyed(key, request, transport, timers, now)
    }

    /// Which machine.
    pub fn kind(&self) -> TransactionKind {
        match self {
            Transaction::InviteClient(_) => TransactionKind::InviteClient,
            Transaction::NonInviteClient(_) => TransactionKind::NonInviteClient,
            Transaction::InviteServer(_) => TransactionKind::InviteServer,
            Transaction::NonInviteServer(_) => TransactionKind::NonInviteServer,
        }
    }

    /// The matching key.
    pub fn key(&self) -> TransactionKey {
        match self {
            Transaction::InviteClient(t) => TransactionKey::Client(t.key().clone()),
            Transaction::NonInviteClient(t) => TransactionKey::Client(t.key().clone()),
            Transaction::InviteServer(t) => TransactionKey::Server(t.key().clone()),
            Transaction::NonInviteServer(t) => TransactionKey::Server(t.key().clone()),
        }
    }

    /// The request that created the transaction.
    pub fn request(&self) -> &Message {
        each!(self, t => t.request())
    }

    /// The current state.
    pub fn state(&self) -> State {
        each!(self, t => t.state())
    }

    /// True once the transaction reached Terminated.
    pub fn is_terminated(&self) -> bool {
        self.state() == State::Terminated
    }

    /// A received message for this transaction: a response (client side), a request
    /// retransmission or an ACK (server side).
    pub fn handle_message(
        &mut self,
        message: Message,
        now: Instant,
    ) -> Result<(), TransactionError> {
        match self {
            Transaction::InviteClient(t) => t.handle_response(message, now),
            Transaction::NonInviteClient(t) => t.handle_response(message, now),
            Transaction::InviteServer(t) => t.handle_request(message, now),
            Transaction::NonInviteServer(t) => t.handle_request(message, now),
        }
    }

    /// Whether a received request belongs to this server transaction (the RFC 2543
    /// fallback also compares To tags). Always false for client transactions.
    pub fn matches_request(&self, request: &Message) -> bool {
        match self {
            Transaction::InviteServer(t) => t.matches(request),
            Transaction::NonInviteServer(t) => t.matches(request),
            _ => false,
        }
    }

    /// The TU's response to send (server transactions only).
    pub fn send_response(
        &mut self,
        response: Message,
        now: Instant,
    ) -> Result<(), TransactionError> {
        match self {
            Transaction::InviteServer(t) => t.send_response(response, now),
            Transaction::NonInviteServer(t) => t.send_response(response, now),
            _ => Err(TransactionError::InvalidInState {
                state: self.state(),
                what: "a response on a client transaction",
            }),
        }
    }

    /// The transport failed to send for this transaction.
    pub fn handle_transport_error(&mut self, now: Instant) {
        each!(self, t => t.handle_transport_error(now))
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        each!(self, t => t.handle_timeout(now))
    }

    /// When [`Transaction::handle_timeout`] must run next.
    pub fn deadline(&self) -> Option<Instant> {
        each!(self, t => t.deadline())
    }

    /// The next action, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        each!(self, t => t.poll_action())
    }

    pub(crate) fn has_actions(&self) -> bool {
        each!(self, t => t.has_actions())
    }
}
