//! Matching messages to transactions: RFC 3261 §17.1.3 (responses to client transactions),
//! §17.2.3 (requests to server transactions, with the RFC 2543 fallback) and §9.2 (the
//! INVITE a CANCEL cancels).
//!
//! Keys are owned and hashable so that a table can find a transaction in one lookup. The
//! RFC 2543 fallback compares the To tag too, but that tag changes within a transaction
//! (the ACK carries the tag of the response), so it is left out of the hashed key and
//! checked by the transaction itself ([`legacy_to_tag_matches`]).

use std::borrow::Cow;

use crate::wire::{Host, Message, BRANCH_MAGIC_COOKIE};

use super::error::TransactionError;

/// Identifies a client transaction: the branch of the top Via of the request it sent and
/// the request's method (§17.1.3). The method keeps a CANCEL, which reuses the INVITE's
/// branch, apart from the INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    branch: Box<str>,
    method: Cow<'static, str>,
}

impl ClientKey {
    /// The key of a request we are about to send. The branch must carry the magic cookie
    /// (§8.1.1.7); ACK starts no transaction.
    pub fn from_request(request: &Message) -> Result<ClientKey, TransactionError> {
        let method = request.method().ok_or(TransactionError::NotARequest)?;
        if method == "ACK" {
            return Err(TransactionError::AckStartsNoTransaction);
        }
        let via = request.top_via().map_err(TransactionError::BadVia)?;
        let branch = via.branch.ok_or(TransactionError::MissingBranch)?;
        if !branch.starts_with(BRANCH_MAGIC_COOKIE) {
            return Err(TransactionError::BranchWithoutCookie);
        }
        Ok(ClientKey {
            branch: branch.into(),
            method: key_method(method),
        })
    }

    /// The key a received response is matched with: its top Via branch and CSeq method.
    pub fn from_response(response: &Message) -> Result<ClientKey, TransactionError> {
        if response.is_request() {
            return Err(TransactionError::NotAResponse);
        }
        let via = response.top_via().map_err(TransactionError::BadVia)?;
        let branch = via.branch.ok_or(TransactionError::MissingBranch)?;
        Ok(ClientKey {
            branch: branch.into(),
            method: key_method(response.cseq().method),
        })
    }

    /// The branch.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The method of the request that created the transaction.
    pub fn method(&self) -> &str {
        &self.method
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ServerKeyKind {
    /// §17.2.3 with the magic cookie: branch, sent-by, method.
    Branch {
        branch: Box<str>,
        host: KeyHost,
        port: Option<u16>,
        method: Cow<'static, str>,
    },
    /// §17.2.3 without it (RFC 2543 peers): Request-URI, From tag, Call-ID, CSeq number,
    /// top Via and method (the To tag is checked apart).
    Legacy {
        request_uri: Box<str>,
        from_tag: Option<Box<str>>,
        call_id: Box<str>,
        cseq: u32,
        top_via: Box<[u8]>,
        method: Cow<'static, str>,
    },
}

/// Identifies a server transaction (§17.2.3). ACK maps to INVITE, so an ACK for a non-2xx
/// response finds its INVITE transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerKey(ServerKeyKind);

/// A sent-by host as keys compare it: names case-insensitively (trailing dot dropped),
/// addresses by value (kept as values: no text to build per received request).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum KeyHost {
    Name(Box<str>),
    Ip(std::net::IpAddr),
}

fn key_host(host: &Host<'_>) -> KeyHost {
    match host {
        Host::Name(n) => KeyHost::Name(n.trim_end_matches('.').to_ascii_lowercase().into()),
        Host::Ipv4(a) => KeyHost::Ip((*a).into()),
        Host::Ipv6(a) => KeyHost::Ip((*a).into()),
    }
}

/// A method name in a key: the RFC methods without an allocation (every received request
/// builds a key, some two or three times), extension methods copied.
fn key_method(m: &str) -> Cow<'static, str> {
    const KNOWN: [&str; 14] = [
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "PUBLISH",
        "INFO",
        "REFER",
        "MESSAGE",
        "UPDATE",
    ];
    match KNOWN.iter().find(|k| **k == m) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(m.to_owned()),
    }
}

