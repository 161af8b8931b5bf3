//! A response built from a request with its index written alongside its bytes: a proxy or
//! UAS answering a request (a stateless 200 to OPTIONS, a 4xx/5xx) would otherwise write
//! the response and then parse it again, which cost more than writing it.

use bytes::{BufMut, Bytes, BytesMut};

use super::{HeaderField, HeaderKind, Message, Span, StartKind, TopViaSpans};

/// What is echoed in a response and where: the request's value span and the response's.
struct Moved {
    old: Span,
    new: Span,
}

impl Moved {
    /// `inner` (a span inside the old value) at its place in the new value.
    fn span(&self, inner: Span) -> Option<Span> {
        if inner.start < self.old.start || inner.end > self.old.end {
            return None;
        }
        Some(Span {
            start: self.new.start + (inner.start - self.old.start),
            end: self.new.start + (inner.end - self.old.start),
        })
    }
}

/// Writes header lines and records them in the index.
struct Writer {
    out: BytesMut,
    headers: Vec<HeaderField>,
}

impl Writer {
    fn pos(&self) -> Option<u32> {
        u32::try_from(self.out.len()).ok()
    }

    /// `name: value[suffix]\r\n`; the value's span (suffix included).
    fn line(&mut self, kind: HeaderKind, name: &str, value: &[&[u8]]) -> Option<Span> {
        let line_start = self.pos()?;
        self.out.put_slice(name.as_bytes());
        let name_end = self.pos()?;
        self.out.put_slice(b": ");
        let value_start = self.pos()?;
        for part in value {
            self.out.put_slice(part);
        }
        let value_end = self.pos()?;
        self.out.put_slice(b"\r\n");
        let value = Span {
            start: value_start,
            end: value_end,
        };
        self.headers.push(HeaderField {
            kind,
            name: Span {
                start: line_start,
                end: name_end,
            },
            value,
            line: Span {
                start: line_start,
                end: self.pos()?,
            },
        });
        Some(value)
    }

    /// A header line of the request, copied as it is.
    fn echo(&mut self, req: &Message, h: &HeaderField, name: &str) -> Option<Moved> {
        let value = h.value.of(&req.buf);
        let new = self.line(h.kind, name, &[value])?;
        Some(Moved { old: h.value, new })
    }
}

impl Message {
    /// The response `code reason` to this request (RFC 3261 §8.2.6.2: Via, From, To with a
    /// tag added when it has none, Call-ID and CSeq echoed; then `extra` header fields and
    /// `Content-Length: 0`), parsed index included. `None` when an echoed value would not
    /// be copied as it is (a folded line) or the request's index lacks a part: the caller
    /// writes and parses instead. `to_tag` is the tag to add (the caller derives it).
    pub(crate) fn response_indexed(
        &self,
        code: u16,
        reason: &str,
        to_tag: &str,
        extra: &[(&str, &str)],
    ) -> Option<Message> {
        if !(100..=699).contains(&code)
            || reason.bytes().any(|c| c == b'\r' || c == b'\n')
            || self.headers.iter().any(|h| {
                matches!(
                    h.kind,
                    HeaderKind::Via
                        | HeaderKind::From
                        | HeaderKind::To
                        | HeaderKind::CallId
                        | HeaderKind::CSeq
                ) && h
                    .value
                    .of(&self.buf)
                    .iter()
                    .any(|&c| c == b'\r' || c == b'\n')
            })
        {
            return None;
        }
        let mut w = Writer {
            out: BytesMut::with_capacity(self.head_len as usize + 64),
            headers: Vec::with_capacity(8 + extra.len()),
        };
        w.out.put_slice(b"SIP/2.0 ");
        w.out.put_slice(itoa3(code).as_slice());
        w.out.put_slice(b" ");
        let reason_start = w.pos()?;
        w.out.put_slice(reason.as_bytes());
        let sl_end = w.pos()?;
        w.out.put_slice(b"\r\n");

        let mut top_via_moved = None;
        for h in self.headers.iter().filter(|h| h.kind == HeaderKind::Via) {
            let m = w.echo(self, h, "Via")?;
            top_via_moved.get_or_insert(m);
        }
        let vias = u32::try_from(w.headers.len()).ok()?;
        let from = w.echo(self, self.headers.get(self.from_idx as usize)?, "From")?;
        let to_field = self.headers.get(self.to_idx as usize)?;
        let to_tag_span = match self.to_tag {
            Some(tag) => Some(w.echo(self, to_field, "To")?.span(tag)?),
            None if code > 100 => {
                let old = to_field.value.of(&self.buf);
                let new = w.line(HeaderKind::To, "To", &[old, b";tag=", to_tag.as_bytes()])?;
                let start = new.end - u32::try_from(to_tag.len()).ok()?;
                Some(Span {
                    start,
                    end: new.end,
                })
            }
            None => {
                w.echo(self, to_field, "To")?;
                None
            }
        };
        let call_field = self.headers.iter().find(|h| h.kind == HeaderKind::CallId)?;
        let call = w.echo(self, call_field, "Call-ID")?;
        let cseq_field = self.headers.iter().find(|h| h.kind == HeaderKind::CSeq)?;
        let cseq = w.echo(self, cseq_field, "CSeq")?;
        for (name, value) in extra {
            if value.bytes().any(|c| c == b'\r' || c == b'\n') {
                return None;
            }
            w.line(
                HeaderKind::from_name(name.as_bytes()),
                name,
                &[value.as_bytes()],
            )?;
        }
        w.line(HeaderKind::ContentLength, "Content-Length", &[b"0"])?;
        w.out.put_slice(b"\r\n");
        let head_len = w.pos()?;

        let top_via = match (self.top_via, top_via_moved) {
            (Some(tv), Some(m)) => {
                let start = m.span(Span {
                    start: tv.start,
                    end: tv.start + u32::from(tv.len),
                })?;
                Some(TopViaSpans {
                    start: start.start,
                    ..tv
                })
            }
            _ => None,
        };
        let from_tag = match self.from_tag {
            Some(t) => Some(from.span(t)?),
            None => None,
        };
        let buf: Bytes = w.out.freeze();
        Some(Message {
            buf,
            start: StartKind::Response {
                code,
                reason: Span {
                    start: reason_start,
                    end: sl_end,
                },
            },
            start_line: Span {
                start: 0,
                end: sl_end,
            },
            headers: w.headers,
            head_len,
            content_length: Some(0),
            max_forwards: None,
            cseq_seq: self.cseq_seq,
            cseq_method: cseq.span(self.cseq_method)?,
            call_id: call.span(self.call_id)?,
            via_idx: 0,
            from_idx: vias,
            to_idx: vias + 1,
            from_tag,
            to_tag: to_tag_span,
            top_via,
        })
    }
}

