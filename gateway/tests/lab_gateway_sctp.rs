//! `sipwire run` serving SIP over SCTP in the lab kernel, against real peers: SIPp (Debian's
//! sip-tester, built with SCTP) as a UAC over one association (`-t s1`) and over one association
//! per call (`-t sn`), and Kamailio 5.6 (`kamailio-sctp-modules`) exchanging requests with sipwire
//! over multihomed associations in both directions. Needs root and kernel SCTP (the lab VM).

mod relay_support;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sipwire::transport::{Transport, TransportConfig};
use sipwire::{Target, TransportKind};
use sipwire_lab::{Host, Topology};
use support::gateway::{self, Running};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

/// Hosts a (sipwire) and b (the peer) linked twice: 192.0.2.0/24 and 198.51.100.0/24.
fn multihomed_pair(lab: &mut Topology) -> (Host, Host) {
    let a = lab.host("a").expect("host a");
    let b = lab.host("b").expect("host b");
    lab.link(&a, &["192.0.2.1/24"], &b, &["192.0.2.2/24"])
        .expect("link 1");
    lab.link(&a, &["198.51.100.1/24"], &b, &["198.51.100.2/24"])
        .expect("link 2");
    (a, b)
}

/// `sipwire run` in host a with one SCTP listener on both of its addresses.
fn sipwire_on_a(a: &Host, dir: &Path) -> Running {
    let config = format!(
        "[[listener]]\nname = 'sctp'\ntransport = 'sctp'\naddr = '192.0.2.1:5060'\n\
         extra_addrs = ['198.51.100.1']\n[sctp]\nstreams = 16\n[state]\ndir = '{}'\n",
        dir.join("state").display()
    );
    let gw = gateway::start_in(a, dir, &config);
    assert_eq!(
        gw.listener("sctp"),
        addr("192.0.2.1:5060"),
        "{:?}",
        gw.startup
    );
    assert!(
        gw.startup
            .iter()
            .any(|l| l.starts_with("sipwire: listening sctp 198.51.100.1:5060")),
        "multihomed listener: {:?}",
        gw.startup
    );
    gw
}

