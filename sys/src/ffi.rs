//! Raw kernel SCTP ABI: constants and `#[repr(C)]` structs from `<linux/sctp.h>` (RFC 6458), defined
//! by hand so that sipwire does not link libsctp. Layouts are checked against the kernel header's
//! sizes and offsets in the tests below.

#![allow(non_camel_case_types, missing_docs)]

/// `IPPROTO_SCTP` and `SOL_SCTP` (the same number on Linux).
pub const IPPROTO_SCTP: libc::c_int = 132;
/// Socket option level of SCTP.
pub const SOL_SCTP: libc::c_int = 132;

/// `sctp_assoc_t`.
pub type sctp_assoc_t = i32;

pub const SCTP_FUTURE_ASSOC: sctp_assoc_t = 0;
pub const SCTP_CURRENT_ASSOC: sctp_assoc_t = 1;
pub const SCTP_ALL_ASSOC: sctp_assoc_t = 2;

// Socket options.
pub const SCTP_RTOINFO: libc::c_int = 0;
pub const SCTP_ASSOCINFO: libc::c_int = 1;
pub const SCTP_INITMSG: libc::c_int = 2;
pub const SCTP_NODELAY: libc::c_int = 3;
pub const SCTP_PEER_ADDR_PARAMS: libc::c_int = 9;
pub const SCTP_STATUS: libc::c_int = 14;
pub const SCTP_FRAGMENT_INTERLEAVE: libc::c_int = 18;
pub const SCTP_PARTIAL_DELIVERY_POINT: libc::c_int = 19;
pub const SCTP_AUTH_CHUNK: libc::c_int = 21;
pub const SCTP_AUTH_KEY: libc::c_int = 23;
pub const SCTP_AUTH_ACTIVE_KEY: libc::c_int = 24;
pub const SCTP_AUTH_DELETE_KEY: libc::c_int = 25;
pub const SCTP_PEER_AUTH_CHUNKS: libc::c_int = 26;
pub const SCTP_LOCAL_AUTH_CHUNKS: libc::c_int = 27;
pub const SCTP_RECVRCVINFO: libc::c_int = 32;
pub const SCTP_RECVNXTINFO: libc::c_int = 33;
pub const SCTP_SOCKOPT_BINDX_ADD: libc::c_int = 100;
pub const SCTP_SOCKOPT_BINDX_REM: libc::c_int = 101;
pub const SCTP_SOCKOPT_PEELOFF: libc::c_int = 102;
pub const SCTP_GET_PEER_ADDRS: libc::c_int = 108;
pub const SCTP_GET_LOCAL_ADDRS: libc::c_int = 109;
pub const SCTP_SOCKOPT_CONNECTX: libc::c_int = 110;
pub const SCTP_SOCKOPT_CONNECTX3: libc::c_int = 111;
pub const SCTP_EVENT: libc::c_int = 127;
pub const SCTP_AUTH_SUPPORTED: libc::c_int = 129;

// cmsg types.
pub const SCTP_SNDINFO: libc::c_int = 2;
pub const SCTP_RCVINFO: libc::c_int = 3;
pub const SCTP_NXTINFO: libc::c_int = 4;

// sinfo / snd flags.
pub const SCTP_UNORDERED: u16 = 1 << 0;
pub const SCTP_ADDR_OVER: u16 = 1 << 1;
pub const SCTP_ABORT: u16 = 1 << 2;
pub const SCTP_SACK_IMMEDIATELY: u16 = 1 << 3;
pub const SCTP_SENDALL: u16 = 1 << 6;
/// `MSG_FIN` used as a send flag: graceful shutdown of the association.
pub const SCTP_EOF: u16 = 0x200;

/// `msg_flags` bit of a notification.
pub const MSG_NOTIFICATION: libc::c_int = 0x8000;

