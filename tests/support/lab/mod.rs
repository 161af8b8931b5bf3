//! RFC 5923 peers inside network namespaces (sipwire-lab): each peer runs on its host's own
//! thread and runtime (sockets belong to the namespace), driven by commands from the test.

pub mod fig;

use super::pki::{Ca, Leaf};
use super::reuse::{self, Peer, TLS13};
use super::sip::{forwarded, sips};
use sipwire::alias::{AliasCounters, AliasDecision, AliasPolicy, TableDump};
use sipwire::endpoint::LocalDomain;
use sipwire::resolve::{SipTarget, Target};
use sipwire::transport::Flow;
use sipwire::wire::Message;
use sipwire_lab::{Host, HostTask};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Bound for every command.
pub const WAIT: Duration = Duration::from_secs(30);

/// The RFC 5923 example's TLS port.
pub const SIPS_PORT: u16 = 5061;

/// A spec with defaults: TLS 1.3, alias on, accept all, port 5061, no TCP.
pub fn spec(ip: &'static str, server_cert: &Leaf, domains: Vec<LocalDomain>) -> PeerSpec {
    PeerSpec {
        ip,
        port: SIPS_PORT,
        server_cert: server_cert.clone(),
        by_sni: Vec::new(),
        client_cert: Some(server_cert.clone()),
        versions: TLS13,
        domains,
        add_alias: true,
        policy: AliasPolicy::accept_all(),
        dns: None,
        dns_cache: false,
        resumption: true,
        with_tcp: false,
        transport: sipwire::TransportKind::Tls,
    }
}

/// How to build a peer.
#[derive(Clone)]
pub struct PeerSpec {
    pub ip: &'static str,
    pub port: u16,
    pub server_cert: Leaf,
    pub by_sni: Vec<(String, Leaf)>,
    pub client_cert: Option<Leaf>,
    pub versions: &'static [&'static rustls::SupportedProtocolVersion],
    pub domains: Vec<LocalDomain>,
    pub add_alias: bool,
    pub policy: AliasPolicy,
    pub dns: Option<SocketAddr>,
    /// Cache DNS answers (benchmarks: resolution then costs no query).
    pub dns_cache: bool,
    /// TLS session resumption on our outbound connections (rustls default: on).
    pub resumption: bool,
    pub with_tcp: bool,
    /// The secure transport of the listener and of the targets (TLS or TLS-SCTP).
    pub transport: sipwire::TransportKind,
}

/// What a send gave.
#[derive(Debug, Clone)]
pub struct SentInfo {
    pub flow: Flow,
    pub reused: bool,
    /// The resolved target it went to.
    pub target: Target,
    /// The AUS the target was verified against (the next-hop URI's host).
    pub aus: String,
    /// The flow its final response came back on (None for an ACK).
    pub answered_on: Option<Flow>,
    /// From the call until the 200 arrived.
    pub latency: Duration,
}

/// A received request.
#[derive(Debug, Clone)]
pub struct SeenInfo {
    pub flow: Flow,
    pub call_id: String,
    pub decision: Option<AliasDecision<Flow>>,
    /// The request as received.
    pub message: Message,
}

/// A peer's state.
#[derive(Debug, Clone)]
pub struct State {
    pub opened: (usize, usize),
    pub stream_flows: usize,
    pub dump: Vec<TableDump>,
    pub counters: AliasCounters,
}

enum Cmd {
    Send {
        local: String,
        domain: String,
        call: String,
        reply: oneshot::Sender<Result<SentInfo, String>>,
    },
    Message {
        local: String,
        next_hop: SipTarget,
        /// Boxed: a parsed message is much larger than the other commands.
        message: Box<Message>,
        branch: String,
        reply: oneshot::Sender<Result<SentInfo, String>>,
    },
    Raw {
        to: sipwire::transport::Target,
        bytes: bytes::Bytes,
        reply: oneshot::Sender<Result<Flow, String>>,
    },
    NextRequest(oneshot::Sender<SeenInfo>),
    State(oneshot::Sender<State>),
    Close(Flow),
}

/// A peer running inside a host.
pub struct Agent {
    tx: mpsc::UnboundedSender<Cmd>,
    task: Option<HostTask<()>>,
}

fn client_config(ca: &Ca, spec: &PeerSpec) -> std::sync::Arc<rustls::ClientConfig> {
    let c = ca.client_config(spec.client_cert.as_ref(), spec.versions);
    if spec.resumption {
        return c;
    }
    let mut c = (*c).clone();
    c.resumption = rustls::client::Resumption::disabled();
    std::sync::Arc::new(c)
}

