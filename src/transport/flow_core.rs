//! The flow core: everything one stream flow (TCP, TLS, later each SCTP association) decides,
//! with no socket and no clock, in the style of quinn-proto's `Connection`.
//!
//! The driver feeds it received bytes ([`FlowCore::read_buffer`] + [`FlowCore::handle_read`], or
//! [`FlowCore::handle_bytes`]), the end of the stream, the application's messages
//! ([`FlowCore::queue`]), what the socket accepted ([`FlowCore::on_written`]) and timer expiries
//! ([`FlowCore::handle_timeout`]), each with `now`. It hands back what to write
//! ([`FlowCore::transmit`]), events ([`FlowCore::poll_event`]: a message to deliver, a metrics
//! label, "shut the write side", "closed") and its next deadline ([`FlowCore::poll_timeout`]).
//!
//! Inside: the stream framer and its limits, the header (slowloris) and idle timers, RFC 5626
//! CRLF keep-alive and its pong timeout, the close / drain machine of RFC 5923 §8.3, error
//! responses to what cannot be parsed, and the write side: pongs, pings and error responses
//! ("urgent") go out between queued messages, never inside one; queued messages are joined up
//! to about one TLS record so that a burst costs one write.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use super::close::{CloseAction, CloseMachine};
use super::config::TransportConfig;
use super::idle::{FlowTimers, HeaderWatch};
use super::keepalive::{KeepAlive, KeepAliveAction, PING};
use super::live::LiveLimits;
use super::receive::{self, Inbound};
use crate::wire::response::framing_error_response;
use crate::wire::{Frame, Limits, Message, StreamFramer};

/// What a read into a non-empty buffer reserves.
const READ_CHUNK: usize = 8 * 1024;
/// What a read into an empty buffer reserves: most SIP messages fit, and an idle flow
/// (thousands of them, waiting in that read) holds no more than this.
const IDLE_READ_CHUNK: usize = 2 * 1024;
/// Queued messages are joined up to about this many bytes (one TLS record's worth).
const COALESCE_MAX: usize = 16 * 1024;

