//! Socket buffers and the kernel's drop count of UDP sockets.
//!
//! The buffers the kernel granted a listener are logged and exported at bind: Linux doubles
//! what is asked for and caps it at net.core.rmem_max / wmem_max without an error.
//!
//! A UDP datagram that arrives while the socket's receive queue is full is dropped by the
//! kernel, before we could count it. Linux counts it per socket: the `drops` column of
//! /proc/net/udp and /proc/net/udp6, on the line of the socket's inode. The inode is the
//! `socket:[N]` target of the socket's /proc/self/fd link. No unsafe code: both are read as
//! files. Elsewhere than Linux the drops are unknown (`None`).

use std::net::SocketAddr;

use super::metrics;

/// What is known about one UDP listener's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpSocketStats {
    /// The address it is bound to.
    pub local: SocketAddr,
    /// SO_RCVBUF as granted by the kernel, bytes.
    pub recv_buffer: usize,
    /// SO_SNDBUF as granted by the kernel, bytes.
    pub send_buffer: usize,
    /// Datagrams the kernel dropped because the receive queue was full, since the bind
    /// (`None`: not known on this system).
    pub kernel_drops: Option<u64>,
}

/// A UDP listener (one socket, or a SO_REUSEPORT group of them on one address), as the stats
/// reader knows it.
#[derive(Debug)]
pub(crate) struct UdpSocketEntry {
    pub(crate) local: SocketAddr,
    pub(crate) recv_buffer: usize,
    pub(crate) send_buffer: usize,
    /// The sockets' inodes (those found).
    pub(crate) inodes: Vec<u64>,
    counter: ::metrics::Counter,
}

impl UdpSocketEntry {
    /// An entry for the sockets `fds` bound to `local` with the buffers granted (each).
    pub(crate) fn new(
        fds: &[std::os::fd::RawFd],
        local: SocketAddr,
        recv_buffer: usize,
        send_buffer: usize,
    ) -> Self {
        UdpSocketEntry {
            local,
            recv_buffer,
            send_buffer,
            inodes: fds.iter().filter_map(|fd| socket_inode(*fd)).collect(),
            counter: metrics::udp_kernel_drops(local),
        }
    }

    /// Reads the kernel's count now (summed over the group) and moves the exported counter
    /// to it.
    pub(crate) fn refresh(&self) -> UdpSocketStats {
        let drops = read_drops(&self.inodes, self.local.is_ipv6());
        if let Some(d) = drops {
            self.counter.absolute(d);
        }
        UdpSocketStats {
            local: self.local,
            recv_buffer: self.recv_buffer,
            send_buffer: self.send_buffer,
            kernel_drops: drops,
        }
    }
}

/// Logs and exports the socket buffers a listener got. Linux doubles what is asked for
/// (room for its bookkeeping) and caps it at net.core.rmem_max / wmem_max: a grant below
/// twice the request means the cap was hit.
pub(crate) fn report_buffers(
    kind: crate::TransportKind,
    local: SocketAddr,
    (want_recv, want_send): (usize, usize),
    (recv, send): (usize, usize),
) {
    metrics::socket_buffers(kind, local, recv, send);
    let capped = |want: usize, got: usize| want > 0 && got < want.saturating_mul(2);
    if capped(want_recv, recv) || capped(want_send, send) {
        tracing::warn!(transport = %kind, %local, recv_buffer = recv, send_buffer = send,
            asked_recv = want_recv, asked_send = want_send,
            "socket buffers capped by the kernel: raise net.core.rmem_max / wmem_max");
    } else {
        tracing::info!(transport = %kind, %local, recv_buffer = recv, send_buffer = send,
            "socket buffers");
    }
}

/// The inode of the socket `fd` of this process, from its /proc/self/fd link.
fn socket_inode(fd: std::os::fd::RawFd) -> Option<u64> {
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    parse_socket_link(target.to_str()?)
}

