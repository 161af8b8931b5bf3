//! RFC 5923 alias rules, one by one, including the hijack attempts.

use super::*;
use crate::resolve::{
    resolve_with, Answer, Query, QueryKind, Resolution, ResolveConfig, Scheme, SipTarget, SrvRecord,
};
use crate::TransportKind;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::net::IpAddr;
use AliasDecision::{Added, Ignored, Unchanged, Updated};
use IgnoreReason::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(addr: &str, port: u16, t: TransportKind) -> AliasKey {
    AliasKey::new(ip(addr), port, t)
}

/// The key of a TLS peer.
fn tls(addr: &str, port: u16) -> AliasKey {
    key(addr, port, TransportKind::Tls)
}

fn ids(names: &[&str]) -> PeerIdentities {
    PeerIdentities::from_names(names)
}

/// P1 (p1.example.com, 192.0.2.1) sends to P2 with `Via: SIP/2.0/TLS p1.example.com;alias`.
fn p1_request<'a>(client_ids: &'a PeerIdentities, descriptor: u32) -> InboundAlias<'a, u32> {
    InboundAlias {
        local_domain: "example.net",
        has_alias_param: true,
        via_transport: TransportKind::Tls,
        flow_transport: TransportKind::Tls,
        sent_by_host: "p1.example.com",
        sent_by_port: None,
        received: ip("192.0.2.1"),
        client_cert_verified: true,
        client_identities: client_ids,
        descriptor,
    }
}

fn accept() -> AliasPolicy {
    AliasPolicy::accept_all()
}

/// What tables accepting every alias decide on `req`.
fn offer(t: &mut AliasTables<u32>, req: InboundAlias<'_, u32>) -> AliasDecision<u32> {
    t.on_inbound_request(req, &accept())
}

/// The one row of `t`, in `local_domain`'s table, as the dump shows it.
fn only_row(t: &AliasTables<u32>, local_domain: &str) -> RowDump {
    let dump = t.dump();
    assert_eq!(dump.len(), 1);
    assert_eq!(dump[0].local_domain, local_domain);
    assert_eq!(dump[0].rows.len(), 1);
    dump[0].rows[0].clone()
}

// ---- RFC 5923 Figure 4 ----

#[test]
fn figure4_p1_client_row() {
    // P1 resolved sips:example.net to {TLS, 192.0.2.128, 5061}, connected (descriptor 25) and
    // authenticated P2 as sip:example.net / sip:p2.example.net.
    let mut t: AliasTables<u32> = AliasTables::default();
    let k = tls("192.0.2.128", 5061);
    let p2 = ids(&["sip:example.net", "sip:p2.example.net"]);
    assert_eq!(t.add_outbound("example.com", k, &p2, 25), Added);
    assert_eq!(t.lookup("example.com", &k, "example.net"), Some(25));
    assert_eq!(t.lookup("example.com", &k, "P2.Example.NET"), Some(25));
    // Same address but a URI domain the certificate does not prove: no reuse.
    assert_eq!(t.lookup("example.com", &k, "example.org"), None);
    // Right domain, other resolved address (port, transport, IP): no reuse.
    for other in [
        tls("192.0.2.128", 5062),
        key("192.0.2.128", 5061, TransportKind::TlsSctp),
        tls("192.0.2.129", 5061),
    ] {
        assert_eq!(t.lookup("example.com", &other, "example.net"), None);
    }
    assert_eq!(
        only_row(&t, "example.com"),
        RowDump {
            ip: ip("192.0.2.128"),
            port: 5061,
            transport: TransportKind::Tls,
            identities: vec!["example.net".into(), "p2.example.net".into()],
            descriptor: "25".into(),
            origin: RowOrigin::Outbound,
        }
    );
}

