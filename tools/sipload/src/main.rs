//! `sipload`: sends SIP OPTIONS, or calls (INVITE / 200 / ACK / BYE / 200), to a server over
//! UDP, TCP, TLS, SCTP, TLS-SCTP or DTLS-SCTP, closed-loop (N flows, W outstanding each) or open-loop (a
//! total rate), retransmitting over UDP as RFC 3261 says, and prints one line of JSON: rates,
//! losses, retransmissions, latency percentiles, its own CPU time (and the server's, given its
//! pids). `sipload serve` is a stateless UAS (the callee of a proxy benchmark).
//!
//! Its UDP, TCP, TLS, SCTP and TLS-SCTP code depends on no sipwire code, so that it measures
//! every build of sipwire (and other servers) with the same instrument; DTLS-SCTP goes through
//! the sipwire library's transport (no second DTLS stack). See docs/benchmarks.md.

mod conn;
mod conns;
mod cpu;
mod driver;
mod dtls_sctp;
mod flow;
mod report;
mod serve;
mod sip;
mod tls_sctp;
mod uas;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use tokio::sync::{mpsc, watch};

use conn::{ConnError, Dial, TlsClient, TlsVersion};
use cpu::Process;
use flow::{Budget, Flow, Pace, Retransmit, Scenario, Schedule, Stats};
use report::Report;

/// Longest timeout or retransmission timer accepted: one day.
const MAX_TIMER_MS: u64 = 86_400_000;

/// Longest run when only `--requests` bounds it.
const MAX_RUN: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TransportArg {
    Udp,
    Tcp,
    Tls,
    /// SCTP (RFC 4168), one association per flow (needs kernel SCTP).
    Sctp,
    /// TLS over SCTP (RFC 3436): one TLS session per stream.
    #[value(name = "tls-sctp")]
    TlsSctp,
    /// DTLS over SCTP (RFC 6083) through sipwire's transport: DTLS 1.2 per association,
    /// SCTP-AUTH on (needs net.sctp.auth_enable = 1); the library picks the streams.
    #[value(name = "dtls-sctp")]
    DtlsSctp,
}

