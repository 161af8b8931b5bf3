//! The CSeq header (RFC 3261 §20.16): a 32-bit sequence number and a method.

use super::error::ParseError;
use super::lex::{parse_digits, to_str, trim_ws, Cursor};

/// A parsed CSeq value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// Sequence number (must fit 32 bits, RFC 3261 §8.1.1.5).
    pub seq: u32,
    /// Method (case-sensitive).
    pub method: &'a str,
}

impl<'a> CSeq<'a> {
    /// Parses `1*DIGIT LWS Method`.
    pub fn parse(value: &'a [u8]) -> Result<CSeq<'a>, ParseError> {
        let mut c = Cursor::new(trim_ws(value));
        let digits = c.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err(ParseError::BadCSeq("missing sequence number"));
        }
        let seq = parse_digits(digits)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(ParseError::BadCSeq("sequence number exceeds 32 bits"))?;
        if c.skip_ws() == 0 {
            return Err(ParseError::BadCSeq("expected white space after number"));
        }
        let method = c.token();
        if method.is_empty() || !c.at_end() {
            return Err(ParseError::BadCSeq("bad method"));
        }
        Ok(CSeq {
            seq,
            method: to_str(method).ok_or(ParseError::BadCSeq("bad method"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            CSeq::parse(b"0009\r\n  INVITE").unwrap(),
            CSeq {
                seq: 9,
                method: "INVITE"
            }
        );
        assert_eq!(CSeq::parse(b"4294967295 ACK").unwrap().seq, u32::MAX);
        assert_eq!(
            CSeq::parse(b"139122385 !interesting-Method0123456789_*+`.%indeed'~")
                .unwrap()
                .method,
            "!interesting-Method0123456789_*+`.%indeed'~"
        );
    }

    #[test]
    fn refuses() {
        for bad in [
            "",
            "INVITE",
            "1",
            "1INVITE",
            "-1 INVITE",
            "36893488147419103232 REGISTER",
            "4294967296 INVITE",
            "1 INVITE extra",
            "1 INV@ITE",
        ] {
            assert!(CSeq::parse(bad.as_bytes()).is_err(), "{bad:?} accepted");
        }
    }
}
