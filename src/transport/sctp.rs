//! SIP over SCTP (RFC 4168) on kernel SCTP (`sipwire-sys`): the thin driver around
//! [`AssocCore`].
//!
//! One one-to-many socket per listener, bound to all of its addresses (multihoming), carries
//! every association with it; outbound associations start on a listener of the same family
//! (so that peers see our listening port) or on one outbound-only socket per family. Each
//! association is one [`Flow`] (the RFC 5923 alias descriptor).
//!
//! - One reader task per socket receives user messages and notifications: COMM_UP registers a
//!   flow (admitted against the connection limits), COMM_LOST / SHUTDOWN_COMP remove it, a
//!   peer's SHUTDOWN takes it out of the reuse index, RESTART and PEER_ADDR_CHANGE are logged
//!   and counted.
//! - Sending is direct: [`AssocSink::push`] calls a non-blocking `sendmsg` from the caller's
//!   thread (no task hop per message). Only when the socket buffer is full are messages queued
//!   (bounded in bytes, in order) for the socket's writer task, which waits for room.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use sipwire_sys::{
    AssocState, Event, InitMsg, Notification, PeerAddrParams, Received, RecvBuf, RtoInfo, SctpAuth,
    SctpEndpoint, SctpError, SctpOptions, SctpSocket, SendInfo,
};
use tokio::sync::{mpsc::error::TrySendError, oneshot, Notify};
use tracing::Instrument;

use super::config::SctpConfig;
use super::error::TransportError;
use super::flow::{Direction, Flow, FlowInfo};
use super::limits::WriteBudget;
use super::manager::{Admission, Incoming, Inner};
use super::metrics;
use super::sctp_core::{place, AssocCore, AssocEvent, Placement, StreamPolicy};
use super::sctp_dtls::{DtlsAction, DtlsAssoc, DtlsRole, DtlsSctpError, DTLS_SCTP_MAX_MESSAGE};
use super::sctp_tls::{PeerProof, TlsRole, TlsSctpError, TlsStreams};
use super::session::HandshakeError;
use super::sink::PushError;
use super::table::ReuseKey;
use crate::flood::{Limit, RequestVerdict};
use crate::{PeerIdentities, Target, TransportKind};

/// SIP's payload protocol identifier: RFC 4168 §4 leaves it 0.
const SIP_PPID: u32 = 0;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The SCTP part of a transport: its sockets and the association count.
#[derive(Debug, Default)]
pub(crate) struct SctpState {
    endpoints: Mutex<Vec<Arc<Endpoint>>>,
    /// Outbound-only sockets, made on first use (one per transport and address family).
    outbound: tokio::sync::Mutex<Vec<Arc<Endpoint>>>,
    associations: AtomicUsize,
    /// DTLS over SCTP: the client side of outbound associations.
    pub(crate) dtls_client: Mutex<Option<Arc<openssl::ssl::SslConnector>>>,
    /// DTLS over SCTP: the Via token, when not the default `DTLS-SCTP` (no RFC defines one).
    pub(crate) dtls_via: Mutex<Option<Arc<str>>>,
}

impl SctpState {
    /// Every socket's live associations' sinks (to close or abort them all).
    pub(crate) fn sockets(&self) -> Vec<Arc<Endpoint>> {
        lock(&self.endpoints).clone()
    }

    /// Associations up now.
    pub(crate) fn associations(&self) -> usize {
        self.associations.load(Ordering::Relaxed)
    }

    /// The Via token of `kind` (configurable for DTLS over SCTP only).
    pub(crate) fn via_token(&self, kind: TransportKind) -> Arc<str> {
        match (kind, lock(&self.dtls_via).as_ref()) {
            (TransportKind::DtlsSctp, Some(t)) => Arc::clone(t),
            _ => Arc::from(kind.via_token()),
        }
    }
}

/// An association being started by [`connect`], waiting for COMM_UP.
struct Connecting {
    key: ReuseKey,
    done: oneshot::Sender<Result<Flow, io::Error>>,
    /// TLS over SCTP: our client side and the name the server is verified against.
    tls: Option<TlsRole>,
    /// DTLS over SCTP: the same.
    dtls: Option<DtlsRole>,
}

/// One one-to-many socket.
pub(crate) struct Endpoint {
    sock: SctpEndpoint,
    kind: TransportKind,
    local: SocketAddr,
    policy: StreamPolicy,
    /// TLS over SCTP listeners: the server side of every stream's session.
    tls_server: Option<Arc<rustls::ServerConfig>>,
    /// DTLS over SCTP listeners: the server side of every association's connection.
    dtls_server: Option<Arc<openssl::ssl::SslAcceptor>>,
    /// Sinks with queued messages or a pending shutdown, for the writer task.
    dirty: Mutex<Vec<Arc<AssocSink>>>,
    wake: Notify,
    connecting: Mutex<HashMap<i32, Connecting>>,
    /// Live associations' sinks by association id.
    sinks: Mutex<HashMap<i32, Arc<AssocSink>>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("kind", &self.kind)
            .field("local", &self.local)
            .finish()
    }
}

impl Endpoint {
    fn mark_dirty(&self, sink: &Arc<AssocSink>) {
        lock(&self.dirty).push(Arc::clone(sink));
        self.wake.notify_one();
    }

    /// The sinks of every association on this socket.
    pub(crate) fn sinks(&self) -> Vec<Arc<AssocSink>> {
        lock(&self.sinks).values().cloned().collect()
    }
}

#[derive(Debug, Default)]
struct SendState {
    /// Messages waiting for socket buffer space, in order.
    pending: VecDeque<(Placement, Bytes)>,
    pending_bytes: usize,
    /// The writer is sending the front of `pending`: new messages queue behind it.
    flushing: bool,
    /// No new messages (closing, or the peer shut down).
    closing: bool,
    /// Send SHUTDOWN once `pending` is empty.
    shutdown: bool,
    /// ABORT at once (reason label).
    abort: Option<&'static str>,
    gone: bool,
}

/// TLS over SCTP state of an association, shared by the senders and the reader.
#[derive(Debug)]
struct AssocTls {
    streams: TlsStreams,
    /// Told when the first handshake finishes or fails (an outbound connect waits on it).
    first: Option<oneshot::Sender<Result<PeerProof, TlsSctpError>>>,
}

/// DTLS over SCTP state of an association, shared by the senders and the reader.
#[derive(Debug)]
struct AssocDtls {
    conn: DtlsAssoc,
    /// Actions behind a SENDER_DRY point, carried out in order once the peer has acknowledged
    /// everything (the reader resumes them on SCTP_SENDER_DRY_EVENT).
    held: VecDeque<DtlsAction>,
    dry_wait: bool,
    /// SHUTDOWN once `held` is out (close_notify was held).
    shutdown_after: bool,
    /// Told when the handshake finishes or fails (an outbound connect waits on it).
    first: Option<oneshot::Sender<Result<PeerProof, DtlsSctpError>>>,
    /// The first 8 bytes of SHA-256 of key 1, once set (diagnostics: equal on both ends).
    key_fingerprint: Option<[u8; 8]>,
    handshake_key_deleted: bool,
}

