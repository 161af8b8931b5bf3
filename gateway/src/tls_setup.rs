//! The TLS material of `sipwire run` built from the configuration: per listener an SNI
//! resolver (default certificate + `[[tls.domains]]`), the outbound client
//! configurations (one per local domain), and hot reload of every certificate from its
//! files ([`GatewayTls::reload`], SIGHUP) without touching established connections.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::sign::CertifiedKey;

use super::config::{Config, ListenerConfig};
use super::dev_tls::{DevCa, DevTlsError};
use sipwire::tls::{
    material, ClientCerts, ClientSettings, ClientTls, ServerCerts, ServerSettings, SniResolver,
};

/// TLS state of a gateway: what to reload and the resolvers to reload into.
pub struct GatewayTls {
    cfg: Config,
    dev: Option<DevCa>,
    roots: Arc<rustls::RootCertStore>,
    listeners: Vec<(String, Arc<SniResolver>)>,
    client: ClientTls,
}

impl std::fmt::Debug for GatewayTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayTls")
            .field("listeners", &self.listeners)
            .field("client", &self.client)
            .finish()
    }
}

fn alpn_ids(cfg: &Config) -> Vec<Vec<u8>> {
    cfg.tls.alpn.iter().map(|a| a.as_bytes().to_vec()).collect()
}

/// The default certificate files of a listener: its own, else the development ones.
fn listener_files(
    l: &ListenerConfig,
    dev: Option<&DevCa>,
) -> Result<(PathBuf, PathBuf), DevTlsError> {
    match (&l.cert, &l.key, dev) {
        (Some(c), Some(k), _) => Ok((c.clone(), k.clone())),
        (_, _, Some(d)) => Ok((d.cert.clone(), d.key.clone())),
        _ => Err(DevTlsError::Pem(PathBuf::from(format!(
            "listener {}: no certificate configured",
            l.name
        )))),
    }
}

fn load(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, DevTlsError> {
    Ok(material::load_certified_key(cert, key)?)
}

fn server_certs(
    cfg: &Config,
    l: &ListenerConfig,
    dev: Option<&DevCa>,
) -> Result<ServerCerts, DevTlsError> {
    let (c, k) = listener_files(l, dev)?;
    let mut certs = ServerCerts::new(load(&c, &k)?);
    for d in &cfg.tls.domains {
        certs = certs.with_domain(&d.name, load(&d.cert, &d.key)?);
    }
    Ok(certs)
}

fn client_certs(cfg: &Config, dev: Option<&DevCa>) -> Result<ClientCerts, DevTlsError> {
    let default = match (&cfg.tls.client_cert, &cfg.tls.client_key) {
        (Some(c), Some(k)) => Some(load(c, k)?),
        _ => {
            let first = cfg.listeners.iter().find(|l| l.transport.is_secure());
            match first.map(|l| listener_files(l, dev)) {
                Some(Ok((c, k))) => Some(load(&c, &k)?),
                _ => match dev {
                    Some(d) => Some(load(&d.cert, &d.key)?),
                    None => None,
                },
            }
        }
    };
    let mut certs = ClientCerts::new(default);
    for d in &cfg.tls.domains {
        certs = certs.with_domain(&d.name, load(&d.cert, &d.key)?);
    }
    Ok(certs)
}

impl GatewayTls {
    /// Loads every certificate named by `cfg` (and the development CA, if any).
    pub fn load(cfg: &Config, dev: Option<&DevCa>) -> Result<GatewayTls, DevTlsError> {
        let files = cfg
            .tls
            .ca_files
            .iter()
            .map(PathBuf::as_path)
            .chain(dev.map(|d| d.ca.as_path()));
        let roots = Arc::new(material::load_roots(files)?);
        let mut listeners = Vec::new();
        for l in cfg.listeners.iter().filter(|l| l.transport.is_secure()) {
            let r = SniResolver::new(
                server_certs(cfg, l, dev)?,
                cfg.tls.alpn_policy,
                alpn_ids(cfg),
            );
            listeners.push((l.name.clone(), r));
        }
        let settings = ClientSettings {
            roots: Arc::clone(&roots),
            alpn: cfg.tls.alpn_policy,
            alpn_ids: alpn_ids(cfg),
            keylog: cfg.tls.keylog,
        };
        let domains: Vec<String> = cfg.tls.domains.iter().map(|d| d.name.clone()).collect();
        let client = ClientTls::new(&settings, client_certs(cfg, dev)?, &domains)?;
        Ok(GatewayTls {
            cfg: cfg.clone(),
            dev: dev.cloned(),
            roots,
            listeners,
            client,
        })
    }

    /// The rustls server configuration of TLS listener `l` (its resolver stays shared
    /// with this object, so [`GatewayTls::reload`] reaches it).
    pub fn server_config(
        &self,
        l: &ListenerConfig,
    ) -> Result<Arc<rustls::ServerConfig>, DevTlsError> {
        let resolver = self
            .listeners
            .iter()
            .find(|(n, _)| *n == l.name)
            .map(|(_, r)| Arc::clone(r))
            .ok_or_else(|| DevTlsError::Pem(PathBuf::from(format!("listener {}", l.name))))?;
        let settings = ServerSettings {
            client_roots: Arc::clone(&self.roots),
            client_cert: l.client_cert,
            alpn: self.cfg.tls.alpn_policy,
            alpn_ids: alpn_ids(&self.cfg),
            keylog: self.cfg.tls.keylog,
        };
        Ok(sipwire::tls::server_config(&settings, resolver)?)
    }

    /// The outbound configurations.
    pub fn client(&self) -> &ClientTls {
        &self.client
    }

    /// Re-reads every certificate and key; new handshakes use them, established
    /// connections are untouched. On error nothing changes.
    pub fn reload(&self) -> Result<(), DevTlsError> {
        let dev = self.dev.as_ref();
        let mut fresh = Vec::with_capacity(self.listeners.len());
        for (name, _) in &self.listeners {
            if let Some(l) = self.cfg.listeners.iter().find(|l| l.name == *name) {
                fresh.push(server_certs(&self.cfg, l, dev)?);
            }
        }
        let client = client_certs(&self.cfg, dev)?;
        for ((_, r), certs) in self.listeners.iter().zip(fresh) {
            r.replace(certs);
        }
        self.client.replace(client);
        tracing::info!("TLS certificates reloaded");
        Ok(())
    }
}
