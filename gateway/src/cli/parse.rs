//! `sipwire parse [FILE|-] [--json]`: reads one SIP message and shows how the wire codec
//! sees it (framing result, start line, top Via, Call-ID, CSeq, Content-Length) or the
//! parse error and the status code a server would answer.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use bytes::Bytes;
use serde::Serialize;

use sipwire::wire::{response, Frame, Limits, Message, ParseError, Rport, StreamFramer, Via};

/// Arguments of `sipwire parse`.
#[derive(Debug, Clone, clap::Args)]
pub struct ParseArgs {
    /// File holding one SIP message; `-` or nothing for standard input.
    pub file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How the stream framer handled the input.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum FramingReport {
    /// A complete message was framed.
    Message {
        /// Bytes of the framed message.
        length: usize,
        /// Keep-alive pings/pongs seen before it.
        keepalives: usize,
        /// Bytes left after the message.
        trailing_bytes: usize,
    },
    /// The input ends before the message is complete.
    Incomplete {
        /// Bytes buffered.
        buffered: usize,
    },
    /// Only keep-alives.
    KeepAliveOnly {
        /// Keep-alive pings/pongs seen.
        keepalives: usize,
    },
    /// The framer refused the input.
    Error {
        /// What went wrong.
        error: String,
        /// Status code a server would answer.
        status_code: u16,
    },
}

/// The top Via, flattened for display.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ViaReport {
    /// `SIP/2.0`.
    pub protocol: String,
    /// Transport token as written.
    pub transport: String,
    /// sent-by host.
    pub host: String,
    /// sent-by port.
    pub port: Option<u16>,
    /// branch.
    pub branch: Option<String>,
    /// received.
    pub received: Option<String>,
    /// rport: `null` absent, `""` requested, or the port.
    pub rport: Option<String>,
    /// maddr.
    pub maddr: Option<String>,
    /// ttl.
    pub ttl: Option<u8>,
    /// alias present.
    pub alias: bool,
    /// All parameters as `name` or `name=value`.
    pub params: Vec<String>,
}

impl ViaReport {
    fn new(v: &Via<'_>) -> Self {
        ViaReport {
            protocol: format!("{}/{}", v.protocol, v.version),
            transport: v.transport_raw.to_owned(),
            host: v.host_raw.to_owned(),
            port: v.port,
            branch: v.branch.map(str::to_owned),
            received: v.received.map(|r| r.to_string()),
            rport: v.rport.map(|r| match r {
                Rport::Requested => String::new(),
                Rport::Port(p) => p.to_string(),
            }),
            maddr: v.maddr.as_ref().map(|m| m.to_string()),
            ttl: v.ttl,
            alias: v.alias,
            params: v
                .params()
                .map(|p| match p.value {
                    Some(val) => format!("{}={val}", p.name),
                    None => p.name.to_owned(),
                })
                .collect(),
        }
    }
}

/// A parsed message, flattened for display.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MessageReport {
    /// `request` or `response`.
    pub kind: &'static str,
    /// Start line (lossy UTF-8).
    pub start_line: String,
    /// Method of a request.
    pub method: Option<String>,
    /// Request-URI.
    pub request_uri: Option<String>,
    /// Status code of a response.
    pub status_code: Option<u16>,
    /// Top Via.
    pub top_via: Option<ViaReport>,
    /// Number of Via values.
    pub via_count: usize,
    /// Call-ID.
    pub call_id: String,
    /// CSeq number.
    pub cseq: u32,
    /// CSeq method.
    pub cseq_method: String,
    /// Content-Length, when present.
    pub content_length: Option<usize>,
    /// Max-Forwards, when present.
    pub max_forwards: Option<u8>,
    /// From tag.
    pub from_tag: Option<String>,
    /// To tag.
    pub to_tag: Option<String>,
    /// Header lines.
    pub header_count: usize,
    /// Body bytes.
    pub body_length: usize,
}

