//! Flood and abuse limits per source address, in the spirit of Kamailio's pike and
//! OpenSIPS's ratelimit: a request rate, a new-connection (and new-association) rate, and a
//! budget of failed TLS handshakes after which a source is refused TLS for a while.
//!
//! [`FloodLimiter`] is pure bookkeeping, fed `now`: the transport's drivers ask it before
//! they accept a connection or deliver a request, and tell it about failed handshakes.
//! Sources are IPv4 addresses and IPv6 prefixes (a /64 by default: one host usually holds a
//! whole /64, so counting single IPv6 addresses would let it multiply its share by 2^64).
//! The table of sources has a hard cap, the least recently seen forgotten first
//! ([`table`]), and allow-listed prefixes are never tracked nor limited.

mod gcra;
mod prefix;
mod table;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use gcra::Rate;
pub use prefix::{IpPrefix, PrefixError};

use crate::wire::response::service_unavailable;
use crate::wire::Message;
use gcra::Bucket;
use table::Lru;

/// What to do with a request over its source's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloodAction {
    /// Answer `503 Service Unavailable` (with `Retry-After` when configured). ACKs are
    /// dropped all the same: they are never answered.
    Reply,
    /// Drop it silently: costs the flooder a retransmission timer, and us no send.
    Drop,
}

/// The limits. A `None` rate is not enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloodConfig {
    /// Requests per source (every transport together; responses are never counted).
    pub requests: Option<Rate>,
    /// New inbound TCP and TLS connections and SCTP associations per source.
    pub connections: Option<Rate>,
    /// Failed inbound TLS handshakes per source; a source over it is refused new TLS
    /// connections for [`FloodConfig::tls_ban`].
    pub tls_failures: Option<Rate>,
    /// How long a source over its TLS handshake budget is refused TLS.
    pub tls_ban: Duration,
    /// What happens to requests over the rate.
    pub action: FloodAction,
    /// `Retry-After` of the 503 (seconds); `None`: no header.
    pub retry_after: Option<u32>,
    /// Prefixes never limited (peers, monitoring, the operator's own hosts).
    pub allow: Vec<IpPrefix>,
    /// Sources remembered at most.
    pub max_sources: usize,
    /// IPv6 sources are grouped by this prefix length.
    pub ipv6_prefix: u8,
}

impl Default for FloodConfig {
    fn default() -> Self {
        FloodConfig {
            requests: Some(Rate::per_second(100, 200)),
            connections: Some(Rate::per_second(10, 20)),
            tls_failures: Some(Rate {
                count: 10,
                per: Duration::from_secs(60),
                burst: 10,
            }),
            tls_ban: Duration::from_secs(60),
            action: FloodAction::Reply,
            retry_after: Some(5),
            allow: Vec::new(),
            max_sources: 65_536,
            ipv6_prefix: 64,
        }
    }
}

/// Which limit refused something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The source's request rate.
    Requests,
    /// The source's new-connection / new-association rate.
    Connections,
    /// The source spent its budget of failed TLS handshakes.
    TlsHandshakes,
}

impl Limit {
    /// The metrics label (`sipwire_transport_drops_total{reason}`).
    pub fn reason(self) -> &'static str {
        match self {
            Limit::Requests => "request_rate",
            Limit::Connections => "connection_rate",
            Limit::TlsHandshakes => "tls_handshake_budget",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Limit::Requests => 1,
            Limit::Connections => 2,
            Limit::TlsHandshakes => 4,
        }
    }
}

/// A refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The limit.
    pub limit: Limit,
    /// How long until the source would be admitted again (at least).
    pub retry_in: Duration,
    /// Whether to log it: the first refusal of a source since it last conformed, within
    /// a global budget of log lines, so that a flood does not become a log flood.
    pub log: bool,
}

/// The verdict on one received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestVerdict {
    /// Deliver it.
    Admit,
    /// Do not deliver it; send this 503 back to the source on the flow it came from.
    Reply(Bytes, Refusal),
    /// Do not deliver it, answer nothing.
    Drop(Refusal),
}

/// Log lines about refusals: 10 a second, bursts of 20, whatever the number of sources.
const LOG_RATE: Rate = Rate {
    count: 10,
    per: Duration::from_secs(1),
    burst: 20,
};