// Notification types (`enum sctp_sn_type`).
pub const SCTP_SN_TYPE_BASE: u16 = 1 << 15;
pub const SCTP_ASSOC_CHANGE: u16 = SCTP_SN_TYPE_BASE + 1;
pub const SCTP_PEER_ADDR_CHANGE: u16 = SCTP_SN_TYPE_BASE + 2;
pub const SCTP_SEND_FAILED: u16 = SCTP_SN_TYPE_BASE + 3;
pub const SCTP_REMOTE_ERROR: u16 = SCTP_SN_TYPE_BASE + 4;
pub const SCTP_SHUTDOWN_EVENT: u16 = SCTP_SN_TYPE_BASE + 5;
pub const SCTP_PARTIAL_DELIVERY_EVENT: u16 = SCTP_SN_TYPE_BASE + 6;
pub const SCTP_ADAPTATION_INDICATION: u16 = SCTP_SN_TYPE_BASE + 7;
pub const SCTP_AUTHENTICATION_EVENT: u16 = SCTP_SN_TYPE_BASE + 8;
pub const SCTP_SENDER_DRY_EVENT: u16 = SCTP_SN_TYPE_BASE + 9;
pub const SCTP_SEND_FAILED_EVENT: u16 = SCTP_SN_TYPE_BASE + 13;

// spp_flags.
pub const SPP_HB_ENABLE: u32 = 1 << 0;
pub const SPP_HB_DISABLE: u32 = 1 << 1;

/// `struct sctp_initmsg`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct sctp_initmsg {
    pub sinit_num_ostreams: u16,
    pub sinit_max_instreams: u16,
    pub sinit_max_attempts: u16,
    pub sinit_max_init_timeo: u16,
}

/// `struct sctp_sndinfo` (cmsg `SCTP_SNDINFO`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct sctp_sndinfo {
    pub snd_sid: u16,
    pub snd_flags: u16,
    pub snd_ppid: u32,
    pub snd_context: u32,
    pub snd_assoc_id: sctp_assoc_t,
}

/// `struct sctp_rcvinfo` (cmsg `SCTP_RCVINFO`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct sctp_rcvinfo {
    pub rcv_sid: u16,
    pub rcv_ssn: u16,
    pub rcv_flags: u16,
    pub rcv_ppid: u32,
    pub rcv_tsn: u32,
    pub rcv_cumtsn: u32,
    pub rcv_context: u32,
    pub rcv_assoc_id: sctp_assoc_t,
}

/// `struct sctp_rtoinfo`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct sctp_rtoinfo {
    pub srto_assoc_id: sctp_assoc_t,
    pub srto_initial: u32,
    pub srto_max: u32,
    pub srto_min: u32,
}

/// `struct sctp_assocparams`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct sctp_assocparams {
    pub sasoc_assoc_id: sctp_assoc_t,
    pub sasoc_asocmaxrxt: u16,
    pub sasoc_number_peer_destinations: u16,
    pub sasoc_peer_rwnd: u32,
    pub sasoc_local_rwnd: u32,
    pub sasoc_cookie_life: u32,
}

/// `struct sctp_paddrparams`: `packed, aligned(4)` in C. Rust cannot combine `packed` and `align`,
/// so the trailing padding byte is explicit; the kernel copies it with `copy_from_user`, which has no
/// alignment needs.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct sctp_paddrparams {
    pub spp_assoc_id: sctp_assoc_t,
    pub spp_address: libc::sockaddr_storage,
    pub spp_hbinterval: u32,
    pub spp_pathmaxrxt: u16,
    pub spp_pathmtu: u32,
    pub spp_sackdelay: u32,
    pub spp_flags: u32,
    pub spp_ipv6_flowlabel: u32,
    pub spp_dscp: u8,
    pub _pad: u8,
}

/// `struct sctp_authkey` header; `sca_keylength` key bytes follow it.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct sctp_authkey {
    pub sca_assoc_id: sctp_assoc_t,
    pub sca_keynumber: u16,
    pub sca_keylength: u16,
}

/// `struct sctp_authkeyid`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct sctp_authkeyid {
    pub scact_assoc_id: sctp_assoc_t,
    pub scact_keynumber: u16,
}

/// `struct sctp_authchunk`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct sctp_authchunk {
    pub sauth_chunk: u8,
}

/// `struct sctp_authchunks` header; `gauth_number_of_chunks` chunk types follow it.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct sctp_authchunks {
    pub gauth_assoc_id: sctp_assoc_t,
    pub gauth_number_of_chunks: u32,
}

/// `struct sctp_assoc_value`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct sctp_assoc_value {
    pub assoc_id: sctp_assoc_t,
    pub assoc_value: u32,
}

/// `struct sctp_getaddrs` header; packed `sockaddr_in`/`sockaddr_in6` follow it.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct sctp_getaddrs {
    pub assoc_id: sctp_assoc_t,
    pub addr_num: u32,
}

