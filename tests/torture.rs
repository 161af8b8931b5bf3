//! RFC 4475 torture messages (tests/data/rfc4475/*.dat, the files of RFC 4475 Appendix B)
//! through the transport-layer codec.
//!
//! Each message is checked twice where it matters: as a UDP datagram
//! (`decode_datagram`) and as bytes on a stream (`StreamFramer`). The transport layer
//! validates what it needs to route and frame a message: start line, header syntax,
//! Content-Length, the top Via, From/To, Call-ID, CSeq (and its method), Max-Forwards.
//! Everything else (unknown schemes, Require, Content-Type, Authorization, Date, Expires,
//! Contact syntax, branch quality) belongs to the transaction and UA layers: for those
//! messages we assert that the codec accepts the message and exposes the field the upper
//! layer needs to decide.

use std::path::PathBuf;

use bytes::Bytes;
use sipwire::wire::{
    decode_datagram, response, ContactValue, Datagram, EditError, Frame, FramingError, Host,
    Limits, Message, ParseError, Rport, Scheme, StreamFramer, TransportToken,
};
use sipwire::TransportKind;

fn load(name: &str) -> Bytes {
    let p: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests/data/rfc4475",
        &format!("{name}.dat"),
    ]
    .iter()
    .collect();
    let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    Bytes::from(data)
}

/// The message as a UDP datagram.
fn datagram(name: &str) -> Result<Message, ParseError> {
    match decode_datagram(load(name), &Limits::default())? {
        Datagram::Message(m) => Ok(m),
        other => panic!("{name}: not a message: {other:?}"),
    }
}

