//! RFC 5630 in the proxy: a SIPS Request-URI leaves only over TLS (TLS over TCP or TLS
//! over SCTP), on every hop, with no last-hop exception (§5.3); a SIP Request-URI is never
//! turned into a SIPS one (the core never rewrites the scheme); `transport=tls` is never
//! written (Record-Route entries name TLS listeners with `sips:`, see
//! [`super::Listener::record_route_uri`]).

use crate::wire::{Scheme, Uri};
use crate::TransportKind;

use super::reject::Reject;

/// Refuses a `sips:` URI with `transport=udp`. RFC 3261 §26.2.2 makes UDP invalid for
/// SIPS, so the URI itself is malformed: 400 Bad Request, not 480 (which says "try later
/// or elsewhere") nor 416 (the scheme is supported; a 416 also invites a UAC to fall back
/// to `sip:`, the downgrade RFC 5630 §5.1 forbids).
pub(crate) fn check_uri(uri: &Uri<'_>) -> Result<(), Reject> {
    let udp = uri
        .transport_param()
        .is_some_and(|t| t.eq_ignore_ascii_case("udp"));
    if uri.scheme == Scheme::Sips && udp {
        return Err(Reject::because(400, "SIPS URI with transport=udp"));
    }
    Ok(())
}

/// True when a request whose Request-URI has `scheme` may leave over `transport`.
pub(crate) fn may_leave_over(scheme: Scheme, transport: TransportKind) -> bool {
    match scheme {
        Scheme::Sip => true,
        Scheme::Sips => matches!(transport, TransportKind::Tls | TransportKind::TlsSctp),
    }
}
