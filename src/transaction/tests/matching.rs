//! Matching through the table: CANCEL (§9.2), the RFC 2543 fallback (§17.2.3), sent-by,
//! stray responses and ACKs, typed errors, the deadline heap.

use std::time::Instant;

use crate::transaction::tests::msg::{
    cancel_for, invite, parse, request, request_with_via, response,
};
use crate::transaction::tests::sim::{Pair, Side, S, ZERO};
use crate::transaction::{
    Action, Received, State, TimerConfig, TransactionError, TransactionKind, Transactions,
};
use crate::TransportKind::{Tcp, Udp};

fn no_trying() -> TimerConfig {
    TimerConfig {
        trying_delay: None,
        ..TimerConfig::default()
    }
}

fn drain(t: &mut Transactions) -> Vec<Action> {
    std::iter::from_fn(|| t.poll_action())
        .map(|(_, a)| a)
        .collect()
}

#[test]
fn cancel_matches_the_invite_it_cancels() {
    for transport in [Udp, Tcp] {
        let mut p = Pair::new(transport);
        p.answer(&[(ZERO, 180)]);
        let inv = request("INVITE", "z9hG4bKc", transport);
        let cid = p.start(inv.clone());
        p.run_until(S);
        let cancel = p.start(cancel_for(&inv));
        p.run();
        assert_eq!(p.passed_up(Side::Server), ["INVITE", "CANCEL"]);
        assert_eq!(
            p.passed_up(Side::Client),
            ["180 INVITE", "200 CANCEL", "487 INVITE"],
            "{}",
            p.dump()
        );
        assert_eq!(p.sends(Side::Client, "ACK").len(), 1);
        let sid = p.ids(Side::Server)[0];
        // The ACK for the 487 confirmed the INVITE transaction (Timer I is zero on TCP).
        assert_eq!(
            p.state_names(Side::Server, sid).contains(&State::Confirmed),
            transport == Udp
        );
        assert!(p.timeouts(Side::Server).is_empty());
        assert!(p.is_terminated(Side::Client, cid) && p.is_terminated(Side::Client, cancel));
    }
}

#[test]
fn cancel_of_an_unknown_invite_gets_481() {
    let mut p = Pair::new(Udp);
    p.start(cancel_for(&invite("z9hG4bKgone")));
    p.run();
    assert_eq!(p.passed_up(Side::Client), ["481 CANCEL"]);
}

#[test]
fn cancel_target_rules() {
    let now = Instant::now();
    let mut t = Transactions::new(no_trying());
    let inv = invite("z9hG4bKc");
    let id = t.start_server(inv.clone(), Udp, now).unwrap();
    assert_eq!(t.cancel_target(&cancel_for(&inv)).unwrap(), Some(id));
    assert_eq!(
        t.cancel_target(&cancel_for(&invite("z9hG4bKx"))).unwrap(),
        None
    );
    assert!(matches!(
        t.cancel_target(&inv),
        Err(TransactionError::WrongMethod(_))
    ));
    // RFC 2543 fallback: the CANCEL matches by Request-URI, tags, Call-ID, CSeq number
    // and top Via.
    let old = invite("old-1");
    let old_id = t.start_server(old.clone(), Udp, now).unwrap();
    assert_eq!(t.cancel_target(&cancel_for(&old)).unwrap(), Some(old_id));
    let tagged = parse(
        &String::from_utf8_lossy(cancel_for(&old).as_bytes()).replace(
            "To: Bob <sip:bob@biloxi.example.com>",
            "To: Bob <sip:bob@biloxi.example.com>;tag=x",
        ),
    );
    assert_eq!(t.cancel_target(&tagged).unwrap(), None, "To tag differs");
}

#[test]
fn rfc2543_fallback_matching() {
    let now = Instant::now();
    let mut t = Transactions::new(no_trying());
    for branch_param in ["", ";branch=1234"] {
        let via = format!("SIP/2.0/UDP old.example.com:5060{branch_param}");
        let inv = request_with_via("INVITE", &via);
        let id = t.start_server(inv.clone(), Udp, now).unwrap();
        assert!(matches!(
            t.get(id).unwrap().key(),
            crate::transaction::TransactionKey::Server(k) if !k.is_rfc3261()
        ));
        // A retransmission matches.
        assert!(matches!(t.receive(inv.clone(), now).unwrap(), Received::Matched(m) if m == id));
        // Another Call-ID is another transaction.
        let other = parse(&String::from_utf8_lossy(inv.as_bytes()).replace("call-1@", "call-2@"));
        assert!(matches!(
            t.receive(other, now).unwrap(),
            Received::NewRequest(_)
        ));
        // The ACK must carry the To tag of the response the server sent.
        let busy = response(&inv, 486);
        let tag = busy.to_tag().unwrap().to_owned();
        t.send_response(id, busy, now).unwrap();
        let ack_text = String::from_utf8_lossy(inv.as_bytes())
            .replace("INVITE sip:", "ACK sip:")
            .replace("1 INVITE", "1 ACK");
        let wrong = parse(&ack_text.replace(
            "To: Bob <sip:bob@biloxi.example.com>",
            "To: Bob <sip:bob@biloxi.example.com>;tag=other",
        ));
        assert!(matches!(
            t.receive(wrong, now).unwrap(),
            Received::StrayAck(_)
        ));
        let ack = parse(&ack_text.replace(
            "To: Bob <sip:bob@biloxi.example.com>",
            &format!("To: Bob <sip:bob@biloxi.example.com>;tag={tag}"),
        ));
        assert!(matches!(t.receive(ack, now).unwrap(), Received::Matched(m) if m == id));
        assert_eq!(t.state(id), Some(State::Confirmed));
        drain(&mut t);
    }
}

