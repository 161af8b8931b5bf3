//! The `sipwire` binary.
use clap::{Parser, Subcommand};
use std::process::ExitCode;

use sipwire_gateway::cli;
use sipwire_gateway::config::{Config, ConfigError};
use sipwire_gateway::logging::{self, LogFormat};
use sipwire_gateway::run::RunOptions;
use sipwire_gateway::sip_log::SipLog;

#[derive(Parser)]
#[command(name = "sipwire", version, about = "SCTP-first SIP transport gateway")]
struct Cli {
    /// Log line format on stderr (levels: SIPWIRE_LOG, default `info`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log SIP message bodies too (trace level); without it bodies are never logged.
    #[arg(long, global = true)]
    log_sip_bodies: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (embedded default configuration when no file is given).
    Run {
        /// Configuration file (TOML); SIGHUP and `sipwire reload` re-read it.
        #[arg(short, long)]
        config: Option<std::path::PathBuf>,
    },
    /// Check a configuration file as `run` would and list every problem with its line.
    CheckConfig(cli::check_config::CheckConfigArgs),
    /// Ask a running gateway to re-read its configuration file (as SIGHUP does).
    Reload(cli::reload::ReloadArgs),
    /// Show or change the log filter of a running gateway (e.g. `sipwire::transport=debug`).
    LogLevel(cli::log_level::LogLevelArgs),
    /// Print the RFC 5923 alias tables of a running gateway (JSON, via its admin socket).
    AliasTable(cli::alias_table::AliasTableArgs),
    /// Print the open flows of a running gateway: connections, SCTP associations, UDP peers.
    Flows(cli::flows::FlowsArgs),
    /// Print the requests a running gateway is relaying (transactions in flight).
    Transactions(cli::transactions::TransactionsArgs),
    /// Parse one SIP message (file or stdin) and show how the codec frames and reads it.
    Parse(cli::parse::ParseArgs),
}

fn run(config: Option<std::path::PathBuf>, opts: RunOptions) -> ExitCode {
    let cfg = match &config {
        Some(path) => Config::load_checked(path),
        None => Config::embedded_default(),
    };
    let cfg = match cfg {
        Ok(c) => c,
        Err(ConfigError::Invalid(i)) => {
            eprint!("{}", i.render_with_source());
            eprintln!("sipwire: {}: invalid configuration, not started", i.origin);
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("sipwire: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match runtime(cfg.proxy.workers) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sipwire: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = RunOptions {
        config_path: config,
        ..opts
    };
    match rt.block_on(sipwire_gateway::run::run(cfg, opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sipwire: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The multi-thread runtime, with a thread per CPU this process may run on (tokio's default)
/// and at least one per proxy core (`[proxy] workers`), so that the cores never share one.
fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cpus.max(workers))
        .enable_all()
        .build()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = logging::init(cli.log_format);
    match cli.command {
        Command::Run { config } => run(
            config,
            RunOptions {
                config_path: None,
                log: Some(log),
                sip_log: SipLog {
                    bodies: cli.log_sip_bodies,
                },
            },
        ),
        Command::CheckConfig(args) => cli::check_config::run(&args),
        Command::Reload(args) => cli::reload::run(&args),
        Command::LogLevel(args) => cli::log_level::run(&args),
        Command::AliasTable(args) => cli::alias_table::run(&args),
        Command::Flows(args) => cli::flows::run(&args),
        Command::Transactions(args) => cli::transactions::run(&args),
        Command::Parse(args) => cli::parse::run(&args),
    }
}
