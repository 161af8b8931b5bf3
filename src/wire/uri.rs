//! SIP and SIPS URIs (RFC 3261 §19.1) and their comparison (§19.1.4).

use super::error::ParseError;
use super::host::{host_len, Host};
use super::lex::{hex_val, is_reserved, is_unreserved, parse_digits, to_str};
use super::transport_token::TransportToken;

/// URI scheme (also what RFC 3263 server location starts from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
}

/// A parsed SIP or SIPS URI, borrowing from its text. Escapes are kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri<'a> {
    /// The whole URI text.
    pub raw: &'a str,
    /// `sip` or `sips`.
    pub scheme: Scheme,
    /// User part (may contain escapes and `;`-parameters of a telephone-subscriber).
    pub user: Option<&'a str>,
    /// Password.
    pub password: Option<&'a str>,
    /// Host.
    pub host: Host<'a>,
    /// Host as written.
    pub host_raw: &'a str,
    /// Port, if written.
    pub port: Option<u16>,
    /// The URI parameters as written, without the leading `;` (may be empty).
    pub params_raw: &'a str,
    /// The headers as written, without the leading `?` (may be empty).
    pub headers_raw: &'a str,
}

/// One URI parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UriParam<'a> {
    /// Name as written.
    pub name: &'a str,
    /// Value as written; `None` for a valueless parameter such as `lr`.
    pub value: Option<&'a str>,
}

fn bad(r: &'static str) -> ParseError {
    ParseError::BadUri(r)
}

/// Checks `%HH` escapes and that every byte satisfies `allowed` otherwise.
fn check_escaped(s: &[u8], allowed: impl Fn(u8) -> bool) -> bool {
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b == b'%' {
            let ok = s.get(i + 1).copied().and_then(hex_val).is_some()
                && s.get(i + 2).copied().and_then(hex_val).is_some();
            if !ok {
                return false;
            }
            i += 3;
        } else if allowed(b) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

fn is_user_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/')
}

fn is_password_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',')
}

fn is_param_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$')
}

fn is_header_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$')
}

impl<'a> Uri<'a> {
    /// Parses a `sip:` or `sips:` URI (scheme case-insensitive).
    pub fn parse(text: &'a str) -> Result<Uri<'a>, ParseError> {
        let s = text.as_bytes();
        let colon = s
            .iter()
            .position(|&b| b == b':')
            .ok_or(bad("missing scheme"))?;
        let scheme_text = s.get(..colon).unwrap_or(&[]);
        let scheme = if scheme_text.eq_ignore_ascii_case(b"sip") {
            Scheme::Sip
        } else if scheme_text.eq_ignore_ascii_case(b"sips") {
            Scheme::Sips
        } else {
            return Err(bad("scheme is not sip or sips"));
        };
        let rest = text.get(colon + 1..).unwrap_or("");
        let rb = rest.as_bytes();
        // userinfo ends at the last '@': '@' is allowed neither in parameters nor headers.
        let (user, password, hostpart) = match rb.iter().rposition(|&b| b == b'@') {
            Some(at) => {
                let userinfo = rest.get(..at).unwrap_or("");
                let (u, p) = match userinfo.find(':') {
                    Some(c) => (userinfo.get(..c).unwrap_or(""), userinfo.get(c + 1..)),
                    None => (userinfo, None),
                };
                if u.is_empty() || !check_escaped(u.as_bytes(), is_user_char) {
                    return Err(bad("bad user part"));
                }
                if let Some(p) = p {
                    if !check_escaped(p.as_bytes(), is_password_char) {
                        return Err(bad("bad password"));
                    }
                }
                (Some(u), p, rest.get(at + 1..).unwrap_or(""))
            }
            None => (None, None, rest),
        };
        let hb = hostpart.as_bytes();
        let hl = host_len(hb);
        let host_raw = hostpart.get(..hl).ok_or(bad("bad host"))?;
        let host = Host::parse(host_raw.as_bytes()).ok_or(bad("bad host"))?;
        let mut i = hl;
        let mut port = None;
        if hb.get(i) == Some(&b':') {
            let digits_len = hb
                .get(i + 1..)
                .unwrap_or(&[])
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let digits = hb.get(i + 1..i + 1 + digits_len).unwrap_or(&[]);
            let p = parse_digits(digits)
                .and_then(|p| u16::try_from(p).ok())
                .ok_or(bad("bad port"))?;
            port = Some(p);
            i += 1 + digits_len;
        }
        let tail = hostpart.get(i..).unwrap_or("");
        let (params_part, headers_raw) = match tail.find('?') {
            Some(q) => (tail.get(..q).unwrap_or(""), tail.get(q + 1..).unwrap_or("")),
            None => (tail, ""),
        };
        let params_raw = if params_part.is_empty() {
            ""
        } else {
            params_part
                .strip_prefix(';')
                .ok_or(bad("unexpected character after host"))?
        };
        if !params_raw.is_empty() {
            for p in params_raw.split(';') {
                let (n, v) = match p.find('=') {
                    Some(e) => (p.get(..e).unwrap_or(""), Some(p.get(e + 1..).unwrap_or(""))),
                    None => (p, None),
                };
                if n.is_empty() || !check_escaped(n.as_bytes(), is_param_char) {
                    return Err(bad("bad parameter name"));
                }
                if let Some(v) = v {
                    if v.is_empty() || !check_escaped(v.as_bytes(), is_param_char) {
                        return Err(bad("bad parameter value"));
                    }
                }
            }
        }
        if tail.contains('?') {
            if headers_raw.is_empty() {
                return Err(bad("empty headers"));
            }
            for h in headers_raw.split('&') {
                let (n, v) = h.split_once('=').ok_or(bad("header without ="))?;
                if n.is_empty()
                    || !check_escaped(n.as_bytes(), is_header_char)
                    || !check_escaped(v.as_bytes(), is_header_char)
                {
                    return Err(bad("bad header"));
                }
            }
        }
        Ok(Uri {
            raw: text,
            scheme,
            user,
            password,
            host,
            host_raw,
            port,
            params_raw,
            headers_raw,
        })
    }

    /// Parses from bytes (must be UTF-8, which a valid URI always is).
    pub fn parse_bytes(b: &'a [u8]) -> Result<Uri<'a>, ParseError> {
        Uri::parse(to_str(b).ok_or(bad("not ASCII"))?)
    }

    /// All URI parameters in order.
    pub fn params(&self) -> impl Iterator<Item = UriParam<'a>> + 'a {
        let raw = self.params_raw;
        raw.split(';')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((n, v)) => UriParam {
                    name: n,
                    value: Some(v),
                },
                None => UriParam {
                    name: p,
                    value: None,
                },
            })
    }