#[test]
fn figure4_p2_server_row() {
    // P2 receives `Via: SIP/2.0/TLS p1.example.com;branch=z9hG4bKa7c8dze;alias;received=192.0.2.1`
    // on descriptor 18, client certificate sip:example.com / sip:p1.example.com.
    let mut t: AliasTables<u32> = AliasTables::default();
    let client = ids(&["sip:example.com", "sip:p1.example.com"]);
    assert_eq!(offer(&mut t, p1_request(&client, 18)), Added);
    // No port in sent-by: 5061. IP from received. TransportKind from the Via.
    let k = tls("192.0.2.1", 5061);
    assert_eq!(t.lookup("example.net", &k, "example.com"), Some(18));
    assert_eq!(t.lookup("example.net", &k, "p1.example.com"), Some(18));
    assert_eq!(
        only_row(&t, "example.net"),
        RowDump {
            ip: ip("192.0.2.1"),
            port: 5061,
            transport: TransportKind::Tls,
            identities: vec!["example.com".into(), "p1.example.com".into()],
            descriptor: "18".into(),
            origin: RowOrigin::Inbound,
        }
    );
}

#[test]
fn explicit_sent_by_port_is_used() {
    let mut t: AliasTables<u32> = AliasTables::default();
    let client = ids(&["p1.example.com"]);
    let req = InboundAlias {
        sent_by_port: Some(5071),
        ..p1_request(&client, 7)
    };
    assert_eq!(offer(&mut t, req), Added);
    let mut at = |port| t.lookup("example.net", &tls("192.0.2.1", port), "p1.example.com");
    assert_eq!(at(5071), Some(7));
    assert_eq!(at(5061), None);
}

// ---- hijack attempts ----

#[test]
fn hijack_alias_without_client_certificate() {
    // Kamailio 5.6 aliases this connection (see ANCHORS.md); RFC 5923 §9.2 forbids it.
    let mut t: AliasTables<u32> = AliasTables::default();
    let none = PeerIdentities::default();
    // Even with identities claimed, an unverified certificate never creates a row.
    let claimed = ids(&["example.com", "p1.example.com"]);
    for client in [&none, &claimed] {
        let req = InboundAlias {
            client_cert_verified: false,
            ..p1_request(client, 18)
        };
        assert_eq!(offer(&mut t, req), Ignored(NoClientCertificate));
    }
    assert_eq!(t.counters().rows, 0);
    assert!(t.dump().is_empty());
    let k = tls("192.0.2.1", 5061);
    assert_eq!(t.lookup("example.net", &k, "example.com"), None);
}

#[test]
fn hijack_alias_on_plain_tcp_or_sctp() {
    let mut t: AliasTables<u32> = AliasTables::default();
    let client = ids(&["example.com", "p1.example.com"]);
    for transport in [TransportKind::Tcp, TransportKind::Sctp, TransportKind::Udp] {
        let plain = InboundAlias {
            via_transport: transport,
            flow_transport: transport,
            ..p1_request(&client, 18)
        };
        assert_eq!(offer(&mut t, plain), Ignored(NotTlsFamily), "{transport}");
        // A Via claiming TLS on a plain flow is judged by the flow.
        let claiming_tls = InboundAlias {
            flow_transport: transport,
            ..p1_request(&client, 18)
        };
        assert_eq!(offer(&mut t, claiming_tls), Ignored(NotTlsFamily));
        // Client side too.
        let k = key("192.0.2.128", 5060, transport);
        assert_eq!(
            t.add_outbound("example.com", k, &client, 1),
            Ignored(NotTlsFamily)
        );
        assert_eq!(t.lookup("example.com", &k, "example.com"), None);
    }
    assert_eq!(t.counters().rows, 0);
    assert_eq!(t.counters().ignored.get(NotTlsFamily), 9);
}

#[test]
fn hijack_certificate_for_other_domain_claiming_sent_by() {
    // The certificate says example.org; the Via claims p1.example.com. Suffix or parent
    // domains do not count either.
    let mut t: AliasTables<u32> = AliasTables::default();
    for names in [["example.org"], ["example.com"]] {
        let client = ids(&names);
        assert_eq!(
            offer(&mut t, p1_request(&client, 66)),
            Ignored(SentByNotAuthenticated)
        );
    }
    assert_eq!(t.counters().rows, 0);
}

