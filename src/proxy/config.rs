//! What the proxy core is told about itself: its listeners (the addresses each side of it
//! reaches), the names that mean "us", the configured routes and the §16.3 options.

use serde::{Deserialize, Serialize};

use crate::wire::{Host, Scheme, Uri};
use crate::TransportKind;

/// One of our listening sockets, as the peers on its side reach it. The core never binds
/// anything: the driver names the listener a request arrived on ([`super::Inbound`]) and
/// the core names the one a request leaves by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    /// Name used by routes and by the driver (`udp-access`, `tcp-core`).
    pub name: String,
    /// Transport.
    pub transport: TransportKind,
    /// Advertised host (an IP address or a name that resolves to it): our Via sent-by and
    /// Record-Route host on this side.
    pub host: String,
    /// Advertised port; `None`: the transport's default (5060, 5061 for the TLS family).
    #[serde(default)]
    pub port: Option<u16>,
    /// The network this listener faces (`access`, `core`): two Record-Route entries are
    /// written when a request enters on one network and leaves on another (RFC 5658).
    #[serde(default = "default_network")]
    pub network: String,
    /// A Record-Route URI to use instead of the one built from host, port and transport
    /// (with `lr`), for deployments where the peers reach us by another name.
    #[serde(default)]
    pub record_route: Option<String>,
    /// The address the listener is bound to, when it is one address (not a wildcard): a
    /// request to a target the host routes from this address leaves by this listener.
    #[serde(default)]
    pub local_ip: Option<std::net::IpAddr>,
}

fn default_network() -> String {
    "default".into()
}

impl Listener {
    /// A listener on the default network.
    pub fn new(name: &str, transport: TransportKind, host: &str, port: Option<u16>) -> Listener {
        Listener {
            name: name.into(),
            transport,
            host: host.into(),
            port,
            network: default_network(),
            record_route: None,
            local_ip: None,
        }
    }

    /// The same listener, bound to `ip` (ignored for a wildcard address).
    pub fn bound_to(mut self, ip: std::net::IpAddr) -> Listener {
        self.local_ip = (!ip.is_unspecified()).then_some(ip);
        self
    }

    /// The same listener facing `network`.
    pub fn on_network(mut self, network: &str) -> Listener {
        self.network = network.into();
        self
    }

    /// The port peers reach us at.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(if self.transport.is_secure() {
            5061
        } else {
            5060
        })
    }

    /// The advertised host, parsed.
    pub fn parsed_host(&self) -> Option<Host<'_>> {
        Host::parse(self.host.as_bytes())
    }

    /// The Record-Route URI naming this listener, for a request whose Request-URI (or top
    /// Route) has `scheme`. RFC 5630 §3.1.4 forbids `transport=tls`, so a TLS-family
    /// listener is named by a `sips:` URI (with `transport=sctp` for TLS over SCTP): that is
    /// the only standard way to say "TLS to this hop". It is a Route entry, not the
    /// Request-URI, so nothing is upgraded (§5.3). A SIPS request needs a SIPS entry
    /// (§16.6 step 4): `None` when this listener cannot carry one.
    pub fn record_route_uri(&self, scheme: Scheme) -> Option<String> {
        if let Some(rr) = &self.record_route {
            return Some(rr.clone());
        }
        let secure = self.transport.is_secure();
        if scheme == Scheme::Sips && !secure {
            return None;
        }
        let host = self.parsed_host()?;
        let mut uri = format!(
            "{}:{host}:{}",
            if secure { "sips" } else { "sip" },
            self.port_or_default()
        );
        match self.transport {
            TransportKind::Udp | TransportKind::Tls => {}
            TransportKind::Tcp => uri.push_str(";transport=tcp"),
            TransportKind::Sctp | TransportKind::TlsSctp => uri.push_str(";transport=sctp"),
            TransportKind::DtlsSctp => uri.push_str(";transport=dtls-sctp"),
        }
        uri.push_str(";lr");
        Some(uri)
    }

    /// True when `uri` names this listener: same host and port (the URI's default port
    /// counted), no user part.
    fn named_by(&self, uri: &Uri<'_>) -> bool {
        if let Some(rr) = &self.record_route {
            if let Ok(mine) = Uri::parse(rr) {
                if mine.host.same_as(&uri.host) && mine.port_or_default() == uri.port_or_default() {
                    return true;
                }
            }
        }
        self.parsed_host().is_some_and(|h| {
            h.same_as(&uri.host) && self.port_or_default() == uri.port_or_default()
        })
    }
}

/// How Proxy-Require is treated (§16.3 step 5).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyRequire {
    /// Ignored: a transport gateway relays extensions it does not know (the default).
    #[default]
    Ignore,
    /// Enforced: option tags outside this list get 420 Bad Extension with Unsupported.
    Enforce(Vec<String>),
}

