//! Tests of the proxy core: pure, simulated time, messages as text. `H` drives one
//! [`Proxy`] with a hand-advanced clock; UAs are scripted in each test.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::transaction::TimerConfig;
use crate::wire::Message;
use crate::{Target, TransportKind};

mod ack_wait;
mod best_effort;
mod call;
mod context_probe;
mod failover;
mod request;
mod response_plan;
mod responses;
mod route;
mod sips;

pub(super) const UDP_A: &str = "udp-a";
pub(super) const TCP_C: &str = "tcp-c";
pub(super) const TLS_A: &str = "tls-a";
pub(super) const TLS_C: &str = "tls-c";
pub(super) const UDP_C: &str = "udp-c";

/// Access side (192.0.2.1): UDP and TLS; core side (10.0.0.1): TCP, TLS and UDP.
pub(super) fn listeners() -> Vec<Listener> {
    vec![
        Listener::new(UDP_A, TransportKind::Udp, "192.0.2.1", Some(5060)).on_network("access"),
        Listener::new(TLS_A, TransportKind::Tls, "192.0.2.1", Some(5061)).on_network("access"),
        Listener::new(TCP_C, TransportKind::Tcp, "10.0.0.1", Some(5060)).on_network("core"),
        Listener::new(TLS_C, TransportKind::Tls, "10.0.0.1", Some(5061)).on_network("core"),
        Listener::new(UDP_C, TransportKind::Udp, "10.0.0.1", Some(5060)).on_network("core"),
    ]
}

pub(super) fn config(routes: Vec<RouteRule>) -> ProxyConfig {
    let mut c = ProxyConfig::new(listeners());
    c.routes = routes;
    c
}

pub(super) fn rule(domain: &str, targets: Vec<RouteTarget>) -> RouteRule {
    RouteRule {
        matches: RouteMatch {
            domain: Some(domain.into()),
            ..RouteMatch::default()
        },
        targets,
        best_effort_tls: None,
    }
}

pub(super) fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub(super) fn msg(text: &str) -> Message {
    Message::parse(Bytes::from(
        text.replace("\r\n", "\n").replace('\n', "\r\n"),
    ))
    .unwrap()
}

pub(super) fn s(m: &Message) -> String {
    String::from_utf8_lossy(m.as_bytes()).into_owned()
}

pub(super) fn udp_in() -> Inbound<u32> {
    Inbound {
        flow: 1,
        listener: UDP_A.into(),
        transport: TransportKind::Udp,
        source: addr("192.0.2.10:5060"),
    }
}

pub(super) fn tcp_in() -> Inbound<u32> {
    Inbound {
        flow: 2,
        listener: TCP_C.into(),
        transport: TransportKind::Tcp,
        source: addr("10.0.0.20:40000"),
    }
}

pub(super) fn tls_in() -> Inbound<u32> {
    Inbound {
        flow: 3,
        listener: TLS_A.into(),
        transport: TransportKind::Tls,
        source: addr("192.0.2.10:40001"),
    }
}

pub(super) fn timers() -> TimerConfig {
    TimerConfig {
        trying_delay: Some(Duration::ZERO),
        ..TimerConfig::default()
    }
}

/// One proxy and a simulated clock.
pub(super) struct H {
    pub(super) p: Proxy<u32>,
    pub(super) now: Instant,
}

/// What the proxy asked for, sorted by kind.
#[derive(Debug, Default)]
pub(super) struct Out {
    pub(super) responses: Vec<(Option<u32>, Message)>,
    pub(super) sends: Vec<(
        Target,
        String,
        Message,
        Option<crate::transaction::TransactionId>,
    )>,
    pub(super) resolves: Vec<(RequestId, crate::resolve::SipTarget)>,
}

impl Out {
    pub(super) fn codes(&self) -> Vec<u16> {
        self.responses
            .iter()
            .map(|(_, m)| m.status_code().unwrap())
            .collect()
    }

    pub(super) fn only_send(&self) -> (&Target, &str, &Message) {
        assert_eq!(self.sends.len(), 1, "{:?}", self.sends);
        let (t, l, m, _) = &self.sends[0];
        (t, l, m)
    }

    pub(super) fn only_response(&self) -> &Message {
        assert_eq!(self.responses.len(), 1, "{:?}", self.codes());
        &self.responses[0].1
    }
}

impl H {
    pub(super) fn new(cfg: ProxyConfig) -> H {
        H {
            p: Proxy::new(cfg, timers(), 42).unwrap(),
            now: Instant::now(),
        }
    }

