//! Byte classes and a small cursor shared by the header parsers (RFC 3261 §25.1).
//!
//! Everything here works on byte slices and never indexes out of bounds: positions are only
//! advanced through `get()`.

/// A 256-entry byte class, built at compile time (one load per byte on the hot path).
/// Evaluated only in constants, so an out-of-range index would fail the build.
#[allow(clippy::indexing_slicing)]
const fn class(extra: &[u8], alnum: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = alnum && b.is_ascii_alphanumeric();
        i += 1;
    }
    let mut j = 0;
    while j < extra.len() {
        t[extra[j] as usize] = true;
        j += 1;
    }
    t
}

const TOKEN_MARKS: &[u8] = b"-.!%*_+`'~";
static TOKEN: [bool; 256] = class(TOKEN_MARKS, true);
static WORD: [bool; 256] = class(b"-.!%*_+`'~()<>:\\\"/[]?{}", true);
static UNRESERVED: [bool; 256] = class(b"-_.!~*'()", true);

/// `token` characters (RFC 3261 §25.1).
#[inline]
pub(crate) fn is_token(b: u8) -> bool {
    TOKEN.get(usize::from(b)).copied().unwrap_or(false)
}

/// `word` characters (used by Call-ID).
#[inline]
pub(crate) fn is_word(b: u8) -> bool {
    WORD.get(usize::from(b)).copied().unwrap_or(false)
}

/// `unreserved` characters (alphanum / mark).
#[inline]
pub(crate) fn is_unreserved(b: u8) -> bool {
    UNRESERVED.get(usize::from(b)).copied().unwrap_or(false)
}

/// `reserved` characters.
pub(crate) fn is_reserved(b: u8) -> bool {
    matches!(
        b,
        b';' | b'/' | b'?' | b':' | b'@' | b'&' | b'=' | b'+' | b'$' | b','
    )
}

/// White space inside a header value. Folding has already been accepted by the line
/// reader, so CR and LF inside a value are always part of `LWS`.
pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Strips leading and trailing white space (including folded line breaks).
pub(crate) fn trim_ws(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_ws(b)).map_or(start, |p| p + 1);
    s.get(start..end).unwrap_or(&[])
}

/// The name of a raw header line and the offset of its value: `token *(SP / HTAB) ":"`
/// (RFC 3261 §7.3.1). `None` for a line without that colon (the lenient line readers skip it).
pub(crate) fn header_name(line: &[u8]) -> Option<(&[u8], usize)> {
    let name_len = line
        .iter()
        .position(|&b| !is_token(b))
        .unwrap_or(line.len());
    let name = line.get(..name_len).unwrap_or(&[]);
    let after = line.get(name_len..).unwrap_or(&[]);
    let ws = after
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    (after.get(ws) == Some(&b':')).then_some((name, name_len + ws + 1))
}

/// Byte offset of `sub` inside `base`, when `sub` is a sub-slice of `base`.
pub(crate) fn offset_in(base: &[u8], sub: &[u8]) -> Option<usize> {
    let b = base.as_ptr() as usize;
    let s = sub.as_ptr() as usize;
    let off = s.checked_sub(b)?;
    if off.checked_add(sub.len())? <= base.len() {
        Some(off)
    } else {
        None
    }
}

/// `&str` view of bytes that the grammar already restricted to ASCII (or UTF-8).
pub(crate) fn to_str(s: &[u8]) -> Option<&str> {
    std::str::from_utf8(s).ok()
}

/// Parses `1*DIGIT` into a u64, refusing empty input, non-digits and overflow.
pub(crate) fn parse_digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// Value of one hex digit.
pub(crate) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A forward-only cursor over a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(s: &'a [u8]) -> Self {
        Cursor { s, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.s.get(self.pos..).unwrap_or(&[])
    }

    pub(crate) fn bump(&mut self) {
        if self.pos < self.s.len() {
            self.pos += 1;
        }
    }

    /// Consumes `b` when it is the next byte.
    pub(crate) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Skips white space (LWS, including folding); returns how many bytes were skipped.
    pub(crate) fn skip_ws(&mut self) -> usize {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if is_ws(b) {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.pos - start
    }

    /// Takes the longest run of bytes matching `f`.
    pub(crate) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if f(b) {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.s.get(start..self.pos).unwrap_or(&[])
    }

    pub(crate) fn token(&mut self) -> &'a [u8] {
        self.take_while(is_token)
    }

    /// Takes a quoted string (with its quotes), honouring `\` escapes. `None` when it is
    /// not terminated; the cursor is then left unchanged.
    pub(crate) fn quoted_string(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        if self.peek() != Some(b'"') {
            return None;
        }
        let mut i = start + 1;
        loop {
            match self.s.get(i) {
                None => return None,
                Some(b'\\') => i += 2,
                Some(b'"') => {
                    self.pos = i + 1;
                    return self.s.get(start..self.pos);
                }
                Some(_) => i += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_folded_white_space() {
        assert_eq!(trim_ws(b" \r\n a b \t"), b"a b");
        assert_eq!(trim_ws(b"   "), b"");
        assert_eq!(trim_ws(b""), b"");
    }

    #[test]
    fn offset_of_sub_slices() {
        let base = b"hello world";
        assert_eq!(offset_in(base, &base[6..]), Some(6));
        assert_eq!(offset_in(base, b"other"), None);
    }

    #[test]
    fn byte_classes_match_the_grammar() {
        for b in 0..=255u8 {
            let token = b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b);
            assert_eq!(is_token(b), token, "token {b}");
            let word = token || b"()<>:\\\"/[]?{}".contains(&b);
            assert_eq!(is_word(b), word, "word {b}");
            let unreserved = b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b);
            assert_eq!(is_unreserved(b), unreserved, "unreserved {b}");
        }
    }

    #[test]
    fn digits() {
        assert_eq!(parse_digits(b"0068"), Some(68));
        assert_eq!(parse_digits(b""), None);
        assert_eq!(parse_digits(b"-1"), None);
        assert_eq!(parse_digits(b"99999999999999999999999"), None);
    }

    #[test]
    fn quoted_strings() {
        let mut c = Cursor::new(br#""a \"b\" \\" rest"#);
        assert_eq!(c.quoted_string(), Some(&br#""a \"b\" \\""#[..]));
        let mut c = Cursor::new(br#""unterminated \""#);
        assert_eq!(c.quoted_string(), None);
        assert_eq!(c.pos(), 0);
    }
}
