//! sipwire-sys: Linux kernel SCTP sockets (RFC 6458) on tokio's `AsyncFd`.
//!
//! This crate holds the only `unsafe` code of sipwire. Nothing here knows about SIP.
