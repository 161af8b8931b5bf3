//! Graceful stop of the relay: a load of transactions is in flight through `sipwire run`
//! when SIGTERM arrives; a request sent after the signal gets 503, every transaction
//! started before it completes (its 200 reaches the UAC), and the process exits 0.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sipwire::wire::Message;
use support::gateway;

const LOAD: usize = 40;

fn message(n: usize, uac: std::net::SocketAddr, uas: std::net::SocketAddr) -> String {
    format!(
        "MESSAGE sip:bob@{uas} SIP/2.0\r\nVia: SIP/2.0/UDP {uac};branch=z9hG4bKdrain{n};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@{uac}>;tag=a{n}\r\nTo: <sip:bob@{uas}>\r\n\
         Call-ID: drain{n}@test\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
    )
}

/// The UAS's 200: the request's Vias, From, To with a tag, Call-ID, CSeq.
fn ok(req: &Message) -> String {
    let mut r = String::from("SIP/2.0 200 OK\r\n");
    for v in req.header_lines("Via") {
        r.push_str(&format!("Via: {}\r\n", String::from_utf8_lossy(v)));
    }
    let h = |n: &str| String::from_utf8_lossy(req.header(n).expect(n)).into_owned();
    r.push_str(&format!(
        "From: {}\r\nTo: {};tag=b\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        h("From"),
        h("To"),
        req.call_id(),
        h("CSeq")
    ));
    r
}

fn recv(sock: &UdpSocket) -> Option<(Message, std::net::SocketAddr)> {
    let mut buf = vec![0u8; 65536];
    let (n, from) = sock.recv_from(&mut buf).ok()?;
    Some((
        Message::parse(Bytes::copy_from_slice(&buf[..n])).expect("SIP"),
        from,
    ))
}

#[test]
fn sigterm_lets_every_transaction_in_flight_finish_and_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "[[listener]]\nname = 'udp'\ntransport = 'udp'\naddr = '127.0.0.1:0'\n\
         [[listener]]\nname = 'tcp'\ntransport = 'tcp'\naddr = '127.0.0.1:0'\n\
         [limits]\nshutdown_drain_ms = 10000\n[state]\ndir = '{}'\n",
        dir.path().join("state").display()
    );
    let mut gw = gateway::start(dir.path(), &config);
    let relay = gw.listener("udp");
    let uas = UdpSocket::bind("127.0.0.1:0").expect("uas");
    let uac = UdpSocket::bind("127.0.0.1:0").expect("uac");
    let (uas_addr, uac_addr) = (uas.local_addr().unwrap(), uac.local_addr().unwrap());
    uas.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    uac.set_read_timeout(Some(Duration::from_secs(5))).unwrap();

    // The load: LOAD transactions, all forwarded and waiting for the UAS.
    for n in 0..LOAD {
        uac.send_to(message(n, uac_addr, uas_addr).as_bytes(), relay)
            .expect("send");
    }
    let mut pending = Vec::new();
    let mut seen = HashSet::new();
    while seen.len() < LOAD {
        let (m, from) = recv(&uas).expect("forwarded request");
        if seen.insert(m.call_id().to_owned()) {
            pending.push((m, from));
        }
    }

    // SIGTERM while every one of them is in flight.
    let killed = Command::new("kill")
        .args(["-TERM", &gw.child.id().to_string()])
        .status()
        .expect("run kill(1)");
    assert!(killed.success());
    std::thread::sleep(Duration::from_millis(300));

    // A new transaction after the signal is refused.
    uac.send_to(message(LOAD, uac_addr, uas_addr).as_bytes(), relay)
        .expect("send");
    let (r, _) = recv(&uac).expect("an answer to the late request");
    assert_eq!(r.status_code(), Some(503), "late request refused");
    assert_eq!(r.call_id(), format!("drain{LOAD}@test"));

    // The UAS answers the load after the signal; every 200 reaches the UAC.
    std::thread::sleep(Duration::from_millis(300));
    for (m, from) in &pending {
        uas.send_to(ok(m).as_bytes(), from).expect("answer");
    }
    let mut done = HashSet::new();
    while done.len() < LOAD {
        let (r, _) = recv(&uac).expect("a final response for every transaction");
        if r.status_code() == Some(200) {
            done.insert(r.call_id().to_owned());
        }
    }

    // Then the process exits 0, saying nothing was left unfinished.
    let end = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = gw.child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < end, "sipwire did not exit after the drain");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let rest: Vec<String> = gw.lines.try_iter().collect();
    assert!(
        rest.iter()
            .any(|l| l == "sipwire: every transaction finished"),
        "{rest:?}"
    );
}

#[test]
fn a_second_sigterm_during_the_drain_stops_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "[[listener]]\nname = 'udp'\ntransport = 'udp'\naddr = '127.0.0.1:0'\n\
         [[listener]]\nname = 'tcp'\ntransport = 'tcp'\naddr = '127.0.0.1:0'\n\
         [limits]\nshutdown_drain_ms = 60000\n[state]\ndir = '{}'\n",
        dir.path().join("state").display()
    );
    let mut gw = gateway::start(dir.path(), &config);
    let relay = gw.listener("udp");
    let uas = UdpSocket::bind("127.0.0.1:0").expect("uas");
    let uac = UdpSocket::bind("127.0.0.1:0").expect("uac");
    let (uas_addr, uac_addr) = (uas.local_addr().unwrap(), uac.local_addr().unwrap());
    uas.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // One transaction the UAS never answers: the drain would wait a minute for it.
    uac.send_to(message(0, uac_addr, uas_addr).as_bytes(), relay)
        .expect("send");
    recv(&uas).expect("forwarded request");
    // The admin socket lists it as in flight (`sipwire transactions`).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let json = rt
        .block_on(sipwire_gateway::admin::query(
            &dir.path().join("state"),
            "transactions",
        ))
        .expect("admin transactions");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["in_flight"], 1, "{v}");
    assert_eq!(v["transactions"][0]["call_id"], "drain0@test", "{v}");
    assert_eq!(v["transactions"][0]["method"], "MESSAGE", "{v}");
    assert_eq!(v["transactions"][0]["final_sent"], false, "{v}");
    let pid = gw.child.id().to_string();
    let term = || {
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill(1)");
        assert!(killed.success());
    };
    term();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        gw.child.try_wait().expect("wait").is_none(),
        "still draining"
    );
    let second = Instant::now();
    term();
    let status = loop {
        if let Some(s) = gw.child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            second.elapsed() < Duration::from_secs(5),
            "sipwire did not stop at the second SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let rest: Vec<String> = gw.lines.try_iter().collect();
    assert!(
        rest.iter().any(|l| l.starts_with("sipwire: second signal")),
        "{rest:?}"
    );
}
