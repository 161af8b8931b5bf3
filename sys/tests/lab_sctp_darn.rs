//! Lab: interoperability with lksctp-tools' `sctp_darn` (a C program on libsctp) in both directions:
//! darn sends a line to our one-to-many endpoint, and our endpoint sends a message that darn, as a
//! listener, prints.

mod common;

use common::*;
use sipwire_sys::*;
use std::io::Read;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn require_darn() {
    if std::process::Command::new("sctp_darn")
        .arg("-h")
        .output()
        .is_err()
    {
        panic!("sctp_darn not found: install package lksctp-tools");
    }
}

#[test]
fn sctp_darn_sends_to_our_endpoint() {
    require_darn();
    let (_lab, a, b, ip_a, ip_b) = pair(false);
    let srv = sa(ip_b, 5060);
    let (tx, rx) = mpsc::channel();
    let server = b.run(move || async move {
        let ep = SctpEndpoint::bind(&[srv], true)?;
        tx.send(())?;
        let mut rb = buf();
        let (d, info) = recv_msg!(ep, rb);
        TResult::Ok((d, ep.peer_addrs(info.assoc_id)?))
    });
    rx.recv_timeout(STEP).expect("server ready");
    let mut child = a
        .command("sctp_darn")
        .args([
            "-H",
            &ip_a.to_string(),
            "-P",
            "6000",
            "-h",
            &ip_b.to_string(),
            "-p",
            "5060",
            "-s",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sctp_darn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(b"hello from sctp_darn\n")
            .expect("write to darn");
        // Keep stdin open until we got the message, so darn does not close first.
        let (d, peers) = join("server", server);
        drop(stdin);
        assert!(
            String::from_utf8_lossy(&d).contains("hello from sctp_darn"),
            "{d:?}"
        );
        assert_eq!(
            peers.first().map(|p| (p.ip(), p.port())),
            Some((ip_a, 6000))
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn our_endpoint_sends_to_sctp_darn() {
    require_darn();
    let (_lab, a, b, ip_a, ip_b) = pair(false);
    let mut child = b
        .command("stdbuf")
        .args([
            "-oL",
            "sctp_darn",
            "-H",
            &ip_b.to_string(),
            "-P",
            "5060",
            "-l",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sctp_darn");
    let darn = sa(ip_b, 5060);
    let client = a.run(move || async move {
        let ep = SctpEndpoint::bind(&[sa(ip_a, 0)], false)?;
        ep.subscribe(&[Event::AssocChange])?;
        // darn may still be starting: retry the association a few times.
        let mut rb = buf();
        for _ in 0..20 {
            ep.send_to(b"hello from sipwire-sys\n", &SendInfo::on_stream(0), &darn)
                .await?;
            match tokio::time::timeout(STEP, ep.recv(&mut rb)).await?? {
                Received::Notification(Notification::AssocChange {
                    state: AssocState::CommUp,
                    ..
                }) => {
                    // Give darn time to print before the test reads its output.
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    return TResult::Ok(());
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        Err("no association with sctp_darn".into())
    });
    join("client", client);
    let _ = child.kill();
    let mut out = String::new();
    let start = Instant::now();
    if let Some(mut so) = child.stdout.take() {
        let _ = so.read_to_string(&mut out);
    }
    let _ = child.wait();
    assert!(start.elapsed() < STEP);
    // darn prints the payload without its last byte (it expects a line ending there).
    assert!(
        out.contains("DATA(23):  hello from sipwire-sys"),
        "darn printed: {out}"
    );
}
