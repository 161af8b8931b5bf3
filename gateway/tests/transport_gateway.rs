//! The `sipwire run` binary: OPTIONS answered with 200 OK over UDP, TCP and TLS;
//! CRLFCRLF answered with exactly CRLF over TCP and TLS; graceful stop on SIGTERM.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use rustls::pki_types::ServerName;
use sipwire::wire::{Message, Rport};
use support::poll::{eventually, WAIT};
use support::sip::{options, parse, request};
use support::transport::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

struct Gateway {
    run: support::gateway::Running,
    udp: SocketAddr,
    tcp: SocketAddr,
    tls: SocketAddr,
    state: tempfile::TempDir,
}

fn start() -> Gateway {
    let state = tempfile::tempdir().expect("tempdir");
    let cfg = format!(
        "[[listener]]\nname = 'u'\ntransport = 'udp'\naddr = '127.0.0.1:0'\n\
         [[listener]]\nname = 't'\ntransport = 'tcp'\naddr = '127.0.0.1:0'\n\
         [[listener]]\nname = 's'\ntransport = 'tls'\naddr = '127.0.0.1:0'\ndomain = 'localhost'\n\
         [tls]\ndev_ca = true\n[state]\ndir = '{}'\n",
        state.path().display()
    );
    let run = support::gateway::start(state.path(), &cfg);
    Gateway {
        udp: run.listener("udp"),
        tcp: run.listener("tcp"),
        tls: run.listener("tls"),
        run,
        state,
    }
}

fn check_200(resp: &Message, req_branch: &str, src: SocketAddr) {
    assert_eq!(resp.status_code(), Some(200), "{resp:?}");
    let via = resp.top_via().expect("via");
    assert_eq!(via.branch, Some(format!("z9hG4bK{req_branch}").as_str()));
    assert_eq!(via.received, Some(src.ip()));
    assert_eq!(via.rport, Some(Rport::Port(src.port())));
    assert_eq!(resp.call_id(), format!("{req_branch}@test"));
    assert_eq!(resp.cseq().seq, 1);
    assert_eq!(resp.cseq().method, "OPTIONS");
    assert!(resp.to_tag().is_some(), "To tag added");
    assert_eq!(resp.from_tag(), Some(format!("t{req_branch}").as_str()));
    assert_eq!(resp.content_length(), Some(0));
}

async fn stream_checks<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    local: SocketAddr,
    server: SocketAddr,
    token: &str,
) {
    // CRLFCRLF -> exactly CRLF, at once.
    s.write_all(b"\r\n\r\n").await.expect("ping");
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, s.read(&mut buf))
        .await
        .expect("pong in time")
        .expect("read");
    assert_eq!(&buf[..n], b"\r\n", "pong must be exactly CRLF");
    let extra = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await;
    assert!(extra.is_err(), "nothing may follow the pong");

    let branch = format!("gw{token}");
    s.write_all(options(token, local, server, &branch).as_bytes())
        .await
        .expect("send");
    let mut f = framer();
    let resp = read_message(s, &mut f).await;
    check_200(&resp, &branch, local);

    // Other requests for us: 404 (the relay is no registrar); a request for elsewhere is
    // relayed (here to a closed port: the transport error gives a 5xx).
    let invite = request("INVITE", token, local, server, "inv", 0);
    s.write_all(invite.as_bytes()).await.expect("send");
    let r = read_message(s, &mut f).await;
    let r = if r.status_code() == Some(100) {
        read_message(s, &mut f).await
    } else {
        r
    };
    assert_eq!(r.status_code(), Some(404));
    let elsewhere: SocketAddr = "127.0.0.1:1".parse().expect("addr");
    let fwd = request("MESSAGE", token, local, elsewhere, "msg", 10)
        .replace("127.0.0.1:1 SIP/2.0", "127.0.0.1:1;transport=tcp SIP/2.0");
    s.write_all(fwd.as_bytes()).await.expect("send");
    let code = read_message(s, &mut f)
        .await
        .status_code()
        .expect("a response");
    assert!((500..600).contains(&code), "{code}");
}

#[tokio::test]
async fn run_answers_options_on_every_transport_and_stops_on_sigterm() {
    let mut gw = start();

    // UDP
    let u = UdpSocket::bind("127.0.0.1:0").await.expect("udp");
    let ul = u.local_addr().expect("local");
    u.send_to(options("UDP", ul, gw.udp, "gwudp").as_bytes(), gw.udp)
        .await
        .expect("send");
    let mut buf = vec![0u8; 65536];
    let (n, from) = tokio::time::timeout(WAIT, u.recv_from(&mut buf))
        .await
        .expect("UDP answer in time")
        .expect("recv");
    assert_eq!(
        from, gw.udp,
        "answered from the socket the request arrived on"
    );
    check_200(&parse(&buf[..n]), "gwudp", ul);

    // TCP
    let mut t = TcpStream::connect(gw.tcp).await.expect("tcp connect");
    let tl = t.local_addr().expect("local");
    stream_checks(&mut t, tl, gw.tcp, "TCP").await;

    // TLS, verified against the development CA the gateway wrote into its state dir.
    let roots = support::gateway::dev_ca_roots(gw.state.path());
    let cc = support::pki::client_config(roots, None, rustls::DEFAULT_VERSIONS);
    let tcp = TcpStream::connect(gw.tls).await.expect("tls connect");
    let sl = tcp.local_addr().expect("local");
    let mut s = tokio_rustls::TlsConnector::from(cc)
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS handshake with the development certificate");
    stream_checks(&mut s, sl, gw.tls, "TLS").await;

    // SIGTERM: graceful stop, exit status 0.
    let killed = Command::new("kill")
        .args(["-TERM", &gw.run.child.id().to_string()])
        .status()
        .expect("run kill(1)");
    assert!(killed.success());
    // The TLS connection gets a close_notify (clean EOF), not a reset.
    let mut rest = Vec::new();
    let r = tokio::time::timeout(WAIT, s.read_to_end(&mut rest))
        .await
        .expect("closed in time");
    assert!(r.is_ok(), "clean TLS close expected, got {r:?}");
    eventually(WAIT, "sipwire stopped", || {
        gw.run.child.try_wait().expect("wait").is_some()
    })
    .await;
    let status = gw.run.child.try_wait().expect("wait").expect("exited");
    assert!(status.success(), "exit status {status}");
    let printed: Vec<String> = gw.run.lines.try_iter().collect();
    assert!(
        printed.iter().any(|l| l == "sipwire: stopped"),
        "{printed:?}"
    );
}
