//! Round trips over UDP, TCP and TLS on loopback, IPv4 and IPv6, between two
//! `Transport` instances; TLS with certificates generated here.

mod support;

use std::net::SocketAddr;

use bytes::Bytes;
use sipwire::transport::{Target, Transport, TransportConfig, TransportKind};
use sipwire::wire::response::response_to;
use sipwire::wire::Rport;
use support::pki::Localhost;
use support::sip::options;
use support::transport::*;

fn cfg() -> TransportConfig {
    TransportConfig {
        identities: Some(sipwire::tls::identity_fn()),
        ..TransportConfig::default()
    }
}

async fn round_trip(kind: TransportKind, ip: &str, client_cert: bool) {
    let pki = Localhost::generate();
    let any: SocketAddr = format!("{ip}:0").parse().expect("addr");
    let (server, mut srx) = Transport::new(cfg());
    let (client, mut crx) = Transport::new(cfg());
    let server_addr = match kind {
        TransportKind::Udp => server.bind_udp(any).await,
        TransportKind::Tcp => server.bind_tcp(any).await,
        TransportKind::Tls => server.bind_tls(any, pki.server_config()).await,
        k => panic!("{k} not tested here"),
    }
    .unwrap_or_else(|e| panic!("bind {kind} {any}: {e} (is {ip} configured on lo?)"));
    // The client has its own listeners (its sent-by), as a SIP element would.
    let client_addr = client.bind_udp(any).await.expect("client udp");
    client.set_tls_client(pki.client_config(client_cert));

    let token = kind.via_token();
    for i in 0..3 {
        let req = options(token, client_addr, server_addr, &format!("rt{i}"));
        let mut target = Target::new(kind, server_addr);
        if kind == TransportKind::Tls {
            target = target.with_server_name("localhost");
        }
        let flow = client
            .send_to(&target, Bytes::from(req))
            .await
            .unwrap_or_else(|e| panic!("send_to {kind}: {e}"));
        assert_eq!(flow.kind(), kind);

        let inc = next(&mut srx).await;
        assert_eq!(inc.transport(), kind);
        assert_eq!(inc.local, server_addr);
        assert_eq!(inc.source.ip(), server_addr.ip());
        let via = inc.message.top_via().expect("via");
        assert_eq!(
            via.rport,
            Some(Rport::Port(inc.source.port())),
            "rport filled"
        );
        assert_eq!(
            via.received,
            Some(inc.source.ip()),
            "received added (rport present)"
        );
        if kind == TransportKind::Tls && client_cert {
            assert_eq!(&*inc.identities, ["client.example.net".to_string()]);
        } else {
            assert!(inc.identities.is_empty());
        }
        let info = server.flow_info(inc.flow).expect("flow info");
        assert_eq!(info.peer, inc.source);

        server
            .send(inc.flow, response_to(&inc.message, 200, "OK"))
            .expect("respond");
        let resp = next(&mut crx).await;
        assert_eq!(resp.message.status_code(), Some(200));
        assert_eq!(resp.flow, flow, "response on the flow the request left on");
        if kind == TransportKind::Tls {
            assert_eq!(&*resp.identities, ["localhost".to_string()]);
        }
    }
    // Connection reuse: three requests, one connection each way.
    if kind.is_reliable() {
        assert_eq!(client.stats().stream_flows, 1);
        assert_eq!(server.stats().stream_flows, 1);
    } else {
        assert_eq!(client.stats().udp_flows, 1);
    }
    client.shutdown(std::time::Duration::from_millis(100)).await;
    server.shutdown(std::time::Duration::from_millis(100)).await;
    assert_eq!(client.stats().tasks, 0);
    assert_eq!(server.stats().tasks, 0);
}

#[tokio::test]
async fn udp_ipv4() {
    round_trip(TransportKind::Udp, "127.0.0.1", false).await;
}

#[tokio::test]
async fn udp_ipv6() {
    round_trip(TransportKind::Udp, "[::1]", false).await;
}

#[tokio::test]
async fn tcp_ipv4() {
    round_trip(TransportKind::Tcp, "127.0.0.1", false).await;
}

#[tokio::test]
async fn tcp_ipv6() {
    round_trip(TransportKind::Tcp, "[::1]", false).await;
}

#[tokio::test]
async fn tls_ipv4_with_client_certificate() {
    round_trip(TransportKind::Tls, "127.0.0.1", true).await;
}

#[tokio::test]
async fn tls_ipv6_without_client_certificate() {
    round_trip(TransportKind::Tls, "[::1]", false).await;
}

#[tokio::test]
async fn tls_wrong_server_name_fails_and_is_not_reused() {
    let pki = Localhost::generate();
    let (server, _srx) = Transport::new(cfg());
    let (client, _crx) = Transport::new(cfg());
    let addr = server
        .bind_tls("127.0.0.1:0".parse().expect("addr"), pki.server_config())
        .await
        .expect("bind");
    client.set_tls_client(pki.client_config(false));
    let t = Target::new(TransportKind::Tls, addr).with_server_name("other.example.net");
    let err = client
        .connect(&t)
        .await
        .expect_err("must fail verification");
    assert!(err.to_string().contains("bad_certificate"), "{err}");
    assert_eq!(client.stats().stream_flows, 0);
    assert_eq!(client.stats().admitted, 0);
}

#[tokio::test]
async fn concurrent_senders_share_one_connection() {
    let pki = Localhost::generate();
    let (server, _srx) = Transport::new(cfg());
    let (client, _crx) = Transport::new(cfg());
    let addr = server
        .bind_tls("127.0.0.1:0".parse().expect("addr"), pki.server_config())
        .await
        .expect("bind");
    client.set_tls_client(pki.client_config(false));
    let t = Target::new(TransportKind::Tls, addr).with_server_name("localhost");
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (c, t) = (client.clone(), t.clone());
        set.spawn(async move { c.connect(&t).await.expect("connect") });
    }
    let mut flows = Vec::new();
    while let Some(f) = set.join_next().await {
        flows.push(f.expect("join"));
    }
    flows.dedup();
    assert_eq!(flows.len(), 1, "{flows:?}");
    assert_eq!(client.stats().stream_flows, 1);
}
