//! The association core: what one SCTP association (RFC 4168) decides about the SIP it carries,
//! with no socket and no clock.
//!
//! Fed each user message with the stream it came on, it cuts SIP messages by Content-Length per
//! inbound stream (a user message may hold part of a message, or several: each stream has its own
//! framer, so a message split over user messages is put back together on its own stream while the
//! others go on), stamps requests with `received`/`rport`, and answers what cannot be parsed. A
//! framing error spoils only the stream it happened on: that stream's buffer is dropped and the
//! next user message on it starts afresh (SCTP keeps message boundaries, so unlike TCP the
//! association need not be closed).
//!
//! On the way out it picks the stream a message goes on ([`StreamPolicy`]): every message of one
//! transaction (same top-Via branch) on one stream, transactions spread over the association's
//! outbound streams so that a lost packet holds up only its own stream.

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::Bytes;

use super::receive::{self, Inbound};
use crate::wire::response::framing_error_response;
use crate::wire::{Frame, Limits, Message, StreamFramer};

/// How outbound messages are put on an association's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StreamPolicy {
    /// One stream per transaction (by top-Via branch), ordered delivery, spread over every
    /// outbound stream: a lost packet delays only the transactions of its stream.
    #[default]
    Spread,
    /// RFC 4168 §5.1's suggestion for plain SCTP: everything on stream 0, unordered.
    Stream0Unordered,
}

/// Where one outbound message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    /// The stream.
    pub(crate) stream: u16,
    /// Sent with `SCTP_UNORDERED`.
    pub(crate) unordered: bool,
}

/// What the driver must act on after a user message.
// Events live briefly in one reused vector; boxing the message would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum AssocEvent {
    /// A complete message for the layer above.
    Deliver(Message),
    /// Send these bytes back on `stream` (an error response).
    Reply {
        /// The stream the bad message came on.
        stream: u16,
        /// The response.
        bytes: Bytes,
    },
    /// Something was dropped (a metrics `reason` label).
    Drop(&'static str),
}

/// The state of one association's inbound SIP.
#[derive(Debug)]
pub(crate) struct AssocCore {
    peer: SocketAddr,
    limits: Limits,
    /// One framer per inbound stream in use, made on first use.
    framers: HashMap<u16, StreamFramer>,
}

impl AssocCore {
    /// The core of an association with `peer` (its primary address: the `received` stamp).
    pub(crate) fn new(limits: Limits, peer: SocketAddr) -> AssocCore {
        AssocCore {
            peer,
            limits,
            framers: HashMap::new(),
        }
    }

    /// Bytes held in partial messages, all streams together.
    pub(crate) fn buffered(&self) -> usize {
        self.framers.values().map(|f| f.buffered().len()).sum()
    }

    /// One user message received on `stream`; what to do is pushed to `out`.
    pub(crate) fn handle_message(&mut self, stream: u16, data: &[u8], out: &mut Vec<AssocEvent>) {
        // The common case — a whole message in one user message on an idle stream — still goes
        // through the framer: it checks Content-Length against the bytes, which is the framing
        // RFC 4168 asks for.
        let framer = self
            .framers
            .entry(stream)
            .or_insert_with(|| StreamFramer::new(self.limits));
        framer.push(data);
        loop {
            match framer.next_frame() {
                Ok(None) => break,
                Ok(Some(Frame::Message(raw))) => {
                    match receive::stream_message(raw, self.peer, &self.limits) {
                        Inbound::Deliver(m) => out.push(AssocEvent::Deliver(m)),
                        Inbound::Reply(bytes) => {
                            out.push(AssocEvent::Drop("parse_error"));
                            out.push(AssocEvent::Reply { stream, bytes });
                        }
                        Inbound::Discard(reason) => out.push(AssocEvent::Drop(reason)),
                        Inbound::Stun(_) | Inbound::KeepAlive => {
                            out.push(AssocEvent::Drop("keepalive"))
                        }
                    }
                }
                // CRLF keep-alives mean nothing over SCTP (heartbeats do that job): skipped.
                Ok(Some(Frame::Ping | Frame::Pong)) => {}
                Err(e) => {
                    out.push(AssocEvent::Drop("framing_error"));
                    if let Some(bytes) = framing_error_response(framer.buffered(), &e) {
                        out.push(AssocEvent::Reply { stream, bytes });
                    }
                    // Only this stream lost its place; the next user message starts afresh.
                    self.framers.remove(&stream);
                    break;
                }
            }
        }
        if let Some(f) = self.framers.get(&stream) {
            if f.buffered().is_empty() && self.framers.len() > IDLE_FRAMERS_KEPT {
                // Many streams in use: do not keep an empty buffer for each.
                self.framers.remove(&stream);
            }
        }
    }
}

