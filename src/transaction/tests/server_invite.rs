//! INVITE server transaction (§17.2.1, RFC 6026 §8.5–§8.7): states Proceeding, Accepted,
//! Completed, Confirmed, Terminated; the 100 Trying; Timers G, H, I, L.

use std::time::{Duration, Instant};

use crate::transaction::tests::msg::{ack_with_branch, invite, request, response};
use crate::transaction::tests::sim::{gaps, millis, Fate, Pair, Side, What, MS, S, ZERO};
use crate::transaction::{
    Action, InviteServer, State, Timer, TimerConfig, TransactionError, Transactions,
};
use crate::TransportKind::{Tcp, Udp};

fn no_trying() -> TimerConfig {
    TimerConfig {
        trying_delay: None,
        ..TimerConfig::default()
    }
}

fn trying_after(d: Duration) -> TimerConfig {
    TimerConfig {
        trying_delay: Some(d),
        ..TimerConfig::default()
    }
}

#[test]
fn sends_100_trying_after_200_ms_when_the_tu_is_silent() {
    let mut p = Pair::new(Udp);
    p.answer(&[(S, 486)]);
    p.start(invite("z9hG4bK1"));
    p.run();
    assert_eq!(millis(&p.sends(Side::Server, "100 INVITE")), [205]);
    assert_eq!(p.passed_up(Side::Client), ["100 INVITE", "486 INVITE"]);
    // The 100 stopped Timer A: the INVITE went out once.
    assert_eq!(p.sends(Side::Client, "INVITE").len(), 1);
}

#[test]
fn no_100_trying_when_the_tu_answers_first() {
    let mut p = Pair::new(Udp);
    p.answer(&[(100 * MS, 180), (S, 200)]);
    p.start(invite("z9hG4bK1"));
    p.run();
    assert!(p.sends(Side::Server, "100 INVITE").is_empty());
    let mut p = Pair::new(Udp);
    p.answer(&[(100 * MS, 404)]);
    p.start(invite("z9hG4bK1"));
    p.run();
    assert!(p.sends(Side::Server, "100 INVITE").is_empty());
}

#[test]
fn trying_delay_zero_sends_100_at_once_and_none_never() {
    let mut p = Pair::with_timers(Udp, trying_after(Duration::ZERO));
    p.answer(&[(S, 486)]);
    p.start(invite("z9hG4bK1"));
    p.run();
    assert_eq!(millis(&p.sends(Side::Server, "100 INVITE")), [5]);

    let mut p = Pair::with_timers(Udp, no_trying());
    p.answer(&[(S, 486)]);
    p.start(invite("z9hG4bK1"));
    p.run();
    assert!(p.sends(Side::Server, "100 INVITE").is_empty());
    // Without a provisional the client retransmitted (A at 500 ms), and the server
    // absorbed the retransmission: nothing to resend yet, nothing passed up twice.
    assert_eq!(millis(&p.sends(Side::Client, "INVITE")), [0, 500]);
    assert_eq!(p.passed_up(Side::Server), ["INVITE"]);
}

