//! Limits: a peer that stops reading does not stall other flows; a slowloris peer is cut
//! after the header timeout; the per-IP and global connection limits are enforced.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sipwire::transport::{Transport, TransportConfig, TransportError};
use sipwire::wire::response::response_to;
use support::poll::{eventually, WAIT};
use support::sip::options;
use support::transport::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

/// A server transport on 127.0.0.1 whose received requests are answered 200 by a task;
/// the flows it saw are reported on the returned channel.
async fn server(
    cfg: TransportConfig,
) -> (
    Transport,
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<sipwire::transport::Flow>,
) {
    let (t, mut rx) = Transport::new(cfg);
    let addr = t
        .bind_tcp("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let (ftx, frx) = tokio::sync::mpsc::unbounded_channel();
    let t2 = t.clone();
    tokio::spawn(async move {
        while let Some(inc) = rx.recv().await {
            let _ = ftx.send(inc.flow);
            if inc.message.is_request() {
                let _ = t2.send(inc.flow, response_to(&inc.message, 200, "OK"));
            }
        }
    });
    (t, addr, frx)
}

async fn options_round_trip(s: &mut TcpStream, server: SocketAddr, branch: &str) {
    let local = s.local_addr().expect("local");
    s.write_all(options("TCP", local, server, branch).as_bytes())
        .await
        .expect("send");
    let mut f = framer();
    let m = read_message(s, &mut f).await;
    assert_eq!(m.status_code(), Some(200));
}

#[tokio::test]
async fn a_peer_that_stops_reading_does_not_stall_others() {
    let bound = 256 * 1024;
    let (srv, addr, mut flows) = server(TransportConfig {
        write_queue_bytes: bound,
        ..TransportConfig::default()
    })
    .await;
    // The slow peer: a small receive buffer, and it never reads.
    let sock = TcpSocket::new_v4().expect("socket");
    sock.set_recv_buffer_size(4096).expect("rcvbuf");
    let slow = sock.connect(addr).await.expect("connect");
    let mut slow = slow;
    let local = slow.local_addr().expect("local");
    slow.write_all(options("TCP", local, addr, "slow").as_bytes())
        .await
        .expect("send");
    let slow_flow = tokio::time::timeout(WAIT, flows.recv())
        .await
        .expect("flow in time")
        .expect("flow");

    // A healthy peer doing round trips while the slow one is flooded.
    let mut good = TcpStream::connect(addr).await.expect("connect");
    options_round_trip(&mut good, addr, "warm").await;
    let healthy = tokio::spawn(async move {
        let mut worst = Duration::ZERO;
        for i in 0..50 {
            let t = Instant::now();
            options_round_trip(&mut good, addr, &format!("g{i}")).await;
            worst = worst.max(t.elapsed());
        }
        worst
    });

    let chunk = Bytes::from(vec![b'x'; 16 * 1024]);
    let mut overflowed = false;
    // Bounded: the kernel buffers plus the queue bound cannot exceed a few MB.
    for _ in 0..4096 {
        match srv.send(slow_flow, chunk.clone()) {
            Ok(()) => tokio::task::yield_now().await,
            Err(TransportError::Overflow { .. }) => {
                overflowed = true;
                break;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert!(overflowed, "the slow flow's queue never hit its bound");
    eventually(WAIT, "slow flow closed", || {
        srv.flow_info(slow_flow).is_none()
    })
    .await;
    let worst = tokio::time::timeout(WAIT, healthy)
        .await
        .expect("healthy peer finished")
        .expect("join");
    assert!(
        worst < Duration::from_secs(3),
        "a healthy round trip took {worst:?}"
    );
    assert!(matches!(
        srv.send(slow_flow, Bytes::from_static(b"x")),
        Err(TransportError::UnknownFlow(_))
    ));
}

/// End to end, the driver cuts a connection that sends nothing once the header timeout runs
/// out. The slowloris rules themselves (a header dripped byte by byte, a complete header
/// stopping the timer, a pending body not restarting it) are the flow core's simulated-time
/// tests (`transport::flow_core::tests::slowloris_and_silent_connections_are_cut_after_the_header_timeout`).
#[tokio::test]
async fn a_silent_connection_is_cut_after_the_header_timeout() {
    let (_srv, addr, _flows) = server(TransportConfig {
        header_timeout: Duration::from_millis(200),
        ..TransportConfig::default()
    })
    .await;
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let took = closed_within(&mut silent, Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(150), "cut after {took:?}");

    // A peer that completes its message in time is served.
    let mut ok = TcpStream::connect(addr).await.expect("connect");
    options_round_trip(&mut ok, addr, "ok").await;
}

async fn connect_from(src: &str, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().expect("socket");
    s.bind(format!("{src}:0").parse().expect("addr"))
        .expect("bind source");
    s.connect(to).await.expect("connect")
}

#[tokio::test]
async fn per_ip_and_global_limits() {
    let (srv, addr, _flows) = server(TransportConfig {
        max_connections: 4,
        max_connections_per_ip: 3,
        ..TransportConfig::default()
    })
    .await;
    let mut a = Vec::new();
    for i in 0..3 {
        let mut c = connect_from("127.0.0.1", addr).await;
        options_round_trip(&mut c, addr, &format!("a{i}")).await;
        a.push(c);
    }
    // A fourth connection from the same IP is accepted by the kernel, then closed.
    let mut over = connect_from("127.0.0.1", addr).await;
    closed_within(&mut over, Duration::from_secs(3)).await;
    assert_eq!(srv.stats().admitted, 3);

    // Another IP still gets in, up to the global limit.
    let mut b = connect_from("127.0.0.2", addr).await;
    options_round_trip(&mut b, addr, "b0").await;
    let mut b2 = connect_from("127.0.0.2", addr).await;
    closed_within(&mut b2, Duration::from_secs(3)).await;
    assert_eq!(srv.stats().admitted, 4);

    // Closing one frees its slot.
    drop(a.pop());
    eventually(WAIT, "slot released", || srv.stats().admitted == 3).await;
    let mut again = connect_from("127.0.0.1", addr).await;
    options_round_trip(&mut again, addr, "again").await;
}

/// `set_limits` on a running transport: lowering the per-IP limit below the connections open
/// keeps them (they are still served) and refuses a new one; a shorter idle timeout reaches
/// an idle connection opened before the change; raising the limit admits again.
#[tokio::test]
async fn limits_change_at_run_time_without_dropping_flows() {
    let (srv, addr, _flows) = server(TransportConfig::default()).await;
    let mut a = connect_from("127.0.0.1", addr).await;
    options_round_trip(&mut a, addr, "a0").await;
    let mut b = connect_from("127.0.0.1", addr).await;
    options_round_trip(&mut b, addr, "b0").await;

    let before = srv.limits();
    srv.set_limits(sipwire::transport::LiveLimits {
        max_connections_per_ip: 1,
        idle_timeout: Duration::from_secs(1),
        ..before
    });
    assert_eq!(srv.limits().max_connections_per_ip, 1);
    assert_eq!(
        srv.config().max_connections_per_ip,
        1_024,
        "the starting value"
    );
    // Both stay and are served; a third is refused.
    options_round_trip(&mut a, addr, "a1").await;
    let mut over = connect_from("127.0.0.1", addr).await;
    closed_within(&mut over, Duration::from_secs(3)).await;
    assert_eq!(srv.stats().admitted, 2);

    // `b` goes idle: the new idle timeout (counted from its last message) closes it.
    closed_within(&mut b, Duration::from_secs(5)).await;

    srv.set_limits(before);
    let mut c = connect_from("127.0.0.1", addr).await;
    options_round_trip(&mut c, addr, "c0").await;
}
