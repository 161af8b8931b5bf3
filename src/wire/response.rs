//! Stateless responses built by the transport layer: error responses to requests that
//! could not be parsed (400, 505, 513) and 483 Too Many Hops.
//!
//! Responses echo Via, From, To, Call-ID and CSeq (RFC 3261 §8.2.6.2) and add a To tag
//! when the request had none. The tag is derived from the request (Call-ID, From tag,
//! branch) so that a retransmitted request gets the same response.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};

use super::error::{FramingError, ParseError};
use super::header::HeaderKind;
use super::lex::{header_name, is_token, trim_ws};
use super::message::Message;
use super::name_addr::NameAddr;

/// The RFC 3261 default reason phrase of a status code (`""` when unknown).
pub fn default_reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        487 => "Request Terminated",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        _ => "",
    }
}

/// The ASCII punctuation a Reason-Phrase may carry as it is.
const REASON_CHARS: &str = " \t-_.!~*'();/?:@&=+$,%";

/// Keeps only characters RFC 3261 allows in a Reason-Phrase (CR, LF, controls, `"`,
/// `<`, `>` and friends become spaces).
fn sanitize_reason(s: &str) -> String {
    s.chars()
        .map(|c| {
            let ok = !c.is_ascii() || c.is_ascii_alphanumeric() || REASON_CHARS.contains(c);
            if ok {
                c
            } else {
                ' '
            }
        })
        .collect()
}

/// The reason phrase for an error: the default phrase, then the error in parentheses.
pub fn error_reason(err: &ParseError) -> String {
    let code = err.status_code();
    sanitize_reason(&format!("{} ({err})", default_reason(code)))
}

fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The echoed headers of a request, as raw (name, value) slices.
#[derive(Default)]
struct Echo<'a> {
    vias: Vec<&'a [u8]>,
    from: Option<&'a [u8]>,
    to: Option<&'a [u8]>,
    call_id: Option<&'a [u8]>,
    cseq: Option<&'a [u8]>,
}

impl Echo<'_> {
    /// The To tag of a response without one: derived from the request, so that a
    /// retransmitted request gets the same tag.
    fn to_tag(&self) -> String {
        let branch = self.vias.first().copied().unwrap_or(&[]);
        derived_to_tag(self.call_id, self.from, branch, self.cseq)
    }
}

fn derived_to_tag(
    call_id: Option<&[u8]>,
    from: Option<&[u8]>,
    top_via: &[u8],
    cseq: Option<&[u8]>,
) -> String {
    let tag = fnv1a(&[
        call_id.unwrap_or(&[]),
        from.unwrap_or(&[]),
        top_via,
        cseq.unwrap_or(&[]),
    ]);
    format!("{tag:016x}")
}

fn write_response(code: u16, reason: &str, echo: &Echo<'_>, extra: &[(&str, &str)]) -> Bytes {
    let mut out = BytesMut::with_capacity(512);
    let mut head = String::with_capacity(48);
    let _ = write!(head, "SIP/2.0 {code} {}\r\n", sanitize_reason(reason));
    out.put_slice(head.as_bytes());
    let put = |name: &str, value: &[u8], out: &mut BytesMut| {
        out.put_slice(name.as_bytes());
        out.put_slice(b": ");
        // Folded lines are kept; any other CR or LF cannot be echoed safely.
        for w in value.split(|&b| b == b'\r' || b == b'\n') {
            out.put_slice(w);
        }
        out.put_slice(b"\r\n");
    };
    for v in &echo.vias {
        put("Via", v, &mut out);
    }
    if let Some(f) = echo.from {
        put("From", f, &mut out);
    }
    if let Some(t) = echo.to {
        let has_tag = NameAddr::parse(t, "To").map(|n| n.tag().is_some());
        match has_tag {
            Ok(false) if code > 100 => {
                let mut v = t.to_vec();
                v.extend_from_slice(b";tag=");
                v.extend_from_slice(echo.to_tag().as_bytes());
                put("To", &v, &mut out);
            }
            _ => put("To", t, &mut out),
        }
    }
    if let Some(c) = echo.call_id {
        put("Call-ID", c, &mut out);
    }
    if let Some(c) = echo.cseq {
        put("CSeq", c, &mut out);
    }
    for (name, value) in extra {
        put(name, value.as_bytes(), &mut out);
    }
    out.put_slice(b"Content-Length: 0\r\n\r\n");
    out.freeze()
}

