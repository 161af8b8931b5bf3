//! RFC 5923 connection reuse between `sipwire run` and a real Kamailio 5.6 (Debian `kamailio` +
//! `kamailio-tls-modules`, lab/kamailio/tls-reuse-peer.cfg, `tcp_accept_aliases=yes`) over mutual
//! TLS on loopback: sipwire is `sipwire.test` on 127.0.0.1, Kamailio `kamailio.test` on
//! 127.0.0.2, both with certificates of one test CA (tests/support/pki.rs). A UA (a UDP socket of
//! the test) sends OPTIONS through either of them.
//!
//! - sipwire first: sipwire relays a request to Kamailio over TLS with `;alias` in its Via;
//!   Kamailio then forwards a request for sipwire's domain back over that same connection.
//! - Kamailio first: Kamailio opens the connection to sipwire with `;alias` in its Via (Kamailio's
//!   core never writes `alias` itself; the peer configuration adds it through the generic Via
//!   parameter mechanism, `xavp_via_params` + corex `via_add_xavp_params()`); sipwire records the
//!   alias row and relays a request for Kamailio's domain over that same connection.
//! - Kamailio first without `;alias` (Kamailio's default): sipwire records nothing and opens a
//!   second connection.
//!
//! Each case asserts the number of TLS connections between the two, counted by `ss` (the
//! kernel) and by sipwire's admin `flows`, and the rows of its admin `alias-table`.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::dns::{start_dns, TestDns, Zone};
use support::gateway::{self, Running};
use support::pki::{Ca, Spec};
use support::poll::{eventually, WAIT};
use tokio::net::UdpSocket;

const SIPWIRE_IP: &str = "127.0.0.1";
const KAMAILIO_IP: &str = "127.0.0.2";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// A port free now on `ip` for TCP and UDP (Kamailio takes its ports from the command line).
fn free_port(ip: &str) -> u16 {
    for _ in 0..50 {
        let tcp = std::net::TcpListener::bind((ip, 0)).expect("bind TCP");
        let port = tcp.local_addr().expect("addr").port();
        if std::net::UdpSocket::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on {ip}");
}

/// The test PKI written to `dir`: the CA, and a server+client certificate per side whose SIP
/// identity is its domain (a `sip:` URI SAN and a dNSName, RFC 5922 §7.1) plus its IP.
struct Pki {
    ca: PathBuf,
    sipwire: (PathBuf, PathBuf),
    kamailio: (PathBuf, PathBuf),
}

fn pki(dir: &Path) -> Pki {
    let ca = Ca::new("sipwire-kamailio test CA");
    let sipwire = ca.leaf(&Spec::sip(&["sipwire.test"]).with_ips(&[SIPWIRE_IP]));
    let kamailio = ca.leaf(&Spec::sip(&["kamailio.test"]).with_ips(&[KAMAILIO_IP]));
    Pki {
        ca: ca.write_pem(dir),
        sipwire: sipwire.write_pem(dir, "sipwire"),
        kamailio: kamailio.write_pem(dir, "kamailio"),
    }
}

/// Kamailio's tls module settings: mutual TLS both ways, peers verified against the test CA.
fn kamailio_tls_cfg(dir: &Path, pki: &Pki) -> PathBuf {
    let profile = |kind: &str| {
        format!(
            "[{kind}:default]\nmethod = TLSv1.2+\nverify_certificate = yes\n\
             require_certificate = yes\ncertificate = {}\nprivate_key = {}\nca_list = {}\n\n",
            pki.kamailio.0.display(),
            pki.kamailio.1.display(),
            pki.ca.display()
        )
    };
    let path = dir.join("kamailio-tls.cfg");
    std::fs::write(&path, profile("server") + &profile("client")).expect("write tls.cfg");
    path
}

/// Kamailio started on lab/kamailio/tls-reuse-peer.cfg; stopped on drop. Its log (stderr)
/// goes to a file the test reads.
struct Kamailio {
    process: support::kamailio::Kamailio,
    log: PathBuf,
    tls: SocketAddr,
    udp: SocketAddr,
}

impl Kamailio {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The lines of its script log (one per request it routed, one per reply it forwarded).
    fn script_lines(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| l.split_once("kamailio-peer: ").map(|(_, r)| r.to_owned()))
            .collect()
    }
}

