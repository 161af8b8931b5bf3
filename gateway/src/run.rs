//! `sipwire run`: binds the configured listeners, relays SIP between them (see
//! [`super::relay`]; OPTIONS addressed to itself get 200), reloads its configuration on
//! SIGHUP or the admin call `reload`, tells systemd where it stands, and shuts down
//! gracefully on Ctrl-C or SIGTERM (transactions in flight finish first).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::admin;
use super::config::{Config, ConfigError, ListenerConfig, TransportKind, Violation};
use super::dev_tls::{self, DevCa, DevTlsError};
use super::endpoint_slot::EndpointSlot;
use super::logging::LogControl;
use super::notify::{self, Notifier};
use super::relay::{Relay, RelayError};
use super::reload::{self, Plan, ReloadOutcome};
use super::sip_log::SipLog;
use super::tls_setup::GatewayTls;
use sipwire::endpoint::{LocalDomain, ReuseConfig, ReuseEndpoint};
use sipwire::transport::{LiveLimits, Transport, TransportConfig, TransportError};
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
    /// The transport has no driver yet (TLS-SCTP and DTLS-SCTP).
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
    /// The HEP capture sink could not start.
    #[error(transparent)]
    Capture(#[from] sipwire::capture::CaptureError),
    /// The relay could not start.
    #[error(transparent)]
    Relay(#[from] RelayError),
}

/// Why a new configuration was not applied (the running one stays).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Its certificates do not load.
    #[error(transparent)]
    Tls(#[from] DevTlsError),
    /// Its changeable part breaks a rule together with the running part that needs a
    /// restart to change.
    #[error("{0} (with the running values of the settings that need a restart)")]
    Conflict(Violation),
    /// The relay refused its routes.
    #[error(transparent)]
    Relay(#[from] super::relay::ReconfigureError),
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
        udp_recv_buffer: l.udp_recv_buffer_bytes,
        udp_send_buffer: l.udp_send_buffer_bytes,
        tcp_recv_buffer: l.tcp_recv_buffer_bytes,
        tcp_send_buffer: l.tcp_send_buffer_bytes,
        identities: Some(sipwire::tls::identity_fn()),
        require_alpn: cfg.tls.alpn_policy == sipwire::tls::AlpnPolicy::Require,
        sctp: cfg.sctp.transport_config(),
        flood: cfg.flood.as_ref().map(|f| f.flood_config()),
        // The proxy driver reads this queue itself; it holds what the transport's queue and
        // the relay's own queue (4,096 each) held before the relay's hop was removed.
        incoming_queue: 8192,
        ..TransportConfig::default()
    }
}

/// A started gateway.
pub struct Gateway {
    /// The transport (for tests and future admin endpoints).
    pub transport: Transport,
    /// What was bound: (listener name, transport, address); a multihomed SCTP listener has
    /// one entry per address.
    pub bound: Vec<(String, TransportKind, SocketAddr)>,
    /// Optional listeners left off, and why (SCTP where the kernel has none).
    pub off: Vec<(String, TransportKind, SocketAddr, String)>,
    /// The development CA, when one is used.
    pub dev_ca: Option<DevCa>,
    /// The TLS material (reloadable), when a TLS listener exists.
    pub tls: Option<Arc<GatewayTls>>,
    /// RFC 5923 connection reuse over the transport (alias tables, admin dump); replaced
    /// when a reload changes `[alias]`.
    reuse: EndpointSlot,
    /// The configuration in force.
    cfg: Config,
    relay: Relay,
    drain: Duration,
}

impl Gateway {
    /// Binds every listener (TCP-family first, so that a UDP listener on port 0 takes
    /// the port its TCP twin got) and starts answering.
    pub async fn start(cfg: &Config) -> Result<Gateway, RunError> {
        Self::start_with(cfg, SipLog::default()).await
    }

    /// [`Gateway::start`], logging received messages as `sip_log` says.
    pub async fn start_with(cfg: &Config, sip_log: SipLog) -> Result<Gateway, RunError> {
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
        let mut tcfg = transport_config(cfg);
        if let Some(c) = &cfg.capture {
            // Started after the metrics recorder (its drop counter binds to it).
            tcfg.capture = Some(sipwire::capture::Capture::start(c.sink_config())?);
        }
        // One receiver per proxy core (`[proxy] workers`), fed by Call-ID.
        let (transport, rx) = Transport::new_sharded(tcfg, cfg.proxy.workers);
        let tls = if needs_tls {
            let t = GatewayTls::load(cfg, dev_ca.as_ref())?;
            t.install(&transport);
            if cfg
                .listeners
                .iter()
                .any(|l| l.transport == TransportKind::DtlsSctp)
            {
                transport
                    .set_dtls_sctp_client(crate::tls_setup::dtls_connector(cfg, dev_ca.as_ref())?);
                if let Some(token) = cfg.sctp.custom_dtls_via_token() {
                    transport.set_dtls_sctp_via_token(token);
                }
            }
            Some(Arc::new(t))
        } else {
            None
        };
        let mut bound: Vec<(String, TransportKind, SocketAddr)> = Vec::new();
        let mut off = Vec::new();
        let mut ordered: Vec<&ListenerConfig> = cfg.listeners.iter().collect();
        ordered.sort_by_key(|l| l.transport == TransportKind::Udp);
        for l in ordered {
            let kind = l.transport;
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
                TransportKind::Sctp | TransportKind::TlsSctp | TransportKind::DtlsSctp => {
                    if let (true, Err(e)) = (l.optional, sipwire::transport::sctp_available()) {
                        tracing::warn!(listener = %l.name, error = %e, "optional SCTP listener off");
                        off.push((l.name.clone(), kind, l.addr, e.to_string()));
                        continue;
                    }
                    let mut addrs = vec![l.addr];
                    addrs.extend(
                        l.extra_addrs
                            .iter()
                            .map(|ip| SocketAddr::new(*ip, l.addr.port())),
                    );
                    let all = if kind == TransportKind::DtlsSctp {
                        let acceptor = crate::tls_setup::dtls_acceptor(cfg, l, dev_ca.as_ref())?;
                        transport.bind_dtls_sctp(&addrs, acceptor).await?
                    } else if kind == TransportKind::TlsSctp {
                        let tls = tls
                            .as_ref()
                            .ok_or(RunError::Unsupported(l.name.clone(), l.transport))?;
                        transport
                            .bind_tls_sctp(&addrs, tls.server_config(l)?)
                            .await?
                    } else {
                        transport.bind_sctp(kind, &addrs).await?
                    };
                    bound.extend(all.iter().map(|a| (l.name.clone(), kind, *a)));
                    continue;
                }
                _ => {
                    let tls = tls
                        .as_ref()
                        .ok_or(RunError::Unsupported(l.name.clone(), l.transport))?;
                    transport.bind_tls(l.addr, tls.server_config(l)?).await?
                }
            };
            bound.push((l.name.clone(), kind, addr));
        }
        let reuse = EndpointSlot::new(ReuseEndpoint::new(
            transport.clone(),
            None,
            reuse_config(cfg, &bound),
        ));
        let relay = Relay::start(cfg, transport.clone(), rx, &bound, reuse.clone(), sip_log)?;
        Ok(Gateway {
            transport,
            bound,
            off,
            reuse,
            dev_ca,
            tls,
            cfg: cfg.clone(),
            relay,
            drain: Duration::from_millis(cfg.limits.shutdown_drain_ms),
        })
    }

    /// The reuse endpoint in force.
    pub fn reuse(&self) -> ReuseEndpoint {
        self.reuse.get()
    }

    /// Asks the relay what it is relaying (the admin `transactions` command).
    pub fn snapshots(&self) -> super::relay::Snapshots {
        self.relay.snapshots()
    }

    /// The slot holding the reuse endpoint in force (what the admin socket reads).
    pub fn reuse_slot(&self) -> EndpointSlot {
        self.reuse.clone()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Re-reads every TLS certificate and key (server and client): new handshakes use
    /// them, established connections are kept. On error the old ones stay.
    pub fn reload(&self) -> Result<(), RunError> {
        match &self.tls {
            Some(t) => Ok(t.reload()?),
            None => Ok(()),
        }
    }

    /// Applies what can change at run time of the valid configuration `new` (see
    /// [`reload`]): certificates are re-read (also when their paths did not change),
    /// `[alias]` replaces the reuse endpoint. Flows stay. On error nothing changes.
    pub fn apply(&mut self, new: &Config) -> Result<Plan, ApplyError> {
        let plan = reload::plan(&self.cfg, new);
        if let Some((v, _)) = plan.effective.violations().into_iter().next() {
            return Err(ApplyError::Conflict(v));
        }
        // The relay's configuration carries `[alias] add_alias` (its Via) besides the routes.
        let relay_changed = plan.relay_changed || plan.alias_changed;
        if relay_changed {
            // Checked before anything is applied: on error nothing changes.
            self.relay.check(&plan.effective)?;
        }
        if let Some(t) = &self.tls {
            t.reload_with(&plan.effective, Some(&self.transport))?;
        }
        if plan.limits_changed {
            self.transport
                .set_limits(LiveLimits::of(&transport_config(&plan.effective)));
            self.drain = Duration::from_millis(plan.effective.limits.shutdown_drain_ms);
        }
        if plan.flood_changed {
            self.transport
                .set_flood(plan.effective.flood.as_ref().map(|f| f.flood_config()));
            tracing::info!(
                on = plan.effective.flood.is_some(),
                "[flood] changed: limiter replaced, sources start afresh"
            );
        }
        if relay_changed {
            self.relay.reconfigure_now(&plan.effective)?;
            tracing::info!(
                routes = plan.effective.routes.len(),
                "relay configuration replaced"
            );
        }
        if plan.alias_changed {
            let fresh = ReuseEndpoint::new(
                self.transport.clone(),
                None,
                reuse_config(&plan.effective, &self.bound),
            );
            self.reuse.replace(fresh);
            tracing::info!("[alias] changed: reuse endpoint replaced, alias rows start empty");
        }
        self.cfg = plan.effective.clone();
        Ok(plan)
    }

    /// Graceful shutdown: new transactions are refused, those in flight finish within
    /// `[limits] shutdown_drain_ms`, then listeners stop and flows drain and close in what
    /// is left of it. Returns the transactions still unfinished at the end.
    pub async fn shutdown(self) -> usize {
        let start = std::time::Instant::now();
        let left = self.relay.drain(self.drain).await;
        let rest = self.drain.saturating_sub(start.elapsed());
        self.transport.shutdown(rest).await;
        self.relay.abort();
        left
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

/// How `sipwire run` was started, beyond its configuration.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The file the configuration came from (`--config`): a reload re-reads it. Without
    /// one, a reload re-reads the certificate files only.
    pub config_path: Option<PathBuf>,
    /// The log filter, for the admin call `log-level`.
    pub log: Option<LogControl>,
    /// How received messages are logged.
    pub sip_log: SipLog,
}

/// Reloads: re-reads and checks the configuration file (if any), applies what can change,
/// and reports; the old configuration stays on any error.
pub fn reload_gateway(gw: &mut Gateway, path: Option<&Path>) -> ReloadOutcome {
    let mut out = ReloadOutcome {
        config: path.map(|p| p.display().to_string()),
        ..ReloadOutcome::default()
    };
    let Some(path) = path else {
        match gw.reload() {
            Ok(()) => {
                out.reloaded = true;
                if gw.tls.is_some() {
                    out.applied.push("TLS certificates re-read".to_owned());
                }
            }
            Err(e) => out.errors.push(e.to_string()),
        }
        return out;
    };
    let new = match Config::load_checked(path) {
        Ok(c) => c,
        Err(ConfigError::Invalid(i)) => {
            out.errors = i.problems.iter().map(|p| i.line_of(p)).collect();
            return out;
        }
        Err(e) => {
            out.errors.push(e.to_string());
            return out;
        }
    };
    match gw.apply(&new) {
        Ok(plan) => {
            out.reloaded = true;
            if gw.tls.is_some() {
                out.applied.push("TLS certificates re-read".to_owned());
            }
            out.applied.extend(plan.applied);
            out.needs_restart = plan.needs_restart;
        }
        Err(e) => out.errors.push(e.to_string()),
    }
    out
}

/// Logs a reload and prints its outcome lines on stdout.
fn report(out: &ReloadOutcome, tls: bool) {
    if !out.reloaded {
        for e in &out.errors {
            tracing::error!(problem = %e, "configuration reload refused");
        }
        println!(
            "sipwire: reload refused, old configuration kept ({} problem{})",
            out.errors.len(),
            if out.errors.len() == 1 { "" } else { "s" }
        );
        return;
    }
    for c in &out.applied {
        tracing::info!(change = %c, "reload applied");
    }
    for c in &out.needs_restart {
        tracing::warn!(change = %c, "changed in the file, needs a restart: not applied");
        println!("sipwire: {c} changed: needs a restart, not applied");
    }
    if let Some(p) = &out.config {
        println!("sipwire: configuration reloaded from {p}");
    }
    if tls {
        println!("sipwire: TLS certificates reloaded");
    }
}

/// Prints the routes in force and how to send the relay a first call with SIPp.
fn print_first_call(gw: &Gateway) {
    let routes = gw.cfg.routes.len();
    let workers = gw.relay.shards();
    println!(
        "sipwire: relaying ({}{}, {routes} configured route{}, else RFC 3263 on the Request-URI)",
        if gw.cfg.proxy.stateful {
            "stateful"
        } else {
            "stateless"
        },
        if workers > 1 {
            format!(", {workers} proxy cores")
        } else {
            String::new()
        },
        if routes == 1 { "" } else { "s" }
    );
    if let Some((_, _, udp)) = gw
        .bound
        .iter()
        .find(|(_, k, a)| *k == TransportKind::Udp && !a.ip().is_unspecified())
    {
        let ip = udp.ip();
        let uas = SocketAddr::new(ip, if udp.port() == 5070 { 5080 } else { 5070 });
        println!(
            "sipwire: first call: sipp -sn uas -i {ip} -p {} -nostdin -bg; \
             sipp -sn uac -i {ip} -rsa {udp} -m 1 -nostdin {uas}",
            uas.port()
        );
    }
}

/// Runs the gateway until Ctrl-C or SIGTERM; prints what it listens on to stdout.
pub async fn run(cfg: Config, opts: RunOptions) -> Result<(), RunError> {
    // Notifications help supervision, they are not worth refusing to serve over.
    let notifier = Arc::new(Notifier::from_env().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "systemd notifications disabled");
        Notifier::disabled()
    }));
    if let Some(addr) = cfg.metrics.prometheus {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .map_err(|e| RunError::Metrics(e.to_string()))?;
        println!("sipwire: metrics on http://{addr}/metrics");
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(RunError::Signal)?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(RunError::Signal)?;
    let mut gw = Gateway::start_with(&cfg, opts.sip_log).await?;
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
    for (name, kind, addr, why) in &gw.off {
        println!("sipwire: listener {name} ({kind} {addr}) is off: {why}");
    }
    print_first_call(&gw);
    if let Some(c) = &cfg.capture {
        println!(
            "sipwire: capture HEP v3 to {} {} (capture id {})",
            c.transport.as_str(),
            c.collector,
            c.capture_id
        );
    }
    std::fs::create_dir_all(&cfg.state.dir)
        .map_err(|e| RunError::State(cfg.state.dir.clone(), e))?;
    let (reload_tx, mut reload_rx) = mpsc::channel::<admin::ReloadRequest>(4);
    let handlers = admin::Handlers::new(gw.reuse_slot())
        .with_transactions(gw.snapshots())
        .with_log(opts.log.clone())
        .with_reload(reload_tx);
    let admin = admin::serve(&cfg.state.dir, handlers)
        .map_err(|e| RunError::State(admin::socket_path(&cfg.state.dir), e))?;
    println!(
        "sipwire: admin socket {}",
        admin::socket_path(&cfg.state.dir).display()
    );
    let watchdog = notify::watchdog_interval_from_env()
        .filter(|_| notifier.is_enabled())
        .map(|every| notify::spawn_watchdog(Arc::clone(&notifier), every));
    let n = gw.bound.len();
    notifier.ready(&format!(
        "serving {n} listener{}",
        if n == 1 { "" } else { "s" }
    ));
    println!("sipwire: ready");
    let path = opts.config_path.as_deref();
    loop {
        let reply = tokio::select! {
            r = tokio::signal::ctrl_c() => { r.map_err(RunError::Signal)?; break; }
            _ = term.recv() => break,
            _ = hup.recv() => None,
            Some(reply) = reload_rx.recv() => Some(reply),
        };
        notifier.reloading();
        let out = reload_gateway(&mut gw, path);
        report(&out, out.reloaded && gw.tls.is_some());
        notifier.ready("reloaded");
        if let Some(reply) = reply {
            let _ = reply.send(out);
        }
    }
    notifier.stopping();
    println!("sipwire: shutting down");
    if let Some(w) = watchdog {
        w.abort();
    }
    admin.abort();
    let _ = std::fs::remove_file(admin::socket_path(&cfg.state.dir));
    // A second SIGTERM (or Ctrl-C) during the drain stops at once: the operator asked twice.
    let left = tokio::select! {
        left = gw.shutdown() => Some(left),
        _ = term.recv() => None,
        _ = tokio::signal::ctrl_c() => None,
    };
    match left {
        None => println!("sipwire: second signal, stopping without waiting for the drain"),
        Some(0) => println!("sipwire: every transaction finished"),
        Some(left) => println!("sipwire: {left} transactions unfinished after the drain"),
    }
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
