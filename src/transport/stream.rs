//! The driver of one stream flow (TCP or TLS today; the SCTP family later): one task that
//! moves bytes between the socket, the flow's [`Session`] (plain, or TLS records), its sink and
//! its [`FlowCore`], and sleeps until the socket is ready or the core's next deadline. Every
//! decision is the core's; the session never touches the socket itself.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::mpsc::error::TrySendError;

use super::flow_core::{FlowCore, FlowEvent};
use super::manager::{Incoming, Inner, StreamGuard, StreamParts};
use super::metrics;
use super::session::{Received, Session};
use super::sink::Control;
use crate::flood::RequestVerdict;

/// How long our close (TLS close_notify, then FIN) may wait for the socket.
const SHUTDOWN_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Our close: TLS close_notify, the records out, then FIN. Bounded in time; boxed (rare, and
/// inline it would grow every flow's task).
async fn send_close(tcp: &TcpStream, session: &mut Session) {
    session.send_close();
    let flush = async {
        loop {
            match session.write_records(tcp) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if tcp.writable().await.is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    };
    let _ = tokio::time::timeout(SHUTDOWN_WRITE_TIMEOUT, flush).await;
    let _ = socket2::SockRef::from(tcp).shutdown(std::net::Shutdown::Write);
}

/// Runs a registered stream flow until it closes. `expect_header` starts the header timer at
/// once (inbound connections).
pub(crate) async fn drive(
    inner: Arc<Inner>,
    tcp: TcpStream,
    session: Session,
    parts: StreamParts,
    expect_header: bool,
) {
    let flow = parts.info.flow;
    let sink = Arc::clone(&parts.sink);
    let mut guard = StreamGuard {
        inner: Arc::clone(&inner),
        flow,
        reason: "closed",
    };
    guard.reason = run(&inner, tcp, session, parts, expect_header).await;
    sink.set_gone();
    tracing::debug!(reason = guard.reason, "flow closed");
}

/// What one pass of writing left.
enum WriteState {
    /// Nothing more to write now.
    Idle,
    /// The socket is full: wait until it is writable.
    Blocked,
}

/// Writes what the core and the session have until done or the socket is full.
fn write_out(
    tcp: &TcpStream,
    session: &mut Session,
    core: &mut FlowCore,
    inner: &Inner,
    sink: &super::sink::ConnSink,
    kind: crate::TransportKind,
) -> io::Result<WriteState> {
    let counters = inner.metrics.flow(kind);
    loop {
        if session.has_records() {
            match session.write_records(tcp) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(WriteState::Blocked),
                Err(e) => return Err(e),
            }
        }
        if !core.wants_write() {
            return Ok(WriteState::Idle);
        }
        let out = core.transmit();
        if out.is_empty() {
            // Everything was handed to the socket: nothing to flush on TCP.
            core.on_written(Instant::now(), 0);
            continue;
        }
        match session.write(tcp, &out) {
            Ok(n) => {
                let done = core.on_written(Instant::now(), n);
                counters.bytes_out.increment(n as u64);
                if done.messages > 0 {
                    counters.msgs_out.increment(done.messages);
                    sink.written(done.app_bytes);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(WriteState::Blocked),
            Err(e) => return Err(e),
        }
    }
}

async fn run(
    inner: &Arc<Inner>,
    tcp: TcpStream,
    mut session: Session,
    parts: StreamParts,
    expect_header: bool,
) -> &'static str {
    let StreamParts { info, sink } = parts;
    let kind = info.flow.kind();
    let counters = inner.metrics.flow(kind);
    // The limits' generation this flow runs under: a newer one is taken when the sink wakes
    // the flow ([`super::manager::Transport::set_limits`] wakes every flow).
    let mut generation = inner.live.generation();
    let mut core = FlowCore::new(
        &inner.cfg,
        &inner.live.get(),
        info.peer,
        Instant::now(),
        expect_header,
    );
    // One timer for the flow's life, moved when the next deadline changes: a fresh
    // `sleep_until` per loop turn registers and deregisters a timer entry each time.
    let mut armed = core.poll_timeout();
    let timer = tokio::time::sleep_until(armed.into());
    tokio::pin!(timer);
    // Application data that came with the last handshake flight.
    let n = session.buffered(core.read_buffer());
    if n > 0 {
        core.handle_read(Instant::now(), n);
    }

    // The sink is read when its wake-up fired (and once at the start): a push between the
    // read and the next wait leaves a permit, so the wait fires at once and nothing is missed.
    let mut woken = true;
    loop {
        let now = Instant::now();
        if std::mem::take(&mut woken) {
            let g = inner.live.generation();
            if g != generation {
                generation = g;
                core.set_limits(&inner.live.get(), now);
            }
            match sink.take(core.queued()) {
                Control::Open => {}
                Control::Close(drain) => core.close(now, drain),
                Control::Abort(reason) => core.abort(reason),
            }
        }
        let blocked = match write_out(&tcp, &mut session, &mut core, inner, &sink, kind) {
            Ok(WriteState::Idle) => false,
            Ok(WriteState::Blocked) => true,
            Err(_) => return "write_error",
        };
        while let Some(ev) = core.poll_event(now) {
            match ev {
                FlowEvent::Deliver(message) => {
                    counters.msgs_in.increment(1);
                    inner.capture(kind, info.peer, info.local, message.as_bytes());
                    match inner.flood.message(kind, info.peer, &message) {
                        RequestVerdict::Admit => {}
                        RequestVerdict::Reply(r, _) => {
                            let _ = inner.send(info.flow, r);
                            continue;
                        }
                        RequestVerdict::Drop(_) => continue,
                    }
                    // Handed up at once, or waited for while the channel is full (TCP
                    // back-pressure). The wait is boxed: rarely needed, and inline it would
                    // grow every flow's task (an idle flow's memory) by the message's size.
                    match inner.incoming.try_send(Incoming::new(message, &info)) {
                        Ok(()) => {}
                        Err(TrySendError::Closed(_)) => return "receiver_gone",
                        Err(TrySendError::Full(inc)) => {
                            if Box::pin(inner.incoming.send(inc)).await.is_err() {
                                return "receiver_gone";
                            }
                        }
                    }
                }
                FlowEvent::Unindex => inner.unindex(info.flow),
                FlowEvent::Drop(reason) => metrics::drop(kind, reason),
                FlowEvent::KeepAlive(what) => metrics::keepalive(kind, what),
                FlowEvent::SendClose => {
                    Box::pin(send_close(&tcp, &mut session)).await;
                    core.on_write_shutdown();
                }
                FlowEvent::Closed(reason) => return reason,
            }
        }
        if !blocked && (core.wants_write() || session.has_records()) {
            // Events queued more to write (a pong, an error response).
            continue;
        }
        let deadline = core.poll_timeout();
        if deadline != armed || timer.is_elapsed() {
            timer.as_mut().reset(deadline.into());
            armed = deadline;
        }
        let reading = core.wants_read();
        tokio::select! {
            biased;
            () = sink.wait() => woken = true,
            r = tcp.writable(), if blocked => {
                if r.is_err() {
                    return "write_error";
                }
            }
            r = tcp.readable(), if reading => {
                if r.is_err() {
                    return "read_error";
                }
                match session.read(&tcp, core.read_buffer()) {
                    Ok(Received::Closed) => core.handle_read(Instant::now(), 0),
                    Ok(Received::Plain(0)) => {}
                    Ok(Received::Plain(n)) => {
                        counters.bytes_in.increment(n as u64);
                        core.handle_read(Instant::now(), n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return "read_error",
                }
            }
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
    /// (benches/tls_memory.sh). The TLS state is boxed in the session and the rare
    /// back-pressure wait and close are boxed; this keeps it that way.
    #[test]
    fn flow_task_stays_small() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (t, _rx) = crate::transport::Transport::new(Default::default());
            let inner = Arc::clone(&t.inner);
            let f = |(t, s): (TcpStream, Session), p: StreamParts| {
                drive(Arc::clone(&inner), t, s, p, true)
            };
            let size = output_size(&f);
            println!("TLS flow task future: {size} bytes");
            assert!(size <= 2560, "TLS flow task future grew to {size} bytes");
        });
    }
}
