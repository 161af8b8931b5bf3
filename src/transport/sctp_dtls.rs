//! DTLS over SCTP (RFC 6083) for one association, with no socket: one DTLS 1.2 connection
//! (OpenSSL) per association over an in-memory, message-preserving adapter, every DTLS record
//! one SCTP user message (§4.1).
//!
//! Fed the user messages that arrive and the SIP messages the layer above sends, it hands back
//! [`DtlsAction`]s in the order the driver must carry them out: records to send (handshake,
//! alert and ChangeCipherSpec on stream 0, §4.4; application data on the stream asked for), the
//! SCTP-AUTH key steps of §4.8 and the "wait until the peer acknowledged everything" points of
//! §4.7 and §4.9 (SENDER_DRY).
//!
//! What OpenSSL (built without its SCTP BIO, as Debian ships it) lets us follow, and what not:
//! - MTU 2^14 (§3.2, §3.4): `NO_QUERY_MTU` + `set_mtu(16384)`; a SIP message larger than one
//!   record's 16384 bytes is refused ([`DtlsSctpError::TooLarge`]), never split.
//! - Key schedule (§4.8): OpenSSL has no hook "before Finished", but its output is only handed
//!   to the driver after the call returns, so the steps are put in between the records: the
//!   exporter key is added as soon as the master secret exists (the client when it writes
//!   ClientKeyExchange, the server when it reads it), made active right after our
//!   ChangeCipherSpec (the next record is our Finished), and key 0 is deleted once the peer's
//!   Finished has been read (the handshake is complete).
//! - SENDER_DRY (§4.7, §4.9): a [`DtlsAction::SenderDry`] before our ChangeCipherSpec and before
//!   close_notify; the driver holds what follows until the association has nothing
//!   unacknowledged.
//! - Replay detection (§3.3: MUST NOT be used) cannot be turned off in OpenSSL over a custom
//!   BIO: it drops a record more than 64 behind the newest, which reordering across streams
//!   after a loss causes. [`ReplayGate`] hands records over in an order it never drops.
//! - Not possible: turning off handshake retransmission (§3.5; OpenSSL's own timer may resend a
//!   flight on a slow handshake, which the peer discards as a duplicate). Renegotiation is
//!   refused (§4.6 leaves it to the user), so one key switch (0 → 1) is all there is.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::Arc;

use bytes::Bytes;
use openssl::error::ErrorStack;
use openssl::ssl::{
    ErrorCode, NameType, Ssl, SslAcceptor, SslAcceptorBuilder, SslConnector, SslConnectorBuilder,
    SslOptions, SslStream, SslVersion,
};
use openssl::x509::X509VerifyResult;

use super::sctp_dtls_gate::ReplayGate;
use super::sctp_tls::PeerProof;
use super::session::Identities;
use crate::PeerIdentities;

/// Largest SIP message one DTLS record carries (RFC 6083 §3.2: the DTLS path MTU is 2^14).
pub(crate) const DTLS_SCTP_MAX_MESSAGE: usize = 16384;
/// RFC 6083 §5: the exporter label of the SCTP-AUTH key.
pub(crate) const EXPORTER_LABEL: &str = "EXPORTER_DTLS_OVER_SCTP";
/// RFC 6083 §4.8: the exporter's output, the new endpoint-pair shared secret.
pub(crate) const AUTH_KEY_LEN: usize = 64;
/// The SCTP-AUTH key of the handshake (empty, §4.8) and the one after it.
pub(crate) const HANDSHAKE_KEY: u16 = 0;
pub(crate) const SESSION_KEY: u16 = 1;

/// The options every DTLS-over-SCTP OpenSSL context gets: `NO_QUERY_MTU` (so that
/// `set_mtu(16384)` holds; OpenSSL has no getter on a built context, hence builders are taken
/// and finished here), no renegotiation, no session tickets.
fn dtls_sctp_options() -> SslOptions {
    SslOptions::NO_QUERY_MTU | SslOptions::NO_RENEGOTIATION | SslOptions::NO_TICKET
}

/// Finishes a server context for DTLS over SCTP.
pub(crate) fn acceptor(mut b: SslAcceptorBuilder) -> SslAcceptor {
    b.set_options(dtls_sctp_options());
    b.build()
}

/// Finishes a client context for DTLS over SCTP.
pub(crate) fn connector(mut b: SslConnectorBuilder) -> SslConnector {
    b.set_options(dtls_sctp_options());
    b.build()
}

