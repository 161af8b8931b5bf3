//! `name-addr` / `addr-spec` header values with parameters: From, To, Contact, Route,
//! Record-Route (RFC 3261 §20.10, §20.20, §20.30, §20.34, §20.39).

use super::error::ParseError;
use super::lex::{is_token, is_ws, to_str, trim_ws, Cursor};
use super::param::{validate_params, Params};
use super::uri::Uri;

/// One address value with its header parameters, borrowing from the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Display name as written: the content of the quoted string (escapes kept) or the
    /// unquoted tokens. `None` also when it is not UTF-8 (see `display_name_raw`).
    pub display_name: Option<&'a str>,
    /// Display name bytes as written (quoted strings may carry non-UTF-8 bytes that
    /// some user agents send; they are tolerated).
    pub display_name_raw: Option<&'a [u8]>,
    /// The URI text (without `<` `>`).
    pub uri: &'a str,
    /// True when the URI was enclosed in `<...>` (name-addr form).
    pub bracketed: bool,
    /// Header parameters as written, starting at the first `;` (may be empty).
    pub params_raw: &'a [u8],
}

impl<'a> NameAddr<'a> {
    /// Parses one value. `header` names the header for error messages.
    ///
    /// Liberal on one point (RFC 4475 §3.1.2.14): white space just inside `<` `>` is
    /// ignored. An unquoted display name must be tokens separated by white space
    /// (§3.1.2.15); a URI with `?` headers must be in `<...>` (§3.1.2.13).
    pub fn parse(value: &'a [u8], header: &'static str) -> Result<NameAddr<'a>, ParseError> {
        let bad = |r: &'static str| ParseError::BadNameAddr(header, r);
        let v = trim_ws(value);
        let mut c = Cursor::new(v);
        let mut display_name_raw: Option<&'a [u8]> = None;
        let (uri, bracketed);
        if c.peek() == Some(b'"') {
            let q = c
                .quoted_string()
                .ok_or(bad("unterminated quoted display name"))?;
            display_name_raw = Some(q.get(1..q.len().saturating_sub(1)).unwrap_or(&[]));
            c.skip_ws();
            if c.peek() != Some(b'<') {
                return Err(bad("expected < after display name"));
            }
        } else if c.peek() != Some(b'<') {
            let rest = c.rest();
            if let Some(lt) = rest.iter().position(|&b| b == b'<') {
                let dn = trim_ws(rest.get(..lt).unwrap_or(&[]));
                if !dn.iter().all(|&b| is_token(b) || is_ws(b)) {
                    return Err(bad("display name must be quoted"));
                }
                display_name_raw = Some(dn);
                for _ in 0..lt {
                    c.bump();
                }
            }
        }
        if c.eat(b'<') {
            let inner_len = c
                .rest()
                .iter()
                .position(|&b| b == b'>')
                .ok_or(bad("missing >"))?;
            let inner = c.rest().get(..inner_len).unwrap_or(&[]);
            for _ in 0..=inner_len {
                c.bump();
            }
            let u = trim_ws(inner);
            if u.is_empty() || u.iter().any(|&b| is_ws(b)) {
                return Err(bad("white space inside URI"));
            }
            uri = to_str(u).ok_or(bad("URI not ASCII"))?;
            bracketed = true;
        } else {
            // addr-spec: the URI ends at the first ';' or white space; parameters after it
            // belong to the header.
            let u = c.take_while(|b| b != b';' && !is_ws(b));
            if u.is_empty() {
                return Err(bad("missing URI"));
            }
            if u.contains(&b'?') || u.contains(&b',') {
                return Err(bad("URI with headers or comma must be in angle brackets"));
            }
            uri = to_str(u).ok_or(bad("URI not ASCII"))?;
            bracketed = false;
        }
        if !uri.contains(':') {
            return Err(bad("URI without scheme"));
        }
        let params_raw = c.rest();
        validate_params(params_raw).map_err(bad)?;
        Ok(NameAddr {
            display_name: display_name_raw.and_then(to_str),
            display_name_raw,
            uri,
            bracketed,
            params_raw,
        })
    }

    /// Header parameters in order.
    pub fn params(&self) -> Params<'a> {
        Params::new(self.params_raw)
    }

    /// A header parameter by name; `Some(None)` when valueless.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.params().get(name)
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&'a str> {
        self.param("tag").flatten()
    }

    /// The URI parsed as a SIP/SIPS URI (fails for other schemes such as `tel:`).
    pub fn sip_uri(&self) -> Result<Uri<'a>, ParseError> {
        Uri::parse(self.uri)
    }
}

/// A Contact value: an address or `*` (REGISTER removal of all bindings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactValue<'a> {
    /// `Contact: *`
    Star,
    /// An address.
    Addr(NameAddr<'a>),
}

impl<'a> ContactValue<'a> {
    /// Parses one Contact value.
    pub fn parse(value: &'a [u8]) -> Result<ContactValue<'a>, ParseError> {
        if trim_ws(value) == b"*" {
            Ok(ContactValue::Star)
        } else {
            NameAddr::parse(value, "Contact").map(ContactValue::Addr)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn na(s: &str) -> NameAddr<'_> {
        NameAddr::parse(s.as_bytes(), "To").unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn forms() {
        let a = na(
            "\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8",
        );
        assert_eq!(a.display_name, Some("J Rosenberg \\\\\\\""));
        assert_eq!(a.uri, "sip:jdrosen@example.com");
        assert_eq!(a.tag(), Some("98asjd8"));
        let a = na("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n");
        assert!(!a.bracketed);
        assert_eq!(a.uri, "sip:vivekg@chair-dnrc.example.com");
        assert_eq!(a.tag(), Some("1918181833n"));
        let a = na("caller<sip:caller@example.com>;tag=323");
        assert_eq!(a.display_name, Some("caller"));
        assert_eq!(a.tag(), Some("323"));
        let a = na("A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe");
        assert_eq!(a.display_name, Some("A. Bell"));
        let a = na("<sip:user@example.com;lr>;x=1;flag");
        assert!(a.sip_uri().unwrap().lr());
        assert_eq!(a.param("flag"), Some(None));
        assert_eq!(a.tag(), None);
        let a = na("\"Watson, Thomas\" < sip:t.watson@example.org >");
        assert_eq!(a.uri, "sip:t.watson@example.org");
        let a = na("sip:user@example.com;tag=1");
        assert_eq!(a.uri, "sip:user@example.com");
        assert_eq!(a.tag(), Some("1"));
        let a = na("<tel:+1-555-0100>");
        assert!(a.sip_uri().is_err());
    }

    #[test]
    fn errors() {
        for bad in [
            "\"Mr. J. User <sip:j.user@example.com>",
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            "\"Joe\" <sip:joe@example.org>;;;;",
            "<sip:a@b",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "<sip:a @b>",
            "",
            "\"x\" sip:a@b",
            "<nocolon>",
        ] {
            assert!(
                NameAddr::parse(bad.as_bytes(), "To").is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn non_utf8_display_name_tolerated() {
        let a = NameAddr::parse(b"\"caf\xe9\" <sip:a@b>;tag=1", "From").unwrap();
        assert_eq!(a.display_name, None);
        assert_eq!(a.display_name_raw, Some(&b"caf\xe9"[..]));
        assert_eq!(a.tag(), Some("1"));
    }

    #[test]
    fn contact_star() {
        assert_eq!(ContactValue::parse(b" * ").unwrap(), ContactValue::Star);
        assert!(matches!(
            ContactValue::parse(b"<sip:a@b>;expires=0").unwrap(),
            ContactValue::Addr(_)
        ));
    }
}
