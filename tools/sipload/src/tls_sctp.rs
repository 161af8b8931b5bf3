//! TLS over SCTP (RFC 3436) in its simple form: one TLS session per stream, both ways on the
//! same stream number, every TLS record one SCTP user message. Free of I/O: fed the user
//! messages of a stream, it hands back records to send and the plaintext (which is framed
//! like a TCP byte stream, per stream). The client opens its sessions before the run; the
//! server (in `serve`) creates one when a stream's first record arrives.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

/// One stream's session and the plaintext it received that is not framed yet.
struct Session {
    conn: Connection,
    plain: Vec<u8>,
}

/// Which side opens sessions.
enum Role {
    Client(Arc<ClientConfig>, ServerName<'static>),
    Server(Arc<ServerConfig>),
}

/// The TLS sessions of one association.
pub struct Sessions {
    role: Role,
    streams: HashMap<u16, Session>,
}

impl Sessions {
    /// Client side.
    pub fn client(config: Arc<ClientConfig>, name: ServerName<'static>) -> Sessions {
        Sessions {
            role: Role::Client(config, name),
            streams: HashMap::new(),
        }
    }

    /// Server side.
    pub fn server(config: Arc<ServerConfig>) -> Sessions {
        Sessions {
            role: Role::Server(config),
            streams: HashMap::new(),
        }
    }

    /// Client side: starts the handshake on `stream`; its first records go to `out`.
    pub fn open(
        &mut self,
        stream: u16,
        out: &mut Vec<(u16, Vec<u8>)>,
    ) -> Result<(), rustls::Error> {
        let Role::Client(config, name) = &self.role else {
            return Ok(());
        };
        let conn = ClientConnection::new(Arc::clone(config), name.clone())?;
        let mut s = Session {
            conn: Connection::Client(conn),
            plain: Vec::new(),
        };
        drain(&mut s.conn, stream, out);
        self.streams.insert(stream, s);
        Ok(())
    }

    /// True while a session's handshake is under way.
    pub fn handshaking(&self) -> bool {
        self.streams.values().any(|s| s.conn.is_handshaking())
    }

    /// The negotiated version and cipher suite of the lowest stream's session.
    pub fn cipher(&self) -> Option<String> {
        let s = self
            .streams
            .keys()
            .min()
            .and_then(|k| self.streams.get(k))?;
        Some(format!(
            "{:?}/{:?}",
            s.conn.protocol_version()?,
            s.conn.negotiated_cipher_suite()?.suite()
        ))
    }

    /// Encrypts `plain` on `stream` (whose session must exist); records go to `out`.
    pub fn send(&mut self, stream: u16, plain: &[u8], out: &mut Vec<(u16, Vec<u8>)>) -> bool {
        let Some(s) = self.streams.get_mut(&stream) else {
            return false;
        };
        if s.conn.writer().write_all(plain).is_err() {
            return false;
        }
        drain(&mut s.conn, stream, out);
        true
    }

