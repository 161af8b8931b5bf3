//! The little SIP the generator speaks as a client: OPTIONS, or the INVITE / ACK / BYE of a
//! call, whose Via branch names the run, the flow, the sequence number and the transaction;
//! stream framing by Content-Length; and just enough response parsing to read the status
//! code, that branch and (for INVITE) the dialog: To tag, Contact and Record-Route. Pure:
//! bytes in, values out. Kept separate from the sipwire library on purpose (the instrument
//! must not share code with what it measures).

use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

/// The RFC 3261 §8.1.1.7 magic cookie, followed by our own marker.
const BRANCH_PREFIX: &str = "z9hG4bK-sl";

/// Header blocks larger than this are treated as garbage on a stream (no sane OPTIONS
/// response comes close).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// A small SDP offer (and answer, in `serve`), so that INVITE and its 200 have the size of
/// real ones.
pub const SDP: &str = "v=0\r\n\
o=sipload 1 1 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=sendrecv\r\n";

/// The client transaction a response belongs to (the branch's suffix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Txn {
    /// An OPTIONS request (branch without suffix, as sipload always sent it).
    Options,
    /// A call's INVITE (`-i`); its ACK for a non-2xx final response shares the branch.
    Invite,
    /// A call's BYE (`-b`).
    Bye,
}

/// A message the UAC sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// OPTIONS.
    Options,
    /// INVITE.
    Invite,
    /// ACK for a 2xx: a transaction of its own (`-a`), sent to the remote target.
    Ack,
    /// ACK for a non-2xx final response: part of the INVITE transaction (same branch).
    AckFailure,
    /// BYE, in the dialog.
    Bye,
}

impl Method {
    /// The request of transaction `txn` (what a retransmission sends again).
    pub fn of(txn: Txn) -> Method {
        match txn {
            Txn::Options => Method::Options,
            Txn::Invite => Method::Invite,
            Txn::Bye => Method::Bye,
        }
    }
}

/// What a final response to INVITE tells about the dialog (RFC 3261 §12.1.2): enough to
/// send ACK and BYE through a record-routing proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dialog {
    /// The To tag.
    pub to_tag: Option<String>,
    /// The Contact URI (remote target); the Request-URI is used when there is none.
    pub target: Option<String>,
    /// Record-Route entries in the order of the response (the UAC's route set is their
    /// reverse).
    pub record_route: Vec<String>,
}

/// Everything that stays the same between the requests of one flow.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    /// Via transport token: `UDP`, `TCP`, `TLS`, `SCTP` or `TLS-SCTP`.
    pub via_transport: &'static str,
    /// The flow's local address (Via sent-by).
    pub local: SocketAddr,
    /// Request-URI (also used as the To URI).
    pub uri: String,
    /// Tells this run's responses from anything else on the wire.
    pub run: u32,
    /// The flow's index.
    pub flow: u32,
}

impl RequestTemplate {
    /// Appends OPTIONS number `seq` of this flow to `out`. Call-ID and branch are unique
    /// per (run, flow, seq); `rport` makes UDP responses come back to the socket that sent.
    #[cfg(test)]
    pub fn write(&self, seq: u64, out: &mut Vec<u8>) {
        self.write_msg(seq, Method::Options, None, out);
    }

