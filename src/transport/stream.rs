//! The driver of one stream flow (TCP or TLS today; the SCTP family later): one task
//! that reads, frames, delivers, writes the queue, answers pings and runs the timers.
//! Decisions come from the pure state machines ([`super::idle`], [`super::keepalive`],
//! [`super::close`]); this file only moves bytes.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;

use super::close::{CloseAction, CloseMachine};
use super::idle::{FlowTimers, HeaderWatch};
use super::keepalive::{KeepAlive, KeepAliveAction, PING};
use super::manager::{Control, Incoming, Inner, StreamGuard, StreamParts};
use super::metrics;
use super::receive::{self, Inbound};
use crate::wire::response::framing_error_response;
use crate::wire::{Frame, StreamFramer};

const READ_CHUNK: usize = 8 * 1024;
/// What a read into an empty buffer reserves: most SIP messages fit, and an idle flow
/// (thousands of them, waiting in that read) holds no more than this.
const IDLE_READ_CHUNK: usize = 2 * 1024;
const SHUTDOWN_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

async fn read_some<R: AsyncRead + Unpin>(rd: &mut R, buf: &mut BytesMut) -> std::io::Result<usize> {
    if buf.is_empty() && buf.capacity() == 0 {
        buf.reserve(IDLE_READ_CHUNK);
    } else if buf.capacity() - buf.len() < READ_CHUNK / 2 {
        buf.reserve(READ_CHUNK);
    }
    rd.read_buf(buf).await
}

/// Queued messages are joined up to about this many bytes (one TLS record's worth).
const COALESCE_MAX: usize = 16 * 1024;

/// Joins the messages already waiting in the queue to `first` (up to about
/// [`COALESCE_MAX`] bytes): a burst then goes out in one write (one TLS record, one
/// system call) instead of one per message. A lone message is passed through as it is.
/// Returns the bytes and how many messages they hold.
fn coalesce(first: Bytes, rx: &mut mpsc::UnboundedReceiver<Bytes>) -> (Bytes, u64) {
    if first.is_empty() || first.len() >= COALESCE_MAX {
        return (first, 1);
    }
    let Ok(second) = rx.try_recv() else {
        return (first, 1);
    };
    let mut joined = BytesMut::with_capacity(COALESCE_MAX.max(first.len() + second.len()));
    joined.extend_from_slice(&first);
    joined.extend_from_slice(&second);
    let mut msgs = 2;
    while joined.len() < COALESCE_MAX {
        match rx.try_recv() {
            Ok(b) => {
                joined.extend_from_slice(&b);
                msgs += 1;
            }
            Err(_) => break,
        }
    }
    (joined.freeze(), msgs)
}

/// Hands a message to the upper layer, waiting while its channel is full (TCP
/// back-pressure). The waiting future is boxed: it is rarely needed, and inline it would
/// make every flow's task larger by its size (an idle flow's memory). False when the
/// receiver is gone.
async fn deliver(inner: &Inner, inc: Incoming) -> bool {
    match inner.incoming.try_send(inc) {
        Ok(()) => true,
        Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => false,
        Err(tokio::sync::mpsc::error::TrySendError::Full(inc)) => {
            Box::pin(inner.incoming.send(inc)).await.is_ok()
        }
    }
}

enum WriteStep {
    Wrote(usize),
    Flushed,
}

/// Writes some of `pending`, or flushes when nothing is pending. Cancel-safe: one
/// `write` call either happened (and its count is returned) or did not.
async fn write_step<W: AsyncWrite + Unpin>(
    wr: &mut W,
    pending: &[u8],
) -> std::io::Result<WriteStep> {
    if pending.is_empty() {
        wr.flush().await.map(|()| WriteStep::Flushed)
    } else {
        wr.write(pending).await.map(WriteStep::Wrote)
    }
}

/// Runs a registered stream flow until it closes. `expect_header` starts the header
/// timer at once (inbound connections).
/// The stream comes split (`tokio::io::split`, done by the caller before the task is
/// spawned) so that the task's future holds two pointers instead of copies of the TLS
/// state (about 1.2 KiB for a rustls connection).
pub(crate) async fn drive<S>(
    inner: Arc<Inner>,
    stream: (ReadHalf<S>, WriteHalf<S>),
    parts: StreamParts,
    expect_header: bool,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let flow = parts.info.flow;
    let mut guard = StreamGuard {
        inner: Arc::clone(&inner),
        flow,
        reason: "closed",
    };
    guard.reason = run(&inner, stream, parts, expect_header).await;
    tracing::debug!(reason = guard.reason, "flow closed");
}