#[test]
fn numeric_sent_by_must_be_the_source_address() {
    let mut t: AliasTables<u32> = AliasTables::default();
    let client = ids(&["p1.example.com"]);
    let other_ip = InboundAlias {
        sent_by_host: "198.51.100.9",
        ..p1_request(&client, 5)
    };
    assert_eq!(offer(&mut t, other_ip), Ignored(SentByNotAuthenticated));
    let source = InboundAlias {
        sent_by_host: "192.0.2.1",
        sent_by_port: Some(5999),
        ..p1_request(&client, 5)
    };
    assert_eq!(offer(&mut t, source), Added);
    let k = tls("192.0.2.1", 5999);
    assert_eq!(t.lookup("example.net", &k, "p1.example.com"), Some(5));
    let bad = InboundAlias {
        sent_by_host: "bad host",
        ..p1_request(&client, 6)
    };
    assert_eq!(offer(&mut t, bad), Ignored(InvalidSentBy));
}

#[test]
fn hijack_second_connection_from_same_ip_claiming_same_alias() {
    let mut t: AliasTables<u32> = AliasTables::default();
    let p1 = ids(&["example.com", "p1.example.com"]);
    assert_eq!(offer(&mut t, p1_request(&p1, 18)), Added);
    let k = tls("192.0.2.1", 5061);

    // Another process on the same host, certificate only for p1.example.com (overlapping, not
    // equal): the existing authenticated row is kept.
    let other = ids(&["p1.example.com"]);
    assert_eq!(
        offer(&mut t, p1_request(&other, 99)),
        Ignored(AlreadyAliasedByOtherFlow)
    );
    assert_eq!(t.lookup("example.net", &k, "p1.example.com"), Some(18));
    assert_eq!(t.lookup("example.net", &k, "example.com"), Some(18));

    // The same peer reconnecting (same identities): the row moves to the new flow.
    assert_eq!(
        offer(&mut t, p1_request(&p1, 19)),
        Updated { replaced: Some(18) }
    );
    assert_eq!(t.lookup("example.net", &k, "example.com"), Some(19));
    assert_eq!(t.counters().rows, 1);
}

#[test]
fn lookup_in_another_domains_table_never_matches() {
    // P1 hosts example.com and example.net; a flow opened for example.com is not reused for
    // example.net (§9.3), even for the same peer address and identity.
    let mut t: AliasTables<u32> = AliasTables::default();
    let k = tls("192.0.2.128", 5061);
    let p2 = ids(&["example.org"]);
    assert_eq!(t.add_outbound("example.com", k, &p2, 25), Added);
    assert_eq!(t.lookup("example.com", &k, "example.org"), Some(25));
    assert_eq!(t.lookup("example.net", &k, "example.org"), None);
    assert_eq!(t.lookup("EXAMPLE.COM.", &k, "example.org"), Some(25));
    // The example.net side opens its own flow: separate row, separate table.
    assert_eq!(t.add_outbound("example.net", k, &p2, 26), Added);
    assert_eq!(t.lookup("example.net", &k, "example.org"), Some(26));
    assert_eq!(t.lookup("example.com", &k, "example.org"), Some(25));
    // One flow cannot serve both domains, in either direction.
    let elsewhere = tls("192.0.2.129", 5061);
    assert_eq!(
        t.add_outbound("example.net", elsewhere, &p2, 25),
        Ignored(DescriptorBoundToOtherDomain)
    );
    let client = ids(&["p1.example.com"]);
    let req = InboundAlias {
        local_domain: "example.net",
        ..p1_request(&client, 25)
    };
    assert_eq!(offer(&mut t, req), Ignored(DescriptorBoundToOtherDomain));
}