const CT_CHANGE_CIPHER_SPEC: u8 = 20;
const CT_ALERT: u8 = 21;
const CT_APPLICATION_DATA: u8 = 23;
/// DTLS record header: type, version, epoch, sequence number, length.
pub(super) const RECORD_HEADER: usize = 13;

/// Our side of the association's DTLS connection.
#[derive(Clone)]
pub(crate) enum DtlsRole {
    /// We started the association: DTLS client, the server verified against `name`.
    Client {
        connector: Arc<SslConnector>,
        name: String,
    },
    /// The peer started it: DTLS server.
    Server { acceptor: Arc<SslAcceptor> },
}

impl std::fmt::Debug for DtlsRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DtlsRole::Client { name, .. } => f.debug_struct("Client").field("name", name).finish(),
            DtlsRole::Server { .. } => f.write_str("Server"),
        }
    }
}

/// What the driver does, in order. (Debug leaves the key out: actions are logged.)
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum DtlsAction {
    /// One user message (ordered, PPID as for SIP).
    Send { stream: u16, record: Bytes },
    /// Hold everything after this until the peer acknowledged every user message sent
    /// (SCTP_SENDER_DRY_EVENT).
    SenderDry,
    /// Add SCTP-AUTH key `number` to the association (not yet active).
    AddKey {
        number: u16,
        key: Box<[u8; AUTH_KEY_LEN]>,
    },
    /// Make `number` the key DATA is sent with.
    ActivateKey { number: u16 },
    /// Delete key `number` from the association.
    DeleteKey { number: u16 },
}

impl std::fmt::Debug for DtlsAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DtlsAction::Send { stream, record } => f
                .debug_struct("Send")
                .field("stream", stream)
                .field("len", &record.len())
                .finish(),
            DtlsAction::SenderDry => f.write_str("SenderDry"),
            DtlsAction::AddKey { number, .. } => {
                f.debug_struct("AddKey").field("number", number).finish()
            }
            DtlsAction::ActivateKey { number } => f
                .debug_struct("ActivateKey")
                .field("number", number)
                .finish(),
            DtlsAction::DeleteKey { number } => {
                f.debug_struct("DeleteKey").field("number", number).finish()
            }
        }
    }
}

/// Why a message was refused or the association must be aborted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DtlsSctpError {
    /// The OpenSSL context could not make a connection.
    #[error("DTLS setup failed")]
    Setup(#[source] ErrorStack),
    /// The handshake failed (alert sent or received, certificate refused).
    #[error("DTLS handshake failed ({reason})")]
    Handshake {
        reason: &'static str,
        #[source]
        source: openssl::ssl::Error,
    },
    /// A record after the handshake was refused.
    #[error("DTLS record refused")]
    Record(#[source] openssl::ssl::Error),
    /// RFC 6083 §3.2: one record per message, 2^14 bytes at most.
    #[error("SIP message of {len} bytes exceeds one DTLS record ({DTLS_SCTP_MAX_MESSAGE} bytes); DTLS over SCTP never splits messages")]
    TooLarge { len: usize },
    /// Data after we or the peer closed.
    #[error("the DTLS connection is closed")]
    Closed,
}

impl DtlsSctpError {
    /// Metrics label.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            DtlsSctpError::Setup(_) => "dtls_setup",
            DtlsSctpError::Handshake { reason, .. } => reason,
            DtlsSctpError::Record(_) => "dtls_record",
            DtlsSctpError::TooLarge { .. } => "dtls_message_too_large",
            DtlsSctpError::Closed => "dtls_closed",
        }
    }
}

/// The message-preserving adapter: each read is one received user message, each record
/// written becomes one user message.
#[derive(Debug, Default)]
struct Wire {
    inbox: VecDeque<Vec<u8>>,
    outbox: Vec<Vec<u8>>,
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(m) = self.inbox.pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        // A datagram larger than OpenSSL's buffer is cut, fails its MAC and is dropped.
        let n = m.len().min(buf.len());
        buf[..n].copy_from_slice(&m[..n]);
        Ok(n)
    }
}

