//! Lab: multihoming. Two hosts joined by two links (lab/scenarios/multihomed-pair.toml). The client
//! binds both local addresses and connects to both server addresses; while 1,000 messages are in
//! flight the primary path's link is cut. The association must survive, every message must arrive
//! in order, and the client must see PEER_ADDR_CHANGE (unreachable) for the primary address. A short
//! heartbeat interval, RTO and path max retransmissions (set through the options) make the failover
//! happen within seconds.

mod common;

use common::*;
use sipwire_sys::*;
use std::net::IpAddr;
use std::sync::mpsc;
use std::time::Duration;

const COUNT: u32 = 1000;
const CUT_AFTER: u32 = 200;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

#[test]
fn primary_path_cut_while_messages_are_in_flight() {
    require_kernel_sctp();
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../lab/scenarios/multihomed-pair.toml"
    );
    let built = sipwire_lab::Topology::from_scenario_file(scenario).expect("scenario");
    let a = built.topology.get("a").cloned().expect("host a");
    let b = built.topology.get("b").cloned().expect("host b");
    let primary = built.links.first().expect("link 1");
    let (srv1, srv2) = (sa(ip("192.0.2.2"), 5060), sa(ip("198.51.100.2"), 5060));
    let (cli1, cli2) = (sa(ip("192.0.2.1"), 0), sa(ip("198.51.100.1"), 0));

    let (ready_tx, ready_rx) = mpsc::channel();
    let server = b.run(move || async move {
        let l = SctpListener::bind(&[srv1, srv2], 4)?;
        ready_tx.send(())?;
        let (s, _) = tokio::time::timeout(STEP, l.accept()).await??;
        let mut peers = s.peer_addrs()?;
        peers.sort();
        let mut rb = buf();
        for want in 0..COUNT {
            let (d, _) = recv_msg!(s, rb);
            let got = u32::from_be_bytes(d.get(..4).ok_or("short")?.try_into()?);
            if got != want {
                return Err(format!("message {got} arrived where {want} was expected").into());
            }
        }
        s.send(b"all 1000 received", &SendInfo::on_stream(0))
            .await?;
        // Keep the association until the client closes it.
        let _ = tokio::time::timeout(STEP, s.recv(&mut rb)).await;
        TResult::Ok(peers)
    });
    ready_rx.recv_timeout(STEP).expect("server ready");

    let (cut_tx, cut_rx) = mpsc::channel();
    let client = a.run(move || async move {
        let sock = SctpSocket::one_to_one(Family::V4)?;
        sock.bind(&[cli1, cli2])?;
        // Fast failure detection: RTO 100..400 ms, path fails after 1 retransmission, heartbeats
        // every 200 ms; the association itself tolerates many more.
        sock.set_rto_info(
            0,
            RtoInfo {
                initial: 200,
                max: 400,
                min: 100,
            },
        )?;
        sock.set_assoc_info(
            0,
            AssocInfo {
                max_retrans: 20,
                ..Default::default()
            },
        )?;
        sock.set_peer_addr_params(
            0,
            PeerAddrParams {
                addr: None,
                hb_interval: 200,
                path_max_retrans: 1,
                heartbeat: Some(true),
            },
        )?;
        sock.subscribe(&[Event::PeerAddrChange, Event::AssocChange])?;
        let s = tokio::time::timeout(STEP, sock.connect(&[srv1, srv2])).await??;
        let mut peers = s.peer_addrs()?;
        peers.sort();
        if peers != vec![srv1, srv2] {
            return Err(format!("peer addresses {peers:?}").into());
        }
        let rto = s.rto_info(0)?;
        if rto.max != 400 || rto.min != 100 {
            return Err(format!("RTO not applied: {rto:?}").into());
        }
        let params = s.peer_addr_params(0, Some(srv1))?;
        if params.path_max_retrans != 1 {
            return Err(format!("path max retrans not applied: {params:?}").into());
        }

        let sender = async {
            let mut msg = [0u8; 200];
            for i in 0..COUNT {
                msg[..4].copy_from_slice(&i.to_be_bytes());
                tokio::time::timeout(STEP, s.send(&msg, &SendInfo::on_stream(0))).await??;
                if i == CUT_AFTER {
                    cut_tx.send(())?;
                }
                // Paced so that the cut happens while messages keep flowing.
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            TResult::Ok(())
        };
        let receiver = async {
            let mut rb = buf();
            // Every address reported unreachable: under emulation a slow heartbeat can also mark
            // the secondary path down for a moment; what must be there is the primary.
            let mut unreachable = Vec::new();
            let mut ack = false;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            while !unreachable.contains(&srv1) || !ack {
                match tokio::time::timeout_at(deadline, s.recv(&mut rb)).await?? {
                    Received::Message { data, .. } => ack = data == b"all 1000 received",
                    Received::Notification(Notification::PeerAddrChange {
                        addr,
                        state: PeerAddrState::Unreachable,
                        ..
                    }) => unreachable.extend(addr),
                    Received::Notification(Notification::AssocChange { state, .. })
                        if state != AssocState::CommUp =>
                    {
                        return Err(format!("association changed to {state:?}").into());
                    }
                    Received::Notification(_) => {}
                    Received::Closed => return Err("association closed".into()),
                }
            }
            TResult::Ok(unreachable)
        };
        let (sent, unreachable) = tokio::join!(sender, receiver);
        sent?;
        unreachable
    });
    cut_rx
        .recv_timeout(STEP)
        .expect("client reached the cut point");
    primary.down().expect("cut the primary link");
    let unreachable = join("client", client);
    assert!(
        unreachable.contains(&srv1),
        "PEER_ADDR_CHANGE unreachable for the primary address {srv1}: got {unreachable:?}"
    );
    let server_saw = join("server", server);
    assert_eq!(
        server_saw.len(),
        2,
        "server sees both client addresses: {server_saw:?}"
    );
}
