//! The admin endpoint of `sipwire run`: a unix socket `admin.sock` in the state directory
//! (mode 0600), one request per connection. The client writes a command line, the gateway
//! answers JSON and closes. Commands:
//!
//! - `alias-table`: the RFC 5923 alias tables and counters;
//! - `reload`: re-read the configuration file (as SIGHUP does) and say what changed;
//! - `log-level [DIRECTIVES]`: show, or replace, the log filter (EnvFilter syntax).

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use sipwire::alias::{AliasCounters, TableDump};
use sipwire::endpoint::ReuseEndpoint;

use crate::endpoint_slot::EndpointSlot;
use crate::logging::LogControl;
use crate::reload::ReloadOutcome;

/// File name of the socket inside the state directory.
pub const ADMIN_SOCKET: &str = "admin.sock";

/// The commands, for the error answer to an unknown one.
pub const COMMANDS: [&str; 5] = [
    "alias-table",
    "flows",
    "transactions",
    "reload",
    "log-level [DIRECTIVES]",
];

/// Longest command line accepted.
const MAX_COMMAND: u64 = 4096;

/// How long one request may take (a reload loads every certificate file).
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The answer to `alias-table`.
#[derive(Debug, Clone, Serialize)]
pub struct AliasTableReport {
    /// Counters of every table.
    pub counters: AliasCounters,
    /// Every local domain's table.
    pub tables: Vec<TableDump>,
}

impl AliasTableReport {
    /// A snapshot of `endpoint`'s tables.
    pub fn of(endpoint: &ReuseEndpoint) -> AliasTableReport {
        AliasTableReport {
            counters: endpoint.counters(),
            tables: endpoint.dump(),
        }
    }
}

/// A reload request: the main loop of `sipwire run` performs it and answers.
pub type ReloadRequest = oneshot::Sender<ReloadOutcome>;

/// What the admin commands act on.
#[derive(Clone, Debug)]
pub struct Handlers {
    reuse: EndpointSlot,
    log: Option<LogControl>,
    reload: Option<mpsc::Sender<ReloadRequest>>,
    transactions: Option<crate::relay::Snapshots>,
}

impl Handlers {
    /// Handlers for `reuse`; `reload` and `log-level` answer an error until given theirs.
    pub fn new(reuse: EndpointSlot) -> Handlers {
        Handlers {
            reuse,
            log: None,
            reload: None,
            transactions: None,
        }
    }

    /// `log-level` changes this filter.
    pub fn with_log(mut self, log: Option<LogControl>) -> Handlers {
        self.log = log;
        self
    }

    /// `transactions` asks this relay.
    pub fn with_transactions(mut self, relay: crate::relay::Snapshots) -> Handlers {
        self.transactions = Some(relay);
        self
    }

    /// `reload` asks this channel.
    pub fn with_reload(mut self, reload: mpsc::Sender<ReloadRequest>) -> Handlers {
        self.reload = Some(reload);
        self
    }
}

impl From<ReuseEndpoint> for Handlers {
    fn from(endpoint: ReuseEndpoint) -> Self {
        Handlers::new(EndpointSlot::new(endpoint))
    }
}

/// The socket path for a state directory.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(ADMIN_SOCKET)
}

/// Binds the admin socket (replacing a stale one) and serves it until the task is aborted.
pub fn serve(
    state_dir: &Path,
    handlers: impl Into<Handlers>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let handlers = handlers.into();
    let path = socket_path(state_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(&path)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let h = handlers.clone();
            tokio::spawn(async move {
                let r = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, h));
                if let Ok(Err(e)) = r.await {
                    tracing::debug!(error = %e, "admin request failed");
                }
            });
        }
    }))
}