/// SCTP-AUTH state of one association (DTLS over SCTP), for diagnostics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SctpAuthInfo {
    /// The peer announced SCTP-AUTH (read from the socket).
    pub peer_supports_auth: bool,
    /// The key DATA is sent with (read from the socket).
    pub active_key: u16,
    /// Chunk types we require authenticated (read from the socket).
    pub local_chunks: Vec<u8>,
    /// Chunk types the peer requires authenticated (read from the socket).
    pub peer_chunks: Vec<u8>,
    /// The first 8 bytes of SHA-256 of the exporter key set as key 1 (the kernel does not
    /// give keys back; the same fingerprint on both ends means the same key).
    pub key_fingerprint: Option<[u8; 8]>,
    /// The empty handshake key 0 was deleted after the peer's Finished.
    pub handshake_key_deleted: bool,
}

impl AssocSink {
    /// The association's SCTP-AUTH state (DTLS over SCTP associations only).
    pub(crate) fn auth_info(&self) -> Option<SctpAuthInfo> {
        let dtls = self.dtls.as_ref()?;
        let (key_fingerprint, handshake_key_deleted) = {
            let d = lock(dtls);
            (d.key_fingerprint, d.handshake_key_deleted)
        };
        let sock = self.endpoint.sock.socket();
        Some(SctpAuthInfo {
            peer_supports_auth: sock.peer_auth_supported(self.assoc_id).ok()?,
            active_key: sock.active_auth_key(self.assoc_id).ok()?,
            local_chunks: sock.local_auth_chunks(self.assoc_id).ok()?,
            peer_chunks: sock.peer_auth_chunks(self.assoc_id).ok()?,
            key_fingerprint,
            handshake_key_deleted,
        })
    }
}

/// How bytes reach one association.
#[derive(Debug)]
pub(crate) struct AssocSink {
    endpoint: Arc<Endpoint>,
    assoc_id: i32,
    flow: Flow,
    ostreams: AtomicU16,
    state: Mutex<SendState>,
    tls: Option<Mutex<AssocTls>>,
    dtls: Option<Mutex<AssocDtls>>,
}

fn would_block(e: &SctpError) -> bool {
    matches!(e, SctpError::Io(io) if io.kind() == io::ErrorKind::WouldBlock)
}

impl AssocSink {
    fn info(&self, p: Placement) -> SendInfo {
        SendInfo::on_stream(p.stream)
            .assoc(self.assoc_id)
            .ppid(SIP_PPID)
            .unordered(p.unordered)
    }

    /// Sends one message (a SIP message, or a TLS record) on the association now, or queues
    /// it (bounded by `budget`) when the socket is full.
    fn transmit(
        self: &Arc<Self>,
        p: Placement,
        bytes: Bytes,
        budget: WriteBudget,
        counters: &metrics::FlowCounters,
    ) -> Result<(), PushError> {
        let mut s = lock(&self.state);
        if s.gone {
            return Err(PushError::Gone);
        }
        if s.pending.is_empty() && !s.flushing {
            match self
                .endpoint
                .sock
                .socket()
                .try_send(&bytes, &self.info(p), None)
            {
                Ok(_) => {
                    counters.bytes_out.increment(bytes.len() as u64);
                    return Ok(());
                }
                Err(e) if would_block(&e) => {}
                Err(e) => {
                    tracing::debug!(flow = %self.flow, error = %e, "SCTP send failed");
                    metrics::drop(self.flow.kind(), "sctp_send_failed");
                    return Err(PushError::Gone);
                }
            }
        }
        if let Err(o) = budget.check(s.pending_bytes, bytes.len()) {
            s.abort = Some("write_queue_full");
            drop(s);
            self.endpoint.mark_dirty(self);
            return Err(PushError::Overflow(o));
        }
        s.pending_bytes += bytes.len();
        s.pending.push_back((p, bytes));
        drop(s);
        self.endpoint.mark_dirty(self);
        Ok(())
    }

    /// Sends TLS records, each on its stream, ordered.
    fn transmit_records(
        self: &Arc<Self>,
        records: &mut Vec<(u16, Bytes)>,
        budget: WriteBudget,
        counters: &metrics::FlowCounters,
    ) -> Result<(), PushError> {
        for (stream, rec) in records.drain(..) {
            let p = Placement {
                stream,
                unordered: false,
            };
            self.transmit(p, rec, budget, counters)?;
        }
        Ok(())
    }

    /// Sends a SIP message: on the stream its transaction goes on, encrypted on TLS
    /// associations (the stream's session opened first when needed).
    pub(crate) fn push(
        self: &Arc<Self>,
        bytes: Bytes,
        budget: WriteBudget,
        counters: &metrics::FlowCounters,
    ) -> Result<(), PushError> {
        if lock(&self.state).closing {
            return Err(PushError::Gone);
        }
        let p = place(
            self.endpoint.policy,
            &bytes,
            self.ostreams.load(Ordering::Relaxed),
        );
        if let Some(dtls) = &self.dtls {
            let r = self.push_dtls(dtls, p, bytes, budget, counters);
            if r.is_ok() {
                counters.msgs_out.increment(1);
            }
            return r;
        }
        let r = match &self.tls {
            None => self.transmit(p, bytes, budget, counters),
            Some(tls) => {
                let mut t = lock(tls);
                // Server side before the client opened any stream: nothing to send on yet.
                let Some(stream) = t.streams.stream_for(p.stream) else {
                    return Err(PushError::Gone);
                };
                let mut records = Vec::new();
                match t.streams.send(stream, bytes, &mut records) {
                    Ok(()) => self.transmit_records(&mut records, budget, counters),
                    Err(e) => {
                        tracing::info!(flow = %self.flow, error = %e, "TLS over SCTP send refused");
                        self.abort(e.reason());
                        Err(PushError::Gone)
                    }
                }
            }
        };
        if r.is_ok() {
            counters.msgs_out.increment(1);
        }
        r
    }

    /// Graceful close: no new messages; SHUTDOWN once the queue is out, after `drain`.
    pub(crate) fn close(self: &Arc<Self>, drain: Duration) {
        {
            let mut s = lock(&self.state);
            if s.closing || s.gone {
                return;
            }
            s.closing = true;
        }
        if let Some(tls) = &self.tls {
            // close_notify on every stream, then SHUTDOWN (RFC 3436 §5.3 keeps the order).
            let mut records = Vec::new();
            lock(tls).streams.close(&mut records);
            let counters = metrics::FlowCounters::new(self.flow.kind());
            let _ = self.transmit_records(&mut records, WriteBudget::new(usize::MAX), &counters);
        }
        if let Some(dtls) = &self.dtls {
            // close_notify behind a SENDER_DRY point (RFC 6083 §4.9), SHUTDOWN after it.
            let mut d = lock(dtls);
            let mut actions = Vec::new();
            d.conn.close(&mut actions);
            let counters = metrics::FlowCounters::new(self.flow.kind());
            let _ = self.run_dtls(&mut d, actions, WriteBudget::new(usize::MAX), &counters);
        }
        let me = Arc::clone(self);
        let go = move || {
            if let Some(dtls) = &me.dtls {
                let mut d = lock(dtls);
                if !d.held.is_empty() {
                    d.shutdown_after = true;
                    return;
                }
            }
            lock(&me.state).shutdown = true;
            me.endpoint.mark_dirty(&me);
        };
        if drain.is_zero() {
            go();
        } else {
            tokio::spawn(async move {
                tokio::time::sleep(drain).await;
                go();
            });
        }
    }