#[test]
fn section_9_3_virtual_servers_two_rows_never_cross_used() {
    // P2's view: example.com and example.net are both hosted by P1 at {192.0.2.1, 5061, TLS}.
    let mut t: AliasTables<u32> = AliasTables::default();
    let k = tls("192.0.2.1", 5061);
    // P1's virtual server `host` connecting to P2 (example.org) and sending `alias`.
    let from = |host, client, descriptor| InboundAlias {
        sent_by_host: host,
        local_domain: "example.org",
        ..p1_request(client, descriptor)
    };
    // Row 18: P1 connected for example.com and sent `alias`.
    let com = ids(&["sip:example.com"]);
    assert_eq!(offer(&mut t, from("example.com", &com, 18)), Added);
    // A request to sips:example.net resolves to the same address but must not use row 18.
    assert_eq!(t.lookup("example.org", &k, "example.net"), None);
    // P2 opens descriptor 54 to example.net and authenticates it.
    assert_eq!(
        t.add_outbound("example.org", k, &ids(&["sip:example.net"]), 54),
        Added
    );
    assert_eq!(t.lookup("example.org", &k, "example.net"), Some(54));
    assert_eq!(t.lookup("example.org", &k, "example.com"), Some(18));
    let rows = &t.dump()[0].rows;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].identities, vec!["example.com".to_string()]);
    assert_eq!(rows[0].descriptor, "18");
    assert_eq!(rows[1].identities, vec!["example.net".to_string()]);
    assert_eq!(rows[1].descriptor, "54");
    // A third virtual server of P1 (identities disjoint from both rows) gets its own row.
    let info = ids(&["example.info"]);
    assert_eq!(offer(&mut t, from("example.info", &info, 60)), Added);
    assert_eq!(t.lookup("example.org", &k, "example.info"), Some(60));
    assert_eq!(t.lookup("example.org", &k, "example.net"), Some(54));
    assert_eq!(t.counters().rows, 3);
    // P1's example.net server connecting in with exactly row 54's identities takes that row over.
    let net = ids(&["example.net"]);
    assert_eq!(
        offer(&mut t, from("example.net", &net, 55)),
        Updated { replaced: Some(54) }
    );
    assert_eq!(t.lookup("example.org", &k, "example.net"), Some(55));
    assert_eq!(t.lookup("example.org", &k, "example.com"), Some(18));
}

// ---- updates, removal, policy ----

#[test]
fn dead_descriptor_is_removed_and_replaced() {
    let mut t: AliasTables<u32> = AliasTables::default();
    let k = tls("192.0.2.128", 5061);
    let p2 = ids(&["example.net", "p2.example.net"]);
    t.add_outbound("example.com", k, &p2, 25);
    assert_eq!(t.remove_descriptor(&25), 1);
    assert_eq!(t.lookup("example.com", &k, "example.net"), None);
    assert_eq!(t.add_outbound("example.com", k, &p2, 31), Added);
    assert_eq!(t.lookup("example.com", &k, "example.net"), Some(31));
    // A new flow to the same peer while the old one is still listed: update semantics.
    assert_eq!(
        t.add_outbound("example.com", k, &p2, 32),
        Updated { replaced: Some(31) }
    );
    assert_eq!(t.lookup("example.com", &k, "example.net"), Some(32));
    assert_eq!(t.counters().rows, 1);
    // The replaced descriptor no longer has a row; removing it removes nothing.
    assert_eq!(t.remove_descriptor(&31), 0);
    assert_eq!(t.remove_descriptor(&32), 1);
    assert!(t.dump().is_empty());
    assert!(t.table("example.com").is_none());
    // After removal the descriptor is free again (e.g. an id reused by the transport layer).
    assert_eq!(t.add_outbound("example.net", k, &p2, 25), Added);
}

