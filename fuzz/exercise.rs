//! What each fuzz target does with one input. Shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/*.rs`) and by `tests/fuzz_regressions.rs`, which replays every file
//! of `tests/data/fuzz-regressions/` through all four on stable, so that a crash found
//! once stays fixed without needing nightly or libFuzzer in CI.
//!
//! The rule checked everywhere is the one `src/wire/mod.rs` promises: no panic on any
//! input. A few properties that must hold whatever the input are asserted on top (framing
//! does not depend on how the bytes were split; a URI is equivalent to itself; editing
//! a parsed message with valid values yields a message that parses).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::Bytes;
use sipwire::wire::{
    decode_datagram, response, split_values, CSeq, ContactValue, Datagram, EditError, Frame,
    FramingError, HeaderKind, Host, Limits, Message, NameAddr, StreamFramer, TransportToken, Uri,
    Via, ViaSpec,
};
use sipwire::TransportKind;

/// Reads every view a transport or an upper layer may ask of a parsed message.
fn touch_message(m: &Message) {
    let _ = (m.len(), m.is_empty(), m.is_request(), m.is_response());
    let _ = (m.start_line(), m.method(), m.request_uri(), m.status_code());
    let _ = m.reason_phrase();
    if let Some(Ok(u)) = m.request_sip_uri() {
        touch_uri(&u);
    }
    for h in m.headers() {
        let _ = h.value_str();
        if h.kind.is_list() {
            for v in split_values(h.value) {
                let _ = v;
            }
        }
    }
    let _ = (m.header_count(), m.header("Via"), m.header("v"));
    let _ = m.header_lines("Contact").count();
    let _ = m.values(HeaderKind::Route).count();
    if let Ok(v) = m.top_via() {
        touch_via(&v);
    }
    // The top Via kept at parse time is the first value of the first Via line.
    assert_eq!(
        m.top_via().ok(),
        m.vias().next().and_then(|v| v.ok()),
        "top Via"
    );
    for v in m.vias().flatten() {
        touch_via(&v);
    }
    let _ = (m.via_count(), m.call_id(), m.cseq(), m.content_length());
    let _ = m.max_forwards();
    for a in [m.from(), m.to()].into_iter().flatten() {
        touch_name_addr(&a);
    }
    // The tags kept at parse time are those of the parsed headers.
    assert_eq!(
        m.from_tag(),
        m.from().ok().and_then(|a| a.tag()),
        "From tag"
    );
    assert_eq!(m.to_tag(), m.to().ok().and_then(|a| a.tag()), "To tag");
    for c in m.contacts().flatten() {
        if let ContactValue::Addr(a) = c {
            touch_name_addr(&a);
        }
    }
    for a in m.routes().chain(m.record_routes()).flatten() {
        touch_name_addr(&a);
    }
    let _ = (m.head_len(), m.body());
    if m.is_request() {
        let _ = response::too_many_hops(m);
        let _ = response::response_to(m, 503, "Service Unavailable");
    }
}

fn touch_via(v: &Via<'_>) {
    let _ = (v.params().count(), v.param("branch"), v.rfc3261_branch());
    let _ = (v.port_or_default(), v.response_target(), v.is_sip_2_0());
    let _ = (v.host.ip(), v.host.to_string(), v.transport.as_str());
}

fn touch_name_addr(a: &NameAddr<'_>) {
    let _ = (a.params().count(), a.param("tag"), a.tag());
    if let Ok(u) = a.sip_uri() {
        touch_uri(&u);
    }
}

fn touch_uri(u: &Uri<'_>) {
    let _ = u.params().count();
    let _ = (u.param("lr"), u.transport_param(), u.transport(), u.maddr());
    let _ = (u.lr(), u.user_param(), u.ttl(), u.method());
    let _ = u.headers().count();
    let _ = (u.port_or_default(), u.host.to_string(), u.host.ip());
    assert!(u.equivalent(u), "URI not equivalent to itself: {:?}", u.raw);
    // Parsing the text again gives the same URI.
    match Uri::parse(u.raw) {
        Ok(again) => assert_eq!(&again, u, "URI parses differently the second time"),
        Err(e) => panic!("URI {:?} parsed once, then failed: {e}", u.raw),
    }
}

