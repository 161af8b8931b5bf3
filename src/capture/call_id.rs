//! The Call-ID of a SIP message for HEP's correlation chunk, found by scanning the header
//! lines: the sink reads it off the SIP path, from the bytes it mirrors (sent messages are
//! never parsed by the transport).

/// The value of the first `Call-ID` (or compact `i`) header, trimmed; `None` if there is
/// none in the header block.
pub fn call_id(message: &[u8]) -> Option<&[u8]> {
    let mut lines = message.split(|&b| b == b'\n');
    lines.next()?; // the start line
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None; // end of the header block
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let name = name.trim_ascii_end();
        if name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i") {
            let value = value.get(1..).unwrap_or(&[]).trim_ascii();
            return (!value.is_empty()).then_some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_and_compact_names() {
        let m = b"OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nCALL-ID :  a@b \r\n\r\n";
        assert_eq!(call_id(m), Some(&b"a@b"[..]));
        let m = b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP h\r\ni:x1\r\n\r\n";
        assert_eq!(call_id(m), Some(&b"x1"[..]));
    }

    #[test]
    fn none_in_the_body_or_missing() {
        let m = b"MESSAGE sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\nCall-ID: body\r\n";
        assert_eq!(call_id(m), None);
        assert_eq!(call_id(b""), None);
        assert_eq!(call_id(b"X sip:h SIP/2.0\nCall-ID:\n\n"), None);
    }
}
