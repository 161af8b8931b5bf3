//! DTLS over SCTP (RFC 6083) through the sipwire library's own transport: DTLS 1.2 (OpenSSL)
//! per association, SCTP-AUTH keys switched at the handshake, every record one user message.
//! sipload does not carry a second DTLS stack; a flow is one library [`Transport`] with one
//! association, so that flows do not share a socket (as SCTP and TLS-SCTP flows do not).
//! Both the client side (a flow) and `sipload serve` live here. Needs SCTP-AUTH on in the
//! kernel (`net.sctp.auth_enable = 1`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use openssl::error::ErrorStack;
use openssl::ssl::{SslAcceptor, SslConnector, SslFiletype, SslMethod};
use sipwire::{Incoming, Target, Transport, TransportConfig, TransportError, TransportKind};
use tokio::sync::mpsc;

use crate::uas::Uas;

/// The Via transport token (sipwire's default; no RFC names one).
pub const VIA: &str = "DTLS-SCTP";

/// How often the handshake's end is looked for before the run starts.
const HANDSHAKE_POLL: Duration = Duration::from_millis(5);

/// Why a DTLS-SCTP flow or listener could not be set up.
#[derive(Debug)]
pub enum DtlsError {
    /// OpenSSL refused a file or setting.
    Config(PathBuf, ErrorStack),
    /// The library's transport failed (no SCTP, SCTP-AUTH off, association refused).
    Transport(&'static str, Box<TransportError>),
    /// The association came up but its DTLS handshake did not finish in time.
    Handshake(Duration),
}

impl std::fmt::Display for DtlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DtlsError::Config(p, e) => write!(f, "DTLS setup ({}): {e}", p.display()),
            DtlsError::Transport(what, e) => write!(f, "{what}: {e}"),
            DtlsError::Handshake(d) => write!(f, "DTLS handshake not finished after {d:?}"),
        }
    }
}

impl std::error::Error for DtlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DtlsError::Config(_, e) => Some(e),
            DtlsError::Transport(_, e) => Some(e.as_ref()),
            DtlsError::Handshake(_) => None,
        }
    }
}

/// What every DTLS-SCTP flow needs: the CA file the server is verified against and the name.
#[derive(Debug, Clone)]
pub struct DtlsClient {
    ca: PathBuf,
    name: String,
}

impl DtlsClient {
    /// Checks the CA file once (each flow loads it again into its own context).
    pub fn new(ca: &Path, name: &str) -> Result<DtlsClient, DtlsError> {
        let c = DtlsClient {
            ca: ca.to_owned(),
            name: name.to_owned(),
        };
        c.connector()?;
        Ok(c)
    }

    fn connector(&self) -> Result<openssl::ssl::SslConnectorBuilder, DtlsError> {
        let mut c = SslConnector::builder(SslMethod::dtls())
            .map_err(|e| DtlsError::Config(self.ca.clone(), e))?;
        c.load_verify_locations(Some(&self.ca), None)
            .map_err(|e| DtlsError::Config(self.ca.clone(), e))?;
        Ok(c)
    }
}

/// One open DTLS-SCTP flow: its own transport, the one association and what arrives on it.
pub struct DtlsFlow {
    transport: Transport,
    rx: mpsc::Receiver<Incoming>,
    flow: sipwire::Flow,
    local: SocketAddr,
    cipher: Option<String>,
}

impl DtlsFlow {
    /// Our address (the Via sent-by).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The DTLS version: 1.2, the only one sipwire's DTLS allows (the library does not
    /// report the suite).
    pub fn cipher(&self) -> Option<String> {
        self.cipher.clone()
    }

    /// Queues one SIP message on the association; false when the transport refused it.
    pub fn send(&self, msg: &[u8]) -> bool {
        self.transport
            .send(self.flow, Bytes::copy_from_slice(msg))
            .is_ok()
    }

    /// The next message received (None: the transport is gone).
    pub async fn recv(&mut self) -> Option<Incoming> {
        self.rx.recv().await
    }

    /// Closes the association (close_notify, SHUTDOWN), waiting at most `drain`.
    pub async fn close(self, drain: Duration) {
        self.transport.shutdown(drain).await;
    }
}

/// Opens one association to `server` and waits until its DTLS handshake has finished (the
/// handshake key 0 deleted after the peer's Finished, RFC 6083 §4.8), so that handshakes stay
/// out of the measurement.
pub async fn open(
    client: &DtlsClient,
    server: SocketAddr,
    timeout: Duration,
) -> Result<DtlsFlow, DtlsError> {
    let cfg = TransportConfig {
        connect_timeout: timeout,
        handshake_timeout: timeout,
        ..TransportConfig::default()
    };
    let (transport, rx) = Transport::new(cfg);
    transport.set_dtls_sctp_client(client.connector()?);
    let target = Target::new(TransportKind::DtlsSctp, server).with_server_name(&client.name);
    let flow = match transport.connect(&target).await {
        Ok(f) => f,
        Err(e) => {
            transport.shutdown(Duration::ZERO).await;
            return Err(DtlsError::Transport("DTLS-SCTP association", Box::new(e)));
        }
    };
    let deadline = Instant::now() + timeout;
    loop {
        if transport
            .sctp_auth(flow)
            .is_some_and(|a| a.handshake_key_deleted)
        {
            break;
        }
        if Instant::now() >= deadline {
            transport.shutdown(Duration::ZERO).await;
            return Err(DtlsError::Handshake(timeout));
        }
        tokio::time::sleep(HANDSHAKE_POLL).await;
    }
    let local = match transport.flow_info(flow) {
        Some(i) => i.local,
        None => {
            transport.shutdown(Duration::ZERO).await;
            return Err(DtlsError::Transport(
                "DTLS-SCTP association",
                Box::new(TransportError::UnknownFlow(flow)),
            ));
        }
    };
    Ok(DtlsFlow {
        transport,
        rx,
        flow,
        local,
        cipher: Some("DTLSv1_2".to_owned()),
    })
}

/// `sipload serve --transport dtls-sctp`: the library's DTLS-SCTP listener on `addr`
/// (certificate and key in PEM, no client certificate asked for), every request answered by
/// the stateless UAS on the association it came on. Runs until the transport stops.
pub async fn serve(
    addr: SocketAddr,
    cert: &Path,
    key: &Path,
    trying: bool,
    announce: impl FnOnce(SocketAddr),
) -> Result<(), DtlsError> {
    let config = |p: &Path| {
        let p = p.to_owned();
        move |e| DtlsError::Config(p, e)
    };
    let mut acceptor =
        SslAcceptor::mozilla_intermediate_v5(SslMethod::dtls()).map_err(config(cert))?;
    acceptor
        .set_certificate_chain_file(cert)
        .map_err(config(cert))?;
    acceptor
        .set_private_key_file(key, SslFiletype::PEM)
        .map_err(config(key))?;
    let (transport, mut rx) = Transport::new(TransportConfig::default());
    let bound = transport
        .bind_dtls_sctp(&[addr], acceptor)
        .await
        .map_err(|e| DtlsError::Transport("DTLS-SCTP listener", Box::new(e)))?;
    let local = bound.first().copied().unwrap_or(addr);
    let uas = Uas::new(local, VIA, trying);
    announce(local);
    let mut out = Vec::new();
    while let Some(m) = rx.recv().await {
        uas.answer(m.message.as_bytes(), &mut out);
        for r in out.drain(..) {
            // A refused answer is the client's unanswered request: nothing else to do here.
            let _ = transport.send(m.flow, Bytes::from(r));
        }
    }
    Ok(())
}
