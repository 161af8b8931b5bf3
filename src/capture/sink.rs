//! The capture sink: SIP messages mirrored by the transport go into a bounded queue (a count
//! and a byte bound) without waiting, and one task encodes them as HEP v3 and sends them to
//! the collector. A full queue or a collector that is down loses captures, counted in
//! [`DROPPED`], never time on the SIP path.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use metrics::counter;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc::{self, error::TrySendError};

use super::backoff::Backoff;
use super::call_id::call_id;
use super::hep::{self, Hep, IpProtocol};
use crate::TransportKind;

/// Counter: captures lost, by reason: `queue_full` (message bound), `queue_bytes` (byte
/// bound), `too_large` (over a HEP packet's 65535 bytes), `collector_down` (TCP collector
/// not connected, waiting to reconnect), `send_failed` (the collector socket refused the
/// packet), `stopped` (the sink's task is gone).
pub const DROPPED: &str = "sipwire_capture_dropped_total";
/// Counter: HEP packets handed to the collector socket.
pub const SENT: &str = "sipwire_capture_sent_total";

/// A TCP collector is given this long to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A HEP packet must be written to a TCP collector within this time, else the connection
/// is dropped and dialled again.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnect delays to a TCP collector: from the first to the longest.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// How HEP packets reach the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectorTransport {
    /// One datagram per packet (what Homer, heplify-server and sngrep listen on by default).
    Udp,
    /// Packets back to back on one connection, dialled again with backoff when lost.
    Tcp,
}

/// Where and how to mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureConfig {
    /// The collector's address.
    pub collector: SocketAddr,
    /// UDP or TCP.
    pub transport: CollectorTransport,
    /// The capture agent id written in every packet.
    pub capture_id: u32,
    /// The collector's password (HEP auth key chunk), if it asks for one.
    pub auth_key: Option<String>,
    /// Messages queued at most.
    pub queue_messages: usize,
    /// Message bytes queued at most.
    pub queue_bytes: usize,
}

impl CaptureConfig {
    /// A collector with capture id 1, no auth key, and a queue of 10 000 messages / 16 MiB.
    pub fn new(collector: SocketAddr, transport: CollectorTransport) -> CaptureConfig {
        CaptureConfig {
            collector,
            transport,
            capture_id: 1,
            auth_key: None,
            queue_messages: 10_000,
            queue_bytes: 16 << 20,
        }
    }
}