async fn run<S>(
    inner: &Arc<Inner>,
    (mut rd, mut wr): (ReadHalf<S>, WriteHalf<S>),
    parts: StreamParts,
    expect_header: bool,
) -> &'static str
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let StreamParts {
        info,
        mut rx,
        queued,
        mut ctl,
    } = parts;
    let flow = info.flow;
    let kind = flow.kind();
    let cfg = &inner.cfg;
    let counters = inner.metrics.flow(kind);
    let now = Instant::now();
    let mut framer = StreamFramer::new(cfg.limits);
    let mut watch = HeaderWatch::default();
    let mut timers = FlowTimers::new(cfg.idle_timeout, cfg.header_timeout, now, expect_header);
    let mut keepalive = KeepAlive::new(cfg.keepalive_interval, cfg.pong_timeout, now);
    let mut close = CloseMachine::new(cfg.linger);
    // Bytes being written, and how many of them count against the queue bound.
    let mut pending = Bytes::new();
    let mut pending_counted = 0usize;
    let mut pending_msgs = 0u64;
    // Pongs, pings and error responses made here: written between queued messages.
    let mut urgent: VecDeque<Bytes> = VecDeque::new();
    let mut need_flush = false;
    let mut read_open = true;
    let mut write_open = true;
    let mut ctl_open = true;
    // One timer for the flow's life, moved when the next deadline changes: a fresh
    // `sleep_until` per loop turn registers and deregisters a timer entry each time.
    let mut armed = now + cfg.idle_timeout;
    let timer = tokio::time::sleep_until(armed.into());
    tokio::pin!(timer);

    loop {
        let now = Instant::now();
        if pending.is_empty() {
            if let Some(u) = urgent.pop_front() {
                pending = u;
                pending_counted = 0;
            }
        }
        let writes_idle = pending.is_empty()
            && urgent.is_empty()
            && queued.load(Ordering::Acquire) == 0
            && !need_flush;
        match close.poll(now, writes_idle || !write_open) {
            Some(CloseAction::SendClose) => {
                if write_open {
                    let _ = tokio::time::timeout(SHUTDOWN_WRITE_TIMEOUT, wr.shutdown()).await;
                    write_open = false;
                }
                continue;
            }
            Some(CloseAction::Finish) => return "closed",
            None => {}
        }
        let deadline = [
            Some(timers.deadline()),
            keepalive.deadline(),
            close.deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now + cfg.idle_timeout);
        if deadline != armed || timer.is_elapsed() {
            timer.as_mut().reset(deadline.into());
            armed = deadline;
        }

        tokio::select! {
            biased;
            changed = ctl.changed(), if ctl_open => {
                if changed.is_err() {
                    ctl_open = false;
                    continue;
                }
                let c = *ctl.borrow_and_update();
                match c {
                    Control::Open => {}
                    Control::Close(drain) => {
                        inner.unindex(flow);
                        close.close(now, drain);
                    }
                    Control::Abort(reason) => return reason,
                }
            }
            r = write_step(&mut wr, &pending), if write_open && (!pending.is_empty() || need_flush) => {
                match r {
                    Err(_) | Ok(WriteStep::Wrote(0)) => return "write_error",
                    Ok(WriteStep::Flushed) => need_flush = false,
                    Ok(WriteStep::Wrote(n)) => {
                        pending.advance(n);
                        counters.bytes_out.increment(n as u64);
                        timers.on_activity(Instant::now());
                        if pending.is_empty() {
                            if pending_counted > 0 {
                                queued.fetch_sub(pending_counted, Ordering::AcqRel);
                                counters.msgs_out.increment(pending_msgs);
                                pending_counted = 0;
                            }
                            need_flush = true;
                        }
                    }
                }
            }
            m = rx.recv(), if write_open && pending.is_empty() && urgent.is_empty() => {
                match m {
                    Some(b) => {
                        let (b, msgs) = coalesce(b, &mut rx);
                        pending_counted = b.len();
                        pending_msgs = msgs;
                        pending = b;
                        if pending_counted == 0 {
                            continue;
                        }
                    }
                    None => return "transport_dropped",
                }
            }
            r = read_some(&mut rd, framer.buffer_mut()), if read_open => {
                let now = Instant::now();
                match r {
                    Ok(0) => {
                        read_open = false;
                        if !framer.is_at_boundary() {
                            metrics::drop(kind, "truncated_at_close");
                        }
                        inner.unindex(flow);
                        close.peer_closed();
                    }
                    Err(_) => return "read_error",
                    Ok(n) => {
                        counters.bytes_in.increment(n as u64);
                        timers.on_activity(now);
                        keepalive.on_inbound(now);
                        let mut taken = false;
                        loop {
                            match framer.next_frame() {
                                Ok(None) => break,
                                Ok(Some(Frame::Message(raw))) => {
                                    taken = true;
                                    if !close.delivers() {
                                        continue;
                                    }
                                    counters.msgs_in.increment(1);
                                    match receive::stream_message(raw, info.peer, &cfg.limits) {
                                        Inbound::Deliver(message) => {
                                            if message.is_request() && !close.accepts_requests() {
                                                metrics::drop(kind, "request_on_closing_flow");
                                                continue;
                                            }
                                            let inc = Incoming::new(message, &info);
                                            if !deliver(inner, inc).await {
                                                return "receiver_gone";
                                            }
                                        }
                                        Inbound::Reply(r) => urgent.push_back(r),
                                        Inbound::Discard(reason) => metrics::drop(kind, reason),
                                        Inbound::Stun(_) | Inbound::KeepAlive => {}
                                    }
                                }
                                Ok(Some(Frame::Ping)) => {
                                    taken = true;
                                    metrics::keepalive(kind, "ping_in");
                                    if close.writable() {
                                        urgent.push_back(Bytes::from_static(keepalive.on_ping()));
                                        metrics::keepalive(kind, "pong_out");
                                    }
                                }
                                Ok(Some(Frame::Pong)) => {
                                    taken = true;
                                    metrics::keepalive(kind, "pong_in");
                                    keepalive.on_pong(now);
                                }
                                Err(e) => {
                                    metrics::drop(kind, "framing_error");
                                    tracing::debug!(error = %e, "framing error, closing");
                                    if let Some(r) = framing_error_response(framer.buffered(), &e) {
                                        urgent.push_back(r);
                                    }
                                    read_open = false;
                                    inner.unindex(flow);
                                    close.close(now, Duration::ZERO);
                                    break;
                                }
                            }
                        }
                        if framer.buffered().is_empty() && framer.buffer_mut().capacity() > 0 {
                            // Nothing partial: give the read buffer back, so that an idle
                            // flow does not keep a full chunk (the next read takes a small one).
                            *framer.buffer_mut() = BytesMut::new();
                        }
                        let pending_header = read_open && watch.update(framer.buffered(), taken);
                        timers.set_header_pending(pending_header, now);
                    }
                }
            }
            () = &mut timer => {
                let now = Instant::now();
                if let Some(expiry) = timers.check(now) {
                    metrics::drop(kind, expiry.reason());
                    return expiry.reason();
                }
                match keepalive.poll(now) {
                    Some(KeepAliveAction::SendPing) => {
                        metrics::keepalive(kind, "ping_out");
                        framer.set_awaiting_pong(true);
                        urgent.push_back(Bytes::from_static(PING));
                    }
                    Some(KeepAliveAction::Failed) => return "keepalive_timeout",
                    None => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output_size<A, B, Fut, F: Fn(A, B) -> Fut>(_: &F) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// Every idle flow is one parked task: its future's size is memory per connection
    /// (benches/tls_memory.sh). The stream is held split (two pointers) and the rare
    /// back-pressure wait is boxed; this keeps it that way.
    #[test]
    fn flow_task_stays_small() {
        type S = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (t, _rx) = crate::transport::Transport::new(Default::default());
            let inner = Arc::clone(&t.inner);
            let f = |s: S, p: StreamParts| drive(Arc::clone(&inner), tokio::io::split(s), p, true);
            let size = output_size(&f);
            println!("TLS flow task future: {size} bytes");
            assert!(size <= 2560, "TLS flow task future grew to {size} bytes");
        });
    }
}
