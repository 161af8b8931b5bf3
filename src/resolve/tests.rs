//! RFC 3263 §4 and §5 branch by branch, on an in-memory zone (pure, no DNS server).

use super::*;
use crate::TransportKind;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;
use std::net::SocketAddr;

/// DNS content: the answer to each query asked.
#[derive(Debug, Default)]
struct Zone {
    answers: HashMap<Query, Answer>,
}

/// A zone from records written as in a zone file, one a string: `owner NAPTR order
/// preference service replacement` (flags "S", no regexp), `owner SRV priority weight port
/// target`, `owner A address`, `owner AAAA address`. The records of one owner and type are
/// one answer, in the order written.
fn zone(records: &[&str]) -> Zone {
    let mut z = Zone::default();
    for r in records {
        z.add(r);
    }
    z
}

impl Zone {
    fn add(&mut self, record: &str) {
        let f: Vec<&str> = record.split_whitespace().collect();
        let n = |i: usize| f[i].parse::<u16>().unwrap();
        let kind = match f[1] {
            "NAPTR" => QueryKind::Naptr,
            "SRV" => QueryKind::Srv,
            "A" => QueryKind::A,
            "AAAA" => QueryKind::Aaaa,
            other => panic!("record type {other} in {record:?}"),
        };
        let answer = self
            .answers
            .entry(q(f[0], kind))
            .or_insert_with(|| Answer::empty(kind));
        match answer {
            Answer::Naptr(v) => v.push(NaptrRecord {
                order: n(2),
                preference: n(3),
                flags: "S".into(),
                services: f[4].into(),
                regexp: String::new(),
                replacement: f[5].into(),
            }),
            Answer::Srv(v) => v.push(SrvRecord {
                priority: n(2),
                weight: n(3),
                port: n(4),
                target: f[5].into(),
            }),
            Answer::Addrs(v) => v.push(f[2].parse().unwrap()),
        }
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
fn tg(transport: TransportKind, addr: &str) -> Target {
    Target::new(transport, addr.parse::<SocketAddr>().unwrap())
}

fn cfg() -> ResolveConfig {
    ResolveConfig::default()
}

fn supporting(transports: &[TransportKind]) -> ResolveConfig {
    ResolveConfig {
        supported: transports.to_vec(),
        ..cfg()
    }
}

fn family(ip_family: IpFamily) -> ResolveConfig {
    ResolveConfig { ip_family, ..cfg() }
}

fn via(
    t: TransportKind,
    host: &str,
    port: Option<u16>,
    received: Option<&str>,
    rport: Option<u16>,
) -> ViaTarget {
    ViaTarget::new(t, host, port, received.map(|r| r.parse().unwrap()), rport).unwrap()
}

use TransportKind::{DtlsSctp, Sctp, Tcp, Tls, TlsSctp, Udp};

/// A check on the queries a resolution asked, in order.
type AskedCheck = Box<dyn Fn(&[Query]) -> bool>;

/// What a row resolves: a URI (§4) or the Via of a response (§5).
enum Start {
    Uri(SipTarget),
    Via(ViaTarget),
}

/// One row of the RFC 3263 table: a start resolved in its entry's zone and under its entry's
/// configuration (unless it brings its own), the targets or error it must give, the AUS when
/// the row pins it, and a check on the queries asked, in order.
struct Row {
    start: Start,
    zone: Option<Zone>,
    cfg: Option<ResolveConfig>,
    want: Option<Result<Vec<Target>, PlanError>>,
    aus: Option<&'static str>,
    asked: AskedCheck,
}

/// A row resolving the URI `target` (§4).
fn uri(target: SipTarget) -> Row {
    Row {
        start: Start::Uri(target),
        zone: None,
        cfg: None,
        want: None,
        aus: None,
        asked: Box::new(|_| true),
    }
}

/// A row resolving where a response with this top Via goes (§5).
fn sent_by(via: ViaTarget) -> Row {
    Row {
        start: Start::Via(via),
        ..uri(sip("unused.invalid", None, None))
    }
}

impl Row {
    fn cfg(mut self, cfg: ResolveConfig) -> Row {
        self.cfg = Some(cfg);
        self
    }

    fn zone(mut self, zone: Zone) -> Row {
        self.zone = Some(zone);
        self
    }

    fn gives(mut self, targets: &[(TransportKind, &str)]) -> Row {
        self.want = Some(Ok(targets.iter().map(|(t, a)| tg(*t, a)).collect()));
        self
    }

    fn fails(mut self, e: PlanError) -> Row {
        self.want = Some(Err(e));
        self
    }

    fn aus(mut self, aus: &'static str) -> Row {
        self.aus = Some(aus);
        self
    }

    fn asking(mut self, check: impl Fn(&[Query]) -> bool + 'static) -> Row {
        self.asked = Box::new(check);
        self
    }
}

/// Resolves every row (a refused start counts as its result, with nothing asked); a failure
/// names the row.
fn check(zone: &Zone, cfg: &ResolveConfig, rows: &[Row]) {
    for (i, r) in rows.iter().enumerate() {
        let cfg = r.cfg.as_ref().unwrap_or(cfg);
        let plan = match &r.start {
            Start::Uri(t) => Resolution::new(t, cfg),
            Start::Via(v) => Resolution::for_response(v, cfg),
        };
        let (got, asked) = match plan {
            Ok(plan) => run_plan(plan, r.zone.as_ref().unwrap_or(zone)),
            Err(e) => (Err(e), Vec::new()),
        };
        if let Some(aus) = r.aus {
            let got = got.as_ref().map(|g| g.aus.as_str());
            assert_eq!(got, Ok(aus), "row {i}");
        }
        if let Some(want) = &r.want {
            assert_eq!(&got.map(|g| g.targets), want, "row {i}");
        }
        assert!((r.asked)(&asked), "row {i}: queries asked {asked:?}");
    }
}

fn srv_of(name: &str) -> Query {
    q(name, QueryKind::Srv)
}

fn only_addresses(asked: &[Query]) -> bool {
    asked
        .iter()
        .all(|x| x.kind == QueryKind::A || x.kind == QueryKind::Aaaa)
}

/// The SRV names asked, in order.
fn srv_names(asked: &[Query]) -> Vec<&str> {
    asked
        .iter()
        .filter(|x| x.kind == QueryKind::Srv)
        .map(|x| x.name.as_str())
        .collect()
}

/// The RFC 3263 table: one test per entry `name(zone[, configuration]) [rows]` (default
/// configuration when none is given), each row checked by [`check`].
macro_rules! resolves {
    (@cfg) => { cfg() };
    (@cfg $cfg:expr) => { $cfg };
    ($($(#[$attr:meta])* $name:ident($zone:expr $(, $cfg:expr)? $(,)?) [$($row:expr),+ $(,)?])+) => {
        $(
            $(#[$attr])*
            #[test]
            fn $name() {
                check(&$zone, &resolves!(@cfg $($cfg)?), &[$($row),+]);
            }
        )+
    };
}

resolves! {
    // ---- §4.1/§4.2: numeric IP ----

    numeric_ip_sip_uses_udp_default_port_without_dns(Zone::default()) [
        uri(sip("192.0.2.1", None, None)).gives(&[(Udp, "192.0.2.1:5060")])
            .asking(<[Query]>::is_empty),
    ]
    numeric_ip_sips_uses_tls_5061(Zone::default()) [
        uri(sips("192.0.2.1", None, None)).gives(&[(Tls, "192.0.2.1:5061")])
            .asking(<[Query]>::is_empty),
    ]
    numeric_ip_with_port_and_transport_param(Zone::default()) [
        uri(sip("192.0.2.1", Some(5080), Some("tcp"))).gives(&[(Tcp, "192.0.2.1:5080")]),
        uri(sips("[2001:db8::1]", None, Some("sctp"))).gives(&[(TlsSctp, "[2001:db8::1]:5061")]),
        uri(sip("192.0.2.1", None, Some("sctp"))).gives(&[(Sctp, "192.0.2.1:5060")]),
    ]

    // ---- §4.2: explicit port ----

    explicit_port_does_address_lookup_only(zone(&[
        "example.com NAPTR 1 1 SIP+D2T _sip._tcp.example.com",
        "_sip._udp.example.com SRV 1 1 5099 other.example.com",
        "example.com A 192.0.2.10",
        "example.com AAAA 2001:db8::10",
    ])) [
        uri(sip("example.com", Some(5070), None))
            .gives(&[(Udp, "192.0.2.10:5070"), (Udp, "[2001:db8::10]:5070")])
            .asking(|a| a == [q("example.com", QueryKind::A), q("example.com", QueryKind::Aaaa)]),
        uri(sips("example.com", Some(5071), None))
            .gives(&[(Tls, "192.0.2.10:5071"), (Tls, "[2001:db8::10]:5071")]),
    ]

    // ---- §4.1: transport parameter wins ----

    transport_param_without_port_queries_srv_for_that_transport(zone(&[
        "example.com NAPTR 1 1 SIP+D2U _sip._udp.example.com",
        "_sip._tcp.example.com SRV 1 1 5090 tcp.example.com",
        "tcp.example.com A 192.0.2.20",
    ])) [
        uri(sip("example.com", None, Some("tcp"))).gives(&[(Tcp, "192.0.2.20:5090")])
            .asking(|a| {
                a[0] == srv_of("_sip._tcp.example.com")
                    && a.iter().all(|x| x.kind != QueryKind::Naptr)
            }),
    ]
    transport_param_tls_on_sip_uri_uses_sips_srv(zone(&[
        "_sips._tcp.example.com SRV 1 1 5061 tls.example.com",
        "tls.example.com A 192.0.2.21",
    ])) [
        uri(sip("example.com", None, Some("tls"))).gives(&[(Tls, "192.0.2.21:5061")])
            .asking(|a| a[0] == srv_of("_sips._tcp.example.com")),
    ]
    transport_param_without_srv_falls_back_to_address_default_port(zone(&[
        "example.com A 192.0.2.22",
    ])) [
        uri(sips("example.com", None, Some("sctp"))).gives(&[(TlsSctp, "192.0.2.22:5061")]),
        uri(sip("example.com", None, Some("sctp"))).gives(&[(Sctp, "192.0.2.22:5060")]),
    ]
    unsupported_transport_param_is_an_error(Zone::default(), supporting(&[Udp, Tcp])) [
        uri(sip("example.com", None, Some("sctp"))).fails(PlanError::UnsupportedTransport(Sctp)),
    ]
    dtls_sctp_param_goes_straight_to_addresses(
        zone(&["example.com A 192.0.2.23"]),
        supporting(&[DtlsSctp]),
    ) [
        uri(sips("example.com", None, Some("dtls-sctp"))).gives(&[(DtlsSctp, "192.0.2.23:5061")])
            .asking(only_addresses),
    ]

    // ---- §4.1: NAPTR ----

    /// RFC 3263 §4.1 example, extended with addresses; server1 is looked up once even though
    /// two SRV records point at it.
    naptr_then_srv_then_address(zone(&[
        "example.com NAPTR 50 50 SIPS+D2T _sips._tcp.example.com",
        "example.com NAPTR 90 50 SIP+D2T _sip._tcp.example.com",
        "example.com NAPTR 100 50 SIP+D2U _sip._udp.example.com",
        "_sips._tcp.example.com SRV 0 0 5061 server1.example.com",
        "_sip._tcp.example.com SRV 0 0 5060 server1.example.com",
        "_sip._udp.example.com SRV 0 0 5060 server2.example.com",
        "server1.example.com A 192.0.2.31",
        "server2.example.com A 192.0.2.32",
    ])) [
        uri(sip("example.com", None, None))
            .aus("example.com")
            .gives(&[
                (Tls, "192.0.2.31:5061"),
                (Tcp, "192.0.2.31:5060"),
                (Udp, "192.0.2.32:5060"),
            ])
            .asking(|a| {
                let server1 = q("server1.example.com", QueryKind::A);
                a[0] == q("example.com", QueryKind::Naptr)
                    && a.iter().filter(|x| **x == server1).count() == 1
            }),
    ]
    sips_uri_discards_non_sips_naptr(zone(&[
        "example.com NAPTR 10 50 SIP+D2U _sip._udp.example.com",
        "example.com NAPTR 20 50 SIPS+D2T _sips._tcp.example.com",
        "_sip._udp.example.com SRV 0 0 5060 udp.example.com",
        "_sips._tcp.example.com SRV 0 0 5061 tls.example.com",
        "udp.example.com A 192.0.2.41",
        "tls.example.com A 192.0.2.42",
    ])) [
        uri(sips("example.com", None, None)).gives(&[(Tls, "192.0.2.42:5061")])
            .asking(|a| !a.contains(&srv_of("_sip._udp.example.com"))),
    ]
    sips_naptr_sctp_gives_tls_sctp(zone(&[
        "example.com NAPTR 10 10 SIPS+D2S _sips._sctp.example.com",
        "_sips._sctp.example.com SRV 0 0 5061 s.example.com",
        "s.example.com A 192.0.2.43",
    ])) [
        uri(sips("example.com", None, None)).gives(&[(TlsSctp, "192.0.2.43:5061")]),
    ]
    naptr_unsupported_transports_discarded(
        zone(&[
            "example.com NAPTR 10 10 SIP+D2S _sip._sctp.example.com",
            "example.com NAPTR 20 10 SIP+D2T _sip._tcp.example.com",
            "_sip._sctp.example.com SRV 0 0 5060 sctp.example.com",
            "_sip._tcp.example.com SRV 0 0 5060 tcp.example.com",
            "sctp.example.com A 192.0.2.51",
            "tcp.example.com A 192.0.2.52",
        ]),
        supporting(&[Udp, Tcp]),
    ) [
        uri(sip("example.com", None, None)).gives(&[(Tcp, "192.0.2.52:5060")])
            .asking(|a| !a.contains(&srv_of("_sip._sctp.example.com"))),
    ]
    naptr_without_srv_falls_back_to_domain_addresses_with_naptr_transport(zone(&[
        "example.com NAPTR 10 10 SIPS+D2T _sips._tcp.example.com",
        "example.com A 192.0.2.53",
    ])) [
        uri(sip("example.com", None, None)).gives(&[(Tls, "192.0.2.53:5061")]),
    ]
    unusable_naptr_is_treated_as_no_naptr(zone(&[
        "example.com NAPTR 10 10 E2U+sip x.example.com",
        "_sip._tcp.example.com SRV 0 0 5060 tcp.example.com",
        "tcp.example.com A 192.0.2.54",
    ])) [
        uri(sip("example.com", None, None)).gives(&[(Tcp, "192.0.2.54:5060")]),
    ]

    // ---- §4.1: no NAPTR -> SRV per supported transport ----

    /// SIP: the _sip services in preference order; SIPS: only the _sips services.
    no_naptr_queries_srv_per_supported_transport_in_preference_order(
        zone(&[
            "_sip._udp.example.com SRV 0 0 5060 udp.example.com",
            "_sip._sctp.example.com SRV 0 0 5060 sctp.example.com",
            "udp.example.com A 192.0.2.61",
            "sctp.example.com A 192.0.2.62",
        ]),
        supporting(&[Sctp, Tcp, Udp, Tls, TlsSctp]),
    ) [
        uri(sip("example.com", None, None))
            .gives(&[(Sctp, "192.0.2.62:5060"), (Udp, "192.0.2.61:5060")])
            .asking(|a| {
                srv_names(a)
                    == ["_sip._sctp.example.com", "_sip._tcp.example.com", "_sip._udp.example.com"]
            }),
        uri(sips("example.com", None, None))
            .asking(|a| srv_names(a) == ["_sips._tcp.example.com", "_sips._sctp.example.com"]),
    ]
    tls_srv_for_sip_uris_is_opt_in(zone(&[
        "_sips._tcp.example.com SRV 0 0 5061 tls.example.com",
        "tls.example.com A 192.0.2.63",
    ])) [
        uri(sip("example.com", None, None))
            .cfg(ResolveConfig { tls_srv_for_sip_uris: true, ..supporting(&[Tls, Udp]) })
            .gives(&[(Tls, "192.0.2.63:5061")]),
        uri(sip("example.com", None, None))
            .cfg(ResolveConfig { tls_srv_for_sip_uris: false, ..supporting(&[Tls, Udp]) })
            .asking(|a| !a.contains(&srv_of("_sips._tcp.example.com"))),
    ]
    no_naptr_no_srv_uses_udp_for_sip_and_tls_for_sips(zone(&["example.com A 192.0.2.71"])) [
        uri(sip("example.com", None, None)).gives(&[(Udp, "192.0.2.71:5060")]),
        uri(sips("example.com", None, None)).gives(&[(Tls, "192.0.2.71:5061")]),
    ]
    sip_falls_back_to_tcp_when_udp_is_not_supported(
        zone(&["example.com A 192.0.2.72"]),
        supporting(&[Tcp, Tls]),
    ) [
        uri(sip("example.com", None, None)).gives(&[(Tcp, "192.0.2.72:5060")]),
        uri(sip("192.0.2.72", None, None)).gives(&[(Tcp, "192.0.2.72:5060")]),
    ]
    /// Numeric or explicit port: the default transport is needed at once. A name: NAPTR
    /// offers only non-SIPS services, nothing is left.
    sips_without_tls_support_finds_nothing(
        zone(&[
            "example.com NAPTR 1 1 SIP+D2T _sip._tcp.example.com",
            "_sip._tcp.example.com SRV 0 0 5060 tcp.example.com",
            "tcp.example.com A 192.0.2.1",
            "example.com A 192.0.2.2",
        ]),
        supporting(&[Udp, Tcp]),
    ) [
        uri(sips("192.0.2.1", None, None)).fails(PlanError::NoSupportedTransport(Scheme::Sips)),
        uri(sips("example.com", Some(5061), None))
            .fails(PlanError::NoSupportedTransport(Scheme::Sips)),
        uri(sips("example.com", None, None)).fails(PlanError::NoTargets("example.com".into())),
    ]
    /// Without SRV there is no UDP/TCP fallback to use.
    sctp_only_element_resolves_through_srv_without_a_fallback(
        zone(&[
            "_sip._sctp.example.com SRV 0 0 5060 sctp.example.com",
            "sctp.example.com A 192.0.2.3",
            "example.com A 192.0.2.4",
        ]),
        supporting(&[Sctp]),
    ) [
        uri(sip("example.com", None, None)).gives(&[(Sctp, "192.0.2.3:5060")]),
        uri(sip("example.com", None, None))
            .zone(zone(&["example.com A 192.0.2.4"]))
            .fails(PlanError::NoTargets("example.com".into())),
    ]
    nothing_found_is_no_targets(Zone::default()) [
        uri(sip("nowhere.example.com", None, None))
            .fails(PlanError::NoTargets("nowhere.example.com".into())),
    ]

    // ---- SRV ordering and addresses inside the plan ----

    /// The AUS is the URI domain, not the SRV target.
    srv_priority_then_addresses_per_target(zone(&[
        "_sips._tcp.example.net SRV 20 0 5061 backup.example.net",
        "_sips._tcp.example.net SRV 10 0 5062 main.example.net",
        "main.example.net A 192.0.2.81",
        "main.example.net A 192.0.2.82",
        "backup.example.net A 192.0.2.83",
    ])) [
        uri(sips("example.net", None, None))
            .aus("example.net")
            .gives(&[
                (Tls, "192.0.2.81:5062"),
                (Tls, "192.0.2.82:5062"),
                (Tls, "192.0.2.83:5061"),
            ]),
    ]
    ip_family_policy(zone(&[
        "example.com A 192.0.2.1",
        "example.com AAAA 2001:db8::1",
    ])) [
        uri(sip("example.com", Some(5060), None))
            .cfg(family(IpFamily::V6First))
            .gives(&[(Udp, "[2001:db8::1]:5060"), (Udp, "192.0.2.1:5060")]),
        uri(sip("example.com", Some(5060), None))
            .cfg(family(IpFamily::V4Only))
            .gives(&[(Udp, "192.0.2.1:5060")])
            .asking(|a| a.iter().all(|x| x.kind != QueryKind::Aaaa)),
        uri(sip("example.com", Some(5060), None))
            .cfg(family(IpFamily::V6Only))
            .gives(&[(Udp, "[2001:db8::1]:5060")]),
    ]
    duplicate_targets_removed(zone(&[
        "_sip._udp.example.com SRV 1 0 5060 a.example.com",
        "_sip._udp.example.com SRV 2 0 5060 b.example.com",
        "a.example.com A 192.0.2.5",
        "b.example.com A 192.0.2.5",
    ])) [
        uri(sip("example.com", None, Some("udp"))).gives(&[(Udp, "192.0.2.5:5060")]),
    ]

    // ---- §5: responses ----

    response_numeric_sent_by(Zone::default()) [
        sent_by(via(Tls, "192.0.2.1", None, None, None)).gives(&[(Tls, "192.0.2.1:5061")])
            .asking(<[Query]>::is_empty),
        sent_by(via(Udp, "192.0.2.1", Some(5070), None, None)).gives(&[(Udp, "192.0.2.1:5070")]),
    ]
    /// UDP with rport: received:rport first (RFC 3581), then the sent-by. Reliable transport:
    /// received at the sent-by port (RFC 3261 §18.2.2); rport ignored.
    response_received_first_then_sent_by(zone(&[
        "_sips._tcp.p1.example.com SRV 0 0 5061 p1.example.com",
        "p1.example.com A 192.0.2.1",
        "p1.example.com A 192.0.2.2",
    ])) [
        sent_by(via(Udp, "192.0.2.1", Some(5060), Some("198.51.100.7"), Some(40000)))
            .gives(&[(Udp, "198.51.100.7:40000"), (Udp, "192.0.2.1:5060")]),
        sent_by(via(Tls, "p1.example.com", None, Some("192.0.2.1"), Some(40000)))
            .aus("p1.example.com")
            .gives(&[(Tls, "192.0.2.1:5061"), (Tls, "192.0.2.2:5061")]),
    ]
    response_name_with_port_uses_addresses_only(zone(&[
        "_sip._tcp.p1.example.com SRV 0 0 9999 x.example.com",
        "p1.example.com A 192.0.2.9",
    ])) [
        sent_by(via(Tcp, "p1.example.com", Some(5080), None, None))
            .gives(&[(Tcp, "192.0.2.9:5080")])
            .asking(|a| a.iter().all(|x| x.kind != QueryKind::Srv)),
    ]
    response_on_unsupported_transport_is_an_error(Zone::default(), supporting(&[Udp])) [
        sent_by(via(Tls, "192.0.2.1", None, None, None))
            .fails(PlanError::UnsupportedTransport(Tls)),
    ]
}

// ---- SRV selection over many resolutions ----

#[test]
fn deterministic_order_for_stateless_proxies() {
    let c = ResolveConfig {
        srv_selection: SrvSelection::Deterministic,
        ..cfg()
    };
    let recs = [
        "_sips._tcp.example.net SRV 10 10 5061 s3.example.net",
        "_sips._tcp.example.net SRV 10 50 5061 s1.example.net",
        "_sips._tcp.example.net SRV 10 10 5061 s2.example.net",
        "s1.example.net A 192.0.2.91",
        "s2.example.net A 192.0.2.92",
        "s3.example.net A 192.0.2.93",
    ];
    let z1 = zone(&recs);
    let mut reversed = recs;
    reversed[..3].reverse();
    let z2 = zone(&reversed);
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
    let zone = zone(&[
        "_sips._tcp.example.net SRV 10 10 5061 s1.example.net",
        "_sips._tcp.example.net SRV 10 10 5061 s2.example.net",
        "_sips._tcp.example.net SRV 10 10 5061 s3.example.net",
        "s1.example.net A 192.0.2.91",
        "s2.example.net A 192.0.2.92",
        "s3.example.net A 192.0.2.93",
    ]);
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
fn max_hosts_bounds_the_address_queries() {
    let recs: Vec<String> = (0..40)
        .map(|i| format!("_sip._udp.example.com SRV {i} 0 5060 h{i}.example.com"))
        .collect();
    let zone = zone(&recs.iter().map(String::as_str).collect::<Vec<_>>());
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

// ---- driving the state machine ----

#[test]
fn answers_in_any_order_and_protocol_errors() {
    let zone = zone(&[
        "_sip._udp.example.com SRV 0 0 5060 udp.example.com",
        "_sip._tcp.example.com SRV 0 0 5060 tcp.example.com",
        "udp.example.com A 192.0.2.1",
        "tcp.example.com A 192.0.2.2",
    ]);
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
    // Both SRV queries are released together, then both A queries; each batch is answered
    // in reverse order.
    let answer_batch_reversed = |plan: &mut Resolution, rng: &mut StdRng| {
        let batch: Vec<Query> = std::iter::from_fn(|| plan.poll_query()).collect();
        assert_eq!(batch.len(), 2);
        for x in batch.iter().rev() {
            plan.on_answer(x, zone.answer(x), rng).unwrap();
        }
        batch
    };
    let batch = answer_batch_reversed(&mut plan, &mut rng);
    // Answering twice is refused.
    assert!(matches!(
        plan.on_answer(
            &batch[0],
            zone.answer(&batch[0]),
            &mut StdRng::seed_from_u64(1)
        ),
        Err(PlanError::UnexpectedAnswer(_))
    ));
    answer_batch_reversed(&mut plan, &mut rng);
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
    let zone = zone(&[
        "_sips._tcp.example.net SRV 1 0 5061 a.example.net",
        "_sips._tcp.example.net SRV 2 0 5061 b.example.net",
        "a.example.net A 192.0.2.1",
        "b.example.net A 192.0.2.2",
    ]);
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

/// §5: each Via transport has its SRV service; with none, the sent-by's addresses at the
/// default port.
#[test]
fn response_name_without_port_uses_srv_for_via_transport() {
    for (t, srv) in [
        (Tls, "_sips._tcp.p1.example.com"),
        (TlsSctp, "_sips._sctp.p1.example.com"),
        (Udp, "_sip._udp.p1.example.com"),
        (Sctp, "_sip._sctp.p1.example.com"),
    ] {
        let zone = zone(&[
            &format!("{srv} SRV 0 0 5999 host.example.com"),
            "host.example.com A 192.0.2.8",
        ]);
        check(
            &zone,
            &cfg(),
            &[sent_by(via(t, "p1.example.com", None, None, None))
                .gives(&[(t, "192.0.2.8:5999")])
                .asking(move |a| a[0] == srv_of(srv))],
        );
    }
    check(
        &zone(&["p1.example.com A 192.0.2.7"]),
        &cfg(),
        &[sent_by(via(Tls, "p1.example.com", None, None, None)).gives(&[(Tls, "192.0.2.7:5061")])],
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
                        z.add(&format!("{host} A 192.0.2.{}", i + 1));
                        z.add(&format!("{host} AAAA 2001:db8::9"));
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
