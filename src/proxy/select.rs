//! Next-hop selection (RFC 3261 §16.5, §16.6 step 6-7): the top Route, else the first
//! configured route that matches, else the Request-URI by RFC 3263. The result says what
//! to resolve or where to connect; the driver does it.

use std::net::SocketAddr;

use crate::resolve::{SipTarget, TargetError};
use crate::wire::{HeaderKind, Host, Message, Uri};
use crate::{Target, TransportKind};

use super::config::{ProxyConfig, RouteMatch, RouteTarget};
use super::reject::Reject;
use super::request::Prepared;

/// Where a request goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextHop {
    /// A known address: connect (or reuse a flow) and send.
    Address(Target),
    /// A URI to locate by RFC 3263 (NAPTR / SRV / A-AAAA); the driver answers with
    /// [`super::Proxy::resolved`].
    Resolve(SipTarget),
}

/// One entry of a request's plan: the next hop and the listener to leave by, if one is
/// preferred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// Where.
    pub next: NextHop,
    /// Listener to leave by (a route target's `listener`, or the RFC 5658 hint of the Route
    /// entries we removed).
    pub listener: Option<String>,
    /// Best-effort TLS (RFC 5630 §5.3): TLS targets of this hop go first.
    pub tls_first: bool,
}

/// What §16.5 decided for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Selection {
    /// Forward to these hops in order (failover moves down the list).
    Forward {
        /// The hops.
        hops: Vec<Hop>,
        /// Forward statelessly (the route's first target says so).
        stateless: bool,
    },
    /// Addressed to us (no user part, no Route): answered here.
    ForUs,
}

fn target_err(e: TargetError) -> Reject {
    match e {
        TargetError::SipsOverUdp => Reject::because(400, "SIPS URI with transport=udp"),
        TargetError::InvalidHost(_) | TargetError::ZeroPort => {
            Reject::because(400, "bad next-hop URI")
        }
        TargetError::UnknownTransport(_) | TargetError::SipsInsecure(_) => {
            Reject::because(480, "next hop needs a transport we lack")
        }
    }
}

/// The hop a SIP URI names: numeric hosts need no DNS (RFC 3263 §4.1/§4.2: the transport
/// parameter, else UDP for `sip:` and TLS for `sips:`; the explicit port, else the
/// transport's default), names go to RFC 3263.
pub(crate) fn hop_for_uri(uri: &Uri<'_>) -> Result<NextHop, Reject> {
    let t = SipTarget::new(uri.scheme, uri.host_raw, uri.port, uri.transport_param())
        .map_err(target_err)?;
    Ok(hop_for_target(t))
}

fn hop_for_target(t: SipTarget) -> NextHop {
    match t.host.ip() {
        Some(ip) => {
            let transport = t.transport.unwrap_or(match t.scheme {
                crate::wire::Scheme::Sip => TransportKind::Udp,
                crate::wire::Scheme::Sips => TransportKind::Tls,
            });
            let port = t
                .port
                .unwrap_or(if transport.is_secure() { 5061 } else { 5060 });
            NextHop::Address(Target::new(transport, SocketAddr::new(ip, port)))
        }
        None => NextHop::Resolve(t),
    }
}

fn configured_hop(scheme: crate::wire::Scheme, t: &RouteTarget) -> Result<NextHop, Reject> {
    let host = crate::resolve::parse_host(&t.host).map_err(target_err)?;
    if t.port == Some(0) {
        return Err(target_err(TargetError::ZeroPort));
    }
    Ok(hop_for_target(SipTarget {
        scheme,
        host,
        port: t.port,
        transport: Some(t.transport),
    }))
}

fn matches(m: &RouteMatch, uri: &Uri<'_>, method: &str, listener: &str) -> bool {
    if let Some(d) = &m.domain {
        let Some(name) = uri.host.name() else {
            return false;
        };
        let name = name.trim_end_matches('.');
        let name = name.to_ascii_lowercase();
        let ok = match d.strip_prefix("*.") {
            Some(suffix) => name.ends_with(&format!(".{}", suffix.to_ascii_lowercase())),
            None => name == d.trim_end_matches('.').to_ascii_lowercase(),
        };
        if !ok {
            return false;
        }
    }
    if let Some(u) = &m.user {
        let user = uri.user.unwrap_or("");
        let ok = match u.strip_suffix('*') {
            Some(prefix) => user.starts_with(prefix),
            None => user == u,
        };
        if !ok {
            return false;
        }
    }
    if let Some(h) = &m.host {
        let (host, port) = match h.rsplit_once(':') {
            Some((a, p)) if !a.ends_with(':') && p.parse::<u16>().is_ok() && !a.contains(':') => {
                (a, p.parse::<u16>().ok())
            }
            _ => (h.as_str(), None),
        };
        let Some(want) = Host::parse(host.as_bytes()) else {
            return false;
        };
        if !want.same_as(&uri.host) || port.is_some_and(|p| Some(p) != uri.port) {
            return false;
        }
    }
    if let Some(l) = &m.listener {
        if l != listener {
            return false;
        }
    }
    m.methods.is_empty() || m.methods.iter().any(|x| x.eq_ignore_ascii_case(method))
}

