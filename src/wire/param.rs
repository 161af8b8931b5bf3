//! Header parameters (`;name[=value]`) as used by Via, From/To, Contact and Route
//! (RFC 3261 `generic-param`, with LWS allowed around `;` and `=`).

use super::lex::{is_token, to_str, Cursor};

/// One header parameter. `value` is `None` for a valueless parameter (`;lr`, `;rport`).
/// Quoted values keep their quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// Parameter name, as written.
    pub name: &'a str,
    /// Parameter value, as written (quoted strings keep their quotes).
    pub value: Option<&'a str>,
}

/// Why a parameter could not be read.
pub(crate) type ParamError = &'static str;

/// Characters of a parameter value that is not a quoted string: token, plus what hosts
/// need (`:` and brackets for IPv6).
fn is_value_char(b: u8) -> bool {
    is_token(b) || matches!(b, b':' | b'[' | b']')
}

/// Reads one `;name[=value]` at the cursor (which must be at `;`, possibly after LWS).
/// Returns `Ok(None)` at the end of input. Also returns the name and value as byte slices
/// of the input so that editors can locate them.
pub(crate) fn next_param<'a>(c: &mut Cursor<'a>) -> Result<Option<RawParam<'a>>, ParamError> {
    c.skip_ws();
    if c.at_end() {
        return Ok(None);
    }
    if !c.eat(b';') {
        return Err("expected semicolon before parameter");
    }
    c.skip_ws();
    let name = c.token();
    if name.is_empty() {
        return Err("empty parameter");
    }
    let save = c.clone();
    c.skip_ws();
    if c.eat(b'=') {
        c.skip_ws();
        let value = if c.peek() == Some(b'"') {
            c.quoted_string()
                .ok_or("unterminated quoted parameter value")?
        } else {
            c.take_while(is_value_char)
        };
        if value.is_empty() {
            return Err("empty parameter value");
        }
        Ok(Some(RawParam {
            name,
            value: Some(value),
        }))
    } else {
        *c = save;
        Ok(Some(RawParam { name, value: None }))
    }
}

/// A parameter as byte slices of the header value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawParam<'a> {
    pub(crate) name: &'a [u8],
    pub(crate) value: Option<&'a [u8]>,
}

impl<'a> RawParam<'a> {
    pub(crate) fn to_param(self) -> Option<Param<'a>> {
        Some(Param {
            name: to_str(self.name)?,
            value: match self.value {
                Some(v) => Some(to_str(v)?),
                None => None,
            },
        })
    }
}

/// Iterator over already-validated header parameters.
#[derive(Debug, Clone)]
pub struct Params<'a> {
    c: Cursor<'a>,
}

impl<'a> Params<'a> {
    pub(crate) fn new(raw: &'a [u8]) -> Self {
        Params {
            c: Cursor::new(raw),
        }
    }

    /// Looks up a parameter by name (case-insensitive). `Some(None)` for a valueless one.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.clone()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value)
    }
}

impl<'a> Iterator for Params<'a> {
    type Item = Param<'a>;
    fn next(&mut self) -> Option<Param<'a>> {
        match next_param(&mut self.c) {
            Ok(Some(p)) => p.to_param(),
            _ => None,
        }
    }
}

/// Validates a run of header parameters; returns the error of the first bad one.
pub(crate) fn validate_params(raw: &[u8]) -> Result<(), ParamError> {
    let mut c = Cursor::new(raw);
    while let Some(p) = next_param(&mut c)? {
        if p.to_param().is_none() {
            return Err("parameter not UTF-8");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_params_with_lws() {
        let raw = b" ;  branch  =   z9hG4bK9ikj8 ;rport; q = 0.33;x=\"a;b\"";
        validate_params(raw).unwrap();
        let all: Vec<_> = Params::new(raw).collect();
        assert_eq!(
            all,
            vec![
                Param {
                    name: "branch",
                    value: Some("z9hG4bK9ikj8")
                },
                Param {
                    name: "rport",
                    value: None
                },
                Param {
                    name: "q",
                    value: Some("0.33")
                },
                Param {
                    name: "x",
                    value: Some("\"a;b\"")
                },
            ]
        );
        assert_eq!(Params::new(raw).get("BRANCH"), Some(Some("z9hG4bK9ikj8")));
        assert_eq!(Params::new(raw).get("rport"), Some(None));
        assert_eq!(Params::new(raw).get("nope"), None);
    }

    #[test]
    fn refuses_bad_params() {
        assert!(validate_params(b";;").is_err());
        assert!(validate_params(b";a=").is_err());
        assert!(validate_params(b"a").is_err());
        assert!(validate_params(b";a=\"open").is_err());
        assert!(validate_params(b";a=b c").is_err());
    }
}
