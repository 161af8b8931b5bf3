//! The proxy context (RFC 3261 §16's response context): one request, its server
//! transaction, the hops and targets still to try, the branches sent and what each
//! ended with, and the choice of the best response (§16.7 step 6).
//!
//! States, read from the fields: *Resolving* (`resolving`: waiting for
//! [`super::Proxy::resolved`]), *Trying* (a branch without a final response), *Failing
//! over* (no branch pending, targets or hops left, no 2xx/6xx/other final that stops the
//! search: the next branch starts at once), *Completed* (`final_sent`: a 2xx or the best
//! final went upstream; 2xx retransmissions still go up), *Gone* (no transaction left: the
//! core forgets it).

use std::collections::VecDeque;

use crate::transaction::TransactionId;
use crate::wire::Message;
use crate::Target;

use super::core::Inbound;
use super::reject::Reject;
use super::request::Prepared;
use super::select::Hop;

/// How one branch ended.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// A final response (300–699), our Via removed.
    Response(Box<Message>),
    /// Timer B or F fired: counts as a 408 (§16.7 step 2).
    Timeout,
    /// The transport failed: counts as a 503 (§16.9).
    TransportError,
}

impl Outcome {
    fn code(&self) -> u16 {
        match self {
            Outcome::Response(m) => m.status_code().unwrap_or(500),
            Outcome::Timeout => 408,
            Outcome::TransportError => 503,
        }
    }
}

/// One copy of the request sent downstream.
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    pub(crate) target: Target,
    pub(crate) listener: String,
    /// The request as sent (for the CANCEL).
    pub(crate) request: Message,
    pub(crate) provisional: bool,
    pub(crate) done: bool,
    /// A CANCEL is owed once a provisional arrives (§9.1).
    pub(crate) cancel_pending: bool,
    pub(crate) cancel_sent: bool,
}

impl Branch {
    pub(crate) fn new(target: Target, listener: String, request: Message) -> Branch {
        Branch {
            target,
            listener,
            request,
            provisional: false,
            done: false,
            cancel_pending: false,
            cancel_sent: false,
        }
    }
}

/// One request in progress.
#[derive(Debug)]
pub(crate) struct Context<F> {
    pub(crate) inbound: Inbound<F>,
    /// The request as received (generated responses echo it).
    pub(crate) original: Message,
    pub(crate) prepared: Option<Prepared>,
    /// `None`: stateless.
    pub(crate) server: Option<TransactionId>,
    pub(crate) record_route: bool,
    pub(crate) hops: VecDeque<Hop>,
    pub(crate) targets: VecDeque<(Target, Option<String>)>,
    pub(crate) resolving: bool,
    pub(crate) resolve_hint: Option<String>,
    /// Best-effort TLS for the targets being resolved, with the URI's host name (RFC 5630
    /// §5.3); `None`: off.
    pub(crate) resolve_tls_first: Option<Option<String>>,
    pub(crate) branches: Vec<Branch>,
    pub(crate) outcomes: Vec<Outcome>,
    /// Why the last target could not be used (answered when nothing else came).
    pub(crate) last_reject: Option<Reject>,
    pub(crate) cancelled: bool,
    /// No new branch: a final other than 503 came, or the request was answered here.
    pub(crate) stop: bool,
    pub(crate) final_sent: bool,
    /// The last 2xx forwarded upstream (sent again on an INVITE retransmission).
    pub(crate) last_2xx: Option<Message>,
    /// Transactions of this context still in the table.
    pub(crate) live: usize,
}

impl<F> Context<F> {
    pub(crate) fn new(
        inbound: Inbound<F>,
        original: Message,
        prepared: Option<Prepared>,
        server: Option<TransactionId>,
        record_route: bool,
    ) -> Context<F> {
        Context {
            inbound,
            original,
            prepared,
            server,
            record_route,
            hops: VecDeque::new(),
            targets: VecDeque::new(),
            resolving: false,
            resolve_hint: None,
            resolve_tls_first: None,
            branches: Vec::new(),
            outcomes: Vec::new(),
            last_reject: None,
            cancelled: false,
            stop: false,
            final_sent: false,
            last_2xx: None,
            live: 0,
        }
    }

    pub(crate) fn has_pending_branch(&self) -> bool {
        self.branches.iter().any(|b| !b.done)
    }

    /// §16.7 step 6: the response to send upstream, and whether we built it.
    ///
    /// - A 6xx wins over everything else.
    /// - Otherwise the lowest class; within a class a received response before one we
    ///   stand in for (408 for a timeout, 503 for a transport error), then the first.
    /// - A 503 chosen becomes 500: the 503 said *that server* is unavailable, and
    ///   passing it up would make the upstream element fail over from *us*.
    /// - Nothing at all: 487 after a CANCEL, else why the targets were refused (480 with
    ///   Warning 380 for SIPS), else 480.
    pub(crate) fn best_response(&self) -> (Option<Message>, bool) {
        let pick = self
            .outcomes
            .iter()
            .enumerate()
            .find(|(_, o)| matches!(o, Outcome::Response(_)) && o.code() >= 600)
            .or_else(|| {
                self.outcomes.iter().enumerate().min_by_key(|(i, o)| {
                    let synthetic = !matches!(o, Outcome::Response(_));
                    (o.code() / 100, synthetic, *i)
                })
            })
            .map(|(_, o)| o);
        let generated = |rej: Reject| (rej.response_to(&self.original), true);
        match pick {
            Some(o) if o.code() == 503 => generated(Reject::because(500, "next hop unavailable")),
            Some(Outcome::Response(m)) => (Some(Message::clone(m)), false),
            Some(Outcome::Timeout) => generated(Reject::new(408)),
            Some(Outcome::TransportError) => generated(Reject::new(500)),
            None if self.cancelled => generated(Reject::new(487)),
            None => generated(
                self.last_reject
                    .clone()
                    .unwrap_or_else(|| Reject::because(480, "no target")),
            ),
        }
    }
}
