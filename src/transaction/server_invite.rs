//! The INVITE server transaction (RFC 3261 §17.2.1, with the Accepted state and Timer L
//! of RFC 6026 §8.5–§8.7).
//!
//! Proceeding: the INVITE is passed to the TU; 100 Trying goes out by itself after
//! [`TimerConfig::trying_delay`] unless the TU answered first; an INVITE retransmission
//! gets the latest provisional response again. A 2xx from the TU moves to Accepted: INVITE
//! retransmissions are absorbed, ACKs that match are passed to the TU, the TU's own 2xx
//! retransmissions are sent, until Timer L. A 300–699 moves to Completed: Timer G
//! retransmits it on unreliable transports (T1, doubling up to T2) until the ACK moves to
//! Confirmed; Timer H (64·T1) gives up waiting. Confirmed absorbs ACK retransmissions
//! until Timer I (T4; zero on reliable transports).

use std::time::Instant;

use crate::wire::response::response_message;
use crate::wire::Message;
use crate::TransportKind;

use super::action::{Action, State};
use super::core::Core;
use super::error::TransactionError;
use super::key::{answers, legacy_to_tag_matches, ServerKey};
use super::timers::{after, due_timers, Retransmit, Timer, TimerConfig};

/// The timers of this machine: the RFC's and the 100 Trying delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Trying,
    Rfc(Timer),
}

/// An INVITE server transaction.
#[derive(Debug, Clone)]
pub struct InviteServer {
    core: Core,
    key: ServerKey,
    request: Message,
    state: State,
    last_provisional: Option<Message>,
    last_final: Option<Message>,
    /// The To tag of the last final response, which an RFC 2543 ACK must carry.
    final_to_tag: Option<Box<str>>,
    trying_at: Option<Instant>,
    timer_g: Option<Retransmit>,
    timer_h: Option<Instant>,
    timer_i: Option<Instant>,
    timer_l: Option<Instant>,
}

impl InviteServer {
    /// Starts the transaction for a received INVITE that matched no transaction: queues
    /// the INVITE for the TU and arms the 100 Trying (sent at once for a zero delay).
    pub fn new(
        request: Message,
        transport: TransportKind,
        timers: TimerConfig,
        now: Instant,
    ) -> Result<InviteServer, TransactionError> {
        let key = ServerKey::from_request(&request)?;
        Self::with_key(key, request, transport, timers, now)
    }

    /// [`InviteServer::new`] with the key the table already computed for `request`.
    pub(crate) fn with_key(
        key: ServerKey,
        request: Message,
        transport: TransportKind,
        timers: TimerConfig,
        now: Instant,
    ) -> Result<InviteServer, TransactionError> {
        match request.method() {
            Some("INVITE") => {}
            Some("ACK") => return Err(TransactionError::AckStartsNoTransaction),
            other => {
                return Err(TransactionError::WrongMethod(
                    other.unwrap_or_default().into(),
                ))
            }
        }
        let mut core = Core::new(transport, timers)?;
        core.push(Action::PassUp(request.clone()));
        let mut t = InviteServer {
            core,
            key,
            request,
            state: State::Proceeding,
            last_provisional: None,
            last_final: None,
            final_to_tag: None,
            trying_at: None,
            timer_g: None,
            timer_h: None,
            timer_i: None,
            timer_l: None,
        };
        match timers.trying_delay {
            Some(d) if d.is_zero() => t.send_trying(),
            Some(d) => t.trying_at = after(now, d),
            None => {}
        }
        Ok(t)
    }

    /// The INVITE that created the transaction.
    pub fn request(&self) -> &Message {
        &self.request
    }

    /// Whether `request` belongs to this transaction: same key and, under the RFC 2543
    /// fallback, the right To tag.
    pub fn matches(&self, request: &Message) -> bool {
        ServerKey::from_request(request).is_ok_and(|k| k == self.key)
            && legacy_to_tag_matches(
                &self.key,
                request,
                &self.request,
                self.final_to_tag.as_deref(),
            )
    }

