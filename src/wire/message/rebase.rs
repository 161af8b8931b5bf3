//! The index of an edited message, moved from the original's instead of parsed again.
//!
//! A proxy edits every message it forwards — `received`/`rport` on arrival (RFC 3261
//! §18.2.1), Max-Forwards, its Record-Route and Via on the way out (§16.6), the top Via or
//! Route removed (§16.7, §16.4) — and a full parse of the result cost as much as the parse
//! of the original. Here the untouched header lines keep their fields, moved by the length
//! the edits before them added; inserted lines alone are read; only the values an edit
//! reached and the index derives something from (the top Via, Max-Forwards) are read again.
//! Edits this does not cover (the start line, From, To, Call-ID, CSeq, Content-Length, the
//! body, a partial line) give `None`: the caller parses the bytes.

use bytes::Bytes;

use super::{header_field, line_end, HeaderField, Message, Span, TopViaSpans};
use crate::wire::header::{split_values, HeaderKind};
use crate::wire::lex::{is_ws, parse_digits};
use crate::wire::via::Via;

/// One replacement, in the original's coordinates: bytes `start..end` became the bytes
/// `text` of the editor's scratch buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Splice {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) text: (usize, usize),
}

impl Splice {
    /// How many bytes replace `start..end`.
    pub(crate) fn len(&self) -> usize {
        self.text.1 - self.text.0
    }

    /// How much longer the message got.
    fn delta(&self) -> isize {
        self.len() as isize - (self.end - self.start) as isize
    }
}

/// Header kinds whose values the index reads at parse time besides Via and Max-Forwards:
/// an edit of one of these (or a line of one added or removed) takes the full parse.
fn derived(kind: HeaderKind) -> bool {
    matches!(
        kind,
        HeaderKind::From
            | HeaderKind::To
            | HeaderKind::CallId
            | HeaderKind::CSeq
            | HeaderKind::ContentLength
            | HeaderKind::MaxForwards
    )
}

fn moved(x: u32, by: isize) -> Option<u32> {
    u32::try_from(x as isize + by).ok()
}

fn moved_span(sp: Span, by: isize) -> Option<Span> {
    Some(Span {
        start: moved(sp.start, by)?,
        end: moved(sp.end, by)?,
    })
}

/// How an edit changed the top Via.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ViaChange {
    None,
    /// Only inside the parameters of the top Via value (its head is as it was).
    TopParams,
    /// Anything else (a Via line added or removed, another part edited): read it again.
    Other,
}

impl Message {
    /// This message's index over `buf`, its bytes after `splices` (sorted, not
    /// overlapping, as [`crate::wire::Editor`] applies them). `buf` handed back when an edit
    /// is not one the index can follow (see the module comment): parse it instead. (Taken
    /// and handed back rather than cloned: the first clone of a new `Bytes` allocates.)
    pub(crate) fn rebased(&self, buf: Bytes, splices: &[Splice]) -> Result<Message, Bytes> {
        match self.rebased_index(&buf, splices) {
            Some(mut m) => {
                m.buf = buf;
                Ok(m)
            }
            None => Err(buf),
        }
    }