/// What the driver must act on.
// Events live briefly in one reused queue; boxing the message would cost an allocation per
// message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum FlowEvent {
    /// A complete message to hand to the layer above (requests already carry
    /// `received`/`rport`).
    Deliver(Message),
    /// The flow starts no new transaction: take it out of the reuse index.
    Unindex,
    /// Something was dropped (a metrics `reason` label).
    Drop(&'static str),
    /// A keep-alive event (a metrics `kind` label: ping_in, pong_out, ping_out, pong_in).
    KeepAlive(&'static str),
    /// Shut the write side down (TLS close_notify, TCP FIN), then call
    /// [`FlowCore::on_write_shutdown`].
    SendClose,
    /// The flow is finished; the reason is a metrics label.
    Closed(&'static str),
}

/// Bytes that [`FlowCore::on_written`] finished writing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Written {
    /// Application messages completely written.
    pub(crate) messages: u64,
    /// Application bytes completely written (they leave the sink's byte bound).
    pub(crate) app_bytes: usize,
}

/// The state of one stream flow.
#[derive(Debug)]
pub(crate) struct FlowCore {
    peer: SocketAddr,
    limits: Limits,
    framer: StreamFramer,
    watch: HeaderWatch,
    timers: FlowTimers,
    keepalive: KeepAlive,
    close: CloseMachine,
    /// Pongs, pings and error responses made here.
    urgent: VecDeque<Bytes>,
    /// Application messages not yet being written.
    queue: VecDeque<Bytes>,
    /// Bytes being written.
    pending: Bytes,
    /// How many of `pending`'s bytes are application bytes, and how many messages.
    pending_app: usize,
    pending_msgs: u64,
    need_flush: bool,
    read_open: bool,
    write_open: bool,
    events: VecDeque<FlowEvent>,
    finished: bool,
}

impl FlowCore {
    /// A flow opened at `now` with `peer`, under `limits` (the changeable ones) and `cfg`
    /// (pong timeout, linger). `expect_header` starts the header timer at once (inbound
    /// connections: the peer must send a message soon).
    pub(crate) fn new(
        cfg: &TransportConfig,
        limits: &LiveLimits,
        peer: SocketAddr,
        now: Instant,
        expect_header: bool,
    ) -> FlowCore {
        FlowCore {
            peer,
            limits: limits.message,
            framer: StreamFramer::new(limits.message),
            watch: HeaderWatch::default(),
            timers: FlowTimers::new(
                limits.idle_timeout,
                limits.header_timeout,
                now,
                expect_header,
            ),
            keepalive: KeepAlive::new(limits.keepalive_interval, cfg.pong_timeout, now),
            close: CloseMachine::new(cfg.linger),
            urgent: VecDeque::new(),
            queue: VecDeque::new(),
            pending: Bytes::new(),
            pending_app: 0,
            pending_msgs: 0,
            need_flush: false,
            read_open: true,
            write_open: true,
            events: VecDeque::new(),
            finished: false,
        }
    }

    /// New limits at `now` (a reload): message limits from the next bytes received, the
    /// idle and header deadlines recomputed from the last activity, the keep-alive interval
    /// from now. The driver re-reads [`FlowCore::poll_timeout`] afterwards.
    pub(crate) fn set_limits(&mut self, limits: &LiveLimits, now: Instant) {
        self.limits = limits.message;
        self.framer.set_limits(limits.message);
        self.timers
            .set_timeouts(limits.idle_timeout, limits.header_timeout);
        self.keepalive.set_interval(limits.keepalive_interval, now);
    }

    // ---- receiving ----

    /// True while the driver should read.
    pub(crate) fn wants_read(&self) -> bool {
        self.read_open && !self.finished
    }

    /// The buffer the driver reads into (then calls [`FlowCore::handle_read`]). An empty
    /// buffer gets a small allocation, a partly filled one room for a chunk.
    pub(crate) fn read_buffer(&mut self) -> &mut BytesMut {
        let buf = self.framer.buffer_mut();
        if buf.is_empty() && buf.capacity() == 0 {
            buf.reserve(IDLE_READ_CHUNK);
        } else if buf.capacity() - buf.len() < READ_CHUNK / 2 {
            buf.reserve(READ_CHUNK);
        }
        buf
    }

    /// Bytes received from a driver that holds them already (e.g. an SCTP user message).
    #[allow(dead_code)] // the SCTP association driver's entry (SCTP transport issue)
    pub(crate) fn handle_bytes(&mut self, now: Instant, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.framer.push(bytes);
        self.process_read(now);
    }

    /// `n` bytes were appended to [`FlowCore::read_buffer`]; `n == 0` is the end of the
    /// stream (the peer closed its side).
    pub(crate) fn handle_read(&mut self, now: Instant, n: usize) {
        if n == 0 {
            self.handle_eof();
        } else {
            self.process_read(now);
        }
    }

    /// The peer closed its side (FIN, close_notify).
    pub(crate) fn handle_eof(&mut self) {
        if !self.read_open {
            return;
        }
        self.read_open = false;
        if !self.framer.is_at_boundary() {
            self.events.push_back(FlowEvent::Drop("truncated_at_close"));
        }
        self.events.push_back(FlowEvent::Unindex);
        self.close.peer_closed();
    }

    fn process_read(&mut self, now: Instant) {
        self.timers.on_activity(now);
        self.keepalive.on_inbound(now);
        let mut taken = false;
        loop {
            match self.framer.next_frame() {
                Ok(None) => break,
                Ok(Some(Frame::Message(raw))) => {
                    taken = true;
                    self.on_message(raw);
                }
                Ok(Some(Frame::Ping)) => {
                    taken = true;
                    self.events.push_back(FlowEvent::KeepAlive("ping_in"));
                    if self.close.writable() {
                        self.urgent
                            .push_back(Bytes::from_static(self.keepalive.on_ping()));
                        self.events.push_back(FlowEvent::KeepAlive("pong_out"));
                    }
                }
                Ok(Some(Frame::Pong)) => {
                    taken = true;
                    self.events.push_back(FlowEvent::KeepAlive("pong_in"));
                    self.keepalive.on_pong(now);
                }
                Err(e) => {
                    self.events.push_back(FlowEvent::Drop("framing_error"));
                    tracing::debug!(error = %e, "framing error, closing");
                    if let Some(r) = framing_error_response(self.framer.buffered(), &e) {
                        self.urgent.push_back(r);
                    }
                    self.read_open = false;
                    self.events.push_back(FlowEvent::Unindex);
                    self.close.close(now, Duration::ZERO);
                    break;
                }
            }
        }
        if self.framer.buffered().is_empty() && self.framer.buffer_mut().capacity() > 0 {
            // Nothing partial: give the read buffer back, so that an idle flow does not keep
            // a full chunk (the next read takes a small one).
            *self.framer.buffer_mut() = BytesMut::new();
        }
        let pending_header = self.read_open && self.watch.update(self.framer.buffered(), taken);
        self.timers.set_header_pending(pending_header, now);
    }

    fn on_message(&mut self, raw: Bytes) {
        if !self.close.delivers() {
            return;
        }
        match receive::stream_message(raw, self.peer, &self.limits) {
            Inbound::Deliver(message) => {
                if message.is_request() && !self.close.accepts_requests() {
                    self.events
                        .push_back(FlowEvent::Drop("request_on_closing_flow"));
                } else {
                    self.events.push_back(FlowEvent::Deliver(message));
                }
            }
            Inbound::Reply(r) => self.urgent.push_back(r),
            Inbound::Discard(reason) => self.events.push_back(FlowEvent::Drop(reason)),
            Inbound::Stun(_) | Inbound::KeepAlive => {}
        }
    }

    // ---- sending ----

    /// An application message to send (the driver took it from the flow's sink).
    #[cfg(test)]
    pub(crate) fn queue(&mut self, bytes: Bytes) {
        self.queued().push_back(bytes);
    }

    /// Where the driver moves the application's messages to (from the flow's sink).
    pub(crate) fn queued(&mut self) -> &mut VecDeque<Bytes> {
        &mut self.queue
    }

    /// True while the driver has bytes to write or a flush to do.
    pub(crate) fn wants_write(&mut self) -> bool {
        self.fill_pending();
        self.write_open && (!self.pending.is_empty() || self.need_flush)
    }

    /// The bytes to write next (empty: flush); a handle on them, no copy.
    pub(crate) fn transmit(&mut self) -> Bytes {
        self.fill_pending();
        self.pending.clone()
    }

    fn fill_pending(&mut self) {
        if !self.pending.is_empty() {
            return;
        }
        if let Some(u) = self.urgent.pop_front() {
            self.pending = u;
            self.pending_app = 0;
            self.pending_msgs = 0;
            return;
        }
        let Some(first) = std::iter::from_fn(|| self.queue.pop_front()).find(|b| !b.is_empty())
        else {
            return;
        };
        let mut msgs = 1;
        let joined = if first.len() >= COALESCE_MAX || self.queue.is_empty() {
            first
        } else {
            let mut j = BytesMut::with_capacity(COALESCE_MAX.max(first.len()));
            j.extend_from_slice(&first);
            while let Some(next) = self.queue.front() {
                if j.len() >= COALESCE_MAX {
                    break;
                }
                j.extend_from_slice(next);
                self.queue.pop_front();
                msgs += 1;
            }
            j.freeze()
        };
        self.pending_app = joined.len();
        self.pending_msgs = msgs;
        self.pending = joined;
    }

    /// The socket took `n` bytes of [`FlowCore::transmit`] (`n == 0` after a flush).
    pub(crate) fn on_written(&mut self, now: Instant, n: usize) -> Written {
        if n == 0 {
            self.need_flush = false;
            return Written::default();
        }
        let n = n.min(self.pending.len());
        self.pending.advance(n);
        self.timers.on_activity(now);
        if !self.pending.is_empty() {
            return Written::default();
        }
        self.need_flush = true;
        let done = Written {
            messages: self.pending_msgs,
            app_bytes: self.pending_app,
        };
        self.pending_app = 0;
        self.pending_msgs = 0;
        done
    }

    /// The driver shut the write side down (after [`FlowEvent::SendClose`]).
    pub(crate) fn on_write_shutdown(&mut self) {
        self.write_open = false;
    }

    fn writes_idle(&self) -> bool {
        !self.write_open
            || (self.pending.is_empty()
                && self.urgent.is_empty()
                && self.queue.is_empty()
                && !self.need_flush)
    }

    // ---- close ----

    /// Local close (RFC 5923 §8.3): leave the reuse index now, deliver responses for
    /// `drain`, flush, send our close, wait `linger` for the peer's.
    pub(crate) fn close(&mut self, now: Instant, drain: Duration) {
        self.events.push_back(FlowEvent::Unindex);
        self.close.close(now, drain);
    }

    /// Close now (no drain, no flush); the reason is a metrics label.
    pub(crate) fn abort(&mut self, reason: &'static str) {
        self.finish(reason);
    }

    fn finish(&mut self, reason: &'static str) {
        if !self.finished {
            self.finished = true;
            self.events.push_back(FlowEvent::Closed(reason));
        }
    }

    // ---- events and time ----

    /// The next thing the driver must act on, `None` when nothing is due at `now`.
    pub(crate) fn poll_event(&mut self, now: Instant) -> Option<FlowEvent> {
        if let Some(e) = self.events.pop_front() {
            return Some(e);
        }
        if self.finished {
            return None;
        }
        self.fill_pending();
        match self.close.poll(now, self.writes_idle()) {
            Some(CloseAction::SendClose) if self.write_open => Some(FlowEvent::SendClose),
            Some(CloseAction::SendClose) => self.poll_event(now),
            Some(CloseAction::Finish) => {
                self.finished = true;
                Some(FlowEvent::Closed("closed"))
            }
            None => None,
        }
    }

    /// When [`FlowCore::handle_timeout`] must run next.
    pub(crate) fn poll_timeout(&self) -> Instant {
        [
            Some(self.timers.deadline()),
            self.keepalive.deadline(),
            self.close.deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or_else(|| self.timers.deadline())
    }

    /// The time moved to `now`: idle, header and pong timers, our keep-alive ping, the drain
    /// and linger periods.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        if let Some(expiry) = self.timers.check(now) {
            self.events.push_back(FlowEvent::Drop(expiry.reason()));
            self.finish(expiry.reason());
            return;
        }
        match self.keepalive.poll(now) {
            Some(KeepAliveAction::SendPing) => {
                self.events.push_back(FlowEvent::KeepAlive("ping_out"));
                self.framer.set_awaiting_pong(true);
                self.urgent.push_back(Bytes::from_static(PING));
            }
            Some(KeepAliveAction::Failed) => self.finish("keepalive_timeout"),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn peer() -> SocketAddr {
        "192.0.2.9:5060".parse().unwrap()
    }

    fn req(branch: &str) -> String {
        format!(
            "OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.9;branch=z9hG4bK{branch}\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
        )
    }

    fn resp(branch: &str) -> String {
        format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK{branch}\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
        )
    }

    /// A core and the simulated clock it is driven with.
    struct Sim {
        core: FlowCore,
        now: Instant,
        /// Everything the driver wrote, in order.
        wire: Vec<u8>,
        delivered: Vec<Message>,
        drops: Vec<&'static str>,
        keepalives: Vec<&'static str>,
        unindexed: usize,
        shut: bool,
        closed: Option<&'static str>,
    }

    impl Sim {
        fn new(cfg: TransportConfig, expect_header: bool) -> Sim {
            let now = Instant::now();
            Sim {
                core: FlowCore::new(&cfg, &LiveLimits::of(&cfg), peer(), now, expect_header),
                now,
                wire: Vec::new(),
                delivered: Vec::new(),
                drops: Vec::new(),
                keepalives: Vec::new(),
                unindexed: 0,
                shut: false,
                closed: None,
            }
        }

        /// What a driver does between two waits: events, then every write the socket takes.
        fn run(&mut self) {
            loop {
                let mut progress = false;
                while let Some(e) = self.core.poll_event(self.now) {
                    progress = true;
                    match e {
                        FlowEvent::Deliver(m) => self.delivered.push(m),
                        FlowEvent::Unindex => self.unindexed += 1,
                        FlowEvent::Drop(r) => self.drops.push(r),
                        FlowEvent::KeepAlive(k) => self.keepalives.push(k),
                        FlowEvent::SendClose => {
                            self.shut = true;
                            self.core.on_write_shutdown();
                        }
                        FlowEvent::Closed(r) => {
                            self.closed.get_or_insert(r);
                        }
                    }
                }
                if self.core.wants_write() {
                    progress = true;
                    let out = self.core.transmit();
                    self.wire.extend_from_slice(&out);
                    self.core.on_written(self.now, out.len());
                }
                if !progress {
                    return;
                }
            }
        }

        fn recv(&mut self, bytes: &str) {
            let b = self.core.read_buffer();
            b.extend_from_slice(bytes.as_bytes());
            self.core.handle_read(self.now, bytes.len());
            self.run();
        }

        fn eof(&mut self) {
            self.core.handle_read(self.now, 0);
            self.run();
        }

        /// Moves the clock to `t` through every deadline on the way.
        fn advance_to(&mut self, t: Instant) {
            while self.closed.is_none() {
                let d = self.core.poll_timeout();
                if d > t {
                    break;
                }
                self.now = self.now.max(d);
                self.core.handle_timeout(self.now);
                self.run();
            }
            self.now = self.now.max(t);
            self.run();
        }

        fn wire_text(&mut self) -> String {
            String::from_utf8(std::mem::take(&mut self.wire)).unwrap()
        }
    }

    fn cfg() -> TransportConfig {
        TransportConfig::default()
    }

    #[test]
    fn frames_split_and_joined_messages() {
        let mut s = Sim::new(cfg(), false);
        let two = format!("{}{}", req("a"), req("b"));
        let (x, y) = two.split_at(100);
        s.recv(x);
        assert!(s.delivered.is_empty());
        s.recv(y);
        let ids: Vec<&str> = s.delivered.iter().map(|m| m.call_id()).collect();
        assert_eq!(ids, ["a", "b"]);
        let via = s.delivered[0].top_via().unwrap();
        assert_eq!(via.received, None, "sent-by is the source IP");
        assert!(s.closed.is_none());
    }

    #[test]
    fn ping_is_answered_between_messages_never_inside_one() {
        let mut s = Sim::new(cfg(), false);
        s.core.queue(Bytes::from(resp("q1")));
        s.recv("\r\n\r\n");
        assert_eq!(s.keepalives, ["ping_in", "pong_out"]);
        let out = s.wire_text();
        // The queued message went first (it was pending), the pong after it, whole.
        assert!(out == format!("{}\r\n", resp("q1")) || out == format!("\r\n{}", resp("q1")));
    }

    /// Was tests/transport_behaviour.rs `our_keepalive_pings_and_the_pong_timeout` (200 ms
    /// interval, 600 ms pong timeout, real timers): a ping after the interval of inbound
    /// silence, a pong re-arms it, no pong within the timeout fails the flow.
    #[test]
    fn our_keepalive_pings_and_the_pong_timeout() {
        let c = TransportConfig {
            keepalive_interval: Some(30 * S),
            pong_timeout: 10 * S,
            ..cfg()
        };
        let mut s = Sim::new(c, false);
        let t0 = s.now;
        s.advance_to(t0 + 29 * S);
        assert!(s.wire.is_empty(), "no ping before the interval");
        s.advance_to(t0 + 30 * S);
        assert_eq!(s.wire_text(), "\r\n\r\n");
        assert_eq!(s.keepalives, ["ping_out"]);
        s.advance_to(t0 + 35 * S);
        s.recv("\r\n");
        assert_eq!(s.keepalives, ["ping_out", "pong_in"]);
        // Re-armed from the pong: the next ping 30 s later.
        s.advance_to(t0 + 64 * S);
        assert!(s.wire.is_empty());
        s.advance_to(t0 + 65 * S);
        assert_eq!(s.wire_text(), "\r\n\r\n");
        // No pong this time: failed 10 s after the ping (RFC 5626 §4.4.1).
        s.advance_to(t0 + 74 * S);
        assert!(s.closed.is_none());
        s.advance_to(t0 + 75 * S);
        assert_eq!(s.closed, Some("keepalive_timeout"));
    }

    #[test]
    fn idle_timeout_closes_and_traffic_pushes_it_back() {
        let c = TransportConfig {
            idle_timeout: 60 * S,
            ..cfg()
        };
        let mut s = Sim::new(c, false);
        let t0 = s.now;
        s.advance_to(t0 + 50 * S);
        s.recv(&req("a"));
        s.advance_to(t0 + 109 * S);
        assert!(s.closed.is_none());
        s.advance_to(t0 + 110 * S);
        assert_eq!(s.closed, Some("idle_timeout"));
        assert_eq!(s.drops, ["idle_timeout"]);
    }

    /// A reload while the flow is open: a shorter idle timeout counts from the last
    /// activity, a lower message limit applies to the next message, pinging starts.
    #[test]
    fn new_limits_apply_to_an_open_flow() {
        let c = cfg();
        let base = LiveLimits::of(&c);
        let mut s = Sim::new(c.clone(), false);
        let t0 = s.now;
        s.advance_to(t0 + 100 * S);
        s.recv(&req("a"));
        s.advance_to(t0 + 110 * S);
        let new = LiveLimits {
            idle_timeout: 60 * S,
            message: crate::wire::Limits {
                max_message_bytes: 100,
                ..base.message
            },
            ..base
        };
        s.core.set_limits(&new, s.now);
        assert_eq!(
            s.core.poll_timeout(),
            t0 + 160 * S,
            "60 s after the last message"
        );
        s.advance_to(t0 + 159 * S);
        assert!(s.closed.is_none());
        s.recv(&req("b"));
        assert!(s.drops.contains(&"framing_error"), "{:?}", s.drops);
        assert_eq!(s.delivered.len(), 1, "only the message before the change");

        let mut s = Sim::new(c, false);
        let t0 = s.now;
        s.advance_to(t0 + 10 * S);
        let pinging = LiveLimits {
            keepalive_interval: Some(20 * S),
            ..base
        };
        s.core.set_limits(&pinging, s.now);
        s.advance_to(t0 + 29 * S);
        assert!(s.keepalives.is_empty());
        s.advance_to(t0 + 30 * S);
        assert_eq!(s.keepalives, ["ping_out"], "20 s after the change");
    }

    /// Was tests/transport_limits.rs `slowloris_is_cut_after_the_header_timeout` (1 s timeout,
    /// real timers): a header dripped byte by byte, and a connection that sends nothing.
    #[test]
    fn slowloris_and_silent_connections_are_cut_after_the_header_timeout() {
        let c = TransportConfig {
            header_timeout: 32 * S,
            ..cfg()
        };
        // Dripping: the timer keeps its start while the same header stays incomplete.
        let mut s = Sim::new(c.clone(), false);
        let t0 = s.now;
        for (i, ch) in req("a").chars().take(20).enumerate() {
            s.advance_to(t0 + (i as u32 + 1) * S);
            s.recv(&ch.to_string());
        }
        s.advance_to(t0 + 32 * S);
        assert!(s.closed.is_none(), "started with the first byte at 1 s");
        s.advance_to(t0 + 33 * S);
        assert_eq!(s.closed, Some("header_timeout"));

        // Silent inbound connection: the timer runs from the accept.
        let mut s = Sim::new(c.clone(), true);
        let t0 = s.now;
        s.advance_to(t0 + 31 * S);
        assert!(s.closed.is_none());
        s.advance_to(t0 + 32 * S);
        assert_eq!(s.closed, Some("header_timeout"));

        // A complete header stops it; a body still pending does not restart it.
        let mut s = Sim::new(c, true);
        let t0 = s.now;
        let m = req("b").replace("Content-Length: 0", "Content-Length: 4");
        s.recv(&m);
        s.advance_to(t0 + 100 * S);
        assert!(s.closed.is_none());
        s.recv("body");
        assert_eq!(s.delivered.len(), 1);
    }

    #[test]
    fn framing_error_is_answered_then_the_flow_closes() {
        let mut s = Sim::new(cfg(), false);
        let no_cl = req("a").replace("Content-Length: 0\r\n", "");
        s.recv(&no_cl);
        assert!(s.drops.contains(&"framing_error"));
        let out = s.wire_text();
        assert!(out.starts_with("SIP/2.0 4"), "{out}");
        assert!(s.shut, "our close follows the answer");
        assert_eq!(s.unindexed, 1);
        assert!(!s.core.wants_read(), "the stream cannot be resynchronised");
        let t0 = s.now;
        s.advance_to(t0 + TransportConfig::default().linger);
        assert_eq!(s.closed, Some("closed"));
    }

    #[test]
    fn local_close_drains_responses_drops_requests_then_lingers() {
        let c = TransportConfig {
            linger: 2 * S,
            ..cfg()
        };
        let mut s = Sim::new(c, false);
        let t0 = s.now;
        s.core.close(t0, 5 * S);
        s.run();
        assert_eq!(s.unindexed, 1, "out of the reuse index at once");
        s.recv(&resp("r"));
        s.recv(&req("q"));
        assert_eq!(
            s.delivered.len(),
            1,
            "the response finishes its transaction"
        );
        assert_eq!(s.drops, ["request_on_closing_flow"]);
        s.core.queue(Bytes::from(resp("late")));
        s.advance_to(t0 + 5 * S);
        assert!(s.shut, "drained, flushed, close sent");
        assert_eq!(s.wire_text(), resp("late"), "flushed before the close");
        s.recv(&resp("after"));
        assert_eq!(s.delivered.len(), 1, "nothing delivered after our close");
        s.advance_to(t0 + 6 * S);
        assert!(s.closed.is_none());
        s.advance_to(t0 + 7 * S);
        assert_eq!(s.closed, Some("closed"), "linger ended");
    }

    #[test]
    fn peer_close_flushes_then_closes() {
        let mut s = Sim::new(cfg(), false);
        s.core.queue(Bytes::from(resp("x")));
        s.recv(&req("partial")[..30]);
        s.eof();
        assert_eq!(s.drops, ["truncated_at_close"]);
        assert_eq!(s.unindexed, 1);
        assert!(s.shut);
        assert_eq!(s.wire_text(), resp("x"));
        assert_eq!(s.closed, Some("closed"));
    }

    #[test]
    fn queued_messages_are_joined_and_counted() {
        let mut s = Sim::new(cfg(), false);
        for i in 0..5 {
            s.core.queue(Bytes::from(resp(&i.to_string())));
        }
        let n = s.core.transmit().len();
        assert_eq!(n, resp("0").len() * 5, "one write for the burst");
        let w = s.core.on_written(s.now, n);
        assert_eq!(
            w,
            Written {
                messages: 5,
                app_bytes: n
            }
        );
        // A partial write completes nothing yet.
        s.core.queue(Bytes::from(resp("6")));
        let _ = s.core.on_written(s.now, 0);
        let n = s.core.transmit().len();
        assert_eq!(s.core.on_written(s.now, n - 1), Written::default());
        assert_eq!(s.core.on_written(s.now, 1).messages, 1);
    }

    #[test]
    fn abort_ends_at_once() {
        let mut s = Sim::new(cfg(), false);
        s.core.queue(Bytes::from(resp("x")));
        s.core.abort("aborted");
        s.run();
        assert_eq!(s.closed, Some("aborted"));
        assert!(!s.shut);
    }

    #[test]
    fn bad_request_is_answered_on_the_flow() {
        let mut s = Sim::new(cfg(), false);
        s.recv(&req("a").replace("CSeq: 1 OPTIONS", "CSeq: x OPTIONS"));
        assert!(s.delivered.is_empty());
        assert!(s.wire_text().starts_with("SIP/2.0 400 "));
        assert!(
            s.closed.is_none(),
            "a parse error does not close a framed stream"
        );
    }
}
