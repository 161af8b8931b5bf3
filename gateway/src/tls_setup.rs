//! The TLS material of `sipwire run` built from the configuration: per listener an SNI
//! resolver (default certificate + `[[tls.domains]]`), the outbound client
//! configurations (one per local domain), and hot reload of every certificate from its
//! files ([`GatewayTls::reload`], SIGHUP) without touching established connections.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::sign::CertifiedKey;

use super::config::{Config, ListenerConfig};
use super::dev_tls::{DevCa, DevTlsError};
use sipwire::tls::{
    material, ClientCerts, ClientSettings, ClientTls, ServerCerts, ServerSettings, SniResolver,
};
use sipwire::Transport;

/// TLS state of a gateway: what to reload and the resolvers to reload into.
pub struct GatewayTls {
    dev: Option<DevCa>,
    roots: Arc<rustls::RootCertStore>,
    listeners: Vec<(String, Arc<SniResolver>)>,
    current: Mutex<Current>,
}

/// What a reload replaces.
struct Current {
    /// The configuration the certificates were loaded from.
    cfg: Config,
    /// The outbound configurations (rebuilt when the `[[tls.domains]]` names change).
    client: ClientTls,
}

impl std::fmt::Debug for GatewayTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayTls")
            .field("listeners", &self.listeners)
            .finish_non_exhaustive()
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

fn client_settings(cfg: &Config, roots: &Arc<rustls::RootCertStore>) -> ClientSettings {
    ClientSettings {
        roots: Arc::clone(roots),
        alpn: cfg.tls.alpn_policy,
        alpn_ids: alpn_ids(cfg),
        keylog: cfg.tls.keylog,
    }
}

fn domain_names(cfg: &Config) -> Vec<String> {
    cfg.tls.domains.iter().map(|d| d.name.clone()).collect()
}

/// The OpenSSL DTLS server side of a DTLS over SCTP listener (RFC 6083): the listener's
/// certificate chain and key (or the development ones), client certificates requested and
/// verified against `[tls] ca_files` and the development CA, required with
/// `client_cert = "require"`. `[[tls.domains]]` (SNI) and ALPN are not applied to DTLS.
pub fn dtls_acceptor(
    cfg: &Config,
    l: &ListenerConfig,
    dev: Option<&DevCa>,
) -> Result<openssl::ssl::SslAcceptorBuilder, DevTlsError> {
    use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod, SslVerifyMode};
    let (cert, key) = listener_files(l, dev)?;
    let err = |p: &Path| {
        let p = p.to_owned();
        move |e| DevTlsError::Dtls(p, e)
    };
    let mut a = SslAcceptor::mozilla_intermediate_v5(SslMethod::dtls()).map_err(err(&cert))?;
    a.set_certificate_chain_file(&cert).map_err(err(&cert))?;
    a.set_private_key_file(&key, SslFiletype::PEM)
        .map_err(err(&key))?;
    for ca in cfg
        .tls
        .ca_files
        .iter()
        .map(PathBuf::as_path)
        .chain(dev.map(|d| d.ca.as_path()))
    {
        a.load_verify_locations(Some(ca), None).map_err(err(ca))?;
    }
    let mode = match l.client_cert {
        sipwire::tls::ClientCertPolicy::Require => {
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT
        }
        _ => SslVerifyMode::PEER,
    };
    a.set_verify(mode);
    Ok(a)
}

