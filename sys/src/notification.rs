//! SCTP notifications (RFC 6458 §6.1): the event kinds one subscribes to and the decoded events.
//! Decoding is pure: it reads the bytes recvmsg returned with `MSG_NOTIFICATION`.

use crate::addr::parse_sockaddr;
use crate::error::{Result, SctpError};
use crate::ffi::{self, notif};
use crate::sndrcv::SendInfo;
use std::net::SocketAddr;

/// Event kinds that can be subscribed to with the `SCTP_EVENT` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// Association up/down/restart (`SCTP_ASSOC_CHANGE`).
    AssocChange,
    /// A peer address changed state (`SCTP_PEER_ADDR_CHANGE`).
    PeerAddrChange,
    /// A message could not be delivered (`SCTP_SEND_FAILED_EVENT`).
    SendFailed,
    /// The peer sent an ERROR chunk (`SCTP_REMOTE_ERROR`).
    RemoteError,
    /// The peer started a graceful shutdown (`SCTP_SHUTDOWN_EVENT`).
    Shutdown,
    /// Partial delivery was aborted (`SCTP_PARTIAL_DELIVERY_EVENT`).
    PartialDelivery,
    /// SCTP-AUTH key events (`SCTP_AUTHENTICATION_EVENT`).
    Authentication,
    /// Everything sent was acknowledged (`SCTP_SENDER_DRY_EVENT`).
    SenderDry,
}

impl Event {
    /// All the kinds above.
    pub const ALL: [Event; 8] = [
        Event::AssocChange,
        Event::PeerAddrChange,
        Event::SendFailed,
        Event::RemoteError,
        Event::Shutdown,
        Event::PartialDelivery,
        Event::Authentication,
        Event::SenderDry,
    ];

    /// The kernel's `sn_type` value.
    pub fn sn_type(self) -> u16 {
        match self {
            Event::AssocChange => ffi::SCTP_ASSOC_CHANGE,
            Event::PeerAddrChange => ffi::SCTP_PEER_ADDR_CHANGE,
            Event::SendFailed => ffi::SCTP_SEND_FAILED_EVENT,
            Event::RemoteError => ffi::SCTP_REMOTE_ERROR,
            Event::Shutdown => ffi::SCTP_SHUTDOWN_EVENT,
            Event::PartialDelivery => ffi::SCTP_PARTIAL_DELIVERY_EVENT,
            Event::Authentication => ffi::SCTP_AUTHENTICATION_EVENT,
            Event::SenderDry => ffi::SCTP_SENDER_DRY_EVENT,
        }
    }
}

/// `sac_state` of an association change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssocState {
    /// The association is up.
    CommUp,
    /// The association failed (the peer is unreachable or aborted).
    CommLost,
    /// The peer restarted.
    Restart,
    /// A graceful shutdown completed.
    ShutdownComplete,
    /// The association could not be established.
    CantStartAssoc,
    /// A value this crate does not know.
    Unknown(u16),
}

impl From<u16> for AssocState {
    fn from(v: u16) -> Self {
        match v {
            0 => AssocState::CommUp,
            1 => AssocState::CommLost,
            2 => AssocState::Restart,
            3 => AssocState::ShutdownComplete,
            4 => AssocState::CantStartAssoc,
            o => AssocState::Unknown(o),
        }
    }
}

/// `spc_state` of a peer address change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerAddrState {
    /// The address is reachable again.
    Available,
    /// The address is unreachable (path failure).
    Unreachable,
    /// The address was removed from the association.
    Removed,
    /// The address was added to the association.
    Added,
    /// The address became the primary path.
    MadePrimary,
    /// The address was confirmed by a heartbeat.
    Confirmed,
    /// The address is potentially failed (RFC 7829).
    PotentiallyFailed,
    /// A value this crate does not know.
    Unknown(i32),
}

impl From<i32> for PeerAddrState {
    fn from(v: i32) -> Self {
        match v {
            0 => PeerAddrState::Available,
            1 => PeerAddrState::Unreachable,
            2 => PeerAddrState::Removed,
            3 => PeerAddrState::Added,
            4 => PeerAddrState::MadePrimary,
            5 => PeerAddrState::Confirmed,
            6 => PeerAddrState::PotentiallyFailed,
            o => PeerAddrState::Unknown(o),
        }
    }
}

/// `auth_indication` of an authentication event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthIndication {
    /// A new key became active.
    NewKey,
    /// A key is no longer used and may be deleted.
    FreeKey,
    /// The peer does not support SCTP-AUTH.
    NoAuth,
    /// A value this crate does not know.
    Unknown(u32),
}