/// Empty per-stream framers kept for reuse; beyond this they are dropped when empty.
const IDLE_FRAMERS_KEPT: usize = 32;

/// Where `msg` goes on an association with `ostreams` outbound streams.
pub(crate) fn place(policy: StreamPolicy, msg: &[u8], ostreams: u16) -> Placement {
    match policy {
        StreamPolicy::Stream0Unordered => Placement {
            stream: 0,
            unordered: true,
        },
        StreamPolicy::Spread => {
            let stream = if ostreams <= 1 {
                0
            } else {
                top_branch(msg).map_or(0, |b| (fnv1a(b) % u64::from(ostreams)) as u16)
            };
            Placement {
                stream,
                unordered: false,
            }
        }
    }
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &c| {
        (h ^ u64::from(c)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The `branch` parameter of the first Via header line of an outbound message (ours: written by
/// this stack or the layer above, so a plain scan suffices; anything odd gives `None`, and the
/// message goes on stream 0).
fn top_branch(msg: &[u8]) -> Option<&[u8]> {
    let head_end = memchr::memmem::find(msg, b"\r\n\r\n").unwrap_or(msg.len());
    let head = &msg[..head_end];
    let mut at = 0;
    while let Some(nl) = memchr::memchr(b'\n', &head[at..]) {
        let line_start = at + nl + 1;
        let rest = &head[line_start..];
        let line_end = memchr::memchr(b'\r', rest).unwrap_or(rest.len());
        let line = &rest[..line_end];
        let is_via = line
            .iter()
            .position(|&c| c == b':')
            .map(|colon| {
                let name = line[..colon].trim_ascii();
                name.eq_ignore_ascii_case(b"via") || name.eq_ignore_ascii_case(b"v")
            })
            .unwrap_or(false);
        if is_via {
            let i = memchr::memmem::find(line, b"branch=")?;
            let v = &line[i + 7..];
            let end = v
                .iter()
                .position(|&c| matches!(c, b';' | b',' | b' ' | b'\t'))
                .unwrap_or(v.len());
            return Some(&v[..end]);
        }
        at = line_start;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(branch: &str, body: &str) -> String {
        format!(
            "MESSAGE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/SCTP 192.0.2.1;branch={branch}\r\n\
             From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: {branch}\r\n\
             CSeq: 1 MESSAGE\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn peer() -> SocketAddr {
        "192.0.2.1:5060".parse().unwrap()
    }

    fn delivered(out: &[AssocEvent]) -> Vec<String> {
        out.iter()
            .filter_map(|e| match e {
                AssocEvent::Deliver(m) => Some(m.call_id().to_owned()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn one_message_per_user_message_is_delivered_stamped() {
        let mut c = AssocCore::new(Limits::default(), "192.0.2.9:4000".parse().unwrap());
        let mut out = Vec::new();
        c.handle_message(3, req("z9hG4bKa", "hi").as_bytes(), &mut out);
        assert_eq!(delivered(&out), ["z9hG4bKa"]);
        let AssocEvent::Deliver(m) = &out[0] else {
            panic!()
        };
        assert_eq!(
            m.top_via().unwrap().received,
            Some("192.0.2.9".parse().unwrap())
        );
        assert_eq!(c.buffered(), 0);
    }

    #[test]
    fn a_message_split_over_user_messages_waits_on_its_stream_only() {
        let mut c = AssocCore::new(Limits::default(), peer());
        let mut out = Vec::new();
        let big = req("z9hG4bKbig", &"x".repeat(5000));
        let (a, b) = big.as_bytes().split_at(3000);
        c.handle_message(1, a, &mut out);
        assert!(out.is_empty());
        // Another stream goes on meanwhile.
        c.handle_message(2, req("z9hG4bKother", "").as_bytes(), &mut out);
        assert_eq!(delivered(&out), ["z9hG4bKother"]);
        c.handle_message(1, b, &mut out);
        assert_eq!(delivered(&out), ["z9hG4bKother", "z9hG4bKbig"]);
    }

    #[test]
    fn several_messages_in_one_user_message() {
        let mut c = AssocCore::new(Limits::default(), peer());
        let mut out = Vec::new();
        let two = format!("{}{}", req("z9hG4bK1", "a"), req("z9hG4bK2", "b"));
        c.handle_message(0, two.as_bytes(), &mut out);
        assert_eq!(delivered(&out), ["z9hG4bK1", "z9hG4bK2"]);
    }

    #[test]
    fn framing_error_answers_and_spoils_only_its_stream() {
        let mut c = AssocCore::new(Limits::default(), peer());
        let mut out = Vec::new();
        let half = req("z9hG4bKhalf", &"y".repeat(100));
        c.handle_message(5, &half.as_bytes()[..150], &mut out);
        let no_cl = "OPTIONS sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/SCTP h;branch=z9hG4bKn\r\n\
                     From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: n\r\nCSeq: 1 OPTIONS\r\n\r\n";
        c.handle_message(7, no_cl.as_bytes(), &mut out);
        assert!(out
            .iter()
            .any(|e| matches!(e, AssocEvent::Drop("framing_error"))));
        let reply = out.iter().find_map(|e| match e {
            AssocEvent::Reply { stream, bytes } => Some((*stream, bytes.clone())),
            _ => None,
        });
        let (stream, bytes) = reply.expect("an error response");
        assert_eq!(stream, 7);
        assert!(bytes.starts_with(b"SIP/2.0 400 "), "{bytes:?}");
        // Stream 7 starts afresh; stream 5's partial message completes.
        out.clear();
        c.handle_message(7, req("z9hG4bKnext", "").as_bytes(), &mut out);
        c.handle_message(5, &half.as_bytes()[150..], &mut out);
        assert_eq!(delivered(&out), ["z9hG4bKnext", "z9hG4bKhalf"]);
    }

    #[test]
    fn oversize_is_refused_garbage_dropped_keepalives_ignored() {
        let limits = Limits {
            max_message_bytes: 2000,
            ..Limits::default()
        };
        let mut c = AssocCore::new(limits, peer());
        let mut out = Vec::new();
        c.handle_message(0, req("z9hG4bKo", &"z".repeat(3000)).as_bytes(), &mut out);
        assert!(out.iter().any(|e| matches!(e, AssocEvent::Reply { .. })));
        out.clear();
        c.handle_message(1, b"\x00\x01garbage\r\n\r\n", &mut out);
        assert!(out.iter().all(|e| !matches!(e, AssocEvent::Deliver(_))));
        assert!(!out.is_empty());
        out.clear();
        c.handle_message(2, b"\r\n\r\n", &mut out);
        assert!(out.is_empty());
        assert_eq!(c.buffered(), 0);
    }

    #[test]
    fn placement_keeps_a_transaction_on_one_stream_and_spreads_transactions() {
        let a = req("z9hG4bKtx1", "");
        let resp =
            "SIP/2.0 200 OK\r\nv: SIP/2.0/SCTP 192.0.2.1;received=192.0.2.1;branch=z9hG4bKtx1\r\n\
                    Content-Length: 0\r\n\r\n";
        let p = place(StreamPolicy::Spread, a.as_bytes(), 16);
        assert!(!p.unordered);
        assert_eq!(p, place(StreamPolicy::Spread, resp.as_bytes(), 16));
        let used: std::collections::HashSet<u16> = (0..200)
            .map(|i| {
                place(
                    StreamPolicy::Spread,
                    req(&format!("z9hG4bK{i}"), "").as_bytes(),
                    16,
                )
                .stream
            })
            .collect();
        assert_eq!(used.len(), 16, "200 transactions use every stream");
        assert!(used.iter().all(|s| *s < 16));
        assert_eq!(place(StreamPolicy::Spread, a.as_bytes(), 1).stream, 0);
        assert_eq!(
            place(StreamPolicy::Stream0Unordered, a.as_bytes(), 16),
            Placement {
                stream: 0,
                unordered: true
            }
        );
        assert_eq!(place(StreamPolicy::Spread, b"garbage", 16).stream, 0);
    }
}
