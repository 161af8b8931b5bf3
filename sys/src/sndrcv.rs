//! Message send/receive over kernel SCTP: `sendmsg` with an `SCTP_SNDINFO` control message and
//! `recvmsg` with `SCTP_RCVINFO`, reassembling partial deliveries into a caller-owned, reused buffer
//! until `MSG_EOR`. No allocation per message once the buffer has grown to the largest message seen.

use crate::addr;
use crate::error::{Result, SctpError};
use crate::ffi;
use crate::notification::Notification;
use std::io;
use std::mem::size_of;
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// Parameters of one sent message (`struct sctp_sndinfo`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendInfo {
    /// Stream id.
    pub stream: u16,
    /// `SCTP_UNORDERED`, `SCTP_EOF`, `SCTP_ABORT`, ... (see [`crate::flags`]).
    pub flags: u16,
    /// Payload protocol identifier, host order (sent in network order).
    pub ppid: u32,
    /// Opaque value returned in a send-failed notification.
    pub context: u32,
    /// Association (one-to-many sockets; ignored on one-to-one).
    pub assoc_id: i32,
}

impl SendInfo {
    /// Send on `stream` with the other fields zero.
    pub fn on_stream(stream: u16) -> Self {
        SendInfo {
            stream,
            ..SendInfo::default()
        }
    }
    /// Sets the association.
    pub fn assoc(mut self, assoc_id: i32) -> Self {
        self.assoc_id = assoc_id;
        self
    }
    /// Sets the payload protocol identifier.
    pub fn ppid(mut self, ppid: u32) -> Self {
        self.ppid = ppid;
        self
    }
    /// Marks the message for unordered delivery.
    pub fn unordered(mut self, on: bool) -> Self {
        if on {
            self.flags |= ffi::SCTP_UNORDERED;
        } else {
            self.flags &= !ffi::SCTP_UNORDERED;
        }
        self
    }
    /// Sets the context.
    pub fn context(mut self, context: u32) -> Self {
        self.context = context;
        self
    }

    fn to_raw(self) -> ffi::sctp_sndinfo {
        ffi::sctp_sndinfo {
            snd_sid: self.stream,
            snd_flags: self.flags,
            snd_ppid: self.ppid.to_be(),
            snd_context: self.context,
            snd_assoc_id: self.assoc_id,
        }
    }
}

/// What the kernel reported about a received message (`struct sctp_rcvinfo`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecvInfo {
    /// Stream id.
    pub stream: u16,
    /// Stream sequence number.
    pub ssn: u16,
    /// `SCTP_UNORDERED` if sent unordered.
    pub flags: u16,
    /// Payload protocol identifier, host order.
    pub ppid: u32,
    /// TSN of the first fragment.
    pub tsn: u32,
    /// Cumulative TSN.
    pub cumtsn: u32,
    /// Context.
    pub context: u32,
    /// Association.
    pub assoc_id: i32,
}

impl RecvInfo {
    /// True if the message was sent unordered.
    pub fn is_unordered(&self) -> bool {
        self.flags & ffi::SCTP_UNORDERED != 0
    }

    fn from_raw(r: &ffi::sctp_rcvinfo) -> Self {
        RecvInfo {
            stream: r.rcv_sid,
            ssn: r.rcv_ssn,
            flags: r.rcv_flags,
            ppid: u32::from_be(r.rcv_ppid),
            tsn: r.rcv_tsn,
            cumtsn: r.rcv_cumtsn,
            context: r.rcv_context,
            assoc_id: r.rcv_assoc_id,
        }
    }
}

/// One complete thing received.
#[derive(Debug)]
pub enum Received<'a> {
    /// A whole user message.
    Message {
        /// Its bytes (borrowed from the [`RecvBuf`]).
        data: &'a [u8],
        /// Stream, PPID, association, ...
        info: RecvInfo,
        /// Source address (the peer's primary or the path it came on).
        from: Option<SocketAddr>,
    },
    /// A notification (only for subscribed events).
    Notification(Notification),
    /// The peer closed the association (one-to-one sockets: recvmsg returned 0).
    Closed,
}

/// Default receive limit: 1 MiB.
pub const DEFAULT_RECV_LIMIT: usize = 1 << 20;
const INITIAL_CAPACITY: usize = 64 * 1024;

/// A reusable receive buffer that holds the state of a message being reassembled, so a cancelled
/// `recv` future loses nothing as long as the same buffer is passed again.
#[derive(Debug)]
pub struct RecvBuf {
    buf: Vec<u8>,
    filled: usize,
    limit: usize,
    in_progress: bool,
    discarding: bool,
    notification: bool,
    info: RecvInfo,
    from: Option<SocketAddr>,
}

