//! §16.7 response processing: foreign and stray responses dropped, our Via removed, the
//! best response, 6xx; §16.10 CANCEL.

use super::context_probe::best;
use super::*;

fn two_targets() -> ProxyConfig {
    config(vec![rule(
        "example.net",
        vec![
            RouteTarget::new(TransportKind::Tcp, "10.0.0.30", Some(5060)),
            RouteTarget::new(TransportKind::Tcp, "10.0.0.31", Some(5060)),
            RouteTarget::new(TransportKind::Tcp, "10.0.0.32", Some(5060)),
        ],
    )])
}

#[test]
fn responses_not_for_us_are_dropped_and_counted() {
    let mut h = H::new(two_targets());
    let o = h.request(OPTIONS, udp_in());
    let fwd = o.only_send().2.clone();
    // Top Via someone else's (§18.1.2).
    let foreign = reply(&fwd, 200, Some("t"), "");
    let foreign = msg(&s(&foreign).replacen(
        "Via: SIP/2.0/TCP 10.0.0.1:5060",
        "Via: SIP/2.0/TCP 203.0.113.5:5060",
        1,
    ));
    assert!(h.response(foreign).responses.is_empty());
    assert_eq!(h.p.counters().dropped_not_our_via, 1);
    // Our Via, no transaction: stray (RFC 6026).
    let stray = s(&reply(&fwd, 200, Some("t"), ""));
    let stray = stray.replacen(
        &top_branch(&fwd),
        "z9hG4bKswf00000000000000010000000000000001",
        1,
    );
    assert!(h.response(msg(&stray)).responses.is_empty());
    assert_eq!(h.p.counters().dropped_stray, 1);
    // The real one goes up without our Via.
    let o = h.response(reply(&fwd, 200, Some("t"), ""));
    assert_eq!(vias(o.only_response()), vias(&msg(OPTIONS)));
}

#[test]
fn a_6xx_stops_the_search_and_goes_up() {
    let mut h = H::new(two_targets());
    let o = h.request(INVITE, udp_in());
    let first = o.only_send().2.clone();
    let o = h.response(reply(&first, 603, Some("d"), ""));
    assert_eq!(o.codes(), vec![603]);
    // Only the ACK for the 603 goes down; no new branch.
    assert_eq!(o.only_send().2.method(), Some("ACK"));
}

#[test]
fn timeout_then_503s_gives_408_the_lowest_class() {
    let mut h = H::new(two_targets());
    h.request(OPTIONS, udp_in());
    let o = h.advance(Duration::from_secs(33));
    let second = o.only_send().2.clone();
    let o = h.response(reply(&second, 503, Some("a"), ""));
    let third = o.only_send().2.clone();
    let o = h.response(reply(&third, 503, Some("b"), ""));
    assert_eq!(o.codes(), vec![408]);
}

#[test]
fn best_response_rules() {
    // 6xx over everything, then the lowest class, a received response before one we
    // stand in for, 503 -> 500, nothing -> 480.
    assert_eq!(best(&[Some(486), Some(603), Some(302)]), 603);
    assert_eq!(best(&[Some(486), None, Some(302)]), 302);
    assert_eq!(best(&[None, Some(404)]), 404);
    assert_eq!(best(&[None, None]), 408);
    assert_eq!(best(&[Some(503)]), 500);
    assert_eq!(best(&[Some(503), Some(500)]), 500);
    assert_eq!(best(&[]), 480);
}

fn cancel_of(invite: &str) -> String {
    invite
        .replace("INVITE sip:", "CANCEL sip:")
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL")
        .replace("Contact: <sip:alice@192.0.2.10:5060>\n", "")
}

#[test]
fn cancel_after_a_provisional() {
    let mut h = H::new(two_targets());
    let o = h.request(INVITE, udp_in());
    let inv = o.only_send().2.clone();
    let target = o.sends[0].0.clone();
    let o = h.response(reply(&inv, 180, Some("b"), ""));
    assert_eq!(o.codes(), vec![180]);
    let o = h.request(&cancel_of(INVITE), udp_in());
    // 200 to the CANCEL upstream, CANCEL downstream on the INVITE's branch and target.
    assert_eq!(o.codes(), vec![200]);
    assert_eq!(o.responses[0].1.cseq().method, "CANCEL");
    let (t, _, c) = o.only_send();
    assert_eq!(t, &target);
    assert_eq!(c.method(), Some("CANCEL"));
    assert_eq!(top_branch(c), top_branch(&inv));
    assert_eq!(c.via_count(), 1);
    let c = c.clone();
    // The UAS answers 200 to the CANCEL (absorbed) and 487 to the INVITE (forwarded).
    assert!(h
        .response(reply(&c, 200, Some("b"), ""))
        .responses
        .is_empty());
    let o = h.response(reply(&inv, 487, Some("b"), ""));
    assert_eq!(o.codes(), vec![487]);
    assert_eq!(o.sends[0].2.method(), Some("ACK"));
    // Nothing else is tried.
    assert_eq!(h.p.counters().branches, 1);
}

#[test]
fn cancel_before_a_provisional_waits_for_one() {
    let mut h = H::new(two_targets());
    let o = h.request(INVITE, udp_in());
    let inv = o.only_send().2.clone();
    let o = h.request(&cancel_of(INVITE), udp_in());
    assert_eq!(o.codes(), vec![200]);
    assert!(o.sends.is_empty(), "§9.1: no CANCEL before a provisional");
    let o = h.response(reply(&inv, 180, Some("b"), ""));
    assert_eq!(o.only_send().2.method(), Some("CANCEL"));
}

#[test]
fn cancel_while_resolving_gets_487_from_us() {
    let mut h = H::new(config(vec![]));
    let inv = INVITE.replace("example.net", "far.example");
    let o = h.request(&inv, udp_in());
    let id = o.resolves[0].0;
    let o = h.request(&cancel_of(&inv), udp_in());
    let mut codes = o.codes();
    codes.sort();
    assert_eq!(codes, vec![200, 487]);
    // A late resolution is ignored.
    let o = h.resolved(
        id,
        vec![Target::new(TransportKind::Udp, addr("10.0.0.9:5060"))],
    );
    assert!(o.sends.is_empty());
}

#[test]
fn cancel_without_context_is_forwarded_statelessly() {
    let mut h = H::new(two_targets());
    let o = h.request(&cancel_of(INVITE), udp_in());
    let (t, _, c) = o.only_send();
    assert_eq!(t.addr, addr("10.0.0.30:5060"));
    assert_eq!(c.method(), Some("CANCEL"));
    assert!(o.sends[0].3.is_none());
}

#[test]
fn timeouts_of_every_branch_and_no_target_give_408_and_480() {
    let mut h = H::new(config(vec![rule(
        "example.net",
        vec![RouteTarget::new(
            TransportKind::Tcp,
            "10.0.0.30",
            Some(5060),
        )],
    )]));
    h.request(OPTIONS, udp_in());
    assert_eq!(h.advance(Duration::from_secs(33)).codes(), vec![408]);
    // No listener for the target's transport: no target at all.
    let mut h = H::new(config(vec![rule(
        "example.net",
        vec![RouteTarget::new(
            TransportKind::Sctp,
            "10.0.0.30",
            Some(5060),
        )],
    )]));
    assert_eq!(h.request(OPTIONS, udp_in()).codes(), vec![480]);
}
