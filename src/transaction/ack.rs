//! The ACK an INVITE client transaction sends for a non-2xx final response (RFC 3261
//! §17.1.1.3). The ACK for a 2xx is the TU's (§13.2.2.4) and is not built here.

use bytes::{BufMut, Bytes, BytesMut};

use crate::wire::{HeaderKind, Message};

use super::error::TransactionError;

/// Appends `Name: value\r\n`, dropping any CR or LF inside the value (folded values are
/// joined; nothing can smuggle a header line in).
fn put_header(out: &mut BytesMut, name: &str, value: &[u8]) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    for piece in value.split(|&b| b == b'\r' || b == b'\n') {
        out.put_slice(piece);
    }
    out.put_slice(b"\r\n");
}

/// The ACK for `response` (3xx–6xx) to `request` (the INVITE as sent): the same
/// Request-URI, Call-ID and From as the request, its top Via as the only Via, its Route
/// headers, the CSeq number with method ACK, and the To of the response (with its tag).
pub fn ack_for_non_2xx(request: &Message, response: &Message) -> Result<Message, TransactionError> {
    let uri = request.request_uri().ok_or(TransactionError::NotARequest)?;
    if response.is_request() {
        return Err(TransactionError::NotAResponse);
    }
    let via = request.top_via().map_err(TransactionError::BadVia)?;
    let field = |m: &'_ Message, kind: HeaderKind| -> Vec<u8> {
        m.headers()
            .find(|h| h.kind == kind)
            .map(|h| h.value.to_vec())
            .unwrap_or_default()
    };
    let mut out = BytesMut::with_capacity(request.head_len().min(2048) + 64);
    out.put_slice(b"ACK ");
    out.put_slice(uri.as_bytes());
    out.put_slice(b" SIP/2.0\r\n");
    put_header(&mut out, "Via", via.raw);
    put_header(&mut out, "Max-Forwards", b"70");
    for h in request.headers().filter(|h| h.kind == HeaderKind::Route) {
        put_header(&mut out, "Route", h.value);
    }
    put_header(&mut out, "From", &field(request, HeaderKind::From));
    put_header(&mut out, "To", &field(response, HeaderKind::To));
    put_header(&mut out, "Call-ID", request.call_id().as_bytes());
    put_header(
        &mut out,
        "CSeq",
        format!("{} ACK", request.cseq().seq).as_bytes(),
    );
    put_header(&mut out, "Content-Length", b"0");
    out.put_slice(b"\r\n");
    Message::parse(Bytes::from(out)).map_err(TransactionError::Build)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::tests::msg::{parse, response};

    #[test]
    fn ack_for_non_2xx_copies_request_fields() {
        let inv = parse(
            "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKkjshdyff\r\n\
Via: SIP/2.0/UDP earlier.example.com;branch=z9hG4bKold\r\n\
Route: <sip:p1.example.com;lr>\r\n\
Route: <sip:p2.example.com;lr>,<sip:p3.example.com;lr>\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=88sja8x\r\n\
Max-Forwards: 70\r\n\
Call-ID: 987asjd97y7atg\r\n\
CSeq: 986759 INVITE\r\n\
Content-Length: 0\r\n\r\n",
        );
        let resp = response(&inv, 486);
        let ack = ack_for_non_2xx(&inv, &resp).unwrap();
        assert_eq!(ack.method(), Some("ACK"));
        assert_eq!(ack.request_uri(), inv.request_uri());
        assert_eq!(ack.call_id(), "987asjd97y7atg");
        assert_eq!(ack.from_tag(), Some("88sja8x"));
        assert_eq!(ack.to_tag(), resp.to_tag());
        assert!(ack.to_tag().is_some());
        assert_eq!(ack.cseq().seq, 986759);
        assert_eq!(ack.cseq().method, "ACK");
        assert_eq!(ack.via_count(), 1);
        assert_eq!(ack.top_via().unwrap().raw, inv.top_via().unwrap().raw);
        let routes: Vec<_> = ack.routes().map(|r| r.unwrap().uri.to_owned()).collect();
        assert_eq!(
            routes,
            [
                "sip:p1.example.com;lr",
                "sip:p2.example.com;lr",
                "sip:p3.example.com;lr"
            ]
        );
        assert_eq!(ack.body().len(), 0);
    }

    #[test]
    fn ack_refuses_swapped_arguments() {
        let inv = crate::transaction::tests::msg::invite("z9hG4bK1");
        let resp = response(&inv, 486);
        assert_eq!(
            ack_for_non_2xx(&resp, &inv).unwrap_err(),
            TransactionError::NotARequest
        );
        assert_eq!(
            ack_for_non_2xx(&inv, &inv).unwrap_err(),
            TransactionError::NotAResponse
        );
    }
}
