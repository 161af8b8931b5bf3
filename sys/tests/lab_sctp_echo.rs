//! Lab (kernel SCTP in network namespaces): echo over one-to-one and one-to-many sockets, IPv4 and
//! IPv6; one-to-many connectx, getpaddrs/getladdrs, peeloff, per-association shutdown and abort;
//! a 200 KiB message and 10,000 small messages on 16 streams, whole and in order per stream.

mod common;

use common::*;
use sipwire_sys::*;
use std::sync::mpsc;

#[test]
fn kernel_has_sctp() {
    require_kernel_sctp();
}

fn echo_one_to_one(v6: bool) {
    let (_lab, a, b, ip_a, ip_b) = pair(v6);
    let srv = sa(ip_b, 5060);
    let (tx, rx) = mpsc::channel();
    let server = b.run(move || async move {
        let l = SctpListener::bind(&[srv], 8)?;
        tx.send(())?;
        let (s, peer) = tokio::time::timeout(STEP, l.accept()).await??;
        assert_eq!(peer.ip(), ip_a);
        let mut rb = buf();
        let (data, info) = recv_msg!(s, rb);
        s.send(&data, &SendInfo::on_stream(info.stream).ppid(info.ppid))
            .await?;
        // Wait for the client's graceful shutdown.
        match tokio::time::timeout(STEP, s.recv(&mut rb)).await?? {
            Received::Closed => {}
            other => return Err(format!("expected close, got {other:?}").into()),
        }
        TResult::Ok(info)
    });
    rx.recv_timeout(STEP).expect("server ready");
    let client = a.run(move || async move {
        let sock = SctpSocket::one_to_one(Family::for_addrs(&[srv]))?;
        sock.set_init_msg(InitMsg {
            num_ostreams: 4,
            max_instreams: 4,
            ..Default::default()
        })?;
        let s = tokio::time::timeout(STEP, sock.connect(&[srv])).await??;
        s.set_nodelay(true)?;
        assert_eq!(s.peer_addrs()?, vec![srv]);
        assert!(s.local_addrs()?.iter().any(|x| x.ip() == ip_a));
        s.send(
            b"OPTIONS sip:b SIP/2.0\r\n\r\n",
            &SendInfo::on_stream(2).ppid(0x1234),
        )
        .await?;
        let mut rb = buf();
        let (data, info) = recv_msg!(s, rb);
        s.shutdown()?;
        TResult::Ok((data, info))
    });
    let (data, info) = join("client", client);
    assert_eq!(data, b"OPTIONS sip:b SIP/2.0\r\n\r\n");
    assert_eq!((info.stream, info.ppid), (2, 0x1234));
    let sinfo = join("server", server);
    assert_eq!((sinfo.stream, sinfo.ppid), (2, 0x1234));
}

#[test]
fn echo_one_to_one_ipv4() {
    echo_one_to_one(false);
}

#[test]
fn echo_one_to_one_ipv6() {
    echo_one_to_one(true);
}