#[test]
fn server_matching_compares_sent_by() {
    let now = Instant::now();
    let mut t = Transactions::new(no_trying());
    let a = request_with_via("OPTIONS", "SIP/2.0/UDP a.example.com;branch=z9hG4bKsame");
    let b = request_with_via("OPTIONS", "SIP/2.0/UDP b.example.com;branch=z9hG4bKsame");
    let ia = t.start_server(a.clone(), Udp, now).unwrap();
    assert!(matches!(
        t.receive(b.clone(), now).unwrap(),
        Received::NewRequest(_)
    ));
    let ib = t.start_server(b, Udp, now).unwrap();
    assert_ne!(ia, ib);
    assert!(matches!(t.receive(a.clone(), now).unwrap(), Received::Matched(m) if m == ia));
    assert_eq!(
        t.start_server(a, Udp, now).unwrap_err(),
        TransactionError::Duplicate
    );
}

#[test]
fn stray_responses_are_counted_and_stray_acks_go_to_the_tu() {
    let now = Instant::now();
    let mut t = Transactions::new(TimerConfig::default());
    let inv = invite("z9hG4bKnobody");
    let r = t.receive(response(&inv, 200), now).unwrap();
    assert!(matches!(r, Received::StrayResponse(_)));
    assert_eq!(t.stray_responses(), 1);
    let ack = request("ACK", "z9hG4bKnew", Udp);
    assert!(matches!(
        t.receive(ack, now).unwrap(),
        Received::StrayAck(_)
    ));
    assert!(t.is_empty());
    // A response to our INVITE with the CANCEL's method is not the INVITE's.
    let id = t.start_client(inv.clone(), Udp, now).unwrap();
    let r = t.receive(response(&cancel_for(&inv), 200), now).unwrap();
    assert!(matches!(r, Received::StrayResponse(_)));
    assert_eq!(t.stray_responses(), 2);
    assert_eq!(t.state(id), Some(State::Calling));
}

#[test]
fn malformed_input_gets_typed_errors() {
    let now = Instant::now();
    let mut t = Transactions::new(TimerConfig::default());
    let no_branch = request_with_via("OPTIONS", "SIP/2.0/UDP a.example.com");
    assert_eq!(
        t.receive(response(&no_branch, 200), now).unwrap_err(),
        TransactionError::MissingBranch
    );
    assert_eq!(
        t.start_client(no_branch, Udp, now).unwrap_err(),
        TransactionError::MissingBranch
    );
    assert_eq!(
        t.start_server(request("ACK", "z9hG4bKa", Udp), Udp, now)
            .unwrap_err(),
        TransactionError::AckStartsNoTransaction
    );
    let id = t.start_client(invite("z9hG4bKa"), Udp, now).unwrap();
    assert_eq!(
        t.start_client(invite("z9hG4bKa"), Udp, now).unwrap_err(),
        TransactionError::Duplicate
    );
    assert!(matches!(
        t.send_response(id, response(&invite("z9hG4bKa"), 200), now),
        Err(TransactionError::InvalidInState { .. })
    ));
    assert_eq!(t.get(id).unwrap().kind(), TransactionKind::InviteClient);
    let bad = TimerConfig {
        t2: TimerConfig::default().t1 / 2,
        ..TimerConfig::default()
    };
    let mut t2 = Transactions::new(bad);
    assert!(matches!(
        t2.start_client(invite("z9hG4bKb"), Udp, now),
        Err(TransactionError::BadTimers(_))
    ));
    drain(&mut t);
}

#[test]
fn the_table_reports_the_earliest_deadline_and_forgets_terminated_transactions() {
    let now = Instant::now();
    let mut t = Transactions::new(no_trying());
    assert_eq!(t.deadline(), None);
    let inv = t.start_client(invite("z9hG4bK1"), Udp, now).unwrap();
    let opt = t
        .start_client(request("OPTIONS", "z9hG4bK2", Tcp), Tcp, now + S)
        .unwrap();
    // A at T1 is the earliest; the TCP OPTIONS only has F.
    assert_eq!(t.deadline(), Some(now + TimerConfig::default().t1));
    drain(&mut t);
    // Walk the clock through every deadline: the table's is always the minimum of its
    // transactions', and each transaction leaves once its Terminated is polled.
    let mut steps = 0;
    while let Some(d) = t.deadline() {
        let min = [inv, opt]
            .iter()
            .filter_map(|&id| t.get(id).and_then(|x| x.deadline()))
            .min();
        assert_eq!(Some(d), min);
        t.handle_timeout(d);
        assert!(t.deadline().map_or(true, |n| n > d));
        drain(&mut t);
        steps += 1;
    }
    assert!(t.is_empty(), "both timed out (B, F) and left");
    assert_eq!(steps, 8, "six Timer A firings, B at 32 s, F at 33 s");
    assert_eq!(
        t.send_response(inv, response(&invite("z9hG4bK1"), 200), now),
        Err(TransactionError::UnknownTransaction)
    );
    assert_eq!(
        t.transport_error(opt, now),
        Err(TransactionError::UnknownTransaction)
    );
}
