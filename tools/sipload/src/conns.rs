//! `sipload conns` and `sipload handshakes`: what a server pays per connection.
//!
//! - `conns` opens TCP or TLS connections in steps (e.g. 1, 100, 10,000, 100,000), from
//!   several source addresses (one source IP has at most ~64k ports towards one server port),
//!   at a bounded rate and concurrency. At each step it sends OPTIONS round-robin over every
//!   connection with a fixed number in flight (at least one sweep, so every connection has
//!   answered once), lets them idle, and samples the server's memory (PSS, summed over its
//!   processes: shared pages are split between them, so they count once) and CPU. One JSON
//!   line per step.
//! - `handshakes` measures full TLS handshakes per second: connect, handshake (no
//!   resumption), one OPTIONS and its 200, abortive close, in a loop on C connections.
//!
//! Held connections are not polled while idle and share each lane's read buffer, so the
//! generator holds 100k of them in a few KiB each plus the TLS session state.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::client::TlsStream;

use crate::conn::{ConnError, TlsClient, TlsVersion};
use crate::cpu::{self, Process};
use crate::report::{field, json_str, num};
use crate::sip::{self, Frame, Method, RequestTemplate};

/// Largest response accepted on a held connection.
const MAX_RESPONSE: usize = 64 * 1024;

/// Transport of `conns` and `handshakes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StreamArg {
    Tcp,
    Tls,
}

/// TLS version offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VersionArg {
    #[value(name = "1.2")]
    V12,
    #[value(name = "1.3")]
    V13,
}

/// Where and how to connect (shared by both subcommands).
#[derive(Debug, clap::Args)]
pub struct DialArgs {
    /// Transport.
    #[arg(long, value_enum, default_value = "tls")]
    transport: StreamArg,
    /// Server address [default: 127.0.0.1:5061 for tls, 127.0.0.1:5060 for tcp].
    #[arg(long)]
    target: Option<SocketAddr>,
    /// TLS version offered (only that one).
    #[arg(long, value_enum, default_value = "1.3")]
    tls_version: VersionArg,
    /// CA certificate(s) to trust (PEM), required for tls.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Name the server certificate is verified against, also sent as SNI.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// Source addresses, used in turn (comma-separated; e.g. 127.0.0.2,127.0.0.3: each
    /// gives ~64k ports towards one server port). Default: the kernel's choice.
    #[arg(long, value_delimiter = ',')]
    sources: Vec<IpAddr>,
    /// Time allowed to open one connection (connect + TLS handshake).
    #[arg(long, default_value_t = 10_000)]
    connect_timeout_ms: u64,
    /// Time allowed for one OPTIONS to be answered.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Server processes whose CPU time and memory are sampled (repeatable; every process
    /// of a multi-process server).
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    /// Runtime threads: 1 is a current_thread runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Free text copied into the JSON (`label`).
    #[arg(long)]
    label: Option<String>,
}

/// Hold many idle connections and measure the server's memory and throughput at each count.
#[derive(Debug, clap::Args)]
pub struct ConnsArgs {
    #[command(flatten)]
    dial: DialArgs,
    /// Connection counts to reach in turn (comma-separated, increasing).
    #[arg(long, value_delimiter = ',', default_value = "1,100,10000")]
    steps: Vec<usize>,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// New connections per second at most (0: as fast as the concurrency allows).
    #[arg(long, default_value_t = 0.0)]
    connect_rate: f64,
    /// OPTIONS in flight over all connections during a sweep (at most one per connection).
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Seconds of OPTIONS per step (at least one request on every connection).
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Seconds of idleness before the memory is sampled (at each step and at 0).
    #[arg(long, default_value_t = 3.0)]
    settle: f64,
    /// After the last step: keep the connections idle this many seconds, then check with one
    /// more sweep that every one still answers.
    #[arg(long, default_value_t = 0.0)]
    hold: f64,
}

/// Full TLS handshakes per second.
#[derive(Debug, clap::Args)]
pub struct HandshakeArgs {
    #[command(flatten)]
    dial: DialArgs,
    /// Connections in progress at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds before measuring starts.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Only the handshake: no OPTIONS before closing.
    #[arg(long)]
    no_options: bool,
}

