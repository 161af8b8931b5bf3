//! The proxy core: one [`Transactions`] table and the proxy contexts (RFC 3261 §16's
//! "response context") tying each server transaction to its client branches. Fed requests,
//! responses, resolution results, transport errors and `now`; hands back [`Output`]s and
//! its next [`deadline`](Proxy::deadline). No clock, no sockets, no DNS.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use crate::idhash::SeededMap;
use crate::resolve::SipTarget;
use crate::transaction::{
    Action, Received, TimerConfig, TransactionError, TransactionId, Transactions,
};
use crate::wire::Message;
use crate::{Target, TransportKind};

use super::ack_wait::{AckVerdict, AckWait, OkKey};
use super::best_effort;
use super::branch::{self, Mode};
use super::config::{ConfigError, ProxyConfig};
use super::context::{Branch, Context, Outcome};
use super::reject::Reject;
use super::request::{self, Prepared};
use super::select::{self, select, Hop, NextHop, Selection};
use super::sips;

/// The flow a request arrived on, as the driver describes it. `F` is the driver's flow
/// handle (the transport's `Flow` in the tokio driver, a number in tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound<F> {
    /// The flow: responses go back on it first (RFC 3261 §18.2.2).
    pub flow: F,
    /// Name of the [`super::Listener`] it was accepted on.
    pub listener: String,
    /// Its transport.
    pub transport: TransportKind,
    /// The peer's address.
    pub source: SocketAddr,
}

/// Names one request the core works on (a proxy context), for [`Proxy::resolved`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

/// What the driver must do.
#[derive(Debug, Clone)]
pub enum Output<F> {
    /// Send this response upstream: on the request's inbound flow first, then where
    /// [`super::ResponsePlan::new`]`(&message, Some(&to))` says when that fails (RFC 3261
    /// §18.2.2, RFC 3581, RFC 3263 §5).
    Respond {
        /// Where the request came from.
        to: Inbound<F>,
        /// The response.
        message: Message,
    },
    /// Send this response by its top Via ([`super::ResponsePlan::new`]`(&message, None)`,
    /// §18.2.2, RFC 3263 §5): a response to a request forwarded statelessly, or a 2xx that
    /// outlived its server transaction.
    RespondByVia {
        /// The response, our Via removed.
        message: Message,
    },
    /// Locate this URI by RFC 3263 and call [`Proxy::resolved`] with the targets in order
    /// (an empty list when it failed).
    Resolve {
        /// The request waiting.
        request: RequestId,
        /// What to resolve.
        target: SipTarget,
        /// Best-effort TLS (RFC 5630 §5.3) for a `sip:` target: look for TLS targets too
        /// (`_sips` SRV when there is no NAPTR); the core puts them first.
        tls_first: bool,
    },
    /// Send this request (a first copy, a retransmission, an ACK for a non-2xx or a
    /// CANCEL) to `target` from `listener` (RFC 5923: through the reuse endpoint for the
    /// TLS family). Report a failure with [`Proxy::send_failed`].
    Send {
        /// Destination.
        target: Target,
        /// Listener to send from.
        listener: String,
        /// The request, our Via on top.
        message: Message,
        /// The client transaction (`None` for stateless forwarding).
        client: Option<TransactionId>,
    },
}

/// What the core did, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyCounters {
    /// Requests forwarded with a client transaction (every failover attempt counts).
    pub branches: u64,
    /// Failover attempts (branches after the first of a request, RFC 3263 §4.3).
    pub failovers: u64,
    /// Requests forwarded statelessly (§16.11), ACKs for 2xx included.
    pub forwarded_stateless: u64,
    /// Responses sent upstream that came from downstream.
    pub responses_forwarded: u64,
    /// Responses the core built (errors, 100 excluded, 408, 480, 487, 500).
    pub responses_generated: u64,
    /// Responses whose top Via is not ours (RFC 3261 §18.1.2): dropped.
    pub dropped_not_our_via: u64,
    /// Responses with our Via and no transaction (RFC 6026): dropped.
    pub dropped_stray: u64,
    /// Messages the transaction layer could not key (no branch, bad Via): dropped.
    pub dropped_malformed: u64,
    /// Stateless requests (ACKs, unknown CANCELs) that could not be forwarded: dropped.
    pub dropped_unroutable: u64,
    /// Targets skipped because a SIPS Request-URI may not leave over their transport.
    pub sips_refused: u64,
    /// New requests answered 503 while shutting down.
    pub refused_draining: u64,
    /// 2xx responses to INVITE the proxy sent upstream again itself (unreliable upstream,
    /// no ACK yet; RFC 3261 §13.3.1.4 done for a UAS that does not).
    pub ok_retransmitted: u64,
    /// Copies of an ACK for a 2xx already forwarded: absorbed.
    pub acks_absorbed: u64,
    /// 2xx responses whose ACK never came within 64·T1.
    pub ok_unacknowledged: u64,
}

