//! TLS material for `sipwire run`: a development CA and a server certificate generated
//! into the state directory on first run (reused afterwards), or the configured PEM
//! files; and the rustls configurations built from them.
//!
//! Stop-gap until the `tls` module's development-CA helper is merged: it keeps the same
//! file layout (`<state>/dev-ca/{ca.pem,server.pem,server.key}`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::config::{AlpnPolicy, ClientCertPolicy, Config, ListenerConfig};

/// Errors while preparing TLS material.
#[derive(Debug, thiserror::Error)]
pub enum DevTlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// A PEM file holds no usable certificate or key.
    #[error("{0}: no usable certificate or private key")]
    Pem(PathBuf),
    /// rustls refused the material.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client verifier could not be built.
    #[error("client verifier: {0}")]
    Verifier(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DevTlsError + '_ {
    move |source| DevTlsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Paths of the development CA files.
#[derive(Debug, Clone)]
pub struct DevCa {
    /// Directory.
    pub dir: PathBuf,
    /// CA certificate (PEM): what peers must trust.
    pub ca: PathBuf,
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
}

/// Creates (first run) or finds the development CA under `state_dir`. The server
/// certificate names `localhost`, 127.0.0.1, ::1 and the extra `domains`.
pub fn ensure_dev_ca(state_dir: &Path, domains: &[String]) -> Result<DevCa, DevTlsError> {
    let dir = state_dir.join("dev-ca");
    let ca = DevCa {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        dir: dir.clone(),
    };
    if ca.ca.exists() && ca.cert.exists() && ca.key.exists() {
        return Ok(ca);
    }
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sipwire development CA");
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
    let mut names = vec!["localhost".to_owned()];
    for d in domains {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(d)) {
            names.push(d.clone());
        }
    }
    let mut leaf = CertificateParams::new(names)?;
    for ip in ["127.0.0.1", "::1"] {
        if let Ok(a) = ip.parse() {
            leaf.subject_alt_names.push(SanType::IpAddress(a));
        }
    }
    let key = KeyPair::generate()?;
    let cert = leaf.signed_by(&key, &issuer)?;
    write_private(&ca.key, key.serialize_pem().as_bytes())?;
    std::fs::write(&ca.cert, cert.pem()).map_err(io(&ca.cert))?;
    std::fs::write(&ca.ca, issuer.pem()).map_err(io(&ca.ca))?;
    Ok(ca)
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), DevTlsError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    f.write_all(data).map_err(io(path))
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, DevTlsError> {
    let data = std::fs::read(path).map_err(io(path))?;
    let v: Vec<_> = rustls_pemfile::certs(&mut data.as_slice())
        .filter_map(Result::ok)
        .collect();
    if v.is_empty() {
        return Err(DevTlsError::Pem(path.to_owned()));
    }
    Ok(v)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, DevTlsError> {
    let data = std::fs::read(path).map_err(io(path))?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| DevTlsError::Pem(path.to_owned()))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Trusted roots: the configured CA files plus the development CA.
pub fn roots(cfg: &Config, dev: Option<&DevCa>) -> Result<rustls::RootCertStore, DevTlsError> {
    let mut r = rustls::RootCertStore::empty();
    let files = cfg
        .tls
        .ca_files
        .iter()
        .cloned()
        .chain(dev.map(|d| d.ca.clone()));
    for f in files {
        for c in certs(&f)? {
            r.add(c)?;
        }
    }
    Ok(r)
}

fn alpn(cfg: &Config) -> Vec<Vec<u8>> {
    match cfg.tls.alpn_policy {
        AlpnPolicy::Off => Vec::new(),
        AlpnPolicy::Offer | AlpnPolicy::Require => {
            cfg.tls.alpn.iter().map(|a| a.as_bytes().to_vec()).collect()
        }
    }
}

/// The server configuration of one TLS listener: TLS 1.2 and 1.3 only (RFC 8996), a
/// client certificate always requested (RFC 5923 §9.2), required if so configured.
pub fn server_config(
    cfg: &Config,
    listener: &ListenerConfig,
    dev: Option<&DevCa>,
) -> Result<Arc<rustls::ServerConfig>, DevTlsError> {
    let (cert_path, key_path) = match (&listener.cert, &listener.key, dev) {
        (Some(c), Some(k), _) => (c.clone(), k.clone()),
        (_, _, Some(d)) => (d.cert.clone(), d.key.clone()),
        _ => {
            return Err(DevTlsError::Pem(PathBuf::from(
                "(no certificate configured)",
            )))
        }
    };
    let roots = Arc::new(roots(cfg, dev)?);
    let b = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider());
    let b = match listener.client_cert {
        ClientCertPolicy::Optional => b.allow_unauthenticated(),
        ClientCertPolicy::Require => b,
    };
    let verifier = b
        .build()
        .map_err(|e| DevTlsError::Verifier(e.to_string()))?;
    let mut sc = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&cert_path)?, key(&key_path)?)?;
    sc.alpn_protocols = alpn(cfg);
    if cfg.tls.keylog {
        sc.key_log = Arc::new(rustls::KeyLogFile::new());
    }
    Ok(Arc::new(sc))
}

/// The client configuration for outbound TLS.
pub fn client_config(
    cfg: &Config,
    dev: Option<&DevCa>,
) -> Result<Arc<rustls::ClientConfig>, DevTlsError> {
    let mut cc = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots(cfg, dev)?)
        .with_no_client_auth();
    cc.alpn_protocols = alpn(cfg);
    if cfg.tls.keylog {
        cc.key_log = Arc::new(rustls::KeyLogFile::new());
    }
    Ok(Arc::new(cc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_ca_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = ensure_dev_ca(dir.path(), &["sip.example.net".into()]).unwrap();
        let before = std::fs::read(&a.cert).unwrap();
        let b = ensure_dev_ca(dir.path(), &[]).unwrap();
        assert_eq!(
            std::fs::read(&b.cert).unwrap(),
            before,
            "reused, not regenerated"
        );
        let cfg = Config::embedded_default().unwrap();
        let l = cfg.listeners.iter().find(|l| l.name == "tls").unwrap();
        server_config(&cfg, l, Some(&a)).unwrap();
        client_config(&cfg, Some(&a)).unwrap();
    }
}
