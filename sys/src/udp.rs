//! Batched datagram reads: one `recvmmsg(2)` returns up to [`RecvBatch::slots`] datagrams,
//! so a busy UDP socket costs one system call per batch instead of one per datagram.
//!
//! The caller owns the fd (a non-blocking UDP socket) and the readiness handling (tokio's
//! `try_io`); this only does the call and hands back lengths and source addresses.

use std::io;
use std::mem::size_of;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use crate::addr;

/// Most datagrams one [`RecvBatch::recv`] returns.
pub const MAX_BATCH: usize = 64;

/// One received datagram of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    /// Its length in bytes (the slot holds them from offset 0).
    pub len: usize,
    /// Who sent it.
    pub peer: SocketAddr,
    /// It was longer than the slot and was cut (`MSG_TRUNC`).
    pub truncated: bool,
}

/// Reusable receive space for batches: `slots` slots of `slot_len` bytes each.
///
/// The space is allocated zeroed once; pages the kernel never writes into stay untouched, so
/// large slots (64 KiB, the largest UDP payload) cost address space more than memory.
pub struct RecvBatch {
    space: Vec<u8>,
    slot_len: usize,
    got: Vec<Datagram>,
    // The call's arguments, kept between calls so that no call zeroes them again. Their
    // pointers are written afresh by every `recv` (they point into `space`, `names` and
    // `iovs`, whose heap buffers never move or grow after `new`).
    names: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers inside `iovs` and `hdrs` only ever point into heap buffers owned
// by the same `RecvBatch` (rewritten by each `recv`, used only during it through `&mut self`),
// so moving the whole to another thread moves everything they point at with it.
unsafe impl Send for RecvBatch {}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("slots", &self.slots())
            .field("slot_len", &self.slot_len)
            .field("got", &self.got)
            .finish()
    }
}