impl TransportArg {
    fn name(self) -> &'static str {
        match self {
            TransportArg::Udp => "udp",
            TransportArg::Tcp => "tcp",
            TransportArg::Tls => "tls",
            TransportArg::Sctp => "sctp",
            TransportArg::TlsSctp => "tls-sctp",
            TransportArg::DtlsSctp => "dtls-sctp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ScenarioArg {
    /// One OPTIONS per item.
    Options,
    /// A call per item: INVITE → (1xx) → 200 → ACK → BYE → 200, through any proxy that
    /// record-routes or not.
    Call,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TlsVersionArg {
    #[value(name = "1.2")]
    V12,
    #[value(name = "1.3")]
    V13,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// N flows, each keeping W items outstanding.
    Closed,
    /// Items at a fixed total rate, whatever the responses do.
    Open,
}

/// SIP load generator: OPTIONS or calls, over UDP, TCP, TLS, SCTP or TLS-SCTP, closed- or
/// open-loop, printing one JSON line; `sipload serve` is a stateless UAS to call.
#[derive(Debug, Parser)]
#[command(
    name = "sipload",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "An item is one OPTIONS transaction or one call. Over UDP requests are \
                  retransmitted (Timer A for INVITE, Timer E otherwise; --t1-ms, --no-retransmit); \
                  over TCP, TLS and SCTP never. The JSON line counts sent/answered/non_200/\
                  unanswered items, duplicates, retransmissions, latency (INVITE or OPTIONS; \
                  bye_lat_* for BYE), and its own CPU use (generator_bound: the generator used \
                  90% or more of its cores, so the numbers say more about it than the server)."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    load: Args,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Stateless UAS: answers INVITE with 200 (and Contact, Record-Route, SDP; optionally 100
    /// first), ACK with nothing, anything else with 200. Prints {"listening":ADDR,...} and runs
    /// until killed.
    Serve(ServeArgs),
    /// Holds many idle TCP/TLS connections (in steps, from several source addresses) and
    /// prints the server's memory and OPTIONS throughput at each count, one JSON line each.
    Conns(conns::ConnsArgs),
    /// Full TLS handshakes per second (no resumption), one JSON line.
    Handshakes(conns::HandshakeArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Transport (one per process).
    #[arg(long, value_enum, default_value = "udp")]
    transport: TransportArg,
    /// Address to listen on (port 0: any, printed).
    #[arg(long, default_value = "127.0.0.1:5080")]
    listen: SocketAddr,
    /// Certificate chain (PEM), for tls, tls-sctp and dtls-sctp.
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Private key (PEM), for tls, tls-sctp and dtls-sctp.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Send 100 Trying before the 200 to INVITE.
    #[arg(long)]
    trying: bool,
    /// Runtime threads: 1 is a current_thread runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// Load options (the default command).
#[derive(Debug, clap::Args)]
struct Args {
    /// Transport.
    #[arg(long, value_enum, default_value = "udp")]
    transport: TransportArg,
    /// What each item is.
    #[arg(long, value_enum, default_value = "options")]
    scenario: ScenarioArg,
    /// Server address [default: 127.0.0.1:5060, 127.0.0.1:5061 for tls, tls-sctp and dtls-sctp].
    #[arg(long)]
    target: Option<SocketAddr>,
    /// Request-URI (and To URI) [default: sip:<target>]; through a proxy, the callee (e.g.
    /// sip:uas@IP:PORT of `sipload serve`).
    #[arg(long)]
    uri: Option<String>,
    /// TLS version offered (only that one).
    #[arg(long, value_enum, default_value = "1.3")]
    tls_version: TlsVersionArg,
    /// CA certificate(s) to trust (PEM), required for tls, tls-sctp and dtls-sctp.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Name the server certificate is verified against, also sent as SNI.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// Pacing.
    #[arg(long, value_enum, default_value = "closed")]
    mode: Mode,
    /// Flows: UDP sockets, TCP/TLS connections or SCTP associations, one tokio task each.
    #[arg(long, default_value_t = 1)]
    flows: u32,
    /// Closed loop: outstanding items (requests or calls) per flow.
    #[arg(long, default_value_t = 1)]
    window: usize,
    /// Open loop: total items (requests or calls) per second over all flows.
    #[arg(long)]
    rate: Option<f64>,
    /// A transaction without a final response after this long makes its item unanswered
    /// [default: 1000 for options, 64 × T1 for call].
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// UDP retransmission timer T1 (RFC 3261 §17: the first interval; doubling).
    #[arg(long, default_value_t = 500)]
    t1_ms: u64,
    /// UDP: cap of the non-INVITE retransmission interval (T2).
    #[arg(long, default_value_t = 4000)]
    t2_ms: u64,
    /// UDP: never retransmit.
    #[arg(long)]
    no_retransmit: bool,
    /// SCTP and TLS-SCTP: outbound streams per association; item N goes on stream N mod this
    /// (TLS-SCTP: one TLS session on each, set up before the run).
    #[arg(long, default_value_t = 4)]
    sctp_streams: u16,
    /// Measured seconds after the warm-up [default: 5 unless --requests is given].
    #[arg(long)]
    duration: Option<f64>,
    /// Stop after this many measured items (in total).
    #[arg(long)]
    requests: Option<u64>,
    /// Seconds of load before measuring starts (not counted).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Runtime threads: 1 is a current_thread runtime (pin it with taskset).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Also report the CPU time of these processes over the measured window (repeatable;
    /// give every process of a multi-process server).
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    /// Time allowed to open each flow (connect + TLS handshakes).
    #[arg(long, default_value_t = 5000)]
    connect_timeout_ms: u64,
    /// Free text copied into the JSON (`label`).
    #[arg(long)]
    label: Option<String>,
}

/// A run that could not take place.
#[derive(Debug)]
enum RunError {
    /// The arguments contradict each other.
    Usage(String),
    /// A flow could not be opened.
    Conn(u32, ConnError),
    /// The transport cannot be used here (no kernel SCTP).
    Unavailable(&'static str, ConnError),
    /// A flow task died.
    Task(tokio::task::JoinError),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Usage(m) => f.write_str(m),
            RunError::Conn(i, e) => write!(f, "flow {i}: {e}"),
            RunError::Unavailable(t, e) => write!(f, "--transport {t}: {e}"),
            RunError::Task(e) => write!(f, "flow task: {e}"),
        }
    }
}

/// Checked settings.
struct Plan {
    dial: Dial,
    target: SocketAddr,
    uri: String,
    via_transport: &'static str,
    warmup: Duration,
    duration: Option<Duration>,
    budget: Budget,
    rate: Option<f64>,
    timeout: Duration,
    rtx: Option<Retransmit>,
}

fn secs(name: &str, v: f64) -> Result<Duration, RunError> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| RunError::Usage(format!("--{name} {v}: not a duration in seconds")))
}

fn plan(a: &Args) -> Result<Plan, RunError> {
    let usage = |m: &str| Err(RunError::Usage(m.to_owned()));
    if a.flows == 0
        || a.window == 0
        || a.threads == 0
        || a.timeout_ms == Some(0)
        || a.t1_ms == 0
        || a.sctp_streams == 0
    {
        return usage(
            "--flows, --window, --threads, --timeout-ms, --t1-ms and --sctp-streams must be at least 1",
        );
    }
    if a.t2_ms < a.t1_ms {
        return usage("--t2-ms must be at least --t1-ms");
    }
    // Keeps every deadline (start + timeout, doubled intervals) far from Instant's range.
    if a.timeout_ms
        .unwrap_or(0)
        .max(a.t2_ms)
        .max(a.t1_ms.saturating_mul(64))
        > MAX_TIMER_MS
    {
        return usage("--timeout-ms, --t2-ms and 64 × --t1-ms must not exceed one day");
    }
    let rate = match (a.mode, a.rate) {
        (Mode::Open, Some(r)) if r.is_finite() && r > 0.0 => Some(r),
        (Mode::Open, _) => return usage("--mode open needs --rate > 0"),
        (Mode::Closed, Some(_)) => return usage("--rate is for --mode open"),
        (Mode::Closed, None) => None,
    };
    if a.mode == Mode::Open && a.window != 1 {
        return usage("--window is for --mode closed");
    }
    let tls_client = || {
        let Some(ca) = &a.ca else {
            return Err(RunError::Usage(format!(
                "--transport {} needs --ca FILE",
                a.transport.name()
            )));
        };
        let version = match a.tls_version {
            TlsVersionArg::V12 => TlsVersion::V12,
            TlsVersionArg::V13 => TlsVersion::V13,
        };
        TlsClient::new(ca, version, &a.server_name).map_err(|e| RunError::Conn(0, e))
    };
    let sctp = || conn::check_sctp().map_err(|e| RunError::Unavailable(a.transport.name(), e));
    let (dial, port, via_transport) = match a.transport {
        TransportArg::DtlsSctp => {
            let Some(ca) = &a.ca else {
                return usage("--transport dtls-sctp needs --ca FILE");
            };
            let client = dtls_sctp::DtlsClient::new(ca, &a.server_name)
                .map_err(|e| RunError::Conn(0, ConnError::DtlsSctp(e)))?;
            sctp()?;
            (Dial::DtlsSctp(client), 5061, dtls_sctp::VIA)
        }
        TransportArg::Udp => (Dial::Udp, 5060, "UDP"),
        TransportArg::Tcp => (Dial::Tcp, 5060, "TCP"),
        TransportArg::Tls => (Dial::Tls(tls_client()?), 5061, "TLS"),
        TransportArg::Sctp => {
            sctp()?;
            (Dial::Sctp(a.sctp_streams, None), 5060, "SCTP")
        }
        TransportArg::TlsSctp => {
            let client = tls_client()?;
            sctp()?;
            (Dial::Sctp(a.sctp_streams, Some(client)), 5061, "TLS-SCTP")
        }
    };
    let t1 = Duration::from_millis(a.t1_ms);
    let rtx = (a.transport == TransportArg::Udp && !a.no_retransmit).then_some(Retransmit {
        t1,
        t2: Duration::from_millis(a.t2_ms),
    });
    let timeout = match (a.timeout_ms, a.scenario) {
        (Some(ms), _) => Duration::from_millis(ms),
        (None, ScenarioArg::Options) => Duration::from_millis(1000),
        (None, ScenarioArg::Call) => t1 * 64,
    };
    let target = a
        .target
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], port)));
    let duration = match (a.duration, a.requests) {
        (Some(d), _) => Some(secs("duration", d)?),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(5)),
    };
    Ok(Plan {
        dial,
        target,
        uri: a.uri.clone().unwrap_or_else(|| format!("sip:{target}")),
        via_transport,
        warmup: secs("warmup", a.warmup)?,
        duration,
        budget: a.requests.map(Budget::limited).unwrap_or_default(),
        rate,
        timeout,
        rtx,
    })
}

