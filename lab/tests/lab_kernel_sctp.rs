//! The runner's promise: lab tests run in a kernel with SCTP. Fails (never skips) when there is none,
//! and checks an SCTP association between two lab hosts with plain socket calls (independent of
//! sipwire-sys, so a failure here points at the environment, not at our SCTP layer).

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

const IPPROTO_SCTP: i32 = 132;

#[test]
fn kernel_has_sctp() {
    if let Err(e) = Socket::new(
        Domain::IPV4,
        Type::STREAM,
        Some(Protocol::from(IPPROTO_SCTP)),
    ) {
        panic!(
            "this kernel has no SCTP ({e}); lab tests must run where it has (lab/test-all.sh \
             boots a VM with Debian's kernel for that)"
        );
    }
}

#[test]
fn sctp_association_between_two_hosts() {
    let mut lab = sipwire_lab::Topology::new().expect("lab (run as root)");
    let a = lab.host("a").expect("host");
    let b = lab.host("b").expect("host");
    lab.link(&a, &["192.0.2.1/24"], &b, &["192.0.2.2/24"])
        .expect("link");
    let server: SocketAddr = "192.0.2.2:3868".parse().expect("addr");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let srv = b.spawn(move || -> std::io::Result<Vec<u8>> {
        let s = Socket::new(
            Domain::IPV4,
            Type::STREAM,
            Some(Protocol::from(IPPROTO_SCTP)),
        )?;
        s.set_reuse_address(true)?;
        s.bind(&SockAddr::from(server))?;
        s.listen(4)?;
        let _ = ready_tx.send(());
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let (conn, _) = s.accept()?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut conn = std::net::TcpStream::from(conn); // only used for Read/Write on the fd
        let mut buf = vec![0u8; 64];
        let n = conn.read(&mut buf)?;
        buf.truncate(n);
        conn.write_all(&buf)?;
        Ok(buf)
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("server listening");
    let got = a
        .spawn(move || -> std::io::Result<Vec<u8>> {
            let s = Socket::new(
                Domain::IPV4,
                Type::STREAM,
                Some(Protocol::from(IPPROTO_SCTP)),
            )?;
            s.connect_timeout(&SockAddr::from(server), Duration::from_secs(5))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut conn = std::net::TcpStream::from(s);
            conn.write_all(b"OPTIONS over SCTP")?;
            let mut buf = vec![0u8; 64];
            let n = conn.read(&mut buf)?;
            buf.truncate(n);
            Ok(buf)
        })
        .join()
        .expect("thread")
        .expect("netns")
        .expect("client");
    assert_eq!(got, b"OPTIONS over SCTP");
    assert_eq!(
        srv.join().expect("thread").expect("netns").expect("server"),
        b"OPTIONS over SCTP"
    );
}
