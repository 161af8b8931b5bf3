//! SCTP socket options (RFC 6458 §8.1) as typed getters/setters on every SCTP socket type.
//! `assoc_id` 0 means the endpoint default for future associations (on one-to-one sockets: the
//! socket's association).

use crate::error::Result;
use crate::ffi;
use crate::notification::Event;
use crate::socket::{getsockopt, setsockopt};
use std::net::SocketAddr;
use std::os::fd::AsFd;

/// `SCTP_INITMSG`: stream counts and INIT retransmission limits for new associations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InitMsg {
    /// Outbound streams requested.
    pub num_ostreams: u16,
    /// Maximum inbound streams accepted.
    pub max_instreams: u16,
    /// INIT retransmissions before giving up (0 = kernel default).
    pub max_attempts: u16,
    /// Maximum INIT retransmission timeout in ms (0 = kernel default).
    pub max_init_timeo: u16,
}

/// `SCTP_RTOINFO`, milliseconds (0 leaves a value unchanged when setting).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtoInfo {
    /// Initial RTO.
    pub initial: u32,
    /// Maximum RTO.
    pub max: u32,
    /// Minimum RTO.
    pub min: u32,
}

/// `SCTP_ASSOCINFO` (0 leaves a value unchanged when setting).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AssocInfo {
    /// Association max retransmissions before it is declared dead.
    pub max_retrans: u16,
    /// Number of peer addresses (read only).
    pub peer_destinations: u16,
    /// Peer receive window (read only).
    pub peer_rwnd: u32,
    /// Local receive window (read only).
    pub local_rwnd: u32,
    /// Cookie lifetime, ms.
    pub cookie_life: u32,
}

/// `SCTP_PEER_ADDR_PARAMS`: heartbeat and path failure detection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerAddrParams {
    /// Peer address these apply to (None: all addresses of the association / endpoint default).
    pub addr: Option<SocketAddr>,
    /// Heartbeat interval in ms (with `heartbeat: Some(true)`; 0 leaves it unchanged).
    pub hb_interval: u32,
    /// Path max retransmissions before the path is marked unreachable (0 leaves it unchanged).
    pub path_max_retrans: u16,
    /// Some(true) enables heartbeats, Some(false) disables them, None leaves them.
    pub heartbeat: Option<bool>,
}

/// Socket options available on every SCTP socket type of this crate.
pub trait SctpOptions: AsFd {
    /// `SCTP_NODELAY`: disable Nagle-like bundling delays.
    fn set_nodelay(&self, on: bool) -> Result<()> {
        let v: libc::c_int = on.into();
        setsockopt(self.as_fd(), ffi::SOL_SCTP, ffi::SCTP_NODELAY, &v)?;
        Ok(())
    }

    /// Reads `SCTP_NODELAY`.
    fn nodelay(&self) -> Result<bool> {
        let mut v: libc::c_int = 0;
        getsockopt(self.as_fd(), ffi::SOL_SCTP, ffi::SCTP_NODELAY, &mut v)?;
        Ok(v != 0)
    }

    /// `SCTP_INITMSG` (before connect/listen).
    fn set_init_msg(&self, m: InitMsg) -> Result<()> {
        let raw = ffi::sctp_initmsg {
            sinit_num_ostreams: m.num_ostreams,
            sinit_max_instreams: m.max_instreams,
            sinit_max_attempts: m.max_attempts,
            sinit_max_init_timeo: m.max_init_timeo,
        };
        setsockopt(self.as_fd(), ffi::SOL_SCTP, ffi::SCTP_INITMSG, &raw)?;
        Ok(())
    }

    /// Reads `SCTP_INITMSG`.
    fn init_msg(&self) -> Result<InitMsg> {
        let mut raw = ffi::sctp_initmsg::default();
        getsockopt(self.as_fd(), ffi::SOL_SCTP, ffi::SCTP_INITMSG, &mut raw)?;
        Ok(InitMsg {
            num_ostreams: raw.sinit_num_ostreams,
            max_instreams: raw.sinit_max_instreams,
            max_attempts: raw.sinit_max_attempts,
            max_init_timeo: raw.sinit_max_init_timeo,
        })
    }

    /// `SCTP_RTOINFO`.
    fn set_rto_info(&self, assoc_id: i32, r: RtoInfo) -> Result<()> {
        let raw = ffi::sctp_rtoinfo {
            srto_assoc_id: assoc_id,
            srto_initial: r.initial,
            srto_max: r.max,
            srto_min: r.min,
        };
        setsockopt(self.as_fd(), ffi::SOL_SCTP, ffi::SCTP_RTOINFO, &raw)?;
        Ok(())
    }