    /// One user message received on `stream`: records in (answers to `out`); the stream's
    /// plaintext buffer grows.
    pub fn receive(
        &mut self,
        stream: u16,
        mut data: &[u8],
        out: &mut Vec<(u16, Vec<u8>)>,
    ) -> Result<(), rustls::Error> {
        if !self.streams.contains_key(&stream) {
            let Role::Server(config) = &self.role else {
                return Err(rustls::Error::General(format!(
                    "TLS record on stream {stream}, which sipload did not open"
                )));
            };
            let conn = ServerConnection::new(Arc::clone(config))?;
            self.streams.insert(
                stream,
                Session {
                    conn: Connection::Server(conn),
                    plain: Vec::new(),
                },
            );
        }
        let Some(s) = self.streams.get_mut(&stream) else {
            return Ok(());
        };
        while !data.is_empty() {
            match s.conn.read_tls(&mut data) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(rustls::Error::General(e.to_string())),
            }
            if let Err(e) = s.conn.process_new_packets() {
                drain(&mut s.conn, stream, out);
                return Err(e);
            }
        }
        let mut chunk = [0u8; 8192];
        loop {
            match s.conn.reader().read(&mut chunk) {
                Ok(n) if n > 0 => s.plain.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
        drain(&mut s.conn, stream, out);
        Ok(())
    }

    /// The plaintext buffer of `stream` (the caller frames and consumes it).
    pub fn plain(&mut self, stream: u16) -> Option<&mut Vec<u8>> {
        self.streams.get_mut(&stream).map(|s| &mut s.plain)
    }

    /// Forgets a stream's session (the peer broke it).
    pub fn drop_stream(&mut self, stream: u16) {
        self.streams.remove(&stream);
    }
}

/// Takes every record rustls has ready, one per user message (RFC 3436 §3.1).
fn drain(conn: &mut Connection, stream: u16, out: &mut Vec<(u16, Vec<u8>)>) {
    let mut buf = Vec::new();
    while conn.wants_write() {
        if conn.write_tls(&mut buf).is_err() {
            break;
        }
    }
    split_records(&buf, stream, out);
}

/// Cuts a run of TLS records (5-byte header with the length in bytes 3–4) apart.
fn split_records(buf: &[u8], stream: u16, out: &mut Vec<(u16, Vec<u8>)>) {
    let mut at = 0;
    while let Some(head) = buf.get(at..at + 5) {
        let end = (at + 5 + usize::from(u16::from_be_bytes([head[3], head[4]]))).min(buf.len());
        out.push((stream, buf[at..end].to_vec()));
        at = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{next_frame, parse_response, Frame, Method, RequestTemplate, Txn};
    use crate::uas::Uas;

    /// A client and a server end with a self-signed certificate for `localhost`.
    fn pair() -> (Sessions, Sessions) {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = c.cert.der().clone();
        let key =
            rustls::pki_types::PrivateKeyDer::try_from(c.signing_key.serialize_der()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (
            Sessions::client(
                Arc::new(client),
                ServerName::try_from("localhost".to_owned()).unwrap(),
            ),
            Sessions::server(Arc::new(server)),
        )
    }

    /// Passes records both ways (each one user message on its stream) until quiet.
    fn exchange(c: &mut Sessions, s: &mut Sessions, mut to_server: Vec<(u16, Vec<u8>)>) {
        for _ in 0..20 {
            let mut to_client = Vec::new();
            for (st, rec) in to_server.drain(..) {
                s.receive(st, &rec, &mut to_client).unwrap();
            }
            for (st, rec) in to_client.drain(..) {
                c.receive(st, &rec, &mut to_server).unwrap();
            }
            if to_server.is_empty() {
                return;
            }
        }
    }

    #[test]
    fn a_session_per_stream_carries_a_call() {
        let (mut c, mut s) = pair();
        let mut recs = Vec::new();
        for stream in 0..3 {
            c.open(stream, &mut recs).unwrap();
        }
        assert!(c.handshaking());
        exchange(&mut c, &mut s, recs);
        assert!(!c.handshaking() && !s.handshaking());
        assert!(c.cipher().unwrap().starts_with("TLSv1_3/"));

        // An INVITE on stream 2, answered by the UAS on the same stream's session.
        let tmpl = RequestTemplate {
            via_transport: "TLS-SCTP",
            local: "127.0.0.1:40000".parse().unwrap(),
            uri: "sip:uas@127.0.0.1:5061".into(),
            run: 1,
            flow: 0,
        };
        let mut invite = Vec::new();
        tmpl.write_msg(2, Method::Invite, None, &mut invite);
        let mut recs = Vec::new();
        assert!(c.send(2, &invite, &mut recs));
        assert!(recs.iter().all(|(st, _)| *st == 2));
        let mut back = Vec::new();
        for (st, rec) in recs {
            s.receive(st, &rec, &mut back).unwrap();
        }
        let plain = s.plain(2).unwrap();
        assert_eq!(next_frame(plain), Frame::Message(invite.len()));
        let mut answers = Vec::new();
        let uas = Uas::new("127.0.0.1:5061".parse().unwrap(), "TLS-SCTP", false);
        uas.answer(plain, &mut answers);
        plain.clear();
        for a in &answers {
            assert!(s.send(2, a, &mut back));
        }
        let mut none = Vec::new();
        for (st, rec) in back {
            c.receive(st, &rec, &mut none).unwrap();
        }
        let plain = c.plain(2).unwrap();
        let Frame::Message(n) = next_frame(plain) else {
            panic!("no whole response")
        };
        let r = parse_response(&plain[..n], 1).unwrap();
        assert_eq!((r.status, r.txn, r.seq), (200, Txn::Invite, 2));
        // The client never opened stream 5: a record there is refused.
        assert!(c.receive(5, &[23, 3, 3, 0, 0], &mut none).is_err());
    }

    #[test]
    fn records_are_cut_at_their_lengths() {
        let buf = [23, 3, 3, 0, 2, 0xa, 0xb, 21, 3, 3, 0, 1, 0xc];
        let mut out = Vec::new();
        split_records(&buf, 3, &mut out);
        assert_eq!(
            out,
            [
                (3, vec![23, 3, 3, 0, 2, 0xa, 0xb]),
                (3, vec![21, 3, 3, 0, 1, 0xc])
            ]
        );
    }
}
