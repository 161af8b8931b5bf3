//! A thin tokio driver for the proxy core: received messages go in, the core's outputs go
//! out, and the core's deadline is slept on. All protocol decisions stay in [`Proxy`].
//!
//! - Sends to one target go through one queue ([`super::send_queue`]) so that they leave
//!   in the order the core produced them, even while the first one is still connecting.
//! - TLS-family requests go through the RFC 5923 [`ReuseEndpoint`] when one is given
//!   ([`ReuseEndpoint::send_prepared`]: the core's own Via, alias rows in both directions).
//! - Responses follow their [`ResponsePlan`] (RFC 3261 §18.2.2, RFC 3581, RFC 3263 §5): the
//!   inbound flow, then `received` at the sent-by port, then the sent-by located by RFC 3263
//!   §5, each tried when the one before failed; the look-up runs as a task, sends to an
//!   address through the send queues, which report a failure back.
//! - RFC 3263 look-ups run as tasks that report back.
//! - [`Command`]s replace the configuration and drain the proxy for a graceful stop.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::endpoint::ReuseEndpoint;
use crate::resolve::{
    resolve_with, Answer, DnsResolver, Resolution, ResolveConfig, SipTarget, ViaTarget,
};
use crate::transaction::TransactionId;
use crate::transport::{Flow, Incoming, Transport};
use crate::wire::Message;
use crate::Target;

use super::config::{ConfigError, ProxyConfig};
use super::core::{Inbound, Output, Proxy, RequestId};
use super::metrics::{Published, ShardCount};
use super::response_plan::{ResponsePlan, ResponseStep};
use super::send_queue::{Job, SendQueues};

/// What the tasks report back to the loop.
pub(crate) enum Event {
    Resolved(RequestId, Vec<Target>),
    SendFailed(TransactionId),
    /// A response's send to an address failed: its next destination.
    ResponseFailed(Box<PendingResponse>),
    /// The RFC 3263 §5 targets of a response's sent-by.
    ResponseResolved(Box<PendingResponse>, Vec<Target>),
}

/// A response on its way upstream and the destinations it has left.
#[derive(Debug)]
pub(crate) struct PendingResponse {
    plan: ResponsePlan<Flow>,
    message: Message,
}

/// Which listener a received message came in on: by the local address it arrived at.
#[derive(Debug, Clone, Default)]
pub struct ListenerMap {
    by_local: HashMap<SocketAddr, String>,
}

impl ListenerMap {
    /// An empty map.
    pub fn new() -> ListenerMap {
        ListenerMap::default()
    }

    /// Messages arriving at `local` belong to the listener `name`.
    pub fn with(mut self, local: SocketAddr, name: &str) -> ListenerMap {
        self.by_local.insert(local, name.to_owned());
        self
    }

    /// A local address of the listener `name`.
    pub fn address_of(&self, name: &str) -> Option<SocketAddr> {
        self.by_local
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(a, _)| *a)
    }
}

/// The RFC 5923 reuse endpoint in force, asked at each send (a gateway replaces it when its
/// alias settings are reloaded).
pub type ReuseSource = Arc<dyn Fn() -> Option<ReuseEndpoint> + Send + Sync>;

/// How the driver reaches the network beyond the transport.
#[derive(Clone, Default)]
pub struct DriverOptions {
    /// Listener names by local address.
    pub listeners: ListenerMap,
    /// RFC 3263 resolver (without it only numeric next hops work).
    pub dns: Option<DnsResolver>,
    /// RFC 5923 reuse for TLS-family requests; `None`: straight to the transport.
    pub reuse: Option<ReuseSource>,
    /// A target's send queue that stays empty this long ends (a new one starts on demand).
    pub queue_idle: Option<Duration>,
    /// Shown every received message before the proxy takes it (a gateway logs it and offers
    /// its Via alias to the reuse endpoint here, without a task and channel hop of its own).
    pub inspect: Option<Inspect>,
    /// This driver's shard when several run side by side over one transport
    /// ([`Transport::new_sharded`]): the messages it handles are counted under this label
    /// ([`super::metrics::SHARD_MESSAGES`]). `None`: not counted.
    pub shard: Option<usize>,
}

