//! TLS over SCTP (RFC 3436) for one association, with no socket: one rustls session per
//! bidirectional stream (stream `n` both ways), each with its own handshake (resumption lets
//! the later ones be cheap), every TLS record one SCTP user message, ordered delivery only.
//!
//! Fed the user messages that arrive on each stream and the plaintext the layer above sends, it
//! hands back the records to send (stream, record) and the plaintext received. The association's
//! initiator is the TLS client on every stream and opens a stream's session on first use; the
//! other side answers. The first completed handshake says who the peer is ([`PeerProof`]); every
//! later stream must prove the same identities, or the association is to be aborted.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::sync::Arc;

use bytes::Bytes;
use rustls_pki_types::ServerName;

use super::session::{HandshakeError, Identities};
use crate::PeerIdentities;

/// Our side of every stream's TLS session.
#[derive(Debug, Clone)]
pub(crate) enum TlsRole {
    /// We started the association: TLS client on every stream.
    Client {
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
        require_alpn: bool,
    },
    /// The peer started it: TLS server on every stream it opens.
    Server { config: Arc<rustls::ServerConfig> },
}

/// What a completed handshake proved about the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerProof {
    pub(crate) identities: PeerIdentities,
    pub(crate) peer_certificate: bool,
    pub(crate) alpn: Option<Arc<[u8]>>,
    /// Server side: the SNI the client sent.
    pub(crate) sni: Option<Arc<str>>,
}

/// Why the association must be aborted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsSctpError {
    /// A stream's handshake failed or a record was refused.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// A later stream's peer proved other identities than the first.
    #[error("the peer's identity differs between streams of one association")]
    IdentityChanged,
    /// The server side sent first on a stream we never opened.
    #[error("TLS data on stream {0}, which we did not open")]
    UnexpectedStream(u16),
}

impl TlsSctpError {
    /// Metrics label.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            TlsSctpError::Handshake(e) => e.reason(),
            TlsSctpError::IdentityChanged => "identity_changed",
            TlsSctpError::UnexpectedStream(_) => "unexpected_stream",
        }
    }
}

#[derive(Debug)]
struct StreamTls {
    conn: rustls::Connection,
    /// Plaintext queued until the handshake finishes.
    waiting: VecDeque<Bytes>,
}

/// One association's TLS sessions.
#[derive(Debug)]
pub(crate) struct TlsStreams {
    role: TlsRole,
    streams: HashMap<u16, StreamTls>,
    peer: Option<PeerProof>,
    /// Streams whose handshake finished, in order of completion (the server sends on them).
    ready: Vec<u16>,
    /// Streams 0..this exist both ways (RFC 3436 §3.1); TLS on another is refused (§6.2).
    bidirectional: u16,
}

/// What a received user message gave.
#[derive(Debug, Default)]
pub(crate) struct TlsReceived {
    /// This stream's handshake just finished (with what the first one proved, when it is the
    /// first).
    pub(crate) first_proof: Option<PeerProof>,
}

/// Cuts rustls's output into whole records (RFC 3436: one record per user message).
fn push_records(buf: &[u8], stream: u16, out: &mut Vec<(u16, Bytes)>) {
    let mut at = 0;
    while let Some(head) = buf.get(at..at + 5) {
        let len = usize::from(u16::from_be_bytes([head[3], head[4]]));
        let end = (at + 5 + len).min(buf.len());
        out.push((stream, Bytes::copy_from_slice(&buf[at..end])));
        at = end;
    }
}

/// rustls's own buffer bound would make a large message's `write_all` stop part-way; records
/// are taken out at once after every write, and the association's sink bounds the bytes.
fn unbounded(conn: &mut rustls::Connection) {
    conn.set_buffer_limit(None);
}

fn drain(conn: &mut rustls::Connection, stream: u16, out: &mut Vec<(u16, Bytes)>) {
    if !conn.wants_write() {
        return;
    }
    let mut buf = Vec::new();
    while conn.wants_write() {
        if conn.write_tls(&mut buf).is_err() {
            break;
        }
    }
    push_records(&buf, stream, out);
}

