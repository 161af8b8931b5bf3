//! RFC 3263 §4 and §5 branch by branch, on an in-memory zone (pure, no DNS server).

use super::*;
use crate::TransportKind;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Default)]
struct Zone {
    answers: HashMap<Query, Answer>,
}

impl Zone {
    fn naptr(mut self, name: &str, recs: &[(u16, u16, &str, &str)]) -> Zone {
        let v = recs
            .iter()
            .map(|(o, p, svc, repl)| NaptrRecord {
                order: *o,
                preference: *p,
                flags: "S".into(),
                services: (*svc).into(),
                regexp: String::new(),
                replacement: (*repl).into(),
            })
            .collect();
        self.answers
            .insert(q(name, QueryKind::Naptr), Answer::Naptr(v));
        self
    }

    fn srv(mut self, name: &str, recs: &[(u16, u16, u16, &str)]) -> Zone {
        let v = recs
            .iter()
            .map(|(p, w, port, t)| SrvRecord {
                priority: *p,
                weight: *w,
                port: *port,
                target: (*t).into(),
            })
            .collect();
        self.answers.insert(q(name, QueryKind::Srv), Answer::Srv(v));
        self
    }

    fn a(mut self, name: &str, ips: &[&str]) -> Zone {
        let (v4, v6): (Vec<IpAddr>, Vec<IpAddr>) = ips
            .iter()
            .map(|s| s.parse::<IpAddr>().unwrap())
            .partition(|ip| ip.is_ipv4());
        if !v4.is_empty() {
            self.answers
                .insert(q(name, QueryKind::A), Answer::Addrs(v4));
        }
        if !v6.is_empty() {
            self.answers
                .insert(q(name, QueryKind::Aaaa), Answer::Addrs(v6));
        }
        self
    }

    fn answer(&self, query: &Query) -> Answer {
        self.answers
            .get(query)
            .cloned()
            .unwrap_or_else(|| Answer::empty(query.kind))
    }
}

fn q(name: &str, kind: QueryKind) -> Query {
    Query {
        name: name.into(),
        kind,
    }
}

fn sip(host: &str, port: Option<u16>, transport: Option<&str>) -> SipTarget {
    SipTarget::new(Scheme::Sip, host, port, transport).unwrap()
}

fn sips(host: &str, port: Option<u16>, transport: Option<&str>) -> SipTarget {
    SipTarget::new(Scheme::Sips, host, port, transport).unwrap()
}

/// Runs a resolution; returns the result and every query asked, in order.
fn run_plan(plan: Resolution, zone: &Zone) -> (Result<ResolvedTargets, PlanError>, Vec<Query>) {
    let mut asked = Vec::new();
    let mut rng = StdRng::seed_from_u64(3263);
    let r = resolve_with(plan, &mut rng, |query| {
        asked.push(query.clone());
        zone.answer(query)
    });
    (r, asked)
}

fn run(target: &SipTarget, cfg: &ResolveConfig, zone: &Zone) -> (Vec<Target>, Vec<Query>) {
    let (r, asked) = run_plan(Resolution::new(target, cfg).unwrap(), zone);
    (r.unwrap().targets, asked)
}

fn tg(transport: TransportKind, addr: &str) -> Target {
    Target::new(transport, addr.parse::<SocketAddr>().unwrap())
}

fn cfg() -> ResolveConfig {
    ResolveConfig::default()
}

// ---- §4.1/§4.2: numeric IP ----

#[test]
fn numeric_ip_sip_uses_udp_default_port_without_dns() {
    let (t, asked) = run(&sip("192.0.2.1", None, None), &cfg(), &Zone::default());
    assert_eq!(t, vec![tg(TransportKind::Udp, "192.0.2.1:5060")]);
    assert!(asked.is_empty());
}

#[test]
fn numeric_ip_sips_uses_tls_5061() {
    let (t, asked) = run(&sips("192.0.2.1", None, None), &cfg(), &Zone::default());
    assert_eq!(t, vec![tg(TransportKind::Tls, "192.0.2.1:5061")]);
    assert!(asked.is_empty());
}

#[test]
fn numeric_ip_with_port_and_transport_param() {
    let (t, _) = run(
        &sip("192.0.2.1", Some(5080), Some("tcp")),
        &cfg(),
        &Zone::default(),
    );
    assert_eq!(t, vec![tg(TransportKind::Tcp, "192.0.2.1:5080")]);
    let (t, _) = run(
        &sips("[2001:db8::1]", None, Some("sctp")),
        &cfg(),
        &Zone::default(),
    );
    assert_eq!(t, vec![tg(TransportKind::TlsSctp, "[2001:db8::1]:5061")]);
    let (t, _) = run(
        &sip("192.0.2.1", None, Some("sctp")),
        &cfg(),
        &Zone::default(),
    );
    assert_eq!(t, vec![tg(TransportKind::Sctp, "192.0.2.1:5060")]);
}

// ---- §4.2: explicit port ----