/// Why a [`Proxy`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The timers are unusable.
    #[error(transparent)]
    Timers(#[from] TransactionError),
}

/// Which part of a context a transaction plays.
#[derive(Debug, Clone)]
enum Role<F> {
    /// The server transaction of the request.
    Server,
    /// A client branch (index into the context's branches).
    Branch(usize),
    /// The CANCEL sent downstream on a branch.
    CancelClient(usize),
    /// The server transaction of a received CANCEL, and where it came from.
    CancelServer(Inbound<F>),
}

/// One request being relayed, as an admin dump shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InFlight {
    /// Its Call-ID.
    pub call_id: String,
    /// Its method.
    pub method: String,
    /// Relayed statefully (false: a stateless route's request being answered here).
    pub stateful: bool,
    /// Client branches tried so far.
    pub branches: usize,
    /// Waiting for RFC 3263 resolution.
    pub resolving: bool,
    /// A CANCEL came for it.
    pub cancelled: bool,
    /// Its final response went upstream (kept for retransmissions and ACK).
    pub final_sent: bool,
}

/// A transaction-stateful proxy (RFC 3261 §16) with per-route stateless forwarding
/// (§16.11). See docs/proxy.md.
#[derive(Debug)]
pub struct Proxy<F> {
    cfg: ProxyConfig,
    secret: u64,
    txns: Transactions,
    next_request: u64,
    seq: u64,
    contexts: SeededMap<RequestId, Context<F>>,
    roles: SeededMap<TransactionId, (RequestId, Role<F>)>,
    out: VecDeque<Output<F>>,
    counters: ProxyCounters,
    /// Shutting down: new transactions are refused (503), those in flight go on.
    draining: bool,
    /// Contexts whose final response has not gone up yet ([`Proxy::in_flight`], read after
    /// every batch of events: kept as a count, never a scan of the contexts).
    awaiting_final: usize,
    /// 2xx responses to INVITE sent up an unreliable hop, retransmitted until their ACK
    /// (`None`: sent by Via).
    ack_wait: AckWait<Option<Inbound<F>>>,
    /// Which of our addresses a packet to an address leaves from (the host's routing
    /// table, asked by the driver); `None`: the first listener of the transport.
    egress: Option<Egress>,
}

/// The local address the host would send from toward an address (its routing table).
#[derive(Clone)]
pub struct Egress(
    std::sync::Arc<dyn Fn(std::net::IpAddr) -> Option<std::net::IpAddr> + Send + Sync>,
);

impl Egress {
    /// Asks `f`.
    pub fn new(
        f: impl Fn(std::net::IpAddr) -> Option<std::net::IpAddr> + Send + Sync + 'static,
    ) -> Egress {
        Egress(std::sync::Arc::new(f))
    }
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Egress")
    }
}

impl<F: Clone + std::fmt::Debug> Proxy<F> {
    /// A proxy with this configuration and these timers (a proxy sends 100 Trying to an
    /// INVITE at once: give `trying_delay: Some(Duration::ZERO)`). `secret` keys the
    /// branches (pass a random value; tests pass a constant).
    pub fn new(cfg: ProxyConfig, timers: TimerConfig, secret: u64) -> Result<Proxy<F>, ProxyError> {
        cfg.check()?;
        timers.check()?;
        Ok(Proxy {
            cfg,
            secret,
            txns: Transactions::new(timers),
            ack_wait: AckWait::new(timers),
            next_request: 0,
            seq: 0,
            contexts: SeededMap::default(),
            roles: SeededMap::default(),
            out: VecDeque::new(),
            counters: ProxyCounters::default(),
            draining: false,
            awaiting_final: 0,
            egress: None,
        })
    }

    /// Lets the proxy ask which local address faces a target, so that a request leaves by
    /// the listener on the target's side (an access and a core network each with their own
    /// listener) when no route names one. The driver passes the host's routing table.
    pub fn set_egress(&mut self, egress: Egress) {
        self.egress = Some(egress);
    }

    /// Replaces the configuration (routes, Record-Route, Max-Forwards, names): requests
    /// that arrive from now on use it; those in progress keep the hops they selected. On
    /// error the old one stays.
    pub fn set_config(&mut self, cfg: ProxyConfig) -> Result<(), ConfigError> {
        cfg.check()?;
        self.cfg = cfg;
        Ok(())
    }

    /// Stops accepting new transactions (graceful shutdown): a new request gets 503 with
    /// `Retry-After`, while ACKs, CANCELs and the transactions in flight go on.
    pub fn stop_accepting(&mut self) {
        self.draining = true;
    }

    /// Requests still waiting for their final response (what a graceful shutdown waits
    /// for; a context kept only to absorb retransmissions does not count).
    pub fn in_flight(&self) -> usize {
        #[cfg(test)]
        assert_eq!(
            self.awaiting_final,
            self.contexts.values().filter(|c| !c.final_sent).count(),
            "the in-flight count drifted"
        );
        self.awaiting_final
    }