impl TlsStreams {
    pub(crate) fn new(role: TlsRole) -> TlsStreams {
        TlsStreams {
            role,
            streams: HashMap::new(),
            peer: None,
            ready: Vec::new(),
            bidirectional: u16::MAX,
        }
    }

    /// Only streams below `n` (those numbered both ways) carry TLS.
    pub(crate) fn with_bidirectional(mut self, n: u16) -> TlsStreams {
        self.set_bidirectional(n);
        self
    }

    fn set_bidirectional(&mut self, n: u16) {
        self.bidirectional = n.max(1);
    }

    /// What the first handshake proved, once one finished.
    #[cfg(test)]
    pub(crate) fn peer(&self) -> Option<&PeerProof> {
        self.peer.as_ref()
    }

    fn open_client(
        &mut self,
        stream: u16,
        out: &mut Vec<(u16, Bytes)>,
    ) -> Result<(), TlsSctpError> {
        let TlsRole::Client { config, name, .. } = &self.role else {
            return Err(TlsSctpError::UnexpectedStream(stream));
        };
        let mut conn = rustls::ClientConnection::new(Arc::clone(config), name.clone())
            .map(rustls::Connection::Client)
            .map_err(|e| TlsSctpError::Handshake(HandshakeError::Tls(e)))?;
        unbounded(&mut conn);
        drain(&mut conn, stream, out);
        self.streams.insert(
            stream,
            StreamTls {
                conn,
                waiting: VecDeque::new(),
            },
        );
        Ok(())
    }

    /// Client side: starts the handshake on `stream` now (the first stream, opened at connect
    /// so that the server is authenticated before anything is sent).
    pub(crate) fn start(
        &mut self,
        stream: u16,
        out: &mut Vec<(u16, Bytes)>,
    ) -> Result<(), TlsSctpError> {
        if self.streams.contains_key(&stream) {
            return Ok(());
        }
        self.open_client(stream, out)
    }

    /// The stream a message meant for `preferred` goes on: that one if its session exists
    /// (or, client side, can be opened); server side, otherwise one the client opened.
    pub(crate) fn stream_for(&self, preferred: u16) -> Option<u16> {
        if self.streams.contains_key(&preferred) || matches!(self.role, TlsRole::Client { .. }) {
            return Some(preferred);
        }
        match self.ready.len() {
            0 => self.streams.keys().min().copied(),
            n => self.ready.get(usize::from(preferred) % n).copied(),
        }
    }

    /// Encrypts `plain` on `stream` (opened first, client side; queued until its handshake
    /// finishes).
    pub(crate) fn send(
        &mut self,
        stream: u16,
        plain: Bytes,
        out: &mut Vec<(u16, Bytes)>,
    ) -> Result<(), TlsSctpError> {
        if !self.streams.contains_key(&stream) {
            self.open_client(stream, out)?;
        }
        let Some(s) = self.streams.get_mut(&stream) else {
            return Err(TlsSctpError::UnexpectedStream(stream));
        };
        if s.conn.is_handshaking() {
            s.waiting.push_back(plain);
            return Ok(());
        }
        // rustls buffers without limit here; the sink's byte bound applies before.
        let _ = s.conn.writer().write_all(&plain);
        drain(&mut s.conn, stream, out);
        Ok(())
    }