    /// A parameter by name (case-insensitive); `Some(None)` when it has no value.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.params()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value)
    }

    /// The `transport` parameter as written.
    pub fn transport_param(&self) -> Option<&'a str> {
        self.param("transport").flatten()
    }

    /// The `transport` parameter as a token. The deprecated `transport=tls`
    /// (RFC 5630 §3.1.4) maps to `Tls`; `tls-sctp` to `TlsSctp`.
    pub fn transport(&self) -> Option<TransportToken> {
        self.transport_param().map(TransportToken::from_token)
    }

    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<Host<'a>> {
        self.param("maddr")
            .flatten()
            .and_then(|v| Host::parse(v.as_bytes()))
    }

    /// True when the `lr` parameter is present (loose routing).
    pub fn lr(&self) -> bool {
        self.param("lr").is_some()
    }

    /// The `user` parameter (`phone`, `ip`, ...).
    pub fn user_param(&self) -> Option<&'a str> {
        self.param("user").flatten()
    }

    /// The `ttl` parameter (0..=255).
    pub fn ttl(&self) -> Option<u8> {
        self.param("ttl")
            .flatten()
            .and_then(|v| parse_digits(v.as_bytes()))
            .and_then(|n| u8::try_from(n).ok())
    }

    /// The `method` parameter.
    pub fn method(&self) -> Option<&'a str> {
        self.param("method").flatten()
    }

    /// URI headers (`?a=b&c=d`) in order, as written.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.headers_raw
            .split('&')
            .filter(|h| !h.is_empty())
            .map(|h| h.split_once('=').unwrap_or((h, "")))
    }

    /// The port to use: the explicit one, else 5061 for `sips:` or a TLS transport, else 5060.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or_else(|| {
            if self.scheme == Scheme::Sips || self.transport().is_some_and(|t| t.is_secure()) {
                5061
            } else {
                5060
            }
        })
    }

    /// URI equivalence of RFC 3261 §19.1.4: same scheme; userinfo case-sensitive; host,
    /// parameters and headers case-insensitive; escapes of unreserved characters equal the
    /// characters; `user`, `ttl`, `method`, `maddr` and `transport` must match when present
    /// in either; other parameters only when present in both; headers must all match.
    pub fn equivalent(&self, other: &Uri<'_>) -> bool {
        if self.scheme != other.scheme {
            return false;
        }
        if !opt_eq(self.user, other.user, false) || !opt_eq(self.password, other.password, false) {
            return false;
        }
        if !self.host.same_as(&other.host) || self.port != other.port {
            return false;
        }
        for name in ["user", "ttl", "method", "maddr", "transport"] {
            match (self.param(name), other.param(name)) {
                (None, None) => {}
                (Some(a), Some(b)) => {
                    if !opt_eq(a, b, true) {
                        return false;
                    }
                }
                _ => return false,
            }
        }
        // A name written twice counts with its first value on both sides, as `param()`
        // reads it; comparing each occurrence against the other's first made a URI with
        // `;a;a=b` differ from itself (found by fuzzing).
        for p in self.params() {
            let mine = self
                .params()
                .find(|q| escaped_eq(p.name, q.name, true))
                .map_or(p.value, |q| q.value);
            if let Some(q) = other.params().find(|q| escaped_eq(p.name, q.name, true)) {
                if !opt_eq(mine, q.value, true) {
                    return false;
                }
            }
        }
        let count = |u: &Uri<'_>| u.headers().count();
        if count(self) != count(other) {
            return false;
        }
        self.headers().all(|(n, v)| {
            other
                .headers()
                .any(|(n2, v2)| escaped_eq(n, n2, true) && escaped_eq(v, v2, false))
        })
    }
}

