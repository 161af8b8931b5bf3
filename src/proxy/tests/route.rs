//! Next-hop selection (§16.5): top Route, else a configured route (domain, user, host,
//! listener, method; first match wins), else RFC 3263 on the Request-URI.

use super::*;

fn target(host: &str) -> RouteTarget {
    RouteTarget::new(TransportKind::Tcp, host, Some(5060))
}

fn first_hop(h: &mut H, req: &str, inbound: Inbound<u32>) -> std::net::IpAddr {
    let o = h.request(req, inbound);
    o.only_send().0.addr.ip()
}

#[test]
fn configured_routes_match_in_order() {
    let m = |f: &dyn Fn(&mut RouteMatch)| {
        let mut x = RouteMatch::default();
        f(&mut x);
        x
    };
    let rules = vec![
        RouteRule {
            matches: m(&|x| x.methods = vec!["register".into()]),
            targets: vec![target("10.0.0.71")],
            best_effort_tls: None,
        },
        RouteRule {
            matches: m(&|x| x.user = Some("+33*".into())),
            targets: vec![target("10.0.0.72")],
            best_effort_tls: None,
        },
        RouteRule {
            matches: m(&|x| x.listener = Some(TLS_A.into())),
            targets: vec![target("10.0.0.73")],
            best_effort_tls: None,
        },
        RouteRule {
            matches: m(&|x| x.host = Some("198.51.100.7:5080".into())),
            targets: vec![target("10.0.0.74")],
            best_effort_tls: None,
        },
        RouteRule {
            matches: m(&|x| x.domain = Some("*.tenant.example".into())),
            targets: vec![target("10.0.0.75")],
            best_effort_tls: None,
        },
        RouteRule {
            matches: m(&|x| x.domain = Some("example.net".into())),
            targets: vec![target("10.0.0.76")],
            best_effort_tls: None,
        },
    ];
    let mut h = H::new(config(rules));
    let mut n = 0;
    let mut req = |ruri: &str, method: &str| {
        n += 1;
        OPTIONS
            .replace("OPTIONS sip:bob@example.net", &format!("{method} {ruri}"))
            .replace("CSeq: 1 OPTIONS", &format!("CSeq: 1 {method}"))
            .replace("z9hG4bKopt1", &format!("z9hG4bKopt1x{n}"))
    };
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    assert_eq!(
        first_hop(&mut h, &req("sip:bob@example.net", "REGISTER"), udp_in()),
        ip("10.0.0.71")
    );
    assert_eq!(
        first_hop(
            &mut h,
            &req("sip:+33123@example.net;user=phone", "OPTIONS"),
            udp_in()
        ),
        ip("10.0.0.72")
    );
    assert_eq!(
        first_hop(&mut h, &req("sip:bob@example.net", "OPTIONS"), tls_in()),
        ip("10.0.0.73")
    );
    assert_eq!(
        first_hop(
            &mut h,
            &req("sip:bob@198.51.100.7:5080", "OPTIONS"),
            udp_in()
        ),
        ip("10.0.0.74")
    );
    assert_eq!(
        first_hop(
            &mut h,
            &req("sip:bob@a.tenant.example", "OPTIONS"),
            udp_in()
        ),
        ip("10.0.0.75")
    );
    assert_eq!(
        first_hop(&mut h, &req("sip:bob@EXAMPLE.net", "OPTIONS"), udp_in()),
        ip("10.0.0.76")
    );
    // No rule: the Request-URI, numeric (no DNS) or a name to resolve.
    assert_eq!(
        first_hop(&mut h, &req("sip:bob@198.51.100.7", "OPTIONS"), udp_in()),
        ip("198.51.100.7")
    );
    let o = h.request(&req("sips:bob@other.example", "OPTIONS"), udp_in());
    assert!(o.sends.is_empty());
    let (_, t) = &o.resolves[0];
    assert_eq!(t.host, crate::wire::Host::Name("other.example".into()));
    assert_eq!(t.scheme, crate::wire::Scheme::Sips);
    assert_eq!(t.transport, None);
}

