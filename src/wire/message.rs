//! A parsed SIP message: the start line and an index of header spans over the original
//! bytes. Nothing is copied; typed values are parsed on access (the few the transport
//! layer always needs are validated once by [`Message::parse`]).

use std::ops::Range;

use bytes::Bytes;
use memchr::memchr2;

use super::cseq::CSeq;
use super::error::{LimitKind, ParseError};
use super::header::{split_values, HeaderKind};
use super::host::Host;
use super::lex::{is_token, is_word, is_ws, offset_in, parse_digits, to_str};
use super::limits::Limits;
use super::name_addr::{ContactValue, NameAddr};
use super::transport_token::TransportToken;
use super::uri::Uri;
use super::via::{Rport, Via};

mod rebase;
mod respond;

pub(crate) use rebase::Splice;

/// A byte range of the message buffer. u32 keeps the header index small; messages over
/// 4 GiB are refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        // Callers have checked that the buffer length fits u32.
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }

    pub(crate) fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    pub(crate) fn of(self, buf: &[u8]) -> &[u8] {
        buf.get(self.range()).unwrap_or(&[])
    }
}

/// One header line (with its continuation lines) in the index.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeaderField {
    pub(crate) kind: HeaderKind,
    /// The name as written.
    pub(crate) name: Span,
    /// The value, trimmed (may contain folded line breaks).
    pub(crate) value: Span,
    /// The whole line from the first byte of the name to after the last CRLF.
    pub(crate) line: Span,
}

#[derive(Clone, Copy, Debug)]
enum StartKind {
    Request { method: Span, uri: Span },
    Response { code: u16, reason: Span },
}

/// A header line as seen through [`Message::headers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRef<'a> {
    /// Recognised header, or `Other`.
    pub kind: HeaderKind,
    /// Name as written (may be a compact form).
    pub name: &'a str,
    /// Value, trimmed; folded line breaks are kept as written.
    pub value: &'a [u8],
}

impl<'a> HeaderRef<'a> {
    /// The value as text, when it is UTF-8.
    pub fn value_str(&self) -> Option<&'a str> {
        to_str(self.value)
    }
}

/// A SIP request or response over a shared buffer.
#[derive(Clone, Debug)]
pub struct Message {
    buf: Bytes,
    start: StartKind,
    start_line: Span,
    headers: Vec<HeaderField>,
    head_len: u32,
    content_length: Option<u32>,
    max_forwards: Option<u8>,
    cseq_seq: u32,
    cseq_method: Span,
    call_id: Span,
    via_idx: u32,
    from_idx: u32,
    to_idx: u32,
    /// The From and To `tag` values, found while validating From and To: transaction and
    /// dialog matching read them on every message, and parsing the header again for
    /// them cost about a fifth of a full parse.
    from_tag: Option<Span>,
    to_tag: Option<Span>,
    /// Where the parts of the top Via lie, found while validating it: transactions and
    /// transports read the top Via on every message, and parsing it again cost about a
    /// fifth of a full parse. `None` when a part could not be located (then `top_via()`
    /// parses the value again).
    top_via: Option<TopViaSpans>,
}

/// A byte range inside the top Via value, relative to the value's start (u16 keeps
/// [`Message`] small; a longer value is simply not cached).
#[derive(Clone, Copy, Debug)]
struct Rel {
    start: u16,
    end: u16,
}

impl Rel {
    /// Where `part` (a slice of `raw`) lies in `raw`.
    fn of_part(raw: &[u8], part: &[u8]) -> Option<Rel> {
        let start = offset_in(raw, part)?;
        Some(Rel {
            start: u16::try_from(start).ok()?,
            end: u16::try_from(start + part.len()).ok()?,
        })
    }

    fn get(self, raw: &[u8]) -> Option<&[u8]> {
        raw.get(self.start as usize..self.end as usize)
    }

    fn get_str(self, raw: &str) -> Option<&str> {
        raw.get(self.start as usize..self.end as usize)
    }
}

/// The sent-by host of the top Via as parsed: an IPv4 address is kept as one (reading it
/// again was a tenth of a relayed call's instructions), a name as its position; an IPv6
/// address is read again (16 bytes more in every [`Message`] for a rarer case).
#[derive(Clone, Copy, Debug)]
enum SpanHost {
    Name,
    Ipv4([u8; 4]),
    Ipv6,
}

/// The top Via as [`Via::parse`] found it, as positions and the few values that are not
/// slices of the message. Rebuilding a [`Via`] from it re-reads only the sent-by host
/// and `maddr` (short, and kept as positions to keep [`Message`] small).
#[derive(Clone, Copy, Debug)]
struct TopViaSpans {
    /// Start of the trimmed value in the message.
    start: u32,
    len: u16,
    protocol_end: u16,
    version: Rel,
    transport: Rel,
    host: Rel,
    host_kind: SpanHost,
    params_start: u16,
    port: Option<u16>,
    branch: Option<Rel>,
    maddr: Option<Rel>,
    received: Option<std::net::IpAddr>,
    rport: Option<Rport>,
    ttl: Option<u8>,
    alias: bool,
}