#[test]
fn explicit_port_does_address_lookup_only() {
    let zone = Zone::default()
        .naptr("example.com", &[(1, 1, "SIP+D2T", "_sip._tcp.example.com")])
        .srv(
            "_sip._udp.example.com",
            &[(1, 1, 5099, "other.example.com")],
        )
        .a("example.com", &["192.0.2.10", "2001:db8::10"]);
    let (t, asked) = run(&sip("example.com", Some(5070), None), &cfg(), &zone);
    assert_eq!(
        t,
        vec![
            tg(TransportKind::Udp, "192.0.2.10:5070"),
            tg(TransportKind::Udp, "[2001:db8::10]:5070")
        ]
    );
    assert_eq!(
        asked,
        vec![
            q("example.com", QueryKind::A),
            q("example.com", QueryKind::Aaaa)
        ]
    );
    let (t, _) = run(&sips("example.com", Some(5071), None), &cfg(), &zone);
    assert_eq!(t[0], tg(TransportKind::Tls, "192.0.2.10:5071"));
}

// ---- §4.1: transport parameter wins ----

#[test]
fn transport_param_without_port_queries_srv_for_that_transport() {
    let zone = Zone::default()
        .naptr("example.com", &[(1, 1, "SIP+D2U", "_sip._udp.example.com")])
        .srv("_sip._tcp.example.com", &[(1, 1, 5090, "tcp.example.com")])
        .a("tcp.example.com", &["192.0.2.20"]);
    let (t, asked) = run(&sip("example.com", None, Some("tcp")), &cfg(), &zone);
    assert_eq!(t, vec![tg(TransportKind::Tcp, "192.0.2.20:5090")]);
    assert_eq!(asked[0], q("_sip._tcp.example.com", QueryKind::Srv));
    assert!(asked.iter().all(|x| x.kind != QueryKind::Naptr));
}

#[test]
fn transport_param_tls_on_sip_uri_uses_sips_srv() {
    let zone = Zone::default()
        .srv("_sips._tcp.example.com", &[(1, 1, 5061, "tls.example.com")])
        .a("tls.example.com", &["192.0.2.21"]);
    let (t, asked) = run(&sip("example.com", None, Some("tls")), &cfg(), &zone);
    assert_eq!(t, vec![tg(TransportKind::Tls, "192.0.2.21:5061")]);
    assert_eq!(asked[0], q("_sips._tcp.example.com", QueryKind::Srv));
}

#[test]
fn transport_param_without_srv_falls_back_to_address_default_port() {
    let zone = Zone::default().a("example.com", &["192.0.2.22"]);
    let (t, _) = run(&sips("example.com", None, Some("sctp")), &cfg(), &zone);
    assert_eq!(t, vec![tg(TransportKind::TlsSctp, "192.0.2.22:5061")]);
    let (t, _) = run(&sip("example.com", None, Some("sctp")), &cfg(), &zone);
    assert_eq!(t, vec![tg(TransportKind::Sctp, "192.0.2.22:5060")]);
}

#[test]
fn unsupported_transport_param_is_an_error() {
    let c = ResolveConfig {
        supported: vec![TransportKind::Udp, TransportKind::Tcp],
        ..cfg()
    };
    assert_eq!(
        Resolution::new(&sip("example.com", None, Some("sctp")), &c).err(),
        Some(PlanError::UnsupportedTransport(TransportKind::Sctp))
    );
}

#[test]
fn dtls_sctp_param_goes_straight_to_addresses() {
    let c = ResolveConfig {
        supported: vec![TransportKind::DtlsSctp],
        ..cfg()
    };
    let zone = Zone::default().a("example.com", &["192.0.2.23"]);
    let (t, asked) = run(&sips("example.com", None, Some("dtls-sctp")), &c, &zone);
    assert_eq!(t, vec![tg(TransportKind::DtlsSctp, "192.0.2.23:5061")]);
    assert!(asked
        .iter()
        .all(|x| x.kind == QueryKind::A || x.kind == QueryKind::Aaaa));
}

// ---- §4.1: NAPTR ----

#[test]
fn naptr_then_srv_then_address() {
    // RFC 3263 §4.1 example, extended with addresses.
    let zone = Zone::default()
        .naptr(
            "example.com",
            &[
                (50, 50, "SIPS+D2T", "_sips._tcp.example.com"),
                (90, 50, "SIP+D2T", "_sip._tcp.example.com"),
                (100, 50, "SIP+D2U", "_sip._udp.example.com"),
            ],
        )
        .srv(
            "_sips._tcp.example.com",
            &[(0, 0, 5061, "server1.example.com")],
        )
        .srv(
            "_sip._tcp.example.com",
            &[(0, 0, 5060, "server1.example.com")],
        )
        .srv(
            "_sip._udp.example.com",
            &[(0, 0, 5060, "server2.example.com")],
        )
        .a("server1.example.com", &["192.0.2.31"])
        .a("server2.example.com", &["192.0.2.32"]);
    let (r, asked) = run_plan(
        Resolution::new(&sip("example.com", None, None), &cfg()).unwrap(),
        &zone,
    );
    let r = r.unwrap();
    assert_eq!(r.aus, "example.com");
    assert_eq!(
        r.targets,
        vec![
            tg(TransportKind::Tls, "192.0.2.31:5061"),
            tg(TransportKind::Tcp, "192.0.2.31:5060"),
            tg(TransportKind::Udp, "192.0.2.32:5060"),
        ]
    );
    assert_eq!(asked[0], q("example.com", QueryKind::Naptr));
    // server1 is looked up once even though two SRV records point at it.
    assert_eq!(
        asked
            .iter()
            .filter(|x| **x == q("server1.example.com", QueryKind::A))
            .count(),
        1
    );
}