fn echo_one_to_many(v6: bool) {
    let (_lab, a, b, ip_a, ip_b) = pair(v6);
    let srv = sa(ip_b, 5060);
    let (tx, rx) = mpsc::channel();
    let server = b.run(move || async move {
        let ep = SctpEndpoint::bind(&[srv], true)?;
        ep.subscribe(&[Event::AssocChange, Event::Shutdown])?;
        tx.send(())?;
        let mut rb = buf();
        // Echo two messages, then expect the client's abort of the association.
        let mut echoed = 0;
        let mut events = Vec::new();
        while events.len() < 8 {
            match tokio::time::timeout(STEP, ep.recv(&mut rb)).await?? {
                Received::Message { data, info, from } => {
                    let data = data.to_vec();
                    if let Some(f) = from {
                        assert_eq!(f.ip(), ip_a);
                    }
                    assert_eq!(
                        ep.peer_addrs(info.assoc_id)?.first().map(|x| x.ip()),
                        Some(ip_a)
                    );
                    ep.send(
                        &data,
                        &SendInfo::on_stream(info.stream)
                            .assoc(info.assoc_id)
                            .ppid(info.ppid),
                    )
                    .await?;
                    echoed += 1;
                }
                Received::Notification(n) => {
                    let done = matches!(
                        n,
                        Notification::AssocChange {
                            state: AssocState::CommLost,
                            ..
                        }
                    );
                    events.push(n);
                    if done {
                        break;
                    }
                }
                Received::Closed => return Err("endpoint closed".into()),
            }
        }
        TResult::Ok((echoed, events))
    });
    rx.recv_timeout(STEP).expect("server ready");
    let client = a.run(move || async move {
        let ep = SctpEndpoint::bind(&[sa(ip_a, 0)], false)?;
        ep.subscribe(&[Event::AssocChange])?;
        // Level 0 (the Linux default) keeps the pieces of one message contiguous across
        // associations, which the single reassembly buffer relies on.
        if ep.fragment_interleave()? != 0 {
            return Err("fragment interleave is not 0".into());
        }
        ep.set_init_msg(InitMsg {
            num_ostreams: 8,
            max_instreams: 8,
            ..Default::default()
        })?;
        let assoc = ep.connectx(&[srv])?;
        let mut rb = buf();
        // The first event is COMM_UP of that association.
        match tokio::time::timeout(STEP, ep.recv(&mut rb)).await?? {
            Received::Notification(Notification::AssocChange {
                state: AssocState::CommUp,
                assoc_id,
                outbound_streams,
                ..
            }) => {
                assert_eq!(assoc_id, assoc);
                assert!(outbound_streams >= 1);
            }
            other => return Err(format!("unexpected {other:?}").into()),
        }
        assert_eq!(ep.peer_addrs(assoc)?, vec![srv]);
        ep.send(b"first", &SendInfo::on_stream(1).assoc(assoc))
            .await?;
        let (d1, i1) = recv_msg!(ep, rb);
        // A second message sent through an implicit send_to on the same peer address.
        ep.send_to(b"second", &SendInfo::on_stream(3), &srv).await?;
        let (d2, i2) = recv_msg!(ep, rb);
        assert_eq!(i1.assoc_id, assoc);
        assert_eq!(i2.assoc_id, assoc);
        ep.abort(assoc, b"test over").await?;
        TResult::Ok((d1, i1.stream, d2, i2.stream))
    });
    let (d1, s1, d2, s2) = join("client", client);
    assert_eq!(
        (d1.as_slice(), s1, d2.as_slice(), s2),
        (&b"first"[..], 1, &b"second"[..], 3)
    );
    let (echoed, events) = join("server", server);
    assert_eq!(echoed, 2);
    assert!(
        matches!(
            events.first(),
            Some(Notification::AssocChange {
                state: AssocState::CommUp,
                ..
            })
        ),
        "{events:?}"
    );
    assert!(
        matches!(
            events.last(),
            Some(Notification::AssocChange {
                state: AssocState::CommLost,
                ..
            })
        ),
        "{events:?}"
    );
}

#[test]
fn echo_one_to_many_ipv4() {
    echo_one_to_many(false);
}

#[test]
fn echo_one_to_many_ipv6() {
    echo_one_to_many(true);
}

#[test]
fn peeloff_and_graceful_shutdown_of_one_association() {
    let (_lab, a, b, ip_a, ip_b) = pair(false);
    let srv = sa(ip_b, 5070);
    let (tx, rx) = mpsc::channel();
    let server = b.run(move || async move {
        let ep = SctpEndpoint::bind(&[srv], true)?;
        ep.subscribe(&[Event::AssocChange])?;
        tx.send(())?;
        let mut rb = buf();
        let (data, info) = recv_msg!(ep, rb);
        // Move the association to its own socket and answer from there.
        let s = ep.peeloff(info.assoc_id)?;
        s.send(&data, &SendInfo::on_stream(0)).await?;
        let (more, _) = recv_msg!(s, rb);
        // Hold the association until the client's shutdown completes: closing here would start a
        // shutdown from this side and race the client's (EPIPE on its SCTP_EOF). A peeled-off
        // socket keeps one-to-many semantics (no end of file), so the end is the SHUTDOWN_COMP
        // notification subscribed to on the endpoint and inherited by the association.
        loop {
            match tokio::time::timeout(STEP, s.recv(&mut rb)).await?? {
                Received::Notification(Notification::AssocChange {
                    state: AssocState::ShutdownComplete,
                    ..
                })
                | Received::Closed => break,
                _ => continue,
            }
        }
        TResult::Ok(more)
    });
    rx.recv_timeout(STEP).expect("server ready");
    let client = a.run(move || async move {
        let ep = SctpEndpoint::bind(&[sa(ip_a, 0)], false)?;
        ep.subscribe(&[Event::AssocChange])?;
        ep.send_to(b"hello", &SendInfo::on_stream(0), &srv).await?;
        let mut rb = buf();
        let (d, info) = recv_msg!(ep, rb);
        ep.send(b"bye", &SendInfo::on_stream(0).assoc(info.assoc_id))
            .await?;
        ep.shutdown(info.assoc_id).await?;
        // The graceful shutdown completes with SHUTDOWN_COMP.
        loop {
            match tokio::time::timeout(STEP, ep.recv(&mut rb)).await?? {
                Received::Notification(Notification::AssocChange {
                    state: AssocState::ShutdownComplete,
                    ..
                }) => break,
                _ => continue,
            }
        }
        TResult::Ok(d)
    });
    assert_eq!(join("client", client), b"hello");
    assert_eq!(join("server", server), b"bye");
}

