//! systemd service notifications (`Type=notify`, sd_notify(3)) without libsystemd: one
//! datagram per state change to the unix socket named by `NOTIFY_SOCKET` (a path, or an
//! abstract name written `@name`), and `WATCHDOG=1` every half `WATCHDOG_USEC` when the
//! service has `WatchdogSec=`. Without `NOTIFY_SOCKET` every call does nothing, so the
//! gateway runs the same outside systemd.

use std::ffi::OsStr;
use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// The socket variable.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
/// The watchdog period variable (microseconds).
pub const WATCHDOG_USEC: &str = "WATCHDOG_USEC";
/// The process the watchdog period is meant for.
pub const WATCHDOG_PID: &str = "WATCHDOG_PID";

/// Errors in the notification settings.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// `NOTIFY_SOCKET` names neither a path nor an abstract socket.
    #[error("{NOTIFY_SOCKET}={0:?}: expected an absolute path or @abstract-name")]
    Address(String),
    /// The address or the socket could not be made.
    #[error("{NOTIFY_SOCKET}: {0}")]
    Io(#[from] io::Error),
}

/// Where notifications go; does nothing when not under systemd.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

/// The socket address `value` of `NOTIFY_SOCKET` names.
fn address(value: &OsStr) -> Result<SocketAddr, NotifyError> {
    use std::os::unix::ffi::OsStrExt as _;
    let bytes = value.as_bytes();
    match bytes.first() {
        Some(b'/') => Ok(SocketAddr::from_pathname(value)?),
        Some(b'@') => abstract_address(&bytes[1..]),
        _ => Err(NotifyError::Address(value.to_string_lossy().into_owned())),
    }
}

#[cfg(target_os = "linux")]
fn abstract_address(name: &[u8]) -> Result<SocketAddr, NotifyError> {
    use std::os::linux::net::SocketAddrExt as _;
    Ok(SocketAddr::from_abstract_name(name)?)
}

#[cfg(not(target_os = "linux"))]
fn abstract_address(name: &[u8]) -> Result<SocketAddr, NotifyError> {
    Err(NotifyError::Address(format!(
        "@{}",
        String::from_utf8_lossy(name)
    )))
}

impl Notifier {
    /// A notifier that does nothing.
    pub fn disabled() -> Notifier {
        Notifier { target: None }
    }

    /// A notifier sending to the socket `NOTIFY_SOCKET` names (disabled if unset).
    pub fn from_env() -> Result<Notifier, NotifyError> {
        match std::env::var_os(NOTIFY_SOCKET) {
            Some(v) if !v.is_empty() => Notifier::to(&v),
            _ => Ok(Notifier::disabled()),
        }
    }

    /// A notifier sending to `socket` (a `NOTIFY_SOCKET` value).
    pub fn to(socket: &OsStr) -> Result<Notifier, NotifyError> {
        let addr = address(socket)?;
        let sock = UnixDatagram::unbound()?;
        Ok(Notifier {
            target: Some((sock, addr)),
        })
    }

    /// Whether notifications are sent.
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends `state` (newline-separated `KEY=value` assignments). A lost notification is
    /// logged, not fatal: systemd then times the service out, which says more than a
    /// gateway refusing to serve.
    pub fn send(&self, state: &str) {
        if let Some((sock, addr)) = &self.target {
            if let Err(e) = sock.send_to_addr(state.as_bytes(), addr) {
                tracing::warn!(error = %e, state, "systemd notification not sent");
            }
        }
    }

    /// Start-up is complete: every listener is bound.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// A configuration reload begins.
    pub fn reloading(&self) {
        self.send("RELOADING=1\nSTATUS=reloading");
    }

    /// A graceful stop begins.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping");
    }

    /// The process is alive (watchdog keep-alive).
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }
}

/// How often to send `WATCHDOG=1`: half the `WATCHDOG_USEC` period, if it is set and
/// meant for this process (`WATCHDOG_PID` unset or equal to `own_pid`).
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok() != Some(own_pid) {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2).max(Duration::from_millis(1)))
}

/// [`watchdog_interval`] from the environment.
pub fn watchdog_interval_from_env() -> Option<Duration> {
    let usec = std::env::var(WATCHDOG_USEC).ok();
    let pid = std::env::var(WATCHDOG_PID).ok();
    watchdog_interval(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// Sends `WATCHDOG=1` every `interval` until the task is aborted. It runs on the
/// gateway's runtime, so a stuck runtime stops the keep-alives and systemd restarts it.
pub fn spawn_watchdog(
    notifier: std::sync::Arc<Notifier>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            notifier.watchdog();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_interval_is_half_the_period_for_this_process() {
        let half = Some(Duration::from_secs(15));
        assert_eq!(watchdog_interval(Some("30000000"), None, 7), half);
        assert_eq!(watchdog_interval(Some("30000000"), Some("7"), 7), half);
        assert_eq!(watchdog_interval(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("x"), None, 7), None);
        assert_eq!(watchdog_interval(None, Some("7"), 7), None);
    }

    #[test]
    fn addresses() {
        assert!(address(OsStr::new("/run/systemd/notify")).is_ok());
        assert!(matches!(
            address(OsStr::new("vsock:2:1234")),
            Err(NotifyError::Address(_))
        ));
        assert!(matches!(
            address(OsStr::new("")),
            Err(NotifyError::Address(_))
        ));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("sipwire-notify-unit-{}", std::process::id());
        let rx = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
        let n = Notifier::to(OsStr::new(&format!("@{name}"))).unwrap();
        n.ready("ok");
        let mut buf = [0u8; 256];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=ok");
        assert!(!Notifier::disabled().is_enabled());
    }
}