    /// Immediate close (SCTP ABORT).
    pub(crate) fn abort(self: &Arc<Self>, reason: &'static str) {
        {
            let mut s = lock(&self.state);
            if s.gone {
                return;
            }
            s.closing = true;
            s.abort = Some(reason);
        }
        self.endpoint.mark_dirty(self);
    }

    /// Encrypts one SIP message as one DTLS record (RFC 6083: never split; application data
    /// off stream 0 when the association has other streams).
    fn push_dtls(
        self: &Arc<Self>,
        dtls: &Mutex<AssocDtls>,
        p: Placement,
        bytes: Bytes,
        budget: WriteBudget,
        counters: &metrics::FlowCounters,
    ) -> Result<(), PushError> {
        let ostreams = self.ostreams.load(Ordering::Relaxed);
        let stream = match ostreams {
            0 | 1 => 0,
            n => 1 + p.stream % (n - 1),
        };
        let len = bytes.len();
        let mut d = lock(dtls);
        let mut actions = Vec::new();
        match d.conn.send(stream, bytes, &mut actions) {
            Ok(()) => self.run_dtls(&mut d, actions, budget, counters),
            Err(DtlsSctpError::TooLarge { .. }) => {
                tracing::info!(flow = %self.flow, len, "SIP message larger than one DTLS record refused");
                metrics::drop(self.flow.kind(), "dtls_message_too_large");
                Err(PushError::TooLarge {
                    len,
                    limit: DTLS_SCTP_MAX_MESSAGE,
                })
            }
            Err(e) => {
                tracing::info!(flow = %self.flow, error = %e, "DTLS over SCTP send refused");
                drop(d);
                self.abort(e.reason());
                Err(PushError::Gone)
            }
        }
    }

    /// Asks the kernel for a SENDER_DRY event: Linux sends one at once for an association
    /// whose send queue is already empty when the event is (re)enabled, and otherwise when it
    /// empties. (SCTP_STATUS cannot tell: its unackdata/penddata count received chunks.)
    fn arm_sender_dry(&self) {
        if let Err(e) = self
            .endpoint
            .sock
            .socket()
            .set_event(Event::SenderDry, true)
        {
            tracing::debug!(flow = %self.flow, error = %e, "SENDER_DRY re-arm failed");
        }
    }

    fn own_queue_empty(&self) -> bool {
        let s = lock(&self.state);
        s.pending.is_empty() && !s.flushing
    }

    /// Carries out DTLS actions in order: records sent, SCTP-AUTH keys added, activated and
    /// deleted on this association; at a SENDER_DRY point with data unacknowledged the rest
    /// waits for the SENDER_DRY event. A key step also waits while records of ours are still
    /// queued (they must go out under the key they were made for).
    fn run_dtls(
        self: &Arc<Self>,
        d: &mut AssocDtls,
        actions: Vec<DtlsAction>,
        budget: WriteBudget,
        counters: &metrics::FlowCounters,
    ) -> Result<(), PushError> {
        d.held.extend(actions);
        if d.dry_wait {
            return Ok(());
        }
        let sock = self.endpoint.sock.socket();
        while let Some(a) = d.held.pop_front() {
            let step = match &a {
                DtlsAction::Send { stream, record } => {
                    let p = Placement {
                        stream: *stream,
                        unordered: false,
                    };
                    self.transmit(p, record.clone(), budget, counters)?;
                    continue;
                }
                DtlsAction::SenderDry => {
                    // Always wait for the event (resumed by `dtls_dry`).
                    d.dry_wait = true;
                    if self.own_queue_empty() {
                        self.arm_sender_dry();
                    }
                    return Ok(());
                }
                _ if !self.own_queue_empty() => {
                    // The writer still holds records of ours: wait until they are out and
                    // acknowledged (the SENDER_DRY event follows the queue emptying).
                    d.held.push_front(a);
                    d.dry_wait = true;
                    return Ok(());
                }
                DtlsAction::AddKey { number, key } => {
                    sock.set_auth_key(self.assoc_id, *number, &key[..])
                }
                DtlsAction::ActivateKey { number } => {
                    sock.set_active_auth_key(self.assoc_id, *number)
                }
                DtlsAction::DeleteKey { number } => sock.delete_auth_key(self.assoc_id, *number),
            };
            if let Err(e) = step {
                tracing::warn!(flow = %self.flow, error = %e, action = ?a, "SCTP-AUTH key step failed; aborting");
                self.abort("dtls_auth_key");
                return Err(PushError::Gone);
            }
            match &a {
                DtlsAction::AddKey { key, .. } => {
                    let h = openssl::sha::sha256(&key[..]);
                    let mut f = [0u8; 8];
                    f.copy_from_slice(&h[..8]);
                    d.key_fingerprint = Some(f);
                }
                DtlsAction::DeleteKey { .. } => d.handshake_key_deleted = true,
                _ => {}
            }
            tracing::debug!(flow = %self.flow, action = ?a, "SCTP-AUTH key step");
        }
        if std::mem::take(&mut d.shutdown_after) {
            lock(&self.state).shutdown = true;
            self.endpoint.mark_dirty(self);
        }
        Ok(())
    }

    /// The SENDER_DRY event: resumes held DTLS actions.
    fn dtls_dry(self: &Arc<Self>, budget: WriteBudget, counters: &metrics::FlowCounters) {
        let Some(dtls) = &self.dtls else {
            return;
        };
        let mut d = lock(dtls);
        if d.dry_wait && self.own_queue_empty() {
            d.dry_wait = false;
            let _ = self.run_dtls(&mut d, Vec::new(), budget, counters);
        }
    }

    fn set_gone(&self) {
        let mut s = lock(&self.state);
        s.gone = true;
        s.pending.clear();
        s.pending_bytes = 0;
    }
}

/// Applies the configured socket options before `listen`/`connect`.
fn configure(sock: &SctpSocket, cfg: &SctpConfig) -> Result<(), SctpError> {
    sock.set_nodelay(true)?;
    sock.set_init_msg(InitMsg {
        num_ostreams: cfg.streams.max(1),
        max_instreams: cfg.max_inbound_streams.max(1),
        ..InitMsg::default()
    })?;
    let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
    if !(cfg.rto_initial.is_zero() && cfg.rto_min.is_zero() && cfg.rto_max.is_zero()) {
        sock.set_rto_info(
            0,
            RtoInfo {
                initial: ms(cfg.rto_initial),
                max: ms(cfg.rto_max),
                min: ms(cfg.rto_min),
            },
        )?;
    }
    if cfg.assoc_max_retrans > 0 {
        sock.set_assoc_info(
            0,
            sipwire_sys::AssocInfo {
                max_retrans: cfg.assoc_max_retrans,
                ..Default::default()
            },
        )?;
    }
    if cfg.heartbeat_interval.is_some() || cfg.path_max_retrans > 0 {
        sock.set_peer_addr_params(
            0,
            PeerAddrParams {
                hb_interval: cfg.heartbeat_interval.map_or(0, ms),
                path_max_retrans: cfg.path_max_retrans,
                heartbeat: cfg.heartbeat_interval.map(|_| true),
                ..PeerAddrParams::default()
            },
        )?;
    }
    if cfg.recv_buffer > 0 {
        sock.set_recv_buffer_size(cfg.recv_buffer)?;
    }
    if cfg.send_buffer > 0 {
        sock.set_send_buffer_size(cfg.send_buffer)?;
    }
    sock.subscribe(&[
        Event::AssocChange,
        Event::PeerAddrChange,
        Event::SendFailed,
        Event::RemoteError,
        Event::Shutdown,
        Event::PartialDelivery,
    ])?;
    Ok(())
}

