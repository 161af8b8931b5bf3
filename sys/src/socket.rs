//! The kernel SCTP socket on tokio's `AsyncFd`: creation (with the "no SCTP in this kernel" check),
//! bind/bindx, raw socket options, address lists, and the async send/receive loops shared by the
//! one-to-one and one-to-many styles.

use crate::addr;
use crate::error::{Result, SctpError};
use crate::ffi;
use crate::sndrcv::{self, Received, RecvBuf, RecvStep, SendInfo};
use std::io;
use std::mem::size_of;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// What a receive waits for. ERROR is included because a one-to-one socket whose association was
/// aborted may report only EPOLLERR (sk_err set, nothing queued, no end of file); waiting for
/// READABLE alone would never wake, and the recvmsg that follows returns the error.
const READ_OR_ERROR: Interest = Interest::READABLE.add(Interest::ERROR);
/// What a send waits for, for the same reason: a send that waits for space must see the reset.
const WRITE_OR_ERROR: Interest = Interest::WRITABLE.add(Interest::ERROR);

/// Address family of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `AF_INET`.
    V4,
    /// `AF_INET6` (also accepts IPv4 addresses unless made v6-only).
    V6,
}

impl Family {
    /// IPv6 if any address is IPv6, else IPv4.
    pub fn for_addrs(addrs: &[SocketAddr]) -> Family {
        if addrs.iter().any(SocketAddr::is_ipv6) {
            Family::V6
        } else {
            Family::V4
        }
    }

    fn raw(self) -> libc::c_int {
        match self {
            Family::V4 => libc::AF_INET,
            Family::V6 => libc::AF_INET6,
        }
    }
}

/// Socket style (RFC 6458 §3 and §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// One-to-many (`SOCK_SEQPACKET`): many associations on one socket.
    OneToMany,
    /// One-to-one (`SOCK_STREAM`): one association per socket, TCP-like listen/accept/connect.
    OneToOne,
}

/// Checks whether this kernel offers SCTP by opening (and closing) a socket.
pub fn kernel_sctp_available() -> Result<()> {
    open_fd(Family::V4, Style::OneToOne).map(drop)
}

fn open_fd(family: Family, style: Style) -> Result<OwnedFd> {
    let ty = match style {
        Style::OneToMany => libc::SOCK_SEQPACKET,
        Style::OneToOne => libc::SOCK_STREAM,
    };
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            family.raw(),
            ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            ffi::IPPROTO_SCTP,
        )
    };
    if fd < 0 {
        return Err(SctpError::from_socket_call(io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets a socket option from a plain-old-data value.
pub(crate) fn setsockopt<T>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    val: &T,
) -> io::Result<libc::c_int> {
    setsockopt_bytes(fd, level, name, (val as *const T).cast(), size_of::<T>())
}

/// Sets a socket option from raw bytes.
pub(crate) fn setsockopt_bytes(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    ptr: *const u8,
    len: usize,
) -> io::Result<libc::c_int> {
    // SAFETY: `ptr` points to `len` readable bytes owned by the caller for the duration of the call.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            ptr.cast(),
            len as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Reads a socket option into a plain-old-data value (which also carries input, e.g. an assoc id).
pub(crate) fn getsockopt<T>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    val: &mut T,
) -> io::Result<usize> {
    getsockopt_bytes(fd, level, name, (val as *mut T).cast(), size_of::<T>())
}

/// Reads a socket option into raw bytes; returns the length the kernel wrote.
pub(crate) fn getsockopt_bytes(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    ptr: *mut u8,
    len: usize,
) -> io::Result<usize> {
    let mut l = len as libc::socklen_t;
    // SAFETY: `ptr` points to `len` writable bytes owned by the caller for the duration of the call.
    let r = unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, ptr.cast(), &mut l) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(l as usize)
    }
}

/// A kernel SCTP socket registered with the tokio reactor. Options are set through the
/// [`crate::SctpOptions`] and [`crate::SctpAuth`] traits, before `listen`/`connect` when they
/// concern association setup (INITMSG, AUTH chunks and keys).
#[derive(Debug)]
pub struct SctpSocket {
    fd: AsyncFd<OwnedFd>,
    style: Style,
}

