//! HEP v3 capture against the real consumer: `sipwire run` with a `[capture]` section mirrors
//! to sngrep listening for HEP without its screen (`sngrep -N -q -L udp:... -O FILE.pcap`);
//! OPTIONS over UDP, TCP and TLS are answered, and `tshark -r FILE.pcap` shows each request
//! and each response as SIP with the addresses and ports it travelled between (tshark has no
//! HEP dissector: sngrep unwraps HEP into the pcap). The TLS exchange can only be in the pcap
//! through HEP (sngrep cannot decrypt), and sngrep sniffs no interface here. The exporter
//! then shows the six packets sent and no capture dropped.
//!
//! sngrep and tshark are Debian packages (lab/install-deps.sh installs them); the test fails,
//! naming the package, when one is missing.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;

use rustls::pki_types::ServerName;
use support::capture::{exchange, require, wait_for, Seen, Sngrep};
use support::poll::WAIT;
use support::prometheus::scrape;
use support::sip::{options, parse};
use support::transport::{framer, read_message};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Sends an OPTIONS on a stream and reads its 200.
async fn stream_options<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    transport: &str,
    local: SocketAddr,
    server: SocketAddr,
    branch: &str,
) {
    s.write_all(options(transport, local, server, branch).as_bytes())
        .await
        .expect("send");
    let resp = read_message(s, &mut framer()).await;
    assert_eq!(resp.status_code(), Some(200), "{resp:?}");
}

#[tokio::test]
async fn sngrep_receives_every_request_and_response_and_tshark_reads_them() {
    require("sngrep", "sngrep", "-V");
    require("tshark", "tshark", "-v");
    let dir = tempfile::tempdir().expect("tempdir");
    let (sngrep, collector) = Sngrep::start(dir.path());
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free TCP port");

    let cfg = format!(
        "[[listener]]\nname = 'u'\ntransport = 'udp'\naddr = '127.0.0.1:0'\n\
         [[listener]]\nname = 't'\ntransport = 'tcp'\naddr = '127.0.0.1:0'\n\
         [[listener]]\nname = 's'\ntransport = 'tls'\naddr = '127.0.0.1:0'\ndomain = 'localhost'\n\
         [tls]\ndev_ca = true\n[state]\ndir = '{}'\n\
         [capture]\ncollector = '{collector}'\ncapture_id = 2001\n\
         [metrics]\nprometheus = '{metrics}'\n",
        dir.path().join("state").display()
    );
    let gw = support::gateway::start(dir.path(), &cfg);
    assert_eq!(
        gw.printed("sipwire: capture HEP v3 to "),
        Some(format!("udp {collector} (capture id 2001)").as_str()),
        "{:?}",
        gw.startup
    );
    let (udp, tcp, tls) = (gw.listener("udp"), gw.listener("tcp"), gw.listener("tls"));

    // UDP
    let u = UdpSocket::bind("127.0.0.1:0").await.expect("udp");
    let ul = u.local_addr().expect("local");
    u.send_to(options("UDP", ul, udp, "hepudp").as_bytes(), udp)
        .await
        .expect("send");
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(WAIT, u.recv_from(&mut buf))
        .await
        .expect("UDP answer in time")
        .expect("recv");
    assert_eq!(parse(&buf[..n]).status_code(), Some(200));

    // TCP
    let mut t = TcpStream::connect(tcp).await.expect("tcp connect");
    let tl = t.local_addr().expect("local");
    stream_options(&mut t, "TCP", tl, tcp, "heptcp").await;

    // TLS, verified against the development CA.
    let roots = support::gateway::dev_ca_roots(&dir.path().join("state"));
    let cc = support::pki::client_config(roots, None, rustls::DEFAULT_VERSIONS);
    let raw = TcpStream::connect(tls).await.expect("tls connect");
    let sl = raw.local_addr().expect("local");
    let mut s = tokio_rustls::TlsConnector::from(cc)
        .connect(ServerName::try_from("localhost").expect("name"), raw)
        .await
        .expect("TLS handshake");
    stream_options(&mut s, "TLS", sl, tls, "heptls").await;

    // Each request (client -> gateway) and response (gateway -> client), as tshark reads them
    // from what sngrep wrote.
    let want: Vec<Seen> = [
        ("hepudp", ul, udp),
        ("heptcp", tl, tcp),
        ("heptls", sl, tls),
    ]
    .into_iter()
    .flat_map(|(branch, client, server)| exchange(branch, client, server))
    .collect();
    let seen = wait_for(&sngrep.pcap, &want);
    let missing: Vec<&Seen> = want.iter().filter(|w| !seen.contains(w)).collect();
    assert!(
        missing.is_empty(),
        "missing from the pcap: {missing:#?}\ntshark read: {seen:#?}\nsngrep said: {}",
        sngrep.log_text()
    );
    assert_eq!(seen.len(), want.len(), "nothing else mirrored: {seen:#?}");
    drop(sngrep);

    // The gateway counted what it handed to the collector, and lost nothing.
    let exported = scrape(metrics).await;
    assert!(
        exported
            .lines()
            .any(|l| l == "sipwire_capture_sent_total 6"),
        "{exported}"
    );
    assert!(
        !exported.contains("sipwire_capture_dropped_total"),
        "{exported}"
    );
}