/// A stateless response to a parsed request (for example 483 or 503), echoing Via,
/// From, To (with a To tag added if missing), Call-ID and CSeq.
pub fn response_to(msg: &Message, code: u16, reason: &str) -> Bytes {
    response_with(msg, code, reason, &[])
}

/// 503 Service Unavailable, with `Retry-After: secs` when given (RFC 3261 §21.5.4: the
/// client should not retry this server before then; without it, it may try another).
pub fn service_unavailable(msg: &Message, retry_after: Option<u32>) -> Bytes {
    match retry_after {
        Some(secs) => response_with(
            msg,
            503,
            "Service Unavailable",
            &[("Retry-After", &secs.to_string())],
        ),
        None => response_to(msg, 503, "Service Unavailable"),
    }
}

/// [`response_to`] with extra header fields (name, value) before Content-Length, as a
/// parsed message: built with its index when it can be (no parse of what was just
/// written), else written and parsed. `None` only when the result does not parse.
pub fn response_message(
    msg: &Message,
    code: u16,
    reason: &str,
    extra: &[(&str, &str)],
) -> Option<Message> {
    let clean = |c: char| !c.is_ascii() || c.is_ascii_alphanumeric() || REASON_CHARS.contains(c);
    let reason = if reason.chars().all(clean) {
        std::borrow::Cow::Borrowed(reason)
    } else {
        std::borrow::Cow::Owned(sanitize_reason(reason))
    };
    let tag = if msg.to_tag().is_none() && code > 100 {
        let b: &[u8] = msg.as_bytes();
        let value = |kind: HeaderKind| {
            msg.fields()
                .iter()
                .rev()
                .find(|h| h.kind == kind)
                .map(|h| h.value.of(b))
        };
        let top_via = msg.fields().iter().find(|h| h.kind == HeaderKind::Via);
        derived_to_tag(
            value(HeaderKind::CallId),
            value(HeaderKind::From),
            top_via.map_or(&[][..], |h| h.value.of(b)),
            value(HeaderKind::CSeq),
        )
    } else {
        String::new()
    };
    msg.response_indexed(code, &reason, &tag, extra)
        .or_else(|| Message::parse(response_with(msg, code, &reason, extra)).ok())
}

fn echo_of(msg: &Message) -> Echo<'_> {
    let b: &[u8] = msg.as_bytes();
    let mut echo = Echo::default();
    for h in msg.fields() {
        let v = h.value.of(b);
        match h.kind {
            HeaderKind::Via => echo.vias.push(v),
            HeaderKind::From => echo.from = Some(v),
            HeaderKind::To => echo.to = Some(v),
            HeaderKind::CallId => echo.call_id = Some(v),
            HeaderKind::CSeq => echo.cseq = Some(v),
            _ => {}
        }
    }
    echo
}

/// [`response_to`] with extra header fields (name, value) before Content-Length.
fn response_with(msg: &Message, code: u16, reason: &str, extra: &[(&str, &str)]) -> Bytes {
    write_response(code, reason, &echo_of(msg), extra)
}

/// 483 Too Many Hops for a request whose Max-Forwards is 0.
pub fn too_many_hops(msg: &Message) -> Bytes {
    response_to(msg, 483, "Too Many Hops")
}

