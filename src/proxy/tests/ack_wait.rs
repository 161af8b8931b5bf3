//! A 2xx to INVITE forwarded up an unreliable hop is retransmitted by the proxy until its
//! ACK (RFC 3261 §13.3.1.4 done for a UAS on a reliable hop that never retransmits):
//! simulated time, the 200 and the ACK lost on the UDP side.

use super::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

/// The UAC's ACK for the 2xx (its own branch, To tag `b1`), to the UAS's Contact.
fn ack(branch: &str, transport: &str) -> String {
    format!(
        "ACK sip:bob@10.0.0.20:5060;transport={transport} SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch={branch};rport=5060;received=192.0.2.10
Max-Forwards: 70
From: <sip:alice@example.org>;tag=a1
To: <sip:bob@example.net>;tag=b1
Call-ID: call1@192.0.2.10
CSeq: 1 ACK
Content-Length: 0

"
    )
}

/// A proxy routing example.net to the UAS over `transport`; the INVITE came in on
/// `inbound` and the UAS answered 200 (To tag `b1`), which went up. Returns the INVITE as
/// forwarded and the 200 as sent upstream.
fn answered(transport: TransportKind, inbound: Inbound<u32>) -> (H, Message, Message) {
    let mut h = H::new(config(vec![rule(
        "example.net",
        vec![RouteTarget::new(transport, "10.0.0.20", Some(5060))],
    )]));
    let o = h.request(INVITE, inbound);
    let inv = o.only_send().2.clone();
    let o = h.response(reply(&inv, 200, Some("b1"), ""));
    let ok = o.only_response().clone();
    assert_eq!(ok.status_code(), Some(200));
    (h, inv, ok)
}

/// The ACKs among the sends.
fn acks(o: &Out) -> usize {
    o.sends
        .iter()
        .filter(|(_, _, m, _)| m.method() == Some("ACK"))
        .count()
}

#[test]
fn the_200_lost_once_is_retransmitted_after_t1() {
    let (mut h, _, ok) = answered(TransportKind::Tcp, udp_in());
    // The 200 was lost: nothing before T1, then the same 200 on the inbound flow.
    assert!(h.advance(MS(499)).responses.is_empty());
    let o = h.advance(MS(1));
    assert_eq!(o.codes(), vec![200]);
    assert_eq!(o.responses[0].0, Some(1));
    assert_eq!(s(&o.responses[0].1), s(&ok));
    // Its ACK goes down, once; no more retransmissions.
    let o = h.request(&ack("z9hG4bKack1", "tcp"), udp_in());
    assert_eq!(acks(&o), 1);
    assert!(o.responses.is_empty());
    let o = h.advance(Duration::from_secs(64));
    assert!(o.responses.is_empty(), "{:?}", o.codes());
    assert_eq!(acks(&o), 0);
    let c = h.p.counters();
    assert_eq!(
        (c.ok_retransmitted, c.acks_absorbed, c.ok_unacknowledged),
        (1, 0, 0)
    );
    assert_eq!(h.p.awaiting_ack(), 0, "forgotten after 64·T1");
    assert_eq!(h.p.pending(), 0);
}

#[test]
fn the_ack_lost_once_is_recovered_by_the_retransmitted_200() {
    let (mut h, _, _) = answered(TransportKind::Tcp, udp_in());
    // The 200 arrived; the UAC's ACK was lost. At T1 the 200 goes up again, the UAC acks it
    // again, and that ACK goes down.
    let o = h.advance(MS(500));
    assert_eq!(o.codes(), vec![200]);
    let o = h.request(&ack("z9hG4bKack1", "tcp"), udp_in());
    assert_eq!(acks(&o), 1);
    let (target, listener, _) = o.only_send();
    assert_eq!(target.transport, TransportKind::Tcp);
    assert_eq!(listener, TCP_C);
    assert!(h.advance(Duration::from_secs(40)).responses.is_empty());
    assert_eq!(h.p.counters().ok_retransmitted, 1);
}

#[test]
fn both_lost_the_interval_doubles_and_later_acks_are_absorbed() {
    let (mut h, _, _) = answered(TransportKind::Tcp, udp_in());
    // The 200 lost: again at 0.5 s. Its ACK lost: again at 1.5 s (T1 doubled).
    assert_eq!(h.advance(MS(500)).codes(), vec![200]);
    assert!(h.advance(MS(999)).responses.is_empty());
    assert_eq!(h.advance(MS(1)).codes(), vec![200]);
    // The UAC acks it; the ACK goes down once.
    let o = h.request(&ack("z9hG4bKack2", "tcp"), udp_in());
    assert_eq!(acks(&o), 1);
    // A copy (the UAC answering a retransmission already on the wire) is absorbed: the TCP
    // side sees one ACK.
    let o = h.request(&ack("z9hG4bKack3", "tcp"), udp_in());
    assert!(o.sends.is_empty() && o.responses.is_empty());
    let o = h.advance(Duration::from_secs(64));
    assert!(o.responses.is_empty() && o.sends.is_empty());
    let c = h.p.counters();
    assert_eq!(
        (c.ok_retransmitted, c.acks_absorbed, c.forwarded_stateless),
        (2, 1, 1)
    );
}

