//! The lab itself, in a real kernel as root: hosts, links, impairments, link down/up, DNS, scenarios.
//! Run by lab/test-all.sh natively (root) or in the lab VM.

use sipwire_lab::{Impairment, Scenario, Topology, Zone};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// A UDP echo server inside `host` answering `count` datagrams (bounded by a 60 s read timeout: `ip`
/// and `tc` calls are slow in the emulated lab VM).
fn echo_server(
    host: &sipwire_lab::Host,
    bind: SocketAddr,
    count: usize,
) -> std::thread::JoinHandle<Result<usize, sipwire_lab::LabError>> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = host.spawn(move || {
        let sock = UdpSocket::bind(bind).expect("bind echo server");
        sock.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        ready_tx.send(()).expect("ready");
        let mut buf = [0u8; 2048];
        let mut n = 0;
        while n < count {
            let Ok((len, from)) = sock.recv_from(&mut buf) else {
                break;
            };
            sock.send_to(&buf[..len], from).expect("echo");
            n += 1;
        }
        n
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("echo server started");
    handle
}

/// Sends one datagram from inside `host` and returns the round-trip time, or None on timeout.
fn rtt(host: &sipwire_lab::Host, to: SocketAddr, timeout: Duration) -> Option<Duration> {
    host.spawn(move || {
        let bind: SocketAddr = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
            .parse()
            .expect("addr");
        let sock = UdpSocket::bind(bind).expect("bind client");
        sock.set_read_timeout(Some(timeout)).expect("timeout");
        let start = Instant::now();
        sock.send_to(b"ping", to).ok()?;
        let mut buf = [0u8; 16];
        sock.recv_from(&mut buf).ok()?;
        Some(start.elapsed())
    })
    .join()
    .expect("thread")
    .expect("entered namespace")
}

#[test]
fn two_hosts_talk_over_ipv4_and_ipv6() {
    let mut lab = Topology::new().expect("lab (run as root)");
    let a = lab.host("a").expect("host a");
    let b = lab.host("b").expect("host b");
    lab.link(
        &a,
        &["192.0.2.1/24", "2001:db8::1/64"],
        &b,
        &["192.0.2.2/24", "2001:db8::2/64"],
    )
    .expect("link");
    for to in ["192.0.2.2:7000", "[2001:db8::2]:7000"] {
        let to: SocketAddr = to.parse().expect("addr");
        let bind = SocketAddr::new(
            if to.is_ipv4() {
                "0.0.0.0".parse().expect("ip")
            } else {
                "::".parse().expect("ip")
            },
            7000,
        );
        let server = echo_server(&b, bind, 1);
        let t = rtt(&a, to, Duration::from_secs(5));
        assert!(t.is_some(), "no echo from {to}");
        assert_eq!(server.join().expect("thread").expect("netns"), 1);
    }
    // Namespaces are isolated: host b's address is not reachable from the test's own namespace.
    let outside = UdpSocket::bind("0.0.0.0:0").expect("bind");
    outside
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let _ = outside.send_to(b"x", "192.0.2.2:7000");
    assert!(outside.recv_from(&mut [0u8; 8]).is_err());
}

#[test]
fn netem_delay_and_link_down_up() {
    let mut lab = Topology::new().expect("lab (run as root)");
    let a = lab.host("a").expect("host a");
    let b = lab.host("b").expect("host b");
    let link = lab
        .link(&a, &["203.0.113.1/24"], &b, &["203.0.113.2/24"])
        .expect("link");
    let to: SocketAddr = "203.0.113.2:7001".parse().expect("addr");
    let server = echo_server(&b, "0.0.0.0:7001".parse().expect("addr"), 3);

    link.impair(Impairment {
        delay_ms: 25,
        ..Impairment::default()
    })
    .expect("netem");
    let t = rtt(&a, to, Duration::from_secs(5)).expect("echo through netem");
    assert!(
        t >= Duration::from_millis(50),
        "RTT {t:?} should include 2 x 25 ms"
    );

    link.down().expect("down");
    assert!(
        rtt(&a, to, Duration::from_millis(500)).is_none(),
        "traffic passed a down link"
    );
    link.up().expect("up");
    link.impair(Impairment::default()).expect("netem off");
    // The link needs a moment to come back (carrier); a bounded retry.
    let mut back = false;
    for _ in 0..30 {
        if rtt(&a, to, Duration::from_millis(500)).is_some() {
            back = true;
            break;
        }
    }
    assert!(back, "no traffic after link up");
    drop(server);
}

#[test]
fn addresses_outside_documentation_ranges_are_refused() {
    let mut lab = Topology::new().expect("lab (run as root)");
    let a = lab.host("a").expect("host a");
    let b = lab.host("b").expect("host b");
    let err = lab
        .link(&a, &["10.0.0.1/24"], &b, &["10.0.0.2/24"])
        .expect_err("must refuse");
    assert!(err.to_string().contains("documentation"), "{err}");
}

#[test]
fn dns_host_answers_the_zone() {
    let mut lab = Topology::new().expect("lab (run as root)");
    let client = lab.host("client").expect("host");
    let dns = lab.host("dns").expect("host");
    lab.link(&client, &["198.51.100.1/24"], &dns, &["198.51.100.53/24"])
        .expect("link");
    let zone = Zone::new()
        .host("p2.example.net", &["192.0.2.128".parse().expect("ip")])
        .srv("_sips._tcp.example.net", "p2.example.net", 5061, 10, 60)
        .naptr("example.net", 10, 50, "SIPS+D2T", "_sips._tcp.example.net");
    let server = lab
        .dns(&dns, "198.51.100.53".parse().expect("ip"), &zone)
        .expect("dnsmasq");
    // A raw A query for p2.example.net from the client host.
    let answer = client
        .spawn(move || {
            let sock = UdpSocket::bind("0.0.0.0:0").expect("bind");
            sock.set_read_timeout(Some(Duration::from_secs(3)))
                .expect("timeout");
            let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
            for label in ["p2", "example", "net"] {
                q.push(label.len() as u8);
                q.extend_from_slice(label.as_bytes());
            }
            q.extend_from_slice(&[0, 0, 1, 0, 1]);
            sock.send_to(&q, server).expect("send");
            let mut buf = [0u8; 512];
            let (n, _) = sock.recv_from(&mut buf).expect("DNS answer");
            buf[..n].to_vec()
        })
        .join()
        .expect("thread")
        .expect("netns");
    assert_eq!(&answer[..2], &[0x12, 0x34]);
    assert_eq!(answer[3] & 0x0f, 0, "rcode");
    assert!(
        answer.ends_with(&[192, 0, 2, 128]),
        "A record 192.0.2.128 in {answer:?}"
    );
    let _ = IpAddr::from([192, 0, 2, 128]);
}

#[test]
fn shipped_scenarios_build() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
    for name in [
        "rfc5923-fig4.toml",
        "multihomed-pair.toml",
        "netem-50ms-rtt.toml",
    ] {
        let s = Scenario::load(format!("{dir}/{name}")).expect("scenario parses");
        let built = Topology::from_scenario(&s).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(built.links.len(), s.links.len());
        assert_eq!(built.dns.is_some(), s.dns.is_some(), "{name}");
    }
}
