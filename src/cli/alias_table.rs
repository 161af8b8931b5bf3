//! `sipwire alias-table`: prints the RFC 5923 alias tables of a running `sipwire run` (JSON),
//! asked over the admin socket in its state directory.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::gateway::admin;
use crate::gateway::config::Config;

/// Arguments of `sipwire alias-table`.
#[derive(Debug, clap::Args)]
pub struct AliasTableArgs {
    /// The gateway's configuration file (its `[state] dir` holds the admin socket).
    #[arg(short, long, conflicts_with = "state_dir")]
    pub config: Option<PathBuf>,
    /// The gateway's state directory (default: as `sipwire run` chooses it).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

/// Runs the subcommand.
pub fn run(args: &AliasTableArgs) -> ExitCode {
    let dir = match (&args.state_dir, &args.config) {
        (Some(d), _) => d.clone(),
        (None, Some(path)) => match Config::load(path) {
            Ok(c) => c.state.dir,
            Err(e) => {
                eprintln!("sipwire: {e}");
                return ExitCode::from(2);
            }
        },
        (None, None) => match Config::embedded_default() {
            Ok(c) => c.state.dir,
            Err(e) => {
                eprintln!("sipwire: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sipwire: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let r = rt.block_on(async {
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            admin::query(&dir, "alias-table"),
        )
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
    });
    match r {
        Ok(json) => {
            print!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sipwire: {e}");
            ExitCode::FAILURE
        }
    }
}
