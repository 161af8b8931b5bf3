//! Loss, reordering and duplication on the simulated network.

use crate::transaction::tests::msg::{invite, request};
use crate::transaction::tests::sim::{millis, Fate, Pair, Side, What, MS, S, ZERO};
use crate::transaction::{State, TimerConfig};
use crate::TransportKind::{Tcp, Udp};

fn drop_first(label: &'static str) -> impl FnMut(&crate::transaction::tests::sim::Sent) -> Fate {
    move |s| {
        if s.label == label && s.nth == 0 {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    }
}

#[test]
fn loss_of_the_first_invite_is_recovered_by_timer_a() {
    let mut p = Pair::new(Udp);
    p.answer(&[(ZERO, 200)]);
    p.plan(drop_first("INVITE"));
    let cid = p.start(invite("z9hG4bKl1"));
    p.run();
    assert_eq!(millis(&p.sends(Side::Client, "INVITE")), [0, 500]);
    assert_eq!(p.passed_up(Side::Server), ["INVITE"]);
    assert_eq!(p.passed_up(Side::Client), ["200 INVITE"]);
    assert_eq!(
        p.entered(Side::Client, cid, State::Accepted),
        Some(510 * MS)
    );
}

#[test]
fn loss_of_the_first_non_invite_request_is_recovered_by_timer_e() {
    let mut p = Pair::new(Udp);
    p.answer(&[(ZERO, 200)]);
    p.plan(drop_first("OPTIONS"));
    p.start(request("OPTIONS", "z9hG4bKl2", Udp));
    p.run();
    assert_eq!(millis(&p.sends(Side::Client, "OPTIONS")), [0, 500]);
    assert_eq!(p.passed_up(Side::Client), ["200 OPTIONS"]);
}

#[test]
fn loss_of_the_final_invite_response_is_recovered_by_timer_g() {
    let mut p = Pair::new(Udp);
    p.answer(&[(ZERO, 180), (ZERO, 486)]);
    p.plan(drop_first("486 INVITE"));
    p.start(invite("z9hG4bKl3"));
    p.run();
    assert_eq!(millis(&p.sends(Side::Server, "486 INVITE")), [5, 505]);
    assert_eq!(p.passed_up(Side::Client), ["180 INVITE", "486 INVITE"]);
    assert!(p.timeouts(Side::Server).is_empty());
}

#[test]
fn loss_of_the_final_non_invite_response_is_recovered_by_the_retransmitted_request() {
    let mut p = Pair::new(Udp);
    p.answer(&[(ZERO, 404)]);
    p.plan(drop_first("404 OPTIONS"));
    p.start(request("OPTIONS", "z9hG4bKl4", Udp));
    p.run();
    assert_eq!(millis(&p.sends(Side::Server, "404 OPTIONS")), [5, 505]);
    assert_eq!(p.passed_up(Side::Client), ["404 OPTIONS"]);
    assert_eq!(p.passed_up(Side::Server), ["OPTIONS"]);
}

#[test]
fn loss_of_the_ack_is_recovered_by_timer_g() {
    let mut p = Pair::new(Udp);
    p.answer(&[(ZERO, 486)]);
    p.plan(drop_first("ACK"));
    p.start(invite("z9hG4bKl5"));
    p.run();
    let sid = p.ids(Side::Server)[0];
    assert_eq!(millis(&p.sends(Side::Client, "ACK")), [10, 510]);
    assert_eq!(
        p.entered(Side::Server, sid, State::Confirmed),
        Some(515 * MS)
    );
    assert!(p.timeouts(Side::Server).is_empty());
    assert_eq!(p.passed_up(Side::Client), ["486 INVITE"]);
}

#[test]
fn a_final_response_overtaking_the_provisional_wins() {
    for (method, branch, provisional, last) in [
        ("INVITE", "z9hG4bKr1", 180, 486),
        ("OPTIONS", "z9hG4bKr2", 100, 200),
    ] {
        let mut p = Pair::with_timers(
            Udp,
            TimerConfig {
                trying_delay: None,
                ..TimerConfig::default()
            },
        );
        p.answer(&[(ZERO, provisional), (10 * MS, last)]);
        let late = format!("{provisional} {method}");
        p.plan(move |s| {
            if s.label == late {
                Fate::Delay(S)
            } else {
                Fate::Deliver
            }
        });
        let cid = p.start(request(method, branch, Udp));
        p.run();
        assert_eq!(
            p.arrivals(Side::Client, &format!("{provisional} {method}")),
            [S + 10 * MS]
        );
        assert_eq!(
            p.passed_up(Side::Client),
            [format!("{last} {method}")],
            "the late provisional is absorbed in Completed"
        );
        assert_eq!(
            p.entered(Side::Client, cid, State::Completed),
            Some(20 * MS)
        );
    }
}

#[test]
fn reordered_provisionals_are_all_passed_up() {
    let mut p = Pair::new(Udp);
    p.answer(&[(ZERO, 180), (10 * MS, 183), (2 * S, 486)]);
    p.plan(|s| {
        if s.label == "180 INVITE" {
            Fate::Delay(100 * MS)
        } else {
            Fate::Deliver
        }
    });
    p.start(invite("z9hG4bKr3"));
    p.run();
    assert_eq!(
        p.passed_up(Side::Client),
        ["183 INVITE", "180 INVITE", "486 INVITE"]
    );
}

#[test]
fn duplicated_requests_make_one_server_transaction() {
    for (transport, method) in [(Udp, "INVITE"), (Udp, "OPTIONS"), (Tcp, "INVITE")] {
        let mut p = Pair::new(transport);
        p.answer(&[(ZERO, 200)]);
        p.plan(crate::transaction::tests::sim::from_side(
            Side::Client,
            Fate::Duplicate,
        ));
        p.start(request(method, "z9hG4bKd1", transport));
        p.run();
        assert_eq!(p.ids(Side::Server).len(), 1, "{}", p.dump());
        assert_eq!(p.passed_up(Side::Server), [method]);
    }
}

#[test]
fn duplicated_2xx_to_invite_are_all_passed_up() {
    let mut p = Pair::new(Udp);
    p.answer(&[(ZERO, 200)]);
    p.plan(crate::transaction::tests::sim::for_label(
        "200 INVITE",
        Fate::Duplicate,
    ));
    p.start(invite("z9hG4bKd2"));
    p.run();
    // RFC 6026: each copy reaches the TU, which acknowledges each.
    assert_eq!(p.passed_up(Side::Client), ["200 INVITE", "200 INVITE"]);
    assert_eq!(p.sends(Side::Client, "ACK").len(), 2);
    assert_eq!(p.count(Side::Server, |w| matches!(w, What::StrayAck(_))), 2);
}

#[test]
fn a_late_duplicate_after_termination_is_a_stray_response() {
    let mut p = Pair::new(Tcp);
    p.answer(&[(ZERO, 200)]);
    p.plan(crate::transaction::tests::sim::from_side(
        Side::Server,
        Fate::Duplicate,
    ));
    p.start(request("OPTIONS", "z9hG4bKs", Tcp));
    p.run();
    // Timer K is zero on TCP: the copy 1 ms later finds no transaction.
    assert_eq!(p.passed_up(Side::Client), ["200 OPTIONS"]);
    assert_eq!(
        p.count(Side::Client, |w| matches!(w, What::StrayResponse(_))),
        1
    );
    assert_eq!(p.client.stray_responses(), 1);
}
