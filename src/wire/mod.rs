//! The SIP wire codec: parsing, framing and editing SIP messages without copying.
//!
//! - [`Message::parse`] indexes one message over a [`bytes::Bytes`] buffer; typed views
//!   ([`Via`], [`CSeq`], [`NameAddr`], [`Uri`]) borrow from it.
//! - [`StreamFramer`] cuts messages out of a byte stream (TCP, TLS, SCTP) and reports
//!   RFC 5626 keep-alives; [`decode_datagram`] handles one UDP datagram.
//! - [`Editor`] (from [`Message::edit`]) adds/removes Via, Route and Record-Route values,
//!   fills `received`/`rport` and decrements Max-Forwards, copying untouched bytes once.
//! - [`response`] builds the stateless error responses (400, 483, 505, 513).
//!
//! Pure code: no I/O, no clock, no panics on any input (the lints below enforce no
//! indexing, unwrap, expect or panic outside tests).
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod cseq;
pub mod datagram;
pub mod edit;
pub mod error;
pub mod framer;
pub mod header;
pub mod host;
mod lex;
pub mod limits;
pub mod message;
pub mod name_addr;
pub mod param;
pub mod response;
pub mod transport_token;
pub mod uri;
pub mod via;

pub use cseq::CSeq;
pub use datagram::{decode_datagram, Datagram};
pub use edit::{Editor, ViaSpec};
pub use error::{EditError, FramingError, LimitKind, ParseError};
pub use framer::{Frame, StreamFramer};
pub use header::{split_values, HeaderKind};
pub use host::Host;
pub use limits::Limits;
pub use message::{HeaderRef, Message};
pub use name_addr::{ContactValue, NameAddr};
pub use param::{Param, Params};
pub use transport_token::TransportToken;
pub use uri::{Scheme, Uri, UriParam};
pub use via::{Rport, Via, BRANCH_MAGIC_COOKIE};
