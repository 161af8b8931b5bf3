//! The relay's part of the configuration: `[proxy]` (timers, Record-Route, Max-Forwards,
//! stateful or not, DNS) and the `[[route]]` tables, their checks, and the library's
//! `ProxyConfig` built from them and the bound listeners. Kept apart from config.rs so that
//! a reload can swap it alone.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;

use super::config::{Config, Place, PlaceStep, TransportKind, Violation};
use sipwire::proxy::{Listener, ProxyConfig, RouteMatch, RouteRule, RouteTarget};
use sipwire::transaction::TimerConfig;

/// `[proxy]`: how requests are relayed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxySection {
    /// Transaction-stateful relaying (RFC 3261 §16) unless a route says `stateless = true`;
    /// `false`: every route is stateless (§16.11) unless it says `stateless = false`.
    pub stateful: bool,
    /// Record-Route dialog-creating requests (two entries when the transport or network
    /// changes, RFC 5658).
    pub record_route: bool,
    /// Max-Forwards written into a request that has none.
    pub max_forwards: u8,
    /// RFC 3261 T1 (RTT estimate), ms.
    pub t1_ms: u64,
    /// RFC 3261 T2 (retransmission cap), ms.
    pub t2_ms: u64,
    /// RFC 3261 T4 (message lifetime), ms.
    pub t4_ms: u64,
    /// The DNS server for RFC 3263 look-ups (`IP:port`); absent: the first `nameserver` of
    /// /etc/resolv.conf, else numeric next hops only.
    pub name_server: Option<SocketAddr>,
    /// Other names of ours (domains served): a Request-URI or Route naming one without a
    /// user part is for us.
    pub local_names: Vec<String>,
    /// Best-effort TLS for `sip:` requests (RFC 5630 §5.3): TLS targets first, the plain
    /// ones as fallback. Off by default (a blackholed TLS attempt costs Timer B/F).
    pub best_effort_tls: bool,
    /// Proxy cores (shards), each on its own thread, messages split among them by Call-ID;
    /// UDP listeners get one SO_REUSEPORT socket per core. 1..=[`MAX_WORKERS`]; a restart
    /// changes it.
    pub workers: usize,
}

/// The most `[proxy] workers`.
pub const MAX_WORKERS: usize = 64;

impl Default for ProxySection {
    fn default() -> Self {
        ProxySection {
            stateful: true,
            record_route: true,
            max_forwards: 70,
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
            name_server: None,
            local_names: Vec::new(),
            best_effort_tls: false,
            workers: 1,
        }
    }
}

impl ProxySection {
    /// The transaction timers (a proxy sends 100 Trying to an INVITE at once, §16.2).
    pub fn timers(&self) -> TimerConfig {
        TimerConfig {
            t1: Duration::from_millis(self.t1_ms),
            t2: Duration::from_millis(self.t2_ms),
            t4: Duration::from_millis(self.t4_ms),
            trying_delay: Some(Duration::ZERO),
        }
    }

    /// The DNS server to use: the configured one, else the system's first.
    pub fn name_server(&self) -> Option<SocketAddr> {
        self.name_server.or_else(system_name_server)
    }
}

fn system_name_server() -> Option<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    text.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some("nameserver"))
            .then(|| w.next())
            .flatten()
            .and_then(|a| a.parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

/// One `[[route]]`: what it matches (every key given must match) and where it sends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// A name for logs.
    #[serde(default)]
    pub name: Option<String>,
    /// Request-URI host name: exact (case-insensitive) or `*.suffix`.
    #[serde(default)]
    pub domain: Option<String>,
    /// Request-URI user: exact, or a prefix ending in `*`.
    #[serde(default)]
    pub user: Option<String>,
    /// Request-URI host (name or IP), optionally `:port`.
    #[serde(default)]
    pub host: Option<String>,
    /// The listener the request came in on.
    #[serde(default)]
    pub listener: Option<String>,
    /// Methods; empty: all.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Forward without transactions (§16.11); absent: `[proxy] stateful` decides.
    #[serde(default)]
    pub stateless: Option<bool>,
    /// Best-effort TLS for `sip:` requests of this route; absent: `[proxy]
    /// best_effort_tls` decides.
    #[serde(default)]
    pub best_effort_tls: Option<bool>,
    /// Where to send, in order (RFC 3263 §4.3 failover moves down the list).
    #[serde(default, rename = "target")]
    pub targets: Vec<TargetConfig>,
}