impl TopViaSpans {
    /// Records `via` (parsed from a slice of `b`).
    fn new(b: &[u8], via: &Via<'_>) -> Option<TopViaSpans> {
        let raw = via.raw;
        let rel = |part: &[u8]| Rel::of_part(raw, part);
        let opt = |part: Option<&str>| match part {
            Some(p) => rel(p.as_bytes()).map(Some),
            None => Some(None),
        };
        let protocol = rel(via.protocol.as_bytes())?;
        let params = rel(via.params_raw)?;
        if protocol.start != 0 || params.end as usize != raw.len() {
            return None;
        }
        Some(TopViaSpans {
            start: u32::try_from(offset_in(b, raw)?).ok()?,
            len: u16::try_from(raw.len()).ok()?,
            protocol_end: protocol.end,
            version: rel(via.version.as_bytes())?,
            transport: rel(via.transport_raw.as_bytes())?,
            host: rel(via.host_raw.as_bytes())?,
            host_kind: match via.host {
                Host::Name(_) => SpanHost::Name,
                Host::Ipv4(a) => SpanHost::Ipv4(a.octets()),
                Host::Ipv6(_) => SpanHost::Ipv6,
            },
            params_start: params.start,
            port: via.port,
            branch: opt(via.branch)?,
            // Rare: found again rather than returned by `Via::parse`, which keeps that
            // function (also used for framing) as it was. Its first `maddr` is the one kept.
            maddr: match via.maddr {
                Some(_) => opt(via.param("maddr").flatten())?,
                None => None,
            },
            received: via.received,
            rport: via.rport,
            ttl: via.ttl,
            alias: via.alias,
        })
    }

    /// Whether an edit of the message's bytes `start..end` lies inside this Via's parameters
    /// (appending at the value's end included).
    fn params_hold(&self, start: usize, end: usize) -> bool {
        let value = self.start as usize;
        start >= value + self.params_start as usize && end <= value + self.len as usize
    }

    /// The same Via after edits inside its parameters only (received/rport stamped): now
    /// at `start` with `len` bytes in `b`. The part before the parameters is as it was, so
    /// only the parameters are read again.
    fn params_edited(&self, b: &[u8], start: u32, len: u16) -> Option<TopViaSpans> {
        let mut tv = TopViaSpans {
            start,
            len,
            branch: None,
            maddr: None,
            received: None,
            rport: None,
            ttl: None,
            alias: false,
            ..*self
        };
        let mut via = tv.via(b)?;
        via.read_params().ok()?;
        tv = TopViaSpans::new(b, &via)?;
        Some(tv)
    }

    /// The [`Via`] recorded by [`TopViaSpans::new`], over the same message bytes.
    /// (One UTF-8 check for the whole value: a value that is not UTF-8 is parsed again.)
    fn via<'a>(&self, b: &'a [u8]) -> Option<Via<'a>> {
        let start = self.start as usize;
        let raw = b.get(start..start + self.len as usize)?;
        let text = to_str(raw)?;
        let transport_raw = self.transport.get_str(text)?;
        let host_raw = self.host.get_str(text)?;
        let maddr = match self.maddr {
            Some(r) => Some(Host::parse(r.get(raw)?)?),
            None => None,
        };
        let branch = match self.branch {
            Some(r) => Some(r.get_str(text)?),
            None => None,
        };
        let host = match self.host_kind {
            SpanHost::Name => Host::Name(std::borrow::Cow::Borrowed(host_raw)),
            SpanHost::Ipv4(a) => Host::Ipv4(a.into()),
            SpanHost::Ipv6 => Host::parse(host_raw.as_bytes())?,
        };
        Some(Via {
            raw,
            protocol: text.get(..self.protocol_end as usize)?,
            version: self.version.get_str(text)?,
            transport: TransportToken::from_token(transport_raw),
            transport_raw,
            host,
            host_raw,
            port: self.port,
            branch,
            received: self.received,
            rport: self.rport,
            maddr,
            ttl: self.ttl,
            alias: self.alias,
            params_raw: raw.get(self.params_start as usize..)?,
        })
    }
}

/// Where the `tag` parameter's value of `a` (parsed from `b`) lies in `b`.
fn tag_span(b: &[u8], a: &NameAddr<'_>) -> Option<Span> {
    let t = a.tag()?;
    let off = offset_in(b, t.as_bytes())?;
    Some(Span::new(off, off + t.len()))
}

