//! The driver of one stream flow (TCP or TLS today; the SCTP family later): one task that
//! moves bytes between the socket, the flow's sink and its [`FlowCore`], and sleeps until
//! the core's next deadline. Every decision is the core's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

use super::flow_core::{FlowCore, FlowEvent};
use super::manager::{Incoming, Inner, StreamGuard, StreamParts};
use super::metrics;
use super::sink::Control;

const SHUTDOWN_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

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

/// Writes some of `pending`, or flushes when it is empty. Cancel-safe: one `write` call
/// either happened (and its count is returned, 0 for a flush) or did not.
async fn write_step<W: AsyncWrite + Unpin>(wr: &mut W, pending: &[u8]) -> std::io::Result<usize> {
    if pending.is_empty() {
        wr.flush().await.map(|()| 0)
    } else {
        match wr.write(pending).await? {
            0 => Err(std::io::ErrorKind::WriteZero.into()),
            n => Ok(n),
        }
    }
}

/// Runs a registered stream flow until it closes. `expect_header` starts the header timer at
/// once (inbound connections). The stream comes split (`tokio::io::split`, done by the caller
/// before the task is spawned) so that the task's future holds two pointers instead of
/// copies of the TLS state (about 1.2 KiB for a rustls connection).
pub(crate) async fn drive<S>(
    inner: Arc<Inner>,
    stream: (ReadHalf<S>, WriteHalf<S>),
    parts: StreamParts,
    expect_header: bool,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let flow = parts.info.flow;
    let sink = Arc::clone(&parts.sink);
    let mut guard = StreamGuard {
        inner: Arc::clone(&inner),
        flow,
        reason: "closed",
    };
    guard.reason = run(&inner, stream, parts, expect_header).await;
    sink.set_gone();
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
    let StreamParts { info, sink } = parts;
    let kind = info.flow.kind();
    let counters = inner.metrics.flow(kind);
    let mut core = FlowCore::new(&inner.cfg, info.peer, Instant::now(), expect_header);
    // One timer for the flow's life, moved when the next deadline changes: a fresh
    // `sleep_until` per loop turn registers and deregisters a timer entry each time.
    let mut armed = core.poll_timeout();
    let timer = tokio::time::sleep_until(armed.into());
    tokio::pin!(timer);

    loop {
        let now = Instant::now();
        match sink.take(core.queued()) {
            Control::Open => {}
            Control::Close(drain) => core.close(now, drain),
            Control::Abort(reason) => core.abort(reason),
        }
        while let Some(ev) = core.poll_event(now) {
            match ev {
                FlowEvent::Deliver(message) => {
                    counters.msgs_in.increment(1);
                    if !deliver(inner, Incoming::new(message, &info)).await {
                        return "receiver_gone";
                    }
                }
                FlowEvent::Unindex => inner.unindex(info.flow),
                FlowEvent::Drop(reason) => metrics::drop(kind, reason),
                FlowEvent::KeepAlive(what) => metrics::keepalive(kind, what),
                FlowEvent::SendClose => {
                    let _ = tokio::time::timeout(SHUTDOWN_WRITE_TIMEOUT, wr.shutdown()).await;
                    core.on_write_shutdown();
                }
                FlowEvent::Closed(reason) => return reason,
            }
        }
        let deadline = core.poll_timeout();
        if deadline != armed || timer.is_elapsed() {
            timer.as_mut().reset(deadline.into());
            armed = deadline;
        }
        let writing = core.wants_write();
        let reading = core.wants_read();
        let out = if writing {
            core.transmit()
        } else {
            Bytes::new()
        };
        tokio::select! {
            biased;
            () = sink.wait() => {}
            r = write_step(&mut wr, &out), if writing => match r {
                Err(_) => return "write_error",
                Ok(n) => {
                    let done = core.on_written(Instant::now(), n);
                    counters.bytes_out.increment(n as u64);
                    if done.messages > 0 {
                        counters.msgs_out.increment(done.messages);
                        sink.written(done.app_bytes);
                    }
                }
            },
            r = rd.read_buf(core.read_buffer()), if reading => match r {
                Err(_) => return "read_error",
                Ok(n) => {
                    counters.bytes_in.increment(n as u64);
                    core.handle_read(Instant::now(), n);
                }
            },
            () = &mut timer => core.handle_timeout(Instant::now()),
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
