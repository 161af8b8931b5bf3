//! A thin tokio driver for the proxy core: received messages from a [`Transport`] go in,
//! the core's outputs go out (sends and RFC 3263 look-ups run as tasks that report back),
//! and the core's deadline is slept on. All protocol decisions stay in [`Proxy`].
//!
//! Limits: sends go through [`Transport::send_to`] (RFC 3261 connection reuse), not yet
//! through the RFC 5923 reuse endpoint; each send is its own task, so two sends to a
//! target that is still connecting may be reordered.

use std::collections::HashMap;
use std::net::SocketAddr;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::resolve::{resolve_with, Answer, DnsResolver, Resolution, ResolveConfig, SipTarget};
use crate::transaction::TransactionId;
use crate::transport::{Flow, Incoming, Transport};
use crate::wire::Message;
use crate::{Target, TransportKind};

use super::core::{Inbound, Output, Proxy, RequestId};

enum Event {
    Resolved(RequestId, Vec<Target>),
    SendFailed(TransactionId),
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
}

/// Runs `proxy` over `transport` until `incoming` closes. `dns` resolves host names
/// (without it only numeric next hops work).
pub async fn run(
    mut proxy: Proxy<Flow>,
    transport: Transport,
    mut incoming: mpsc::Receiver<Incoming>,
    listeners: ListenerMap,
    dns: Option<DnsResolver>,
) {
    let dns = dns.map(std::sync::Arc::new);
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<Event>();
    loop {
        let deadline = proxy.deadline();
        tokio::select! {
            inc = incoming.recv() => {
                let Some(inc) = inc else { break };
                let now = Instant::now().into_std();
                if inc.message.is_request() {
                    let Some(listener) = listener_of(&listeners, &proxy, &inc) else {
                        tracing::debug!(local = %inc.local, "request on no configured listener");
                        continue;
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
            Some(ev) = ev_rx.recv() => {
                let now = Instant::now().into_std();
                match ev {
                    Event::Resolved(id, targets) => proxy.resolved(id, targets, now),
                    Event::SendFailed(client) => proxy.send_failed(client, now),
                }
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                proxy.handle_timeout(Instant::now().into_std());
            }
        }
        while let Some(out) = proxy.poll_output() {
            perform(out, &transport, &ev_tx, dns.clone());
        }
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
    transport: &Transport,
    ev: &mpsc::UnboundedSender<Event>,
    dns: Option<std::sync::Arc<DnsResolver>>,
) {
    match out {
        Output::Respond { to, message } => respond(transport, &to, message),
        Output::RespondByVia { message } => {
            let Some(target) = via_target(&message) else {
                tracing::debug!("response without a usable Via dropped");
                return;
            };
            let t = transport.clone();
            tokio::spawn(async move {
                if let Err(e) = t.send_to(&target, message.into_bytes()).await {
                    tracing::debug!(%e, "response not sent");
                }
            });
        }
        Output::Resolve { request, target } => {
            let ev = ev.clone();
            tokio::spawn(async move {
                let targets = resolve(dns.as_deref(), &target).await;
                let _ = ev.send(Event::Resolved(request, targets));
            });
        }
        Output::Send {
            target,
            message,
            client,
            ..
        } => {
            let t = transport.clone();
            let ev = ev.clone();
            tokio::spawn(async move {
                if let Err(e) = t.send_to(&target, message.into_bytes()).await {
                    tracing::debug!(%e, %target.addr, "request not sent");
                    if let Some(c) = client {
                        let _ = ev.send(Event::SendFailed(c));
                    }
                }
            });
        }
    }
}

/// RFC 3261 §18.2.2 / RFC 3581: reliable transports and `rport` answer on the flow; UDP
/// without `rport` goes to `received` (or the source) at the sent-by port.
fn respond(transport: &Transport, to: &Inbound<Flow>, message: Message) {
    let udp_to = match (to.transport, message.top_via()) {
        (TransportKind::Udp, Ok(v)) if v.rport.is_none() => {
            let ip = v.received.unwrap_or(to.source.ip());
            Some(SocketAddr::new(ip, v.port.unwrap_or(5060)))
        }
        _ => None,
    };
    let result = match udp_to {
        Some(addr) if addr != to.source => {
            transport.send_datagram_via(to.flow, addr, message.as_bytes())
        }
        _ => transport.send(to.flow, message.into_bytes()),
    };
    if let Err(e) = result {
        tracing::debug!(%e, "response not sent");
    }
}

/// Where a response goes by its top Via: `received` (else the sent-by address) at the
/// `rport` (else the sent-by port). Host names are not resolved here.
fn via_target(message: &Message) -> Option<Target> {
    let v = message.top_via().ok()?;
    let kind = v.transport.kind()?;
    let ip = v.received.or_else(|| v.host.ip())?;
    let port = match v.rport {
        Some(crate::wire::Rport::Port(p)) => p,
        _ => v.port_or_default(),
    };
    Some(Target::new(kind, SocketAddr::new(ip, port)))
}

async fn resolve(dns: Option<&DnsResolver>, target: &SipTarget) -> Vec<Target> {
    let result = match dns {
        Some(d) => d.resolve(target).await.map_err(|e| e.to_string()),
        None => Resolution::new(target, &ResolveConfig::default())
            .map_err(|e| e.to_string())
            .and_then(|plan| {
                resolve_with(plan, &mut rand::rng(), |q| Answer::empty(q.kind))
                    .map_err(|e| e.to_string())
            }),
    };
    match result {
        Ok(r) => r.targets,
        Err(e) => {
            tracing::debug!(%e, "resolution failed");
            Vec::new()
        }
    }
}