impl Write for Wire {
    /// OpenSSL may pack several records of a flight into one write (its buffering BIO):
    /// cut them apart, one user message each (§4.1).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut at = 0;
        while at < buf.len() {
            let end = match buf.get(at + 11..at + 13) {
                Some(l) => {
                    let len = usize::from(u16::from_be_bytes([l[0], l[1]]));
                    (at + RECORD_HEADER + len).min(buf.len())
                }
                None => buf.len(),
            };
            self.outbox.push(buf[at..end].to_vec());
            at = end;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshaking,
    Up,
    Closed,
}

/// One association's DTLS connection and key state.
#[derive(Debug)]
pub(crate) struct DtlsAssoc {
    ssl: SslStream<Wire>,
    phase: Phase,
    /// Plaintext (stream, message) queued until the handshake finishes.
    waiting: VecDeque<(u16, Bytes)>,
    key_added: bool,
    key_active: bool,
    peer: Option<PeerProof>,
    /// `close` was called: the next alert is our close_notify.
    closing: bool,
    /// Records reach DTLS in an order its replay window accepts (§3.3).
    gate: ReplayGate,
}

/// What a received user message gave.
#[derive(Debug, Default)]
pub(crate) struct DtlsReceived {
    /// The handshake just finished: who the peer is.
    pub(crate) proof: Option<PeerProof>,
    /// The peer sent close_notify.
    pub(crate) closed: bool,
    /// Gaps in the record numbers given up on (records may be lost): see [`ReplayGate`].
    pub(crate) gaps_skipped: u64,
}

fn want(e: &openssl::ssl::Error) -> bool {
    matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE)
}

impl DtlsAssoc {
    /// A new connection; the client's first flight is sent by [`DtlsAssoc::start`].
    pub(crate) fn new(role: &DtlsRole) -> Result<DtlsAssoc, DtlsSctpError> {
        let mut ssl = match role {
            DtlsRole::Client { connector, name } => connector
                .configure()
                .and_then(|c| c.into_ssl(name))
                .map_err(DtlsSctpError::Setup)?,
            DtlsRole::Server { acceptor } => {
                Ssl::new(acceptor.context()).map_err(DtlsSctpError::Setup)?
            }
        };
        // RFC 8996: nothing below DTLS 1.2.
        ssl.set_min_proto_version(Some(SslVersion::DTLS1_2))
            .map_err(DtlsSctpError::Setup)?;
        ssl.set_mtu(DTLS_SCTP_MAX_MESSAGE as u32)
            .map_err(DtlsSctpError::Setup)?;
        match role {
            DtlsRole::Client { .. } => ssl.set_connect_state(),
            DtlsRole::Server { .. } => ssl.set_accept_state(),
        }
        let ssl = SslStream::new(ssl, Wire::default()).map_err(DtlsSctpError::Setup)?;
        Ok(DtlsAssoc {
            ssl,
            phase: Phase::Handshaking,
            waiting: VecDeque::new(),
            key_added: false,
            key_active: false,
            peer: None,
            closing: false,
            gate: ReplayGate::default(),
        })
    }

    /// Who the peer is, once the handshake finished.
    #[cfg(test)]
    pub(crate) fn peer(&self) -> Option<&PeerProof> {
        self.peer.as_ref()
    }

    /// Whether the handshake is over (sending goes straight out).
    #[cfg(test)]
    pub(crate) fn is_up(&self) -> bool {
        self.phase == Phase::Up
    }

    /// The SCTP-AUTH key of this connection (the exporter of §4.8), once the master secret
    /// exists.
    pub(crate) fn export_key(&self) -> Option<Box<[u8; AUTH_KEY_LEN]>> {
        let known = self
            .ssl
            .ssl()
            .session()
            .is_some_and(|s| s.master_key_len() > 0);
        if !known {
            return None;
        }
        let mut key = Box::new([0u8; AUTH_KEY_LEN]);
        self.ssl
            .ssl()
            .export_keying_material(&mut key[..], EXPORTER_LABEL, None)
            .ok()?;
        Some(key)
    }

