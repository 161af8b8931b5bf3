//! A whole call through the core with a transport change: the UAC on UDP (access network),
//! the UAS on TCP (core network). INVITE / 100 / 180 / 200 / ACK / BYE / 200, checking
//! Record-Route, Via and Route at each step.

use super::*;

const RR_CORE: &str = "sip:10.0.0.1:5060;transport=tcp;lr";
const RR_ACCESS: &str = "sip:192.0.2.1:5060;lr";

#[test]
fn invite_dialog_udp_in_tcp_out() {
    let uas = Target::new(TransportKind::Tcp, addr("10.0.0.20:5060"));
    let mut h = H::new(config(vec![rule(
        "example.net",
        vec![RouteTarget::new(
            TransportKind::Tcp,
            "10.0.0.20",
            Some(5060),
        )],
    )]));

    // INVITE: 100 Trying upstream at once, the INVITE to the UAS over TCP.
    let o = h.request(INVITE, udp_in());
    assert_eq!(o.codes(), vec![100]);
    assert_eq!(o.responses[0].0, Some(1), "100 on the inbound flow");
    let (target, listener, inv) = o.only_send();
    assert_eq!(target, &uas);
    assert_eq!(listener, TCP_C);
    let inv = inv.clone();
    let v = vias(&inv);
    assert_eq!(v.len(), 2);
    assert!(
        v[0].starts_with("SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKsw"),
        "{}",
        v[0]
    );
    assert!(v[0].ends_with(";rport"), "{}", v[0]);
    assert!(!v[0].contains("alias"), "no alias over TCP");
    assert!(v[1].contains("z9hG4bKuac1"));
    assert_eq!(inv.max_forwards(), Some(69));
    // Two Record-Route entries (UDP/access in, TCP/core out): the core side on top.
    assert_eq!(rr(&inv), vec![RR_CORE, RR_ACCESS]);
    assert!(routes(&inv).is_empty());
    assert_eq!(inv.request_uri(), Some("sip:bob@example.net"));

    // 100 from the UAS is not forwarded; 180 and 200 are, our Via removed, RR kept.
    let contact = "Contact: <sip:bob@10.0.0.20:5060;transport=tcp>\n";
    let extra = format!("{}{contact}", echo_rr(&inv));
    assert!(h.response(reply(&inv, 100, None, "")).responses.is_empty());
    let o = h.response(reply(&inv, 180, Some("b1"), &extra));
    let ringing = o.only_response();
    assert_eq!(ringing.status_code(), Some(180));
    assert_eq!(o.responses[0].0, Some(1));
    assert_eq!(vias(ringing).len(), 1);
    assert!(vias(ringing)[0].contains("z9hG4bKuac1"));
    assert_eq!(rr(ringing), vec![RR_CORE, RR_ACCESS]);
    let o = h.response(reply(&inv, 200, Some("b1"), &extra));
    let ok = o.only_response().clone();
    assert_eq!(ok.status_code(), Some(200));
    assert_eq!(vias(&ok).len(), 1);
    assert_eq!(rr(&ok), vec![RR_CORE, RR_ACCESS]);
    // A 2xx retransmission from the UAS goes up too (RFC 6026 Accepted).
    let o = h.response(reply(&inv, 200, Some("b1"), &extra));
    assert_eq!(o.codes(), vec![200]);
    // The 200 was lost upstream: the UAC's INVITE retransmission gets it again (the UAS on
    // TCP does not retransmit), and nothing goes downstream.
    let o = h.request(INVITE, udp_in());
    assert_eq!(o.codes(), vec![200]);
    assert_eq!(o.responses[0].0, Some(1));
    assert!(o.sends.is_empty());

    // ACK from the UAC: route set = RR reversed; both entries are ours and both go; the
    // ACK leaves statelessly over TCP to the remote target.
    let ack = "ACK sip:bob@10.0.0.20:5060;transport=tcp SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKuac2;rport=5060;received=192.0.2.10
Max-Forwards: 70
Route: <sip:192.0.2.1:5060;lr>, <sip:10.0.0.1:5060;transport=tcp;lr>
From: <sip:alice@example.org>;tag=a1
To: <sip:bob@example.net>;tag=b1
Call-ID: call1@192.0.2.10
CSeq: 1 ACK
Content-Length: 0

";
    let o = h.request(ack, udp_in());
    assert!(o.responses.is_empty());
    let (target, listener, fwd) = o.only_send();
    assert_eq!(target, &uas);
    assert_eq!(listener, TCP_C);
    assert!(o.sends[0].3.is_none(), "ACK for 2xx: no transaction");
    assert!(routes(fwd).is_empty(), "{}", s(fwd));
    assert!(rr(fwd).is_empty(), "no Record-Route in a dialog");
    assert!(vias(fwd)[0].starts_with("SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKswl"));
    assert_eq!(vias(fwd).len(), 2);

    // BYE from the UAS over TCP: route set = RR in order; back to the UAC over UDP.
    let bye = "BYE sip:alice@192.0.2.10:5060 SIP/2.0
Via: SIP/2.0/TCP 10.0.0.20:5060;branch=z9hG4bKuas1;rport=40000;received=10.0.0.20
Max-Forwards: 70
Route: <sip:10.0.0.1:5060;transport=tcp;lr>, <sip:192.0.2.1:5060;lr>
From: <sip:bob@example.net>;tag=b1
To: <sip:alice@example.org>;tag=a1
Call-ID: call1@192.0.2.10
CSeq: 1 BYE
Content-Length: 0

";
    let o = h.request(bye, tcp_in());
    assert!(o.responses.is_empty(), "no 100 to a non-INVITE");
    let (target, listener, fwd) = o.only_send();
    assert_eq!(
        target,
        &Target::new(TransportKind::Udp, addr("192.0.2.10:5060"))
    );
    assert_eq!(listener, UDP_A);
    assert!(routes(fwd).is_empty());
    assert!(rr(fwd).is_empty());
    let v = vias(fwd);
    assert!(
        v[0].starts_with("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKswf"),
        "{}",
        v[0]
    );
    assert!(v[1].contains("z9hG4bKuas1"));
    let fwd = fwd.clone();
    let o = h.response(reply(&fwd, 200, None, ""));
    let ok = o.only_response();
    assert_eq!(o.responses[0].0, Some(2), "200 to BYE on the TCP flow");
    assert_eq!(vias(ok).len(), 1);
    assert!(vias(ok)[0].contains("z9hG4bKuas1"));

    // Every transaction ends; the core forgets the call.
    h.advance(Duration::from_secs(64));
    assert_eq!(h.p.pending(), 0);
    let c = h.p.counters();
    assert_eq!(c.branches, 2);
    assert_eq!(c.forwarded_stateless, 1);
    assert_eq!(c.failovers, 0);
}
