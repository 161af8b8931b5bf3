//! A client and a server [`Transactions`] table joined by a simulated network, with a
//! simulated clock that jumps to the next event (a delivery, a transaction deadline or a
//! TU task). A fault plan decides the fate of each message: delivered, lost, duplicated,
//! delayed (so later messages overtake it) or refused by the transport. The TUs are
//! scripted: the client TU acknowledges every 2xx it is given (§13.2.2.4); the server TU
//! answers each new request after set delays, retransmits its 2xx until the ACK arrives
//! (§13.3.1.4) and answers CANCEL (§9.2).
//!
//! Every action of every transaction is logged with its time; the harness panics on an
//! action after Terminated, and on a deadline left in the past after `handle_timeout`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::transaction::Received;
use crate::transaction::{
    Action, State, Timer, TimerConfig, TransactionError, TransactionId, Transactions,
};
use crate::wire::Message;
use crate::TransportKind;

use super::msg::{ack_with_branch, label, response};

pub(crate) const MS: Duration = Duration::from_millis(1);
pub(crate) const S: Duration = Duration::from_secs(1);
pub(crate) const ZERO: Duration = Duration::ZERO;

/// Far beyond any transaction's lifetime with default timers.
const HORIZON: Duration = Duration::from_secs(600);

/// One end of the simulated network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Side {
    Client,
    Server,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// One message handed to the network, as the fault plan sees it.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    /// Index among all messages sent, from 0.
    pub n: usize,
    /// Who sent it.
    pub from: Side,
    /// [`label`] of the message.
    pub label: String,
    /// Index among the messages with this sender and label, from 0.
    pub nth: usize,
}

/// What the network does with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    Deliver,
    Drop,
    /// Delivered twice.
    Duplicate,
    /// Delivered this much later than usual.
    Delay(Duration),
    /// The sending transport reports an error.
    Fail,
}

/// What happened, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum What {
    Sent(String),
    Lost(String),
    Arrived(String),
    PassUp(String),
    Timeout(Timer),
    TransportError,
    Terminated,
    State(State),
    StrayResponse(String),
    StrayAck(String),
    Error(TransactionError),
}

#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub at: Duration,
    pub side: Side,
    pub id: Option<TransactionId>,
    pub what: What,
}

struct Packet {
    at: Instant,
    seq: u64,
    to: Side,
    msg: Message,
}

/// How the server TU answers.
#[derive(Debug, Clone)]
pub(crate) struct ServerScript {
    /// Responses to each new request (not CANCEL), as (delay after it reached the TU, code).
    pub responses: Vec<(Duration, u16)>,
    /// Retransmit a 2xx to INVITE (T1 doubling up to T2, §13.3.1.4) until its ACK.
    pub retransmit_2xx: bool,
}

// Tasks are few and short-lived; boxing the response would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Task {
    Respond {
        id: TransactionId,
        code: u16,
    },
    Retransmit2xx {
        id: TransactionId,
        response: Message,
        interval: Duration,
        until: Instant,
    },
}

type Plan = Box<dyn FnMut(&Sent) -> Fate>;

pub(crate) struct Pair {
    pub t0: Instant,
    pub now: Instant,
    pub transport: TransportKind,
    pub timers: TimerConfig,
    pub client: Transactions,
    pub server: Transactions,
    pub script: ServerScript,
    /// Everything sent to the server is lost (the server is not there).
    pub server_absent: bool,
    pub latency: Duration,
    plan: Plan,
    packets: Vec<Packet>,
    seq: u64,
    sent_count: usize,
    label_counts: HashMap<(Side, String), usize>,
    tasks: Vec<(Instant, u64, Task)>,
    pub log: Vec<Event>,
    states: HashMap<(Side, TransactionId), State>,
    terminated: HashSet<(Side, TransactionId)>,
    /// (Call-ID, CSeq number) of INVITEs whose 2xx the server TU saw acknowledged.
    acked: HashSet<(String, u32)>,
    client_acks: u32,
    steps: u32,
}