fn ok(name: &str) -> Message {
    datagram(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn err(name: &str) -> ParseError {
    match datagram(name) {
        Ok(_) => panic!("{name}: parsed but must fail"),
        Err(e) => e,
    }
}

/// The message pushed on a stream in one piece, then at every split point.
fn stream(name: &str) -> Result<Option<Bytes>, FramingError> {
    let data = load(name);
    let mut f = StreamFramer::new(Limits::default());
    f.push(&data);
    let whole = match f.next_frame()? {
        Some(Frame::Message(m)) => Some(m),
        Some(other) => panic!("{name}: unexpected {other:?}"),
        None => None,
    };
    for cut in 1..data.len() {
        let mut f = StreamFramer::new(Limits::default());
        f.push(&data[..cut]);
        let first = f.next_frame();
        f.push(&data[cut..]);
        let got = match first {
            Ok(Some(Frame::Message(m))) => Ok(Some(m)),
            Ok(None) => f.next_frame().map(|fr| match fr {
                Some(Frame::Message(m)) => Some(m),
                _ => None,
            }),
            Ok(Some(other)) => panic!("{name}: unexpected {other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(got, Ok(whole.clone()), "{name}: split at {cut}");
    }
    Ok(whole)
}

fn reason(m: &Message) -> String {
    String::from_utf8_lossy(m.reason_phrase().unwrap_or_default()).into_owned()
}

fn answer(name: &str, e: &ParseError) -> Option<u16> {
    // The response echoes the request's (possibly malformed) headers, so only its status
    // line is read here.
    let r = response::error_response(&load(name), e)?;
    assert!(r.starts_with(b"SIP/2.0 "), "{name}");
    assert!(r.ends_with(b"Content-Length: 0\r\n\r\n"), "{name}");
    std::str::from_utf8(r.get(8..11)?).ok()?.parse().ok()
}

// ---------------------------------------------------------------- 3.1.1 valid messages

#[test]
fn wsinv_short_tortuous_invite() {
    let m = ok("wsinv");
    assert_eq!(m.method(), Some("INVITE"));
    assert_eq!(
        m.request_uri(),
        Some("sip:vivekg@chair-dnrc.example.com;unknownparam")
    );
    let ruri = m.request_sip_uri().unwrap().unwrap();
    assert_eq!(ruri.param("unknownparam"), Some(None));
    assert_eq!(m.to_tag(), Some("1918181833n"));
    let from = m.from().unwrap();
    assert_eq!(from.display_name, Some(r#"J Rosenberg \\\""#));
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(m.max_forwards(), Some(68));
    assert_eq!(m.call_id(), "wsinv.ndaksdj@192.0.2.1");
    assert_eq!(m.content_length(), Some(150));
    assert_eq!(m.body().len(), 150);
    assert_eq!(m.cseq().seq, 9);
    assert_eq!(m.cseq().method, "INVITE");
    let vias: Vec<_> = m.vias().map(|v| v.unwrap()).collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].transport, TransportToken::Known(TransportKind::Udp));
    assert_eq!(vias[0].host, Host::Ipv4("192.0.2.2".parse().unwrap()));
    assert_eq!(vias[0].branch, Some("390skdjuw"));
    assert_eq!(vias[1].transport, TransportToken::Known(TransportKind::Tcp));
    assert_eq!(vias[1].host_raw, "spindle.example.com");
    assert_eq!(vias[1].branch, Some("z9hG4bK9ikj8"));
    assert_eq!(vias[2].host_raw, "192.168.255.111");
    assert_eq!(vias[2].branch, Some("z9hG4bK30239"));
    assert_eq!(m.header("s"), Some(&b""[..]));
    assert_eq!(
        m.header("NewFangledHeader"),
        Some(&b"newfangled value\r\n continued newfangled value"[..])
    );
    assert_eq!(
        m.header("UnknownHeaderWithUnusualValue"),
        Some(&b";;,,;;,;"[..])
    );
    let route = m.routes().next().unwrap().unwrap();
    let ru = route.sip_uri().unwrap();
    assert!(ru.lr());
    assert_eq!(ru.param("unknownwith"), Some(Some("value")));
    let contacts: Vec<_> = m.contacts().map(|c| c.unwrap()).collect();
    let [ContactValue::Addr(c)] = &contacts[..] else {
        panic!("one contact expected: {contacts:?}")
    };
    assert_eq!(c.display_name, Some(r#"Quoted string \"\""#));
    assert_eq!(c.param("newparam"), Some(Some("newvalue")));
    assert_eq!(c.param("secondparam"), Some(None));
    assert_eq!(c.param("q"), Some(Some("0.33")));
    assert!(stream("wsinv").unwrap().is_some());
}

#[test]
fn intmeth_wide_range_of_valid_characters() {
    let m = ok("intmeth");
    let method = "!interesting-Method0123456789_*+`.%indeed'~";
    assert_eq!(m.method(), Some(method));
    assert_eq!(m.cseq().method, method);
    let u = m.request_sip_uri().unwrap().unwrap();
    assert_eq!(
        u.user,
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        u.password,
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(u.host_raw, "example.com");
    assert_eq!(m.top_via().unwrap().branch, Some("z9hG4bK-.!%66*_+`'~"));
    // The To display name holds quoted BEL, NUL and DEL.
    assert_eq!(
        m.to().unwrap().display_name,
        Some("BEL:\\\x07 NUL:\\\0 DEL:\\\x7f")
    );
    assert_eq!(m.from_tag(), Some("_token~1'+`*%!-."));
    assert_eq!(m.call_id(), "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{");
    assert_eq!(m.max_forwards(), Some(255));
    assert!(m.header("extensionHeader-!.%*+_`'~").is_some());
    assert!(stream("intmeth").unwrap().is_some());
}

#[test]
fn esc01_valid_use_of_escapes() {
    let m = ok("esc01");
    let u = m.request_sip_uri().unwrap().unwrap();
    assert_eq!(u.user, Some("sips%3Auser%40example.com"));
    assert_eq!(u.host_raw, "example.net");
    let to = m.to().unwrap().sip_uri().unwrap();
    // %75se%72 is "user": equal to an unescaped URI.
    assert!(to.equivalent(&sipwire::wire::Uri::parse("sip:user@example.com").unwrap()));
    assert_eq!(m.call_id(), "esc01.239409asdfakjkn23onasd0-3234");
    assert_eq!(m.header("C"), Some(&b"application/sdp"[..]));
    let Some(Ok(ContactValue::Addr(c))) = m.contacts().next() else {
        panic!("contact")
    };
    let cu = c.sip_uri().unwrap();
    assert_eq!(cu.params().count(), 2);
}

#[test]
fn escnull_escaped_nulls_in_uris() {
    let m = ok("escnull");
    let contacts: Vec<_> = m
        .contacts()
        .map(|c| match c.unwrap() {
            ContactValue::Addr(a) => a.sip_uri().unwrap().user.unwrap().to_owned(),
            ContactValue::Star => panic!("star"),
        })
        .collect();
    assert_eq!(contacts, vec!["%00", "%00%00"]);
    assert_eq!(m.content_length(), Some(0));
}

#[test]
fn esc02_percent_not_an_escape() {
    let m = ok("esc02");
    assert_eq!(m.method(), Some("RE%47IST%45R"), "not REGISTER");
    assert_eq!(m.to().unwrap().display_name, Some("%Z%45"));
    assert_eq!(m.top_via().unwrap().branch, Some("z9hG4bK209%fzsnel234"));
    // C%6Fntact is an unknown header, not Contact.
    assert_eq!(m.contacts().count(), 2);
    assert!(m.header("C%6Fntact").is_some());
}

#[test]
fn lwsdisp_no_lws_between_display_name_and_laquot() {
    let m = ok("lwsdisp");
    let f = m.from().unwrap();
    assert_eq!(f.display_name, Some("caller"));
    assert_eq!(f.uri, "sip:caller@example.com");
}

#[test]
fn longreq_long_values() {
    let m = ok("longreq");
    assert_eq!(m.via_count(), 34);
    assert_eq!(m.top_via().unwrap().host_raw, "sip33.example.com");
    let last = m.vias().last().unwrap().unwrap();
    assert_eq!(last.received, Some("192.0.2.5".parse().unwrap()));
    assert!(last.branch.unwrap().len() > 100);
    assert!(m.call_id().starts_with("longreq.onereallyreally"));
    assert!(m
        .to()
        .unwrap()
        .display_name
        .unwrap()
        .contains("extremeextreme"));
    assert!(m.from_tag().unwrap().starts_with("1298298"));
    assert_eq!(m.content_length(), Some(150));
    assert!(stream("longreq").unwrap().is_some());
}

#[test]
fn dblreq_extra_octets_in_a_datagram() {
    let m = ok("dblreq");
    assert_eq!(m.method(), Some("REGISTER"));
    assert_eq!(m.content_length(), Some(0));
    assert!(m.body().is_empty(), "the second request is discarded");
    assert!(!m.as_bytes().windows(6).any(|w| w == b"INVITE"));
    // On a stream the same bytes are two messages.
    let data = load("dblreq");
    let mut f = StreamFramer::new(Limits::default());
    f.push(&data);
    let Some(Frame::Message(first)) = f.next_frame().unwrap() else {
        panic!("first")
    };
    assert_eq!(Message::parse(first).unwrap().method(), Some("REGISTER"));
    assert_eq!(f.next_frame().unwrap(), Some(Frame::Pong), "the stray CRLF");
    let Some(Frame::Message(second)) = f.next_frame().unwrap() else {
        panic!("second")
    };
    let second = Message::parse(second).unwrap();
    assert_eq!(second.method(), Some("INVITE"));
    assert_eq!(second.body().len(), 150);
}

#[test]
fn semiuri_semicolon_in_user_part() {
    let m = ok("semiuri");
    let u = m.request_sip_uri().unwrap().unwrap();
    assert_eq!(u.user, Some("user;par=u%40example.net"));
    assert_eq!(u.host_raw, "example.com");
    assert_eq!(u.params().count(), 0);
    assert!(m.header("Accept").unwrap().ends_with(b"message/sipfrag"));
}

#[test]
fn transports_varied_and_unknown() {
    let m = ok("transports");
    let t: Vec<_> = m.vias().map(|v| v.unwrap().transport).collect();
    assert_eq!(
        t,
        vec![
            TransportToken::Known(TransportKind::Udp),
            TransportToken::Known(TransportKind::Sctp),
            TransportToken::Known(TransportKind::Tls),
            TransportToken::Other("UNKNOWN".into()),
            TransportToken::Known(TransportKind::Tcp),
        ]
    );
    assert_eq!(m.call_id(), "transports.kijh4akdnaqjkwendsasfdj");
}

#[test]
fn mpart01_multipart_binary_body() {
    let m = ok("mpart01");
    assert_eq!(m.content_length(), Some(553));
    assert_eq!(m.body().len(), 553);
    assert!(m.body().ends_with(b"--7a9cbec02ceef655--\r\n"));
    assert_eq!(m.top_via().unwrap().rport, Some(Rport::Requested));
    assert!(stream("mpart01").unwrap().is_some());
}

#[test]
fn unreason_utf8_reason_phrase() {
    let m = ok("unreason");
    assert_eq!(m.status_code(), Some(200));
    assert!(reason(&m).starts_with("= 2**3 * 5**2 но сто девяносто девять"));
    assert_eq!(m.body().len(), 154);
}

#[test]
fn noreason_empty_reason_phrase() {
    let m = ok("noreason");
    assert_eq!(m.status_code(), Some(100));
    assert_eq!(reason(&m), "");
}

// -------------------------------------------------------------- 3.1.2 invalid messages

#[test]
fn badinv01_extraneous_separators() {
    let e = err("badinv01");
    assert_eq!(e, ParseError::BadVia("empty parameter"));
    assert_eq!(answer("badinv01", &e), Some(400));
}

#[test]
fn clerr_content_length_larger_than_message() {
    let e = err("clerr");
    assert!(matches!(
        e,
        ParseError::TruncatedBody { expected: 9999, .. }
    ));
    assert_eq!(
        answer("clerr", &e),
        Some(400),
        "a request gets 400 (RFC 3261 §18.3)"
    );
    // On a stream the framer waits for the rest of the body.
    assert_eq!(stream("clerr"), Ok(None));
}

#[test]
fn ncl_negative_content_length() {
    assert_eq!(err("ncl"), ParseError::BadContentLength);
    assert_eq!(answer("ncl", &err("ncl")), Some(400));
    assert_eq!(stream("ncl"), Err(FramingError::BadContentLength));
}

#[test]
fn scalar02_request_scalar_overflow() {
    let e = err("scalar02");
    assert_eq!(e, ParseError::BadCSeq("sequence number exceeds 32 bits"));
    assert_eq!(answer("scalar02", &e), Some(400));
}

#[test]
fn scalarlg_response_scalar_overflow() {
    let e = err("scalarlg");
    assert!(matches!(e, ParseError::BadCSeq(_)));
    assert_eq!(answer("scalarlg", &e), None, "a bad response is discarded");
}

#[test]
fn quotbal_unterminated_quoted_string() {
    let e = err("quotbal");
    assert_eq!(
        e,
        ParseError::BadNameAddr("To", "unterminated quoted display name")
    );
    assert_eq!(answer("quotbal", &e), Some(400));
}

#[test]
fn ltgtruri_request_uri_in_angle_brackets() {
    assert_eq!(
        err("ltgtruri"),
        ParseError::BadRequestUri("not an absolute URI")
    );
    assert_eq!(answer("ltgtruri", &err("ltgtruri")), Some(400));
}

#[test]
fn lwsruri_lws_in_request_uri() {
    assert!(matches!(err("lwsruri"), ParseError::BadStartLine(_)));
    assert_eq!(answer("lwsruri", &err("lwsruri")), Some(400));
}

#[test]
fn lwsstart_multiple_spaces_in_request_line() {
    assert_eq!(
        err("lwsstart"),
        ParseError::BadStartLine("more than one space between elements")
    );
    assert_eq!(answer("lwsstart", &err("lwsstart")), Some(400));
}

#[test]
fn trws_trailing_spaces_in_request_line() {
    assert_eq!(
        err("trws"),
        ParseError::BadStartLine("extra white space or elements")
    );
    assert_eq!(answer("trws", &err("trws")), Some(400));
}

#[test]
fn escruri_headers_in_request_uri() {
    // RFC 4475 allows rejecting with 400; a transport layer must not forward them.
    assert_eq!(
        err("escruri"),
        ParseError::BadRequestUri("headers not allowed")
    );
    assert_eq!(answer("escruri", &err("escruri")), Some(400));
}

#[test]
fn baddate_is_for_the_ua_layer() {
    // Date is not a transport-layer header: the message passes; a UA may answer 400.
    let m = ok("baddate");
    assert_eq!(
        m.header("Date"),
        Some(&b"Fri, 01 Jan 2010 16:00:00 EST"[..])
    );
}

#[test]
fn regbadct_unbracketed_uri_with_headers() {
    // Contact is not validated on receipt (registrar layer); the lazy accessor reports it.
    let m = ok("regbadct");
    let c = m.contacts().next().unwrap();
    assert_eq!(
        c,
        Err(ParseError::BadNameAddr(
            "Contact",
            "URI with headers or comma must be in angle brackets"
        ))
    );
}

#[test]
fn badaspec_spaces_inside_angle_brackets_tolerated() {
    // Liberal choice allowed by RFC 4475 §3.1.2.14: the spaces are ignored.
    let m = ok("badaspec");
    assert_eq!(m.to().unwrap().uri, "sip:t.watson@example.org");
    assert_eq!(m.to().unwrap().display_name, Some("Watson, Thomas"));
}

#[test]
fn baddn_unquoted_display_name_with_comma() {
    let e = err("baddn");
    assert_eq!(
        e,
        ParseError::BadNameAddr("From", "display name must be quoted")
    );
    assert_eq!(answer("baddn", &e), Some(400));
}

#[test]
fn badvers_unknown_protocol_version() {
    let e = err("badvers");
    assert_eq!(e, ParseError::BadVersion);
    assert_eq!(answer("badvers", &e), Some(505));
}

#[test]
fn mismatch01_start_line_and_cseq_method() {
    assert_eq!(err("mismatch01"), ParseError::CSeqMethodMismatch);
    assert_eq!(answer("mismatch01", &err("mismatch01")), Some(400));
}

#[test]
fn mismatch02_unknown_method_and_cseq_mismatch() {
    // RFC 4475 accepts 400 (or 501): the mismatch is caught first.
    assert_eq!(err("mismatch02"), ParseError::CSeqMethodMismatch);
    assert_eq!(answer("mismatch02", &err("mismatch02")), Some(400));
}

#[test]
fn bigcode_overlarge_response_code() {
    assert_eq!(err("bigcode"), ParseError::BadStatusCode);
    assert_eq!(
        answer("bigcode", &err("bigcode")),
        None,
        "responses are discarded"
    );
}

#[test]
fn test_dat_from_the_appendix_has_no_version() {
    assert_eq!(err("test"), ParseError::BadStartLine("missing SIP-Version"));
}

// ---------------------------------------------------- 3.2 transaction layer semantics

#[test]
fn badbranch_magic_cookie_only() {
    // Transaction layer decides (400 or RFC 2543 matching); we expose the difference.
    let m = ok("badbranch");
    let v = m.top_via().unwrap();
    assert_eq!(v.branch, Some("z9hG4bK"));
    assert_eq!(v.rfc3261_branch(), None);
}

// ---------------------------------------------------- 3.3 application layer semantics

#[test]
fn insuf_missing_required_headers() {
    let e = err("insuf");
    assert!(matches!(e, ParseError::MissingHeader(_)));
    assert_eq!(answer("insuf", &e), Some(400));
}

#[test]
fn unkscm_and_novelsc_unknown_request_uri_schemes_pass() {
    // 416 is for the UA/proxy layer; the transport layer accepts any absolute URI.
    let m = ok("unkscm");
    assert_eq!(
        m.request_uri(),
        Some("nobodyKnowsThisScheme:totallyopaquecontent")
    );
    assert!(m.request_sip_uri().unwrap().is_err());
    let m = ok("novelsc");
    assert_eq!(m.request_uri(), Some("soap.beep://192.0.2.103:3002"));
}

#[test]
fn unksm2_unknown_schemes_in_header_fields() {
    let m = ok("unksm2");
    assert_eq!(m.to().unwrap().uri, "isbn:2983792873");
    assert_eq!(m.from().unwrap().uri, "http://www.example.com");
    let Some(Ok(ContactValue::Addr(c))) = m.contacts().next() else {
        panic!("contact")
    };
    assert_eq!(c.uri, "name:John_Smith");
}

#[test]
fn ua_layer_messages_parse() {
    // bext01 (420), invut (415), regaut01 (401), sdp01 (406), regescrt: UA decisions.
    let m = ok("bext01");
    assert_eq!(
        m.top_via().unwrap().transport,
        TransportToken::Known(TransportKind::Tls)
    );
    assert!(m.header("Proxy-Require").is_some());
    assert_eq!(m.values(sipwire::wire::HeaderKind::Require).count(), 2);
    assert_eq!(ok("invut").body().len(), 40);
    assert_eq!(ok("regaut01").content_length(), Some(0));
    assert_eq!(
        ok("sdp01").header("Accept"),
        Some(&b"text/nobodyKnowsThis"[..])
    );
    let m = ok("regescrt");
    let Some(Ok(ContactValue::Addr(c))) = m.contacts().next() else {
        panic!("contact")
    };
    let u = c.sip_uri().unwrap();
    assert_eq!(
        u.headers().next(),
        Some(("Route", "%3Csip:sip.example.com%3E"))
    );
}

#[test]
fn multi01_multiple_values_in_single_value_fields() {
    let e = err("multi01");
    assert!(matches!(e, ParseError::DuplicateHeader(_)));
    assert_eq!(answer("multi01", &e), Some(400));
}

#[test]
fn mcl01_multiple_content_length_values() {
    assert_eq!(err("mcl01"), ParseError::ConflictingContentLength);
    assert_eq!(stream("mcl01"), Err(FramingError::BadContentLength));
}

#[test]
fn bcast_broadcast_via_in_response() {
    let m = ok("bcast");
    let second = m.vias().nth(1).unwrap().unwrap();
    assert_eq!(second.host, Host::Ipv4("255.255.255.255".parse().unwrap()));
}

#[test]
fn zeromf_max_forwards_zero() {
    let m = ok("zeromf");
    assert_eq!(m.max_forwards(), Some(0));
    assert_eq!(
        m.edit().decrement_max_forwards(),
        Err(EditError::TooManyHops)
    );
    let r = Message::parse(response::too_many_hops(&m)).unwrap();
    assert_eq!(r.status_code(), Some(483));
    assert_eq!(r.call_id(), m.call_id());
}

#[test]
fn cparam01_unbracketed_contact_params_are_header_params() {
    let m = ok("cparam01");
    let Some(Ok(ContactValue::Addr(c))) = m.contacts().next() else {
        panic!("contact")
    };
    assert_eq!(c.uri, "sip:+19725552222@gw1.example.net");
    assert_eq!(c.param("unknownparam"), Some(None));
    assert_eq!(c.sip_uri().unwrap().params().count(), 0);
}

#[test]
fn cparam02_bracketed_contact_params_are_uri_params() {
    let m = ok("cparam02");
    let Some(Ok(ContactValue::Addr(c))) = m.contacts().next() else {
        panic!("contact")
    };
    assert_eq!(c.param("unknownparam"), None);
    assert_eq!(c.sip_uri().unwrap().param("unknownparam"), Some(None));
}

// ---------------------------------------------------- 3.4 backward compatibility

#[test]
fn inv2543_rfc2543_style_invite() {
    let m = ok("inv2543");
    assert_eq!(m.top_via().unwrap().branch, None);
    assert_eq!(m.from_tag(), None);
    assert_eq!(m.max_forwards(), None);
    assert_eq!(m.content_length(), None);
    // Not in angle brackets: ;user=phone is a To header parameter, not a URI parameter.
    let to = m.to().unwrap();
    assert_eq!(to.param("user"), Some(Some("phone")));
    assert_eq!(to.sip_uri().unwrap().user_param(), None);
    let from = m.from().unwrap().sip_uri().unwrap();
    assert_eq!(from.user_param(), Some("phone"));
    assert_eq!(m.request_sip_uri().unwrap().unwrap().scheme, Scheme::Sip);
    // Without Content-Length it cannot be framed on a stream (RFC 3261 §18.3).
    assert_eq!(stream("inv2543"), Err(FramingError::MissingContentLength));
}

#[test]
fn every_file_is_covered_and_nothing_panics() {
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/data/rfc4475"]
        .iter()
        .collect();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = Bytes::from(std::fs::read(&path).unwrap());
        let _ = Message::parse(data.clone());
        let mut f = StreamFramer::new(Limits::default());
        f.push(&data);
        while let Ok(Some(_)) = f.next_frame() {}
        n += 1;
    }
    assert_eq!(n, 50, "the 50 files of RFC 4475 Appendix B");
}

/// The `received`/`rport` stamp every inbound request gets moves the parsed index instead of
/// parsing the message again: for every torture request that parses, from an IPv4 and an IPv6
/// source, the stamped message reads exactly like a fresh parse of its bytes.
#[test]
fn received_stamp_matches_a_fresh_parse() {
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/data/rfc4475"]
        .iter()
        .collect();
    let sources: [std::net::SocketAddr; 2] = [
        "192.0.2.99:40000".parse().unwrap(),
        "[2001:db8::99]:5070".parse().unwrap(),
    ];
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = Bytes::from(std::fs::read(entry.unwrap().path()).unwrap());
        let Ok(msg) = Message::parse(data) else {
            continue;
        };
        if !msg.is_request() || msg.top_via().is_err() {
            continue;
        }
        for src in sources {
            let mut ed = msg.edit();
            if !matches!(ed.set_received(src), Ok(true)) {
                continue;
            }
            let Ok(stamped) = ed.finish_message() else {
                continue;
            };
            let fresh = Message::parse(Bytes::copy_from_slice(stamped.as_bytes())).unwrap();
            assert_eq!(format!("{stamped:?}"), format!("{fresh:?}"));
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} stamped requests checked");
}
