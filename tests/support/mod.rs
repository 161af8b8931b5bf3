//! What the integration tests share, one module a concern. Each test binary includes it with
//! `mod support;` and uses a part of it, hence `dead_code` is allowed. The modules name each
//! other through `super::`, so that a program outside tests/ (examples/lab_reuse_latency.rs,
//! the TLS benchmarks) can include the ones it needs with `#[path]`.
#![allow(dead_code)]

/// sngrep as a HEP collector and tshark reading its pcap.
pub mod capture;
/// An in-process DNS server with NAPTR/SRV/A/AAAA zones.
pub mod dns;
/// OpenSSL DTLS configurations from the test CA.
pub mod dtls;
/// The RFC 5923 §5 two-proxy setup on loopback.
pub mod fig;
/// The `sipwire run` binary as a child process.
pub mod gateway;
/// Kamailio as a peer, stopped with its workers.
pub mod kamailio;
/// RFC 5923 peers in network namespaces (lab VM only).
pub mod lab;
/// The test CA and its certificates.
pub mod pki;
/// Bounded waits.
pub mod poll;
/// Scraping a Prometheus exporter.
pub mod prometheus;
/// RFC 5923 peers (transport + reuse endpoint) on loopback.
pub mod reuse;
/// SIP message builders and routing helpers.
pub mod sip;
/// sipwire TLS configurations and a raw inspecting TLS client.
pub mod tls;
/// Bounded reads from a transport or a raw stream.
pub mod transport;
