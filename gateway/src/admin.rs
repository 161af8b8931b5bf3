//! The admin endpoint of `sipwire run`: a unix socket `admin.sock` in the state directory
//! (mode 0600), one request per connection. The client writes a command line, the gateway
//! answers JSON and closes. Commands: `alias-table` (the RFC 5923 alias tables and counters).

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use sipwire::alias::{AliasCounters, TableDump};
use sipwire::endpoint::ReuseEndpoint;

/// File name of the socket inside the state directory.
pub const ADMIN_SOCKET: &str = "admin.sock";

/// Longest command line accepted.
const MAX_COMMAND: u64 = 256;

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

/// The socket path for a state directory.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(ADMIN_SOCKET)
}

/// Binds the admin socket (replacing a stale one) and serves it until the task is aborted.
pub fn serve(
    state_dir: &Path,
    endpoint: ReuseEndpoint,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
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
            let ep = endpoint.clone();
            tokio::spawn(async move {
                let r = tokio::time::timeout(std::time::Duration::from_secs(5), answer(stream, ep));
                if let Ok(Err(e)) = r.await {
                    tracing::debug!(error = %e, "admin request failed");
                }
            });
        }
    }))
}

async fn answer(stream: UnixStream, endpoint: ReuseEndpoint) -> std::io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut line = String::new();
    BufReader::new(rd.take(MAX_COMMAND))
        .read_line(&mut line)
        .await?;
    let body = match line.trim() {
        "alias-table" => serde_json::to_vec_pretty(&AliasTableReport::of(&endpoint))
            .map_err(std::io::Error::other)?,
        other => serde_json::to_vec(
            &serde_json::json!({ "error": format!("unknown command {other:?}") }),
        )
        .map_err(std::io::Error::other)?,
    };
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
