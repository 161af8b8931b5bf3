//! `sipload`: sends SIP OPTIONS to a server over UDP, TCP or TLS, closed-loop (N flows,
//! W outstanding each) or open-loop (a total rate), and prints one line of JSON: rates,
//! losses, latency percentiles, its own CPU time (and the server's, given its pids).
//!
//! It depends on no sipwire code so that it measures every build of sipwire (and other
//! servers) with the same instrument. See docs/benchmarks.md.

mod conn;
mod cpu;
mod driver;
mod flow;
mod report;
mod sip;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use tokio::sync::{mpsc, watch};

use conn::{ConnError, Dial, TlsClient, TlsVersion};
use cpu::Process;
use flow::{Budget, Flow, Pace, Schedule, Stats};
use report::Report;

/// Longest run when only `--requests` bounds it.
const MAX_RUN: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TransportArg {
    Udp,
    Tcp,
    Tls,
    /// Not built yet.
    Sctp,
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
    /// N flows, each keeping W requests outstanding.
    Closed,
    /// Requests at a fixed total rate, whatever the responses do.
    Open,
}

/// SIP OPTIONS load generator (closed- or open-loop) printing one JSON line.
#[derive(Debug, Parser)]
#[command(name = "sipload", version)]
struct Args {
    /// Transport.
    #[arg(long, value_enum, default_value = "udp")]
    transport: TransportArg,
    /// Server address [default: 127.0.0.1:5060, 127.0.0.1:5061 for tls].
    #[arg(long)]
    target: Option<SocketAddr>,
    /// Request-URI (and To URI) [default: sip:<target>].
    #[arg(long)]
    uri: Option<String>,
    /// TLS version offered (only that one).
    #[arg(long, value_enum, default_value = "1.3")]
    tls_version: TlsVersionArg,
    /// CA certificate(s) to trust (PEM), required for tls.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Name the server certificate is verified against, also sent as SNI.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// Pacing.
    #[arg(long, value_enum, default_value = "closed")]
    mode: Mode,
    /// Flows: UDP sockets or TCP/TLS connections, one tokio task each.
    #[arg(long, default_value_t = 1)]
    flows: u32,
    /// Closed loop: outstanding requests per flow.
    #[arg(long, default_value_t = 1)]
    window: usize,
    /// Open loop: total requests per second over all flows.
    #[arg(long)]
    rate: Option<f64>,
    /// A request without a final response after this long counts as unanswered.
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// Measured seconds after the warm-up [default: 5 unless --requests is given].
    #[arg(long)]
    duration: Option<f64>,
    /// Stop after this many measured requests (in total).
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
    /// Time allowed to open each flow (TCP connect + TLS handshake).
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
    /// A flow task died.
    Task(tokio::task::JoinError),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Usage(m) => f.write_str(m),
            RunError::Conn(i, e) => write!(f, "flow {i}: {e}"),
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
}

fn secs(name: &str, v: f64) -> Result<Duration, RunError> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| RunError::Usage(format!("--{name} {v}: not a duration in seconds")))
}

fn plan(a: &Args) -> Result<Plan, RunError> {
    let usage = |m: &str| Err(RunError::Usage(m.to_owned()));
    if a.flows == 0 || a.window == 0 || a.threads == 0 || a.timeout_ms == 0 {
        return usage("--flows, --window, --threads and --timeout-ms must be at least 1");
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
    let (dial, port, via_transport) = match a.transport {
        TransportArg::Sctp => {
            return usage("transport sctp is not built yet (SCTP support in sipload comes later)")
        }
        TransportArg::Udp => (Dial::Udp, 5060, "UDP"),
        TransportArg::Tcp => (Dial::Tcp, 5060, "TCP"),
        TransportArg::Tls => {
            let Some(ca) = &a.ca else {
                return usage("--transport tls needs --ca FILE");
            };
            let version = match a.tls_version {
                TlsVersionArg::V12 => TlsVersion::V12,
                TlsVersionArg::V13 => TlsVersion::V13,
            };
            let client =
                TlsClient::new(ca, version, &a.server_name).map_err(|e| RunError::Conn(0, e))?;
            (Dial::Tls(client), 5061, "TLS")
        }
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
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let plan = match plan(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sipload: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sipload: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
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
    let flow = Flow::new(pace, schedule, f.timeout, f.budget);
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
            timeout: Duration::from_millis(a.timeout_ms),
            connect_timeout: Duration::from_millis(a.connect_timeout_ms),
            budget: plan.budget.clone(),
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
        transport: match a.transport {
            TransportArg::Udp => "udp",
            TransportArg::Tcp => "tcp",
            TransportArg::Tls | TransportArg::Sctp => "tls",
        },
        tls_version: matches!(a.transport, TransportArg::Tls).then_some(match a.tls_version {
            TlsVersionArg::V12 => "1.2",
            TlsVersionArg::V13 => "1.3",
        }),
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
