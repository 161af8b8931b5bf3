//! Sans-I/O framing of SIP messages on byte streams (TCP, TLS, SCTP, TLS-SCTP):
//! feed bytes with [`StreamFramer::push`], pull frames with [`StreamFramer::next_frame`].
//!
//! Rules: CRLFs before a start line are skipped (RFC 3261 §7.5); between messages a
//! CRLFCRLF is an RFC 5626 keep-alive ping (answer CRLF) and a lone CRLF is a pong; every
//! message must carry Content-Length (RFC 3261 §18.3); [`Limits`] bound the header block,
//! the body and the message. A message may arrive split over any number of pushes and one
//! push may carry several messages (also needed for SCTP, RFC-CHECKLIST 29).

use bytes::{Bytes, BytesMut};
use memchr::{memchr2, memmem};

use super::error::{FramingError, LimitKind};
use super::lex::{header_name, parse_digits, trim_ws};
use super::limits::Limits;

/// One unit taken off a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// One complete message (start line, headers and exactly Content-Length body bytes).
    /// Parse it with [`super::Message::parse`].
    Message(Bytes),
    /// An RFC 5626 CRLFCRLF ping: the transport must answer CRLF at once (RFC 5626 §5.4).
    Ping,
    /// An RFC 5626 CRLF pong (or a stray CRLF before a start line).
    Pong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between messages.
    Idle,
    /// Inside a header block; `scanned` bytes were searched for the empty line already.
    Head { scanned: usize },
    /// The header block is complete; the message ends at `total`.
    Body { total: usize },
}

/// Frames SIP messages on one byte stream. One framer per connection (or per SCTP
/// stream). After an error the framer stays failed: close the connection.
#[derive(Debug)]
pub struct StreamFramer {
    buf: BytesMut,
    limits: Limits,
    state: State,
    awaiting_pong: bool,
    error: Option<FramingError>,
}

const HEAD_END: &[u8] = b"\r\n\r\n";

/// The CRLFCRLF searcher, built once (building one per search costs more than the search).
fn head_end_finder() -> &'static memmem::Finder<'static> {
    static FINDER: std::sync::OnceLock<memmem::Finder<'static>> = std::sync::OnceLock::new();
    FINDER.get_or_init(|| memmem::Finder::new(HEAD_END))
}

impl StreamFramer {
    /// A framer with the given limits.
    pub fn new(limits: Limits) -> Self {
        StreamFramer {
            buf: BytesMut::new(),
            limits,
            state: State::Idle,
            awaiting_pong: false,
            error: None,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Replaces the limits (a reload): they apply from the next check, to the message
    /// being received too.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The receive buffer, for reading into it without an extra copy (e.g. tokio's
    /// `read_buf`). Only append to it.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// True when no partial message is buffered (a clean place to close the stream).
    pub fn is_at_boundary(&self) -> bool {
        self.state == State::Idle && self.buf.iter().all(|&b| b == b'\r' || b == b'\n')
    }

    /// Tells the framer that we sent a ping and wait for the pong: a lone CRLF at the end
    /// of the buffered data is then reported as [`Frame::Pong`] at once. Otherwise the
    /// framer waits for the next bytes to tell a ping (CRLFCRLF) from a lone CRLF.
    pub fn set_awaiting_pong(&mut self, awaiting: bool) {
        self.awaiting_pong = awaiting;
    }

    /// The error the framer failed with, if any.
    pub fn error(&self) -> Option<&FramingError> {
        self.error.as_ref()
    }

    /// Takes the next frame: `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.step() {
            Ok(f) => Ok(f),
            Err(e) => {
                self.error = Some(e.clone());
                Err(e)
            }
        }
    }