    pub(super) fn out(&mut self) -> Out {
        // The in-flight count is kept, not scanned: checked against a scan at every step.
        let _ = self.p.in_flight();
        let mut o = Out::default();
        while let Some(x) = self.p.poll_output() {
            match x {
                Output::Respond { to, message } => o.responses.push((Some(to.flow), message)),
                Output::RespondByVia { message } => o.responses.push((None, message)),
                Output::Send {
                    target,
                    listener,
                    message,
                    client,
                } => o.sends.push((target, listener, message, client)),
                Output::Resolve {
                    request, target, ..
                } => o.resolves.push((request, target)),
            }
        }
        o
    }

    pub(super) fn request(&mut self, text: &str, inbound: Inbound<u32>) -> Out {
        self.p.handle_request(msg(text), inbound, self.now);
        self.out()
    }

    pub(super) fn response(&mut self, m: Message) -> Out {
        self.p.handle_response(m, self.now);
        self.out()
    }

    pub(super) fn resolved(&mut self, id: RequestId, targets: Vec<Target>) -> Out {
        self.p.resolved(id, targets, self.now);
        self.out()
    }

    /// Advances the clock by `d`, firing every deadline on the way.
    pub(super) fn advance(&mut self, d: Duration) -> Out {
        let end = self.now + d;
        let mut all = Out::default();
        loop {
            match self.p.deadline() {
                Some(at) if at <= end => {
                    self.now = self.now.max(at);
                    self.p.handle_timeout(self.now);
                    let o = self.out();
                    all.responses.extend(o.responses);
                    all.sends.extend(o.sends);
                    all.resolves.extend(o.resolves);
                }
                _ => break,
            }
        }
        self.now = end;
        all
    }
}

/// The response a UA sends to `req`: its Vias, From, To (with `to_tag` if it had none),
/// Call-ID and CSeq, plus `extra` header lines (each ending in `\n`).
pub(super) fn reply(req: &Message, code: u16, to_tag: Option<&str>, extra: &str) -> Message {
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
    let mut r = format!("SIP/2.0 {code} Whatever\n");
    for v in req.header_lines("Via") {
        r.push_str(&format!("Via: {}\n", text(v)));
    }
    r.push_str(&format!("From: {}\n", text(req.header("From").unwrap())));
    let to = text(req.header("To").unwrap());
    match (req.to_tag(), to_tag) {
        (None, Some(t)) => r.push_str(&format!("To: {to};tag={t}\n")),
        _ => r.push_str(&format!("To: {to}\n")),
    }
    r.push_str(&format!("Call-ID: {}\n", req.call_id()));
    let cseq = req.cseq();
    r.push_str(&format!("CSeq: {} {}\n", cseq.seq, cseq.method));
    r.push_str(extra);
    r.push_str("Content-Length: 0\n\n");
    msg(&r)
}

/// Record-Route lines of a request, to echo in a response.
pub(super) fn echo_rr(req: &Message) -> String {
    req.header_lines("Record-Route")
        .map(|v| format!("Record-Route: {}\n", String::from_utf8_lossy(v)))
        .collect()
}

pub(super) fn rr(m: &Message) -> Vec<String> {
    m.record_routes()
        .map(|r| r.unwrap().uri.to_owned())
        .collect()
}

pub(super) fn routes(m: &Message) -> Vec<String> {
    m.routes().map(|r| r.unwrap().uri.to_owned()).collect()
}

pub(super) fn vias(m: &Message) -> Vec<String> {
    m.vias()
        .map(|v| String::from_utf8_lossy(v.unwrap().raw).into_owned())
        .collect()
}

pub(super) fn top_branch(m: &Message) -> String {
    m.top_via().unwrap().branch.unwrap().to_owned()
}

pub(super) const INVITE: &str = "INVITE sip:bob@example.net SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKuac1;rport=5060;received=192.0.2.10
Max-Forwards: 70
From: <sip:alice@example.org>;tag=a1
To: <sip:bob@example.net>
Call-ID: call1@192.0.2.10
CSeq: 1 INVITE
Contact: <sip:alice@192.0.2.10:5060>
Content-Length: 0

";

pub(super) const OPTIONS: &str = "OPTIONS sip:bob@example.net SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKopt1;rport=5060;received=192.0.2.10
Max-Forwards: 70
From: <sip:alice@example.org>;tag=a1
To: <sip:bob@example.net>
Call-ID: opt1@192.0.2.10
CSeq: 1 OPTIONS
Content-Length: 0

";