/// What is remembered about one source.
#[derive(Debug)]
struct Source {
    requests: Bucket,
    connections: Bucket,
    tls_failures: Bucket,
    tls_banned_until: Option<Instant>,
    /// Limits currently refusing this source (bits of [`Limit::bit`]): refusals after the
    /// first are not logged.
    refusing: u8,
}

impl Source {
    fn new(now: Instant) -> Source {
        Source {
            requests: Bucket::full(now),
            connections: Bucket::full(now),
            tls_failures: Bucket::full(now),
            tls_banned_until: None,
            refusing: 0,
        }
    }
}

/// Per-source limits (see the module documentation). Pure: fed `now`.
#[derive(Debug)]
pub struct FloodLimiter {
    cfg: FloodConfig,
    sources: Lru<IpAddr, Source>,
    log: Bucket,
    evicted: u64,
}

impl FloodLimiter {
    /// A limiter with no source known yet.
    pub fn new(cfg: FloodConfig, now: Instant) -> FloodLimiter {
        FloodLimiter {
            sources: Lru::new(cfg.max_sources),
            cfg,
            log: Bucket::full(now),
            evicted: 0,
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &FloodConfig {
        &self.cfg
    }

    /// Sources remembered.
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }

    /// Sources forgotten to make room since the start.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// True when `ip` is allow-listed.
    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        self.cfg.allow.iter().any(|p| p.contains(ip))
    }

    /// The source `ip` counts as: its IPv4 address, or its IPv6 prefix.
    fn key(&self, ip: IpAddr) -> IpAddr {
        match prefix::canonical(ip) {
            v4 @ IpAddr::V4(_) => v4,
            v6 => prefix::masked(v6, self.cfg.ipv6_prefix),
        }
    }

    fn source(&mut self, ip: IpAddr, now: Instant) -> &mut Source {
        let key = self.key(ip);
        let (s, evicted) = self.sources.touch(key, || Source::new(now));
        if evicted {
            self.evicted += 1;
        }
        s
    }

    /// Decides on one event of `limit` for `ip` with `bucket` picked from its source.
    fn charge(
        &mut self,
        ip: IpAddr,
        limit: Limit,
        rate: Option<Rate>,
        now: Instant,
    ) -> Result<(), Refusal> {
        let Some(rate) = rate else { return Ok(()) };
        if self.is_allowed(ip) {
            return Ok(());
        }
        let s = self.source(ip, now);
        let bucket = match limit {
            Limit::Requests => &mut s.requests,
            Limit::Connections => &mut s.connections,
            Limit::TlsHandshakes => &mut s.tls_failures,
        };
        match bucket.take(&rate, now) {
            Ok(()) => {
                s.refusing &= !limit.bit();
                Ok(())
            }
            Err(retry_in) => {
                let first = s.refusing & limit.bit() == 0;
                s.refusing |= limit.bit();
                Err(self.refusal(limit, retry_in, first, now))
            }
        }
    }

    fn refusal(&mut self, limit: Limit, retry_in: Duration, first: bool, now: Instant) -> Refusal {
        let log = first && self.log.take(&LOG_RATE, now).is_ok();
        Refusal {
            limit,
            retry_in,
            log,
        }
    }

    /// One request from `ip`.
    pub fn check_request(&mut self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        self.charge(ip, Limit::Requests, self.cfg.requests, now)
    }

    /// A new inbound connection or association from `ip` (`tls`: a TLS connection, refused
    /// while the source is over its handshake budget).
    pub fn check_connection(&mut self, ip: IpAddr, tls: bool, now: Instant) -> Result<(), Refusal> {
        if tls && self.cfg.tls_failures.is_some() && !self.is_allowed(ip) {
            let key = self.key(ip);
            let until = self.sources.peek(&key).and_then(|s| s.tls_banned_until);
            if let Some(until) = until.filter(|u| *u > now) {
                let s = self.source(ip, now);
                let first = s.refusing & Limit::TlsHandshakes.bit() == 0;
                s.refusing |= Limit::TlsHandshakes.bit();
                return Err(self.refusal(Limit::TlsHandshakes, until - now, first, now));
            }
        }
        self.charge(ip, Limit::Connections, self.cfg.connections, now)
    }