/// Starts Kamailio on `tls`/`udp` (127.0.0.2), sending requests for sipwire.test to
/// `sipwire_tls`, with or without `;alias` in its own Via; returns once both sockets listen.
async fn kamailio(
    dir: &Path,
    tls_cfg: &Path,
    tls: SocketAddr,
    udp: SocketAddr,
    sipwire_tls: SocketAddr,
    via_alias: bool,
) -> Kamailio {
    let log = dir.join(format!("kamailio-{}.log", tls.port()));
    let mut cmd = Command::new("kamailio");
    cmd.args(["-A", &format!("PEER_TLS=tls:{tls}")])
        .args(["-A", &format!("PEER_UDP=udp:{udp}")])
        .args([
            "-A",
            &format!("SIPWIRE=\"sip:{sipwire_tls};transport=tls\""),
        ])
        .args(["-A", "SIPWIRE_DOMAIN=\"sipwire.test\""])
        .args(["-A", &format!("TLS_CFG=\"{}\"", tls_cfg.display())]);
    if via_alias {
        cmd.args(["-A", "WITH_VIA_ALIAS"]);
    }
    let process = support::kamailio::Kamailio::spawn(
        cmd,
        &repo().join("lab/kamailio/tls-reuse-peer.cfg"),
        Some(&log),
    );
    let mut k = Kamailio {
        process,
        log,
        tls,
        udp,
    };
    // Listening sockets only: probing with a connection would add one to the counts.
    let listening = |args: &[&str], addr: SocketAddr| {
        let out = Command::new("ss")
            .args(args)
            .output()
            .expect("ss (iproute2)");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.split_whitespace().nth(3) == Some(addr.to_string().as_str()))
    };
    // `ss` is a process: asked every 50 ms, not at every turn of `eventually`.
    let mut next = Instant::now();
    eventually(Duration::from_secs(20), "Kamailio listening", || {
        if Instant::now() < next {
            return false;
        }
        next = Instant::now() + Duration::from_millis(50);
        if let Some(status) = k.process.exited() {
            panic!("Kamailio exited ({status}):\n{}", k.log());
        }
        listening(&["-Hltn"], tls) && listening(&["-Hlun"], udp)
    })
    .await;
    k
}

/// `sipwire run` as sipwire.test: UDP and TCP listeners for the UA, a TLS listener requiring a
/// client certificate from the test CA, and a route sending requests for kamailio.test over TLS
/// to `kamailio.test:<kamailio_tls_port>` (resolved by the test's DNS server to 127.0.0.2).
/// `alias`: `[alias] add_alias` (`;alias` in its Via on TLS hops; on by default).
fn sipwire(dir: &Path, pki: &Pki, dns: SocketAddr, kamailio_tls_port: u16, alias: bool) -> Running {
    let config = format!(
        "[[listener]]\nname = 'udp'\ntransport = 'udp'\naddr = '{SIPWIRE_IP}:0'\n\
         [[listener]]\nname = 'tcp'\ntransport = 'tcp'\naddr = '{SIPWIRE_IP}:0'\n\
         [[listener]]\nname = 'tls'\ntransport = 'tls'\naddr = '{SIPWIRE_IP}:0'\n\
         domain = 'sipwire.test'\ncert = '{}'\nkey = '{}'\nclient_cert = 'require'\n\
         [tls]\nca_files = ['{}']\n\
         [proxy]\nname_server = '{}'\n\
         [[route]]\ndomain = 'kamailio.test'\n\
         [[route.target]]\ntransport = 'tls'\nhost = 'kamailio.test'\nport = {kamailio_tls_port}\n\
         [alias]\nadd_alias = {alias}\n[state]\ndir = '{}'\n",
        pki.sipwire.0.display(),
        pki.sipwire.1.display(),
        pki.ca.display(),
        dns,
        dir.join("state").display()
    );
    gateway::start(dir, &config)
}