impl ServerKey {
    /// The key of a received request (ACK counts as INVITE). A top Via branch starting
    /// with `z9hG4bK` selects the RFC 3261 rule, anything else the RFC 2543 fallback.
    pub fn from_request(request: &Message) -> Result<ServerKey, TransactionError> {
        let method = request.method().ok_or(TransactionError::NotARequest)?;
        let method = key_method(if method == "ACK" { "INVITE" } else { method });
        let via = request.top_via().map_err(TransactionError::BadVia)?;
        let kind = match via.branch {
            Some(b) if b.starts_with(BRANCH_MAGIC_COOKIE) => ServerKeyKind::Branch {
                branch: b.into(),
                host: key_host(&via.host),
                port: via.port,
                method,
            },
            _ => ServerKeyKind::Legacy {
                request_uri: request.request_uri().unwrap_or_default().into(),
                from_tag: request.from_tag().map(Into::into),
                call_id: request.call_id().into(),
                cseq: request.cseq().seq,
                top_via: via.raw.into(),
                method,
            },
        };
        Ok(ServerKey(kind))
    }

    /// True for the RFC 3261 (magic cookie) rule, false for the RFC 2543 fallback.
    pub fn is_rfc3261(&self) -> bool {
        matches!(self.0, ServerKeyKind::Branch { .. })
    }

    /// The method of the request that created the transaction (INVITE for an ACK).
    pub fn method(&self) -> &str {
        match &self.0 {
            ServerKeyKind::Branch { method, .. } | ServerKeyKind::Legacy { method, .. } => method,
        }
    }

    /// For the key of a CANCEL: the key of the INVITE it cancels (§9.2: the CANCEL's
    /// own key with any method but CANCEL or ACK; only INVITE is worth cancelling).
    /// `None` for any other method.
    pub fn cancelled_invite(&self) -> Option<ServerKey> {
        if self.method() != "CANCEL" {
            return None;
        }
        let mut k = self.clone();
        match &mut k.0 {
            ServerKeyKind::Branch { method, .. } | ServerKeyKind::Legacy { method, .. } => {
                *method = Cow::Borrowed("INVITE");
            }
        }
        Some(k)
    }
}

/// A client or a server transaction's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransactionKey {
    /// §17.1.3.
    Client(ClientKey),
    /// §17.2.3.
    Server(ServerKey),
}

/// The To-tag part of the RFC 2543 fallback (always true under the RFC 3261 rule): an
/// ACK must carry the To tag of the response the server sent, any other request the To
/// tag of the request that created the transaction.
pub(crate) fn legacy_to_tag_matches(
    key: &ServerKey,
    request: &Message,
    original: &Message,
    response_to_tag: Option<&str>,
) -> bool {
    if key.is_rfc3261() {
        return true;
    }
    if request.method() == Some("ACK") {
        request.to_tag() == response_to_tag
    } else {
        request.to_tag() == original.to_tag()
    }
}