impl Default for RecvBuf {
    fn default() -> Self {
        RecvBuf::new(DEFAULT_RECV_LIMIT)
    }
}

impl RecvBuf {
    /// A buffer accepting messages up to `limit` bytes (larger ones give [`SctpError::MessageTooLarge`]).
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        RecvBuf {
            buf: vec![0; INITIAL_CAPACITY.min(limit).max(256)],
            filled: 0,
            limit,
            in_progress: false,
            discarding: false,
            notification: false,
            info: RecvInfo::default(),
            from: None,
        }
    }

    /// The size limit of one message.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes currently allocated.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Makes room for the next read; false when the message is over the limit.
    fn make_room(&mut self) {
        if self.filled < self.buf.len() {
            return;
        }
        if self.discarding {
            self.filled = 0;
            return;
        }
        // The message does not fit: grow while under the limit (never for notifications beyond it).
        let cap = self.buf.len();
        let max = self.limit.max(if self.notification { 1 << 16 } else { 0 });
        if cap < max {
            let new = (cap * 2).min(max);
            self.buf.resize(new, 0);
        } else {
            self.discarding = true;
            self.filled = 0;
        }
    }

    /// Feeds the result of one `recvmsg` (already written at `buf[filled..filled+n]`). Returns true
    /// when the message is complete.
    fn piece(
        &mut self,
        n: usize,
        msg_flags: libc::c_int,
        info: Option<RecvInfo>,
        from: Option<SocketAddr>,
    ) -> bool {
        if !self.in_progress {
            self.in_progress = true;
            self.notification = msg_flags & ffi::MSG_NOTIFICATION != 0;
            self.info = info.unwrap_or_default();
            self.from = from;
        }
        self.filled += n;
        msg_flags & libc::MSG_EOR != 0
    }

    fn finish(&mut self) -> Result<Received<'_>> {
        let len = self.filled;
        self.filled = 0;
        self.in_progress = false;
        if self.discarding {
            self.discarding = false;
            return Err(SctpError::MessageTooLarge {
                limit: self.limit,
                stream: self.info.stream,
                assoc_id: self.info.assoc_id,
            });
        }
        let data = self.buf.get(..len).ok_or(SctpError::Malformed {
            what: "receive length",
        })?;
        if self.notification {
            return Notification::decode(data).map(Received::Notification);
        }
        Ok(Received::Message {
            data,
            info: self.info,
            from: self.from,
        })
    }
}

/// cmsg space for one `sctp_sndinfo` / `sctp_rcvinfo`, 8-byte aligned storage.
type CmsgBuf = [u64; 16];

/// Sends one message with `sendmsg` (non-blocking; `WouldBlock` is returned as is).
pub(crate) fn sendmsg_raw(
    fd: RawFd,
    data: &[u8],
    info: &SendInfo,
    to: Option<&SocketAddr>,
) -> io::Result<usize> {
    let mut cbuf: CmsgBuf = [0; 16];
    let snd = info.to_raw();
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(size_of::<ffi::sctp_sndinfo>() as u32) } as usize;
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
    let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut namelen: libc::socklen_t = 0;
    if let Some(a) = to {
        namelen = addr::write_storage(a, &mut name);
    }
    // SAFETY: msghdr is plain old data; all-zero is valid before we fill it.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if namelen > 0 {
        msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = namelen;
    }
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg_control points to `cbuf` (128 bytes, 8-aligned), larger than `space` (32 bytes), so
    // CMSG_FIRSTHDR returns a valid header pointer inside it and CMSG_DATA has room for sctp_sndinfo.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = ffi::IPPROTO_SCTP;
        (*c).cmsg_type = ffi::SCTP_SNDINFO;
        (*c).cmsg_len = libc::CMSG_LEN(size_of::<ffi::sctp_sndinfo>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<ffi::sctp_sndinfo>(), snd);
    }
    // SAFETY: every pointer in `msg` refers to live locals / `data` for the duration of the call.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// One `recvmsg` into `rb`'s free space; returns Ok(true) when a message is complete, Ok(false) when