/// `struct sctp_getaddrs_old`: the argument of `SCTP_SOCKOPT_CONNECTX3`, which reports the
/// association id even when a non-blocking connect is still in progress.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sctp_getaddrs_old {
    pub assoc_id: sctp_assoc_t,
    pub addr_num: libc::c_int,
    pub addrs: *mut libc::sockaddr,
}

/// `sctp_peeloff_arg_t`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct sctp_peeloff_arg_t {
    pub associd: sctp_assoc_t,
    pub sd: libc::c_int,
}

/// `struct sctp_event`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct sctp_event {
    pub se_assoc_id: sctp_assoc_t,
    pub se_type: u16,
    pub se_on: u8,
}

/// Byte offsets of the notification structs' fields (decoded from bytes, not through structs, since
/// the kernel hands them over in an unaligned receive buffer).
pub mod notif {
    /// Common header: type u16 @0, flags u16 @2, length u32 @4.
    pub const HEADER_LEN: usize = 8;
    // struct sctp_assoc_change (20 bytes + sac_info)
    pub const SAC_STATE: usize = 8;
    pub const SAC_ERROR: usize = 10;
    pub const SAC_OUTBOUND_STREAMS: usize = 12;
    pub const SAC_INBOUND_STREAMS: usize = 14;
    pub const SAC_ASSOC_ID: usize = 16;
    pub const SAC_INFO: usize = 20;
    // struct sctp_paddr_change (148 bytes, packed aligned(4))
    pub const SPC_AADDR: usize = 8;
    pub const SPC_STATE: usize = 136;
    pub const SPC_ERROR: usize = 140;
    pub const SPC_ASSOC_ID: usize = 144;
    pub const SPC_LEN: usize = 148;
    // struct sctp_remote_error (16 bytes + data)
    pub const SRE_ERROR: usize = 8;
    pub const SRE_ASSOC_ID: usize = 12;
    pub const SRE_DATA: usize = 16;
    // struct sctp_send_failed_event (32 bytes + data)
    pub const SSF_ERROR: usize = 8;
    pub const SSFE_INFO: usize = 12;
    pub const SSF_ASSOC_ID: usize = 28;
    pub const SSF_DATA: usize = 32;
    // struct sctp_shutdown_event (12 bytes)
    pub const SSE_ASSOC_ID: usize = 8;
    pub const SSE_LEN: usize = 12;
    // struct sctp_pdapi_event (24 bytes)
    pub const PDAPI_INDICATION: usize = 8;
    pub const PDAPI_ASSOC_ID: usize = 12;
    pub const PDAPI_STREAM: usize = 16;
    pub const PDAPI_SEQ: usize = 20;
    pub const PDAPI_LEN: usize = 24;
    // struct sctp_authkey_event (20 bytes)
    pub const AUTH_KEYNUMBER: usize = 8;
    pub const AUTH_ALTKEYNUMBER: usize = 10;
    pub const AUTH_INDICATION: usize = 12;
    pub const AUTH_ASSOC_ID: usize = 16;
    pub const AUTH_LEN: usize = 20;
    // struct sctp_sender_dry_event (12 bytes)
    pub const DRY_ASSOC_ID: usize = 8;
    pub const DRY_LEN: usize = 12;
}

#[cfg(test)]
mod tests {
    //! Expected numbers: sizeof/offsetof printed by gcc from `<linux/sctp.h>` (linux-libc-dev 6.1).
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    #[test]
    fn initmsg_layout() {
        assert_eq!(size_of::<sctp_initmsg>(), 8);
        assert_eq!(offset_of!(sctp_initmsg, sinit_max_init_timeo), 6);
    }

    #[test]
    fn sndinfo_layout() {
        assert_eq!(size_of::<sctp_sndinfo>(), 16);
        assert_eq!(align_of::<sctp_sndinfo>(), 4);
        assert_eq!(offset_of!(sctp_sndinfo, snd_ppid), 4);
        assert_eq!(offset_of!(sctp_sndinfo, snd_context), 8);
        assert_eq!(offset_of!(sctp_sndinfo, snd_assoc_id), 12);
    }

    #[test]
    fn rcvinfo_layout() {
        assert_eq!(size_of::<sctp_rcvinfo>(), 28);
        assert_eq!(offset_of!(sctp_rcvinfo, rcv_flags), 4);
        assert_eq!(offset_of!(sctp_rcvinfo, rcv_ppid), 8);
        assert_eq!(offset_of!(sctp_rcvinfo, rcv_tsn), 12);
        assert_eq!(offset_of!(sctp_rcvinfo, rcv_cumtsn), 16);
        assert_eq!(offset_of!(sctp_rcvinfo, rcv_context), 20);
        assert_eq!(offset_of!(sctp_rcvinfo, rcv_assoc_id), 24);
    }