impl From<u32> for AuthIndication {
    fn from(v: u32) -> Self {
        match v {
            0 => AuthIndication::NewKey,
            1 => AuthIndication::FreeKey,
            2 => AuthIndication::NoAuth,
            o => AuthIndication::Unknown(o),
        }
    }
}

/// A decoded notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// `SCTP_ASSOC_CHANGE`.
    AssocChange {
        /// What happened.
        state: AssocState,
        /// Error cause code, if any.
        error: u16,
        /// Negotiated outbound streams.
        outbound_streams: u16,
        /// Negotiated inbound streams.
        inbound_streams: u16,
        /// The association.
        assoc_id: i32,
        /// Extra data (supported features on COMM_UP, the ABORT chunk on COMM_LOST).
        info: Vec<u8>,
    },
    /// `SCTP_PEER_ADDR_CHANGE`.
    PeerAddrChange {
        /// The peer address concerned (None if the kernel gave an unknown family).
        addr: Option<SocketAddr>,
        /// Its new state.
        state: PeerAddrState,
        /// Error code (`sctp_sn_error`).
        error: i32,
        /// The association.
        assoc_id: i32,
    },
    /// `SCTP_SEND_FAILED_EVENT`: the message was not (fully) delivered.
    SendFailed {
        /// True if the data was put on the wire (`SCTP_DATA_SENT`), false if never sent.
        sent: bool,
        /// Error code.
        error: u32,
        /// The send parameters of the failed message.
        info: SendInfo,
        /// The association.
        assoc_id: i32,
        /// The undelivered payload.
        data: Vec<u8>,
    },
    /// `SCTP_REMOTE_ERROR`: the peer sent an ERROR chunk.
    RemoteError {
        /// The error cause code (host order).
        cause: u16,
        /// The association.
        assoc_id: i32,
        /// The error chunk's causes.
        data: Vec<u8>,
    },
    /// `SCTP_SHUTDOWN_EVENT`: the peer sent SHUTDOWN; stop sending.
    Shutdown {
        /// The association.
        assoc_id: i32,
    },
    /// `SCTP_PARTIAL_DELIVERY_EVENT`.
    PartialDelivery {
        /// 0 = partial delivery aborted.
        indication: u32,
        /// The association.
        assoc_id: i32,
        /// Stream of the aborted message.
        stream: u32,
        /// Its stream sequence number.
        seq: u32,
    },
    /// `SCTP_AUTHENTICATION_EVENT`.
    Authentication {
        /// Key number concerned.
        key_number: u16,
        /// What happened.
        indication: AuthIndication,
        /// The association.
        assoc_id: i32,
    },
    /// `SCTP_SENDER_DRY_EVENT`.
    SenderDry {
        /// The association.
        assoc_id: i32,
    },
    /// A kind not decoded by this crate (adaptation indication, stream reset, ...).
    Other {
        /// The kernel's `sn_type`.
        kind: u16,
    },
}

fn u16_at(b: &[u8], at: usize) -> Result<u16> {
    b.get(at..at + 2)
        .map(|s| u16::from_ne_bytes([s[0], s[1]]))
        .ok_or(SctpError::Malformed {
            what: "notification",
        })
}

fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(SctpError::Malformed {
            what: "notification",
        })
}

fn i32_at(b: &[u8], at: usize) -> Result<i32> {
    u32_at(b, at).map(|v| v as i32)
}

fn tail(b: &[u8], at: usize) -> Vec<u8> {
    b.get(at..).map(<[u8]>::to_vec).unwrap_or_default()
}