    /// Appends `method` of call (or OPTIONS) number `seq` to `out`; ACK and BYE need the
    /// dialog the INVITE's final response set up.
    pub fn write_msg(&self, seq: u64, method: Method, dialog: Option<&Dialog>, out: &mut Vec<u8>) {
        let RequestTemplate {
            via_transport,
            local,
            uri,
            run,
            flow,
        } = self;
        let ip = local.ip();
        if method == Method::Options {
            // Writing into a Vec cannot fail.
            let _ = write!(
                out,
                "OPTIONS {uri} SIP/2.0\r\n\
                 Via: SIP/2.0/{via_transport} {local};branch={BRANCH_PREFIX}{run:x}-{flow}-{seq};rport\r\n\
                 Max-Forwards: 70\r\n\
                 From: <sip:sipload@{ip}>;tag=sl{flow}\r\n\
                 To: <{uri}>\r\n\
                 Call-ID: sl{run:x}-{flow}-{seq}@sipload\r\n\
                 CSeq: {cseq} OPTIONS\r\n\
                 Accept: application/sdp\r\n\
                 Content-Length: 0\r\n\r\n",
                cseq = seq % 0x7fff_ffff + 1,
            );
            return;
        }
        let (name, suffix, cseq) = match method {
            Method::Invite => ("INVITE", 'i', 1),
            Method::AckFailure => ("ACK", 'i', 1),
            Method::Ack => ("ACK", 'a', 1),
            _ => ("BYE", 'b', 2),
        };
        // ACK for a 2xx and BYE go to the remote target along the route set; the ACK of a
        // failed INVITE goes where the INVITE went (RFC 3261 §17.1.1.3).
        let in_dialog = matches!(method, Method::Ack | Method::Bye);
        let ruri = dialog
            .filter(|_| in_dialog)
            .and_then(|d| d.target.as_deref())
            .unwrap_or(uri);
        let _ = write!(
            out,
            "{name} {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/{via_transport} {local};branch={BRANCH_PREFIX}{run:x}-{flow}-{seq}-{suffix};rport\r\n"
        );
        if let Some(d) = dialog.filter(|_| in_dialog) {
            if !d.record_route.is_empty() {
                out.extend_from_slice(b"Route: ");
                for (i, r) in d.record_route.iter().rev().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    out.extend_from_slice(r.as_bytes());
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        let _ = write!(
            out,
            "Max-Forwards: 70\r\n\
             From: <sip:sipload@{ip}>;tag=sl{run:x}-{flow}-{seq}\r\n\
             To: <{uri}>"
        );
        if let Some(tag) = dialog.and_then(|d| d.to_tag.as_deref()) {
            let _ = write!(out, ";tag={tag}");
        }
        let _ = write!(
            out,
            "\r\nCall-ID: sl{run:x}-{flow}-{seq}@sipload\r\nCSeq: {cseq} {name}\r\n"
        );
        if method == Method::Invite {
            let _ = write!(
                out,
                "Contact: <sip:sipload@{local}{param}>\r\n\
                 Content-Type: application/sdp\r\n\
                 Content-Length: {len}\r\n\r\n{SDP}",
                param = transport_param(via_transport),
                len = SDP.len(),
            );
        } else {
            out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        }
    }
}

/// The `;transport=` URI parameter for a Via transport token (none for UDP).
pub fn transport_param(via_transport: &str) -> String {
    if via_transport.eq_ignore_ascii_case("udp") {
        String::new()
    } else {
        format!(";transport={}", via_transport.to_ascii_lowercase())
    }
}

/// What a response says about the request it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Flow index from the branch.
    pub flow: u32,
    /// Sequence number from the branch.
    pub seq: u64,
    /// The transaction, from the branch's suffix.
    pub txn: Txn,
    /// Final responses to INVITE: the dialog they set up (or the To tag to ACK a failure).
    pub dialog: Option<Arc<Dialog>>,
}

impl Response {
    /// A response without dialog (tests and OPTIONS).
    #[cfg(test)]
    pub fn new(status: u16, flow: u32, seq: u64, txn: Txn) -> Response {
        Response {
            status,
            flow,
            seq,
            txn,
            dialog: None,
        }
    }
}

/// Why a received message was not one of our responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not a `SIP/2.0 NNN` status line.
    NotResponse,
    /// No Via header, or its first entry has no branch.
    NoBranch,
    /// A branch that this run did not send.
    ForeignBranch,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::NotResponse => "not a SIP response",
            ParseError::NoBranch => "no top Via branch",
            ParseError::ForeignBranch => "branch not sent by this run",
        })
    }
}

