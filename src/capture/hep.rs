//! HEP version 3 (the Homer Encapsulation Protocol of sipcapture.org), pure: one captured SIP
//! message in, one HEP packet out, and back (collectors in tests).
//!
//! A packet is `"HEP3"`, its total length (u16), then chunks, each `vendor` (u16), `type`
//! (u16), `length` (u16, header included) and the value; every integer in network byte order.
//! Only vendor 0 (the generic chunks) is written; the payload comes last so that a reader
//! that stops at it has seen everything else.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::TransportKind;

/// The packet's magic.
pub const MAGIC: &[u8; 4] = b"HEP3";
/// Bytes of the packet header (magic and total length).
const HEADER: usize = 6;
/// Bytes of a chunk header (vendor, type, length).
const CHUNK_HEADER: usize = 6;
/// The largest packet: its length is a u16.
pub const MAX_PACKET: usize = u16::MAX as usize;

/// Chunk types of vendor 0 (generic) that this module knows.
pub mod chunk {
    /// IP protocol family: u8, 2 (AF_INET) or 10 (AF_INET6).
    pub const IP_FAMILY: u16 = 1;
    /// IP protocol id: u8 (17 UDP, 6 TCP, 132 SCTP).
    pub const IP_PROTOCOL: u16 = 2;
    /// IPv4 source address: 4 bytes.
    pub const IPV4_SRC: u16 = 3;
    /// IPv4 destination address: 4 bytes.
    pub const IPV4_DST: u16 = 4;
    /// IPv6 source address: 16 bytes.
    pub const IPV6_SRC: u16 = 5;
    /// IPv6 destination address: 16 bytes.
    pub const IPV6_DST: u16 = 6;
    /// Source port: u16.
    pub const SRC_PORT: u16 = 7;
    /// Destination port: u16.
    pub const DST_PORT: u16 = 8;
    /// Timestamp, seconds since the Unix epoch: u32.
    pub const TIME_SEC: u16 = 9;
    /// Timestamp, microseconds within the second: u32.
    pub const TIME_USEC: u16 = 10;
    /// Protocol type of the payload: u8 (1 = SIP).
    pub const PROTOCOL_TYPE: u16 = 11;
    /// Capture agent id: u32.
    pub const CAPTURE_ID: u16 = 12;
    /// Authentication key (the collector's password): bytes.
    pub const AUTH_KEY: u16 = 14;
    /// The captured payload: bytes.
    pub const PAYLOAD: u16 = 15;
    /// Correlation id (the SIP Call-ID): bytes.
    pub const CORRELATION_ID: u16 = 17;
}

/// Address family values of [`chunk::IP_FAMILY`].
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// [`chunk::PROTOCOL_TYPE`] of SIP.
pub const PROTOCOL_SIP: u8 = 1;

/// The IP protocol a message travelled over, as HEP names it ([`chunk::IP_PROTOCOL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpProtocol {
    /// UDP (17).
    Udp,
    /// TCP (6): TCP and TLS (HEP has no TLS value; the payload is the plaintext).
    Tcp,
    /// SCTP (132): the SCTP family, TLS-SCTP and DTLS-SCTP included.
    Sctp,
}

impl IpProtocol {
    /// The IANA protocol number.
    pub fn number(self) -> u8 {
        match self {
            IpProtocol::Udp => 17,
            IpProtocol::Tcp => 6,
            IpProtocol::Sctp => 132,
        }
    }

    /// The protocol of a number, if one of the three.
    pub fn from_number(n: u8) -> Option<IpProtocol> {
        [IpProtocol::Udp, IpProtocol::Tcp, IpProtocol::Sctp]
            .into_iter()
            .find(|p| p.number() == n)
    }

    /// The IP protocol under a SIP transport.
    pub fn of(kind: TransportKind) -> IpProtocol {
        match kind {
            TransportKind::Udp => IpProtocol::Udp,
            TransportKind::Tcp | TransportKind::Tls => IpProtocol::Tcp,
            TransportKind::Sctp | TransportKind::TlsSctp | TransportKind::DtlsSctp => {
                IpProtocol::Sctp
            }
        }
    }
}

