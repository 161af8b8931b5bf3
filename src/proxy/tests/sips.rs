//! RFC 5630 in the proxy (§5.3; RFC 3261 §26.2.2).

use super::*;

const SIPS_INVITE: &str = "INVITE sips:bob@example.net SIP/2.0
Via: SIP/2.0/TLS 192.0.2.10:40001;branch=z9hG4bKs1;rport=40001;received=192.0.2.10
Max-Forwards: 70
From: <sips:alice@example.org>;tag=a1
To: <sips:bob@example.net>
Call-ID: sips1@192.0.2.10
CSeq: 1 INVITE
Contact: <sips:alice@192.0.2.10:40001>
Content-Length: 0

";

#[test]
fn sips_never_leaves_over_a_non_tls_transport() {
    // Only a TCP target: 480 with Warning 380, no last-hop exception.
    let mut h = H::new(config(vec![rule(
        "example.net",
        vec![
            RouteTarget::new(TransportKind::Tcp, "10.0.0.20", Some(5060)),
            RouteTarget::new(TransportKind::Sctp, "10.0.0.21", Some(5060)),
        ],
    )]));
    let o = h.request(SIPS_INVITE, tls_in());
    assert!(o.sends.is_empty());
    let r = o
        .responses
        .iter()
        .find(|(_, m)| m.status_code() == Some(480));
    let r = &r.expect("480").1;
    let w = String::from_utf8_lossy(r.header("Warning").unwrap()).into_owned();
    assert!(
        w.starts_with("380 ") && w.contains("SIPS Not Allowed"),
        "{w}"
    );
    assert_eq!(h.p.counters().sips_refused, 2);
}

#[test]
fn sips_skips_insecure_resolved_targets_and_uses_tls() {
    let mut h = H::new(config(vec![]));
    let o = h.request(
        SIPS_INVITE.replace("example.net", "core.example").as_str(),
        tls_in(),
    );
    let (id, t) = &o.resolves[0];
    assert_eq!(t.scheme, crate::wire::Scheme::Sips);
    let tcp = Target::new(TransportKind::Tcp, addr("10.0.0.20:5060"));
    let tls = Target::new(TransportKind::Tls, addr("10.0.0.20:5061"));
    let o = h.resolved(*id, vec![tcp, tls.clone()]);
    let (t, l, m) = o.only_send();
    assert_eq!(t, &tls);
    assert_eq!(l, TLS_A, "first TLS listener");
    assert!(m.request_uri().unwrap().starts_with("sips:"));
    // SIPS Record-Route entry (§16.6 step 4), never transport=tls.
    assert_eq!(rr(m), vec!["sips:192.0.2.1:5061;lr"]);
    assert!(!s(m).to_ascii_lowercase().contains("transport=tls"));
}

#[test]
fn sips_with_transport_udp_is_refused_with_400() {
    let mut h = H::new(config(vec![]));
    let req = SIPS_INVITE.replace(
        "INVITE sips:bob@example.net",
        "INVITE sips:bob@example.net;transport=udp",
    );
    let o = h.request(&req, tls_in());
    assert!(o.sends.is_empty());
    assert!(o.codes().contains(&400), "{:?}", o.codes());
    // Also as the next hop's Route.
    let req = SIPS_INVITE.replace("z9hG4bKs1", "z9hG4bKs2").replace(
        "Max-Forwards: 70\n",
        "Max-Forwards: 70\nRoute: <sips:10.0.0.9;transport=udp;lr>\n",
    );
    let o = h.request(&req, tls_in());
    assert!(o.codes().contains(&400), "{:?}", o.codes());
}

#[test]
fn sip_is_never_upgraded_and_may_use_any_transport() {
    // A sip: request through a TLS hop keeps sip: (checked with the RR in the request
    // tests); over UDP it goes as it is.
    let mut h = H::new(config(vec![rule(
        "example.net",
        vec![RouteTarget::new(
            TransportKind::Udp,
            "10.0.0.20",
            Some(5060),
        )],
    )]));
    let o = h.request(INVITE, tls_in());
    let (_, _, m) = o.only_send();
    assert_eq!(m.request_uri(), Some("sip:bob@example.net"));
    // TLS in, UDP out: the inbound entry names the TLS listener by sips:, never transport=tls.
    assert_eq!(
        rr(m),
        vec!["sip:192.0.2.1:5060;lr", "sips:192.0.2.1:5061;lr"]
    );
}