impl Notification {
    /// Decodes one notification (the whole buffer recvmsg returned with `MSG_NOTIFICATION`).
    pub fn decode(buf: &[u8]) -> Result<Notification> {
        let kind = u16_at(buf, 0)?;
        let len = u32_at(buf, 4)? as usize;
        if len < notif::HEADER_LEN || len > buf.len() {
            return Err(SctpError::Malformed {
                what: "notification length",
            });
        }
        let b = &buf[..len];
        Ok(match kind {
            ffi::SCTP_ASSOC_CHANGE => Notification::AssocChange {
                state: AssocState::from(u16_at(b, notif::SAC_STATE)?),
                error: u16_at(b, notif::SAC_ERROR)?,
                outbound_streams: u16_at(b, notif::SAC_OUTBOUND_STREAMS)?,
                inbound_streams: u16_at(b, notif::SAC_INBOUND_STREAMS)?,
                assoc_id: i32_at(b, notif::SAC_ASSOC_ID)?,
                info: tail(b, notif::SAC_INFO),
            },
            ffi::SCTP_PEER_ADDR_CHANGE => {
                if b.len() < notif::SPC_LEN {
                    return Err(SctpError::Malformed {
                        what: "peer address change",
                    });
                }
                Notification::PeerAddrChange {
                    addr: parse_sockaddr(&b[notif::SPC_AADDR..notif::SPC_STATE])
                        .ok()
                        .map(|(a, _)| a),
                    state: PeerAddrState::from(i32_at(b, notif::SPC_STATE)?),
                    error: i32_at(b, notif::SPC_ERROR)?,
                    assoc_id: i32_at(b, notif::SPC_ASSOC_ID)?,
                }
            }
            ffi::SCTP_SEND_FAILED_EVENT => {
                let i = notif::SSFE_INFO;
                Notification::SendFailed {
                    sent: u16_at(b, 2)? & 1 == 1,
                    error: u32_at(b, notif::SSF_ERROR)?,
                    info: SendInfo {
                        stream: u16_at(b, i)?,
                        flags: u16_at(b, i + 2)?,
                        ppid: u32::from_be(u32_at(b, i + 4)?),
                        context: u32_at(b, i + 8)?,
                        assoc_id: i32_at(b, i + 12)?,
                    },
                    assoc_id: i32_at(b, notif::SSF_ASSOC_ID)?,
                    data: tail(b, notif::SSF_DATA),
                }
            }
            ffi::SCTP_REMOTE_ERROR => Notification::RemoteError {
                cause: u16::from_be(u16_at(b, notif::SRE_ERROR)?),
                assoc_id: i32_at(b, notif::SRE_ASSOC_ID)?,
                data: tail(b, notif::SRE_DATA),
            },
            ffi::SCTP_SHUTDOWN_EVENT => Notification::Shutdown {
                assoc_id: i32_at(b, notif::SSE_ASSOC_ID)?,
            },
            ffi::SCTP_PARTIAL_DELIVERY_EVENT => Notification::PartialDelivery {
                indication: u32_at(b, notif::PDAPI_INDICATION)?,
                assoc_id: i32_at(b, notif::PDAPI_ASSOC_ID)?,
                stream: u32_at(b, notif::PDAPI_STREAM)?,
                seq: u32_at(b, notif::PDAPI_SEQ)?,
            },
            ffi::SCTP_AUTHENTICATION_EVENT => Notification::Authentication {
                key_number: u16_at(b, notif::AUTH_KEYNUMBER)?,
                indication: AuthIndication::from(u32_at(b, notif::AUTH_INDICATION)?),
                assoc_id: i32_at(b, notif::AUTH_ASSOC_ID)?,
            },
            ffi::SCTP_SENDER_DRY_EVENT => Notification::SenderDry {
                assoc_id: i32_at(b, notif::DRY_ASSOC_ID)?,
            },
            other => Notification::Other { kind: other },
        })
    }