impl SctpSocket {
    /// Opens a socket. Fails with [`SctpError::NoKernelSctp`] where the kernel has no SCTP. Must be
    /// called inside a tokio runtime (with IO enabled).
    pub fn new(style: Style, family: Family) -> Result<Self> {
        let fd = open_fd(family, style)?;
        let on: libc::c_int = 1;
        setsockopt(fd.as_fd(), ffi::SOL_SCTP, ffi::SCTP_RECVRCVINFO, &on)?;
        // SCTP_NXTINFO tells recv whether another message is already queued (see recv). Only on
        // one-to-many sockets: the kernel fills it by peeking the receive queue, and a peek that
        // finds the queue empty consumes the socket error a one-to-one socket gets when its
        // association is aborted (sock_error), so the next recv would wait forever instead of
        // reporting the reset. One-to-many sockets never carry an association's error.
        if style == Style::OneToMany {
            setsockopt(fd.as_fd(), ffi::SOL_SCTP, ffi::SCTP_RECVNXTINFO, &on)?;
        }
        setsockopt(fd.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, &on)?;
        Self::from_fd(fd, style)
    }

    pub(crate) fn from_fd(fd: OwnedFd, style: Style) -> Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(SctpError::InvalidInput(
                "SCTP sockets must be created inside a tokio runtime",
            ));
        }
        // SAFETY: `fd` is an OwnedFd: it stays open and refers to the same socket until the AsyncFd
        // (which owns it) is dropped.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(|e| SctpError::Io(e.into_parts().1))?;
        Ok(SctpSocket { fd, style })
    }

    /// The socket style.
    pub fn style(&self) -> Style {
        self.style
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd.get_ref().as_raw_fd()
    }

    /// Binds the first address with `bind` and adds the others with `SCTP_SOCKOPT_BINDX_ADD`
    /// (multihoming). All must use the same port (0 lets the kernel choose for the first).
    pub fn bind(&self, addrs: &[SocketAddr]) -> Result<()> {
        let (first, rest) = addrs
            .split_first()
            .ok_or(SctpError::InvalidInput("no address to bind"))?;
        let (st, len) = addr::to_storage(first);
        // SAFETY: `st` is a valid sockaddr of `len` bytes.
        let r = unsafe {
            libc::bind(
                self.raw(),
                (&st as *const libc::sockaddr_storage).cast(),
                len,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error().into());
        }
        if !rest.is_empty() {
            self.bindx_add(rest)?;
        }
        Ok(())
    }

    /// Adds local addresses to the bound set (`SCTP_SOCKOPT_BINDX_ADD`).
    pub fn bindx_add(&self, addrs: &[SocketAddr]) -> Result<()> {
        let packed = addr::pack_addrs(addrs)?;
        setsockopt_bytes(
            self.as_fd(),
            ffi::SOL_SCTP,
            ffi::SCTP_SOCKOPT_BINDX_ADD,
            packed.as_ptr(),
            packed.len(),
        )?;
        Ok(())
    }

    /// Removes local addresses from the bound set (`SCTP_SOCKOPT_BINDX_REM`).
    pub fn bindx_remove(&self, addrs: &[SocketAddr]) -> Result<()> {
        let packed = addr::pack_addrs(addrs)?;
        setsockopt_bytes(
            self.as_fd(),
            ffi::SOL_SCTP,
            ffi::SCTP_SOCKOPT_BINDX_REM,
            packed.as_ptr(),
            packed.len(),
        )?;
        Ok(())
    }

    pub(crate) fn listen_raw(&self, backlog: i32) -> Result<()> {
        // SAFETY: plain listen(2) on our descriptor.
        if unsafe { libc::listen(self.raw(), backlog) } < 0 {
            return Err(io::Error::last_os_error().into());
        }
        Ok(())
    }

    fn addrs_opt(&self, name: libc::c_int, assoc_id: i32) -> Result<Vec<SocketAddr>> {
        // Room for 64 IPv6 addresses; the kernel returns ENOMEM when they do not fit.
        let mut buf =
            vec![0u8; size_of::<ffi::sctp_getaddrs>() + 64 * size_of::<libc::sockaddr_in6>()];
        buf[0..4].copy_from_slice(&assoc_id.to_ne_bytes());
        // The returned length is not used: for SCTP_GET_LOCAL_ADDRS the kernel leaves the header out
        // of it (a quirk kept for compatibility). The address count bounds the parse instead.
        getsockopt_bytes(
            self.as_fd(),
            ffi::SOL_SCTP,
            name,
            buf.as_mut_ptr(),
            buf.len(),
        )?;
        let hdr = size_of::<ffi::sctp_getaddrs>();
        let count = u32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
        let data = buf.get(hdr..).ok_or(SctpError::Malformed {
            what: "address list",
        })?;
        addr::parse_packed_addrs(data, count)
    }

    /// The peer's addresses of an association (`SCTP_GET_PEER_ADDRS`; one-to-one: assoc 0).
    pub fn peer_addrs(&self, assoc_id: i32) -> Result<Vec<SocketAddr>> {
        self.addrs_opt(ffi::SCTP_GET_PEER_ADDRS, assoc_id)
    }

    /// The local addresses of an association or, with 0, of the socket (`SCTP_GET_LOCAL_ADDRS`).
    pub fn local_addrs(&self, assoc_id: i32) -> Result<Vec<SocketAddr>> {
        self.addrs_opt(ffi::SCTP_GET_LOCAL_ADDRS, assoc_id)
    }

    /// Sends one message, waiting for send-buffer space (never spinning) when the kernel says
    /// `EAGAIN`. `to` addresses a peer without an association (one-to-many implicit setup).
    pub async fn send(
        &self,
        data: &[u8],
        info: &SendInfo,
        to: Option<&SocketAddr>,
    ) -> Result<usize> {
        loop {
            let mut guard = self.fd.ready(WRITE_OR_ERROR).await?;
            match guard.try_io(|fd| sndrcv::sendmsg_raw(fd.as_raw_fd(), data, info, to)) {
                Ok(r) => return Ok(r?),
                Err(_would_block) => continue,
            }
        }
    }

    /// Non-waiting send: `WouldBlock` is returned as an `Io` error.
    pub fn try_send(&self, data: &[u8], info: &SendInfo, to: Option<&SocketAddr>) -> Result<usize> {
        Ok(sndrcv::sendmsg_raw(self.raw(), data, info, to)?)
    }

    /// Receives one whole message or notification into `buf`, reassembling partial deliveries.
    pub async fn recv<'b>(&self, buf: &'b mut RecvBuf) -> Result<Received<'b>> {
        loop {
            let mut guard = self.fd.ready(READ_OR_ERROR).await?;
            let res = guard.try_io(|fd| loop {
                match sndrcv::recv_piece(fd.as_raw_fd(), buf)? {
                    RecvStep::More => continue,
                    done => return Ok(done),
                }
            });
            match res {
                Ok(Ok(RecvStep::Eof)) => return Ok(Received::Closed),
                Ok(Ok(RecvStep::Complete { next_queued })) => {
                    // Nothing else queued (one-to-many sockets, which ask for NXTINFO): drop the
                    // cached readiness now, so the next recv waits in the reactor instead of
                    // trying a recvmsg that would say EAGAIN (tokio keeps readiness that arrived
                    // after this guard was taken). Not when the same readiness also said end of
                    // file or error: NXTINFO only sees queued messages, and the peer's SHUTDOWN
                    // or ABORT that came with the last one would be lost with it (the next recv
                    // would wait for an edge that never comes).
                    let ready = guard.ready();
                    if self.style == Style::OneToMany
                        && !next_queued
                        && !ready.is_read_closed()
                        && !ready.is_error()
                    {
                        guard.clear_ready();
                    }
                    return sndrcv::take(buf);
                }
                Ok(Ok(RecvStep::More)) => continue,
                Ok(Err(e)) => return Err(e.into()),
                Err(_would_block) => continue,
            }
        }
    }

    pub(crate) async fn writable(&self) -> Result<()> {
        let mut g = self.fd.ready(WRITE_OR_ERROR).await?;
        g.retain_ready();
        Ok(())
    }

    pub(crate) async fn readable_io<R>(
        &self,
        mut f: impl FnMut(RawFd) -> io::Result<R>,
    ) -> Result<R> {
        loop {
            let mut guard = self.fd.ready(READ_OR_ERROR).await?;
            match guard.try_io(|fd| f(fd.as_raw_fd())) {
                Ok(r) => return Ok(r?),
                Err(_would_block) => continue,
            }
        }
    }

    /// Pending socket error (`SO_ERROR`), cleared by reading it.
    pub(crate) fn take_error(&self) -> Result<Option<io::Error>> {
        let mut e: libc::c_int = 0;
        getsockopt(self.as_fd(), libc::SOL_SOCKET, libc::SO_ERROR, &mut e)?;
        Ok(if e == 0 {
            None
        } else {
            Some(io::Error::from_raw_os_error(e))
        })
    }
}

impl AsFd for SctpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }
}

impl AsRawFd for SctpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.raw()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_choice() {
        let v4: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:1".parse().unwrap();
        assert_eq!(Family::for_addrs(&[v4]), Family::V4);
        assert_eq!(Family::for_addrs(&[v4, v6]), Family::V6);
    }
}
