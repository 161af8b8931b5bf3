//! `Type=notify` against a real notification socket: `sipwire run` sends READY=1 once its
//! listeners are bound, RELOADING=1 then READY=1 around a SIGHUP reload, STOPPING=1 on
//! SIGTERM, and WATCHDOG=1 every WATCHDOG_USEC/2; path and abstract sockets both work. The
//! shipped unit file passes `systemd-analyze verify`.

mod ops_support;

use ops_support::tcp_config as config;

use ops_support::Gateway;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// The next notification that is not a watchdog keep-alive.
fn next_state(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).expect("a notification in time");
        let s = String::from_utf8_lossy(&buf[..n]).into_owned();
        if s != "WATCHDOG=1" {
            return s;
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[test]
fn ready_reloading_and_stopping_reach_the_notify_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(ops_support::WAIT))
        .expect("timeout");
    let gw = Gateway::start(
        &config(dir.path()),
        &[],
        &[("NOTIFY_SOCKET", sock_path.to_str().expect("utf-8"))],
    );
    let ready = next_state(&sock);
    assert_eq!(ready, "READY=1\nSTATUS=serving 1 listener");
    // READY=1 came once the listener was bound: it answers.
    assert_eq!(
        ops_support::options_over_tcp(gw.listener("tcp"), ""),
        "SIP/2.0 200 OK"
    );

    gw.signal("HUP");
    assert_eq!(first_line(&next_state(&sock)), "RELOADING=1");
    assert_eq!(first_line(&next_state(&sock)), "READY=1");
    gw.wait_stdout(&format!(
        "sipwire: configuration reloaded from {}",
        dir.path().join("sipwire.toml").display()
    ));

    gw.signal("TERM");
    assert_eq!(first_line(&next_state(&sock)), "STOPPING=1");
    gw.wait_stdout("sipwire: stopped");
}

#[test]
fn abstract_socket_and_watchdog() {
    use std::os::linux::net::SocketAddrExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let name = format!("sipwire-notify-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).expect("name");
    let sock = UnixDatagram::bind_addr(&addr).expect("bind abstract socket");
    sock.set_read_timeout(Some(ops_support::WAIT))
        .expect("timeout");
    let at = format!("@{name}");
    // 200 ms watchdog: a keep-alive every 100 ms.
    let _gw = Gateway::start(
        &config(dir.path()),
        &[],
        &[("NOTIFY_SOCKET", &at), ("WATCHDOG_USEC", "200000")],
    );
    assert_eq!(first_line(&next_state(&sock)), "READY=1");
    let start = Instant::now();
    let mut pings = 0;
    let mut buf = [0u8; 256];
    while pings < 3 {
        let n = sock.recv(&mut buf).expect("a keep-alive in time");
        if &buf[..n] == b"WATCHDOG=1" {
            pings += 1;
        }
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "3 keep-alives took {:?}",
        start.elapsed()
    );
}

#[test]
fn a_watchdog_meant_for_another_process_is_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(ops_support::WAIT))
        .expect("timeout");
    let _gw = Gateway::start(
        &config(dir.path()),
        &[],
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().expect("utf-8")),
            ("WATCHDOG_USEC", "100000"),
            ("WATCHDOG_PID", "1"),
        ],
    );
    assert_eq!(first_line(&next_state(&sock)), "READY=1");
    sock.set_read_timeout(Some(Duration::from_millis(400)))
        .expect("timeout");
    let mut buf = [0u8; 256];
    assert!(sock.recv(&mut buf).is_err(), "no keep-alive expected");
}

/// `systemd-analyze verify` on docs/sipwire.service, with `/usr/bin/sipwire` pointed at the
/// binary under test (verify checks that the commands exist). lab/install-deps.sh installs
/// systemd-analyze; without it the test fails.
#[test]
fn the_unit_file_passes_systemd_analyze_verify() {
    let unit = include_str!("../../docs/sipwire.service");
    for needed in [
        "Type=notify",
        "User=sipwire",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WatchdogSec=",
        "StateDirectory=sipwire",
        "SystemCallFilter=@system-service",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
    ] {
        assert!(unit.contains(needed), "{needed} missing");
    }
    let probe = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .expect("systemd-analyze is needed (package systemd; lab/install-deps.sh installs it)");
    assert!(probe.status.success());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sipwire.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/sipwire", env!("CARGO_BIN_EXE_sipwire")),
    )
    .expect("write unit");
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("sipwire.service"),
        "warnings about the unit: {stderr}"
    );
}