/// Reads the status code and the top Via branch of one complete message (and, for a final
/// response to INVITE, the dialog).
pub fn parse_response(msg: &[u8], run: u32) -> Result<Response, ParseError> {
    let status = status_code(msg).ok_or(ParseError::NotResponse)?;
    let branch = top_via_branch(msg).ok_or(ParseError::NoBranch)?;
    let (flow, seq, txn) = decode_branch(branch, run).ok_or(ParseError::ForeignBranch)?;
    let dialog = (txn == Txn::Invite && status >= 200).then(|| Arc::new(dialog_of(msg)));
    Ok(Response {
        status,
        flow,
        seq,
        txn,
        dialog,
    })
}

/// To tag, first Contact URI and every Record-Route entry of a response.
pub fn dialog_of(msg: &[u8]) -> Dialog {
    let mut d = Dialog::default();
    for line in header_lines(msg) {
        let Some((name, value)) = name_value(line) else {
            continue;
        };
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        if is_header(name, b"to", b"t") {
            d.to_tag = tag_param(value).map(str::to_owned);
        } else if is_header(name, b"contact", b"m") && d.target.is_none() {
            d.target = split_list(value)
                .next()
                .and_then(addr_uri)
                .map(str::to_owned);
        } else if name.eq_ignore_ascii_case(b"record-route") {
            d.record_route.extend(split_list(value).map(str::to_owned));
        }
    }
    d
}

/// True for header `long` or its compact form.
pub fn is_header(name: &[u8], long: &[u8], compact: &[u8]) -> bool {
    name.eq_ignore_ascii_case(long) || name.eq_ignore_ascii_case(compact)
}

/// Splits a header value at the commas that separate entries (not those inside `<>` or
/// quotes).
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    let (mut angle, mut quote, mut start) = (false, false, 0);
    let mut parts = Vec::new();
    for (i, c) in value.char_indices() {
        match c {
            '"' if !angle => quote = !quote,
            '<' if !quote => angle = true,
            '>' if !quote => angle = false,
            ',' if !angle && !quote => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts.into_iter().filter(|p| !p.is_empty())
}

/// The URI of a name-addr (`"x" <uri>;p`) or addr-spec (`uri;p`).
fn addr_uri(entry: &str) -> Option<&str> {
    match entry.find('<') {
        Some(open) => {
            let rest = &entry[open + 1..];
            Some(rest[..rest.find('>')?].trim())
        }
        None => entry.split(';').next().map(str::trim),
    }
}

/// The `tag` parameter of a From/To value (parameters after the URI).
pub fn tag_param(value: &str) -> Option<&str> {
    let params = match value.rfind('>') {
        Some(close) => &value[close + 1..],
        None => value.find(';').map_or("", |i| &value[i..]),
    };
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("tag").then(|| v.trim())
    })
}

fn status_code(msg: &[u8]) -> Option<u16> {
    let rest = msg.strip_prefix(b"SIP/2.0 ")?;
    let digits = rest.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d - b'0')),
    )
}

/// Header lines after the start line, up to the blank line (folded lines included as
/// their own lines; they never start a Via).
pub fn header_lines(msg: &[u8]) -> impl Iterator<Item = &[u8]> {
    let end = find(msg, b"\r\n\r\n").unwrap_or(msg.len());
    msg[..end]
        .split(|&b| b == b'\n')
        .skip(1)
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// Splits `Name: value` (the name trimmed of trailing blanks).
pub fn name_value(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = line[..colon].trim_ascii_end();
    Some((name, line[colon + 1..].trim_ascii()))
}

fn top_via_branch(msg: &[u8]) -> Option<&[u8]> {
    let value = header_lines(msg).find_map(|l| {
        let (name, value) = name_value(l)?;
        (name.eq_ignore_ascii_case(b"via") || name.eq_ignore_ascii_case(b"v")).then_some(value)
    })?;
    // The first via-parm only: stop at a comma that separates a second one.
    let first = value.split(|&b| b == b',').next()?;
    first.split(|&b| b == b';').skip(1).find_map(|param| {
        let param = param.trim_ascii();
        let (k, v) = param.split_at(param.iter().position(|&b| b == b'=')?);
        k.trim_ascii()
            .eq_ignore_ascii_case(b"branch")
            .then(|| v[1..].trim_ascii())
    })
}

fn decode_branch(branch: &[u8], run: u32) -> Option<(u32, u64, Txn)> {
    let rest = std::str::from_utf8(branch)
        .ok()?
        .strip_prefix(BRANCH_PREFIX)?;
    let mut parts = rest.split('-');
    let r = u32::from_str_radix(parts.next()?, 16).ok()?;
    let flow = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let txn = match parts.next() {
        None => Txn::Options,
        Some("i") => Txn::Invite,
        Some("b") => Txn::Bye,
        Some(_) => return None,
    };
    (r == run && parts.next().is_none()).then_some((flow, seq, txn))
}

/// What the front of a stream buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// Not a whole message yet.
    Incomplete,
    /// CRLF keep-alive bytes (RFC 5626 §3.5.1) to drop.
    Skip(usize),
    /// A whole message of this many bytes.
    Message(usize),
    /// Header block too large or a Content-Length that is not a number: the stream
    /// cannot be resynchronised.
    Bad,
}