impl Pair {
    /// A pair over `transport` with default timers, a perfect network of 5 ms latency and
    /// a server TU that answers nothing.
    pub(crate) fn new(transport: TransportKind) -> Pair {
        Self::with_timers(transport, TimerConfig::default())
    }

    pub(crate) fn with_timers(transport: TransportKind, timers: TimerConfig) -> Pair {
        let t0 = Instant::now();
        Pair {
            t0,
            now: t0,
            transport,
            timers,
            client: Transactions::new(timers),
            server: Transactions::new(timers),
            script: ServerScript {
                responses: Vec::new(),
                retransmit_2xx: true,
            },
            server_absent: false,
            latency: 5 * MS,
            plan: Box::new(|_| Fate::Deliver),
            packets: Vec::new(),
            seq: 0,
            sent_count: 0,
            label_counts: HashMap::new(),
            tasks: Vec::new(),
            log: Vec::new(),
            states: HashMap::new(),
            terminated: HashSet::new(),
            acked: HashSet::new(),
            client_acks: 0,
            steps: 0,
        }
    }

    /// The server TU answers each new request with these (delay, code) pairs.
    pub(crate) fn answer(&mut self, responses: &[(Duration, u16)]) -> &mut Self {
        self.script.responses = responses.to_vec();
        self
    }

    /// Sets the fault plan.
    pub(crate) fn plan(&mut self, plan: impl FnMut(&Sent) -> Fate + 'static) -> &mut Self {
        self.plan = Box::new(plan);
        self
    }

    /// Starts a client transaction for `request` now.
    pub(crate) fn start(&mut self, request: Message) -> TransactionId {
        let id = self
            .client
            .start_client(request, self.transport, self.now)
            .unwrap();
        self.track(Side::Client, id);
        self.pump();
        id
    }

    fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    fn record(&mut self, side: Side, id: Option<TransactionId>, what: What) {
        self.log.push(Event {
            at: self.elapsed(),
            side,
            id,
            what,
        });
    }

