//! The `alias` Via parameter on the wire (RFC 5923 §7, §8): the Via we put in our requests
//! (`;alias` only over the TLS family) and what the server-side rules read from a received
//! request's top Via. Pure.

use super::key::should_add_alias_param;
use super::tables::InboundAlias;
use crate::wire::{Host, Via, ViaSpec};
use crate::PeerIdentities;
use crate::TransportKind;
use std::net::IpAddr;

/// Our Via for a request sent over `kind`, with `;rport`, and `;alias` iff `alias_enabled` and
/// the transport is TLS-family (§8.1: never over TCP, SCTP or UDP).
pub fn our_via<'a>(
    kind: TransportKind,
    host: Host<'a>,
    port: Option<u16>,
    branch: &'a str,
    alias_enabled: bool,
) -> ViaSpec<'a> {
    ViaSpec {
        transport: kind.into(),
        host,
        port,
        branch,
        rport: true,
        alias: alias_enabled && should_add_alias_param(kind),
    }
}

/// What the server-side alias rules read from a request's top Via.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViaAlias {
    /// `alias` is present (§7: it has no value; a value is tolerated and ignored).
    pub has_alias_param: bool,
    /// The Via transport. An unknown token is mapped to UDP, which never equals the transport
    /// of a TLS-family flow, so it is refused as `ViaTransportMismatch` (or `NotTlsFamily`).
    pub via_transport: TransportKind,
    /// The sent-by host as written (IPv6 in brackets).
    pub sent_by_host: String,
    /// The sent-by port, if written.
    pub sent_by_port: Option<u16>,
}

impl ViaAlias {
    /// Reads a parsed Via.
    pub fn of(via: &Via<'_>) -> ViaAlias {
        ViaAlias {
            has_alias_param: via.alias,
            via_transport: via.transport.kind().unwrap_or(TransportKind::Udp),
            sent_by_host: via.host.to_string(),
            sent_by_port: via.port,
        }
    }

    /// The input of [`super::AliasTables::on_inbound_request`] for this Via received on a
    /// flow of `flow_kind` from `received`. `client_cert_verified`: the client presented a
    /// certificate that verified (§9.2); `client_identities` are its SIP identities.
    pub fn inbound<'a, D>(
        &'a self,
        local_domain: &'a str,
        flow_kind: TransportKind,
        received: IpAddr,
        client_cert_verified: bool,
        client_identities: &'a PeerIdentities,
        descriptor: D,
    ) -> InboundAlias<'a, D> {
        InboundAlias {
            local_domain,
            has_alias_param: self.has_alias_param,
            via_transport: self.via_transport,
            flow_transport: flow_kind,
            sent_by_host: &self.sent_by_host,
            sent_by_port: self.sent_by_port,
            received,
            client_cert_verified,
            client_identities,
            descriptor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Message;

    #[test]
    fn alias_only_over_tls_family() {
        for k in TransportKind::ALL {
            let v = our_via(
                k,
                Host::Name("p1.example.com".into()),
                None,
                "z9hG4bKa7c8dze",
                true,
            );
            assert_eq!(v.alias, k.is_secure(), "{k}");
            let s = v.to_value().expect("via");
            assert_eq!(s.ends_with(";alias"), k.is_secure(), "{s}");
        }
        let off = our_via(
            TransportKind::Tls,
            Host::Name("p1.example.com".into()),
            None,
            "z9hG4bKx",
            false,
        );
        assert!(!off.alias);
    }

    /// What the alias rules read from the top Via of RFC 5923 Figure 3's request, its
    /// transport token being `token`.
    fn figure3_via(token: &str) -> ViaAlias {
        let raw = format!(
            "OPTIONS sip:example.net SIP/2.0\r\n\
Via: SIP/2.0/{token} p1.example.com;branch=z9hG4bKa7c8dze;alias\r\n\
Max-Forwards: 70\r\nTo: <sip:example.net>\r\nFrom: <sip:example.com>;tag=1\r\n\
Call-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        let m = Message::parse(bytes::Bytes::from(raw)).expect("parse");
        ViaAlias::of(&m.top_via().expect("via"))
    }

    #[test]
    fn rfc5923_figure3_via() {
        let va = figure3_via("TLS");
        assert!(va.has_alias_param);
        assert_eq!(va.via_transport, TransportKind::Tls);
        assert_eq!(va.sent_by_host, "p1.example.com");
        assert_eq!(va.sent_by_port, None);
        let ids = PeerIdentities::from_names(["example.com", "p1.example.com"]);
        let inb = va.inbound(
            "example.net",
            TransportKind::Tls,
            "192.0.2.1".parse().expect("ip"),
            true,
            &ids,
            18u32,
        );
        assert!(inb.client_cert_verified);
        assert_eq!(inb.flow_transport, TransportKind::Tls);
    }

    #[test]
    fn unknown_via_token_never_matches_a_tls_flow() {
        assert_ne!(figure3_via("WSS").via_transport, TransportKind::Tls);
    }
}
