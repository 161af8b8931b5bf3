//! SIP messages for the tests: request texts built from one template ([`Request`]), the
//! shapes the tests send (a UA's request between two addresses, a request as a proxy forwards
//! it, a forged `;alias` claim), and the routing helpers of in-dialog requests (RFC 3261 §12,
//! §16.12).

use bytes::Bytes;
use sipwire::resolve::{Scheme, SipTarget};
use sipwire::wire::Message;
use std::net::SocketAddr;

/// A request's text, field by field. `To` repeats the Request-URI.
pub struct Request<'a> {
    pub method: &'a str,
    pub ruri: &'a str,
    /// The Via value after `SIP/2.0/`: transport, sent-by and parameters.
    pub via: &'a str,
    /// The From value (name-addr and tag).
    pub from: &'a str,
    pub call_id: &'a str,
    pub cseq: u32,
    /// Length of the body (`x` repeated).
    pub body_len: usize,
}

impl Request<'_> {
    pub fn text(&self) -> String {
        let Request {
            method,
            ruri,
            via,
            from,
            call_id,
            cseq,
            body_len,
        } = self;
        format!(
            "{method} {ruri} SIP/2.0\r\n\
Via: SIP/2.0/{via}\r\n\
Max-Forwards: 70\r\n\
From: {from}\r\n\
To: <{ruri}>\r\n\
Call-ID: {call_id}\r\n\
CSeq: {cseq} {method}\r\n\
Content-Length: {body_len}\r\n\r\n{body}",
            body = "x".repeat(*body_len),
        )
    }
}

/// Formats an address as a Via sent-by / URI host:port.
pub fn hostport(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v) => format!("{}:{}", v.ip(), v.port()),
        SocketAddr::V6(v) => format!("[{}]:{}", v.ip(), v.port()),
    }
}

/// A UA's request from `from` (Via sent-by, `rport`) over `transport` to `sip:<to>`, with a
/// body of `body_len` bytes. Branch `z9hG4bK<branch>`, Call-ID `<branch>@test`, From tag
/// `t<branch>`.
pub fn request(
    method: &str,
    transport: &str,
    from: SocketAddr,
    to: SocketAddr,
    branch: &str,
    body_len: usize,
) -> String {
    let (from, to) = (hostport(from), hostport(to));
    Request {
        method,
        ruri: &format!("sip:{to}"),
        via: &format!("{transport} {from};branch=z9hG4bK{branch};rport"),
        from: &format!("<sip:test@{from}>;tag=t{branch}"),
        call_id: &format!("{branch}@test"),
        cseq: 1,
        body_len,
    }
    .text()
}

/// [`request`] of an OPTIONS without body.
pub fn options(transport: &str, from: SocketAddr, to: SocketAddr, branch: &str) -> String {
    request("OPTIONS", transport, from, to, branch, 0)
}

/// A request as forwarded by a proxy: the UA's Via (`ua.<from_domain>`, TLS) below the one
/// the endpoint adds. Branch `z9hG4bKua<call>`, From `alice@<from_domain>`.
pub fn forwarded(method: &str, ruri: &str, from_domain: &str, call: &str, cseq: u32) -> Message {
    let raw = Request {
        method,
        ruri,
        via: &format!("TLS ua.{from_domain};branch=z9hG4bKua{call}"),
        from: &format!("<sip:alice@{from_domain}>;tag=a{call}"),
        call_id: call,
        cseq,
        body_len: 0,
    }
    .text();
    Message::parse(Bytes::from(raw)).expect("test request parses")
}

/// An OPTIONS to `ruri` whose top Via claims `sent_by` with `;alias` (RFC 5923 §6) over
/// `transport`, from the AOR `from`: what an aliasing peer (or an attacker posing as one)
/// sends first. Branch `z9hG4bK<call>`, Call-ID `<call>`.
pub fn alias_options(transport: &str, sent_by: &str, ruri: &str, from: &str, call: &str) -> Bytes {
    Bytes::from(
        Request {
            method: "OPTIONS",
            ruri,
            via: &format!("{transport} {sent_by};branch=z9hG4bK{call};alias"),
            from: &format!("<{from}>;tag=a{call}"),
            call_id: call,
            cseq: 1,
            body_len: 0,
        }
        .text(),
    )
}

pub fn parse(b: &[u8]) -> Message {
    Message::parse(Bytes::copy_from_slice(b)).expect("parse")
}

/// `sips:<domain>` as an RFC 3263 target.
pub fn sips(domain: &str) -> SipTarget {
    SipTarget::new(Scheme::Sips, domain, None, None).expect("target")
}

/// The URI a request goes to next (RFC 3261 §8.1.2, §16.12): the topmost Route value when
/// there is one (loose routing, `;lr`), else the Request-URI, reduced to what RFC 3263 needs.
/// Its host is the AUS the next hop's certificate (or alias row) must prove.
pub fn next_hop(msg: &Message) -> SipTarget {
    let uri = match msg.routes().next() {
        Some(r) => {
            let r = r.expect("Route value parses");
            r.sip_uri().expect("Route URI is a SIP URI")
        }
        None => msg
            .request_sip_uri()
            .expect("a request")
            .expect("Request-URI is a SIP URI"),
    };
    sip_target(&uri)
}

/// A wire URI as an RFC 3263 target (scheme, host, port, `transport` parameter).
pub fn sip_target(uri: &sipwire::wire::Uri<'_>) -> SipTarget {
    let scheme = match uri.scheme {
        sipwire::wire::Scheme::Sip => Scheme::Sip,
        sipwire::wire::Scheme::Sips => Scheme::Sips,
    };
    SipTarget::new(scheme, uri.host_raw, uri.port, uri.transport_param()).expect("target")
}

/// The route set a UAS builds from a dialog-creating request (RFC 3261 §12.1.1): the
/// Record-Route URIs in the order they appear.
pub fn uas_route_set(msg: &Message) -> Vec<String> {
    msg.record_routes()
        .map(|r| r.expect("Record-Route value parses").uri.to_owned())
        .collect()
}

/// `msg` with `Record-Route: <uri>` on top (what a record-routing proxy adds, §16.6 step 4).
pub fn with_record_route(msg: &Message, uri: &str) -> Message {
    let mut ed = msg.edit();
    ed.prepend_record_route(uri).expect("Record-Route");
    ed.finish_message().expect("edited request parses")
}

/// An in-dialog request (BYE, re-INVITE) whose Route header field holds `route_set`, top first
/// (RFC 3261 §12.2.1.1).
pub fn in_dialog(
    method: &str,
    ruri: &str,
    from_domain: &str,
    call: &str,
    cseq: u32,
    route_set: &[String],
) -> Message {
    let mut msg = forwarded(method, ruri, from_domain, call, cseq);
    // Bottom value first, each on top of the previous one.
    for uri in route_set.iter().rev() {
        let mut ed = msg.edit();
        ed.prepend_route(uri).expect("Route");
        msg = ed.finish_message().expect("in-dialog request parses");
    }
    msg
}