    fn step(&mut self) -> Result<Option<Frame>, FramingError> {
        loop {
            match self.state {
                State::Idle => {
                    let b = &self.buf[..];
                    if b.starts_with(HEAD_END) {
                        let _ = self.buf.split_to(4);
                        return Ok(Some(Frame::Ping));
                    }
                    if b.starts_with(b"\r\n") {
                        match b.get(2) {
                            // "\r\n\r" may still become a ping.
                            Some(b'\r') if b.len() == 3 => return Ok(None),
                            Some(_) => {
                                let _ = self.buf.split_to(2);
                                self.awaiting_pong = false;
                                return Ok(Some(Frame::Pong));
                            }
                            None => {
                                if self.awaiting_pong {
                                    let _ = self.buf.split_to(2);
                                    self.awaiting_pong = false;
                                    return Ok(Some(Frame::Pong));
                                }
                                return Ok(None);
                            }
                        }
                    }
                    if b.is_empty() || b == b"\r" {
                        return Ok(None);
                    }
                    self.state = State::Head { scanned: 0 };
                }
                State::Head { scanned } => {
                    let from = scanned.saturating_sub(HEAD_END.len() - 1);
                    let found = self
                        .buf
                        .get(from..)
                        .and_then(|s| head_end_finder().find(s))
                        .map(|i| from + i + HEAD_END.len());
                    let Some(head_len) = found else {
                        let len = self.buf.len();
                        if len > self.limits.max_header_bytes {
                            return Err(FramingError::TooLarge {
                                what: LimitKind::Headers,
                                size: len,
                                limit: self.limits.max_header_bytes,
                            });
                        }
                        self.state = State::Head { scanned: len };
                        return Ok(None);
                    };
                    if head_len > self.limits.max_header_bytes {
                        return Err(FramingError::TooLarge {
                            what: LimitKind::Headers,
                            size: head_len,
                            limit: self.limits.max_header_bytes,
                        });
                    }
                    let head = self.buf.get(..head_len).unwrap_or(&[]);
                    let cl = content_length(head)?.ok_or(FramingError::MissingContentLength)?;
                    if cl > self.limits.max_body_bytes {
                        return Err(FramingError::TooLarge {
                            what: LimitKind::Body,
                            size: cl,
                            limit: self.limits.max_body_bytes,
                        });
                    }
                    let total = head_len.saturating_add(cl);
                    if total > self.limits.max_message_bytes {
                        return Err(FramingError::TooLarge {
                            what: LimitKind::Message,
                            size: total,
                            limit: self.limits.max_message_bytes,
                        });
                    }
                    self.state = State::Body { total };
                }
                State::Body { total } => {
                    if self.buf.len() < total {
                        return Ok(None);
                    }
                    let frame = self.buf.split_to(total).freeze();
                    self.state = State::Idle;
                    return Ok(Some(Frame::Message(frame)));
                }
            }
        }
    }
}

