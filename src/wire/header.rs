//! Header names (full and compact forms, case-insensitive) and splitting of
//! comma-separated header values.

use super::error::ParseError;
use super::lex::trim_ws;

/// Headers the codec knows by name. Everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderKind {
    /// `Via` / `v`.
    Via,
    /// `From` / `f`.
    From,
    /// `To` / `t`.
    To,
    /// `Call-ID` / `i`.
    CallId,
    /// `CSeq`.
    CSeq,
    /// `Content-Length` / `l`.
    ContentLength,
    /// `Max-Forwards`.
    MaxForwards,
    /// `Route`.
    Route,
    /// `Record-Route`.
    RecordRoute,
    /// `Contact` / `m`.
    Contact,
    /// `Content-Type` / `c`.
    ContentType,
    /// `Content-Encoding` / `e`.
    ContentEncoding,
    /// `Subject` / `s`.
    Subject,
    /// `Supported` / `k`.
    Supported,
    /// `Require`.
    Require,
    /// `Proxy-Require`.
    ProxyRequire,
    /// `Event` / `o` (RFC 6665).
    Event,
    /// `Allow-Events` / `u` (RFC 6665).
    AllowEvents,
    /// `Refer-To` / `r` (RFC 3515).
    ReferTo,
    /// `Referred-By` / `b` (RFC 3892).
    ReferredBy,
    /// `Session-Expires` / `x` (RFC 4028).
    SessionExpires,
    /// `Accept-Contact` / `a` (RFC 3841).
    AcceptContact,
    /// `Reject-Contact` / `j` (RFC 3841).
    RejectContact,
    /// `Request-Disposition` / `d` (RFC 3841).
    RequestDisposition,
    /// `Identity` / `y` (RFC 8224).
    Identity,
    /// `Path` (RFC 3327).
    Path,
    /// `Service-Route` (RFC 3608).
    ServiceRoute,
    /// Any other header.
    Other,
}

/// (kind, full name, compact form)
const NAMES: &[(HeaderKind, &str, Option<u8>)] = &[
    (HeaderKind::Via, "Via", Some(b'v')),
    (HeaderKind::From, "From", Some(b'f')),
    (HeaderKind::To, "To", Some(b't')),
    (HeaderKind::CallId, "Call-ID", Some(b'i')),
    (HeaderKind::CSeq, "CSeq", None),
    (HeaderKind::ContentLength, "Content-Length", Some(b'l')),
    (HeaderKind::MaxForwards, "Max-Forwards", None),
    (HeaderKind::Route, "Route", None),
    (HeaderKind::RecordRoute, "Record-Route", None),
    (HeaderKind::Contact, "Contact", Some(b'm')),
    (HeaderKind::ContentType, "Content-Type", Some(b'c')),
    (HeaderKind::ContentEncoding, "Content-Encoding", Some(b'e')),
    (HeaderKind::Subject, "Subject", Some(b's')),
    (HeaderKind::Supported, "Supported", Some(b'k')),
    (HeaderKind::Require, "Require", None),
    (HeaderKind::ProxyRequire, "Proxy-Require", None),
    (HeaderKind::Event, "Event", Some(b'o')),
    (HeaderKind::AllowEvents, "Allow-Events", Some(b'u')),
    (HeaderKind::ReferTo, "Refer-To", Some(b'r')),
    (HeaderKind::ReferredBy, "Referred-By", Some(b'b')),
    (HeaderKind::SessionExpires, "Session-Expires", Some(b'x')),
    (HeaderKind::AcceptContact, "Accept-Contact", Some(b'a')),
    (HeaderKind::RejectContact, "Reject-Contact", Some(b'j')),
    (
        HeaderKind::RequestDisposition,
        "Request-Disposition",
        Some(b'd'),
    ),
    (HeaderKind::Identity, "Identity", Some(b'y')),
    (HeaderKind::Path, "Path", None),
    (HeaderKind::ServiceRoute, "Service-Route", None),
];

/// Longest known full name + 1.
const MAX_NAME: usize = 20;
/// Slots per name length (the most names of one length is four).
const SLOTS: usize = 4;
const NO_NAMES: [u8; SLOTS] = [u8::MAX; SLOTS];