/// A run that could not take place.
#[derive(Debug)]
pub enum ConnsError {
    /// The arguments contradict each other.
    Usage(String),
    /// TLS could not be configured.
    Conn(ConnError),
}

impl std::fmt::Display for ConnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnsError::Usage(m) => f.write_str(m),
            ConnsError::Conn(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ConnsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnsError::Conn(e) => Some(e),
            ConnsError::Usage(_) => None,
        }
    }
}

fn usage<T>(m: &str) -> Result<T, ConnsError> {
    Err(ConnsError::Usage(m.to_owned()))
}

fn secs(name: &str, v: f64) -> Result<Duration, ConnsError> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| ConnsError::Usage(format!("--{name} {v}: not a duration in seconds")))
}

/// Checked dial settings.
#[derive(Clone)]
struct Dialer {
    target: SocketAddr,
    tls: Option<TlsClient>,
    sources: Arc<[IpAddr]>,
    connect_timeout: Duration,
}

impl ConnsArgs {
    /// Runtime threads.
    pub fn threads(&self) -> usize {
        self.dial.threads()
    }
}

impl HandshakeArgs {
    /// Runtime threads.
    pub fn threads(&self) -> usize {
        self.dial.threads()
    }
}

impl DialArgs {
    fn threads(&self) -> usize {
        self.threads.max(1)
    }

    fn dialer(&self) -> Result<Dialer, ConnsError> {
        if self.connect_timeout_ms == 0 || self.timeout_ms == 0 {
            return usage("--connect-timeout-ms and --timeout-ms must be at least 1");
        }
        let tls = match self.transport {
            StreamArg::Tcp => None,
            StreamArg::Tls => {
                let Some(ca) = &self.ca else {
                    return usage("--transport tls needs --ca FILE");
                };
                let v = match self.tls_version {
                    VersionArg::V12 => TlsVersion::V12,
                    VersionArg::V13 => TlsVersion::V13,
                };
                // Every handshake a full one: resumption would measure something else.
                Some(
                    TlsClient::new(ca, v, &self.server_name)
                        .map_err(ConnsError::Conn)?
                        .without_resumption(),
                )
            }
        };
        let port = if tls.is_some() { 5061 } else { 5060 };
        let target = self
            .target
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], port)));
        if self.sources.iter().any(|s| s.is_ipv4() != target.is_ipv4()) {
            return usage("--sources must be of the target's address family");
        }
        Ok(Dialer {
            target,
            tls,
            sources: self.sources.clone().into(),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
        })
    }

    fn transport_name(&self) -> &'static str {
        match self.transport {
            StreamArg::Tcp => "tcp",
            StreamArg::Tls => "tls",
        }
    }

    fn version_name(&self) -> Option<&'static str> {
        (self.transport == StreamArg::Tls).then_some(match self.tls_version {
            VersionArg::V12 => "1.2",
            VersionArg::V13 => "1.3",
        })
    }
}

/// A TCP or TLS stream.
enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Tcp(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }
}

/// An open connection and its local address (the Via sent-by).
struct Held {
    index: u32,
    local: SocketAddr,
    stream: Stream,
}

impl Dialer {
    /// Opens connection number `index` from the next source address.
    async fn open(&self, index: u32) -> Result<Held, ConnError> {
        let source =
            (!self.sources.is_empty()).then(|| self.sources[index as usize % self.sources.len()]);
        let open = async {
            let sock = if self.target.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            }
            .map_err(|e| ConnError::Io("TCP socket", e))?;
            if let Some(ip) = source {
                sock.bind(SocketAddr::new(ip, 0))
                    .map_err(|e| ConnError::Io("TCP bind", e))?;
            }
            let s = sock
                .connect(self.target)
                .await
                .map_err(|e| ConnError::Io("TCP connect", e))?;
            s.set_nodelay(true)
                .map_err(|e| ConnError::Io("TCP_NODELAY", e))?;
            let local = s
                .local_addr()
                .map_err(|e| ConnError::Io("local address", e))?;
            let stream = match &self.tls {
                None => Stream::Tcp(s),
                Some(c) => Stream::Tls(Box::new(
                    c.handshake(s)
                        .await
                        .map_err(|e| ConnError::Io("TLS handshake", e))?,
                )),
            };
            Ok(Held {
                index,
                local,
                stream,
            })
        };
        tokio::time::timeout(self.connect_timeout, open)
            .await
            .map_err(|_| ConnError::Timeout(self.connect_timeout))?
    }
}

