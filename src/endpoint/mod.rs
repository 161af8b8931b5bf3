//! The outbound and response API a SIP element embeds, on top of the transport layer:
//!
//! - [`ReuseEndpoint`]: RFC 3263 server location → RFC 5923 alias tables → transport, for
//!   requests; and the server-side alias rules for received requests.
//! - [`response_route`]: where a response goes (RFC 3261 §18.2.2, RFC 3581 §4).
//!
//! See docs/alias.md and docs/architecture.md.

mod alias_metrics;
mod response;
mod reuse;

pub use response::{response_route, ResponseRoute};
pub use reuse::{LocalDomain, ReuseConfig, ReuseEndpoint, ReuseError, Sent};
