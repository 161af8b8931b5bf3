//! The RFC 5923 §5 setup in network namespaces, shared by the Figure 2/4 and Figure 3 lab
//! tests: P1 (example.com, p1.example.com) on 192.0.2.1, P2 (example.net, p2.example.net) on
//! 192.0.2.128, TLS on 5061, and a real DNS server (dnsmasq, on P2's host) publishing both.
//! Also the base of the hijack tests and of the reuse latency benchmark.

use super::super::pki::Ca;
use super::{spec, Agent, PeerSpec, SIPS_PORT};
use sipwire::alias::{RowDump, RowOrigin};
use sipwire::endpoint::LocalDomain;
use sipwire_lab::{Host, Link, Topology, Zone};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// The namespaces and the two proxies.
pub struct Lab {
    pub _lab: Topology,
    /// P1's host, where a test can start more agents on P1's address.
    pub h1: Host,
    /// The veth link between P1 and P2 (for impairments).
    pub link: Link,
    pub ca: Arc<Ca>,
    pub p1: Agent,
    pub p2: Agent,
}

/// P1's and P2's TLS listeners (RFC 5923 §5's addresses).
pub const P1: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), SIPS_PORT);
pub const P2: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 128)), SIPS_PORT);

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// What the tests and benchmarks built on the figure change in it.
#[derive(Debug, Clone, Copy)]
pub struct FigOptions {
    /// Both proxies put `;alias` in their Via.
    pub add_alias: bool,
    /// P2 also listens on plain TCP (port 5060).
    pub p2_tcp: bool,
    /// A DNS server on each host, so that resolution never crosses the link (benchmarks); by
    /// default one, on P2's host.
    pub dns_on_each_host: bool,
    /// The proxies' secure transport: TLS over TCP (RFC 5923's figures), or TLS over SCTP
    /// (SRV `_sips._sctp`).
    pub transport: sipwire::TransportKind,
}

impl FigOptions {
    pub fn new(add_alias: bool) -> FigOptions {
        FigOptions {
            add_alias,
            p2_tcp: false,
            dns_on_each_host: false,
            transport: sipwire::TransportKind::Tls,
        }
    }
}

/// Builds the lab with `alias` on or off at both proxies. `p1.example.com` has an A record
/// and no SRV of its own: a URI naming it (a Record-Route) resolves to 192.0.2.1:5061.
pub fn figure(add_alias: bool) -> Lab {
    figure_with(FigOptions::new(add_alias), |_| {})
}

/// Builds the lab as `o` says; `tweak` changes both proxies' specs before they start.
pub fn figure_with(o: FigOptions, tweak: impl Fn(&mut PeerSpec)) -> Lab {
    let mut lab = Topology::new().expect("lab (run as root, in the lab VM)");
    let h1 = lab.host("p1").expect("host p1");
    let h2 = lab.host("p2").expect("host p2");
    let link = lab
        .link(&h1, &["192.0.2.1/24"], &h2, &["192.0.2.128/24"])
        .expect("link");
    let proto = match o.transport {
        sipwire::TransportKind::TlsSctp => "sctp",
        _ => "tcp",
    };
    let zone = Zone::new()
        .srv(
            &format!("_sips._{proto}.example.com"),
            "p1.example.com",
            SIPS_PORT,
            0,
            0,
        )
        .host("p1.example.com", &[ip("192.0.2.1")])
        .srv(
            &format!("_sips._{proto}.example.net"),
            "p2.example.net",
            SIPS_PORT,
            0,
            0,
        )
        .host("p2.example.net", &[ip("192.0.2.128")]);
    let dns2 = lab
        .dns(&h2, ip("192.0.2.128"), &zone)
        .expect("dnsmasq on p2");
    let dns1 = if o.dns_on_each_host {
        lab.dns(&h1, ip("192.0.2.1"), &zone).expect("dnsmasq on p1")
    } else {
        dns2
    };
    let ca = Arc::new(Ca::new("lab CA"));
    let c1 = ca.sip_leaf(&["example.com", "p1.example.com"]);
    let c2 = ca.sip_leaf(&["example.net", "p2.example.net"]);
    let mut s1 = spec(
        "192.0.2.1",
        &c1,
        vec![LocalDomain::new("example.com", "p1.example.com")],
    );
    s1.dns = Some(dns1);
    let mut s2 = spec(
        "192.0.2.128",
        &c2,
        vec![LocalDomain::new("example.net", "p2.example.net")],
    );
    s2.dns = Some(dns2);
    s2.with_tcp = o.p2_tcp;
    for s in [&mut s1, &mut s2] {
        s.add_alias = o.add_alias;
        s.transport = o.transport;
        tweak(s);
    }
    let p1 = Agent::start(&h1, Arc::clone(&ca), s1);
    let p2 = Agent::start(&h2, Arc::clone(&ca), s2);
    Lab {
        _lab: lab,
        h1,
        link,
        ca,
        p1,
        p2,
    }
}

/// An alias table row for `addr`:5061 over TLS, as the dump shows it.
pub fn row(addr: &str, ids: &[&str], descriptor: String, origin: RowOrigin) -> RowDump {
    super::super::fig::row(addr, SIPS_PORT, ids, descriptor, origin)
}