fn sys_err(e: SctpError) -> io::Error {
    match e {
        SctpError::Io(io) => io,
        SctpError::NoKernelSctp(io) => io::Error::new(io.kind(), SctpError::NoKernelSctp(io)),
        other => io::Error::other(other),
    }
}

/// Opens, configures and binds a one-to-many socket and starts its tasks.
fn open(
    inner: &Arc<Inner>,
    kind: TransportKind,
    addrs: &[SocketAddr],
    listen: bool,
    tls_server: Option<Arc<rustls::ServerConfig>>,
    dtls_server: Option<Arc<openssl::ssl::SslAcceptor>>,
) -> Result<Arc<Endpoint>, SctpError> {
    let family = sipwire_sys::Family::for_addrs(addrs);
    let sock = SctpSocket::one_to_many(family)?;
    configure(&sock, &inner.cfg.sctp)?;
    if kind == TransportKind::DtlsSctp {
        require_auth(&sock)?;
    }
    sock.bind(addrs)?;
    let sock = sock.into_endpoint(listen)?;
    let local = sock
        .local_addrs(0)?
        .into_iter()
        .next()
        .or_else(|| addrs.first().copied())
        .ok_or(SctpError::InvalidInput("no local address"))?;
    let ep = Arc::new(Endpoint {
        sock,
        kind,
        local,
        policy: match kind {
            // RFC 3436 §6.2: TLS streams are never unordered; DTLS records go ordered too
            // (the SENDER_DRY points of RFC 6083 §4.7 assume it).
            TransportKind::TlsSctp | TransportKind::DtlsSctp => StreamPolicy::Spread,
            _ => inner.cfg.sctp.policy,
        },
        tls_server,
        dtls_server,
        dirty: Mutex::new(Vec::new()),
        wake: Notify::new(),
        connecting: Mutex::new(HashMap::new()),
        sinks: Mutex::new(HashMap::new()),
    });
    lock(&inner.sctp.endpoints).push(Arc::clone(&ep));
    let span = tracing::info_span!("sctp", transport = %kind, addr = %local);
    let (reader, writer) = (inner.task(), inner.task());
    let (i1, e1) = (Arc::clone(inner), Arc::clone(&ep));
    tokio::spawn(
        async move {
            let _task = reader;
            read_loop(i1, e1).await;
        }
        .instrument(span.clone()),
    );
    let (i2, e2) = (Arc::clone(inner), Arc::clone(&ep));
    tokio::spawn(
        async move {
            let _task = writer;
            write_loop(i2, e2).await;
        }
        .instrument(span),
    );
    Ok(ep)
}

/// DTLS over SCTP (RFC 6083 §4.5): every DATA chunk authenticated (SCTP-AUTH, RFC 4895), the
/// empty key 0 for the handshake, and SENDER_DRY events for §4.7 and §4.9 — all set before any
/// association starts. Fails with [`SctpError::AuthDisabled`] where `net.sctp.auth_enable` is 0.
/// Linux gives every AUTH-enabled endpoint the empty key 0 already (and refuses to set an empty
/// key), so it is only made the active one here.
fn require_auth(sock: &SctpSocket) -> Result<(), SctpError> {
    sock.add_auth_chunk(sipwire_sys::auth::CHUNK_DATA)?;
    sock.set_active_auth_key(0, super::sctp_dtls::HANDSHAKE_KEY)?;
    sock.set_event(Event::SenderDry, true)
}

/// Binds an SCTP listener on every address of `addrs` (one socket, multihomed); returns the
/// bound addresses (the port the kernel chose when 0 was given).
pub(crate) fn bind(
    inner: &Arc<Inner>,
    kind: TransportKind,
    addrs: &[SocketAddr],
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<Vec<SocketAddr>, TransportError> {
    bind_endpoint(inner, kind, addrs, tls, None)
}

/// Binds a DTLS over SCTP listener (RFC 6083) with `acceptor`'s certificate and settings.
pub(crate) fn bind_dtls(
    inner: &Arc<Inner>,
    addrs: &[SocketAddr],
    acceptor: openssl::ssl::SslAcceptorBuilder,
) -> Result<Vec<SocketAddr>, TransportError> {
    let acceptor = Arc::new(super::sctp_dtls::acceptor(acceptor));
    bind_endpoint(inner, TransportKind::DtlsSctp, addrs, None, Some(acceptor))
}

fn bind_endpoint(
    inner: &Arc<Inner>,
    kind: TransportKind,
    addrs: &[SocketAddr],
    tls: Option<Arc<rustls::ServerConfig>>,
    dtls: Option<Arc<openssl::ssl::SslAcceptor>>,
) -> Result<Vec<SocketAddr>, TransportError> {
    let first = addrs.first().copied().ok_or(TransportError::Bind {
        kind,
        addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        source: io::Error::new(io::ErrorKind::InvalidInput, "no address to bind"),
    })?;
    let bind_err = |e: SctpError| TransportError::Bind {
        kind,
        addr: first,
        source: sys_err(e),
    };
    let ep = open(inner, kind, addrs, true, tls, dtls).map_err(bind_err)?;
    let bound = ep.sock.local_addrs(0).map_err(bind_err)?;
    let bound = if bound.is_empty() {
        vec![ep.local]
    } else {
        bound
    };
    let mut t = inner.tables();
    for a in &bound {
        t.listeners.push((kind, *a));
    }
    Ok(bound)
}

/// The socket an outbound association to `peer` starts on.
async fn socket_for(
    inner: &Arc<Inner>,
    kind: TransportKind,
    peer: SocketAddr,
    source: Option<IpAddr>,
) -> Result<Arc<Endpoint>, TransportError> {
    let listener = {
        let endpoints = lock(&inner.sctp.endpoints);
        let listeners = || {
            endpoints.iter().filter(|e| {
                e.kind == kind && e.local.is_ipv4() == peer.is_ipv4() && e.local.port() != 0
            })
        };
        // The listener bound to the chosen source address first (a relay's outbound listener).
        source
            .and_then(|ip| listeners().find(|e| e.local.ip() == ip))
            .or_else(|| {
                listeners().next().filter(|e| {
                    // A listener on loopback cannot reach other hosts.
                    e.local.ip().is_unspecified()
                        || e.local.ip().is_loopback() == peer.ip().is_loopback()
                })
            })
            .cloned()
    };
    if let Some(ep) = listener {
        return Ok(ep);
    }
    let mut out = inner.sctp.outbound.lock().await;
    if let Some(ep) = out
        .iter()
        .find(|e| e.kind == kind && e.local.is_ipv4() == peer.is_ipv4())
    {
        return Ok(Arc::clone(ep));
    }
    let ip = inner
        .cfg
        .outbound_ip
        .filter(|ip| ip.is_ipv4() == peer.is_ipv4())
        .unwrap_or(if peer.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        });
    let ep = open(inner, kind, &[SocketAddr::new(ip, 0)], false, None, None).map_err(|e| {
        TransportError::Connect {
            addr: peer,
            source: sys_err(e),
        }
    })?;
    out.push(Arc::clone(&ep));
    Ok(ep)
}