/// (a) The message parser, unlimited and with the default limits, and the UDP datagram
/// decoder; error responses are built for refused input as a transport would.
pub fn parse_message(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    match Message::parse(bytes.clone()) {
        Ok(m) => {
            touch_message(&m);
            // The bytes it kept parse again to the same message.
            let again = Message::parse(m.as_bytes().clone());
            assert!(
                again.is_ok(),
                "a parsed message's bytes fail to parse: {again:?}"
            );
            // A response built with its index carries the index a parse of it gives.
            if m.is_request() {
                for (code, extra) in [(200, &[][..]), (503, &[("Retry-After", "5")][..])] {
                    let built = response::response_message(&m, code, "Reason", extra);
                    let Some(built) = built else {
                        panic!("no {code} for a parsed request");
                    };
                    touch_message(&built);
                    match Message::parse(Bytes::copy_from_slice(built.as_bytes())) {
                        Ok(parsed) => assert_eq!(
                            format!("{built:?}"),
                            format!("{parsed:?}"),
                            "a built response's index differs from a parse"
                        ),
                        Err(e) => panic!("a built response does not parse: {e}"),
                    }
                }
            }
        }
        Err(e) => {
            let _ = (e.status_code(), response::error_reason(&e), e.to_string());
            let _ = response::error_response(data, &e);
        }
    }
    let _ = Message::parse_with_limits(bytes.clone(), &Limits::default());
    match decode_datagram(bytes, &Limits::default()) {
        Ok(Datagram::Message(m)) => touch_message(&m),
        Ok(Datagram::KeepAlive | Datagram::Stun(_)) => {}
        Err(e) => {
            let _ = response::error_response(data, &e);
        }
    }
}

/// Limits small enough that fuzz inputs reach them.
fn small_limits(sel: u8) -> Limits {
    match sel % 4 {
        0 => Limits::default(),
        1 => Limits {
            max_message_bytes: 512,
            max_header_bytes: 256,
            max_body_bytes: 128,
            max_headers: 8,
        },
        2 => Limits {
            max_message_bytes: 64,
            max_header_bytes: 48,
            max_body_bytes: 16,
            max_headers: 2,
        },
        _ => Limits {
            max_message_bytes: 0,
            max_header_bytes: 0,
            max_body_bytes: 0,
            max_headers: 0,
        },
    }
}

/// Everything a framer hands out for `chunks` pushed one after another (draining after
/// each push), and the error it stopped at, if any.
fn frame_all<'a>(
    limits: Limits,
    chunks: impl Iterator<Item = &'a [u8]>,
) -> (Vec<Frame>, Option<FramingError>) {
    let mut f = StreamFramer::new(limits);
    let mut frames = Vec::new();
    for chunk in chunks {
        f.push(chunk);
        loop {
            match f.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => {
                    // A failed framer stays failed.
                    assert_eq!(f.next_frame(), Err(e.clone()), "framer recovered");
                    let _ = response::framing_error_response(f.buffered(), &e);
                    let _ = (e.status_code(), e.to_parse_error());
                    return (frames, Some(e));
                }
            }
        }
    }
    let _ = f.is_at_boundary();
    (frames, None)
}

