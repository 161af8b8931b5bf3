//! Our Via branches (RFC 3261 §16.6 step 8, §16.11): `z9hG4bK` + `sw` + a mode letter + a
//! loop-detection hash of the fields routing depends on + a unique part.
//!
//! - Stateful (`f`): the unique part comes from a counter mixed with the proxy's secret, so
//!   every branch (each failover attempt too) is new.
//! - Stateless (`l`): the unique part is a hash of the received request's transaction
//!   identity (top Via branch and sent-by, Call-ID, CSeq number, From tag, Request-URI),
//!   so a retransmission gets the same branch, and so do the CANCEL and the ACK for a
//!   non-2xx of an INVITE (same top Via), as §16.11 asks.
//!
//! The loop hash (§16.3 step 4) covers the Request-URI, From tag, Call-ID, CSeq number,
//! Route, Proxy-Require and Proxy-Authorization of the request as received. RFC 3261 also
//! lists the To tag; it is left out because a stateless ACK for a non-2xx (which has the
//! To tag the INVITE lacked) must carry the INVITE's branch.

use crate::wire::{HeaderKind, Message, BRANCH_MAGIC_COOKIE};

const OURS: &str = "sw";

/// Keyed FNV-1a over length-separated parts: cheap, deterministic, and the secret keeps
/// others from predicting our branches.
#[derive(Clone, Copy)]
pub(crate) struct Hasher(u64);

impl Hasher {
    pub(crate) fn new(secret: u64) -> Hasher {
        let mut h = Hasher(0xcbf2_9ce4_8422_2325);
        h.add(&secret.to_le_bytes());
        h
    }

    pub(crate) fn add(&mut self, part: &[u8]) -> &mut Self {
        for &b in part {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        self
    }

    pub(crate) fn finish(&self) -> u64 {
        // A final avalanche so that close inputs give far-apart values.
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x
    }
}

/// The loop-detection hash of a received request (§16.3 step 4, §16.6 step 8).
pub(crate) fn loop_hash(secret: u64, req: &Message) -> u64 {
    let mut h = Hasher::new(secret);
    h.add(req.request_uri().unwrap_or("").as_bytes())
        .add(req.from_tag().unwrap_or("").as_bytes())
        .add(req.call_id().as_bytes())
        .add(&req.cseq().seq.to_le_bytes());
    for kind in [HeaderKind::Route, HeaderKind::ProxyRequire] {
        for v in req.values(kind).flatten() {
            h.add(v);
        }
    }
    for v in req.header_lines("Proxy-Authorization") {
        h.add(v);
    }
    h.finish()
}

/// A stateful branch: new for every call with a new `seq`.
pub(crate) fn stateful(secret: u64, loop_hash: u64, seq: u64) -> String {
    let unique = Hasher::new(secret).add(&seq.to_le_bytes()).finish();
    branch_text('f', loop_hash, unique)
}

/// `z9hG4bK` + our mark + kind + two 16-digit hex numbers, in one allocation (`format!`
/// grew its string several times per branch).
fn branch_text(kind: char, loop_hash: u64, unique: u64) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(BRANCH_MAGIC_COOKIE.len() + OURS.len() + 1 + 32);
    let _ = write!(
        s,
        "{BRANCH_MAGIC_COOKIE}{OURS}{kind}{loop_hash:016x}{unique:016x}"
    );
    s
}

/// The stateless branch of a received request (§16.11): the same for its retransmissions,
/// its CANCEL and the ACK for a non-2xx.
pub(crate) fn stateless(secret: u64, loop_hash: u64, req: &Message) -> String {
    let mut h = Hasher::new(secret);
    if let Ok(v) = req.top_via() {
        h.add(v.branch.unwrap_or("").as_bytes())
            .add(v.host_raw.as_bytes())
            .add(&v.port_or_default().to_le_bytes());
    }
    h.add(req.call_id().as_bytes())
        .add(&req.cseq().seq.to_le_bytes())
        .add(req.from_tag().unwrap_or("").as_bytes())
        .add(req.request_uri().unwrap_or("").as_bytes());
    let unique = h.finish();
    branch_text('l', loop_hash, unique)
}

/// How one of our branches was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Stateful,
    Stateless,
}

/// Reads a branch we wrote: its mode and loop hash. `None` for anyone else's.
pub(crate) fn parse(branch: &str) -> Option<(Mode, u64)> {
    let rest = branch
        .strip_prefix(BRANCH_MAGIC_COOKIE)?
        .strip_prefix(OURS)?;
    let mut chars = rest.chars();
    let mode = match chars.next()? {
        'f' => Mode::Stateful,
        'l' => Mode::Stateless,
        _ => return None,
    };
    let hex = rest.get(1..17)?;
    let hash = u64::from_str_radix(hex, 16).ok()?;
    (rest.len() == 33).then_some((mode, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_parse_back_and_differ_by_mode() {
        let b = stateful(7, 0xabc, 1);
        assert!(b.starts_with("z9hG4bKswf"));
        assert_eq!(parse(&b), Some((Mode::Stateful, 0xabc)));
        assert_ne!(b, stateful(7, 0xabc, 2));
        assert_ne!(b, stateful(8, 0xabc, 1));
        assert_eq!(parse("z9hG4bK1234"), None);
        assert_eq!(parse("z9hG4bKswx0000000000000abc0000000000000001"), None);
        assert_eq!(parse(&b[..b.len() - 1]), None);
    }
}
