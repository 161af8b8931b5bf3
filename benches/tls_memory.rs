//! Memory per idle TLS connection (issue 4), driven by `benches/tls_memory.sh`, which
//! runs this binary twice as processes:
//!
//! - `tls_memory server sipwire|bare`: a TLS server on 127.0.0.1 (a sipwire `Transport`
//!   with `bind_tls` answering every request with a 200, or the bare tokio-rustls server
//!   doing the same with sipwire's `StreamFramer`); prints `listening <addr> <pid>` and
//!   runs until killed or its stdin closes.
//! - `tls_memory clients <addr> <n>`: opens `n` TLS connections (bare tokio-rustls, 64
//!   handshakes at a time), sends one ~1 KiB request on each and reads the 200, prints
//!   `ready <n>` and holds them until killed or its stdin closes.
//!
//! The script reads the server's PSS (`/proc/<pid>/smaps_rollup`) before the clients
//! connect and 2 s after they are all done. Both servers use the same certificates and
//! rustls settings (tls_common). Without arguments (as `cargo bench` runs it) it only
//! says how to run it.

#[path = "tls_common/mod.rs"]
mod tls_common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use sipwire::transport::{Transport, TransportConfig};
use tls_common::*;
use tokio::io::AsyncWriteExt;

async fn stdin_closed() {
    // Ends when stdin reaches EOF (the script closes it) or fails.
    let _ = tokio::task::spawn_blocking(|| {
        let mut buf = [0u8; 64];
        loop {
            match std::io::Read::read(&mut std::io::stdin(), &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
}

fn announce(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn server(kind: &str) {
    let pki = Pki::generate();
    let a: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
    let b: SocketAddr = "127.0.0.1:5061".parse().expect("addr");
    let resp = response(a, b);
    let config = pki.server(Version::Tls13);
    // The clients need the CA: hand it over as a file next to the announcement.
    let ca_path = std::env::temp_dir().join(format!("tls_memory_ca_{}.der", std::process::id()));
    std::fs::write(&ca_path, &pki.ca).expect("write CA");
    match kind {
        "sipwire" => {
            let cfg = TransportConfig {
                max_connections: 50_000,
                max_connections_per_ip: 50_000,
                ..TransportConfig::default()
            };
            let (t, mut rx) = Transport::new(cfg);
            let addr = t
                .bind_tls("127.0.0.1:0".parse().expect("addr"), config)
                .await
                .expect("bind_tls");
            let t2 = t.clone();
            tokio::spawn(async move {
                while let Some(inc) = rx.recv().await {
                    let _ = t2.send(inc.flow, resp.clone());
                }
            });
            announce(&format!(
                "listening {addr} {} {}",
                std::process::id(),
                ca_path.display()
            ));
            stdin_closed().await;
            eprintln!("# sipwire server stats at exit: {:?}", t.stats());
        }
        "bare" => {
            let s = BareServer::start(config, Some(resp)).await;
            announce(&format!(
                "listening {} {} {}",
                s.addr,
                std::process::id(),
                ca_path.display()
            ));
            stdin_closed().await;
            eprintln!(
                "# bare server at exit: {} handshakes",
                s.handshaken.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
        other => panic!("unknown server kind {other}"),
    }
    let _ = std::fs::remove_file(&ca_path);
}

async fn clients(addr: SocketAddr, ca_path: &str, n: usize) {
    let ca = std::fs::read(ca_path).expect("read CA");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca))
        .expect("root");
    let cfg = std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(Version::Tls13.versions())
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let local: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
    let req = request(local, addr, 1024);
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let connected = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (cfg, req, sem) = (cfg.clone(), req.clone(), sem.clone());
        let connected = connected.clone();
        set.spawn(async move {
            let permit = sem.acquire_owned().await.expect("semaphore");
            let mut s = tokio::time::timeout(Duration::from_secs(60), async {
                let mut s = bare_connect(&cfg, addr).await.expect("connect");
                s.write_all(&req).await.expect("write");
                s.flush().await.expect("flush");
                read_message(&mut s).await;
                s
            })
            .await
            .expect("connection, request and answer in 60 s");
            drop(permit);
            connected.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            // Hold the connection until the server closes it or this task is aborted.
            let mut buf = [0u8; 64];
            let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
            panic!("the server closed a held connection");
        });
    }
    let ok = tokio::time::timeout(Duration::from_secs(600), async {
        while connected.load(std::sync::atomic::Ordering::Acquire) < n {
            if let Some(Err(e)) = set.try_join_next() {
                panic!("a client connection failed: {e}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    ok.expect("clients connected in 600 s");
    announce(&format!("ready {n}"));
    stdin_closed().await;
    set.abort_all();
}

/// Reads until one whole message is framed.
async fn read_message<S: tokio::io::AsyncRead + Unpin>(s: &mut S) {
    let mut framer = sipwire::wire::StreamFramer::new(sipwire::wire::Limits::default());
    loop {
        if let Some(sipwire::wire::Frame::Message(_)) = framer.next_frame().expect("framing") {
            return;
        }
        let mut buf = [0u8; 4096];
        let n = tokio::io::AsyncReadExt::read(s, &mut buf)
            .await
            .expect("read");
        assert!(n > 0, "server closed");
        framer.push(&buf[..n]);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    };
    match args.first().map(String::as_str) {
        Some("server") => {
            let kind = args.get(1).cloned().unwrap_or_else(|| "sipwire".into());
            rt().block_on(server(&kind));
        }
        Some("clients") => {
            let addr: SocketAddr = args.get(1).expect("addr").parse().expect("addr");
            let ca = args.get(2).expect("CA path").clone();
            let n: usize = args.get(3).map_or(10_000, |v| v.parse().expect("count"));
            rt().block_on(clients(addr, &ca, n));
        }
        _ => println!("tls_memory: run benches/tls_memory.sh (needs two processes)"),
    }
}