/// Why one OPTIONS exchange failed.
#[derive(Debug)]
enum Exchange {
    /// A final response other than 200.
    Status,
    /// Closed, a read/write error, a timeout, or bytes that are not the expected response.
    Broken,
}

/// Sends `req` and reads one whole response into `buf`; the stream must hold nothing else.
async fn exchange<S>(s: &mut S, req: &[u8], buf: &mut Vec<u8>) -> Result<(), ()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    s.write_all(req).await.map_err(|_| ())?;
    s.flush().await.map_err(|_| ())?;
    buf.clear();
    loop {
        match sip::next_frame(buf) {
            Frame::Message(n) if n == buf.len() => return Ok(()),
            // More than one message: not an answer to one OPTIONS.
            Frame::Message(_) | Frame::Bad => return Err(()),
            Frame::Skip(n) => {
                buf.drain(..n);
            }
            Frame::Incomplete => {
                if buf.len() >= MAX_RESPONSE {
                    return Err(());
                }
                buf.reserve(4096);
                if s.read_buf(buf).await.map_err(|_| ())? == 0 {
                    return Err(());
                }
            }
        }
    }
}

/// Status code of the response in `msg` ("SIP/2.0 200 OK").
fn status_of(msg: &[u8]) -> Option<u16> {
    let rest = msg.strip_prefix(b"SIP/2.0 ")?;
    std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()
}

async fn exchange_any(stream: &mut Stream, req: &[u8], buf: &mut Vec<u8>) -> Result<(), ()> {
    match stream {
        Stream::Tcp(s) => exchange(s, req, buf).await,
        Stream::Tls(s) => exchange(&mut **s, req, buf).await,
    }
}

/// One OPTIONS on `h`, checked against what was sent.
async fn options(
    h: &mut Held,
    tmpl: &mut RequestTemplate,
    seq: u64,
    timeout: Duration,
    wbuf: &mut Vec<u8>,
    rbuf: &mut Vec<u8>,
) -> Result<(), Exchange> {
    tmpl.local = h.local;
    tmpl.flow = h.index;
    wbuf.clear();
    tmpl.write_msg(seq, Method::Options, None, wbuf);
    tokio::time::timeout(timeout, exchange_any(&mut h.stream, wbuf, rbuf))
        .await
        .map_err(|_| Exchange::Broken)?
        .map_err(|()| Exchange::Broken)?;
    match sip::parse_response(rbuf, tmpl.run) {
        Ok(r) if r.flow == h.index && r.seq == seq && r.status == 200 => Ok(()),
        Ok(r) if r.flow == h.index && r.seq == seq && r.status >= 200 => Err(Exchange::Status),
        _ => Err(Exchange::Broken),
    }
}

/// Counters of one sweep (or one lane of it).
struct SweepStats {
    answered: u64,
    non_200: u64,
    /// Connections dropped because an exchange broke (closed, timeout, garbage).
    broken: u64,
    latency_us: Histogram<u64>,
}

impl SweepStats {
    fn new() -> SweepStats {
        SweepStats {
            answered: 0,
            non_200: 0,
            broken: 0,
            // Auto-resizing: a TCG VM can be slow.
            latency_us: Histogram::new(3).unwrap_or_else(|_| unreachable_histogram()),
        }
    }

    fn merge(&mut self, o: &SweepStats) {
        self.answered += o.answered;
        self.non_200 += o.non_200;
        self.broken += o.broken;
        let _ = self.latency_us.add(&o.latency_us);
    }
}

/// `Histogram::new(3)` only fails for more than 5 significant figures.
fn unreachable_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| unreachable!())
}

