//! A reload that changes `[alias]` applies to the next requests without a restart: with
//! `accept = false` an authenticated client's `alias` is refused by policy, and the rows
//! accepted under the old policy are gone.

mod ops_support;
#[path = "../../tests/support/mod.rs"]
mod support;

use bytes::Bytes;
use ops_support::{output, Gateway};
use sipwire::transport::{Target, TransportKind};
use support::pki::{client_config, Ca};
use support::reuse::*;

fn options(sent_by: &str, call: &str) -> Bytes {
    Bytes::from(format!(
        "OPTIONS sip:localhost SIP/2.0\r\n\
Via: SIP/2.0/TLS {sent_by};branch=z9hG4bK{call};alias\r\n\
Max-Forwards: 70\r\nFrom: <sip:a@client.example.com>;tag={call}\r\nTo: <sip:localhost>\r\n\
Call-ID: {call}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ))
}

fn admin(state: &std::path::Path, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend(["--state-dir", state.to_str().expect("utf-8")]);
    let out = output(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_a_new_alias_policy_to_the_next_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("peers CA");
    let ca_path = dir.path().join("peers-ca.pem");
    std::fs::write(&ca_path, ca.pem()).expect("write CA");
    let state = dir.path().join("state");
    let gateway_config = |alias: &str| {
        format!(
            "[[listener]]\nname = 's'\ntransport = 'tls'\naddr = '127.0.0.1:0'\n\
             domain = 'localhost'\n[tls]\ndev_ca = true\nca_files = ['{}']\n[state]\ndir = '{}'\n{alias}",
            ca_path.display(),
            state.display()
        )
    };
    let path = dir.path().join("sipwire.toml");
    std::fs::write(&path, gateway_config("")).expect("write");
    let gw = Gateway::start(&path, &[], &[]);
    let dev_roots = support::gateway::dev_ca_roots(&state);
    let leaf = ca.sip_leaf(&["client.example.com"]);
    let target = Target::new(TransportKind::Tls, gw.listener("tls")).with_server_name("localhost");
    let client = || async {
        bind(
            "127.0.0.1",
            ca.server_config(&leaf, &[], TLS13),
            client_config(dev_roots.clone(), Some(&leaf), TLS13),
            false,
        )
        .await
        .start(
            None,
            config(
                vec![domain("client.example.com", "client.example.com")],
                true,
            ),
        )
    };

    let mut first = client().await;
    let sent_by = format!("client.example.com:{}", first.tls.port());
    first
        .transport
        .send_to(&target, options(&sent_by, "a1"))
        .await
        .expect("send");
    assert_eq!(first.next_response().await.message.status_code(), Some(200));
    let st = state.clone();
    let table = move || -> serde_json::Value {
        serde_json::from_str(&admin(&st, &["alias-table"])).expect("JSON")
    };
    let t = table.clone();
    let v = tokio::task::spawn_blocking(t).await.expect("cli");
    assert_eq!(v["counters"]["rows"], 1, "{v}");

    std::fs::write(&path, gateway_config("[alias]\naccept = false\n")).expect("write");
    let st = state.clone();
    let text = tokio::task::spawn_blocking(move || admin(&st, &["reload"]))
        .await
        .expect("cli");
    assert!(text.contains("applied: [alias] accept\n"), "{text}");

    let t = table.clone();
    let v = tokio::task::spawn_blocking(t).await.expect("cli");
    assert_eq!(
        v["counters"]["rows"], 0,
        "rows of the old policy are gone: {v}"
    );
    let mut second = client().await;
    let sent_by = format!("client.example.com:{}", second.tls.port());
    second
        .transport
        .send_to(&target, options(&sent_by, "a2"))
        .await
        .expect("send");
    assert_eq!(
        second.next_response().await.message.status_code(),
        Some(200)
    );
    let v = tokio::task::spawn_blocking(table).await.expect("cli");
    assert_eq!(v["counters"]["rows"], 0, "{v}");
    assert_eq!(v["counters"]["ignored"]["policy_refused"], 1, "{v}");
    drop(gw);
}