/// What a route rule matches; every field given must match.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RouteMatch {
    /// Request-URI host name: exact (case-insensitive) or `*.suffix`.
    #[serde(default)]
    pub domain: Option<String>,
    /// Request-URI user: exact, or a prefix when it ends in `*` (`+33*`).
    #[serde(default)]
    pub user: Option<String>,
    /// Request-URI host (name or IP address), exact; with `:port` the port must match too.
    #[serde(default)]
    pub host: Option<String>,
    /// Name of the listener the request arrived on.
    #[serde(default)]
    pub listener: Option<String>,
    /// Methods (any case); empty: every method.
    #[serde(default)]
    pub methods: Vec<String>,
}

/// One place a configured route sends to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTarget {
    /// Transport to use.
    pub transport: TransportKind,
    /// IP address or host name (a name is resolved by RFC 3263 with the transport fixed).
    pub host: String,
    /// Port; `None`: the transport's default, or SRV for a name.
    #[serde(default)]
    pub port: Option<u16>,
    /// Forward statelessly (§16.11): no transactions, no failover, same request → same
    /// branch. Read from the first target of the list.
    #[serde(default)]
    pub stateless: bool,
    /// Listener to leave by; `None`: the one facing the target (see
    /// [`ProxyConfig::outbound_listener`]), else the first one of the target's transport.
    #[serde(default)]
    pub listener: Option<String>,
}

impl RouteTarget {
    /// A stateful target.
    pub fn new(transport: TransportKind, host: &str, port: Option<u16>) -> RouteTarget {
        RouteTarget {
            transport,
            host: host.into(),
            port,
            stateless: false,
            listener: None,
        }
    }

    /// The same target, forwarded statelessly.
    pub fn stateless(mut self) -> RouteTarget {
        self.stateless = true;
        self
    }
}

/// A configured route: requests it matches go to its targets, in order (RFC 3263 §4.3
/// failover moves down the list).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RouteRule {
    /// What it matches.
    #[serde(default, rename = "match")]
    pub matches: RouteMatch,
    /// Where it sends, in order.
    pub targets: Vec<RouteTarget>,
    /// Best-effort TLS for `sip:` requests it routes (RFC 5630 §5.3); `None`: the
    /// configuration's [`ProxyConfig::best_effort_tls`].
    #[serde(default)]
    pub best_effort_tls: Option<bool>,
}

/// The proxy core's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyConfig {
    /// Our listeners.
    pub listeners: Vec<Listener>,
    /// Other names of ours (domains we serve): a Route or Request-URI naming one at any port
    /// is ours.
    #[serde(default)]
    pub local_names: Vec<String>,
    /// Configured routes, first match wins; used when the request has no Route left.
    #[serde(default)]
    pub routes: Vec<RouteRule>,
    /// Record-Route dialog-creating requests (INVITE, SUBSCRIBE, REFER without To tag).
    #[serde(default = "yes")]
    pub record_route: bool,
    /// Proxy-Require handling.
    #[serde(default)]
    pub proxy_require: ProxyRequire,
    /// `alias` in our Via on TLS-family hops (RFC 5923).
    #[serde(default = "yes")]
    pub alias: bool,
    /// Host written in generated Warning headers; `None`: the first listener's host.
    #[serde(default)]
    pub warning_agent: Option<String>,
    /// Max-Forwards written into a request that has none (§16.6 step 3; 70 by default).
    #[serde(default = "default_max_forwards")]
    pub max_forwards: u8,
    /// Best-effort TLS (RFC 5630 §5.3) for `sip:` requests: TLS targets are tried before
    /// the plain ones, which stay as the fallback (see `best_effort.rs`). Off by default: a
    /// TLS attempt that is blackholed costs a whole Timer B/F before the plain target.
    #[serde(default)]
    pub best_effort_tls: bool,
    /// The Via token our DTLS over SCTP hops carry; `None`: `DTLS-SCTP` (no RFC defines one,
    /// so a deployment may need its peers' spelling).
    #[serde(default)]
    pub dtls_sctp_via_token: Option<String>,
}

fn yes() -> bool {
    true
}

fn default_max_forwards() -> u8 {
    70
}

/// A configuration the core cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No listener at all.
    #[error("no listener configured")]
    NoListener,
    /// Two listeners share a name.
    #[error("listener name {0:?} used twice")]
    DuplicateListener(String),
    /// A listener host is not an IP address or a host name.
    #[error("listener {0:?}: bad host")]
    BadHost(String),
    /// A listener's Record-Route override is not a SIP URI.
    #[error("listener {0:?}: bad record_route URI")]
    BadRecordRoute(String),
    /// A route names a listener that does not exist.
    #[error("route {index}: unknown listener {name:?}")]
    UnknownListener {
        /// Index of the route.
        index: usize,
        /// The name.
        name: String,
    },
    /// A route has no target.
    #[error("route {0}: no target")]
    NoTarget(usize),
    /// The Max-Forwards default is zero: nothing could be forwarded.
    #[error("max_forwards is 0")]
    ZeroMaxForwards,
}