/// One lane: OPTIONS on its connections in turn, one at a time, until `end` has passed and
/// every connection has been used at least once. Broken connections are dropped.
async fn lane(
    mut conns: Vec<Held>,
    mut tmpl: RequestTemplate,
    end: Instant,
    timeout: Duration,
) -> (Vec<Held>, SweepStats) {
    let mut st = SweepStats::new();
    let (mut wbuf, mut rbuf) = (Vec::with_capacity(1024), Vec::with_capacity(4096));
    let (mut i, mut seq, mut swept) = (0usize, 0u64, false);
    while !conns.is_empty() {
        if i >= conns.len() {
            i = 0;
            swept = true;
        }
        if swept && Instant::now() >= end {
            break;
        }
        let t0 = Instant::now();
        match options(&mut conns[i], &mut tmpl, seq, timeout, &mut wbuf, &mut rbuf).await {
            Ok(()) => {
                st.answered += 1;
                let us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
                let _ = st.latency_us.record(us.max(1));
                i += 1;
            }
            Err(Exchange::Status) => {
                st.non_200 += 1;
                i += 1;
            }
            Err(Exchange::Broken) => {
                st.broken += 1;
                conns.swap_remove(i);
            }
        }
        seq += 1;
    }
    // The buffers go; the connections stay.
    (conns, st)
}

/// What a sweep measured.
struct Sweep {
    stats: SweepStats,
    elapsed: Duration,
    server_cpu: Option<Duration>,
    tool_cpu: Option<Duration>,
}

fn cpu_of(pids: &[u32]) -> Option<Duration> {
    pids.iter()
        .map(|&p| cpu::process_cpu(Process::Pid(p)).ok())
        .sum()
}

/// OPTIONS round-robin over all of `held` with `window` in flight, for `duration` and at
/// least one request per connection.
async fn sweep(
    held: &mut Vec<Held>,
    window: usize,
    duration: Duration,
    timeout: Duration,
    tmpl: &RequestTemplate,
    pids: &[u32],
) -> Sweep {
    let lanes = window.min(held.len()).max(1);
    let mut split: Vec<Vec<Held>> = (0..lanes)
        .map(|_| Vec::with_capacity(held.len() / lanes + 1))
        .collect();
    for (k, h) in held.drain(..).enumerate() {
        split[k % lanes].push(h);
    }
    let (server_a, tool_a) = (cpu_of(pids), cpu::process_cpu(Process::Own).ok());
    let t0 = Instant::now();
    let end = t0 + duration;
    let mut set = JoinSet::new();
    for conns in split {
        set.spawn(lane(conns, tmpl.clone(), end, timeout));
    }
    let mut stats = SweepStats::new();
    while let Some(r) = set.join_next().await {
        // A lane only ends by returning; a panic would be a bug here, counted as lost.
        if let Ok((conns, st)) = r {
            held.extend(conns);
            stats.merge(&st);
        }
    }
    let elapsed = t0.elapsed();
    let (server_b, tool_b) = (cpu_of(pids), cpu::process_cpu(Process::Own).ok());
    held.sort_unstable_by_key(|h| h.index);
    Sweep {
        stats,
        elapsed,
        server_cpu: server_a.zip(server_b).map(|(a, b)| b.saturating_sub(a)),
        tool_cpu: tool_a.zip(tool_b).map(|(a, b)| b.saturating_sub(a)),
    }
}

/// PSS and RSS (KiB) of a process, from /proc/PID/smaps_rollup.
fn memory_kib(path: &str) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_ascii_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((value("Pss:")?, value("Rss:")?))
}

/// Summed PSS and RSS of the server processes (PSS splits shared pages between the
/// processes that map them, so the sum counts them once).
fn server_memory(pids: &[u32]) -> Option<(u64, u64)> {
    if pids.is_empty() {
        return None;
    }
    pids.iter()
        .map(|p| memory_kib(&format!("/proc/{p}/smaps_rollup")))
        .try_fold((0, 0), |(a, b), m| m.map(|(p, r)| (a + p, b + r)))
}

/// Result of opening a batch of connections.
struct Opened {
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
}

/// Why a connection of `open_batch` does not count as held.
#[derive(Debug)]
enum OpenError {
    /// Connect or TLS handshake.
    Conn(ConnError),
    /// The first OPTIONS got no 200.
    FirstOptions,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Conn(e) => write!(f, "{e}"),
            OpenError::FirstOptions => f.write_str("no 200 to the first OPTIONS"),
        }
    }
}