/// more pieces follow, and `WouldBlock` when nothing is queued. Ok(true) with nothing received and no
/// message in progress means end of file.
pub(crate) fn recv_piece(fd: RawFd, rb: &mut RecvBuf) -> io::Result<RecvStep> {
    rb.make_room();
    let mut cbuf: CmsgBuf = [0; 16];
    // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
    let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let free = rb.buf.get_mut(rb.filled..).unwrap_or_default();
    let mut iov = libc::iovec {
        iov_base: free.as_mut_ptr().cast(),
        iov_len: free.len(),
    };
    // SAFETY: msghdr is plain old data; all-zero is valid before we fill it.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<CmsgBuf>() as _;
    // SAFETY: all pointers in `msg` refer to live, writable memory of the stated sizes.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    if n == 0 && !rb.in_progress && msg.msg_flags & libc::MSG_EOR == 0 {
        return Ok(RecvStep::Eof);
    }
    let mut info = None;
    let mut next_queued = false;
    // SAFETY: the kernel filled msg_control/msg_controllen; CMSG_FIRSTHDR/NXTHDR stay within it and
    // we read the payload unaligned only when the header says it is an sctp_rcvinfo.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == ffi::IPPROTO_SCTP
                && (*c).cmsg_type == ffi::SCTP_RCVINFO
                && (*c).cmsg_len as usize
                    >= libc::CMSG_LEN(size_of::<ffi::sctp_rcvinfo>() as u32) as usize
            {
                let r = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<ffi::sctp_rcvinfo>());
                info = Some(RecvInfo::from_raw(&r));
            }
            if (*c).cmsg_level == ffi::IPPROTO_SCTP && (*c).cmsg_type == ffi::SCTP_NXTINFO {
                next_queued = true;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let from = if msg.msg_namelen > 0 {
        addr::from_storage(&name, msg.msg_namelen).ok()
    } else {
        None
    };
    Ok(if rb.piece(n, msg.msg_flags, info, from) {
        RecvStep::Complete { next_queued }
    } else {
        RecvStep::More
    })
}

/// Outcome of [`recv_piece`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecvStep {
    /// A message is complete; `next_queued` is true when the kernel attached `SCTP_NXTINFO`, i.e.
    /// another message was already waiting.
    Complete {
        next_queued: bool,
    },
    More,
    Eof,
}

/// Turns a completed buffer into what the caller sees.
pub(crate) fn take(rb: &mut RecvBuf) -> Result<Received<'_>> {
    rb.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(rb: &mut RecvBuf, bytes: &[u8], eor: bool) -> bool {
        rb.make_room();
        let free = rb.buf.len() - rb.filled;
        let n = bytes.len().min(free);
        rb.buf[rb.filled..rb.filled + n].copy_from_slice(&bytes[..n]);
        let info = RecvInfo {
            stream: 3,
            assoc_id: 1,
            ..RecvInfo::default()
        };
        rb.piece(n, if eor { libc::MSG_EOR } else { 0 }, Some(info), None)
    }

    #[test]
    fn reassembles_pieces_and_reuses_the_buffer() {
        let mut rb = RecvBuf::new(1 << 20);
        let big: Vec<u8> = (0..200 * 1024).map(|i| (i % 251) as u8).collect();
        // The kernel hands over as much as fits; we emulate pieces of the free space.
        let mut off = 0;
        loop {
            rb.make_room();
            let free = rb.buf.len() - rb.filled;
            let n = free.min(big.len() - off);
            let done = feed(&mut rb, &big[off..off + n], off + n == big.len());
            off += n;
            if done {
                break;
            }
        }
        let cap = rb.capacity();
        match take(&mut rb).unwrap() {
            Received::Message { data, info, .. } => {
                assert_eq!(data, &big[..]);
                assert_eq!(info.stream, 3);
            }
            other => panic!("{other:?}"),
        }
        // A small message afterwards reuses the grown buffer.
        assert!(feed(&mut rb, b"hello", true));
        match take(&mut rb).unwrap() {
            Received::Message { data, .. } => assert_eq!(data, b"hello"),
            other => panic!("{other:?}"),
        }
        assert_eq!(rb.capacity(), cap);
    }

    #[test]
    fn over_limit_is_a_typed_error_then_the_next_message_is_fine() {
        let mut rb = RecvBuf::new(1000);
        let chunk = [7u8; 300];
        let mut done = false;
        for i in 0..10 {
            done = feed(&mut rb, &chunk, i == 9);
        }
        assert!(done);
        match take(&mut rb) {
            Err(SctpError::MessageTooLarge {
                limit: 1000,
                stream: 3,
                assoc_id: 1,
            }) => {}
            other => panic!("{other:?}"),
        }
        assert!(feed(&mut rb, b"next", true));
        match take(&mut rb).unwrap() {
            Received::Message { data, .. } => assert_eq!(data, b"next"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn send_info_builders_and_raw() {
        let s = SendInfo::on_stream(5)
            .assoc(9)
            .ppid(0x11223344)
            .unordered(true)
            .context(77);
        let r = s.to_raw();
        assert_eq!(r.snd_sid, 5);
        assert_eq!(r.snd_assoc_id, 9);
        assert_eq!(r.snd_ppid, 0x11223344u32.to_be());
        assert_eq!(r.snd_flags, ffi::SCTP_UNORDERED);
        assert_eq!(r.snd_context, 77);
        assert_eq!(s.unordered(false).flags, 0);
    }
}
