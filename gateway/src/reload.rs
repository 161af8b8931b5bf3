//! What a configuration reload may change in a running gateway. Pure: compares the
//! running configuration with a new, valid one and says what to apply and what needs a
//! restart.
//!
//! Applied without dropping a flow: certificate and key files (listener `cert`/`key`,
//! `[[tls.domains]]`, `[tls] client_cert`/`client_key`), swapped into the TLS resolvers for
//! the next handshakes; and `[alias]`, which replaces the reuse endpoint (its alias rows
//! start empty and are learnt again from the peers' next requests — rows accepted under
//! the old policy must not outlive it); `[flood]`, which replaces the transport's
//! flood limiter (every source starts afresh); and `[limits]` but its socket buffers, which
//! the transport swaps in ([`sipwire::Transport::set_limits`]: open flows take the new
//! timers, connection counts apply to new connections, none is closed). Everything else is
//! fixed once bound or built: listeners (sockets), the `[limits]` socket buffers (set when a
//! socket binds), the TLS trust anchors, ALPN
//! and client-certificate policy (in each listener's rustls configuration), `[state]`
//! (the admin socket), `[metrics]` (the process-wide recorder) and `[capture]` (the
//! transport's capture sink). A change there is reported as needing a restart, and the
//! running value stays.

use serde::{Deserialize, Serialize};

use super::config::{
    AliasSection, Config, LimitsSection, ListenerConfig, MetricsSection, ProxySection, SctpSection,
    StateSection, TlsSection,
};

/// The outcome of comparing the running configuration with a new one.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The configuration to run from now on: the running one with the changeable parts of
    /// the new one.
    pub effective: Config,
    /// Whether `[alias]` changed (the reuse endpoint is replaced).
    pub alias_changed: bool,
    /// Whether `[flood]` changed (the limiter is replaced, its counters start over).
    pub flood_changed: bool,
    /// Whether the run-time part of `[limits]` changed (the transport takes the new limits,
    /// the shutdown drain its new length).
    pub limits_changed: bool,
    /// Whether `[[route]]` or the run-time part of `[proxy]` changed (the relay takes the
    /// new routes for requests that arrive from now on).
    pub relay_changed: bool,
    /// What changes, one phrase each.
    pub applied: Vec<String>,
    /// What changed in the file but needs a restart, one phrase each.
    pub needs_restart: Vec<String>,
}

/// What a reload did, as logged and as the admin call `reload` answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadOutcome {
    /// True when the new configuration (or the certificates) is in force.
    pub reloaded: bool,
    /// The file read, if the gateway runs from one (else only certificates reload).
    pub config: Option<String>,
    /// What changed, one phrase each.
    pub applied: Vec<String>,
    /// What changed in the file but needs a restart (the running value stays).
    pub needs_restart: Vec<String>,
    /// Why the reload was refused (the old configuration stays), one line each.
    pub errors: Vec<String>,
}

/// The fields of `$a` and `$b` (of type `$ty`) that differ, as `"$section field"`. The
/// destructuring fails to compile when a field is added and not listed here.
macro_rules! changed_fields {
    ($a:expr, $b:expr, $section:literal, $ty:ident { $($field:ident),* $(,)? }) => {{
        let $ty { $($field: _),* } = $a;
        let mut v: Vec<String> = Vec::new();
        $(
            if $a.$field != $b.$field {
                v.push(format!("{} {}", $section, stringify!($field)));
            }
        )*
        v
    }};
}

/// A listener without its certificate files: what binding it depends on.
fn socket_part(l: &ListenerConfig) -> ListenerConfig {
    ListenerConfig {
        cert: None,
        key: None,
        ..l.clone()
    }
}

fn listener_changes(old: &[ListenerConfig], new: &[ListenerConfig]) -> Vec<String> {
    let mut out = Vec::new();
    for o in old {
        match new.iter().find(|n| n.name == o.name) {
            None => out.push(format!("listener {} removed", o.name)),
            Some(n) if socket_part(n) != socket_part(o) => {
                let ListenerConfig {
                    name: _,
                    transport: _,
                    addr: _,
                    extra_addrs: _,
                    domain: _,
                    cert: _,
                    key: _,
                    client_cert: _,
                    optional: _,
                    advertise: _,
                    network: _,
                } = o;
                let mut what = Vec::new();
                if n.transport != o.transport {
                    what.push("transport");
                }
                if n.addr != o.addr {
                    what.push("addr");
                }
                if n.extra_addrs != o.extra_addrs {
                    what.push("extra_addrs");
                }
                if n.domain != o.domain {
                    what.push("domain");
                }
                if n.client_cert != o.client_cert {
                    what.push("client_cert");
                }
                if n.optional != o.optional {
                    what.push("optional");
                }
                if n.advertise != o.advertise {
                    what.push("advertise");
                }
                if n.network != o.network {
                    what.push("network");
                }
                out.push(format!("listener {} {}", o.name, what.join(", ")));
            }
            Some(_) => {}
        }
    }
    for n in new {
        if !old.iter().any(|o| o.name == n.name) {
            out.push(format!("listener {} added", n.name));
        }
    }
    out
}

