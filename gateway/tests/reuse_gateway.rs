//! `sipwire run` applies RFC 5923 server-side rules to what it receives: a TLS client with a
//! certificate (from a CA in `ca_files`) sending `alias` gets a row in the listener domain's
//! table, a client without certificate does not and the refusal is counted; `sipwire
//! alias-table` shows both.

#[path = "../../tests/support/mod.rs"]
mod support;

use bytes::Bytes;
use rustls::RootCertStore;
use sipwire::transport::{Target, TransportKind};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use support::pki::{client_config, Ca, Leaf};
use support::reuse::*;
use support::sip::*;

struct Gateway {
    _run: support::gateway::Running,
    tls: SocketAddr,
    config: std::path::PathBuf,
    state: tempfile::TempDir,
}

fn start(ca_pem: &str) -> Gateway {
    let state = tempfile::tempdir().expect("tempdir");
    let ca_path = state.path().join("peers-ca.pem");
    std::fs::write(&ca_path, ca_pem).expect("write CA");
    let cfg = format!(
        "[[listener]]\nname = 's'\ntransport = 'tls'\naddr = '127.0.0.1:0'\ndomain = 'localhost'\n\
         client_cert = 'optional'\n\
         [tls]\ndev_ca = true\nca_files = ['{}']\n[state]\ndir = '{}'\n",
        ca_path.display(),
        state.path().display()
    );
    let run = support::gateway::start(state.path(), &cfg);
    Gateway {
        tls: run.listener("tls"),
        _run: run,
        config: state.path().join("sipwire.toml"),
        state,
    }
}

fn options(sent_by: &str, call: &str) -> Bytes {
    alias_options(
        "TLS",
        sent_by,
        "sip:localhost",
        "sip:a@client.example.com",
        call,
    )
}

/// A client of the gateway as client.example.com (certificate `leaf` from `ca`), trusting
/// `roots`, presenting its certificate or not.
async fn client(ca: &Ca, leaf: &Leaf, roots: Arc<RootCertStore>, present: bool) -> Peer {
    let peer = bind(
        "127.0.0.1",
        ca.server_config(leaf, &[], TLS13),
        client_config(roots, present.then_some(leaf), rustls::DEFAULT_VERSIONS),
        false,
    )
    .await;
    let domains = vec![domain("client.example.com", "client.example.com")];
    peer.start(None, config(domains, true))
}

fn alias_table(gw: &Gateway) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_sipwire"))
        .args(["alias-table", "--config"])
        .arg(&gw.config)
        .output()
        .expect("run sipwire alias-table");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipwire_run_records_authenticated_aliases_only() {
    let ca = Ca::new("reuse CA");
    let gw = start(&ca.pem());
    let dev_roots = support::gateway::dev_ca_roots(gw.state.path());
    let leaf = ca.sip_leaf(&["client.example.com"]);
    let target = Target::new(TransportKind::Tls, gw.tls).with_server_name("localhost");

    // With a certificate: recorded.
    let with = client(&ca, &leaf, dev_roots.clone(), true).await;
    let sent_by = format!("client.example.com:{}", with.tls.port());
    with.transport
        .send_to(&target, options(&sent_by, "gw1"))
        .await
        .expect("connect to the gateway");
    let mut with = with;
    assert_eq!(with.next_response().await.message.status_code(), Some(200));

    // Without: ignored, counted.
    let mut without = client(&ca, &leaf, dev_roots, false).await;
    without
        .transport
        .send_to(&target, options("client.example.com:5999", "gw2"))
        .await
        .expect("connect to the gateway");
    assert_eq!(
        without.next_response().await.message.status_code(),
        Some(200)
    );

    let v = tokio::task::spawn_blocking(move || {
        let v = alias_table(&gw);
        drop(gw);
        v
    })
    .await
    .expect("cli");
    assert_eq!(v["counters"]["rows"], 1, "{v}");
    assert_eq!(v["counters"]["ignored"]["no_client_certificate"], 1, "{v}");
    let t = &v["tables"][0];
    assert_eq!(t["local_domain"], "localhost");
    assert_eq!(t["rows"][0]["ip"], "127.0.0.1");
    assert_eq!(t["rows"][0]["port"], with.tls.port());
    assert_eq!(
        t["rows"][0]["identities"],
        serde_json::json!(["client.example.com"])
    );
    assert_eq!(t["rows"][0]["origin"], "Inbound");
}
