//! `sipwire run` relaying calls in the lab VM, between SIPp peers in their own network
//! namespaces: the UAC on the access link (UDP, 5% loss each way by netem), the UAS on the
//! core link over TCP, then over SCTP (`-t s1`). Every call completes by retransmission on
//! the UDP side, and the reliable side receives no retransmission (the stateful relay
//! absorbs them). Needs root, netem and kernel SCTP (the lab VM).

mod relay_support;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use relay_support::{received_retransmissions, start, uac_args, uas_args, wait, Stats};
use sipwire_lab::{Impairment, Topology};
use support::gateway;

const CALLS: usize = 50;

fn relay_with_loss(outbound: &str) {
    let mut lab = Topology::new().expect("lab (run as root)");
    let uac = lab.host("uac").expect("host");
    let gw_host = lab.host("gw").expect("host");
    let uas = lab.host("uas").expect("host");
    let access = lab
        .link(&uac, &["192.0.2.2/24"], &gw_host, &["192.0.2.1/24"])
        .expect("access link");
    lab.link(&gw_host, &["198.51.100.1/24"], &uas, &["198.51.100.2/24"])
        .expect("core link");
    access
        .impair(Impairment {
            loss_percent: 5.0,
            ..Impairment::default()
        })
        .expect("netem loss");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "[[listener]]\nname = 'udp-a'\ntransport = 'udp'\naddr = '192.0.2.1:5060'\nnetwork = 'access'\n\
         [[listener]]\nname = 'tcp-a'\ntransport = 'tcp'\naddr = '192.0.2.1:5060'\nnetwork = 'access'\n\
         [[listener]]\nname = 'tcp-c'\ntransport = 'tcp'\naddr = '198.51.100.1:5060'\nnetwork = 'core'\n\
         [[listener]]\nname = 'sctp-c'\ntransport = 'sctp'\naddr = '198.51.100.1:5060'\nnetwork = 'core'\n\
         [proxy]\nname_server = '127.0.0.1:9'\n[state]\ndir = '{}'\n",
        dir.path().join("state").display()
    );
    let gw = gateway::start_in(&gw_host, dir.path(), &config);
    let mut uas_sipp = start(
        uas.command("sipp"),
        dir.path(),
        "uas",
        &[
            uas_args("198.51.100.2", 5070, outbound, CALLS),
            vec!["-trace_counts".into()],
        ]
        .concat(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut uac_sipp = start(
        uac.command("sipp"),
        dir.path(),
        "uac",
        &uac_args(
            "192.0.2.2",
            5080,
            "udp",
            "192.0.2.1:5060",
            "198.51.100.2:5070",
            outbound,
            CALLS,
            10,
        ),
    );
    let uac_rc = wait(&mut uac_sipp, Duration::from_secs(120));
    let uas_rc = wait(&mut uas_sipp, Duration::from_secs(60));
    let logs = || {
        format!(
            "uac: {}\nuas: {}",
            std::fs::read_to_string(&uac_sipp.log).unwrap_or_default(),
            std::fs::read_to_string(&uas_sipp.log).unwrap_or_default()
        )
    };
    let (c, s) = (Stats::read(&uac_sipp.stats), Stats::read(&uas_sipp.stats));
    eprintln!("{outbound}: uac {c:?}, uas {s:?}");
    assert_eq!(
        (c.successful, c.failed),
        (CALLS as u64, 0),
        "uac {c:?}\n{}",
        logs()
    );
    assert_eq!(
        (s.successful, s.failed),
        (CALLS as u64, 0),
        "uas {s:?}\n{}",
        logs()
    );
    assert_eq!((uac_rc, uas_rc), (0, 0), "{}", logs());
    assert!(
        c.retransmissions > 0,
        "the loss made the UAC retransmit: {c:?}"
    );
    assert_eq!(
        received_retransmissions(dir.path(), "relay-uas"),
        0,
        "the {outbound} side received no retransmission"
    );
    drop(gw);
}

#[test]
fn lab_relay_udp_with_loss_to_tcp() {
    relay_with_loss("tcp");
}

#[test]
fn lab_relay_udp_with_loss_to_sctp() {
    relay_with_loss("sctp");
}