    /// One user message received on `stream`: records in, records out, plaintext appended to
    /// `plain`.
    pub(crate) fn receive(
        &mut self,
        stream: u16,
        mut data: &[u8],
        ids: &Identities,
        out: &mut Vec<(u16, Bytes)>,
        plain: &mut Vec<u8>,
    ) -> Result<TlsReceived, TlsSctpError> {
        if stream >= self.bidirectional {
            // A one-way stream carries no TLS (RFC 3436 §6.2).
            return Err(TlsSctpError::UnexpectedStream(stream));
        }
        if !self.streams.contains_key(&stream) {
            let TlsRole::Server { config } = &self.role else {
                return Err(TlsSctpError::UnexpectedStream(stream));
            };
            let mut conn = rustls::ServerConnection::new(Arc::clone(config))
                .map(rustls::Connection::Server)
                .map_err(|e| TlsSctpError::Handshake(HandshakeError::Tls(e)))?;
            unbounded(&mut conn);
            self.streams.insert(
                stream,
                StreamTls {
                    conn,
                    waiting: VecDeque::new(),
                },
            );
        }
        let Some(s) = self.streams.get_mut(&stream) else {
            return Err(TlsSctpError::UnexpectedStream(stream));
        };
        let was_handshaking = s.conn.is_handshaking();
        while !data.is_empty() {
            match s.conn.read_tls(&mut data) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(HandshakeError::Io(e).into()),
            }
            if let Err(e) = s.conn.process_new_packets() {
                drain(&mut s.conn, stream, out);
                return Err(HandshakeError::Tls(e).into());
            }
        }
        let mut got = TlsReceived::default();
        if was_handshaking && !s.conn.is_handshaking() {
            let proof = proof_of(&s.conn, ids);
            if let TlsRole::Client {
                require_alpn: true, ..
            } = &self.role
            {
                if proof.alpn.is_none() {
                    return Err(HandshakeError::NoApplicationProtocol.into());
                }
            }
            match &self.peer {
                None => {
                    self.peer = Some(proof.clone());
                    got.first_proof = Some(proof);
                }
                Some(p) if p.identities == proof.identities => {}
                Some(_) => return Err(TlsSctpError::IdentityChanged),
            }
            self.ready.push(stream);
            while let Some(p) = s.waiting.pop_front() {
                let _ = s.conn.writer().write_all(&p);
            }
        }
        let mut chunk = [0u8; 4096];
        loop {
            match s.conn.reader().read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => plain.extend_from_slice(&chunk[..n]),
            }
        }
        drain(&mut s.conn, stream, out);
        Ok(got)
    }

    /// close_notify on every stream.
    pub(crate) fn close(&mut self, out: &mut Vec<(u16, Bytes)>) {
        for (stream, s) in &mut self.streams {
            s.conn.send_close_notify();
            drain(&mut s.conn, *stream, out);
        }
    }
}