/// The header line starting at `pos` (its first line ends at `end`, the next starts at
/// `next`), with its continuation lines: the field and where the line after it starts.
#[inline]
fn header_field(
    b: &[u8],
    pos: usize,
    end: usize,
    next: usize,
) -> Result<(HeaderField, usize), ParseError> {
    let line = b.get(pos..end).unwrap_or(&[]);
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(ParseError::BadHeaderLine(
            "continuation line without header",
        ));
    }
    let name_len = line
        .iter()
        .position(|&b| !is_token(b))
        .unwrap_or(line.len());
    if name_len == 0 {
        return Err(ParseError::BadHeaderName);
    }
    let mut j = name_len;
    while matches!(line.get(j), Some(b' ' | b'\t')) {
        j += 1;
    }
    if line.get(j) != Some(&b':') {
        return Err(if j == name_len {
            ParseError::BadHeaderName
        } else {
            ParseError::BadHeaderLine("missing colon")
        });
    }
    let mut value_start = pos + j + 1;
    let mut value_end = end;
    let mut next_pos = next;
    while matches!(b.get(next_pos), Some(b' ' | b'\t')) {
        let (e2, n2) = line_end(b, next_pos)?;
        value_end = e2;
        next_pos = n2;
    }
    while value_start < value_end && b.get(value_start).is_some_and(|&c| is_ws(c)) {
        value_start += 1;
    }
    while value_end > value_start && b.get(value_end - 1).is_some_and(|&c| is_ws(c)) {
        value_end -= 1;
    }
    let name = b.get(pos..pos + name_len).unwrap_or(&[]);
    let field = HeaderField {
        kind: HeaderKind::from_name(name),
        name: Span::new(pos, pos + name_len),
        value: Span::new(value_start, value_end),
        line: Span::new(pos, next_pos),
    };
    Ok((field, next_pos))
}

/// Finds the CRLF ending the line that starts at `from`: (index of CR, index after LF).
fn line_end(b: &[u8], from: usize) -> Result<(usize, usize), ParseError> {
    let rest = b.get(from..).unwrap_or(&[]);
    match memchr2(b'\r', b'\n', rest) {
        Some(i) => {
            if rest.get(i) == Some(&b'\r') && rest.get(i + 1) == Some(&b'\n') {
                Ok((from + i, from + i + 2))
            } else {
                Err(ParseError::BadLineEnding)
            }
        }
        None => Err(ParseError::UnterminatedHeaders),
    }
}

/// Parses `SIP/x.y`: Ok(true) for 2.0, Ok(false) for another well-formed version.
fn check_version(v: &[u8]) -> Result<bool, ParseError> {
    let bad = ParseError::BadStartLine("bad SIP-Version");
    let (proto, num) = (v.get(..4).ok_or(bad.clone())?, v.get(4..).unwrap_or(&[]));
    if !proto.eq_ignore_ascii_case(b"SIP/") {
        return Err(bad);
    }
    let dot = num.iter().position(|&b| b == b'.').ok_or(bad.clone())?;
    let (maj, min) = (
        num.get(..dot).unwrap_or(&[]),
        num.get(dot + 1..).unwrap_or(&[]),
    );
    if parse_digits(maj).is_none() || parse_digits(min).is_none() {
        return Err(bad);
    }
    Ok(num == b"2.0")
}

/// True for `scheme ":"` at the start, scheme = ALPHA *(ALPHA / DIGIT / "+" / "-" / ".").
fn has_scheme(u: &[u8]) -> bool {
    let Some(colon) = u.iter().position(|&b| b == b':') else {
        return false;
    };
    let scheme = u.get(..colon).unwrap_or(&[]);
    scheme.first().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        && u.len() > colon + 1
}

fn parse_request_line(line: &[u8]) -> Result<(Range<usize>, Range<usize>), ParseError> {
    let sp1 = line
        .iter()
        .position(|&b| b == b' ')
        .ok_or(ParseError::BadStartLine("missing Request-URI"))?;
    let method = line.get(..sp1).unwrap_or(&[]);
    if method.is_empty() || !method.iter().all(|&b| is_token(b)) {
        return Err(ParseError::BadStartLine("bad method"));
    }
    let rest = line.get(sp1 + 1..).unwrap_or(&[]);
    let sp2 = rest
        .iter()
        .position(|&b| b == b' ')
        .ok_or(ParseError::BadStartLine("missing SIP-Version"))?;
    let uri = rest.get(..sp2).unwrap_or(&[]);
    let version = rest.get(sp2 + 1..).unwrap_or(&[]);
    if uri.is_empty() {
        return Err(ParseError::BadStartLine(
            "more than one space between elements",
        ));
    }
    if version.iter().any(|&b| b == b' ' || b == b'\t') {
        return Err(ParseError::BadStartLine("extra white space or elements"));
    }
    check_version(version)?
        .then_some(())
        .ok_or(ParseError::BadVersion)?;
    if uri.iter().any(|&b| b <= 0x20 || b == 0x7f) {
        return Err(ParseError::BadRequestUri("control character"));
    }
    if !has_scheme(uri) {
        return Err(ParseError::BadRequestUri("not an absolute URI"));
    }
    let scheme_end = uri.iter().position(|&b| b == b':').unwrap_or(0);
    let scheme = uri.get(..scheme_end).unwrap_or(&[]);
    if scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips") {
        let u =
            Uri::parse_bytes(uri).map_err(|_| ParseError::BadRequestUri("malformed SIP URI"))?;
        if !u.headers_raw.is_empty() {
            // RFC 3261 §19.1.1: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11).
            return Err(ParseError::BadRequestUri("headers not allowed"));
        }
    }
    Ok((0..sp1, sp1 + 1..sp1 + 1 + sp2))
}