#[test]
fn big_message_and_ten_thousand_small_on_16_streams() {
    const SMALL: u32 = 10_000;
    const STREAMS: u16 = 16;
    let (_lab, a, b, ip_a, ip_b) = pair(false);
    let srv = sa(ip_b, 5080);
    let big: Vec<u8> = (0..200 * 1024).map(|i: u32| (i % 253) as u8).collect();
    let big2 = big.clone();
    let (tx, rx) = mpsc::channel();
    let server = b.run(move || async move {
        let sock = SctpSocket::one_to_one(Family::V4)?;
        sock.set_init_msg(InitMsg {
            num_ostreams: STREAMS,
            max_instreams: STREAMS,
            ..Default::default()
        })?;
        // A partial delivery point far below 200 KiB: the big message arrives in pieces (no
        // MSG_EOR until the last) and must come out of the receive buffer whole.
        sock.set_partial_delivery_point(16 * 1024)?;
        if sock.partial_delivery_point()? != 16 * 1024 {
            return Err("partial delivery point not applied".into());
        }
        sock.bind(&[srv])?;
        let l = sock.listen(4)?;
        tx.send(())?;
        let (s, _) = tokio::time::timeout(STEP, l.accept()).await??;
        let mut rb = RecvBuf::new(1 << 20);
        let (data, info) = recv_msg!(s, rb);
        if data != big2 || info.stream != 0 {
            return Err(format!(
                "big message: {} bytes on stream {}",
                data.len(),
                info.stream
            )
            .into());
        }
        let mut next = [0u32; STREAMS as usize];
        for _ in 0..SMALL {
            let (d, info) = recv_msg!(s, rb);
            let st = info.stream as usize;
            let seq = u32::from_be_bytes(d.get(..4).ok_or("short")?.try_into()?);
            let want = next.get(st).copied().ok_or("stream out of range")?;
            if seq != want || d.len() != 100 {
                return Err(
                    format!("stream {st}: got seq {seq}, want {want} (len {})", d.len()).into(),
                );
            }
            next[st] += 1;
        }
        s.send(b"all received", &SendInfo::on_stream(0)).await?;
        TResult::Ok(next)
    });
    rx.recv_timeout(STEP).expect("server ready");
    let client = a.run(move || async move {
        let sock = SctpSocket::one_to_one(Family::V4)?;
        sock.bind(&[sa(ip_a, 0)])?;
        sock.set_init_msg(InitMsg {
            num_ostreams: STREAMS,
            max_instreams: STREAMS,
            ..Default::default()
        })?;
        let s = tokio::time::timeout(STEP, sock.connect(&[srv])).await??;
        s.send(&big, &SendInfo::on_stream(0)).await?;
        let mut seq = [0u32; STREAMS as usize];
        let mut msg = [0u8; 100];
        for i in 0..SMALL {
            let st = (i % STREAMS as u32) as u16;
            msg[..4].copy_from_slice(&seq[st as usize].to_be_bytes());
            seq[st as usize] += 1;
            tokio::time::timeout(STEP, s.send(&msg, &SendInfo::on_stream(st))).await??;
        }
        let mut rb = buf();
        let (ack, _) = recv_msg!(s, rb);
        TResult::Ok(ack)
    });
    assert_eq!(join("client", client), b"all received");
    let per_stream = join("server", server);
    assert!(
        per_stream.iter().all(|&n| n == SMALL / STREAMS as u32),
        "{per_stream:?}"
    );
}

