//! Server-side TLS policy over real handshakes: SNI selects the certificate among
//! virtual domains on one ip:port (default for no/unknown SNI), ALPN `sip/2` policy,
//! TLS 1.2/1.3 only (`openssl s_client -tls1_1` refused), and per-domain client
//! certificates on outbound connections.

mod support;

use tokio::process::Command;

use bytes::Bytes;
use rustls::AlertDescription;
use sipwire::tls::{AlpnPolicy, ClientCertPolicy, ClientCerts, ServerCerts, SipIdentities, SIP_2};
use sipwire::transport::{Target, TransportKind};
use support::pki::{Ca, Spec};
use support::poll::WAIT;
use support::sip::options;
use support::tls::*;
use support::transport::{any, next, transport};

fn ids(der: &[u8]) -> Vec<String> {
    SipIdentities::from_der(der)
        .expect("identities")
        .into_names()
}

#[tokio::test]
async fn sni_picks_the_certificate_of_each_domain_on_one_port() {
    let ca = Ca::new("sni CA");
    let default = ca.leaf(&Spec::uris(&["sip:default.example"]));
    let com = ca.leaf(&Spec::uris(&["sip:example.com"]));
    let net = ca.leaf(&Spec::uris(&["sip:example.net"]));
    let certs = ServerCerts::new(default.certified())
        .with_domain("example.com", com.certified())
        .with_domain("Example.NET", net.certified());
    let (srv, _srx) = transport();
    let (sc, _) = server(&ca, certs, ClientCertPolicy::Optional, AlpnPolicy::Offer);
    let addr = srv.bind_tls(any(), sc).await.expect("bind");
    for (sni, want) in [
        (Some("example.com"), "example.com"),
        (Some("EXAMPLE.net"), "example.net"),
        (Some("unknown.example"), "default.example"),
        (None, "default.example"),
    ] {
        let p = peek(addr, sni, &[], None).await.expect("handshake");
        assert_eq!(ids(&p.cert), [want], "SNI {sni:?}");
    }
    // A sipwire client verifies each domain on the same address.
    let (cli, _crx) = tls_client(&ca);
    for d in ["example.com", "example.net"] {
        let t = Target::new(TransportKind::Tls, addr).with_server_name(d);
        let f = cli.connect(&t).await.expect("connect");
        assert_eq!(
            &*cli.flow_info(f).expect("info").identities,
            [d.to_string()]
        );
    }
    assert_eq!(cli.stats().stream_flows, 2, "one connection per domain");
}

#[tokio::test]
async fn alpn_policies() {
    let ca = Ca::new("alpn CA");
    let leaf = ca.leaf(&Spec::uris(&["sip:example.com"]));
    let bind = |policy| {
        let (srv, rx) = transport();
        let (sc, _) = server(
            &ca,
            ServerCerts::new(leaf.certified()),
            ClientCertPolicy::Optional,
            policy,
        );
        (srv, rx, sc)
    };
    // require + an h2-only client: fatal alert no_application_protocol (RFC 7301).
    let (srv, _rx, sc) = bind(AlpnPolicy::Require);
    let addr = srv.bind_tls(any(), sc).await.expect("bind");
    let e = peek(addr, Some("example.com"), &[b"h2"], None)
        .await
        .err()
        .expect("h2-only refused");
    assert_eq!(
        rustls_error(&e),
        Some(&rustls::Error::AlertReceived(
            AlertDescription::NoApplicationProtocol
        )),
        "{e}"
    );
    // require + a client without ALPN: refused too.
    assert!(peek(addr, Some("example.com"), &[], None).await.is_err());
    // require + sip/2: negotiated.
    let p = peek(addr, Some("example.com"), &[b"h2", SIP_2], None)
        .await
        .expect("sip/2 accepted");
    assert_eq!(p.alpn.as_deref(), Some(SIP_2));

    // offer + a client without ALPN: accepted, nothing negotiated.
    let (srv, _rx, sc) = bind(AlpnPolicy::Offer);
    let addr = srv.bind_tls(any(), sc).await.expect("bind");
    let p = peek(addr, Some("example.com"), &[], None)
        .await
        .expect("accepted");
    assert_eq!(p.alpn, None);
    let p = peek(addr, Some("example.com"), &[SIP_2], None)
        .await
        .expect("accepted");
    assert_eq!(p.alpn.as_deref(), Some(SIP_2));

    // off: no ALPN answered even when offered.
    let (srv, _rx, sc) = bind(AlpnPolicy::Off);
    let addr = srv.bind_tls(any(), sc).await.expect("bind");
    let p = peek(addr, Some("example.com"), &[SIP_2], None)
        .await
        .expect("accepted");
    assert_eq!(p.alpn, None);

    // A sipwire client under offer negotiates sip/2 with a sipwire server, recorded in
    // the flow.
    let (srv, _rx, sc) = bind(AlpnPolicy::Require);
    let addr = srv.bind_tls(any(), sc).await.expect("bind");
    let (cli, _crx) = tls_client(&ca);
    let t = Target::new(TransportKind::Tls, addr).with_server_name("example.com");
    let f = cli.connect(&t).await.expect("connect");
    assert_eq!(cli.flow_info(f).expect("info").alpn.as_deref(), Some(SIP_2));

    // A sipwire client under require, facing a server that answers no ALPN (policy off):
    // the connection is closed and no flow is left.
    let (srv, _rx, sc) = bind(AlpnPolicy::Off);
    let addr = srv.bind_tls(any(), sc).await.expect("bind");
    let (cli, _crx) = sipwire::transport::Transport::new(sipwire::transport::TransportConfig {
        identities: Some(sipwire::tls::identity_fn()),
        require_alpn: true,
        ..sipwire::transport::TransportConfig::default()
    });
    cli.set_tls_client(
        client(&ca, ClientCerts::new(None), &[], AlpnPolicy::Require).default_config(),
    );
    let t = Target::new(TransportKind::Tls, addr).with_server_name("example.com");
    let e = cli
        .connect(&t)
        .await
        .expect_err("no ALPN from the server under require");
    assert!(e.to_string().contains("no_application_protocol"), "{e}");
    assert_eq!(cli.stats().stream_flows, 0);
}