impl MessageReport {
    fn new(m: &Message) -> Self {
        MessageReport {
            kind: if m.is_request() {
                "request"
            } else {
                "response"
            },
            start_line: String::from_utf8_lossy(m.start_line()).into_owned(),
            method: m.method().map(str::to_owned),
            request_uri: m.request_uri().map(str::to_owned),
            status_code: m.status_code(),
            top_via: m.top_via().ok().map(|v| ViaReport::new(&v)),
            via_count: m.via_count(),
            call_id: m.call_id().to_owned(),
            cseq: m.cseq().seq,
            cseq_method: m.cseq().method.to_owned(),
            content_length: m.content_length(),
            max_forwards: m.max_forwards(),
            from_tag: m.from_tag().map(str::to_owned),
            to_tag: m.to_tag().map(str::to_owned),
            header_count: m.header_count(),
            body_length: m.body().len(),
        }
    }
}

/// A parse error, with the answer a server would give.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorReport {
    /// The error.
    pub error: String,
    /// Status code answered to a request (400, 505, 513).
    pub status_code: u16,
    /// Whether a response would be sent (requests only; responses are discarded).
    pub would_respond: bool,
}

/// Everything `sipwire parse` reports.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    /// Stream framing of the input (as if it arrived on TCP/TLS/SCTP).
    pub framing: FramingReport,
    /// What was parsed: the framed message, else the whole input as a datagram.
    pub parsed_as: &'static str,
    /// The message, when it parsed.
    pub message: Option<MessageReport>,
    /// The parse error, when it did not.
    pub error: Option<ErrorReport>,
}

/// Frames and parses `input` with the default limits.
pub fn analyse(input: &[u8]) -> Report {
    let limits = Limits::default();
    let mut framer = StreamFramer::new(limits);
    framer.push(input);
    framer.set_awaiting_pong(true);
    let mut keepalives = 0;
    let mut framed = None;
    let framing = loop {
        match framer.next_frame() {
            Ok(Some(Frame::Ping | Frame::Pong)) => keepalives += 1,
            Ok(Some(Frame::Message(m))) => {
                let length = m.len();
                framed = Some(m);
                break FramingReport::Message {
                    length,
                    keepalives,
                    trailing_bytes: framer.buffered().len(),
                };
            }
            Ok(None) if framer.buffered().is_empty() => {
                break FramingReport::KeepAliveOnly { keepalives }
            }
            Ok(None) => {
                break FramingReport::Incomplete {
                    buffered: framer.buffered().len(),
                }
            }
            Err(e) => {
                break FramingReport::Error {
                    error: e.to_string(),
                    status_code: e.status_code(),
                }
            }
        }
    };
    let (parsed_as, bytes) = match framed {
        Some(m) => ("stream frame", m),
        None => ("datagram", Bytes::copy_from_slice(input)),
    };
    let raw = bytes.clone();
    let (message, error) = match Message::parse_with_limits(bytes, &limits) {
        Ok(m) => (Some(MessageReport::new(&m)), None),
        Err(e) => (None, Some(error_report(&raw, &e))),
    };
    Report {
        framing,
        parsed_as,
        message,
        error,
    }
}

fn error_report(raw: &[u8], e: &ParseError) -> ErrorReport {
    ErrorReport {
        error: e.to_string(),
        status_code: e.status_code(),
        would_respond: response::error_response(raw, e).is_some(),
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_owned(), ToString::to_string)
}

