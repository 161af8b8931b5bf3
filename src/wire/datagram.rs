//! Decoding of one UDP datagram (RFC 3261 §18.3, RFC 5626 §4.4.2).
//!
//! Bytes after Content-Length are discarded; a body shorter than Content-Length is
//! [`ParseError::TruncatedBody`] (answer 400 to a request with
//! [`super::response::error_response`], discard a response); a missing Content-Length
//! means the body is the rest of the datagram.

use bytes::Bytes;

use super::error::{LimitKind, ParseError};
use super::limits::Limits;
use super::message::Message;

/// What a datagram carried.
#[derive(Debug, Clone)]
pub enum Datagram {
    /// A SIP message.
    Message(Message),
    /// Only CR/LF bytes: a keep-alive some peers send over UDP. Nothing to answer.
    KeepAlive,
    /// A STUN message (first byte 0 or 1, RFC 5626 §8 / RFC 5389): hand it to the STUN
    /// keep-alive handler.
    Stun(Bytes),
}

/// Decodes one datagram under `limits`.
pub fn decode_datagram(data: Bytes, limits: &Limits) -> Result<Datagram, ParseError> {
    if data.len() > limits.max_message_bytes {
        return Err(ParseError::TooLarge {
            what: LimitKind::Message,
            size: data.len(),
            limit: limits.max_message_bytes,
        });
    }
    match data.first() {
        None => return Ok(Datagram::KeepAlive),
        Some(0 | 1) => return Ok(Datagram::Stun(data)),
        _ => {}
    }
    if data.iter().all(|&b| b == b'\r' || b == b'\n') {
        return Ok(Datagram::KeepAlive);
    }
    Message::parse_with_limits(data, limits).map(Datagram::Message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &str =
        "MESSAGE sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n\
To: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\n";

    fn dg(s: &str) -> Result<Datagram, ParseError> {
        decode_datagram(Bytes::copy_from_slice(s.as_bytes()), &Limits::default())
    }

    #[test]
    fn body_rules() {
        let Datagram::Message(m) =
            dg(&format!("{REQ}Content-Length: 2\r\n\r\nhi trailing")).unwrap()
        else {
            panic!("not a message")
        };
        assert_eq!(&m.body()[..], b"hi");
        let Datagram::Message(m) = dg(&format!("{REQ}\r\nrest of datagram")).unwrap() else {
            panic!("not a message")
        };
        assert_eq!(&m.body()[..], b"rest of datagram");
        assert_eq!(
            dg(&format!("{REQ}Content-Length: 20\r\n\r\nshort")).unwrap_err(),
            ParseError::TruncatedBody {
                expected: 20,
                got: 5
            }
        );
    }

    #[test]
    fn keepalives_and_stun() {
        assert!(matches!(dg("\r\n\r\n"), Ok(Datagram::KeepAlive)));
        assert!(matches!(dg(""), Ok(Datagram::KeepAlive)));
        assert!(matches!(
            decode_datagram(Bytes::from_static(&[0, 1, 0, 0]), &Limits::default()),
            Ok(Datagram::Stun(_))
        ));
    }

    #[test]
    fn too_large() {
        let big = vec![b'x'; Limits::DEFAULT_MAX_MESSAGE + 1];
        let e = decode_datagram(Bytes::from(big), &Limits::default()).unwrap_err();
        assert_eq!(e.status_code(), 513);
    }
}
