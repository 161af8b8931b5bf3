//! Best-effort TLS for `sip:` requests (RFC 5630 §5.3; RFC 3263 §4.1 keeps `SIPS+D2T` for a
//! SIP URI): TLS first, the plain target on failure, the URI never turned into `sips:`.

use super::*;

fn tcp_route(best_effort: Option<bool>) -> RouteRule {
    RouteRule {
        best_effort_tls: best_effort,
        ..rule(
            "example.net",
            vec![RouteTarget::new(TransportKind::Tcp, "10.0.0.5", None)],
        )
    }
}

fn with_best_effort(mut c: ProxyConfig) -> ProxyConfig {
    c.best_effort_tls = true;
    c
}

/// Nothing in the request says TLS but the Via: the Request-URI stays `sip:`, no
/// `transport=tls` anywhere.
fn assert_sip_over(m: &Message, via_transport: &str) {
    assert_eq!(m.request_uri(), Some("sip:bob@example.net"));
    assert!(
        vias(m)[0].starts_with(&format!("SIP/2.0/{via_transport} ")),
        "{:?}",
        vias(m)
    );
    assert!(
        !s(m).to_ascii_lowercase().contains("transport=tls"),
        "{}",
        s(m)
    );
    assert!(!s(m).contains("sips:bob"), "{}", s(m));
}

#[test]
fn a_tcp_target_gets_a_tls_attempt_first_then_the_plain_one() {
    let mut h = H::new(with_best_effort(config(vec![tcp_route(None)])));
    let o = h.request(INVITE, udp_in());
    let (t, l, first) = o.only_send();
    assert_eq!(t, &Target::new(TransportKind::Tls, addr("10.0.0.5:5061")));
    assert_eq!(l, TLS_C);
    assert_sip_over(first, "TLS");
    let client = o.sends[0].3.expect("client transaction");
    // The TLS connection fails (refused, handshake): the plain target, a new branch.
    h.p.send_failed(client, h.now);
    let o = h.out();
    let (t, l, second) = o.only_send();
    assert_eq!(t, &Target::new(TransportKind::Tcp, addr("10.0.0.5:5060")));
    assert_eq!(l, TCP_C);
    assert_sip_over(second, "TCP");
    assert!(
        o.responses.is_empty(),
        "no error upstream while a target is left"
    );
    assert_eq!(h.p.counters().failovers, 1);
}

#[test]
fn resolved_tls_targets_go_first_for_a_sip_uri() {
    let mut h = H::new(with_best_effort(config(vec![])));
    h.p.handle_request(msg(INVITE), udp_in(), h.now);
    let (id, target, tls_first) = std::iter::from_fn(|| h.p.poll_output())
        .find_map(|o| match o {
            Output::Resolve {
                request,
                target,
                tls_first,
            } => Some((request, target, tls_first)),
            _ => None,
        })
        .expect("RFC 3263 on the Request-URI");
    assert!(tls_first, "the driver asks for TLS targets too");
    assert_eq!(target.scheme, crate::wire::Scheme::Sip, "never upgraded");
    // As RFC 3263 gave them: NAPTR SIP+D2T before SIPS+D2T.
    let tcp = Target::new(TransportKind::Tcp, addr("198.51.100.1:5060"));
    let tls =
        Target::new(TransportKind::Tls, addr("198.51.100.1:5061")).with_server_name("example.net");
    let o = h.resolved(id, vec![tcp.clone(), tls.clone()]);
    let (t, _, first) = o.only_send();
    assert_eq!(t, &tls);
    assert_sip_over(first, "TLS");
    let client = o.sends[0].3.unwrap();
    h.p.send_failed(client, h.now);
    let o = h.out();
    let (t, _, second) = o.only_send();
    assert_eq!(t, &tcp, "the plain target after the TLS failure");
    assert_sip_over(second, "TCP");
}

#[test]
fn a_made_up_tls_attempt_is_checked_against_the_uri_host() {
    let mut h = H::new(with_best_effort(config(vec![])));
    let id = h.request(INVITE, udp_in()).resolves[0].0;
    let tcp = Target::new(TransportKind::Tcp, addr("198.51.100.1:5060"));
    let o = h.resolved(id, vec![tcp]);
    let (t, ..) = o.only_send();
    assert_eq!(
        t,
        &Target::new(TransportKind::Tls, addr("198.51.100.1:5061")).with_server_name("example.net")
    );
}

#[test]
fn off_by_default_per_route_and_for_stateless_and_other_ports() {
    let first = |cfg: ProxyConfig| {
        let mut h = H::new(cfg);
        let o = h.request(INVITE, udp_in());
        o.sends[0].0.clone()
    };
    let tcp = Target::new(TransportKind::Tcp, addr("10.0.0.5:5060"));
    assert_eq!(first(config(vec![tcp_route(None)])), tcp, "off by default");
    assert_eq!(
        first(with_best_effort(config(vec![tcp_route(Some(false))]))),
        tcp,
        "a route turns it off"
    );
    assert_eq!(
        first(config(vec![tcp_route(Some(true))])).transport,
        TransportKind::Tls,
        "a route turns it on"
    );
    let mut stateless = tcp_route(Some(true));
    stateless.targets[0].stateless = true;
    assert_eq!(
        first(config(vec![stateless])),
        tcp,
        "stateless: sent once, no fallback, so no TLS attempt"
    );
    let mut other_port = tcp_route(Some(true));
    other_port.targets[0].port = Some(5080);
    assert_eq!(
        first(config(vec![other_port])).addr,
        addr("10.0.0.5:5080"),
        "no guess of a TLS port besides 5061 for 5060"
    );
    // No TLS listener: nothing could leave over TLS.
    let mut c = config(vec![tcp_route(Some(true))]);
    c.listeners.retain(|l| l.transport != TransportKind::Tls);
    assert_eq!(first(c), tcp);
}
