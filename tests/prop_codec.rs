//! Property tests of the wire codec: generated messages parse with the right fields;
//! edits change only the bytes they are meant to change and re-parse; framing does not
//! depend on how the stream is split; nothing panics on arbitrary or mutated input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::Bytes;
use proptest::prelude::*;
use sipwire::wire::{
    decode_datagram, response, CSeq, ContactValue, EditError, Frame, Host, Limits, Message,
    NameAddr, Rport, StreamFramer, TransportToken, Uri, Via, ViaSpec,
};
use sipwire::TransportKind;

#[derive(Debug, Clone)]
struct GenVia {
    transport: &'static str,
    host: String,
    port: Option<u16>,
    branch: String,
    rport: u8,
    alias: bool,
    spaced: bool,
}

impl GenVia {
    fn render(&self) -> String {
        let mut s = if self.spaced {
            format!("SIP / 2.0 / {}  {}", self.transport, self.host)
        } else {
            format!("SIP/2.0/{} {}", self.transport, self.host)
        };
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        s.push_str(&format!(";branch=z9hG4bK{}", self.branch));
        match self.rport {
            1 => s.push_str(";rport"),
            2 => s.push_str(";rport=5070"),
            _ => {}
        }
        if self.alias {
            s.push_str(";alias");
        }
        if self.spaced {
            s.push_str(" ; x-unknown = val");
        }
        s
    }
}

#[derive(Debug, Clone)]
struct GenMsg {
    request: bool,
    method: String,
    code: u16,
    via_lines: Vec<Vec<GenVia>>,
    fold_vias: bool,
    name_style: u8,
    max_forwards: Option<u8>,
    routes: Vec<String>,
    call_id: String,
    seq: u32,
    extras: Vec<(String, String)>,
    body: Vec<u8>,
}

fn name(style: u8, full: &str, compact: Option<&str>) -> String {
    match style % 4 {
        0 => full.to_owned(),
        1 => full.to_ascii_lowercase(),
        2 => full.to_ascii_uppercase(),
        _ => compact.map_or_else(|| full.to_owned(), str::to_owned),
    }
}

impl GenMsg {
    fn render(&self) -> Vec<u8> {
        let st = self.name_style;
        let mut s = if self.request {
            format!("{} sip:bob@biloxi.example.com SIP/2.0\r\n", self.method)
        } else {
            format!("SIP/2.0 {} Whatever Reason\r\n", self.code)
        };
        for line in &self.via_lines {
            let sep = if self.fold_vias { " ,\r\n   " } else { ", " };
            let values: Vec<_> = line.iter().map(GenVia::render).collect();
            s.push_str(&format!(
                "{}: {}\r\n",
                name(st, "Via", Some("v")),
                values.join(sep)
            ));
        }
        if let Some(mf) = self.max_forwards {
            s.push_str(&format!("{}: {mf}\r\n", name(st, "Max-Forwards", None)));
        }
        for r in &self.routes {
            s.push_str(&format!("{}: {r}\r\n", name(st, "Route", None)));
        }
        s.push_str(&format!(
            "{}: \"Alice, A.\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n",
            name(st, "From", Some("f"))
        ));
        s.push_str(&format!(
            "{}: <sip:bob@biloxi.example.com>\r\n",
            name(st, "To", Some("t"))
        ));
        s.push_str(&format!(
            "{}: {}\r\n",
            name(st, "Call-ID", Some("i")),
            self.call_id
        ));
        s.push_str(&format!(
            "{}: {} {}\r\n",
            name(st, "CSeq", None),
            self.seq,
            self.method
        ));
        for (n, v) in &self.extras {
            s.push_str(&format!("{n}: {v}\r\n"));
        }
        s.push_str(&format!(
            "{}: {}\r\n\r\n",
            name(st, "Content-Length", Some("l")),
            self.body.len()
        ));
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    fn vias(&self) -> Vec<&GenVia> {
        self.via_lines.iter().flatten().collect()
    }
}

fn host_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,5}){1,2}".prop_map(|s| s),
        any::<[u8; 4]>().prop_map(|o| Ipv4Addr::from(o).to_string()),
        any::<u128>().prop_map(|v| format!("[{}]", Ipv6Addr::from(v))),
    ]
}