async fn admin(dir: &Path, command: &str) -> serde_json::Value {
    let json = sipwire_gateway::admin::query(&dir.join("state"), command)
        .await
        .expect("admin query");
    serde_json::from_str(&json).expect("JSON")
}

/// sipwire's TLS flows.
async fn tls_flows(dir: &Path) -> Vec<serde_json::Value> {
    admin(dir, "flows").await["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .filter(|f| f["transport"] == "tls")
        .cloned()
        .collect()
}

/// Established TCP connections between sipwire and Kamailio's TLS listener, counted by their
/// sockets on sipwire's side (connected to Kamailio's listener, or accepted on sipwire's): one
/// socket per connection, whatever source address Kamailio connects from.
fn connections(kamailio_tls: SocketAddr, sipwire_tls: SocketAddr) -> Vec<String> {
    let out = Command::new("ss")
        .args(["-Htn", "state", "established"])
        .output()
        .expect("ss (iproute2)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (Some(local), Some(peer)) = (f.get(2), f.get(3)) else {
                return false;
            };
            let (Ok(local), Ok(peer)) = (local.parse::<SocketAddr>(), peer.parse::<SocketAddr>())
            else {
                return false;
            };
            peer == kamailio_tls || local == sipwire_tls
        })
        .map(str::to_owned)
        .collect()
}

/// The UA: a UDP socket sending OPTIONS and waiting for the final answer.
struct Ua {
    sock: UdpSocket,
    n: u32,
}

impl Ua {
    async fn new() -> Ua {
        Ua {
            sock: UdpSocket::bind((SIPWIRE_IP, 0)).await.expect("bind UA"),
            n: 0,
        }
    }

    /// Sends OPTIONS for `ruri` to `to`; returns the status of the first final response (100s
    /// are skipped), within [`WAIT`].
    async fn options(&mut self, ruri: &str, to: SocketAddr) -> u16 {
        self.n += 1;
        let local = self.sock.local_addr().expect("addr");
        let call = format!("ua{}-{}@test", self.n, local.port());
        let req = format!(
            "OPTIONS {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bKua{n};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:ua@ua.test>;tag=ua{n}\r\n\
             To: <{ruri}>\r\n\
             Call-ID: {call}\r\n\
             CSeq: {n} OPTIONS\r\n\
             Content-Length: 0\r\n\r\n",
            n = self.n
        );
        self.sock.send_to(req.as_bytes(), to).await.expect("send");
        let mut buf = vec![0u8; 65536];
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (len, _) = tokio::time::timeout_at(deadline, self.sock.recv_from(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no final answer to OPTIONS {ruri} via {to}"))
                .expect("recv");
            let text = String::from_utf8_lossy(&buf[..len]).into_owned();
            if !text.contains(&call) {
                continue;
            }
            let code: u16 = text
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("not a response: {text}"));
            if code >= 200 {
                return code;
            }
        }
    }
}

/// Both peers up: the PKI, the DNS zone for kamailio.test, `sipwire run`, then Kamailio (which
/// needs sipwire's TLS port).
struct Setup {
    // Dropped in this order: the processes, then the DNS server, then their files.
    _gw: Running,
    kam: Kamailio,
    _dns: TestDns,
    dir: tempfile::TempDir,
    sipwire_udp: SocketAddr,
    sipwire_tls: SocketAddr,
}

/// Which side puts `;alias` in its Via.
#[derive(Clone, Copy)]
struct Alias {
    sipwire: bool,
    kamailio: bool,
}

