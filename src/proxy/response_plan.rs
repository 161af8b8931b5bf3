//! Where a response goes upstream, in the order to try (RFC 3261 §18.2.2, RFC 3581 §4,
//! RFC 3263 §5), as a pure plan the driver walks: it asks [`ResponsePlan::next_step`] for
//! the first destination, sends, and asks again after each failure; a
//! [`ResponseStep::Resolve`] is answered with [`ResponsePlan::resolved`]. No I/O here, so the
//! order is tested without sockets or DNS.
//!
//! - Reliable transports: the connection the request came on; then a new connection to
//!   `received` (else the source) at the sent-by port; then RFC 3263 §5 on the sent-by.
//! - UDP: `maddr` (at the sent-by port, else 5060) when the Via has one; else `received` at
//!   `rport` (RFC 3581: the request's source, from the socket it came in on); else `received`
//!   at the sent-by port; then RFC 3263 §5 on the sent-by.
//! - RFC 3263 §5: a numeric sent-by is used as it is (sent-by port, else the transport's
//!   default); a name with a port gets its A/AAAA records; a name without one its SRV
//!   records (`_sip`/`_sips` for the Via transport). Each result is the next step.
//!
//! An address already tried is not tried again (the numeric sent-by is often `received`).

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::resolve::ViaTarget;
use crate::wire::{Host, Message, Rport};
use crate::{Target, TransportKind};

use super::core::Inbound;

/// One destination of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseStep<F> {
    /// On the flow the request came in on: its connection, or for UDP its socket, to the
    /// request's source (`received`:`rport`).
    Flow(F),
    /// A datagram from the socket of this UDP flow to this address (the sent-by port, a
    /// `maddr`, or an address RFC 3263 §5 gave): responses leave by the socket the request
    /// reached.
    DatagramVia(F, SocketAddr),
    /// The open connection or association of this transport whose peer is this address, if
    /// any (never a new one): where a request forwarded statelessly came from (`received`:
    /// `rport`). Found by address whatever opened it: an inbound TLS connection is never
    /// reused for requests, but a response goes back on it (RFC 3261 §18.2.2).
    Connection(TransportKind, SocketAddr),
    /// A reused or new flow to this target.
    Target(Target),
    /// Locate the client by RFC 3263 §5 from this Via (`received`/`rport` left out: tried
    /// already), then call [`ResponsePlan::resolved`] with the targets in order (an empty
    /// list when it failed).
    Resolve(ViaTarget),
}

/// The destinations of one response still to try.
#[derive(Debug, Clone)]
pub struct ResponsePlan<F> {
    steps: VecDeque<ResponseStep<F>>,
    /// Sends to an address (not on a flow) are tried once each.
    tried: Vec<(TransportKind, SocketAddr)>,
    /// The UDP flow the request came on and its source: UDP addresses are reached through
    /// its socket (the source itself on the flow).
    udp: Option<(F, SocketAddr)>,
    /// The sent-by name: the identity a TLS connection to the client is checked against.
    server_name: Option<String>,
}

