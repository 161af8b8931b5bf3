//! The INVITE client transaction (RFC 3261 §17.1.1, with the Accepted state and Timer M
//! of RFC 6026 §8.4).
//!
//! Calling: the INVITE is sent; Timer A retransmits it on unreliable transports (T1,
//! doubling), Timer B (64·T1) gives up. A provisional response moves to Proceeding (no
//! more retransmissions). A 2xx moves to Accepted: it and every later 2xx go to the TU,
//! which acknowledges them itself, until Timer M. A 300–699 moves to Completed: the
//! transaction sends the ACK, absorbs retransmissions of the response (answering each
//! with the ACK again) until Timer D.

use std::time::Instant;

use crate::wire::Message;
use crate::TransportKind;

use super::ack::ack_for_non_2xx;
use super::action::{Action, State};
use super::core::Core;
use super::error::TransactionError;
use super::key::ClientKey;
use super::timers::{after, due_timers, Retransmit, Timer, TimerConfig};

/// An INVITE client transaction.
#[derive(Debug, Clone)]
pub struct InviteClient {
    core: Core,
    key: ClientKey,
    request: Message,
    state: State,
    timer_a: Option<Retransmit>,
    timer_b: Option<Instant>,
    timer_d: Option<Instant>,
    timer_m: Option<Instant>,
    /// The ACK sent for the non-2xx response, sent again for each retransmission of it.
    ack: Option<Message>,
}

impl InviteClient {
    /// Starts the transaction for `request` (an INVITE with a magic-cookie branch), sent
    /// over `transport`: queues the request and starts Timers A (unreliable only) and B.
    pub fn new(
        request: Message,
        transport: TransportKind,
        timers: TimerConfig,
        now: Instant,
    ) -> Result<InviteClient, TransactionError> {
        let key = ClientKey::from_request(&request)?;
        Self::with_key(key, request, transport, timers, now)
    }

    /// [`InviteClient::new`] with the key the table already computed for `request`.
    pub(crate) fn with_key(
        key: ClientKey,
        request: Message,
        transport: TransportKind,
        timers: TimerConfig,
        now: Instant,
    ) -> Result<InviteClient, TransactionError> {
        if key.method() != "INVITE" {
            return Err(TransactionError::WrongMethod(key.method().into()));
        }
        let mut core = Core::new(transport, timers)?;
        core.push(Action::Send(request.clone()));
        let timer_a = if core.reliable {
            None
        } else {
            Retransmit::start(now, timers.duration(Timer::A, false))
        };
        let timer_b = after(now, timers.duration(Timer::B, core.reliable));
        Ok(InviteClient {
            core,
            key,
            request,
            state: State::Calling,
            timer_a,
            timer_b,
            timer_d: None,
            timer_m: None,
            ack: None,
        })
    }

    /// The INVITE as sent.
    pub fn request(&self) -> &Message {
        &self.request
    }

    /// A response matching [`InviteClient::key`] arrived. Responses that do not match are
    /// refused with [`TransactionError::NotMatching`].
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
            (State::Calling | State::Proceeding, 100..=199) => {
                self.state = State::Proceeding;
                self.timer_a = None;
                self.timer_b = None;
                self.core.push(Action::PassUp(response));
            }
            (State::Calling | State::Proceeding, 200..=299) => {
                self.state = State::Accepted;
                self.timer_a = None;
                self.timer_b = None;
                self.timer_m = after(now, self.core.timers.duration(Timer::M, self.core.reliable));
                self.core.push(Action::PassUp(response));
            }
            (State::Calling | State::Proceeding, _) => {
                self.timer_a = None;
                self.timer_b = None;
                self.state = State::Completed;
                let ack = ack_for_non_2xx(&self.request, &response);
                self.core.push(Action::PassUp(response));
                let built = match ack {
                    Ok(ack) => {
                        self.core.push(Action::Send(ack.clone()));
                        self.ack = Some(ack);
                        Ok(())
                    }
                    Err(e) => Err(e),
                };
                let d = self.core.timers.duration(Timer::D, self.core.reliable);
                if d.is_zero() {
                    self.finish();
                } else {
                    self.timer_d = after(now, d);
                }
                return built;
            }
            (State::Completed, 300..) => {
                if let Some(ack) = &self.ack {
                    self.core.push(Action::Send(ack.clone()));
                }
            }
            (State::Accepted, 200..=299) => self.core.push(Action::PassUp(response)),
            (state, code) => {
                tracing::trace!(?state, code, "INVITE client transaction absorbs a response");
            }
        }
        Ok(())
    }

    /// The transport could not send the INVITE or the ACK (§17.1.4): the TU is told and
    /// the transaction ends. In Accepted the transaction sends nothing, so it ignores it.
    pub fn handle_transport_error(&mut self, _now: Instant) {
        if matches!(
            self.state,
            State::Calling | State::Proceeding | State::Completed
        ) {
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
                Timer::A => {
                    if let Some(a) = self.timer_a {
                        self.core.push(Action::Send(self.request.clone()));
                        let next = self.core.timers.next_interval(Timer::A, a.interval);
                        self.timer_a = Retransmit::start(now, next);
                    }
                }
                Timer::B => {
                    self.core.push(Action::Timeout(Timer::B));
                    self.finish();
                }
                _ => self.finish(),
            }
        }
    }

    fn slots(&self) -> [(Timer, Option<Instant>); 4] {
        [
            (Timer::A, self.timer_a.map(|a| a.at)),
            (Timer::B, self.timer_b),
            (Timer::D, self.timer_d),
            (Timer::M, self.timer_m),
        ]
    }

    fn finish(&mut self) {
        self.state = State::Terminated;
        self.timer_a = None;
        self.timer_b = None;
        self.timer_d = None;
        self.timer_m = None;
        self.core.terminate();
    }
}

super::core::machine_accessors!(InviteClient, ClientKey);