/// The report as text.
pub fn render_text(r: &Report) -> String {
    let mut s = String::new();
    let framing = match &r.framing {
        FramingReport::Message {
            length,
            keepalives,
            trailing_bytes,
        } => format!(
            "message of {length} bytes ({keepalives} keep-alives before, {trailing_bytes} bytes after)"
        ),
        FramingReport::Incomplete { buffered } => {
            format!("incomplete ({buffered} bytes buffered, more needed)")
        }
        FramingReport::KeepAliveOnly { keepalives } => format!("{keepalives} keep-alives only"),
        FramingReport::Error { error, status_code } => {
            format!("error: {error} (answer {status_code}, then close)")
        }
    };
    s.push_str(&format!("framing (stream): {framing}\n"));
    s.push_str(&format!("parsed as: {}\n", r.parsed_as));
    if let Some(m) = &r.message {
        s.push_str(&format!("start line: {}\n", m.start_line));
        match &m.top_via {
            Some(v) => s.push_str(&format!(
                "top Via: {} transport={} host={} port={} branch={} received={} rport={} maddr={} ttl={} alias={} ({} Via values)\n",
                v.protocol,
                v.transport,
                v.host,
                opt(&v.port),
                opt(&v.branch),
                opt(&v.received),
                v.rport.as_deref().map_or("-", |r| if r.is_empty() { "(requested)" } else { r }),
                opt(&v.maddr),
                opt(&v.ttl),
                if v.alias { "yes" } else { "no" },
                m.via_count,
            )),
            None => s.push_str("top Via: -\n"),
        }
        s.push_str(&format!("Call-ID: {}\n", m.call_id));
        s.push_str(&format!("CSeq: {} {}\n", m.cseq, m.cseq_method));
        s.push_str(&format!("Content-Length: {}\n", opt(&m.content_length)));
        s.push_str(&format!(
            "Max-Forwards: {}  From tag: {}  To tag: {}\n",
            opt(&m.max_forwards),
            opt(&m.from_tag),
            opt(&m.to_tag)
        ));
        s.push_str(&format!(
            "{} header lines, body {} bytes\n",
            m.header_count, m.body_length
        ));
    }
    if let Some(e) = &r.error {
        s.push_str(&format!("parse error: {}\n", e.error));
        if e.would_respond {
            s.push_str(&format!("a server answers {}\n", e.status_code));
        } else {
            s.push_str("a server discards it (not a request)\n");
        }
    }
    s
}

/// Runs the command.
pub fn run(args: &ParseArgs) -> ExitCode {
    let mut input = Vec::new();
    let read = match args.file.as_deref() {
        None => std::io::stdin().read_to_end(&mut input).map(|_| ()),
        Some(p) if p.as_os_str() == "-" => std::io::stdin().read_to_end(&mut input).map(|_| ()),
        Some(p) => std::fs::read(p).map(|d| input = d),
    };
    if let Err(e) = read {
        eprintln!("sipwire parse: cannot read input: {e}");
        return ExitCode::from(2);
    }
    let report = analyse(&input);
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                eprintln!("sipwire parse: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        print!("{}", render_text(&report));
    }
    if report.message.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &str = "OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/SCTP [2001:db8::1]:5060;branch=z9hG4bK1;rport;alias\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 7 OPTIONS\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn reports_a_framed_message() {
        let r = analyse(format!("\r\n\r\n{MSG}").as_bytes());
        assert_eq!(
            r.framing,
            FramingReport::Message {
                length: MSG.len(),
                keepalives: 1,
                trailing_bytes: 0
            }
        );
        let m = r.message.unwrap();
        let v = m.top_via.unwrap();
        assert_eq!(v.transport, "SCTP");
        assert_eq!(v.host, "[2001:db8::1]");
        assert_eq!(v.rport.as_deref(), Some(""));
        assert!(v.alias);
        assert_eq!(m.cseq, 7);
        let text = render_text(&analyse(MSG.as_bytes()));
        assert!(text.contains("top Via: SIP/2.0 transport=SCTP host=[2001:db8::1] port=5060"));
        assert!(text.contains("CSeq: 7 OPTIONS"));
    }

    #[test]
    fn reports_errors() {
        let no_cl = MSG.replace("Content-Length: 0\r\n", "");
        let r = analyse(no_cl.as_bytes());
        assert!(matches!(
            r.framing,
            FramingReport::Error {
                status_code: 400,
                ..
            }
        ));
        assert_eq!(r.parsed_as, "datagram");
        assert!(r.message.is_some(), "fine as a datagram");
        let bad = MSG.replace("CSeq: 7 OPTIONS", "CSeq: 7 INVITE");
        let r = analyse(bad.as_bytes());
        let e = r.error.unwrap();
        assert_eq!(e.status_code, 400);
        assert!(e.would_respond);
        let json = serde_json::to_value(analyse(bad.as_bytes())).unwrap();
        assert_eq!(json["error"]["status_code"], 400);
        assert_eq!(json["framing"]["result"], "message");
    }
}
