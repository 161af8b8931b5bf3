//! The tokio side of a flow: moves bytes between a socket and its [`Flow`], and sleeps
//! until the flow's next deadline. One task per flow.

use std::io;
use std::pin::Pin;
use std::time::{Duration, Instant};

use sipwire_sys::{Received, RecvBuf, SctpStream, SendInfo, DEFAULT_RECV_LIMIT};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::time::Sleep;

use crate::conn::Conn;
use crate::dtls_sctp::DtlsFlow;
use crate::flow::{Flow, Stats, Transmit};
use crate::sip::{self, Frame, RequestTemplate};
use crate::tls_sctp::Sessions;

/// SIP's payload protocol identifier on SCTP: RFC 4168 §4 leaves it 0 (as sipwire sends).
const SIP_PPID: u32 = 0;

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
        Conn::Sctp(s, streams, tls) => sctp(s, streams, tls.map(|t| *t), tmpl, flow).await,
        Conn::DtlsSctp(d) => dtls_sctp(*d, tmpl, flow).await,
    }
}

fn write(tmpl: &RequestTemplate, t: &Transmit, out: &mut Vec<u8>) {
    tmpl.write_msg(t.seq, t.method, t.dialog.as_deref(), out);
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
        while let Some(t) = flow.poll_send(now) {
            wbuf.clear();
            write(&tmpl, &t, &mut wbuf);
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
        while let Some(t) = flow.poll_send(now) {
            write(&tmpl, &t, &mut wbuf);
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

/// An SCTP association: one SIP message per user message, a call's messages all on the
/// stream its sequence number picks; over TLS-SCTP each stream has its TLS session and its
/// plaintext is framed like a TCP stream. Reliable: nothing is retransmitted.
async fn sctp(
    s: SctpStream,
    streams: u16,
    mut tls: Option<Sessions>,
    tmpl: RequestTemplate,
    mut flow: Flow,
) -> Stats {
    let mut rb = RecvBuf::new(DEFAULT_RECV_LIMIT);
    let mut wbuf = Vec::with_capacity(2048);
    let mut records: Vec<(u16, Vec<u8>)> = Vec::new();
    let mut broken = false;
    let mut timer = Timer::new();
    let streams = u64::from(streams.max(1));
    loop {
        let now = Instant::now();
        flow.on_timers(now);
        while let Some(t) = flow.poll_send(now) {
            if broken {
                continue;
            }
            wbuf.clear();
            write(&tmpl, &t, &mut wbuf);
            // The remainder is below `streams`, a u16.
            let stream = (t.seq % streams) as u16;
            let sent = match &mut tls {
                None => {
                    let info = SendInfo::on_stream(stream).ppid(SIP_PPID);
                    s.send(&wbuf, &info).await.is_ok()
                }
                Some(sessions) => {
                    sessions.send(stream, &wbuf, &mut records) && sctp_send(&s, &mut records).await
                }
            };
            if !sent {
                flow.on_io_error(now, true);
                broken = true;
            }
        }
        if flow.done(now) {
            break;
        }
        timer.arm(&flow, now);
        tokio::select! {
            biased;
            r = s.recv(&mut rb), if !broken => {
                let now = Instant::now();
                let ok = match r {
                    Ok(Received::Message { data, info, .. }) => match &mut tls {
                        None => {
                            on_message(&mut flow, &tmpl, data, now);
                            true
                        }
                        Some(sessions) => tls_received(&mut flow, &tmpl, sessions, info.stream, data, &mut records, now),
                    },
                    Ok(Received::Notification(_)) => true,
                    // Closed by the server, or an error: the flow cannot go on.
                    Ok(Received::Closed) | Err(_) => false,
                };
                if !ok || !sctp_send(&s, &mut records).await {
                    flow.on_io_error(now, true);
                    broken = true;
                }
            }
            _ = &mut timer.sleep => timer.fired(),
        }
    }
    if !broken {
        // Best effort: a graceful SHUTDOWN.
        let _ = s.shutdown();
    }
    flow.stats
}

/// A DTLS-over-SCTP association through sipwire's transport: one SIP message per DTLS record
/// per user message, handed to and taken from the library (which picks the stream). Reliable:
/// nothing is retransmitted.
async fn dtls_sctp(mut d: DtlsFlow, tmpl: RequestTemplate, mut flow: Flow) -> Stats {
    let mut wbuf = Vec::with_capacity(2048);
    let mut broken = false;
    let mut timer = Timer::new();
    loop {
        let now = Instant::now();
        flow.on_timers(now);
        while let Some(t) = flow.poll_send(now) {
            if broken {
                continue;
            }
            wbuf.clear();
            write(&tmpl, &t, &mut wbuf);
            if !d.send(&wbuf) {
                flow.on_io_error(now, true);
                broken = true;
            }
        }
        if flow.done(now) {
            break;
        }
        timer.arm(&flow, now);
        tokio::select! {
            biased;
            m = d.recv(), if !broken => {
                let now = Instant::now();
                match m {
                    Some(m) => on_message(&mut flow, &tmpl, m.message.as_bytes(), now),
                    None => {
                        flow.on_io_error(now, true);
                        broken = true;
                    }
                }
            }
            _ = &mut timer.sleep => timer.fired(),
        }
    }
    // Best effort: close_notify and a graceful SHUTDOWN.
    d.close(Duration::from_millis(200)).await;
    flow.stats
}

/// Sends (and empties) `records`, each on its stream; false when the association broke.
async fn sctp_send(s: &SctpStream, records: &mut Vec<(u16, Vec<u8>)>) -> bool {
    for (stream, rec) in records.drain(..) {
        let info = SendInfo::on_stream(stream).ppid(SIP_PPID);
        if s.send(&rec, &info).await.is_err() {
            return false;
        }
    }
    true
}

/// Decrypts a record of `stream` and hands its complete messages to the flow; false when the
/// session or its framing broke.
fn tls_received(
    flow: &mut Flow,
    tmpl: &RequestTemplate,
    sessions: &mut Sessions,
    stream: u16,
    data: &[u8],
    records: &mut Vec<(u16, Vec<u8>)>,
    now: Instant,
) -> bool {
    if sessions.receive(stream, data, records).is_err() {
        return false;
    }
    let Some(plain) = sessions.plain(stream) else {
        return true;
    };
    let mut off = 0;
    loop {
        match sip::next_frame(&plain[off..]) {
            Frame::Skip(n) => off += n,
            Frame::Message(n) => {
                on_message(flow, tmpl, &plain[off..off + n], now);
                off += n;
            }
            Frame::Incomplete => break,
            Frame::Bad => return false,
        }
    }
    plain.drain(..off);
    plain.len() <= MAX_READ_BUF
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
