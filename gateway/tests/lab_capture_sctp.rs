//! HEP v3 capture of SIP over SCTP and TLS over SCTP, against the real consumer, in the lab
//! VM (kernel SCTP): `sipwire run` on host gw mirrors to sngrep on gw's loopback (`sngrep -N
//! -q -L udp:... -O FILE.pcap`); a UA on host ua sends OPTIONS over an SCTP association and
//! over a TLS-SCTP one, and `tshark -r FILE.pcap` shows each request and each response as the
//! SIP message that travelled, with its addresses and ports (for TLS-SCTP, the plaintext: only
//! HEP can have put it there). Needs root, kernel SCTP, sngrep and tshark.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use sipwire::transport::{Transport, TransportConfig};
use sipwire::{Target, TransportKind};
use sipwire_lab::Topology;
use support::capture::{exchange, require, wait_for, Seen, Sngrep};
use support::poll::WAIT;
use support::sip::request;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

#[test]
fn lab_sngrep_receives_sctp_and_tls_sctp_messages_and_tshark_reads_them() {
    require("sngrep", "sngrep", "-V");
    require("tshark", "tshark", "-v");
    let mut lab = Topology::new().expect("lab (run as root)");
    let ua = lab.host("ua").expect("host");
    let gw_host = lab.host("gw").expect("host");
    lab.link(&ua, &["192.0.2.2/24"], &gw_host, &["192.0.2.1/24"])
        .expect("link");
    let dir = tempfile::tempdir().expect("tempdir");

    let (sngrep, collector) = {
        let (cmd, d) = (gw_host.command("sngrep"), dir.path().to_owned());
        gw_host
            .spawn(move || Sngrep::start_with(cmd, &d))
            .join()
            .expect("thread")
            .expect("in gw")
    };
    let config = format!(
        "[[listener]]\nname = 'sctp'\ntransport = 'sctp'\naddr = '192.0.2.1:5060'\n\
         [[listener]]\nname = 'tls-sctp'\ntransport = 'tls-sctp'\naddr = '192.0.2.1:5061'\ndomain = 'localhost'\n\
         [tls]\ndev_ca = true\n[state]\ndir = '{}'\n\
         [capture]\ncollector = '{collector}'\ncapture_id = 2002\n",
        dir.path().join("state").display()
    );
    let gw = support::gateway::start_in(&gw_host, dir.path(), &config);
    let roots = support::gateway::dev_ca_roots(&dir.path().join("state"));

    let (sctp, tls_sctp) = (addr("192.0.2.1:5060"), addr("192.0.2.1:5061"));
    let locals = ua
        .run(move || async move {
            let (t, mut rx) = Transport::new(TransportConfig::default());
            t.set_tls_client(support::pki::client_config(
                roots,
                None,
                rustls::DEFAULT_VERSIONS,
            ));
            let mut locals = Vec::new();
            // SCTP from a listener of the UA's own; TLS-SCTP from the outbound-only socket the
            // transport opens (a TLS-SCTP listener would need a server certificate).
            t.bind_sctp(TransportKind::Sctp, &[addr("192.0.2.2:5070")])
                .await
                .expect("bind");
            for (kind, via, to, branch) in [
                (TransportKind::Sctp, "SCTP", sctp, "hepsctp"),
                (TransportKind::TlsSctp, "TLS-SCTP", tls_sctp, "heptlssctp"),
            ] {
                let mut target = Target::new(kind, to);
                if kind == TransportKind::TlsSctp {
                    target = target.with_server_name("localhost");
                }
                let flow = t.connect(&target).await.expect("association");
                let mut local = t.flow_info(flow).expect("flow").local;
                if local.ip().is_unspecified() {
                    local.set_ip(addr("192.0.2.2:0").ip());
                }
                let req = request("OPTIONS", via, local, to, branch, 0);
                t.send(flow, Bytes::from(req)).expect("send");
                let r = tokio::time::timeout(WAIT, rx.recv())
                    .await
                    .expect("an answer in time")
                    .expect("channel");
                assert_eq!(r.message.status_code(), Some(200), "{via}");
                locals.push(local);
            }
            t.shutdown(Duration::from_millis(100)).await;
            locals
        })
        .join()
        .expect("ua");

    let want: Vec<Seen> = [
        ("hepsctp", locals[0], sctp),
        ("heptlssctp", locals[1], tls_sctp),
    ]
    .into_iter()
    .flat_map(|(branch, client, server)| exchange(branch, client, server))
    .collect();
    let seen = wait_for(&sngrep.pcap, &want);
    drop(gw);
    let missing: Vec<&Seen> = want.iter().filter(|w| !seen.contains(w)).collect();
    assert!(
        missing.is_empty(),
        "missing from the pcap: {missing:#?}\ntshark read: {seen:#?}\nsngrep said: {}",
        sngrep.log_text()
    );
}