#[test]
fn sips_uri_discards_non_sips_naptr() {
    let zone = Zone::default()
        .naptr(
            "example.com",
            &[
                (10, 50, "SIP+D2U", "_sip._udp.example.com"),
                (20, 50, "SIPS+D2T", "_sips._tcp.example.com"),
            ],
        )
        .srv("_sip._udp.example.com", &[(0, 0, 5060, "udp.example.com")])
        .srv("_sips._tcp.example.com", &[(0, 0, 5061, "tls.example.com")])
        .a("udp.example.com", &["192.0.2.41"])
        .a("tls.example.com", &["192.0.2.42"]);
    let (t, asked) = run(&sips("example.com", None, None), &cfg(), &zone);
    assert_eq!(t, vec![tg(TransportKind::Tls, "192.0.2.42:5061")]);
    assert!(!asked.contains(&q("_sip._udp.example.com", QueryKind::Srv)));
}

#[test]
fn sips_naptr_sctp_gives_tls_sctp() {
    let zone = Zone::default()
        .naptr(
            "example.com",
            &[(10, 10, "SIPS+D2S", "_sips._sctp.example.com")],
        )
        .srv("_sips._sctp.example.com", &[(0, 0, 5061, "s.example.com")])
        .a("s.example.com", &["192.0.2.43"]);
    let (t, _) = run(&sips("example.com", None, None), &cfg(), &zone);
    assert_eq!(t, vec![tg(TransportKind::TlsSctp, "192.0.2.43:5061")]);
}

#[test]
fn naptr_unsupported_transports_discarded() {
    let c = ResolveConfig {
        supported: vec![TransportKind::Udp, TransportKind::Tcp],
        ..cfg()
    };
    let zone = Zone::default()
        .naptr(
            "example.com",
            &[
                (10, 10, "SIP+D2S", "_sip._sctp.example.com"),
                (20, 10, "SIP+D2T", "_sip._tcp.example.com"),
            ],
        )
        .srv(
            "_sip._sctp.example.com",
            &[(0, 0, 5060, "sctp.example.com")],
        )
        .srv("_sip._tcp.example.com", &[(0, 0, 5060, "tcp.example.com")])
        .a("sctp.example.com", &["192.0.2.51"])
        .a("tcp.example.com", &["192.0.2.52"]);
    let (t, asked) = run(&sip("example.com", None, None), &c, &zone);
    assert_eq!(t, vec![tg(TransportKind::Tcp, "192.0.2.52:5060")]);
    assert!(!asked.contains(&q("_sip._sctp.example.com", QueryKind::Srv)));
}

#[test]
fn naptr_without_srv_falls_back_to_domain_addresses_with_naptr_transport() {
    let zone = Zone::default()
        .naptr(
            "example.com",
            &[(10, 10, "SIPS+D2T", "_sips._tcp.example.com")],
        )
        .a("example.com", &["192.0.2.53"]);
    let (t, _) = run(&sip("example.com", None, None), &cfg(), &zone);
    assert_eq!(t, vec![tg(TransportKind::Tls, "192.0.2.53:5061")]);
}

#[test]
fn unusable_naptr_is_treated_as_no_naptr() {
    let zone = Zone::default()
        .naptr("example.com", &[(10, 10, "E2U+sip", "x.example.com")])
        .srv("_sip._tcp.example.com", &[(0, 0, 5060, "tcp.example.com")])
        .a("tcp.example.com", &["192.0.2.54"]);
    let (t, _) = run(&sip("example.com", None, None), &cfg(), &zone);
    assert_eq!(t, vec![tg(TransportKind::Tcp, "192.0.2.54:5060")]);
}

// ---- §4.1: no NAPTR -> SRV per supported transport ----

