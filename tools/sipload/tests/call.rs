//! sipload against itself on loopback: `sipload serve` as the UAS, `sipload --scenario call`
//! as the UAC, over UDP and TCP; and the clear failure where the kernel has no SCTP.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SIPLOAD: &str = env!("CARGO_BIN_EXE_sipload");

/// A `sipload serve` process, killed on drop.
struct Serve {
    child: Child,
    addr: String,
}

impl Serve {
    fn start(transport: &str, extra: &[&str]) -> Serve {
        let mut child = Command::new(SIPLOAD)
            .args(["serve", "--transport", transport, "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = field(&line, "listening").trim_matches('"').to_owned();
        Serve { child, addr }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The raw value of `"key":value` in a one-line JSON object (no nesting in sipload's).
fn field<'a>(json: &'a str, key: &str) -> &'a str {
    let pat = format!("\"{key}\":");
    let at = json
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + pat.len();
    let rest = &json[at..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    &rest[..end]
}

fn num(json: &str, key: &str) -> u64 {
    field(json, key)
        .parse()
        .unwrap_or_else(|_| panic!("{key} in {json}"))
}

fn calls(transport: &str, extra: &[&str]) {
    let serve = Serve::start(transport, &["--trying"]);
    let out = Command::new(SIPLOAD)
        .args(["--scenario", "call", "--transport", transport])
        .args([
            "--target",
            &serve.addr,
            "--uri",
            &format!("sip:uas@{}", serve.addr),
        ])
        .args([
            "--flows",
            "2",
            "--window",
            "4",
            "--requests",
            "300",
            "--warmup",
            "0",
        ])
        .args(["--timeout-ms", "3000", "--label", "selftest"])
        .args(extra)
        .output()
        .unwrap();
    let json = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{json} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(field(&json, "scenario"), "\"call\"");
    assert_eq!(field(&json, "transport"), format!("\"{transport}\""));
    assert_eq!(num(&json, "sent"), 300, "{json}");
    assert_eq!(num(&json, "answered"), 300, "{json}");
    for zero in ["non_200", "unanswered", "late", "stray", "io_errors"] {
        assert_eq!(num(&json, zero), 0, "{zero}: {json}");
    }
    // One 100 Trying per INVITE.
    assert_eq!(num(&json, "provisional"), 300, "{json}");
    assert!(num(&json, "bye_lat_p50_us") > 0, "{json}");
}

#[test]
fn calls_over_udp_against_serve() {
    calls("udp", &[]);
}

#[test]
fn calls_over_tcp_against_serve() {
    calls("tcp", &[]);
}

#[test]
fn options_still_work_and_report_no_retransmissions() {
    let serve = Serve::start("udp", &[]);
    let out = Command::new(SIPLOAD)
        .args([
            "--target",
            &serve.addr,
            "--requests",
            "200",
            "--warmup",
            "0",
        ])
        .output()
        .unwrap();
    let json = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{json}");
    assert_eq!(field(&json, "scenario"), "\"options\"");
    assert_eq!(num(&json, "answered"), 200, "{json}");
    assert_eq!(num(&json, "retransmissions"), 0, "{json}");
    assert_eq!(num(&json, "t1_ms"), 500, "{json}");
}

#[test]
fn udp_retransmits_to_a_silent_server() {
    // A bound socket that never answers: every INVITE is sent at 0, 50, 150 ms (Timer A)
    // before the 250 ms timeout.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let out = Command::new(SIPLOAD)
        .args(["--scenario", "call", "--target", &addr, "--requests", "2"])
        .args(["--warmup", "0", "--t1-ms", "50", "--timeout-ms", "250"])
        .output()
        .unwrap();
    let json = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{json}");
    assert_eq!(num(&json, "unanswered"), 2, "{json}");
    assert_eq!(num(&json, "retransmissions"), 4, "{json}");
    silent
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let mut invites = 0;
    while let Ok(n) = silent.recv(&mut buf) {
        assert!(buf[..n].starts_with(b"INVITE "));
        invites += 1;
    }
    assert_eq!(invites, 6);
}

#[test]
fn sctp_without_kernel_support_says_so() {
    // Where the kernel has SCTP (the lab VM) the check is the other way round: the server
    // starts and says where it listens.
    if std::path::Path::new("/proc/net/sctp").exists() {
        let mut child = Command::new(SIPLOAD)
            .args(["serve", "--transport", "sctp", "--listen", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let out = child.stdout.take().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(line.contains("listening"), "{line}");
        return;
    }
    for args in [
        vec!["--transport", "sctp", "--requests", "1"],
        vec!["serve", "--transport", "sctp", "--listen", "127.0.0.1:0"],
    ] {
        let out = Command::new(SIPLOAD).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains("no SCTP support"), "{err}");
        assert!(err.contains("--transport sctp"), "{err}");
    }
}

#[test]
fn dtls_sctp_needs_its_files_and_kernel_sctp() {
    for (args, says) in [
        (vec!["--transport", "dtls-sctp"], "needs --ca FILE"),
        (
            vec![
                "serve",
                "--transport",
                "dtls-sctp",
                "--listen",
                "127.0.0.1:0",
            ],
            "needs --cert and --key",
        ),
    ] {
        let out = Command::new(SIPLOAD).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }
    // With the files given, the next thing checked is the kernel (the lab VM has SCTP: the
    // runs over DTLS-SCTP are in lab/bench/sipload-sctp.sh).
    if std::path::Path::new("/proc/net/sctp").exists() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("sipload-dtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, c.cert.pem()).unwrap();
    std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    for args in [
        vec!["--transport", "dtls-sctp", "--ca", cert, "--requests", "1"],
        vec![
            "serve",
            "--transport",
            "dtls-sctp",
            "--listen",
            "127.0.0.1:0",
            "--cert",
            cert,
            "--key",
            key,
        ],
    ] {
        let out = Command::new(SIPLOAD).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains("no SCTP support"), "{err}");
        assert!(err.contains("--transport dtls-sctp"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn calls_over_tls_against_serve() {
    let dir = std::env::temp_dir().join(format!("sipload-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, c.cert.pem()).unwrap();
    std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let serve = Serve::start("tls", &["--cert", cert, "--key", key]);
    let out = Command::new(SIPLOAD)
        .args(["--scenario", "call", "--transport", "tls", "--ca", cert])
        .args(["--target", &serve.addr, "--flows", "2", "--requests", "100"])
        .args(["--warmup", "0", "--tls-version", "1.2"])
        .output()
        .unwrap();
    let json = String::from_utf8(out.stdout).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{json} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(num(&json, "answered"), 100, "{json}");
    assert_eq!(field(&json, "tls_version"), "\"1.2\"");
    assert_eq!(
        num(&json, "unanswered") + num(&json, "non_200"),
        0,
        "{json}"
    );
}