/// Starts an association to `target` (its address and any extra addresses: multihoming) and
/// waits for it to come up; over TLS, also for the first stream's handshake, so that the server
/// is authenticated (RFC 5922 §7.3) before anything is sent.
pub(crate) async fn connect(
    inner: &Arc<Inner>,
    target: &Target,
    key: ReuseKey,
) -> Result<Flow, TransportError> {
    let kind = target.transport;
    let mut dtls = None;
    let tls = match kind {
        TransportKind::Sctp => None,
        TransportKind::DtlsSctp => {
            let connector = lock(&inner.sctp.dtls_client)
                .clone()
                .ok_or(TransportError::NoTlsClient)?;
            dtls = Some(DtlsRole::Client {
                connector,
                name: key.name.as_deref().unwrap_or_default().to_owned(),
            });
            None
        }
        TransportKind::TlsSctp => {
            let config = inner
                .tls_client_for(target.scope.as_ref())
                .ok_or(TransportError::NoTlsClient)?;
            let name_text = key.name.as_deref().unwrap_or_default().to_owned();
            let name = rustls_pki_types::ServerName::try_from(name_text.clone())
                .map_err(|_| TransportError::BadServerName(name_text))?;
            Some(TlsRole::Client {
                config,
                name,
                require_alpn: inner.cfg.require_alpn,
            })
        }
        other => return Err(TransportError::Unsupported(other)),
    };
    let ep = socket_for(inner, kind, target.addr, target.source).await?;
    let mut peers = vec![target.addr];
    peers.extend(target.extra_addrs.iter().copied());
    let (tx, rx) = oneshot::channel();
    let assoc_id = {
        // Held across connectx so that the reader, which takes this lock on COMM_UP, finds
        // the waiter.
        let mut c = lock(&ep.connecting);
        let id = ep
            .sock
            .connectx(&peers)
            .map_err(|e| TransportError::Connect {
                addr: target.addr,
                source: sys_err(e),
            })?;
        c.insert(
            id,
            Connecting {
                key: key.clone(),
                done: tx,
                tls,
                dtls,
            },
        );
        id
    };
    let flow = match tokio::time::timeout(inner.limits().connect_timeout, rx).await {
        Ok(Ok(Ok(flow))) => flow,
        Ok(Ok(Err(source))) => {
            return Err(TransportError::Connect {
                addr: target.addr,
                source,
            })
        }
        Ok(Err(_)) => return Err(TransportError::ShuttingDown),
        Err(_) => {
            lock(&ep.connecting).remove(&assoc_id);
            let _ = ep.sock.abort(assoc_id, b"").await;
            return Err(TransportError::Connect {
                addr: target.addr,
                source: io::Error::new(io::ErrorKind::TimedOut, "SCTP association timed out"),
            });
        }
    };
    if kind == TransportKind::TlsSctp {
        tls_handshake(inner, &ep, assoc_id, flow, target, &key).await?;
    }
    if kind == TransportKind::DtlsSctp {
        dtls_handshake(inner, &ep, assoc_id, flow, target, &key).await?;
    }
    Ok(flow)
}

/// Runs the DTLS handshake of a new outbound association and waits for it; on failure the
/// association is aborted.
async fn dtls_handshake(
    inner: &Arc<Inner>,
    ep: &Endpoint,
    assoc_id: i32,
    flow: Flow,
    target: &Target,
    key: &ReuseKey,
) -> Result<(), TransportError> {
    let sink = lock(&ep.sinks).get(&assoc_id).cloned();
    let Some(sink) = sink else {
        return Err(TransportError::UnknownFlow(flow));
    };
    let Some(dtls) = &sink.dtls else {
        return Err(TransportError::Unsupported(flow.kind()));
    };
    let (tx, rx) = oneshot::channel();
    let counters = inner.metrics.flow(flow.kind());
    let started = {
        let mut d = lock(dtls);
        d.first = Some(tx);
        let mut actions = Vec::new();
        match d.conn.start(&mut actions) {
            Ok(()) => sink
                .run_dtls(&mut d, actions, inner.budget(), counters)
                .map_err(|_| HandshakeError::Eof),
            Err(e) => Err(dtls_handshake_error(e)),
        }
    };
    first_handshake(inner, &sink, started, rx, dtls_handshake_error, target, key).await
}

/// Waits (bounded by `handshake_timeout`) for the first handshake of a new outbound secure
/// association, started with `started`; on failure the association is aborted and the error
/// says why (RFC 5922 §7.3: a server that does not prove the domain is an identity mismatch).
async fn first_handshake<P, E>(
    inner: &Inner,
    sink: &Arc<AssocSink>,
    started: Result<(), HandshakeError>,
    done: oneshot::Receiver<Result<P, E>>,
    handshake_error: fn(E) -> HandshakeError,
    target: &Target,
    key: &ReuseKey,
) -> Result<(), TransportError> {
    let outcome = match started {
        Err(e) => Err(e),
        Ok(()) => match tokio::time::timeout(inner.limits().handshake_timeout, done).await {
            Ok(Ok(Ok(_proof))) => Ok(()),
            Ok(Ok(Err(e))) => Err(handshake_error(e)),
            Ok(Err(_)) => Err(HandshakeError::Eof),
            Err(_) => {
                metrics::handshake_failed(Direction::Outbound, "timeout");
                Err(HandshakeError::Timeout)
            }
        },
    };
    let Err(e) = outcome else {
        return Ok(());
    };
    sink.abort(e.reason());
    if e.is_identity_mismatch() {
        return Err(TransportError::IdentityMismatch {
            addr: target.addr,
            domain: key.name.as_deref().unwrap_or_default().to_owned(),
        });
    }
    Err(TransportError::Handshake {
        addr: target.addr,
        reason: e.reason(),
        source: e,
    })
}

fn dtls_handshake_error(e: DtlsSctpError) -> HandshakeError {
    HandshakeError::Dtls {
        reason: e.reason(),
        source: Box::new(e),
    }
}

/// Opens the first stream's TLS session of a new outbound association and waits for it; on
/// failure the association is aborted.
async fn tls_handshake(
    inner: &Arc<Inner>,
    ep: &Endpoint,
    assoc_id: i32,
    flow: Flow,
    target: &Target,
    key: &ReuseKey,
) -> Result<(), TransportError> {
    let sink = lock(&ep.sinks).get(&assoc_id).cloned();
    let Some(sink) = sink else {
        return Err(TransportError::UnknownFlow(flow));
    };
    let Some(tls) = &sink.tls else {
        return Err(TransportError::Unsupported(flow.kind()));
    };
    let (tx, rx) = oneshot::channel();
    let mut records = Vec::new();
    let started = {
        let mut t = lock(tls);
        t.first = Some(tx);
        t.streams.start(0, &mut records)
    };
    let counters = inner.metrics.flow(flow.kind());
    let started = match started {
        Err(e) => Err(into_handshake_error(e)),
        Ok(()) => sink
            .transmit_records(&mut records, inner.budget(), counters)
            .map_err(|_| HandshakeError::Eof),
    };
    first_handshake(inner, &sink, started, rx, into_handshake_error, target, key).await
}

fn into_handshake_error(e: TlsSctpError) -> HandshakeError {
    match e {
        TlsSctpError::Handshake(h) => h,
        other => HandshakeError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            other.to_string(),
        )),
    }
}

