//! §16.3 validation, §16.4 route preprocessing, §16.6 Record-Route and Via.

use super::*;

fn to_bob() -> ProxyConfig {
    config(vec![rule(
        "example.net",
        vec![RouteTarget::new(
            TransportKind::Udp,
            "10.0.0.20",
            Some(5060),
        )],
    )])
}

fn with(base: &str, from: &str, to: &str) -> String {
    assert!(base.contains(from), "{from}");
    base.replace(from, to)
}

#[test]
fn max_forwards_zero_gets_483_and_others_are_decremented_or_set_to_70() {
    let mut h = H::new(to_bob());
    let o = h.request(
        &with(OPTIONS, "Max-Forwards: 70", "Max-Forwards: 0"),
        udp_in(),
    );
    assert_eq!(o.codes(), vec![483]);
    assert!(o.sends.is_empty());
    let o = h.request(&with(OPTIONS, "z9hG4bKopt1", "z9hG4bKopt2"), udp_in());
    assert_eq!(o.only_send().2.max_forwards(), Some(69));
    let o = h.request(
        &with(
            &with(OPTIONS, "Max-Forwards: 70\n", ""),
            "z9hG4bKopt1",
            "z9hG4bKopt3",
        ),
        udp_in(),
    );
    assert_eq!(o.only_send().2.max_forwards(), Some(70));
}

#[test]
fn retransmissions_are_absorbed() {
    let mut h = H::new(to_bob());
    let o = h.request(INVITE, udp_in());
    assert_eq!(o.sends.len(), 1);
    let o = h.request(INVITE, udp_in());
    assert!(o.sends.is_empty(), "the server transaction absorbs it");
    assert_eq!(o.codes(), vec![100], "and repeats the last provisional");
}

#[test]
fn a_loop_gets_482_a_spiral_does_not() {
    // Route example.net back to ourselves on another listener: the forwarded request
    // comes back unchanged in every field routing reads.
    let mut h = H::new(to_bob());
    let o = h.request(OPTIONS, udp_in());
    let fwd = o.only_send().2.clone();
    let o = h.request(&s(&fwd), tcp_in());
    assert_eq!(o.codes(), vec![482]);
    // A spiral: it comes back with another Request-URI (retargeted): forwarded.
    let spiral = s(&fwd).replace(
        "OPTIONS sip:bob@example.net",
        "OPTIONS sip:bob2@example.net",
    );
    let o = h.request(&spiral, tcp_in());
    assert!(o.codes().is_empty(), "{:?}", o.codes());
    assert_eq!(o.sends.len(), 1);
    assert_eq!(vias(&o.sends[0].2).len(), 3);
}

#[test]
fn proxy_require_is_ignored_unless_configured() {
    let req = with(
        OPTIONS,
        "Max-Forwards: 70\n",
        "Max-Forwards: 70\nProxy-Require: foo, bar\n",
    );
    let mut h = H::new(to_bob());
    assert_eq!(h.request(&req, udp_in()).sends.len(), 1);
    let mut cfg = to_bob();
    cfg.proxy_require = ProxyRequire::Enforce(vec!["bar".into()]);
    let mut h = H::new(cfg);
    let o = h.request(&req, udp_in());
    let r = o.only_response();
    assert_eq!(r.status_code(), Some(420));
    assert_eq!(r.header("Unsupported"), Some(&b"foo"[..]));
}

#[test]
fn non_sip_request_uri_gets_416() {
    let mut h = H::new(to_bob());
    let o = h.request(
        &with(
            OPTIONS,
            "OPTIONS sip:bob@example.net",
            "OPTIONS tel:+331234",
        ),
        udp_in(),
    );
    assert_eq!(o.codes(), vec![416]);
}

#[test]
fn our_route_entry_is_removed_and_the_next_one_is_the_hop() {
    let mut h = H::new(to_bob());
    let req = with(
        OPTIONS,
        "Max-Forwards: 70\n",
        "Max-Forwards: 70\nRoute: <sip:192.0.2.1:5060;lr>, <sip:edge.example.com;lr>\n",
    );
    let o = h.request(&req, udp_in());
    assert!(o.sends.is_empty());
    let (_, target) = &o.resolves[0];
    assert_eq!(
        target.host,
        crate::wire::Host::Name("edge.example.com".into())
    );
    // Numeric next Route: sent at once, Route kept (it is the next hop's to remove).
    let req = with(
        &with(OPTIONS, "z9hG4bKopt1", "z9hG4bKopt5"),
        "Max-Forwards: 70\n",
        "Max-Forwards: 70\nRoute: <sip:192.0.2.1:5060;lr>\nRoute: <sip:10.0.0.50;transport=tcp;lr>\n",
    );
    let o = h.request(&req, udp_in());
    let (t, l, m) = o.only_send();
    assert_eq!(t, &Target::new(TransportKind::Tcp, addr("10.0.0.50:5060")));
    assert_eq!(l, TCP_C);
    assert_eq!(routes(m), vec!["sip:10.0.0.50;transport=tcp;lr"]);
    assert_eq!(m.request_uri(), Some("sip:bob@example.net"));
}

