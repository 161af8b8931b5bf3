//! The work each SIP library does in the parse benchmarks, shared by `benches/parse.rs`
//! (criterion + side-by-side timing) and `examples/parse_count.rs` (callgrind).
//!
//! Two workloads per message:
//! - full parse: the library's message parser, then typed top Via (branch, sent-by),
//!   From tag, To tag, Call-ID and CSeq — what a transaction layer reads on every
//!   message, and what sipwire's `Message::parse` validates anyway;
//! - framing + top Via: cut the message off a byte stream and read the top Via branch
//!   and sent-by (what a transport needs before handing a message up). rsip has no
//!   framer: its parser on the complete message stands in; ezk-sip-types' `PullParser`
//!   finds the head end and Content-Length the way its stream decoder does.
#![allow(dead_code)]

use bytes::Bytes;

/// The benchmark messages: (name, bytes).
pub const MESSAGES: [(&str, &[u8]); 4] = [
    ("invite-10h", include_bytes!("../data/invite.sip")),
    (
        "ims-invite-30h-sdp",
        include_bytes!("../data/ims_invite.sip"),
    ),
    ("200-ok", include_bytes!("../data/ok200.sip")),
    ("register", include_bytes!("../data/register.sip")),
];

/// The libraries compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lib {
    /// This crate.
    Sipwire,
    /// rsip 0.4.
    Rsip,
    /// ezk-sip-types 0.6.
    Ezk,
}

impl Lib {
    /// All libraries, sipwire first.
    pub const ALL: [Lib; 3] = [Lib::Sipwire, Lib::Rsip, Lib::Ezk];

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Lib::Sipwire => "sipwire",
            Lib::Rsip => "rsip",
            Lib::Ezk => "ezk-sip-types",
        }
    }
}

/// The two workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Parse plus typed access to the transaction key headers.
    Full,
    /// Stream framing plus top Via branch and sent-by.
    FrameTopVia,
}

impl Workload {
    /// Both workloads.
    pub const ALL: [Workload; 2] = [Workload::Full, Workload::FrameTopVia];

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Full => "full-parse",
            Workload::FrameTopVia => "frame+top-via",
        }
    }
}

/// Runs one workload once; returns a number derived from the result (kept alive by the
/// caller with `black_box`), or `None` if the library refused the message.
pub fn run(lib: Lib, work: Workload, msg: &Bytes) -> Option<usize> {
    match (lib, work) {
        (Lib::Sipwire, Workload::Full) => sipwire_full(msg),
        (Lib::Sipwire, Workload::FrameTopVia) => sipwire_frame(msg),
        (Lib::Rsip, Workload::Full) => rsip_full(msg),
        (Lib::Rsip, Workload::FrameTopVia) => rsip_top_via(msg),
        (Lib::Ezk, Workload::Full) => ezk_full(msg),
        (Lib::Ezk, Workload::FrameTopVia) => ezk_top_via(msg),
    }
}

fn sipwire_full(msg: &Bytes) -> Option<usize> {
    use sipwire::wire::Message;
    let m = Message::parse(msg.clone()).ok()?;
    let via = m.top_via().ok()?;
    let n = via.branch.map_or(0, str::len) + host_len(&via) + via.port.unwrap_or(0) as usize;
    let tags = m.from_tag().map_or(0, str::len) + m.to_tag().map_or(0, str::len);
    Some(n + tags + m.call_id().len() + m.cseq().seq as usize)
}

thread_local! {
    /// One framer, as on a long-lived connection.
    static FRAMER: std::cell::RefCell<sipwire::wire::StreamFramer> =
        std::cell::RefCell::new(sipwire::wire::StreamFramer::new(Default::default()));
}

fn sipwire_frame(msg: &Bytes) -> Option<usize> {
    use sipwire::wire::{Frame, Via};
    FRAMER.with_borrow_mut(|framer| {
        framer.push(msg);
        let Ok(Some(Frame::Message(bytes))) = framer.next_frame() else {
            return None;
        };
        let via = Via::peek_top(&bytes).ok()?;
        Some(via.branch.map_or(0, str::len) + via.port.unwrap_or(0) as usize + host_len(&via))
    })
}