/// One captured message, borrowed: what [`encode`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hep<'a> {
    /// The IP protocol it travelled over.
    pub protocol: IpProtocol,
    /// Who sent it.
    pub source: SocketAddr,
    /// Who it was for.
    pub destination: SocketAddr,
    /// When, since the Unix epoch (seconds are written as a u32: until 2106).
    pub time: Duration,
    /// The capture agent id (tells collectors which element captured it).
    pub capture_id: u32,
    /// The collector's password, if it asks for one.
    pub auth_key: Option<&'a [u8]>,
    /// The correlation id (the SIP Call-ID), if any.
    pub correlation_id: Option<&'a [u8]>,
    /// The SIP message.
    pub payload: &'a [u8],
}

/// Why a message cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The packet would exceed [`MAX_PACKET`] bytes.
    #[error("HEP packet of {0} bytes exceeds the 65535-byte limit")]
    TooLarge(usize),
}

/// The two addresses in one family: both IPv4, or both IPv6 (an IPv4 one mapped).
enum Addresses {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

fn addresses(src: IpAddr, dst: IpAddr) -> Addresses {
    let v6 = |a: IpAddr| match a {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    };
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Addresses::V4(s, d),
        (s, d) => Addresses::V6(v6(s), v6(d)),
    }
}

fn put_chunk(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    // The caller checked the total length first: every chunk fits in a u16.
    let len = u16::try_from(CHUNK_HEADER + value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
}

/// The size of the packet [`encode`] writes for `m`.
pub fn encoded_len(m: &Hep<'_>) -> usize {
    let ip = match addresses(m.source.ip(), m.destination.ip()) {
        Addresses::V4(..) => 2 * (CHUNK_HEADER + 4),
        Addresses::V6(..) => 2 * (CHUNK_HEADER + 16),
    };
    let fixed = HEADER
        + 2 * (CHUNK_HEADER + 1) // family, protocol
        + ip
        + 2 * (CHUNK_HEADER + 2) // ports
        + 2 * (CHUNK_HEADER + 4) // time
        + (CHUNK_HEADER + 1) // protocol type
        + (CHUNK_HEADER + 4); // capture id
    let optional = |v: Option<&[u8]>| v.map_or(0, |v| CHUNK_HEADER + v.len());
    fixed + optional(m.auth_key) + optional(m.correlation_id) + CHUNK_HEADER + m.payload.len()
}

/// Appends the HEP v3 packet of `m` to `out`.
pub fn encode(m: &Hep<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let total = encoded_len(m);
    let len = u16::try_from(total).map_err(|_| EncodeError::TooLarge(total))?;
    out.reserve(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&len.to_be_bytes());
    let addrs = addresses(m.source.ip(), m.destination.ip());
    let family = match addrs {
        Addresses::V4(..) => AF_INET,
        Addresses::V6(..) => AF_INET6,
    };
    put_chunk(out, chunk::IP_FAMILY, &[family]);
    put_chunk(out, chunk::IP_PROTOCOL, &[m.protocol.number()]);
    match addrs {
        Addresses::V4(s, d) => {
            put_chunk(out, chunk::IPV4_SRC, &s.octets());
            put_chunk(out, chunk::IPV4_DST, &d.octets());
        }
        Addresses::V6(s, d) => {
            put_chunk(out, chunk::IPV6_SRC, &s.octets());
            put_chunk(out, chunk::IPV6_DST, &d.octets());
        }
    }
    put_chunk(out, chunk::SRC_PORT, &m.source.port().to_be_bytes());
    put_chunk(out, chunk::DST_PORT, &m.destination.port().to_be_bytes());
    let secs = u32::try_from(m.time.as_secs()).unwrap_or(u32::MAX);
    put_chunk(out, chunk::TIME_SEC, &secs.to_be_bytes());
    put_chunk(out, chunk::TIME_USEC, &m.time.subsec_micros().to_be_bytes());
    put_chunk(out, chunk::PROTOCOL_TYPE, &[PROTOCOL_SIP]);
    put_chunk(out, chunk::CAPTURE_ID, &m.capture_id.to_be_bytes());
    if let Some(k) = m.auth_key {
        put_chunk(out, chunk::AUTH_KEY, k);
    }
    if let Some(c) = m.correlation_id {
        put_chunk(out, chunk::CORRELATION_ID, c);
    }
    put_chunk(out, chunk::PAYLOAD, m.payload);
    Ok(())
}

/// A decoded packet, owning its values (what a collector sees).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// [`chunk::IP_PROTOCOL`], if one of the three known.
    pub protocol: Option<IpProtocol>,
    /// Source address and port.
    pub source: SocketAddr,
    /// Destination address and port.
    pub destination: SocketAddr,
    /// Timestamp since the Unix epoch.
    pub time: Duration,
    /// [`chunk::PROTOCOL_TYPE`] (1 = SIP).
    pub protocol_type: u8,
    /// Capture agent id.
    pub capture_id: u32,
    /// Authentication key.
    pub auth_key: Option<Vec<u8>>,
    /// Correlation id.
    pub correlation_id: Option<Vec<u8>>,
    /// The captured message.
    pub payload: Vec<u8>,
}