    /// A request matching this transaction arrived: an INVITE retransmission or an ACK.
    pub fn handle_request(
        &mut self,
        request: Message,
        now: Instant,
    ) -> Result<(), TransactionError> {
        if request.is_response() {
            return Err(TransactionError::NotARequest);
        }
        if !self.matches(&request) {
            return Err(TransactionError::NotMatching);
        }
        let is_ack = request.method() == Some("ACK");
        match (self.state, is_ack) {
            (State::Proceeding, false) => {
                if let Some(p) = &self.last_provisional {
                    self.core.push(Action::Send(p.clone()));
                }
            }
            (State::Completed, false) => {
                if let Some(f) = &self.last_final {
                    self.core.push(Action::Send(f.clone()));
                }
            }
            (State::Completed, true) => {
                self.timer_g = None;
                self.timer_h = None;
                self.state = State::Confirmed;
                let i = self.core.timers.duration(Timer::I, self.core.reliable);
                if i.is_zero() {
                    self.finish();
                } else {
                    self.timer_i = after(now, i);
                }
            }
            // RFC 6026 §8.7: ACKs matched in Accepted go to the TU.
            (State::Accepted, true) => self.core.push(Action::PassUp(request)),
            (state, is_ack) => {
                tracing::trace!(
                    ?state,
                    is_ack,
                    "INVITE server transaction absorbs a request"
                );
            }
        }
        Ok(())
    }

    /// The TU's response to send. 1xx in Proceeding; a 2xx moves to Accepted (and more
    /// 2xx, the TU's retransmissions, are sent from there); 300–699 moves to Completed.
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
            (State::Proceeding, 100..=199) => {
                self.trying_at = None;
                self.last_provisional = Some(response.clone());
                self.core.push(Action::Send(response));
            }
            (State::Proceeding, 200..=299) => {
                self.trying_at = None;
                self.final_to_tag = response.to_tag().map(Into::into);
                self.state = State::Accepted;
                self.timer_l = after(now, self.core.timers.duration(Timer::L, self.core.reliable));
                self.core.push(Action::Send(response));
            }
            (State::Proceeding, _) => {
                self.trying_at = None;
                self.final_to_tag = response.to_tag().map(Into::into);
                self.state = State::Completed;
                if !self.core.reliable {
                    self.timer_g =
                        Retransmit::start(now, self.core.timers.duration(Timer::G, false));
                }
                self.timer_h = after(now, self.core.timers.duration(Timer::H, self.core.reliable));
                self.last_final = Some(response.clone());
                self.core.push(Action::Send(response));
            }
            (State::Accepted, 200..=299) => self.core.push(Action::Send(response)),
            (state, _) => {
                return Err(TransactionError::InvalidInState {
                    state,
                    what: if code < 200 {
                        "a provisional response after the final one"
                    } else {
                        "another final response"
                    },
                })
            }
        }
        Ok(())
    }

    /// The transport could not send a response (§17.2.4): the TU is told. Proceeding and
    /// Completed end; Accepted stays to absorb INVITE retransmissions (RFC 6026 §8.7, the
    /// TU retransmits its 2xx itself); Confirmed sends nothing and ignores it.
    pub fn handle_transport_error(&mut self, _now: Instant) {
        match self.state {
            State::Proceeding | State::Completed => {
                self.core.push(Action::TransportError);
                self.finish();
            }
            State::Accepted => self.core.push(Action::TransportError),
            _ => {}
        }
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for slot in due_timers(&self.slots(), now) {
            if self.core.is_terminated() {
                break;
            }
            match slot {
                Slot::Trying => {
                    self.trying_at = None;
                    if self.state == State::Proceeding && self.last_provisional.is_none() {
                        self.send_trying();
                    }
                }
                Slot::Rfc(Timer::G) => {
                    if let (Some(g), Some(f)) = (self.timer_g, &self.last_final) {
                        self.core.push(Action::Send(f.clone()));
                        let next = self.core.timers.next_interval(Timer::G, g.interval);
                        self.timer_g = Retransmit::start(now, next);
                    }
                }
                Slot::Rfc(Timer::H) => {
                    self.core.push(Action::Timeout(Timer::H));
                    self.finish();
                }
                Slot::Rfc(_) => self.finish(),
            }
        }
    }

    fn send_trying(&mut self) {
        // Built with its index (the request's parsed parts), not written and parsed again.
        match response_message(&self.request, 100, "Trying", &[]) {
            Some(trying) => {
                self.last_provisional = Some(trying.clone());
                self.core.push(Action::Send(trying));
            }
            None => tracing::warn!("100 Trying does not parse; not sent"),
        }
    }

    fn slots(&self) -> [(Slot, Option<Instant>); 5] {
        [
            (Slot::Trying, self.trying_at),
            (Slot::Rfc(Timer::G), self.timer_g.map(|g| g.at)),
            (Slot::Rfc(Timer::H), self.timer_h),
            (Slot::Rfc(Timer::I), self.timer_i),
            (Slot::Rfc(Timer::L), self.timer_l),
        ]
    }

    fn finish(&mut self) {
        self.state = State::Terminated;
        self.trying_at = None;
        self.timer_g = None;
        self.timer_h = None;
        self.timer_i = None;
        self.timer_l = None;
        self.core.terminate();
    }
}

super::core::machine_accessors!(InviteServer, ServerKey);
