//! The RFC 5923 §5 setup on loopback, shared by the Figure 2/4 and Figure 3 tests: P1
//! (example.com, p1.example.com, 127.0.0.1) and P2 (example.net, p2.example.net, 127.0.0.2)
//! with TLS listeners, certificates from one test CA and a DNS server publishing both.

use super::dns::{start_dns, TestDns, Zone};
use super::pki::Ca;
use super::reuse::{bind, config, domain, Peer};
use super::sip::alias_options;
use bytes::Bytes;
use sipwire::alias::{AliasPolicy, RowDump, RowOrigin, TableDump};
use sipwire::TransportKind;
use std::fmt::Display;
use std::net::SocketAddr;

/// P1, P2, the CA that signed their certificates and the DNS server they resolve with.
pub struct Fig {
    pub ca: Ca,
    pub p1: Peer,
    pub p2: Peer,
    pub _dns: TestDns,
}

/// What the tests built on the figure change in it.
pub struct FigSpec {
    /// Both sides put `;alias` in their Via.
    pub add_alias: bool,
    pub versions: &'static [&'static rustls::SupportedProtocolVersion],
    /// P2 also listens on plain TCP, published as `_sip._tcp.example.net`.
    pub p2_tcp: bool,
    /// Whether P2 accepts the aliases it is offered.
    pub p2_policy: AliasPolicy,
}

impl FigSpec {
    /// The figure as the RFC draws it: TLS only, every alias accepted.
    pub fn new(
        add_alias: bool,
        versions: &'static [&'static rustls::SupportedProtocolVersion],
    ) -> FigSpec {
        FigSpec {
            add_alias,
            versions,
            p2_tcp: false,
            p2_policy: AliasPolicy::accept_all(),
        }
    }
}

/// Starts P1 and P2 (`alias` on or off) speaking these TLS versions.
pub async fn figure(
    add_alias: bool,
    versions: &'static [&'static rustls::SupportedProtocolVersion],
) -> Fig {
    figure_with(FigSpec::new(add_alias, versions)).await
}

/// Starts P1 and P2 as `spec` says.
pub async fn figure_with(spec: FigSpec) -> Fig {
    let versions = spec.versions;
    let ca = Ca::new("reuse CA");
    let p1_cert = ca.sip_leaf(&["example.com", "p1.example.com"]);
    let p2_cert = ca.sip_leaf(&["example.net", "p2.example.net"]);
    let b1 = bind(
        "127.0.0.1",
        ca.server_config(&p1_cert, &[], versions),
        ca.client_config(Some(&p1_cert), versions),
        false,
    )
    .await;
    let b2 = bind(
        "127.0.0.2",
        ca.server_config(&p2_cert, &[], versions),
        ca.client_config(Some(&p2_cert), versions),
        spec.p2_tcp,
    )
    .await;
    let mut net = Zone::new("example.net.").srv(
        "_sips._tcp.example.net.",
        0,
        0,
        b2.tls.port(),
        "p2.example.net.",
    );
    if let Some(tcp) = b2.tcp {
        net = net.srv(
            "_sip._tcp.example.net.",
            0,
            0,
            tcp.port(),
            "p2.example.net.",
        );
    }
    let dns = start_dns(vec![
        Zone::new("example.com.")
            .srv(
                "_sips._tcp.example.com.",
                0,
                0,
                b1.tls.port(),
                "p1.example.com.",
            )
            .a("p1.example.com.", "127.0.0.1"),
        net.a("p2.example.net.", "127.0.0.2"),
    ])
    .await;
    let p1 = b1.start(
        Some(dns.addr),
        config(
            vec![domain("example.com", "p1.example.com")],
            spec.add_alias,
        ),
    );
    let mut cfg2 = config(
        vec![domain("example.net", "p2.example.net")],
        spec.add_alias,
    );
    cfg2.policy = spec.p2_policy;
    let p2 = b2.start(Some(dns.addr), cfg2);
    Fig {
        ca,
        p1,
        p2,
        _dns: dns,
    }
}

/// A request to P2 (sips:example.net) whose top Via claims `sent_by` with `alias` over
/// `transport`: what an attacker posing as P1 sends.
pub fn forged(transport: &str, sent_by: &str, call: &str) -> Bytes {
    alias_options(
        transport,
        sent_by,
        "sips:example.net",
        "sip:mallory@example.com",
        call,
    )
}

/// P1's alias tables as RFC 5923 Figure 4 draws them: one row, for P2 at `p2` (its TLS
/// listener) proven by P2's certificate names, carried by `flow`.
pub fn p1_tables(p2: SocketAddr, flow: impl Display, origin: RowOrigin) -> Vec<TableDump> {
    let names = ["example.net", "p2.example.net"];
    let ip = p2.ip().to_string();
    one_table(
        "example.com",
        row(&ip, p2.port(), &names, flow.to_string(), origin),
    )
}

/// P2's alias tables as RFC 5923 Figure 4 draws them: one row, for P1 at `p1`.
pub fn p2_tables(p1: SocketAddr, flow: impl Display, origin: RowOrigin) -> Vec<TableDump> {
    let names = ["example.com", "p1.example.com"];
    let ip = p1.ip().to_string();
    one_table(
        "example.net",
        row(&ip, p1.port(), &names, flow.to_string(), origin),
    )
}

/// An alias table row over TLS, as the dump shows it.
pub fn row(ip: &str, port: u16, ids: &[&str], descriptor: String, origin: RowOrigin) -> RowDump {
    RowDump {
        ip: ip.parse().expect("ip"),
        port,
        transport: TransportKind::Tls,
        identities: ids.iter().map(|s| s.to_string()).collect(),
        descriptor,
        origin,
    }
}

/// The dump of an endpoint serving one local domain whose table holds one row.
pub fn one_table(local_domain: &str, row: RowDump) -> Vec<TableDump> {
    vec![TableDump {
        local_domain: local_domain.into(),
        rows: vec![row],
    }]
}
