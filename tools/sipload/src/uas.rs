//! The stateless UAS of `sipload serve`, as pure functions: which responses a request gets
//! (INVITE: optionally 100, then 200 with Contact, Record-Route and an SDP answer; ACK:
//! none; anything else: 200) and their bytes, copied from the request's Via, From, To,
//! Call-ID and CSeq (RFC 3261 §8.2.6.2) with a To tag added.

use std::io::Write;

use crate::sip::{self, header_lines, is_header, name_value, SDP};

/// The To tag of every response `serve` sends (stateless: the same for every dialog, which
/// From tag and Call-ID already tell apart).
const TO_TAG: &str = "slsv";

/// What `serve` says about itself in responses.
#[derive(Debug, Clone)]
pub struct Uas {
    /// The Contact header value of 200 to INVITE, e.g. `<sip:uas@127.0.0.1:5080;transport=tcp>`.
    pub contact: String,
    /// Send 100 Trying before the 200 to INVITE.
    pub trying: bool,
}

impl Uas {
    /// A UAS listening on `local` with Via transport token `via_transport`.
    pub fn new(local: std::net::SocketAddr, via_transport: &str, trying: bool) -> Uas {
        Uas {
            contact: format!("<sip:uas@{local}{}>", sip::transport_param(via_transport)),
            trying,
        }
    }

    /// Appends the responses to `req` to `out`, each as its own element (datagram or SCTP
    /// message); nothing for ACK, responses and garbage.
    pub fn answer(&self, req: &[u8], out: &mut Vec<Vec<u8>>) {
        let Some(method) = request_method(req) else {
            return;
        };
        match method {
            b"ACK" => {}
            b"INVITE" => {
                if self.trying {
                    out.push(self.response(req, "100 Trying", false));
                }
                out.push(self.response(req, "200 OK", true));
            }
            _ => out.push(self.response(req, "200 OK", false)),
        }
    }

