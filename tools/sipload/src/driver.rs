//! The tokio side of a flow: moves bytes between a socket and its [`Flow`], and sleeps
//! until the flow's next deadline. One task per flow.

use std::io;
use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::time::Sleep;

use crate::conn::Conn;
use crate::flow::{Flow, Stats};
use crate::sip::{self, Frame, RequestTemplate};

/// How long to sleep when the flow names no deadline (it always does while it has work;
/// this only bounds a wait that should not happen).
const IDLE_TICK: Duration = Duration::from_millis(100);

/// Largest stream read buffer: a response that does not fit is garbage.
const MAX_READ_BUF: usize = 1 << 20;

/// Datagrams taken per wake-up before new requests go out.
const UDP_BATCH: usize = 64;

/// Runs `flow` over `conn` from `start` until it is done; returns its counters.
pub async fn run(conn: Conn, tmpl: RequestTemplate, flow: Flow, start: Instant) -> Stats {
    tokio::time::sleep_until(start.into()).await;
    match conn {
        Conn::Udp(s) => udp(s, tmpl, flow).await,
        Conn::Tcp(mut s) => {
            let (r, w) = s.split();
            stream(r, w, tmpl, flow).await
        }
        Conn::Tls(s) => {
            let (r, w) = tokio::io::split(*s);
            stream(r, w, tmpl, flow).await
        }
    }
}

/// Keeps one reusable timer armed at the flow's next deadline.
struct Timer {
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
}

impl Timer {
    fn new() -> Timer {
        Timer {
            sleep: Box::pin(tokio::time::sleep(IDLE_TICK)),
            armed: None,
        }
    }

    fn arm(&mut self, flow: &Flow, now: Instant) {
        let at = flow.next_deadline().unwrap_or(now + IDLE_TICK);
        if self.armed != Some(at) {
            self.sleep.as_mut().reset(at.into());
            self.armed = Some(at);
        }
    }

    /// Called when the timer fired: the next `arm` resets it even to the same instant.
    fn fired(&mut self) {
        self.armed = None;
    }
}

fn on_message(flow: &mut Flow, tmpl: &RequestTemplate, msg: &[u8], now: Instant) {
    match sip::parse_response(msg, tmpl.run) {
        Ok(r) if r.flow == tmpl.flow => flow.on_response(now, &r),
        _ => flow.on_stray(now),
    }
}

async fn udp(sock: UdpSocket, tmpl: RequestTemplate, mut flow: Flow) -> Stats {
    let mut rbuf = vec![0u8; 65536];
    let mut wbuf = Vec::with_capacity(1024);
    let mut timer = Timer::new();
    loop {
        let now = Instant::now();
        flow.on_timers(now);
        while let Some(seq) = flow.poll_send(now) {
            wbuf.clear();
            tmpl.write(seq, &mut wbuf);
            // A refused or dropped datagram is an unanswered request; the error is counted.
            if sock.send(&wbuf).await.is_err() {
                flow.on_io_error(now, false);
            }
        }
        if flow.done(now) {
            break;
        }
        timer.arm(&flow, now);
        tokio::select! {
            biased;
            r = sock.recv(&mut rbuf) => {
                let now = Instant::now();
                udp_received(&mut flow, &tmpl, &rbuf, r, now);
                for _ in 1..UDP_BATCH {
                    match sock.try_recv(&mut rbuf) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        r => udp_received(&mut flow, &tmpl, &rbuf, r, now),
                    }
                }
            }
            _ = &mut timer.sleep => timer.fired(),
        }
    }
    flow.stats
}

fn udp_received(
    flow: &mut Flow,
    tmpl: &RequestTemplate,
    buf: &[u8],
    r: io::Result<usize>,
    now: Instant,
) {
    match r {
        Ok(n) => on_message(flow, tmpl, &buf[..n], now),
        // ICMP port unreachable and the like: the request is lost, the flow goes on.
        Err(_) => flow.on_io_error(now, false),
    }
}

async fn stream<R, W>(mut rd: R, mut wr: W, tmpl: RequestTemplate, mut flow: Flow) -> Stats
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut rbuf = vec![0u8; 64 * 1024];
    let mut filled = 0usize;
    let mut wbuf: Vec<u8> = Vec::with_capacity(4096);
    let mut wpos = 0usize;
    let mut broken = false;
    let mut timer = Timer::new();
    loop {
        let now = Instant::now();
        flow.on_timers(now);
        while let Some(seq) = flow.poll_send(now) {
            tmpl.write(seq, &mut wbuf);
        }
        if flow.done(now) {
            break;
        }
        timer.arm(&flow, now);
        let pending_write = !broken && wpos < wbuf.len();
        tokio::select! {
            biased;
            r = wr.write(&wbuf[wpos..]), if pending_write => match r {
                Ok(n) if n > 0 => {
                    wpos += n;
                    if wpos == wbuf.len() {
                        wbuf.clear();
                        wpos = 0;
                    }
                }
                _ => {
                    flow.on_io_error(Instant::now(), true);
                    broken = true;
                }
            },
            r = rd.read(&mut rbuf[filled..]), if !broken => {
                let now = Instant::now();
                match r {
                    Ok(n) if n > 0 => {
                        filled += n;
                        match take_frames(&mut flow, &tmpl, &mut rbuf, &mut filled, now) {
                            Ok(()) => {}
                            Err(()) => {
                                flow.on_io_error(now, true);
                                broken = true;
                            }
                        }
                    }
                    // Closed by the server, or a read error: the flow cannot go on.
                    _ => {
                        flow.on_io_error(now, true);
                        broken = true;
                    }
                }
            }
            _ = &mut timer.sleep => timer.fired(),
        }
    }
    // Best effort: tell the server we are done (TLS close_notify, TCP FIN).
    let _ = tokio::time::timeout(Duration::from_millis(200), wr.shutdown()).await;
    flow.stats
}

/// Hands every complete message in `rbuf[..filled]` to the flow and moves the rest to the
/// front; grows the buffer when one message does not fit. `Err` when the stream cannot
/// be framed any more.
fn take_frames(
    flow: &mut Flow,
    tmpl: &RequestTemplate,
    rbuf: &mut Vec<u8>,
    filled: &mut usize,
    now: Instant,
) -> Result<(), ()> {
    let mut off = 0;
    loop {
        match sip::next_frame(&rbuf[off..*filled]) {
            Frame::Skip(n) => off += n,
            Frame::Message(n) => {
                on_message(flow, tmpl, &rbuf[off..off + n], now);
                off += n;
            }
            Frame::Incomplete => break,
            Frame::Bad => return Err(()),
        }
    }
    rbuf.copy_within(off..*filled, 0);
    *filled -= off;
    if *filled == rbuf.len() {
        if rbuf.len() >= MAX_READ_BUF {
            return Err(());
        }
        rbuf.resize(rbuf.len() * 2, 0);
    }
    Ok(())
}
