//! The SIP proxy core (RFC 3261 §16, RFC 5630, RFC 5658 double Record-Route, RFC 3263 §4.3
//! failover), pure and clock-free like the transaction layer it drives: fed the requests
//! and responses the transport delivered (with the flow they came on), the results of the
//! RFC 3263 look-ups it asked for, transport errors and `now`, it hands back [`Output`]s
//! (responses to send upstream, requests to send to a target, URIs to resolve) and its
//! next [`deadline`](Proxy::deadline).
//!
//! - [`ProxyConfig`]: our [`Listener`]s (what each side reaches), other names of ours, the
//!   configured routes ([`RouteRule`]: match on Request-URI domain / user / host, inbound
//!   listener, method; ordered [`RouteTarget`]s with a transport each, optionally
//!   stateless), Proxy-Require handling.
//! - [`Proxy`]: the core. Transaction-stateful by default (absorbs retransmissions, 100
//!   Trying to INVITE, best response, CANCEL, failover with a new branch per attempt); a
//!   route whose first target is `stateless` forwards per §16.11.
//!   A 2xx to INVITE sent up an unreliable hop is retransmitted until its ACK (RFC 3261
//!   §13.3.1.4 done for a UAS that does not; see `ack_wait.rs`).
//! - [`NextHop`]: what a request needs next (an address, or a URI to resolve).
//! - [`ResponsePlan`]: where a response goes upstream, in the order to try (RFC 3261
//!   §18.2.2, RFC 3581, RFC 3263 §5), walked by the driver.
//!
//! - [`driver::run`]: a thin tokio driver over a `Transport`.
//!
//! See docs/proxy.md for the rules and the tests that prove them.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod ack_wait;
mod best_effort;
mod branch;
mod config;
mod context;
mod core;
pub mod driver;
pub mod metrics;
mod reject;
mod request;
mod response_plan;
mod select;
mod send_queue;
mod sips;

pub use config::{
    ConfigError, Listener, ProxyConfig, ProxyRequire, RouteMatch, RouteRule, RouteTarget,
};
pub use core::{Egress, InFlight, Inbound, Output, Proxy, ProxyCounters, ProxyError, RequestId};
pub use reject::Reject;
pub use response_plan::{ResponsePlan, ResponseStep};
pub use select::{Hop, NextHop};

#[cfg(test)]
mod tests;
