//! The RFC 3261 §17 transaction layer, with the RFC 6026 corrections for 2xx responses to
//! INVITE. Pure and clock-free, in the style of the transport's keep-alive and flow core: each
//! transaction is fed messages, the TU's responses, transport errors and `now`, and hands
//! back [`Action`]s (what to send, what to pass up, timeouts) and its next
//! [`deadline`](Transaction::deadline). A driver owns the clock and the sockets.
//!
//! - [`TimerConfig`]: T1, T2, T4 and the timers A–M derived from them (§17, Table 4 of
//!   Appendix A; RFC 6026 Timers L and M).
//! - The four state machines: [`InviteClient`], [`NonInviteClient`], [`InviteServer`],
//!   [`NonInviteServer`], and [`Transaction`], one of them.
//! - [`ClientKey`] and [`ServerKey`]: the matching rules of §17.1.3 and §17.2.3 (with the
//!   RFC 2543 fallback), and the CANCEL-to-INVITE mapping of §9.2.
//! - [`Transactions`]: a table of transactions that routes received messages, reports the
//!   earliest deadline, fires timeouts and removes terminated transactions.
//!
//! See docs/transactions.md.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod ack;
mod action;
mod client_invite;
mod client_non_invite;
mod core;
mod error;
mod key;
mod machine;
mod server_invite;
mod server_non_invite;
mod table;
mod timers;

pub use ack::ack_for_non_2xx;
pub use action::{Action, State};
pub use client_invite::InviteClient;
pub use client_non_invite::NonInviteClient;
pub use error::TransactionError;
pub use key::{ClientKey, ServerKey, TransactionKey};
pub use machine::{Transaction, TransactionKind};
pub use server_invite::InviteServer;
pub use server_non_invite::NonInviteServer;
pub use table::{Received, TransactionId, Transactions};
pub use timers::{Timer, TimerConfig, DEFAULT_T1, DEFAULT_T2, DEFAULT_T4, DEFAULT_TRYING_DELAY};

#[cfg(test)]
mod tests;