/// The response to send for bytes that failed to parse with `err`: 400 with a reason
/// explaining the error, 505 for another SIP version, 513 when too large. Returns `None`
/// when the bytes are not a request (responses are silently discarded, RFC 3261 §18.1.2
/// and §18.3) or when no start line can be recognised.
///
/// Works on partial input too (e.g. the buffered head of a stream message refused by
/// the framer): only complete header lines are echoed.
pub fn error_response(raw: &[u8], err: &ParseError) -> Option<Bytes> {
    let mut s = raw;
    while let Some(rest) = s.strip_prefix(b"\r\n") {
        s = rest;
    }
    let first_end = s.iter().position(|&b| b == b'\r' || b == b'\n')?;
    let first = s.get(..first_end)?;
    if first
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
    {
        return None;
    }
    let method_len = first.iter().position(|&b| b == b' ')?;
    if method_len == 0 || !first.get(..method_len)?.iter().all(|&b| is_token(b)) {
        return None;
    }
    let mut echo = Echo::default();
    // Lenient line walk: accepts LF or CRLF and stops at the empty line, the end of the
    // input or an incomplete last line.
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut pos = first_end;
    loop {
        let rest = s.get(pos..).unwrap_or(&[]);
        let rest = rest.strip_prefix(b"\r").unwrap_or(rest);
        let Some(rest) = rest.strip_prefix(b"\n") else {
            break;
        };
        let Some(len) = rest.iter().position(|&b| b == b'\r' || b == b'\n') else {
            break;
        };
        let line = rest.get(..len).unwrap_or(&[]);
        if line.is_empty() {
            break;
        }
        lines.push(line);
        pos = s.len() - rest.len() + len;
    }
    // Join continuation lines into the header they continue.
    let mut i = 0;
    while let Some(&line) = lines.get(i) {
        i += 1;
        if matches!(line.first(), Some(b' ' | b'\t')) {
            continue;
        }
        let Some((name, value_at)) = header_name(line) else {
            continue;
        };
        // Value: rest of the line plus continuation lines; slices of `raw` are contiguous
        // so the folded value is one slice up to the end of the last continuation.
        let mut end_line = line;
        while let Some(&next) = lines.get(i) {
            if matches!(next.first(), Some(b' ' | b'\t')) {
                end_line = next;
                i += 1;
            } else {
                break;
            }
        }
        let start = line.as_ptr() as usize - s.as_ptr() as usize + value_at;
        let end = end_line.as_ptr() as usize - s.as_ptr() as usize + end_line.len();
        let value = trim_ws(s.get(start..end).unwrap_or(&[]));
        match HeaderKind::from_name(name) {
            HeaderKind::Via => echo.vias.push(value),
            HeaderKind::From => {
                echo.from.get_or_insert(value);
            }
            HeaderKind::To => {
                echo.to.get_or_insert(value);
            }
            HeaderKind::CallId => {
                echo.call_id.get_or_insert(value);
            }
            HeaderKind::CSeq => {
                echo.cseq.get_or_insert(value);
            }
            _ => {}
        }
    }
    Some(write_response(
        err.status_code(),
        &error_reason(err),
        &echo,
        &[],
    ))
}