/// A status code's three digits.
fn itoa3(code: u16) -> [u8; 3] {
    [
        b'0' + (code / 100 % 10) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Message {
        Message::parse(Bytes::from(text.replace('\n', "\r\n"))).unwrap()
    }

    const OPTIONS: &str = "OPTIONS sip:192.0.2.1 SIP/2.0
v: SIP/2.0/UDP 192.0.2.9:5070;branch=z9hG4bKa;rport=5070;received=192.0.2.9
Via: SIP/2.0/TCP 198.51.100.1;branch=z9hG4bKb, SIP/2.0/UDP 198.51.100.2;branch=z9hG4bKc
Max-Forwards: 70
f: <sip:a@example.com>;tag=ft
To: <sip:192.0.2.1>
i: call-1@192.0.2.9
CSeq: 7 OPTIONS
Content-Length: 0

";

    fn same_as_parsed(m: &Message) {
        let parsed = Message::parse(m.buf.clone()).unwrap();
        assert_eq!(format!("{m:?}"), format!("{parsed:?}"));
    }

    #[test]
    fn the_index_is_the_one_a_parse_gives() {
        let req = request(OPTIONS);
        let r = req
            .response_indexed(200, "OK", "00aa", &[("Retry-After", "5")])
            .unwrap();
        same_as_parsed(&r);
        assert_eq!(r.status_code(), Some(200));
        assert_eq!(r.to_tag(), Some("00aa"));
        assert_eq!(r.from_tag(), Some("ft"));
        assert_eq!(r.call_id(), "call-1@192.0.2.9");
        assert_eq!(r.vias().count(), 3);
        assert_eq!(r.top_via().unwrap().branch, Some("z9hG4bKa"));
        assert_eq!(r.header("Retry-After"), Some(&b"5"[..]));
        // A To tag already there is kept; a 100 gets none.
        let req = request(&OPTIONS.replace("To: <sip:192.0.2.1>", "To: <sip:192.0.2.1>;tag=x"));
        let r = req.response_indexed(404, "Not Found", "00aa", &[]).unwrap();
        same_as_parsed(&r);
        assert_eq!(r.to_tag(), Some("x"));
        let r = request(OPTIONS)
            .response_indexed(100, "Trying", "00aa", &[])
            .unwrap();
        same_as_parsed(&r);
        assert_eq!(r.to_tag(), None);
    }

    #[test]
    fn a_folded_value_is_left_to_the_writer_and_parser() {
        let folded = OPTIONS.replace(
            "f: <sip:a@example.com>;tag=ft",
            "f: <sip:a@example.com>\n ;tag=ft",
        );
        assert!(request(&folded)
            .response_indexed(200, "OK", "t", &[])
            .is_none());
    }
}