#[test]
fn no_naptr_queries_srv_per_supported_transport_in_preference_order() {
    let c = ResolveConfig {
        supported: vec![
            TransportKind::Sctp,
            TransportKind::Tcp,
            TransportKind::Udp,
            TransportKind::Tls,
            TransportKind::TlsSctp,
        ],
        ..cfg()
    };
    let zone = Zone::default()
        .srv("_sip._udp.example.com", &[(0, 0, 5060, "udp.example.com")])
        .srv(
            "_sip._sctp.example.com",
            &[(0, 0, 5060, "sctp.example.com")],
        )
        .a("udp.example.com", &["192.0.2.61"])
        .a("sctp.example.com", &["192.0.2.62"]);
    let (t, asked) = run(&sip("example.com", None, None), &c, &zone);
    let srv: Vec<&str> = asked
        .iter()
        .filter(|x| x.kind == QueryKind::Srv)
        .map(|x| x.name.as_str())
        .collect();
    assert_eq!(
        srv,
        [
            "_sip._sctp.example.com",
            "_sip._tcp.example.com",
            "_sip._udp.example.com"
        ]
    );
    assert_eq!(
        t,
        vec![
            tg(TransportKind::Sctp, "192.0.2.62:5060"),
            tg(TransportKind::Udp, "192.0.2.61:5060")
        ]
    );

    // SIPS: only the _sips services.
    let (_, asked) = run_plan(
        Resolution::new(&sips("example.com", None, None), &c).unwrap(),
        &zone,
    );
    let srv: Vec<&str> = asked
        .iter()
        .filter(|x| x.kind == QueryKind::Srv)
        .map(|x| x.name.as_str())
        .collect();
    assert_eq!(srv, ["_sips._tcp.example.com", "_sips._sctp.example.com"]);
}

#[test]
fn tls_srv_for_sip_uris_is_opt_in() {
    let c = ResolveConfig {
        supported: vec![TransportKind::Tls, TransportKind::Udp],
        tls_srv_for_sip_uris: true,
        ..cfg()
    };
    let zone = Zone::default()
        .srv("_sips._tcp.example.com", &[(0, 0, 5061, "tls.example.com")])
        .a("tls.example.com", &["192.0.2.63"]);
    let (t, _) = run(&sip("example.com", None, None), &c, &zone);
    assert_eq!(t, vec![tg(TransportKind::Tls, "192.0.2.63:5061")]);
    let strict = ResolveConfig {
        tls_srv_for_sip_uris: false,
        ..c
    };
    let (_, asked) = run_plan(
        Resolution::new(&sip("example.com", None, None), &strict).unwrap(),
        &zone,
    );
    assert!(!asked.contains(&q("_sips._tcp.example.com", QueryKind::Srv)));
}

#[test]
fn no_naptr_no_srv_uses_udp_for_sip_and_tls_for_sips() {
    let zone = Zone::default().a("example.com", &["192.0.2.71"]);
    let (t, _) = run(&sip("example.com", None, None), &cfg(), &zone);
    assert_eq!(t, vec![tg(TransportKind::Udp, "192.0.2.71:5060")]);
    let (t, _) = run(&sips("example.com", None, None), &cfg(), &zone);
    assert_eq!(t, vec![tg(TransportKind::Tls, "192.0.2.71:5061")]);
}

#[test]
fn sip_falls_back_to_tcp_when_udp_is_not_supported() {
    let c = ResolveConfig {
        supported: vec![TransportKind::Tcp, TransportKind::Tls],
        ..cfg()
    };
    let zone = Zone::default().a("example.com", &["192.0.2.72"]);
    let (t, _) = run(&sip("example.com", None, None), &c, &zone);
    assert_eq!(t, vec![tg(TransportKind::Tcp, "192.0.2.72:5060")]);
    let (t, _) = run(&sip("192.0.2.72", None, None), &c, &zone);
    assert_eq!(t, vec![tg(TransportKind::Tcp, "192.0.2.72:5060")]);
}

#[test]
fn sips_without_tls_support_finds_nothing() {
    let c = ResolveConfig {
        supported: vec![TransportKind::Udp, TransportKind::Tcp],
        ..cfg()
    };
    // Numeric or explicit port: the default transport is needed at once.
    assert_eq!(
        Resolution::new(&sips("192.0.2.1", None, None), &c).err(),
        Some(PlanError::NoSupportedTransport(Scheme::Sips))
    );
    assert_eq!(
        Resolution::new(&sips("example.com", Some(5061), None), &c).err(),
        Some(PlanError::NoSupportedTransport(Scheme::Sips))
    );
    // A name: NAPTR offers only non-SIPS services, nothing is left.
    let zone = Zone::default()
        .naptr("example.com", &[(1, 1, "SIP+D2T", "_sip._tcp.example.com")])
        .srv("_sip._tcp.example.com", &[(0, 0, 5060, "tcp.example.com")])
        .a("tcp.example.com", &["192.0.2.1"])
        .a("example.com", &["192.0.2.2"]);
    let (r, _) = run_plan(
        Resolution::new(&sips("example.com", None, None), &c).unwrap(),
        &zone,
    );
    assert_eq!(r, Err(PlanError::NoTargets("example.com".into())));
}