/// One `[[route.target]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Transport to send over.
    pub transport: TransportKind,
    /// An IP address and port.
    #[serde(default)]
    pub address: Option<SocketAddr>,
    /// A host name (RFC 3263 with the transport fixed: SRV, then A/AAAA) or an IP.
    #[serde(default)]
    pub host: Option<String>,
    /// Port with `host`; absent: SRV for a name, the transport's default for an IP.
    #[serde(default)]
    pub port: Option<u16>,
    /// The listener to leave by; absent: the one facing the target (the host's routing
    /// table), else the first of the target's transport.
    #[serde(default)]
    pub listener: Option<String>,
}

fn route_place(i: usize) -> Place {
    Place(vec![PlaceStep::Key("route"), PlaceStep::Index(i)])
}

/// The relay's rules, added to `out`.
pub fn violations(cfg: &Config, out: &mut Vec<(Violation, Place)>) {
    let p = &cfg.proxy;
    let proxy = |key: &'static str| Place::key("proxy").child(key);
    if p.t1_ms == 0 {
        out.push((Violation::ZeroLimit { name: "t1_ms" }, proxy("t1_ms")));
    }
    if p.t2_ms < p.t1_ms {
        out.push((Violation::T2BelowT1(p.t2_ms, p.t1_ms), proxy("t2_ms")));
    }
    if !(1..=MAX_WORKERS).contains(&p.workers) {
        out.push((Violation::BadWorkers(p.workers), proxy("workers")));
    }
    if p.max_forwards == 0 {
        out.push((
            Violation::ZeroLimit {
                name: "max_forwards",
            },
            proxy("max_forwards"),
        ));
    }
    if let Some(ns) = p.name_server {
        if ns.port() == 0 || ns.ip().is_unspecified() {
            out.push((Violation::BadNameServer(ns), proxy("name_server")));
        }
    }
    // Best-effort TLS needs a TLS listener to send from (else it would silently do nothing).
    let tls = cfg
        .listeners
        .iter()
        .any(|l| l.transport == TransportKind::Tls);
    if p.best_effort_tls && !tls {
        out.push((Violation::BestEffortTlsWithoutTls, proxy("best_effort_tls")));
    }
    let has_listener = |n: &str| cfg.listeners.iter().any(|l| l.name == n);
    for (i, r) in cfg.routes.iter().enumerate() {
        if r.best_effort_tls == Some(true) && !tls {
            out.push((
                Violation::BestEffortTlsWithoutTls,
                route_place(i).child("best_effort_tls"),
            ));
        }
        if r.targets.is_empty() {
            out.push((Violation::RouteWithoutTarget(i + 1), route_place(i)));
        }
        if let Some(l) = r.listener.as_deref().filter(|l| !has_listener(l)) {
            out.push((
                Violation::UnknownListener(l.to_owned()),
                route_place(i).child("listener"),
            ));
        }
        if let Some(d) = &r.domain {
            let bare = d.strip_prefix("*.").unwrap_or(d);
            if sipwire::resolve::target::normalize_domain(bare).is_none() {
                out.push((
                    Violation::BadRouteMatch(d.clone()),
                    route_place(i).child("domain"),
                ));
            }
        }
        for (j, t) in r.targets.iter().enumerate() {
            let at = route_place(i).child("target").then(PlaceStep::Index(j));
            match (&t.address, &t.host) {
                (Some(_), None) | (None, Some(_)) => {}
                _ => out.push((Violation::TargetAddressOrHost, at.clone())),
            }
            if let Some(h) = &t.host {
                if sipwire::resolve::parse_host(h).is_err() || t.port == Some(0) {
                    out.push((
                        Violation::BadRouteMatch(h.clone()),
                        at.clone().child("host"),
                    ));
                }
            }
            if t.address
                .is_some_and(|a| a.port() == 0 || a.ip().is_unspecified())
            {
                out.push((
                    Violation::BadRouteMatch(format!("{:?}", t.address)),
                    at.clone().child("address"),
                ));
            }
            match t.listener.as_deref() {
                Some(l) => match cfg.listeners.iter().find(|x| x.name == l) {
                    None => out.push((
                        Violation::UnknownListener(l.to_owned()),
                        at.clone().child("listener"),
                    )),
                    Some(x) if x.transport != t.transport => out.push((
                        Violation::TargetListenerTransport(l.to_owned(), t.transport),
                        at.clone().child("listener"),
                    )),
                    Some(_) => {}
                },
                None if !cfg.listeners.iter().any(|x| x.transport == t.transport) => out.push((
                    Violation::NoListenerFor(t.transport),
                    at.clone().child("transport"),
                )),
                None => {}
            }
        }
    }
}

