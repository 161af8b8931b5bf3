//! `sipwire run` applies RFC 5923 server-side rules to what it receives: a TLS client with a
//! certificate (from a CA in `ca_files`) sending `alias` gets a row in the listener domain's
//! table, a client without certificate does not and the refusal is counted; `sipwire
//! alias-table` shows both.

#[path = "../../tests/gateway_support/mod.rs"]
mod gateway_support;
#[path = "../../tests/reuse_support/mod.rs"]
mod reuse_support;

use bytes::Bytes;
use reuse_support::pki::Ca;
use reuse_support::*;
use sipwire::transport::{Target, TransportKind};
use std::net::SocketAddr;
use std::process::Command;

struct Gateway {
    _run: gateway_support::Running,
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
    let run = gateway_support::start(state.path(), &cfg);
    Gateway {
        tls: run.listener("tls"),
        _run: run,
        config: state.path().join("sipwire.toml"),
        state,
    }
}

fn options(sent_by: &str, call: &str) -> Bytes {
    Bytes::from(format!(
        "OPTIONS sip:localhost SIP/2.0\r\n\
Via: SIP/2.0/TLS {sent_by};branch=z9hG4bK{call};alias\r\n\
Max-Forwards: 70\r\nFrom: <sip:a@client.example.com>;tag={call}\r\nTo: <sip:localhost>\r\n\
Call-ID: {call}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ))
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
    let ca = Ca::new();
    let gw = start(&ca.pem());
    let dev_ca_pem = std::fs::read(gw.state.path().join("dev-ca/ca.pem")).expect("dev CA");
    let dev_roots: Vec<_> = rustls_pemfile::certs(&mut dev_ca_pem.as_slice())
        .collect::<Result<_, _>>()
        .expect("dev CA PEM");
    let leaf = ca.leaf(&["client.example.com"], &[]);
    let target = Target::new(TransportKind::Tls, gw.tls).with_server_name("localhost");

    // With a certificate: recorded.
    let with = bind(
        "127.0.0.1",
        ca.server_config(&leaf, &[], TLS13),
        ca.client_config_trusting(dev_roots.clone(), Some(&leaf)),
        false,
    )
    .await
    .start(
        None,
        config(
            vec![domain("client.example.com", "client.example.com")],
            true,
        ),
    );
    let sent_by = format!("client.example.com:{}", with.tls.port());
    with.transport
        .send_to(&target, options(&sent_by, "gw1"))
        .await
        .expect("connect to the gateway");
    let mut with = with;
    assert_eq!(with.next_response().await.message.status_code(), Some(200));

    // Without: ignored, counted.
    let mut without = bind(
        "127.0.0.1",
        ca.server_config(&leaf, &[], TLS13),
        ca.client_config_trusting(dev_roots, None),
        false,
    )
    .await
    .start(
        None,
        config(
            vec![domain("client.example.com", "client.example.com")],
            true,
        ),
    );
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
