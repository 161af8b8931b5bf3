//! Conversions between `SocketAddr` and the kernel's `sockaddr_in`/`sockaddr_in6`, and the packed
//! address lists used by bindx, connectx and getpaddrs/getladdrs (no padding between entries).

use crate::error::{Result, SctpError};
use std::mem::size_of;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

const V4_LEN: usize = size_of::<libc::sockaddr_in>();
const V6_LEN: usize = size_of::<libc::sockaddr_in6>();

/// Appends one address in kernel layout to `out` (16 bytes for IPv4, 28 for IPv6).
pub fn push_sockaddr(out: &mut Vec<u8>, addr: &SocketAddr) {
    match addr {
        SocketAddr::V4(a) => {
            let mut b = [0u8; V4_LEN];
            b[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[4..8].copy_from_slice(&a.ip().octets());
            out.extend_from_slice(&b);
        }
        SocketAddr::V6(a) => {
            let mut b = [0u8; V6_LEN];
            b[0..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[4..8].copy_from_slice(&a.flowinfo().to_be_bytes());
            b[8..24].copy_from_slice(&a.ip().octets());
            b[24..28].copy_from_slice(&a.scope_id().to_ne_bytes());
            out.extend_from_slice(&b);
        }
    }
}

/// Packs a list of addresses for `SCTP_SOCKOPT_BINDX_ADD` / `SCTP_SOCKOPT_CONNECTX`.
pub fn pack_addrs(addrs: &[SocketAddr]) -> Result<Vec<u8>> {
    if addrs.is_empty() {
        return Err(SctpError::InvalidInput("empty address list"));
    }
    let mut out = Vec::with_capacity(addrs.len() * V6_LEN);
    for a in addrs {
        push_sockaddr(&mut out, a);
    }
    Ok(out)
}

/// Decodes one address at the start of `b`; returns it and its length in bytes.
pub fn parse_sockaddr(b: &[u8]) -> Result<(SocketAddr, usize)> {
    let bad = SctpError::Malformed {
        what: "socket address",
    };
    let fam = u16::from_ne_bytes([
        *b.first().ok_or(SctpError::Malformed {
            what: "socket address",
        })?,
        *b.get(1).ok_or(SctpError::Malformed {
            what: "socket address",
        })?,
    ]);
    match fam as libc::c_int {
        libc::AF_INET => {
            let s = b.get(..V4_LEN).ok_or(bad)?;
            let port = u16::from_be_bytes([s[2], s[3]]);
            let ip = Ipv4Addr::new(s[4], s[5], s[6], s[7]);
            Ok((SocketAddr::V4(SocketAddrV4::new(ip, port)), V4_LEN))
        }
        libc::AF_INET6 => {
            let s = b.get(..V6_LEN).ok_or(bad)?;
            let port = u16::from_be_bytes([s[2], s[3]]);
            let flow = u32::from_be_bytes([s[4], s[5], s[6], s[7]]);
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&s[8..24]);
            let scope = u32::from_ne_bytes([s[24], s[25], s[26], s[27]]);
            let ip = Ipv6Addr::from(ip);
            // A v4-mapped address (from a dual-stack socket) is reported as plain IPv4.
            if let Some(v4) = ip.to_ipv4_mapped() {
                return Ok((SocketAddr::V4(SocketAddrV4::new(v4, port)), V6_LEN));
            }
            Ok((
                SocketAddr::V6(SocketAddrV6::new(ip, port, flow, scope)),
                V6_LEN,
            ))
        }
        _ => Err(bad),
    }
}

/// Decodes `count` packed addresses (the output of `SCTP_GET_PEER_ADDRS`/`SCTP_GET_LOCAL_ADDRS`).
pub fn parse_packed_addrs(mut b: &[u8], count: usize) -> Result<Vec<SocketAddr>> {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let (a, n) = parse_sockaddr(b)?;
        out.push(a);
        b = b.get(n..).ok_or(SctpError::Malformed {
            what: "address list",
        })?;
    }
    Ok(out)
}

/// A `sockaddr_storage` holding `addr`, with its length, for `bind`/`connect`/`sendmsg`.
pub fn to_storage(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    to_storage_noalloc(addr)
}

/// Writes `addr` into a `sockaddr_storage` without allocating (hot path of `send_to`).
pub fn write_storage(addr: &SocketAddr, st: &mut libc::sockaddr_storage) -> libc::socklen_t {
    let (s, len) = to_storage_noalloc(addr);
    *st = s;
    len
}

fn to_storage_noalloc(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in.
            unsafe {
                std::ptr::write(
                    (&mut st as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>(),
                    sin,
                )
            };
            (st, V4_LEN as libc::socklen_t)
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo().to_be(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in6.
            unsafe {
                std::ptr::write(
                    (&mut st as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>(),
                    sin6,
                )
            };
            (st, V6_LEN as libc::socklen_t)
        }
    }
}

/// Decodes a `sockaddr_storage` filled by the kernel (e.g. `accept`, `recvmsg`).
pub fn from_storage(st: &libc::sockaddr_storage, len: libc::socklen_t) -> Result<SocketAddr> {
    // SAFETY: sockaddr_storage is 128 initialized bytes; we view them as a byte slice.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (st as *const libc::sockaddr_storage).cast::<u8>(),
            size_of::<libc::sockaddr_storage>(),
        )
    };
    let len = (len as usize).min(bytes.len());
    parse_sockaddr(&bytes[..len]).map(|(a, _)| a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_and_parse_round_trip() {
        let addrs: Vec<SocketAddr> = vec![
            "192.0.2.1:5060".parse().unwrap(),
            "[2001:db8::1]:5061".parse().unwrap(),
            "198.51.100.7:1".parse().unwrap(),
        ];
        let packed = pack_addrs(&addrs).unwrap();
        assert_eq!(packed.len(), 16 + 28 + 16);
        assert_eq!(parse_packed_addrs(&packed, 3).unwrap(), addrs);
    }

    #[test]
    fn v4_bytes_are_kernel_layout() {
        let mut b = Vec::new();
        push_sockaddr(&mut b, &"192.0.2.1:5060".parse().unwrap());
        assert_eq!(&b[0..2], &(libc::AF_INET as u16).to_ne_bytes());
        assert_eq!(&b[2..4], &[0x13, 0xc4]);
        assert_eq!(&b[4..8], &[192, 0, 2, 1]);
    }

    #[test]
    fn storage_round_trip_and_mapped_v4() {
        for s in ["192.0.2.1:9", "[2001:db8::5]:7"] {
            let a: SocketAddr = s.parse().unwrap();
            let (st, len) = to_storage(&a);
            assert_eq!(from_storage(&st, len).unwrap(), a);
        }
        let mapped: SocketAddr = "[::ffff:192.0.2.9]:5".parse().unwrap();
        let (st, len) = to_storage(&mapped);
        assert_eq!(
            from_storage(&st, len).unwrap(),
            "192.0.2.9:5".parse::<SocketAddr>().unwrap()
        );
    }

    #[test]
    fn truncated_or_unknown_is_an_error() {
        assert!(parse_sockaddr(&[]).is_err());
        assert!(parse_sockaddr(&[2, 0, 1]).is_err());
        assert!(parse_sockaddr(&[0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(parse_packed_addrs(&[], 1).is_err());
        assert!(pack_addrs(&[]).is_err());
    }
}