    /// [`Message::rebased`]'s index, with an empty buffer.
    fn rebased_index(&self, b: &[u8], splices: &[Splice]) -> Option<Message> {
        if b.len() > u32::MAX as usize || splices.is_empty() {
            return None;
        }
        let head = self.head_len as usize;
        // Where the header lines end (the blank line's CRLF).
        let lines_end = head.checked_sub(2)?;
        let first_line = self.start_line_end();
        let mut headers: Vec<HeaderField> = Vec::with_capacity(self.headers.len() + 4);
        let mut delta = 0isize;
        let mut remove_until = 0usize;
        let mut via = ViaChange::None;
        let mut mf_edited = false;
        let mut next = splices.iter().peekable();
        // Inserts the lines `at..at + len` of the new bytes (whole header lines).
        let insert = |headers: &mut Vec<HeaderField>, at: usize, len: usize| -> Option<bool> {
            let (mut pos, stop) = (at, at + len);
            let mut via = false;
            while pos < stop {
                let (end, nl) = line_end(b, pos).ok()?;
                let (field, after) = header_field(b, pos, end, nl).ok()?;
                if derived(field.kind) || after > stop {
                    return None;
                }
                via |= field.kind == HeaderKind::Via;
                headers.push(field);
                pos = after;
            }
            (pos == stop).then_some(via)
        };
        for (idx, h) in self.headers.iter().enumerate() {
            let (ls, le) = (h.line.start as usize, h.line.end as usize);
            // Splices at this line's start: lines inserted above it, or it removed.
            while let Some(sp) = next.next_if(|sp| sp.start <= ls) {
                if sp.start != ls || remove_until > ls || sp.start < first_line {
                    return None;
                }
                let at = usize::try_from(sp.start as isize + delta).ok()?;
                if insert(&mut headers, at, sp.len())? {
                    via = ViaChange::Other;
                }
                delta += sp.delta();
                remove_until = remove_until.max(sp.end);
            }
            if le <= remove_until {
                if derived(h.kind) {
                    return None;
                }
                if h.kind == HeaderKind::Via {
                    via = ViaChange::Other;
                }
                continue;
            }
            if ls < remove_until {
                return None;
            }
            let mut field = HeaderField {
                kind: h.kind,
                name: moved_span(h.name, delta)?,
                value: moved_span(h.value, delta)?,
                line: moved_span(h.line, delta)?,
            };
            // Splices inside this line: only inside its value.
            let mut edited = false;
            // The top Via's own parameters only (received/rport stamped)?
            let top = match self.top_via {
                Some(tv) if idx == self.via_idx as usize => Some(tv),
                _ => None,
            };
            let mut in_top_params = top.is_some();
            while let Some(sp) = next.next_if(|sp| sp.start < le) {
                if sp.start < h.value.start as usize || sp.end > h.value.end as usize {
                    return None;
                }
                if let Some(tv) = top {
                    in_top_params &= tv.params_hold(sp.start, sp.end);
                }
                let d = sp.delta();
                field.value.end = moved(field.value.end, d)?;
                field.line.end = moved(field.line.end, d)?;
                delta += d;
                edited = true;
            }
            if edited {
                let value = field.value.of(b);
                let trimmed = |c: Option<&u8>| c.map_or(true, |&c| !is_ws(c));
                if value.is_empty() || !trimmed(value.first()) || !trimmed(value.last()) {
                    return None;
                }
                match h.kind {
                    HeaderKind::Via if in_top_params && via == ViaChange::None => {
                        via = ViaChange::TopParams;
                    }
                    HeaderKind::Via => via = ViaChange::Other,
                    HeaderKind::MaxForwards => mf_edited = true,
                    k if derived(k) => return None,
                    _ => {}
                }
            }
            headers.push(field);
        }
        // Lines added after the last one.
        for sp in next {
            if sp.start != lines_end || sp.end != lines_end || remove_until > lines_end {
                return None;
            }
            let at = usize::try_from(sp.start as isize + delta).ok()?;
            if insert(&mut headers, at, sp.len())? {
                via = ViaChange::Other;
            }
            delta += sp.delta();
        }
        if remove_until > lines_end {
            return None;
        }
        self.with_headers(b, headers, splices, via, mf_edited)
    }

    /// The rest of [`Message::rebased`]: what the index derives from its header lines.
    fn with_headers(
        &self,
        b: &[u8],
        headers: Vec<HeaderField>,
        splices: &[Splice],
        via: ViaChange,
        mf_edited: bool,
    ) -> Option<Message> {
        // How far a byte of the original outside every splice moved.
        let shift = |pos: u32| -> isize {
            splices
                .iter()
                .take_while(|sp| sp.end <= pos as usize)
                .map(Splice::delta)
                .sum()
        };
        let span = |sp: Span| moved_span(sp, shift(sp.start));
        let opt = |sp: Option<Span>| match sp {
            Some(sp) => span(sp).map(Some),
            None => Some(None),
        };
        let index_of = |kind: HeaderKind| {
            headers
                .iter()
                .position(|h| h.kind == kind)
                .and_then(|i| u32::try_from(i).ok())
        };
        let via_idx = index_of(HeaderKind::Via)?;
        let top_via = match (via, self.top_via) {
            (ViaChange::None, Some(mut tv)) => {
                tv.start = moved(tv.start, shift(tv.start))?;
                Some(tv)
            }
            (ViaChange::None, None) => None,
            (ViaChange::TopParams, Some(tv)) => {
                let grown: isize = splices
                    .iter()
                    .filter(|sp| tv.params_hold(sp.start, sp.end))
                    .map(Splice::delta)
                    .sum();
                let start = moved(tv.start, shift(tv.start))?;
                let len = u16::try_from(tv.len as isize + grown).ok()?;
                Some(tv.params_edited(b, start, len)?)
            }
            _ => {
                let via = headers.get(via_idx as usize)?;
                let top = split_values(via.value.of(b)).next()?.ok()?;
                Some(TopViaSpans::new(b, &Via::parse(top).ok()?)?)
            }
        };
        let max_forwards = if mf_edited {
            let h = headers.iter().find(|h| h.kind == HeaderKind::MaxForwards)?;
            Some(parse_digits(h.value.of(b)).and_then(|v| u8::try_from(v).ok())?)
        } else {
            self.max_forwards
        };
        let total: isize = splices.iter().map(Splice::delta).sum();
        Some(Message {
            start: self.start,
            start_line: self.start_line,
            head_len: moved(self.head_len, total)?,
            content_length: self.content_length,
            max_forwards,
            cseq_seq: self.cseq_seq,
            cseq_method: span(self.cseq_method)?,
            call_id: span(self.call_id)?,
            via_idx,
            from_idx: index_of(HeaderKind::From)?,
            to_idx: index_of(HeaderKind::To)?,
            from_tag: opt(self.from_tag)?,
            to_tag: opt(self.to_tag)?,
            top_via,
            headers,
            buf: Bytes::new(),
        })
    }
}
