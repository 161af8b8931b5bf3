//! TLS configuration (rustls) and RFC 5922 SIP identities from certificates.
//!
//! - [`identity`]: the SIP identities a certificate asserts (RFC 5922 §7.1/§7.2).
//! - [`verify`]: client-side server verification by identity (§7.3).
//! - [`server`]: SNI-selected, reloadable server certificates; client-certificate policy.
//! - [`client`]: per-local-domain client certificates, reloadable.
//! - [`alpn`]: the `sip/2` ALPN policy.
//! - [`material`]: PEM files to rustls types. [`error`]: errors.
//!
//! See docs/tls.md.

pub mod alpn;
pub mod client;
pub mod error;
pub mod identity;
pub mod material;
pub mod server;
pub mod verify;

pub use alpn::{AlpnPolicy, SIP_2};
pub use client::{ClientCerts, ClientSettings, ClientTls};
pub use error::TlsError;
pub use identity::{identity_fn, IdentityError, IdentitySource, SipIdentities};
pub use server::{server_config, ClientCertPolicy, ServerCerts, ServerSettings, SniResolver};
pub use verify::{IdentityMismatch, SipServerVerifier};
