//! The non-INVITE client transaction (RFC 3261 §17.1.2).
//!
//! Trying: the request is sent; Timer E retransmits it on unreliable transports (T1,
//! doubling up to T2), Timer F (64·T1) gives up. A provisional response moves to
//! Proceeding, where Timer E retransmits every T2. A final response moves to Completed,
//! which absorbs response retransmissions until Timer K (T4; zero on reliable transports).

use std::time::Instant;

use crate::wire::Message;
use crate::TransportKind;

use super::action::{Action, State};
use super::core::Core;
use super::error::TransactionError;
use super::key::ClientKey;
use super::timers::{after, due_timers, Retransmit, Timer, TimerConfig};

/// A non-INVITE client transaction (any method but INVITE and ACK; CANCEL included).
#[derive(Debug, Clone)]
pub struct NonInviteClient {
    core: Core,
    key: ClientKey,
    request: Message,
    state: State,
    timer_e: Option<Retransmit>,
    timer_f: Option<Instant>,
    timer_k: Option<Instant>,
}

impl NonInviteClient {
    /// Starts the transaction for `request` sent over `transport`: queues the request and
    /// starts Timers E (unreliable only) and F.
    pub fn new(
        request: Message,
        transport: TransportKind,
        timers: TimerConfig,
        now: Instant,
    ) -> Result<NonInviteClient, TransactionError> {
        let key = ClientKey::from_request(&request)?;
        Self::with_key(key, request, transport, timers, now)
    }

    /// [`NonInviteClient::new`] with the key the table already computed for `request`.
    pub(crate) fn with_key(
        key: ClientKey,
        request: Message,
        transport: TransportKind,
        timers: TimerConfig,
        now: Instant,
    ) -> Result<NonInviteClient, TransactionError> {
        if key.method() == "INVITE" {
            return Err(TransactionError::WrongMethod(key.method().into()));
        }
        let mut core = Core::new(transport, timers)?;
        core.push(Action::Send(request.clone()));
        let timer_e = if core.reliable {
            None
        } else {
            Retransmit::start(now, timers.duration(Timer::E, false))
        };
        let timer_f = after(now, timers.duration(Timer::F, core.reliable));
        Ok(NonInviteClient {
            core,
            key,
            request,
            state: State::Trying,
            timer_e,
            timer_f,
            timer_k: None,
        })
    }

    /// The request as sent.
    pub fn request(&self) -> &Message {
        &self.request
    }

    /// A response matching [`NonInviteClient::key`] arrived.
    pub fn handle_response(
        &mut self,
        response: Message,
        now: Instant,
    ) -> Result<(), TransactionError> {
        if ClientKey::from_response(&response)? != self.key {
            return Err(TransactionError::NotMatching);
        }
        let code = response
            .status_code()
            .ok_or(TransactionError::NotAResponse)?;
        match (self.state, code) {
            (State::Trying | State::Proceeding, 100..=199) => {
                self.state = State::Proceeding;
                self.core.push(Action::PassUp(response));
            }
            (State::Trying | State::Proceeding, _) => {
                self.state = State::Completed;
                self.timer_e = None;
                self.timer_f = None;
                self.core.push(Action::PassUp(response));
                let k = self.core.timers.duration(Timer::K, self.core.reliable);
                if k.is_zero() {
                    self.finish();
                } else {
                    self.timer_k = after(now, k);
                }
            }
            (state, code) => {
                tracing::trace!(
                    ?state,
                    code,
                    "non-INVITE client transaction absorbs a response"
                );
            }
        }
        Ok(())
    }

    /// The transport could not send the request (§17.1.4): the TU is told and the
    /// transaction ends. Completed sends nothing and ignores it.
    pub fn handle_transport_error(&mut self, _now: Instant) {
        if matches!(self.state, State::Trying | State::Proceeding) {
            self.core.push(Action::TransportError);
            self.finish();
        }
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in due_timers(&self.slots(), now) {
            if self.core.is_terminated() {
                break;
            }
            match timer {
                Timer::E => {
                    if let Some(e) = self.timer_e {
                        self.core.push(Action::Send(self.request.clone()));
                        // §17.1.2.2: doubling up to T2 in Trying, T2 in Proceeding.
                        let next = if self.state == State::Proceeding {
                            self.core.timers.t2
                        } else {
                            self.core.timers.next_interval(Timer::E, e.interval)
                        };
                        self.timer_e = Retransmit::start(now, next);
                    }
                }
                Timer::F => {
                    self.core.push(Action::Timeout(Timer::F));
                    self.finish();
                }
                _ => self.finish(),
            }
        }
    }

    fn slots(&self) -> [(Timer, Option<Instant>); 3] {
        [
            (Timer::E, self.timer_e.map(|e| e.at)),
            (Timer::F, self.timer_f),
            (Timer::K, self.timer_k),
        ]
    }

    fn finish(&mut self) {
        self.state = State::Terminated;
        self.timer_e = None;
        self.timer_f = None;
        self.timer_k = None;
        self.core.terminate();
    }
}

super::core::machine_accessors!(NonInviteClient, ClientKey);
