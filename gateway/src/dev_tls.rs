//! The development CA of `sipwire run`: a CA and a server certificate generated into the
//! state directory on first run (reused afterwards), layout
//! `<state>/dev-ca/{ca.pem,server.pem,server.key}`. The rustls configurations are built
//! by [`super::tls_setup`].

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};

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
    /// Loading the material or building a configuration failed.
    #[error(transparent)]
    Tls(#[from] sipwire::tls::TlsError),
    /// OpenSSL refused the DTLS material (DTLS over SCTP listeners).
    #[error("DTLS configuration of {0}: {1}")]
    Dtls(PathBuf, #[source] openssl::error::ErrorStack),
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
        let cfg = crate::config::Config::embedded_default().unwrap();
        let tls = crate::tls_setup::GatewayTls::load(&cfg, Some(&a)).unwrap();
        let l = cfg.listeners.iter().find(|l| l.name == "tls").unwrap();
        tls.server_config(l).unwrap();
    }
}