#[test]
fn without_an_ack_it_gives_up_after_64_t1_with_the_interval_capped_at_t2() {
    let (mut h, _, _) = answered(TransportKind::Tcp, udp_in());
    // T1 = 0.5 s doubling up to T2 = 4 s: 0.5, 1.5, 3.5, 7.5, 11.5, … 31.5 s.
    let start = h.now;
    let mut at = Vec::new();
    while h.now < start + Duration::from_secs(40) {
        if !h.advance(MS(100)).responses.is_empty() {
            at.push((h.now - start).as_millis());
        }
    }
    assert_eq!(
        at,
        [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    let c = h.p.counters();
    assert_eq!((c.ok_retransmitted, c.ok_unacknowledged), (10, 1));
    assert_eq!(h.p.awaiting_ack(), 0);
    // An ACK after that is forwarded as before.
    assert_eq!(acks(&h.request(&ack("z9hG4bKack1", "tcp"), udp_in())), 1);
}

#[test]
fn downstream_retransmissions_take_the_place_of_ours() {
    // A UAS over UDP retransmits its 200 itself (Timer G schedule).
    let (mut h, inv, _) = answered(TransportKind::Udp, udp_in());
    h.advance(MS(400));
    let o = h.response(reply(&inv, 200, Some("b1"), ""));
    assert_eq!(o.codes(), vec![200], "forwarded as before (RFC 6026)");
    // Ours would have gone at 0.5 s; it is now 1 s after the forwarded one.
    assert!(h.advance(MS(999)).responses.is_empty());
    assert_eq!(h.advance(MS(1)).codes(), vec![200]);
    assert_eq!(h.p.counters().ok_retransmitted, 1);
    // The ACK goes down; it is lost there, so the UAS retransmits again: forwarded, and the
    // next ACK from the UAC goes down too, then copies are absorbed.
    assert_eq!(acks(&h.request(&ack("z9hG4bKack1", "udp"), udp_in())), 1);
    assert_eq!(
        h.response(reply(&inv, 200, Some("b1"), "")).codes(),
        vec![200]
    );
    assert_eq!(acks(&h.request(&ack("z9hG4bKack2", "udp"), udp_in())), 1);
    assert_eq!(acks(&h.request(&ack("z9hG4bKack3", "udp"), udp_in())), 0);
    // Nothing more of ours once acked.
    assert!(h.advance(Duration::from_secs(64)).responses.is_empty());
    let c = h.p.counters();
    assert_eq!((c.ok_retransmitted, c.acks_absorbed), (1, 1));
}

#[test]
fn a_reliable_upstream_gets_no_retransmission() {
    let (mut h, _, _) = answered(TransportKind::Tcp, tls_in());
    assert_eq!(h.p.awaiting_ack(), 0);
    assert!(h.advance(Duration::from_secs(64)).responses.is_empty());
    // Its ACKs are all forwarded (a reliable hop makes no copies to absorb).
    assert_eq!(acks(&h.request(&ack("z9hG4bKack1", "tcp"), tls_in())), 1);
    assert_eq!(h.p.counters().ok_retransmitted, 0);
}

#[test]
fn a_bye_from_the_caller_stops_retransmissions_and_a_late_ack_is_absorbed() {
    let (mut h, _, _) = answered(TransportKind::Tcp, udp_in());
    // The UAC got the 200, its ACK was lost, and it hangs up: the BYE goes down.
    let bye = ack("z9hG4bKbye1", "tcp")
        .replace("ACK sip:", "BYE sip:")
        .replace("CSeq: 1 ACK", "CSeq: 2 BYE");
    let o = h.request(&bye, udp_in());
    assert_eq!(o.only_send().2.method(), Some("BYE"));
    // No 200 goes up again, and an ACK arriving now would reach the UAS after the BYE.
    assert!(h.advance(MS(600)).responses.is_empty());
    assert_eq!(acks(&h.request(&ack("z9hG4bKack1", "tcp"), udp_in())), 0);
    let c = h.p.counters();
    assert_eq!((c.ok_retransmitted, c.acks_absorbed), (0, 1));
    h.advance(Duration::from_secs(64));
    assert_eq!(h.p.awaiting_ack(), 0);
}
