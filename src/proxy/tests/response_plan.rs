//! Where responses go upstream (RFC 3261 §18.2.2, RFC 3581 §4, RFC 3263 §5): the plan the
//! driver walks, each step tried when the one before failed. DNS is answered by hand
//! through the resolver's pure [`Resolution`](crate::resolve::Resolution).

use super::*;
use crate::resolve::{
    resolve_with, Answer, Query, QueryKind, Resolution, ResolveConfig, SrvRecord, ViaTarget,
};

type Step = ResponseStep<u32>;

fn target(kind: TransportKind, a: &str) -> Target {
    Target::new(kind, addr(a))
}

/// A response whose only Via is `via` (our own Via already removed).
fn response_with_via(via: &str) -> Message {
    msg(&format!(
        "SIP/2.0 200 OK\nVia: {via}\nFrom: <sip:alice@example.org>;tag=a1\n\
         To: <sip:bob@example.net>;tag=b1\nCall-ID: plan@test\nCSeq: 1 OPTIONS\n\
         Content-Length: 0\n\n"
    ))
}

/// Every step of `plan`, as if each failed (a `Resolve` is left unanswered).
fn steps(mut plan: ResponsePlan<u32>) -> Vec<Step> {
    std::iter::from_fn(|| plan.next_step()).collect()
}

/// RFC 3263 §5 on `via` with a hand-written zone; the queries asked, and the targets.
fn locate(via: &ViaTarget) -> (Vec<Query>, Vec<Target>) {
    let mut asked = Vec::new();
    let plan = Resolution::for_response(via, &ResolveConfig::default()).unwrap();
    let r = resolve_with(plan, &mut rand::rng(), |q| {
        asked.push(q.clone());
        match (q.kind, q.name.as_str()) {
            (QueryKind::Srv, "_sip._tcp.uac.example.com") => Answer::Srv(vec![
                SrvRecord {
                    priority: 20,
                    weight: 0,
                    port: 5080,
                    target: "b.uac.example.com".into(),
                },
                SrvRecord {
                    priority: 10,
                    weight: 0,
                    port: 5070,
                    target: "a.uac.example.com".into(),
                },
            ]),
            (QueryKind::A, "a.uac.example.com") => {
                Answer::Addrs(vec!["192.0.2.51".parse().unwrap()])
            }
            (QueryKind::A, "b.uac.example.com") => {
                Answer::Addrs(vec!["192.0.2.52".parse().unwrap()])
            }
            (QueryKind::A, "uac.example.com") => Answer::Addrs(vec!["192.0.2.50".parse().unwrap()]),
            (kind, _) => Answer::empty(kind),
        }
    })
    .unwrap();
    (asked, r.targets)
}

/// The core's response to a TCP request whose UAC wrote a host name as sent-by, then its
/// plan: the connection; `received` at the sent-by port; RFC 3263 §5 on the sent-by (no
/// port: SRV `_sip._tcp`), whose targets are tried in SRV order; then nothing.
#[test]
fn a_closed_connection_then_received_then_the_sent_by_srv_targets_in_order() {
    let mut h = H::new(config(vec![rule(
        "example.net",
        vec![RouteTarget::new(TransportKind::Tcp, "10.0.0.5", Some(5060))],
    )]));
    let req = OPTIONS.replace(
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKopt1;rport=5060;received=192.0.2.10",
        "Via: SIP/2.0/TCP uac.example.com;branch=z9hG4bKopt1;received=10.0.0.20",
    );
    let o = h.request(&req, tcp_in());
    let (_, _, fwd) = o.only_send();
    h.p.handle_response(reply(fwd, 200, Some("b1"), ""), h.now);
    let (to, message) = std::iter::from_fn(|| h.p.poll_output())
        .find_map(|o| match o {
            Output::Respond { to, message } => Some((to, message)),
            _ => None,
        })
        .expect("the 200 goes upstream");
    let mut plan = ResponsePlan::new(&message, Some(&to));

    assert_eq!(
        plan.next_step(),
        Some(Step::Flow(2)),
        "the request's connection"
    );
    assert_eq!(
        plan.next_step(),
        Some(Step::Target(target(TransportKind::Tcp, "10.0.0.20:5060"))),
        "closed: received at the sent-by (default) port"
    );
    let via = match plan.next_step() {
        Some(Step::Resolve(v)) => v,
        other => panic!("refused: RFC 3263 §5 on the sent-by, got {other:?}"),
    };
    assert_eq!(
        via,
        ViaTarget::new(TransportKind::Tcp, "uac.example.com", None, None, None).unwrap()
    );
    let (asked, targets) = locate(&via);
    assert_eq!(
        asked.first(),
        Some(&Query {
            name: "_sip._tcp.uac.example.com".into(),
            kind: QueryKind::Srv
        }),
        "no port: SRV for the Via transport"
    );
    plan.resolved(targets);
    assert_eq!(
        steps(plan),
        [
            Step::Target(target(TransportKind::Tcp, "192.0.2.51:5070")),
            Step::Target(target(TransportKind::Tcp, "192.0.2.52:5080")),
        ],
        "SRV order (priority 10, then 20), each after the other failed; then nothing"
    );
}