    #[test]
    fn rtoinfo_and_assocparams_layout() {
        assert_eq!(size_of::<sctp_rtoinfo>(), 16);
        assert_eq!(offset_of!(sctp_rtoinfo, srto_initial), 4);
        assert_eq!(offset_of!(sctp_rtoinfo, srto_max), 8);
        assert_eq!(offset_of!(sctp_rtoinfo, srto_min), 12);
        assert_eq!(size_of::<sctp_assocparams>(), 20);
        assert_eq!(offset_of!(sctp_assocparams, sasoc_asocmaxrxt), 4);
        assert_eq!(
            offset_of!(sctp_assocparams, sasoc_number_peer_destinations),
            6
        );
        assert_eq!(offset_of!(sctp_assocparams, sasoc_peer_rwnd), 8);
        assert_eq!(offset_of!(sctp_assocparams, sasoc_local_rwnd), 12);
        assert_eq!(offset_of!(sctp_assocparams, sasoc_cookie_life), 16);
    }

    #[test]
    fn paddrparams_layout() {
        assert_eq!(size_of::<sctp_paddrparams>(), 156);
        assert_eq!(offset_of!(sctp_paddrparams, spp_address), 4);
        assert_eq!(offset_of!(sctp_paddrparams, spp_hbinterval), 132);
        assert_eq!(offset_of!(sctp_paddrparams, spp_pathmaxrxt), 136);
        assert_eq!(offset_of!(sctp_paddrparams, spp_pathmtu), 138);
        assert_eq!(offset_of!(sctp_paddrparams, spp_sackdelay), 142);
        assert_eq!(offset_of!(sctp_paddrparams, spp_flags), 146);
        assert_eq!(offset_of!(sctp_paddrparams, spp_ipv6_flowlabel), 150);
        assert_eq!(offset_of!(sctp_paddrparams, spp_dscp), 154);
    }

    #[test]
    fn auth_structs_layout() {
        assert_eq!(size_of::<sctp_authkey>(), 8);
        assert_eq!(offset_of!(sctp_authkey, sca_keynumber), 4);
        assert_eq!(offset_of!(sctp_authkey, sca_keylength), 6);
        assert_eq!(size_of::<sctp_authkeyid>(), 8);
        assert_eq!(offset_of!(sctp_authkeyid, scact_keynumber), 4);
        assert_eq!(size_of::<sctp_authchunk>(), 1);
        assert_eq!(size_of::<sctp_authchunks>(), 8);
        assert_eq!(offset_of!(sctp_authchunks, gauth_number_of_chunks), 4);
    }

    #[test]
    fn misc_structs_layout() {
        assert_eq!(size_of::<sctp_assoc_value>(), 8);
        assert_eq!(offset_of!(sctp_assoc_value, assoc_value), 4);
        assert_eq!(size_of::<sctp_getaddrs>(), 8);
        assert_eq!(offset_of!(sctp_getaddrs, addr_num), 4);
        assert_eq!(size_of::<sctp_getaddrs_old>(), 16);
        assert_eq!(offset_of!(sctp_getaddrs_old, addrs), 8);
        assert_eq!(size_of::<sctp_peeloff_arg_t>(), 8);
        assert_eq!(size_of::<sctp_event>(), 8);
        assert_eq!(offset_of!(sctp_event, se_type), 4);
        assert_eq!(offset_of!(sctp_event, se_on), 6);
    }

    #[test]
    fn notification_offsets_match_header() {
        // sctp_paddr_change: 8-byte header, 128-byte sockaddr_storage, then state/error/assoc id.
        assert_eq!(
            notif::SPC_AADDR + size_of::<libc::sockaddr_storage>(),
            notif::SPC_STATE
        );
        assert_eq!(notif::SPC_LEN, 148);
        // sctp_send_failed_event embeds a 16-byte sctp_sndinfo at 12.
        assert_eq!(
            notif::SSFE_INFO + size_of::<sctp_sndinfo>(),
            notif::SSF_ASSOC_ID
        );
        assert_eq!(notif::SAC_INFO, 20);
        assert_eq!(notif::PDAPI_LEN, 24);
        assert_eq!(notif::AUTH_LEN, 20);
    }
}
