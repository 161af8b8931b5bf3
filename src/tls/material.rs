//! Certificates and keys: PEM files to rustls types ([`CertifiedKey`], root stores).

use std::path::Path;
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::TlsError;

/// The crypto provider used by every sipwire TLS configuration (ring).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })
}

/// All certificates of a PEM file (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data = read(path)?;
    let v: Vec<_> = rustls_pemfile::certs(&mut data.as_slice())
        .filter_map(Result::ok)
        .collect();
    if v.is_empty() {
        return Err(TlsError::Pem(path.to_owned()));
    }
    Ok(v)
}

/// The first private key of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let data = read(path)?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| TlsError::Pem(path.to_owned()))
}

/// A certificate chain and its key, checked to match.
pub fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<CertifiedKey>, TlsError> {
    Ok(Arc::new(CertifiedKey::from_der(chain, key, &provider())?))
}

/// A certificate chain (PEM) and its key (PEM) as a [`CertifiedKey`].
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    certified_key(load_certs(cert)?, load_key(key)?)
}

/// A root store holding every certificate of the given PEM files.
pub fn load_roots<'a>(
    files: impl IntoIterator<Item = &'a Path>,
) -> Result<RootCertStore, TlsError> {
    let mut r = RootCertStore::empty();
    for f in files {
        for c in load_certs(f)? {
            r.add(c)?;
        }
    }
    Ok(r)
}