    /// Reads `SCTP_RTOINFO`.
    fn rto_info(&self, assoc_id: i32) -> Result<RtoInfo> {
        let mut raw = ffi::sctp_rtoinfo {
            srto_assoc_id: assoc_id,
            ..Default::default()
        };
        getsockopt(self.as_fd(), ffi::SOL_SCTP, ffi::SCTP_RTOINFO, &mut raw)?;
        Ok(RtoInfo {
            initial: raw.srto_initial,
            max: raw.srto_max,
            min: raw.srto_min,
        })
    }

    /// `SCTP_ASSOCINFO` (max retransmissions, cookie life).
    fn set_assoc_info(&self, assoc_id: i32, a: AssocInfo) -> Result<()> {
        let raw = ffi::sctp_assocparams {
            sasoc_assoc_id: assoc_id,
            sasoc_asocmaxrxt: a.max_retrans,
            sasoc_cookie_life: a.cookie_life,
            ..Default::default()
        };
        setsockopt(self.as_fd(), ffi::SOL_SCTP, ffi::SCTP_ASSOCINFO, &raw)?;
        Ok(())
    }

    /// Reads `SCTP_ASSOCINFO`.
    fn assoc_info(&self, assoc_id: i32) -> Result<AssocInfo> {
        let mut raw = ffi::sctp_assocparams {
            sasoc_assoc_id: assoc_id,
            ..Default::default()
        };
        getsockopt(self.as_fd(), ffi::SOL_SCTP, ffi::SCTP_ASSOCINFO, &mut raw)?;
        Ok(AssocInfo {
            max_retrans: raw.sasoc_asocmaxrxt,
            peer_destinations: raw.sasoc_number_peer_destinations,
            peer_rwnd: raw.sasoc_peer_rwnd,
            local_rwnd: raw.sasoc_local_rwnd,
            cookie_life: raw.sasoc_cookie_life,
        })
    }

    /// `SCTP_PEER_ADDR_PARAMS`: heartbeat interval and path max retransmissions.
    fn set_peer_addr_params(&self, assoc_id: i32, p: PeerAddrParams) -> Result<()> {
        let raw = encode_paddrparams(assoc_id, &p);
        setsockopt(
            self.as_fd(),
            ffi::SOL_SCTP,
            ffi::SCTP_PEER_ADDR_PARAMS,
            &raw,
        )?;
        Ok(())
    }

    /// Reads `SCTP_PEER_ADDR_PARAMS` (for `addr`, or the association/endpoint default).
    fn peer_addr_params(&self, assoc_id: i32, addr: Option<SocketAddr>) -> Result<PeerAddrParams> {
        let mut raw = encode_paddrparams(
            assoc_id,
            &PeerAddrParams {
                addr,
                ..Default::default()
            },
        );
        getsockopt(
            self.as_fd(),
            ffi::SOL_SCTP,
            ffi::SCTP_PEER_ADDR_PARAMS,
            &mut raw,
        )?;
        let flags = raw.spp_flags;
        Ok(PeerAddrParams {
            addr,
            hb_interval: raw.spp_hbinterval,
            path_max_retrans: raw.spp_pathmaxrxt,
            heartbeat: Some(flags & ffi::SPP_HB_ENABLE != 0),
        })
    }

    /// `SCTP_FRAGMENT_INTERLEAVE` level (0, 1 or 2).
    fn set_fragment_interleave(&self, level: u32) -> Result<()> {
        let v = level as libc::c_int;
        setsockopt(
            self.as_fd(),
            ffi::SOL_SCTP,
            ffi::SCTP_FRAGMENT_INTERLEAVE,
            &v,
        )?;
        Ok(())
    }

    /// Reads `SCTP_FRAGMENT_INTERLEAVE`.
    fn fragment_interleave(&self) -> Result<u32> {
        let mut v: libc::c_int = 0;
        getsockopt(
            self.as_fd(),
            ffi::SOL_SCTP,
            ffi::SCTP_FRAGMENT_INTERLEAVE,
            &mut v,
        )?;
        Ok(v as u32)
    }

    /// `SCTP_PARTIAL_DELIVERY_POINT` in bytes.
    fn set_partial_delivery_point(&self, bytes: u32) -> Result<()> {
        setsockopt(
            self.as_fd(),
            ffi::SOL_SCTP,
            ffi::SCTP_PARTIAL_DELIVERY_POINT,
            &bytes,
        )?;
        Ok(())
    }