async fn setup(alias: Alias) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path());
    let tls_cfg = kamailio_tls_cfg(dir.path(), &pki);
    let kam_ip: std::net::IpAddr = KAMAILIO_IP.parse().expect("ip");
    let kam_tls = SocketAddr::new(kam_ip, free_port(KAMAILIO_IP));
    let kam_udp = SocketAddr::new(kam_ip, free_port(KAMAILIO_IP));
    let dns = start_dns(vec![
        Zone::new("kamailio.test.").a("kamailio.test.", KAMAILIO_IP)
    ])
    .await;
    let gw = tokio::task::spawn_blocking({
        let (dir, dns) = (dir.path().to_owned(), dns.addr);
        move || sipwire(&dir, &pki, dns, kam_tls.port(), alias.sipwire)
    })
    .await
    .expect("start sipwire");
    let sipwire_udp = gw.listener("udp");
    let sipwire_tls = gw.listener("tls");
    let kam = kamailio(
        dir.path(),
        &tls_cfg,
        kam_tls,
        kam_udp,
        sipwire_tls,
        alias.kamailio,
    )
    .await;
    Setup {
        dir,
        _dns: dns,
        _gw: gw,
        kam,
        sipwire_udp,
        sipwire_tls,
    }
}

impl Setup {
    fn state(&self) -> &Path {
        self.dir.path()
    }

    /// `ua` sends an OPTIONS for `ruri` to `to` and gets 200 (else fails with Kamailio's log).
    async fn answered(&self, ua: &mut Ua, ruri: &str, to: SocketAddr) {
        assert_eq!(ua.options(ruri, to).await, 200, "{}", self.kam.log());
    }

    /// Two TLS connections between the peers, one opened by each.
    async fn assert_one_connection_each_way(&self) {
        let flows = self.assert_connections(2).await;
        let mut dirs: Vec<&str> = flows
            .iter()
            .map(|f| f["direction"].as_str().expect("direction"))
            .collect();
        dirs.sort_unstable();
        assert_eq!(dirs, ["inbound", "outbound"], "{flows:#?}");
    }

    /// Kamailio's script lines starting with `prefix`, as (line, connection id).
    fn kamailio_lines(&self, prefix: &str) -> Vec<(String, String)> {
        self.kam
            .script_lines()
            .into_iter()
            .filter(|l| l.starts_with(prefix))
            .map(|l| {
                let conn = l.rsplit(" conn ").next().expect("conn id").to_owned();
                (l, conn)
            })
            .collect()
    }

    /// The connection id Kamailio logged for the first script line starting with `prefix`.
    fn kamailio_conn(&self, prefix: &str) -> String {
        self.kamailio_lines(prefix)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("Kamailio logged no `{prefix}`:\n{}", self.kam.log()))
            .1
    }

    /// Asserts `n` TLS connections between the two, by the kernel and by sipwire; returns
    /// sipwire's TLS flows.
    async fn assert_connections(&self, n: usize) -> Vec<serde_json::Value> {
        let seen = connections(self.kam.tls, self.sipwire_tls);
        assert_eq!(seen.len(), n, "ss: {seen:#?}\n{}", self.kam.log());
        let flows = tls_flows(self.state()).await;
        assert_eq!(flows.len(), n, "sipwire flows: {flows:#?}");
        flows
    }
}

/// The single row of sipwire.test's alias table, and the counters.
async fn alias_row(dir: &Path) -> (serde_json::Value, serde_json::Value) {
    let v = admin(dir, "alias-table").await;
    let tables = v["tables"].as_array().expect("tables");
    assert_eq!(tables.len(), 1, "{v}");
    assert_eq!(tables[0]["local_domain"], "sipwire.test", "{v}");
    let rows = tables[0]["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{v}");
    (rows[0].clone(), v["counters"].clone())
}