    fn table(&mut self, side: Side) -> &mut Transactions {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    fn track(&mut self, side: Side, id: TransactionId) {
        let state = self.table(side).state(id).unwrap();
        self.states.insert((side, id), state);
        self.record(side, Some(id), What::State(state));
    }

    /// Logs state changes of the live transactions.
    fn check_states(&mut self) {
        let mut changes = Vec::new();
        for (&(side, id), &old) in &self.states {
            let table = match side {
                Side::Client => &self.client,
                Side::Server => &self.server,
            };
            if let Some(new) = table.state(id) {
                if new != old {
                    changes.push((side, id, new));
                }
            }
        }
        changes.sort_by_key(|&(side, id, _)| (side == Side::Server, id));
        for (side, id, new) in changes {
            self.states.insert((side, id), new);
            self.record(side, Some(id), What::State(new));
        }
    }

    fn send(&mut self, from: Side, id: Option<TransactionId>, msg: Message) {
        let label = label(&msg);
        let count = self.label_counts.entry((from, label.clone())).or_insert(0);
        let sent = Sent {
            n: self.sent_count,
            from,
            label: label.clone(),
            nth: *count,
        };
        *count += 1;
        self.sent_count += 1;
        self.record(from, id, What::Sent(label.clone()));
        let fate = if from == Side::Client && self.server_absent {
            Fate::Drop
        } else {
            (self.plan)(&sent)
        };
        let at = self.now + self.latency;
        match fate {
            Fate::Deliver => self.enqueue(at, from.other(), msg),
            Fate::Duplicate => {
                self.enqueue(at, from.other(), msg.clone());
                self.enqueue(at + MS, from.other(), msg);
            }
            Fate::Delay(d) => self.enqueue(at + d, from.other(), msg),
            Fate::Drop => self.record(from, id, What::Lost(label)),
            Fate::Fail => {
                self.record(from, id, What::Lost(label));
                if let Some(id) = id {
                    let now = self.now;
                    if let Err(e) = self.table(from).transport_error(id, now) {
                        self.record(from, Some(id), What::Error(e));
                    }
                    self.check_states();
                }
            }
        }
    }

    fn enqueue(&mut self, at: Instant, to: Side, msg: Message) {
        self.seq += 1;
        self.packets.push(Packet {
            at,
            seq: self.seq,
            to,
            msg,
        });
    }

    fn schedule(&mut self, at: Instant, task: Task) {
        self.seq += 1;
        self.tasks.push((at, self.seq, task));
    }

    /// Drains both tables' actions until neither has any.
    fn pump(&mut self) {
        loop {
            let mut any = false;
            while let Some((id, action)) = self.client.poll_action() {
                any = true;
                self.on_action(Side::Client, id, action);
            }
            while let Some((id, action)) = self.server.poll_action() {
                any = true;
                self.on_action(Side::Server, id, action);
            }
            self.check_states();
            if !any {
                break;
            }
        }
    }

    fn on_action(&mut self, side: Side, id: TransactionId, action: Action) {
        assert!(
            !self.terminated.contains(&(side, id)),
            "{side:?} {id}: {action:?} after Terminated\n{}",
            self.dump()
        );
        match action {
            Action::Send(m) => self.send(side, Some(id), m),
            Action::PassUp(m) => {
                self.record(side, Some(id), What::PassUp(label(&m)));
                match side {
                    Side::Server if m.method() == Some("ACK") => {
                        self.acked.insert((m.call_id().to_owned(), m.cseq().seq));
                    }
                    Side::Server => self.server_tu_request(id, &m),
                    Side::Client => {
                        let code = m.status_code().unwrap_or(0);
                        if (200..300).contains(&code) && m.cseq().method == "INVITE" {
                            self.client_tu_ack_2xx(id, &m);
                        }
                    }
                }
            }
            Action::Timeout(t) => self.record(side, Some(id), What::Timeout(t)),
            Action::TransportError => self.record(side, Some(id), What::TransportError),
            Action::Terminated => {
                self.terminated.insert((side, id));
                if self.states.insert((side, id), State::Terminated) != Some(State::Terminated) {
                    self.record(side, Some(id), What::State(State::Terminated));
                }
                self.record(side, Some(id), What::Terminated);
            }
        }
    }

    /// The client TU's ACK for a 2xx: a new branch, sent without a transaction.
    fn client_tu_ack_2xx(&mut self, id: TransactionId, resp: &Message) {
        let Some(invite) = self.client.get(id).map(|t| t.request().clone()) else {
            return;
        };
        self.client_acks += 1;
        let ack = ack_with_branch(&invite, resp, &format!("z9hG4bKack{}", self.client_acks));
        self.send(Side::Client, None, ack);
    }

    fn server_tu_request(&mut self, id: TransactionId, request: &Message) {
        if request.method() == Some("CANCEL") {
            // §9.2: 200 for the CANCEL, 487 for an INVITE without a final response.
            let target = self.server.cancel_target(request).unwrap();
            let code = if target.is_some() { 200 } else { 481 };
            let now = self.now;
            self.server
                .send_response(id, response(request, code), now)
                .unwrap();
            if let Some(inv) = target {
                if self.server.state(inv) == Some(State::Proceeding) {
                    let invite = self.server.get(inv).unwrap().request().clone();
                    self.server
                        .send_response(inv, response(&invite, 487), now)
                        .unwrap();
                }
            }
            self.check_states();
            return;
        }
        for (delay, code) in self.script.responses.clone() {
            self.schedule(self.now + delay, Task::Respond { id, code });
        }
    }

    fn run_task(&mut self, task: Task) {
        let now = self.now;
        match task {
            Task::Respond { id, code } => {
                let Some(req) = self.server.get(id).map(|t| t.request().clone()) else {
                    return;
                };
                let resp = response(&req, code);
                match self.server.send_response(id, resp.clone(), now) {
                    Ok(()) => {
                        if (200..300).contains(&code)
                            && req.method() == Some("INVITE")
                            && self.script.retransmit_2xx
                        {
                            let t1 = self.timers.t1;
                            self.schedule(
                                now + t1,
                                Task::Retransmit2xx {
                                    id,
                                    response: resp,
                                    interval: t1,
                                    until: now + 64 * t1,
                                },
                            );
                        }
                    }
                    Err(e) => self.record(Side::Server, Some(id), What::Error(e)),
                }
            }
            Task::Retransmit2xx {
                id,
                response,
                interval,
                until,
            } => {
                let key = (response.call_id().to_owned(), response.cseq().seq);
                if self.acked.contains(&key) || now >= until {
                    return;
                }
                if self
                    .server
                    .send_response(id, response.clone(), now)
                    .is_err()
                {
                    return;
                }
                let next = (interval * 2).min(self.timers.t2);
                self.schedule(
                    now + next,
                    Task::Retransmit2xx {
                        id,
                        response,
                        interval: next,
                        until,
                    },
                );
            }
        }
        self.check_states();
    }

    fn deliver(&mut self, to: Side, msg: Message) {
        let label = label(&msg);
        self.record(to, None, What::Arrived(label.clone()));
        let now = self.now;
        match self.table(to).receive(msg, now) {
            Ok(Received::Matched(_)) => {}
            Ok(Received::NewRequest(m)) => {
                assert_eq!(to, Side::Server, "request sent to the client");
                let transport = self.transport;
                let id = self.server.start_server(m, transport, now).unwrap();
                self.track(Side::Server, id);
            }
            Ok(Received::StrayAck(m)) => {
                self.record(to, None, What::StrayAck(label));
                self.acked.insert((m.call_id().to_owned(), m.cseq().seq));
            }
            Ok(Received::StrayResponse(_)) => self.record(to, None, What::StrayResponse(label)),
            Err(e) => self.record(to, None, What::Error(e)),
        }
        self.check_states();
    }

    fn next_time(&self) -> Option<Instant> {
        let packets = self.packets.iter().map(|p| p.at);
        let tasks = self.tasks.iter().map(|t| t.0);
        packets
            .chain(tasks)
            .chain(self.client.deadline())
            .chain(self.server.deadline())
            .min()
    }

    fn step(&mut self) {
        self.steps += 1;
        assert!(
            self.steps < 100_000,
            "simulation does not settle\n{}",
            self.dump()
        );
        let now = self.now;
        // Deliveries in (time, send order); each may trigger sends at `now`, which arrive
        // later (latency) or, with zero latency, in this same loop.
        while let Some(i) = self
            .packets
            .iter()
            .enumerate()
            .filter(|(_, p)| p.at <= now)
            .min_by_key(|(_, p)| (p.at, p.seq))
            .map(|(i, _)| i)
        {
            let p = self.packets.swap_remove(i);
            self.deliver(p.to, p.msg);
            self.pump();
        }
        for side in [Side::Client, Side::Server] {
            self.table(side).handle_timeout(now);
            let d = self.table(side).deadline();
            assert!(d.map_or(true, |d| d > now), "{side:?} deadline in the past");
            self.check_states();
            self.pump();
        }
        while let Some(i) = self
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.0 <= now)
            .min_by_key(|(_, t)| (t.0, t.1))
            .map(|(i, _)| i)
        {
            let (_, _, task) = self.tasks.swap_remove(i);
            self.run_task(task);
            self.pump();
        }
    }

