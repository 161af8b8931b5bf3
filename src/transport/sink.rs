//! How bytes reach a flow. A connection's sink is one shared allocation — a queue bounded in
//! bytes, the close/abort request and a wake-up for the flow's driver — in place of a channel
//! per flow plus a control channel and a shared counter (three allocations and two wake-up
//! paths per connection). A UDP flow's sink is its socket and peer: a direct `sendto`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::Notify;

use super::limits::{QueueOverflow, WriteBudget};

/// What the application asked of a connection's driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    /// Keep going.
    Open,
    /// Close gracefully, draining for this long.
    Close(Duration),
    /// Close now; the reason is a metrics label.
    Abort(&'static str),
}

/// Why bytes were not queued.
#[derive(Debug)]
pub(crate) enum PushError {
    /// The driver has ended.
    Gone,
    /// The byte bound would be exceeded; the flow is being aborted.
    Overflow(QueueOverflow),
    /// The message is larger than the flow can carry whole (DTLS over SCTP: one record);
    /// refused, the flow stays up.
    TooLarge { len: usize, limit: usize },
}

#[derive(Debug)]
struct State {
    queue: VecDeque<Bytes>,
    /// Bytes accepted and not yet written (queued here or in the driver's flow core).
    queued: usize,
    control: Control,
    gone: bool,
}

/// The sink of one connection (TCP or TLS; later an SCTP association).
#[derive(Debug)]
pub(crate) struct ConnSink {
    state: Mutex<State>,
    wake: Notify,
}

impl ConnSink {
    pub(crate) fn new() -> Arc<ConnSink> {
        Arc::new(ConnSink {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                queued: 0,
                control: Control::Open,
                gone: false,
            }),
            wake: Notify::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue worse than losing a message.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `bytes` under `budget`. Over the bound, the flow is aborted
    /// (`write_queue_full`) and nothing is queued.
    pub(crate) fn push(&self, bytes: Bytes, budget: WriteBudget) -> Result<(), PushError> {
        let mut s = self.state();
        if s.gone {
            return Err(PushError::Gone);
        }
        if let Err(o) = budget.check(s.queued, bytes.len()) {
            s.control = Control::Abort("write_queue_full");
            drop(s);
            self.wake.notify_one();
            return Err(PushError::Overflow(o));
        }
        s.queued += bytes.len();
        s.queue.push_back(bytes);
        drop(s);
        self.wake.notify_one();
        Ok(())
    }

    /// Asks for a graceful close (ignored once an abort was asked for).
    pub(crate) fn close(&self, drain: Duration) {
        let mut s = self.state();
        if !matches!(s.control, Control::Abort(_)) {
            s.control = Control::Close(drain);
        }
        drop(s);
        self.wake.notify_one();
    }

    /// Wakes the driver with nothing queued (it re-reads the transport's limits).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Asks for an immediate close.
    pub(crate) fn abort(&self, reason: &'static str) {
        self.state().control = Control::Abort(reason);
        self.wake.notify_one();
    }

    // ---- the driver's side ----

    /// Moves every queued message to `into` and returns the pending request (a close is
    /// returned once; an abort stays).
    pub(crate) fn take(&self, into: &mut impl Extend<Bytes>) -> Control {
        let mut s = self.state();
        into.extend(s.queue.drain(..));
        let c = s.control;
        if let Control::Close(_) = c {
            s.control = Control::Open;
        }
        c
    }

    /// `n` accepted bytes were written: they leave the bound.
    pub(crate) fn written(&self, n: usize) {
        if n > 0 {
            let mut s = self.state();
            s.queued = s.queued.saturating_sub(n);
        }
    }

    /// The driver has ended: later pushes fail.
    pub(crate) fn set_gone(&self) {
        let mut s = self.state();
        s.gone = true;
        s.queue.clear();
        s.queued = 0;
    }

    /// Resolves when something was pushed or asked for since the last wait.
    pub(crate) async fn wait(&self) {
        self.wake.notified().await;
    }
}

/// How bytes reach a flow.
#[derive(Debug, Clone)]
pub(crate) enum Sink {
    /// A connection's queue, written by its driver task.
    Conn(Arc<ConnSink>),
    /// An SCTP association on its one-to-many socket.
    Assoc(Arc<super::sctp::AssocSink>),
    /// A UDP socket (by index in the transport's socket list) and the peer.
    Datagram {
        socket: Arc<UdpSocket>,
        sock_idx: usize,
        peer: SocketAddr,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_aborts_and_written_bytes_leave_it() {
        let s = ConnSink::new();
        let b = WriteBudget::new(10);
        assert!(s.push(Bytes::from_static(b"123456"), b).is_ok());
        let mut q = Vec::new();
        assert_eq!(s.take(&mut q), Control::Open);
        assert_eq!(q.len(), 1);
        // Taken but not written: still counted.
        assert!(matches!(
            s.push(Bytes::from_static(b"12345"), b),
            Err(PushError::Overflow(_))
        ));
        assert_eq!(s.take(&mut q), Control::Abort("write_queue_full"));
        s.written(6);
        assert!(s.push(Bytes::from_static(b"12345"), b).is_ok());
    }

    #[test]
    fn close_is_taken_once_abort_stays_gone_refuses() {
        let s = ConnSink::new();
        s.close(Duration::from_secs(1));
        let mut q: Vec<Bytes> = Vec::new();
        assert_eq!(s.take(&mut q), Control::Close(Duration::from_secs(1)));
        assert_eq!(s.take(&mut q), Control::Open);
        s.abort("aborted");
        s.close(Duration::ZERO);
        assert_eq!(s.take(&mut q), Control::Abort("aborted"));
        assert_eq!(s.take(&mut q), Control::Abort("aborted"));
        s.set_gone();
        assert!(matches!(
            s.push(Bytes::from_static(b"x"), WriteBudget::new(10)),
            Err(PushError::Gone)
        ));
    }
}
