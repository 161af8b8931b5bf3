//! Random loss, duplication and reordering between a client and a server, checking the
//! invariants of §17 on every run: every transaction terminates, the client ends by its
//! timeout or with the server's final response, nothing follows Terminated (the harness
//! checks that on every action), and retransmissions stay within what the timers allow.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;

use crate::transaction::tests::msg::request;
use crate::transaction::tests::sim::{Fate, Pair, Side, What};
use crate::transaction::{Timer, TimerConfig};
use crate::TransportKind;

#[derive(Debug, Clone, Copy)]
enum Fault {
    Drop,
    Duplicate,
    Delay(u64),
}

/// Which messages a burst of losses hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Burst {
    Request,
    Provisional,
    Final,
    Ack,
}

#[derive(Debug, Clone)]
struct Case {
    invite: bool,
    reliable: bool,
    /// None: the server is not there. Else (send a provisional first, final code, delay
    /// of the final in ms).
    server: Option<(bool, u16, u64)>,
    /// Faults by index of the message on the network (UDP only).
    faults: Vec<(usize, Fault)>,
    /// The first n messages of one kind are lost (UDP only): enough to exhaust Timer A
    /// (7 INVITEs) or Timer G (11 ACKs), never all final responses (an INVITE client in
    /// Proceeding waits for its TU, §17.1.1.2).
    burst: Option<(Burst, usize)>,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        3 => Just(Fault::Drop),
        1 => Just(Fault::Duplicate),
        2 => (1u64..2000).prop_map(Fault::Delay),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let server = prop_oneof![
        1 => Just(None),
        6 => (any::<bool>(), prop::sample::select(vec![200u16, 302, 404, 486, 503, 603]), 0u64..3000)
            .prop_map(Some),
    ];
    let burst = prop_oneof![
        2 => Just(None),
        1 => (0usize..=8).prop_map(|n| Some((Burst::Request, n))),
        1 => (0usize..=3).prop_map(|n| Some((Burst::Provisional, n))),
        1 => (0usize..=7).prop_map(|n| Some((Burst::Final, n))),
        1 => (0usize..=12).prop_map(|n| Some((Burst::Ack, n))),
    ];
    (
        any::<bool>(),
        prop::bool::weighted(0.25),
        server,
        prop::collection::vec((0usize..30, fault()), 0..=3),
        burst,
    )
        .prop_map(|(invite, reliable, server, faults, burst)| Case {
            invite,
            reliable,
            server,
            faults,
            burst,
        })
}

/// How many times a request or response is sent at most: once, plus each firing of a
/// retransmission timer starting at T1 (doubling, capped at `cap`) before 64·T1.
fn max_sends(t: &TimerConfig, cap: Option<Duration>) -> usize {
    let (mut at, mut interval, mut n) = (Duration::ZERO, t.t1, 1);
    while at + interval < 64 * t.t1 {
        at += interval;
        n += 1;
        interval = cap.map_or(interval * 2, |c| (interval * 2).min(c));
    }
    n
}