impl RecvBatch {
    /// Space for `slots` datagrams (at most [`MAX_BATCH`], at least 1) of up to `slot_len`
    /// bytes each.
    pub fn new(slots: usize, slot_len: usize) -> RecvBatch {
        let slots = slots.clamp(1, MAX_BATCH);
        let slot_len = slot_len.max(1);
        RecvBatch {
            space: vec![0; slots * slot_len],
            slot_len,
            got: Vec::with_capacity(slots),
            // SAFETY: plain old data for which all-zero is a valid value (null pointers
            // included; they are set before any use).
            names: vec![unsafe { std::mem::zeroed() }; slots],
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                };
                slots
            ],
            // SAFETY: as above.
            hdrs: vec![unsafe { std::mem::zeroed() }; slots],
        }
    }

    /// How many datagrams one call can return.
    pub fn slots(&self) -> usize {
        self.space.len() / self.slot_len
    }

    /// Reads what is queued on `fd` (up to [`RecvBatch::slots`] datagrams) without blocking.
    /// Returns how many were read (at least 1); `WouldBlock` when none was queued.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.got.clear();
        let slots = self.slots();
        let base = self.space.as_mut_ptr();
        let names = self.names.as_mut_ptr();
        let iovs = self.iovs.as_mut_ptr();
        for (i, h) in self.hdrs.iter_mut().enumerate() {
            // SAFETY: i < slots, and slot i (i * slot_len .. + slot_len) lies inside `space`;
            // `names` and `iovs` have `slots` elements.
            let (buf, name, iov) =
                unsafe { (base.add(i * self.slot_len), names.add(i), iovs.add(i)) };
            // SAFETY: `iov` points at element i of `iovs`, valid and not otherwise borrowed.
            unsafe {
                *iov = libc::iovec {
                    iov_base: buf.cast(),
                    iov_len: self.slot_len,
                }
            };
            h.msg_hdr.msg_name = name.cast();
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: the `slots` headers point at `slots` valid iovecs over disjoint parts of
        // `space` and at `slots` sockaddr_storage, all alive and not otherwise borrowed for
        // the duration of the call; the kernel writes at most the lengths given.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                slots as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for (h, name) in self.hdrs.iter().zip(self.names.iter()).take(n) {
            // A datagram whose source cannot be decoded (not IPv4/IPv6) is reported with the
            // unspecified address; the caller drops it like any unusable datagram.
            let peer = addr::from_storage(name, h.msg_hdr.msg_namelen)
                .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
            self.got.push(Datagram {
                len: (h.msg_len as usize).min(self.slot_len),
                peer,
                truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            });
        }
        Ok(n)
    }

    /// The datagrams of the last [`RecvBatch::recv`], in arrival order.
    pub fn datagrams(&self) -> &[Datagram] {
        &self.got
    }

    /// The bytes of datagram `i` of the last batch (empty when out of range).
    pub fn payload(&self, i: usize) -> &[u8] {
        match self.got.get(i) {
            Some(d) => {
                let start = i * self.slot_len;
                self.space.get(start..start + d.len).unwrap_or(&[])
            }
            None => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_nonblocking(true).unwrap();
        (a, b)
    }

    /// Waits until `n` datagrams are queued on loopback (sends are synchronous there, but be safe).
    fn recv_all(batch: &mut RecvBatch, fd: RawFd, want: usize) -> Vec<(Vec<u8>, Datagram)> {
        let mut out = Vec::new();
        for _ in 0..1000 {
            match batch.recv(fd) {
                Ok(n) => {
                    for i in 0..n {
                        out.push((batch.payload(i).to_vec(), batch.datagrams()[i]));
                    }
                    if out.len() >= want {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        }
        out
    }

    #[test]
    fn empty_socket_would_block() {
        let (a, _b) = pair();
        let mut batch = RecvBatch::new(4, 2048);
        let e = batch.recv(a.as_raw_fd()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(batch.datagrams().is_empty());
    }

    #[test]
    fn several_datagrams_in_order_with_sources() {
        let (a, b) = pair();
        let to = a.local_addr().unwrap();
        for i in 0..6u8 {
            b.send_to(&vec![i; 10 + i as usize], to).unwrap();
        }
        let mut batch = RecvBatch::new(4, 2048);
        assert_eq!(batch.slots(), 4);
        let got = recv_all(&mut batch, a.as_raw_fd(), 6);
        assert_eq!(got.len(), 6);
        for (i, (bytes, d)) in got.iter().enumerate() {
            assert_eq!(bytes, &vec![i as u8; 10 + i]);
            assert_eq!(d.len, 10 + i);
            assert_eq!(d.peer, b.local_addr().unwrap());
            assert!(!d.truncated);
        }
    }

    #[test]
    fn first_call_returns_at_most_slots() {
        let (a, b) = pair();
        let to = a.local_addr().unwrap();
        for _ in 0..5 {
            b.send_to(b"x", to).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut batch = RecvBatch::new(2, 16);
        assert_eq!(batch.recv(a.as_raw_fd()).unwrap(), 2);
        assert_eq!(batch.payload(1), b"x");
        assert_eq!(batch.payload(2), b"");
    }

    #[test]
    fn long_datagram_is_flagged_truncated() {
        let (a, b) = pair();
        b.send_to(&[7u8; 100], a.local_addr().unwrap()).unwrap();
        let mut batch = RecvBatch::new(1, 64);
        let got = recv_all(&mut batch, a.as_raw_fd(), 1);
        assert_eq!(got[0].0, vec![7u8; 64]);
        assert!(got[0].1.truncated);
    }

    #[test]
    fn ipv6_sources() {
        let Ok(a) = UdpSocket::bind("[::1]:0") else {
            return; // no IPv6 loopback here
        };
        let b = UdpSocket::bind("[::1]:0").unwrap();
        a.set_nonblocking(true).unwrap();
        b.send_to(b"six", a.local_addr().unwrap()).unwrap();
        let mut batch = RecvBatch::new(8, 64);
        let got = recv_all(&mut batch, a.as_raw_fd(), 1);
        assert_eq!(got[0].0, b"six");
        assert_eq!(got[0].1.peer, b.local_addr().unwrap());
    }

    #[test]
    fn slots_are_clamped() {
        assert_eq!(RecvBatch::new(0, 10).slots(), 1);
        assert_eq!(RecvBatch::new(1000, 10).slots(), MAX_BATCH);
    }
}
