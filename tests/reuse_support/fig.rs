//! The RFC 5923 §5 setup on loopback, shared by the Figure 2/4 and Figure 3 tests: P1
//! (example.com, p1.example.com, 127.0.0.1) and P2 (example.net, p2.example.net, 127.0.0.2)
//! with TLS listeners, certificates from one test CA and a DNS server publishing both.

use super::dns::{start_dns, TestDns, Zone};
use super::pki::Ca;
use super::{bind, config, domain, Peer};
use sipwire::alias::{RowDump, RowOrigin};
use sipwire::resolve::{Scheme, SipTarget, Transport};

/// P1, P2 and the DNS server they resolve with.
pub struct Fig {
    pub p1: Peer,
    pub p2: Peer,
    pub _dns: TestDns,
}

/// Starts P1 and P2 (`alias` on or off) speaking these TLS versions.
pub async fn figure(
    add_alias: bool,
    versions: &'static [&'static rustls::SupportedProtocolVersion],
) -> Fig {
    let ca = Ca::new();
    let p1_cert = ca.leaf(
        &["example.com", "p1.example.com"],
        &["sip:example.com", "sip:p1.example.com"],
    );
    let p2_cert = ca.leaf(
        &["example.net", "p2.example.net"],
        &["sip:example.net", "sip:p2.example.net"],
    );
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
        false,
    )
    .await;
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
        Zone::new("example.net.")
            .srv(
                "_sips._tcp.example.net.",
                0,
                0,
                b2.tls.port(),
                "p2.example.net.",
            )
            .a("p2.example.net.", "127.0.0.2"),
    ])
    .await;
    let p1 = b1.start(
        Some(dns.addr),
        config(vec![domain("example.com", "p1.example.com")], add_alias),
    );
    let p2 = b2.start(
        Some(dns.addr),
        config(vec![domain("example.net", "p2.example.net")], add_alias),
    );
    Fig { p1, p2, _dns: dns }
}

/// `sips:<domain>`.
pub fn sips(domain: &str) -> SipTarget {
    SipTarget::new(Scheme::Sips, domain, None, None).expect("target")
}

/// An alias table row over TLS, as the dump shows it.
pub fn row(ip: &str, port: u16, ids: &[&str], descriptor: String, origin: RowOrigin) -> RowDump {
    RowDump {
        ip: ip.parse().expect("ip"),
        port,
        transport: Transport::Tls,
        identities: ids.iter().map(|s| s.to_string()).collect(),
        descriptor,
        origin,
    }
}
