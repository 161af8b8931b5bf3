//! RFC 3263 resolution against a real DNS server: hickory-server on 127.0.0.1 serving in-memory
//! zones with NAPTR, SRV, A and AAAA records. Addresses in the zones are documentation addresses
//! and are never contacted; only the DNS server on loopback is.

mod support;

use sipwire::resolve::{
    DnsConfig, DnsError, DnsResolver, NameServerProtocol, PlanError, ResolveConfig,
    ResolvedTargets, Scheme, SipTarget, SrvSelection, Target, ViaTarget,
};
use sipwire::TransportKind;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use support::dns::{start_dns, TestDns, Zone};
use support::sip::sips;

const TEST_TIMEOUT: Duration = Duration::from_secs(20);

fn zones() -> Vec<Zone> {
    let net = Zone::new("example.net.")
        // RFC 5923 §10: three servers behind one SRV name.
        .srv("_sips._tcp.example.net.", 10, 20, 5061, "s1.example.net.")
        .srv("_sips._tcp.example.net.", 10, 30, 5061, "s2.example.net.")
        .srv("_sips._tcp.example.net.", 10, 50, 5061, "s3.example.net.")
        .a("s1.example.net.", "192.0.2.11")
        .a("s2.example.net.", "192.0.2.12")
        .a("s3.example.net.", "192.0.2.13")
        // Explicit-port case: SRV exists but must not be used.
        .srv(
            "_sip._udp.host.example.net.",
            0,
            0,
            9999,
            "decoy.example.net.",
        )
        .a("decoy.example.net.", "192.0.2.99")
        .a("host.example.net.", "192.0.2.20")
        .aaaa("host.example.net.", "2001:db8::20");
    let com = Zone::new("example.com.")
        // NAPTR SIPS+D2T chain (the LAB-NOTES dnsmasq example, in-process).
        .naptr(
            "example.com.",
            10,
            50,
            "SIPS+D2T",
            "_sips._tcp.example.com.",
        )
        .naptr("example.com.", 20, 50, "SIP+D2U", "_sip._udp.example.com.")
        .srv("_sips._tcp.example.com.", 10, 60, 5061, "p2.example.com.")
        .srv("_sip._udp.example.com.", 10, 60, 5060, "udp.example.com.")
        .a("p2.example.com.", "192.0.2.128")
        .aaaa("p2.example.com.", "2001:db8::128")
        .a("udp.example.com.", "192.0.2.129")
        // Via sent-by for §5.
        .srv("_sips._tcp.p1.example.com.", 0, 0, 5061, "p1.example.com.")
        .a("p1.example.com.", "192.0.2.1");
    let org = Zone::new("example.org.")
        // No NAPTR: SRV for TCP only.
        .srv(
            "_sip._tcp.nonaptr.example.org.",
            0,
            0,
            5070,
            "tcp.example.org.",
        )
        .a("tcp.example.org.", "192.0.2.30")
        // No NAPTR, no SRV: A only.
        .a("plain.example.org.", "192.0.2.31");
    vec![net, com, org]
}

fn resolver(dns: &TestDns, protocol: NameServerProtocol, resolve: ResolveConfig) -> DnsResolver {
    let mut cfg = DnsConfig::new(dns.addr);
    cfg.protocol = protocol;
    cfg.timeout = Duration::from_secs(2);
    cfg.attempts = 2;
    cfg.resolve = resolve;
    DnsResolver::new(cfg).expect("build resolver")
}

fn tg(t: TransportKind, addr: &str) -> Target {
    Target::new(t, addr.parse().expect("socket addr"))
}

async fn resolve(r: &DnsResolver, target: SipTarget) -> Result<ResolvedTargets, DnsError> {
    tokio::time::timeout(TEST_TIMEOUT, r.resolve(&target))
        .await
        .expect("resolution finished in time")
}

