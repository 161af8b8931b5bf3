//! The non-INVITE server transaction (RFC 3261 §17.2.2).
//!
//! Trying: the request is passed to the TU; retransmissions are absorbed. A provisional
//! response from the TU moves to Proceeding, where a retransmission gets the latest
//! provisional again. A final response moves to Completed, where a retransmission gets the
//! final response again, until Timer J (64·T1; zero on reliable transports).

use std::time::Instant;

use crate::wire::Message;
use crate::TransportKind;

use super::action::{Action, State};
use super::core::Core;
use super::error::TransactionError;
use super::key::{answers, legacy_to_tag_matches, ServerKey};
use super::timers::{after, due_timers, Timer, TimerConfig};

/// A non-INVITE server transaction (any method but INVITE and ACK; CANCEL included).
#[derive(Debug, Clone)]
pub struct NonInviteServer {
    core: Core,
    key: ServerKey,
    request: Message,
    state: State,
    /// The latest response sent, provisional or final: what a retransmission gets.
    last_response: Option<Message>,
    timer_j: Option<Instant>,
}

impl NonInviteServer {
    /// Starts the transaction for a received request that matched no transaction: queues
    /// it for the TU.
    pub fn new(
        request: Message,
        transport: TransportKind,
        timers: TimerConfig,
        now: Instant,
    ) -> Result<NonInviteServer, TransactionError> {
        let key = ServerKey::from_request(&request)?;
        Self::with_key(key, request, transport, timers, now)
    }

    /// [`NonInviteServer::new`] with the key the table already computed for `request`.
    pub(crate) fn with_key(
        key: ServerKey,
        request: Message,
        transport: TransportKind,
        timers: TimerConfig,
        _now: Instant,
    ) -> Result<NonInviteServer, TransactionError> {
        match request.method() {
            Some("ACK") => return Err(TransactionError::AckStartsNoTransaction),
            Some("INVITE") => return Err(TransactionError::WrongMethod("INVITE".into())),
            _ => {}
        }
        let mut core = Core::new(transport, timers)?;
        core.push(Action::PassUp(request.clone()));
        Ok(NonInviteServer {
            core,
            key,
            request,
            state: State::Trying,
            last_response: None,
            timer_j: None,
        })
    }

    /// The request that created the transaction.
    pub fn request(&self) -> &Message {
        &self.request
    }

    /// Whether `request` belongs to this transaction.
    pub fn matches(&self, request: &Message) -> bool {
        ServerKey::from_request(request).is_ok_and(|k| k == self.key)
            && legacy_to_tag_matches(&self.key, request, &self.request, None)
    }

    /// A retransmission of the request arrived.
    pub fn handle_request(
        &mut self,
        request: Message,
        _now: Instant,
    ) -> Result<(), TransactionError> {
        if request.is_response() {
            return Err(TransactionError::NotARequest);
        }
        if !self.matches(&request) {
            return Err(TransactionError::NotMatching);
        }
        match self.state {
            State::Proceeding | State::Completed => {
                if let Some(r) = &self.last_response {
                    self.core.push(Action::Send(r.clone()));
                }
            }
            state => tracing::trace!(?state, "non-INVITE server transaction absorbs a request"),
        }
        Ok(())
    }

    /// The TU's response to send: 1xx moves to (or stays in) Proceeding, 200–699 to
    /// Completed; nothing is accepted after the final response.
    pub fn send_response(
        &mut self,
        response: Message,
        now: Instant,
    ) -> Result<(), TransactionError> {
        let code = response
            .status_code()
            .ok_or(TransactionError::NotAResponse)?;
        if !answers(&response, &self.request) {
            return Err(TransactionError::NotMatching);
        }
        match (self.state, code) {
            (State::Trying | State::Proceeding, 100..=199) => {
                self.state = State::Proceeding;
                self.last_response = Some(response.clone());
                self.core.push(Action::Send(response));
            }
            (State::Trying | State::Proceeding, _) => {
                self.state = State::Completed;
                self.last_response = Some(response.clone());
                self.core.push(Action::Send(response));
                let j = self.core.timers.duration(Timer::J, self.core.reliable);
                if j.is_zero() {
                    self.finish();
                } else {
                    self.timer_j = after(now, j);
                }
            }
            (state, _) => {
                return Err(TransactionError::InvalidInState {
                    state,
                    what: "a response after the final one",
                })
            }
        }
        Ok(())
    }

    /// The transport could not send a response (§17.2.4): the TU is told and the
    /// transaction ends. Trying has sent nothing and ignores it.
    pub fn handle_transport_error(&mut self, _now: Instant) {
        if matches!(self.state, State::Proceeding | State::Completed) {
            self.core.push(Action::TransportError);
            self.finish();
        }
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !due_timers(&self.slots(), now).is_empty() {
            self.finish();
        }
    }

    fn slots(&self) -> [(Timer, Option<Instant>); 1] {
        [(Timer::J, self.timer_j)]
    }

    fn finish(&mut self) {
        self.state = State::Terminated;
        self.timer_j = None;
        self.core.terminate();
    }
}

super::core::machine_accessors!(NonInviteServer, ServerKey);
