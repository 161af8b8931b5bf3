//! `sipwire transactions`: prints the requests a running `sipwire run` is relaying (Call-ID,
//! method, branches tried, whether the final response went up), asked over the admin socket
//! (JSON, or one line per request).

use std::process::ExitCode;

use super::admin_client::AdminTarget;

/// Arguments of `sipwire transactions`.
#[derive(Debug, clap::Args)]
pub struct TransactionsArgs {
    /// Which gateway.
    #[command(flatten)]
    pub target: AdminTarget,
    /// One line per request instead of JSON.
    #[arg(long)]
    pub text: bool,
}

/// Renders the JSON answer of `transactions` as one line per request; `None` if it is not one.
pub fn render_text(json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let mut out = String::new();
    for t in v.get("transactions")?.as_array()? {
        let state = if t.get("final_sent")?.as_bool()? {
            "answered"
        } else if t.get("resolving")?.as_bool()? {
            "resolving"
        } else {
            "in-flight"
        };
        out.push_str(&format!(
            "{} {} branches={} {}{}\n",
            t.get("method")?.as_str()?,
            t.get("call_id")?.as_str()?,
            t.get("branches")?,
            state,
            if t.get("cancelled")?.as_bool()? {
                " cancelled"
            } else {
                ""
            },
        ));
    }
    out.push_str(&format!("in_flight={}\n", v.get("in_flight")?));
    Some(out)
}

/// Runs the subcommand.
pub fn run(args: &TransactionsArgs) -> ExitCode {
    args.target.print("transactions", args.text, render_text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rendering() {
        let json = r#"{"in_flight":1,"transactions":[{"call_id":"a@x","method":"INVITE","stateful":true,
            "branches":2,"resolving":false,"cancelled":false,"final_sent":false}]}"#;
        assert_eq!(
            render_text(json).expect("valid"),
            "INVITE a@x branches=2 in-flight\nin_flight=1\n"
        );
        assert_eq!(render_text("{\"error\":\"x\"}"), None);
    }
}
