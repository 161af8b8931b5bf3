//! Configuration reload of `sipwire run --config FILE` with the real binary: SIGHUP (and
//! `sipwire reload`) re-read the file; certificates and `[alias]` apply without dropping
//! flows, `[limits]` applies with connections open (but for socket buffers), a listener
//! change is logged as needing a restart, and a file that fails the checks is refused while
//! the gateway keeps serving with the old configuration.

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
            "{}[limits]\ntcp_recv_buffer_bytes = 900\n{}",
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
            "sipwire: [limits] tcp_recv_buffer_bytes (set when a socket binds) changed: needs a \
             restart, not applied",
        ]
    );
    let warned = gw.wait_stderr("needs a restart");
    assert!(
        warned.contains("WARN") && warned.contains("listener tcp addr"),
        "{warned}"
    );
    assert_eq!(ops_support::options_over_tcp(tcp, ""), "SIP/2.0 200 OK");
}

/// The `flows` admin answer of the gateway whose state directory is under `dir`.
fn admin_flows(dir: &Path) -> serde_json::Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let json = rt
        .block_on(sipwire_gateway::admin::query(&dir.join("state"), "flows"))
        .expect("admin flows");
    serde_json::from_str(&json).expect("JSON")
}

/// The Prometheus exposition of the exporter at `addr`.
fn scrape(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the exporter");
    s.set_read_timeout(Some(support::poll::WAIT))
        .expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .expect("request");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

/// The value of one series, `None` when absent.
fn series(exported: &str, name: &str) -> Option<f64> {
    exported
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// An OPTIONS on an open TCP connection; the status line of the answer.
fn options_on(s: &mut std::net::TcpStream, to: std::net::SocketAddr, branch: &str) -> String {
    use std::io::{Read, Write};
    let local = s.local_addr().expect("local");
    s.write_all(support::sip::options("TCP", local, to, branch).as_bytes())
        .expect("write");
    let mut buf = Vec::new();
    let mut b = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut b).expect("read");
        assert!(n > 0, "closed without an answer");
        buf.extend_from_slice(&b[..n]);
    }
    String::from_utf8_lossy(&buf)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// `[limits]` applies on SIGHUP without dropping a flow: with a connection open, the per-IP
/// limit goes down to 1 and the idle timeout to 40 s; the open connection is still served, a
/// second one from the same IP is refused (counted and logged with its reason), and the
/// admin answer and the metrics show the new limits and the refusal. A socket buffer change
/// needs a restart, and the buffer the kernel granted the UDP listener is reported.
#[test]
fn sighup_applies_limits_and_keeps_the_open_connection() {
    use std::io::Read;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sipwire.toml");
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr");
    let config = |limits: &str| {
        format!(
            "{TCP}[[listener]]\nname = 'udp'\ntransport = 'udp'\naddr = '127.0.0.1:0'\n\
             [metrics]\nprometheus = '{metrics}'\n[limits]\nudp_recv_buffer_bytes = 65536\n\
             {limits}{}",
            state(dir.path())
        )
    };
    std::fs::write(&path, config("")).expect("write");
    let gw = Gateway::start(&path, &[], &[]);
    let tcp = gw.listener("tcp");
    let udp = gw.listener("udp");
    let logged = gw.wait_stderr("socket buffers");
    assert!(logged.contains("recv_buffer="), "{logged}");

    let mut open = std::net::TcpStream::connect(tcp).expect("connect");
    open.set_read_timeout(Some(support::poll::WAIT))
        .expect("timeout");
    assert_eq!(options_on(&mut open, tcp, "before"), "SIP/2.0 200 OK");
    let before = admin_flows(dir.path());
    assert_eq!(before["limits"]["max_connections_per_ip"], 1024);
    assert_eq!(before["stats"]["admitted"], 1);

    std::fs::write(
        &path,
        config("max_connections_per_ip = 1\nidle_timeout_secs = 40\nudp_send_buffer_bytes = 1\n"),
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
            "sipwire: [limits] udp_send_buffer_bytes (set when a socket binds) changed: needs a \
             restart, not applied"
        ]
    );
    gw.wait_stderr("change=[limits] max_connections_per_ip");
    gw.wait_stderr("change=[limits] idle_timeout_secs");

    // The connection opened before stays and is served.
    assert_eq!(options_on(&mut open, tcp, "after"), "SIP/2.0 200 OK");
    // A second one from the same IP: accepted by the kernel, then closed by the gateway.
    let mut refused = std::net::TcpStream::connect(tcp).expect("connect");
    refused
        .set_read_timeout(Some(support::poll::WAIT))
        .expect("timeout");
    let mut b = [0u8; 16];
    assert!(matches!(refused.read(&mut b), Ok(0) | Err(_)), "refused");
    let logged = gw.wait_stderr("connection refused by the connection limits");
    assert!(
        logged.contains("WARN") && logged.contains("reason=\"limit_per_ip\""),
        "{logged}"
    );
    assert_eq!(options_on(&mut open, tcp, "still"), "SIP/2.0 200 OK");

    let now = admin_flows(dir.path());
    assert_eq!(now["limits"]["max_connections_per_ip"], 1);
    assert_eq!(now["limits"]["idle_timeout_secs"], 40);
    assert_eq!(now["stats"]["admitted"], 1);
    let sockets = now["udp_sockets"].as_array().expect("udp sockets");
    assert_eq!(sockets.len(), 1);
    assert_eq!(sockets[0]["local"], udp.to_string());
    let granted = sockets[0]["recv_buffer"].as_u64().expect("granted");
    assert!(granted >= 65536, "granted {granted}");
    assert_eq!(sockets[0]["kernel_drops"], 0);

    let exported = scrape(metrics);
    assert_eq!(
        series(
            &exported,
            "sipwire_transport_drops_total{transport=\"tcp\",reason=\"limit_per_ip\"}"
        ),
        Some(1.0),
        "{exported}"
    );
    assert_eq!(
        series(
            &exported,
            &format!(
                "sipwire_transport_socket_buffer_bytes{{transport=\"udp\",local=\"{udp}\",buffer=\"recv\"}}"
            )
        ),
        Some(granted as f64),
        "{exported}"
    );
    assert_eq!(
        series(
            &exported,
            &format!("sipwire_transport_udp_kernel_drops_total{{local=\"{udp}\"}}")
        ),
        Some(0.0),
        "{exported}"
    );
}