/// Runs SIPp in `host` with the lab's OPTIONS scenario; returns its exit status and output.
fn sipp(host: &Host, args: &[&str]) -> (bool, String) {
    let scenario = repo().join("lab/sipp/options-uac.xml");
    let out = host
        .command("sipp")
        .arg("-sf")
        .arg(&scenario)
        .args(["-nostdin", "-timeout", "60s", "-timeout_error"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("sipp runs (package sip-tester; lab/install-deps.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The `flows` admin answer of the gateway whose state directory is under `dir`.
fn flows(dir: &Path) -> serde_json::Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let json = rt
        .block_on(sipwire_gateway::admin::query(&dir.join("state"), "flows"))
        .expect("admin flows");
    serde_json::from_str(&json).expect("JSON")
}

fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn lab_sipp_options_over_sctp_to_sipwire_run_one_association_and_one_per_call() {
    let mut lab = Topology::new().expect("lab (run as root)");
    let (a, b) = multihomed_pair(&mut lab);
    let dir = tempfile::tempdir().expect("tempdir");
    let _gw = sipwire_on_a(&a, dir.path());

    let (ok, out) = sipp(
        &b,
        &[
            "-s",
            "sipwire",
            "-t",
            "s1",
            "-m",
            "500",
            "-r",
            "100",
            "-l",
            "50",
            "-i",
            "192.0.2.2",
            "-p",
            "5070",
            "192.0.2.1:5060",
        ],
    );
    assert!(ok, "SIPp over one SCTP association: calls failed\n{out}");

    let (ok, out) = sipp(
        &b,
        &[
            "-s",
            "sipwire",
            "-t",
            "sn",
            "-max_socket",
            "100",
            "-m",
            "100",
            "-r",
            "50",
            "-l",
            "20",
            "-i",
            "192.0.2.2",
            "-p",
            "5071",
            "192.0.2.1:5060",
        ],
    );
    assert!(
        ok,
        "SIPp with one SCTP association per call: calls failed\n{out}"
    );

    // Every association SIPp opened was seen and, once SIPp left, is gone.
    wait_for(Duration::from_secs(20), "associations to close", || {
        flows(dir.path())["stats"]["sctp_associations"] == 0
    });
    let f = flows(dir.path());
    let opened = f["stats"]["opened_inbound"].as_u64().expect("count");
    assert!(opened >= 101, "one + one per call associations: {f}");
}

/// Kamailio in `host`, started with its SCTP listener on both of b's addresses and a UDP one on
/// `udp`; stopped with its workers on drop.
fn kamailio(host: &Host, udp: &str) -> support::kamailio::Kamailio {
    let mut cmd = host.command("kamailio");
    cmd.args([
        "-A",
        "PEER_SCTP=sctp:(192.0.2.2,198.51.100.2):5060",
        "-A",
        &format!("PEER_UDP=udp:{udp}:5060"),
        "-A",
        "SIPWIRE=\"sip:192.0.2.1:5060;transport=sctp\"",
    ]);
    support::kamailio::Kamailio::spawn(cmd, &repo().join("lab/kamailio/sctp-peer.cfg"), None)
}

/// Remote addresses of the SCTP associations of `host` (its /proc/net/sctp/assocs).
fn assoc_remote_addrs(host: &Host) -> String {
    host.exec("cat", &["/proc/net/sctp/assocs"])
        .expect("/proc/net/sctp/assocs")
}

#[test]
fn lab_kamailio_and_sipwire_exchange_requests_over_multihomed_sctp_both_ways() {
    let mut lab = Topology::new().expect("lab (run as root)");
    let (a, b) = multihomed_pair(&mut lab);
    let c = lab.host("c").expect("host c");
    lab.link(&b, &["203.0.113.2/24"], &c, &["203.0.113.3/24"])
        .expect("link b-c");
    let dir = tempfile::tempdir().expect("tempdir");
    let _gw = sipwire_on_a(&a, dir.path());
    let _kam = kamailio(&b, "203.0.113.2");

    // sipwire → Kamailio: the library in host a opens a multihomed association to Kamailio's
    // two addresses and sends OPTIONS; Kamailio answers 200 on it.
    let to_kamailio = a.run(|| async {
        let (t, mut rx) = Transport::new(TransportConfig::default());
        let local = t
            .bind_sctp(
                TransportKind::Sctp,
                &[addr("192.0.2.1:5062"), addr("198.51.100.1:5062")],
            )
            .await
            .expect("bind");
        let target = Target::new(TransportKind::Sctp, addr("192.0.2.2:5060"))
            .with_extra_addrs([addr("198.51.100.2:5060")]);
        // Kamailio takes a moment to start listening: retry the association (bounded).
        let mut flow = None;
        for _ in 0..50 {
            match t.connect(&target).await {
                Ok(f) => {
                    flow = Some(f);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let flow = flow.expect("an SCTP association to Kamailio within 10 s");
        let req = support::sip::request("OPTIONS", "SCTP", local[0], target.addr, "tokam", 0);
        t.send(flow, Bytes::from(req)).expect("send");
        let r = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("Kamailio's answer in time")
            .expect("channel");
        t.shutdown(Duration::from_millis(100)).await;
        (r.message.status_code(), r.flow == flow)
    });
    let (status, same) = to_kamailio.join().expect("host a task");
    assert_eq!(status, Some(200));
    assert!(same, "Kamailio answered on our association");

    // Kamailio → sipwire: SIPp in host c sends OPTIONS for user "sipwire" to Kamailio over UDP;
    // Kamailio forwards each over SCTP to `sipwire run`, which answers 200 back through it.
    let (ok, out) = sipp(
        &c,
        &[
            "-s",
            "sipwire",
            "-t",
            "u1",
            "-m",
            "100",
            "-r",
            "50",
            "-i",
            "203.0.113.3",
            "-p",
            "5070",
            "203.0.113.2:5060",
        ],
    );
    assert!(
        ok,
        "SIPp → Kamailio → sipwire over SCTP: calls failed\n{out}"
    );

    // The association Kamailio opened to sipwire is multihomed: host a sees both of b's
    // addresses as its remote addresses.
    let assocs = assoc_remote_addrs(&a);
    assert!(
        assocs
            .lines()
            .any(|l| l.contains("192.0.2.2") && l.contains("198.51.100.2")),
        "no association with both of Kamailio's addresses:\n{assocs}"
    );
    let f = flows(dir.path());
    assert!(
        f["flows"]
            .as_array()
            .expect("flows")
            .iter()
            .any(|x| x["transport"] == "sctp" && x["direction"] == "inbound"),
        "sipwire lists Kamailio's association: {f}"
    );
}

#[test]
fn lab_tls_sctp_options_to_sipwire_run_with_its_dev_ca() {
    let mut lab = Topology::new().expect("lab (run as root)");
    let (a, b) = multihomed_pair(&mut lab);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "[[listener]]\nname = 'tls-sctp'\ntransport = 'tls-sctp'\naddr = '192.0.2.1:5061'\n\
         extra_addrs = ['198.51.100.1']\ndomain = 'a.example.net'\n\
         [tls]\ndev_ca = true\n[state]\ndir = '{}'\n",
        dir.path().join("state").display()
    );
    let gw = gateway::start_in(&a, dir.path(), &config);
    assert_eq!(
        gw.listener("tls-sctp"),
        addr("192.0.2.1:5061"),
        "{:?}",
        gw.startup
    );
    let roots = gateway::dev_ca_roots(&dir.path().join("state"));
    let client = support::pki::client_config(roots, None, support::reuse::TLS13);
    let answered = b.run(move || async move {
        let (t, mut rx) = Transport::new(TransportConfig::default());
        t.set_tls_client(client);
        let target = Target::new(TransportKind::TlsSctp, addr("192.0.2.1:5061"))
            .with_server_name("a.example.net")
            .with_extra_addrs([addr("198.51.100.1:5061")]);
        let flow = t.connect(&target).await.expect("TLS-SCTP association");
        let local = t.flow_info(flow).expect("flow").local;
        let mut codes = Vec::new();
        for i in 0..20 {
            let uri_to = addr("192.0.2.1:5061");
            let req =
                support::sip::request("OPTIONS", "TLS-SCTP", local, uri_to, &format!("g{i}"), 0);
            t.send(flow, Bytes::from(req)).expect("send");
            let r = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("answer in time")
                .expect("channel");
            codes.push(r.message.status_code());
        }
        t.shutdown(Duration::from_millis(100)).await;
        codes
    });
    let codes = answered.join().expect("host b");
    assert!(codes.iter().all(|c| *c == Some(200)), "{codes:?}");
}

#[test]
fn lab_dtls_sctp_options_to_sipwire_run_with_its_dev_ca() {
    use openssl::ssl::{SslConnector, SslMethod};
    use openssl::x509::X509;
    let mut lab = Topology::new().expect("lab (run as root)");
    let (a, b) = multihomed_pair(&mut lab);
    for h in [&a, &b] {
        h.sysctl("net/sctp/auth_enable", "1").expect("SCTP-AUTH on");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "[[listener]]\nname = 'dtls-sctp'\ntransport = 'dtls-sctp'\naddr = '192.0.2.1:5064'\n\
         domain = 'a.example.net'\n[tls]\ndev_ca = true\n[state]\ndir = '{}'\n",
        dir.path().join("state").display()
    );
    let gw = gateway::start_in(&a, dir.path(), &config);
    assert_eq!(
        gw.listener("dtls-sctp"),
        addr("192.0.2.1:5064"),
        "{:?}",
        gw.startup
    );
    let ca_pem = std::fs::read(dir.path().join("state/dev-ca/ca.pem")).expect("dev CA");
    let answered = b.run(move || async move {
        let mut c = SslConnector::builder(SslMethod::dtls()).expect("connector");
        c.cert_store_mut()
            .add_cert(X509::from_pem(&ca_pem).expect("CA"))
            .expect("trust");
        let (t, mut rx) = Transport::new(TransportConfig::default());
        t.set_dtls_sctp_client(c);
        let target = Target::new(TransportKind::DtlsSctp, addr("192.0.2.1:5064"))
            .with_server_name("a.example.net");
        let flow = t.connect(&target).await.expect("DTLS-SCTP association");
        let local = t.flow_info(flow).expect("flow").local;
        let mut codes = Vec::new();
        for i in 0..10 {
            let req = support::sip::request(
                "OPTIONS",
                "DTLS-SCTP",
                local,
                target.addr,
                &format!("d{i}"),
                0,
            );
            t.send(flow, Bytes::from(req)).expect("send");
            let r = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("answer in time")
                .expect("channel");
            codes.push(r.message.status_code());
        }
        t.shutdown(Duration::from_millis(100)).await;
        codes
    });
    let codes = answered.join().expect("host b");
    assert!(codes.iter().all(|c| *c == Some(200)), "{codes:?}");
}

/// SIPp as UAC and as UAS, both over SCTP, calling through `sipwire run` (INVITE / 200 / ACK /
/// BYE with Record-Route): the UAC in host b on one side, the UAS in host c on the other, the
/// gateway's one SCTP listener multihomed over both networks.
#[test]
fn lab_sipp_calls_over_sctp_through_sipwire_run() {
    use relay_support::{start, uac_args, uas_args, wait, Stats};
    const CALLS: usize = 50;
    let mut lab = Topology::new().expect("lab (run as root)");
    let a = lab.host("a").expect("host a");
    let b = lab.host("b").expect("host b");
    let c = lab.host("c").expect("host c");
    lab.link(&b, &["192.0.2.2/24"], &a, &["192.0.2.1/24"])
        .expect("access link");
    lab.link(&a, &["198.51.100.1/24"], &c, &["198.51.100.2/24"])
        .expect("core link");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "[[listener]]\nname = 'sctp'\ntransport = 'sctp'\naddr = '192.0.2.1:5060'\n\
         extra_addrs = ['198.51.100.1']\n[proxy]\nname_server = '127.0.0.1:9'\n\
         [state]\ndir = '{}'\n",
        dir.path().join("state").display()
    );
    let _gw = gateway::start_in(&a, dir.path(), &config);
    let mut uas = start(
        c.command("sipp"),
        dir.path(),
        "uas",
        &uas_args("198.51.100.2", 5070, "sctp", CALLS),
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut uac = start(
        b.command("sipp"),
        dir.path(),
        "uac",
        &uac_args(
            "192.0.2.2",
            5080,
            "sctp",
            "192.0.2.1:5060",
            "198.51.100.2:5070",
            "sctp",
            CALLS,
            10,
        ),
    );
    let uac_rc = wait(&mut uac, Duration::from_secs(120));
    let uas_rc = wait(&mut uas, Duration::from_secs(60));
    let (cs, ss) = (Stats::read(&uac.stats), Stats::read(&uas.stats));
    let logs = || {
        format!(
            "uac: {}\nuas: {}",
            std::fs::read_to_string(&uac.log).unwrap_or_default(),
            std::fs::read_to_string(&uas.log).unwrap_or_default()
        )
    };
    assert_eq!(
        (cs.successful, cs.failed),
        (CALLS as u64, 0),
        "uac {cs:?}\n{}",
        logs()
    );
    assert_eq!(
        (ss.successful, ss.failed),
        (CALLS as u64, 0),
        "uas {ss:?}\n{}",
        logs()
    );
    assert_eq!((uac_rc, uas_rc), (0, 0), "{}", logs());
}