/// Indices into [`NAMES`] by name length (`u8::MAX` ends a list), built at compile time.
#[allow(clippy::indexing_slicing)]
const fn by_len() -> [[u8; SLOTS]; MAX_NAME] {
    let mut t = [NO_NAMES; MAX_NAME];
    let mut i = 0;
    while i < NAMES.len() {
        let len = NAMES[i].1.len();
        let mut k = 0;
        while t[len][k] != u8::MAX {
            k += 1;
        }
        t[len][k] = i as u8;
        i += 1;
    }
    t
}
static BY_LEN: [[u8; SLOTS]; MAX_NAME] = by_len();

/// Kind by compact form, indexed by letter.
#[allow(clippy::indexing_slicing)]
const fn compact() -> [Option<HeaderKind>; 26] {
    let mut t = [None; 26];
    let mut i = 0;
    while i < NAMES.len() {
        if let Some(c) = NAMES[i].2 {
            t[(c - b'a') as usize] = Some(NAMES[i].0);
        }
        i += 1;
    }
    t
}
static COMPACT: [Option<HeaderKind>; 26] = compact();

impl HeaderKind {
    /// Recognises a header name, full or compact, in any letter case.
    pub fn from_name(name: &[u8]) -> HeaderKind {
        if let [c] = name {
            let i = usize::from(c.to_ascii_lowercase().wrapping_sub(b'a'));
            return COMPACT
                .get(i)
                .copied()
                .flatten()
                .unwrap_or(HeaderKind::Other);
        }
        // Only the (at most four) known names of this length are compared.
        let candidates = BY_LEN.get(name.len()).copied().unwrap_or(NO_NAMES);
        for i in candidates {
            let Some((kind, full, _)) = NAMES.get(usize::from(i)) else {
                break;
            };
            let full = full.as_bytes();
            // Names of one length differ in their first or last letter, mostly.
            if full.first().map(u8::to_ascii_lowercase) == name.first().map(u8::to_ascii_lowercase)
                && full.last().map(u8::to_ascii_lowercase)
                    == name.last().map(u8::to_ascii_lowercase)
                && full.eq_ignore_ascii_case(name)
            {
                return *kind;
            }
        }
        HeaderKind::Other
    }

    /// The canonical full name (`None` for `Other`).
    pub fn canonical_name(self) -> Option<&'static str> {
        NAMES
            .iter()
            .find(|(k, _, _)| *k == self)
            .map(|(_, n, _)| *n)
    }

    /// The compact form, if the header has one.
    pub fn compact_form(self) -> Option<char> {
        NAMES
            .iter()
            .find(|(k, _, _)| *k == self)
            .and_then(|(_, _, c)| c.map(char::from))
    }

    /// True for headers whose values are comma-separated lists that the codec splits
    /// (Via, Route, Record-Route, Contact, Path, Service-Route and the option-tag lists).
    pub fn is_list(self) -> bool {
        matches!(
            self,
            HeaderKind::Via
                | HeaderKind::Route
                | HeaderKind::RecordRoute
                | HeaderKind::Contact
                | HeaderKind::Path
                | HeaderKind::ServiceRoute
                | HeaderKind::Supported
                | HeaderKind::Require
                | HeaderKind::ProxyRequire
                | HeaderKind::AllowEvents
                | HeaderKind::AcceptContact
                | HeaderKind::RejectContact
                | HeaderKind::RequestDisposition
        )
    }
}

/// True when `name` (as written in a message) names the header `wanted`, by full name or
/// compact form, case-insensitively. Unknown names compare by full text.
pub fn name_matches(name: &[u8], wanted: &str) -> bool {
    let kind = HeaderKind::from_name(wanted.as_bytes());
    if kind != HeaderKind::Other {
        HeaderKind::from_name(name) == kind
    } else {
        name.eq_ignore_ascii_case(wanted.as_bytes())
    }
}

/// Iterator over the elements of a comma-separated header value. Commas inside quoted
/// strings and inside `<...>` do not split. Elements are trimmed; an empty element, an
/// unterminated quoted string or `<` yields an error and ends the iteration.
#[derive(Debug, Clone)]
pub struct SplitValues<'a> {
    s: &'a [u8],
    pos: usize,
    done: bool,
}

/// Splits a header value at the commas that separate list elements.
pub fn split_values(value: &[u8]) -> SplitValues<'_> {
    SplitValues {
        s: value,
        pos: 0,
        done: false,
    }
}