fn runtime(threads: usize) -> Option<tokio::runtime::Runtime> {
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    rt.map_err(|e| eprintln!("sipload: cannot start the runtime: {e}"))
        .ok()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Some(Cmd::Serve(s)) => return serve_main(&s),
        Some(Cmd::Conns(c)) => return conns_main(c.threads(), conns::conns(&c, run_id())),
        Some(Cmd::Handshakes(h)) => {
            return conns_main(h.threads(), conns::handshakes(&h, run_id()))
        }
        None => {}
    }
    let args = cli.load;
    let plan = match plan(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sipload: {e}");
            return match e {
                RunError::Usage(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            };
        }
    };
    let Some(rt) = runtime(args.threads) else {
        return ExitCode::FAILURE;
    };
    match rt.block_on(run(&args, plan)) {
        Ok(report) => {
            println!("{}", report.to_json());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sipload: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `sipload conns` or `sipload handshakes`.
fn conns_main(
    threads: usize,
    f: impl std::future::Future<Output = Result<(), conns::ConnsError>>,
) -> ExitCode {
    let Some(rt) = runtime(threads) else {
        return ExitCode::FAILURE;
    };
    match rt.block_on(f) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sipload: {e}");
            match e {
                conns::ConnsError::Usage(_) => ExitCode::from(2),
                conns::ConnsError::Conn(_) => ExitCode::FAILURE,
            }
        }
    }
}