#[tokio::test]
async fn rfc5923_section10_three_servers_behind_one_srv() {
    let dns = start_dns(zones()).await;
    let r = resolver(&dns, NameServerProtocol::Udp, ResolveConfig::default());
    let target = sips("example.net");
    let mut first: HashMap<SocketAddr, u32> = HashMap::new();
    let rounds = 200;
    for _ in 0..rounds {
        let res = resolve(&r, target.clone()).await.expect("resolved");
        assert_eq!(res.aus, "example.net");
        let mut addrs: Vec<SocketAddr> = res.targets.iter().map(|t| t.addr).collect();
        assert!(res
            .targets
            .iter()
            .all(|t| t.transport == TransportKind::Tls));
        *first.entry(addrs[0]).or_default() += 1;
        addrs.sort();
        assert_eq!(
            addrs,
            vec![
                "192.0.2.11:5061".parse::<SocketAddr>().expect("addr"),
                "192.0.2.12:5061".parse().expect("addr"),
                "192.0.2.13:5061".parse().expect("addr"),
            ]
        );
    }
    // Weights 20/30/50 over 0..=100: first picks near 21%, 30%, 50%; all servers get traffic.
    let share = |ip: &str| {
        f64::from(*first.get(&ip.parse().expect("addr")).unwrap_or(&0)) / f64::from(rounds)
    };
    assert!(share("192.0.2.11:5061") > 0.08, "{first:?}");
    assert!(share("192.0.2.12:5061") > 0.15, "{first:?}");
    assert!(share("192.0.2.13:5061") > 0.35, "{first:?}");

    // A stateless proxy (§4.4) always gets the same order.
    let det = resolver(
        &dns,
        NameServerProtocol::Udp,
        ResolveConfig {
            srv_selection: SrvSelection::Deterministic,
            ..ResolveConfig::default()
        },
    );
    let a = resolve(&det, target.clone()).await.expect("resolved");
    for _ in 0..10 {
        assert_eq!(resolve(&det, target.clone()).await.expect("resolved"), a);
    }
    assert_eq!(a.targets[0], tg(TransportKind::Tls, "192.0.2.13:5061"));
}

#[tokio::test]
async fn naptr_sips_d2t_chain() {
    let dns = start_dns(zones()).await;
    for protocol in [NameServerProtocol::Udp, NameServerProtocol::Tcp] {
        let r = resolver(&dns, protocol, ResolveConfig::default());
        let res = resolve(&r, sips("example.com")).await.expect("resolved");
        assert_eq!(res.aus, "example.com");
        assert_eq!(
            res.targets,
            vec![
                tg(TransportKind::Tls, "192.0.2.128:5061"),
                tg(TransportKind::Tls, "[2001:db8::128]:5061"),
            ],
            "{protocol:?}"
        );
        // A sip: URI keeps the SIP+D2U record after the SIPS one.
        let res = resolve(
            &r,
            SipTarget::new(Scheme::Sip, "example.com", None, None).expect("target"),
        )
        .await
        .expect("resolved");
        assert_eq!(
            res.targets,
            vec![
                tg(TransportKind::Tls, "192.0.2.128:5061"),
                tg(TransportKind::Tls, "[2001:db8::128]:5061"),
                tg(TransportKind::Udp, "192.0.2.129:5060"),
            ]
        );
    }
}

#[tokio::test]
async fn no_naptr_falls_back_to_srv_then_addresses() {
    let dns = start_dns(zones()).await;
    let r = resolver(&dns, NameServerProtocol::Udp, ResolveConfig::default());
    let res = resolve(
        &r,
        SipTarget::new(Scheme::Sip, "nonaptr.example.org", None, None).expect("target"),
    )
    .await
    .expect("resolved");
    assert_eq!(res.targets, vec![tg(TransportKind::Tcp, "192.0.2.30:5070")]);

    let res = resolve(
        &r,
        SipTarget::new(Scheme::Sip, "plain.example.org", None, None).expect("target"),
    )
    .await
    .expect("resolved");
    assert_eq!(res.targets, vec![tg(TransportKind::Udp, "192.0.2.31:5060")]);
    let res = resolve(&r, sips("plain.example.org"))
        .await
        .expect("resolved");
    assert_eq!(res.targets, vec![tg(TransportKind::Tls, "192.0.2.31:5061")]);
}

