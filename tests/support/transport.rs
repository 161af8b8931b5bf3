//! Driving a `Transport` and raw sockets from a test: bounded reads of what arrives, framing
//! of raw streams, waiting for a peer to close.

use super::poll::WAIT;
use sipwire::transport::{Incoming, Transport, TransportConfig};
use sipwire::wire::{Frame, Limits, Message, StreamFramer};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

/// 127.0.0.1, any port.
pub fn any() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

/// A transport extracting RFC 5922 identities from peer certificates.
pub fn transport() -> (Transport, mpsc::Receiver<Incoming>) {
    Transport::new(TransportConfig {
        identities: Some(sipwire::tls::identity_fn()),
        ..TransportConfig::default()
    })
}

/// Receives the next message from a transport's channel, bounded by [`WAIT`].
pub async fn next(rx: &mut mpsc::Receiver<Incoming>) -> Incoming {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("timed out waiting for a message")
        .expect("channel closed")
}

/// Reads datagrams from a raw UDP socket until a final response (≥ 200) comes, provisional
/// ones skipped; fails after `limit`.
pub async fn final_response_udp(sock: &tokio::net::UdpSocket, limit: Duration) -> Message {
    let end = tokio::time::Instant::now() + limit;
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, _) = tokio::time::timeout_at(end, sock.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no final response within {limit:?}"))
            .expect("recv");
        let m = Message::parse(bytes::Bytes::copy_from_slice(&buf[..n])).expect("SIP");
        if m.status_code().is_some_and(|c| c >= 200) {
            return m;
        }
    }
}

pub fn framer() -> StreamFramer {
    StreamFramer::new(Limits::default())
}

/// Reads one frame (message, ping or pong) from a raw stream, bounded by [`WAIT`].
pub async fn read_frame<R: AsyncRead + Unpin>(rd: &mut R, framer: &mut StreamFramer) -> Frame {
    framer.set_awaiting_pong(true);
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(f) = framer.next_frame().expect("framing") {
                return f;
            }
            let mut buf = [0u8; 4096];
            let n = rd.read(&mut buf).await.expect("read");
            assert!(n > 0, "peer closed while a frame was expected");
            framer.push(&buf[..n]);
        }
    })
    .await
    .expect("timed out reading a frame")
}

/// Reads one SIP message from a raw stream.
pub async fn read_message<R: AsyncRead + Unpin>(rd: &mut R, framer: &mut StreamFramer) -> Message {
    loop {
        if let Frame::Message(b) = read_frame(rd, framer).await {
            return Message::parse(b).expect("parse");
        }
    }
}

/// Waits until the peer closes the stream (read returns 0 or an error); returns how
/// long it took. Fails after `limit`.
pub async fn closed_within<R: AsyncRead + Unpin>(rd: &mut R, limit: Duration) -> Duration {
    let start = std::time::Instant::now();
    tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("peer did not close in time");
    start.elapsed()
}
