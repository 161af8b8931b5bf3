//! The transport's side of the flood limits ([`crate::flood`]): the limiter in force
//! (swapped whole by [`super::Transport::set_flood`], so a reload starts its counters
//! over), asked by the drivers at accept and before delivering, with the refusals counted
//! (`sipwire_transport_drops_total{reason}`) and logged at debug within the limiter's log
//! budget.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwapOption;

use super::metrics;
use crate::flood::{FloodConfig, FloodLimiter, Limit, Refusal, RequestVerdict};
use crate::wire::Message;
use crate::TransportKind;

/// The limiter in force, if any.
#[derive(Default)]
pub(crate) struct FloodGate {
    limiter: ArcSwapOption<Mutex<FloodLimiter>>,
}

fn log(kind: TransportKind, peer: SocketAddr, r: &Refusal) {
    if r.log {
        tracing::debug!(transport = %kind, %peer, reason = r.limit.reason(),
            retry_in_ms = r.retry_in.as_millis() as u64,
            "refused by flood limits (further refusals of this source not logged)");
    }
}

impl FloodGate {
    /// Replaces the limiter: every source starts afresh.
    pub(crate) fn set(&self, cfg: Option<FloodConfig>) {
        self.limiter
            .store(cfg.map(|c| Arc::new(Mutex::new(FloodLimiter::new(c, Instant::now())))));
    }

    fn with<T>(&self, f: impl FnOnce(&mut FloodLimiter) -> T) -> Option<T> {
        let guard = self.limiter.load();
        let m = guard.as_ref()?;
        let mut l = m.lock().unwrap_or_else(|p| p.into_inner());
        Some(f(&mut l))
    }

    /// A new inbound connection or association from `peer`: `Err` with the limit that
    /// refuses it (logged here, counted by the caller under `limit.reason()`).
    pub(crate) fn connection(
        &self,
        kind: TransportKind,
        peer: SocketAddr,
        tls: bool,
    ) -> Result<(), Limit> {
        match self.with(|l| l.check_connection(peer.ip(), tls, Instant::now())) {
            Some(Err(r)) => {
                log(kind, peer, &r);
                Err(r.limit)
            }
            _ => Ok(()),
        }
    }

    /// An inbound TLS handshake from `peer` failed.
    pub(crate) fn handshake_failed(&self, peer: SocketAddr) {
        if let Some(Some(r)) = self.with(|l| l.handshake_failed(peer.ip(), Instant::now())) {
            log(TransportKind::Tls, peer, &r);
        }
    }

    /// A received message: deliver it, answer it (503) or drop it. Refusals are counted.
    pub(crate) fn message(
        &self,
        kind: TransportKind,
        peer: SocketAddr,
        msg: &Message,
    ) -> RequestVerdict {
        let v = self
            .with(|l| l.request_verdict(peer.ip(), msg, Instant::now()))
            .unwrap_or(RequestVerdict::Admit);
        match &v {
            RequestVerdict::Admit => {}
            RequestVerdict::Reply(_, r) => {
                log(kind, peer, r);
                metrics::drop(kind, r.limit.reason());
                metrics::flood_reply(kind);
            }
            RequestVerdict::Drop(r) => {
                log(kind, peer, r);
                metrics::drop(kind, r.limit.reason());
            }
        }
        v
    }

    /// Sources the limiter remembers (0 without one).
    pub(crate) fn tracked(&self) -> usize {
        self.with(|l| l.tracked()).unwrap_or(0)
    }
}
