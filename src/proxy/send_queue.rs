//! One send queue per target, so that what the core sends to a target leaves in the order
//! it was produced: a request, its retransmission and its CANCEL wait behind the connect
//! of the first send instead of racing it on their own tasks. A queue ends when it stays
//! empty for a while and starts again on demand.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::transaction::TransactionId;
use crate::transport::Transport;
use crate::{Target, TransportKind};

use super::driver::{Event, PendingResponse, ReuseSource};

/// One message to send.
#[derive(Debug)]
pub(crate) struct Job {
    bytes: Bytes,
    /// The client transaction to tell when the send fails.
    client: Option<TransactionId>,
    /// RFC 5923 local domain to send for (TLS family through the reuse endpoint).
    domain: Option<String>,
    /// A response's remaining destinations, handed back when this send fails.
    retry: Option<Box<PendingResponse>>,
}

impl Job {
    pub(crate) fn request(
        bytes: Bytes,
        client: Option<TransactionId>,
        domain: Option<String>,
    ) -> Job {
        Job {
            bytes,
            client,
            domain,
            retry: None,
        }
    }

    pub(crate) fn response(bytes: Bytes, retry: Option<Box<PendingResponse>>) -> Job {
        Job {
            bytes,
            client: None,
            domain: None,
            retry,
        }
    }
}

type Key = (
    TransportKind,
    SocketAddr,
    Option<Arc<str>>,
    Option<Arc<str>>,
);

/// What every queue's task needs.
struct Shared {
    transport: Transport,
    reuse: Option<ReuseSource>,
    events: mpsc::UnboundedSender<Event>,
    idle: Duration,
}

/// The queues, owned by the driver loop.
pub(crate) struct SendQueues {
    shared: Arc<Shared>,
    queues: HashMap<Key, mpsc::UnboundedSender<Job>>,
}

impl SendQueues {
    pub(crate) fn new(
        transport: Transport,
        reuse: Option<ReuseSource>,
        events: mpsc::UnboundedSender<Event>,
        idle: Duration,
    ) -> SendQueues {
        SendQueues {
            shared: Arc::new(Shared {
                transport,
                reuse,
                events,
                idle,
            }),
            queues: HashMap::new(),
        }
    }

    /// Queues `job` for `target` (behind what is already queued for it).
    pub(crate) fn push(&mut self, target: Target, job: Job) {
        let key: Key = (
            target.transport,
            target.addr,
            target.server_name.clone(),
            target.scope.clone(),
        );
        let job = match self.queues.get(&key) {
            Some(q) => match q.send(job) {
                Ok(()) => return,
                Err(mpsc::error::SendError(job)) => job,
            },
            None => job,
        };
        if self.queues.len() > 1024 {
            self.queues.retain(|_, q| !q.is_closed());
        }
        let (tx, rx) = mpsc::unbounded_channel();
        // A fresh channel with its receiver alive accepts the job.
        let _ = tx.send(job);
        self.queues.insert(key, tx);
        tokio::spawn(serve(Arc::clone(&self.shared), target, rx));
    }
}

/// Sends the queue's jobs one after the other until it stays empty for `idle`.
async fn serve(shared: Arc<Shared>, target: Target, mut rx: mpsc::UnboundedReceiver<Job>) {
    loop {
        match tokio::time::timeout(shared.idle, rx.recv()).await {
            Ok(Some(job)) => deliver(&shared, &target, job).await,
            Ok(None) => return,
            Err(_) => {
                // Refuse new jobs (the driver starts a new queue), then finish those queued.
                rx.close();
                while let Ok(job) = rx.try_recv() {
                    deliver(&shared, &target, job).await;
                }
                return;
            }
        }
    }
}

async fn deliver(shared: &Shared, target: &Target, job: Job) {
    let reuse = job
        .domain
        .as_ref()
        .and_then(|d| shared.reuse.as_ref().and_then(|r| r()).map(|r| (r, d)));
    let result = match reuse {
        Some((endpoint, domain)) => {
            let aus = target
                .server_name
                .as_deref()
                .map_or_else(|| target.addr.ip().to_string(), str::to_owned);
            endpoint
                .send_prepared(domain, &aus, target, job.bytes)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
        None => shared
            .transport
            .send_to(target, job.bytes)
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
    };
    if let Err(e) = result {
        tracing::debug!(%e, addr = %target.addr, transport = %target.transport, "not sent");
        if let Some(c) = job.client {
            let _ = shared.events.send(Event::SendFailed(c));
        }
        if let Some(r) = job.retry {
            let _ = shared.events.send(Event::ResponseFailed(r));
        }
    }
}