/// sipwire opens the connection (its Via carries `;alias`); Kamailio, with `tcp_accept_aliases`,
/// sends its request for sipwire's domain back over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipwire_first_kamailio_sends_back_over_sipwires_connection() {
    let s = setup(Alias {
        sipwire: true,
        kamailio: false,
    })
    .await;
    let mut ua = Ua::new().await;

    // UA → sipwire → (new TLS connection, sipwire's Via with `alias`) → Kamailio: 200.
    s.answered(&mut ua, "sip:kam@kamailio.test", s.sipwire_udp)
        .await;
    let from_sipwire = "OPTIONS sip:kam@kamailio.test from tls:127.0.0.1:";
    let line = s
        .kam
        .script_lines()
        .into_iter()
        .find(|l| l.starts_with(from_sipwire))
        .expect("Kamailio got sipwire's request");
    let via = format!("via [SIP/2.0/TLS {}", s.sipwire_tls);
    assert!(
        line.contains(&via) && line.contains(";alias"),
        "sipwire's Via names its TLS listener and carries alias: {line}"
    );
    let conn = s.kamailio_conn(from_sipwire);

    // UA → Kamailio (UDP) → sipwire.test at sipwire's TLS listener: over the same connection.
    s.answered(&mut ua, "sip:sipwire.test", s.kam.udp).await;
    assert_eq!(
        s.kamailio_conn("OPTIONS sip:sipwire.test from udp:"),
        "<null>",
        "the UA's request came over UDP"
    );
    assert_eq!(
        s.kamailio_conn("reply 200 from tls:"),
        conn,
        "sipwire's answer came on the connection sipwire opened:\n{}",
        s.kam.log()
    );

    let flows = s.assert_connections(1).await;
    assert_eq!(flows[0]["direction"], "outbound", "{flows:#?}");
    assert_eq!(flows[0]["peer"], s.kam.tls.to_string(), "{flows:#?}");
    assert_eq!(
        flows[0]["identities"],
        serde_json::json!(["kamailio.test"]),
        "Kamailio authenticated as its domain: {flows:#?}"
    );
    let (row, counters) = alias_row(s.state()).await;
    assert_eq!(row["ip"], KAMAILIO_IP, "{row}");
    assert_eq!(row["port"], s.kam.tls.port(), "{row}");
    assert_eq!(row["identities"], serde_json::json!(["kamailio.test"]));
    assert_eq!(row["origin"], "Outbound", "{row}");
    assert_eq!(counters["ignored"]["sent_by_not_authenticated"], 0);
}

/// Kamailio opens the connection with `;alias` in its Via (WITH_VIA_ALIAS); sipwire records the
/// row for kamailio.test and relays a request for Kamailio's domain over that connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_first_with_alias_sipwire_sends_back_over_kamailios_connection() {
    let s = setup(Alias {
        sipwire: true,
        kamailio: true,
    })
    .await;
    let mut ua = Ua::new().await;

    // UA → Kamailio (UDP) → (new TLS connection, `alias`) → sipwire: 200.
    s.answered(&mut ua, "sip:sipwire.test", s.kam.udp).await;
    let conn = s.kamailio_conn("reply 200 from tls:");
    let (row, counters) = alias_row(s.state()).await;
    assert_eq!(row["ip"], KAMAILIO_IP, "{row}");
    assert_eq!(row["port"], s.kam.tls.port(), "the Via port: {row}");
    assert_eq!(row["transport"], "tls", "{row}");
    assert_eq!(row["identities"], serde_json::json!(["kamailio.test"]));
    assert_eq!(row["origin"], "Inbound", "{row}");
    assert_eq!(counters["added"], 1, "{counters}");

    // UA → sipwire → kamailio.test: the aliased connection, no new one.
    s.answered(&mut ua, "sip:kam@kamailio.test", s.sipwire_udp)
        .await;
    let on_it = format!("OPTIONS sip:kam@kamailio.test from tls:{} ", s.sipwire_tls);
    assert_eq!(
        s.kamailio_conn(&on_it),
        conn,
        "sipwire's request came on the connection Kamailio opened:\n{}",
        s.kam.log()
    );

    let flows = s.assert_connections(1).await;
    assert_eq!(flows[0]["direction"], "inbound", "{flows:#?}");
    assert_eq!(
        flows[0]["identities"],
        serde_json::json!(["kamailio.test"]),
        "{flows:#?}"
    );
    let (_, counters) = alias_row(s.state()).await;
    assert!(counters["reuses"].as_u64() >= Some(1), "{counters}");
}

