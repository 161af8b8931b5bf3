//! Connection admission (a global limit and a per-peer-IP limit) and the byte bound of
//! write queues. Pure bookkeeping: no sockets, no clock.

use std::net::IpAddr;

use crate::idhash::SeededMap;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// The global connection limit is reached.
    #[error("connection limit of {0} reached")]
    Total(usize),
    /// The peer IP already has its share of connections.
    #[error("per-IP connection limit of {0} reached")]
    PerIp(usize),
}

impl AdmitError {
    /// Short label for metrics (`drops_total{reason}`).
    pub fn reason(self) -> &'static str {
        match self {
            AdmitError::Total(_) => "limit_total",
            AdmitError::PerIp(_) => "limit_per_ip",
        }
    }
}

/// Counts connections in total and per peer IP. IPv4-mapped IPv6 addresses count as
/// their IPv4 address, so a dual-stack socket cannot double a peer's share.
#[derive(Debug)]
pub(super) struct ConnectionLimits {
    max_total: usize,
    max_per_ip: usize,
    total: usize,
    per_ip: SeededMap<IpAddr, usize>,
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl ConnectionLimits {
    /// Limits of `max_total` connections, `max_per_ip` of them per peer IP.
    pub(super) fn new(max_total: usize, max_per_ip: usize) -> Self {
        ConnectionLimits {
            max_total,
            max_per_ip,
            total: 0,
            per_ip: SeededMap::default(),
        }
    }

    /// Admits one more connection of `ip`, or says which limit refuses it.
    pub(super) fn admit(&mut self, ip: IpAddr) -> Result<(), AdmitError> {
        if self.total >= self.max_total {
            return Err(AdmitError::Total(self.max_total));
        }
        let n = self.per_ip.entry(canonical(ip)).or_insert(0);
        if *n >= self.max_per_ip {
            return Err(AdmitError::PerIp(self.max_per_ip));
        }
        *n += 1;
        self.total += 1;
        Ok(())
    }

    /// Replaces the limits. Nothing admitted is released: a count above a new limit only
    /// refuses new connections until enough close. Says how far over the new limits the
    /// current counts are.
    pub(super) fn set_max(&mut self, max_total: usize, max_per_ip: usize) -> Overage {
        self.max_total = max_total;
        self.max_per_ip = max_per_ip;
        Overage {
            total: self.total.saturating_sub(max_total),
            ips: self.per_ip.values().filter(|&&n| n > max_per_ip).count(),
        }
    }

    /// Forgets one admitted connection of `ip`.
    pub(super) fn release(&mut self, ip: IpAddr) {
        let ip = canonical(ip);
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
            self.total = self.total.saturating_sub(1);
        }
    }

    /// Connections currently admitted.
    pub(super) fn total(&self) -> usize {
        self.total
    }

    /// Connections currently admitted for `ip`.
    #[cfg(test)]
    pub(super) fn of_ip(&self, ip: IpAddr) -> usize {
        self.per_ip.get(&canonical(ip)).copied().unwrap_or(0)
    }

    /// Distinct peer IPs tracked (the table shrinks back to zero when all close).
    pub(super) fn tracked_ips(&self) -> usize {
        self.per_ip.len()
    }
}

/// How far the connections admitted are over lowered limits (they stay open).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Overage {
    /// Connections over the global limit.
    pub(super) total: usize,
    /// Peer IPs with more connections than the per-IP limit.
    pub(super) ips: usize,
}

/// The write queue of one flow went over its byte bound: the flow is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("write queue over its bound: {queued} + {adding} bytes > {bound}")]
pub struct QueueOverflow {
    /// Bytes already queued.
    pub queued: usize,
    /// Bytes being added.
    pub adding: usize,
    /// The bound.
    pub bound: usize,
}

/// Byte accounting of a write queue: a slow peer cannot make us hold more than `bound`
/// bytes for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteBudget {
    bound: usize,
}

impl WriteBudget {
    /// A budget of `bound` bytes.
    pub(crate) fn new(bound: usize) -> Self {
        WriteBudget { bound }
    }

    /// Checks whether `adding` more bytes fit when `queued` are waiting.
    pub(crate) fn check(self, queued: usize, adding: usize) -> Result<(), QueueOverflow> {
        match queued.checked_add(adding) {
            Some(t) if t <= self.bound => Ok(()),
            _ => Err(QueueOverflow {
                queued,
                adding,
                bound: self.bound,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_total() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a_mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let mut l = ConnectionLimits::new(3, 2);
        assert_eq!(l.admit(a), Ok(()));
        assert_eq!(l.admit(a_mapped), Ok(()));
        assert_eq!(l.admit(a), Err(AdmitError::PerIp(2)));
        assert_eq!(l.admit(b), Ok(()));
        assert_eq!(l.admit(b), Err(AdmitError::Total(3)));
        l.release(a);
        assert_eq!(l.of_ip(a), 1);
        assert_eq!(l.admit(b), Ok(()));
        for ip in [a, b, b] {
            l.release(ip);
        }
        assert_eq!(l.total(), 0);
        assert_eq!(l.tracked_ips(), 0);
        // Releasing an unknown IP changes nothing.
        l.release(a);
        assert_eq!(l.total(), 0);
    }

    #[test]
    fn lowered_limits_refuse_new_connections_and_keep_the_admitted() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let mut l = ConnectionLimits::new(10, 10);
        for ip in [a, a, a, b] {
            l.admit(ip).unwrap();
        }
        let over = l.set_max(3, 2);
        assert_eq!(over, Overage { total: 1, ips: 1 });
        assert_eq!(l.total(), 4, "nothing released");
        assert_eq!(l.admit(b), Err(AdmitError::Total(3)));
        l.release(a);
        l.release(a);
        assert_eq!(l.admit(a), Ok(()), "2 of a, 3 in total");
        assert_eq!(l.admit(a), Err(AdmitError::Total(3)));
        // Raised again: admitted at once.
        assert_eq!(l.set_max(10, 2), Overage::default());
        assert_eq!(l.admit(a), Err(AdmitError::PerIp(2)));
        assert_eq!(l.admit(b), Ok(()));
    }

    #[test]
    fn write_budget() {
        let w = WriteBudget::new(100);
        assert!(w.check(0, 100).is_ok());
        assert!(w.check(1, 100).is_err());
        assert!(w.check(usize::MAX, 1).is_err());
    }
}