    /// Hands OpenSSL's records to the driver with the key steps and SENDER_DRY points in
    /// between; application data goes on `data_stream`.
    fn collect(&mut self, data_stream: u16, out: &mut Vec<DtlsAction>) {
        if !self.key_added {
            if let Some(key) = self.export_key() {
                self.key_added = true;
                out.push(DtlsAction::AddKey {
                    number: SESSION_KEY,
                    key,
                });
            }
        }
        let records = std::mem::take(&mut self.ssl.get_mut().outbox);
        for rec in records {
            let kind = rec.first().copied().unwrap_or(0);
            let stream = if kind == CT_APPLICATION_DATA {
                data_stream
            } else {
                0
            };
            let dry_first = kind == CT_CHANGE_CIPHER_SPEC || (kind == CT_ALERT && self.closing);
            if dry_first {
                out.push(DtlsAction::SenderDry);
            }
            out.push(DtlsAction::Send {
                stream,
                record: Bytes::from(rec),
            });
            if kind == CT_CHANGE_CIPHER_SPEC && self.key_added && !self.key_active {
                // The next record is our Finished: it goes out under the new key (§4.8).
                self.key_active = true;
                out.push(DtlsAction::ActivateKey {
                    number: SESSION_KEY,
                });
            }
        }
    }

    /// Client side: sends the first flight (ClientHello).
    pub(crate) fn start(&mut self, out: &mut Vec<DtlsAction>) -> Result<(), DtlsSctpError> {
        self.handshake(&Identities::new(None), out).map(|_| ())
    }

    fn handshake(
        &mut self,
        ids: &Identities,
        out: &mut Vec<DtlsAction>,
    ) -> Result<Option<PeerProof>, DtlsSctpError> {
        let r = self.ssl.do_handshake();
        self.collect(0, out);
        match r {
            Ok(()) => {
                self.phase = Phase::Up;
                // The peer's Finished has been read: the empty key is not needed any more.
                if self.key_added {
                    out.push(DtlsAction::DeleteKey {
                        number: HANDSHAKE_KEY,
                    });
                }
                let proof = proof_of(self.ssl.ssl(), ids);
                self.peer = Some(proof.clone());
                while let Some((stream, plain)) = self.waiting.pop_front() {
                    self.write(stream, &plain, out)?;
                }
                Ok(Some(proof))
            }
            Err(e) if want(&e) => Ok(None),
            Err(source) => {
                self.phase = Phase::Closed;
                let reason = if self.ssl.ssl().verify_result() != X509VerifyResult::OK {
                    "bad_certificate"
                } else {
                    "dtls_handshake"
                };
                Err(DtlsSctpError::Handshake { reason, source })
            }
        }
    }

    fn write(
        &mut self,
        stream: u16,
        plain: &[u8],
        out: &mut Vec<DtlsAction>,
    ) -> Result<(), DtlsSctpError> {
        let r = self.ssl.ssl_write(plain);
        self.collect(stream, out);
        match r {
            Ok(_) => Ok(()),
            Err(e) => Err(DtlsSctpError::Record(e)),
        }
    }

    /// Encrypts one SIP message as one record on `stream` (queued until the handshake
    /// finishes). Larger than [`DTLS_SCTP_MAX_MESSAGE`]: refused, nothing sent.
    pub(crate) fn send(
        &mut self,
        stream: u16,
        plain: Bytes,
        out: &mut Vec<DtlsAction>,
    ) -> Result<(), DtlsSctpError> {
        if plain.len() > DTLS_SCTP_MAX_MESSAGE {
            return Err(DtlsSctpError::TooLarge { len: plain.len() });
        }
        match self.phase {
            Phase::Closed => Err(DtlsSctpError::Closed),
            Phase::Handshaking => {
                self.waiting.push_back((stream, plain));
                Ok(())
            }
            Phase::Up => self.write(stream, &plain, out),
        }
    }

    /// One user message received on `stream`: handshake records answered, application data
    /// appended to `plain` as (stream, message) in the order DTLS reads it. The record may
    /// wait for others SCTP delivered late (see [`ReplayGate`]).
    pub(crate) fn receive(
        &mut self,
        stream: u16,
        data: &[u8],
        ids: &Identities,
        out: &mut Vec<DtlsAction>,
        plain: &mut Vec<(u16, Bytes)>,
    ) -> Result<DtlsReceived, DtlsSctpError> {
        let mut got = DtlsReceived::default();
        if self.phase == Phase::Closed {
            return Ok(got);
        }
        let mut admitted = Vec::new();
        self.gate.admit(stream, data, &mut admitted);
        got.gaps_skipped = self.gate.take_skipped();
        let mut buf = Vec::new();
        for (stream, record) in admitted {
            self.ssl.get_mut().inbox.push_back(record);
            if self.phase == Phase::Handshaking {
                if let Some(proof) = self.handshake(ids, out)? {
                    got.proof = Some(proof);
                }
                if self.phase == Phase::Handshaking {
                    continue;
                }
            }
            if self.phase == Phase::Closed {
                break;
            }
            if buf.is_empty() {
                buf = vec![0u8; DTLS_SCTP_MAX_MESSAGE];
            }
            self.read_records(stream, &mut buf, out, plain, &mut got)?;
        }
        Ok(got)
    }