/// The proxy core's configuration: listeners as bound (`advertise` overrides the host and
/// port peers see), routes, names and options.
pub fn proxy_config(cfg: &Config, bound: &[(String, TransportKind, SocketAddr)]) -> ProxyConfig {
    let mut listeners: Vec<Listener> = Vec::new();
    for (name, kind, addr) in bound {
        if listeners.iter().any(|l| &l.name == name) {
            continue;
        }
        let conf = cfg.listeners.iter().find(|l| &l.name == name);
        let (host, port) = match conf.and_then(|c| c.advertise.as_deref()) {
            Some(a) => split_host_port(a, addr.port()),
            None => (addr.ip().to_string(), addr.port()),
        };
        let mut l = Listener::new(name, *kind, &host, Some(port)).bound_to(addr.ip());
        if let Some(n) = conf.and_then(|c| c.network.as_deref()) {
            l = l.on_network(n);
        }
        listeners.push(l);
    }
    let mut pc = ProxyConfig::new(listeners);
    pc.local_names = cfg.proxy.local_names.clone();
    pc.local_names.extend(cfg.domains());
    pc.record_route = cfg.proxy.record_route;
    // The relay writes its own Via: `[alias] add_alias` must reach it, not only the reuse
    // endpoint (which adds nothing to a relayed request).
    pc.alias = cfg.alias.add_alias;
    pc.max_forwards = cfg.proxy.max_forwards;
    pc.best_effort_tls = cfg.proxy.best_effort_tls;
    pc.dtls_sctp_via_token = cfg.sctp.custom_dtls_via_token().map(str::to_owned);
    pc.routes = cfg
        .routes
        .iter()
        .map(|r| route_rule(r, cfg.proxy.stateful))
        .collect();
    pc
}

fn split_host_port(a: &str, default_port: u16) -> (String, u16) {
    if let Ok(sa) = a.parse::<SocketAddr>() {
        return (sa.ip().to_string(), sa.port());
    }
    match a.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(p) => (h.to_owned(), p),
            Err(_) => (a.to_owned(), default_port),
        },
        _ => (a.trim_matches(['[', ']']).to_owned(), default_port),
    }
}

