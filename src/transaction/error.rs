//! Why the transaction layer refused a message or a call. Any input, however malformed,
//! ends in one of these and never in a panic.

use crate::wire::ParseError;

use super::action::State;

/// An error of the transaction layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// The top Via could not be read.
    #[error("unreadable top Via")]
    BadVia(#[source] ParseError),
    /// A response (or a request we send) has no `branch` in its top Via: it cannot be
    /// matched to a client transaction (§17.1.3).
    #[error("top Via has no branch")]
    MissingBranch,
    /// A request we send has a branch without the `z9hG4bK` magic cookie (§8.1.1.7 makes
    /// it mandatory for requests built by RFC 3261 elements).
    #[error("branch lacks the z9hG4bK magic cookie")]
    BranchWithoutCookie,
    /// A request where a response was expected.
    #[error("expected a response, got a request")]
    NotAResponse,
    /// A response where a request was expected.
    #[error("expected a request, got a response")]
    NotARequest,
    /// The request's method does not fit the transaction (for example a BYE given to an
    /// INVITE client transaction).
    #[error("method {0} does not fit this transaction")]
    WrongMethod(Box<str>),
    /// ACK never starts a transaction: the ACK for a non-2xx is part of the INVITE
    /// transaction and the ACK for a 2xx is the TU's (§17).
    #[error("ACK does not start a transaction")]
    AckStartsNoTransaction,
    /// The message belongs to another transaction (different branch, sent-by, method,
    /// Call-ID or CSeq).
    #[error("message does not match this transaction")]
    NotMatching,
    /// The TU asked for something the current state does not allow (for example a second
    /// final response).
    #[error("{what} not allowed in state {state:?}")]
    InvalidInState {
        /// The state the transaction was in.
        state: State,
        /// What was refused.
        what: &'static str,
    },
    /// A transaction with the same key already exists.
    #[error("a transaction with this key already exists")]
    Duplicate,
    /// No transaction has this id (it terminated and was removed, or never existed).
    #[error("no such transaction")]
    UnknownTransaction,
    /// A message built by the transaction (ACK, 100 Trying) failed to parse; this points
    /// at a bug, not at the peer.
    #[error("built message does not parse")]
    Build(#[source] ParseError),
    /// The timer configuration cannot run.
    #[error("bad timer configuration: {0}")]
    BadTimers(&'static str),
}