/// Whether a response the TU hands to a server transaction answers its request: same
/// Call-ID, CSeq number and method.
pub(crate) fn answers(response: &Message, request: &Message) -> bool {
    let (a, b) = (response.cseq(), request.cseq());
    a.seq == b.seq && a.method == b.method && response.call_id() == request.call_id()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::tests::msg::{cancel_for, invite, request_with_via, response};

    #[test]
    fn sent_by_names_match_in_any_case_and_addresses_by_value() {
        let key = |via: &str| ServerKey::from_request(&request_with_via("OPTIONS", via)).unwrap();
        assert_eq!(
            key("SIP/2.0/UDP A.Example.COM.;branch=z9hG4bKs1"),
            key("SIP/2.0/UDP a.example.com;branch=z9hG4bKs1")
        );
        assert_eq!(
            key("SIP/2.0/UDP [2001:db8::1];branch=z9hG4bKs1"),
            key("SIP/2.0/UDP [2001:DB8:0::1];branch=z9hG4bKs1")
        );
        assert_ne!(
            key("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKs1"),
            key("SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKs1")
        );
        assert_ne!(
            key("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKs1"),
            key("SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bKs1")
        );
        // An extension method is a key like any other; RFC methods are not copied.
        let k = key("SIP/2.0/UDP a.example.com;branch=z9hG4bKs1");
        assert!(matches!(key_method(k.method()), Cow::Borrowed("OPTIONS")));
        assert!(matches!(key_method("FOO"), Cow::Owned(m) if m == "FOO"));
    }

    #[test]
    fn client_key_separates_invite_and_cancel() {
        let inv = invite("z9hG4bKc1");
        let can = cancel_for(&inv);
        let ki = ClientKey::from_request(&inv).unwrap();
        let kc = ClientKey::from_request(&can).unwrap();
        assert_eq!(ki.branch(), kc.branch());
        assert_ne!(ki, kc);
        assert_eq!(ClientKey::from_response(&response(&inv, 180)).unwrap(), ki);
        assert_eq!(ClientKey::from_response(&response(&can, 200)).unwrap(), kc);
    }

    #[test]
    fn client_key_errors_are_typed() {
        let inv = invite("z9hG4bKc1");
        let ack = request_with_via("ACK", "SIP/2.0/UDP a.example.com;branch=z9hG4bKc1");
        assert_eq!(
            ClientKey::from_request(&ack),
            Err(TransactionError::AckStartsNoTransaction)
        );
        let no_branch = request_with_via("OPTIONS", "SIP/2.0/UDP a.example.com");
        assert_eq!(
            ClientKey::from_request(&no_branch),
            Err(TransactionError::MissingBranch)
        );
        let old = request_with_via("OPTIONS", "SIP/2.0/UDP a.example.com;branch=1234");
        assert_eq!(
            ClientKey::from_request(&old),
            Err(TransactionError::BranchWithoutCookie)
        );
        assert_eq!(
            ClientKey::from_request(&response(&inv, 200)),
            Err(TransactionError::NotARequest)
        );
        assert_eq!(
            ClientKey::from_response(&inv),
            Err(TransactionError::NotAResponse)
        );
        let r = response(&no_branch, 200);
        assert_eq!(
            ClientKey::from_response(&r),
            Err(TransactionError::MissingBranch)
        );
        assert_eq!(
            ServerKey::from_request(&r),
            Err(TransactionError::NotARequest)
        );
    }

    #[test]
    fn server_key_maps_ack_to_invite_and_compares_sent_by() {
        let inv = request_with_via(
            "INVITE",
            "SIP/2.0/UDP Host.Example.COM.:5070;branch=z9hG4bKs",
        );
        let ack = request_with_via("ACK", "SIP/2.0/UDP host.example.com:5070;branch=z9hG4bKs");
        let k = ServerKey::from_request(&inv).unwrap();
        assert!(k.is_rfc3261());
        assert_eq!(k.method(), "INVITE");
        assert_eq!(ServerKey::from_request(&ack).unwrap(), k);
        let other_port = request_with_via(
            "INVITE",
            "SIP/2.0/UDP host.example.com:5071;branch=z9hG4bKs",
        );
        assert_ne!(ServerKey::from_request(&other_port).unwrap(), k);
        let other_host = request_with_via(
            "INVITE",
            "SIP/2.0/UDP evil.example.com:5070;branch=z9hG4bKs",
        );
        assert_ne!(ServerKey::from_request(&other_host).unwrap(), k);
        let v6a = request_with_via("INVITE", "SIP/2.0/UDP [2001:DB8::1];branch=z9hG4bKs");
        let v6b = request_with_via("INVITE", "SIP/2.0/UDP [2001:db8:0::1];branch=z9hG4bKs");
        assert_eq!(
            ServerKey::from_request(&v6a).unwrap(),
            ServerKey::from_request(&v6b).unwrap()
        );
    }

    #[test]
    fn cancel_key_maps_to_invite_key() {
        for branch in ["z9hG4bKx", "legacy-1"] {
            let inv = invite(branch);
            let can = cancel_for(&inv);
            let kc = ServerKey::from_request(&can).unwrap();
            assert_eq!(kc.method(), "CANCEL");
            assert_eq!(
                kc.cancelled_invite(),
                Some(ServerKey::from_request(&inv).unwrap())
            );
            let ki = ServerKey::from_request(&inv).unwrap();
            assert_eq!(ki.cancelled_invite(), None);
        }
    }

    #[test]
    fn legacy_key_without_cookie() {
        let inv = invite("1234");
        let k = ServerKey::from_request(&inv).unwrap();
        assert!(!k.is_rfc3261());
        let again = invite("1234");
        assert_eq!(ServerKey::from_request(&again).unwrap(), k);
        let no_branch = request_with_via("INVITE", "SIP/2.0/UDP a.example.com");
        assert!(!ServerKey::from_request(&no_branch).unwrap().is_rfc3261());
    }
}
