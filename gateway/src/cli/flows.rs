//! `sipwire flows`: prints the open flows of a running `sipwire run` — TCP and TLS connections,
//! SCTP associations, remembered UDP peers — asked over the admin socket (JSON, or one line per
//! flow).

use std::process::ExitCode;

use super::admin_client::AdminTarget;

/// Arguments of `sipwire flows`.
#[derive(Debug, clap::Args)]
pub struct FlowsArgs {
    /// Which gateway.
    #[command(flatten)]
    pub target: AdminTarget,
    /// One line per flow (flow, direction, local, peer, identities) instead of JSON.
    #[arg(long)]
    pub text: bool,
}

/// Renders the JSON answer of `flows` as one line per flow; `None` if it is not one.
pub fn render_text(json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let mut out = String::new();
    for f in v.get("flows")?.as_array()? {
        let ids: Vec<&str> = f
            .get("identities")?
            .as_array()?
            .iter()
            .filter_map(|i| i.as_str())
            .collect();
        out.push_str(&format!(
            "{} {} {} {} {}\n",
            f.get("flow")?.as_str()?,
            f.get("direction")?.as_str()?,
            f.get("local")?.as_str()?,
            f.get("peer")?.as_str()?,
            if ids.is_empty() {
                "-".to_owned()
            } else {
                ids.join(",")
            },
        ));
    }
    // Absent from the answers of older gateways.
    for u in v
        .get("udp_sockets")
        .and_then(|u| u.as_array())
        .into_iter()
        .flatten()
    {
        out.push_str(&format!(
            "udp-socket {} recv_buffer={} send_buffer={} kernel_drops={}\n",
            u.get("local")?.as_str()?,
            u.get("recv_buffer")?,
            u.get("send_buffer")?,
            u.get("kernel_drops")?,
        ));
    }
    let s = v.get("stats")?;
    out.push_str(&format!(
        "stream_flows={} sctp_associations={} udp_flows={}\n",
        s.get("stream_flows")?,
        s.get("sctp_associations")?,
        s.get("udp_flows")?
    ));
    Some(out)
}

/// Runs the subcommand.
pub fn run(args: &FlowsArgs) -> ExitCode {
    args.target.print("flows", args.text, render_text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rendering() {
        let json = r#"{"stats":{"stream_flows":1,"udp_flows":0,"sctp_associations":1,"opened_inbound":1,"opened_outbound":0},
            "flows":[{"flow":"sctp#3","transport":"sctp","direction":"inbound","local":"192.0.2.1:5060",
            "peer":"192.0.2.2:5060","identities":[],"server_name":null}]}"#;
        assert_eq!(
            render_text(json).expect("valid"),
            "sctp#3 inbound 192.0.2.1:5060 192.0.2.2:5060 -\n\
             stream_flows=1 sctp_associations=1 udp_flows=0\n"
        );
        assert_eq!(render_text("{\"error\":\"x\"}"), None);
        let json = r#"{"stats":{"stream_flows":0,"udp_flows":0,"sctp_associations":0},"flows":[],
            "udp_sockets":[{"local":"127.0.0.1:5060","recv_buffer":4608,"send_buffer":212992,
            "kernel_drops":3}]}"#;
        assert_eq!(
            render_text(json).expect("valid"),
            "udp-socket 127.0.0.1:5060 recv_buffer=4608 send_buffer=212992 kernel_drops=3\n\
             stream_flows=0 sctp_associations=0 udp_flows=0\n"
        );
    }
}
