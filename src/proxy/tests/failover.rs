//! RFC 3263 §4.3 failover: the next target on timeout, transport error or 503, a new
//! branch per attempt, retransmissions / ACK / CANCEL to the attempt's own target.

use super::*;

fn three() -> ProxyConfig {
    config(vec![rule(
        "example.net",
        vec![
            RouteTarget::new(TransportKind::Udp, "10.0.0.30", Some(5060)),
            RouteTarget::new(TransportKind::Udp, "10.0.0.31", Some(5060)),
            RouteTarget::new(TransportKind::Udp, "10.0.0.32", Some(5060)),
        ],
    )])
}

fn udp(a: &str) -> Target {
    Target::new(TransportKind::Udp, addr(a))
}

#[test]
fn first_times_out_second_503_third_200() {
    let mut h = H::new(three());
    let start = h.now;
    let o = h.request(INVITE, udp_in());
    assert_eq!(o.codes(), vec![100]);
    let (t, _, first) = o.only_send();
    assert_eq!(t, &udp("10.0.0.30:5060"));
    let b1 = top_branch(first);

    // Timer A retransmits to the first target only; Timer B (32 s) moves on.
    let o = h.advance(Duration::from_millis(31_900));
    assert_eq!(
        o.sends.len(),
        6,
        "retransmissions at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s"
    );
    assert!(o.sends.iter().all(|(t, ..)| t == &udp("10.0.0.30:5060")));
    assert!(o.sends.iter().all(|(_, _, m, _)| top_branch(m) == b1));
    assert!(o.responses.is_empty());
    let o = h.advance(Duration::from_millis(100));
    assert_eq!(h.now - start, Duration::from_secs(32));
    assert!(
        o.responses.is_empty(),
        "no 408 upstream while targets remain"
    );
    let (t, _, second) = o.only_send();
    assert_eq!(t, &udp("10.0.0.31:5060"));
    let b2 = top_branch(second);
    assert_ne!(b1, b2, "a new branch per attempt");
    let second = second.clone();

    // 503 from the second: ACKed there (same branch), not forwarded; the third gets a
    // new branch.
    let o = h.response(reply(&second, 503, Some("x2"), ""));
    assert!(o.responses.is_empty());
    assert_eq!(o.sends.len(), 2, "{:?}", o.sends);
    let (t, _, ack, _) = &o.sends[0];
    assert_eq!(t, &udp("10.0.0.31:5060"));
    assert_eq!(ack.method(), Some("ACK"));
    assert_eq!(top_branch(ack), b2);
    let (t, _, third, _) = &o.sends[1];
    assert_eq!(t, &udp("10.0.0.32:5060"));
    assert_eq!(third.method(), Some("INVITE"));
    let b3 = top_branch(third);
    assert!(b3 != b1 && b3 != b2);
    let third = third.clone();

    let o = h.response(reply(&third, 200, Some("x3"), ""));
    assert_eq!(o.codes(), vec![200]);
    assert_eq!(vias(o.only_response()).len(), 1);
    let c = h.p.counters();
    assert_eq!((c.branches, c.failovers), (3, 2));
}

#[test]
fn transport_error_moves_on_and_only_503s_become_500() {
    let mut h = H::new(three());
    let o = h.request(OPTIONS, udp_in());
    let client = o.sends[0].3.unwrap();
    h.p.send_failed(client, h.now);
    let o = h.out();
    let (t, _, second) = o.only_send();
    assert_eq!(t, &udp("10.0.0.31:5060"));
    let second = second.clone();
    let o = h.response(reply(&second, 503, Some("x"), ""));
    let third = o.only_send().2.clone();
    let o = h.response(reply(&third, 503, Some("y"), ""));
    // §16.7 step 6: a 503 is not passed up; 500 instead.
    let r = o.only_response();
    assert_eq!(r.status_code(), Some(500));
    assert!(r.to_tag().is_some());
    assert_eq!(h.p.counters().failovers, 2);
}

#[test]
fn all_timed_out_gives_408() {
    let mut h = H::new(three());
    h.request(OPTIONS, udp_in());
    let o = h.advance(Duration::from_secs(32 * 3 + 1));
    assert_eq!(o.codes(), vec![408]);
    let targets: std::collections::BTreeSet<_> = o.sends.iter().map(|(t, ..)| t.addr).collect();
    assert_eq!(targets.len(), 3, "each target tried");
}

#[test]
fn a_404_ends_the_search() {
    let mut h = H::new(three());
    let o = h.request(OPTIONS, udp_in());
    let first = o.only_send().2.clone();
    let o = h.response(reply(&first, 404, Some("n"), ""));
    assert_eq!(o.codes(), vec![404]);
    assert!(o.sends.is_empty());
}

#[test]
fn resolution_results_are_tried_in_order() {
    // A host-name target: the core asks for RFC 3263 and waits.
    let mut h = H::new(config(vec![rule(
        "example.net",
        vec![RouteTarget::new(
            TransportKind::Tcp,
            "core.example.net",
            None,
        )],
    )]));
    let o = h.request(OPTIONS, udp_in());
    assert!(o.sends.is_empty());
    let (id, target) = &o.resolves[0];
    assert_eq!(
        target.host,
        crate::wire::Host::Name("core.example.net".into())
    );
    assert_eq!(target.transport, Some(TransportKind::Tcp));
    let a = Target::new(TransportKind::Tcp, addr("10.0.0.40:5060"));
    let b = Target::new(TransportKind::Tcp, addr("10.0.0.41:5060"));
    let o = h.resolved(*id, vec![a.clone(), b.clone()]);
    assert_eq!(o.only_send().0, &a);
    let client = o.sends[0].3.unwrap();
    h.p.send_failed(client, h.now);
    let o = h.out();
    assert_eq!(o.only_send().0, &b);
    // A failed resolution (no targets): 480.
    let mut h = H::new(config(vec![rule(
        "example.net",
        vec![RouteTarget::new(
            TransportKind::Tcp,
            "core.example.net",
            None,
        )],
    )]));
    let o = h.request(OPTIONS, udp_in());
    let id = o.resolves[0].0;
    let o = h.resolved(id, vec![]);
    assert_eq!(o.codes(), vec![480]);
}