#[test]
fn top_route_wins_over_configured_routes() {
    let mut h = H::new(config(vec![rule("example.net", vec![target("10.0.0.76")])]));
    let req = OPTIONS.replace(
        "Max-Forwards: 70\n",
        "Max-Forwards: 70\nRoute: <sip:10.0.0.90:5070;lr>\n",
    );
    let o = h.request(&req, udp_in());
    assert_eq!(
        o.only_send().0,
        &Target::new(TransportKind::Udp, addr("10.0.0.90:5070"))
    );
}

#[test]
fn config_check_refuses_what_cannot_run() {
    assert_eq!(
        ProxyConfig::new(vec![]).check(),
        Err(ConfigError::NoListener)
    );
    let mut c = config(vec![]);
    c.listeners.push(listeners()[0].clone());
    assert!(matches!(c.check(), Err(ConfigError::DuplicateListener(_))));
    let mut c = config(vec![RouteRule {
        matches: RouteMatch::default(),
        targets: vec![],
        best_effort_tls: None,
    }]);
    assert_eq!(c.check(), Err(ConfigError::NoTarget(0)));
    c.routes[0].targets.push(RouteTarget {
        listener: Some("nope".into()),
        ..target("10.0.0.1")
    });
    assert!(matches!(
        c.check(),
        Err(ConfigError::UnknownListener { .. })
    ));
}

/// Two UDP listeners, access (192.0.2.1) and core (10.0.0.1), bound to their addresses; a
/// route target on the core side with no listener named leaves by the core listener, the
/// one the host's routing table sends from (the driver's egress), and its Via says so.
#[test]
fn without_a_named_listener_a_request_leaves_by_the_one_facing_the_target() {
    let bound: Vec<Listener> = listeners()
        .into_iter()
        .map(|l| {
            let ip = l.host.parse().unwrap();
            l.bound_to(ip)
        })
        .collect();
    let mut cfg = ProxyConfig::new(bound);
    cfg.routes = vec![rule(
        "example.net",
        vec![RouteTarget::new(TransportKind::Udp, "10.0.0.9", Some(5070))],
    )];
    // Without the routing table: the first UDP listener (the access one).
    let mut h = H::new(cfg.clone());
    let o = h.request(OPTIONS, udp_in());
    assert_eq!(o.only_send().1, UDP_A);

    let mut h = H::new(cfg);
    h.p.set_egress(Egress::new(|ip| {
        let core: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        match ip {
            std::net::IpAddr::V4(v4) if v4.octets()[0] == 10 => Some(core),
            _ => "192.0.2.1".parse().ok(),
        }
    }));
    let o = h.request(OPTIONS, udp_in());
    let (target, listener, m) = o.only_send();
    assert_eq!((target.addr, listener), (addr("10.0.0.9:5070"), UDP_C));
    assert!(s(m).contains("Via: SIP/2.0/UDP 10.0.0.1:5060;"), "{}", s(m));
}

/// DTLS over SCTP has no standard Via token: the configured one is what our Via carries.
#[test]
fn a_dtls_sctp_hop_carries_the_configured_via_token() {
    let mut listeners = listeners();
    listeners.push(Listener::new(
        "dtls-c",
        TransportKind::DtlsSctp,
        "10.0.0.1",
        Some(5061),
    ));
    let rules = vec![rule(
        "example.net",
        vec![RouteTarget::new(
            TransportKind::DtlsSctp,
            "10.0.0.9",
            Some(5061),
        )],
    )];
    for (token, want) in [(None, "DTLS-SCTP"), (Some("SCTP-DTLS"), "SCTP-DTLS")] {
        let mut cfg = ProxyConfig::new(listeners.clone());
        cfg.routes = rules.clone();
        cfg.dtls_sctp_via_token = token.map(str::to_owned);
        let mut h = H::new(cfg);
        let o = h.request(OPTIONS, udp_in());
        let (_, listener, m) = o.only_send();
        assert_eq!(listener, "dtls-c");
        assert!(
            s(m).contains(&format!("Via: SIP/2.0/{want} 10.0.0.1:5061;")),
            "{}",
            s(m)
        );
    }
}