/// The answer to `flows`: the transport's counts and every open flow (TCP and TLS
/// connections, SCTP associations, remembered UDP peers).
fn flows_report(t: &sipwire::Transport) -> serde_json::Value {
    let s = t.stats();
    let flows: Vec<serde_json::Value> = t
        .flows()
        .into_iter()
        .map(|i| {
            serde_json::json!({
                "flow": i.flow.to_string(),
                "transport": i.flow.kind().as_str(),
                "direction": i.direction.as_str(),
                "local": i.local.to_string(),
                "peer": i.peer.to_string(),
                "identities": &*i.identities,
                "server_name": i.server_name.as_deref(),
            })
        })
        .collect();
    let l = t.limits();
    let udp_sockets: Vec<serde_json::Value> = t
        .udp_sockets()
        .into_iter()
        .map(|u| {
            serde_json::json!({
                "local": u.local.to_string(),
                "recv_buffer": u.recv_buffer,
                "send_buffer": u.send_buffer,
                "kernel_drops": u.kernel_drops,
            })
        })
        .collect();
    serde_json::json!({
        "stats": {
            "stream_flows": s.stream_flows,
            "udp_flows": s.udp_flows,
            "sctp_associations": s.sctp_associations,
            "opened_inbound": s.opened_inbound,
            "opened_outbound": s.opened_outbound,
            "admitted": s.admitted,
        },
        // The limits in force (a reload may have changed them).
        "limits": {
            "max_connections": l.max_connections,
            "max_connections_per_ip": l.max_connections_per_ip,
            "max_udp_flows": l.max_udp_flows,
            "write_queue_bytes": l.write_queue_bytes,
            "max_message": l.message.max_message_bytes,
            "max_headers": l.message.max_header_bytes,
            "idle_timeout_secs": l.idle_timeout.as_secs(),
            "header_timeout_secs": l.header_timeout.as_secs(),
            "keepalive_interval_secs": l.keepalive_interval.map_or(0, |d| d.as_secs()),
            "connect_timeout_secs": l.connect_timeout.as_secs(),
        },
        "udp_sockets": udp_sockets,
        "flows": flows,
    })
}

fn error(message: String) -> serde_json::Value {
    serde_json::json!({ "error": message })
}

async fn execute(line: &str, h: &Handlers) -> serde_json::Value {
    let (command, arg) = match line.split_once(char::is_whitespace) {
        Some((c, a)) => (c, a.trim()),
        None => (line, ""),
    };
    match (command, arg) {
        ("alias-table", "") => serde_json::to_value(AliasTableReport::of(&h.reuse.get()))
            .unwrap_or_else(|e| error(e.to_string())),
        ("flows", "") => flows_report(h.reuse.get().transport()),
        ("transactions", "") => {
            let Some(relay) = &h.transactions else {
                return error("transactions is not available here".to_owned());
            };
            match relay.get().await {
                Some(list) => serde_json::json!({
                    "in_flight": list.iter().filter(|t| !t.final_sent).count(),
                    "transactions": list,
                }),
                None => error("the relay has stopped".to_owned()),
            }
        }
        ("reload", "") => {
            let Some(tx) = &h.reload else {
                return error("reload is not available here".to_owned());
            };
            let (reply, answer) = oneshot::channel();
            if tx.send(reply).await.is_err() {
                return error("the gateway is stopping".to_owned());
            }
            match answer.await {
                Ok(outcome) => {
                    serde_json::to_value(outcome).unwrap_or_else(|e| error(e.to_string()))
                }
                Err(_) => error("the gateway is stopping".to_owned()),
            }
        }
        ("log-level", directives) => {
            let Some(log) = &h.log else {
                return error("log-level is not available here".to_owned());
            };
            if directives.is_empty() {
                return serde_json::json!({ "filter": log.current() });
            }
            match log.set(directives) {
                Ok(filter) => {
                    tracing::info!(%filter, "log filter changed");
                    serde_json::json!({ "filter": filter })
                }
                Err(e) => error(e.to_string()),
            }
        }
        _ => serde_json::json!({
            "error": format!("unknown command {line:?}"),
            "commands": COMMANDS,
        }),
    }
}

async fn answer(stream: UnixStream, h: Handlers) -> std::io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut line = String::new();
    BufReader::new(rd.take(MAX_COMMAND))
        .read_line(&mut line)
        .await?;
    let value = execute(line.trim(), &h).await;
    let body = serde_json::to_vec_pretty(&value).map_err(std::io::Error::other)?;
    wr.write_all(&body).await?;
    wr.write_all(b"\n").await?;
    wr.shutdown().await
}

/// Client side: sends `command` to the admin socket of `state_dir` and returns the answer.
pub async fn query(state_dir: &Path, command: &str) -> std::io::Result<String> {
    let path = socket_path(state_dir);
    let mut s = UnixStream::connect(&path).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("{}: {e} (is `sipwire run` running?)", path.display()),
        )
    })?;
    s.write_all(command.as_bytes()).await?;
    s.write_all(b"\n").await?;
    let mut out = String::new();
    s.take(64 << 20).read_to_string(&mut out).await?;
    Ok(out)
}
