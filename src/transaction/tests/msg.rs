//! Messages for the tests.

use bytes::Bytes;

use crate::wire::response::{default_reason, response_to};
use crate::wire::{HeaderKind, Message};
use crate::TransportKind;

/// Parses a message written in a test.
pub(crate) fn parse(s: &str) -> Message {
    Message::parse(Bytes::from(s.to_owned())).unwrap()
}

/// A request from alice to bob with the given top Via value.
pub(crate) fn request_with_via(method: &str, via: &str) -> Message {
    parse(&format!(
        "{method} sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: {via}\r\n\
Max-Forwards: 70\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=a1\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: call-1@atlanta.example.com\r\n\
CSeq: 1 {method}\r\n\
Content-Length: 0\r\n\r\n"
    ))
}

/// A request over `transport` with the given branch.
pub(crate) fn request(method: &str, branch: &str, transport: TransportKind) -> Message {
    request_with_via(
        method,
        &format!(
            "SIP/2.0/{} client.atlanta.example.com:5060;branch={branch}",
            transport.via_token()
        ),
    )
}

/// An INVITE over UDP with the given branch.
pub(crate) fn invite(branch: &str) -> Message {
    request("INVITE", branch, TransportKind::Udp)
}

/// A response to `request` (with a To tag for codes above 100).
pub(crate) fn response(request: &Message, code: u16) -> Message {
    Message::parse(response_to(request, code, default_reason(code))).unwrap()
}

fn value(m: &Message, kind: HeaderKind) -> String {
    m.headers()
        .find(|h| h.kind == kind)
        .and_then(|h| h.value_str())
        .unwrap()
        .to_owned()
}

/// The CANCEL for `invite` (§9.1): same Request-URI, Call-ID, From, To, CSeq number and
/// top Via.
pub(crate) fn cancel_for(invite: &Message) -> Message {
    parse(&format!(
        "CANCEL {} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\n\
Call-ID: {}\r\nCSeq: {} CANCEL\r\nContent-Length: 0\r\n\r\n",
        invite.request_uri().unwrap(),
        std::str::from_utf8(invite.top_via().unwrap().raw).unwrap(),
        value(invite, HeaderKind::From),
        value(invite, HeaderKind::To),
        invite.call_id(),
        invite.cseq().seq,
    ))
}

/// An ACK for `response` to `invite` with the given top Via branch: with a new branch it
/// is the TU's ACK for a 2xx (§13.2.2.4); with the INVITE's branch it imitates a peer
/// that reuses it.
pub(crate) fn ack_with_branch(invite: &Message, response: &Message, branch: &str) -> Message {
    let via = invite.top_via().unwrap();
    parse(&format!(
        "ACK {} SIP/2.0\r\nVia: SIP/2.0/{} {}{};branch={branch}\r\nMax-Forwards: 70\r\n\
From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} ACK\r\nContent-Length: 0\r\n\r\n",
        invite.request_uri().unwrap(),
        via.transport.as_str(),
        via.host_raw,
        via.port.map(|p| format!(":{p}")).unwrap_or_default(),
        value(invite, HeaderKind::From),
        value(response, HeaderKind::To),
        invite.call_id(),
        invite.cseq().seq,
    ))
}

/// A short name for logs and assertions: the method, or the code and CSeq method.
pub(crate) fn label(m: &Message) -> String {
    match m.status_code() {
        Some(code) => format!("{code} {}", m.cseq().method),
        None => m.method().unwrap_or("?").to_owned(),
    }
}
