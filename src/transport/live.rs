//! The limits and timers a running transport can change ([`super::Transport::set_limits`]).
//!
//! They live in one immutable [`LiveLimits`] value behind an atomic pointer swap: readers
//! (every accept, connect, send and flow wake-up) take the current value without a lock, a
//! reload publishes a whole new one, so that no reader ever sees half of an update. Each swap
//! bumps a generation number; a flow driver that sees a new generation hands the new values
//! to its flow core ([`super::flow_core::FlowCore::set_limits`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::config::TransportConfig;
use super::limits::WriteBudget;
use crate::wire::Limits;

/// The part of [`TransportConfig`] that [`super::Transport::set_limits`] replaces at run
/// time. Which flows see a change, and when:
///
/// - `message`: framer and parser limits, for each flow from its next received bytes (UDP:
///   the next datagram); SCTP associations opened afterwards.
/// - `max_connections`, `max_connections_per_ip`: new accepts and connects. Lowering them
///   below the current count closes nothing; new connections are refused until enough close.
/// - `max_udp_flows`: new UDP peers (each evicts the least recently used one while over).
/// - `write_queue_bytes`: the next message queued on any flow.
/// - `idle_timeout`, `header_timeout`, `keepalive_interval`: open stream flows at once (their
///   deadlines are recomputed from their last activity), the UDP idle sweep.
/// - `connect_timeout`, `handshake_timeout`: connects and handshakes started afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveLimits {
    /// Size limits for received messages (framer and parser).
    pub message: Limits,
    /// Stream connections in total.
    pub max_connections: usize,
    /// Stream connections per peer IP.
    pub max_connections_per_ip: usize,
    /// UDP flows remembered.
    pub max_udp_flows: usize,
    /// Bytes queued for one flow before it is closed as stuck.
    pub write_queue_bytes: usize,
    /// Flows without traffic for this long are closed (UDP flows forgotten).
    pub idle_timeout: Duration,
    /// A header block must be complete within this time of its first byte.
    pub header_timeout: Duration,
    /// RFC 5626 CRLFCRLF pings after this much inbound silence (`None`: only answer).
    pub keepalive_interval: Option<Duration>,
    /// TCP connect timeout for outbound connections.
    pub connect_timeout: Duration,
    /// TLS handshake timeout (both directions).
    pub handshake_timeout: Duration,
}

impl LiveLimits {
    /// The run-time-changeable values of `cfg`.
    pub fn of(cfg: &TransportConfig) -> LiveLimits {
        LiveLimits {
            message: cfg.limits,
            max_connections: cfg.max_connections,
            max_connections_per_ip: cfg.max_connections_per_ip,
            max_udp_flows: cfg.max_udp_flows,
            write_queue_bytes: cfg.write_queue_bytes,
            idle_timeout: cfg.idle_timeout,
            header_timeout: cfg.header_timeout,
            keepalive_interval: cfg.keepalive_interval,
            connect_timeout: cfg.connect_timeout,
            handshake_timeout: cfg.handshake_timeout,
        }
    }

    /// The byte bound of write queues.
    pub(crate) fn budget(&self) -> WriteBudget {
        WriteBudget::new(self.write_queue_bytes)
    }

    /// The names of the fields that differ from `old` (for the log of a change).
    pub fn changed_from(&self, old: &LiveLimits) -> Vec<&'static str> {
        let LiveLimits {
            message,
            max_connections,
            max_connections_per_ip,
            max_udp_flows,
            write_queue_bytes,
            idle_timeout,
            header_timeout,
            keepalive_interval,
            connect_timeout,
            handshake_timeout,
        } = *self;
        let mut v = Vec::new();
        let mut diff = |changed: bool, name| {
            if changed {
                v.push(name);
            }
        };
        diff(message != old.message, "message");
        diff(max_connections != old.max_connections, "max_connections");
        diff(
            max_connections_per_ip != old.max_connections_per_ip,
            "max_connections_per_ip",
        );
        diff(max_udp_flows != old.max_udp_flows, "max_udp_flows");
        diff(
            write_queue_bytes != old.write_queue_bytes,
            "write_queue_bytes",
        );
        diff(idle_timeout != old.idle_timeout, "idle_timeout");
        diff(header_timeout != old.header_timeout, "header_timeout");
        diff(
            keepalive_interval != old.keepalive_interval,
            "keepalive_interval",
        );
        diff(connect_timeout != old.connect_timeout, "connect_timeout");
        diff(
            handshake_timeout != old.handshake_timeout,
            "handshake_timeout",
        );
        v
    }
}

/// The limits in force and their generation.
#[derive(Debug)]
pub(crate) struct LiveCell {
    current: ArcSwap<LiveLimits>,
    generation: AtomicU64,
}

impl LiveCell {
    /// A cell holding `limits` as generation 0.
    pub(crate) fn new(limits: LiveLimits) -> Self {
        LiveCell {
            current: ArcSwap::from_pointee(limits),
            generation: AtomicU64::new(0),
        }
    }

    /// The limits in force (a copy: they are a few words).
    pub(crate) fn get(&self) -> LiveLimits {
        **self.current.load()
    }

    /// How many times the limits were replaced.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Publishes `limits`; returns the ones replaced. The generation moves after the
    /// values, so that whoever sees the new generation reads the new values.
    pub(crate) fn replace(&self, limits: LiveLimits) -> LiveLimits {
        let old = self.current.swap(Arc::new(limits));
        self.generation.fetch_add(1, Ordering::AcqRel);
        *old
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_swaps_whole_values_and_moves_the_generation() {
        let first = LiveLimits::of(&TransportConfig::default());
        let cell = LiveCell::new(first);
        assert_eq!(cell.get(), first);
        assert_eq!(cell.generation(), 0);
        let second = LiveLimits {
            max_connections_per_ip: 1,
            idle_timeout: Duration::from_secs(40),
            ..first
        };
        assert_eq!(cell.replace(second), first);
        assert_eq!(cell.get(), second);
        assert_eq!(cell.generation(), 1);
        assert_eq!(
            second.changed_from(&first),
            ["max_connections_per_ip", "idle_timeout"]
        );
        assert!(first.changed_from(&first).is_empty());
    }

    #[test]
    fn readers_never_see_half_an_update() {
        // Two values whose fields all differ: a reader must see one or the other whole.
        let a = LiveLimits::of(&TransportConfig::default());
        let b = LiveLimits {
            max_connections: 1,
            max_connections_per_ip: 1,
            write_queue_bytes: 1,
            ..a
        };
        let cell = Arc::new(LiveCell::new(a));
        let writer = {
            let cell = Arc::clone(&cell);
            std::thread::spawn(move || {
                for i in 0..2_000 {
                    cell.replace(if i % 2 == 0 { b } else { a });
                }
            })
        };
        for _ in 0..2_000 {
            let seen = cell.get();
            assert!(seen == a || seen == b, "torn read: {seen:?}");
        }
        writer.join().unwrap();
        assert_eq!(cell.generation(), 2_000);
    }
}
