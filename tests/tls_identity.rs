//! The RFC 5922 certificate matrix (checklist rows 46-51): for each kind of certificate,
//! the identities `SipIdentities` reads, and the outcome of a real handshake where a
//! sipwire client connects for the SIP domain `example.com` (§7.3) or a sipwire server
//! authenticates a client (§7.4).

mod support;

use bytes::Bytes;
use sipwire::tls::{AlpnPolicy, ClientCertPolicy, IdentitySource, ServerCerts, SipIdentities};
use sipwire::transport::{Target, TransportError, TransportKind};
use support::pki::{Ca, Leaf, Spec};
use support::poll::{eventually, WAIT};
use support::sip::options;
use support::tls::*;
use support::transport::{any, next, transport};

/// One row: the certificate, the identities expected, whether a client connecting for
/// `domain` accepts the server.
struct Row {
    name: &'static str,
    spec: Spec,
    identities: &'static [&'static str],
    domain: &'static str,
    accepted: bool,
}

fn matrix() -> Vec<Row> {
    vec![
        Row {
            name: "sip: URI SAN",
            spec: Spec::uris(&["sip:example.com"]).with_dns(&["proxy.example.com"]),
            identities: &["example.com"],
            domain: "example.com",
            accepted: true,
        },
        Row {
            name: "sip: URI SAN hides dNSName",
            spec: Spec::uris(&["sip:example.com"]).with_dns(&["proxy.example.com"]),
            identities: &["example.com"],
            domain: "proxy.example.com",
            accepted: false,
        },
        Row {
            name: "sips: URI SAN (not an identity)",
            spec: Spec::uris(&["sips:example.com"]),
            identities: &[],
            domain: "example.com",
            accepted: false,
        },
        Row {
            name: "URI with user part",
            spec: Spec::uris(&["sip:alice@example.com"]),
            identities: &[],
            domain: "example.com",
            accepted: false,
        },
        Row {
            name: "dNSName only",
            spec: Spec::dns(&["Example.COM"]),
            identities: &["example.com"],
            domain: "example.com",
            accepted: true,
        },
        Row {
            name: "CN only (no SAN extension)",
            spec: Spec::cn("example.com"),
            identities: &["example.com"],
            domain: "example.com",
            accepted: true,
        },
        Row {
            name: "CN with SAN present",
            spec: Spec::dns(&["other.example.org"]).with_cn("example.com"),
            identities: &["other.example.org"],
            domain: "example.com",
            accepted: false,
        },
        Row {
            name: "wildcard dNSName",
            spec: Spec::dns(&["*.example.com"]),
            identities: &[],
            domain: "sip.example.com",
            accepted: false,
        },
        Row {
            name: "suffix is no match",
            spec: Spec::dns(&["example.com"]),
            identities: &["example.com"],
            domain: "sip.example.com",
            accepted: false,
        },
    ]
}

#[test]
fn matrix_identities_unit_level() {
    let ca = Ca::new("matrix CA");
    for row in matrix() {
        let leaf = ca.leaf(&row.spec);
        let ids = SipIdentities::from_der(leaf.der()).expect(row.name);
        assert_eq!(ids.names(), row.identities, "{}", row.name);
        assert_eq!(ids.matches(row.domain), row.accepted, "{}", row.name);
    }
    // Expired and foreign-CA certificates still carry identities: rejecting them is the
    // chain validation's job (row 46), tested over handshakes below.
    let expired = ca.leaf(&Spec::dns(&["example.com"]).expired());
    assert_eq!(
        SipIdentities::from_der(expired.der())
            .expect("expired")
            .names(),
        ["example.com"]
    );
    let cn = ca.leaf(&Spec::cn("example.com"));
    assert_eq!(
        SipIdentities::from_der(cn.der()).expect("cn").source(),
        IdentitySource::CommonName
    );
}

/// A sipwire client connecting for `domain` to a sipwire server presenting `leaf`.
async fn client_connects(
    server_ca: &Ca,
    client_ca: &Ca,
    leaf: &Leaf,
    domain: &str,
) -> Result<Vec<String>, TransportError> {
    let (srv, _srx, addr) = tls_server(server_ca, leaf).await;
    let (cli, _crx) = tls_client(client_ca);
    let t = Target::new(TransportKind::Tls, addr).with_server_name(domain);
    let r = cli.connect(&t).await;
    let out = match r {
        Ok(flow) => Ok(cli.flow_info(flow).expect("info").identities.to_vec()),
        Err(e) => {
            assert_eq!(
                cli.stats().stream_flows,
                0,
                "no flow after a failed handshake"
            );
            Err(e)
        }
    };
    // The server never keeps a connection whose handshake failed.
    if out.is_err() {
        eventually(WAIT, "server drops the failed connection", || {
            srv.stats().stream_flows == 0
        })
        .await;
    }
    out
}

#[tokio::test]
async fn matrix_over_real_handshakes() {
    let ca = Ca::new("matrix CA");
    for row in matrix() {
        let leaf = ca.leaf(&row.spec);
        let r = client_connects(&ca, &ca, &leaf, row.domain).await;
        match (row.accepted, r) {
            (true, Ok(ids)) => assert_eq!(ids, row.identities, "{}", row.name),
            (false, Err(TransportError::IdentityMismatch { domain, .. })) => {
                assert_eq!(domain, row.domain, "{}", row.name)
            }
            (want, got) => panic!("{}: accepted={want}, got {got:?}", row.name),
        }
    }
}