fn proof_of(conn: &rustls::Connection, ids: &Identities) -> PeerProof {
    let certs = conn.peer_certificates();
    PeerProof {
        identities: certs
            .and_then(|c| c.first())
            .map_or_else(PeerIdentities::none, |ee| ids.of(ee)),
        peer_certificate: certs.is_some_and(|c| !c.is_empty()),
        alpn: conn.alpn_protocol().map(Arc::from),
        sni: match conn {
            rustls::Connection::Server(s) => s.server_name().map(Arc::from),
            rustls::Connection::Client(_) => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two associations' ends in memory, records passed between them stream by stream.
    struct Pair {
        client: TlsStreams,
        server: TlsStreams,
        ids: Identities,
    }

    impl Pair {
        fn new(server_cert: (&[u8], &[u8]), client_name: &str) -> Pair {
            let (cert, key) = server_cert;
            let certs: Vec<rustls_pki_types::CertificateDer<'static>> =
                rustls_pemfile::certs(&mut &cert[..])
                    .map(|c| c.unwrap())
                    .collect();
            let key = rustls_pemfile::private_key(&mut &key[..]).unwrap().unwrap();
            let mut roots = rustls::RootCertStore::empty();
            roots.add(certs[0].clone()).unwrap();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap();
            let client = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            Pair {
                client: TlsStreams::new(TlsRole::Client {
                    config: Arc::new(client),
                    name: ServerName::try_from(client_name.to_owned()).unwrap(),
                    require_alpn: false,
                }),
                server: TlsStreams::new(TlsRole::Server {
                    config: Arc::new(server),
                }),
                ids: Identities::new(Some(crate::tls::identity_fn())),
            }
        }

        /// Delivers records both ways until quiet; returns the plaintext each side got.
        fn run(&mut self, mut to_server: Vec<(u16, Bytes)>) -> (Vec<u8>, Vec<u8>) {
            let (mut at_client, mut at_server) = (Vec::new(), Vec::new());
            for _ in 0..20 {
                let mut to_client = Vec::new();
                for (s, rec) in to_server.drain(..) {
                    self.server
                        .receive(s, &rec, &self.ids, &mut to_client, &mut at_server)
                        .unwrap();
                }
                for (s, rec) in to_client.drain(..) {
                    self.client
                        .receive(s, &rec, &self.ids, &mut to_server, &mut at_client)
                        .unwrap();
                }
                if to_server.is_empty() {
                    break;
                }
            }
            (at_client, at_server)
        }
    }

    fn cert() -> (Vec<u8>, Vec<u8>) {
        let c = rcgen::generate_simple_self_signed(vec!["sip.example.net".to_owned()]).unwrap();
        (
            c.cert.pem().into_bytes(),
            c.signing_key.serialize_pem().into_bytes(),
        )
    }

    #[test]
    fn one_session_per_stream_records_are_whole_and_plaintext_flows_both_ways() {
        let (c, k) = cert();
        let mut p = Pair::new((&c, &k), "sip.example.net");
        let mut out = Vec::new();
        p.client
            .send(3, Bytes::from_static(b"hello on 3"), &mut out)
            .unwrap();
        p.client
            .send(7, Bytes::from_static(b"hello on 7"), &mut out)
            .unwrap();
        // Two ClientHellos, one record each, on their streams; nothing sent in clear.
        assert_eq!(out.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [3, 7]);
        assert!(out.iter().all(
            |(_, r)| r[0] == 22 && r.len() == 5 + usize::from(u16::from_be_bytes([r[3], r[4]]))
        ));
        let (_, at_server) = p.run(out);
        assert_eq!(at_server, b"hello on 3hello on 7");
        assert_eq!(
            p.server.peer().map(|x| x.sni.clone()),
            Some(Some("sip.example.net".into()))
        );
        // The server answers on a stream the client opened.
        let s = p.server.stream_for(11).unwrap();
        assert!(s == 3 || s == 7);
        let mut out = Vec::new();
        p.server
            .send(s, Bytes::from_static(b"answer"), &mut out)
            .unwrap();
        let mut at_client = Vec::new();
        for (st, rec) in out {
            p.client
                .receive(st, &rec, &p.ids, &mut Vec::new(), &mut at_client)
                .unwrap();
        }
        assert_eq!(at_client, b"answer");
    }

    #[test]
    fn a_large_message_sent_during_and_after_the_handshake_is_never_cut() {
        let (c, k) = cert();
        let mut p = Pair::new((&c, &k), "sip.example.net");
        let big = Bytes::from(vec![b'x'; 100 * 1024]);
        let mut out = Vec::new();
        // Queued while stream 1's handshake runs, then again once it is up.
        p.client.send(1, big.clone(), &mut out).unwrap();
        let (_, at_server) = p.run(out);
        assert_eq!(at_server.len(), big.len());
        let mut out = Vec::new();
        p.client.send(1, big.clone(), &mut out).unwrap();
        assert!(out.iter().all(|(_, r)| r.len() <= 5 + 16384 + 256));
        let (_, at_server) = p.run(out);
        assert_eq!(at_server.len(), big.len());
    }

    /// A CA, a server certificate and two client certificates with different SIP identities.
    struct ClientCerts {
        server: Arc<rustls::ServerConfig>,
        clients: Vec<Arc<rustls::ClientConfig>>,
    }

    fn client_certs() -> ClientCerts {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let leaf = |name: &str| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(vec![name.to_owned()]).unwrap();
            p.subject_alt_names
                .push(SanType::URI(format!("sip:{name}").try_into().unwrap()));
            let cert = p.signed_by(&key, &issuer).unwrap();
            (
                vec![cert.der().clone()],
                rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
        };
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::clone(&roots),
            Arc::clone(&provider),
        )
        .build()
        .unwrap();
        let (chain, key) = leaf("sip.example.net");
        let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap();
        let clients = ["a.example.com", "b.example.org"]
            .iter()
            .map(|n| {
                let (chain, key) = leaf(n);
                Arc::new(
                    rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
                        .with_safe_default_protocol_versions()
                        .unwrap()
                        .with_root_certificates(Arc::clone(&roots))
                        .with_client_auth_cert(chain, key)
                        .unwrap(),
                )
            })
            .collect();
        ClientCerts {
            server: Arc::new(server),
            clients,
        }
    }

    fn client(config: &Arc<rustls::ClientConfig>) -> TlsStreams {
        TlsStreams::new(TlsRole::Client {
            config: Arc::clone(config),
            name: ServerName::try_from("sip.example.net").unwrap(),
            require_alpn: false,
        })
    }

    /// Runs one stream's handshake between `client` and `server`; the server's outcome.
    fn handshake(
        client: &mut TlsStreams,
        server: &mut TlsStreams,
        stream: u16,
        ids: &Identities,
    ) -> Result<(), TlsSctpError> {
        let mut to_server = Vec::new();
        client.start(stream, &mut to_server).unwrap();
        for _ in 0..10 {
            let mut to_client = Vec::new();
            for (s, r) in to_server.drain(..) {
                server.receive(s, &r, ids, &mut to_client, &mut Vec::new())?;
            }
            for (s, r) in to_client.drain(..) {
                client
                    .receive(s, &r, ids, &mut to_server, &mut Vec::new())
                    .unwrap();
            }
            if to_server.is_empty() {
                break;
            }
        }
        Ok(())
    }

    #[test]
    fn every_stream_must_prove_the_identity_the_first_proved() {
        let c = client_certs();
        let ids = Identities::new(Some(crate::tls::identity_fn()));
        let mut server = TlsStreams::new(TlsRole::Server {
            config: Arc::clone(&c.server),
        });
        let (mut first, mut same, mut other) = (
            client(&c.clients[0]),
            client(&c.clients[0]),
            client(&c.clients[1]),
        );
        handshake(&mut first, &mut server, 0, &ids).unwrap();
        let proved = server
            .peer()
            .expect("first stream proved")
            .identities
            .clone();
        assert_eq!(&*proved, ["a.example.com"]);
        // Another stream with the same certificate is fine; one with another identity is not.
        handshake(&mut same, &mut server, 1, &ids).unwrap();
        let err = handshake(&mut other, &mut server, 2, &ids).unwrap_err();
        assert!(matches!(err, TlsSctpError::IdentityChanged), "{err:?}");
        assert_eq!(err.reason(), "identity_changed");
    }

    #[test]
    fn tls_on_a_one_way_stream_is_refused() {
        let (c, k) = cert();
        let mut p = Pair::new((&c, &k), "sip.example.net");
        // Four streams both ways: stream 4 exists one way only.
        p.server.set_bidirectional(4);
        let mut out = Vec::new();
        p.client.start(4, &mut out).unwrap();
        let (s, rec) = out.remove(0);
        let err = p
            .server
            .receive(s, &rec, &p.ids, &mut Vec::new(), &mut Vec::new())
            .unwrap_err();
        assert!(matches!(err, TlsSctpError::UnexpectedStream(4)), "{err:?}");
        // Stream 3 (both ways) is fine.
        let mut out = Vec::new();
        p.client.start(3, &mut out).unwrap();
        let (s, rec) = out.remove(0);
        p.server
            .receive(s, &rec, &p.ids, &mut Vec::new(), &mut Vec::new())
            .unwrap();
    }

    #[test]
    fn a_server_that_speaks_first_on_an_unopened_stream_is_refused() {
        let (c, k) = cert();
        let mut p = Pair::new((&c, &k), "sip.example.net");
        let err = p
            .client
            .receive(
                4,
                b"\x16\x03\x03\x00\x01\x00",
                &p.ids,
                &mut Vec::new(),
                &mut Vec::new(),
            )
            .unwrap_err();
        assert!(matches!(err, TlsSctpError::UnexpectedStream(4)));
    }

    #[test]
    fn a_wrong_server_name_fails_the_handshake_with_an_alert() {
        let (c, k) = cert();
        let mut p = Pair::new((&c, &k), "other.example.org");
        let mut out = Vec::new();
        p.client.start(0, &mut out).unwrap();
        let mut back = Vec::new();
        for (s, r) in out {
            p.server
                .receive(s, &r, &p.ids, &mut back, &mut Vec::new())
                .unwrap();
        }
        let mut failed = None;
        for (s, r) in back {
            if let Err(e) = p
                .client
                .receive(s, &r, &p.ids, &mut Vec::new(), &mut Vec::new())
            {
                failed = Some(e);
                break;
            }
        }
        let e = failed.expect("the client refuses the certificate");
        assert_eq!(e.reason(), "bad_certificate");
    }
}
