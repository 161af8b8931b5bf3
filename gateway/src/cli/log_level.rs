//! `sipwire log-level [DIRECTIVES]`: shows or changes the log filter of a running
//! `sipwire run` (tracing EnvFilter syntax, e.g. `info,sipwire::transport=debug`) without
//! a restart. The change lasts until the process exits; `SIPWIRE_LOG` sets the start value.

use std::process::ExitCode;

use super::admin_client::AdminTarget;

/// Arguments of `sipwire log-level`.
#[derive(Debug, clap::Args)]
pub struct LogLevelArgs {
    /// Which gateway.
    #[command(flatten)]
    pub target: AdminTarget,
    /// The new filter; without it the filter in force is shown.
    pub directives: Option<String>,
}

/// Runs the subcommand: prints the filter in force; exit 1 if the gateway refused.
pub fn run(args: &LogLevelArgs) -> ExitCode {
    let command = match &args.directives {
        Some(d) => format!("log-level {}", d.trim()),
        None => "log-level".to_owned(),
    };
    let json = match args.target.ask(&command) {
        Ok(j) => j,
        Err(code) => return code,
    };
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    match (v["filter"].as_str(), v["error"].as_str()) {
        (Some(f), _) => {
            println!("{f}");
            ExitCode::SUCCESS
        }
        (None, Some(e)) => {
            eprintln!("sipwire: {e}");
            ExitCode::FAILURE
        }
        _ => {
            eprintln!("sipwire: unexpected answer: {}", json.trim());
            ExitCode::FAILURE
        }
    }
}