fn via_strategy() -> impl Strategy<Value = GenVia> {
    (
        prop::sample::select(vec![
            "UDP",
            "TCP",
            "TLS",
            "SCTP",
            "TLS-SCTP",
            "DTLS-SCTP",
            "WS",
        ]),
        host_strategy(),
        prop::option::of(1u16..),
        "[a-zA-Z0-9.-]{1,16}",
        0u8..3,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(transport, host, port, branch, rport, alias, spaced)| GenVia {
                transport,
                host,
                port,
                branch,
                rport,
                alias,
                spaced,
            },
        )
}

fn msg_strategy() -> impl Strategy<Value = GenMsg> {
    (
        any::<bool>(),
        prop::sample::select(vec![
            "INVITE", "OPTIONS", "REGISTER", "MESSAGE", "BYE", "X-METHOD",
        ]),
        100u16..700,
        prop::collection::vec(prop::collection::vec(via_strategy(), 1..3), 1..4),
        any::<bool>(),
        any::<u8>(),
        prop::option::of(any::<u8>()),
        prop::collection::vec(
            prop::sample::select(vec![
                "<sip:p1.example.com;lr>".to_owned(),
                "<sip:p2.example.com;lr>, <sip:[2001:db8::9]:5061;lr;transport=tls>".to_owned(),
            ]),
            0..3,
        ),
        "[a-zA-Z0-9.!%*_+`'~-]{1,20}(@[a-z0-9.]{1,12})?",
        any::<u32>(),
        prop::collection::vec(("X-[A-Za-z]{1,8}", "[ -~]{0,20}( \r\n [ -~]{1,10})?"), 0..4),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(
            |(
                request,
                method,
                code,
                via_lines,
                fold_vias,
                name_style,
                max_forwards,
                routes,
                call_id,
                seq,
                extras,
                body,
            )| GenMsg {
                request,
                method: method.to_owned(),
                code,
                via_lines,
                fold_vias,
                name_style,
                max_forwards,
                routes,
                call_id,
                seq,
                extras: extras
                    .into_iter()
                    .map(|(n, v)| (n, v.trim().to_owned()))
                    .collect(),
                body,
            },
        )
}

fn source_strategy() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<u8>(), 1u16..)
            .prop_map(|(o, p)| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, o)), p)),
        (any::<u16>(), 1u16..).prop_map(|(o, p)| SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, o)),
            p
        )),
    ]
}

/// The part of `orig` that `out` replaced: (start, end in orig, end in out), found from
/// the longest common prefix and suffix.
fn changed_region(orig: &[u8], out: &[u8]) -> (usize, usize, usize) {
    let prefix = orig.iter().zip(out).take_while(|(a, b)| a == b).count();
    let max_suffix = orig.len().min(out.len()) - prefix;
    let suffix = orig
        .iter()
        .rev()
        .zip(out.iter().rev())
        .take(max_suffix)
        .take_while(|(a, b)| a == b)
        .count();
    (prefix, orig.len() - suffix, out.len() - suffix)
}

fn offset(base: &[u8], sub: &[u8]) -> usize {
    sub.as_ptr() as usize - base.as_ptr() as usize
}