/// [`error_response`] for a framing error, given the bytes the framer had buffered.
pub fn framing_error_response(buffered: &[u8], err: &FramingError) -> Option<Bytes> {
    error_response(buffered, &err.to_parse_error())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::error::LimitKind;

    const BAD: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP client.example.com;branch=z9hG4bK1\r\n\
v: SIP/2.0/UDP second.example.com\r\n\
\x20;branch=z9hG4bK0\r\n\
From: <sip:a@example.com>;tag=1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: abc\r\n\
CSeq: 1 INVITE\r\n\
Content-Length: x\r\n\
\r\n";

    #[test]
    fn bad_request_echoes_headers() {
        let err = Message::parse(Bytes::from_static(BAD.as_bytes())).unwrap_err();
        assert_eq!(err, ParseError::BadContentLength);
        let r = error_response(BAD.as_bytes(), &err).unwrap();
        let m = Message::parse(r.clone()).unwrap();
        assert_eq!(m.status_code(), Some(400));
        let reason = std::str::from_utf8(m.reason_phrase().unwrap()).unwrap();
        assert_eq!(reason, "Bad Request (malformed Content-Length)");
        assert_eq!(m.via_count(), 2);
        assert_eq!(m.vias().nth(1).unwrap().unwrap().branch, Some("z9hG4bK0"));
        assert_eq!(m.call_id(), "abc");
        assert_eq!(m.cseq().seq, 1);
        assert_eq!(m.from_tag(), Some("1"));
        let tag = m.to_tag().unwrap().to_owned();
        assert_eq!(tag.len(), 16);
        // Same request, same tag.
        let r2 = error_response(BAD.as_bytes(), &err).unwrap();
        assert_eq!(r, r2);
    }

    #[test]
    fn status_codes() {
        let too_big = ParseError::TooLarge {
            what: LimitKind::Message,
            size: 70000,
            limit: 65536,
        };
        let r = error_response(BAD.as_bytes(), &too_big).unwrap();
        assert!(r.starts_with(b"SIP/2.0 513 Message Too Large ("));
        let r = error_response(BAD.as_bytes(), &ParseError::BadVersion).unwrap();
        assert!(r.starts_with(b"SIP/2.0 505 Version Not Supported"));
        let r =
            framing_error_response(BAD.as_bytes(), &FramingError::MissingContentLength).unwrap();
        assert!(r.starts_with(b"SIP/2.0 400 Bad Request (missing mandatory header Content-Length)"));
    }

    #[test]
    fn responses_and_garbage_get_nothing() {
        assert!(error_response(b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n", &ParseError::Empty).is_none());
        assert!(error_response(b"\x00\x01garbage", &ParseError::Empty).is_none());
        assert!(error_response(b"", &ParseError::Empty).is_none());
        assert!(error_response(b"<bad> sip:x SIP/2.0\r\n", &ParseError::Empty).is_none());
    }

    #[test]
    fn partial_input_is_fine() {
        let r = error_response(
            b"INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nCall-I",
            &ParseError::UnterminatedHeaders,
        )
        .unwrap();
        assert!(r.starts_with(b"SIP/2.0 400 "));
        assert!(r.windows(3).any(|w| w == b"Via"));
    }

    #[test]
    fn too_many_hops_response() {
        let ok = BAD.replace("Content-Length: x", "Max-Forwards: 0\r\nContent-Length: 0");
        let m = Message::parse(Bytes::from(ok)).unwrap();
        let r = too_many_hops(&m);
        let resp = Message::parse(r).unwrap();
        assert_eq!(resp.status_code(), Some(483));
        assert_eq!(resp.reason_phrase(), Some(&b"Too Many Hops"[..]));
        assert!(resp.to_tag().is_some());
    }

    #[test]
    fn service_unavailable_with_retry_after() {
        let ok = BAD.replace("Content-Length: x", "Content-Length: 0");
        let m = Message::parse(Bytes::from(ok)).unwrap();
        let r = service_unavailable(&m, Some(30));
        let resp = Message::parse(r.clone()).unwrap();
        assert_eq!(resp.status_code(), Some(503));
        assert_eq!(resp.call_id(), "abc");
        assert!(r.windows(19).any(|w| w == b"\r\nRetry-After: 30\r\n"));
        let r = service_unavailable(&m, None);
        assert!(!r.windows(11).any(|w| w == b"Retry-After"));
    }

    #[test]
    fn reason_phrases_are_valid() {
        let errs = [
            ParseError::BadStartLine("x"),
            ParseError::BadNameAddr("To", "missing >"),
            ParseError::TruncatedBody {
                expected: 3,
                got: 1,
            },
            ParseError::TooLarge {
                what: LimitKind::Headers,
                size: 1,
                limit: 0,
            },
        ];
        for e in errs {
            let r = error_reason(&e);
            assert!(!r.contains(['<', '>', '"', '\r', '\n']), "{r}");
        }
    }
}