fn parse_status_line(line: &[u8]) -> Result<(u16, Range<usize>), ParseError> {
    let sp = line
        .iter()
        .position(|&b| b == b' ')
        .ok_or(ParseError::BadStartLine("missing status code"))?;
    check_version(line.get(..sp).unwrap_or(&[]))?
        .then_some(())
        .ok_or(ParseError::BadVersion)?;
    let rest = line.get(sp + 1..).unwrap_or(&[]);
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits != 3 {
        return Err(ParseError::BadStatusCode);
    }
    let code = parse_digits(rest.get(..3).unwrap_or(&[]))
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (100..=699).contains(c))
        .ok_or(ParseError::BadStatusCode)?;
    let reason_start = match rest.get(3) {
        None => sp + 4,
        Some(b' ') => sp + 5,
        Some(_) => return Err(ParseError::BadStatusCode),
    };
    Ok((code, reason_start.min(line.len())..line.len()))
}

fn validate_call_id(v: &[u8]) -> Result<(), ParseError> {
    let mut parts = v.splitn(2, |&b| b == b'@');
    let word = parts.next().unwrap_or(&[]);
    let host = parts.next();
    let ok = |w: &[u8]| !w.is_empty() && w.iter().all(|&b| is_word(b));
    if ok(word) && host.map_or(true, ok) {
        Ok(())
    } else {
        Err(ParseError::BadCallId)
    }
}

impl Message {
    /// Parses one message with no size limit other than 4 GiB. Leading CRLFs are skipped.
    /// The body is `Content-Length` bytes; bytes after it are dropped (RFC 3261 §18.3) and
    /// a shorter body is [`ParseError::TruncatedBody`]. Without Content-Length the body is
    /// the rest of the input (allowed for datagrams; the stream framer insists on it).
    pub fn parse(buf: Bytes) -> Result<Message, ParseError> {
        Self::parse_inner(buf, None)
    }

    /// Like [`Message::parse`], enforcing `limits` (size of message, header block and
    /// body, number of header lines).
    pub fn parse_with_limits(buf: Bytes, limits: &Limits) -> Result<Message, ParseError> {
        if buf.len() > limits.max_message_bytes {
            return Err(ParseError::TooLarge {
                what: LimitKind::Message,
                size: buf.len(),
                limit: limits.max_message_bytes,
            });
        }
        Self::parse_inner(buf, Some(limits))
    }

    fn parse_inner(buf: Bytes, limits: Option<&Limits>) -> Result<Message, ParseError> {
        if u32::try_from(buf.len()).is_err() {
            return Err(ParseError::TooLarge {
                what: LimitKind::Message,
                size: buf.len(),
                limit: u32::MAX as usize,
            });
        }
        let mut skip = 0;
        while buf.get(skip..skip + 2) == Some(b"\r\n") {
            skip += 2;
        }
        let buf = if skip > 0 { buf.slice(skip..) } else { buf };
        if buf.is_empty() {
            return Err(ParseError::Empty);
        }
        let b: &[u8] = &buf;

        let (sl_end, mut pos) = match line_end(b, 0) {
            Err(ParseError::UnterminatedHeaders) => {
                return Err(ParseError::BadStartLine("no line end"))
            }
            other => other?,
        };
        let line = b.get(..sl_end).unwrap_or(&[]);
        let start = if line
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
        {
            let (code, reason) = parse_status_line(line)?;
            StartKind::Response {
                code,
                reason: Span::new(reason.start, reason.end),
            }
        } else {
            let (m, u) = parse_request_line(line)?;
            StartKind::Request {
                method: Span::new(m.start, m.end),
                uri: Span::new(u.start, u.end),
            }
        };

        let mut headers: Vec<HeaderField> = Vec::with_capacity(16);
        let mut content_length: Option<u32> = None;
        let mut mf_idx = None;
        let (mut via_idx, mut from_idx, mut to_idx, mut cseq_idx, mut call_idx) =
            (None, None, None, None, None);
        loop {
            let (end, next) = line_end(b, pos)?;
            if end == pos {
                pos = next;
                break;
            }
            let (field, next_pos) = header_field(b, pos, end, next)?;
            let kind = field.kind;
            let idx = headers.len();
            let value = field.value.of(b);
            match kind {
                HeaderKind::ContentLength => {
                    let v = parse_digits(value)
                        .and_then(|v| u32::try_from(v).ok())
                        .ok_or(ParseError::BadContentLength)?;
                    if content_length.is_some_and(|old| old != v) {
                        return Err(ParseError::ConflictingContentLength);
                    }
                    content_length = Some(v);
                }
                HeaderKind::MaxForwards => set_once(&mut mf_idx, idx, "Max-Forwards")?,
                HeaderKind::Via => {
                    via_idx.get_or_insert(idx);
                }
                HeaderKind::From => set_once(&mut from_idx, idx, "From")?,
                HeaderKind::To => set_once(&mut to_idx, idx, "To")?,
                HeaderKind::CSeq => set_once(&mut cseq_idx, idx, "CSeq")?,
                HeaderKind::CallId => set_once(&mut call_idx, idx, "Call-ID")?,
                _ => {}
            }
            headers.push(field);
            if let Some(l) = limits {
                if headers.len() > l.max_headers {
                    return Err(ParseError::TooManyHeaders(l.max_headers));
                }
            }
            pos = next_pos;
        }
        let head_len = pos;
        if let Some(l) = limits {
            if head_len > l.max_header_bytes {
                return Err(ParseError::TooLarge {
                    what: LimitKind::Headers,
                    size: head_len,
                    limit: l.max_header_bytes,
                });
            }
        }
        let avail = b.len().saturating_sub(head_len);
        let body_len = match content_length {
            Some(cl) => {
                let cl = cl as usize;
                if cl > avail {
                    return Err(ParseError::TruncatedBody {
                        expected: cl,
                        got: avail,
                    });
                }
                cl
            }
            None => avail,
        };
        if let Some(l) = limits {
            if body_len > l.max_body_bytes {
                return Err(ParseError::TooLarge {
                    what: LimitKind::Body,
                    size: body_len,
                    limit: l.max_body_bytes,
                });
            }
        }

        let field = |i: Option<usize>, name: &'static str| {
            i.and_then(|i| headers.get(i).copied())
                .ok_or(ParseError::MissingHeader(name))
        };
        let via = field(via_idx, "Via")?;
        let from = field(from_idx, "From")?;
        let to = field(to_idx, "To")?;
        let call = field(call_idx, "Call-ID")?;
        let cseq_f = field(cseq_idx, "CSeq")?;