#[test]
fn proceeding_resends_the_latest_provisional_on_a_retransmission() {
    let mut p = Pair::with_timers(Udp, no_trying());
    p.answer(&[(ZERO, 180), (3 * S, 486)]);
    p.plan(|s| {
        if s.label == "180 INVITE" && s.nth == 0 {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    let id = p.start(invite("z9hG4bKr"));
    p.run();
    assert_eq!(millis(&p.sends(Side::Server, "180 INVITE")), [5, 505]);
    assert_eq!(
        p.passed_up(Side::Server),
        ["INVITE"],
        "retransmission absorbed"
    );
    assert_eq!(
        p.entered(Side::Client, id, State::Proceeding),
        Some(510 * MS)
    );
}

#[test]
fn timer_g_retransmits_the_final_response_until_the_ack() {
    let mut p = Pair::new(Udp);
    // The 180 stops the client's Timer A, so only Timer G resends the 486. Its first
    // five copies are lost; the sixth brings the ACK.
    p.answer(&[(ZERO, 180), (ZERO, 486)]);
    p.plan(|s| {
        if s.label == "486 INVITE" && s.nth < 5 {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    p.start(invite("z9hG4bKg"));
    p.run();
    let sends = p.sends(Side::Server, "486 INVITE");
    assert_eq!(
        millis(&sends),
        [5, 505, 1505, 3505, 7505, 11505],
        "{}",
        p.dump()
    );
    assert_eq!(
        millis(&gaps(&sends)),
        [500, 1000, 2000, 4000, 4000],
        "G caps at T2"
    );
    let sid = p.ids(Side::Server)[0];
    assert_eq!(
        p.states(Side::Server, sid),
        [
            (5 * MS, State::Proceeding),
            (5 * MS, State::Completed),
            (11515 * MS, State::Confirmed),
            (16515 * MS, State::Terminated)
        ]
    );
    assert!(p.timeouts(Side::Server).is_empty());
}

#[test]
fn timer_h_fires_without_an_ack() {
    let mut p = Pair::new(Udp);
    p.answer(&[(ZERO, 486)]);
    p.plan(crate::transaction::tests::sim::for_label("ACK", Fate::Drop));
    p.start(invite("z9hG4bKh"));
    p.run();
    let sends = p.sends(Side::Server, "486 INVITE");
    assert_eq!(sends.len(), 11, "{}", p.dump());
    assert_eq!(*sends.last().unwrap(), 31505 * MS);
    assert_eq!(p.timeouts(Side::Server), [(32005 * MS, Timer::H)]);
    // The client answered every copy with an ACK and passed the 486 up once.
    assert_eq!(p.sends(Side::Client, "ACK").len(), 11);
    assert_eq!(p.passed_up(Side::Client), ["486 INVITE"]);
}

#[test]
fn timer_i_absorbs_ack_retransmissions() {
    let mut p = Pair::new(Udp);
    p.answer(&[(ZERO, 480)]);
    p.plan(crate::transaction::tests::sim::for_label(
        "ACK",
        Fate::Duplicate,
    ));
    p.start(invite("z9hG4bKi"));
    p.run();
    let sid = p.ids(Side::Server)[0];
    assert_eq!(millis(&p.arrivals(Side::Server, "ACK")), [15, 16]);
    assert_eq!(p.passed_up(Side::Server), ["INVITE"], "ACKs absorbed");
    assert_eq!(
        p.entered(Side::Server, sid, State::Confirmed),
        Some(15 * MS)
    );
    assert_eq!(
        p.entered(Side::Server, sid, State::Terminated),
        Some(5015 * MS),
        "Timer I = T4"
    );
}

#[test]
fn reliable_starts_no_timer_g_and_timer_i_is_zero() {
    let mut p = Pair::new(Tcp);
    p.answer(&[(ZERO, 486)]);
    p.start(request("INVITE", "z9hG4bKt", Tcp));
    p.run();
    let sid = p.ids(Side::Server)[0];
    assert_eq!(millis(&p.sends(Side::Server, "486 INVITE")), [5]);
    assert_eq!(
        p.entered(Side::Server, sid, State::Terminated),
        Some(15 * MS)
    );
    assert!(p.timeouts(Side::Server).is_empty());
}

#[test]
fn reliable_timer_h_still_runs() {
    let mut p = Pair::new(Tcp);
    p.answer(&[(ZERO, 486)]);
    p.plan(crate::transaction::tests::sim::for_label("ACK", Fate::Drop));
    p.start(request("INVITE", "z9hG4bKt", Tcp));
    p.run();
    assert_eq!(p.sends(Side::Server, "486 INVITE").len(), 1);
    assert_eq!(p.timeouts(Side::Server), [(32005 * MS, Timer::H)]);
}

#[test]
fn accepted_absorbs_invite_retransmissions_until_timer_l() {
    let mut p = Pair::with_timers(Udp, no_trying());
    p.answer(&[(ZERO, 200)]);
    // The first 200 is lost: the client retransmits the INVITE, which the server's
    // Accepted state absorbs; the TU's 200 retransmission completes the call.
    p.plan(|s| {
        if s.label == "200 INVITE" && s.nth == 0 {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    let cid = p.start(invite("z9hG4bKl"));
    p.run();
    let sid = p.ids(Side::Server)[0];
    assert_eq!(p.ids(Side::Server).len(), 1, "no second transaction");
    assert_eq!(millis(&p.arrivals(Side::Server, "INVITE")), [5, 505]);
    assert_eq!(p.passed_up(Side::Server), ["INVITE"]);
    assert_eq!(millis(&p.sends(Side::Server, "200 INVITE")), [5, 505]);
    assert_eq!(
        p.entered(Side::Client, cid, State::Accepted),
        Some(510 * MS)
    );
    assert_eq!(
        p.states(Side::Server, sid),
        [
            (5 * MS, State::Proceeding),
            (5 * MS, State::Accepted),
            (32005 * MS, State::Terminated)
        ],
        "Timer L = 64·T1"
    );
    // The ACK for the 2xx has its own branch: it reaches the TU as a stray ACK.
    assert_eq!(p.count(Side::Server, |w| matches!(w, What::StrayAck(_))), 1);
}

#[test]
fn accepted_passes_matching_acks_up() {
    let now = Instant::now();
    let inv = invite("z9hG4bKa");
    let mut s = InviteServer::new(inv.clone(), Udp, no_trying(), now).unwrap();
    assert!(matches!(s.poll_action(), Some(Action::PassUp(_))));
    let ok = response(&inv, 200);
    s.send_response(ok.clone(), now).unwrap();
    assert!(matches!(s.poll_action(), Some(Action::Send(_))));
    assert_eq!(s.state(), State::Accepted);
    // An ACK that reuses the INVITE's branch matches the transaction (RFC 6026 §8.7).
    let ack = ack_with_branch(&inv, &ok, "z9hG4bKa");
    assert!(s.matches(&ack));
    s.handle_request(ack.clone(), now).unwrap();
    match s.poll_action() {
        Some(Action::PassUp(m)) => assert_eq!(m.method(), Some("ACK")),
        other => panic!("{other:?}"),
    }
    s.handle_request(ack, now).unwrap();
    assert!(matches!(s.poll_action(), Some(Action::PassUp(_))));
    // INVITE retransmissions are absorbed; the TU's 2xx retransmissions are sent.
    s.handle_request(inv.clone(), now).unwrap();
    assert!(s.poll_action().is_none());
    s.send_response(ok.clone(), now + S).unwrap();
    assert!(matches!(s.poll_action(), Some(Action::Send(_))));
    // A transport error is reported, and the transaction keeps absorbing.
    s.handle_transport_error(now + S);
    assert!(matches!(s.poll_action(), Some(Action::TransportError)));
    assert_eq!(s.state(), State::Accepted);
    // Only 2xx may follow a 2xx.
    assert!(matches!(
        s.send_response(response(&inv, 486), now + S),
        Err(TransactionError::InvalidInState {
            state: State::Accepted,
            ..
        })
    ));
    s.handle_timeout(now + 32 * S);
    assert!(matches!(s.poll_action(), Some(Action::Terminated)));
    assert!(s.poll_action().is_none());
}

#[test]
fn the_table_routes_a_branch_reusing_ack_to_accepted() {
    let now = Instant::now();
    let mut t = Transactions::new(no_trying());
    let inv = invite("z9hG4bKa");
    let id = t.start_server(inv.clone(), Udp, now).unwrap();
    let ok = response(&inv, 200);
    t.send_response(id, ok.clone(), now).unwrap();
    let ack = ack_with_branch(&inv, &ok, "z9hG4bKa");
    assert!(matches!(
        t.receive(ack, now).unwrap(),
        crate::transaction::Received::Matched(m) if m == id
    ));
    let actions: Vec<_> = std::iter::from_fn(|| t.poll_action()).collect();
    assert!(matches!(&actions[..], [
        (_, Action::PassUp(_)),
        (_, Action::Send(_)),
        (_, Action::PassUp(ack)),
    ] if ack.method() == Some("ACK")));
}

#[test]
fn transport_errors_in_proceeding_and_completed_terminate() {
    let now = Instant::now();
    let inv = invite("z9hG4bKe");
    for final_code in [None, Some(486)] {
        let mut s = InviteServer::new(inv.clone(), Udp, no_trying(), now).unwrap();
        s.send_response(response(&inv, 180), now).unwrap();
        if let Some(code) = final_code {
            s.send_response(response(&inv, code), now).unwrap();
        }
        s.handle_transport_error(now);
        let actions: Vec<_> = std::iter::from_fn(|| s.poll_action()).collect();
        assert!(matches!(
            actions.as_slice(),
            [.., Action::TransportError, Action::Terminated]
        ));
        assert_eq!(s.state(), State::Terminated);
    }
}

#[test]
fn responses_the_state_forbids_are_refused() {
    let now = Instant::now();
    let inv = invite("z9hG4bKf");
    let mut s = InviteServer::new(inv.clone(), Udp, no_trying(), now).unwrap();
    s.send_response(response(&inv, 486), now).unwrap();
    for code in [180, 200, 486] {
        assert!(matches!(
            s.send_response(response(&inv, code), now),
            Err(TransactionError::InvalidInState {
                state: State::Completed,
                ..
            })
        ));
    }
    let other = invite("z9hG4bKother");
    assert_eq!(
        s.send_response(response(&request("BYE", "z9hG4bKb", Udp), 200), now),
        Err(TransactionError::NotMatching)
    );
    assert_eq!(
        s.handle_request(other, now),
        Err(TransactionError::NotMatching)
    );
    assert_eq!(
        s.send_response(inv.clone(), now),
        Err(TransactionError::NotAResponse)
    );
    assert_eq!(
        InviteServer::new(request("BYE", "z9hG4bKb", Udp), Udp, no_trying(), now).unwrap_err(),
        TransactionError::WrongMethod("BYE".into())
    );
    assert_eq!(
        InviteServer::new(request("ACK", "z9hG4bKb", Udp), Udp, no_trying(), now).unwrap_err(),
        TransactionError::AckStartsNoTransaction
    );
}