/// See [`DriverOptions::inspect`].
pub type Inspect = Arc<dyn Fn(&Incoming) + Send + Sync>;

/// Orders for a running driver.
#[derive(Debug)]
pub enum Command {
    /// Use this configuration for new requests (the answer says whether it was taken).
    Reconfigure {
        /// The new configuration.
        config: Box<ProxyConfig>,
        /// The outcome.
        reply: oneshot::Sender<Result<(), ConfigError>>,
    },
    /// Graceful stop: refuse new transactions (503) and answer, with the number of
    /// requests still without a final response, once none is left or at `until`.
    Drain {
        /// The latest moment to answer.
        until: Instant,
        /// Requests still in flight when answering (0: all finished).
        reply: oneshot::Sender<usize>,
    },
    /// Every request being relayed now (admin dumps).
    Snapshot {
        /// The answer.
        reply: oneshot::Sender<Vec<super::InFlight>>,
    },
}

/// Runs `proxy` over `transport` until `incoming` closes. `dns` resolves host names
/// (without it only numeric next hops work).
pub async fn run(
    proxy: Proxy<Flow>,
    transport: Transport,
    incoming: mpsc::Receiver<Incoming>,
    listeners: ListenerMap,
    dns: Option<DnsResolver>,
) {
    let (_keep, commands) = mpsc::channel(1);
    let opts = DriverOptions {
        listeners,
        dns,
        ..DriverOptions::default()
    };
    run_with(proxy, transport, incoming, opts, commands).await;
}

/// Runs `proxy` over `transport` until `incoming` closes, obeying `commands`.
pub async fn run_with(
    mut proxy: Proxy<Flow>,
    transport: Transport,
    mut incoming: mpsc::Receiver<Incoming>,
    opts: DriverOptions,
    mut commands: mpsc::Receiver<Command>,
) {
    let dns = opts.dns.clone().map(Arc::new);
    proxy.set_egress({
        let transport = transport.clone();
        super::Egress::new(move |ip| transport.route_source(ip))
    });
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<Event>();
    let mut queues = SendQueues::new(
        transport.clone(),
        opts.reuse.clone(),
        ev_tx.clone(),
        opts.queue_idle.unwrap_or(Duration::from_secs(32)),
    );
    let mut published = Published::default();
    published.register();
    let mut handled = ShardCount::new(opts.shard);
    let mut drain: Option<(Instant, oneshot::Sender<usize>)> = None;
    loop {
        let deadline = proxy.deadline();
        let drain_until = drain.as_ref().map(|(u, _)| *u);
        tokio::select! {
            inc = incoming.recv() => {
                let Some(inc) = inc else { break };
                let now = Instant::now().into_std();
                handle_incoming(&mut proxy, &opts, inc, now);
                handled.add();
                // What else is queued goes in the same turn (bounded, so that timers and
                // commands still get their turn): one wake-up and one metrics publication
                // per batch instead of per message.
                for _ in 1..BATCH {
                    while let Some(out) = proxy.poll_output() {
                        perform(out, &opts, &transport, &mut queues, &ev_tx, dns.clone());
                    }
                    let Ok(inc) = incoming.try_recv() else { break };
                    handle_incoming(&mut proxy, &opts, inc, now);
                    handled.add();
                }
            }
            Some(ev) = ev_rx.recv() => {
                let now = Instant::now().into_std();
                match ev {
                    Event::Resolved(id, targets) => proxy.resolved(id, targets, now),
                    Event::SendFailed(client) => proxy.send_failed(client, now),
                    Event::ResponseFailed(pending) => {
                        respond(&transport, &mut queues, &ev_tx, dns.clone(), *pending);
                    }
                    Event::ResponseResolved(mut pending, targets) => {
                        pending.plan.resolved(targets);
                        respond(&transport, &mut queues, &ev_tx, dns.clone(), *pending);
                    }
                }
            }
            Some(cmd) = commands.recv() => match cmd {
                Command::Reconfigure { config, reply } => {
                    let _ = reply.send(proxy.set_config(*config));
                }
                Command::Drain { until, reply } => {
                    proxy.stop_accepting();
                    drain = Some((until, reply));
                }
                Command::Snapshot { reply } => {
                    let _ = reply.send(proxy.in_flight_list());
                }
            },
            _ = sleep_until(deadline), if deadline.is_some() => {
                proxy.handle_timeout(Instant::now().into_std());
            }
            _ = tokio::time::sleep_until(drain_until.unwrap_or_else(Instant::now)),
                if drain_until.is_some() => {}
        }
        while let Some(out) = proxy.poll_output() {
            perform(out, &opts, &transport, &mut queues, &ev_tx, dns.clone());
        }
        published.publish(proxy.counters(), proxy.in_flight());
        handled.publish();
        if let Some((until, _)) = &drain {
            let left = proxy.in_flight();
            if left == 0 || Instant::now() >= *until {
                if let Some((_, reply)) = drain.take() {
                    let _ = reply.send(left);
                }
            }
        }
    }
    // What this core still counted in flight leaves the shared gauge with it.
    published.retire();
}