#[test]
fn outbound_overlapping_identities_newest_wins() {
    let mut t: AliasTables<u32> = AliasTables::default();
    let k = tls("192.0.2.128", 5061);
    t.add_outbound("example.com", k, &ids(&["a.example", "b.example"]), 1);
    t.add_outbound("example.com", k, &ids(&["b.example", "c.example"]), 2);
    assert_eq!(t.lookup("example.com", &k, "a.example"), Some(1));
    assert_eq!(t.lookup("example.com", &k, "b.example"), Some(2));
    assert_eq!(t.lookup("example.com", &k, "c.example"), Some(2));
}

#[test]
fn same_flow_reannouncing_is_unchanged_and_a_new_sent_by_moves_the_row() {
    let mut t: AliasTables<u32> = AliasTables::default();
    let client = ids(&["p1.example.com"]);
    assert_eq!(offer(&mut t, p1_request(&client, 18)), Added);
    for _ in 0..3 {
        assert_eq!(offer(&mut t, p1_request(&client, 18)), Unchanged);
    }
    let moved = InboundAlias {
        sent_by_port: Some(5080),
        ..p1_request(&client, 18)
    };
    assert_eq!(offer(&mut t, moved), Updated { replaced: None });
    assert_eq!(t.counters().rows, 1);
    let mut at = |port| t.lookup("example.net", &tls("192.0.2.1", port), "p1.example.com");
    assert_eq!(at(5061), None);
    assert_eq!(at(5080), Some(18));
}

#[test]
fn no_alias_param_mismatch_identity_and_policy() {
    let mut t: AliasTables<u32> = AliasTables::default();
    let client = ids(&["p1.example.com"]);
    let no_alias = InboundAlias {
        has_alias_param: false,
        ..p1_request(&client, 1)
    };
    assert_eq!(offer(&mut t, no_alias), Ignored(NoAliasParam));
    let other_via = InboundAlias {
        via_transport: TransportKind::TlsSctp,
        ..p1_request(&client, 1)
    };
    assert_eq!(offer(&mut t, other_via), Ignored(ViaTransportMismatch));
    let wildcard = ids(&["*.example.com"]);
    assert_eq!(
        offer(&mut t, p1_request(&wildcard, 1)),
        Ignored(NoUsableIdentity)
    );
    let per_peer = AliasPolicy::accept_all().with_peer("p1.example.com", false);
    for (policy, want) in [
        (AliasPolicy::refuse_all(), Ignored(PolicyRefused)),
        (per_peer, Ignored(PolicyRefused)),
        (
            AliasPolicy::refuse_all().with_peer("p1.example.com", true),
            Added,
        ),
    ] {
        assert_eq!(t.on_inbound_request(p1_request(&client, 1), &policy), want);
    }
    let nobody = PeerIdentities::default();
    assert_eq!(
        t.add_outbound("example.com", tls("192.0.2.128", 5061), &nobody, 2),
        Ignored(NoUsableIdentity)
    );
}

#[test]
fn table_full() {
    let mut t: AliasTables<u32> = AliasTables::new(2);
    let p = ids(&["example.net"]);
    let mut add =
        |domain, port, descriptor| t.add_outbound(domain, tls("192.0.2.128", port), &p, descriptor);
    assert_eq!(add("example.com", 5061, 0), Added);
    assert_eq!(add("example.com", 5062, 1), Added);
    assert_eq!(add("example.com", 5063, 9), Ignored(TableFull));
    // Updates still work when full; other domains have their own limit.
    assert_eq!(add("example.com", 5061, 7), Updated { replaced: Some(0) });
    assert_eq!(add("example.org", 5063, 8), Added);
}

