//! `sipwire run`: binds the configured listeners, answers OPTIONS addressed to itself
//! (see [`super::responder`]), and shuts down gracefully on Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::admin;
use super::config::{Config, ListenerConfig, TransportKind};
use super::dev_tls::{self, DevCa, DevTlsError};
use super::responder::{self, LocalNames};
use super::tls_setup::GatewayTls;
use sipwire::endpoint::{LocalDomain, ReuseConfig, ReuseEndpoint};
use sipwire::transport::{Incoming, Transport, TransportConfig, TransportError};
use sipwire::wire::Limits;

/// Errors that stop `sipwire run` before it serves.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// TLS material could not be prepared.
    #[error(transparent)]
    Tls(#[from] DevTlsError),
    /// A listener could not be bound.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The transport has no driver yet (SCTP family until sipwire-sys is wired in).
    #[error("listener {0}: transport {1} is not available in this build yet")]
    Unsupported(String, TransportKind),
    /// The metrics exporter could not start.
    #[error("metrics exporter: {0}")]
    Metrics(String),
    /// The state directory could not be created.
    #[error("state directory {0}: {1}")]
    State(std::path::PathBuf, std::io::Error),
    /// Signal handlers could not be installed.
    #[error("signal handler: {0}")]
    Signal(std::io::Error),
}

/// The transport settings taken from the `[limits]` section.
pub fn transport_config(cfg: &Config) -> TransportConfig {
    let l = &cfg.limits;
    TransportConfig {
        limits: Limits {
            max_message_bytes: l.max_message,
            max_header_bytes: l.max_headers,
            max_body_bytes: l.max_message,
            ..Limits::default()
        },
        max_connections: l.max_connections,
        max_connections_per_ip: l.max_connections_per_ip,
        max_udp_flows: l.max_udp_flows,
        write_queue_bytes: l.write_queue_bytes,
        idle_timeout: Duration::from_secs(l.idle_timeout_secs),
        header_timeout: Duration::from_secs(l.header_timeout_secs),
        connect_timeout: Duration::from_secs(l.connect_timeout_secs),
        handshake_timeout: Duration::from_secs(l.connect_timeout_secs),
        keepalive_interval: (l.keepalive_interval_secs > 0)
            .then(|| Duration::from_secs(l.keepalive_interval_secs)),
        identities: Some(sipwire::tls::identity_fn()),
        require_alpn: cfg.tls.alpn_policy == sipwire::tls::AlpnPolicy::Require,
        ..TransportConfig::default()
    }
}

fn kind_of(l: &ListenerConfig) -> Result<TransportKind, RunError> {
    match l.transport {
        k @ (TransportKind::Udp | TransportKind::Tcp | TransportKind::Tls) => Ok(k),
        t => Err(RunError::Unsupported(l.name.clone(), t)),
    }
}

/// A started gateway.
pub struct Gateway {
    /// The transport (for tests and future admin endpoints).
    pub transport: Transport,
    /// What was bound: (listener name, transport, address).
    pub bound: Vec<(String, TransportKind, SocketAddr)>,
    /// RFC 5923 connection reuse over the transport (alias tables, admin dump).
    pub reuse: ReuseEndpoint,
    /// The development CA, when one is used.
    pub dev_ca: Option<DevCa>,
    /// The TLS material (reloadable), when a TLS listener exists.
    pub tls: Option<Arc<GatewayTls>>,
    responder: tokio::task::JoinHandle<()>,
    drain: Duration,
}

