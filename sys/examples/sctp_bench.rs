//! SCTP socket layer benchmark (used by lab/bench/sctp-bench.sh next to a C baseline doing the same
//! with raw syscalls): 1 KiB messages over a one-to-one association on 127.0.0.1, server and client
//! on their own threads, each with a current-thread tokio runtime.
//!
//! Prints `rate_msgs_per_s=<n>` (client sends N messages, server acks the last) and
//! `lat_mean_us=<x> lat_p50_us=<y> lat_p99_us=<z>` (M ping-pong round trips).
//! Usage: sctp_bench [messages=10000] [round_trips=1000] [port=7000] [rcvbuf=0]
//! (`rcvbuf`: `SO_RCVBUF` for both ends before the association is set up; 0 keeps the kernel's
//! default.)

use sipwire_sys::{Family, InitMsg, Received, RecvBuf, SctpOptions, SctpSocket, SendInfo};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

type R<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;
const SIZE: usize = 1024;

fn rt() -> R<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

async fn recv_data(s: &sipwire_sys::SctpStream, rb: &mut RecvBuf) -> R<usize> {
    loop {
        match s.recv(rb).await? {
            Received::Message { data, .. } => return Ok(data.len()),
            Received::Notification(_) => continue,
            Received::Closed => return Err("closed".into()),
        }
    }
}

/// A one-to-one socket with the benchmark's receive buffer (inherited by accepted associations).
fn socket(rcvbuf: usize) -> R<SctpSocket> {
    let sock = SctpSocket::one_to_one(Family::V4)?;
    if rcvbuf > 0 {
        sock.set_recv_buffer_size(rcvbuf)?;
    }
    Ok(sock)
}

fn server(
    addr: SocketAddr,
    (n, m, rcvbuf): (usize, usize, usize),
    ready: std::sync::mpsc::Sender<()>,
) -> R<()> {
    rt()?.block_on(async move {
        let l = socket(rcvbuf)?;
        l.bind(&[addr])?;
        let l = l.listen(4)?;
        ready.send(())?;
        let (s, _) = l.accept().await?;
        s.set_nodelay(true)?;
        let mut rb = RecvBuf::new(64 * 1024);
        let info = SendInfo::on_stream(0);
        // Rate phase.
        for _ in 0..n {
            recv_data(&s, &mut rb).await?;
        }
        s.send(b"k", &info).await?;
        // Latency phase: echo.
        let mut msg = [0u8; SIZE];
        for _ in 0..m {
            let len = recv_data(&s, &mut rb).await?;
            s.send(&msg[..len.min(SIZE)], &info).await?;
            msg[0] = msg[0].wrapping_add(1);
        }
        R::Ok(())
    })
}

fn client(addr: SocketAddr, (n, m, rcvbuf): (usize, usize, usize)) -> R<(f64, Vec<Duration>)> {
    rt()?.block_on(async move {
        let sock = socket(rcvbuf)?;
        sock.set_init_msg(InitMsg {
            num_ostreams: 4,
            max_instreams: 4,
            ..Default::default()
        })?;
        let s = sock.connect(&[addr]).await?;
        s.set_nodelay(true)?;
        let mut rb = RecvBuf::new(64 * 1024);
        let info = SendInfo::on_stream(0);
        let msg = [0x5au8; SIZE];
        let start = Instant::now();
        for _ in 0..n {
            s.send(&msg, &info).await?;
        }
        recv_data(&s, &mut rb).await?;
        let rate = n as f64 / start.elapsed().as_secs_f64();
        let mut lat = Vec::with_capacity(m);
        for _ in 0..m {
            let t = Instant::now();
            s.send(&msg, &info).await?;
            recv_data(&s, &mut rb).await?;
            lat.push(t.elapsed());
        }
        R::Ok((rate, lat))
    })
}

fn main() -> R<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let n = args.first().copied().unwrap_or(10_000);
    let m = args.get(1).copied().unwrap_or(1_000);
    let port = args.get(2).copied().unwrap_or(7000) as u16;
    let rcvbuf = args.get(3).copied().unwrap_or(0);
    let addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port));
    let (tx, rx) = std::sync::mpsc::channel();
    let srv = std::thread::spawn(move || server(addr, (n, m, rcvbuf), tx));
    rx.recv_timeout(Duration::from_secs(30))?;
    let (rate, mut lat) = client(addr, (n, m, rcvbuf))?;
    srv.join().map_err(|_| "server thread panicked")??;
    lat.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = lat.iter().map(|d| us(*d)).sum::<f64>() / lat.len().max(1) as f64;
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map(|d| us(*d))
            .unwrap_or(0.0)
    };
    println!("rate_msgs_per_s={rate:.0}");
    println!(
        "lat_mean_us={mean:.1} lat_p50_us={:.1} lat_p99_us={:.1}",
        pct(0.50),
        pct(0.99)
    );
    Ok(())
}