/// Finds Content-Length (or `l`) in a complete header block (start line included, ending
/// with the empty line). Several equal values are fine; differing ones are an error.
pub(crate) fn content_length(head: &[u8]) -> Result<Option<usize>, FramingError> {
    let mut pos = 0;
    let mut first = true;
    let mut found: Option<usize> = None;
    // (value start, value end) of the Content-Length header being read, to extend it
    // over continuation lines.
    let mut current: Option<(usize, usize)> = None;
    let mut finish = |cur: Option<(usize, usize)>| -> Result<(), FramingError> {
        if let Some((s, e)) = cur {
            let v = trim_ws(head.get(s..e).unwrap_or(&[]));
            let n = parse_digits(v)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or(FramingError::BadContentLength)?;
            if found.is_some_and(|old| old != n) {
                return Err(FramingError::BadContentLength);
            }
            found = Some(n);
        }
        Ok(())
    };
    loop {
        let rest = head.get(pos..).unwrap_or(&[]);
        let Some(i) = memchr2(b'\r', b'\n', rest) else {
            break;
        };
        if rest.get(i) != Some(&b'\r') || rest.get(i + 1) != Some(&b'\n') {
            return Err(FramingError::BadLineEnding);
        }
        let line = rest.get(..i).unwrap_or(&[]);
        let line_end = pos + i;
        pos += i + 2;
        if first {
            first = false;
            continue;
        }
        if line.is_empty() {
            break;
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if let Some((_, e)) = current.as_mut() {
                *e = line_end;
            }
            continue;
        }
        finish(current.take())?;
        // Only `Content-Length` and `l` matter here.
        if !matches!(line.first(), Some(b'c' | b'C' | b'l' | b'L')) {
            continue;
        }
        let Some((name, value_at)) = header_name(line) else {
            continue;
        };
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let vstart = line_end - line.len() + value_at;
        current = Some((vstart, line_end));
    }
    finish(current.take())?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: &str) -> String {
        format!(
            "OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n\
To: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: {}\r\n\r\n{}",
            body.len(),
            body
        )
    }

    fn drain(f: &mut StreamFramer) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(fr) = f.next_frame().unwrap() {
            out.push(fr);
        }
        out
    }

    #[test]
    fn split_at_every_offset() {
        let stream = format!("\r\n{}{}\r\n\r\n{}\r\n", msg("hello"), msg(""), msg("x"));
        let want = {
            let mut f = StreamFramer::new(Limits::default());
            f.push(stream.as_bytes());
            let mut v = drain(&mut f);
            // The last lone CRLF waits for more bytes (it might become a ping).
            assert_eq!(f.buffered(), b"\r\n");
            f.set_awaiting_pong(true);
            v.extend(drain(&mut f));
            v
        };
        assert_eq!(
            want,
            vec![
                Frame::Pong,
                Frame::Message(Bytes::from(msg("hello"))),
                Frame::Message(Bytes::from(msg(""))),
                Frame::Ping,
                Frame::Message(Bytes::from(msg("x"))),
                Frame::Pong,
            ]
        );
        for cut in 0..=stream.len() {
            for cut2 in [cut, (cut + 7).min(stream.len())] {
                let mut f = StreamFramer::new(Limits::default());
                let mut got = Vec::new();
                f.push(&stream.as_bytes()[..cut]);
                got.extend(drain(&mut f));
                f.push(&stream.as_bytes()[cut..cut2]);
                got.extend(drain(&mut f));
                f.push(&stream.as_bytes()[cut2..]);
                got.extend(drain(&mut f));
                f.set_awaiting_pong(true);
                got.extend(drain(&mut f));
                assert_eq!(got, want, "cut at {cut}/{cut2}");
            }
        }
    }

    #[test]
    fn byte_by_byte() {
        let stream = format!("{}{}", msg("abc"), msg("defg"));
        let mut f = StreamFramer::new(Limits::default());
        let mut got = Vec::new();
        for b in stream.as_bytes() {
            f.push(std::slice::from_ref(b));
            got.extend(drain(&mut f));
        }
        assert_eq!(got.len(), 2);
        assert!(f.is_at_boundary());
    }

    #[test]
    fn ping_and_pong() {
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"\r\n\r\n");
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Ping));
        f.push(b"\r\n");
        assert_eq!(f.next_frame().unwrap(), None);
        f.push(b"\r\n");
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Ping));
        f.set_awaiting_pong(true);
        f.push(b"\r\n");
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Pong));
        f.push(b"\r\n");
        assert_eq!(
            f.next_frame().unwrap(),
            None,
            "awaiting_pong is cleared by a pong"
        );
        f.push(b"\r");
        assert_eq!(f.next_frame().unwrap(), None);
        f.push(b"\n");
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Ping));
        assert!(f.is_at_boundary());
    }

    #[test]
    fn missing_content_length_is_an_error() {
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FramingError::MissingContentLength));
        f.push(msg("").as_bytes());
        assert_eq!(
            f.next_frame(),
            Err(FramingError::MissingContentLength),
            "the framer stays failed"
        );
    }

    #[test]
    fn content_length_forms() {
        let h = |s: &str| content_length(s.as_bytes());
        assert_eq!(h("X\r\nl: 5\r\n\r\n"), Ok(Some(5)));
        assert_eq!(h("X\r\nContent-Length   : 150\r\n\r\n"), Ok(Some(150)));
        assert_eq!(h("X\r\ncontent-length:\r\n  12\r\n\r\n"), Ok(Some(12)));
        assert_eq!(h("X\r\nL:0\r\nContent-Length: 0\r\n\r\n"), Ok(Some(0)));
        assert_eq!(
            h("X\r\nL:0\r\nContent-Length: 1\r\n\r\n"),
            Err(FramingError::BadContentLength)
        );
        assert_eq!(
            h("X\r\nl: -999\r\n\r\n"),
            Err(FramingError::BadContentLength)
        );
        assert_eq!(h("X\r\nContent-Lengthy: 3\r\n\r\n"), Ok(None));
        assert_eq!(
            h("Content-Length: 3\r\n\r\n"),
            Ok(None),
            "the start line is skipped"
        );
        assert_eq!(h("X\r\nl: 1\n\r\n"), Err(FramingError::BadLineEnding));
    }

    #[test]
    fn limits_are_enforced() {
        let small = Limits {
            max_header_bytes: 64,
            ..Limits::default()
        };
        let mut f = StreamFramer::new(small);
        f.push(&[b'A'; 65]);
        assert!(matches!(
            f.next_frame(),
            Err(FramingError::TooLarge {
                what: LimitKind::Headers,
                ..
            })
        ));

        let mut f = StreamFramer::new(Limits {
            max_body_bytes: 2,
            ..Limits::default()
        });
        f.push(msg("abc").as_bytes());
        assert!(matches!(
            f.next_frame(),
            Err(FramingError::TooLarge {
                what: LimitKind::Body,
                ..
            })
        ));

        let m = msg("abc");
        let mut f = StreamFramer::new(Limits {
            max_message_bytes: m.len() - 1,
            ..Limits::default()
        });
        f.push(m.as_bytes());
        assert!(matches!(
            f.next_frame(),
            Err(FramingError::TooLarge {
                what: LimitKind::Message,
                ..
            })
        ));
        let mut f = StreamFramer::new(Limits {
            max_message_bytes: m.len(),
            ..Limits::default()
        });
        f.push(m.as_bytes());
        assert!(matches!(f.next_frame(), Ok(Some(Frame::Message(_)))));
    }

    #[test]
    fn huge_content_length_is_refused_before_buffering() {
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"INVITE sip:h SIP/2.0\r\nl: 99999999999\r\n\r\n");
        assert!(matches!(
            f.next_frame(),
            Err(FramingError::TooLarge {
                what: LimitKind::Body,
                ..
            })
        ));
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"INVITE sip:h SIP/2.0\r\nl: 999999999999999999999999\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FramingError::BadContentLength));
    }
}