        let top = split_values(via.value.of(b))
            .next()
            .ok_or(ParseError::BadVia("empty"))?
            .map_err(|_| ParseError::BadVia("malformed list"))?;
        let top_via = TopViaSpans::new(b, &Via::parse(top)?);
        let from_tag = tag_span(b, &NameAddr::parse(from.value.of(b), "From")?);
        let to_tag = tag_span(b, &NameAddr::parse(to.value.of(b), "To")?);
        let call_value = call.value.of(b);
        validate_call_id(call_value)?;
        let cseq = CSeq::parse(cseq_f.value.of(b))?;
        if let StartKind::Request { method, .. } = start {
            if method.of(b) != cseq.method.as_bytes() {
                return Err(ParseError::CSeqMethodMismatch);
            }
        }
        // Checked after CSeq so that a request with both wrong reports the CSeq (RFC 4475
        // §3.1.2.4 expects the 400 "due to the CSeq error").
        let max_forwards = match mf_idx.and_then(|i| headers.get(i)) {
            Some(h) => Some(
                parse_digits(h.value.of(b))
                    .and_then(|v| u8::try_from(v).ok())
                    .ok_or(ParseError::BadMaxForwards)?,
            ),
            None => None,
        };
        let m_off = offset_in(b, cseq.method.as_bytes()).unwrap_or(0);
        let cseq_method = Span::new(m_off, m_off + cseq.method.len());
        let cseq_seq = cseq.seq;