/// The sink could not be started.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The UDP socket towards the collector could not be opened.
    #[error("capture socket towards collector {collector}: {source}")]
    Socket {
        /// The collector.
        collector: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// One mirrored message, waiting in the queue.
struct Record {
    kind: TransportKind,
    source: SocketAddr,
    destination: SocketAddr,
    /// Since the Unix epoch.
    time: Duration,
    message: Bytes,
}

/// What the handles and the task share.
struct Shared {
    queued_bytes: AtomicUsize,
    max_bytes: usize,
    dropped: AtomicU64,
}

impl Shared {
    fn drop_one(&self, reason: &'static str) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        counter!(DROPPED, "reason" => reason).increment(1);
    }
}

/// The handle the transport mirrors messages through. Cheap to clone; the sink's task ends
/// once every handle is gone and the queue is drained.
#[derive(Clone)]
pub struct Capture {
    tx: mpsc::Sender<Record>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field(
                "queued_bytes",
                &self.shared.queued_bytes.load(Ordering::Relaxed),
            )
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl Capture {
    /// Opens the way to the collector (a TCP collector is dialled by the task, on the first
    /// message) and spawns the task. Must be called inside a tokio runtime.
    pub fn start(cfg: CaptureConfig) -> Result<Capture, CaptureError> {
        let link =
            match cfg.transport {
                CollectorTransport::Udp => Link::Udp(udp_socket(cfg.collector).map_err(
                    |source| CaptureError::Socket {
                        collector: cfg.collector,
                        source,
                    },
                )?),
                CollectorTransport::Tcp => Link::Tcp {
                    collector: cfg.collector,
                    stream: None,
                    backoff: Backoff::new(BACKOFF_MIN, BACKOFF_MAX),
                },
            };
        let (tx, rx) = mpsc::channel(cfg.queue_messages.max(1));
        let shared = Arc::new(Shared {
            queued_bytes: AtomicUsize::new(0),
            max_bytes: cfg.queue_bytes,
            dropped: AtomicU64::new(0),
        });
        tokio::spawn(drain(rx, Arc::clone(&shared), cfg, link));
        Ok(Capture { tx, shared })
    }

    /// Mirrors one SIP message sent from `source` to `destination` over `kind`, stamped now.
    /// Never waits: when the queue is full the capture is dropped and counted.
    pub fn record(
        &self,
        kind: TransportKind,
        source: SocketAddr,
        destination: SocketAddr,
        message: Bytes,
    ) {
        let time = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let len = message.len();
        let s = &self.shared;
        if s.queued_bytes.fetch_add(len, Ordering::AcqRel) + len > s.max_bytes {
            s.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            s.drop_one("queue_bytes");
            return;
        }
        let rec = Record {
            kind,
            source,
            destination,
            time,
            message,
        };
        if let Err(e) = self.tx.try_send(rec) {
            s.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            s.drop_one(match e {
                TrySendError::Full(_) => "queue_full",
                TrySendError::Closed(_) => "stopped",
            });
        }
    }

    /// Captures lost since the start, every reason together (per reason: [`DROPPED`]).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

fn udp_socket(collector: SocketAddr) -> std::io::Result<UdpSocket> {
    let any: SocketAddr = if collector.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = std::net::UdpSocket::bind(any)?;
    s.connect(collector)?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s)
}

/// The way to the collector.
enum Link {
    Udp(UdpSocket),
    Tcp {
        collector: SocketAddr,
        stream: Option<TcpStream>,
        backoff: Backoff,
    },
}

impl Link {
    /// Sends one packet; the drop reason if it is lost.
    async fn send(&mut self, packet: &[u8]) -> Result<(), &'static str> {
        let (collector, stream, backoff) = match self {
            Link::Udp(s) => return s.send(packet).await.map(drop).map_err(|_| "send_failed"),
            Link::Tcp {
                collector,
                stream,
                backoff,
            } => (*collector, stream, backoff),
        };
        if stream.is_none() {
            if !backoff.may_try(Instant::now()) {
                return Err("collector_down");
            }
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(collector)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    backoff.connected();
                    tracing::info!(%collector, "capture: connected to the HEP collector");
                    *stream = Some(s);
                }
                Ok(Err(e)) => {
                    backoff.failed(Instant::now());
                    tracing::debug!(%collector, error = %e, "capture: collector connect failed");
                    return Err("collector_down");
                }
                Err(_) => {
                    backoff.failed(Instant::now());
                    tracing::debug!(%collector, "capture: collector connect timed out");
                    return Err("collector_down");
                }
            }
        }
        let Some(s) = stream.as_mut() else {
            return Err("collector_down");
        };
        match tokio::time::timeout(WRITE_TIMEOUT, s.write_all(packet)).await {
            Ok(Ok(())) => Ok(()),
            _ => {
                // A packet may be half written: the connection cannot carry another one.
                *stream = None;
                backoff.failed(Instant::now());
                tracing::warn!(%collector, "capture: HEP collector connection lost");
                Err("send_failed")
            }
        }
    }
}

/// The sink's task: one record at a time, encoded and sent.
async fn drain(
    mut rx: mpsc::Receiver<Record>,
    shared: Arc<Shared>,
    cfg: CaptureConfig,
    mut link: Link,
) {
    let sent = counter!(SENT);
    let auth_key = cfg.auth_key.as_deref().map(str::as_bytes);
    let mut packet = Vec::with_capacity(4096);
    while let Some(r) = rx.recv().await {
        shared
            .queued_bytes
            .fetch_sub(r.message.len(), Ordering::AcqRel);
        packet.clear();
        let hep = Hep {
            protocol: IpProtocol::of(r.kind),
            source: r.source,
            destination: r.destination,
            time: r.time,
            capture_id: cfg.capture_id,
            auth_key,
            correlation_id: call_id(&r.message),
            payload: &r.message,
        };
        if hep::encode(&hep, &mut packet).is_err() {
            shared.drop_one("too_large");
            continue;
        }
        match link.send(&packet).await {
            Ok(()) => sent.increment(1),
            Err(reason) => shared.drop_one(reason),
        }
    }
}
