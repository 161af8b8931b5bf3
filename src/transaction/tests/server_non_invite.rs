//! Non-INVITE server transaction (§17.2.2): states Trying, Proceeding, Completed,
//! Terminated; Timer J.

use std::time::Instant;

use crate::transaction::tests::msg::{request, response};
use crate::transaction::tests::sim::{millis, Fate, Pair, Side, What, MS, S, ZERO};
use crate::transaction::{Action, NonInviteServer, State, TimerConfig, TransactionError};
use crate::TransportKind::{Tcp, Udp};

#[test]
fn trying_absorbs_request_retransmissions() {
    let mut p = Pair::new(Udp);
    p.answer(&[(2 * S, 200)]);
    p.start(request("OPTIONS", "z9hG4bKt", Udp));
    p.run();
    assert_eq!(millis(&p.arrivals(Side::Server, "OPTIONS")), [5, 505, 1505]);
    assert_eq!(p.passed_up(Side::Server), ["OPTIONS"]);
    assert_eq!(millis(&p.sends(Side::Server, "200 OPTIONS")), [2005]);
    let sid = p.ids(Side::Server)[0];
    assert_eq!(
        p.state_names(Side::Server, sid),
        [State::Trying, State::Completed, State::Terminated]
    );
}

#[test]
fn proceeding_resends_the_latest_provisional() {
    let mut p = Pair::new(Udp);
    p.answer(&[(ZERO, 100), (2 * S, 200)]);
    p.start(request("SUBSCRIBE", "z9hG4bKp", Udp));
    p.run();
    assert_eq!(millis(&p.sends(Side::Server, "100 SUBSCRIBE")), [5, 505]);
    let sid = p.ids(Side::Server)[0];
    assert_eq!(
        p.states(Side::Server, sid),
        [
            (5 * MS, State::Trying),
            (5 * MS, State::Proceeding),
            (2005 * MS, State::Completed),
            (34005 * MS, State::Terminated)
        ]
    );
}

#[test]
fn timer_j_absorbs_request_retransmissions_in_completed() {
    let mut p = Pair::new(Udp);
    p.answer(&[(ZERO, 200)]);
    p.plan(|s| {
        if s.label == "200 BYE" && s.nth == 0 {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    let cid = p.start(request("BYE", "z9hG4bKj", Udp));
    p.run();
    // The lost 200 is sent again when the retransmitted BYE arrives.
    assert_eq!(millis(&p.sends(Side::Server, "200 BYE")), [5, 505]);
    assert_eq!(p.passed_up(Side::Server), ["BYE"]);
    assert_eq!(
        p.entered(Side::Client, cid, State::Completed),
        Some(510 * MS)
    );
    let sid = p.ids(Side::Server)[0];
    assert_eq!(
        p.entered(Side::Server, sid, State::Terminated),
        Some(32005 * MS),
        "Timer J = 64·T1"
    );
}

#[test]
fn reliable_timer_j_is_zero() {
    let mut p = Pair::new(Tcp);
    p.answer(&[(ZERO, 200)]);
    p.start(request("BYE", "z9hG4bKj", Tcp));
    p.run();
    let sid = p.ids(Side::Server)[0];
    assert_eq!(
        p.states(Side::Server, sid),
        [(5 * MS, State::Trying), (5 * MS, State::Terminated)]
    );
}

/// A MESSAGE answered 200 whose first sending fails.
fn first_response_fails(transport: crate::TransportKind) -> Pair {
    let mut p = Pair::new(transport);
    p.answer(&[(ZERO, 200)]);
    p.plan(|s| {
        if s.from == Side::Server && s.nth == 0 {
            Fate::Fail
        } else {
            Fate::Deliver
        }
    });
    p.start(request("MESSAGE", "z9hG4bKx", transport));
    p.run();
    p
}

#[test]
fn transport_error_in_completed_terminates() {
    let p = first_response_fails(Tcp);
    assert_eq!(
        p.count(Side::Server, |w| *w == What::TransportError),
        0,
        "J = 0 on TCP: the transaction ended with the send"
    );
    // Over UDP the transaction is still in Completed when the send fails.
    let p = first_response_fails(Udp);
    assert_eq!(p.count(Side::Server, |w| *w == What::TransportError), 1);
    let sid = p.ids(Side::Server)[0];
    assert_eq!(
        p.entered(Side::Server, sid, State::Terminated),
        Some(5 * MS)
    );
}

#[test]
fn machine_checks() {
    let now = Instant::now();
    let req = request("OPTIONS", "z9hG4bKm", Udp);
    let mut s = NonInviteServer::new(req.clone(), Udp, TimerConfig::default(), now).unwrap();
    assert!(matches!(s.poll_action(), Some(Action::PassUp(_))));
    // Trying: no response sent yet, a transport error changes nothing.
    s.handle_transport_error(now);
    assert!(s.poll_action().is_none());
    s.send_response(response(&req, 200), now).unwrap();
    assert!(matches!(
        s.send_response(response(&req, 500), now),
        Err(TransactionError::InvalidInState {
            state: State::Completed,
            ..
        })
    ));
    for m in ["ACK", "INVITE"] {
        assert!(NonInviteServer::new(
            request(m, "z9hG4bKm", Udp),
            Udp,
            TimerConfig::default(),
            now
        )
        .is_err());
    }
    assert_eq!(
        s.handle_request(request("OPTIONS", "z9hG4bKother", Udp), now),
        Err(TransactionError::NotMatching)
    );
}