/// Opens connections `from..to` into `held`, `concurrency` at a time, at most `rate` per
/// second, each answering one OPTIONS.
async fn open_batch(
    d: &Dialer,
    (from, to): (usize, usize),
    concurrency: usize,
    rate: Option<f64>,
    (tmpl, timeout): (&RequestTemplate, Duration),
    held: &mut Vec<Held>,
) -> Opened {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    let mut out = Opened {
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
    };
    let mut take = |r: Result<Result<Held, OpenError>, tokio::task::JoinError>,
                    held: &mut Vec<Held>| match r {
        Ok(Ok(h)) => held.push(h),
        Ok(Err(e)) => {
            out.errors += 1;
            out.first_error.get_or_insert_with(|| e.to_string());
        }
        Err(e) => {
            out.errors += 1;
            out.first_error.get_or_insert_with(|| e.to_string());
        }
    };
    let t0 = Instant::now();
    for (k, i) in (from..to).enumerate() {
        if let Some(rate) = rate {
            let at = t0 + Duration::from_secs_f64(k as f64 / rate);
            tokio::time::sleep_until(at.into()).await;
        }
        let Ok(permit) = Arc::clone(&sem).acquire_owned().await else {
            break;
        };
        while let Some(r) = set.try_join_next() {
            take(r, held);
        }
        if k > 0 && k % 10_000 == 0 {
            // Progress of long (emulated) runs, on stderr.
            eprintln!("sipload conns: {k} attempted, {} open", held.len());
        }
        let (d, mut tmpl) = (d.clone(), tmpl.clone());
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        set.spawn(async move {
            // One OPTIONS as soon as the connection is up: a server may cut a connection that
            // has sent nothing for a while (sipwire's header timeout, 32 s, against
            // slowloris), and a held connection is one that has been used.
            let r = match d.open(index).await {
                Ok(mut h) => {
                    let (mut wbuf, mut rbuf) = (Vec::new(), Vec::new());
                    match options(&mut h, &mut tmpl, 0, timeout, &mut wbuf, &mut rbuf).await {
                        Ok(()) => Ok(h),
                        Err(_) => Err(OpenError::FirstOptions),
                    }
                }
                Err(e) => Err(OpenError::Conn(e)),
            };
            drop(permit);
            r
        });
    }
    while let Some(r) = set.join_next().await {
        take(r, held);
    }
    out.elapsed = t0.elapsed();
    out
}