#[tokio::test]
async fn expired_server_certificate_fails_chain_validation() {
    let ca = Ca::new("matrix CA");
    let leaf = ca.leaf(&Spec::uris(&["sip:example.com"]).expired());
    match client_connects(&ca, &ca, &leaf, "example.com").await {
        Err(TransportError::Handshake { reason, .. }) => assert_eq!(reason, "bad_certificate"),
        other => panic!("expired certificate: {other:?}"),
    }
}

#[tokio::test]
async fn server_certificate_from_unknown_ca_fails_chain_validation() {
    let ours = Ca::new("our CA");
    let theirs = Ca::new("foreign CA");
    let leaf = theirs.leaf(&Spec::uris(&["sip:example.com"]));
    match client_connects(&theirs, &ours, &leaf, "example.com").await {
        Err(TransportError::Handshake { reason, .. }) => assert_eq!(reason, "bad_certificate"),
        other => panic!("foreign CA: {other:?}"),
    }
}

#[tokio::test]
async fn identity_mismatch_closes_the_connection_and_is_labelled() {
    let ca = Ca::new("matrix CA");
    let leaf = ca.leaf(&Spec::uris(&["sip:example.net"]));
    let err = client_connects(&ca, &ca, &leaf, "example.com")
        .await
        .expect_err("must not authenticate example.com");
    assert!(
        matches!(&err, TransportError::IdentityMismatch { domain, .. } if domain == "example.com"),
        "{err}"
    );
    // The metrics label of such a failure.
    let inner = rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
        rustls::OtherError(std::sync::Arc::new(sipwire::tls::IdentityMismatch {
            domain: "example.com".into(),
            identities: vec!["example.net".into()],
        })),
    ));
    assert_eq!(
        sipwire::transport::HandshakeError::Tls(inner).reason(),
        "identity_mismatch"
    );
}

/// Server side (§7.4): what a sipwire server learns from a client's certificate.
async fn server_sees(
    policy: ClientCertPolicy,
    client_leaf: Option<&Leaf>,
    client_ca: &Ca,
) -> Result<(bool, Vec<String>), String> {
    let ca = Ca::new("server CA");
    let server_leaf = ca.leaf(&Spec::uris(&["sip:example.com"]));
    let (srv, mut srx) = transport();
    let (sc, _) = server(
        client_ca,
        ServerCerts::new(server_leaf.certified()),
        policy,
        AlpnPolicy::Offer,
    );
    let addr = srv.bind_tls(any(), sc).await.expect("bind");
    let mut p = peek(addr, Some("example.com"), &[], client_leaf)
        .await
        .map_err(|e| format!("{e}"))?;
    use tokio::io::AsyncWriteExt;
    let local = p.stream.get_ref().0.local_addr().expect("local");
    p.stream
        .write_all(options("TLS", local, addr, "srv").as_bytes())
        .await
        .map_err(|e| format!("{e}"))?;
    let inc = next(&mut srx).await;
    let info = srv.flow_info(inc.flow).expect("info");
    let _ = ca;
    Ok((info.peer_certificate, inc.identities.to_vec()))
}

#[tokio::test]
async fn client_certificates_on_the_server_side() {
    let ca = Ca::new("client CA");
    // No client certificate: accepted under `optional`, not authenticated (§7.4).
    assert_eq!(
        server_sees(ClientCertPolicy::Optional, None, &ca).await,
        Ok((false, vec![]))
    );
    // Refused under `require`.
    assert!(server_sees(ClientCertPolicy::Require, None, &ca)
        .await
        .is_err());
    // A sip: URI client certificate gives its identity.
    let good = ca.leaf(&Spec::uris(&["sip:example.org"]).with_dns(&["p9.example.org"]));
    assert_eq!(
        server_sees(ClientCertPolicy::Require, Some(&good), &ca).await,
        Ok((true, vec!["example.org".to_string()]))
    );
    // A sips:-only certificate is verified but asserts no identity.
    let sips = ca.leaf(&Spec::uris(&["sips:example.org"]));
    assert_eq!(
        server_sees(ClientCertPolicy::Optional, Some(&sips), &ca).await,
        Ok((true, vec![]))
    );
    // Expired or foreign-CA client certificates are refused.
    let expired = ca.leaf(&Spec::uris(&["sip:example.org"]).expired());
    assert!(server_sees(ClientCertPolicy::Optional, Some(&expired), &ca)
        .await
        .is_err());
    let foreign = Ca::new("foreign").leaf(&Spec::uris(&["sip:example.org"]));
    assert!(server_sees(ClientCertPolicy::Optional, Some(&foreign), &ca)
        .await
        .is_err());
}

#[tokio::test]
async fn sni_is_the_aus_domain_not_the_address() {
    // §7.8: the client sends SNI = the domain it connects for; the server sees it.
    let ca = Ca::new("sni CA");
    let leaf = ca.leaf(&Spec::uris(&["sip:example.com"]));
    let (srv, mut srx, addr) = tls_server(&ca, &leaf).await;
    let (cli, _crx) = tls_client(&ca);
    let t = Target::new(TransportKind::Tls, addr).with_server_name("example.com");
    let flow = cli
        .send_to(&t, Bytes::from(options("TLS", any(), addr, "sni")))
        .await
        .expect("send");
    let inc = next(&mut srx).await;
    let info = srv.flow_info(inc.flow).expect("info");
    assert_eq!(info.server_name.as_deref(), Some("example.com"));
    assert_eq!(
        cli.flow_info(flow)
            .expect("client info")
            .server_name
            .as_deref(),
        Some("example.com")
    );
}