fn run(case: &Case) -> Result<(), TestCaseError> {
    let transport = if case.reliable {
        TransportKind::Tcp
    } else {
        TransportKind::Udp
    };
    let method = if case.invite { "INVITE" } else { "OPTIONS" };
    let mut p = Pair::new(transport);
    let timers = p.timers;
    if !case.reliable {
        let faults: HashMap<usize, Fault> = case.faults.iter().copied().collect();
        let burst = case.burst;
        p.plan(move |s| {
            if let Some((kind, n)) = burst {
                let code: u16 = s
                    .label
                    .split(' ')
                    .next()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                let hit = match kind {
                    Burst::Request => s.from == Side::Client && code == 0 && s.label != "ACK",
                    Burst::Provisional => (100..200).contains(&code),
                    Burst::Final => code >= 200,
                    Burst::Ack => s.label == "ACK",
                };
                if hit && s.nth < n {
                    return Fate::Drop;
                }
            }
            match faults.get(&s.n) {
                Some(Fault::Drop) => Fate::Drop,
                Some(Fault::Duplicate) => Fate::Duplicate,
                Some(&Fault::Delay(ms)) => Fate::Delay(Duration::from_millis(ms)),
                None => Fate::Deliver,
            }
        });
    }
    let final_code = match case.server {
        None => {
            p.server_absent = true;
            None
        }
        Some((provisional, code, delay)) => {
            let mut script = Vec::new();
            if provisional {
                script.push((Duration::ZERO, if case.invite { 180 } else { 100 }));
            }
            script.push((Duration::from_millis(delay), code));
            p.answer(&script);
            Some(code)
        }
    };
    let cid = p.start(request(method, "z9hG4bKprop", transport));
    p.run();
    let dump = || p.dump();

    // Every transaction terminated, exactly once, and left its table.
    prop_assert!(p.client.is_empty() && p.server.is_empty(), "{}", dump());
    for side in [Side::Client, Side::Server] {
        for id in p.ids(side) {
            let n = p
                .log
                .iter()
                .filter(|e| e.side == side && e.id == Some(id) && e.what == What::Terminated)
                .count();
            prop_assert_eq!(n, 1, "{:?} {} terminated {} times\n{}", side, id, n, dump());
        }
    }

    // The client ended by its timeout or with the server's final response.
    let finals: Vec<u16> = p
        .passed_up(Side::Client)
        .iter()
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .filter(|&c| c >= 200)
        .collect();
    let timeouts: Vec<Timer> = p
        .timeouts(Side::Client)
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    let timer = if case.invite { Timer::B } else { Timer::F };
    match (finals.first(), timeouts.as_slice()) {
        (Some(&code), []) => prop_assert_eq!(Some(code), final_code, "{}", dump()),
        (None, [t]) => prop_assert_eq!(*t, timer),
        other => prop_assert!(false, "client outcome {:?}\n{}", other, dump()),
    }
    if case.reliable || (case.faults.is_empty() && case.burst.map_or(true, |b| b.1 == 0)) {
        prop_assert_eq!(finals.first().copied(), final_code, "{}", dump());
    }
    // Only 2xx to INVITE reach the TU more than once (RFC 6026).
    if !(case.invite && final_code.is_some_and(|c| c < 300)) {
        prop_assert!(finals.len() <= 1, "{}", dump());
    }
    prop_assert_eq!(p.count(Side::Client, |w| *w == What::TransportError), 0);

    // Each server transaction passed its request up once (retransmissions absorbed) and
    // never an ACK for a non-2xx; there is one unless a late copy outlived the first.
    let arrived = p.arrivals(Side::Server, method).len();
    let servers = p.ids(Side::Server);
    prop_assert_eq!(servers.is_empty(), arrived == 0);
    for &id in &servers {
        let up: Vec<&What> = p
            .log
            .iter()
            .filter(|e| e.side == Side::Server && e.id == Some(id))
            .map(|e| &e.what)
            .filter(|w| matches!(w, What::PassUp(_)))
            .collect();
        prop_assert_eq!(up, [&What::PassUp(method.to_owned())], "{}", dump());
    }

    // Retransmissions are bounded by the timers.
    let (request_bound, final_bound) = if case.reliable {
        (1, 1)
    } else if case.invite {
        (
            max_sends(&timers, None),
            max_sends(&timers, Some(timers.t2)),
        )
    } else {
        (max_sends(&timers, Some(timers.t2)), 1)
    };
    prop_assert!(
        p.sends(Side::Client, method).len() <= request_bound,
        "{}",
        dump()
    );
    if let Some(code) = final_code {
        let label = format!("{code} {method}");
        let sent = p.sends(Side::Server, &label).len();
        // Per transaction, plus one for each request retransmission answered from
        // Completed.
        let bound = final_bound * servers.len() + arrived;
        prop_assert!(
            sent <= bound,
            "{} sent {} times, bound {}\n{}",
            label,
            sent,
            bound,
            dump()
        );
        let acks = p.sends(Side::Client, "ACK").len();
        let final_arrivals = p.arrivals(Side::Client, &label).len();
        prop_assert!(acks <= final_arrivals, "{}", dump());
        if case.invite && code >= 300 && finals.first() == Some(&code) {
            prop_assert!(acks >= 1, "{}", dump());
        }
    }
    prop_assert!(p.is_terminated(Side::Client, cid));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_loss_reorder_and_duplication_keep_the_invariants(case in case()) {
        run(&case)?;
    }
}

#[test]
fn retransmission_bounds_follow_the_timers() {
    let t = TimerConfig::default();
    assert_eq!(
        max_sends(&t, None),
        7,
        "INVITE: 0, .5, 1.5, 3.5, 7.5, 15.5, 31.5 s"
    );
    assert_eq!(
        max_sends(&t, Some(t.t2)),
        11,
        "E and G: ... every 4 s up to 31.5 s"
    );
}

/// One step of a random drive of a table.
#[derive(Debug, Clone)]
enum Step {
    /// Start a client transaction for the pool request.
    Start(usize),
    /// Receive the pool message (responses go to client transactions, requests may start
    /// server transactions).
    Receive(usize),
    /// The TU answers a server transaction (by creation order) with this code.
    Respond(usize, u16),
    /// A transport error on a transaction (by creation order).
    Fail(usize),
    /// The clock moves on this many ms, then timeouts fire.
    Advance(u64),
}