impl Gateway {
    /// Binds every listener (TCP-family first, so that a UDP listener on port 0 takes
    /// the port its TCP twin got) and starts answering.
    pub async fn start(cfg: &Config) -> Result<Gateway, RunError> {
        let needs_tls = cfg.listeners.iter().any(|l| l.transport.is_secure());
        let dev_ca = if needs_tls && cfg.tls.dev_ca {
            std::fs::create_dir_all(&cfg.state.dir)
                .map_err(|e| RunError::State(cfg.state.dir.clone(), e))?;
            let domains: Vec<String> = cfg
                .listeners
                .iter()
                .filter_map(|l| l.domain.clone())
                .collect();
            Some(dev_tls::ensure_dev_ca(&cfg.state.dir, &domains)?)
        } else {
            None
        };
        let (transport, rx) = Transport::new(transport_config(cfg));
        let tls = if needs_tls {
            let t = GatewayTls::load(cfg, dev_ca.as_ref())?;
            t.client().install(&transport);
            Some(Arc::new(t))
        } else {
            None
        };
        let mut bound: Vec<(String, TransportKind, SocketAddr)> = Vec::new();
        let mut ordered: Vec<&ListenerConfig> = cfg.listeners.iter().collect();
        ordered.sort_by_key(|l| l.transport == TransportKind::Udp);
        for l in ordered {
            let kind = kind_of(l)?;
            let addr = match kind {
                TransportKind::Udp => {
                    let mut addr = l.addr;
                    if addr.port() == 0 {
                        if let Some((_, _, a)) = bound
                            .iter()
                            .find(|(_, k, a)| *k == TransportKind::Tcp && a.ip() == addr.ip())
                        {
                            addr.set_port(a.port());
                        }
                    }
                    transport.bind_udp(addr).await?
                }
                TransportKind::Tcp => transport.bind_tcp(l.addr).await?,
                _ => {
                    let tls = tls
                        .as_ref()
                        .ok_or(RunError::Unsupported(l.name.clone(), l.transport))?;
                    transport.bind_tls(l.addr, tls.server_config(l)?).await?
                }
            };
            bound.push((l.name.clone(), kind, addr));
        }
        let mut local = LocalNames {
            addrs: bound.iter().map(|(_, _, a)| (a.ip(), a.port())).collect(),
            domains: vec!["localhost".to_owned()],
        };
        local
            .domains
            .extend(cfg.listeners.iter().filter_map(|l| l.domain.clone()));
        let reuse = ReuseEndpoint::new(transport.clone(), None, reuse_config(cfg, &bound));
        let responder = tokio::spawn(respond(reuse.clone(), rx, Arc::new(local)));
        Ok(Gateway {
            transport,
            bound,
            reuse,
            dev_ca,
            tls,
            responder,
            drain: Duration::from_millis(cfg.limits.shutdown_drain_ms),
        })
    }

    /// Re-reads every TLS certificate and key (server and client): new handshakes use
    /// them, established connections are kept. On error the old ones stay.
    pub fn reload(&self) -> Result<(), RunError> {
        match &self.tls {
            Some(t) => Ok(t.reload()?),
            None => Ok(()),
        }
    }

    /// Graceful shutdown: listeners stop, flows drain and close.
    pub async fn shutdown(self) {
        self.transport.shutdown(self.drain).await;
        self.responder.abort();
    }
}

/// The reuse settings: one local domain per listener `domain` (sent-by = the domain, ports =
/// its listeners' ports), inbound flows without SNI attributed to their listener's domain.
pub fn reuse_config(cfg: &Config, bound: &[(String, TransportKind, SocketAddr)]) -> ReuseConfig {
    let mut domains: Vec<LocalDomain> = Vec::new();
    let mut listener_domains = std::collections::HashMap::new();
    for l in &cfg.listeners {
        let Some(name) = l.domain.as_deref() else {
            continue;
        };
        let Some((_, kind, addr)) = bound.iter().find(|(n, _, _)| *n == l.name) else {
            continue;
        };
        listener_domains.insert(*addr, name.to_ascii_lowercase());
        match domains
            .iter_mut()
            .find(|d| d.name.eq_ignore_ascii_case(name))
        {
            Some(d) => {
                d.ports.entry(*kind).or_insert(addr.port());
            }
            None => domains.push(LocalDomain::new(name, name).with_port(*kind, addr.port())),
        }
    }
    ReuseConfig {
        add_alias: cfg.alias.add_alias,
        policy: cfg.alias.policy(),
        max_rows_per_table: cfg.alias.max_rows_per_table,
        default_domain: domains.first().map(|d| d.name.clone()),
        domains,
        listener_domains,
        ..ReuseConfig::default()
    }
}