#[test]
fn strict_route_fix_up() {
    // A strict router put our Record-Route URI in the Request-URI and the real one last
    // in Route (§16.4).
    let mut h = H::new(to_bob());
    let req = with(
        &with(
            OPTIONS,
            "OPTIONS sip:bob@example.net",
            "OPTIONS sip:192.0.2.1:5060;lr",
        ),
        "Max-Forwards: 70\n",
        "Max-Forwards: 70\nRoute: <sip:10.0.0.60;transport=tcp;lr>, <sip:carol@10.0.0.61:5070>\n",
    );
    let o = h.request(&req, udp_in());
    let (t, _, m) = o.only_send();
    assert_eq!(m.request_uri(), Some("sip:carol@10.0.0.61:5070"));
    assert_eq!(routes(m), vec!["sip:10.0.0.60;transport=tcp;lr"]);
    assert_eq!(t, &Target::new(TransportKind::Tcp, addr("10.0.0.60:5060")));
}

#[test]
fn options_to_us_is_answered() {
    let mut h = H::new(to_bob());
    let o = h.request(
        &with(
            OPTIONS,
            "OPTIONS sip:bob@example.net",
            "OPTIONS sip:192.0.2.1",
        ),
        udp_in(),
    );
    assert_eq!(o.codes(), vec![200]);
    assert!(o.sends.is_empty());
}

#[test]
fn options_to_us_is_answered_without_state_and_the_slow_path_keeps_its_rules() {
    let to_us = with(
        OPTIONS,
        "OPTIONS sip:bob@example.net",
        "OPTIONS sip:192.0.2.1:5060",
    );
    let mut h = H::new(to_bob());
    let o = h.request(&to_us, udp_in());
    let r = o.only_response();
    assert_eq!(r.status_code(), Some(200));
    assert!(r.to_tag().is_some(), "{}", s(r));
    assert_eq!(h.p.pending(), 0, "no context, no transaction");
    assert_eq!(h.p.deadline(), None, "no timer either");
    // A retransmission is answered again (a stateless UAS), with the same To tag.
    let again = h.request(&to_us, udp_in());
    assert_eq!(again.only_response().to_tag(), r.to_tag());
    assert_eq!(h.p.counters().responses_generated, 2);
    // Max-Forwards 0 still gets 483 (§16.3 step 3), through the usual path.
    let o = h.request(
        &with(&to_us, "Max-Forwards: 70", "Max-Forwards: 0"),
        udp_in(),
    );
    assert_eq!(o.codes(), vec![483]);
    // A route rule claiming our own address wins over answering.
    let mut cfg = to_bob();
    cfg.routes.push(RouteRule {
        matches: RouteMatch {
            host: Some("192.0.2.1".into()),
            ..RouteMatch::default()
        },
        targets: vec![RouteTarget::new(
            TransportKind::Udp,
            "10.0.0.30",
            Some(5060),
        )],
        best_effort_tls: None,
    });
    let mut h = H::new(cfg);
    let o = h.request(&to_us, udp_in());
    assert_eq!(
        o.only_send().0,
        &Target::new(TransportKind::Udp, addr("10.0.0.30:5060"))
    );
    // While draining, OPTIONS to us get the 503 that tells a peer to go elsewhere.
    let mut h = H::new(to_bob());
    h.p.stop_accepting();
    assert_eq!(h.request(&to_us, udp_in()).codes(), vec![503]);
}

#[test]
fn one_record_route_when_transport_and_network_are_the_same() {
    // UDP access in, UDP access out (a target reached through udp-a).
    let mut cfg = config(vec![rule(
        "example.net",
        vec![RouteTarget {
            listener: Some(UDP_A.into()),
            ..RouteTarget::new(TransportKind::Udp, "192.0.2.20", Some(5060))
        }],
    )]);
    cfg.local_names.push("proxy.example.org".into());
    let mut h = H::new(cfg);
    let o = h.request(INVITE, udp_in());
    let (_, l, m) = o.only_send();
    assert_eq!(l, UDP_A);
    assert_eq!(rr(m), vec!["sip:192.0.2.1:5060;lr"]);
    // Same transport, other network: two entries.
    let mut h = H::new(config(vec![rule(
        "example.net",
        vec![RouteTarget {
            listener: Some(UDP_C.into()),
            ..RouteTarget::new(TransportKind::Udp, "10.0.0.20", Some(5060))
        }],
    )]));
    let o = h.request(INVITE, udp_in());
    let (_, l, m) = o.only_send();
    assert_eq!(l, UDP_C);
    assert_eq!(rr(m), vec!["sip:10.0.0.1:5060;lr", "sip:192.0.2.1:5060;lr"]);
    // Non-dialog requests are not record-routed.
    let o = h.request(OPTIONS, udp_in());
    assert!(rr(o.only_send().2).is_empty());
}