/// `[[route]]` and `[proxy]` record_route, max_forwards, stateful and local_names apply to
/// new requests; the timers and the DNS server are built into the running relay.
fn relay_changes(
    old: &Config,
    new: &Config,
    effective: &mut Config,
    applied: &mut Vec<String>,
    needs_restart: &mut Vec<String>,
) -> bool {
    let mut changed = false;
    if new.routes != old.routes {
        applied.push(format!("[[route]] ({} routes)", new.routes.len()));
        effective.routes = new.routes.clone();
        changed = true;
    }
    let (o, n) = (&old.proxy, &new.proxy);
    let fields = changed_fields!(
        o,
        n,
        "[proxy]",
        ProxySection {
            stateful,
            record_route,
            max_forwards,
            t1_ms,
            t2_ms,
            t4_ms,
            name_server,
            local_names,
            best_effort_tls,
            workers,
        }
    );
    for f in fields {
        let live = [
            "stateful",
            "record_route",
            "max_forwards",
            "local_names",
            "best_effort_tls",
        ]
        .iter()
        .any(|k| f.ends_with(k));
        if live {
            applied.push(f);
            changed = true;
        } else if f.ends_with("workers") {
            needs_restart.push(format!("{f} (cores and threads are made at start)"));
        } else {
            needs_restart.push(f);
        }
    }
    if changed {
        let p = &mut effective.proxy;
        p.stateful = n.stateful;
        p.record_route = n.record_route;
        p.max_forwards = n.max_forwards;
        p.local_names = n.local_names.clone();
        p.best_effort_tls = n.best_effort_tls;
    }
    changed
}

/// The `[limits]` fields fixed once a socket is bound: its buffers.
const SOCKET_BUFFERS: [&str; 4] = [
    "udp_recv_buffer_bytes",
    "udp_send_buffer_bytes",
    "tcp_recv_buffer_bytes",
    "tcp_send_buffer_bytes",
];

/// `[limits]` applies at run time (the transport swaps its limits; open flows stay) except
/// the socket buffers, set on each socket when it binds.
fn limits_changes(
    old: &Config,
    new: &Config,
    effective: &mut Config,
    applied: &mut Vec<String>,
    needs_restart: &mut Vec<String>,
) -> bool {
    let (o, n) = (&old.limits, &new.limits);
    let fields = changed_fields!(
        o,
        n,
        "[limits]",
        LimitsSection {
            max_message,
            max_headers,
            max_connections,
            max_connections_per_ip,
            write_queue_bytes,
            idle_timeout_secs,
            header_timeout_secs,
            keepalive_interval_secs,
            max_udp_flows,
            connect_timeout_secs,
            shutdown_drain_ms,
            udp_recv_buffer_bytes,
            udp_send_buffer_bytes,
            tcp_recv_buffer_bytes,
            tcp_send_buffer_bytes,
        }
    );
    let mut changed = false;
    for f in fields {
        if SOCKET_BUFFERS.iter().any(|b| f.ends_with(b)) {
            needs_restart.push(format!("{f} (set when a socket binds)"));
        } else {
            applied.push(f);
            changed = true;
        }
    }
    if changed {
        effective.limits = LimitsSection {
            udp_recv_buffer_bytes: o.udp_recv_buffer_bytes,
            udp_send_buffer_bytes: o.udp_send_buffer_bytes,
            tcp_recv_buffer_bytes: o.tcp_recv_buffer_bytes,
            tcp_send_buffer_bytes: o.tcp_send_buffer_bytes,
            ..n.clone()
        };
    }
    changed
}

