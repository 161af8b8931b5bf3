//! Errors while preparing TLS material and configurations.

use std::path::PathBuf;

/// What went wrong while loading certificates or building a rustls configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A PEM file holds no usable certificate or private key.
    #[error("{0}: no usable certificate or private key")]
    Pem(PathBuf),
    /// rustls refused the material (e.g. the key does not match the certificate).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// A certificate verifier could not be built (e.g. no trusted CA).
    #[error("certificate verifier: {0}")]
    Verifier(String),
}
