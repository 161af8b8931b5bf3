//! Lab: SCTP-AUTH (RFC 4895). With net.sctp.auth_enable=1 in both hosts and the same key set from
//! user space, DATA is authenticated and flows; a peer whose namespace has auth_enable=0 is detected
//! (peer_auth_supported is false, and key operations there give SctpError::AuthDisabled).

mod common;

use common::*;
use sipwire_sys::auth::CHUNK_DATA;
use sipwire_sys::*;
use std::sync::mpsc;

const KEY: &[u8] = b"sipwire lab shared key 0123456789";

#[test]
fn authenticated_data_flows_between_auth_enabled_hosts() {
    let (_lab, a, b, _ip_a, ip_b) = pair(false);
    a.sysctl("net/sctp/auth_enable", "1").expect("sysctl a");
    b.sysctl("net/sctp/auth_enable", "1").expect("sysctl b");
    let srv = sa(ip_b, 5060);
    let (tx, rx) = mpsc::channel();
    let server = b.run(move || async move {
        let sock = SctpSocket::one_to_one(Family::V4)?;
        sock.add_auth_chunk(CHUNK_DATA)?;
        sock.set_auth_key(0, 1, KEY)?;
        sock.set_active_auth_key(0, 1)?;
        sock.bind(&[srv])?;
        let l = sock.listen(4)?;
        tx.send(())?;
        let (s, _) = tokio::time::timeout(STEP, l.accept()).await??;
        let mut rb = buf();
        let (d, _) = recv_msg!(s, rb);
        s.send(&d, &SendInfo::on_stream(0)).await?;
        let peer_chunks = s.peer_auth_chunks(0)?;
        let _ = tokio::time::timeout(STEP, s.recv(&mut rb)).await;
        TResult::Ok(peer_chunks)
    });
    rx.recv_timeout(STEP).expect("server ready");
    let client = a.run(move || async move {
        let sock = SctpSocket::one_to_one(Family::V4)?;
        sock.add_auth_chunk(CHUNK_DATA)?;
        sock.set_auth_key(0, 1, KEY)?;
        sock.set_active_auth_key(0, 1)?;
        sock.subscribe(&[Event::Authentication])?;
        let s = tokio::time::timeout(STEP, sock.connect(&[srv])).await??;
        let supported = s.peer_auth_supported(0)?;
        let peer_chunks = s.peer_auth_chunks(0)?;
        let local_chunks = s.local_auth_chunks(0)?;
        let active = s.active_auth_key(0)?;
        s.send(b"authenticated INVITE", &SendInfo::on_stream(0))
            .await?;
        let mut rb = buf();
        let (d, _) = recv_msg!(s, rb);
        TResult::Ok((supported, peer_chunks, local_chunks, active, d))
    });
    let (supported, peer_chunks, local_chunks, active, d) = join("client", client);
    assert!(
        supported,
        "peer with auth_enable=1 must be detected as AUTH capable"
    );
    assert!(
        peer_chunks.contains(&CHUNK_DATA),
        "peer requires DATA to be authenticated: {peer_chunks:?}"
    );
    assert!(local_chunks.contains(&CHUNK_DATA), "{local_chunks:?}");
    assert_eq!(active, 1);
    assert_eq!(d, b"authenticated INVITE");
    assert!(join("server", server).contains(&CHUNK_DATA));
}

#[test]
fn peer_without_auth_is_detected() {
    let (_lab, a, b, _ip_a, ip_b) = pair(false);
    a.sysctl("net/sctp/auth_enable", "1").expect("sysctl a");
    b.sysctl("net/sctp/auth_enable", "0").expect("sysctl b");
    let srv = sa(ip_b, 5060);
    let (tx, rx) = mpsc::channel();
    let server = b.run(move || async move {
        let sock = SctpSocket::one_to_one(Family::V4)?;
        let key_err = sock.set_auth_key(0, 1, KEY).err();
        sock.bind(&[srv])?;
        let l = sock.listen(4)?;
        tx.send(())?;
        let (s, _) = tokio::time::timeout(STEP, l.accept()).await??;
        let mut rb = buf();
        let (d, _) = recv_msg!(s, rb);
        s.send(&d, &SendInfo::on_stream(0)).await?;
        let _ = tokio::time::timeout(STEP, s.recv(&mut rb)).await;
        TResult::Ok(key_err.map(|e| e.to_string()))
    });
    rx.recv_timeout(STEP).expect("server ready");
    let client = a.run(move || async move {
        let sock = SctpSocket::one_to_one(Family::V4)?;
        sock.set_auth_key(0, 1, KEY)?;
        let s = tokio::time::timeout(STEP, sock.connect(&[srv])).await??;
        let supported = s.peer_auth_supported(0)?;
        let chunks = s.peer_auth_chunks(0);
        s.send(b"plain", &SendInfo::on_stream(0)).await?;
        let mut rb = buf();
        let (d, _) = recv_msg!(s, rb);
        TResult::Ok((supported, chunks.is_err(), d))
    });
    let (supported, chunks_err, d) = join("client", client);
    assert!(
        !supported,
        "peer with auth_enable=0 must be detected as not AUTH capable"
    );
    assert!(chunks_err, "peer AUTH chunk list must not be available");
    assert_eq!(d, b"plain");
    let key_err = join("server", server);
    assert!(
        key_err
            .as_deref()
            .is_some_and(|m| m.contains("auth_enable")),
        "setting a key with auth_enable=0 must give AuthDisabled: {key_err:?}"
    );
}
