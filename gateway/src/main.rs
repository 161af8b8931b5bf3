//! The `sipwire` binary.
use clap::{Parser, Subcommand};
use std::process::ExitCode;

use sipwire_gateway::config::Config;

#[derive(Parser)]
#[command(name = "sipwire", version, about = "SCTP-first SIP transport gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (embedded default configuration when no file is given).
    Run {
        /// Configuration file (TOML).
        #[arg(short, long)]
        config: Option<std::path::PathBuf>,
    },
    /// Parse one SIP message (file or stdin) and show framing, start line, top Via,
    /// Call-ID, CSeq and Content-Length, or the parse error.
    Parse(sipwire_gateway::cli::parse::ParseArgs),
    /// Print the RFC 5923 alias tables of a running `sipwire run` (JSON, via its admin
    /// socket).
    AliasTable(sipwire_gateway::cli::alias_table::AliasTableArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SIPWIRE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Run { config } => {
            let cfg = match config {
                Some(path) => Config::load(&path),
                None => Config::embedded_default(),
            };
            let cfg = match cfg {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("sipwire: {e}");
                    return ExitCode::from(2);
                }
            };
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("sipwire: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(sipwire_gateway::run::run(cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sipwire: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Parse(args) => sipwire_gateway::cli::parse::run(&args),
        Command::AliasTable(args) => sipwire_gateway::cli::alias_table::run(&args),
    }
}