#[test]
fn sctp_only_element_resolves_through_srv_without_a_fallback() {
    let c = ResolveConfig {
        supported: vec![TransportKind::Sctp],
        ..cfg()
    };
    let zone = Zone::default()
        .srv(
            "_sip._sctp.example.com",
            &[(0, 0, 5060, "sctp.example.com")],
        )
        .a("sctp.example.com", &["192.0.2.3"])
        .a("example.com", &["192.0.2.4"]);
    let (t, _) = run(&sip("example.com", None, None), &c, &zone);
    assert_eq!(t, vec![tg(TransportKind::Sctp, "192.0.2.3:5060")]);
    // Without SRV there is no UDP/TCP fallback to use.
    let zone = Zone::default().a("example.com", &["192.0.2.4"]);
    let (r, _) = run_plan(
        Resolution::new(&sip("example.com", None, None), &c).unwrap(),
        &zone,
    );
    assert_eq!(r, Err(PlanError::NoTargets("example.com".into())));
}

#[test]
fn nothing_found_is_no_targets() {
    let (r, _) = run_plan(
        Resolution::new(&sip("nowhere.example.com", None, None), &cfg()).unwrap(),
        &Zone::default(),
    );
    assert_eq!(r, Err(PlanError::NoTargets("nowhere.example.com".into())));
}

// ---- SRV ordering inside the plan ----

#[test]
fn srv_priority_then_addresses_per_target() {
    let zone = Zone::default()
        .srv(
            "_sips._tcp.example.net",
            &[
                (20, 0, 5061, "backup.example.net"),
                (10, 0, 5062, "main.example.net"),
            ],
        )
        .a("main.example.net", &["192.0.2.81", "192.0.2.82"])
        .a("backup.example.net", &["192.0.2.83"]);
    let (r, _) = run_plan(
        Resolution::new(&sips("example.net", None, None), &cfg()).unwrap(),
        &zone,
    );
    let r = r.unwrap();
    assert_eq!(
        r.aus, "example.net",
        "AUS is the URI domain, not the SRV target"
    );
    assert_eq!(
        r.targets,
        vec![
            tg(TransportKind::Tls, "192.0.2.81:5062"),
            tg(TransportKind::Tls, "192.0.2.82:5062"),
            tg(TransportKind::Tls, "192.0.2.83:5061"),
        ]
    );
}

#[test]
fn deterministic_order_for_stateless_proxies() {
    let c = ResolveConfig {
        srv_selection: SrvSelection::Deterministic,
        ..cfg()
    };
    let recs = [
        (10, 10, 5061, "s3.example.net"),
        (10, 50, 5061, "s1.example.net"),
        (10, 10, 5061, "s2.example.net"),
    ];
    let mut reversed = recs;
    reversed.reverse();
    let base = Zone::default()
        .a("s1.example.net", &["192.0.2.91"])
        .a("s2.example.net", &["192.0.2.92"])
        .a("s3.example.net", &["192.0.2.93"]);
    let z1 = Zone {
        answers: base.answers.clone(),
    }
    .srv("_sips._tcp.example.net", &recs);
    let z2 = Zone {
        answers: base.answers.clone(),
    }
    .srv("_sips._tcp.example.net", &reversed);
    let target = sips("example.net", None, None);
    let mut seen = Vec::new();
    for seed in 0..20 {
        for zone in [&z1, &z2] {
            let plan = Resolution::new(&target, &c).unwrap();
            let mut rng = StdRng::seed_from_u64(seed);
            let r = resolve_with(plan, &mut rng, |x| zone.answer(x)).unwrap();
            seen.push(r.targets);
        }
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        seen[0],
        vec![
            tg(TransportKind::Tls, "192.0.2.91:5061"),
            tg(TransportKind::Tls, "192.0.2.92:5061"),
            tg(TransportKind::Tls, "192.0.2.93:5061"),
        ]
    );
}

#[test]
fn weighted_order_varies_with_the_rng() {
    let zone = Zone::default()
        .srv(
            "_sips._tcp.example.net",
            &[
                (10, 10, 5061, "s1.example.net"),
                (10, 10, 5061, "s2.example.net"),
                (10, 10, 5061, "s3.example.net"),
            ],
        )
        .a("s1.example.net", &["192.0.2.91"])
        .a("s2.example.net", &["192.0.2.92"])
        .a("s3.example.net", &["192.0.2.93"]);
    let target = sips("example.net", None, None);
    let mut firsts = std::collections::HashSet::new();
    for seed in 0..50 {
        let plan = Resolution::new(&target, &cfg()).unwrap();
        let r = resolve_with(plan, &mut StdRng::seed_from_u64(seed), |x| zone.answer(x)).unwrap();
        assert_eq!(r.targets.len(), 3);
        firsts.insert(r.targets[0].clone());
    }
    assert_eq!(firsts.len(), 3, "every server gets picked first sometimes");
}

#[test]
fn ip_family_policy() {
    let zone = Zone::default().a("example.com", &["192.0.2.1", "2001:db8::1"]);
    let target = sip("example.com", Some(5060), None);
    let mut c = cfg();
    c.ip_family = IpFamily::V6First;
    let (t, _) = run(&target, &c, &zone);
    assert_eq!(
        t,
        vec![
            tg(TransportKind::Udp, "[2001:db8::1]:5060"),
            tg(TransportKind::Udp, "192.0.2.1:5060")
        ]
    );
    c.ip_family = IpFamily::V4Only;
    let (t, asked) = run(&target, &c, &zone);
    assert_eq!(t, vec![tg(TransportKind::Udp, "192.0.2.1:5060")]);
    assert!(asked.iter().all(|x| x.kind != QueryKind::Aaaa));
    c.ip_family = IpFamily::V6Only;
    let (t, _) = run(&target, &c, &zone);
    assert_eq!(t, vec![tg(TransportKind::Udp, "[2001:db8::1]:5060")]);
}

