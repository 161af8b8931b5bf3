//! Connect-or-reuse for outbound connections: a flow already open under the target's reuse key
//! is returned; otherwise one connect per key is in flight at a time, so that concurrent
//! senders to a new target share one connection instead of opening several.

use std::sync::{Arc, Mutex};

use super::error::TransportError;
use super::flow::Flow;
use super::manager::Inner;
use super::table::ReuseKey;
use crate::idhash::SeededMap;
use crate::{Target, TransportKind};

/// One gate per target being connected.
#[derive(Debug, Default)]
pub(crate) struct Dialer {
    connecting: Mutex<SeededMap<ReuseKey, Arc<tokio::sync::Mutex<()>>>>,
}

impl Dialer {
    fn gates(&self) -> std::sync::MutexGuard<'_, SeededMap<ReuseKey, Arc<tokio::sync::Mutex<()>>>> {
        self.connecting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The reuse key of a connection-oriented target: TLS adds the name the server is verified
/// against (the IP address when none is given).
pub(crate) fn reuse_key(target: &Target) -> ReuseKey {
    let name = matches!(
        target.transport,
        TransportKind::Tls | TransportKind::TlsSctp | TransportKind::DtlsSctp
    )
    .then(|| {
        target
            .server_name
            .clone()
            .unwrap_or_else(|| target.addr.ip().to_string().into())
    });
    ReuseKey {
        kind: target.transport,
        peer: target.addr,
        name,
        scope: target.scope.clone(),
    }
}

/// A flow to a TCP, TLS or SCTP `target`: reused, or opened (one connect per key at a time).
pub(crate) async fn connect(inner: &Arc<Inner>, target: &Target) -> Result<Flow, TransportError> {
    let key = reuse_key(target);
    if let Some(f) = inner.reusable(&key) {
        return Ok(f);
    }
    let gate = Arc::clone(inner.dialer.gates().entry(key.clone()).or_default());
    let held = gate.lock().await;
    let r = match inner.reusable(&key) {
        Some(f) => Ok(f),
        None if target.transport.is_sctp() => {
            super::sctp::connect(inner, target, key.clone()).await
        }
        None => super::tcp::connect(inner, target, key.clone()).await,
    };
    drop(held);
    let mut gates = inner.dialer.gates();
    // The map and this function hold the only references: nobody waits.
    if Arc::strong_count(&gate) <= 2 {
        gates.remove(&key);
    }
    r
}
