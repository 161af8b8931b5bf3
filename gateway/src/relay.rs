//! The relay of `sipwire run`: every received message is logged, its Via `alias` offered
//! to the RFC 5923 reuse endpoint, then handed to the library's proxy driver
//! (`sipwire::proxy::driver`), which forwards requests and responses, answers OPTIONS
//! addressed to the gateway itself, and drains on a graceful stop. This module is the one
//! place where received messages are dispatched. With `[proxy] workers = N` there are N
//! drivers (shards), each with its own proxy core; the transport splits the messages among
//! them by Call-ID, and the alias tables and the reuse endpoint are the transport's, shared.

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
pub struct Snapshots(Vec<mpsc::Sender<Command>>);

impl Snapshots {
    /// The requests being relayed now, every shard's; `None` when the relay has stopped.
    pub async fn get(&self) -> Option<Vec<sipwire::proxy::InFlight>> {
        let mut all = Vec::new();
        for commands in &self.0 {
            let (reply, answer) = oneshot::channel();
            commands.send(Command::Snapshot { reply }).await.ok()?;
            all.extend(answer.await.ok()?);
        }
        Some(all)
    }
}

/// The running relay: one proxy core (shard) per `[proxy] workers`, each in its own driver
/// task over the shared transport, which hands each its share of the messages by Call-ID
/// ([`Transport::new_sharded`]). Commands go to every shard.
pub struct Relay {
    /// One sender per shard.
    commands: Vec<mpsc::Sender<Command>>,
    bound: Vec<(String, TransportKind, SocketAddr)>,
    drivers: Vec<JoinHandle<()>>,
}

impl Relay {
    /// Starts relaying what `incoming` delivers from `transport` (its listeners `bound`):
    /// one proxy core per receiver.
    pub fn start(
        cfg: &Config,
        transport: Transport,
        incoming: Vec<mpsc::Receiver<Incoming>>,
        bound: &[(String, TransportKind, SocketAddr)],
        reuse: EndpointSlot,
        sip_log: SipLog,
    ) -> Result<Relay, RelayError> {
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
        let mut proxies = Vec::with_capacity(incoming.len());
        for _ in &incoming {
            // A secret per core: stateful branches are a counter under the secret, and two
            // cores must never hand out the same branch.
            proxies.push(Proxy::new(
                relay_config::proxy_config(cfg, bound),
                cfg.proxy.timers(),
                rand_secret(),
            )?);
        }
        let mut commands = Vec::with_capacity(proxies.len());
        let mut drivers = Vec::with_capacity(proxies.len());
        for (shard, (proxy, incoming)) in proxies.into_iter().zip(incoming).enumerate() {
            let opts = DriverOptions {
                listeners: listeners.clone(),
                dns: dns.clone(),
                reuse: Some(Arc::clone(&source)),
                queue_idle: None,
                inspect: Some(Arc::clone(&inspect)),
                shard: Some(shard),
            };
            let (tx, rx) = mpsc::channel(4);
            commands.push(tx);
            drivers.push(tokio::spawn(driver::run_with(
                proxy,
                transport.clone(),
                incoming,
                opts,
                rx,
            )));
        }
        Ok(Relay {
            commands,
            bound: bound.to_vec(),
            drivers,
        })
    }

    /// Takes the routes and run-time `[proxy]` options of `cfg` for new requests (every
    /// shard).
    pub async fn reconfigure(&self, cfg: &Config) -> Result<(), ReconfigureError> {
        for commands in &self.commands {
            let (reply, answer) = oneshot::channel();
            let config = Box::new(relay_config::proxy_config(cfg, &self.bound));
            commands
                .send(Command::Reconfigure { config, reply })
                .await
                .map_err(|_| ReconfigureError::Stopped)?;
            answer.await.map_err(|_| ReconfigureError::Stopped)??;
        }
        Ok(())
    }

    /// Whether the proxy core would take the routes of `cfg`.
    pub fn check(&self, cfg: &Config) -> Result<(), ReconfigureError> {
        relay_config::proxy_config(cfg, &self.bound).check()?;
        Ok(())
    }

    /// [`Relay::reconfigure`] without waiting for the answers (a checked configuration is
    /// taken; a refusal is logged).
    pub fn reconfigure_now(&self, cfg: &Config) -> Result<(), ReconfigureError> {
        self.check(cfg)?;
        for commands in &self.commands {
            let (reply, answer) = oneshot::channel();
            let config = Box::new(relay_config::proxy_config(cfg, &self.bound));
            commands
                .try_send(Command::Reconfigure { config, reply })
                .map_err(|_| ReconfigureError::Stopped)?;
            tokio::spawn(async move {
                if let Ok(Err(e)) = answer.await {
                    tracing::error!(error = %e, "relay refused the new routes");
                }
            });
        }
        Ok(())
    }

    /// Graceful stop: new transactions are refused (503), those in flight go on for at
    /// most `within`. Returns how many were still in flight at the end (every shard's).
    pub async fn drain(&self, within: Duration) -> usize {
        let until = tokio::time::Instant::now() + within;
        // Every shard stops accepting first, then the answers are collected.
        let mut answers = Vec::with_capacity(self.commands.len());
        for commands in &self.commands {
            let (reply, answer) = oneshot::channel();
            if commands.send(Command::Drain { until, reply }).await.is_ok() {
                answers.push(answer);
            }
        }
        let mut left = 0;
        for answer in answers {
            left += answer.await.unwrap_or(0);
        }
        left
    }

    /// A handle that asks the relay for the requests it is relaying (the admin `transactions`
    /// command).
    pub fn snapshots(&self) -> Snapshots {
        Snapshots(self.commands.clone())
    }

    /// How many proxy cores (shards) run.
    pub fn shards(&self) -> usize {
        self.drivers.len()
    }

    /// Stops the driver tasks.
    pub fn abort(self) {
        for d in self.drivers {
            d.abort();
        }
    }
}

fn rand_secret() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // A per-process key for the branches; RandomState is seeded randomly.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish()
}