    fn insert_context(&mut self, id: RequestId, ctx: Context<F>) {
        if !ctx.final_sent {
            self.awaiting_final += 1;
        }
        if let Some(old) = self.contexts.insert(id, ctx) {
            if !old.final_sent {
                self.awaiting_final = self.awaiting_final.saturating_sub(1);
            }
        }
    }

    fn remove_context(&mut self, id: &RequestId) -> Option<Context<F>> {
        let ctx = self.contexts.remove(id)?;
        if !ctx.final_sent {
            self.awaiting_final = self.awaiting_final.saturating_sub(1);
        }
        Some(ctx)
    }

    /// The configuration.
    pub fn config(&self) -> &ProxyConfig {
        &self.cfg
    }

    /// The counters.
    pub fn counters(&self) -> &ProxyCounters {
        &self.counters
    }

    /// Requests in progress (proxy contexts).
    pub fn pending(&self) -> usize {
        self.contexts.len()
    }

    /// Every request being relayed, for admin dumps (`sipwire transactions`).
    pub fn in_flight_list(&self) -> Vec<InFlight> {
        let mut v: Vec<InFlight> = self
            .contexts
            .values()
            .map(|c| InFlight {
                call_id: c.original.call_id().to_owned(),
                method: c.original.method().unwrap_or_default().to_owned(),
                stateful: c.server.is_some(),
                branches: c.branches.len(),
                resolving: c.resolving,
                cancelled: c.cancelled,
                final_sent: c.final_sent,
            })
            .collect();
        v.sort_by(|a, b| a.call_id.cmp(&b.call_id));
        v
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<Output<F>> {
        self.out.pop_front()
    }

    /// When [`Proxy::handle_timeout`] is due.
    pub fn deadline(&self) -> Option<Instant> {
        match (self.txns.deadline(), self.ack_wait.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.txns.handle_timeout(now);
        self.drain(now);
        let fired = self.ack_wait.handle_timeout(now);
        if fired.gave_up > 0 {
            tracing::debug!(count = fired.gave_up, "no ACK for a 2xx within 64*T1");
            self.counters.ok_unacknowledged += fired.gave_up;
        }
        for (to, message) in fired.retransmit {
            self.counters.ok_retransmitted += 1;
            self.out.push_back(match to {
                Some(to) => Output::Respond { to, message },
                None => Output::RespondByVia { message },
            });
        }
    }

    /// 2xx responses to INVITE waiting for their ACK, or kept to absorb its copies.
    pub fn awaiting_ack(&self) -> usize {
        self.ack_wait.len()
    }

    /// A request received on `inbound` (its top Via already carries `received`/`rport`).
    pub fn handle_request(&mut self, msg: Message, inbound: Inbound<F>, now: Instant) {
        if !msg.is_request() {
            return self.handle_response(msg, now);
        }
        if !self.draining && select::options_answered_here(&self.cfg, &msg, &inbound.listener) {
            // No transaction: a retransmission is answered again, as by a stateless UAS.
            return self.respond_stateless(&msg, inbound, &Reject::new(200));
        }
        let invite = msg.method() == Some("INVITE");
        if msg.method() == Some("BYE") {
            if let Some(tag) = msg.to_tag() {
                // The caller has the 2xx (see ack_wait.rs).
                self.ack_wait.dialog_ended(msg.call_id(), tag);
            }
        }
        match self.txns.receive(msg, now) {
            Ok(Received::Matched(tid)) if invite => self.repeat_2xx(tid),
            Ok(Received::Matched(_)) => {}
            Ok(Received::NewRequest(req)) => self.new_request(req, inbound, now),
            Ok(Received::StrayAck(ack)) => self.stateless_request(ack, inbound),
            Ok(Received::StrayResponse(_)) => self.counters.dropped_malformed += 1,
            Err(e) => {
                tracing::debug!(%e, "request dropped");
                self.counters.dropped_malformed += 1;
            }
        }
        self.drain(now);
    }

    /// An INVITE retransmission after a 2xx went up: the 2xx was lost upstream. RFC 3261
    /// §13.3.1.4 has the UAS retransmit its 2xx, but a UAS on a reliable hop often does not
    /// (and the transaction's RFC 6026 Accepted state only absorbs): the proxy sends the
    /// 2xx again, so that a lossy upstream hop still completes the call.
    fn repeat_2xx(&mut self, server: TransactionId) {
        let Some((id, Role::Server)) = self.roles.get(&server) else {
            return;
        };
        if let Some(ctx) = self.contexts.get(id) {
            if let Some(ok) = &ctx.last_2xx {
                self.counters.responses_forwarded += 1;
                self.out.push_back(Output::Respond {
                    to: ctx.inbound.clone(),
                    message: ok.clone(),
                });
            }
        }
    }

    /// A response received from downstream.
    pub fn handle_response(&mut self, msg: Message, now: Instant) {
        let (ours, stateless) = match msg.top_via() {
            Ok(v) => (
                self.cfg.is_our_sent_by(&v.host, v.port_or_default()),
                v.branch.and_then(branch::parse).map(|(m, _)| m) == Some(Mode::Stateless),
            ),
            Err(_) => {
                self.counters.dropped_malformed += 1;
                return;
            }
        };
        if !ours {
            // §18.1.2: a response whose top Via is not ours is discarded.
            self.counters.dropped_not_our_via += 1;
            return;
        }
        match self.txns.receive(msg, now) {
            Ok(Received::StrayResponse(r)) if stateless => self.respond_by_via(r),
            Ok(Received::StrayResponse(_)) => self.counters.dropped_stray += 1,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(%e, "response dropped");
                self.counters.dropped_malformed += 1;
            }
        }
        self.drain(now);
    }

    /// The RFC 3263 result for an [`Output::Resolve`], targets in the order to try.
    pub fn resolved(&mut self, request: RequestId, targets: Vec<Target>, now: Instant) {
        let Some(ctx) = self.contexts.get_mut(&request) else {
            return;
        };
        if !ctx.resolving {
            return;
        }
        ctx.resolving = false;
        let hint = ctx.resolve_hint.take();
        match ctx.resolve_tls_first.take() {
            Some(aus) => {
                let targets = best_effort_order(&self.cfg, targets, aus.as_deref());
                ctx.targets.extend(targets.into_iter().map(|t| {
                    let hint = tls_hint(&self.cfg, hint.clone(), &t);
                    (t, hint)
                }));
            }
            None => ctx
                .targets
                .extend(targets.into_iter().map(|t| (t, hint.clone()))),
        }
        if ctx.server.is_none() {
            self.stateless_next(request);
        } else {
            self.try_next(request, now);
        }
        self.drain(now);
    }

    /// The transport could not send an [`Output::Send`] of this client transaction
    /// (§16.9: as if a 503 had come; RFC 3263 §4.3: the next target is tried).
    pub fn send_failed(&mut self, client: TransactionId, now: Instant) {
        if self.txns.transport_error(client, now).is_ok() {
            self.drain(now);
        }
    }

    fn new_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    fn new_request(&mut self, req: Message, inbound: Inbound<F>, now: Instant) {
        if req.method() == Some("CANCEL") {
            match self.txns.cancel_target(&req) {
                Ok(Some(invite)) => return self.cancel(req, inbound, invite, now),
                // §16.10: no context: forward statelessly.
                _ => return self.stateless_request(req, inbound),
            }
        }
        if self.draining && req.method() != Some("ACK") {
            self.counters.refused_draining += 1;
            let rej = Reject::because(503, "shutting down").with_header("Retry-After", "5");
            return self.reject(req, inbound, None, rej, now);
        }
        if self.cfg.listener(&inbound.listener).is_none() {
            tracing::warn!(listener = %inbound.listener, "request on an unknown listener");
            return self.reject(
                req,
                inbound,
                None,
                Reject::because(500, "unknown listener"),
                now,
            );
        }
        let prepared = match request::prepare(&self.cfg, self.secret, &req) {
            Ok(p) => p,
            Err(rej) => return self.reject(req, inbound, None, rej, now),
        };
        let selection = match select(&self.cfg, &prepared, &inbound.listener) {
            Ok(s) => s,
            Err(rej) => return self.reject(req, inbound, Some(prepared), rej, now),
        };
        match selection {
            Selection::ForUs => {
                let rej = if req.method() == Some("OPTIONS") {
                    Reject::new(200)
                } else {
                    Reject::because(404, "addressed to this proxy")
                };
                self.reject(req, inbound, Some(prepared), rej, now)
            }
            Selection::Forward {
                hops,
                stateless: true,
            } => self.stateless_start(req, inbound, prepared, hops),
            Selection::Forward { hops, .. } => {
                let Some(id) = self.start_context(&req, inbound, Some(prepared), now) else {
                    return;
                };
                if let Some(ctx) = self.contexts.get_mut(&id) {
                    ctx.hops = hops.into();
                }
                self.try_next(id, now);
            }
        }
    }

    /// Starts the server transaction and its context.
    fn start_context(
        &mut self,
        req: &Message,
        inbound: Inbound<F>,
        prepared: Option<Prepared>,
        now: Instant,
    ) -> Option<RequestId> {
        let sid = match self.txns.start_server(req.clone(), inbound.transport, now) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%e, "no server transaction");
                self.counters.dropped_malformed += 1;
                return None;
            }
        };
        let id = self.new_id();
        let record_route = self.cfg.record_route && request::creates_dialog(req);
        let ctx = Context::new(inbound, req.clone(), prepared, Some(sid), record_route);
        self.insert_context(id, ctx);
        self.bind(sid, id, Role::Server);
        Some(id)
    }

    /// Answers `req` with `rej` through a server transaction (retransmissions absorbed);
    /// an ACK is dropped.
    fn reject(
        &mut self,
        req: Message,
        inbound: Inbound<F>,
        prepared: Option<Prepared>,
        rej: Reject,
        now: Instant,
    ) {
        if req.method() == Some("ACK") {
            self.counters.dropped_unroutable += 1;
            return;
        }
        let Some(id) = self.start_context(&req, inbound, prepared, now) else {
            return;
        };
        if let Some(ctx) = self.contexts.get_mut(&id) {
            ctx.stop = true;
            ctx.last_reject = Some(rej);
        }
        self.finish(id, now);
    }

    /// §16.10: 200 to the CANCEL, CANCEL on every pending branch, 487 from us if no branch
    /// is out.
    fn cancel(&mut self, req: Message, inbound: Inbound<F>, invite: TransactionId, now: Instant) {
        let Some((id, Role::Server)) = self.roles.get(&invite).cloned() else {
            return self.stateless_request(req, inbound);
        };
        let Ok(sid) = self.txns.start_server(req.clone(), inbound.transport, now) else {
            self.counters.dropped_malformed += 1;
            return;
        };
        self.bind(sid, id, Role::CancelServer(inbound));
        if let Some(ok) = Reject::new(200).response_to(&req) {
            let _ = self.txns.send_response(sid, ok, now);
        }
        let Some(ctx) = self.contexts.get_mut(&id) else {
            return;
        };
        ctx.cancelled = true;
        ctx.resolving = false;
        let mut now_cancel = Vec::new();
        for (i, b) in ctx.branches.iter_mut().enumerate() {
            if b.done || b.cancel_sent {
                continue;
            }
            if b.provisional {
                now_cancel.push(i);
            } else {
                // §9.1: no CANCEL before a provisional response.
                b.cancel_pending = true;
            }
        }
        for i in now_cancel {
            self.send_cancel(id, i, now);
        }
        self.try_next(id, now);
    }

    fn send_cancel(&mut self, id: RequestId, i: usize, now: Instant) {
        let Some(b) = self
            .contexts
            .get_mut(&id)
            .and_then(|c| c.branches.get_mut(i))
        else {
            return;
        };
        b.cancel_sent = true;
        let Some(cancel) = cancel_for(&b.request) else {
            return;
        };
        match self.txns.start_client(cancel, b.target.transport, now) {
            Ok(cid) => {
                self.bind(cid, id, Role::CancelClient(i));
            }
            Err(e) => tracing::debug!(%e, "CANCEL not sent"),
        }
    }

    /// Tries the next target, resolves the next hop, or answers with the best response.
    fn try_next(&mut self, id: RequestId, now: Instant) {
        loop {
            let Some(ctx) = self.contexts.get_mut(&id) else {
                return;
            };
            if ctx.final_sent || ctx.resolving || ctx.has_pending_branch() {
                return;
            }
            if ctx.cancelled || ctx.stop {
                return self.finish(id, now);
            }
            if let Some((target, hint)) = ctx.targets.pop_front() {
                if self.start_branch(id, target, hint, now) {
                    return;
                }
                continue;
            }
            match ctx.hops.pop_front() {
                Some(Hop {
                    next: NextHop::Address(t),
                    listener,
                    tls_first,
                }) => {
                    let targets = match tls_first {
                        true => best_effort_order(&self.cfg, vec![t], None),
                        false => vec![t],
                    };
                    ctx.targets.extend(targets.into_iter().map(|t| {
                        let hint = tls_hint(&self.cfg, listener.clone(), &t);
                        (t, hint)
                    }));
                }
                Some(Hop {
                    next: NextHop::Resolve(target),
                    listener,
                    tls_first,
                }) => {
                    ctx.resolving = true;
                    ctx.resolve_hint = listener;
                    // The URI's host name: who a made-up TLS target must be.
                    ctx.resolve_tls_first =
                        tls_first.then(|| target.host.name().map(str::to_owned));
                    self.out.push_back(Output::Resolve {
                        request: id,
                        target,
                        tls_first,
                    });
                    return;
                }
                None => return self.finish(id, now),
            }
        }
    }

    /// The copy of the context's request for `target`, or why it cannot go there.
    fn branch_request(
        &mut self,
        ctx_inbound: &str,
        prepared: &Prepared,
        target: &Target,
        hint: Option<&str>,
        branch: &str,
        record_route: bool,
    ) -> Result<(Message, String), Reject> {
        if !sips::may_leave_over(prepared.scheme, target.transport) {
            self.counters.sips_refused += 1;
            return Err(Reject::sips_not_allowed(self.cfg.warning_agent()));
        }
        let source = target.source.or_else(|| {
            let f = self.egress.as_ref()?;
            (self.cfg.listener_count(target.transport) > 1)
                .then(|| (f.0)(target.addr.ip()))
                .flatten()
        });
        let out = self
            .cfg
            .outbound_listener(target.transport, hint, source)
            .ok_or_else(|| Reject::because(480, "no listener for the target's transport"))?;
        let inbound = self
            .cfg
            .listener(ctx_inbound)
            .ok_or_else(|| Reject::because(500, "unknown listener"))?;
        let msg = request::build_branch(
            &self.cfg,
            prepared,
            inbound,
            out,
            target.transport,
            branch,
            record_route,
        )?;
        Ok((msg, out.name.clone()))
    }

    fn start_branch(
        &mut self,
        id: RequestId,
        target: Target,
        hint: Option<String>,
        now: Instant,
    ) -> bool {
        let Some(ctx) = self.contexts.get(&id) else {
            return false;
        };
        let Some(prepared) = ctx.prepared.clone() else {
            return false;
        };
        let (listener, record_route) = (ctx.inbound.listener.clone(), ctx.record_route);
        self.seq += 1;
        let br = branch::stateful(self.secret, prepared.loop_hash, self.seq);
        let built = self.branch_request(
            &listener,
            &prepared,
            &target,
            hint.as_deref(),
            &br,
            record_route,
        );
        let (msg, out_listener) = match built {
            Ok(m) => m,
            Err(rej) => {
                if let Some(ctx) = self.contexts.get_mut(&id) {
                    ctx.last_reject = Some(rej);
                }
                return false;
            }
        };
        let cid = match self.txns.start_client(msg.clone(), target.transport, now) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(%e, "client transaction refused");
                return false;
            }
        };
        let Some(ctx) = self.contexts.get_mut(&id) else {
            return false;
        };
        if !ctx.branches.is_empty() {
            self.counters.failovers += 1;
        }
        self.counters.branches += 1;
        ctx.branches.push(Branch::new(target, out_listener, msg));
        let i = ctx.branches.len() - 1;
        self.bind(cid, id, Role::Branch(i));
        true
    }

    /// Sends the best final response (§16.7 step 6) once no branch is pending.
    fn finish(&mut self, id: RequestId, now: Instant) {
        let Some(ctx) = self.contexts.get_mut(&id) else {
            return;
        };
        if ctx.final_sent {
            return;
        }
        ctx.final_sent = true;
        self.awaiting_final = self.awaiting_final.saturating_sub(1);
        let (response, generated) = ctx.best_response();
        let Some(response) = response else {
            return;
        };
        if generated {
            self.counters.responses_generated += 1;
        } else {
            self.counters.responses_forwarded += 1;
        }
        let server = ctx.server;
        match server {
            Some(sid) => {
                if let Err(e) = self.txns.send_response(sid, response, now) {
                    tracing::debug!(%e, "final response not sent");
                }
            }
            None => {
                let to = ctx.inbound.clone();
                self.out.push_back(Output::Respond {
                    to,
                    message: response,
                });
            }
        }
        self.forget_if_done(id);
    }

    fn bind(&mut self, tid: TransactionId, id: RequestId, role: Role<F>) {
        if let Some(ctx) = self.contexts.get_mut(&id) {
            ctx.live += 1;
        }
        self.roles.insert(tid, (id, role));
    }

    /// Forgets a context with no transaction left and nothing to wait for.
    fn forget_if_done(&mut self, id: RequestId) {
        if self
            .contexts
            .get(&id)
            .is_some_and(|c| c.live == 0 && !c.resolving)
        {
            self.remove_context(&id);
        }
    }

    /// Drains the transaction table's actions into outputs and context events.
    fn drain(&mut self, now: Instant) {
        while let Some((tid, action)) = self.txns.poll_action() {
            let Some((id, role)) = self.roles.get(&tid).cloned() else {
                continue;
            };
            match (role, action) {
                (_, Action::Terminated) => {
                    self.roles.remove(&tid);
                    if let Some(ctx) = self.contexts.get_mut(&id) {
                        ctx.live = ctx.live.saturating_sub(1);
                    }
                    self.forget_if_done(id);
                }
                (Role::Server, Action::Send(message)) => {
                    if let Some(ctx) = self.contexts.get(&id) {
                        let to = ctx.inbound.clone();
                        self.out.push_back(Output::Respond { to, message });
                    }
                }
                (Role::Server, Action::PassUp(m)) if m.method() == Some("ACK") => {
                    // An ACK matched in the RFC 6026 Accepted state: the ACK for the 2xx.
                    if let Some(ctx) = self.contexts.get(&id) {
                        let inbound = ctx.inbound.clone();
                        self.stateless_request(m, inbound);
                    }
                }
                (Role::CancelServer(to), Action::Send(message)) => {
                    self.out.push_back(Output::Respond { to, message });
                }
                (Role::Branch(i) | Role::CancelClient(i), Action::Send(message)) => {
                    if let Some(b) = self.contexts.get(&id).and_then(|c| c.branches.get(i)) {
                        self.out.push_back(Output::Send {
                            target: b.target.clone(),
                            listener: b.listener.clone(),
                            message,
                            client: Some(tid),
                        });
                    }
                }
                (Role::Branch(i), Action::PassUp(resp)) => self.on_response(id, i, resp, now),
                (Role::Branch(i), Action::Timeout(_)) => {
                    self.branch_failed(id, i, Outcome::Timeout, now)
                }
                (Role::Branch(i), Action::TransportError) => {
                    self.branch_failed(id, i, Outcome::TransportError, now)
                }
                _ => {}
            }
        }
    }

    fn branch_failed(&mut self, id: RequestId, i: usize, outcome: Outcome, now: Instant) {
        let Some(ctx) = self.contexts.get_mut(&id) else {
            return;
        };
        let Some(b) = ctx.branches.get_mut(i) else {
            return;
        };
        if b.done {
            return;
        }
        b.done = true;
        ctx.outcomes.push(outcome);
        self.try_next(id, now);
    }

    /// §16.7 for a response of branch `i`, passed up by its client transaction.
    fn on_response(&mut self, id: RequestId, i: usize, resp: Message, now: Instant) {
        let code = resp.status_code().unwrap_or(0);
        // Step 3: our Via goes.
        let fwd = resp.edit();
        let fwd = match fwd_pop(fwd) {
            Some(m) if m.via_count() > 0 => m,
            _ => {
                self.counters.dropped_malformed += 1;
                return;
            }
        };
        let Some(ctx) = self.contexts.get_mut(&id) else {
            return;
        };
        let Some(b) = ctx.branches.get_mut(i) else {
            return;
        };
        if code < 200 {
            b.provisional = true;
            let cancel_now = b.cancel_pending && !b.cancel_sent && !b.done;
            let forward = code > 100 && !ctx.final_sent;
            let server = ctx.server;
            if cancel_now {
                self.send_cancel(id, i, now);
            }
            if forward {
                if let Some(sid) = server {
                    if self.txns.send_response(sid, fwd, now).is_ok() {
                        self.counters.responses_forwarded += 1;
                    }
                }
            }
            return;
        }
        if (200..300).contains(&code) {
            // Step 5: a 2xx goes up at once, every one of them (INVITE forks can bring
            // several, and the client transaction passes 2xx retransmissions up too).
            b.done = true;
            if !ctx.final_sent {
                self.awaiting_final = self.awaiting_final.saturating_sub(1);
            }
            ctx.final_sent = true;
            ctx.stop = true;
            let server = ctx.server;
            ctx.last_2xx = Some(fwd.clone());
            // RFC 3261 §13.3.1.4 on behalf of the UAS: see ack_wait.rs.
            let upstream = (fwd.cseq().method == "INVITE" && !ctx.inbound.transport.is_reliable())
                .then(|| ctx.inbound.clone());
            self.counters.responses_forwarded += 1;
            let sent =
                server.is_some_and(|sid| self.txns.send_response(sid, fwd.clone(), now).is_ok());
            if !sent {
                self.out.push_back(Output::RespondByVia {
                    message: fwd.clone(),
                });
            }
            if let (Some(inbound), Some(key)) = (upstream, OkKey::of(&fwd)) {
                let to = sent.then_some(inbound);
                self.ack_wait.forwarded(key, fwd, to, now);
            }
            return;
        }
        if b.done {
            return;
        }
        b.done = true;
        // RFC 3263 §4.3: only a 503 moves on to the next target; 6xx forbids new
        // branches (§16.7 step 5); any other final ends the search too.
        if code != 503 {
            ctx.stop = true;
        }
        ctx.outcomes.push(Outcome::Response(Box::new(fwd)));
        self.try_next(id, now);
    }

    fn respond_by_via(&mut self, resp: Message) {
        match fwd_pop(resp.edit()) {
            Some(m) if m.via_count() > 0 => {
                self.counters.responses_forwarded += 1;
                self.out.push_back(Output::RespondByVia { message: m });
            }
            _ => self.counters.dropped_malformed += 1,
        }
    }

    /// A request forwarded without a server transaction: an ACK for a 2xx, a CANCEL
    /// without context (§16.10).
    fn stateless_request(&mut self, req: Message, inbound: Inbound<F>) {
        let is_ack = req.method() == Some("ACK");
        if is_ack {
            let verdict = OkKey::of(&req).map(|k| self.ack_wait.ack(&k));
            if verdict == Some(AckVerdict::Absorb) {
                self.counters.acks_absorbed += 1;
                return;
            }
        }
        let plan = request::prepare(&self.cfg, self.secret, &req).and_then(|p| {
            match select(&self.cfg, &p, &inbound.listener)? {
                Selection::Forward { hops, .. } => Ok((p, hops)),
                Selection::ForUs => Err(Reject::new(481)),
            }
        });
        match plan {
            Ok((prepared, hops)) => self.stateless_start(req, inbound, prepared, hops),
            Err(_) if is_ack => self.counters.dropped_unroutable += 1,
            Err(rej) => self.respond_stateless(&req, inbound, &rej),
        }
    }

    fn respond_stateless(&mut self, req: &Message, to: Inbound<F>, rej: &Reject) {
        if req.method() == Some("ACK") {
            self.counters.dropped_unroutable += 1;
            return;
        }
        if let Some(message) = rej.response_to(req) {
            self.counters.responses_generated += 1;
            self.out.push_back(Output::Respond { to, message });
        }
    }

    fn stateless_start(
        &mut self,
        req: Message,
        inbound: Inbound<F>,
        prepared: Prepared,
        hops: Vec<Hop>,
    ) {
        let id = self.new_id();
        let record_route = self.cfg.record_route && request::creates_dialog(&req);
        let mut ctx = Context::new(inbound, req, Some(prepared), None, record_route);
        ctx.hops = hops.into();
        self.insert_context(id, ctx);
        self.stateless_next(id);
    }

    /// §16.11: the first usable target gets the request, with a branch derived from it.
    fn stateless_next(&mut self, id: RequestId) {
        loop {
            let Some(ctx) = self.contexts.get_mut(&id) else {
                return;
            };
            if let Some((target, hint)) = ctx.targets.pop_front() {
                let Some(prepared) = ctx.prepared.clone() else {
                    return;
                };
                let listener = ctx.inbound.listener.clone();
                let record_route = ctx.record_route;
                let br = branch::stateless(self.secret, prepared.loop_hash, &ctx.original);
                match self.branch_request(
                    &listener,
                    &prepared,
                    &target,
                    hint.as_deref(),
                    &br,
                    record_route,
                ) {
                    Ok((message, listener)) => {
                        self.remove_context(&id);
                        self.counters.forwarded_stateless += 1;
                        self.out.push_back(Output::Send {
                            target,
                            listener,
                            message,
                            client: None,
                        });
                        return;
                    }
                    Err(rej) => {
                        if let Some(ctx) = self.contexts.get_mut(&id) {
                            ctx.last_reject = Some(rej);
                        }
                        continue;
                    }
                }
            }
            // Sent once, without failover: no best-effort TLS attempt.
            match ctx.hops.pop_front() {
                Some(Hop {
                    next: NextHop::Address(t),
                    listener,
                    ..
                }) => ctx.targets.push_back((t, listener)),
                Some(Hop {
                    next: NextHop::Resolve(target),
                    listener,
                    ..
                }) => {
                    ctx.resolving = true;
                    ctx.resolve_hint = listener;
                    self.out.push_back(Output::Resolve {
                        request: id,
                        target,
                        tls_first: false,
                    });
                    return;
                }
                None => {
                    let Some(ctx) = self.remove_context(&id) else {
                        return;
                    };
                    let rej = ctx
                        .last_reject
                        .unwrap_or_else(|| Reject::because(480, "no target"));
                    return self.respond_stateless(&ctx.original, ctx.inbound, &rej);
                }
            }
        }
    }
}

