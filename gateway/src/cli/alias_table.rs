//! `sipwire alias-table`: prints the RFC 5923 alias tables of a running `sipwire run` (JSON),
//! asked over the admin socket in its state directory.

use std::process::ExitCode;

use super::admin_client::AdminTarget;

/// Arguments of `sipwire alias-table`.
#[derive(Debug, clap::Args)]
pub struct AliasTableArgs {
    /// Which gateway.
    #[command(flatten)]
    pub target: AdminTarget,
    /// One line per row (domain, address, transport, identities, flow, origin) instead of JSON.
    #[arg(long)]
    pub text: bool,
}

/// Renders the JSON answer of `alias-table` as one line per row; `None` if it is not one.
pub fn render_text(json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let mut out = String::new();
    for t in v.get("tables")?.as_array()? {
        let domain = t.get("local_domain")?.as_str()?;
        for r in t.get("rows")?.as_array()? {
            let ip = r.get("ip")?.as_str()?;
            let addr = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip.to_owned()
            };
            let ids: Vec<&str> = r
                .get("identities")?
                .as_array()?
                .iter()
                .filter_map(|i| i.as_str())
                .collect();
            out.push_str(&format!(
                "{domain} {addr}:{} {} {} {} {}\n",
                r.get("port")?,
                r.get("transport")?.as_str()?,
                ids.join(","),
                r.get("descriptor")?.as_str()?,
                r.get("origin")?.as_str()?,
            ));
        }
    }
    let c = v.get("counters")?;
    out.push_str(&format!(
        "rows={} reuses={} misses={} added={} removed={}\n",
        c.get("rows")?,
        c.get("reuses")?,
        c.get("misses")?,
        c.get("added")?,
        c.get("removed")?
    ));
    Some(out)
}

/// Runs the subcommand.
pub fn run(args: &AliasTableArgs) -> ExitCode {
    args.target.print("alias-table", args.text, render_text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rendering() {
        let json = r#"{"counters":{"rows":1,"added":1,"updated":0,"removed":0,"reuses":3,"misses":1,"ignored":{}},
            "tables":[{"local_domain":"example.net","rows":[{"ip":"192.0.2.1","port":5061,"transport":"tls",
            "identities":["example.com","p1.example.com"],"descriptor":"tls#18","origin":"Inbound"}]}]}"#;
        assert_eq!(
            render_text(json).expect("valid"),
            "example.net 192.0.2.1:5061 tls example.com,p1.example.com tls#18 Inbound\n\
             rows=1 reuses=3 misses=1 added=1 removed=0\n"
        );
        assert_eq!(render_text("{\"error\":\"x\"}"), None);
    }
}
