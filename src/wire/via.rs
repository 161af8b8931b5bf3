//! The Via header value (RFC 3261 §20.42, RFC 3581 `rport`, RFC 5923 `alias`).

use std::net::IpAddr;

use super::error::ParseError;
use super::header::split_values;
use super::host::{host_len, Host};
use super::lex::{header_name, parse_digits, to_str, Cursor};
use super::param::{next_param, Params};
use super::transport_token::TransportToken;
use crate::TransportKind;

/// The RFC 3261 branch magic cookie.
pub const BRANCH_MAGIC_COOKIE: &str = "z9hG4bK";

/// The `rport` parameter (RFC 3581).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rport {
    /// `;rport` without value: the client asks for symmetric response routing.
    Requested,
    /// `;rport=1234`: the source port filled in by the server.
    Port(u16),
}

/// One Via value (`via-parm`), borrowing from the message. All fields are validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via<'a> {
    /// The whole value, trimmed.
    pub raw: &'a [u8],
    /// Protocol name (`SIP`).
    pub protocol: &'a str,
    /// Protocol version (`2.0`).
    pub version: &'a str,
    /// Transport token.
    pub transport: TransportToken,
    /// The transport token as written.
    pub transport_raw: &'a str,
    /// Host of sent-by.
    pub host: Host<'a>,
    /// Host of sent-by as written (brackets kept for IPv6).
    pub host_raw: &'a str,
    /// Port of sent-by, if written.
    pub port: Option<u16>,
    /// `branch` parameter.
    pub branch: Option<&'a str>,
    /// `received` parameter (an IP address).
    pub received: Option<IpAddr>,
    /// `rport` parameter.
    pub rport: Option<Rport>,
    /// `maddr` parameter.
    pub maddr: Option<Host<'a>>,
    /// `ttl` parameter.
    pub ttl: Option<u8>,
    /// `alias` parameter present (RFC 5923; it has no value).
    pub alias: bool,
    /// The parameters as written, starting at the first `;` (may be empty).
    pub params_raw: &'a [u8],
}

fn bad(reason: &'static str) -> ParseError {
    ParseError::BadVia(reason)
}

impl<'a> Via<'a> {
    /// Parses one Via value (one element of a possibly comma-separated Via header).
    pub fn parse(value: &'a [u8]) -> Result<Via<'a>, ParseError> {
        let raw = super::lex::trim_ws(value);
        let mut c = Cursor::new(raw);
        let protocol = c.token();
        if protocol.is_empty() {
            return Err(bad("missing protocol name"));
        }
        c.skip_ws();
        if !c.eat(b'/') {
            return Err(bad("expected slash after protocol name"));
        }
        c.skip_ws();
        let version = c.token();
        if version.is_empty() {
            return Err(bad("missing protocol version"));
        }
        c.skip_ws();
        if !c.eat(b'/') {
            return Err(bad("expected slash after protocol version"));
        }
        c.skip_ws();
        let transport_raw = c.token();
        if transport_raw.is_empty() {
            return Err(bad("missing transport"));
        }
        if c.skip_ws() == 0 {
            return Err(bad("expected white space before sent-by"));
        }
        let hl = host_len(c.rest());
        let host_bytes = c.rest().get(..hl).unwrap_or(&[]);
        let host = Host::parse(host_bytes).ok_or(bad("bad sent-by host"))?;
        for _ in 0..hl {
            c.bump();
        }
        let save = c.clone();
        c.skip_ws();
        let port = if c.eat(b':') {
            c.skip_ws();
            let digits = c.take_while(|b| b.is_ascii_digit());
            let p = parse_digits(digits)
                .and_then(|p| u16::try_from(p).ok())
                .ok_or(bad("bad sent-by port"))?;
            Some(p)
        } else {
            c = save;
            None
        };
        let params_start = c.pos();
        let params_raw = raw.get(params_start..).unwrap_or(&[]);

        let mut via = Via {
            raw,
            protocol: to_str(protocol).ok_or(bad("protocol"))?,
            version: to_str(version).ok_or(bad("version"))?,
            transport: TransportToken::Known(TransportKind::Udp),
            transport_raw: to_str(transport_raw).ok_or(bad("transport"))?,
            host,
            host_raw: to_str(host_bytes).ok_or(bad("host"))?,
            port,
            branch: None,
            received: None,
            rport: None,
            maddr: None,
            ttl: None,
            alias: false,
            params_raw,
        };
        via.transport = TransportToken::from_token(via.transport_raw);
        via.read_params()?;
        Ok(via)
    }

    /// Reads the known parameters of `params_raw` into their fields (which must be empty):
    /// the second half of [`Via::parse`], also used alone when only the parameters of an
    /// already parsed Via were edited.
    pub(crate) fn read_params(&mut self) -> Result<(), ParseError> {
        let via = self;
        let mut pc = Cursor::new(via.params_raw);
        while let Some(p) = next_param(&mut pc).map_err(bad)? {
            let p = p.to_param().ok_or(bad("parameter not UTF-8"))?;
            let name = p.name;
            if name.eq_ignore_ascii_case("branch") {
                let v = p.value.ok_or(bad("branch without value"))?;
                if v.starts_with('"') {
                    return Err(bad("quoted branch"));
                }
                via.branch.get_or_insert(v);
            } else if name.eq_ignore_ascii_case("received") {
                let v = p.value.ok_or(bad("received without value"))?;
                let v = v.trim_start_matches('[').trim_end_matches(']');
                let ip = v
                    .parse::<IpAddr>()
                    .map_err(|_| bad("bad received address"))?;
                via.received.get_or_insert(ip);
            } else if name.eq_ignore_ascii_case("rport") {
                let r = match p.value {
                    None => Rport::Requested,
                    Some(v) => Rport::Port(
                        parse_digits(v.as_bytes())
                            .and_then(|n| u16::try_from(n).ok())
                            .ok_or(bad("bad rport value"))?,
                    ),
                };
                via.rport.get_or_insert(r);
            } else if name.eq_ignore_ascii_case("maddr") {
                let v = p.value.ok_or(bad("maddr without value"))?;
                let h = Host::parse(v.as_bytes()).ok_or(bad("bad maddr"))?;
                via.maddr.get_or_insert(h);
            } else if name.eq_ignore_ascii_case("ttl") {
                let v = p.value.ok_or(bad("ttl without value"))?;
                let t = (v.len() <= 3)
                    .then(|| parse_digits(v.as_bytes()))
                    .flatten()
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or(bad("bad ttl"))?;
                via.ttl.get_or_insert(t);
            } else if name.eq_ignore_ascii_case("alias") {
                via.alias = true;
            }
        }
        Ok(())
    }

    /// All parameters, known and unknown, in order.
    pub fn params(&self) -> Params<'a> {
        Params::new(self.params_raw)
    }