impl<'a> Iterator for SplitValues<'a> {
    type Item = Result<&'a [u8], ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let start = self.pos;
        let mut i = start;
        let mut in_quote = false;
        let mut in_angle = false;
        loop {
            // Jump to the next byte that matters in the current state.
            let rest = self.s.get(i..).unwrap_or(&[]);
            let skip = if in_quote {
                memchr::memchr2(b'\\', b'"', rest)
            } else if in_angle {
                memchr::memchr(b'>', rest)
            } else {
                memchr::memchr3(b'"', b'<', b',', rest)
            };
            i += skip.unwrap_or(rest.len());
            let Some(&b) = self.s.get(i) else {
                self.done = true;
                if in_quote {
                    return Some(Err(ParseError::BadValue("unterminated quoted string")));
                }
                if in_angle {
                    return Some(Err(ParseError::BadValue("unterminated angle bracket")));
                }
                let elem = trim_ws(self.s.get(start..).unwrap_or(&[]));
                if elem.is_empty() {
                    // An empty value (no elements) is not an error; a trailing comma is.
                    if start == 0 {
                        return None;
                    }
                    return Some(Err(ParseError::BadValue("empty list element")));
                }
                return Some(Ok(elem));
            };
            if in_quote {
                match b {
                    b'\\' => i += 1,
                    b'"' => in_quote = false,
                    _ => {}
                }
            } else if in_angle {
                if b == b'>' {
                    in_angle = false;
                }
            } else {
                match b {
                    b'"' => in_quote = true,
                    b'<' => in_angle = true,
                    b',' => {
                        self.pos = i + 1;
                        let elem = trim_ws(self.s.get(start..i).unwrap_or(&[]));
                        if elem.is_empty() {
                            self.done = true;
                            return Some(Err(ParseError::BadValue("empty list element")));
                        }
                        return Some(Ok(elem));
                    }
                    _ => {}
                }
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(v: &str) -> Result<Vec<String>, ParseError> {
        split_values(v.as_bytes())
            .map(|r| r.map(|e| String::from_utf8_lossy(e).into_owned()))
            .collect()
    }

    #[test]
    fn compact_and_full_names() {
        for (name, kind) in [
            ("v", HeaderKind::Via),
            ("V", HeaderKind::Via),
            ("via", HeaderKind::Via),
            ("f", HeaderKind::From),
            ("t", HeaderKind::To),
            ("i", HeaderKind::CallId),
            ("l", HeaderKind::ContentLength),
            ("L", HeaderKind::ContentLength),
            ("m", HeaderKind::Contact),
            ("c", HeaderKind::ContentType),
            ("k", HeaderKind::Supported),
            ("s", HeaderKind::Subject),
            ("e", HeaderKind::ContentEncoding),
            ("o", HeaderKind::Event),
            ("u", HeaderKind::AllowEvents),
            ("r", HeaderKind::ReferTo),
            ("x", HeaderKind::SessionExpires),
            ("b", HeaderKind::ReferredBy),
            ("MaX-fOrWaRdS", HeaderKind::MaxForwards),
            ("call-id", HeaderKind::CallId),
            ("CSEQ", HeaderKind::CSeq),
            ("record-route", HeaderKind::RecordRoute),
            ("C%6Fntact", HeaderKind::Other),
            ("z", HeaderKind::Other),
            ("X-Custom", HeaderKind::Other),
        ] {
            assert_eq!(HeaderKind::from_name(name.as_bytes()), kind, "{name}");
        }
        assert_eq!(HeaderKind::Via.canonical_name(), Some("Via"));
        assert_eq!(HeaderKind::Via.compact_form(), Some('v'));
        assert!(name_matches(b"v", "Via"));
        assert!(name_matches(b"X-FOO", "x-foo"));
    }

    #[test]
    fn splits_respecting_quotes_and_brackets() {
        assert_eq!(
            split(r#""a, b" <sip:x@y;p=1,2>;q=1 , <sip:z> ,sip:w"#).unwrap(),
            vec![r#""a, b" <sip:x@y;p=1,2>;q=1"#, "<sip:z>", "sip:w"]
        );
        assert_eq!(
            split("SIP/2.0/UDP a;branch=1,\r\n SIP/2.0/TCP b").unwrap(),
            vec!["SIP/2.0/UDP a;branch=1", "SIP/2.0/TCP b"]
        );
        assert_eq!(
            split(r#""q\"," <sip:a>"#).unwrap(),
            vec![r#""q\"," <sip:a>"#]
        );
        assert_eq!(split("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn split_errors() {
        assert!(split("a,,b").is_err());
        assert!(split("a,").is_err());
        assert!(split(",a").is_err());
        assert!(split(r#""open"#).is_err());
        assert!(split("<sip:open").is_err());
    }
}
