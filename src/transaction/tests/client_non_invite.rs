//! Non-INVITE client transaction (§17.1.2): states Trying, Proceeding, Completed,
//! Terminated; Timers E, F, K.

use std::time::Instant;

use crate::transaction::tests::msg::{request, response};
use crate::transaction::tests::sim::{gaps, millis, Fate, Pair, Side, What, MS, S, ZERO};
use crate::transaction::{Action, NonInviteClient, State, Timer, TimerConfig, TransactionError};
use crate::TransportKind::{Tcp, Udp};

#[test]
fn timer_e_doubles_caps_at_t2_until_timer_f() {
    let mut p = Pair::new(Udp);
    p.server_absent = true;
    let id = p.start(request("OPTIONS", "z9hG4bKe", Udp));
    p.run();
    let sends = p.sends(Side::Client, "OPTIONS");
    assert_eq!(
        millis(&gaps(&sends)),
        [500, 1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000, 4000],
        "{}",
        p.dump()
    );
    assert_eq!(*sends.last().unwrap(), 31500 * MS);
    assert_eq!(p.timeouts(Side::Client), [(32 * S, Timer::F)]);
    assert_eq!(
        p.state_names(Side::Client, id),
        [State::Trying, State::Terminated]
    );
}

#[test]
fn proceeding_retransmits_every_t2_until_timer_f() {
    let mut p = Pair::new(Udp);
    // The TU sends 100 at once and never a final response.
    p.answer(&[(ZERO, 100)]);
    let id = p.start(request("REGISTER", "z9hG4bKe", Udp));
    p.run();
    assert_eq!(
        millis(&p.sends(Side::Client, "REGISTER")),
        [0, 500, 4500, 8500, 12500, 16500, 20500, 24500, 28500],
        "{}",
        p.dump()
    );
    assert_eq!(p.timeouts(Side::Client), [(32 * S, Timer::F)]);
    assert_eq!(
        p.states(Side::Client, id),
        [
            (ZERO, State::Trying),
            (10 * MS, State::Proceeding),
            (32 * S, State::Terminated)
        ]
    );
    // Every retransmission reaching the server gets the 100 again (§17.2.2).
    assert_eq!(p.sends(Side::Server, "100 REGISTER").len(), 9);
}

#[test]
fn completed_absorbs_response_retransmissions_until_timer_k() {
    let mut p = Pair::new(Udp);
    p.answer(&[(ZERO, 200)]);
    p.plan(crate::transaction::tests::sim::from_side(
        Side::Server,
        Fate::Duplicate,
    ));
    let id = p.start(request("BYE", "z9hG4bKk", Udp));
    p.run();
    assert_eq!(millis(&p.arrivals(Side::Client, "200 BYE")), [10, 11]);
    assert_eq!(p.passed_up(Side::Client), ["200 BYE"]);
    assert_eq!(
        p.states(Side::Client, id),
        [
            (ZERO, State::Trying),
            (10 * MS, State::Completed),
            (5 * S + 10 * MS, State::Terminated)
        ],
        "Timer K = T4"
    );
}

#[test]
fn reliable_starts_no_timer_e_and_timer_k_is_zero() {
    let mut p = Pair::new(Tcp);
    p.answer(&[(2 * S, 404)]);
    let id = p.start(request("OPTIONS", "z9hG4bKk", Tcp));
    p.run();
    assert_eq!(millis(&p.sends(Side::Client, "OPTIONS")), [0]);
    assert_eq!(
        p.states(Side::Client, id),
        [(ZERO, State::Trying), (2010 * MS, State::Terminated)]
    );
    assert_eq!(p.passed_up(Side::Client), ["404 OPTIONS"]);
}

#[test]
fn reliable_times_out_by_timer_f() {
    let mut p = Pair::new(Tcp);
    p.server_absent = true;
    p.start(request("OPTIONS", "z9hG4bKf", Tcp));
    p.run();
    assert_eq!(p.sends(Side::Client, "OPTIONS").len(), 1);
    assert_eq!(p.timeouts(Side::Client), [(32 * S, Timer::F)]);
}

#[test]
fn transport_error_in_trying_terminates() {
    let mut p = Pair::new(Udp);
    p.plan(|s| if s.nth == 1 { Fate::Fail } else { Fate::Drop });
    let id = p.start(request("OPTIONS", "z9hG4bKt", Udp));
    p.run();
    // The first retransmission fails.
    assert_eq!(p.count(Side::Client, |w| *w == What::TransportError), 1);
    assert_eq!(
        p.entered(Side::Client, id, State::Terminated),
        Some(500 * MS)
    );
}

#[test]
fn machine_checks() {
    let now = Instant::now();
    let req = request("OPTIONS", "z9hG4bKm", Udp);
    assert_eq!(
        NonInviteClient::new(
            request("INVITE", "z9hG4bKi", Udp),
            Udp,
            TimerConfig::default(),
            now
        )
        .unwrap_err(),
        TransactionError::WrongMethod("INVITE".into())
    );
    assert_eq!(
        NonInviteClient::new(
            request("ACK", "z9hG4bKi", Udp),
            Udp,
            TimerConfig::default(),
            now
        )
        .unwrap_err(),
        TransactionError::AckStartsNoTransaction
    );
    let mut c = NonInviteClient::new(req.clone(), Udp, TimerConfig::default(), now).unwrap();
    assert!(matches!(c.poll_action(), Some(Action::Send(_))));
    c.handle_response(response(&req, 500), now).unwrap();
    assert!(matches!(c.poll_action(), Some(Action::PassUp(_))));
    // Completed: a transport error changes nothing (nothing is sent any more).
    c.handle_transport_error(now);
    assert!(c.poll_action().is_none());
    assert_eq!(c.state(), State::Completed);
    assert_eq!(c.deadline(), Some(now + 5 * S));
}
