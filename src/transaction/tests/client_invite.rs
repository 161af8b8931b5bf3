//! INVITE client transaction (§17.1.1, RFC 6026 §8.4): states Calling, Proceeding,
//! Accepted, Completed, Terminated; Timers A, B, D, M.

use std::time::Instant;

use crate::transaction::tests::msg::{invite, request, response};
use crate::transaction::tests::sim::{gaps, millis, Fate, Pair, Side, What, MS, S, ZERO};
use crate::transaction::{Action, InviteClient, State, Timer, TimerConfig, TransactionError};
use crate::TransportKind::{Tcp, Udp};

#[test]
fn timer_a_doubles_from_t1_until_timer_b() {
    let mut p = Pair::new(Udp);
    p.server_absent = true;
    let id = p.start(request("INVITE", "z9hG4bKa", Udp));
    p.run();
    let sends = p.sends(Side::Client, "INVITE");
    assert_eq!(
        millis(&sends),
        [0, 500, 1500, 3500, 7500, 15500, 31500],
        "{}",
        p.dump()
    );
    assert_eq!(millis(&gaps(&sends)), [500, 1000, 2000, 4000, 8000, 16000]);
    assert_eq!(p.timeouts(Side::Client), [(32 * S, Timer::B)]);
    assert_eq!(
        p.states(Side::Client, id),
        [(ZERO, State::Calling), (32 * S, State::Terminated)]
    );
    assert!(p.client.is_empty());
}

#[test]
fn timer_a_follows_a_configured_t1() {
    let timers = TimerConfig {
        t1: 100 * MS,
        ..TimerConfig::default()
    };
    let mut p = Pair::with_timers(Udp, timers);
    p.server_absent = true;
    p.start(request("INVITE", "z9hG4bKa", Udp));
    p.run();
    let sends = p.sends(Side::Client, "INVITE");
    assert_eq!(
        millis(&sends),
        [0, 100, 300, 700, 1500, 3100, 6300],
        "A doubles from T1 = 100 ms; B = 64·T1 = 6.4 s"
    );
    assert_eq!(p.timeouts(Side::Client), [(6400 * MS, Timer::B)]);
}

#[test]
fn reliable_invite_starts_no_timer_a_and_times_out_by_timer_b() {
    let mut p = Pair::new(Tcp);
    p.server_absent = true;
    p.start(request("INVITE", "z9hG4bKa", Tcp));
    p.run();
    assert_eq!(millis(&p.sends(Side::Client, "INVITE")), [0]);
    assert_eq!(p.timeouts(Side::Client), [(32 * S, Timer::B)]);
}

#[test]
fn provisional_moves_to_proceeding_and_stops_timers_a_and_b() {
    let mut p = Pair::new(Udp);
    // The server's own 100 Trying (after 200 ms) is the first provisional.
    let id = p.start(invite("z9hG4bKp"));
    p.run_until(100 * S);
    assert_eq!(millis(&p.sends(Side::Client, "INVITE")), [0]);
    assert_eq!(p.passed_up(Side::Client), ["100 INVITE"]);
    assert_eq!(
        p.states(Side::Client, id),
        [(ZERO, State::Calling), (210 * MS, State::Proceeding)]
    );
    assert!(
        p.timeouts(Side::Client).is_empty(),
        "no Timer B in Proceeding"
    );
    assert_eq!(p.client.deadline(), None);
}

#[test]
fn proceeding_passes_every_provisional_up() {
    let mut p = Pair::new(Udp);
    p.answer(&[(ZERO, 180), (S, 183), (2 * S, 486)]);
    p.start(invite("z9hG4bKp"));
    p.run();
    assert_eq!(
        p.passed_up(Side::Client),
        ["180 INVITE", "183 INVITE", "486 INVITE"]
    );
}