fn serve_main(s: &ServeArgs) -> ExitCode {
    let listen = match s.transport {
        TransportArg::Udp => serve::Listen::Udp,
        TransportArg::Tcp => serve::Listen::Tcp,
        TransportArg::Tls => serve::Listen::Tls,
        TransportArg::Sctp => serve::Listen::Sctp,
        TransportArg::TlsSctp => serve::Listen::TlsSctp,
        TransportArg::DtlsSctp => serve::Listen::DtlsSctp,
    };
    let tls = match (listen, &s.cert, &s.key) {
        (serve::Listen::DtlsSctp, Some(_), Some(_)) => None,
        (serve::Listen::Tls | serve::Listen::TlsSctp, Some(c), Some(k)) => {
            match serve::tls_config(c, k) {
                Ok(c) => Some(c),
                Err(e) => {
                    eprintln!("sipload serve: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        (serve::Listen::Tls | serve::Listen::TlsSctp | serve::Listen::DtlsSctp, _, _) => {
            eprintln!(
                "sipload serve: --transport {} needs --cert and --key",
                s.transport.name()
            );
            return ExitCode::from(2);
        }
        _ => None,
    };
    if matches!(
        listen,
        serve::Listen::Sctp | serve::Listen::TlsSctp | serve::Listen::DtlsSctp
    ) {
        if let Err(e) = conn::check_sctp() {
            eprintln!("sipload serve: --transport {}: {e}", s.transport.name());
            return ExitCode::FAILURE;
        }
    }
    let Some(rt) = runtime(s.threads.max(1)) else {
        return ExitCode::FAILURE;
    };
    let files = s.cert.as_deref().zip(s.key.as_deref());
    match rt.block_on(serve::serve(listen, s.listen, tls, files, s.trying)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sipload serve: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A per-run id in every branch and Call-ID, so that a late response from an earlier run
/// is never taken for one of ours.
fn run_id() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    nanos ^ std::process::id().rotate_left(16)
}

fn cpu_of(pids: &[u32]) -> Option<Duration> {
    pids.iter()
        .map(|&p| cpu::process_cpu(Process::Pid(p)).ok())
        .sum()
}

/// What one flow task needs besides the start signal.
struct FlowSetup {
    index: u32,
    flows: u32,
    run: u32,
    dial: Dial,
    target: SocketAddr,
    uri: String,
    via_transport: &'static str,
    mode: Mode,
    window: usize,
    rate: Option<f64>,
    timeout: Duration,
    connect_timeout: Duration,
    budget: Budget,
    scenario: Scenario,
    rtx: Option<Retransmit>,
}

type Ready = Result<Option<String>, (u32, ConnError)>;

/// One flow: open it, report ready (with the TLS cipher), wait for the schedule, run.
async fn flow_task(
    f: FlowSetup,
    ready: mpsc::Sender<Ready>,
    mut go: watch::Receiver<Option<Schedule>>,
) -> Stats {
    let opened = conn::open(&f.dial, f.target, f.connect_timeout)
        .await
        .and_then(|c| {
            let local = c
                .local_addr()
                .map_err(|e| ConnError::Io("local address", e))?;
            Ok((c, local))
        });
    let (conn, local) = match opened {
        Ok(x) => x,
        Err(e) => {
            let _ = ready.send(Err((f.index, e))).await;
            return Stats::default();
        }
    };
    let _ = ready.send(Ok(conn.tls_cipher())).await;
    drop(ready);
    // The sender goes away without a schedule when another flow failed to open.
    let Ok(Some(schedule)) = go.wait_for(Option::is_some).await.map(|s| *s) else {
        return Stats::default();
    };
    let pace = match (f.mode, f.rate) {
        (Mode::Open, Some(rate)) => {
            let interval = Duration::from_secs_f64(f64::from(f.flows) / rate);
            // Flows are staggered over one interval so that they do not send in bursts.
            let first = schedule.start + interval.mul_f64(f64::from(f.index) / f64::from(f.flows));
            Pace::Open { interval, first }
        }
        _ => Pace::Closed { window: f.window },
    };
    let tmpl = sip::RequestTemplate {
        via_transport: f.via_transport,
        local,
        uri: f.uri,
        run: f.run,
        flow: f.index,
    };
    let flow = Flow::new(pace, schedule, f.timeout, f.budget)
        .with_scenario(f.scenario)
        .with_retransmit(f.rtx);
    driver::run(conn, tmpl, flow, schedule.start).await
}

async fn run(a: &Args, plan: Plan) -> Result<Report, RunError> {
    let run = run_id();
    let (ready_tx, mut ready_rx) = mpsc::channel::<Ready>(a.flows as usize);
    let (go_tx, go_rx) = watch::channel::<Option<Schedule>>(None);
    let mut tasks = Vec::with_capacity(a.flows as usize);
    for index in 0..a.flows {
        let setup = FlowSetup {
            index,
            flows: a.flows,
            run,
            dial: plan.dial.clone(),
            target: plan.target,
            uri: plan.uri.clone(),
            via_transport: plan.via_transport,
            mode: a.mode,
            window: a.window,
            rate: plan.rate,
            timeout: plan.timeout,
            connect_timeout: Duration::from_millis(a.connect_timeout_ms),
            budget: plan.budget.clone(),
            scenario: match a.scenario {
                ScenarioArg::Options => Scenario::Options,
                ScenarioArg::Call => Scenario::Call,
            },
            rtx: plan.rtx,
        };
        tasks.push(tokio::spawn(flow_task(
            setup,
            ready_tx.clone(),
            go_rx.clone(),
        )));
    }
    drop(ready_tx);
    let mut tls_cipher = None;
    for _ in 0..a.flows {
        match ready_rx.recv().await {
            Some(Ok(cipher)) => tls_cipher = tls_cipher.or(cipher),
            Some(Err((i, e))) => return Err(RunError::Conn(i, e)),
            None => break,
        }
    }

    // Everything is connected: start now.
    let start = Instant::now();
    let warm_end = start + plan.warmup;
    let end = warm_end + plan.duration.unwrap_or(MAX_RUN);
    let schedule = Schedule {
        start,
        warm_end,
        end,
    };
    let _ = go_tx.send(Some(schedule));

    tokio::time::sleep_until(warm_end.into()).await;
    let t_a = Instant::now();
    let own_a = cpu::process_cpu(Process::Own).ok();
    let server_a = cpu_of(&a.server_pids);
    if a.requests.is_some() {
        // Bounded by `end` as well; the budget is checked often enough for a 1% window error at 1 s.
        while Instant::now() < end && !plan.budget.spent() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    } else {
        tokio::time::sleep_until(end.into()).await;
    }
    let t_b = Instant::now();
    let own_b = cpu::process_cpu(Process::Own).ok();
    let server_b = cpu_of(&a.server_pids);

    let mut total = Stats::default();
    for t in tasks {
        total.merge(&t.await.map_err(RunError::Task)?);
    }
    let window = t_b.saturating_duration_since(t_a);
    let cores = a
        .threads
        .min(cpu::allowed_cpus().unwrap_or(a.threads))
        .max(1);
    Ok(Report {
        label: a.label.clone(),
        transport: a.transport.name(),
        scenario: match a.scenario {
            ScenarioArg::Options => "options",
            ScenarioArg::Call => "call",
        },
        t1_ms: plan.rtx.map(|r| r.t1.as_millis() as u64),
        sctp_streams: matches!(a.transport, TransportArg::Sctp | TransportArg::TlsSctp)
            .then_some(a.sctp_streams),
        tls_version: matches!(a.transport, TransportArg::Tls | TransportArg::TlsSctp).then_some(
            match a.tls_version {
                TlsVersionArg::V12 => "1.2",
                TlsVersionArg::V13 => "1.3",
            },
        ),
        tls_cipher,
        mode: match a.mode {
            Mode::Closed => "closed",
            Mode::Open => "open",
        },
        target: plan.target,
        flows: a.flows,
        window: a.window,
        rate_target: plan.rate,
        warmup: plan.warmup,
        measured: window,
        stats: total,
        tool_cpu: own_a.zip(own_b).map(|(x, y)| y.saturating_sub(x)),
        tool_cores: cores,
        server_cpu: (!a.server_pids.is_empty())
            .then(|| server_a.zip(server_b).map(|(x, y)| y.saturating_sub(x)))
            .flatten(),
        server_pids: a.server_pids.len(),
    })
}