    /// An inbound TLS handshake from `ip` failed (or the peer gave up on it). Returns the
    /// refusal when this failure went over the budget: the source is refused TLS from now
    /// for [`FloodConfig::tls_ban`].
    pub fn handshake_failed(&mut self, ip: IpAddr, now: Instant) -> Option<Refusal> {
        let ban = self.cfg.tls_ban;
        match self.charge(ip, Limit::TlsHandshakes, self.cfg.tls_failures, now) {
            Ok(()) => None,
            Err(mut r) => {
                let s = self.source(ip, now);
                s.tls_banned_until = Some(now + ban);
                r.retry_in = ban;
                Some(r)
            }
        }
    }

    /// The one call for a received message: responses are always admitted; a request over
    /// its source's rate is answered 503 or dropped as configured, an ACK is dropped.
    pub fn request_verdict(
        &mut self,
        source: IpAddr,
        msg: &Message,
        now: Instant,
    ) -> RequestVerdict {
        if msg.is_response() {
            return RequestVerdict::Admit;
        }
        match self.check_request(source, now) {
            Ok(()) => RequestVerdict::Admit,
            Err(r) => {
                let ack = msg.method() == Some("ACK");
                if ack || self.cfg.action == FloodAction::Drop {
                    RequestVerdict::Drop(r)
                } else {
                    RequestVerdict::Reply(service_unavailable(msg, self.cfg.retry_after), r)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cfg() -> FloodConfig {
        FloodConfig {
            requests: Some(Rate::per_second(10, 5)),
            connections: Some(Rate::per_second(2, 2)),
            tls_failures: Some(Rate {
                count: 3,
                per: Duration::from_secs(60),
                burst: 3,
            }),
            tls_ban: Duration::from_secs(30),
            ..FloodConfig::default()
        }
    }

    fn req(method: &str) -> Message {
        let s = format!(
            "{method} sip:h SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(Bytes::from(s)).unwrap()
    }

    #[test]
    fn burst_refill_and_independent_sources() {
        let t0 = Instant::now();
        let mut l = FloodLimiter::new(cfg(), t0);
        let a = ip("192.0.2.1");
        let b = ip("192.0.2.2");
        for _ in 0..5 {
            assert!(l.check_request(a, t0).is_ok());
        }
        let r = l.check_request(a, t0).unwrap_err();
        assert_eq!(r.limit, Limit::Requests);
        assert!(r.log, "the first refusal is logged");
        assert!(
            !l.check_request(a, t0).unwrap_err().log,
            "later ones are not"
        );
        // Another source is not affected.
        assert!(l.check_request(b, t0).is_ok());
        // 100 ms refill one request.
        let t1 = t0 + Duration::from_millis(100);
        assert!(l.check_request(a, t1).is_ok());
        assert!(l.check_request(a, t1).is_err());
        // After conforming again, the next episode is logged again.
        let t2 = t1 + Duration::from_secs(1);
        assert!(l.check_request(a, t2).is_ok());
        for _ in 0..4 {
            assert!(l.check_request(a, t2).is_ok());
        }
        assert!(l.check_request(a, t2).unwrap_err().log);
        // Connections have their own bucket.
        assert!(l.check_connection(a, false, t2).is_ok());
        assert!(l.check_connection(a, false, t2).is_ok());
        assert_eq!(
            l.check_connection(a, false, t2).unwrap_err().limit,
            Limit::Connections
        );
    }

    #[test]
    fn verdicts() {
        let t0 = Instant::now();
        let mut l = FloodLimiter::new(cfg(), t0);
        let a = ip("192.0.2.1");
        for _ in 0..5 {
            assert_eq!(
                l.request_verdict(a, &req("OPTIONS"), t0),
                RequestVerdict::Admit
            );
        }
        let RequestVerdict::Reply(r, _) = l.request_verdict(a, &req("OPTIONS"), t0) else {
            panic!("no 503")
        };
        let resp = Message::parse(r).unwrap();
        assert_eq!(resp.status_code(), Some(503));
        assert!(matches!(
            l.request_verdict(a, &req("ACK"), t0),
            RequestVerdict::Drop(_)
        ));
        let ok = Message::parse(Bytes::from_static(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n\
To: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        ))
        .unwrap();
        assert_eq!(l.request_verdict(a, &ok, t0), RequestVerdict::Admit);
        let mut d = FloodLimiter::new(
            FloodConfig {
                action: FloodAction::Drop,
                ..cfg()
            },
            t0,
        );
        for _ in 0..5 {
            d.check_request(a, t0).unwrap();
        }
        assert!(matches!(
            d.request_verdict(a, &req("INVITE"), t0),
            RequestVerdict::Drop(_)
        ));
    }

    #[test]
    fn allow_list_is_never_limited_nor_tracked() {
        let t0 = Instant::now();
        let mut l = FloodLimiter::new(
            FloodConfig {
                allow: vec![
                    "10.0.0.0/8".parse().unwrap(),
                    "2001:db8::/32".parse().unwrap(),
                ],
                ..cfg()
            },
            t0,
        );
        for _ in 0..1000 {
            assert!(l.check_request(ip("10.1.2.3"), t0).is_ok());
            assert!(l.check_connection(ip("::ffff:10.1.2.3"), true, t0).is_ok());
            assert!(l.handshake_failed(ip("2001:db8::1"), t0).is_none());
        }
        assert_eq!(l.tracked(), 0);
        assert!(l.check_connection(ip("2001:db8::1"), true, t0).is_ok());
    }

    #[test]
    fn ipv6_grouped_by_prefix_ipv4_mapped_as_ipv4() {
        let t0 = Instant::now();
        let mut l = FloodLimiter::new(cfg(), t0);
        // Five requests from five addresses of one /64 spend that /64's burst.
        for i in 1..=5 {
            let a = ip(&format!("2001:db8:1:2::{i}"));
            assert!(l.check_request(a, t0).is_ok());
        }
        assert!(l.check_request(ip("2001:db8:1:2:ffff::9"), t0).is_err());
        assert!(l.check_request(ip("2001:db8:1:3::1"), t0).is_ok());
        // A mapped address is the same source as its IPv4 address.
        for _ in 0..5 {
            assert!(l.check_request(ip("192.0.2.1"), t0).is_ok());
        }
        assert!(l.check_request(ip("::ffff:192.0.2.1"), t0).is_err());
        assert_eq!(l.tracked(), 3);
        // Per-address grouping when asked.
        let mut l = FloodLimiter::new(
            FloodConfig {
                ipv6_prefix: 128,
                ..cfg()
            },
            t0,
        );
        for i in 1..=50 {
            assert!(l.check_request(ip(&format!("2001:db8::{i}")), t0).is_ok());
        }
    }

    #[test]
    fn bounded_memory_under_spraying() {
        let t0 = Instant::now();
        let mut l = FloodLimiter::new(
            FloodConfig {
                max_sources: 64,
                ..cfg()
            },
            t0,
        );
        let flooder = ip("198.51.100.1");
        for _ in 0..5 {
            l.check_request(flooder, t0).unwrap();
        }
        for i in 0..10_000u32 {
            let sprayed = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let _ = l.check_request(sprayed, t0);
            // The flooder keeps sending: it is never the stalest, so it stays limited.
            assert!(l.check_request(flooder, t0).is_err());
        }
        assert_eq!(l.tracked(), 64);
        assert!(l.evicted() > 9_000);
    }

    #[test]
    fn tls_handshake_budget_bans_for_a_while() {
        let t0 = Instant::now();
        let mut l = FloodLimiter::new(
            FloodConfig {
                connections: None,
                ..cfg()
            },
            t0,
        );
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert!(l.check_connection(a, true, t0).is_ok());
            assert!(l.handshake_failed(a, t0).is_none());
        }
        let r = l.handshake_failed(a, t0).unwrap();
        assert_eq!(r.limit, Limit::TlsHandshakes);
        assert_eq!(r.retry_in, Duration::from_secs(30));
        let refused = l.check_connection(a, true, t0 + Duration::from_secs(1));
        assert_eq!(refused.unwrap_err().limit, Limit::TlsHandshakes);
        // Plain TCP from the same source is not concerned.
        assert!(l.check_connection(a, false, t0).is_ok());
        // The ban ends.
        assert!(l
            .check_connection(a, true, t0 + Duration::from_secs(30))
            .is_ok());
    }

    #[test]
    fn log_lines_are_budgeted_across_sources() {
        let t0 = Instant::now();
        let mut l = FloodLimiter::new(
            FloodConfig {
                requests: Some(Rate::per_second(1, 1)),
                ..cfg()
            },
            t0,
        );
        let mut logged = 0;
        for i in 0..1000u32 {
            let a = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            l.check_request(a, t0).unwrap();
            if l.check_request(a, t0).unwrap_err().log {
                logged += 1;
            }
        }
        assert_eq!(logged, LOG_RATE.burst);
    }
}