/// [`best_effort::order`] when a TLS-family listener can send (else the targets as they
/// are: a TLS attempt could not leave); made-up TLS attempts need a TLS listener.
fn best_effort_order(cfg: &ProxyConfig, targets: Vec<Target>, aus: Option<&str>) -> Vec<Target> {
    if !cfg.listeners.iter().any(|l| l.transport.is_secure()) {
        return targets;
    }
    let tls = cfg
        .outbound_listener(TransportKind::Tls, None, None)
        .is_some();
    best_effort::order(targets, aus, tls)
}

/// The listener hint of a TLS target of a best-effort hop without one: the TCP listener the
/// plain targets leave by, so that the TLS attempt leaves on the same network
/// ([`ProxyConfig::outbound_listener`]).
fn tls_hint(cfg: &ProxyConfig, hint: Option<String>, target: &Target) -> Option<String> {
    if hint.is_some() || !target.transport.is_secure() {
        return hint;
    }
    cfg.outbound_listener(TransportKind::Tcp, None, None)
        .map(|l| l.name.clone())
}

fn fwd_pop(mut ed: crate::wire::Editor<'_>) -> Option<Message> {
    ed.pop_via().ok()?;
    ed.finish_message().ok()
}

/// The CANCEL for a branch's request (§9.1): same Request-URI, Call-ID, From, To, CSeq
/// number and Route, and only the branch's top Via.
pub(crate) fn cancel_for(req: &Message) -> Option<Message> {
    use std::fmt::Write as _;
    let text = |b: &[u8]| std::str::from_utf8(b).ok().map(str::to_owned);
    let via = text(req.top_via().ok()?.raw)?;
    let mut s = String::with_capacity(512);
    let _ = write!(
        s,
        "CANCEL {} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n",
        req.request_uri()?
    );
    for r in req.header_lines("Route") {
        let _ = write!(s, "Route: {}\r\n", text(r)?);
    }
    let _ = write!(
        s,
        "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} CANCEL\r\nContent-Length: 0\r\n\r\n",
        text(req.header("From")?)?,
        text(req.header("To")?)?,
        req.call_id(),
        req.cseq().seq
    );
    Message::parse(bytes::Bytes::from(s)).ok()
}