#[test]
fn tls_sctp_and_dtls_sctp_flows_fit_the_same_table() {
    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    enum Flow {
        Tls(u64),
        TlsSctpStream { assoc: u32, stream: u16 },
        DtlsSctp { assoc: u32 },
    }
    impl std::fmt::Display for Flow {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                Flow::Tls(id) => write!(f, "tls#{id}"),
                Flow::TlsSctpStream { assoc, stream } => write!(f, "tls-sctp#{assoc}/{stream}"),
                Flow::DtlsSctp { assoc } => write!(f, "dtls-sctp#{assoc}"),
            }
        }
    }
    let mut t: AliasTables<Flow> = AliasTables::default();
    let p2 = ids(&["example.net"]);
    let a = key("192.0.2.128", 5061, TransportKind::Tls);
    let b = key("192.0.2.128", 5061, TransportKind::TlsSctp);
    let c = key("192.0.2.128", 5061, TransportKind::DtlsSctp);
    assert!(t
        .add_outbound("example.com", a, &p2, Flow::Tls(1))
        .is_recorded());
    assert!(t
        .add_outbound(
            "example.com",
            b,
            &p2,
            Flow::TlsSctpStream {
                assoc: 7,
                stream: 3
            }
        )
        .is_recorded());
    assert!(t
        .add_outbound("example.com", c, &p2, Flow::DtlsSctp { assoc: 8 })
        .is_recorded());
    assert_eq!(
        t.lookup("example.com", &a, "example.net"),
        Some(Flow::Tls(1))
    );
    assert_eq!(
        t.lookup("example.com", &b, "example.net"),
        Some(Flow::TlsSctpStream {
            assoc: 7,
            stream: 3
        })
    );
    assert_eq!(
        t.lookup("example.com", &c, "example.net"),
        Some(Flow::DtlsSctp { assoc: 8 })
    );
    let rows: Vec<String> = t.dump()[0]
        .rows
        .iter()
        .map(|r| r.descriptor.clone())
        .collect();
    assert_eq!(rows, ["tls#1", "tls-sctp#7/3", "dtls-sctp#8"]);
}

#[test]
fn counters_and_serializable_dump() {
    let mut t: AliasTables<u32> = AliasTables::default();
    let client = ids(&["example.com", "p1.example.com"]);
    t.on_inbound_request(p1_request(&client, 18), &accept());
    let mut req = p1_request(&client, 19);
    req.client_cert_verified = false;
    t.on_inbound_request(req, &accept());
    let mut req = p1_request(&client, 19);
    req.has_alias_param = false;
    t.on_inbound_request(req, &accept());
    let k = key("192.0.2.1", 5061, TransportKind::Tls);
    t.lookup("example.net", &k, "example.com");
    t.lookup("example.net", &k, "example.com");
    t.lookup("example.net", &k, "elsewhere.example");
    t.remove_descriptor(&18);
    let c = t.counters();
    assert_eq!(c.rows, 0);
    assert_eq!(c.added, 1);
    assert_eq!(c.removed, 1);
    assert_eq!(c.reuses, 2);
    assert_eq!(c.misses, 1);
    assert_eq!(c.ignored.get(IgnoreReason::NoClientCertificate), 1);
    assert_eq!(c.ignored.get(IgnoreReason::NoAliasParam), 1);
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["ignored"]["no_client_certificate"], 1);
    assert_eq!(json["reuses"], 2);

    t.on_inbound_request(p1_request(&client, 20), &accept());
    let json = serde_json::to_value(t.dump()).unwrap();
    assert_eq!(json[0]["local_domain"], "example.net");
    assert_eq!(json[0]["rows"][0]["ip"], "192.0.2.1");
    assert_eq!(json[0]["rows"][0]["port"], 5061);
    assert_eq!(json[0]["rows"][0]["transport"], "tls");
    assert_eq!(json[0]["rows"][0]["descriptor"], "20");
    assert_eq!(json[0]["rows"][0]["origin"], "Inbound");
}

// ---- RFC 5923 §10: SRV load balancing with aliased connections ----

