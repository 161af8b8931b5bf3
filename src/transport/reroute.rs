//! RFC 3261 §18.1.1: a request larger than the UDP threshold (1300 bytes when the path
//! MTU is unknown) for a UDP target is sent over TCP instead, with the transport of the
//! top Via (ours) rewritten. Pure.

use bytes::Bytes;

use crate::wire::{EditError, Message};
use crate::TransportKind;

/// True when `bytes` start a request (not a response), without a full parse.
pub(super) fn looks_like_request(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(bytes.len());
    let b = bytes.get(start..).unwrap_or(&[]);
    !b.is_empty() && !b.get(..4).is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
}

/// Rewrites the transport token of the top Via of `msg` to `to`, keeping everything else
/// (sent-by, parameters) as written.
pub(super) fn rewrite_top_via(msg: &Message, to: TransportKind) -> Result<Bytes, EditError> {
    let via = msg.top_via()?;
    let raw = via.raw;
    let t = via.transport_raw.as_bytes();
    let offset = (t.as_ptr() as usize).wrapping_sub(raw.as_ptr() as usize);
    let after = raw
        .get(offset.saturating_add(t.len())..)
        .filter(|_| offset <= raw.len())
        .ok_or(EditError::BadValue("Via"))?;
    let after = std::str::from_utf8(after).map_err(|_| EditError::BadValue("Via"))?;
    let value = format!("SIP/2.0/{}{}", to.via_token(), after);
    let mut ed = msg.edit();
    ed.pop_via()?;
    ed.prepend_via_value(&value)?;
    ed.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_the_top_via() {
        let m = "MESSAGE sip:b@192.0.2.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.2:5070;branch=z9hG4bKa;rport, SIP/2.0/UDP 192.0.2.3;branch=z9hG4bKb\r\n\
Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKc\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n";
        let msg = Message::parse(Bytes::from_static(m.as_bytes())).unwrap();
        let out = rewrite_top_via(&msg, TransportKind::Tcp).unwrap();
        let o = Message::parse(out).unwrap();
        let vias: Vec<String> = o
            .vias()
            .map(|v| String::from_utf8(v.unwrap().raw.to_vec()).unwrap())
            .collect();
        assert_eq!(
            vias,
            [
                "SIP/2.0/TCP 192.0.2.2:5070;branch=z9hG4bKa;rport",
                "SIP/2.0/UDP 192.0.2.3;branch=z9hG4bKb",
                "SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKc"
            ]
        );
    }

    #[test]
    fn request_detection() {
        assert!(looks_like_request(b"INVITE sip:x SIP/2.0\r\n"));
        assert!(!looks_like_request(b"SIP/2.0 200 OK\r\n"));
        assert!(!looks_like_request(b"\r\n"));
    }
}
