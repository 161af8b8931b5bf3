//! Editing a parsed message without re-serialising untouched bytes: the editor records
//! replacements at byte offsets of the original and builds the new message from slices
//! of it in one pass.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use bytes::{Bytes, BytesMut};

use super::error::{EditError, ParseError};
use super::header::{split_values, HeaderKind};
use super::host::Host;
use super::lex::{is_token, offset_in, Cursor};
use super::message::{HeaderField, Message, Splice};
use super::param::next_param;
use super::transport_token::TransportToken;
use super::uri::Uri;
use super::via::{Rport, Via};

/// The Via we add when forwarding or sending a request.
#[derive(Debug, Clone)]
pub struct ViaSpec<'a> {
    /// Transport token.
    pub transport: TransportToken,
    /// sent-by host (an IPv6 address is written as a reference).
    pub host: Host<'a>,
    /// sent-by port (omit to use the transport default).
    pub port: Option<u16>,
    /// Branch, normally starting with the magic cookie `z9hG4bK`.
    pub branch: &'a str,
    /// Add `;rport` (RFC 3581).
    pub rport: bool,
    /// Add `;alias` (RFC 5923).
    pub alias: bool,
}

impl ViaSpec<'_> {
    /// Writes the Via value (`SIP/2.0/TCP host:port;branch=...;rport;alias`).
    pub fn to_value(&self) -> Result<String, EditError> {
        let tok = self.transport.as_str();
        if tok.is_empty() || !tok.bytes().all(is_token) {
            return Err(EditError::BadValue("transport token"));
        }
        if self.branch.is_empty() || !self.branch.bytes().all(is_token) {
            return Err(EditError::BadValue("branch"));
        }
        if let Host::Name(n) = &self.host {
            if Host::parse(n.as_bytes()).is_none() {
                return Err(EditError::BadValue("host"));
            }
        }
        let mut s = String::with_capacity(128);
        let _ = write!(s, "SIP/2.0/{tok} {}", self.host);
        if let Some(p) = self.port {
            let _ = write!(s, ":{p}");
        }
        let _ = write!(s, ";branch={}", self.branch);
        if self.rport {
            s.push_str(";rport");
        }
        if self.alias {
            s.push_str(";alias");
        }
        Ok(s)
    }
}

/// Collects edits on one message; [`Editor::finish`] produces the new bytes.
#[derive(Debug)]
pub struct Editor<'m> {
    msg: &'m Message,
    ops: Vec<Splice>,
    scratch: Vec<u8>,
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn check_uri(uri: &str) -> Result<(), EditError> {
    if uri
        .bytes()
        .any(|b| b == b'\r' || b == b'\n' || b == b'>' || b == b'<')
    {
        return Err(EditError::BadValue("URI"));
    }
    Uri::parse(uri).map(|_| ()).map_err(EditError::from)
}

impl Message {
    /// Starts editing this message.
    pub fn edit(&self) -> Editor<'_> {
        Editor {
            msg: self,
            ops: Vec::with_capacity(4),
            // Allocated by the first edit that writes text (removals write none).
            scratch: Vec::new(),
        }
    }
}

