//! One-to-one style (`SOCK_STREAM`, RFC 6458 §4): a listener that accepts associations and a stream
//! per association, with message boundaries, streams and PPIDs kept.

use crate::addr;
use crate::auth::SctpAuth;
use crate::error::{Result, SctpError};
use crate::ffi;
use crate::options::SctpOptions;
use crate::sndrcv::{Received, RecvBuf, SendInfo};
use crate::socket::{setsockopt_bytes, Family, SctpSocket, Style};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

impl SctpSocket {
    /// A new one-to-one socket.
    pub fn one_to_one(family: Family) -> Result<Self> {
        SctpSocket::new(Style::OneToOne, family)
    }

    /// Starts listening (one-to-one sockets).
    pub fn listen(self, backlog: i32) -> Result<SctpListener> {
        if self.style() != Style::OneToOne {
            return Err(SctpError::InvalidInput(
                "listen() is for one-to-one sockets; use into_endpoint",
            ));
        }
        self.listen_raw(backlog)?;
        Ok(SctpListener { sock: self })
    }

    /// Connects to a peer given by one or more addresses (`SCTP_SOCKOPT_CONNECTX`) and waits until
    /// the association is up. Bound it with `tokio::time::timeout` or `InitMsg::max_attempts`.
    pub async fn connect(self, peer: &[SocketAddr]) -> Result<SctpStream> {
        if self.style() != Style::OneToOne {
            return Err(SctpError::InvalidInput(
                "connect() is for one-to-one sockets; use SctpEndpoint::connectx",
            ));
        }
        let packed = addr::pack_addrs(peer)?;
        match setsockopt_bytes(
            self.as_fd(),
            ffi::SOL_SCTP,
            ffi::SCTP_SOCKOPT_CONNECTX,
            packed.as_ptr(),
            packed.len(),
        ) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                // Writable once the association is established (or with an error pending).
                self.writable().await?;
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(e) = self.take_error()? {
            return Err(e.into());
        }
        Ok(SctpStream { sock: self })
    }
}

/// A listening one-to-one socket.
#[derive(Debug)]
pub struct SctpListener {
    sock: SctpSocket,
}

impl SctpListener {
    /// Opens, binds (all of `addrs`, multihomed) and listens.
    pub fn bind(addrs: &[SocketAddr], backlog: i32) -> Result<Self> {
        let s = SctpSocket::one_to_one(Family::for_addrs(addrs))?;
        s.bind(addrs)?;
        s.listen(backlog)
    }

    /// Waits for the next association. Options set on the listener are inherited.
    pub async fn accept(&self) -> Result<(SctpStream, SocketAddr)> {
        let (fd, st, len) = self
            .sock
            .readable_io(|fd| {
                // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
                let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
                let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                // SAFETY: `st`/`len` are valid out-parameters for accept4.
                let r = unsafe {
                    libc::accept4(
                        fd,
                        (&mut st as *mut libc::sockaddr_storage).cast(),
                        &mut len,
                        libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                    )
                };
                if r < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok((r, st, len))
                }
            })
            .await?;
        // SAFETY: accept4 returned a fresh descriptor that nothing else owns.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let peer = addr::from_storage(&st, len)?;
        Ok((
            SctpStream {
                sock: SctpSocket::from_fd(owned, Style::OneToOne)?,
            },
            peer,
        ))
    }

    /// Local addresses.
    pub fn local_addrs(&self) -> Result<Vec<SocketAddr>> {
        self.sock.local_addrs(0)
    }
}

/// One association on a one-to-one socket.
#[derive(Debug)]
pub struct SctpStream {
    sock: SctpSocket,
}

impl SctpStream {
    /// Opens a socket and connects to `peer` (all addresses of one peer).
    pub async fn connect_to(peer: &[SocketAddr]) -> Result<Self> {
        SctpSocket::one_to_one(Family::for_addrs(peer))?
            .connect(peer)
            .await
    }

    pub(crate) fn from_socket(sock: SctpSocket) -> Self {
        SctpStream { sock }
    }

    /// Sends one message (waits for buffer space without spinning).
    pub async fn send(&self, data: &[u8], info: &SendInfo) -> Result<usize> {
        self.sock.send(data, info, None).await
    }

    /// Receives one whole message or notification.
    pub async fn recv<'b>(&self, buf: &'b mut RecvBuf) -> Result<Received<'b>> {
        self.sock.recv(buf).await
    }

    /// Graceful shutdown of the association (`shutdown(SHUT_WR)`; the kernel refuses the `SCTP_EOF`
    /// send flag on one-to-one sockets). Queued data is still delivered; receiving continues until
    /// the peer completes the shutdown ([`Received::Closed`]).
    pub fn shutdown(&self) -> Result<()> {
        // SAFETY: plain shutdown(2) on our descriptor.
        if unsafe { libc::shutdown(self.sock.as_raw_fd(), libc::SHUT_WR) } < 0 {
            return Err(io::Error::last_os_error().into());
        }
        Ok(())
    }

    /// Aborts the association: closes the socket with a zero linger time, which makes the kernel send
    /// ABORT (the `SCTP_ABORT` send flag is one-to-many only).
    pub fn abort(self) -> Result<()> {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        crate::socket::setsockopt(
            self.sock.as_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger,
        )?;
        drop(self);
        Ok(())
    }

    /// The peer's addresses.
    pub fn peer_addrs(&self) -> Result<Vec<SocketAddr>> {
        self.sock.peer_addrs(0)
    }

    /// The association's local addresses.
    pub fn local_addrs(&self) -> Result<Vec<SocketAddr>> {
        self.sock.local_addrs(0)
    }

    /// The underlying socket.
    pub fn socket(&self) -> &SctpSocket {
        &self.sock
    }
}

macro_rules! fd_traits {
    ($($t:ty),*) => {$(
        impl AsFd for $t {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.sock.as_fd()
            }
        }
        impl AsRawFd for $t {
            fn as_raw_fd(&self) -> RawFd {
                self.sock.as_raw_fd()
            }
        }
        impl SctpOptions for $t {}
        impl SctpAuth for $t {}
    )*};
}
pub(crate) use fd_traits;

fd_traits!(SctpListener, SctpStream);
impl SctpOptions for SctpSocket {}
impl SctpAuth for SctpSocket {}