fn host_len(via: &sipwire::wire::Via<'_>) -> usize {
    match &via.host {
        sipwire::wire::Host::Name(n) => n.len(),
        sipwire::wire::Host::Ipv4(_) => 4,
        sipwire::wire::Host::Ipv6(_) => 16,
    }
}

fn rsip_full(msg: &Bytes) -> Option<usize> {
    use rsip::prelude::*;
    let m = rsip::SipMessage::try_from(msg.clone()).ok()?;
    let via = m.via_header().ok()?.typed().ok()?;
    let n = rsip_via_len(&via);
    let from = m.from_header().ok()?.typed().ok()?;
    let to = m.to_header().ok()?.typed().ok()?;
    let tags = from.tag().map_or(0, |t| t.value().len()) + to.tag().map_or(0, |t| t.value().len());
    let call_id = m.call_id_header().ok()?.value().len();
    let cseq = m.cseq_header().ok()?.typed().ok()?;
    Some(n + tags + call_id + cseq.seq as usize)
}

fn rsip_top_via(msg: &Bytes) -> Option<usize> {
    use rsip::prelude::*;
    let m = rsip::SipMessage::try_from(msg.clone()).ok()?;
    let via = m.via_header().ok()?.typed().ok()?;
    Some(rsip_via_len(&via))
}

fn rsip_via_len(via: &rsip::typed::Via) -> usize {
    let hp = &via.sent_by().host_with_port;
    let host = match &hp.host {
        rsip::Host::Domain(d) => d.value().len(),
        rsip::Host::IpAddr(_) => 16,
    };
    let port = hp.port.as_ref().map_or(0, |p| usize::from(*p.value()));
    via.branch().map_or(0, |b| b.value().len()) + host + port
}

/// ezk-sip-types' message decoding (as its stream decoder does it): lines with
/// `PullParser`, the start line and each header line parsed, headers collected, the body
/// cut at Content-Length.
fn ezk_decode(
    buf: &Bytes,
) -> Option<(
    ezk_sip_types::msg::MessageLine,
    ezk_sip_types::Headers,
    Bytes,
)> {
    use ezk_sip_types::header::typed::ContentLength;
    use ezk_sip_types::msg::{Line, MessageLine, PullParser};
    use ezk_sip_types::parse::Parse;
    let mut parser = PullParser::new(buf, 0);
    let first = std::str::from_utf8(parser.next()?.ok()?).ok()?;
    let (_, line) = MessageLine::parse(buf)(first).ok()?;
    let mut headers = ezk_sip_types::Headers::with_capacity(16);
    for item in &mut parser {
        let text = std::str::from_utf8(item.ok()?).ok()?;
        let (_, l) = Line::parse(buf, text).ok()?;
        headers.insert(l.name, l.value);
    }
    let head_end = parser.head_end();
    let cl: ContentLength = headers.get_named().ok()?;
    let body = buf.get(head_end..head_end.checked_add(cl.0)?)?;
    let body = buf.slice_ref(body);
    Some((line, headers, body))
}

fn ezk_via(headers: &ezk_sip_types::Headers) -> Option<usize> {
    use ezk_sip_types::header::typed::Via;
    let via: Via = headers.get_named().ok()?;
    let branch = via.params.get_val("branch").map_or(0, |b| b.len());
    Some(branch + via.sent_by.port.unwrap_or(0) as usize + via.transport.len())
}

fn ezk_full(msg: &Bytes) -> Option<usize> {
    use ezk_sip_types::header::typed::{CSeq, CallID, FromTo};
    use ezk_sip_types::Name;
    let (_, headers, body) = ezk_decode(msg)?;
    let n = ezk_via(&headers)?;
    let from: FromTo = headers.get(Name::FROM).ok()?;
    let to: FromTo = headers.get(Name::TO).ok()?;
    let call_id: CallID = headers.get_named().ok()?;
    let cseq: CSeq = headers.get_named().ok()?;
    let tags = from.tag.map_or(0, |t| t.len()) + to.tag.map_or(0, |t| t.len());
    Some(n + tags + call_id.0.len() + cseq.cseq as usize + body.len())
}

fn ezk_top_via(msg: &Bytes) -> Option<usize> {
    let (_, headers, body) = ezk_decode(msg)?;
    Some(ezk_via(&headers)? + body.len())
}