    /// A parameter by name (case-insensitive); `Some(None)` when it has no value.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.params().get(name)
    }

    /// The branch when it is an RFC 3261 transaction id: it starts with the magic cookie
    /// and has something after it (RFC 4475 §3.2.1 `badbranch` has only the cookie).
    pub fn rfc3261_branch(&self) -> Option<&'a str> {
        self.branch.filter(|b| {
            b.len() > BRANCH_MAGIC_COOKIE.len()
                && b.get(..BRANCH_MAGIC_COOKIE.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(BRANCH_MAGIC_COOKIE))
        })
    }

    /// The sent-by port, or the transport's default port when none is written.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or_else(|| self.transport.default_port())
    }

    /// Where to send a response when it cannot go back on the connection the request
    /// came in on (RFC 3261 §18.2.2, RFC 3581 §4). Unreliable transports: `maddr` if
    /// present (sent-by port), else the `received` address with the `rport` value (or the
    /// sent-by port), else sent-by. Reliable transports: the `received` address (or the
    /// sent-by host) with the sent-by port. Ports default per transport.
    pub fn response_target(&self) -> (Host<'a>, u16) {
        let sent_by_port = self.port_or_default();
        let received = self.received.map(Host::from_ip);
        if self.transport.is_reliable() {
            return (received.unwrap_or_else(|| self.host.clone()), sent_by_port);
        }
        if let Some(m) = &self.maddr {
            return (m.clone(), sent_by_port);
        }
        match received {
            Some(r) => {
                let port = match self.rport {
                    Some(Rport::Port(p)) => p,
                    _ => sent_by_port,
                };
                (r, port)
            }
            None => (self.host.clone(), sent_by_port),
        }
    }

    /// `SIP/2.0`?
    pub fn is_sip_2_0(&self) -> bool {
        self.protocol.eq_ignore_ascii_case("SIP") && self.version == "2.0"
    }

    /// The top Via of a message (e.g. a [`super::Frame::Message`]) without indexing the
    /// whole message: the first `Via`/`v` header line (continuation lines included), its
    /// first value. For relays and load spreading that need only the branch and sent-by
    /// on every message; [`super::Message::parse`] validates the rest. Header lines before
    /// the Via must end in CRLF; a missing Via is `MissingHeader("Via")`.
    pub fn peek_top(message: &'a [u8]) -> Result<Via<'a>, ParseError> {
        let mut pos = skip_line(message, 0)?;
        loop {
            let next = skip_line(message, pos)?;
            let line = message.get(pos..next.saturating_sub(2)).unwrap_or(&[]);
            if line.is_empty() {
                return Err(ParseError::MissingHeader("Via"));
            }
            if matches!(line.first(), Some(b'v' | b'V')) {
                let via = header_name(line).filter(|(name, _)| {
                    name.eq_ignore_ascii_case(b"via") || name.eq_ignore_ascii_case(b"v")
                });
                if let Some((_, value_at)) = via {
                    let value_start = pos + value_at;
                    let mut end = next;
                    while matches!(message.get(end), Some(b' ' | b'\t')) {
                        end = skip_line(message, end)?;
                    }
                    let value = message
                        .get(value_start..end.saturating_sub(2))
                        .unwrap_or(&[]);
                    let top = split_values(value)
                        .next()
                        .ok_or(bad("empty"))?
                        .map_err(|_| bad("malformed list"))?;
                    return Via::parse(top);
                }
            }
            pos = next;
        }
    }
}

