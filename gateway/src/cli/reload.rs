//! `sipwire reload`: asks a running `sipwire run` to re-read its configuration (as SIGHUP
//! does) and prints what changed, what needs a restart, or why the file was refused.

use std::process::ExitCode;

use super::admin_client::AdminTarget;
use crate::reload::ReloadOutcome;

/// Arguments of `sipwire reload`.
#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    /// Which gateway.
    #[command(flatten)]
    pub target: AdminTarget,
    /// Print the gateway's JSON answer instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The answer as text, one line per item.
pub fn render_text(o: &ReloadOutcome) -> String {
    let mut s = String::new();
    let source = o.config.as_deref().unwrap_or("certificate files");
    if o.reloaded {
        s.push_str(&format!("reloaded from {source}\n"));
    } else {
        s.push_str(&format!(
            "refused, the old configuration stays ({source})\n"
        ));
    }
    for a in &o.applied {
        s.push_str(&format!("applied: {a}\n"));
    }
    for r in &o.needs_restart {
        s.push_str(&format!("needs a restart (not applied): {r}\n"));
    }
    for e in &o.errors {
        s.push_str(&format!("error: {e}\n"));
    }
    s
}

/// Runs the subcommand: exit 0 when the gateway reloaded, 1 when it refused.
pub fn run(args: &ReloadArgs) -> ExitCode {
    let json = match args.target.ask("reload") {
        Ok(j) => j,
        Err(code) => return code,
    };
    let outcome: ReloadOutcome = match serde_json::from_str(&json) {
        Ok(o) => o,
        Err(_) => {
            eprintln!("sipwire: {}", json.trim());
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        print!("{json}");
    } else {
        print!("{}", render_text(&outcome));
    }
    if outcome.reloaded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
