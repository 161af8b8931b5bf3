//! One-to-many style (`SOCK_SEQPACKET`, RFC 6458 §3): one socket, many associations, each named by
//! its association id; associations start implicitly (send to an address) or with `connectx`.

use crate::addr;
use crate::error::{Result, SctpError};
use crate::ffi;
use crate::one_to_one::{fd_traits, SctpStream};
use crate::sndrcv::{Received, RecvBuf, SendInfo};
use crate::socket::{getsockopt, getsockopt_bytes, Family, SctpSocket, Style};
use crate::{SctpAuth, SctpOptions};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

impl SctpSocket {
    /// A new one-to-many socket.
    pub fn one_to_many(family: Family) -> Result<Self> {
        SctpSocket::new(Style::OneToMany, family)
    }

    /// Turns a one-to-many socket into an endpoint; `accept_incoming` calls `listen` so that peers
    /// can start associations with it.
    pub fn into_endpoint(self, accept_incoming: bool) -> Result<SctpEndpoint> {
        if self.style() != Style::OneToMany {
            return Err(SctpError::InvalidInput(
                "into_endpoint() is for one-to-many sockets",
            ));
        }
        if accept_incoming {
            self.listen_raw(1024)?;
        }
        Ok(SctpEndpoint { sock: self })
    }
}

/// A one-to-many SCTP endpoint.
#[derive(Debug)]
pub struct SctpEndpoint {
    sock: SctpSocket,
}

impl SctpEndpoint {
    /// Opens, binds (all of `addrs`) and, if `accept_incoming`, listens.
    pub fn bind(addrs: &[SocketAddr], accept_incoming: bool) -> Result<Self> {
        let s = SctpSocket::one_to_many(Family::for_addrs(addrs))?;
        s.bind(addrs)?;
        s.into_endpoint(accept_incoming)
    }

    /// Starts an association to a peer reachable at `peer` (`SCTP_SOCKOPT_CONNECTX3`, which returns
    /// the association id even though a non-blocking connect is still in progress). Completion is
    /// reported by an `AssocChange` notification (`CommUp` or `CantStartAssoc`); data sent before it
    /// is queued by the kernel.
    pub fn connectx(&self, peer: &[SocketAddr]) -> Result<i32> {
        let mut packed = addr::pack_addrs(peer)?;
        let mut arg = ffi::sctp_getaddrs_old {
            assoc_id: 0,
            addr_num: packed.len() as libc::c_int,
            addrs: packed.as_mut_ptr().cast(),
        };
        match getsockopt(
            self.as_fd(),
            ffi::SOL_SCTP,
            ffi::SCTP_SOCKOPT_CONNECTX3,
            &mut arg,
        ) {
            Ok(_) => Ok(arg.assoc_id),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(arg.assoc_id),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends on an existing association (`info.assoc_id`).
    pub async fn send(&self, data: &[u8], info: &SendInfo) -> Result<usize> {
        self.sock.send(data, info, None).await
    }

    /// Sends to `to`, starting an association implicitly when there is none.
    pub async fn send_to(&self, data: &[u8], info: &SendInfo, to: &SocketAddr) -> Result<usize> {
        self.sock.send(data, info, Some(to)).await
    }

    /// Receives one whole message or notification from any association.
    pub async fn recv<'b>(&self, buf: &'b mut RecvBuf) -> Result<Received<'b>> {
        self.sock.recv(buf).await
    }

    /// Graceful shutdown of one association (`SCTP_EOF`).
    pub async fn shutdown(&self, assoc_id: i32) -> Result<()> {
        let info = SendInfo {
            flags: ffi::SCTP_EOF,
            assoc_id,
            ..SendInfo::default()
        };
        self.sock.send(&[], &info, None).await.map(drop)
    }

    /// Aborts one association (`SCTP_ABORT`) with an optional user abort reason.
    pub async fn abort(&self, assoc_id: i32, reason: &[u8]) -> Result<()> {
        let info = SendInfo {
            flags: ffi::SCTP_ABORT,
            assoc_id,
            ..SendInfo::default()
        };
        self.sock.send(reason, &info, None).await.map(drop)
    }

    /// Moves an association to its own one-to-one socket (`SCTP_SOCKOPT_PEELOFF`).
    pub fn peeloff(&self, assoc_id: i32) -> Result<SctpStream> {
        let mut arg = ffi::sctp_peeloff_arg_t {
            associd: assoc_id,
            sd: -1,
        };
        getsockopt_bytes(
            self.as_fd(),
            ffi::SOL_SCTP,
            ffi::SCTP_SOCKOPT_PEELOFF,
            (&mut arg as *mut ffi::sctp_peeloff_arg_t).cast(),
            std::mem::size_of::<ffi::sctp_peeloff_arg_t>(),
        )?;
        if arg.sd < 0 {
            return Err(SctpError::Malformed {
                what: "peeloff descriptor",
            });
        }
        // SAFETY: the kernel returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(arg.sd) };
        // The peeled-off socket inherits NXTINFO but now carries its association's error like a
        // one-to-one socket: switch it off (see SctpSocket::new).
        let off: libc::c_int = 0;
        crate::socket::setsockopt(fd.as_fd(), ffi::SOL_SCTP, ffi::SCTP_RECVNXTINFO, &off)?;
        // SAFETY: fcntl on our own descriptor; the flags are read, extended and written back.
        unsafe {
            let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
            if fl < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
                return Err(io::Error::last_os_error().into());
            }
            if libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) < 0 {
                return Err(io::Error::last_os_error().into());
            }
        }
        Ok(SctpStream::from_socket(SctpSocket::from_fd(
            fd,
            Style::OneToOne,
        )?))
    }

    /// The peer's addresses of an association.
    pub fn peer_addrs(&self, assoc_id: i32) -> Result<Vec<SocketAddr>> {
        self.sock.peer_addrs(assoc_id)
    }

    /// Local addresses of an association (0: of the socket).
    pub fn local_addrs(&self, assoc_id: i32) -> Result<Vec<SocketAddr>> {
        self.sock.local_addrs(assoc_id)
    }

    /// The underlying socket.
    pub fn socket(&self) -> &SctpSocket {
        &self.sock
    }
}

fd_traits!(SctpEndpoint);