fn parse(bytes: Vec<u8>) -> Message {
    Message::parse(Bytes::from(bytes)).expect("generated message parses")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_messages_parse(g in msg_strategy()) {
        let raw = g.render();
        let m = parse(raw.clone());
        prop_assert_eq!(m.len(), raw.len());
        prop_assert_eq!(m.is_request(), g.request);
        prop_assert_eq!(m.call_id(), g.call_id.as_str());
        prop_assert_eq!(m.cseq(), CSeq { seq: g.seq, method: &g.method });
        prop_assert_eq!(m.content_length(), Some(g.body.len()));
        prop_assert_eq!(&m.body()[..], &g.body[..]);
        prop_assert_eq!(m.max_forwards(), g.max_forwards);
        prop_assert_eq!(m.from_tag(), Some("1928301774"));
        let gv = g.vias();
        prop_assert_eq!(m.via_count(), gv.len());
        for (v, want) in m.vias().zip(gv) {
            let v = v.unwrap();
            prop_assert_eq!(v.transport_raw, want.transport);
            prop_assert_eq!(v.transport.clone(), TransportToken::from_token(want.transport));
            prop_assert_eq!(v.host_raw, want.host.as_str());
            prop_assert_eq!(v.port, want.port);
            let branch = format!("z9hG4bK{}", want.branch);
            prop_assert_eq!(v.branch, Some(branch.as_str()));
            prop_assert_eq!(v.alias, want.alias);
            let rport = match want.rport { 1 => Some(Rport::Requested), 2 => Some(Rport::Port(5070)), _ => None };
            prop_assert_eq!(v.rport, rport);
        }
        let routes = g.routes.iter().map(|r| r.matches("sip:").count()).sum::<usize>();
        prop_assert_eq!(m.routes().filter(|r| r.is_ok()).count(), routes);
    }

    #[test]
    fn received_rport_edit_touches_only_the_top_via(g in msg_strategy(), src in source_strategy()) {
        let raw = g.render();
        let m = parse(raw.clone());
        let top = m.top_via().unwrap();
        let (v_start, v_end) = (offset(&raw_of(&m), top.raw), offset(&raw_of(&m), top.raw) + top.raw.len());
        let mut e = m.edit();
        let changed = e.set_received(src).unwrap();
        let out = e.finish().unwrap();
        let (a, b, _) = changed_region(&raw, &out);
        prop_assert_eq!(changed, out[..] != raw[..]);
        if changed {
            prop_assert!(a >= v_start && b <= v_end, "changed {a}..{b} outside Via {v_start}..{v_end}");
        }
        let m2 = parse(out.to_vec());
        let v2 = m2.top_via().unwrap();
        let top = m.top_via().unwrap();
        let want_received = top.rport.is_some()
            || top.host.ip().map_or(true, |ip| ip != src.ip());
        if want_received {
            prop_assert_eq!(v2.received, Some(src.ip()));
        } else {
            prop_assert_eq!(v2.received, None);
        }
        if top.rport.is_some() {
            prop_assert_eq!(v2.rport, Some(Rport::Port(src.port())));
        }
        prop_assert_eq!(v2.branch, top.branch);
        prop_assert_eq!(m2.via_count(), m.via_count());
        prop_assert_eq!(&m2.body()[..], &g.body[..]);
    }

    #[test]
    fn prepend_then_pop_via_is_identity(g in msg_strategy(), branch in "[a-zA-Z0-9]{1,20}", rport: bool, alias: bool) {
        let raw = g.render();
        let m = parse(raw.clone());
        let branch = format!("z9hG4bK{branch}");
        let mut e = m.edit();
        e.prepend_via(&ViaSpec {
            transport: TransportToken::Known(TransportKind::TlsSctp),
            host: Host::Name("proxy.example.com".into()),
            port: Some(5061),
            branch: &branch,
            rport,
            alias,
        }).unwrap();
        let out = e.finish().unwrap();
        let (a, b, c) = changed_region(&raw, &out);
        prop_assert_eq!(a, b, "pure insertion");
        prop_assert!(c > a);
        let m2 = parse(out.to_vec());
        prop_assert_eq!(m2.via_count(), m.via_count() + 1);
        let top = m2.top_via().unwrap();
        prop_assert_eq!(top.transport, TransportToken::Known(TransportKind::TlsSctp));
        prop_assert_eq!(top.branch, Some(branch.as_str()));
        prop_assert_eq!(top.alias, alias);
        prop_assert_eq!(top.rport.is_some(), rport);
        let mut e = m2.edit();
        e.pop_via().unwrap();
        prop_assert_eq!(&e.finish().unwrap()[..], &raw[..]);
    }

    #[test]
    fn pop_via_removes_exactly_the_first_value(g in msg_strategy()) {
        let raw = g.render();
        let m = parse(raw.clone());
        let mut e = m.edit();
        e.pop_via().unwrap();
        let out = e.finish().unwrap();
        // Exactly the first value goes: the whole line when it is alone on its line,
        // else the value up to the next value of the same line.
        let top = m.top_via().unwrap();
        let base = raw_of(&m);
        let v_at = offset(&base, top.raw);
        let (cut_from, cut_to) = if g.via_lines[0].len() == 1 {
            let line_start = raw[..v_at].iter().rposition(|&x| x == b'\n').map_or(0, |i| i + 1);
            (line_start, header_line_end(&raw, v_at + top.raw.len()))
        } else {
            let second = m.vias().nth(1).unwrap().unwrap();
            (v_at, offset(&base, second.raw))
        };
        let mut want = raw[..cut_from].to_vec();
        want.extend_from_slice(&raw[cut_to..]);
        prop_assert_eq!(&out[..], &want[..]);
        let gv = g.vias();
        if gv.len() > 1 {
            let m2 = parse(out.to_vec());
            prop_assert_eq!(m2.via_count(), gv.len() - 1);
            let top = m2.top_via().unwrap();
            prop_assert_eq!(top.host_raw, gv[1].host.as_str());
            let branch = format!("z9hG4bK{}", gv[1].branch);
            prop_assert_eq!(top.branch, Some(branch.as_str()));
        } else {
            prop_assert!(Message::parse(out).is_err(), "no Via left");
        }
    }

    #[test]
    fn max_forwards_edit(g in msg_strategy()) {
        let raw = g.render();
        let m = parse(raw.clone());
        let mut e = m.edit();
        match (g.max_forwards, e.decrement_max_forwards()) {
            (Some(0), r) => prop_assert_eq!(r, Err(EditError::TooManyHops)),
            (Some(v), Ok(n)) => {
                prop_assert_eq!(n, v - 1);
                let out = e.finish().unwrap();
                let (a, b, c) = changed_region(&raw, &out);
                let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
                prop_assert!(digits(&raw[a..b]) && digits(&out[a..c]));
                prop_assert_eq!(parse(out.to_vec()).max_forwards(), Some(v - 1));
            }
            (None, Ok(70)) => {
                let out = e.finish().unwrap();
                let (a, b, _) = changed_region(&raw, &out);
                prop_assert_eq!(a, b);
                prop_assert_eq!(parse(out.to_vec()).max_forwards(), Some(70));
            }
            (mf, r) => prop_assert!(false, "mf {mf:?} gave {r:?}"),
        }
    }

    #[test]
    fn combined_proxy_edits_round_trip(g in msg_strategy(), src in source_strategy()) {
        prop_assume!(g.max_forwards != Some(0));
        let raw = g.render();
        let m = parse(raw);
        let mut e = m.edit();
        e.set_received(src).unwrap();
        e.prepend_via_value("SIP/2.0/SCTP [2001:db8::1]:5060;branch=z9hG4bKproxy;rport").unwrap();
        e.decrement_max_forwards().unwrap();
        let had_routes = m.routes().count();
        if had_routes > 0 {
            e.remove_top_route().unwrap();
        }
        e.prepend_record_route("sip:[2001:db8::1];lr;transport=sctp").unwrap();
        let m2 = e.finish_message().unwrap();
        prop_assert_eq!(m2.via_count(), m.via_count() + 1);
        prop_assert_eq!(m2.routes().count(), had_routes.saturating_sub(1));
        prop_assert_eq!(m2.record_routes().count(), 1);
        prop_assert_eq!(m2.call_id(), m.call_id());
        prop_assert_eq!(m2.cseq(), m.cseq());
        prop_assert_eq!(m2.body(), m.body());
        prop_assert_eq!(m2.vias().nth(1).unwrap().unwrap().received.is_some()
            || m.top_via().unwrap().host.ip() == Some(src.ip()), true);
    }

    #[test]
    fn framing_is_independent_of_splits(
        msgs in prop::collection::vec(msg_strategy(), 1..4),
        pings in prop::collection::vec(0u8..3, 4),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut stream = Vec::new();
        let mut want = Vec::new();
        for (i, g) in msgs.iter().enumerate() {
            match pings[i % pings.len()] {
                1 => { stream.extend_from_slice(b"\r\n\r\n"); want.push(Frame::Ping); }
                2 => { stream.extend_from_slice(b"\r\n"); want.push(Frame::Pong); }
                _ => {}
            }
            let r = g.render();
            stream.extend_from_slice(&r);
            want.push(Frame::Message(Bytes::from(r)));
        }
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.sort_unstable();
        let mut f = StreamFramer::new(Limits::default());
        let mut got = Vec::new();
        let mut last = 0;
        for p in points.into_iter().chain(std::iter::once(stream.len())) {
            f.push(&stream[last..p]);
            last = p;
            while let Some(fr) = f.next_frame().unwrap() {
                got.push(fr);
            }
        }
        prop_assert_eq!(got, want);
        prop_assert!(f.is_at_boundary());
    }

    #[test]
    fn nothing_panics_on_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
        exercise(&data);
    }

    #[test]
    fn nothing_panics_on_mutated_messages(
        g in msg_strategy(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut data = g.render();
        for (at, byte, op) in edits {
            let i = at.index(data.len() + 1);
            match op {
                0 if i < data.len() => data[i] = byte,
                1 => data.insert(i, byte),
                _ => data.truncate(i),
            }
        }
        exercise(&data);
    }

    #[test]
    fn nothing_panics_on_header_values(data in "[ -~\t\r\n]{0,80}") {
        let b = data.as_bytes();
        let _ = Via::parse(b);
        let _ = NameAddr::parse(b, "To");
        let _ = ContactValue::parse(b);
        let _ = CSeq::parse(b);
        let _ = Uri::parse(&data);
        let _ = Host::parse(b);
        if let Ok(u) = Uri::parse(&data) {
            let _ = u.equivalent(&u);
            let _ = (u.transport(), u.maddr(), u.ttl(), u.headers().count(), u.port_or_default());
        }
        for v in sipwire::wire::split_values(b) {
            let _ = v;
        }
    }
}

