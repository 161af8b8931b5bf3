//! Configuration reload of `sipwire run --config FILE` with the real binary: SIGHUP (and
//! `sipwire reload`) re-read the file; certificates and `[alias]` apply without dropping
//! flows, a listener change is logged as needing a restart, and a file that fails the
//! checks is refused while the gateway keeps serving with the old configuration.

mod ops_support;
#[path = "../../tests/support/mod.rs"]
mod support;

use ops_support::{output, Gateway};
use std::path::Path;
use support::pki::{Ca, Spec};
use support::tls::peek;

const TCP: &str = "[[listener]]\nname = 'tcp'\ntransport = 'tcp'\naddr = '127.0.0.1:0'\n";

fn state(dir: &Path) -> String {
    format!("[state]\ndir = '{}'\n", dir.join("state").display())
}

fn reload_cli(dir: &Path) -> (bool, String) {
    let state = dir.join("state");
    let out = output(&["reload", "--state-dir", state.to_str().expect("utf-8")]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_new_certificate_files_and_alias_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("reload CA");
    let ca_pem = ca.write_pem(dir.path());
    let v1 = ca.leaf(&Spec::uris(&["sip:example.com"]).with_ips(&["127.0.0.1"]));
    let v2 = ca.leaf(&Spec::uris(&["sip:example.com"]).with_ips(&["127.0.0.1"]));
    let (c1, k1) = v1.write_pem(dir.path(), "v1");
    let (c2, k2) = v2.write_pem(dir.path(), "v2");
    let config = |cert: &Path, key: &Path, alias: &str| {
        format!(
            "{TCP}[[listener]]\nname = 'tls'\ntransport = 'tls'\naddr = '127.0.0.1:0'\n\
             cert = '{}'\nkey = '{}'\n[tls]\nca_files = ['{}']\n{}{alias}",
            cert.display(),
            key.display(),
            ca_pem.display(),
            state(dir.path()),
        )
    };
    let path = dir.path().join("sipwire.toml");
    std::fs::write(&path, config(&c1, &k1, "")).expect("write");
    let gw = Gateway::start(&path, &[], &[]);
    let tls = gw.listener("tls");
    let mut before = peek(tls, None, &[], None).await.expect("peek");
    assert_eq!(before.cert, v1.der());

    // Other certificate files and another alias policy: both apply on SIGHUP.
    std::fs::write(&path, config(&c2, &k2, "[alias]\naccept = false\n")).expect("write");
    gw.signal("HUP");
    let seen = gw.wait_stdout(&format!(
        "sipwire: configuration reloaded from {}",
        path.display()
    ));
    assert!(
        !seen.iter().any(|l| l.contains("needs a restart")),
        "{seen:?}"
    );
    gw.wait_stdout("sipwire: TLS certificates reloaded");
    assert_eq!(
        peek(tls, None, &[], None).await.expect("peek").cert,
        v2.der()
    );
    gw.wait_stderr("change=[alias] accept");
    // The connection made before the reload is still served.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let local = before.stream.get_ref().0.local_addr().expect("local");
    before
        .stream
        .write_all(support::sip::options("TLS", local, tls, "old").as_bytes())
        .await
        .expect("write");
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(support::poll::WAIT, before.stream.read(&mut buf))
        .await
        .expect("answer in time")
        .expect("read");
    assert!(buf[..n].starts_with(b"SIP/2.0 200"));

    // `sipwire reload` asks the same over the admin socket.
    let d = dir.path().to_owned();
    let (ok, text) = tokio::task::spawn_blocking(move || reload_cli(&d))
        .await
        .expect("cli");
    assert!(ok, "{text}");
    assert_eq!(
        text,
        format!(
            "reloaded from {}\napplied: TLS certificates re-read\n",
            path.display()
        )
    );
}

#[test]
fn a_broken_file_is_refused_and_the_old_configuration_keeps_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sipwire.toml");
    std::fs::write(&path, format!("{TCP}{}", state(dir.path()))).expect("write");
    let gw = Gateway::start(&path, &[], &[]);
    let tcp = gw.listener("tcp");
    assert_eq!(ops_support::options_over_tcp(tcp, ""), "SIP/2.0 200 OK");

    // Not TOML.
    std::fs::write(&path, "[[listener]\nname = 'tcp'\n").expect("write");
    gw.signal("HUP");
    gw.wait_stdout("sipwire: reload refused, old configuration kept (1 problem)");
    let logged = gw.wait_stderr("configuration reload refused");
    assert!(logged.contains("ERROR"), "{logged}");
    assert!(
        logged.contains(&format!("{}:1:11: ", path.display())),
        "{logged}"
    );
    assert_eq!(ops_support::options_over_tcp(tcp, ""), "SIP/2.0 200 OK");

    // TOML, but two rules broken: both reported, through `sipwire reload` too.
    std::fs::write(
        &path,
        format!(
            "{TCP}[limits]\nidle_timeout_secs = 5\nmax_connections = 0\n{}",
            state(dir.path())
        ),
    )
    .expect("write");
    let (ok, text) = reload_cli(dir.path());
    assert!(!ok);
    let p = path.display();
    assert_eq!(
        text,
        format!(
            "refused, the old configuration stays ({p})\n\
             error: {p}:6:1: idle_timeout_secs = 5 is below 64*T1; expected at least 32 \
             (RFC 3261 §18)\n\
             error: {p}:7:1: limit max_connections = 0; expected a number greater than zero\n"
        )
    );
    gw.wait_stdout("sipwire: reload refused, old configuration kept (2 problems)");
    assert_eq!(ops_support::options_over_tcp(tcp, ""), "SIP/2.0 200 OK");
}

#[test]
fn a_listener_change_needs_a_restart_and_the_listener_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sipwire.toml");
    std::fs::write(&path, format!("{TCP}{}", state(dir.path()))).expect("write");
    let gw = Gateway::start(&path, &[], &[]);
    let tcp = gw.listener("tcp");
    std::fs::write(
        &path,
        format!(
            "{}[limits]\nidle_timeout_secs = 900\n{}",
            TCP.replace("127.0.0.1:0", "127.0.0.2:0"),
            state(dir.path())
        ),
    )
    .expect("write");
    gw.signal("HUP");
    let seen = gw.wait_stdout(&format!(
        "sipwire: configuration reloaded from {}",
        path.display()
    ));
    assert_eq!(
        seen,
        [
            "sipwire: listener tcp addr changed: needs a restart, not applied",
            "sipwire: [limits] idle_timeout_secs changed: needs a restart, not applied",
        ]
    );
    let warned = gw.wait_stderr("needs a restart");
    assert!(
        warned.contains("WARN") && warned.contains("listener tcp addr"),
        "{warned}"
    );
    assert_eq!(ops_support::options_over_tcp(tcp, ""), "SIP/2.0 200 OK");
}