/// Compares the running configuration `old` with the new, valid `new`.
pub fn plan(old: &Config, new: &Config) -> Plan {
    let mut effective = old.clone();
    let mut applied = Vec::new();
    let mut needs_restart = listener_changes(&old.listeners, &new.listeners);

    for l in &mut effective.listeners {
        if let Some(n) = new.listeners.iter().find(|n| n.name == l.name) {
            if (&n.cert, &n.key) != (&l.cert, &l.key) {
                applied.push(format!("listener {} cert/key files", l.name));
                l.cert = n.cert.clone();
                l.key = n.key.clone();
            }
        }
    }
    if new.tls.domains != old.tls.domains {
        applied.push("[[tls.domains]]".to_owned());
        effective.tls.domains = new.tls.domains.clone();
    }
    if (&new.tls.client_cert, &new.tls.client_key) != (&old.tls.client_cert, &old.tls.client_key) {
        applied.push("[tls] client_cert/client_key".to_owned());
        effective.tls.client_cert = new.tls.client_cert.clone();
        effective.tls.client_key = new.tls.client_key.clone();
    }
    // The certificate files were taken above; the rest of [tls] is built into the
    // listeners' rustls configurations.
    let files_cleared = |t: &TlsSection| TlsSection {
        domains: Vec::new(),
        client_cert: None,
        client_key: None,
        ..t.clone()
    };
    let (o, n) = (files_cleared(&old.tls), files_cleared(&new.tls));
    needs_restart.extend(changed_fields!(
        o,
        n,
        "[tls]",
        TlsSection {
            dev_ca,
            ca_files,
            alpn,
            alpn_policy,
            keylog,
            domains,
            client_cert,
            client_key,
        }
    ));

    let limits_changed = limits_changes(old, new, &mut effective, &mut applied, &mut needs_restart);
    let (o, n) = (&old.sctp, &new.sctp);
    needs_restart.extend(changed_fields!(
        o,
        n,
        "[sctp]",
        SctpSection {
            streams,
            max_inbound_streams,
            stream_policy,
            rto_initial_ms,
            rto_min_ms,
            rto_max_ms,
            heartbeat_interval_ms,
            path_max_retrans,
            assoc_max_retrans,
            recv_buffer,
            send_buffer,
            max_associations,
            dtls_via_token,
        }
    ));
    let (o, n) = (&old.state, &new.state);
    needs_restart.extend(changed_fields!(o, n, "[state]", StateSection { dir }));
    let (o, n) = (&old.metrics, &new.metrics);
    needs_restart.extend(changed_fields!(
        o,
        n,
        "[metrics]",
        MetricsSection { prometheus }
    ));

    if new.capture != old.capture {
        // The sink is part of the transport's settings.
        needs_restart.push("[capture]".to_owned());
    }

    let flood_changed = new.flood != old.flood;
    if flood_changed {
        applied.push(match (&old.flood, &new.flood) {
            (None, Some(_)) => "[flood] on".to_owned(),
            (Some(_), None) => "[flood] off".to_owned(),
            _ => "[flood] limits (sources start afresh)".to_owned(),
        });
        effective.flood = new.flood.clone();
    }

    let relay_changed = relay_changes(old, new, &mut effective, &mut applied, &mut needs_restart);
    let alias_changed = new.alias != old.alias;
    if alias_changed {
        let (o, n) = (&old.alias, &new.alias);
        applied.extend(changed_fields!(
            o,
            n,
            "[alias]",
            AliasSection {
                add_alias,
                accept,
                refuse_peers,
                max_rows_per_table,
            }
        ));
        effective.alias = new.alias.clone();
    }
    Plan {
        effective,
        alias_changed,
        flood_changed,
        limits_changed,
        relay_changed,
        applied,
        needs_restart,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[[listener]]\nname = 't'\ntransport = 'tcp'\naddr = '127.0.0.1:5060'\n\
         [[listener]]\nname = 's'\ntransport = 'tls'\naddr = '127.0.0.1:5061'\n\
         cert = 'a.pem'\nkey = 'a.key'\n";

    fn cfg(extra: &str) -> Config {
        Config::parse(&format!("{BASE}{extra}")).expect("valid")
    }

    #[test]
    fn nothing_changed() {
        let p = plan(&cfg(""), &cfg(""));
        assert_eq!(p.effective, cfg(""));
        assert!(p.applied.is_empty() && p.needs_restart.is_empty());
        assert!(!p.alias_changed);
        assert!(!p.flood_changed);
        assert!(!p.limits_changed);
    }

    #[test]
    fn limits_apply_but_socket_buffers_need_a_restart() {
        let old = cfg("[limits]\nudp_recv_buffer_bytes = 1000\n");
        let new = cfg(
            "[limits]\nmax_connections_per_ip = 2\nidle_timeout_secs = 40\n\
             shutdown_drain_ms = 100\nudp_recv_buffer_bytes = 4000000\n",
        );
        let p = plan(&old, &new);
        assert!(p.limits_changed);
        assert_eq!(
            p.applied,
            [
                "[limits] max_connections_per_ip",
                "[limits] idle_timeout_secs",
                "[limits] shutdown_drain_ms"
            ]
        );
        assert_eq!(
            p.needs_restart,
            ["[limits] udp_recv_buffer_bytes (set when a socket binds)"]
        );
        let l = &p.effective.limits;
        assert_eq!((l.max_connections_per_ip, l.idle_timeout_secs), (2, 40));
        assert_eq!(l.udp_recv_buffer_bytes, 1000, "the running value stays");

        // Only a buffer: nothing for the transport to do.
        let p = plan(&old, &cfg("[limits]\ntcp_send_buffer_bytes = 1\n"));
        assert!(!p.limits_changed && p.applied.is_empty());
        assert_eq!(p.effective, old);
    }

    #[test]
    fn proxy_workers_need_a_restart() {
        let old = cfg("");
        let p = plan(&old, &cfg("[proxy]\nworkers = 2\n"));
        assert_eq!(
            p.needs_restart,
            ["[proxy] workers (cores and threads are made at start)"]
        );
        assert!(p.applied.is_empty() && !p.relay_changed);
        assert_eq!(p.effective.proxy.workers, 1, "the running value stays");
    }

    #[test]
    fn flood_applies() {
        let old = cfg("");
        let on = cfg("[flood]\nrequests_per_second = 5\n");
        let p = plan(&old, &on);
        assert_eq!(p.applied, ["[flood] on"]);
        assert!(p.flood_changed && p.needs_restart.is_empty());
        assert_eq!(p.effective, on);
        let p = plan(&on, &cfg("[flood]\nrequests_per_second = 6\n"));
        assert_eq!(p.applied, ["[flood] limits (sources start afresh)"]);
        assert_eq!(plan(&on, &old).applied, ["[flood] off"]);
        assert!(!p.relay_changed);
    }

    #[test]
    fn routes_and_proxy_options_apply_timers_need_a_restart() {
        let old = cfg("");
        let new = cfg("[proxy]
record_route = false
t1_ms = 100
             [[route]]
domain = 'example.net'
             [[route.target]]
transport = 'tcp'
address = '10.0.0.1:5060'
");
        let p = plan(&old, &new);
        assert!(p.relay_changed);
        assert_eq!(p.applied, ["[[route]] (1 routes)", "[proxy] record_route"]);
        assert_eq!(p.needs_restart, ["[proxy] t1_ms"]);
        assert_eq!(p.effective.routes, new.routes);
        assert!(!p.effective.proxy.record_route);
        assert_eq!(p.effective.proxy.t1_ms, 500);
    }

    #[test]
    fn certificates_and_alias_apply() {
        let old = cfg("");
        let new = Config::parse(
            &(BASE.replace("a.pem", "b.pem").replace("a.key", "b.key")
                + "[[tls.domains]]\nname = 'example.com'\ncert = 'e.pem'\nkey = 'e.key'\n\
                   [alias]\naccept = false\n"),
        )
        .expect("valid");
        let p = plan(&old, &new);
        assert_eq!(
            p.applied,
            [
                "listener s cert/key files",
                "[[tls.domains]]",
                "[alias] accept"
            ]
        );
        assert!(p.needs_restart.is_empty(), "{:?}", p.needs_restart);
        assert!(p.alias_changed);
        assert_eq!(p.effective, new);
    }

    #[test]
    fn sockets_limits_and_trust_need_a_restart_and_keep_running_values() {
        let old = cfg("");
        let new = Config::parse(
            &(BASE.replace("127.0.0.1:5061", "127.0.0.1:5071")
                + "[[listener]]\nname = 'u'\ntransport = 'udp'\naddr = '127.0.0.1:5060'\n\
                   [tls]\nca_files = ['ca.pem']\n[limits]\ntcp_recv_buffer_bytes = 900\n\
                   [metrics]\nprometheus = '127.0.0.1:9100'\n\
                   [capture]\ncollector = '127.0.0.1:9060'\n"),
        )
        .expect("valid");
        let p = plan(&old, &new);
        assert_eq!(
            p.needs_restart,
            [
                "listener s addr",
                "listener u added",
                "[tls] ca_files",
                "[limits] tcp_recv_buffer_bytes (set when a socket binds)",
                "[metrics] prometheus",
                "[capture]"
            ]
        );
        assert!(p.applied.is_empty());
        assert_eq!(p.effective, old);
    }
}