/// End (after CRLF) of the header line that contains `pos`, continuation lines included.
fn header_line_end(raw: &[u8], pos: usize) -> usize {
    let mut i = pos;
    while i + 1 < raw.len() {
        if raw[i] == b'\r' && raw[i + 1] == b'\n' && !matches!(raw.get(i + 2), Some(b' ' | b'\t')) {
            return i + 2;
        }
        i += 1;
    }
    raw.len()
}

fn raw_of(m: &Message) -> Bytes {
    m.as_bytes().clone()
}

/// Runs every entry point on `data`.
fn exercise(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    match Message::parse(bytes.clone()) {
        Ok(m) => {
            let _ = (
                m.top_via(),
                m.vias().count(),
                m.contacts().count(),
                m.routes().count(),
            );
            let _ = (m.from(), m.to(), m.request_sip_uri(), m.body());
            let _ = response::response_to(&m, 500, "x");
            let mut e = m.edit();
            let _ = e.set_received("192.0.2.1:5060".parse().unwrap());
            let _ = e.decrement_max_forwards();
            let _ = e.finish().map(Message::parse);
            let mut e = m.edit();
            let _ = e.pop_via();
            let _ = e.remove_top_route();
            let _ = e.finish().map(Message::parse);
        }
        Err(err) => {
            let _ = response::error_response(data, &err);
        }
    }
    let _ = decode_datagram(bytes, &Limits::default());
    let mut f = StreamFramer::new(Limits::default());
    f.push(data);
    for _ in 0..data.len() + 2 {
        match f.next_frame() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                let _ = response::framing_error_response(f.buffered(), &e);
                break;
            }
        }
    }
}