fn route_rule(r: &RouteConfig, stateful: bool) -> RouteRule {
    let stateless = r.stateless.unwrap_or(!stateful);
    RouteRule {
        best_effort_tls: r.best_effort_tls,
        matches: RouteMatch {
            domain: r.domain.clone(),
            user: r.user.clone(),
            host: r.host.clone(),
            listener: r.listener.clone(),
            methods: r.methods.clone(),
        },
        targets: r
            .targets
            .iter()
            .map(|t| {
                let (host, port) = match (&t.address, &t.host) {
                    (Some(a), _) => (a.ip().to_string(), Some(a.port())),
                    (None, Some(h)) => (h.clone(), t.port),
                    (None, None) => (String::new(), t.port),
                };
                RouteTarget {
                    transport: t.transport,
                    host,
                    port,
                    stateless,
                    listener: t.listener.clone(),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[[listener]]\nname = 'udp'\ntransport = 'udp'\naddr = '127.0.0.1:5060'\n\
        [[listener]]\nname = 'tcp'\ntransport = 'tcp'\naddr = '127.0.0.1:5060'\n";

    fn bound() -> Vec<(String, TransportKind, SocketAddr)> {
        vec![
            (
                "tcp".into(),
                TransportKind::Tcp,
                "127.0.0.1:5070".parse().unwrap(),
            ),
            (
                "udp".into(),
                TransportKind::Udp,
                "127.0.0.1:5070".parse().unwrap(),
            ),
        ]
    }

    #[test]
    fn routes_and_proxy_section_become_the_core_configuration() {
        let cfg = Config::parse(&format!(
            "{BASE}[proxy]\nrecord_route = false\nmax_forwards = 20\nt1_ms = 100\nt2_ms = 400\n\
             local_names = ['sip.example.com']\n\
             [[route]]\ndomain = '*.example.net'\nmethods = ['INVITE']\nlistener = 'udp'\n\
             [[route.target]]\ntransport = 'tcp'\naddress = '10.0.0.1:5080'\n\
             [[route.target]]\ntransport = 'udp'\nhost = 'core.example.net'\n\
             [[route]]\nuser = '+33*'\nstateless = true\n\
             [[route.target]]\ntransport = 'udp'\nhost = '10.0.0.2'\nport = 5062\n"
        ))
        .unwrap();
        let pc = proxy_config(&cfg, &bound());
        assert_eq!(pc.listeners.len(), 2);
        assert_eq!(pc.listeners[0].port, Some(5070));
        assert!(!pc.record_route);
        assert_eq!(pc.max_forwards, 20);
        assert_eq!(pc.local_names, ["sip.example.com"]);
        assert_eq!(pc.routes.len(), 2);
        let r = &pc.routes[0];
        assert_eq!(r.matches.domain.as_deref(), Some("*.example.net"));
        assert_eq!(r.matches.listener.as_deref(), Some("udp"));
        assert_eq!(
            (r.targets[0].host.as_str(), r.targets[0].port),
            ("10.0.0.1", Some(5080))
        );
        assert_eq!(
            (r.targets[1].host.as_str(), r.targets[1].port),
            ("core.example.net", None)
        );
        assert!(!r.targets[0].stateless);
        assert!(pc.routes[1].targets[0].stateless);
        pc.check().unwrap();
        let t = cfg.proxy.timers();
        assert_eq!(t.t1, Duration::from_millis(100));
        assert_eq!(t.trying_delay, Some(Duration::ZERO));
    }

    #[test]
    fn add_alias_reaches_the_relays_via() {
        let on = Config::parse(BASE).unwrap();
        assert!(proxy_config(&on, &bound()).alias);
        let off = Config::parse(&format!("{BASE}[alias]\nadd_alias = false\n")).unwrap();
        assert!(!proxy_config(&off, &bound()).alias);
    }

    #[test]
    fn best_effort_tls_reaches_the_core() {
        assert!(!ProxySection::default().best_effort_tls, "off by default");
        let cfg = Config::parse(&format!(
            "{BASE}[[listener]]\nname = 'tls'\ntransport = 'tls'\naddr = '127.0.0.1:5061'\n\
             [tls]\ndev_ca = true\n[proxy]\nbest_effort_tls = true\n\
             [[route]]\nbest_effort_tls = false\n\
             [[route.target]]\ntransport = 'tcp'\naddress = '10.0.0.1:5060'\n\
             [[route]]\n[[route.target]]\ntransport = 'tcp'\naddress = '10.0.0.2:5060'\n"
        ))
        .unwrap();
        let pc = proxy_config(&cfg, &bound());
        assert!(pc.best_effort_tls);
        assert_eq!(pc.routes[0].best_effort_tls, Some(false));
        assert_eq!(pc.routes[1].best_effort_tls, None, "[proxy] decides");
    }

    #[test]
    fn advertise_and_network_name_the_listener() {
        let cfg = Config::parse(
            "[[listener]]\nname = 'tcp'\ntransport = 'tcp'\naddr = '0.0.0.0:5060'\n\
             advertise = 'sip.example.com:5099'\nnetwork = 'core'\n",
        )
        .unwrap();
        let b = vec![(
            "tcp".to_owned(),
            TransportKind::Tcp,
            "0.0.0.0:5060".parse().unwrap(),
        )];
        let pc = proxy_config(&cfg, &b);
        assert_eq!(pc.listeners[0].host, "sip.example.com");
        assert_eq!(pc.listeners[0].port, Some(5099));
        assert_eq!(pc.listeners[0].network, "core");
    }

    #[test]
    fn bad_routes_are_refused() {
        let v: Vec<Violation> = Config::parse(&format!(
            "{BASE}[proxy]\nt1_ms = 500\nt2_ms = 100\n\
             [[route]]\nlistener = 'nope'\n\
             [[route]]\n[[route.target]]\ntransport = 'tls'\naddress = '10.0.0.1:5061'\n\
             [[route.target]]\ntransport = 'udp'\n\
             [[route.target]]\ntransport = 'udp'\nhost = 'a.example'\nlistener = 'tcp'\n"
        ))
        .unwrap_err()
        .violations()
        .cloned()
        .collect();
        assert_eq!(
            v,
            [
                Violation::T2BelowT1(100, 500),
                Violation::RouteWithoutTarget(1),
                Violation::UnknownListener("nope".into()),
                Violation::NoListenerFor(TransportKind::Tls),
                Violation::TargetAddressOrHost,
                Violation::TargetListenerTransport("tcp".into(), TransportKind::Udp),
            ]
        );
    }

    #[test]
    fn workers_are_1_to_64() {
        let workers = |n: usize| {
            Config::parse(&format!("{BASE}[proxy]\nworkers = {n}\n"))
                .map(|c| c.proxy.workers)
                .map_err(|e| e.violations().cloned().collect::<Vec<_>>())
        };
        assert_eq!(ProxySection::default().workers, 1, "one core by default");
        assert_eq!(workers(1), Ok(1));
        assert_eq!(workers(64), Ok(64));
        assert_eq!(workers(0), Err(vec![Violation::BadWorkers(0)]));
        assert_eq!(workers(65), Err(vec![Violation::BadWorkers(65)]));
    }
}
