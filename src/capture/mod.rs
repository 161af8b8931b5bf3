//! HEP v3 capture (what Kamailio's siptrace and OpenSIPS's tracer send to Homer): every SIP
//! message the transport sends or receives, on every transport, mirrored to a collector
//! with its addresses, IP protocol, time, capture id and Call-ID.
//!
//! - [`hep`]: the encoding, pure (and a decoder, for collectors in tests).
//! - [`Capture`]: the sink, a bounded queue drained by one task towards a UDP or TCP
//!   collector; set [`crate::TransportConfig::capture`] to mirror a transport's messages.
//!
//! TLS-family messages are mirrored as plaintext (after decryption, before encryption), with
//! the IP protocol under them (TCP or SCTP): HEP has no TLS value. See docs/operations.md,
//! "Capture to Homer, sngrep, tshark".

mod backoff;
mod call_id;
pub mod hep;
mod sink;

pub use call_id::call_id;
pub use sink::{Capture, CaptureConfig, CaptureError, CollectorTransport, DROPPED, SENT};