/// The OpenSSL DTLS client side of outbound DTLS over SCTP associations (routes to
/// `dtls-sctp` targets): servers verified against `[tls] ca_files` and the development CA,
/// presenting `[tls] client_cert`/`client_key`, else the first DTLS listener's certificate, else
/// the development one.
pub fn dtls_connector(
    cfg: &Config,
    dev: Option<&DevCa>,
) -> Result<openssl::ssl::SslConnectorBuilder, DevTlsError> {
    use openssl::ssl::{SslConnector, SslFiletype, SslMethod};
    let err = |p: &Path| {
        let p = p.to_owned();
        move |e| DevTlsError::Dtls(p, e)
    };
    let here = Path::new("[tls]");
    let mut c = SslConnector::builder(SslMethod::dtls()).map_err(err(here))?;
    for ca in cfg
        .tls
        .ca_files
        .iter()
        .map(PathBuf::as_path)
        .chain(dev.map(|d| d.ca.as_path()))
    {
        c.load_verify_locations(Some(ca), None).map_err(err(ca))?;
    }
    let own = match (&cfg.tls.client_cert, &cfg.tls.client_key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        _ => cfg
            .listeners
            .iter()
            .find(|l| l.transport == sipwire::TransportKind::DtlsSctp)
            .and_then(|l| listener_files(l, dev).ok())
            .or_else(|| dev.map(|d| (d.cert.clone(), d.key.clone()))),
    };
    if let Some((cert, key)) = own {
        c.set_certificate_chain_file(&cert).map_err(err(&cert))?;
        c.set_private_key_file(&key, SslFiletype::PEM)
            .map_err(err(&key))?;
    }
    Ok(c)
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
        let client = ClientTls::new(
            &client_settings(cfg, &roots),
            client_certs(cfg, dev)?,
            &domain_names(cfg),
        )?;
        Ok(GatewayTls {
            dev: dev.cloned(),
            roots,
            listeners,
            current: Mutex::new(Current {
                cfg: cfg.clone(),
                client,
            }),
        })
    }

    fn current(&self) -> MutexGuard<'_, Current> {
        // Only whole values are stored under the lock; a panic elsewhere leaves a usable one.
        self.current.lock().unwrap_or_else(|p| p.into_inner())
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
        let cur = self.current();
        let settings = ServerSettings {
            client_roots: Arc::clone(&self.roots),
            client_cert: l.client_cert,
            alpn: cur.cfg.tls.alpn_policy,
            alpn_ids: alpn_ids(&cur.cfg),
            keylog: cur.cfg.tls.keylog,
        };
        Ok(sipwire::tls::server_config(&settings, resolver)?)
    }

    /// Installs the outbound configurations in `transport`.
    pub fn install(&self, transport: &Transport) {
        self.current().client.install(transport);
    }

    /// Re-reads every certificate and key from the files of the configuration in force;
    /// new handshakes use them, established connections are untouched. On error nothing
    /// changes.
    pub fn reload(&self) -> Result<(), DevTlsError> {
        let cfg = self.current().cfg.clone();
        self.reload_with(&cfg, None)
    }

    /// Loads the certificates and keys `cfg` names (listener `cert`/`key`,
    /// `[[tls.domains]]`, `[tls] client_cert`/`client_key`) into the running listeners and
    /// outbound configurations. When the `[[tls.domains]]` names change, the outbound
    /// configurations are rebuilt and installed in `transport`. Everything is loaded
    /// before anything is replaced: on error nothing changes.
    pub fn reload_with(
        &self,
        cfg: &Config,
        transport: Option<&Transport>,
    ) -> Result<(), DevTlsError> {
        let dev = self.dev.as_ref();
        let mut fresh = Vec::with_capacity(self.listeners.len());
        for (name, r) in &self.listeners {
            if let Some(l) = cfg.listeners.iter().find(|l| l.name == *name) {
                fresh.push((r, server_certs(cfg, l, dev)?));
            }
        }
        let client_certs = client_certs(cfg, dev)?;
        let mut cur = self.current();
        let rebuilt = match transport {
            Some(t) if domain_names(cfg) != domain_names(&cur.cfg) => {
                let client = ClientTls::new(
                    &client_settings(&cur.cfg, &self.roots),
                    client_certs,
                    &domain_names(cfg),
                )?;
                client.install(t);
                Some(client)
            }
            _ => {
                cur.client.replace(client_certs);
                None
            }
        };
        for (r, certs) in fresh {
            r.replace(certs);
        }
        if let Some(c) = rebuilt {
            cur.client = c;
        }
        cur.cfg = cfg.clone();
        tracing::info!("TLS certificates reloaded");
        Ok(())
    }
}