/// `socket:[12345]` → 12345.
fn parse_socket_link(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The drops of the sockets `inodes` from /proc/net/udp (or udp6), summed; `None` when none
/// of them is found.
fn read_drops(inodes: &[u64], ipv6: bool) -> Option<u64> {
    if inodes.is_empty() {
        return None;
    }
    let path = if ipv6 {
        "/proc/net/udp6"
    } else {
        "/proc/net/udp"
    };
    let table = std::fs::read_to_string(path).ok()?;
    inodes
        .iter()
        .filter_map(|i| parse_drops(&table, *i))
        .fold(None, |sum, d| Some(sum.unwrap_or(0) + d))
}

/// The `drops` column of the line of `inode` in a /proc/net/udp table. Columns are found by
/// the header's names: `inode` is the 10th value and `drops` the last on Linux, but the
/// header says so.
fn parse_drops(table: &str, inode: u64) -> Option<u64> {
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next()?.split_whitespace().collect();
    // The header writes "tx_queue rx_queue" and "tr tm->when" as two names for one value
    // each ("tx_queue:rx_queue", "tr:tm->when"); count values, not names.
    let mut col = 0usize;
    let mut inode_col = None;
    let mut drops_col = None;
    for name in &header {
        match *name {
            "rx_queue" | "tm->when" => continue,
            "inode" => inode_col = Some(col),
            "drops" => drops_col = Some(col),
            _ => {}
        }
        col += 1;
    }
    let (inode_col, drops_col) = (inode_col?, drops_col?);
    let wanted = inode.to_string();
    lines.find_map(|l| {
        let values: Vec<&str> = l.split_whitespace().collect();
        if values.get(inode_col) != Some(&wanted.as_str()) {
            return None;
        }
        values.get(drops_col)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout of Linux 6.x (net/ipv4/udp.c, udp4_seq_show).
    const TABLE: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  152: 0100007F:13C4 00000000:0000 07 00000000:00001200 00:00000000 00000000  1000        0 4242 2 0000000000000000 17
  153: 0100007F:13C5 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 4243 2 0000000000000000 0
";

    #[test]
    fn drops_of_the_socket_by_inode() {
        assert_eq!(parse_drops(TABLE, 4242), Some(17));
        assert_eq!(parse_drops(TABLE, 4243), Some(0));
        assert_eq!(parse_drops(TABLE, 1), None);
        assert_eq!(parse_drops("", 4242), None);
        assert_eq!(parse_drops("sl local_address\n 1: x\n", 4242), None);
    }

    #[test]
    fn socket_link_target() {
        assert_eq!(parse_socket_link("socket:[98765]"), Some(98765));
        assert_eq!(parse_socket_link("pipe:[98765]"), None);
        assert_eq!(parse_socket_link("/dev/null"), None);
    }

    /// A UDP listener with the smallest receive buffer is flooded while its receive task
    /// cannot run (the test holds the only runtime thread): the kernel drops what does not
    /// fit, and the transport reports those drops instead of losing them silently.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "current_thread")]
    async fn kernel_drops_of_a_flooded_udp_listener_are_counted() {
        use crate::transport::{Transport, TransportConfig};
        let (t, _rx) = Transport::new(TransportConfig {
            udp_recv_buffer: 1, // the kernel raises it to its minimum
            ..TransportConfig::default()
        });
        let local = t.bind_udp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let before = t.udp_sockets();
        assert_eq!(before.len(), 1);
        assert_eq!(before[0].local, local);
        assert_eq!(before[0].kernel_drops, Some(0));
        let granted = before[0].recv_buffer;
        assert!(granted > 1 && granted < 64 * 1024, "granted {granted}");

        // No await until the flood is over: the receive task stays parked.
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let datagram = vec![b'x'; 1200];
        let mut sent = 0u64;
        for _ in 0..200 {
            if tx.send_to(&datagram, local).is_ok() {
                sent += 1;
            }
        }
        let after = t.udp_sockets();
        let drops = after[0].kernel_drops.unwrap();
        assert!(
            drops > 0 && drops < sent,
            "{drops} dropped of {sent} into {granted} bytes"
        );
    }
}
