//! `sipwire run` relaying calls between real peers on loopback: SIPp UAC → sipwire → SIPp
//! UAS, INVITE / 180 / 200 / ACK / BYE / 200 with Record-Route (both scenarios fail a call
//! whose INVITE or 200 lacks it; ACK and BYE follow the route set), over UDP → UDP,
//! TCP → TCP, UDP in → TCP out and TCP in → UDP out. Every call completes, none fails.

mod relay_support;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use relay_support::{free_port, start, uac_args, uas_args, wait, Stats};
use support::gateway;

const CALLS: usize = 20;

fn relay(inbound: &str, outbound: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "[[listener]]\nname = 'udp'\ntransport = 'udp'\naddr = '127.0.0.1:0'\n\
         [[listener]]\nname = 'tcp'\ntransport = 'tcp'\naddr = '127.0.0.1:0'\n\
         [proxy]\nname_server = '127.0.0.1:9'\n[state]\ndir = '{}'\n",
        dir.path().join("state").display()
    );
    let gw = gateway::start(dir.path(), &config);
    let relay = gw.listener(inbound).to_string();
    let (uas_port, uac_port) = (free_port(), free_port());
    let uas_addr = format!("127.0.0.1:{uas_port}");
    let mut uas = start(
        Command::new("sipp"),
        dir.path(),
        "uas",
        &uas_args("127.0.0.1", uas_port, outbound, CALLS),
    );
    std::thread::sleep(Duration::from_millis(300));
    let mut uac = start(
        Command::new("sipp"),
        dir.path(),
        "uac",
        &uac_args(
            "127.0.0.1",
            uac_port,
            inbound,
            &relay,
            &uas_addr,
            outbound,
            CALLS,
            20,
        ),
    );
    let uac_rc = wait(&mut uac, Duration::from_secs(60));
    let uas_rc = wait(&mut uas, Duration::from_secs(30));
    let (c, s) = (Stats::read(&uac.stats), Stats::read(&uas.stats));
    let logs = || {
        format!(
            "uac: {}\nuas: {}",
            std::fs::read_to_string(&uac.log).unwrap_or_default(),
            std::fs::read_to_string(&uas.log).unwrap_or_default()
        )
    };
    assert_eq!((uac_rc, uas_rc), (0, 0), "{}", logs());
    assert_eq!((c.successful, c.failed), (CALLS as u64, 0), "uac {c:?}");
    assert_eq!((s.successful, s.failed), (CALLS as u64, 0), "uas {s:?}");
    drop(gw);
}

#[test]
fn udp_to_udp() {
    relay("udp", "udp");
}

#[test]
fn tcp_to_tcp() {
    relay("tcp", "tcp");
}

#[test]
fn udp_in_tcp_out() {
    relay("udp", "tcp");
}

#[test]
fn tcp_in_udp_out() {
    relay("tcp", "udp");
}
