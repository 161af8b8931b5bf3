//! Request processing of RFC 3261 §16.3 (validation), §16.4 (route information
//! preprocessing) and §16.6 (the copy each branch sends: Record-Route, our Via). Pure
//! functions of the received request and the configuration.

use crate::alias::our_via;
use crate::wire::{EditError, HeaderKind, Host, Message, Scheme};
use crate::TransportKind;

use super::branch;
use super::config::{Listener, ProxyConfig, ProxyRequire};
use super::reject::Reject;
use super::sips;

/// A request that passed §16.3 and went through §16.4 and the parts of §16.6 common to
/// every branch (Max-Forwards).
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// The request with Max-Forwards decremented (or set to 70), our Route entries removed
    /// and a strict route fixed up.
    pub(crate) message: Message,
    /// §16.3 step 4 hash of the request as received.
    pub(crate) loop_hash: u64,
    /// Scheme of the (possibly fixed-up) Request-URI.
    pub(crate) scheme: Scheme,
    /// The listener named by the last of our Route entries removed: the side an in-dialog
    /// request leaves by when we wrote two Record-Route entries (RFC 5658).
    pub(crate) leave_by: Option<String>,
    /// The Request-URI names us (no user part) and no Route is left.
    pub(crate) for_us: bool,
}

fn edit_err(e: EditError) -> Reject {
    match e {
        EditError::TooManyHops => Reject::new(483),
        other => Reject::because(400, &other.to_string()),
    }
}

/// Validates `req` (§16.3) and preprocesses its route information (§16.4).
pub(crate) fn prepare(cfg: &ProxyConfig, secret: u64, req: &Message) -> Result<Prepared, Reject> {
    // Step 2: URI scheme.
    let uri = match req.request_sip_uri() {
        Some(Ok(u)) => u,
        Some(Err(_)) | None => return Err(Reject::new(416)),
    };
    sips::check_uri(&uri)?;
    // Step 3: Max-Forwards.
    if req.max_forwards() == Some(0) {
        return Err(Reject::new(483));
    }
    // Step 4: loop detection. A Via of ours whose loop hash equals this request's means the
    // request came back unchanged in everything routing depends on: a loop, not a spiral.
    let hash = branch::loop_hash(secret, req);
    for via in req.vias().flatten() {
        if !cfg.is_our_sent_by(&via.host, via.port_or_default()) {
            continue;
        }
        if let Some((_, h)) = via.branch.and_then(branch::parse) {
            if h == hash {
                return Err(Reject::new(482));
            }
        }
    }
    // Step 5: Proxy-Require.
    if let ProxyRequire::Enforce(supported) = &cfg.proxy_require {
        let unsupported: Vec<String> = req
            .values(HeaderKind::ProxyRequire)
            .flatten()
            .filter_map(|v| std::str::from_utf8(v).ok())
            .filter(|tag| !supported.iter().any(|s| s.eq_ignore_ascii_case(tag)))
            .map(str::to_owned)
            .collect();
        if !unsupported.is_empty() {
            return Err(Reject::new(420).with_header("Unsupported", &unsupported.join(", ")));
        }
    }
    // §16.4: a Request-URI we wrote in a Record-Route came from a strict router: the real
    // Request-URI is the last Route value.
    let strict = cfg.listener_named_by(&uri).is_some();
    let mut ed = req.edit();
    ed.decrement_max_forwards_or(cfg.max_forwards)
        .map_err(edit_err)?;
    let last_route = req.routes().last().and_then(Result::ok).map(|r| r.uri);
    if strict {
        if let Some(last) = last_route {
            ed.set_request_uri(last)
                .and_then(|e| e.remove_last_route())
                .map_err(edit_err)?;
        }
    }
    let mut message = ed.finish_message().map_err(edit_err)?;
    // §16.4: our own entries on top of Route go (two of them after a RFC 5658 double
    // Record-Route).
    let mut leave_by = None;
    loop {
        let Some(Ok(top)) = message.routes().next() else {
            break;
        };
        let Ok(top_uri) = top.sip_uri() else { break };
        if !cfg.is_ours(&top_uri) {
            break;
        }
        if let Some(l) = cfg.listener_named_by(&top_uri) {
            leave_by = Some(l.name.clone());
        }
        let mut ed = message.edit();
        ed.remove_top_route().map_err(edit_err)?;
        message = ed.finish_message().map_err(edit_err)?;
    }
    let (scheme, for_us) = match message.request_sip_uri() {
        Some(Ok(u)) => {
            sips::check_uri(&u)?;
            (
                u.scheme,
                cfg.is_ours(&u) && message.routes().next().is_none(),
            )
        }
        _ => return Err(Reject::new(416)),
    };
    Ok(Prepared {
        message,
        loop_hash: hash,
        scheme,
        leave_by,
        for_us,
    })
}

/// True for requests that create a dialog, the ones worth a Record-Route.
pub(crate) fn creates_dialog(req: &Message) -> bool {
    req.to_tag().is_none() && matches!(req.method(), Some("INVITE" | "SUBSCRIBE" | "REFER"))
}

/// The copy of `prepared` one branch sends (§16.6 steps 4 and 8): Record-Route when asked
/// (one entry when the request enters and leaves by the same transport and network, two
/// otherwise: the one naming the outbound side on top, as RFC 5658 describes), then our
/// Via for `transport` from `out`, with `rport` and, on TLS-family hops, `alias`.
pub(crate) fn build_branch(
    cfg: &ProxyConfig,
    prepared: &Prepared,
    inbound: &Listener,
    out: &Listener,
    transport: TransportKind,
    branch: &str,
    record_route: bool,
) -> Result<Message, Reject> {
    let msg = &prepared.message;
    let mut ed = msg.edit();
    if record_route {
        // §16.6 step 4: SIPS when the Request-URI or the top Route is SIPS.
        let top_route_sips = msg
            .routes()
            .next()
            .and_then(Result::ok)
            .and_then(|r| r.sip_uri().ok())
            .is_some_and(|u| u.scheme == Scheme::Sips);
        let scheme = if prepared.scheme == Scheme::Sips || top_route_sips {
            Scheme::Sips
        } else {
            Scheme::Sip
        };
        let agent = cfg.warning_agent();
        let rr_out = out
            .record_route_uri(scheme)
            .ok_or_else(|| Reject::sips_not_allowed(agent))?;
        ed.prepend_record_route(&rr_out).map_err(edit_err)?;
        let double = inbound.transport != out.transport || inbound.network != out.network;
        if double {
            let rr_in = inbound
                .record_route_uri(scheme)
                .ok_or_else(|| Reject::sips_not_allowed(agent))?;
            ed.prepend_record_route(&rr_in).map_err(edit_err)?;
        }
    }
    let host = Host::parse(out.host.as_bytes())
        .ok_or_else(|| Reject::because(500, "bad listener host"))?;
    let mut via = our_via(transport, host, out.port, branch, cfg.alias);
    if let (TransportKind::DtlsSctp, Some(token)) = (transport, &cfg.dtls_sctp_via_token) {
        via.transport = crate::wire::TransportToken::Other(token.as_str().into());
    }
    ed.prepend_via(&via).map_err(edit_err)?;
    ed.finish_message().map_err(edit_err)
}