/// Requests and responses that match, half-match and do not match each other.
fn pool() -> Vec<crate::wire::Message> {
    use crate::transaction::tests::msg::{ack_with_branch, cancel_for, request_with_via, response};
    let inv = request("INVITE", "z9hG4bKx", TransportKind::Udp);
    let opt = request("OPTIONS", "z9hG4bKo", TransportKind::Udp);
    let old = request_with_via("INVITE", "SIP/2.0/UDP old.example.com");
    let mut v = vec![inv.clone(), opt.clone(), old.clone(), cancel_for(&inv)];
    for code in [100, 180, 200, 486] {
        v.push(response(&inv, code));
        v.push(response(&old, code));
    }
    for code in [100, 200, 404] {
        v.push(response(&opt, code));
    }
    v.push(response(&cancel_for(&inv), 200));
    v.push(ack_with_branch(&inv, &response(&inv, 486), "z9hG4bKx"));
    v.push(ack_with_branch(&inv, &response(&inv, 200), "z9hG4bKnew"));
    v.push(ack_with_branch(&old, &response(&old, 486), "z9hG4bKy"));
    v
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (0usize..4).prop_map(Step::Start),
        4 => (0usize..24).prop_map(Step::Receive),
        2 => (0usize..4, prop::sample::select(vec![100u16, 180, 200, 404, 486, 603]))
            .prop_map(|(i, c)| Step::Respond(i, c)),
        1 => (0usize..6).prop_map(Step::Fail),
        2 => (0u64..20_000).prop_map(Step::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever arrives in whatever order, the table never panics, never lets a
    /// transaction act after Terminated, never leaves a deadline in the past, and ends
    /// empty once the clock has run far enough.
    #[test]
    fn random_events_never_panic_or_act_after_terminated(
        steps in prop::collection::vec(step(), 0..60),
        reliable in any::<bool>(),
    ) {
        use crate::transaction::tests::msg::response;
        use crate::transaction::{Action, Received, Transactions};
        use std::collections::HashSet;
        use std::time::Instant;

        let transport = if reliable { TransportKind::Tcp } else { TransportKind::Udp };
        let pool = pool();
        let mut t = Transactions::new(TimerConfig::default());
        let mut now = Instant::now();
        let mut ids = Vec::new();
        let mut servers = Vec::new();
        let mut done = HashSet::new();
        let drain = |t: &mut Transactions, done: &mut HashSet<_>| -> Result<(), TestCaseError> {
            while let Some((id, a)) = t.poll_action() {
                prop_assert!(!done.contains(&id), "{id}: {a:?} after Terminated");
                if matches!(a, Action::Terminated) {
                    done.insert(id);
                }
            }
            Ok(())
        };
        for s in steps.iter().chain([Step::Advance(600_000)].iter()) {
            match s {
                Step::Start(i) => {
                    if let Ok(id) = t.start_client(pool[*i].clone(), transport, now) {
                        ids.push(id);
                    }
                }
                Step::Receive(i) => {
                    let m = pool[*i % pool.len()].clone();
                    if let Ok(Received::NewRequest(m)) = t.receive(m, now) {
                        if let Ok(id) = t.start_server(m, transport, now) {
                            ids.push(id);
                            servers.push(id);
                        }
                    }
                }
                Step::Respond(i, code) => {
                    if let Some(&id) = servers.get(*i) {
                        if let Some(req) = t.get(id).map(|x| x.request().clone()) {
                            let _ = t.send_response(id, response(&req, *code), now);
                        }
                    }
                }
                Step::Fail(i) => {
                    if let Some(&id) = ids.get(*i) {
                        let _ = t.transport_error(id, now);
                    }
                }
                Step::Advance(ms) => {
                    now += Duration::from_millis(*ms);
                    // Fire every deadline up to `now`, in order, as a driver would.
                    while let Some(d) = t.deadline().filter(|&d| d <= now) {
                        t.handle_timeout(d);
                        prop_assert!(t.deadline().map_or(true, |n| n > d));
                        drain(&mut t, &mut done)?;
                    }
                }
            }
            drain(&mut t, &mut done)?;
        }
        // Everything ends by its timers, except a server transaction the TU has not
        // answered yet and an INVITE client in Proceeding, which waits for its TU
        // (§17.1.1.2).
        for id in ids {
            if let Some(x) = t.get(id) {
                use crate::transaction::{State, TransactionKind};
                let waits_for_tu = match x.kind() {
                    TransactionKind::InviteClient => x.state() == State::Proceeding,
                    TransactionKind::NonInviteClient => false,
                    _ => matches!(x.state(), State::Trying | State::Proceeding),
                };
                prop_assert!(waits_for_tu, "{:?} left in {:?}", x.kind(), x.state());
            }
        }
    }
}
