//! The client side of the admin socket for the subcommands that talk to a running
//! `sipwire run` (`alias-table`, `reload`, `log-level`): which socket, and one request.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::admin;
use crate::config::Config;

/// How long a subcommand waits for the gateway's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(35);

/// Which gateway to ask: the admin socket lives in its state directory.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminTarget {
    /// The gateway's configuration file (its `[state] dir` holds the admin socket).
    #[arg(short, long, conflicts_with = "state_dir")]
    pub config: Option<PathBuf>,
    /// The gateway's state directory (default: as `sipwire run` chooses it).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

impl AdminTarget {
    /// The state directory holding the socket.
    pub fn state_dir(&self) -> Result<PathBuf, crate::config::ConfigError> {
        match (&self.state_dir, &self.config) {
            (Some(d), _) => Ok(d.clone()),
            (None, Some(path)) => Ok(Config::load(path)?.state.dir),
            (None, None) => Ok(Config::embedded_default()?.state.dir),
        }
    }

    /// Sends `command` and returns the answer (JSON); on failure the error is printed and
    /// the exit code returned.
    pub fn ask(&self, command: &str) -> Result<String, ExitCode> {
        let dir = self.state_dir().map_err(|e| {
            eprintln!("sipwire: {e}");
            ExitCode::from(2)
        })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                eprintln!("sipwire: cannot start the runtime: {e}");
                ExitCode::FAILURE
            })?;
        rt.block_on(async {
            tokio::time::timeout(ANSWER_TIMEOUT, admin::query(&dir, command))
                .await
                .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
        })
        .map_err(|e| {
            eprintln!("sipwire: {e}");
            ExitCode::FAILURE
        })
    }

    /// Asks `command` and prints the answer: the JSON as it came, or with `text` what
    /// `render` makes of it (an answer it cannot read is an error).
    pub fn print(&self, command: &str, text: bool, render: fn(&str) -> Option<String>) -> ExitCode {
        let json = match self.ask(command) {
            Ok(j) => j,
            Err(code) => return code,
        };
        if !text {
            print!("{json}");
            return ExitCode::SUCCESS;
        }
        match render(&json) {
            Some(t) => {
                print!("{t}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("sipwire: unexpected answer: {json}");
                ExitCode::FAILURE
            }
        }
    }
}