/// Most received messages handled in one turn of the driver loop.
const BATCH: usize = 64;

/// Hands one received message to the proxy core.
fn handle_incoming(
    proxy: &mut Proxy<Flow>,
    opts: &DriverOptions,
    inc: Incoming,
    now: std::time::Instant,
) {
    if let Some(inspect) = &opts.inspect {
        inspect(&inc);
    }
    if inc.message.is_request() {
        let Some(listener) = listener_of(&opts.listeners, proxy, &inc) else {
            tracing::debug!(local = %inc.local, "request on no configured listener");
            return;
        };
        let inbound = Inbound {
            flow: inc.flow,
            listener,
            transport: inc.transport(),
            source: inc.source,
        };
        proxy.handle_request(inc.message, inbound, now);
    } else {
        proxy.handle_response(inc.message, now);
    }
}

async fn sleep_until(at: Option<std::time::Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(Instant::from_std(at)).await;
    }
}

fn listener_of(map: &ListenerMap, proxy: &Proxy<Flow>, inc: &Incoming) -> Option<String> {
    map.by_local.get(&inc.local).cloned().or_else(|| {
        proxy
            .config()
            .listeners
            .iter()
            .find(|l| l.transport == inc.transport())
            .map(|l| l.name.clone())
    })
}

fn perform(
    out: Output<Flow>,
    opts: &DriverOptions,
    transport: &Transport,
    queues: &mut SendQueues,
    ev: &mpsc::UnboundedSender<Event>,
    dns: Option<Arc<DnsResolver>>,
) {
    match out {
        Output::Respond { to, message } => {
            let plan = ResponsePlan::new(&message, Some(&to));
            respond(
                transport,
                queues,
                ev,
                dns,
                PendingResponse { plan, message },
            );
        }
        Output::RespondByVia { message } => {
            let plan = ResponsePlan::new(&message, None);
            respond(
                transport,
                queues,
                ev,
                dns,
                PendingResponse { plan, message },
            );
        }
        Output::Resolve {
            request,
            target,
            tls_first,
        } => {
            let ev = ev.clone();
            tokio::spawn(async move {
                let targets = resolve(dns.as_deref(), &target, tls_first).await;
                let _ = ev.send(Event::Resolved(request, targets));
            });
        }
        Output::Send {
            target,
            listener,
            message,
            client,
        } => {
            let domain = if target.transport.is_secure() {
                local_domain(opts, &listener)
            } else {
                None
            };
            // Leave from the listener the Via and Record-Route name, so that the peer's
            // answer comes back to an address it can reach.
            let target = match opts.listeners.address_of(&listener).map(|a| a.ip()) {
                Some(ip) if !ip.is_unspecified() && target.source.is_none() => {
                    target.with_source(ip)
                }
                _ => target,
            };
            queues.push(target, Job::request(message.into_bytes(), client, domain));
        }
    }
}

