//! `sipwire check-config FILE`: the checks `sipwire run` makes before it binds anything
//! (syntax, keys and types, the rules spanning several fields, every certificate, key and
//! CA file loading), all problems at once with their line and column, without starting.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{Config, ConfigError};

/// Arguments of `sipwire check-config`.
#[derive(Debug, clap::Args)]
pub struct CheckConfigArgs {
    /// The configuration file (TOML) to check.
    pub file: PathBuf,
}

/// The one-line summary of a valid configuration: its listeners, domains and capture.
pub fn summary(path: &Path, cfg: &Config) -> String {
    let listeners: Vec<String> = cfg
        .listeners
        .iter()
        .map(|l| format!("{} ({} {})", l.name, l.transport, l.addr))
        .collect();
    let domains = cfg.domains();
    let capture = cfg.capture.as_ref().map_or(String::new(), |c| {
        format!(
            "; capture to {} {} (capture id {})",
            c.transport.as_str(),
            c.collector,
            c.capture_id
        )
    });
    let relay = format!(
        "; relay {}, {} route{}",
        if cfg.proxy.stateful {
            "stateful"
        } else {
            "stateless"
        },
        cfg.routes.len(),
        plural(cfg.routes.len())
    );
    format!(
        "{}: valid; {} listener{}: {}; {} domain{}: {}{capture}{relay}",
        path.display(),
        listeners.len(),
        plural(listeners.len()),
        none_if_empty(&listeners.join(", ")),
        domains.len(),
        plural(domains.len()),
        none_if_empty(&domains.join(", ")),
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn none_if_empty(s: &str) -> &str {
    if s.is_empty() {
        "none"
    } else {
        s
    }
}

/// Runs the subcommand: exit 0 and the summary on stdout when valid; 1 and every problem
/// on stderr when not; 2 when the file cannot be read.
pub fn run(args: &CheckConfigArgs) -> ExitCode {
    match Config::load_checked(&args.file) {
        Ok(cfg) => {
            println!("{}", summary(&args.file, &cfg));
            ExitCode::SUCCESS
        }
        Err(ConfigError::Invalid(invalid)) => {
            eprint!("{}", invalid.render_with_source());
            let n = invalid.problems.len();
            eprintln!("{}: invalid, {n} problem{}", invalid.origin, plural(n));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("sipwire: {e}");
            ExitCode::from(2)
        }
    }
}