        let total = head_len + body_len;
        let buf = if total < buf.len() {
            buf.slice(..total)
        } else {
            buf
        };
        let idx32 = |i: Option<usize>| i.and_then(|i| u32::try_from(i).ok()).unwrap_or(0);
        Ok(Message {
            buf,
            start,
            start_line: Span::new(0, sl_end),
            head_len: u32::try_from(head_len).unwrap_or(u32::MAX),
            content_length,
            max_forwards,
            cseq_seq,
            cseq_method,
            call_id: call.value,
            via_idx: idx32(via_idx),
            from_idx: idx32(from_idx),
            to_idx: idx32(to_idx),
            from_tag,
            to_tag,
            top_via,
            headers,
        })
    }

    /// The message bytes (exactly one message: leading CRLFs and bytes after the body are
    /// not included).
    pub fn as_bytes(&self) -> &Bytes {
        &self.buf
    }

    /// Gives back the message bytes.
    pub fn into_bytes(self) -> Bytes {
        self.buf
    }

    /// Length of the message in bytes.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Never true for a parsed message; present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// True for a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartKind::Request { .. })
    }

    /// True for a response.
    pub fn is_response(&self) -> bool {
        !self.is_request()
    }

    /// The start line without its CRLF.
    pub fn start_line(&self) -> &[u8] {
        self.start_line.of(&self.buf)
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        match self.start {
            StartKind::Request { method, .. } => to_str(method.of(&self.buf)),
            StartKind::Response { .. } => None,
        }
    }

    /// The Request-URI as written (requests only).
    pub fn request_uri(&self) -> Option<&str> {
        match self.start {
            StartKind::Request { uri, .. } => to_str(uri.of(&self.buf)),
            StartKind::Response { .. } => None,
        }
    }

    /// The Request-URI parsed as a SIP/SIPS URI (`None` for responses; an error for
    /// other schemes such as `tel:`).
    pub fn request_sip_uri(&self) -> Option<Result<Uri<'_>, ParseError>> {
        self.request_uri().map(Uri::parse)
    }

    /// The status code of a response.
    pub fn status_code(&self) -> Option<u16> {
        match self.start {
            StartKind::Response { code, .. } => Some(code),
            StartKind::Request { .. } => None,
        }
    }

    /// The reason phrase of a response (any bytes; usually UTF-8).
    pub fn reason_phrase(&self) -> Option<&[u8]> {
        match self.start {
            StartKind::Response { reason, .. } => Some(reason.of(&self.buf)),
            StartKind::Request { .. } => None,
        }
    }

    /// All header lines in order.
    pub fn headers(&self) -> impl Iterator<Item = HeaderRef<'_>> + '_ {
        self.headers.iter().map(move |h| HeaderRef {
            kind: h.kind,
            name: to_str(h.name.of(&self.buf)).unwrap_or(""),
            value: h.value.of(&self.buf),
        })
    }

    /// Number of header lines.
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// The value of the first header named `name` (full or compact form, any case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        let kind = HeaderKind::from_name(name.as_bytes());
        self.headers
            .iter()
            .find(|h| self.is_named(h, kind, name))
            .map(|h| h.value.of(&self.buf))
    }

    fn is_named(&self, h: &HeaderField, kind: HeaderKind, name: &str) -> bool {
        if kind == HeaderKind::Other {
            h.kind == HeaderKind::Other
                && h.name.of(&self.buf).eq_ignore_ascii_case(name.as_bytes())
        } else {
            h.kind == kind
        }
    }

    /// The values of every header line named `name`, in order (not split at commas).
    pub fn header_lines<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        let kind = HeaderKind::from_name(name.as_bytes());
        self.headers
            .iter()
            .filter(move |h| self.is_named(h, kind, name))
            .map(move |h| h.value.of(&self.buf))
    }

    /// Every comma-separated element of every header line of `kind`, in order. Use only
    /// for list headers (see [`HeaderKind::is_list`]).
    pub fn values(&self, kind: HeaderKind) -> impl Iterator<Item = Result<&[u8], ParseError>> + '_ {
        self.headers
            .iter()
            .filter(move |h| h.kind == kind)
            .flat_map(move |h| split_values(h.value.of(&self.buf)))
    }

    /// The topmost Via value (validated by `parse`, so this is `Ok` in practice).
    pub fn top_via(&self) -> Result<Via<'_>, ParseError> {
        if let Some(v) = self.top_via.as_ref().and_then(|t| t.via(&self.buf)) {
            return Ok(v);
        }
        let h = self
            .headers
            .get(self.via_idx as usize)
            .ok_or(ParseError::MissingHeader("Via"))?;
        let first = split_values(h.value.of(&self.buf))
            .next()
            .ok_or(ParseError::BadVia("empty"))??;
        Via::parse(first)
    }

    /// Every Via value, top first, parsed on demand.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'_>, ParseError>> + '_ {
        self.values(HeaderKind::Via).map(|r| r.and_then(Via::parse))
    }

    /// Number of Via values (comma-separated values counted one by one).
    pub fn via_count(&self) -> usize {
        self.values(HeaderKind::Via).count()
    }

    /// The Call-ID.
    pub fn call_id(&self) -> &str {
        to_str(self.call_id.of(&self.buf)).unwrap_or("")
    }

    /// The CSeq.
    pub fn cseq(&self) -> CSeq<'_> {
        CSeq {
            seq: self.cseq_seq,
            method: to_str(self.cseq_method.of(&self.buf)).unwrap_or(""),
        }
    }

    /// The Content-Length value, when present.
    pub fn content_length(&self) -> Option<usize> {
        self.content_length.map(|v| v as usize)
    }

    /// The Max-Forwards value, when present.
    pub fn max_forwards(&self) -> Option<u8> {
        self.max_forwards
    }

    fn field(&self, idx: u32) -> &[u8] {
        self.headers
            .get(idx as usize)
            .map_or(&[][..], |h| h.value.of(&self.buf))
    }

    /// The From value.
    pub fn from(&self) -> Result<NameAddr<'_>, ParseError> {
        NameAddr::parse(self.field(self.from_idx), "From")
    }

    /// The To value.
    pub fn to(&self) -> Result<NameAddr<'_>, ParseError> {
        NameAddr::parse(self.field(self.to_idx), "To")
    }

    /// The From tag.
    pub fn from_tag(&self) -> Option<&str> {
        to_str(self.from_tag?.of(&self.buf))
    }

    /// The To tag.
    pub fn to_tag(&self) -> Option<&str> {
        to_str(self.to_tag?.of(&self.buf))
    }

    /// Contact values, parsed on demand.
    pub fn contacts(&self) -> impl Iterator<Item = Result<ContactValue<'_>, ParseError>> + '_ {
        self.values(HeaderKind::Contact)
            .map(|r| r.and_then(ContactValue::parse))
    }

    /// Route values, top first.
    pub fn routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ParseError>> + '_ {
        self.values(HeaderKind::Route)
            .map(|r| r.and_then(|v| NameAddr::parse(v, "Route")))
    }

    /// Record-Route values, top first.
    pub fn record_routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ParseError>> + '_ {
        self.values(HeaderKind::RecordRoute)
            .map(|r| r.and_then(|v| NameAddr::parse(v, "Record-Route")))
    }

    /// Length of the start line and header block including the empty line.
    pub fn head_len(&self) -> usize {
        self.head_len as usize
    }

    /// The body, sharing the message buffer.
    pub fn body(&self) -> Bytes {
        self.buf.slice(self.head_len().min(self.buf.len())..)
    }

    /// The header index, for the editor.
    pub(crate) fn fields(&self) -> &[HeaderField] {
        &self.headers
    }

    /// Index of the top Via line, for the editor.
    pub(crate) fn via_field(&self) -> Option<&HeaderField> {
        self.headers.get(self.via_idx as usize)
    }

    /// End of the start line including its CRLF.
    pub(crate) fn start_line_end(&self) -> usize {
        self.start_line.end as usize + 2
    }
}

