//! Logging the SIP messages the gateway receives. Bodies (SDP with media
//! addresses and keys, instant messages) stay out of the logs unless the operator asks
//! with `--log-sip-bodies`; the start line and headers are logged at `trace`, a summary at
//! `debug` (target `sipwire_gateway::sip`). The text is logged quoted (`\r\n` escaped): one
//! log line per message.

use sipwire::wire::Message;
use sipwire::Incoming;

/// Whether message bodies may appear in logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SipLog {
    /// `--log-sip-bodies`.
    pub bodies: bool,
}

/// The text of `msg` for a log: the start line and headers, and the body only if `bodies`
/// (else a note of its length).
pub fn message_text(msg: &Message, bodies: bool) -> String {
    let bytes = msg.as_bytes();
    let head = &bytes[..msg.head_len().min(bytes.len())];
    let mut text = String::from_utf8_lossy(head).into_owned();
    let body = msg.body();
    if !body.is_empty() {
        if bodies {
            text.push_str(&String::from_utf8_lossy(&body));
        } else {
            text.push_str(&format!(
                "[body of {} bytes not logged; --log-sip-bodies logs it]",
                body.len()
            ));
        }
    }
    text
}

impl SipLog {
    /// Logs a received message.
    pub fn received(&self, inc: &Incoming) {
        let m = &inc.message;
        tracing::debug!(
            target: "sipwire_gateway::sip",
            flow = %inc.flow,
            source = %inc.source,
            method = m.method().unwrap_or(""),
            status = m.status_code().unwrap_or(0),
            call_id = m.call_id(),
            cseq = m.cseq().seq,
            bytes = m.len(),
            "SIP message received"
        );
        if tracing::enabled!(target: "sipwire_gateway::sip", tracing::Level::TRACE) {
            tracing::trace!(
                target: "sipwire_gateway::sip",
                flow = %inc.flow,
                message = ?message_text(m, self.bodies),
                "SIP message text"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const MSG: &str = "MESSAGE sip:b@h SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c1\r\nCSeq: 1 MESSAGE\r\n\
Content-Length: 6\r\n\r\nsecret";

    #[test]
    fn bodies_only_when_asked() {
        let m = Message::parse(Bytes::from_static(MSG.as_bytes())).unwrap();
        let without = message_text(&m, false);
        assert!(without.contains("Call-ID: c1\r\n"));
        assert!(!without.contains("secret"));
        assert!(without.ends_with("[body of 6 bytes not logged; --log-sip-bodies logs it]"));
        assert_eq!(message_text(&m, true), MSG);
    }
}