    /// Reads what DTLS has for the application after a record went in.
    fn read_records(
        &mut self,
        stream: u16,
        buf: &mut [u8],
        out: &mut Vec<DtlsAction>,
        plain: &mut Vec<(u16, Bytes)>,
        got: &mut DtlsReceived,
    ) -> Result<(), DtlsSctpError> {
        loop {
            match self.ssl.ssl_read(buf) {
                Ok(n) => plain.push((stream, Bytes::copy_from_slice(&buf[..n]))),
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                    got.closed = true;
                    self.phase = Phase::Closed;
                    break;
                }
                Err(e) if want(&e) => break,
                Err(e) => {
                    self.collect(0, out);
                    self.phase = Phase::Closed;
                    return Err(DtlsSctpError::Record(e));
                }
            }
        }
        self.collect(0, out);
        Ok(())
    }

    /// close_notify (after a SENDER_DRY point, §4.9).
    pub(crate) fn close(&mut self, out: &mut Vec<DtlsAction>) {
        if self.phase != Phase::Up {
            self.phase = Phase::Closed;
            return;
        }
        self.closing = true;
        let _ = self.ssl.shutdown();
        self.collect(0, out);
        self.phase = Phase::Closed;
    }
}

fn proof_of(ssl: &openssl::ssl::SslRef, ids: &Identities) -> PeerProof {
    let cert = ssl.peer_certificate();
    let identities = cert
        .as_ref()
        .and_then(|c| c.to_der().ok())
        .map_or_else(PeerIdentities::none, |der| {
            ids.of(&rustls_pki_types::CertificateDer::from(der))
        });
    PeerProof {
        identities,
        peer_certificate: cert.is_some(),
        alpn: ssl.selected_alpn_protocol().map(Arc::from),
        sni: ssl.servername(NameType::HOST_NAME).map(Arc::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::pkey::PKey;
    use openssl::ssl::{SslMethod, SslVerifyMode};
    use openssl::x509::X509;

    struct Pair {
        client: DtlsAssoc,
        server: DtlsAssoc,
        ids: Identities,
        /// Every key step each side was told, in order.
        client_keys: Vec<DtlsAction>,
        server_keys: Vec<DtlsAction>,
    }

    fn cert() -> (X509, PKey<openssl::pkey::Private>) {
        let c = rcgen::generate_simple_self_signed(vec!["sip.example.net".to_owned()]).unwrap();
        (
            X509::from_pem(c.cert.pem().as_bytes()).unwrap(),
            PKey::private_key_from_pem(c.signing_key.serialize_pem().as_bytes()).unwrap(),
        )
    }

    fn roles(name: &str) -> (DtlsRole, DtlsRole) {
        let (x509, key) = cert();
        let mut a = SslAcceptor::mozilla_intermediate_v5(SslMethod::dtls()).unwrap();
        a.set_certificate(&x509).unwrap();
        a.set_private_key(&key).unwrap();
        let mut c = SslConnector::builder(SslMethod::dtls()).unwrap();
        c.cert_store_mut().add_cert(x509).unwrap();
        c.set_verify(SslVerifyMode::PEER);
        (
            DtlsRole::Client {
                connector: Arc::new(connector(c)),
                name: name.to_owned(),
            },
            DtlsRole::Server {
                acceptor: Arc::new(acceptor(a)),
            },
        )
    }

    /// Moves records (the key steps kept aside) and returns the records left to send.
    fn split(actions: Vec<DtlsAction>, keys: &mut Vec<DtlsAction>) -> Vec<(u16, Bytes)> {
        let mut recs = Vec::new();
        for a in actions {
            match a {
                DtlsAction::Send { stream, record } => recs.push((stream, record)),
                other => keys.push(other),
            }
        }
        recs
    }

    impl Pair {
        fn new(name: &str) -> Pair {
            let (c, s) = roles(name);
            Pair {
                client: DtlsAssoc::new(&c).unwrap(),
                server: DtlsAssoc::new(&s).unwrap(),
                ids: Identities::new(Some(crate::tls::identity_fn())),
                client_keys: Vec::new(),
                server_keys: Vec::new(),
            }
        }

        /// Delivers records both ways until quiet; returns what each side got.
        #[allow(clippy::type_complexity)]
        fn run(
            &mut self,
            first: Vec<DtlsAction>,
        ) -> Result<(Vec<(u16, Bytes)>, Vec<(u16, Bytes)>), DtlsSctpError> {
            let (mut at_client, mut at_server) = (Vec::new(), Vec::new());
            let mut to_server = split(first, &mut self.client_keys);
            for _ in 0..20 {
                let mut to_client = Vec::new();
                for (s, rec) in to_server.drain(..) {
                    assert!(rec.len() <= RECORD_HEADER + DTLS_SCTP_MAX_MESSAGE + 2048);
                    let mut acts = Vec::new();
                    self.server
                        .receive(s, &rec, &self.ids, &mut acts, &mut at_server)?;
                    to_client.extend(split(acts, &mut self.server_keys));
                }
                for (s, rec) in to_client.drain(..) {
                    let mut acts = Vec::new();
                    self.client
                        .receive(s, &rec, &self.ids, &mut acts, &mut at_client)?;
                    to_server.extend(split(acts, &mut self.client_keys));
                }
                if to_server.is_empty() {
                    break;
                }
            }
            Ok((at_client, at_server))
        }

        fn handshake(&mut self) {
            let mut out = Vec::new();
            self.client.start(&mut out).unwrap();
            self.run(out).unwrap();
            assert!(self.client.is_up() && self.server.is_up());
        }
    }

    fn key_of(steps: &[DtlsAction]) -> Box<[u8; AUTH_KEY_LEN]> {
        steps
            .iter()
            .find_map(|a| match a {
                DtlsAction::AddKey { number: 1, key } => Some(key.clone()),
                _ => None,
            })
            .expect("a key was added")
    }

    #[test]
    fn handshake_on_stream_0_then_data_both_ways_on_the_streams_asked_for() {
        let mut p = Pair::new("sip.example.net");
        let mut out = Vec::new();
        p.client.start(&mut out).unwrap();
        // The ClientHello: one handshake record on stream 0, nothing else.
        assert!(matches!(&out[..], [DtlsAction::Send { stream: 0, record }] if record[0] == 22));
        p.run(out).unwrap();
        assert!(p.client.is_up() && p.server.is_up());
        assert_eq!(
            p.server.peer().and_then(|x| x.sni.clone()),
            Some("sip.example.net".into())
        );
        assert!(p.client.peer().unwrap().peer_certificate);
        assert_eq!(
            p.client.peer().unwrap().identities,
            PeerIdentities::from_names(vec!["sip.example.net".to_owned()])
        );

        let mut out = Vec::new();
        p.client
            .send(5, Bytes::from_static(b"OPTIONS on 5"), &mut out)
            .unwrap();
        p.client
            .send(9, Bytes::from_static(b"OPTIONS on 9"), &mut out)
            .unwrap();
        let streams: Vec<u16> = out
            .iter()
            .map(|a| match a {
                DtlsAction::Send { stream, record } => {
                    assert_eq!(record[0], CT_APPLICATION_DATA);
                    *stream
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(streams, [5, 9]);
        let (_, at_server) = p.run(out).unwrap();
        assert_eq!(
            at_server,
            [
                (5, Bytes::from_static(b"OPTIONS on 5")),
                (9, Bytes::from_static(b"OPTIONS on 9"))
            ]
        );
        let mut out = Vec::new();
        p.server
            .send(3, Bytes::from_static(b"SIP/2.0 200 OK"), &mut out)
            .unwrap();
        let mut at_client = Vec::new();
        for (s, r) in split(out, &mut Vec::new()) {
            p.client
                .receive(s, &r, &p.ids, &mut Vec::new(), &mut at_client)
                .unwrap();
        }
        assert_eq!(at_client, [(3, Bytes::from_static(b"SIP/2.0 200 OK"))]);
    }

    #[test]
    fn key_schedule_follows_rfc_6083_and_both_sides_derive_the_same_key() {
        let mut p = Pair::new("sip.example.net");
        let mut out = Vec::new();
        p.client.start(&mut out).unwrap();
        // Watch the client's third flight closely: the records in order with the steps.
        let mut to_server = split(out, &mut p.client_keys);
        let mut client_flight3 = Vec::new();
        for _ in 0..4 {
            let mut to_client = Vec::new();
            for (s, r) in to_server.drain(..) {
                let mut acts = Vec::new();
                p.server
                    .receive(s, &r, &p.ids, &mut acts, &mut Vec::new())
                    .unwrap();
                p.server_keys.extend(
                    acts.iter()
                        .filter(|a| !matches!(a, DtlsAction::Send { .. }))
                        .cloned(),
                );
                to_client.extend(split(acts, &mut Vec::new()));
            }
            for (s, r) in to_client.drain(..) {
                let mut acts = Vec::new();
                p.client
                    .receive(s, &r, &p.ids, &mut acts, &mut Vec::new())
                    .unwrap();
                if client_flight3.is_empty()
                    && acts.iter().any(|a| matches!(a, DtlsAction::AddKey { .. }))
                {
                    client_flight3 = acts.clone();
                }
                p.client_keys.extend(
                    acts.iter()
                        .filter(|a| !matches!(a, DtlsAction::Send { .. }))
                        .cloned(),
                );
                to_server.extend(split(acts, &mut Vec::new()));
            }
        }
        assert!(p.client.is_up() && p.server.is_up());
        // Client: key added first, then ClientKeyExchange, SENDER_DRY, CCS, key 1 active,
        // Finished (all handshake/CCS records on stream 0).
        let shape: Vec<String> = client_flight3
            .iter()
            .map(|a| match a {
                DtlsAction::Send { stream, record } => format!("rec{}@{}", record[0], stream),
                DtlsAction::SenderDry => "dry".into(),
                DtlsAction::AddKey { number, .. } => format!("add{number}"),
                DtlsAction::ActivateKey { number } => format!("activate{number}"),
                DtlsAction::DeleteKey { number } => format!("delete{number}"),
            })
            .collect();
        let ccs = shape.iter().position(|s| s == "rec20@0").unwrap();
        assert_eq!(shape[0], "add1");
        assert_eq!(shape[ccs - 1], "dry");
        assert_eq!(shape[ccs + 1], "activate1");
        assert_eq!(shape[ccs + 2], "rec22@0", "Finished right after: {shape:?}");
        assert!(shape
            .iter()
            .all(|s| !s.starts_with("rec") || s.ends_with("@0")));
        // Each side: add 1, activate 1, delete 0 — in that order, once.
        for steps in [&p.client_keys, &p.server_keys] {
            let names: Vec<&str> = steps
                .iter()
                .filter_map(|a| match a {
                    DtlsAction::AddKey { number: 1, .. } => Some("add1"),
                    DtlsAction::ActivateKey { number: 1 } => Some("activate1"),
                    DtlsAction::DeleteKey { number: 0 } => Some("delete0"),
                    DtlsAction::SenderDry => None,
                    other => panic!("unexpected {other:?}"),
                })
                .collect();
            assert_eq!(names, ["add1", "activate1", "delete0"]);
        }
        // The same 64-byte key on both sides, and it is the exporter's value after the
        // handshake (taken mid-handshake it must not differ).
        let (kc, ks) = (key_of(&p.client_keys), key_of(&p.server_keys));
        assert_eq!(kc, ks);
        assert_ne!(*kc, [0u8; AUTH_KEY_LEN]);
        assert_eq!(p.client.export_key().unwrap(), kc);
        assert_eq!(p.server.export_key().unwrap(), ks);
    }

    #[test]
    fn messages_queued_during_the_handshake_go_out_after_it() {
        let mut p = Pair::new("sip.example.net");
        let mut out = Vec::new();
        p.client.start(&mut out).unwrap();
        p.client
            .send(2, Bytes::from_static(b"early INVITE"), &mut out)
            .unwrap();
        assert_eq!(out.len(), 1, "nothing but the ClientHello yet");
        let (_, at_server) = p.run(out).unwrap();
        assert_eq!(at_server, [(2, Bytes::from_static(b"early INVITE"))]);
    }

    #[test]
    fn a_record_delivered_after_hundreds_of_others_still_reaches_the_application() {
        // SCTP retransmitted record 5 (stream 6) while the other streams delivered 294 more:
        // DTLS's replay window alone would drop it (RFC 6083 §3.3 wants no replay check).
        let mut p = Pair::new("sip.example.net");
        p.handshake();
        let mut out = Vec::new();
        for i in 0..300u16 {
            let m = Bytes::from(format!("MESSAGE {i}"));
            p.client.send(1 + i % 15, m, &mut out).unwrap();
        }
        let mut recs = split(out, &mut Vec::new());
        let late = recs.remove(5);
        recs.push(late);
        let mut got = Vec::new();
        for (s, r) in recs {
            let r = p
                .server
                .receive(s, &r, &p.ids, &mut Vec::new(), &mut got)
                .unwrap();
            assert_eq!(r.gaps_skipped, 0);
        }
        assert_eq!(got.len(), 300, "nothing lost");
        let mut seen: Vec<&[u8]> = got.iter().map(|(_, m)| &m[..]).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 300, "each once");
        let five = got.iter().find(|(_, m)| &m[..] == b"MESSAGE 5").unwrap();
        assert_eq!(five.0, 6, "on its own stream");
    }

    #[test]
    fn a_message_over_2_14_bytes_is_refused_and_the_largest_one_fits() {
        let mut p = Pair::new("sip.example.net");
        p.handshake();
        let mut out = Vec::new();
        let too_big = Bytes::from(vec![b'x'; DTLS_SCTP_MAX_MESSAGE + 1]);
        let e = p.client.send(1, too_big, &mut out).unwrap_err();
        assert!(matches!(e, DtlsSctpError::TooLarge { len: 16385 }));
        assert_eq!(e.reason(), "dtls_message_too_large");
        assert!(out.is_empty());
        let max = Bytes::from(vec![b'y'; DTLS_SCTP_MAX_MESSAGE]);
        p.client.send(1, max.clone(), &mut out).unwrap();
        assert_eq!(out.len(), 1, "one record, never split");
        let (_, at_server) = p.run(out).unwrap();
        assert_eq!(at_server, [(1, max)]);
        // Refused before the handshake too.
        let mut fresh = Pair::new("sip.example.net");
        let e = fresh
            .client
            .send(1, Bytes::from(vec![0; 20_000]), &mut Vec::new())
            .unwrap_err();
        assert!(matches!(e, DtlsSctpError::TooLarge { len: 20_000 }));
    }

    #[test]
    fn close_notify_waits_for_sender_dry_and_the_peer_sees_the_close() {
        let mut p = Pair::new("sip.example.net");
        p.handshake();
        let mut out = Vec::new();
        p.client.close(&mut out);
        assert_eq!(out.first(), Some(&DtlsAction::SenderDry));
        let recs = split(out, &mut Vec::new());
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].1[0], CT_ALERT);
        let got = p
            .server
            .receive(0, &recs[0].1, &p.ids, &mut Vec::new(), &mut Vec::new())
            .unwrap();
        assert!(got.closed);
        assert!(matches!(
            p.client
                .send(1, Bytes::from_static(b"late"), &mut Vec::new()),
            Err(DtlsSctpError::Closed)
        ));
    }

    #[test]
    fn a_wrong_server_name_fails_the_handshake() {
        let mut p = Pair::new("other.example.org");
        let mut out = Vec::new();
        p.client.start(&mut out).unwrap();
        let e = p.run(out).unwrap_err();
        assert_eq!(e.reason(), "bad_certificate");
    }

    #[test]
    fn contexts_get_no_query_mtu_and_no_renegotiation() {
        let mut b = SslConnector::builder(SslMethod::dtls()).unwrap();
        b.set_options(dtls_sctp_options());
        assert!(b
            .options()
            .contains(SslOptions::NO_QUERY_MTU | SslOptions::NO_RENEGOTIATION));
    }

    #[test]
    fn wire_cuts_a_packed_flight_into_records() {
        let mut w = Wire::default();
        let mut buf = Vec::new();
        for (t, len) in [(22u8, 3usize), (20, 1), (22, 0)] {
            buf.extend_from_slice(&[t, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0]);
            buf.extend_from_slice(&(len as u16).to_be_bytes());
            buf.extend(std::iter::repeat_n(7u8, len));
        }
        w.write_all(&buf).unwrap();
        let lens: Vec<usize> = w.outbox.iter().map(Vec::len).collect();
        assert_eq!(lens, [16, 14, 13]);
    }
}