#[test]
fn section10_one_aliased_flow_per_srv_target_and_traffic_still_balanced() {
    let srv = vec![
        SrvRecord {
            priority: 10,
            weight: 10,
            port: 5061,
            target: "s1.example.net".into(),
        },
        SrvRecord {
            priority: 10,
            weight: 10,
            port: 5061,
            target: "s2.example.net".into(),
        },
        SrvRecord {
            priority: 10,
            weight: 10,
            port: 5061,
            target: "s3.example.net".into(),
        },
    ];
    let answer = |q: &Query| match (q.kind, q.name.as_str()) {
        (QueryKind::Srv, "_sips._tcp.example.net") => Answer::Srv(srv.clone()),
        (QueryKind::A, "s1.example.net") => Answer::Addrs(vec![ip("192.0.2.11")]),
        (QueryKind::A, "s2.example.net") => Answer::Addrs(vec![ip("192.0.2.12")]),
        (QueryKind::A, "s3.example.net") => Answer::Addrs(vec![ip("192.0.2.13")]),
        (kind, _) => Answer::empty(kind),
    };
    let target = SipTarget::new(Scheme::Sips, "example.net", None, None).unwrap();
    let mut rng = StdRng::seed_from_u64(10);
    let mut t: AliasTables<u32> = AliasTables::default();
    let mut next_descriptor = 100;
    let mut per_flow: std::collections::HashMap<u32, u32> = Default::default();
    let mut opened = 0;
    for _ in 0..300 {
        let plan = Resolution::new(&target, &ResolveConfig::default()).unwrap();
        let resolved = resolve_with(plan, &mut rng, answer).unwrap();
        let first = resolved.targets[0].clone();
        let k = AliasKey::from(&first);
        let flow = match t.lookup("example.com", &k, &resolved.aus) {
            Some(d) => d,
            None => {
                // New TLS connection; every server's certificate says example.net.
                next_descriptor += 1;
                opened += 1;
                t.add_outbound("example.com", k, &ids(&["example.net"]), next_descriptor);
                next_descriptor
            }
        };
        *per_flow.entry(flow).or_default() += 1;
    }
    assert_eq!(opened, 3, "one aliased connection per server");
    assert_eq!(t.counters().rows, 3);
    for (flow, n) in &per_flow {
        assert!(*n > 60, "flow {flow} got {n} of 300 requests: {per_flow:?}");
    }
}

// ---- property: random operation sequences keep the safety invariants ----

mod properties {
    use super::*;
    use proptest::prelude::*;

    const DOMAINS: [&str; 2] = ["example.com", "example.net"];
    const PEER_NAMES: [&str; 3] = ["a.example", "b.example", "c.example"];
    const TRANSPORTS: [TransportKind; 5] = [
        TransportKind::Tls,
        TransportKind::TlsSctp,
        TransportKind::DtlsSctp,
        TransportKind::Tcp,
        TransportKind::Sctp,
    ];

    #[derive(Debug, Clone)]
    enum Op {
        Outbound {
            domain: usize,
            ip: u8,
            transport: usize,
            ids: Vec<usize>,
            d: u32,
        },
        Inbound {
            domain: usize,
            ip: u8,
            port: Option<u16>,
            transport: usize,
            sent_by: usize,
            verified: bool,
            alias: bool,
            ids: Vec<usize>,
            d: u32,
        },
        Remove(u32),
        Lookup {
            domain: usize,
            ip: u8,
            transport: usize,
            uri: usize,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        let ids = prop::collection::vec(0usize..3, 0..3);
        prop_oneof![
            (0usize..2, 1u8..3, 0usize..5, ids.clone(), 0u32..6).prop_map(
                |(domain, ip, transport, ids, d)| Op::Outbound {
                    domain,
                    ip,
                    transport,
                    ids,
                    d
                }
            ),
            (
                (
                    0usize..2,
                    1u8..3,
                    prop::option::of(5061u16..5063),
                    0usize..5
                ),
                (0usize..4, any::<bool>(), any::<bool>(), ids, 0u32..6),
            )
                .prop_map(
                    |((domain, ip, port, transport), (sent_by, verified, alias, ids, d))| {
                        Op::Inbound {
                            domain,
                            ip,
                            port,
                            transport,
                            sent_by,
                            verified,
                            alias,
                            ids,
                            d,
                        }
                    }
                ),
            (0u32..6).prop_map(Op::Remove),
            (0usize..2, 1u8..3, 0usize..5, 0usize..3).prop_map(|(domain, ip, transport, uri)| {
                Op::Lookup {
                    domain,
                    ip,
                    transport,
                    uri,
                }
            }),
        ]
    }