#[test]
fn max_hosts_bounds_the_address_queries() {
    let recs: Vec<(u16, u16, u16, String)> = (0..40)
        .map(|i| (i, 0, 5060, format!("h{i}.example.com")))
        .collect();
    let refs: Vec<(u16, u16, u16, &str)> = recs
        .iter()
        .map(|(a, b, c, d)| (*a, *b, *c, d.as_str()))
        .collect();
    let zone = Zone::default().srv("_sip._udp.example.com", &refs);
    let c = ResolveConfig {
        max_hosts: 4,
        ip_family: IpFamily::V4Only,
        ..cfg()
    };
    let (_, asked) = run_plan(
        Resolution::new(&sip("example.com", None, Some("udp")), &c).unwrap(),
        &zone,
    );
    assert_eq!(asked.iter().filter(|x| x.kind == QueryKind::A).count(), 4);
}

#[test]
fn duplicate_targets_removed() {
    let zone = Zone::default()
        .srv(
            "_sip._udp.example.com",
            &[(1, 0, 5060, "a.example.com"), (2, 0, 5060, "b.example.com")],
        )
        .a("a.example.com", &["192.0.2.5"])
        .a("b.example.com", &["192.0.2.5"]);
    let (t, _) = run(&sip("example.com", None, Some("udp")), &cfg(), &zone);
    assert_eq!(t, vec![tg(TransportKind::Udp, "192.0.2.5:5060")]);
}

// ---- driving the state machine ----

#[test]
fn answers_in_any_order_and_protocol_errors() {
    let zone = Zone::default()
        .srv("_sip._udp.example.com", &[(0, 0, 5060, "udp.example.com")])
        .srv("_sip._tcp.example.com", &[(0, 0, 5060, "tcp.example.com")])
        .a("udp.example.com", &["192.0.2.1"])
        .a("tcp.example.com", &["192.0.2.2"]);
    let c = ResolveConfig {
        supported: vec![TransportKind::Udp, TransportKind::Tcp],
        ip_family: IpFamily::V4Only,
        ..cfg()
    };
    let mut plan = Resolution::new(&sip("example.com", None, None), &c).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    assert_eq!(plan.clone().finish(), Err(PlanError::NotFinished));
    // A query never asked is refused.
    let stray = q("evil.example.com", QueryKind::A);
    assert_eq!(
        plan.on_answer(&stray, Answer::Addrs(vec![]), &mut rng),
        Err(PlanError::UnexpectedAnswer(stray))
    );
    let naptr = plan.poll_query().unwrap();
    assert_eq!(naptr.kind, QueryKind::Naptr);
    assert!(
        plan.poll_query().is_none(),
        "next phase waits for the NAPTR answer"
    );
    // Wrong answer type is refused and the query stays outstanding.
    assert_eq!(
        plan.on_answer(&naptr, Answer::Srv(vec![]), &mut rng),
        Err(PlanError::AnswerKindMismatch(naptr.clone()))
    );
    plan.on_answer(&naptr, zone.answer(&naptr), &mut rng)
        .unwrap();
    // Both SRV queries are released together; answer them in reverse order.
    let mut batch = Vec::new();
    while let Some(x) = plan.poll_query() {
        batch.push(x);
    }
    assert_eq!(batch.len(), 2);
    for x in batch.iter().rev() {
        plan.on_answer(x, zone.answer(x), &mut rng).unwrap();
    }
    // Answering twice is refused.
    assert!(matches!(
        plan.on_answer(&batch[0], zone.answer(&batch[0]), &mut rng),
        Err(PlanError::UnexpectedAnswer(_))
    ));
    let mut batch = Vec::new();
    while let Some(x) = plan.poll_query() {
        batch.push(x);
    }
    assert_eq!(batch.len(), 2);
    for x in batch.iter().rev() {
        plan.on_answer(x, zone.answer(x), &mut rng).unwrap();
    }
    assert!(plan.is_done());
    // Target order follows the preference order, not the answer order.
    assert_eq!(
        plan.finish().unwrap().targets,
        vec![
            tg(TransportKind::Udp, "192.0.2.1:5060"),
            tg(TransportKind::Tcp, "192.0.2.2:5060")
        ]
    );
}