/// Finds the first message on a stream (RFC 3261 §18.3: Content-Length delimits the body;
/// a missing one is taken as 0).
pub fn next_frame(buf: &[u8]) -> Frame {
    let blank = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    if blank > 0 {
        return Frame::Skip(blank);
    }
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        return if buf.len() > MAX_HEADER_BYTES {
            Frame::Bad
        } else {
            Frame::Incomplete
        };
    };
    let head = &buf[..head_end + 4];
    let mut body = 0usize;
    for line in header_lines(head) {
        let Some((name, value)) = name_value(line) else {
            continue;
        };
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            match std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()) {
                Some(n) => body = n,
                None => return Frame::Bad,
            }
        }
    }
    let total = head.len().saturating_add(body);
    if buf.len() >= total {
        Frame::Message(total)
    } else {
        Frame::Incomplete
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> RequestTemplate {
        RequestTemplate {
            via_transport: "TCP",
            local: "127.0.0.1:40000".parse().unwrap(),
            uri: "sip:127.0.0.1:5060".into(),
            run: 0xabc,
            flow: 7,
        }
    }

    /// What a stateless responder sends back: the request's Via (with received/rport
    /// added), a To tag, Content-Length 0.
    fn response_to(req: &[u8], status: &str) -> Vec<u8> {
        let text = std::str::from_utf8(req).unwrap();
        let mut out = format!("SIP/2.0 {status}\r\n");
        for line in text.split("\r\n").skip(1) {
            if line.starts_with("Via:") {
                out += &format!("{line};received=127.0.0.1\r\n");
            } else if line.starts_with("From:") || line.starts_with("Call-ID:") {
                out += &format!("{line}\r\n");
            }
        }
        out += "Content-Length: 0\r\n\r\n";
        out.into_bytes()
    }

    #[test]
    fn request_round_trips_through_a_response() {
        let mut req = Vec::new();
        template().write(42, &mut req);
        let text = std::str::from_utf8(&req).unwrap();
        assert!(text.starts_with("OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\n"));
        assert!(text.contains("Call-ID: slabc-7-42@sipload\r\n"));
        assert!(text.contains("CSeq: 43 OPTIONS\r\n"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
        let resp = response_to(&req, "200 OK");
        assert_eq!(
            parse_response(&resp, 0xabc),
            Ok(Response::new(200, 7, 42, Txn::Options))
        );
        assert_eq!(parse_response(&resp, 0xabd), Err(ParseError::ForeignBranch));
    }

    #[test]
    fn unique_per_sequence_number() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        template().write(1, &mut a);
        template().write(2, &mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn compact_via_and_second_via_parm() {
        let msg = b"SIP/2.0 503 Busy\r\nv : SIP/2.0/UDP h;rport=1; BRANCH = z9hG4bK-sl1-0-9 ,SIP/2.0/UDP x;branch=z9hG4bK-sl1-0-10\r\nl: 0\r\n\r\n";
        assert_eq!(
            parse_response(msg, 1),
            Ok(Response::new(503, 0, 9, Txn::Options))
        );
    }

    #[test]
    fn rejects_requests_and_missing_branch() {
        let mut req = Vec::new();
        template().write(1, &mut req);
        assert_eq!(parse_response(&req, 0xabc), Err(ParseError::NotResponse));
        let msg = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;rport=1\r\n\r\n";
        assert_eq!(parse_response(msg, 1), Err(ParseError::NoBranch));
        assert_eq!(
            parse_response(b"SIP/2.0 2x0 OK\r\n\r\n", 1),
            Err(ParseError::NotResponse)
        );
    }

    #[test]
    fn dialog_from_a_2xx_with_compact_forms_and_lists() {
        let msg = b"SIP/2.0 200 OK\r\n\
            v: SIP/2.0/UDP h;branch=z9hG4bK-sl1-0-4-i\r\n\
            Record-Route: <sip:a@x;lr>, \"B, c\" <sip:b@y;lr>\r\n\
            record-route: <sip:c@z;lr>\r\n\
            t: \"U\" <sip:u@h>;TAG=abc;x=1\r\n\
            m: sip:uas@192.0.2.1:5070;transport=tcp;expires=5\r\n\
            l: 0\r\n\r\n";
        let r = parse_response(msg, 1).unwrap();
        assert_eq!((r.txn, r.seq), (Txn::Invite, 4));
        let d = r.dialog.unwrap();
        assert_eq!(d.to_tag.as_deref(), Some("abc"));
        assert_eq!(d.target.as_deref(), Some("sip:uas@192.0.2.1:5070"));
        assert_eq!(
            d.record_route,
            ["<sip:a@x;lr>", "\"B, c\" <sip:b@y;lr>", "<sip:c@z;lr>"]
        );
        assert_eq!(tag_param("<sip:u@h;tag=no>"), None);
        assert_eq!(tag_param("sip:u@h;tag=yes"), Some("yes"));
        // Provisional responses and BYE responses carry no dialog; unknown suffixes are foreign.
        let bye = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK-sl1-0-4-b\r\n\r\n";
        assert_eq!(
            parse_response(bye, 1),
            Ok(Response::new(200, 0, 4, Txn::Bye))
        );
        let odd = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK-sl1-0-4-q\r\n\r\n";
        assert_eq!(parse_response(odd, 1), Err(ParseError::ForeignBranch));
    }

    #[test]
    fn invite_has_its_sdp_and_a_matching_length() {
        let mut inv = Vec::new();
        template().write_msg(5, Method::Invite, None, &mut inv);
        let text = std::str::from_utf8(&inv).unwrap();
        assert!(text.starts_with("INVITE sip:127.0.0.1:5060 SIP/2.0\r\n"));
        assert!(text.contains(";branch=z9hG4bK-slabc-7-5-i;rport\r\n"));
        assert!(text.contains("Contact: <sip:sipload@127.0.0.1:40000;transport=tcp>\r\n"));
        assert_eq!(next_frame(&inv), Frame::Message(inv.len()));
        assert!(text.ends_with(SDP));
    }

    #[test]
    fn framing() {
        assert_eq!(next_frame(b"\r\n\r\nSIP"), Frame::Skip(4));
        assert_eq!(next_frame(b"SIP/2.0 200 OK\r\nl: 3\r\n"), Frame::Incomplete);
        let msg = b"SIP/2.0 200 OK\r\nContent-Length: 3\r\n\r\nabcSIP/2.0";
        assert_eq!(next_frame(&msg[..39]), Frame::Incomplete);
        assert_eq!(next_frame(msg), Frame::Message(40));
        assert_eq!(next_frame(b"SIP/2.0 200 OK\r\n\r\n"), Frame::Message(18));
        assert_eq!(next_frame(b"SIP/2.0 200 OK\r\nl: x\r\n\r\n"), Frame::Bad);
        assert_eq!(next_frame(&vec![b'a'; MAX_HEADER_BYTES + 1]), Frame::Bad);
    }
}
