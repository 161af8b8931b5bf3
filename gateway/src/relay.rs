//! The relay of `sipwire run`: every received message is logged, its Via `alias` offered
//! to the RFC 5923 reuse endpoint, then handed to the library's proxy driver
//! (`sipwire::proxy::driver`), which forwards requests and responses, answers OPTIONS
//! addressed to the gateway itself, and drains on a graceful stop. This module is the one
//! place where received messages are dispatched.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::config::{Config, TransportKind};
use super::endpoint_slot::EndpointSlot;
use super::relay_config;
use super::sip_log::SipLog;
use sipwire::proxy::driver::{self, Command, DriverOptions, Inspect, ListenerMap, ReuseSource};
use sipwire::proxy::{ConfigError, Proxy, ProxyError};
use sipwire::resolve::{DnsConfig, DnsResolver};
use sipwire::transport::{Incoming, Transport};

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The proxy core refused its configuration or timers.
    #[error("relay: {0}")]
    Proxy(#[from] ProxyError),
}

/// Why a new configuration was not taken by the relay.
#[derive(Debug, thiserror::Error)]
pub enum ReconfigureError {
    /// The proxy core refused it.
    #[error("relay: {0}")]
    Config(#[from] ConfigError),
    /// The relay has stopped.
    #[error("relay: not running")]
    Stopped,
}

/// Asks a running relay what it is relaying.
#[derive(Debug, Clone)]
pub struct Snapshots(mpsc::Sender<Command>);

impl Snapshots {
    /// The requests being relayed now; `None` when the relay has stopped.
    pub async fn get(&self) -> Option<Vec<sipwire::proxy::InFlight>> {
        let (reply, answer) = oneshot::channel();
        self.0.send(Command::Snapshot { reply }).await.ok()?;
        answer.await.ok()
    }
}

/// The running relay.
pub struct Relay {
    commands: mpsc::Sender<Command>,
    bound: Vec<(String, TransportKind, SocketAddr)>,
    driver: JoinHandle<()>,
}

impl Relay {
    /// Starts relaying what `incoming` delivers from `transport` (its listeners `bound`).
    pub fn start(
        cfg: &Config,
        transport: Transport,
        incoming: mpsc::Receiver<Incoming>,
        bound: &[(String, TransportKind, SocketAddr)],
        reuse: EndpointSlot,
        sip_log: SipLog,
    ) -> Result<Relay, RelayError> {
        let proxy = Proxy::new(
            relay_config::proxy_config(cfg, bound),
            cfg.proxy.timers(),
            rand_secret(),
        )?;
        let listeners = bound
            .iter()
            .fold(ListenerMap::new(), |m, (name, _, addr)| m.with(*addr, name));
        let dns =
            cfg.proxy
                .name_server()
                .and_then(|ns| match DnsResolver::new(DnsConfig::new(ns)) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        tracing::warn!(error = %e, "no DNS: numeric next hops only");
                        None
                    }
                });
        let slot = reuse.clone();
        let source: ReuseSource = Arc::new(move || Some(slot.get()));
        // RFC 5923 §8.2: the request proceeds whatever the alias decision.
        let inspect: Inspect = Arc::new(move |inc: &Incoming| {
            sip_log.received(inc);
            reuse.get().on_incoming(inc);
        });
        let opts = DriverOptions {
            listeners,
            dns,
            reuse: Some(source),
            queue_idle: None,
            inspect: Some(inspect),
        };
        let (commands, commands_rx) = mpsc::channel(4);
        let driver = tokio::spawn(driver::run_with(
            proxy,
            transport,
            incoming,
            opts,
            commands_rx,
        ));
        Ok(Relay {
            commands,
            bound: bound.to_vec(),
            driver,
        })
    }

    /// Takes the routes and run-time `[proxy]` options of `cfg` for new requests.
    pub async fn reconfigure(&self, cfg: &Config) -> Result<(), ReconfigureError> {
        let (reply, answer) = oneshot::channel();
        let config = Box::new(relay_config::proxy_config(cfg, &self.bound));
        self.commands
            .send(Command::Reconfigure { config, reply })
            .await
            .map_err(|_| ReconfigureError::Stopped)?;
        answer.await.map_err(|_| ReconfigureError::Stopped)??;
        Ok(())
    }

    /// Whether the proxy core would take the routes of `cfg`.
    pub fn check(&self, cfg: &Config) -> Result<(), ReconfigureError> {
        relay_config::proxy_config(cfg, &self.bound).check()?;
        Ok(())
    }

    /// [`Relay::reconfigure`] without waiting for the answer (a checked configuration is
    /// taken; a refusal is logged).
    pub fn reconfigure_now(&self, cfg: &Config) -> Result<(), ReconfigureError> {
        self.check(cfg)?;
        let (reply, answer) = oneshot::channel();
        let config = Box::new(relay_config::proxy_config(cfg, &self.bound));
        self.commands
            .try_send(Command::Reconfigure { config, reply })
            .map_err(|_| ReconfigureError::Stopped)?;
        tokio::spawn(async move {
            if let Ok(Err(e)) = answer.await {
                tracing::error!(error = %e, "relay refused the new routes");
            }
        });
        Ok(())
    }

    /// Graceful stop: new transactions are refused (503), those in flight go on for at
    /// most `within`. Returns how many were still in flight at the end.
    pub async fn drain(&self, within: Duration) -> usize {
        let (reply, answer) = oneshot::channel();
        let until = tokio::time::Instant::now() + within;
        if self
            .commands
            .send(Command::Drain { until, reply })
            .await
            .is_err()
        {
            return 0;
        }
        answer.await.unwrap_or(0)
    }

    /// A handle that asks the relay for the requests it is relaying (the admin `transactions`
    /// command).
    pub fn snapshots(&self) -> Snapshots {
        Snapshots(self.commands.clone())
    }

    /// Stops the driver task.
    pub fn abort(self) {
        self.driver.abort();
    }
}

fn rand_secret() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // A per-process key for the branches; RandomState is seeded randomly.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish()
}