#[test]
fn failover_over_resolved_targets() {
    let zone = Zone::default()
        .srv(
            "_sips._tcp.example.net",
            &[(1, 0, 5061, "a.example.net"), (2, 0, 5061, "b.example.net")],
        )
        .a("a.example.net", &["192.0.2.1"])
        .a("b.example.net", &["192.0.2.2"]);
    let (r, _) = run_plan(
        Resolution::new(&sips("example.net", None, None), &cfg()).unwrap(),
        &zone,
    );
    let mut f = r.unwrap().failover();
    assert_eq!(f.next(), Some(tg(TransportKind::Tls, "192.0.2.1:5061")));
    assert_eq!(
        f.on_failure(FailureKind::ServiceUnavailable),
        Some(tg(TransportKind::Tls, "192.0.2.2:5061"))
    );
    assert_eq!(f.on_failure(FailureKind::Timeout), None);
}

// ---- §5: responses ----

fn via(
    t: TransportKind,
    host: &str,
    port: Option<u16>,
    received: Option<&str>,
    rport: Option<u16>,
) -> ViaTarget {
    ViaTarget::new(t, host, port, received.map(|r| r.parse().unwrap()), rport).unwrap()
}

#[test]
fn response_numeric_sent_by() {
    let v = via(TransportKind::Tls, "192.0.2.1", None, None, None);
    let (r, asked) = run_plan(
        Resolution::for_response(&v, &cfg()).unwrap(),
        &Zone::default(),
    );
    assert_eq!(
        r.unwrap().targets,
        vec![tg(TransportKind::Tls, "192.0.2.1:5061")]
    );
    assert!(asked.is_empty());
    let v = via(TransportKind::Udp, "192.0.2.1", Some(5070), None, None);
    let (r, _) = run_plan(
        Resolution::for_response(&v, &cfg()).unwrap(),
        &Zone::default(),
    );
    assert_eq!(
        r.unwrap().targets,
        vec![tg(TransportKind::Udp, "192.0.2.1:5070")]
    );
}

#[test]
fn response_received_first_then_sent_by() {
    // UDP with rport: received:rport first (RFC 3581), then the sent-by.
    let v = via(
        TransportKind::Udp,
        "192.0.2.1",
        Some(5060),
        Some("198.51.100.7"),
        Some(40000),
    );
    let (r, _) = run_plan(
        Resolution::for_response(&v, &cfg()).unwrap(),
        &Zone::default(),
    );
    assert_eq!(
        r.unwrap().targets,
        vec![
            tg(TransportKind::Udp, "198.51.100.7:40000"),
            tg(TransportKind::Udp, "192.0.2.1:5060")
        ]
    );
    // Reliable transport: received at the sent-by port (RFC 3261 §18.2.2); rport ignored.
    let v = via(
        TransportKind::Tls,
        "p1.example.com",
        None,
        Some("192.0.2.1"),
        Some(40000),
    );
    let zone = Zone::default()
        .srv(
            "_sips._tcp.p1.example.com",
            &[(0, 0, 5061, "p1.example.com")],
        )
        .a("p1.example.com", &["192.0.2.1", "192.0.2.2"]);
    let (r, _) = run_plan(Resolution::for_response(&v, &cfg()).unwrap(), &zone);
    let r = r.unwrap();
    assert_eq!(r.aus, "p1.example.com");
    assert_eq!(
        r.targets,
        vec![
            tg(TransportKind::Tls, "192.0.2.1:5061"),
            tg(TransportKind::Tls, "192.0.2.2:5061")
        ]
    );
}

#[test]
fn response_name_with_port_uses_addresses_only() {
    let v = via(TransportKind::Tcp, "p1.example.com", Some(5080), None, None);
    let zone = Zone::default()
        .srv("_sip._tcp.p1.example.com", &[(0, 0, 9999, "x.example.com")])
        .a("p1.example.com", &["192.0.2.9"]);
    let (r, asked) = run_plan(Resolution::for_response(&v, &cfg()).unwrap(), &zone);
    assert_eq!(
        r.unwrap().targets,
        vec![tg(TransportKind::Tcp, "192.0.2.9:5080")]
    );
    assert!(asked.iter().all(|x| x.kind != QueryKind::Srv));
}

#[test]
fn response_name_without_port_uses_srv_for_via_transport() {
    for (t, srv) in [
        (TransportKind::Tls, "_sips._tcp.p1.example.com"),
        (TransportKind::TlsSctp, "_sips._sctp.p1.example.com"),
        (TransportKind::Udp, "_sip._udp.p1.example.com"),
        (TransportKind::Sctp, "_sip._sctp.p1.example.com"),
    ] {
        let zone = Zone::default()
            .srv(srv, &[(0, 0, 5999, "host.example.com")])
            .a("host.example.com", &["192.0.2.8"]);
        let v = via(t, "p1.example.com", None, None, None);
        let (r, asked) = run_plan(Resolution::for_response(&v, &cfg()).unwrap(), &zone);
        assert_eq!(asked[0], q(srv, QueryKind::Srv));
        assert_eq!(r.unwrap().targets, vec![tg(t, "192.0.2.8:5999")]);
    }
    // No SRV: addresses of the sent-by at the default port.
    let zone = Zone::default().a("p1.example.com", &["192.0.2.7"]);
    let v = via(TransportKind::Tls, "p1.example.com", None, None, None);
    let (r, _) = run_plan(Resolution::for_response(&v, &cfg()).unwrap(), &zone);
    assert_eq!(
        r.unwrap().targets,
        vec![tg(TransportKind::Tls, "192.0.2.7:5061")]
    );
}