#[test]
fn tls_hop_gets_alias_and_a_sips_record_route_without_transport_tls() {
    let mut h = H::new(config(vec![rule(
        "example.net",
        vec![RouteTarget {
            listener: Some(TLS_C.into()),
            ..RouteTarget::new(TransportKind::Tls, "10.0.0.20", Some(5061))
        }],
    )]));
    let o = h.request(INVITE, udp_in());
    let (t, l, m) = o.only_send();
    assert_eq!(t.transport, TransportKind::Tls);
    assert_eq!(l, TLS_C);
    let v = vias(m);
    assert!(
        v[0].starts_with("SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bKsw"),
        "{}",
        v[0]
    );
    assert!(v[0].ends_with(";rport;alias"), "{}", v[0]);
    assert_eq!(
        rr(m),
        vec!["sips:10.0.0.1:5061;lr", "sip:192.0.2.1:5060;lr"]
    );
    assert!(!s(m).to_ascii_lowercase().contains("transport=tls"));
    // RFC 5630 §5.3: the sip: Request-URI stays sip: over TLS.
    assert_eq!(m.request_uri(), Some("sip:bob@example.net"));
}

#[test]
fn stateless_route_gives_the_same_branch_to_the_same_request() {
    let mut h = H::new(config(vec![rule(
        "example.net",
        vec![RouteTarget::new(TransportKind::Tcp, "10.0.0.20", Some(5060)).stateless()],
    )]));
    let o1 = h.request(INVITE, udp_in());
    assert!(o1.codes().is_empty(), "stateless: no 100 Trying");
    let (_, _, m1) = o1.only_send();
    assert!(o1.sends[0].3.is_none());
    let o2 = h.request(INVITE, udp_in());
    let (_, _, m2) = o2.only_send();
    assert_eq!(top_branch(m1), top_branch(m2));
    assert!(top_branch(m1).starts_with("z9hG4bKswl"));
    assert_eq!(h.p.pending(), 0, "no state kept");
    // The CANCEL of that INVITE (same top Via) gets the same branch too.
    let cancel = with(
        &with(INVITE, "INVITE sip:", "CANCEL sip:"),
        "CSeq: 1 INVITE",
        "CSeq: 1 CANCEL",
    );
    let cancel = with(&cancel, "Contact: <sip:alice@192.0.2.10:5060>\n", "");
    let o3 = h.request(&cancel, udp_in());
    assert_eq!(top_branch(o3.only_send().2), top_branch(m1));
    // Another request gets another branch.
    let o4 = h.request(&with(INVITE, "z9hG4bKuac1", "z9hG4bKuac9"), udp_in());
    assert_ne!(top_branch(o4.only_send().2), top_branch(m1));
    // Responses to it go back by Via.
    let m1 = m1.clone();
    let o = h.response(reply(&m1, 180, Some("t"), ""));
    assert_eq!(o.responses[0].0, None);
    assert_eq!(vias(&o.responses[0].1).len(), 1);
}

#[test]
fn configured_max_forwards_is_written_when_absent() {
    let mut cfg = to_bob();
    cfg.max_forwards = 20;
    let mut h = H::new(cfg);
    let o = h.request(&with(OPTIONS, "Max-Forwards: 70\n", ""), udp_in());
    assert_eq!(o.only_send().2.max_forwards(), Some(20));
    let mut zero = to_bob();
    zero.max_forwards = 0;
    assert!(Proxy::<u32>::new(zero, timers(), 1).is_err());
}

#[test]
fn draining_refuses_new_requests_and_finishes_those_in_flight() {
    let mut h = H::new(to_bob());
    let o = h.request(OPTIONS, udp_in());
    let fwd = o.only_send().2.clone();
    assert_eq!(h.p.in_flight(), 1);
    h.p.stop_accepting();
    let o = h.request(&with(OPTIONS, "z9hG4bKopt1", "z9hG4bKopt9"), udp_in());
    let r = o.only_response();
    assert_eq!(r.status_code(), Some(503));
    assert!(s(r).contains("Retry-After: 5"), "{}", s(r));
    assert!(o.sends.is_empty());
    assert_eq!(h.p.counters().refused_draining, 1);
    // The request in flight still completes.
    let o = h.response(reply(&fwd, 200, Some("b1"), ""));
    assert_eq!(o.codes(), vec![200]);
    assert_eq!(h.p.in_flight(), 0);
}

#[test]
fn set_config_changes_routes_for_new_requests_only() {
    let mut h = H::new(to_bob());
    let mut other = to_bob();
    other.routes[0].targets[0].host = "10.0.0.30".into();
    h.p.set_config(other).unwrap();
    let o = h.request(OPTIONS, udp_in());
    assert_eq!(o.only_send().0.addr, addr("10.0.0.30:5060"));
    let mut bad = to_bob();
    bad.routes[0].targets.clear();
    assert!(h.p.set_config(bad).is_err());
    assert_eq!(h.p.config().routes[0].targets[0].host, "10.0.0.30");
}

#[test]
fn a_user_at_our_listener_address_is_for_us() {
    let mut h = H::new(to_bob());
    let o = h.request(
        &with(
            OPTIONS,
            "OPTIONS sip:bob@example.net",
            "OPTIONS sip:ping@192.0.2.1:5060",
        ),
        udp_in(),
    );
    assert_eq!(o.codes(), vec![200]);
    assert!(o.sends.is_empty());
}
