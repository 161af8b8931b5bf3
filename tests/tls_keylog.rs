//! SSLKEYLOGFILE: with `keylog` on, both sides write their TLS secrets to the file the
//! variable names (for Wireshark). A test binary of its own: it sets the variable.

mod support;

use std::sync::Arc;

use sipwire::tls::{
    AlpnPolicy, ClientCertPolicy, ClientCerts, ClientSettings, ClientTls, ServerCerts,
    ServerSettings, SniResolver,
};
use sipwire::transport::{Target, TransportKind};
use support::pki::{Ca, Spec};
use support::poll::{eventually, WAIT};
use support::tls::*;
use support::transport::{any, transport};

#[tokio::test]
async fn keylog_writes_secrets_to_sslkeylogfile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("keys.log");
    // Read when the configurations are built, below; nothing else in this binary reads it.
    std::env::set_var("SSLKEYLOGFILE", &file);
    let ca = Ca::new("keylog CA");
    let leaf = ca.leaf(&Spec::uris(&["sip:example.com"]));
    let resolver = SniResolver::new(
        ServerCerts::new(leaf.certified()),
        AlpnPolicy::Offer,
        sip2(),
    );
    let sc = sipwire::tls::server_config(
        &ServerSettings {
            client_roots: ca.roots(),
            client_cert: ClientCertPolicy::Optional,
            alpn: AlpnPolicy::Offer,
            alpn_ids: sip2(),
            keylog: true,
        },
        Arc::clone(&resolver),
    )
    .expect("server config");
    let tls = ClientTls::new(
        &ClientSettings {
            roots: ca.roots(),
            alpn: AlpnPolicy::Offer,
            alpn_ids: sip2(),
            keylog: true,
        },
        ClientCerts::new(None),
        &[],
    )
    .expect("client tls");
    let (srv, _srx) = transport();
    let addr = srv.bind_tls(any(), sc).await.expect("bind");
    let (cli, _crx) = transport();
    tls.install(&cli);
    let t = Target::new(TransportKind::Tls, addr).with_server_name("example.com");
    cli.connect(&t).await.expect("connect");
    eventually(WAIT, "both sides logged their secrets", || {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        // TLS 1.3 labels; each secret is logged by client and server.
        text.matches("CLIENT_TRAFFIC_SECRET_0 ").count() >= 2
            && text.matches("SERVER_HANDSHAKE_TRAFFIC_SECRET ").count() >= 2
    })
    .await;
}