    fn names(ids: &[usize]) -> PeerIdentities {
        PeerIdentities::from_names(ids.iter().map(|i| PEER_NAMES[*i]))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn invariants_hold(ops in prop::collection::vec(op(), 1..40)) {
            let mut t: AliasTables<u32> = AliasTables::new(4);
            for op in ops {
                let rows_before = t.counters().rows;
                let dump_before = t.dump();
                match op {
                    Op::Outbound { domain, ip, transport, ids, d } => {
                        let k = AliasKey::new(IpAddr::from([192, 0, 2, ip]), 5061, TRANSPORTS[transport]);
                        let dec = t.add_outbound(DOMAINS[domain], k, &names(&ids), d);
                        if !TRANSPORTS[transport].is_secure() {
                            prop_assert_eq!(dec, AliasDecision::Ignored(IgnoreReason::NotTlsFamily));
                        }
                    }
                    Op::Inbound { domain, ip, port, transport, sent_by, verified, alias, ids, d } => {
                        let peer = names(&ids);
                        let host = match sent_by { 3 => format!("192.0.2.{ip}"), i => PEER_NAMES[i].to_string() };
                        let req = InboundAlias {
                            local_domain: DOMAINS[domain],
                            has_alias_param: alias,
                            via_transport: TRANSPORTS[transport],
                            flow_transport: TRANSPORTS[transport],
                            sent_by_host: &host,
                            sent_by_port: port,
                            received: IpAddr::from([192, 0, 2, ip]),
                            client_cert_verified: verified,
                            client_identities: &peer,
                            descriptor: d,
                        };
                        let dec = t.on_inbound_request(req, &AliasPolicy::accept_all());
                        if !verified || !alias || !TRANSPORTS[transport].is_secure() {
                            prop_assert!(dec.ignored().is_some());
                            prop_assert_eq!(t.counters().rows, rows_before);
                            prop_assert_eq!(t.dump(), dump_before);
                        }
                        if sent_by < 3 && dec.is_recorded() {
                            prop_assert!(peer.matches(PEER_NAMES[sent_by]));
                        }
                    }
                    Op::Remove(d) => {
                        t.remove_descriptor(&d);
                        prop_assert!(t.dump().iter().all(|tb| tb.rows.iter().all(|r| r.descriptor != d.to_string())));
                    }
                    Op::Lookup { domain, ip, transport, uri } => {
                        let k = AliasKey::new(IpAddr::from([192, 0, 2, ip]), 5061, TRANSPORTS[transport]);
                        if let Some(d) = t.lookup(DOMAINS[domain], &k, PEER_NAMES[uri]) {
                            let table = t.table(DOMAINS[domain]);
                            prop_assert!(table.is_some());
                            let ok = table.map(|tb| tb.rows().any(|r| {
                                r.key == k && r.descriptor == d && r.identities.matches(PEER_NAMES[uri])
                            })).unwrap_or(false);
                            prop_assert!(ok, "lookup returned a row that does not prove the domain");
                        }
                    }
                }
                // Global invariants.
                let dump = t.dump();
                let mut owner: std::collections::HashMap<String, String> = Default::default();
                let mut total = 0u64;
                for tb in &dump {
                    prop_assert!(tb.rows.len() <= 4);
                    for r in &tb.rows {
                        total += 1;
                        prop_assert!(r.transport.is_secure(), "non-TLS row {:?}", r);
                        prop_assert!(!r.identities.is_empty());
                        if let Some(dom) = owner.insert(r.descriptor.clone(), tb.local_domain.clone()) {
                            prop_assert_eq!(&dom, &tb.local_domain, "descriptor in two domains");
                        }
                    }
                }
                prop_assert_eq!(total, t.counters().rows);
            }
        }
    }
}