#[tokio::test]
async fn explicit_port_skips_naptr_and_srv() {
    let dns = start_dns(zones()).await;
    let r = resolver(&dns, NameServerProtocol::Udp, ResolveConfig::default());
    let res = resolve(
        &r,
        SipTarget::new(Scheme::Sip, "host.example.net", Some(5080), None).expect("target"),
    )
    .await
    .expect("resolved");
    assert_eq!(
        res.targets,
        vec![
            tg(TransportKind::Udp, "192.0.2.20:5080"),
            tg(TransportKind::Udp, "[2001:db8::20]:5080"),
        ]
    );
    // Without the port, the SRV record is used instead.
    let res = resolve(
        &r,
        SipTarget::new(Scheme::Sip, "host.example.net", None, None).expect("target"),
    )
    .await
    .expect("resolved");
    assert_eq!(res.targets, vec![tg(TransportKind::Udp, "192.0.2.99:9999")]);
}

#[tokio::test]
async fn response_location_from_via() {
    let dns = start_dns(zones()).await;
    let r = resolver(&dns, NameServerProtocol::Udp, ResolveConfig::default());
    let via = ViaTarget::new(TransportKind::Tls, "p1.example.com", None, None, None).expect("via");
    let res = tokio::time::timeout(TEST_TIMEOUT, r.resolve_response(&via))
        .await
        .expect("in time")
        .expect("resolved");
    assert_eq!(res.targets, vec![tg(TransportKind::Tls, "192.0.2.1:5061")]);
}

#[tokio::test]
async fn unknown_domain_is_no_targets() {
    let dns = start_dns(zones()).await;
    let r = resolver(&dns, NameServerProtocol::Udp, ResolveConfig::default());
    let err = resolve(
        &r,
        SipTarget::new(Scheme::Sip, "missing.example.org", None, None).expect("target"),
    )
    .await
    .expect_err("nothing there");
    assert!(
        matches!(err, DnsError::Plan(PlanError::NoTargets(ref d)) if d == "missing.example.org"),
        "{err:?}"
    );
}

#[tokio::test]
async fn dead_name_server_is_a_typed_query_error() {
    // A loopback port with nothing behind it: bind, learn the port, close.
    let addr = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.local_addr().expect("addr")
    };
    let mut cfg = DnsConfig::new(addr);
    cfg.timeout = Duration::from_millis(300);
    cfg.attempts = 1;
    let r = DnsResolver::new(cfg).expect("build");
    let err = resolve(&r, sips("example.net"))
        .await
        .expect_err("no server");
    assert!(matches!(err, DnsError::Query { .. }), "{err:?}");
}

#[tokio::test]
async fn answers_are_served_from_the_cache_within_their_ttl() {
    let dns = start_dns(zones()).await;
    let mut cfg = DnsConfig::new(dns.addr);
    cfg.timeout = Duration::from_millis(500);
    cfg.attempts = 1;
    let r = DnsResolver::new(cfg).expect("build resolver");
    let target = sips("example.com");
    let first = resolve(&r, target.clone()).await.expect("resolved");
    // Stop the server: the records (TTL 300 s) and the negative answers must come from the cache.
    drop(dns);
    let again = resolve(&r, target).await.expect("resolved from cache");
    assert_eq!(first, again);
    // A name never asked before now fails: the server really is gone.
    let other = SipTarget::new(Scheme::Sip, "plain.example.org", None, None).expect("target");
    let err = resolve(&r, other).await.expect_err("server stopped");
    assert!(matches!(err, DnsError::Query { .. }), "{err:?}");
}