/// `sipload conns`: prints one JSON line at 0 connections and one per step.
pub async fn conns(a: &ConnsArgs, run: u32) -> Result<(), ConnsError> {
    let d = a.dial.dialer()?;
    if a.steps.is_empty() || a.steps.windows(2).any(|w| w[0] >= w[1]) || a.steps[0] == 0 {
        return usage("--steps must be increasing counts of at least 1");
    }
    if u32::try_from(*a.steps.last().unwrap_or(&0)).is_err() {
        return usage("--steps: too many connections");
    }
    if a.window == 0 || a.connect_concurrency == 0 {
        return usage("--window and --connect-concurrency must be at least 1");
    }
    let rate = if a.connect_rate > 0.0 && a.connect_rate.is_finite() {
        Some(a.connect_rate)
    } else {
        None
    };
    let duration = secs("duration", a.duration)?;
    let settle = secs("settle", a.settle)?;
    let hold = secs("hold", a.hold)?;
    let timeout = Duration::from_millis(a.dial.timeout_ms);
    let pids = &a.dial.server_pids;
    let tmpl = RequestTemplate {
        via_transport: if d.tls.is_some() { "TLS" } else { "TCP" },
        local: d.target,
        uri: format!("sip:{}", d.target),
        run,
        flow: 0,
    };
    // `field` leaves a comma after each value.
    let line = |mut o: String| {
        o.pop();
        println!("{{{o}}}");
    };
    let head = |phase: &str, count: usize| {
        let mut o = String::with_capacity(1024);
        field(
            &mut o,
            "label",
            &a.dial.label.as_deref().map_or("null".to_owned(), json_str),
        );
        field(&mut o, "phase", &json_str(phase));
        field(&mut o, "transport", &json_str(a.dial.transport_name()));
        field(
            &mut o,
            "tls_version",
            &a.dial.version_name().map_or("null".to_owned(), json_str),
        );
        field(&mut o, "target", &json_str(&d.target.to_string()));
        field(&mut o, "sources", &d.sources.len().max(1).to_string());
        field(&mut o, "connections", &count.to_string());
        o
    };
    let mem_fields = |o: &mut String, base: Option<(u64, u64)>, count: usize| {
        let m = server_memory(pids);
        let tool = memory_kib("/proc/self/smaps_rollup");
        let opt = |v: Option<u64>| v.map_or("null".to_owned(), |v| v.to_string());
        field(o, "server_pss_kib", &opt(m.map(|m| m.0)));
        field(o, "server_rss_kib", &opt(m.map(|m| m.1)));
        field(o, "server_pss_base_kib", &opt(base.map(|b| b.0)));
        let per = |now: Option<u64>, then: Option<u64>| match (now, then) {
            (Some(x), Some(y)) if count > 0 => num((x as f64 - y as f64) / count as f64),
            _ => "null".to_owned(),
        };
        field(
            o,
            "server_kib_per_conn",
            &per(m.map(|m| m.0), base.map(|b| b.0)),
        );
        field(
            o,
            "server_rss_kib_per_conn",
            &per(m.map(|m| m.1), base.map(|b| b.1)),
        );
        field(o, "tool_pss_kib", &opt(tool.map(|t| t.0)));
    };

    tokio::time::sleep(settle).await;
    let base = server_memory(pids);
    let tool_base = memory_kib("/proc/self/smaps_rollup");
    let mut o = head("base", 0);
    mem_fields(&mut o, base, 0);
    line(o);

    let mut held: Vec<Held> = Vec::with_capacity(*a.steps.last().unwrap_or(&1));
    let mut next_index = 0usize;
    let mut total_errors = 0u64;
    for &n in &a.steps {
        let opened = open_batch(
            &d,
            (next_index, n),
            a.connect_concurrency,
            rate,
            (&tmpl, timeout),
            &mut held,
        )
        .await;
        let attempted = n - next_index;
        next_index = n;
        total_errors += opened.errors;
        let sw = sweep(&mut held, a.window, duration, timeout, &tmpl, pids).await;
        total_errors += sw.stats.broken + sw.stats.non_200;
        tokio::time::sleep(settle).await;
        let mut o = head("step", held.len());
        field(&mut o, "step", &n.to_string());
        field(
            &mut o,
            "opened",
            &(attempted as u64 - opened.errors).to_string(),
        );
        field(&mut o, "connect_errors", &opened.errors.to_string());
        field(
            &mut o,
            "first_connect_error",
            &opened
                .first_error
                .as_deref()
                .map_or("null".to_owned(), json_str),
        );
        field(&mut o, "connect_s", &num(opened.elapsed.as_secs_f64()));
        field(
            &mut o,
            "connects_per_s",
            &num(attempted as f64 / opened.elapsed.as_secs_f64().max(1e-9)),
        );
        sweep_fields(&mut o, &sw, a.window.min(held.len().max(1)));
        field(&mut o, "errors_so_far", &total_errors.to_string());
        mem_fields(&mut o, base, held.len());
        if let (Some(t), Some(t0)) = (memory_kib("/proc/self/smaps_rollup"), tool_base) {
            field(
                &mut o,
                "tool_kib_per_conn",
                &num((t.0 as f64 - t0.0 as f64) / held.len().max(1) as f64),
            );
        }
        line(o);
    }
    if !hold.is_zero() {
        tokio::time::sleep(hold).await;
        // One sweep: every connection must still answer after the idle time.
        let count = held.len();
        let sw = sweep(&mut held, a.window, Duration::ZERO, timeout, &tmpl, pids).await;
        total_errors += sw.stats.broken + sw.stats.non_200;
        let mut o = head("after_hold", count);
        field(&mut o, "hold_s", &num(hold.as_secs_f64()));
        sweep_fields(&mut o, &sw, a.window.min(count.max(1)));
        field(&mut o, "errors_so_far", &total_errors.to_string());
        mem_fields(&mut o, base, held.len());
        line(o);
    }
    Ok(())
}