fn opt_eq(a: Option<&str>, b: Option<&str>, ci: bool) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => escaped_eq(a, b, ci),
        _ => false,
    }
}

/// One unit of a URI component after normalising escapes: an escaped unreserved
/// character equals the character; an escaped reserved character stays an escape.
#[derive(PartialEq, Eq)]
enum Unit {
    Char(u8),
    Escaped(u8),
}

fn units(s: &str) -> impl Iterator<Item = Unit> + '_ {
    let b = s.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        let c = *b.get(i)?;
        if c == b'%' {
            let hi = b.get(i + 1).copied().and_then(hex_val);
            let lo = b.get(i + 2).copied().and_then(hex_val);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                i += 3;
                let v = hi * 16 + lo;
                return Some(if is_reserved(v) || !v.is_ascii() {
                    Unit::Escaped(v)
                } else {
                    Unit::Char(v)
                });
            }
        }
        i += 1;
        Some(Unit::Char(c))
    })
}

/// Compares two URI components, decoding escapes; `ci` for case-insensitive.
fn escaped_eq(a: &str, b: &str, ci: bool) -> bool {
    let norm = move |u: Unit| match u {
        Unit::Char(c) if ci => Unit::Char(c.to_ascii_lowercase()),
        other => other,
    };
    units(a).map(norm).eq(units(b).map(norm))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TransportKind;
    use std::net::Ipv4Addr;

    fn uri(s: &str) -> Uri<'_> {
        Uri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_components() {
        let u = uri("sips:alice:secret@atlanta.com:5061;transport=tcp;lr;maddr=239.255.255.1;ttl=15;user=phone;method=INVITE;x=y?subject=project%20x&priority=urgent");
        assert_eq!(u.scheme, Scheme::Sips);
        assert_eq!(u.user, Some("alice"));
        assert_eq!(u.password, Some("secret"));
        assert_eq!(u.host, Host::Name("atlanta.com".into()));
        assert_eq!(u.port, Some(5061));
        assert_eq!(
            u.transport(),
            Some(TransportToken::Known(TransportKind::Tcp))
        );
        assert!(u.lr());
        assert_eq!(u.maddr(), Some(Host::Ipv4(Ipv4Addr::new(239, 255, 255, 1))));
        assert_eq!(u.ttl(), Some(15));
        assert_eq!(u.user_param(), Some("phone"));
        assert_eq!(u.method(), Some("INVITE"));
        assert_eq!(u.param("x"), Some(Some("y")));
        assert_eq!(
            u.headers().collect::<Vec<_>>(),
            vec![("subject", "project%20x"), ("priority", "urgent")]
        );
    }

    #[test]
    fn hosts_and_defaults() {
        let u = uri("sip:[2001:db8::1]:5070");
        assert!(matches!(u.host, Host::Ipv6(_)));
        assert_eq!(u.port, Some(5070));
        assert_eq!(
            uri("sip:192.0.2.1").host,
            Host::Ipv4(Ipv4Addr::new(192, 0, 2, 1))
        );
        assert_eq!(uri("sip:example.com").port_or_default(), 5060);
        assert_eq!(uri("sips:example.com").port_or_default(), 5061);
        let tls = uri("sip:example.com;transport=tls");
        assert_eq!(
            tls.transport(),
            Some(TransportToken::Known(TransportKind::Tls))
        );
        assert_eq!(tls.port_or_default(), 5061);
        assert_eq!(
            uri("sip:example.com;transport=tls-sctp").transport(),
            Some(TransportToken::Known(TransportKind::TlsSctp))
        );
        assert_eq!(
            uri("sip:example.com;transport=SCTP").transport(),
            Some(TransportToken::Known(TransportKind::Sctp))
        );
        assert_eq!(
            uri("sip:example.com;transport=ws").transport(),
            Some(TransportToken::Other("ws".into()))
        );
        assert_eq!(uri("SIP:Example.com").scheme, Scheme::Sip);
    }

    #[test]
    fn torture_users() {
        let u = uri("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user, Some("user;par=u%40example.net"));
        assert_eq!(u.host, Host::Name("example.com".into()));
        let u = uri("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com");
        assert_eq!(
            u.user,
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        assert_eq!(
            u.password,
            Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        );
        let u = uri("sip:%00@host5.example.com");
        assert_eq!(u.user, Some("%00"));
        let u = uri("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31");
        assert_eq!(u.params().count(), 2);
    }

    #[test]
    fn refuses_bad_uris() {
        for bad in [
            "sip:",
            "sip:@example.com",
            "http://example.com",
            "<sip:user@example.com>",
            "sip:user@example.com; lr",
            "sip:us er@example.com",
            "sip:user@exa mple.com",
            "sip:user@example.com:99999",
            "sip:user@example.com:",
            "sip:user@example.com;;lr",
            "sip:user@example.com;a=",
            "sip:user@example.com?",
            "sip:user@example.com?a",
            "sip:user%4@example.com",
            "sip:user@[2001:db8::1",
            "sip:user@example.com>x",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn eq(a: &str, b: &str) -> bool {
        let r = uri(a).equivalent(&uri(b));
        assert_eq!(r, uri(b).equivalent(&uri(a)), "not symmetric: {a} {b}");
        r
    }

    #[test]
    fn repeated_parameter_is_equivalent_to_itself() {
        // Fuzz regression: each occurrence was compared with the other's first one.
        for u in [
            "sip:h;a;a=b",
            "sip:h;a=b;A=c",
            "sip:user:pass@host.example.com.:0;a;a=b;A=B;transport=SCTP?h=%20",
        ] {
            assert!(eq(u, u), "{u} differs from itself");
        }
        assert!(eq("sip:h;a;a=b", "sip:h;a"));
        assert!(!eq("sip:h;a;a=b", "sip:h;a=b"));
    }

    #[test]
    fn rfc3261_equivalent_examples() {
        assert!(eq(
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=Tcp"
        ));
        assert!(eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;newparam=5"
        ));
        assert!(eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;security=on"
        ));
        assert!(eq(
            "sip:carol@chicago.com;newparam=5",
            "sip:carol@chicago.com;security=on"
        ));
        assert!(eq(
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
        ));
        assert!(eq(
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x"
        ));
    }

    #[test]
    fn rfc3261_not_equivalent_examples() {
        assert!(!eq(
            "SIP:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP"
        ));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com;transport=udp"
        ));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com:6000;transport=tcp"
        ));
        assert!(!eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com?Subject=next%20meeting"
        ));
        assert!(!eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
        assert!(!eq(
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;security=off"
        ));
    }

    #[test]
    fn more_comparison_rules() {
        assert!(!eq("sip:a@h", "sips:a@h"));
        assert!(!eq("sip:a@h;user=phone", "sip:a@h"));
        assert!(!eq("sip:a@h;ttl=1", "sip:a@h"));
        assert!(!eq("sip:a@h;method=INVITE", "sip:a@h"));
        assert!(!eq("sip:a@h;maddr=192.0.2.1", "sip:a@h"));
        assert!(eq("sip:a@h;lr", "sip:a@h"));
        assert!(eq("sip:a@[2001:db8::1]", "sip:a@[2001:DB8:0::1]"));
        assert!(!eq("sip:a:pw@h", "sip:a:PW@h"));
        // An escaped reserved character is not the character itself.
        assert!(!eq("sip:a%3Bb@h", "sip:a;b@h"));
        assert!(eq("sip:a%3bb@h", "sip:a%3Bb@h"));
        assert!(!eq("sip:h?a=b", "sip:h?a=c"));
    }
}
