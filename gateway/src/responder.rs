//! What `sipwire run` answers before the relay exists: 200 OK to an OPTIONS addressed to
//! itself, 501 to other methods addressed to itself, 480 to requests for elsewhere;
//! nothing to ACK and to responses. Pure.

use std::net::IpAddr;

use bytes::Bytes;

use sipwire::wire::response::response_to;
use sipwire::wire::{Host, Message};

/// The names and addresses this gateway answers for.
#[derive(Debug, Clone, Default)]
pub struct LocalNames {
    /// Listener addresses (IP, port).
    pub addrs: Vec<(IpAddr, u16)>,
    /// Domains served (`localhost` and listener domains), compared case-insensitively.
    pub domains: Vec<String>,
}

impl LocalNames {
    /// True when a Request-URI host (and port, if any) denotes this gateway.
    pub fn is_local(&self, host: &Host<'_>, port: Option<u16>) -> bool {
        let port_ok = |p: u16| port.map_or(true, |want| want == p);
        match host.ip() {
            Some(ip) => self.addrs.iter().any(|(a, p)| {
                (*a == ip || (a.is_unspecified() && a.is_ipv4() == ip.is_ipv4())) && port_ok(*p)
            }),
            None => {
                let Host::Name(n) = host else { return false };
                let n = n.trim_end_matches('.');
                self.domains.iter().any(|d| d.eq_ignore_ascii_case(n))
                    && port.map_or(true, |want| self.addrs.iter().any(|(_, p)| *p == want))
            }
        }
    }
}

/// The response to send for a received message, if any.
pub fn answer(msg: &Message, local: &LocalNames) -> Option<Bytes> {
    let method = msg.method()?;
    if method == "ACK" {
        return None;
    }
    let to_us = match msg.request_sip_uri() {
        Some(Ok(uri)) => local.is_local(&uri.host, uri.port),
        _ => false,
    };
    Some(match (to_us, method) {
        (true, "OPTIONS") => response_to(msg, 200, "OK"),
        (true, _) => response_to(msg, 501, "Not Implemented"),
        (false, _) => response_to(msg, 480, "Temporarily Unavailable (no relay yet)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> LocalNames {
        LocalNames {
            addrs: vec![("127.0.0.1".parse().unwrap(), 5060)],
            domains: vec!["localhost".into()],
        }
    }

    fn req(method: &str, uri: &str) -> Message {
        let s = format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
From: <sip:a@192.0.2.1>;tag=1\r\nTo: <{uri}>\r\nCall-ID: c1\r\nCSeq: 7 {method}\r\n\
Content-Length: 0\r\n\r\n"
        );
        Message::parse(Bytes::from(s)).unwrap()
    }

    fn status(b: Option<Bytes>) -> Option<u16> {
        b.map(|b| Message::parse(b).unwrap().status_code().unwrap())
    }

    #[test]
    fn options_to_us() {
        let m = req("OPTIONS", "sip:127.0.0.1:5060");
        let r = Message::parse(answer(&m, &local()).unwrap()).unwrap();
        assert_eq!(r.status_code(), Some(200));
        assert_eq!(r.call_id(), "c1");
        assert_eq!(r.cseq().seq, 7);
        assert!(r.to_tag().is_some());
        assert_eq!(r.content_length(), Some(0));
        assert_eq!(
            status(answer(&req("OPTIONS", "sip:localhost"), &local())),
            Some(200)
        );
        assert_eq!(
            status(answer(&req("OPTIONS", "sip:LOCALHOST."), &local())),
            Some(200)
        );
    }

    #[test]
    fn others() {
        assert_eq!(
            status(answer(&req("INVITE", "sip:127.0.0.1"), &local())),
            Some(501)
        );
        assert_eq!(
            status(answer(&req("OPTIONS", "sip:127.0.0.1:5070"), &local())),
            Some(480)
        );
        assert_eq!(
            status(answer(&req("OPTIONS", "sip:192.0.2.7"), &local())),
            Some(480)
        );
        assert_eq!(
            status(answer(&req("MESSAGE", "sip:b@example.com"), &local())),
            Some(480)
        );
        assert_eq!(answer(&req("ACK", "sip:127.0.0.1"), &local()), None);
    }
}