fn sweep_fields(o: &mut String, sw: &Sweep, lanes: usize) {
    let s = &sw.stats;
    let secs = sw.elapsed.as_secs_f64().max(1e-9);
    let q = |p: f64| {
        if s.latency_us.is_empty() {
            0
        } else {
            s.latency_us.value_at_quantile(p)
        }
    };
    field(o, "in_flight", &lanes.to_string());
    field(o, "measured_s", &num(secs));
    field(o, "answered", &s.answered.to_string());
    field(o, "answered_per_s", &num(s.answered as f64 / secs));
    field(o, "non_200", &s.non_200.to_string());
    field(o, "broken", &s.broken.to_string());
    field(o, "lat_p50_us", &q(0.5).to_string());
    field(o, "lat_p99_us", &q(0.99).to_string());
    let per_req = |c: Option<Duration>| match c {
        Some(c) if s.answered > 0 => num(c.as_secs_f64() * 1e6 / s.answered as f64),
        _ => "null".to_owned(),
    };
    field(
        o,
        "server_cpu_s",
        &sw.server_cpu
            .map_or("null".to_owned(), |c| num(c.as_secs_f64())),
    );
    field(o, "server_cpu_us_per_req", &per_req(sw.server_cpu));
    field(o, "tool_cpu_us_per_req", &per_req(sw.tool_cpu));
}