#[tokio::test]
async fn tls12_and_tls13_only() {
    let ca = Ca::new("versions CA");
    let leaf = ca.leaf(&Spec::uris(&["sip:example.com"]));
    let (_srv, _srx, addr) = tls_server(&ca, &leaf).await;
    for v in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let p = peek_versions(addr, Some("example.com"), &[], None, &[v])
            .await
            .expect("TLS 1.2 / 1.3 accepted");
        assert_eq!(p.stream.get_ref().1.protocol_version(), Some(v.version));
    }
    let s_client = |version: &'static str| async move {
        let out = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &addr.to_string(),
                "-servername",
                "example.com",
            ])
            // OpenSSL 3 refuses TLS 1.1 itself at the default security level; level 0
            // makes the client offer it so that the refusal is the server's.
            .args([version, "-cipher", "DEFAULT@SECLEVEL=0"])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(WAIT, out)
            .await
            .expect("openssl s_client timed out")
            .expect("openssl is required for this test (apt-get install openssl)");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok12, out12) = s_client("-tls1_2").await;
    assert!(ok12, "openssl -tls1_2 must connect:\n{out12}");
    let (ok11, out11) = s_client("-tls1_1").await;
    assert!(!ok11, "TLS 1.1 must be refused:\n{out11}");
    // rustls answers a ClientHello without a common version with a fatal alert
    // (handshake_failure, 40; some stacks use protocol_version, 70).
    assert!(
        out11.contains("SSL alert number 40") || out11.contains("SSL alert number 70"),
        "the server must refuse the version with an alert:\n{out11}"
    );
    assert!(
        !out11.contains("no protocols available"),
        "the openssl client did not even offer TLS 1.1; cannot test the server:\n{out11}"
    );
}

#[tokio::test]
async fn client_certificate_chosen_by_local_domain() {
    let ca = Ca::new("client CA");
    let server_leaf = ca.leaf(&Spec::uris(&["sip:peer.example"]));
    let (srv, mut srx, addr) = tls_server(&ca, &server_leaf).await;

    let default = ca.leaf(&Spec::uris(&["sip:default.example"]));
    let com = ca.leaf(&Spec::uris(&["sip:example.com"]));
    let net = ca.leaf(&Spec::uris(&["sip:example.net"]));
    let certs = ClientCerts::new(Some(default.certified()))
        .with_domain("example.com", com.certified())
        .with_domain("example.net", net.certified());
    let (cli, _crx) = transport();
    client(
        &ca,
        certs,
        &["example.com", "example.net"],
        AlpnPolicy::Offer,
    )
    .install(&cli);
    for (scope, want) in [
        (Some("example.com"), "example.com"),
        (Some("EXAMPLE.NET"), "example.net"),
        (Some("other.example"), "default.example"),
        (None, "default.example"),
    ] {
        let mut t = Target::new(TransportKind::Tls, addr).with_server_name("peer.example");
        if let Some(s) = scope {
            t = t.with_scope(s);
        }
        cli.send_to(&t, Bytes::from(options("TLS", any(), addr, "scope")))
            .await
            .expect("send");
        let inc = next(&mut srx).await;
        assert_eq!(&*inc.identities, [want.to_string()], "scope {scope:?}");
    }
    // Without any certificate for the default scope the client presents none.
    let (cli2, _c2) = transport();
    client(
        &ca,
        ClientCerts::new(None).with_domain("example.com", com.certified()),
        &["example.com"],
        AlpnPolicy::Offer,
    )
    .install(&cli2);
    let t = Target::new(TransportKind::Tls, addr).with_server_name("peer.example");
    cli2.send_to(&t, Bytes::from(options("TLS", any(), addr, "none")))
        .await
        .expect("send");
    let inc = next(&mut srx).await;
    assert!(inc.identities.is_empty());
    assert!(!srv.flow_info(inc.flow).expect("info").peer_certificate);
}
