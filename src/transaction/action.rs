//! What a transaction hands back, and the states it can be in.

use crate::wire::Message;

use super::timers::Timer;

/// What the driver must do for a transaction, in order.
#[derive(Debug, Clone)]
pub enum Action {
    /// Give this message to the transport: the request, a retransmission, the ACK for a
    /// non-2xx final response, a response or its retransmission. Client transactions send
    /// to the destination of the original request (RFC 3263 §4: the ACK and
    /// retransmissions go to the same host); server transactions per §18.2.2.
    Send(Message),
    /// Deliver this message to the TU: a response (client side), the request that started
    /// the server transaction, or an ACK matched in the RFC 6026 Accepted state.
    PassUp(Message),
    /// The transaction timed out (Timer B, F or H); it terminates next.
    Timeout(Timer),
    /// The transport failed to deliver (§17.1.4, §17.2.4); it terminates next, except in
    /// the INVITE server's Accepted state, which still absorbs retransmissions.
    TransportError,
    /// The transaction is over; it hands back nothing more.
    Terminated,
}

/// The states of the four machines (each uses a subset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// INVITE client: the INVITE is sent (and retransmitted on unreliable transports).
    Calling,
    /// Non-INVITE client: the request is sent; non-INVITE server: the request is passed up
    /// and no response was sent yet.
    Trying,
    /// A provisional response was received (client) or sent (server).
    Proceeding,
    /// RFC 6026: a 2xx was received (INVITE client) or sent (INVITE server); 2xx
    /// retransmissions go to the TU, INVITE retransmissions are absorbed.
    Accepted,
    /// A final (INVITE: non-2xx) response was received or sent; retransmissions absorbed.
    Completed,
    /// INVITE server: the ACK arrived; ACK retransmissions are absorbed.
    Confirmed,
    /// Over.
    Terminated,
}
