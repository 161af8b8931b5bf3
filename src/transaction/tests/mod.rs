//! Tests of the transaction layer. Most drive a client and a server [`Transactions`]
//! table through a simulated network and clock ([`sim`]), like quinn-proto's tests
//! drive two endpoints in memory: no sockets, no sleeps, every run deterministic.
//!
//! [`Transactions`]: super::Transactions

pub(crate) mod msg;
pub(crate) mod sim;

mod client_invite;
mod client_non_invite;
mod loss;
mod matching;
mod prop;
mod server_invite;
mod server_non_invite;