/// One live association, as the reader sees it.
struct Assoc {
    core: AssocCore,
    info: FlowInfo,
    sink: Arc<AssocSink>,
    _admission: Admission,
}

/// Receives everything on one socket until the transport shuts down.
async fn read_loop(inner: Arc<Inner>, ep: Arc<Endpoint>) {
    let mut stop = inner.shutdown.subscribe();
    // Sized at bind from the starting limits: a reload that raises max_message above 64 KiB
    // takes effect on SCTP sockets bound afterwards (docs/operations.md).
    let limit = inner.cfg.limits.max_message_bytes.max(64 * 1024) + 4096;
    let mut buf = RecvBuf::new(limit);
    // Bytes of partial messages one association may hold, all streams together.
    let partial_limit = inner.cfg.limits.max_message_bytes.saturating_mul(4);
    let mut assocs: HashMap<i32, Assoc> = HashMap::new();
    let mut events = Vec::new();
    let mut plain = Vec::new();
    let mut records = Vec::new();
    let kind = ep.kind;
    let counters = inner.metrics.flow(kind);
    // On shutdown the socket keeps receiving (responses during the drain) until every
    // association has ended; new ones are refused.
    let mut stopping = false;
    loop {
        if stopping && assocs.is_empty() {
            break;
        }
        let r = tokio::select! {
            biased;
            _ = stop.changed(), if !stopping => {
                stopping = true;
                continue;
            }
            r = ep.sock.recv(&mut buf) => r,
        };
        match r {
            Ok(Received::Message { data, info, .. }) => {
                let Some(a) = assocs.get_mut(&info.assoc_id) else {
                    metrics::drop(kind, "sctp_unknown_association");
                    continue;
                };
                counters.bytes_in.increment(data.len() as u64);
                if a.sink.dtls.is_some() {
                    if !dtls_receive(&inner, a, info.stream, data, &mut records) {
                        continue;
                    }
                    for (stream, m) in records.drain(..) {
                        a.core.handle_message(stream, &m, &mut events);
                    }
                } else if a.sink.tls.is_some() {
                    if !tls_receive(&inner, a, info.stream, data, &mut plain) {
                        continue;
                    }
                    if !plain.is_empty() {
                        a.core.handle_message(info.stream, &plain, &mut events);
                        plain.clear();
                    }
                } else {
                    a.core.handle_message(info.stream, data, &mut events);
                }
                if a.core.buffered() > partial_limit {
                    // Partial messages on many streams at once: a peer holding memory.
                    tracing::info!(flow = %a.info.flow, "partial messages over the limit; aborting");
                    metrics::drop(kind, "partial_messages_over_limit");
                    a.sink.abort("partial_messages_over_limit");
                    events.clear();
                    continue;
                }
                for ev in events.drain(..) {
                    match ev {
                        AssocEvent::Deliver(m) => {
                            counters.msgs_in.increment(1);
                            inner.capture(kind, a.info.peer, a.info.local, m.as_bytes());
                            match inner.flood.message(kind, a.info.peer, &m) {
                                RequestVerdict::Admit => {}
                                RequestVerdict::Reply(r, _) => {
                                    let _ = inner.send(a.info.flow, r);
                                    continue;
                                }
                                RequestVerdict::Drop(_) => continue,
                            }
                            match inner.incoming.try_send(Incoming::new(m, &a.info)) {
                                Ok(()) => {}
                                Err(TrySendError::Closed(_)) => return,
                                Err(TrySendError::Full(inc)) => {
                                    // Back-pressure: SCTP flow control holds the peers.
                                    if inner.incoming.send(inc).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                        AssocEvent::Reply { stream, bytes } => {
                            let info = a.sink.info(Placement {
                                stream,
                                unordered: false,
                            });
                            inner.capture(kind, a.info.local, a.info.peer, &bytes);
                            let _ = ep.sock.socket().try_send(&bytes, &info, None);
                        }
                        AssocEvent::Drop(reason) => metrics::drop(kind, reason),
                    }
                }
            }
            Ok(Received::Notification(n)) => on_notification(&inner, &ep, &mut assocs, n, stopping),
            Ok(Received::Closed) => {}
            Err(SctpError::MessageTooLarge {
                limit,
                stream,
                assoc_id,
            }) => {
                tracing::warn!(
                    limit,
                    stream,
                    assoc_id,
                    "SCTP user message over the limit, discarded"
                );
                metrics::drop(kind, "message_too_large");
            }
            Err(e) if !e.is_fatal() => {
                tracing::debug!(error = %e, "SCTP receive");
                metrics::drop(kind, "sctp_malformed");
            }
            Err(e) => {
                tracing::error!(error = %e, "SCTP socket failed; its associations are lost");
                break;
            }
        }
    }
    for (_, a) in assocs.drain() {
        finish(&inner, &ep, a, "shutdown");
    }
    ep.wake.notify_one();
}

/// One TLS record received on `stream` of a TLS association: answered (handshake records),
/// decrypted into `plain`; the first completed handshake fills in who the peer is. False when
/// the association is being aborted (a failed handshake, another identity on a later stream).
fn tls_receive(
    inner: &Arc<Inner>,
    a: &mut Assoc,
    stream: u16,
    data: &[u8],
    plain: &mut Vec<u8>,
) -> bool {
    let Some(tls) = &a.sink.tls else {
        return true;
    };
    let mut records = Vec::new();
    let mut t = lock(tls);
    let r = t
        .streams
        .receive(stream, data, &inner.identities, &mut records, plain);
    let counters = inner.metrics.flow(a.info.flow.kind());
    let _ = a
        .sink
        .transmit_records(&mut records, inner.budget(), counters);
    match r {
        Ok(got) => {
            if let Some(proof) = got.first_proof {
                inner.metrics.handshake_done(a.info.direction);
                a.info.identities = proof.identities.clone();
                a.info.peer_certificate = proof.peer_certificate;
                a.info.alpn = proof.alpn.clone();
                if a.info.direction == Direction::Inbound {
                    a.info.server_name = proof.sni.clone();
                }
                inner.update_flow_info(a.info.clone());
                if let Some(w) = t.first.take() {
                    let _ = w.send(Ok(proof));
                }
            }
            true
        }
        Err(e) => {
            metrics::handshake_failed(a.info.direction, e.reason());
            tracing::info!(flow = %a.info.flow, error = %e, "TLS over SCTP failed; aborting the association");
            plain.clear();
            let reason = e.reason();
            if let Some(w) = t.first.take() {
                let _ = w.send(Err(e));
            }
            drop(t);
            a.sink.abort(reason);
            false
        }
    }
}

/// One DTLS record received on `stream` of a DTLS association: handshake records answered
/// (with the key steps), application data appended to `records`; the finished handshake fills
/// in who the peer is. False when the association is being aborted.
fn dtls_receive(
    inner: &Arc<Inner>,
    a: &mut Assoc,
    stream: u16,
    data: &[u8],
    records: &mut Vec<(u16, Bytes)>,
) -> bool {
    let Some(dtls) = &a.sink.dtls else {
        return true;
    };
    let counters = inner.metrics.flow(a.info.flow.kind());
    let mut actions = Vec::new();
    let mut d = lock(dtls);
    let r = d
        .conn
        .receive(stream, data, &inner.identities, &mut actions, records);
    let _ = a.sink.run_dtls(&mut d, actions, inner.budget(), counters);
    match r {
        Ok(got) => {
            if let Some(proof) = got.proof {
                inner.metrics.handshake_done(a.info.direction);
                a.info.identities = proof.identities.clone();
                a.info.peer_certificate = proof.peer_certificate;
                a.info.alpn = proof.alpn.clone();
                if a.info.direction == Direction::Inbound {
                    a.info.server_name = proof.sni.clone();
                }
                inner.update_flow_info(a.info.clone());
                if let Some(w) = d.first.take() {
                    let _ = w.send(Ok(proof));
                }
            }
            if got.gaps_skipped > 0 {
                tracing::warn!(flow = %a.info.flow, gaps = got.gaps_skipped, "DTLS records missing too long; gap skipped (a late record may be lost)");
                metrics::drops(a.info.flow.kind(), "dtls_record_gap", got.gaps_skipped);
            }
            if got.closed {
                tracing::debug!(flow = %a.info.flow, "peer sent close_notify");
                lock(&a.sink.state).closing = true;
            }
            true
        }
        Err(e) => {
            metrics::handshake_failed(a.info.direction, e.reason());
            tracing::info!(flow = %a.info.flow, error = %e, "DTLS over SCTP failed; aborting the association");
            records.clear();
            let reason = e.reason();
            if let Some(w) = d.first.take() {
                let _ = w.send(Err(e));
            }
            drop(d);
            a.sink.abort(reason);
            false
        }
    }
}

/// Takes a finished association out of every table.
fn finish(inner: &Inner, ep: &Endpoint, a: Assoc, reason: &'static str) {
    a.sink.set_gone();
    lock(&ep.sinks).remove(&a.sink.assoc_id);
    inner.remove_stream(a.info.flow);
    inner.sctp.associations.fetch_sub(1, Ordering::Relaxed);
    inner.metrics.connection_closed(a.info.flow.kind(), reason);
    tracing::debug!(flow = %a.info.flow, peer = %a.info.peer, reason, "association closed");
    ep.wake.notify_one();
}

fn on_notification(
    inner: &Arc<Inner>,
    ep: &Arc<Endpoint>,
    assocs: &mut HashMap<i32, Assoc>,
    n: Notification,
    stopping: bool,
) {
    let kind = ep.kind;
    match n {
        Notification::AssocChange {
            state,
            assoc_id,
            outbound_streams,
            inbound_streams,
            error,
            ..
        } => match state {
            AssocState::CommUp => {
                let waiter = lock(&ep.connecting).remove(&assoc_id);
                let admitted = if stopping {
                    Err("shutting_down")
                } else {
                    up(
                        inner,
                        ep,
                        assoc_id,
                        (outbound_streams, inbound_streams),
                        waiter.as_ref(),
                    )
                };
                match admitted {
                    Ok(a) => {
                        let flow = a.info.flow;
                        assocs.insert(assoc_id, a);
                        if let Some(w) = waiter {
                            let _ = w.done.send(Ok(flow));
                        }
                    }
                    Err(reason) => {
                        metrics::drop(kind, reason);
                        if reason != Limit::Connections.reason() {
                            // (Flood refusals are logged by the limiter, within its budget.)
                            tracing::info!(assoc_id, reason, "association refused");
                        }
                        let sock = Arc::clone(ep);
                        tokio::spawn(async move {
                            let _ = sock.sock.abort(assoc_id, reason.as_bytes()).await;
                        });
                        if let Some(w) = waiter {
                            let _ = w.done.send(Err(refusal(reason)));
                        }
                    }
                }
            }
            AssocState::Restart => {
                metrics::sctp_event(kind, "restart");
                if let Some(a) = assocs.get_mut(&assoc_id) {
                    tracing::info!(flow = %a.info.flow, "peer restarted the association");
                    a.sink
                        .ostreams
                        .store(outbound_streams.max(1), Ordering::Relaxed);
                    // Partial messages from before the restart are void.
                    a.core = AssocCore::new(inner.limits().message, a.info.peer);
                }
            }
            AssocState::CommLost | AssocState::ShutdownComplete | AssocState::CantStartAssoc => {
                let reason = match state {
                    AssocState::CommLost => "comm_lost",
                    AssocState::ShutdownComplete => "closed",
                    _ => "cant_start",
                };
                if let Some(w) = lock(&ep.connecting).remove(&assoc_id) {
                    let _ = w.done.send(Err(io::Error::new(
                        io::ErrorKind::ConnectionRefused,
                        format!("SCTP association not started ({reason}, cause {error})"),
                    )));
                }
                if let Some(a) = assocs.remove(&assoc_id) {
                    finish(inner, ep, a, reason);
                }
            }
            _ => {}
        },
        Notification::Shutdown { assoc_id } => {
            if let Some(a) = assocs.get(&assoc_id) {
                lock(&a.sink.state).closing = true;
                inner.unindex(a.info.flow);
            }
        }
        Notification::PeerAddrChange {
            addr,
            state,
            assoc_id,
            ..
        } => {
            metrics::sctp_event(kind, "peer_addr_change");
            let flow = assocs.get(&assoc_id).map(|a| a.info.flow);
            // A path failing (or coming back after one did) is news; addresses being confirmed
            // as a multihomed association starts are not.
            if matches!(
                state,
                sipwire_sys::PeerAddrState::Unreachable
                    | sipwire_sys::PeerAddrState::PotentiallyFailed
                    | sipwire_sys::PeerAddrState::Removed
                    | sipwire_sys::PeerAddrState::MadePrimary
            ) {
                tracing::info!(?flow, ?addr, ?state, "SCTP peer address changed state");
            } else {
                tracing::debug!(?flow, ?addr, ?state, "SCTP peer address changed state");
            }
        }
        Notification::SendFailed { assoc_id, .. } => {
            metrics::drop(kind, "sctp_send_failed");
            tracing::debug!(assoc_id, "SCTP message not delivered");
        }
        Notification::RemoteError {
            cause, assoc_id, ..
        } => {
            metrics::sctp_event(kind, "remote_error");
            tracing::info!(assoc_id, cause, "SCTP peer sent an ERROR chunk");
        }
        Notification::SenderDry { assoc_id } => {
            if let Some(a) = assocs.get(&assoc_id) {
                a.sink.dtls_dry(inner.budget(), inner.metrics.flow(kind));
            }
        }
        Notification::PartialDelivery { assoc_id, .. } => {
            metrics::drop(kind, "sctp_partial_delivery_aborted");
            tracing::debug!(assoc_id, "partial delivery aborted");
        }
        _ => {}
    }
}

/// Why a new association was refused, for the connect that waits on it.
fn refusal(reason: &'static str) -> io::Error {
    match reason {
        "dtls_peer_without_auth" => io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "peer does not support SCTP-AUTH (RFC 4895), which DTLS over SCTP requires \
             (RFC 6083 §4.5): association aborted",
        ),
        other => io::Error::other(other),
    }
}

/// The DTLS side of a new association (DTLS over SCTP only).
fn dtls_role(ep: &Endpoint, waiter: Option<&Connecting>) -> Option<DtlsRole> {
    if ep.kind != TransportKind::DtlsSctp {
        return None;
    }
    match waiter {
        Some(w) => w.dtls.clone(),
        None => ep.dtls_server.as_ref().map(|acceptor| DtlsRole::Server {
            acceptor: Arc::clone(acceptor),
        }),
    }
}

/// The TLS side of a new association (TLS over SCTP only).
fn tls_role(ep: &Endpoint, waiter: Option<&Connecting>) -> Option<TlsRole> {
    if ep.kind != TransportKind::TlsSctp {
        return None;
    }
    match waiter {
        Some(w) => w.tls.clone(),
        None => ep.tls_server.as_ref().map(|config| TlsRole::Server {
            config: Arc::clone(config),
        }),
    }
}

/// A new association: admitted, registered, its sink made.
fn up(
    inner: &Arc<Inner>,
    ep: &Arc<Endpoint>,
    assoc_id: i32,
    (ostreams, istreams): (u16, u16),
    waiter: Option<&Connecting>,
) -> Result<Assoc, &'static str> {
    let peers = ep.sock.peer_addrs(assoc_id).unwrap_or_default();
    let peer = match waiter {
        Some(w) if peers.contains(&w.key.peer) => w.key.peer,
        Some(w) if peers.is_empty() => w.key.peer,
        _ => *peers.first().ok_or("sctp_no_peer_address")?,
    };
    let local = ep
        .sock
        .local_addrs(assoc_id)
        .ok()
        .and_then(|l| l.into_iter().find(|a| a.is_ipv4() == peer.is_ipv4()))
        .unwrap_or(ep.local);
    if waiter.is_none() {
        inner
            .flood
            .connection(ep.kind, peer, false)
            .map_err(|l| l.reason())?;
    }
    if inner.sctp.associations() >= inner.cfg.sctp.max_associations {
        return Err("sctp_max_associations");
    }
    // The same reasons as a refused TCP accept (`limit_per_ip`, `limit_total`).
    let admission = inner.admit(peer.ip()).map_err(|e| match e {
        TransportError::Limit(l) => l.reason(),
        _ => "connection_limit",
    })?;
    let direction = if waiter.is_some() {
        Direction::Outbound
    } else {
        Direction::Inbound
    };
    if ep.kind == TransportKind::TlsSctp && tls_role(ep, waiter).is_none() {
        return Err("tls_not_configured");
    }
    let dtls = match dtls_role(ep, waiter) {
        _ if ep.kind != TransportKind::DtlsSctp => None,
        None => return Err("tls_not_configured"),
        Some(role) => {
            // RFC 6083 §4.5: DATA must be authenticated; a peer without AUTH cannot do that.
            if !ep
                .sock
                .socket()
                .peer_auth_supported(assoc_id)
                .unwrap_or(false)
            {
                return Err("dtls_peer_without_auth");
            }
            let conn = DtlsAssoc::new(&role).map_err(|e| {
                tracing::warn!(error = %e, "DTLS connection not created");
                "dtls_setup"
            })?;
            Some(Mutex::new(AssocDtls {
                conn,
                held: VecDeque::new(),
                dry_wait: false,
                shutdown_after: false,
                first: None,
                key_fingerprint: None,
                handshake_key_deleted: false,
            }))
        }
    };
    let flow = inner.next_flow(ep.kind);
    let info = FlowInfo {
        flow,
        direction,
        local,
        peer,
        identities: PeerIdentities::default(),
        server_name: None,
        alpn: None,
        peer_certificate: false,
    };
    let sink = Arc::new(AssocSink {
        endpoint: Arc::clone(ep),
        assoc_id,
        flow,
        ostreams: AtomicU16::new(ostreams.max(1)),
        state: Mutex::new(SendState::default()),
        tls: tls_role(ep, waiter).map(|role| {
            Mutex::new(AssocTls {
                // RFC 3436 §3.1: only streams with a number both ways carry TLS.
                streams: TlsStreams::new(role).with_bidirectional(ostreams.min(istreams)),
                first: None,
            })
        }),
        dtls,
    });
    lock(&ep.sinks).insert(assoc_id, Arc::clone(&sink));
    inner.sctp.associations.fetch_add(1, Ordering::Relaxed);
    // Outbound associations are offered for reuse (RFC 3261 §18); inbound ones under the
    // peer's address, like TCP connections.
    let key = match waiter {
        Some(w) => w.key.clone(),
        None => ReuseKey {
            kind: ep.kind,
            peer,
            name: None,
            scope: None,
        },
    };
    inner.register_assoc(info.clone(), Arc::clone(&sink), Some(key));
    tracing::debug!(%flow, %peer, %local, ?direction, ostreams, "association up");
    Ok(Assoc {
        core: AssocCore::new(inner.limits().message, peer),
        info,
        sink,
        _admission: admission,
    })
}

/// Sends what [`AssocSink::push`] had to queue, and shutdowns/aborts, for one socket. Ends
/// once the transport is shutting down and the socket has no association left.
async fn write_loop(inner: Arc<Inner>, ep: Arc<Endpoint>) {
    let mut stop = inner.shutdown.subscribe();
    let counters = inner.metrics.flow(ep.kind);
    loop {
        let work: Vec<Arc<AssocSink>> = std::mem::take(&mut *lock(&ep.dirty));
        for sink in work {
            flush(&ep, &sink, counters).await;
        }
        if *stop.borrow_and_update() && lock(&ep.sinks).is_empty() {
            return;
        }
        tokio::select! {
            () = ep.wake.notified() => {}
            _ = stop.changed() => {}
        }
    }
}

/// What the writer does next for one association.
enum Step {
    Send(Placement, Bytes),
    Abort(&'static str),
    Shutdown,
    Done,
}

fn next_step(sink: &AssocSink) -> Step {
    let mut s = lock(&sink.state);
    if s.gone {
        return Step::Done;
    }
    if let Some(reason) = s.abort.take() {
        s.pending.clear();
        s.pending_bytes = 0;
        s.flushing = false;
        return Step::Abort(reason);
    }
    match s.pending.front().map(|(p, b)| (*p, b.clone())) {
        Some((p, b)) => {
            s.flushing = true;
            Step::Send(p, b)
        }
        None => {
            s.flushing = false;
            if std::mem::take(&mut s.shutdown) {
                Step::Shutdown
            } else {
                Step::Done
            }
        }
    }
}

async fn flush(ep: &Endpoint, sink: &Arc<AssocSink>, counters: &metrics::FlowCounters) {
    loop {
        let (p, bytes) = match next_step(sink) {
            Step::Done => return,
            Step::Abort(reason) => {
                tracing::debug!(flow = %sink.flow, reason, "aborting association");
                let _ = ep.sock.abort(sink.assoc_id, reason.as_bytes()).await;
                return;
            }
            Step::Shutdown => {
                let _ = ep.sock.shutdown(sink.assoc_id).await;
                return;
            }
            Step::Send(p, bytes) => (p, bytes),
        };
        let sent = ep.sock.send(&bytes, &sink.info(p)).await;
        let mut s = lock(&sink.state);
        if s.pending.pop_front().is_some() {
            s.pending_bytes = s.pending_bytes.saturating_sub(bytes.len());
        }
        if let Err(e) = sent {
            tracing::debug!(flow = %sink.flow, error = %e, "SCTP send failed");
            metrics::drop(sink.flow.kind(), "sctp_send_failed");
            s.pending.clear();
            s.pending_bytes = 0;
            s.flushing = false;
            return;
        }
        drop(s);
        counters.bytes_out.increment(bytes.len() as u64);
        counters.msgs_out.increment(1);
    }
}