    /// One response; `dialog`: a 200 to INVITE (Record-Route, Contact, SDP).
    fn response(&self, req: &[u8], status: &str, dialog: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(req.len() + 256);
        let _ = write!(out, "SIP/2.0 {status}\r\n");
        let tag = !status.starts_with('1');
        for line in header_lines(req) {
            let Some((name, value)) = name_value(line) else {
                continue;
            };
            let copy = is_header(name, b"via", b"v")
                || is_header(name, b"from", b"f")
                || is_header(name, b"call-id", b"i")
                || name.eq_ignore_ascii_case(b"cseq")
                || dialog && name.eq_ignore_ascii_case(b"record-route");
            if copy {
                out.extend_from_slice(line);
                out.extend_from_slice(b"\r\n");
            } else if is_header(name, b"to", b"t") {
                out.extend_from_slice(line);
                let has_tag = std::str::from_utf8(value)
                    .ok()
                    .and_then(sip::tag_param)
                    .is_some();
                if tag && !has_tag {
                    let _ = write!(out, ";tag={TO_TAG}");
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        if dialog {
            let _ = write!(
                out,
                "Contact: {}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
                self.contact,
                SDP.len()
            );
        } else {
            out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        }
        out
    }
}

/// The method of a request line `METHOD uri SIP/2.0`.
pub fn request_method(msg: &[u8]) -> Option<&[u8]> {
    let end = msg.iter().position(|&b| b == b'\r' || b == b'\n')?;
    let line = &msg[..end];
    if !line.ends_with(b" SIP/2.0") || line.starts_with(b"SIP/") {
        return None;
    }
    let sp = line.iter().position(|&b| b == b' ')?;
    Some(&line[..sp])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{parse_response, Method, RequestTemplate, Txn};

    fn template() -> RequestTemplate {
        RequestTemplate {
            via_transport: "UDP",
            local: "127.0.0.1:40000".parse().unwrap(),
            uri: "sip:uas@127.0.0.1:5080".into(),
            run: 0x5,
            flow: 1,
        }
    }

    #[test]
    fn invite_gets_trying_and_200_with_dialog() {
        let mut req = Vec::new();
        template().write_msg(3, Method::Invite, None, &mut req);
        // As a record-routing proxy forwards it.
        let text = String::from_utf8(req).unwrap().replacen(
            "Via:",
            "Record-Route: <sip:p1@192.0.2.9;lr>\r\nRecord-Route: <sip:p2@192.0.2.8;lr>\r\nVia:",
            1,
        );
        let uas = Uas::new("127.0.0.1:5080".parse().unwrap(), "TCP", true);
        let mut out = Vec::new();
        uas.answer(text.as_bytes(), &mut out);
        assert_eq!(out.len(), 2);
        let trying = parse_response(&out[0], 0x5).unwrap();
        assert_eq!(
            (trying.status, trying.txn, trying.seq),
            (100, Txn::Invite, 3)
        );
        let ok = parse_response(&out[1], 0x5).unwrap();
        assert_eq!((ok.status, ok.flow), (200, 1));
        let d = ok.dialog.unwrap();
        assert_eq!(d.to_tag.as_deref(), Some(TO_TAG));
        assert_eq!(
            d.target.as_deref(),
            Some("sip:uas@127.0.0.1:5080;transport=tcp")
        );
        assert_eq!(
            d.record_route,
            ["<sip:p1@192.0.2.9;lr>", "<sip:p2@192.0.2.8;lr>"]
        );
        let ok_text = std::str::from_utf8(&out[1]).unwrap();
        assert!(ok_text.contains("CSeq: 1 INVITE\r\n"));
        assert!(ok_text.ends_with(SDP));
        // The framing of a stream finds the whole response.
        assert_eq!(sip::next_frame(&out[1]), sip::Frame::Message(out[1].len()));

        // ACK and BYE in the dialog: Route reversed, Request-URI the Contact, To tag kept.
        let mut ack = Vec::new();
        template().write_msg(3, Method::Ack, Some(&d), &mut ack);
        let ack = String::from_utf8(ack).unwrap();
        assert!(ack.starts_with("ACK sip:uas@127.0.0.1:5080;transport=tcp SIP/2.0\r\n"));
        assert!(ack.contains("Route: <sip:p2@192.0.2.8;lr>, <sip:p1@192.0.2.9;lr>\r\n"));
        assert!(ack.contains(";tag=slsv\r\n"));
        assert!(ack.contains("CSeq: 1 ACK\r\n"));
        let mut out = Vec::new();
        uas.answer(ack.as_bytes(), &mut out);
        assert!(out.is_empty());
        let mut bye = Vec::new();
        template().write_msg(3, Method::Bye, Some(&d), &mut bye);
        uas.answer(&bye, &mut out);
        let r = parse_response(&out[0], 0x5).unwrap();
        assert_eq!((r.status, r.txn, r.seq), (200, Txn::Bye, 3));
        assert!(std::str::from_utf8(&out[0])
            .unwrap()
            .contains("CSeq: 2 BYE\r\n"));
    }

    #[test]
    fn failure_ack_reuses_the_invite_branch_and_uri() {
        let d = crate::sip::Dialog {
            to_tag: Some("t".into()),
            target: Some("sip:elsewhere".into()),
            record_route: vec!["<sip:p@x;lr>".into()],
        };
        let (mut inv, mut ack) = (Vec::new(), Vec::new());
        template().write_msg(9, Method::Invite, None, &mut inv);
        template().write_msg(9, Method::AckFailure, Some(&d), &mut ack);
        let ack = String::from_utf8(ack).unwrap();
        assert!(ack.starts_with("ACK sip:uas@127.0.0.1:5080 SIP/2.0\r\n"));
        assert!(!ack.contains("Route:"));
        let branch = |m: &str| m.lines().nth(1).unwrap().to_owned();
        assert_eq!(branch(&ack), branch(std::str::from_utf8(&inv).unwrap()));
    }

    #[test]
    fn responses_and_garbage_get_nothing() {
        let uas = Uas::new("127.0.0.1:5080".parse().unwrap(), "UDP", false);
        let mut out = Vec::new();
        uas.answer(b"SIP/2.0 200 OK\r\n\r\n", &mut out);
        uas.answer(b"hello", &mut out);
        assert!(out.is_empty());
        let mut opt = Vec::new();
        template().write(1, &mut opt);
        uas.answer(&opt, &mut out);
        assert_eq!(parse_response(&out[0], 0x5).unwrap().status, 200);
    }
}
