//! RFC 5923 reuse metrics through a real Prometheus recorder: rows gauge, reuses, new flows and
//! refusals by reason.

mod support;

use sipwire::alias::{AliasDecision, IgnoreReason};
use sipwire::transport::{Target, TransportKind};
use support::fig::figure;
use support::prometheus::value;
use support::reuse::*;
use support::sip::*;

#[tokio::test]
async fn alias_metrics_are_published() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder of this test binary");
    let f = figure(true, TLS13).await;
    let (ca, p1, mut p2) = (f.ca, f.p1, f.p2);
    let p2_tls = p2.tls;
    // P1 -> P2 (new flow, row on both sides), P2 -> P1 twice (reuses).
    let r = forwarded("OPTIONS", "sips:example.net", "example.com", "m1", 1);
    let to_net = sips("example.net");
    p1.endpoint
        .send_request("example.com", &to_net, &r, "z9hG4bKm1")
        .await
        .expect("P1 -> P2");
    assert_eq!(p2.next_request().await.decision, Some(AliasDecision::Added));
    let to_com = sips("example.com");
    for i in 0..2 {
        let r = forwarded(
            "OPTIONS",
            "sips:example.com",
            "example.net",
            &format!("b{i}"),
            1,
        );
        let s = p2
            .endpoint
            .send_request("example.net", &to_com, &r, &format!("z9hG4bKb{i}"))
            .await
            .expect("P2 -> P1");
        assert!(s.reused);
    }
    // An alias without a client certificate, refused and counted.
    let own = ca.sip_leaf(&["attacker.example.org"]);
    let att = bind(
        "127.0.0.1",
        ca.server_config(&own, &[], TLS13),
        ca.client_config(None, TLS13),
        false,
    )
    .await;
    let forged = alias_options(
        "TLS",
        "p1.example.com",
        "sips:example.net",
        "sip:m@example.com",
        "x",
    );
    att.transport
        .send_to(
            &Target::new(TransportKind::Tls, p2_tls).with_server_name("example.net"),
            forged,
        )
        .await
        .expect("attacker connects");
    assert_eq!(
        p2.next_request().await.decision,
        Some(AliasDecision::Ignored(IgnoreReason::NoClientCertificate))
    );

    let text = handle.render();
    // Both endpoints publish into the one recorder: 2 rows (one per side).
    assert_eq!(value(&text, "sipwire_alias_rows"), Some(2.0), "{text}");
    assert_eq!(
        value(&text, "sipwire_alias_reuses_total"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "sipwire_alias_new_flows_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "sipwire_alias_refusals_total{reason=\"no_client_certificate\"}"
        ),
        Some(1.0),
        "{text}"
    );
}