    /// Reads `SCTP_PARTIAL_DELIVERY_POINT`.
    fn partial_delivery_point(&self) -> Result<u32> {
        let mut v: u32 = 0;
        getsockopt(
            self.as_fd(),
            ffi::SOL_SCTP,
            ffi::SCTP_PARTIAL_DELIVERY_POINT,
            &mut v,
        )?;
        Ok(v)
    }

    /// Turns delivery of one notification kind on or off (`SCTP_EVENT`, all associations).
    fn set_event(&self, event: Event, on: bool) -> Result<()> {
        let raw = ffi::sctp_event {
            se_assoc_id: ffi::SCTP_ALL_ASSOC,
            se_type: event.sn_type(),
            se_on: on.into(),
        };
        setsockopt(self.as_fd(), ffi::SOL_SCTP, ffi::SCTP_EVENT, &raw)?;
        Ok(())
    }

    /// Subscribes to each of `events`.
    fn subscribe(&self, events: &[Event]) -> Result<()> {
        events.iter().try_for_each(|e| self.set_event(*e, true))
    }

    /// `SO_SNDBUF` in bytes (the kernel doubles the value).
    fn set_send_buffer_size(&self, bytes: usize) -> Result<()> {
        let v = bytes.min(i32::MAX as usize) as libc::c_int;
        setsockopt(self.as_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, &v)?;
        Ok(())
    }

    /// `SO_RCVBUF` in bytes (the kernel doubles the value).
    fn set_recv_buffer_size(&self, bytes: usize) -> Result<()> {
        let v = bytes.min(i32::MAX as usize) as libc::c_int;
        setsockopt(self.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, &v)?;
        Ok(())
    }
}

/// Builds the packed `sctp_paddrparams` for a get or set.
pub(crate) fn encode_paddrparams(assoc_id: i32, p: &PeerAddrParams) -> ffi::sctp_paddrparams {
    let storage = match &p.addr {
        Some(a) => crate::addr::to_storage(a).0,
        // SAFETY: sockaddr_storage is plain old data; all-zero (AF_UNSPEC) means "no address".
        None => unsafe { std::mem::zeroed() },
    };
    let flags = match p.heartbeat {
        Some(true) => ffi::SPP_HB_ENABLE,
        Some(false) => ffi::SPP_HB_DISABLE,
        None => 0,
    };
    ffi::sctp_paddrparams {
        spp_assoc_id: assoc_id,
        spp_address: storage,
        spp_hbinterval: p.hb_interval,
        spp_pathmaxrxt: p.path_max_retrans,
        spp_pathmtu: 0,
        spp_sackdelay: 0,
        spp_flags: flags,
        spp_ipv6_flowlabel: 0,
        spp_dscp: 0,
        _pad: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(p: &ffi::sctp_paddrparams) -> &[u8] {
        // SAFETY: the struct is packed plain old data of size_of bytes.
        unsafe {
            std::slice::from_raw_parts(
                (p as *const ffi::sctp_paddrparams).cast::<u8>(),
                std::mem::size_of::<ffi::sctp_paddrparams>(),
            )
        }
    }

    #[test]
    fn paddrparams_encoding_puts_fields_at_kernel_offsets() {
        let p = PeerAddrParams {
            addr: Some("198.51.100.2:5060".parse().unwrap()),
            hb_interval: 500,
            path_max_retrans: 2,
            heartbeat: Some(true),
        };
        let raw = encode_paddrparams(7, &p);
        let b = bytes_of(&raw);
        assert_eq!(&b[0..4], &7i32.to_ne_bytes());
        assert_eq!(&b[4..6], &(libc::AF_INET as u16).to_ne_bytes());
        assert_eq!(&b[8..12], &[198, 51, 100, 2]);
        assert_eq!(&b[132..136], &500u32.to_ne_bytes());
        assert_eq!(&b[136..138], &2u16.to_ne_bytes());
        assert_eq!(&b[146..150], &ffi::SPP_HB_ENABLE.to_ne_bytes());
        let off = encode_paddrparams(
            0,
            &PeerAddrParams {
                heartbeat: Some(false),
                ..Default::default()
            },
        );
        assert_eq!(
            &bytes_of(&off)[146..150],
            &ffi::SPP_HB_DISABLE.to_ne_bytes()
        );
        assert_eq!(&bytes_of(&off)[4..6], &[0, 0]);
    }
}