/// (b) The stream framer, fed the same bytes in one push and in the chunks the input
/// chooses: the frames and the error must be the same. Every frame then goes through the
/// message parser, and the whole input and each chunk through the datagram decoder.
///
/// Input layout: byte 0 = limits selector (low 2 bits) and number of chunk-size bytes
/// (high 6 bits, mod 16); then that many chunk sizes (each 1..=256, used cyclically);
/// the rest is the stream.
pub fn stream_framer(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let limits = small_limits(head);
    let n = usize::from(head >> 2) % 16;
    let (sizes, stream) = rest.split_at(n.min(rest.len()));
    let whole = frame_all(limits, std::iter::once(stream));

    let mut chunks = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < stream.len() {
        let size = sizes
            .get(i % sizes.len().max(1))
            .map_or(1, |&s| usize::from(s) + 1);
        let end = (pos + size).min(stream.len());
        chunks.push(stream.get(pos..end).unwrap_or_default());
        pos = end;
        i += 1;
    }
    let split = frame_all(limits, chunks.iter().copied());
    // A header block without its end is refused as soon as the buffer passes the limit,
    // so the size reported depends on how much had arrived: compare errors without it.
    let normalise = |(frames, err): (Vec<Frame>, Option<FramingError>)| {
        let err = err.map(|e| match e {
            FramingError::TooLarge { what, limit, .. } => FramingError::TooLarge {
                what,
                size: 0,
                limit,
            },
            other => other,
        });
        (frames, err)
    };
    let whole = normalise(whole);
    assert_eq!(
        whole,
        normalise(split),
        "framing depends on how the stream was split"
    );

    for frame in &whole.0 {
        if let Frame::Message(b) = frame {
            if let Ok(m) = Message::parse_with_limits(b.clone(), &limits) {
                touch_message(&m);
            }
        }
    }

    // Datagram mode: the stream as one datagram, and each chunk as one.
    for dg in std::iter::once(stream).chain(chunks.iter().copied()) {
        if let Ok(Datagram::Message(m)) = decode_datagram(Bytes::copy_from_slice(dg), &limits) {
            touch_message(&m);
        }
    }

    // A framer that sent a ping reads a lone CRLF at the end as the pong at once.
    let mut f = StreamFramer::new(limits);
    f.set_awaiting_pong(true);
    f.push(stream);
    for _ in 0..stream.len() + 1 {
        match f.next_frame() {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
}

/// (c) The SIP/SIPS URI parser, and the header-value parsers that carry URIs or host
/// names: byte 0 selects which one gets the rest of the input.
pub fn uri(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 6 {
        0 | 1 => {
            if let Ok(u) = Uri::parse_bytes(rest) {
                touch_uri(&u);
                if let Ok(text) = std::str::from_utf8(rest) {
                    let u2 = Uri::parse(text);
                    assert_eq!(u2.as_ref().ok(), Some(&u), "parse and parse_bytes differ");
                }
            }
        }
        2 => {
            if let Ok(a) = NameAddr::parse(rest, "To") {
                touch_name_addr(&a);
            }
            if let Ok(ContactValue::Addr(a)) = ContactValue::parse(rest) {
                touch_name_addr(&a);
            }
        }
        3 => {
            for v in split_values(rest) {
                if let Ok(Ok(via)) = v.map(Via::parse) {
                    touch_via(&via);
                }
            }
            let _ = Via::peek_top(rest);
        }
        4 => {
            if let Some(h) = Host::parse(rest) {
                let shown = h.to_string();
                let _ = (h.ip(), h.same_as(&h));
                assert!(h.same_as(&h), "host differs from itself: {shown}");
            }
        }
        _ => {
            let _ = CSeq::parse(rest);
            if let Ok(t) = std::str::from_utf8(rest) {
                let tok = TransportToken::from_token(t);
                let _ = (tok.is_reliable(), tok.is_secure(), tok.default_port());
            }
        }
    }
}

/// (d) Parse, edit the way a proxy does (prepend a Via, stamp received/rport, decrement
/// Max-Forwards, add a Record-Route; or pop the top Via as for a response), and parse
/// the result. Forwarding edits with valid values must give a message that parses.
pub fn edit_roundtrip(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Ok(m) = Message::parse(Bytes::copy_from_slice(rest)) else {
        return;
    };
    let source = if sel & 1 == 0 {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), 5070)
    } else {
        SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)),
            u16::from(sel) << 8,
        )
    };
    let transport = match (sel >> 1) % 4 {
        0 => TransportToken::Known(TransportKind::Udp),
        1 => TransportToken::Known(TransportKind::Tcp),
        2 => TransportToken::Known(TransportKind::Tls),
        _ => TransportToken::Known(TransportKind::Sctp),
    };
    let spec = ViaSpec {
        transport,
        host: Host::Name("proxy.example.net".into()),
        port: (sel & 8 != 0).then_some(5061),
        branch: "z9hG4bKfuzz1",
        rport: sel & 16 != 0,
        alias: sel & 32 != 0,
    };

    // Forwarding a request.
    if m.is_request() {
        let mut e = m.edit();
        let stamped = e.set_received(source);
        let hops = e.decrement_max_forwards();
        let via = e.prepend_via(&spec).map(|_| ());
        let rr = e
            .prepend_record_route("sip:proxy.example.net;lr")
            .map(|_| ());
        let route = e.remove_top_route().map(|_| ());
        let out = e.finish_message();
        // The original parsed, its top Via parsed (Message::parse checks it) and all
        // added text is valid: the edited message must parse.
        let hops_ok = matches!(hops, Ok(_) | Err(EditError::TooManyHops));
        if stamped.is_ok() && via.is_ok() && rr.is_ok() && hops_ok {
            let edited = match out {
                Ok(edited) => edited,
                Err(e) => panic!("forwarding edits broke a parsed request: {e}"),
            };
            touch_message(&edited);
            same_as_parse(&edited, "forwarding");
            let top = edited.top_via();
            assert!(
                top.as_ref().is_ok_and(|v| v.branch == Some("z9hG4bKfuzz1")),
                "the prepended Via is not on top: {top:?}"
            );
            if let Ok(h) = hops {
                assert_eq!(
                    edited.max_forwards(),
                    Some(h),
                    "Max-Forwards not decremented"
                );
            }
            // And again: the edited message edits as well.
            let mut e2 = edited.edit();
            let _ = e2.pop_via();
            if let Ok(back) = e2.finish_message() {
                touch_message(&back);
                same_as_parse(&back, "the forwarded Via popped");
            }
        }
        let _ = route;
    }

    // Receiving a response: pop the top Via, whatever else is there.
    let mut e = m.edit();
    if e.pop_via().is_ok() {
        match e.finish() {
            Ok(b) => {
                if let Ok(back) = Message::parse(b) {
                    touch_message(&back);
                }
            }
            Err(err) => panic!("popping the top Via of a parsed message failed: {err}"),
        }
    }

    // The edits whose result keeps the parsed index, moved rather than parsed again
    // (`received`/`rport`, Max-Forwards), give the message a full parse of its bytes gives.
    for max_forwards in [false, true] {
        let mut e = m.edit();
        let edited = if max_forwards {
            e.decrement_max_forwards().is_ok()
        } else {
            e.set_received(source).is_ok()
        };
        if !edited {
            continue;
        }
        let Ok(moved) = e.finish_message() else {
            continue;
        };
        same_as_parse(&moved, "received/rport or Max-Forwards");
    }

    // A response's top Via popped, a request's top Route removed: index moved or parsed.
    let mut e = m.edit();
    if e.pop_via().is_ok() {
        if let Ok(popped) = e.finish_message() {
            same_as_parse(&popped, "top Via popped");
        }
    }
    let mut e = m.edit();
    if e.remove_top_route().is_ok() {
        if let Ok(cut) = e.finish_message() {
            same_as_parse(&cut, "top Route removed");
        }
    }

    // Any single edit alone, result parsed.
    let mut e = m.edit();
    let _ = e.prepend_route("sips:next.example.com;lr");
    let _ = e.decrement_max_forwards();
    if let Ok(b) = e.finish() {
        let _ = Message::parse(b);
    }
}

/// An edited message's index (moved from the original's by `Editor::finish_message`) is the
/// one a full parse of its bytes gives.
fn same_as_parse(edited: &Message, what: &str) {
    match Message::parse(Bytes::copy_from_slice(edited.as_bytes())) {
        Ok(parsed) => assert_eq!(
            format!("{edited:?}"),
            format!("{parsed:?}"),
            "{what}: the moved index differs from a parse"
        ),
        Err(err) => panic!("{what}: an edited message kept an index but does not parse: {err}"),
    }
}