fn set_once(slot: &mut Option<usize>, idx: usize, name: &'static str) -> Result<(), ParseError> {
    if slot.is_some() {
        return Err(ParseError::DuplicateHeader(name));
    }
    *slot = Some(idx);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::host::Host;
    use crate::wire::transport_token::TransportToken;
    use crate::TransportKind;

    const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/TLS client.atlanta.example.com:5061;branch=z9hG4bK74bf9;rport\r\n\
Max-Forwards: 70\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@client.atlanta.example.com;transport=tls>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

    fn parse(s: &str) -> Result<Message, ParseError> {
        Message::parse(Bytes::copy_from_slice(s.as_bytes()))
    }

    /// The top Via kept at parse time is what a fresh parse of the value gives.
    #[test]
    fn kept_top_via_equals_a_fresh_parse() {
        let vias = [
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;received=192.0.2.9;rport=5070",
            "SIP / 2.0 / wss [2001:db8::1] : 443 ;maddr=[2001:db8::2];ttl=16;alias;branch=z9hG4bK2;maddr=x.example",
            "sip/2.0/tls h.example;Branch=z9hG4bK3;received=[2001:db8::3];rport",
            "SIP/2.0/SCTP h.example",
        ];
        for v in vias {
            for line in [
                format!("Via: {v}"),
                format!("v: {v} , SIP/2.0/UDP other.example"),
            ] {
                let m = Message::parse(Bytes::from(format!(
                    "OPTIONS sip:h SIP/2.0\r\n{line}\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:h>\r\n\
                     Call-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
                )))
                .unwrap();
                assert!(m.top_via.is_some(), "{v}: not kept");
                assert_eq!(
                    m.top_via().unwrap(),
                    Via::parse(v.as_bytes()).unwrap(),
                    "{v}"
                );
            }
        }
    }

    #[test]
    fn parses_request() {
        let m = parse(INVITE).unwrap();
        assert!(m.is_request());
        assert_eq!(m.method(), Some("INVITE"));
        assert_eq!(m.request_uri(), Some("sip:bob@biloxi.example.com"));
        let v = m.top_via().unwrap();
        assert_eq!(v.transport, TransportToken::Known(TransportKind::Tls));
        assert_eq!(v.host, Host::Name("client.atlanta.example.com".into()));
        assert_eq!(v.port, Some(5061));
        assert_eq!(m.call_id(), "3848276298220188511@atlanta.example.com");
        assert_eq!(
            m.cseq(),
            CSeq {
                seq: 1,
                method: "INVITE"
            }
        );
        assert_eq!(m.content_length(), Some(4));
        assert_eq!(m.max_forwards(), Some(70));
        assert_eq!(&m.body()[..], b"v=0\n");
        assert_eq!(m.from_tag(), Some("9fxced76sl"));
        assert_eq!(m.to_tag(), None);
        assert_eq!(m.contacts().count(), 1);
        assert_eq!(m.header("content-type"), Some(&b"application/sdp"[..]));
        assert_eq!(m.header("c"), Some(&b"application/sdp"[..]));
        assert_eq!(m.header_count(), 9);
        assert_eq!(m.len(), INVITE.len());
    }

    #[test]
    fn parses_response_and_drops_trailing_bytes() {
        let s = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1, SIP/2.0/UDP g;branch=z9hG4bK2\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: x\r\nCSeq: 5 BYE\r\nContent-Length: 0\r\n\r\nEXTRA";
        let m = parse(s).unwrap();
        assert_eq!(m.status_code(), Some(200));
        assert_eq!(m.reason_phrase(), Some(&b"OK"[..]));
        assert_eq!(m.len(), s.len() - 5);
        assert_eq!(m.via_count(), 2);
        let hosts: Vec<_> = m.vias().map(|v| v.unwrap().host_raw).collect();
        assert_eq!(hosts, vec!["h", "g"]);
        assert!(m.body().is_empty());
    }

    #[test]
    fn skips_leading_crlf_and_allows_missing_content_length() {
        let s = "\r\n\r\nOPTIONS sip:h SIP/2.0\r\nv: SIP/2.0/UDP h\r\nf: <sip:a@h>;tag=1\r\nt: <sip:b@h>\r\ni: x\r\nCSeq: 1 OPTIONS\r\n\r\nbody";
        let m = parse(s).unwrap();
        assert_eq!(m.content_length(), None);
        assert_eq!(&m.body()[..], b"body");
        assert!(m.start_line().starts_with(b"OPTIONS"));
    }

    #[test]
    fn errors() {
        let base = "OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n";
        let cases: &[(&str, ParseError)] = &[
            ("", ParseError::Empty),
            ("\r\n", ParseError::Empty),
            (
                "OPTIONS sip:h SIP/2.0",
                ParseError::BadStartLine("no line end"),
            ),
            ("OPTIONS sip:h SIP/2.0\r\n", ParseError::UnterminatedHeaders),
            (
                "OPTIONS sip:h SIP/2.0\nVia: x\r\n\r\n",
                ParseError::BadLineEnding,
            ),
            ("OPTIONS sip:h SIP/3.0\r\n\r\n", ParseError::BadVersion),
            (
                "OPTIONS sip:h HTTP/1.1\r\n\r\n",
                ParseError::BadStartLine("bad SIP-Version"),
            ),
            ("SIP/2.0 20 OK\r\n\r\n", ParseError::BadStatusCode),
            ("SIP/2.0 099 OK\r\n\r\n", ParseError::BadStatusCode),
            ("SIP/2.0 2000 OK\r\n\r\n", ParseError::BadStatusCode),
            (
                "OPTIONS <sip:h> SIP/2.0\r\n\r\n",
                ParseError::BadRequestUri("not an absolute URI"),
            ),
            (
                "OPTIONS sip:h?a=b SIP/2.0\r\n\r\n",
                ParseError::BadRequestUri("headers not allowed"),
            ),
            (
                "OPTIONS sip:h SIP/2.0\r\nBad Name: x\r\n\r\n",
                ParseError::BadHeaderLine("missing colon"),
            ),
            (
                "OPTIONS sip:h SIP/2.0\r\nBa@d: x\r\n\r\n",
                ParseError::BadHeaderName,
            ),
            (
                "OPTIONS sip:h SIP/2.0\r\n: x\r\n\r\n",
                ParseError::BadHeaderName,
            ),
            (
                "OPTIONS sip:h SIP/2.0\r\n x\r\n\r\n",
                ParseError::BadHeaderLine("continuation line without header"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input).unwrap_err(), *want, "{input:?}");
        }
        let with = |extra: &str| parse(&format!("{base}{extra}\r\n"));
        assert_eq!(
            with("Content-Length: x\r\n").unwrap_err(),
            ParseError::BadContentLength
        );
        assert_eq!(
            with("Content-Length: 1\r\nl: 2\r\n").unwrap_err(),
            ParseError::ConflictingContentLength
        );
        assert_eq!(
            with("Max-Forwards: 256\r\n").unwrap_err(),
            ParseError::BadMaxForwards
        );
        assert_eq!(
            with("Call-ID: y\r\n").unwrap_err(),
            ParseError::DuplicateHeader("Call-ID")
        );
        assert_eq!(
            with("Content-Length: 10\r\n").unwrap_err(),
            ParseError::TruncatedBody {
                expected: 10,
                got: 0
            }
        );
        assert!(with("").is_ok());
        let no_via = base.replace("Via: SIP/2.0/UDP h\r\n", "");
        assert_eq!(
            parse(&format!("{no_via}\r\n")).unwrap_err(),
            ParseError::MissingHeader("Via")
        );
        let bad_cseq = base.replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE");
        assert_eq!(
            parse(&format!("{bad_cseq}\r\n")).unwrap_err(),
            ParseError::CSeqMethodMismatch
        );
    }

    #[test]
    fn limits() {
        let l = Limits {
            max_headers: 3,
            ..Limits::default()
        };
        assert_eq!(
            Message::parse_with_limits(Bytes::from_static(INVITE.as_bytes()), &l).unwrap_err(),
            ParseError::TooManyHeaders(3)
        );
        let l = Limits {
            max_message_bytes: 10,
            ..Limits::default()
        };
        assert!(matches!(
            Message::parse_with_limits(Bytes::from_static(INVITE.as_bytes()), &l).unwrap_err(),
            ParseError::TooLarge {
                what: LimitKind::Message,
                ..
            }
        ));
        let l = Limits {
            max_body_bytes: 3,
            ..Limits::default()
        };
        assert!(matches!(
            Message::parse_with_limits(Bytes::from_static(INVITE.as_bytes()), &l).unwrap_err(),
            ParseError::TooLarge {
                what: LimitKind::Body,
                ..
            }
        ));
        let l = Limits {
            max_header_bytes: 100,
            ..Limits::default()
        };
        assert!(matches!(
            Message::parse_with_limits(Bytes::from_static(INVITE.as_bytes()), &l).unwrap_err(),
            ParseError::TooLarge {
                what: LimitKind::Headers,
                ..
            }
        ));
    }
}