/// The RFC 5923 local domain a request leaving by `listener` is sent for: the listener's
/// own domain, else the endpoint's default.
fn local_domain(opts: &DriverOptions, listener: &str) -> Option<String> {
    let reuse = opts.reuse.as_ref().and_then(|r| r())?;
    let cfg = reuse.config();
    opts.listeners
        .address_of(listener)
        .and_then(|a| cfg.listener_domains.get(&a).cloned())
        .or_else(|| cfg.default_domain.clone())
}

/// Walks a response's plan: sends on flows and by datagram at once, moving on when one
/// fails; a send to an address goes through the target's queue, which reports a failure
/// back ([`Event::ResponseFailed`]); a look-up runs as a task ([`Event::ResponseResolved`]).
fn respond(
    transport: &Transport,
    queues: &mut SendQueues,
    ev: &mpsc::UnboundedSender<Event>,
    dns: Option<Arc<DnsResolver>>,
    mut pending: PendingResponse,
) {
    while let Some(step) = pending.plan.next_step() {
        let result = match step {
            ResponseStep::Flow(flow) => transport.send(flow, pending.message.clone().into_bytes()),
            ResponseStep::DatagramVia(flow, addr) => {
                transport.send_datagram_via(flow, addr, pending.message.as_bytes())
            }
            ResponseStep::Connection(kind, addr) => match transport.stream_flow_to(kind, addr) {
                Some(flow) => transport.send(flow, pending.message.clone().into_bytes()),
                None => {
                    tracing::debug!(%addr, "no open connection from the request's source; next destination");
                    continue;
                }
            },
            ResponseStep::Target(target) => {
                tracing::debug!(addr = %target.addr, transport = %target.transport, "response to a new destination");
                let bytes = pending.message.clone().into_bytes();
                queues.push(target, Job::response(bytes, Some(Box::new(pending))));
                return;
            }
            ResponseStep::Resolve(via) => {
                let ev = ev.clone();
                tokio::spawn(async move {
                    let targets = resolve_via(dns.as_deref(), &via).await;
                    let _ = ev.send(Event::ResponseResolved(Box::new(pending), targets));
                });
                return;
            }
        };
        match result {
            Ok(()) => return,
            Err(e) => tracing::debug!(%e, "response not sent; next destination"),
        }
    }
    tracing::debug!("response dropped: every destination failed");
}

/// RFC 3263 §5 on a Via's sent-by (no DNS: nothing, a name needs it).
async fn resolve_via(dns: Option<&DnsResolver>, via: &ViaTarget) -> Vec<Target> {
    let Some(dns) = dns else {
        return Vec::new();
    };
    match dns.resolve_response(via).await {
        Ok(r) => r.targets,
        Err(e) => {
            tracing::debug!(%e, "sent-by not located");
            Vec::new()
        }
    }
}

/// RFC 3263 on `target`; TLS-family results are verified against the URI's host (the AUS).
/// `tls_first`: best-effort TLS, so `_sips` SRV is asked for a `sip:` URI without NAPTR too.
async fn resolve(dns: Option<&DnsResolver>, target: &SipTarget, tls_first: bool) -> Vec<Target> {
    let mut cfg = dns.map_or_else(ResolveConfig::default, |d| d.config().resolve.clone());
    cfg.tls_srv_for_sip_uris |= tls_first;
    let result = match dns {
        Some(d) => match Resolution::new(target, &cfg) {
            Ok(plan) => d.run(plan).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        None => Resolution::new(target, &cfg)
            .map_err(|e| e.to_string())
            .and_then(|plan| {
                resolve_with(plan, &mut rand::rng(), |q| Answer::empty(q.kind))
                    .map_err(|e| e.to_string())
            }),
    };
    match result {
        Ok(r) => {
            let aus = r.aus;
            r.targets
                .into_iter()
                .map(|t| {
                    if t.transport.is_secure() && t.server_name.is_none() {
                        t.with_server_name(&aus)
                    } else {
                        t
                    }
                })
                .collect()
        }
        Err(e) => {
            tracing::debug!(%e, "resolution failed");
            Vec::new()
        }
    }
}
