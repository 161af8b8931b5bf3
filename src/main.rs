//! The `sipwire` binary.
use clap::{Parser, Subcommand};
use std::process::ExitCode;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { .. } => {
            eprintln!("sipwire: the gateway is not built yet");
            ExitCode::SUCCESS
        }
    }
}
