//! RFC 3263 server location: NAPTR, SRV, A/AAAA ordering and a DNS driver.
//!
//! The ordering logic is pure ([`Resolution`] is fed DNS answers and asks for the next queries;
//! the clock and the random source are passed in). [`dns::DnsResolver`] is the thin tokio driver
//! over hickory-resolver. See docs/resolve.md.

pub mod cache;
pub mod dns;
pub mod failover;
pub mod naptr;
pub mod plan;
pub mod srv;
pub mod target;

pub use cache::{DnsCache, TtlBounds, TtlCache};
pub use dns::{DnsConfig, DnsError, DnsResolver, NameServerProtocol};
pub use failover::{Failover, FailureKind};
pub use naptr::{select_naptr, NaptrChoice, NaptrRecord};
pub use plan::{
    resolve_with, Answer, IpFamily, PlanError, Query, QueryKind, Resolution, ResolveConfig,
    ResolvedTargets, Target,
};
pub use srv::{order_srv, SrvRecord, SrvSelection};
pub use target::{parse_host, Host, Scheme, SipTarget, TargetError, ViaTarget};

#[cfg(test)]
mod tests;
