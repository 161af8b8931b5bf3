//! TLS configuration (rustls) and RFC 5922 SIP identities from certificates.
