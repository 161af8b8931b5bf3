//! sipwire-sys: Linux kernel SCTP sockets (RFC 6458) on tokio's `AsyncFd`.
//!
//! This crate holds the only `unsafe` code of sipwire. Nothing here knows about SIP. It talks to the
//! kernel with libc and hand-defined structs (no libsctp). See docs/sctp.md.
//!
//! - [`SctpListener`] / [`SctpStream`]: one-to-one style (`SOCK_STREAM`).
//! - [`SctpEndpoint`]: one-to-many style (`SOCK_SEQPACKET`), `connectx`, `peeloff`.
//! - [`SctpSocket`]: an unconnected socket to set options on before `listen`/`connect`.
//! - [`SctpOptions`], [`SctpAuth`]: socket options and SCTP-AUTH on all of them.
//! - [`RecvBuf`], [`Received`], [`SendInfo`], [`RecvInfo`]: message I/O; [`Notification`] events.
//! - [`RecvBatch`]: batched UDP reads (`recvmmsg`), for the SIP UDP listeners.

#![warn(missing_docs)]

pub mod addr;
pub mod auth;
pub mod error;
pub mod ffi;
pub mod notification;
pub mod one_to_many;
pub mod one_to_one;
pub mod options;
pub mod sndrcv;
pub mod socket;
pub mod udp;

pub use auth::SctpAuth;
pub use error::{Result, SctpError};
pub use notification::{AssocState, AuthIndication, Event, Notification, PeerAddrState};
pub use one_to_many::SctpEndpoint;
pub use one_to_one::{SctpListener, SctpStream};
pub use options::{AssocInfo, InitMsg, PeerAddrParams, RtoInfo, SctpOptions};
pub use sndrcv::{Received, RecvBuf, RecvInfo, SendInfo, DEFAULT_RECV_LIMIT};
pub use socket::{kernel_sctp_available, Family, SctpSocket, Style};
pub use udp::RecvBatch;

/// Send flags for [`SendInfo::flags`].
pub mod flags {
    pub use crate::ffi::{
        SCTP_ABORT as ABORT, SCTP_EOF as EOF, SCTP_SACK_IMMEDIATELY as SACK_IMMEDIATELY,
        SCTP_UNORDERED as UNORDERED,
    };
}