impl<'m> Editor<'m> {
    fn buf(&self) -> &'m [u8] {
        self.msg.as_bytes()
    }

    /// Room for a proxy's usual edits (a Via line, `received`, Max-Forwards) in one
    /// allocation rather than growing piece by piece.
    const SCRATCH: usize = 192;

    fn replace(&mut self, start: usize, end: usize, text: &[u8]) {
        // A removal writes nothing: it needs no scratch buffer.
        if !text.is_empty() && self.scratch.capacity() == 0 {
            self.scratch.reserve(Self::SCRATCH.max(text.len()));
        }
        self.splice(start, end, |out| out.extend_from_slice(text));
    }

    /// [`Editor::replace`] with text written straight into the scratch buffer.
    fn replace_with(&mut self, start: usize, end: usize, write: impl FnOnce(&mut Vec<u8>)) {
        if self.scratch.capacity() == 0 {
            self.scratch.reserve(Self::SCRATCH);
        }
        self.splice(start, end, write);
    }

    /// Records the edit `start..end` → what `write` appends to the scratch buffer.
    fn splice(&mut self, start: usize, end: usize, write: impl FnOnce(&mut Vec<u8>)) {
        let a = self.scratch.len();
        write(&mut self.scratch);
        self.ops.push(Splice {
            start,
            end,
            text: (a, self.scratch.len()),
        });
    }

    fn offset(&self, sub: &[u8]) -> Result<usize, EditError> {
        offset_in(self.buf(), sub).ok_or(EditError::Parse(ParseError::BadVia("span")))
    }

    fn first_field(&self, kind: HeaderKind) -> Option<&'m HeaderField> {
        self.msg.fields().iter().find(|h| h.kind == kind)
    }

    /// Where new header lines go when no header of the same kind exists: right after the
    /// start line.
    fn header_insert_point(&self) -> usize {
        self.msg.start_line_end()
    }

    /// Inserts a Via line above the topmost Via.
    pub fn prepend_via(&mut self, via: &ViaSpec<'_>) -> Result<&mut Self, EditError> {
        // `to_value` checked every part: the value is a Via without reading it again.
        let value = via.to_value()?;
        self.insert_via_line(&value);
        Ok(self)
    }

    /// Inserts `Via: <value>` above the topmost Via (value given pre-formatted).
    pub fn prepend_via_value(&mut self, value: &str) -> Result<&mut Self, EditError> {
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == b',') {
            return Err(EditError::BadValue("Via value"));
        }
        Via::parse(value.as_bytes())?;
        self.insert_via_line(value);
        Ok(self)
    }

    fn insert_via_line(&mut self, value: &str) {
        let at = self
            .msg
            .via_field()
            .map_or_else(|| self.header_insert_point(), |h| h.line.range().start);
        self.replace_with(at, at, |out| {
            out.extend_from_slice(b"Via: ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        });
    }

    /// Applies RFC 3261 §18.2.1 and RFC 3581 §4 to the top Via of an inbound request
    /// that came from `source`: adds `received=<source IP>` when sent-by is a name or an
    /// address other than the source, or when `rport` is present; fills a bare `rport`
    /// with the source port. Returns whether anything changed.
    pub fn set_received(&mut self, source: SocketAddr) -> Result<bool, EditError> {
        let via = self.msg.top_via()?;
        let src_ip = canonical(source.ip());
        let mut changed = false;
        let mut received_param: Option<&[u8]> = None;
        let mut rport_param: Option<(&[u8], Option<&[u8]>)> = None;
        let mut c = Cursor::new(via.params_raw);
        while let Some(p) = next_param(&mut c).map_err(ParseError::BadVia)? {
            if p.name.eq_ignore_ascii_case(b"received") && received_param.is_none() {
                received_param = p.value;
            } else if p.name.eq_ignore_ascii_case(b"rport") && rport_param.is_none() {
                rport_param = Some((p.name, p.value));
            }
        }
        let port = source.port();
        if let Some((name, value)) = rport_param {
            match value {
                None => {
                    let at = self.offset(name)? + name.len();
                    self.replace_with(at, at, |out| {
                        out.push(b'=');
                        push_decimal(out, port.into());
                    });
                    changed = true;
                }
                Some(v) => {
                    if via.rport != Some(Rport::Port(port)) {
                        let at = self.offset(v)?;
                        self.replace_with(at, at + v.len(), |out| push_decimal(out, port.into()));
                        changed = true;
                    }
                }
            }
        }
        let need_received =
            via.rport.is_some() || via.host.ip().map_or(true, |ip| canonical(ip) != src_ip);
        if need_received {
            match received_param {
                Some(v) => {
                    if via.received.map(canonical) != Some(src_ip) {
                        let at = self.offset(v)?;
                        self.replace_with(at, at + v.len(), |out| push_ip(out, src_ip));
                        changed = true;
                    }
                }
                None => {
                    let at = self.offset(via.raw)? + via.raw.len();
                    self.replace_with(at, at, |out| {
                        out.extend_from_slice(b";received=");
                        push_ip(out, src_ip);
                    });
                    changed = true;
                }
            }
        }
        Ok(changed)
    }

    /// Removes the topmost Via value (a response on its way back). When the top Via line
    /// carries several comma-separated values only the first is removed.
    pub fn pop_via(&mut self) -> Result<&mut Self, EditError> {
        let h = *self.msg.via_field().ok_or(EditError::NoVia)?;
        self.remove_first_value(&h)?;
        Ok(self)
    }

    fn remove_first_value(&mut self, h: &HeaderField) -> Result<(), EditError> {
        let mut values = split_values(h.value.of(self.buf()));
        let first = values.next().ok_or(EditError::NoVia)??;
        match values.next() {
            None => {
                let r = h.line.range();
                self.replace(r.start, r.end, b"");
            }
            Some(second) => {
                let second = second?;
                let a = self.offset(first)?;
                let b = self.offset(second)?;
                self.replace(a, b, b"");
            }
        }
        Ok(())
    }

    /// Decrements Max-Forwards and returns the new value. Without Max-Forwards, adds
    /// `Max-Forwards: 70` (RFC 3261 §16.6 step 3). At 0 the request must not be forwarded:
    /// [`EditError::TooManyHops`] (answer 483).
    pub fn decrement_max_forwards(&mut self) -> Result<u8, EditError> {
        self.decrement_max_forwards_or(70)
    }

    /// [`Editor::decrement_max_forwards`], adding `Max-Forwards: {initial}` when there is
    /// none (a proxy's configured default).
    pub fn decrement_max_forwards_or(&mut self, initial: u8) -> Result<u8, EditError> {
        match self.first_field(HeaderKind::MaxForwards) {
            None => {
                let at = self.header_insert_point();
                self.replace_with(at, at, |out| {
                    out.extend_from_slice(b"Max-Forwards: ");
                    push_decimal(out, initial.into());
                    out.extend_from_slice(b"\r\n");
                });
                Ok(initial)
            }
            Some(h) => {
                let v = self.msg.max_forwards().ok_or(ParseError::BadMaxForwards)?;
                let new = v.checked_sub(1).ok_or(EditError::TooManyHops)?;
                let r = h.value.range();
                self.replace_with(r.start, r.end, |out| push_decimal(out, new.into()));
                Ok(new)
            }
        }
    }

    /// Inserts `Record-Route: <uri>` above the topmost Record-Route.
    pub fn prepend_record_route(&mut self, uri: &str) -> Result<&mut Self, EditError> {
        self.prepend_addr(HeaderKind::RecordRoute, "Record-Route", uri)
    }

    /// Inserts `Route: <uri>` above the topmost Route.
    pub fn prepend_route(&mut self, uri: &str) -> Result<&mut Self, EditError> {
        self.prepend_addr(HeaderKind::Route, "Route", uri)
    }

    fn prepend_addr(
        &mut self,
        kind: HeaderKind,
        name: &str,
        uri: &str,
    ) -> Result<&mut Self, EditError> {
        check_uri(uri)?;
        let at = self
            .first_field(kind)
            .map_or_else(|| self.header_insert_point(), |h| h.line.range().start);
        self.replace(at, at, format!("{name}: <{uri}>\r\n").as_bytes());
        Ok(self)
    }

    /// Removes the topmost Route value (only the first value of a multi-value line).
    pub fn remove_top_route(&mut self) -> Result<&mut Self, EditError> {
        let h = *self
            .first_field(HeaderKind::Route)
            .ok_or(EditError::NoRoute)?;
        self.remove_first_value(&h).map_err(|e| match e {
            EditError::NoVia => EditError::NoRoute,
            other => other,
        })?;
        Ok(self)
    }

    /// Removes the last Route value (a proxy's strict-route fix-up, RFC 3261 §16.4, moves
    /// it into the Request-URI). Only that value goes when its line holds several.
    pub fn remove_last_route(&mut self) -> Result<&mut Self, EditError> {
        let h = *self
            .msg
            .fields()
            .iter()
            .rev()
            .find(|h| h.kind == HeaderKind::Route)
            .ok_or(EditError::NoRoute)?;
        let values = split_values(h.value.of(self.buf())).collect::<Result<Vec<_>, _>>()?;
        match values.as_slice() {
            [] => return Err(EditError::NoRoute),
            [_] => {
                let r = h.line.range();
                self.replace(r.start, r.end, b"");
            }
            [.., prev, last] => {
                let a = self.offset(prev)? + prev.len();
                let b = self.offset(last)? + last.len();
                self.replace(a, b, b"");
            }
        }
        Ok(self)
    }

    /// Replaces the Request-URI of a request (strict-route fix-up, RFC 3261 §16.4).
    pub fn set_request_uri(&mut self, uri: &str) -> Result<&mut Self, EditError> {
        check_uri(uri)?;
        let old = self
            .msg
            .request_uri()
            .ok_or(EditError::BadValue("not a request"))?;
        let at =
            offset_in(self.buf(), old.as_bytes()).ok_or(EditError::BadValue("Request-URI span"))?;
        self.replace(at, at + old.len(), uri.as_bytes());
        Ok(self)
    }

    /// Appends `name: value` after the last header line.
    pub fn add_header(&mut self, name: &str, value: &str) -> Result<&mut Self, EditError> {
        if name.is_empty() || !name.bytes().all(is_token) {
            return Err(EditError::BadValue("header name"));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n') {
            return Err(EditError::BadValue("header value"));
        }
        let at = self.msg.head_len().saturating_sub(2);
        self.replace(at, at, format!("{name}: {value}\r\n").as_bytes());
        Ok(self)
    }

    /// Builds the edited message: untouched bytes are copied from the original once.
    pub fn finish(mut self) -> Result<Bytes, EditError> {
        self.build()
    }

    /// The new bytes, the edits sorted by position.
    fn build(&mut self) -> Result<Bytes, EditError> {
        let buf = self.buf();
        self.ops.sort_by_key(|o| (o.start, o.end));
        let mut cur = 0usize;
        let mut size = buf.len();
        for op in &self.ops {
            if op.start < cur || op.end > buf.len() || op.start > op.end {
                return Err(EditError::Overlap);
            }
            cur = op.end;
            size = size + op.len() - (op.end - op.start);
        }
        let mut out = BytesMut::with_capacity(size);
        let mut cur = 0usize;
        for op in &self.ops {
            out.extend_from_slice(buf.get(cur..op.start).unwrap_or(&[]));
            out.extend_from_slice(self.scratch.get(op.text.0..op.text.1).unwrap_or(&[]));
            cur = op.end;
        }
        out.extend_from_slice(buf.get(cur..).unwrap_or(&[]));
        Ok(out.freeze())
    }

    /// Builds the edited message. Its index is the original's, moved past the edits
    /// ([`Message::rebased`]: the untouched header lines keep their fields, added lines
    /// alone are read) when the edits are the ones a proxy makes — inside the top Via or
    /// Max-Forwards value, whole header lines added or removed, a value of a list header cut;
    /// other edits parse the new message.
    pub fn finish_message(mut self) -> Result<Message, EditError> {
        let b = self.build()?;
        match self.msg.rebased(b, &self.ops) {
            Ok(m) => Ok(m),
            Err(b) => Ok(Message::parse(b)?),
        }
    }
}

/// `n` in decimal. `received`/`rport` are written on every inbound request: without the
/// formatting machinery, which cost more than the rest of the edit.
fn push_decimal(out: &mut Vec<u8>, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or(&[]));
}

/// An address as `received` carries it (IPv4 dotted, IPv6 as `Display` writes it).
fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_decimal(out, octet.into());
            }
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(39);
            let _ = write!(s, "{v6}");
            out.extend_from_slice(s.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TransportKind;

    fn parse(s: &str) -> Message {
        Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
    }

    const REQ: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP client.example.com:5060;branch=z9hG4bK1;rport\r\n\
Max-Forwards: 70\r\n\
Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
From: <sip:a@example.com>;tag=1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: abc\r\n\
CSeq: 1 INVITE\r\n\
Content-Length: 3\r\n\
\r\n\
x=y";

    fn s(b: &Bytes) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    #[test]
    fn a_stamped_request_keeps_an_index_equal_to_a_parse() {
        // Only the top Via's parameters change: its parameters are read again, not all of it.
        let vias = [
            "SIP/2.0/UDP client.example.com:5060;branch=z9hG4bK1;rport",
            "SIP/2.0/UDP 192.0.2.1;rport;branch=z9hG4bK2;maddr=x.example.com;ttl=3;alias",
            "SIP/2.0/UDP 192.0.2.1:5060;received=192.0.2.99;rport=1;branch=z9hG4bK3",
            "SIP/2.0/TCP [2001:db8::1];branch=z9hG4bK4, SIP/2.0/UDP other.example.com",
            "SIP/2.0/UDP 192.0.2.7:40000;branch=z9hG4bK5",
        ];
        for via in vias {
            let m = parse(&REQ.replace(
                "SIP/2.0/UDP client.example.com:5060;branch=z9hG4bK1;rport",
                via,
            ));
            let mut e = m.edit();
            let _ = e.set_received("192.0.2.7:40000".parse().unwrap()).unwrap();
            let moved = e.finish_message().unwrap();
            let parsed = Message::parse(Bytes::copy_from_slice(moved.as_bytes())).unwrap();
            assert_eq!(format!("{moved:?}"), format!("{parsed:?}"), "{via}");
            assert_eq!(moved.top_via().unwrap(), parsed.top_via().unwrap());
        }
    }

    #[test]
    fn received_and_rport_on_name() {
        let m = parse(REQ);
        let mut e = m.edit();
        assert!(e.set_received("192.0.2.7:40000".parse().unwrap()).unwrap());
        let out = e.finish().unwrap();
        assert_eq!(
            s(&out),
            REQ.replace(";rport\r\n", ";rport=40000;received=192.0.2.7\r\n")
        );
        let m2 = Message::parse(out).unwrap();
        let v = m2.top_via().unwrap();
        assert_eq!(v.rport, Some(Rport::Port(40000)));
        assert_eq!(v.received, Some("192.0.2.7".parse().unwrap()));
    }

    #[test]
    fn received_rules_without_rport() {
        let base = REQ
            .replace(";rport", "")
            .replace("client.example.com:5060", "192.0.2.7:5060");
        // Same IP as the source, no rport: nothing to add.
        let m = parse(&base);
        let mut e = m.edit();
        assert!(!e.set_received("192.0.2.7:5060".parse().unwrap()).unwrap());
        assert_eq!(s(&e.finish().unwrap()), base);
        // IPv4-mapped source compares equal.
        let mut e = m.edit();
        assert!(!e
            .set_received("[::ffff:192.0.2.7]:5060".parse().unwrap())
            .unwrap());
        // Different IP: received added.
        let mut e = m.edit();
        assert!(e
            .set_received("198.51.100.1:5060".parse().unwrap())
            .unwrap());
        assert!(s(&e.finish().unwrap()).contains("5060;branch=z9hG4bK1;received=198.51.100.1\r\n"));
        // IPv6 sent-by and source.
        let v6 = base.replace("192.0.2.7:5060", "[2001:db8::1]:5060");
        let m = parse(&v6);
        let mut e = m.edit();
        assert!(e
            .set_received("[2001:db8::2]:5060".parse().unwrap())
            .unwrap());
        assert!(s(&e.finish().unwrap()).contains(";received=2001:db8::2\r\n"));
        let mut e = m.edit();
        assert!(!e
            .set_received("[2001:DB8::1]:5060".parse().unwrap())
            .unwrap());
    }

    #[test]
    fn numbers_and_addresses_are_written_as_display_would() {
        for n in [0u32, 7, 10, 5060, 65535, u32::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        for ip in [
            "0.0.0.0",
            "192.0.2.10",
            "255.255.255.255",
            "2001:db8::7",
            "::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = Vec::new();
            push_ip(&mut out, ip);
            assert_eq!(out, ip.to_string().as_bytes());
        }
    }

    #[test]
    fn rport_same_ip_still_gets_received() {
        let base = REQ.replace("client.example.com:5060", "192.0.2.7:5060");
        let m = parse(&base);
        let mut e = m.edit();
        e.set_received("192.0.2.7:5070".parse().unwrap()).unwrap();
        assert!(s(&e.finish().unwrap()).contains(";rport=5070;received=192.0.2.7\r\n"));
    }

    #[test]
    fn received_on_multi_value_via_line() {
        let two = REQ.replace(
            ";rport\r\n",
            ";rport , SIP/2.0/TCP proxy.example.com;branch=z9hG4bK0\r\n",
        );
        let m = parse(&two);
        let mut e = m.edit();
        e.set_received("192.0.2.7:1".parse().unwrap()).unwrap();
        let out = e.finish().unwrap();
        assert!(s(&out).contains(";rport=1;received=192.0.2.7 , SIP/2.0/TCP proxy"));
    }

    #[test]
    fn prepend_and_pop_via() {
        let m = parse(REQ);
        let mut e = m.edit();
        e.prepend_via(&ViaSpec {
            transport: TransportToken::Known(TransportKind::Sctp),
            host: Host::parse(b"[2001:db8::5]").unwrap(),
            port: Some(5060),
            branch: "z9hG4bKnew",
            rport: true,
            alias: true,
        })
        .unwrap();
        let out = e.finish().unwrap();
        let want = REQ.replace(
            "Via: SIP/2.0/UDP",
            "Via: SIP/2.0/SCTP [2001:db8::5]:5060;branch=z9hG4bKnew;rport;alias\r\nVia: SIP/2.0/UDP",
        );
        assert_eq!(s(&out), want);
        let m2 = Message::parse(out).unwrap();
        assert_eq!(
            m2.top_via().unwrap().transport,
            TransportToken::Known(TransportKind::Sctp)
        );
        assert!(m2.top_via().unwrap().alias);
        let mut e = m2.edit();
        e.pop_via().unwrap();
        assert_eq!(s(&e.finish().unwrap()), REQ);
    }

    #[test]
    fn pop_first_of_several_values() {
        let resp = "SIP/2.0 200 OK\r\nv: SIP/2.0/TCP a;branch=z9hG4bK1 ,\r\n SIP/2.0/UDP b;branch=z9hG4bK2\r\nVia: SIP/2.0/UDP c\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let m = parse(resp);
        let mut e = m.edit();
        e.pop_via().unwrap();
        let out = e.finish().unwrap();
        assert_eq!(
            s(&out),
            resp.replace("SIP/2.0/TCP a;branch=z9hG4bK1 ,\r\n ", "")
        );
        let m = Message::parse(out).unwrap();
        assert_eq!(m.top_via().unwrap().host_raw, "b");
        let mut e = m.edit();
        e.pop_via().unwrap();
        let m = e.finish_message().unwrap();
        assert_eq!(m.top_via().unwrap().host_raw, "c");
        assert_eq!(m.via_count(), 1);
    }

    #[test]
    fn max_forwards() {
        let m = parse(REQ);
        let mut e = m.edit();
        assert_eq!(e.decrement_max_forwards().unwrap(), 69);
        assert_eq!(
            s(&e.finish().unwrap()),
            REQ.replace("Max-Forwards: 70", "Max-Forwards: 69")
        );
        let zero = parse(&REQ.replace("Max-Forwards: 70", "Max-Forwards: 0"));
        assert_eq!(
            zero.edit().decrement_max_forwards(),
            Err(EditError::TooManyHops)
        );
        let none = parse(&REQ.replace("Max-Forwards: 70\r\n", ""));
        let mut e = none.edit();
        assert_eq!(e.decrement_max_forwards().unwrap(), 70);
        let m = e.finish_message().unwrap();
        assert_eq!(m.max_forwards(), Some(70));
    }

    #[test]
    fn routes() {
        let m = parse(REQ);
        let mut e = m.edit();
        e.remove_top_route()
            .unwrap()
            .prepend_record_route("sip:me.example.com;lr")
            .unwrap();
        let out = e.finish().unwrap();
        let want = REQ.replace("<sip:p1.example.com;lr>, ", "").replace(
            "INVITE sip:bob@example.com SIP/2.0\r\n",
            "INVITE sip:bob@example.com SIP/2.0\r\nRecord-Route: <sip:me.example.com;lr>\r\n",
        );
        assert_eq!(s(&out), want);
        let m2 = Message::parse(out).unwrap();
        let mut e = m2.edit();
        e.remove_top_route().unwrap();
        let m3 = e.finish_message().unwrap();
        assert_eq!(m3.routes().count(), 0);
        assert_eq!(
            m3.edit().remove_top_route().unwrap_err(),
            EditError::NoRoute
        );
        let mut e = m3.edit();
        e.prepend_record_route("sip:second.example.com;lr").unwrap();
        let m4 = e.finish_message().unwrap();
        let rr: Vec<_> = m4.record_routes().map(|r| r.unwrap().uri).collect();
        assert_eq!(
            rr,
            vec!["sip:second.example.com;lr", "sip:me.example.com;lr"]
        );
        assert!(m4.edit().prepend_route("sip:x>\r\nEvil: 1").is_err());
        assert_eq!(
            m4.edit()
                .prepend_via_value("SIP/2.0/UDP h;x=y\r\n")
                .unwrap_err(),
            EditError::BadValue("Via value")
        );
        assert!(m4
            .edit()
            .prepend_via_value("SIP/2.0/UDP h, SIP/2.0/UDP g")
            .is_err());
    }

    #[test]
    fn last_route_request_uri_and_added_header() {
        let m = parse(REQ);
        let mut e = m.edit();
        e.remove_last_route()
            .unwrap()
            .set_request_uri("sip:p2.example.com;lr")
            .unwrap()
            .add_header("Warning", "380 p \"SIPS Not Allowed\"")
            .unwrap();
        let m2 = e.finish_message().unwrap();
        assert_eq!(m2.request_uri(), Some("sip:p2.example.com;lr"));
        let routes: Vec<_> = m2.routes().map(|r| r.unwrap().uri).collect();
        assert_eq!(routes, vec!["sip:p1.example.com;lr"]);
        assert_eq!(
            m2.header("Warning"),
            Some(&b"380 p \"SIPS Not Allowed\""[..])
        );
        assert_eq!(&m2.body()[..], b"x=y");
        let mut e = m2.edit();
        e.remove_last_route().unwrap();
        let m3 = e.finish_message().unwrap();
        assert_eq!(m3.routes().count(), 0);
        assert_eq!(
            m3.edit().remove_last_route().unwrap_err(),
            EditError::NoRoute
        );
        assert!(m3.edit().add_header("Bad Name", "x").is_err());
        assert!(m3.edit().add_header("X", "a\r\nEvil: 1").is_err());
        assert!(m3.edit().set_request_uri("sip:a>").is_err());
    }

    #[test]
    fn combined_edits_single_pass() {
        let m = parse(REQ);
        let mut e = m.edit();
        e.set_received("192.0.2.7:40000".parse().unwrap()).unwrap();
        e.prepend_via_value("SIP/2.0/TLS proxy.example.com;branch=z9hG4bKp")
            .unwrap();
        e.decrement_max_forwards().unwrap();
        e.remove_top_route().unwrap();
        e.prepend_record_route("sips:proxy.example.com;lr").unwrap();
        let m2 = e.finish_message().unwrap();
        assert_eq!(m2.via_count(), 2);
        assert_eq!(m2.max_forwards(), Some(69));
        assert_eq!(m2.routes().count(), 1);
        assert_eq!(&m2.body()[..], b"x=y");
        let second = m2.vias().nth(1).unwrap().unwrap();
        assert_eq!(second.received, Some("192.0.2.7".parse().unwrap()));
    }

    #[test]
    fn overlapping_edits_refused() {
        let m = parse(REQ);
        let mut e = m.edit();
        e.pop_via().unwrap();
        e.set_received("192.0.2.7:1".parse().unwrap()).unwrap();
        assert_eq!(e.finish().unwrap_err(), EditError::Overlap);
    }
}
