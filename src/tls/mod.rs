//! TLS configuration (rustls) and RFC 5922 SIP identities from certificates.
//!
//! - [`identity`]: the SIP identities a certificate asserts (RFC 5922 §7.1/§7.2).

pub mod identity;

pub use identity::{identity_fn, IdentityError, IdentitySource, SipIdentities};