/// Why bytes are not a HEP v3 packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the header or the length it announces.
    #[error("truncated HEP packet: {have} bytes of {need}")]
    Truncated {
        /// Bytes available.
        have: usize,
        /// Bytes needed.
        need: usize,
    },
    /// The magic is not `HEP3`.
    #[error("not a HEP v3 packet")]
    BadMagic,
    /// A chunk's length is shorter than its header or runs past the packet.
    #[error("HEP chunk {kind} has a bad length")]
    BadChunk {
        /// The chunk type.
        kind: u16,
    },
    /// A chunk every packet of [`encode`] has is missing.
    #[error("HEP chunk {0} missing")]
    Missing(u16),
}

fn need<T>(v: Option<T>, kind: u16) -> Result<T, DecodeError> {
    v.ok_or(DecodeError::Missing(kind))
}

fn be<const N: usize>(v: &[u8], kind: u16) -> Result<[u8; N], DecodeError> {
    v.try_into().map_err(|_| DecodeError::BadChunk { kind })
}

/// Decodes the packet at the start of `buf`; returns it and the bytes it took (packets
/// follow each other on a TCP connection).
pub fn decode(buf: &[u8]) -> Result<(Decoded, usize), DecodeError> {
    let truncated = |need| DecodeError::Truncated {
        have: buf.len(),
        need,
    };
    let head = buf.get(..HEADER).ok_or(truncated(HEADER))?;
    if head.get(..4) != Some(MAGIC.as_slice()) {
        return Err(DecodeError::BadMagic);
    }
    let total = usize::from(u16::from_be_bytes([head[4], head[5]]));
    let packet = buf.get(..total).ok_or(truncated(total))?;
    let mut rest = packet.get(HEADER..).ok_or(truncated(HEADER))?;

    let (mut protocol, mut protocol_type, mut capture_id) = (None, None, None);
    let (mut src, mut dst, mut sport, mut dport) = (None, None, None, None);
    let (mut secs, mut usecs) = (None, None);
    let (mut auth_key, mut correlation_id, mut payload) = (None, None, None);
    while !rest.is_empty() {
        let h = rest
            .get(..CHUNK_HEADER)
            .ok_or(DecodeError::BadChunk { kind: 0 })?;
        let vendor = u16::from_be_bytes([h[0], h[1]]);
        let kind = u16::from_be_bytes([h[2], h[3]]);
        let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
        let v = rest
            .get(CHUNK_HEADER..len.max(CHUNK_HEADER))
            .filter(|_| len >= CHUNK_HEADER)
            .ok_or(DecodeError::BadChunk { kind })?;
        rest = rest.get(len..).unwrap_or(&[]);
        if vendor != 0 {
            continue;
        }
        match kind {
            chunk::IP_PROTOCOL => protocol = Some(IpProtocol::from_number(be::<1>(v, kind)?[0])),
            chunk::IPV4_SRC => src = Some(IpAddr::from(be::<4>(v, kind)?)),
            chunk::IPV4_DST => dst = Some(IpAddr::from(be::<4>(v, kind)?)),
            chunk::IPV6_SRC => src = Some(IpAddr::from(be::<16>(v, kind)?)),
            chunk::IPV6_DST => dst = Some(IpAddr::from(be::<16>(v, kind)?)),
            chunk::SRC_PORT => sport = Some(u16::from_be_bytes(be(v, kind)?)),
            chunk::DST_PORT => dport = Some(u16::from_be_bytes(be(v, kind)?)),
            chunk::TIME_SEC => secs = Some(u32::from_be_bytes(be(v, kind)?)),
            chunk::TIME_USEC => usecs = Some(u32::from_be_bytes(be(v, kind)?)),
            chunk::PROTOCOL_TYPE => protocol_type = Some(be::<1>(v, kind)?[0]),
            chunk::CAPTURE_ID => capture_id = Some(u32::from_be_bytes(be(v, kind)?)),
            chunk::AUTH_KEY => auth_key = Some(v.to_vec()),
            chunk::CORRELATION_ID => correlation_id = Some(v.to_vec()),
            chunk::PAYLOAD => payload = Some(v.to_vec()),
            _ => {}
        }
    }
    let decoded = Decoded {
        protocol: need(protocol, chunk::IP_PROTOCOL)?,
        source: SocketAddr::new(need(src, chunk::IPV4_SRC)?, need(sport, chunk::SRC_PORT)?),
        destination: SocketAddr::new(need(dst, chunk::IPV4_DST)?, need(dport, chunk::DST_PORT)?),
        time: Duration::from_secs(u64::from(need(secs, chunk::TIME_SEC)?))
            + Duration::from_micros(u64::from(usecs.unwrap_or(0))),
        protocol_type: need(protocol_type, chunk::PROTOCOL_TYPE)?,
        capture_id: need(capture_id, chunk::CAPTURE_ID)?,
        auth_key,
        correlation_id,
        payload: need(payload, chunk::PAYLOAD)?,
    };
    Ok((decoded, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Hep<'static> {
        Hep {
            protocol: IpProtocol::Udp,
            source: "192.0.2.1:5060".parse().unwrap(),
            destination: "198.51.100.2:5080".parse().unwrap(),
            time: Duration::new(1_700_000_000, 123_456_789),
            capture_id: 2001,
            auth_key: Some(b"pw"),
            correlation_id: Some(b"abc"),
            payload: b"SIP",
        }
    }

    /// Checked by hand against the HEP v3 chunk table: 13 chunks, 119 bytes.
    #[test]
    fn encodes_ipv4_byte_for_byte() {
        #[rustfmt::skip]
        let want: &[u8] = &[
            b'H', b'E', b'P', b'3', 0x00, 0x77,             // magic, total length 119
            0, 0, 0, 1, 0, 7, 2,                            // family: AF_INET
            0, 0, 0, 2, 0, 7, 17,                           // protocol: UDP
            0, 0, 0, 3, 0, 10, 192, 0, 2, 1,                // IPv4 source
            0, 0, 0, 4, 0, 10, 198, 51, 100, 2,             // IPv4 destination
            0, 0, 0, 7, 0, 8, 0x13, 0xc4,                   // source port 5060
            0, 0, 0, 8, 0, 8, 0x13, 0xd8,                   // destination port 5080
            0, 0, 0, 9, 0, 10, 0x65, 0x53, 0xf1, 0x00,      // seconds 1700000000
            0, 0, 0, 10, 0, 10, 0x00, 0x01, 0xe2, 0x40,     // microseconds 123456
            0, 0, 0, 11, 0, 7, 1,                           // protocol type: SIP
            0, 0, 0, 12, 0, 10, 0x00, 0x00, 0x07, 0xd1,     // capture id 2001
            0, 0, 0, 14, 0, 8, b'p', b'w',                  // auth key
            0, 0, 0, 17, 0, 9, b'a', b'b', b'c',            // correlation id
            0, 0, 0, 15, 0, 9, b'S', b'I', b'P',            // payload
        ];
        let mut out = Vec::new();
        encode(&sample(), &mut out).unwrap();
        assert_eq!(out, want);
        assert_eq!(encoded_len(&sample()), want.len());
    }

    /// IPv6 addresses (an IPv4 one beside an IPv6 one is mapped), TCP, no optional chunks.
    #[test]
    fn encodes_ipv6_byte_for_byte() {
        let m = Hep {
            protocol: IpProtocol::of(TransportKind::Tls),
            source: "[2001:db8::1]:5061".parse().unwrap(),
            destination: "192.0.2.7:40000".parse().unwrap(),
            time: Duration::new(1, 2_000),
            capture_id: 1,
            auth_key: None,
            correlation_id: None,
            payload: b"x",
        };
        #[rustfmt::skip]
        let want: &[u8] = &[
            b'H', b'E', b'P', b'3', 0x00, 0x7c,             // total length 124
            0, 0, 0, 1, 0, 7, 10,                           // family: AF_INET6
            0, 0, 0, 2, 0, 7, 6,                            // protocol: TCP
            0, 0, 0, 5, 0, 22,                              // IPv6 source
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
            0, 0, 0, 6, 0, 22,                              // IPv6 destination (mapped)
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7,
            0, 0, 0, 7, 0, 8, 0x13, 0xc5,                   // source port 5061
            0, 0, 0, 8, 0, 8, 0x9c, 0x40,                   // destination port 40000
            0, 0, 0, 9, 0, 10, 0, 0, 0, 1,                  // seconds
            0, 0, 0, 10, 0, 10, 0, 0, 0, 2,                 // microseconds
            0, 0, 0, 11, 0, 7, 1,                           // SIP
            0, 0, 0, 12, 0, 10, 0, 0, 0, 1,                 // capture id
            0, 0, 0, 15, 0, 7, b'x',                        // payload
        ];
        let mut out = Vec::new();
        encode(&m, &mut out).unwrap();
        assert_eq!(out, want);
    }

    #[test]
    fn decodes_what_it_encodes() {
        let mut out = Vec::new();
        encode(&sample(), &mut out).unwrap();
        out.extend_from_slice(b"HEP3"); // the next packet's start: not taken
        let (d, used) = decode(&out).unwrap();
        assert_eq!(used, 119);
        assert_eq!(d.protocol, Some(IpProtocol::Udp));
        assert_eq!(d.source, sample().source);
        assert_eq!(d.destination, sample().destination);
        assert_eq!(d.time, Duration::new(1_700_000_000, 123_456_000));
        assert_eq!(d.protocol_type, PROTOCOL_SIP);
        assert_eq!(d.capture_id, 2001);
        assert_eq!(d.auth_key.as_deref(), Some(&b"pw"[..]));
        assert_eq!(d.correlation_id.as_deref(), Some(&b"abc"[..]));
        assert_eq!(d.payload, b"SIP");
    }

    #[test]
    fn refuses_what_is_not_hep() {
        let mut out = Vec::new();
        encode(&sample(), &mut out).unwrap();
        assert_eq!(decode(b"HEP2\0\x06"), Err(DecodeError::BadMagic));
        assert!(matches!(
            decode(&out[..50]),
            Err(DecodeError::Truncated { need: 119, .. })
        ));
        // A chunk claiming more than the packet holds.
        let mut bad = out.clone();
        bad[11] = 0xff;
        assert!(matches!(
            decode(&bad),
            Err(DecodeError::BadChunk { kind: 1 })
        ));
        // A chunk length below its own header.
        bad[11] = 2;
        assert!(matches!(
            decode(&bad),
            Err(DecodeError::BadChunk { kind: 1 })
        ));
    }

    #[test]
    fn too_large_is_refused() {
        let big = vec![b'a'; MAX_PACKET];
        let m = Hep {
            payload: &big,
            ..sample()
        };
        let mut out = Vec::new();
        assert!(matches!(
            encode(&m, &mut out),
            Err(EncodeError::TooLarge(_))
        ));
        assert!(out.is_empty());
    }
}
