//! TLS failures are counted by reason: an RFC 5922 identity mismatch is
//! `reason="identity_mismatch"` on the client, an ALPN refusal `no_application_protocol`
//! (only other ids offered) or `no_alpn_offered` (none offered) on the server. A test binary of its own: it installs the global metrics recorder.

mod support;

use sipwire::tls::{AlpnPolicy, ClientCertPolicy, ServerCerts};
use sipwire::transport::{Target, TransportError, TransportKind};
use support::pki::{Ca, Spec};
use support::poll::{eventually, WAIT};
use support::tls::*;
use support::transport::{any, transport};

#[tokio::test]
async fn handshake_failures_are_counted_by_reason() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("recorder");
    let ca = Ca::new("metrics CA");
    let leaf = ca.leaf(&Spec::uris(&["sip:example.net"]));
    let (srv, _srx) = transport();
    let (sc, _) = server(
        &ca,
        ServerCerts::new(leaf.certified()),
        ClientCertPolicy::Optional,
        AlpnPolicy::Require,
    );
    let addr = srv.bind_tls(any(), sc).await.expect("bind");

    let (cli, _crx) = tls_client(&ca);
    let t = Target::new(TransportKind::Tls, addr).with_server_name("example.com");
    let err = cli.connect(&t).await.expect_err("mismatch");
    assert!(
        matches!(err, TransportError::IdentityMismatch { .. }),
        "{err}"
    );

    assert!(peek(addr, Some("example.net"), &[b"h2"], None)
        .await
        .is_err());
    // No ALPN at all under `require`: refused, counted with its own reason.
    assert!(peek(addr, Some("example.net"), &[], None).await.is_err());

    eventually(WAIT, "both failures counted", || {
        let text = handle.render();
        let has = |reason: &str, direction: &str| {
            text.lines().any(|l| {
                l.starts_with("sipwire_transport_tls_handshake_failures_total{")
                    && l.contains(&format!("reason=\"{reason}\""))
                    && l.contains(&format!("direction=\"{direction}\""))
                    && l.ends_with(" 1")
            })
        };
        has("identity_mismatch", "outbound")
            && has("no_application_protocol", "inbound")
            && has("no_alpn_offered", "inbound")
    })
    .await;
}