impl ProxyConfig {
    /// A configuration with these listeners and nothing else.
    pub fn new(listeners: Vec<Listener>) -> ProxyConfig {
        ProxyConfig {
            listeners,
            local_names: Vec::new(),
            routes: Vec::new(),
            record_route: true,
            proxy_require: ProxyRequire::Ignore,
            alias: true,
            warning_agent: None,
            max_forwards: default_max_forwards(),
            best_effort_tls: false,
            dtls_sctp_via_token: None,
        }
    }

    /// Refuses what the core could not run with.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.listeners.is_empty() {
            return Err(ConfigError::NoListener);
        }
        if self.max_forwards == 0 {
            return Err(ConfigError::ZeroMaxForwards);
        }
        for (i, l) in self.listeners.iter().enumerate() {
            if self.listeners.iter().take(i).any(|o| o.name == l.name) {
                return Err(ConfigError::DuplicateListener(l.name.clone()));
            }
            if l.parsed_host().is_none() {
                return Err(ConfigError::BadHost(l.name.clone()));
            }
            if let Some(rr) = &l.record_route {
                if Uri::parse(rr).is_err() {
                    return Err(ConfigError::BadRecordRoute(l.name.clone()));
                }
            }
        }
        for (index, r) in self.routes.iter().enumerate() {
            if r.targets.is_empty() {
                return Err(ConfigError::NoTarget(index));
            }
            let names = r
                .matches
                .listener
                .iter()
                .chain(r.targets.iter().filter_map(|t| t.listener.as_ref()));
            for name in names {
                if self.listener(name).is_none() {
                    return Err(ConfigError::UnknownListener {
                        index,
                        name: name.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The listener named `name`.
    pub fn listener(&self, name: &str) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.name == name)
    }

    /// The listener a request leaves by over `transport`: `preferred` when it has that
    /// transport, else one of that transport on `preferred`'s network, else the one bound to
    /// `source` (the local address the host routes the target from), else the first
    /// listener of that transport.
    pub fn outbound_listener(
        &self,
        transport: TransportKind,
        preferred: Option<&str>,
        source: Option<std::net::IpAddr>,
    ) -> Option<&Listener> {
        let preferred = preferred.and_then(|n| self.listener(n));
        let of_kind = |l: &&Listener| l.transport == transport;
        preferred
            .filter(of_kind)
            .or_else(|| {
                let p = preferred?;
                self.listeners
                    .iter()
                    .filter(of_kind)
                    .find(|l| l.network == p.network)
            })
            .or_else(|| {
                let ip = source?;
                self.listeners
                    .iter()
                    .filter(of_kind)
                    .find(|l| l.local_ip == Some(ip))
            })
            .or_else(|| self.listeners.iter().find(of_kind))
    }

    /// How many listeners have `transport`.
    pub fn listener_count(&self, transport: TransportKind) -> usize {
        self.listeners
            .iter()
            .filter(|l| l.transport == transport)
            .count()
    }

    /// The listener `uri` names, if any (a Route or Request-URI we wrote).
    pub fn listener_named_by(&self, uri: &Uri<'_>) -> Option<&Listener> {
        if uri.user.is_some() {
            return None;
        }
        self.listeners.iter().find(|l| l.named_by(uri))
    }

    /// True when the host and port of `uri` are one of our listeners', whatever its user.
    pub fn is_listener_address(&self, uri: &Uri<'_>) -> bool {
        self.listeners.iter().any(|l| l.named_by(uri))
    }

    /// True when `uri` names us: one of our listeners, or one of our other names at any
    /// port (no user part in either case: `sip:alice@example.com` is a user of ours, not us).
    pub fn is_ours(&self, uri: &Uri<'_>) -> bool {
        if uri.user.is_some() {
            return false;
        }
        self.listener_named_by(uri).is_some() || self.is_local_name(&uri.host)
    }

    fn is_local_name(&self, host: &Host<'_>) -> bool {
        self.local_names
            .iter()
            .filter_map(|n| Host::parse(n.as_bytes()))
            .any(|n| n.same_as(host))
    }

    /// True when a Via sent-by (`host`, `port` as written) is one of our listeners'.
    pub fn is_our_sent_by(&self, host: &Host<'_>, port: u16) -> bool {
        // The port first: it rules out most Vias without reading the listener's host.
        self.listeners.iter().any(|l| {
            l.port_or_default() == port && l.parsed_host().is_some_and(|h| h.same_as(host))
        })
    }

    /// Host for generated Warning headers.
    pub fn warning_agent(&self) -> &str {
        self.warning_agent
            .as_deref()
            .or_else(|| self.listeners.first().map(|l| l.host.as_str()))
            .unwrap_or("sipwire")
    }
}