    /// Runs every event up to `t0 + limit`, then sets the clock there.
    pub(crate) fn run_until(&mut self, limit: Duration) {
        let end = self.t0 + limit;
        self.run_to(end);
        self.now = self.now.max(end);
    }

    /// Runs until nothing is left to happen (or the horizon), leaving the clock at the
    /// last event.
    pub(crate) fn run(&mut self) {
        self.run_to(self.t0 + HORIZON);
    }

    /// Every event up to `end`, the clock at the last one.
    fn run_to(&mut self, end: Instant) {
        self.pump();
        while let Some(t) = self.next_time() {
            if t > end {
                break;
            }
            self.now = t.max(self.now);
            self.step();
        }
    }

    // ---- Queries for assertions ----

    fn events(&self, side: Side) -> impl Iterator<Item = &Event> + '_ {
        self.log.iter().filter(move |e| e.side == side)
    }

    /// When `side` handed a message with this label to the network.
    pub(crate) fn sends(&self, side: Side, label: &str) -> Vec<Duration> {
        self.events(side)
            .filter(|e| matches!(&e.what, What::Sent(l) if l == label))
            .map(|e| e.at)
            .collect()
    }

    /// When a message with this label arrived at `side`.
    pub(crate) fn arrivals(&self, side: Side, label: &str) -> Vec<Duration> {
        self.events(side)
            .filter(|e| matches!(&e.what, What::Arrived(l) if l == label))
            .map(|e| e.at)
            .collect()
    }

    /// Labels of what `side`'s transactions passed up, in order.
    pub(crate) fn passed_up(&self, side: Side) -> Vec<String> {
        self.events(side)
            .filter_map(|e| match &e.what {
                What::PassUp(l) => Some(l.clone()),
                _ => None,
            })
            .collect()
    }

    /// (time, state) of one transaction, from its creation.
    pub(crate) fn states(&self, side: Side, id: TransactionId) -> Vec<(Duration, State)> {
        self.events(side)
            .filter(|e| e.id == Some(id))
            .filter_map(|e| match e.what {
                What::State(s) => Some((e.at, s)),
                _ => None,
            })
            .collect()
    }

    /// Just the states of one transaction.
    pub(crate) fn state_names(&self, side: Side, id: TransactionId) -> Vec<State> {
        self.states(side, id).into_iter().map(|(_, s)| s).collect()
    }

    /// When a transaction entered `state`.
    pub(crate) fn entered(&self, side: Side, id: TransactionId, state: State) -> Option<Duration> {
        self.states(side, id)
            .into_iter()
            .find(|&(_, s)| s == state)
            .map(|(t, _)| t)
    }

    /// The timeouts `side`'s transactions reported.
    pub(crate) fn timeouts(&self, side: Side) -> Vec<(Duration, Timer)> {
        self.events(side)
            .filter_map(|e| match e.what {
                What::Timeout(t) => Some((e.at, t)),
                _ => None,
            })
            .collect()
    }

    /// How many events of `side` satisfy `f`.
    pub(crate) fn count(&self, side: Side, f: impl Fn(&What) -> bool) -> usize {
        self.events(side).filter(|e| f(&e.what)).count()
    }

    /// The ids of `side`'s transactions, in creation order.
    pub(crate) fn ids(&self, side: Side) -> Vec<TransactionId> {
        let mut ids: Vec<_> = self
            .states
            .keys()
            .filter(|k| k.0 == side)
            .map(|k| k.1)
            .collect();
        ids.sort();
        ids
    }

    /// True once the transaction's Terminated was polled.
    pub(crate) fn is_terminated(&self, side: Side, id: TransactionId) -> bool {
        self.terminated.contains(&(side, id))
    }

    /// The log, one event a line (printed by failing assertions).
    pub(crate) fn dump(&self) -> String {
        self.log
            .iter()
            .map(|e| {
                format!(
                    "{:>9.3}s {:?} {} {:?}\n",
                    e.at.as_secs_f64(),
                    e.side,
                    e.id.map(|i| i.to_string()).unwrap_or_default(),
                    e.what
                )
            })
            .collect()
    }
}

/// Differences between consecutive times.
pub(crate) fn gaps(times: &[Duration]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

/// Durations in milliseconds, for readable assertions.
pub(crate) fn millis(ds: &[Duration]) -> Vec<u128> {
    ds.iter().map(|d| d.as_millis()).collect()
}

/// A plan: `fate` for the messages labelled `label`, every other one delivered.
pub(crate) fn for_label(label: &'static str, fate: Fate) -> impl FnMut(&Sent) -> Fate {
    move |s| {
        if s.label == label {
            fate
        } else {
            Fate::Deliver
        }
    }
}

/// A plan: `fate` for what `side` sends, every other message delivered.
pub(crate) fn from_side(side: Side, fate: Fate) -> impl FnMut(&Sent) -> Fate {
    move |s| if s.from == side { fate } else { Fate::Deliver }
}
