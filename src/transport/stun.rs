//! RFC 5626 §4.4.2 / §8 STUN keep-alive on UDP: a Binding Request received on a SIP UDP
//! socket is answered with a Binding Success Response carrying XOR-MAPPED-ADDRESS
//! (RFC 5389 §15.2). Pure: bytes in, bytes out.

use std::net::{IpAddr, SocketAddr};

const MAGIC_COOKIE: u32 = 0x2112_A442;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;
const HEADER_LEN: usize = 20;

/// Answers a STUN Binding Request from `source`; `None` for anything else (other STUN
/// methods, RFC 3489 requests without the magic cookie, malformed input).
pub(super) fn binding_response(request: &[u8], source: SocketAddr) -> Option<Vec<u8>> {
    let header = request.get(..HEADER_LEN)?;
    let msg_type = u16::from_be_bytes([*header.first()?, *header.get(1)?]);
    let length = usize::from(u16::from_be_bytes([*header.get(2)?, *header.get(3)?]));
    let cookie = u32::from_be_bytes(header.get(4..8)?.try_into().ok()?);
    if msg_type != BINDING_REQUEST
        || cookie != MAGIC_COOKIE
        || length % 4 != 0
        || request.len() != HEADER_LEN + length
    {
        return None;
    }
    let txid = header.get(8..20)?;
    let port = source.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let mut attr = Vec::with_capacity(20);
    attr.push(0);
    match source.ip() {
        IpAddr::V4(v4) => {
            attr.push(0x01);
            attr.extend_from_slice(&port.to_be_bytes());
            let x = u32::from(v4) ^ MAGIC_COOKIE;
            attr.extend_from_slice(&x.to_be_bytes());
        }
        IpAddr::V6(v6) => {
            attr.push(0x02);
            attr.extend_from_slice(&port.to_be_bytes());
            let mut key = [0u8; 16];
            key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            key[4..].copy_from_slice(txid);
            for (o, k) in v6.octets().iter().zip(key) {
                attr.push(o ^ k);
            }
        }
    }
    let attr_len = u16::try_from(attr.len()).ok()?;
    let mut out = Vec::with_capacity(HEADER_LEN + 4 + attr.len());
    out.extend_from_slice(&BINDING_SUCCESS.to_be_bytes());
    out.extend_from_slice(&(attr_len + 4).to_be_bytes());
    out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out.extend_from_slice(txid);
    out.extend_from_slice(&XOR_MAPPED_ADDRESS.to_be_bytes());
    out.extend_from_slice(&attr_len.to_be_bytes());
    out.extend_from_slice(&attr);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Vec<u8> {
        let mut r = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
        r.extend_from_slice(&[7u8; 12]);
        r
    }

    #[test]
    fn ipv4_xor_mapped_address() {
        let src: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        let r = binding_response(&request(), src).unwrap();
        assert_eq!(&r[..2], &[0x01, 0x01]);
        assert_eq!(&r[2..4], &[0, 12]);
        assert_eq!(&r[8..20], &[7u8; 12]);
        assert_eq!(&r[20..24], &[0x00, 0x20, 0x00, 0x08]);
        assert_eq!(r[25], 0x01);
        let port = u16::from_be_bytes([r[26], r[27]]) ^ 0x2112;
        assert_eq!(port, 32853);
        let ip = u32::from_be_bytes(r[28..32].try_into().unwrap()) ^ MAGIC_COOKIE;
        assert_eq!(
            std::net::Ipv4Addr::from(ip),
            "192.0.2.1".parse::<std::net::Ipv4Addr>().unwrap()
        );
    }

    #[test]
    fn ipv6_uses_transaction_id() {
        let src: SocketAddr = "[2001:db8::1]:5060".parse().unwrap();
        let r = binding_response(&request(), src).unwrap();
        assert_eq!(r.len(), 20 + 4 + 20);
        let mut key = MAGIC_COOKIE.to_be_bytes().to_vec();
        key.extend_from_slice(&[7u8; 12]);
        let ip: Vec<u8> = r[28..44].iter().zip(&key).map(|(a, b)| a ^ b).collect();
        let want: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(ip, want.octets());
    }

    #[test]
    fn refuses_other_input() {
        let src: SocketAddr = "192.0.2.1:1".parse().unwrap();
        assert!(binding_response(&[0, 1, 0, 0], src).is_none());
        let mut r = request();
        r[7] = 0;
        assert!(binding_response(&r, src).is_none(), "no magic cookie");
        let mut r = request();
        r[1] = 0x11;
        assert!(binding_response(&r, src).is_none(), "not a Binding Request");
        let mut r = request();
        r[3] = 4;
        assert!(binding_response(&r, src).is_none(), "length mismatch");
    }
}