/// True when `req`, as received on `listener`, is an OPTIONS this proxy answers itself and
/// nothing about it needs a transaction: no Route, a Request-URI naming us that no route
/// rule claims, no Proxy-Require to check, Max-Forwards not exhausted. The same request
/// through [`super::request::prepare`] and [`select`] would end in [`Selection::ForUs`];
/// this answers that question without the Max-Forwards edit and its re-parse, so that a
/// peer's OPTIONS keep-alives cost a stateless answer, as a stateless UAS gives (RFC 3261
/// §8.2.7, §11).
pub(crate) fn options_answered_here(cfg: &ProxyConfig, req: &Message, listener: &str) -> bool {
    if req.method() != Some("OPTIONS")
        || req.routes().next().is_some()
        || req.max_forwards() == Some(0)
        || req.values(HeaderKind::ProxyRequire).next().is_some()
        || cfg.listener(listener).is_none()
    {
        return false;
    }
    let Some(Ok(uri)) = req.request_sip_uri() else {
        return false;
    };
    if super::sips::check_uri(&uri).is_err()
        || cfg
            .routes
            .iter()
            .any(|r| matches(&r.matches, &uri, "OPTIONS", listener))
    {
        return false;
    }
    cfg.is_ours(&uri) || cfg.is_listener_address(&uri)
}

/// §16.5 for a prepared request that arrived on `listener`.
pub(crate) fn select(
    cfg: &ProxyConfig,
    prepared: &Prepared,
    listener: &str,
) -> Result<Selection, Reject> {
    let msg: &Message = &prepared.message;
    // RFC 5630 §5.3 is about sip: requests; a sips: one leaves over TLS only anyway.
    let sip = prepared.scheme == crate::wire::Scheme::Sip;
    if let Some(top) = msg.routes().next() {
        let top = top.map_err(|_| Reject::because(400, "bad Route"))?;
        let uri = top.sip_uri().map_err(|_| Reject::new(416))?;
        return Ok(Selection::Forward {
            hops: vec![Hop {
                next: hop_for_uri(&uri)?,
                listener: prepared.leave_by.clone(),
                tls_first: sip && cfg.best_effort_tls,
            }],
            stateless: false,
        });
    }
    let uri = match msg.request_sip_uri() {
        Some(Ok(u)) => u,
        _ => return Err(Reject::new(416)),
    };
    let method = msg.method().unwrap_or("");
    if let Some(rule) = cfg
        .routes
        .iter()
        .find(|r| matches(&r.matches, &uri, method, listener))
    {
        let stateless = rule.targets.first().is_some_and(|t| t.stateless);
        // A stateless route sends once, with no failover to fall back on: no TLS attempt.
        let tls_first = sip && !stateless && rule.best_effort_tls.unwrap_or(cfg.best_effort_tls);
        let hops = rule
            .targets
            .iter()
            .map(|t| {
                Ok(Hop {
                    next: configured_hop(uri.scheme, t)?,
                    listener: t.listener.clone(),
                    tls_first,
                })
            })
            .collect::<Result<Vec<_>, Reject>>()?;
        return Ok(Selection::Forward { hops, stateless });
    }
    // A Request-URI at one of our listeners, user part or not, with nothing configured for
    // it: this proxy is no registrar, so forwarding it would only bring it back here.
    if prepared.for_us || cfg.is_listener_address(&uri) {
        return Ok(Selection::ForUs);
    }
    Ok(Selection::Forward {
        hops: vec![Hop {
            next: hop_for_uri(&uri)?,
            listener: prepared.leave_by.clone(),
            tls_first: sip && cfg.best_effort_tls,
        }],
        stateless: false,
    })
}
