//! A request the proxy answers instead of forwarding: the status, the reason and the extra
//! header lines of the response it builds.

use crate::wire::response::{default_reason, response_message};
use crate::wire::Message;

/// Why a request gets a response from the proxy itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub reason: String,
    /// Extra header lines (name, value), e.g. `Warning` or `Unsupported`.
    pub headers: Vec<(String, String)>,
}

impl Reject {
    /// A response with the default reason phrase of `code`.
    pub fn new(code: u16) -> Reject {
        Reject {
            code,
            reason: default_reason(code).into(),
            headers: Vec::new(),
        }
    }

    /// The default phrase followed by `why` in parentheses.
    pub fn because(code: u16, why: &str) -> Reject {
        Reject {
            code,
            reason: format!("{} ({why})", default_reason(code)),
            headers: Vec::new(),
        }
    }

    /// With one more header line.
    pub fn with_header(mut self, name: &str, value: &str) -> Reject {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// 480 with `Warning: 380` (RFC 5630 §5.3: a SIPS Request-URI has no TLS way on).
    pub fn sips_not_allowed(agent: &str) -> Reject {
        Reject::because(480, "no TLS target for a SIPS Request-URI")
            .with_header("Warning", &format!("380 {agent} \"SIPS Not Allowed\""))
    }

    /// The response to `request` (Via, From, To with a tag, Call-ID and CSeq echoed).
    pub fn response_to(&self, request: &Message) -> Option<Message> {
        let extra: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        response_message(request, self.code, &self.reason, &extra)
    }
}