/// `sipload handshakes`: prints one JSON line.
pub async fn handshakes(a: &HandshakeArgs, run: u32) -> Result<(), ConnsError> {
    let d = a.dial.dialer()?;
    if d.tls.is_none() {
        return usage("sipload handshakes measures TLS: --transport tls");
    }
    if a.concurrency == 0 {
        return usage("--concurrency must be at least 1");
    }
    let warmup = secs("warmup", a.warmup)?;
    let duration = secs("duration", a.duration)?;
    let timeout = Duration::from_millis(a.dial.timeout_ms);
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let start = Instant::now();
    let end = start + warmup + duration;
    let mut set = JoinSet::new();
    for worker in 0..a.concurrency {
        let (d, done, errors, first_error) = (
            d.clone(),
            Arc::clone(&done),
            Arc::clone(&errors),
            Arc::clone(&first_error),
        );
        let with_options = !a.no_options;
        let stride = u32::try_from(a.concurrency).unwrap_or(1);
        let mut tmpl = RequestTemplate {
            via_transport: "TLS",
            local: d.target,
            uri: format!("sip:{}", d.target),
            run,
            flow: 0,
        };
        set.spawn(async move {
            let (mut wbuf, mut rbuf) = (Vec::with_capacity(1024), Vec::with_capacity(4096));
            let mut k = 0u32;
            while Instant::now() < end {
                // Indices spread the workers over the source addresses.
                let index = k
                    .wrapping_mul(stride)
                    .wrapping_add(u32::try_from(worker).unwrap_or(0));
                k = k.wrapping_add(1);
                let r = match d.open(index).await {
                    Ok(mut h) => {
                        let ok = !with_options
                            || tokio::time::timeout(timeout, async {
                                tmpl.local = h.local;
                                wbuf.clear();
                                tmpl.write_msg(u64::from(k), Method::Options, None, &mut wbuf);
                                exchange_any(&mut h.stream, &wbuf, &mut rbuf).await
                            })
                            .await
                            .is_ok_and(|r| r.is_ok() && status_of(&rbuf) == Some(200));
                        // Abortive close: no TIME_WAIT on either side, so ports never run out.
                        let _ = h.stream.tcp().set_zero_linger();
                        if ok {
                            Ok(())
                        } else {
                            Err("no 200 to the OPTIONS after the handshake".to_owned())
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                match r {
                    Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        if let Ok(mut f) = first_error.lock() {
                            f.get_or_insert(e);
                        }
                        errors.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        });
    }
    tokio::time::sleep_until((start + warmup).into()).await;
    let (n_a, e_a) = (done.load(Ordering::Relaxed), errors.load(Ordering::Relaxed));
    let (server_a, tool_a) = (
        cpu_of(&a.dial.server_pids),
        cpu::process_cpu(Process::Own).ok(),
    );
    let t_a = Instant::now();
    tokio::time::sleep_until(end.into()).await;
    let (n_b, e_b) = (done.load(Ordering::Relaxed), errors.load(Ordering::Relaxed));
    let (server_b, tool_b) = (
        cpu_of(&a.dial.server_pids),
        cpu::process_cpu(Process::Own).ok(),
    );
    let secs = t_a.elapsed().as_secs_f64().max(1e-9);
    // In-progress handshakes finish (bounded by the connect and OPTIONS timeouts).
    while set.join_next().await.is_some() {}
    let n = n_b - n_a;
    let server_cpu = server_a.zip(server_b).map(|(x, y)| y.saturating_sub(x));
    let tool_cpu = tool_a.zip(tool_b).map(|(x, y)| y.saturating_sub(x));
    let mut o = String::with_capacity(512);
    field(
        &mut o,
        "label",
        &a.dial.label.as_deref().map_or("null".to_owned(), json_str),
    );
    field(&mut o, "phase", &json_str("handshakes"));
    field(
        &mut o,
        "tls_version",
        &a.dial.version_name().map_or("null".to_owned(), json_str),
    );
    field(&mut o, "target", &json_str(&d.target.to_string()));
    field(&mut o, "concurrency", &a.concurrency.to_string());
    field(&mut o, "options", &(!a.no_options).to_string());
    field(&mut o, "measured_s", &num(secs));
    field(&mut o, "handshakes", &n.to_string());
    field(&mut o, "handshakes_per_s", &num(n as f64 / secs));
    field(&mut o, "errors", &(e_b - e_a).to_string());
    field(&mut o, "errors_total", &e_b.to_string());
    let first = first_error.lock().ok().and_then(|f| f.clone());
    field(
        &mut o,
        "first_error",
        &first.as_deref().map_or("null".to_owned(), json_str),
    );
    let per = |c: Option<Duration>| match c {
        Some(c) if n > 0 => num(c.as_secs_f64() * 1e6 / n as f64),
        _ => "null".to_owned(),
    };
    field(&mut o, "server_cpu_us_per_handshake", &per(server_cpu));
    field(&mut o, "tool_cpu_us_per_handshake", &per(tool_cpu));
    let util = tool_cpu.map(|c| c.as_secs_f64() / secs);
    let cores = a
        .dial
        .threads()
        .min(cpu::allowed_cpus().unwrap_or(a.dial.threads()))
        .max(1);
    field(
        &mut o,
        "generator_bound",
        &util.is_some_and(|u| u >= 0.9 * cores as f64).to_string(),
    );
    o.pop();
    println!("{{{o}}}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line() {
        assert_eq!(status_of(b"SIP/2.0 200 OK\r\n\r\n"), Some(200));
        assert_eq!(status_of(b"SIP/2.0 503 Busy\r\n\r\n"), Some(503));
        assert_eq!(status_of(b"OPTIONS sip:x SIP/2.0\r\n"), None);
        assert_eq!(status_of(b"SIP/2.0 2"), None);
    }

    async fn answer(reply: &'static [u8]) -> Result<(), ()> {
        let (mut client, mut server) = tokio::io::duplex(4096);
        let peer = tokio::spawn(async move {
            let mut req = [0u8; 64];
            let _ = server.read(&mut req).await;
            let _ = server.write_all(reply).await;
            // Dropped: end of stream after the reply.
        });
        let mut buf = Vec::new();
        let r = exchange(&mut client, b"OPTIONS sip:x SIP/2.0\r\n\r\n", &mut buf).await;
        let _ = peer.await;
        r
    }

    #[tokio::test]
    async fn one_response_per_exchange() {
        assert_eq!(
            answer(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n").await,
            Ok(())
        );
        // CRLF keep-alives before the response are skipped.
        assert_eq!(
            answer(b"\r\n\r\nSIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n").await,
            Ok(())
        );
        // Two messages for one request, a cut response, a closed stream: broken.
        assert_eq!(
            answer(b"SIP/2.0 200 OK\r\n\r\nSIP/2.0 200 OK\r\n\r\n").await,
            Err(())
        );
        assert_eq!(answer(b"SIP/2.0 200 OK\r\nContent-Le").await, Err(()));
        assert_eq!(answer(b"").await, Err(()));
    }

    #[test]
    fn smaps_rollup_of_this_process() {
        let (pss, rss) = memory_kib("/proc/self/smaps_rollup").expect("Linux /proc");
        assert!(pss > 0 && rss >= pss / 2);
        assert_eq!(server_memory(&[]), None);
    }
}
