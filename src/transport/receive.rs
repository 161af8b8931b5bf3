//! What the drivers do with one received message, as a pure function: parse under the
//! limits, stamp `received`/`rport` on requests (RFC 3261 §18.2.1, RFC 3581 §4, on every
//! transport), answer what cannot be parsed (400/505/513 to requests; bad responses are
//! discarded, RFC 3261 §18.1.2 / §18.3).

use std::net::SocketAddr;

use bytes::Bytes;

use crate::wire::response::error_response;
use crate::wire::{decode_datagram, Datagram, EditError, Limits, Message, ParseError};

/// The outcome for one received unit.
#[derive(Debug)]
pub enum Inbound {
    /// Deliver this message upward (requests already carry received/rport).
    Deliver(Message),
    /// Send these bytes back to the source (an error response).
    Reply(Bytes),
    /// A STUN request (UDP only): answer with a STUN Binding Success Response (the UDP driver does).
    Stun(Bytes),
    /// A keep-alive datagram: nothing to do.
    KeepAlive,
    /// Nothing to deliver or answer; the reason is a metrics label.
    Discard(&'static str),
}

/// Adds `received` and fills `rport` in the top Via of a request from `source`.
pub fn stamp_request(msg: Message, source: SocketAddr) -> Result<Message, EditError> {
    let mut ed = msg.edit();
    if ed.set_received(source)? {
        ed.finish_message()
    } else {
        drop(ed);
        Ok(msg)
    }
}

fn on_parsed(raw: &Bytes, msg: Message, source: SocketAddr) -> Inbound {
    if msg.is_response() {
        return Inbound::Deliver(msg);
    }
    match stamp_request(msg, source) {
        Ok(m) => Inbound::Deliver(m),
        Err(e) => {
            let pe = match e {
                EditError::Parse(p) => p,
                _ => ParseError::BadVia("cannot add received"),
            };
            on_error(raw, &pe)
        }
    }
}

fn on_error(raw: &[u8], err: &ParseError) -> Inbound {
    match error_response(raw, err) {
        Some(r) => Inbound::Reply(r),
        None => Inbound::Discard("parse_error"),
    }
}

/// One complete message cut by the stream framer.
pub fn stream_message(raw: Bytes, source: SocketAddr, limits: &Limits) -> Inbound {
    match Message::parse_with_limits(raw.clone(), limits) {
        Ok(m) => on_parsed(&raw, m, source),
        Err(e) => on_error(&raw, &e),
    }
}

/// One UDP datagram.
pub fn datagram(raw: Bytes, source: SocketAddr, limits: &Limits) -> Inbound {
    match decode_datagram(raw.clone(), limits) {
        Ok(Datagram::Message(m)) => on_parsed(&raw, m, source),
        Ok(Datagram::KeepAlive) => Inbound::KeepAlive,
        Ok(Datagram::Stun(b)) => Inbound::Stun(b),
        Err(e) => on_error(&raw, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &str = "OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bK1\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn requests_are_stamped() {
        let src: SocketAddr = "192.0.2.9:40000".parse().unwrap();
        let Inbound::Deliver(m) =
            datagram(Bytes::from_static(REQ.as_bytes()), src, &Limits::default())
        else {
            panic!("not delivered")
        };
        let via = m.top_via().unwrap();
        assert_eq!(via.received, Some("192.0.2.9".parse().unwrap()));
        assert_eq!(via.rport, Some(crate::wire::Rport::Port(40000)));
    }

    #[test]
    fn bad_request_is_answered_bad_response_discarded() {
        let src: SocketAddr = "192.0.2.9:40000".parse().unwrap();
        let bad = REQ.replace("CSeq: 1 OPTIONS", "CSeq: x OPTIONS");
        let Inbound::Reply(r) = stream_message(Bytes::from(bad), src, &Limits::default()) else {
            panic!("no reply")
        };
        assert!(r.starts_with(b"SIP/2.0 400 "));
        let resp = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\nCSeq: x\r\n\r\n";
        assert!(matches!(
            stream_message(Bytes::from_static(resp.as_bytes()), src, &Limits::default()),
            Inbound::Discard(_)
        ));
    }

    #[test]
    fn keepalive_and_stun() {
        let src: SocketAddr = "192.0.2.9:40000".parse().unwrap();
        assert!(matches!(
            datagram(Bytes::from_static(b"\r\n\r\n"), src, &Limits::default()),
            Inbound::KeepAlive
        ));
        assert!(matches!(
            datagram(Bytes::from_static(&[0, 1, 0, 0]), src, &Limits::default()),
            Inbound::Stun(_)
        ));
    }
}
