//! Hot reload of certificates: new handshakes get the new server and client
//! certificates while an established connection keeps working; `sipwire run` reloads
//! its certificate files on SIGHUP.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use sipwire::tls::{AlpnPolicy, ClientCertPolicy, ClientCerts, ServerCerts};
use sipwire::transport::{Target, TransportKind};
use sipwire::wire::response::response_to;
use support::pki::{Ca, Spec};
use support::poll::WAIT;
use support::sip::options;
use support::tls::*;
use support::transport::{any, next, transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn reload_keeps_established_connections_and_new_handshakes_get_new_certificates() {
    let ca = Ca::new("reload CA");
    let server_a = ca.leaf(&Spec::uris(&["sip:example.com"]).with_dns(&["a.example.com"]));
    let server_b = ca.leaf(&Spec::uris(&["sip:example.com"]).with_dns(&["b.example.com"]));
    let client_a = ca.leaf(&Spec::uris(&["sip:client-a.example"]));
    let client_b = ca.leaf(&Spec::uris(&["sip:client-b.example"]));

    let (srv, mut srx) = transport();
    let (sc, resolver) = server(
        &ca,
        ServerCerts::new(server_a.certified()),
        ClientCertPolicy::Optional,
        AlpnPolicy::Offer,
    );
    let addr = srv.bind_tls(any(), sc).await.expect("bind");
    let (cli, mut crx) = transport();
    let tls = client(
        &ca,
        ClientCerts::new(Some(client_a.certified())),
        &[],
        AlpnPolicy::Offer,
    );
    tls.install(&cli);
    let t = Target::new(TransportKind::Tls, addr).with_server_name("example.com");
    let flow = cli
        .send_to(&t, Bytes::from(options("TLS", any(), addr, "r1")))
        .await
        .expect("first request");
    let inc = next(&mut srx).await;
    assert_eq!(&*inc.identities, ["client-a.example".to_string()]);
    let server_flow = inc.flow;

    // Reload both sides.
    resolver.replace(ServerCerts::new(server_b.certified()));
    tls.replace(ClientCerts::new(Some(client_b.certified())));

    // The established connection keeps working, both ways, with its old identities.
    cli.send(flow, Bytes::from(options("TLS", any(), addr, "r2")))
        .expect("send on the old flow");
    let inc = next(&mut srx).await;
    assert_eq!(inc.flow, server_flow, "same connection");
    assert_eq!(&*inc.identities, ["client-a.example".to_string()]);
    srv.send(inc.flow, response_to(&inc.message, 200, "OK"))
        .expect("respond");
    let resp = next(&mut crx).await;
    assert_eq!(resp.flow, flow);
    assert_eq!(resp.message.status_code(), Some(200));
    assert_eq!(cli.stats().stream_flows, 1);

    // A new handshake gets the new server certificate...
    let p = peek(addr, Some("example.com"), &[], None)
        .await
        .expect("peek");
    assert_eq!(p.cert, server_b.der());
    // ...and a new outbound connection presents the new client certificate.
    let t2 = t.clone().with_scope("another-scope");
    cli.send_to(&t2, Bytes::from(options("TLS", any(), addr, "r3")))
        .await
        .expect("new connection");
    let inc = next(&mut srx).await;
    assert_ne!(inc.flow, server_flow);
    assert_eq!(&*inc.identities, ["client-b.example".to_string()]);
}

struct Run {
    gw: support::gateway::Running,
    tls: SocketAddr,
}

impl Run {
    /// Asks `sipwire run` to reload its certificate files.
    fn sighup(&self) {
        let kill = Command::new("kill")
            .args(["-HUP", &self.gw.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(kill.success());
    }

    fn wait_line(&self, want: &str) {
        let end = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            let l = self
                .gw
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("sipwire did not print {want:?} in 30 s"));
            if l == want {
                return;
            }
        }
    }
}

fn start(dir: &std::path::Path, config: &str) -> Run {
    let gw = support::gateway::start(dir, config);
    Run {
        tls: gw.listener("tls"),
        gw,
    }
}

/// The certificate a server presents for this SNI.
async fn presented(addr: SocketAddr, sni: Option<&str>) -> Vec<u8> {
    peek(addr, sni, &[], None).await.expect("peek").cert
}

async fn read_response<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> String {
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, async {
        let mut b = [0u8; 2048];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut b).await.expect("read");
            assert!(n > 0, "connection closed");
            buf.extend_from_slice(&b[..n]);
        }
    })
    .await
    .expect("no response in time");
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipwire_run_reloads_certificates_on_sighup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("sighup CA");
    let ca_pem = ca.write_pem(dir.path());
    let v1 = ca.leaf(&Spec::uris(&["sip:default.example"]).with_ips(&["127.0.0.1"]));
    let n1 = ca.leaf(&Spec::uris(&["sip:example.net"]));
    let (cert, key) = v1.write_pem(dir.path(), "server");
    let (ncert, nkey) = n1.write_pem(dir.path(), "net");
    let state = dir.path().join("state");
    let run = start(
        dir.path(),
        &format!(
            "[[listener]]\nname = 't'\ntransport = 'tcp'\naddr = '127.0.0.1:0'\n\
         [[listener]]\nname = 's'\ntransport = 'tls'\naddr = '127.0.0.1:0'\n\
         cert = '{}'\nkey = '{}'\n\
         [tls]\nca_files = ['{}']\n\
         [[tls.domains]]\nname = 'example.net'\ncert = '{}'\nkey = '{}'\n\
         [state]\ndir = '{}'\n",
            cert.display(),
            key.display(),
            ca_pem.display(),
            ncert.display(),
            nkey.display(),
            state.display()
        ),
    );
    let addr = run.tls;
    assert_eq!(presented(addr, None).await, v1.der());
    let mut old = peek(addr, Some("example.net"), &[], None)
        .await
        .expect("peek");
    assert_eq!(old.cert, n1.der());

    let v2 = ca.leaf(&Spec::uris(&["sip:default.example"]).with_ips(&["127.0.0.1"]));
    let n2 = ca.leaf(&Spec::uris(&["sip:example.net"]));
    v2.write_pem(dir.path(), "server");
    n2.write_pem(dir.path(), "net");
    run.sighup();
    run.wait_line("sipwire: TLS certificates reloaded");

    assert_eq!(presented(addr, None).await, v2.der());
    assert_eq!(presented(addr, Some("example.net")).await, n2.der());
    // The connection opened before the reload still gets answers.
    let local = old.stream.get_ref().0.local_addr().expect("local");
    old.stream
        .write_all(options("TLS", local, addr, "old").as_bytes())
        .await
        .expect("write");
    let resp = read_response(&mut old.stream).await;
    assert!(resp.starts_with("SIP/2.0 200"), "{resp}");

    // A broken file: the reload fails, the old certificates stay.
    std::fs::write(dir.path().join("net.pem"), "garbage").expect("write");
    run.sighup();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(presented(addr, Some("example.net")).await, n2.der());
}