/// A sent-by name with a port: A/AAAA of the name, at that port (never SRV); TLS in the Via
/// means TLS over TCP, checked against the sent-by name.
#[test]
fn a_sent_by_name_with_a_port_is_located_by_its_addresses() {
    let m =
        response_with_via("SIP/2.0/TLS uac.example.com:5071;branch=z9hG4bKt1;received=192.0.2.10");
    let mut plan = ResponsePlan::new(&m, Some(&tls_in()));
    assert_eq!(plan.next_step(), Some(Step::Flow(3)));
    assert_eq!(
        plan.next_step(),
        Some(Step::Target(
            target(TransportKind::Tls, "192.0.2.10:5071").with_server_name("uac.example.com")
        ))
    );
    let Some(Step::Resolve(via)) = plan.next_step() else {
        panic!("RFC 3263 §5 expected");
    };
    let (asked, targets) = locate(&via);
    assert!(asked.iter().all(|q| q.kind != QueryKind::Srv), "{asked:?}");
    plan.resolved(targets);
    assert_eq!(
        steps(plan),
        [Step::Target(
            target(TransportKind::Tls, "192.0.2.50:5071").with_server_name("uac.example.com")
        )]
    );
}

/// UDP: RFC 3581 `rport` answers to the source on the inbound socket; then `received` at
/// the sent-by port, then the numeric sent-by, both from the inbound socket.
#[test]
fn udp_uses_rport_then_received_at_the_sent_by_port_then_the_sent_by() {
    let inbound = Inbound {
        source: addr("192.0.2.99:40000"),
        ..udp_in()
    };
    let m = response_with_via(
        "SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKu1;rport=40000;received=192.0.2.99",
    );
    assert_eq!(
        steps(ResponsePlan::new(&m, Some(&inbound))),
        [
            Step::Flow(1),
            Step::DatagramVia(1, addr("192.0.2.99:5062")),
            Step::DatagramVia(1, addr("192.0.2.10:5062")),
        ]
    );
    // Without rport: received at the sent-by port first, not the source port.
    let m = response_with_via("SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKu2;received=192.0.2.99");
    assert_eq!(
        steps(ResponsePlan::new(&m, Some(&inbound))),
        [
            Step::DatagramVia(1, addr("192.0.2.99:5062")),
            Step::DatagramVia(1, addr("192.0.2.10:5062")),
        ]
    );
    // The sent-by is the source: one destination, the flow.
    let m = response_with_via("SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKu3");
    assert_eq!(
        steps(ResponsePlan::new(&m, Some(&udp_in()))),
        [Step::Flow(1)]
    );
    // maddr (§18.2.2 bullet 2): there, at the sent-by port or 5060, and nowhere else.
    let m = response_with_via(
        "SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKu4;maddr=239.1.1.1;rport=5060;received=192.0.2.10",
    );
    assert_eq!(
        steps(ResponsePlan::new(&m, Some(&udp_in()))),
        [Step::DatagramVia(1, addr("239.1.1.1:5060"))]
    );
}

/// Without an inbound flow (stateless forwarding, a 2xx after its transaction): the
/// `rport` connection (an open one only) or address, then `received` at the sent-by port, then
/// RFC 3263 §5.
#[test]
fn a_stateless_response_follows_rport_received_then_the_sent_by() {
    let m = response_with_via(
        "SIP/2.0/TCP host.example.com:5070;branch=z9hG4bKs1;received=192.0.2.9;rport=41000",
    );
    assert_eq!(
        steps(ResponsePlan::new(&m, None)),
        [
            // The connection the request came on, found by its address (never a new one).
            Step::Connection(TransportKind::Tcp, addr("192.0.2.9:41000")),
            Step::Target(target(TransportKind::Tcp, "192.0.2.9:5070")),
            Step::Resolve(
                ViaTarget::new(
                    TransportKind::Tcp,
                    "host.example.com",
                    Some(5070),
                    None,
                    None
                )
                .unwrap()
            ),
        ]
    );
    let m = response_with_via(
        "SIP/2.0/UDP uac.example.com;branch=z9hG4bKs2;received=192.0.2.9;rport=41000",
    );
    assert_eq!(
        steps(ResponsePlan::new(&m, None)),
        [
            Step::Target(target(TransportKind::Udp, "192.0.2.9:41000")),
            Step::Target(target(TransportKind::Udp, "192.0.2.9:5060")),
            Step::Resolve(
                ViaTarget::new(TransportKind::Udp, "uac.example.com", None, None, None).unwrap()
            ),
        ]
    );
}

/// A resolved address already tried is not tried twice.
#[test]
fn an_address_is_tried_once() {
    let m = response_with_via("SIP/2.0/TCP uac.example.com;branch=z9hG4bKd1;received=10.0.0.20");
    let mut plan = ResponsePlan::new(&m, Some(&tcp_in()));
    assert_eq!(plan.next_step(), Some(Step::Flow(2)));
    assert!(matches!(plan.next_step(), Some(Step::Target(_))));
    assert!(matches!(plan.next_step(), Some(Step::Resolve(_))));
    plan.resolved(vec![
        target(TransportKind::Tcp, "10.0.0.20:5060"),
        target(TransportKind::Tcp, "10.0.0.21:5060"),
    ]);
    assert_eq!(
        steps(plan),
        [Step::Target(target(TransportKind::Tcp, "10.0.0.21:5060"))]
    );
}