    /// The association the notification is about, if it names one.
    pub fn assoc_id(&self) -> Option<i32> {
        match self {
            Notification::AssocChange { assoc_id, .. }
            | Notification::PeerAddrChange { assoc_id, .. }
            | Notification::SendFailed { assoc_id, .. }
            | Notification::RemoteError { assoc_id, .. }
            | Notification::Shutdown { assoc_id }
            | Notification::PartialDelivery { assoc_id, .. }
            | Notification::Authentication { assoc_id, .. }
            | Notification::SenderDry { assoc_id } => Some(*assoc_id),
            Notification::Other { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u16, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        b[0..2].copy_from_slice(&kind.to_ne_bytes());
        b[4..8].copy_from_slice(&(len as u32).to_ne_bytes());
        b
    }

    fn put16(b: &mut [u8], at: usize, v: u16) {
        b[at..at + 2].copy_from_slice(&v.to_ne_bytes());
    }
    fn put32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }

    #[test]
    fn assoc_change_comm_up() {
        let mut b = header(ffi::SCTP_ASSOC_CHANGE, 22);
        put16(&mut b, 8, 0);
        put16(&mut b, 12, 16);
        put16(&mut b, 14, 10);
        put32(&mut b, 16, 7);
        b[20] = 0x80;
        b[21] = 0x81;
        assert_eq!(
            Notification::decode(&b).unwrap(),
            Notification::AssocChange {
                state: AssocState::CommUp,
                error: 0,
                outbound_streams: 16,
                inbound_streams: 10,
                assoc_id: 7,
                info: vec![0x80, 0x81],
            }
        );
    }

    #[test]
    fn peer_addr_change_unreachable() {
        let mut b = header(ffi::SCTP_PEER_ADDR_CHANGE, 148);
        let mut a = Vec::new();
        crate::addr::push_sockaddr(&mut a, &"198.51.100.2:5060".parse().unwrap());
        b[8..8 + a.len()].copy_from_slice(&a);
        put32(&mut b, 136, 1);
        put32(&mut b, 140, 0);
        put32(&mut b, 144, 3);
        assert_eq!(
            Notification::decode(&b).unwrap(),
            Notification::PeerAddrChange {
                addr: Some("198.51.100.2:5060".parse().unwrap()),
                state: PeerAddrState::Unreachable,
                error: 0,
                assoc_id: 3,
            }
        );
    }

    #[test]
    fn send_failed_event_carries_info_and_data() {
        let mut b = header(ffi::SCTP_SEND_FAILED_EVENT, 35);
        put16(&mut b, 2, 1); // SCTP_DATA_SENT
        put32(&mut b, 8, 5);
        put16(&mut b, 12, 4); // snd_sid
        put32(&mut b, 16, 0x0102_0304u32.to_be()); // ppid, network order
        put32(&mut b, 24, 9);
        put32(&mut b, 28, 9);
        b[32..35].copy_from_slice(b"abc");
        match Notification::decode(&b).unwrap() {
            Notification::SendFailed {
                sent,
                error,
                info,
                assoc_id,
                data,
            } => {
                assert!(sent);
                assert_eq!(error, 5);
                assert_eq!(info.stream, 4);
                assert_eq!(info.ppid, 0x0102_0304);
                assert_eq!(assoc_id, 9);
                assert_eq!(data, b"abc");
            }
            n => panic!("{n:?}"),
        }
    }

    #[test]
    fn remote_error_cause_is_network_order() {
        let mut b = header(ffi::SCTP_REMOTE_ERROR, 18);
        b[8..10].copy_from_slice(&0x000cu16.to_be_bytes());
        put32(&mut b, 12, 2);
        assert_eq!(
            Notification::decode(&b).unwrap(),
            Notification::RemoteError {
                cause: 12,
                assoc_id: 2,
                data: vec![0, 0]
            }
        );
    }

    #[test]
    fn shutdown_dry_pdapi_auth() {
        let mut b = header(ffi::SCTP_SHUTDOWN_EVENT, 12);
        put32(&mut b, 8, 11);
        assert_eq!(
            Notification::decode(&b).unwrap(),
            Notification::Shutdown { assoc_id: 11 }
        );

        let mut b = header(ffi::SCTP_SENDER_DRY_EVENT, 12);
        put32(&mut b, 8, 12);
        assert_eq!(
            Notification::decode(&b).unwrap(),
            Notification::SenderDry { assoc_id: 12 }
        );

        let mut b = header(ffi::SCTP_PARTIAL_DELIVERY_EVENT, 24);
        put32(&mut b, 12, 13);
        put32(&mut b, 16, 3);
        put32(&mut b, 20, 44);
        assert_eq!(
            Notification::decode(&b).unwrap(),
            Notification::PartialDelivery {
                indication: 0,
                assoc_id: 13,
                stream: 3,
                seq: 44
            }
        );

        let mut b = header(ffi::SCTP_AUTHENTICATION_EVENT, 20);
        put16(&mut b, 8, 1);
        put32(&mut b, 12, 2);
        put32(&mut b, 16, 14);
        let n = Notification::decode(&b).unwrap();
        assert_eq!(
            n,
            Notification::Authentication {
                key_number: 1,
                indication: AuthIndication::NoAuth,
                assoc_id: 14
            }
        );
        assert_eq!(n.assoc_id(), Some(14));
    }

    #[test]
    fn malformed_is_an_error_not_a_panic() {
        assert!(Notification::decode(&[]).is_err());
        assert!(Notification::decode(&[1, 0x80, 0, 0]).is_err());
        // Length field larger than the buffer.
        let mut b = header(ffi::SCTP_SHUTDOWN_EVENT, 12);
        put32(&mut b, 4, 400);
        assert!(Notification::decode(&b).is_err());
        // Peer address change too short.
        let b = header(ffi::SCTP_PEER_ADDR_CHANGE, 20);
        assert!(Notification::decode(&b).is_err());
        // Truncated assoc change.
        let b = header(ffi::SCTP_ASSOC_CHANGE, 12);
        assert!(Notification::decode(&b).is_err());
        // Unknown kinds are kept, not rejected.
        let b = header(ffi::SCTP_ADAPTATION_INDICATION, 16);
        assert_eq!(
            Notification::decode(&b).unwrap(),
            Notification::Other {
                kind: ffi::SCTP_ADAPTATION_INDICATION
            }
        );
    }

    #[test]
    fn event_types() {
        assert_eq!(Event::AssocChange.sn_type(), 0x8001);
        assert_eq!(Event::SendFailed.sn_type(), 0x800d);
        assert_eq!(Event::SenderDry.sn_type(), 0x8009);
        assert_eq!(Event::Authentication.sn_type(), 0x8008);
    }
}