/// The position after the CRLF ending the line that starts at `from`.
fn skip_line(b: &[u8], from: usize) -> Result<usize, ParseError> {
    let rest = b.get(from..).unwrap_or(&[]);
    match memchr::memchr(b'\n', rest) {
        Some(i) if i > 0 && rest.get(i - 1) == Some(&b'\r') => Ok(from + i + 1),
        Some(_) => Err(ParseError::BadLineEnding),
        None => Err(ParseError::UnterminatedHeaders),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_top_finds_the_first_via_value() {
        let m = b"INVITE sip:b@h SIP/2.0\r\nFrom: <sip:a@h>;tag=1\r\nVIA : SIP/2.0/TCP a.example.com:5070\r\n ;branch=z9hG4bK1, SIP/2.0/UDP b\r\nv: SIP/2.0/UDP c;branch=z9hG4bK3\r\n\r\n";
        let v = Via::peek_top(m).unwrap();
        assert_eq!(v.host_raw, "a.example.com");
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.branch, Some("z9hG4bK1"));
        let m =
            b"SIP/2.0 200 OK\r\nvia-x: 1\r\nv:SIP/2.0/TLS [2001:db8::1];branch=z9hG4bK2\r\n\r\n";
        assert_eq!(Via::peek_top(m).unwrap().branch, Some("z9hG4bK2"));
        assert_eq!(
            Via::peek_top(b"OPTIONS sip:h SIP/2.0\r\nTo: <sip:h>\r\n\r\n"),
            Err(ParseError::MissingHeader("Via"))
        );
        assert_eq!(
            Via::peek_top(b"OPTIONS sip:h SIP/2.0\nVia: SIP/2.0/UDP h\r\n\r\n"),
            Err(ParseError::BadLineEnding)
        );
        assert_eq!(
            Via::peek_top(b"OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h"),
            Err(ParseError::UnterminatedHeaders)
        );
        assert!(Via::peek_top(b"OPTIONS sip:h SIP/2.0\r\nVia: ,\r\n\r\n").is_err());
    }
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn via(s: &str) -> Via<'_> {
        Via::parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn all_transport_tokens() {
        for (tok, t) in [
            ("UDP", TransportToken::Known(TransportKind::Udp)),
            ("TCP", TransportToken::Known(TransportKind::Tcp)),
            ("TLS", TransportToken::Known(TransportKind::Tls)),
            ("SCTP", TransportToken::Known(TransportKind::Sctp)),
            ("TLS-SCTP", TransportToken::Known(TransportKind::TlsSctp)),
            ("tls-sctp", TransportToken::Known(TransportKind::TlsSctp)),
            ("DTLS-SCTP", TransportToken::Known(TransportKind::DtlsSctp)),
            ("WS", TransportToken::Other("WS".into())),
        ] {
            let line = format!("SIP/2.0/{tok} host.example.com;branch=z9hG4bK1");
            let v = via(&line);
            assert_eq!(v.transport, t);
            assert_eq!(v.transport_raw, tok);
        }
    }

    #[test]
    fn sent_by_forms() {
        let v = via("SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKa");
        assert_eq!(v.host, Host::Ipv4(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(v.port, Some(5070));
        let v = via("SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bKa");
        assert_eq!(
            v.host,
            Host::Ipv6("2001:db8::1".parse::<Ipv6Addr>().unwrap())
        );
        assert_eq!(v.host_raw, "[2001:db8::1]");
        assert_eq!(v.port, Some(5061));
        let v = via("SIP/2.0/TLS [2001:db8::1];branch=z9hG4bKa");
        assert_eq!(v.port, None);
        assert_eq!(v.port_or_default(), 5061);
        let v = via("SIP/2.0/UDP pc33.atlanta.com");
        assert_eq!(v.host, Host::Name("pc33.atlanta.com".into()));
        assert_eq!(v.port_or_default(), 5060);
        assert!(v.params_raw.is_empty());
        let v = via("SIP / 2.0 / UDP  host.example.com : 5060 ; branch = z9hG4bKx");
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.branch, Some("z9hG4bKx"));
        let v = via("SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw");
        assert_eq!(v.transport, TransportToken::Known(TransportKind::Udp));
        assert_eq!(v.branch, Some("390skdjuw"));
        assert_eq!(v.rfc3261_branch(), None);
    }

    #[test]
    fn known_and_unknown_params() {
        let v = via(
            "SIP/2.0/UDP h.example.com;branch=z9hG4bK776;received=192.0.2.9;rport=5061;\
             maddr=224.2.0.1;ttl=16;alias;x-unknown=val;flag",
        );
        assert_eq!(v.branch, Some("z9hG4bK776"));
        assert_eq!(v.rfc3261_branch(), Some("z9hG4bK776"));
        assert_eq!(v.received, Some("192.0.2.9".parse().unwrap()));
        assert_eq!(v.rport, Some(Rport::Port(5061)));
        assert_eq!(v.maddr, Some(Host::Ipv4(Ipv4Addr::new(224, 2, 0, 1))));
        assert_eq!(v.ttl, Some(16));
        assert!(v.alias);
        assert_eq!(v.param("x-unknown"), Some(Some("val")));
        assert_eq!(v.param("flag"), Some(None));
        assert_eq!(v.params().count(), 8);
        let v = via("SIP/2.0/TCP h;rport;branch=z9hG4bKq");
        assert_eq!(v.rport, Some(Rport::Requested));
        assert!(!v.alias);
        let v = via("SIP/2.0/UDP h;received=2001:db8::9:255;branch=z9hG4bKz");
        assert_eq!(v.received, Some("2001:db8::9:255".parse().unwrap()));
        let v = via("SIP/2.0/UDP h;received=[2001:db8::9];branch=z9hG4bKz");
        assert_eq!(v.received, Some("2001:db8::9".parse().unwrap()));
    }

    #[test]
    fn response_targets() {
        let v4 = |s: &str| Host::Ipv4(s.parse().unwrap());
        let v = via("SIP/2.0/UDP h.example.com:5070;received=192.0.2.1;rport=40000");
        assert_eq!(v.response_target(), (v4("192.0.2.1"), 40000));
        let v = via("SIP/2.0/UDP h.example.com:5070;received=192.0.2.1");
        assert_eq!(v.response_target(), (v4("192.0.2.1"), 5070));
        let v = via("SIP/2.0/UDP h.example.com;maddr=224.0.1.75;received=192.0.2.1;rport=9");
        assert_eq!(v.response_target(), (v4("224.0.1.75"), 5060));
        let v = via("SIP/2.0/UDP h.example.com");
        assert_eq!(
            v.response_target(),
            (Host::Name("h.example.com".into()), 5060)
        );
        let v = via("SIP/2.0/TLS h.example.com;received=[2001:db8::2];rport=40000");
        assert_eq!(
            v.response_target(),
            (Host::Ipv6("2001:db8::2".parse().unwrap()), 5061)
        );
        let v = via("SIP/2.0/SCTP h.example.com:5062");
        assert_eq!(
            v.response_target(),
            (Host::Name("h.example.com".into()), 5062)
        );
    }

    #[test]
    fn bad_vias() {
        for bad in [
            "",
            "SIP/2.0 host",
            "SIP/2.0/UDP",
            "SIP/2.0/UDPhost",
            "SIP/2.0/UDP 192.0.2.15;;",
            "SIP/2.0/UDP host:99999",
            "SIP/2.0/UDP host:",
            "SIP/2.0/UDP [2001:db8::1",
            "SIP/2.0/UDP host;received=not-an-ip",
            "SIP/2.0/UDP host;rport=x",
            "SIP/2.0/UDP host;ttl=256",
            "SIP/2.0/UDP host;ttl=0001",
            "SIP/2.0/UDP host;branch",
            "SIP/2.0/UDP host extra",
            "SIP/2.0/UDP host;maddr=bad host",
        ] {
            assert!(Via::parse(bad.as_bytes()).is_err(), "{bad:?} accepted");
        }
    }
}