impl<F: Clone> ResponsePlan<F> {
    /// The plan for `message` (a response, our Via removed): to the request's `inbound` flow
    /// first when there is one (`None`: a response to a request forwarded statelessly, or a
    /// 2xx whose server transaction is gone).
    pub fn new(message: &Message, inbound: Option<&Inbound<F>>) -> ResponsePlan<F> {
        let mut plan = ResponsePlan {
            steps: VecDeque::new(),
            tried: Vec::new(),
            udp: None,
            server_name: None,
        };
        let via = message.top_via().ok();
        let via_kind = via.as_ref().and_then(|v| v.transport.kind());
        let Some(kind) = inbound.map(|i| i.transport).or(via_kind) else {
            return plan;
        };
        match inbound {
            Some(i) if kind == TransportKind::Udp => plan.udp = Some((i.flow.clone(), i.source)),
            Some(i) => {
                plan.steps.push_back(ResponseStep::Flow(i.flow.clone()));
                plan.tried.push((kind, i.source));
            }
            None => {}
        }
        let Some(v) = via else {
            if let Some(i) = inbound.filter(|_| kind == TransportKind::Udp) {
                plan.steps.push_back(ResponseStep::Flow(i.flow.clone()));
            }
            return plan;
        };
        if let Host::Name(n) = &v.host {
            plan.server_name = Some(n.to_ascii_lowercase());
        }
        let sent_by_port = v.port.unwrap_or(kind.default_port());
        let received = v.received.or(inbound.map(|i| i.source.ip()));
        if kind.is_reliable() {
            // A stateless response on a stream: the connection the request came on is the
            // one at received:rport, which the transport reuses.
            if let (None, Some(Rport::Port(p)), Some(ip)) = (inbound, v.rport, v.received) {
                plan.steps
                    .push_back(ResponseStep::Connection(kind, SocketAddr::new(ip, p)));
            }
        } else {
            // §18.2.2 bullet 2: maddr wins over everything (RFC 3581 §4 too).
            if let Some(maddr) = &v.maddr {
                let port = v.port.unwrap_or(5060);
                match maddr.ip() {
                    Some(ip) => plan.push(kind, SocketAddr::new(ip, port)),
                    None => plan.resolve(kind, &maddr.to_string(), Some(port)),
                }
                return plan;
            }
            // RFC 3581 §4: received at rport (the request's source).
            if let (Some(Rport::Port(p)), Some(ip)) = (v.rport, received.or(v.host.ip())) {
                plan.push(kind, SocketAddr::new(ip, p));
            }
        }
        // §18.2.2: received (else the source) at the sent-by port.
        if let Some(ip) = received {
            plan.push(kind, SocketAddr::new(ip, sent_by_port));
        }
        // RFC 3263 §5 on the sent-by, with the Via's transport.
        let kind5 = via_kind.unwrap_or(kind);
        match v.host.ip() {
            Some(ip) => plan.push(
                kind5,
                SocketAddr::new(ip, v.port.unwrap_or(kind5.default_port())),
            ),
            None => plan.resolve(kind5, v.host_raw, v.port),
        }
        plan
    }

    fn push(&mut self, kind: TransportKind, addr: SocketAddr) {
        self.steps
            .push_back(ResponseStep::Target(Target::new(kind, addr)));
    }

    fn resolve(&mut self, kind: TransportKind, host: &str, port: Option<u16>) {
        match ViaTarget::new(kind, host, port, None, None) {
            Ok(v) => self.steps.push_back(ResponseStep::Resolve(v)),
            Err(e) => tracing::debug!(%e, "sent-by not resolvable"),
        }
    }

    /// The next destination to try: call it first, then after each failure. `None`: every
    /// destination failed (the response is lost).
    pub fn next_step(&mut self) -> Option<ResponseStep<F>> {
        loop {
            let step = self.steps.pop_front()?;
            let ResponseStep::Target(mut t) = step else {
                return Some(step);
            };
            if self.tried.contains(&(t.transport, t.addr)) {
                continue;
            }
            self.tried.push((t.transport, t.addr));
            if let (TransportKind::Udp, Some((flow, source))) = (t.transport, &self.udp) {
                return Some(if t.addr == *source {
                    ResponseStep::Flow(flow.clone())
                } else {
                    ResponseStep::DatagramVia(flow.clone(), t.addr)
                });
            }
            if let (true, None, Some(n)) =
                (t.transport.is_secure(), &t.server_name, &self.server_name)
            {
                t = t.with_server_name(n);
            }
            return Some(ResponseStep::Target(t));
        }
    }

    /// The RFC 3263 §5 answer to the last [`ResponseStep::Resolve`]: the targets, in order,
    /// are tried before anything left.
    pub fn resolved(&mut self, targets: Vec<Target>) {
        for t in targets.into_iter().rev() {
            self.steps.push_front(ResponseStep::Target(t));
        }
    }

    /// True when nothing is left to try.
    pub fn is_exhausted(&self) -> bool {
        self.steps.is_empty()
    }
}