#[test]
fn over_limit_message_is_a_typed_error_and_the_next_one_arrives() {
    let (_lab, a, b, ip_a, ip_b) = pair(false);
    let srv = sa(ip_b, 5090);
    let (tx, rx) = mpsc::channel();
    let server = b.run(move || async move {
        let l = SctpListener::bind(&[srv], 4)?;
        tx.send(())?;
        let (s, _) = tokio::time::timeout(STEP, l.accept()).await??;
        let mut rb = RecvBuf::new(4096);
        let first = tokio::time::timeout(STEP, s.recv(&mut rb)).await?;
        let too_large = matches!(first, Err(SctpError::MessageTooLarge { limit: 4096, .. }));
        let (next, _) = recv_msg!(s, rb);
        TResult::Ok((too_large, next))
    });
    rx.recv_timeout(STEP).expect("server ready");
    let client = a.run(move || async move {
        let s = tokio::time::timeout(STEP, SctpStream::connect_to(&[srv])).await??;
        s.send(&vec![1u8; 20_000], &SendInfo::on_stream(0)).await?;
        s.send(b"small", &SendInfo::on_stream(0)).await?;
        // Keep the association until the server has read both and closed.
        let mut rb = buf();
        let _ = ip_a;
        match tokio::time::timeout(STEP, s.recv(&mut rb)).await?? {
            Received::Closed => TResult::Ok(()),
            other => Err(format!("expected close, got {other:?}").into()),
        }
    });
    join("client", client);
    let (too_large, next) = join("server", server);
    assert!(
        too_large,
        "the 20,000-byte message must give MessageTooLarge"
    );
    assert_eq!(next, b"small");
}

#[test]
fn one_to_one_abort_ends_the_peer_association() {
    let (_lab, a, b, _ip_a, ip_b) = pair(false);
    let srv = sa(ip_b, 5100);
    let (tx, rx) = mpsc::channel();
    let (got_tx, got_rx) = tokio::sync::oneshot::channel::<()>();
    let server = b.run(move || async move {
        let l = SctpListener::bind(&[srv], 4)?;
        l.subscribe(&[Event::AssocChange])?;
        tx.send(())?;
        let (s, _) = tokio::time::timeout(STEP, l.accept()).await??;
        let mut rb = buf();
        let (d, _) = recv_msg!(s, rb);
        // Only now may the client abort: an ABORT that arrives while the association still waits
        // in the accept queue leaves nothing for this socket to report.
        got_tx.send(()).map_err(|_| "client gone")?;
        // After the ABORT: COMM_LOST, then the socket reports the reset or end of file.
        let mut lost = false;
        let mut seen = Vec::new();
        loop {
            let r = tokio::time::timeout(STEP, s.recv(&mut rb))
                .await
                .map_err(|_| format!("no end after the abort; seen {seen:?}"))?;
            seen.push(format!("{r:?}"));
            match r {
                Ok(Received::Notification(Notification::AssocChange {
                    state: AssocState::CommLost,
                    ..
                })) => lost = true,
                Ok(Received::Notification(_)) | Ok(Received::Message { .. }) => {}
                Ok(Received::Closed) | Err(_) => break,
            }
        }
        TResult::Ok((d, lost, seen))
    });
    rx.recv_timeout(STEP).expect("server ready");
    let client = a.run(move || async move {
        let s = tokio::time::timeout(STEP, SctpStream::connect_to(&[srv])).await??;
        s.send(b"then abort", &SendInfo::on_stream(0)).await?;
        tokio::time::timeout(STEP, got_rx).await??;
        s.abort()?;
        TResult::Ok(())
    });
    join("client", client);
    let (d, lost, seen) = join("server", server);
    assert_eq!(d, b"then abort");
    assert!(
        lost,
        "the server must see COMM_LOST after the client's abort; it saw {seen:?}"
    );
}