#[test]
fn completed_absorbs_final_retransmissions_resends_ack_until_timer_d() {
    let mut p = Pair::new(Udp);
    p.answer(&[(ZERO, 486)]);
    // The first two ACKs are lost: the server's Timer G retransmits the 486 twice.
    p.plan(|s| {
        if s.label == "ACK" && s.nth < 2 {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    let id = p.start(invite("z9hG4bKd"));
    p.run();
    assert_eq!(
        millis(&p.arrivals(Side::Client, "486 INVITE")),
        [10, 510, 1510]
    );
    assert_eq!(millis(&p.sends(Side::Client, "ACK")), [10, 510, 1510]);
    assert_eq!(
        p.passed_up(Side::Client),
        ["486 INVITE"],
        "retransmissions absorbed"
    );
    assert_eq!(
        p.states(Side::Client, id),
        [
            (ZERO, State::Calling),
            (10 * MS, State::Completed),
            (32 * S + 10 * MS, State::Terminated)
        ],
        "Timer D = 32 s"
    );
}

#[test]
fn reliable_timer_d_is_zero() {
    let mut p = Pair::new(Tcp);
    p.answer(&[(ZERO, 603)]);
    let id = p.start(request("INVITE", "z9hG4bKd", Tcp));
    p.run();
    assert_eq!(millis(&p.sends(Side::Client, "ACK")), [10]);
    assert_eq!(
        p.entered(Side::Client, id, State::Terminated),
        Some(10 * MS)
    );
    assert_eq!(p.passed_up(Side::Client), ["603 INVITE"]);
}

#[test]
fn accepted_passes_2xx_retransmissions_up_until_timer_m() {
    let mut p = Pair::new(Udp);
    p.answer(&[(ZERO, 200)]);
    // The TU's first two ACKs for the 2xx are lost: the server TU retransmits the 200
    // (through the server transaction's Accepted state) and each copy reaches the TU.
    p.plan(|s| {
        if s.label == "ACK" && s.nth < 2 {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    let id = p.start(invite("z9hG4bKm"));
    p.run();
    assert_eq!(
        p.passed_up(Side::Client),
        ["200 INVITE", "200 INVITE", "200 INVITE"],
        "{}",
        p.dump()
    );
    assert_eq!(millis(&p.sends(Side::Client, "ACK")), [10, 510, 1510]);
    assert_eq!(
        p.states(Side::Client, id),
        [
            (ZERO, State::Calling),
            (10 * MS, State::Accepted),
            (32 * S + 10 * MS, State::Terminated)
        ],
        "Timer M = 64·T1"
    );
    // The ACK of the third copy stops the server TU's retransmissions.
    assert_eq!(p.sends(Side::Server, "200 INVITE").len(), 3);
}

#[test]
fn reliable_accepted_still_lasts_timer_m() {
    let mut p = Pair::new(Tcp);
    p.answer(&[(ZERO, 200)]);
    let id = p.start(request("INVITE", "z9hG4bKm", Tcp));
    p.run();
    assert_eq!(p.entered(Side::Client, id, State::Accepted), Some(10 * MS));
    assert_eq!(
        p.entered(Side::Client, id, State::Terminated),
        Some(32 * S + 10 * MS)
    );
}

#[test]
fn transport_error_in_calling_terminates() {
    let mut p = Pair::new(Tcp);
    p.plan(|_| Fate::Fail);
    let id = p.start(request("INVITE", "z9hG4bKe", Tcp));
    p.run();
    assert_eq!(p.count(Side::Client, |w| *w == What::TransportError), 1);
    assert_eq!(p.entered(Side::Client, id, State::Terminated), Some(ZERO));
    assert!(p.timeouts(Side::Client).is_empty());
}

#[test]
fn machine_absorbs_what_its_state_ignores() {
    let now = Instant::now();
    let inv = invite("z9hG4bKu");
    let mut c = InviteClient::new(inv.clone(), Udp, TimerConfig::default(), now).unwrap();
    assert!(matches!(c.poll_action(), Some(Action::Send(_))));
    c.handle_response(response(&inv, 200), now).unwrap();
    assert!(matches!(c.poll_action(), Some(Action::PassUp(_))));
    // Accepted: a non-2xx and a provisional are absorbed, a 2xx goes up.
    c.handle_response(response(&inv, 486), now).unwrap();
    c.handle_response(response(&inv, 180), now).unwrap();
    assert!(c.poll_action().is_none());
    c.handle_response(response(&inv, 200), now).unwrap();
    assert!(matches!(c.poll_action(), Some(Action::PassUp(_))));
    // No transport error in Accepted: the TU sends the ACKs.
    c.handle_transport_error(now);
    assert!(c.poll_action().is_none());
    assert_eq!(c.state(), State::Accepted);
    c.handle_timeout(now + 64 * TimerConfig::default().t1);
    assert!(matches!(c.poll_action(), Some(Action::Terminated)));
    // After Terminated: nothing, whatever comes.
    c.handle_response(response(&inv, 200), now).unwrap();
    c.handle_transport_error(now);
    c.handle_timeout(now + 3600 * S);
    assert!(c.poll_action().is_none());
    assert_eq!(c.deadline(), None);
}

#[test]
fn machine_refuses_foreign_messages() {
    let now = Instant::now();
    let inv = invite("z9hG4bKu");
    let mut c = InviteClient::new(inv.clone(), Udp, TimerConfig::default(), now).unwrap();
    let other = invite("z9hG4bKother");
    assert_eq!(
        c.handle_response(response(&other, 200), now),
        Err(TransactionError::NotMatching)
    );
    assert_eq!(
        c.handle_response(inv.clone(), now),
        Err(TransactionError::NotAResponse)
    );
    assert_eq!(
        InviteClient::new(
            request("BYE", "z9hG4bKb", Udp),
            Udp,
            TimerConfig::default(),
            now
        )
        .unwrap_err(),
        TransactionError::WrongMethod("BYE".into())
    );
    let bad = TimerConfig {
        t1: ZERO,
        ..TimerConfig::default()
    };
    assert!(matches!(
        InviteClient::new(inv, Udp, bad, now),
        Err(TransactionError::BadTimers(_))
    ));
}