async fn respond(reuse: ReuseEndpoint, mut rx: mpsc::Receiver<Incoming>, local: Arc<LocalNames>) {
    while let Some(inc) = rx.recv().await {
        // RFC 5923 §8.2: the request proceeds whatever the alias decision.
        reuse.on_incoming(&inc);
        let Some(resp) = responder::answer(&inc.message, &local) else {
            continue;
        };
        if let Err(e) = reuse.send_response(&inc, resp).await {
            tracing::debug!(flow = %inc.flow, error = %e, "response not sent");
        }
    }
}

/// Runs the gateway until Ctrl-C or SIGTERM; prints what it listens on to stdout.
pub async fn run(cfg: Config) -> Result<(), RunError> {
    if let Some(addr) = cfg.metrics.prometheus {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .map_err(|e| RunError::Metrics(e.to_string()))?;
        println!("sipwire: metrics on http://{addr}/metrics");
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(RunError::Signal)?;
    let gw = Gateway::start(&cfg).await?;
    if let Some(d) = &gw.dev_ca {
        println!("sipwire: state directory {}", cfg.state.dir.display());
        println!(
            "sipwire: development CA {} (trust it to verify the TLS listeners)",
            d.ca.display()
        );
    }
    for (name, kind, addr) in &gw.bound {
        println!("sipwire: listening {kind} {addr} ({name})");
    }
    std::fs::create_dir_all(&cfg.state.dir)
        .map_err(|e| RunError::State(cfg.state.dir.clone(), e))?;
    let admin = admin::serve(&cfg.state.dir, gw.reuse.clone())
        .map_err(|e| RunError::State(admin::socket_path(&cfg.state.dir), e))?;
    println!(
        "sipwire: admin socket {}",
        admin::socket_path(&cfg.state.dir).display()
    );
    println!("sipwire: ready");
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(RunError::Signal)?;
    loop {
        tokio::select! {
            r = tokio::signal::ctrl_c() => { r.map_err(RunError::Signal)?; break; }
            _ = term.recv() => break,
            _ = hup.recv() => match gw.reload() {
                Ok(()) => println!("sipwire: TLS certificates reloaded"),
                Err(e) => eprintln!("sipwire: TLS reload failed, old certificates kept: {e}"),
            },
        }
    }
    println!("sipwire: shutting down");
    admin.abort();
    let _ = std::fs::remove_file(admin::socket_path(&cfg.state.dir));
    gw.shutdown().await;
    println!("sipwire: stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_config_from_listener_domains() {
        let cfg = Config::parse(
            "[[listener]]\nname = 't'\ntransport = 'tcp'\naddr = '127.0.0.1:5060'\n\
             [[listener]]\nname = 's1'\ntransport = 'tls'\naddr = '127.0.0.1:5061'\ndomain = 'Example.com'\n\
             [[listener]]\nname = 's2'\ntransport = 'tls'\naddr = '127.0.0.2:5061'\ndomain = 'example.net'\n\
             [tls]\ndev_ca = true\n[alias]\naccept = false\nrefuse_peers = ['bad.example']\n",
        )
        .expect("config");
        let bound = vec![
            (
                "t".to_owned(),
                TransportKind::Tcp,
                "127.0.0.1:5060".parse().expect("a"),
            ),
            (
                "s1".to_owned(),
                TransportKind::Tls,
                "127.0.0.1:5061".parse().expect("a"),
            ),
            (
                "s2".to_owned(),
                TransportKind::Tls,
                "127.0.0.2:5061".parse().expect("a"),
            ),
        ];
        let r = reuse_config(&cfg, &bound);
        let names: Vec<&str> = r.domains.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["example.com", "example.net"]);
        assert_eq!(r.domains[0].ports.get(&TransportKind::Tls), Some(&5061));
        assert_eq!(
            r.listener_domains
                .get(&"127.0.0.2:5061".parse().expect("a"))
                .map(String::as_str),
            Some("example.net")
        );
        assert_eq!(r.default_domain.as_deref(), Some("example.com"));
        assert!(r.add_alias);
        assert!(!r.policy.accept);
        assert_eq!(r.policy.per_peer.get("bad.example"), Some(&false));
    }
}