async fn serve(
    spec: PeerSpec,
    ca: std::sync::Arc<Ca>,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    ready: std::sync::mpsc::Sender<()>,
) {
    let by_sni: Vec<(&str, &Leaf)> = spec.by_sni.iter().map(|(n, l)| (n.as_str(), l)).collect();
    let bound = reuse::bind_port_over(
        spec.transport,
        spec.ip,
        spec.port,
        ca.server_config(&spec.server_cert, &by_sni, spec.versions),
        client_config(&ca, &spec),
        spec.with_tcp,
    )
    .await;
    let mut cfg = reuse::config(spec.domains.clone(), spec.add_alias);
    cfg.policy = spec.policy.clone();
    let resolver = spec
        .dns
        .map(|d| reuse::resolver_with_cache(d, if spec.dns_cache { 1024 } else { 0 }));
    let mut peer: Peer = bound.start_with(resolver, cfg);
    let _ = ready.send(());
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Cmd::Send {
                local,
                domain,
                call,
                reply,
            } => {
                let r = send(&mut peer, &local, &domain, &call).await;
                let _ = reply.send(r);
            }
            Cmd::Message {
                local,
                next_hop,
                message,
                branch,
                reply,
            } => {
                let r = send_message(&mut peer, &local, &next_hop, &message, &branch).await;
                let _ = reply.send(r);
            }
            Cmd::Raw { to, bytes, reply } => {
                let r = peer.transport.send_to(&to, bytes).await;
                let _ = reply.send(r.map_err(|e| e.to_string()));
            }
            Cmd::NextRequest(reply) => {
                let s = peer.next_request().await;
                let _ = reply.send(SeenInfo {
                    flow: s.flow,
                    call_id: s.message.call_id().to_owned(),
                    decision: s.decision,
                    message: s.message,
                });
            }
            Cmd::State(reply) => {
                let st = peer.transport.stats();
                let _ = reply.send(State {
                    opened: peer.opened(),
                    stream_flows: st.stream_flows,
                    dump: peer.endpoint.dump(),
                    counters: peer.endpoint.counters(),
                });
            }
            Cmd::Close(flow) => peer.transport.close(flow, Duration::from_millis(10)),
        }
    }
}

async fn send(peer: &mut Peer, local: &str, domain: &str, call: &str) -> Result<SentInfo, String> {
    let r = forwarded("OPTIONS", &format!("sips:{domain}"), local, call, 1);
    send_message(peer, local, &sips(domain), &r, &format!("z9hG4bK{call}")).await
}

/// Sends `request` for `local` to `next_hop` and, unless it is an ACK, waits for its final
/// response (same Call-ID and CSeq method).
async fn send_message(
    peer: &mut Peer,
    local: &str,
    next_hop: &SipTarget,
    request: &Message,
    branch: &str,
) -> Result<SentInfo, String> {
    let start = Instant::now();
    let s = peer
        .endpoint
        .send_request(local, next_hop, request, branch)
        .await
        .map_err(|e| e.to_string())?;
    let method = request.method().unwrap_or_default();
    let mut answered_on = None;
    if method != "ACK" {
        loop {
            let seen = peer.next_response().await;
            if seen.message.call_id() == request.call_id()
                && seen.message.cseq().method == method
                && seen.message.status_code().is_some_and(|c| c >= 200)
            {
                answered_on = Some(seen.flow);
                break;
            }
        }
    }
    Ok(SentInfo {
        flow: s.flow,
        reused: s.reused,
        target: s.target,
        aus: s.aus,
        answered_on,
        latency: start.elapsed(),
    })
}

impl Agent {
    /// Starts a peer inside `host` and returns once it listens.
    pub fn start(host: &Host, ca: std::sync::Arc<Ca>, spec: PeerSpec) -> Agent {
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let task = host.run(move || serve(spec, ca, rx, ready_tx));
        // Listening before anyone connects to it.
        ready
            .recv_timeout(WAIT)
            .expect("peer agent bound its listeners");
        Agent {
            tx,
            task: Some(task),
        }
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> T {
        let (tx, rx) = oneshot::channel();
        assert!(self.tx.send(make(tx)).is_ok(), "peer agent ended");
        tokio::time::timeout(WAIT, rx)
            .await
            .expect("peer agent answered in time")
            .expect("peer agent alive")
    }

    /// Sends an OPTIONS for `local` to `sips:domain` and waits for its 200.
    pub async fn send(&self, local: &str, domain: &str, call: &str) -> SentInfo {
        self.ask(|reply| Cmd::Send {
            local: local.into(),
            domain: domain.into(),
            call: call.into(),
            reply,
        })
        .await
        .unwrap_or_else(|e| panic!("send {call}: {e}"))
    }

    /// Sends `message` for `local` to `next_hop` (our Via on top, branch `branch`) and waits
    /// for its final response (not for an ACK).
    pub async fn send_message(
        &self,
        local: &str,
        next_hop: SipTarget,
        message: Message,
        branch: &str,
    ) -> SentInfo {
        self.ask(|reply| Cmd::Message {
            local: local.into(),
            next_hop,
            message: Box::new(message),
            branch: branch.into(),
            reply,
        })
        .await
        .unwrap_or_else(|e| panic!("send {branch}: {e}"))
    }

    /// Sends raw bytes with the bare transport (an attacker).
    pub async fn raw(&self, to: sipwire::transport::Target, bytes: bytes::Bytes) -> Flow {
        self.ask(|reply| Cmd::Raw { to, bytes, reply })
            .await
            .unwrap_or_else(|e| panic!("raw send: {e}"))
    }

    /// The next request this peer received.
    pub async fn next_request(&self) -> SeenInfo {
        self.ask(Cmd::NextRequest).await
    }

    /// Its connections and tables.
    pub async fn state(&self) -> State {
        self.ask(Cmd::State).await
    }

    /// Closes a flow.
    pub fn close(&self, flow: Flow) {
        let _ = self.tx.send(Cmd::Close(flow));
    }

    /// Stops the agent and waits for its thread.
    pub async fn stop(mut self) {
        drop(std::mem::replace(&mut self.tx, mpsc::unbounded_channel().0));
        if let Some(t) = self.task.take() {
            tokio::time::timeout(WAIT, t.wait())
                .await
                .expect("agent stopped in time")
                .expect("agent ran in its namespace");
        }
    }
}
