//! The alias-table dump: `sipwire alias-table` asks a gateway's admin socket (state dir) and
//! prints the live RFC 5923 tables as JSON; `sipwire run` serves that socket.

#[path = "../../tests/support/mod.rs"]
mod support;

use sipwire::alias::AliasDecision;
use sipwire_gateway::admin;
use std::process::Command;
use support::dns::{start_dns, Zone};
use support::pki::Ca;
use support::reuse::*;
use support::sip::*;

fn alias_table_cli(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_sipwire"))
        .arg("alias-table")
        .args(args)
        .output()
        .expect("run sipwire alias-table");
    assert!(
        out.status.success(),
        "sipwire alias-table failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alias_table_subcommand_prints_live_rows() {
    let ca = Ca::new("reuse CA");
    let c1 = ca.sip_leaf(&["example.com", "p1.example.com"]);
    let c2 = ca.sip_leaf(&["example.net", "p2.example.net"]);
    let b1 = bind(
        "127.0.0.1",
        ca.server_config(&c1, &[], TLS13),
        ca.client_config(Some(&c1), TLS13),
        false,
    )
    .await;
    let b2 = bind(
        "127.0.0.2",
        ca.server_config(&c2, &[], TLS13),
        ca.client_config(Some(&c2), TLS13),
        false,
    )
    .await;
    let dns = start_dns(vec![Zone::new("example.net.")
        .srv(
            "_sips._tcp.example.net.",
            0,
            0,
            b2.tls.port(),
            "p2.example.net.",
        )
        .a("p2.example.net.", "127.0.0.2")])
    .await;
    let p1 = b1.start(
        Some(dns.addr),
        config(vec![domain("example.com", "p1.example.com")], true),
    );
    let mut p2 = b2.start(
        None,
        config(vec![domain("example.net", "p2.example.net")], true),
    );
    let r = forwarded("OPTIONS", "sips:example.net", "example.com", "adm", 1);
    let target = sips("example.net");
    p1.endpoint
        .send_request("example.com", &target, &r, "z9hG4bKadm")
        .await
        .expect("P1 -> P2");
    assert_eq!(p2.next_request().await.decision, Some(AliasDecision::Added));

    let state = tempfile::tempdir().expect("tempdir");
    let server = admin::serve(state.path(), p2.endpoint.clone()).expect("admin socket");
    let dir = state.path().to_str().expect("utf-8 path").to_owned();
    let v = tokio::task::spawn_blocking(move || alias_table_cli(&["--state-dir", &dir]))
        .await
        .expect("cli task");
    assert_eq!(v["counters"]["rows"], 1);
    assert_eq!(v["counters"]["added"], 1);
    let row = &v["tables"][0]["rows"][0];
    assert_eq!(v["tables"][0]["local_domain"], "example.net");
    assert_eq!(row["ip"], "127.0.0.1");
    assert_eq!(row["port"], p1.tls.port());
    assert_eq!(row["transport"], "tls");
    assert!(row["descriptor"]
        .as_str()
        .expect("descriptor")
        .starts_with("tls#"));
    assert_eq!(row["identities"][0], "example.com");
    assert_eq!(row["origin"], "Inbound");
    // --text: one line per row.
    let dir = state.path().to_str().expect("utf-8 path").to_owned();
    let text = tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_sipwire"))
            .args(["alias-table", "--text", "--state-dir", &dir])
            .output()
            .expect("run sipwire alias-table --text");
        assert!(out.status.success());
        String::from_utf8(out.stdout).expect("utf-8")
    })
    .await
    .expect("cli task");
    let first = text.lines().next().expect("a row line");
    assert!(
        first.starts_with(&format!(
            "example.net 127.0.0.1:{} tls example.com,p1.example.com tls#",
            p1.tls.port()
        )),
        "{text}"
    );
    assert!(first.ends_with(" Inbound"), "{text}");
    // Unknown commands get an error object, not a hang.
    let e = admin::query(state.path(), "bogus").await.expect("query");
    assert!(e.contains("error"), "{e}");
    server.abort();
}

#[test]
fn sipwire_run_serves_the_admin_socket() {
    let state = tempfile::tempdir().expect("tempdir");
    let cfg = format!(
        "[[listener]]\nname = 's'\ntransport = 'tls'\naddr = '127.0.0.1:0'\ndomain = 'localhost'\n\
         [tls]\ndev_ca = true\n[state]\ndir = '{}'\n",
        state.path().display()
    );
    let gw = support::gateway::start(state.path(), &cfg);
    let admin_line = gw.printed("sipwire: admin socket ");
    let sock = state.path().join("admin.sock");
    assert_eq!(admin_line, sock.to_str());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&sock)
            .expect("socket exists")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "admin socket is private");
    let path = state.path().join("sipwire.toml");
    let v = alias_table_cli(&["--config", path.to_str().expect("utf-8")]);
    assert_eq!(v["counters"]["rows"], 0);
    assert_eq!(v["tables"], serde_json::json!([]));
    drop(gw);
}