#[test]
fn response_on_unsupported_transport_is_an_error() {
    let c = ResolveConfig {
        supported: vec![TransportKind::Udp],
        ..cfg()
    };
    let v = via(TransportKind::Tls, "192.0.2.1", None, None, None);
    assert_eq!(
        Resolution::for_response(&v, &c).err(),
        Some(PlanError::UnsupportedTransport(TransportKind::Tls))
    );
}

// ---- property: any DNS content gives a well-formed, policy-respecting result ----

mod properties {
    use super::*;
    use proptest::prelude::*;

    const NAMES: [&str; 8] = [
        "example.com",
        "_sip._udp.example.com",
        "_sip._tcp.example.com",
        "_sips._tcp.example.com",
        "_sip._sctp.example.com",
        "_sips._sctp.example.com",
        "h1.example.com",
        "h2.example.com",
    ];
    const SERVICES: [&str; 7] = [
        "SIP+D2U", "SIP+D2T", "SIP+D2S", "SIPS+D2T", "SIPS+D2S", "E2U+sip", "sip+d2w",
    ];

    fn naptr() -> impl Strategy<Value = NaptrRecord> {
        (
            any::<u16>(),
            any::<u16>(),
            prop::sample::select(vec!["S", "s", "A", "U", ""]),
            prop::sample::select(SERVICES.to_vec()),
            prop::sample::select(NAMES.to_vec()),
        )
            .prop_map(|(order, preference, flags, svc, repl)| NaptrRecord {
                order,
                preference,
                flags: flags.into(),
                services: svc.into(),
                regexp: String::new(),
                replacement: repl.into(),
            })
    }

    fn srv() -> impl Strategy<Value = SrvRecord> {
        (
            0u16..4,
            any::<u16>(),
            any::<u16>(),
            prop::sample::select(vec!["h1.example.com", "h2.example.com", ".", "example.com"]),
        )
            .prop_map(|(priority, weight, port, target)| SrvRecord {
                priority,
                weight,
                port,
                target: target.into(),
            })
    }

    fn zone() -> impl Strategy<Value = Zone> {
        (
            prop::collection::vec(naptr(), 0..6),
            prop::collection::vec(prop::collection::vec(srv(), 0..4), 5),
            prop::collection::vec(any::<bool>(), 3),
        )
            .prop_map(|(naptrs, srvs, has_addr)| {
                let mut z = Zone::default();
                z.answers
                    .insert(q("example.com", QueryKind::Naptr), Answer::Naptr(naptrs));
                for (i, recs) in srvs.into_iter().enumerate() {
                    z.answers
                        .insert(q(NAMES[i + 1], QueryKind::Srv), Answer::Srv(recs));
                }
                for (i, host) in ["example.com", "h1.example.com", "h2.example.com"]
                    .iter()
                    .enumerate()
                {
                    if has_addr[i] {
                        z = z.a(host, &[&format!("192.0.2.{}", i + 1), "2001:db8::9"]);
                    }
                }
                z
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn results_respect_scheme_and_supported_transports(
            zone in zone(),
            sips_scheme in any::<bool>(),
            supported in prop::sample::subsequence(
                vec![TransportKind::Udp, TransportKind::Tcp, TransportKind::Tls, TransportKind::Sctp, TransportKind::TlsSctp],
                1..=5,
            ),
            seed in any::<u64>(),
            deterministic in any::<bool>(),
        ) {
            let scheme = if sips_scheme { Scheme::Sips } else { Scheme::Sip };
            let target = SipTarget::new(scheme, "example.com", None, None).unwrap();
            let c = ResolveConfig {
                supported: supported.clone(),
                srv_selection: if deterministic { SrvSelection::Deterministic } else { SrvSelection::Weighted },
                ..ResolveConfig::default()
            };
            let plan = Resolution::new(&target, &c);
            prop_assert!(plan.is_ok(), "a name-only target always starts");
            let Ok(plan) = plan else { return Ok(()) };
            let mut asked = 0;
            let mut rng = StdRng::seed_from_u64(seed);
            let r = resolve_with(plan, &mut rng, |x| { asked += 1; zone.answer(x) });
            prop_assert!(asked <= 1 + 5 + 2 * c.max_hosts);
            match r {
                Ok(res) => {
                    prop_assert!(!res.targets.is_empty());
                    prop_assert_eq!(res.aus.as_str(), "example.com");
                    for (i, t) in res.targets.iter().enumerate() {
                        prop_assert!(supported.contains(&t.transport), "{:?}", t);
                        if sips_scheme {
                            prop_assert!(t.transport.is_secure(), "{:?}", t);
                        }
                        prop_assert!(!res.targets[..i].contains(t), "duplicate {:?}", t);
                    }
                }
                Err(e) => prop_assert_eq!(e, PlanError::NoTargets("example.com".into())),
            }
        }
    }
}