/// Kamailio's default: its Via has no `alias`, so sipwire records nothing and opens its own
/// connection for Kamailio's domain (RFC 3261 behaviour): two connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_first_without_alias_gets_a_second_connection() {
    let s = setup(Alias {
        sipwire: true,
        kamailio: false,
    })
    .await;
    let mut ua = Ua::new().await;
    s.answered(&mut ua, "sip:sipwire.test", s.kam.udp).await;
    let v = admin(s.state(), "alias-table").await;
    assert_eq!(v["counters"]["rows"], 0, "{v}");
    s.answered(&mut ua, "sip:kam@kamailio.test", s.sipwire_udp)
        .await;
    s.assert_one_connection_each_way().await;
}

/// The control of the first case: sipwire without `alias` (`[alias] add_alias = false`), so
/// Kamailio, `tcp_accept_aliases` or not, has no alias for sipwire's listener and opens its own
/// connection to it: two connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipwire_first_without_alias_kamailio_opens_a_second_connection() {
    let s = setup(Alias {
        sipwire: false,
        kamailio: false,
    })
    .await;
    let mut ua = Ua::new().await;
    s.answered(&mut ua, "sip:kam@kamailio.test", s.sipwire_udp)
        .await;
    let from_sipwire = "OPTIONS sip:kam@kamailio.test from tls:127.0.0.1:";
    let lines = s.kam.script_lines();
    let line = lines
        .iter()
        .find(|l| l.starts_with(from_sipwire))
        .expect("Kamailio got sipwire's request");
    assert!(!line.contains(";alias"), "no alias: {line}");
    let conn = s.kamailio_conn(from_sipwire);
    s.answered(&mut ua, "sip:sipwire.test", s.kam.udp).await;
    assert_ne!(
        s.kamailio_conn("reply 200 from tls:"),
        conn,
        "sipwire's answer came on a connection Kamailio opened:\n{}",
        s.kam.log()
    );
    s.assert_one_connection_each_way().await;
}

/// `[alias] add_alias` turned on by a reload of `sipwire run`: its next request over the open
/// connection carries `alias`, Kamailio aliases that connection, and its request for sipwire's
/// domain then comes over it: one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloading_add_alias_on_lets_kamailio_reuse_the_open_connection() {
    let s = setup(Alias {
        sipwire: false,
        kamailio: false,
    })
    .await;
    let mut ua = Ua::new().await;
    s.answered(&mut ua, "sip:kam@kamailio.test", s.sipwire_udp)
        .await;

    let file = s.state().join("sipwire.toml");
    let text = std::fs::read_to_string(&file).expect("config");
    assert!(text.contains("add_alias = false"), "{text}");
    std::fs::write(&file, text.replace("add_alias = false", "add_alias = true")).expect("write");
    let outcome = admin(s.state(), "reload").await;
    assert_eq!(outcome["reloaded"], true, "{outcome}");
    let applied = outcome["applied"].as_array().expect("applied");
    assert!(applied.contains(&"[alias] add_alias".into()), "{outcome}");

    s.answered(&mut ua, "sip:kam@kamailio.test", s.sipwire_udp)
        .await;
    let sent = s.kamailio_lines("OPTIONS sip:kam@kamailio.test from tls:127.0.0.1:");
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert!(!sent[0].0.contains(";alias"), "before: {}", sent[0].0);
    assert!(
        sent[1].0.contains(";alias"),
        "after the reload: {}",
        sent[1].0
    );
    assert_eq!(sent[0].1, sent[1].1, "one connection: {sent:#?}");

    s.answered(&mut ua, "sip:sipwire.test", s.kam.udp).await;
    assert_eq!(
        s.kamailio_conn("reply 200 from tls:"),
        sent[0].1,
        "sipwire's answer came on the connection sipwire opened:\n{}",
        s.kam.log()
    );
    let flows = s.assert_connections(1).await;
    assert_eq!(flows[0]["direction"], "outbound", "{flows:#?}");
}
