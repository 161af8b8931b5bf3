//! Gateway configuration: the TOML schema, the embedded default, and validation.
//!
//! Validation happens once, at load time, so that a running gateway never discovers a contradiction
//! (e.g. a UDP listener without its RFC 3261 §18.2.1 TCP twin) while traffic flows.

use serde::Deserialize;

use super::config_check::{self, FileChecks, Invalid, Problem, ProblemKind};
pub use super::relay_config::{ProxySection, RouteConfig, TargetConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The configuration `sipwire run` uses when no file is given: loopback only, UDP and TCP on 5060,
/// TLS on 5061 with a development CA generated into the state directory.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.toml");

/// Errors found while reading or validating a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not a valid configuration: every problem found, each with its position.
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

impl ConfigError {
    /// The problems of an invalid configuration (none for a read error).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid(i) => &i.problems,
        }
    }

    /// The broken rules among [`ConfigError::problems`].
    pub fn violations(&self) -> impl Iterator<Item = &Violation> {
        self.problems().iter().filter_map(|p| match &p.kind {
            ProblemKind::Rule(v) => Some(v),
            _ => None,
        })
    }
}

/// A rule spanning several fields that a configuration breaks (checked once the text
/// deserialized). Each message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// RFC 3261 §18.2.1: wherever a UDP listener is, a TCP listener must be too.
    #[error(
        "listener {name}: UDP on {addr} has no TCP listener on the same address; expected a \
         `tcp` listener on {addr} too (RFC 3261 §18.2.1)"
    )]
    UdpWithoutTcp {
        /// Listener name.
        name: String,
        /// Its address.
        addr: SocketAddr,
    },
    /// Two listeners claim the same transport and address.
    #[error(
        "listeners {first} and {second} both bind {transport} {addr}; expected each transport \
         and address once"
    )]
    DuplicateListener {
        /// First listener name.
        first: String,
        /// Second listener name.
        second: String,
        /// Transport.
        transport: TransportKind,
        /// Address.
        addr: SocketAddr,
    },
    /// A TLS-family listener has no certificate and the development CA is off.
    #[error(
        "listener {0}: TLS without a certificate; expected `cert` and `key` files, or \
         `[tls] dev_ca = true`"
    )]
    TlsWithoutCertificate(String),
    /// RFC 3261 §18: connections must stay open at least 64·T1 (32 s) when idle.
    #[error("idle_timeout_secs = {0} is below 64*T1; expected at least 32 (RFC 3261 §18)")]
    IdleTooShort(u64),
    /// A `[[tls.domains]]` name is not a host name, or appears twice.
    #[error(
        "[[tls.domains]] name {0:?} is not a valid host name or is given twice; expected a \
         unique host name without wildcard"
    )]
    BadTlsDomain(String),
    /// `[tls] client_cert` and `client_key` go together.
    #[error("[tls] client_cert and client_key go together; expected both or neither")]
    ClientCertWithoutKey,
    /// A limit was set to zero.
    #[error("limit {name} = 0; expected a number greater than zero")]
    ZeroLimit {
        /// Which limit.
        name: &'static str,
    },
    /// `[capture] collector` cannot be sent to.
    #[error(
        "[capture] collector {0} is not a destination; expected the collector's address and \
         port, e.g. 127.0.0.1:9060"
    )]
    BadCollector(SocketAddr),
    /// A `[flood] allow` entry is not an address prefix.
    #[error("[flood] allow entry {value:?}: {error}; expected an address or a prefix such as 10.0.0.0/8 or 2001:db8::/32")]
    BadAllowPrefix {
        /// The entry.
        value: String,
        /// Why it does not parse.
        error: sipwire::flood::PrefixError,
    },
    /// `[sctp] dtls_via_token` is not an RFC 3261 token, or names another transport.
    #[error(
        "[sctp] dtls_via_token = {0:?}; expected 1 to 32 characters of an RFC 3261 token \
         (letters, digits, -.!%*_+`'~) that is not another transport's token (UDP, TCP, TLS, \
         SCTP, TLS-SCTP)"
    )]
    BadViaToken(String),
    /// `[flood] ipv6_prefix` out of range.
    #[error("[flood] ipv6_prefix = {0}; expected 1 to 128 (64: one source per /64)")]
    BadIpv6Prefix(u8),
    /// `[capture] auth_key` would not leave room for a message in a HEP packet.
    #[error("[capture] auth_key is {0} bytes long; expected at most {MAX_AUTH_KEY}")]
    AuthKeyTooLong(usize),
    /// A listener bound to every address has no `advertise`: the relay would write
    /// 0.0.0.0 in its Via and Record-Route.
    #[error(
        "listener {0} binds an unspecified address; expected `advertise = \"host[:port]\"` \
         naming what peers reach"
    )]
    UnspecifiedWithoutAdvertise(String),
    /// `[proxy] workers` out of range.
    #[error("[proxy] workers = {0}; expected 1 to {max} (proxy cores, one thread each)", max = super::relay_config::MAX_WORKERS)]
    BadWorkers(usize),
    /// `[proxy] t2_ms` below `t1_ms`.
    #[error("[proxy] t2_ms = {0} is below t1_ms = {1}; expected t2_ms >= t1_ms")]
    T2BelowT1(u64, u64),
    /// `[proxy] name_server` cannot be queried.
    #[error("[proxy] name_server {0} is not a destination; expected IP:port, e.g. 127.0.0.1:53")]
    BadNameServer(SocketAddr),
    /// A `[[route]]` has no `[[route.target]]`.
    #[error("route {0} has no target; expected at least one [[route.target]]")]
    RouteWithoutTarget(usize),
    /// A route or target names a listener that does not exist.
    #[error("unknown listener {0:?}; expected the name of a [[listener]]")]
    UnknownListener(String),
    /// A route match or target host is not a host name or address.
    #[error("{0:?} is not a valid host; expected a host name, `*.domain` or an IP address")]
    BadRouteMatch(String),
    /// A target has both or neither of `address` and `host`.
    #[error("a route target needs exactly one of `address` (IP:port) and `host` (name or IP)")]
    TargetAddressOrHost,
    /// A target's listener has another transport.
    #[error("listener {0} is not a {1} listener; expected one of the target's transport")]
    TargetListenerTransport(String, TransportKind),
    /// No listener has the target's transport.
    #[error("no {0} listener to send from; expected a [[listener]] of that transport")]
    NoListenerFor(TransportKind),
    /// Best-effort TLS is asked for without a TLS listener to send from.
    #[error("best_effort_tls needs a tls listener to send from; expected a [[listener]] with transport = \"tls\"")]
    BestEffortTlsWithoutTls,
}

/// The longest `[capture] auth_key`: it is repeated in every HEP packet (at most 65535 bytes).
pub const MAX_AUTH_KEY: usize = 1024;

/// Where in the file a rule is broken: the keys (and array indices) leading to the
/// offending table or value, so that a checker holding the parsed document can point at
/// its line. Built from the deserialized [`Config`], which has no positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place(pub Vec<PlaceStep>);

/// One step of a [`Place`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceStep {
    /// A table key.
    Key(&'static str),
    /// An element of an array (of tables).
    Index(usize),
}

impl Place {
    /// A top-level key or table.
    pub fn key(key: &'static str) -> Place {
        Place(vec![PlaceStep::Key(key)])
    }

    /// The `index`th `[[listener]]`.
    pub fn listener(index: usize) -> Place {
        Place(vec![PlaceStep::Key("listener"), PlaceStep::Index(index)])
    }

    /// The `index`th `[[tls.domains]]`.
    pub fn tls_domain(index: usize) -> Place {
        Place::key("tls")
            .then(PlaceStep::Key("domains"))
            .then(PlaceStep::Index(index))
    }

    /// This place, one step further.
    pub fn then(mut self, step: PlaceStep) -> Place {
        self.0.push(step);
        self
    }

    /// This place, one key further.
    pub fn child(self, key: &'static str) -> Place {
        self.then(PlaceStep::Key(key))
    }
}

pub use sipwire::TransportKind;

pub use sipwire::tls::{AlpnPolicy, ClientCertPolicy};

/// One listener.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// A name used in logs and metrics.
    pub name: String,
    /// Transport served.
    pub transport: TransportKind,
    /// Address (SCTP: the primary address).
    pub addr: SocketAddr,
    /// Extra local addresses for SCTP multihoming (bindx).
    #[serde(default)]
    pub extra_addrs: Vec<std::net::IpAddr>,
    /// The local domain this listener serves (virtual server, RFC 5923 §9.3).
    #[serde(default)]
    pub domain: Option<String>,
    /// Server certificate chain (PEM), TLS family only.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Private key (PEM), TLS family only.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Client certificate policy, TLS family only.
    #[serde(default)]
    pub client_cert: ClientCertPolicy,
    /// Bind only where the kernel has the transport (SCTP): elsewhere the listener is off and
    /// the start-up lines say so. Without it, an SCTP listener on a kernel without SCTP stops
    /// the start with an error.
    #[serde(default)]
    pub optional: bool,
    /// What peers reach this listener as (`host` or `host:port`): the relay's Via sent-by
    /// and Record-Route. Absent: the bound address. Needed with an unspecified `addr`.
    #[serde(default)]
    pub advertise: Option<String>,
    /// The network this listener faces (`access`, `core`): a request that leaves on
    /// another network than it came from gets two Record-Route entries (RFC 5658).
    #[serde(default)]
    pub network: Option<String>,
}

/// TLS settings shared by all TLS-family listeners and outbound connections.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// Generate a development CA and a localhost certificate into the state directory.
    pub dev_ca: bool,
    /// CA certificates (PEM) trusted for peers.
    pub ca_files: Vec<PathBuf>,
    /// ALPN ids offered/accepted.
    pub alpn: Vec<String>,
    /// ALPN policy.
    pub alpn_policy: AlpnPolicy,
    /// Write TLS secrets to the file named by SSLKEYLOGFILE (for Wireshark).
    pub keylog: bool,
    /// Virtual domains: the certificate presented when a client's SNI names the domain,
    /// and the client certificate used when connecting on behalf of it (RFC 5923 §9.3).
    pub domains: Vec<TlsDomain>,
    /// Default client certificate chain (PEM) for outbound TLS (else the first TLS
    /// listener's certificate, else the development certificate).
    pub client_cert: Option<PathBuf>,
    /// Key of `client_cert` (PEM).
    pub client_key: Option<PathBuf>,
}

/// One `[[tls.domains]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsDomain {
    /// The local domain (matched against SNI, case-insensitive, exact).
    pub name: String,
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

impl Default for TlsSection {
    fn default() -> Self {
        Self {
            dev_ca: false,
            ca_files: Vec::new(),
            alpn: vec!["sip/2".to_owned()],
            alpn_policy: AlpnPolicy::Offer,
            keylog: false,
            domains: Vec::new(),
            client_cert: None,
            client_key: None,
        }
    }
}

/// Connection limits and timers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Largest SIP message accepted, bytes.
    pub max_message: usize,
    /// Largest header block accepted, bytes.
    pub max_headers: usize,
    /// Connections in total.
    pub max_connections: usize,
    /// Connections per peer IP.
    pub max_connections_per_ip: usize,
    /// Bytes queued for one flow before it is considered stuck and closed.
    pub write_queue_bytes: usize,
    /// Idle connections are closed after this many seconds (≥ 64·T1 = 32 s, RFC 3261 §18).
    pub idle_timeout_secs: u64,
    /// A peer that has not completed a header block within this time is cut (slowloris).
    pub header_timeout_secs: u64,
    /// Send RFC 5626 CRLFCRLF pings on stream flows after this many seconds of silence
    /// (0 = only answer the peer's pings).
    pub keepalive_interval_secs: u64,
    /// UDP flows (socket + peer) remembered; the least recently used is forgotten first.
    pub max_udp_flows: usize,
    /// Outbound TCP connect and TLS handshake timeout, seconds.
    pub connect_timeout_secs: u64,
    /// On shutdown, flows drain this many milliseconds before close_notify/FIN.
    pub shutdown_drain_ms: u64,
    /// SO_RCVBUF of UDP listeners, bytes (0 = the kernel's default). Linux doubles it and caps
    /// it at net.core.rmem_max; the value granted is logged and exported.
    pub udp_recv_buffer_bytes: usize,
    /// SO_SNDBUF of UDP listeners, bytes (0 = the kernel's default; capped at
    /// net.core.wmem_max).
    pub udp_send_buffer_bytes: usize,
    /// SO_RCVBUF of TCP and TLS listeners, inherited by accepted connections (0 = the
    /// kernel's default and its autotuning).
    pub tcp_recv_buffer_bytes: usize,
    /// SO_SNDBUF of TCP and TLS listeners, inherited by accepted connections (0 = default).
    pub tcp_send_buffer_bytes: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            max_message: 65_535,
            max_headers: 16_384,
            max_connections: 16_384,
            max_connections_per_ip: 1_024,
            write_queue_bytes: 1 << 20,
            idle_timeout_secs: 600,
            header_timeout_secs: 32,
            keepalive_interval_secs: 0,
            max_udp_flows: 65_536,
            connect_timeout_secs: 10,
            shutdown_drain_ms: 500,
            udp_recv_buffer_bytes: 0,
            udp_send_buffer_bytes: 0,
            tcp_recv_buffer_bytes: 0,
            tcp_send_buffer_bytes: 0,
        }
    }
}

/// Where to keep generated state (development CA).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateSection {
    /// State directory.
    pub dir: PathBuf,
}

impl Default for StateSection {
    fn default() -> Self {
        Self {
            dir: default_state_dir(),
        }
    }
}

fn default_state_dir() -> PathBuf {
    std::env::var_os("SIPWIRE_STATE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/sipwire")))
        .unwrap_or_else(|| PathBuf::from("/var/lib/sipwire"))
}

/// Metrics exporter.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Prometheus listen address; none = no exporter.
    pub prometheus: Option<SocketAddr>,
}

/// SCTP associations (`[sctp]`, docs/sctp.md): every SCTP listener and outbound association.
/// Zero leaves a kernel parameter at the kernel's default (net.sctp.* sysctls).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SctpSection {
    /// Outbound streams asked for (the peer may grant fewer).
    pub streams: u16,
    /// Inbound streams accepted.
    pub max_inbound_streams: u16,
    /// `spread` (one stream per transaction, ordered) or `stream0-unordered` (RFC 4168 §5.1).
    pub stream_policy: sipwire::transport::StreamPolicy,
    /// Initial retransmission timeout, ms.
    pub rto_initial_ms: u64,
    /// Minimum retransmission timeout, ms.
    pub rto_min_ms: u64,
    /// Maximum retransmission timeout, ms.
    pub rto_max_ms: u64,
    /// Heartbeat interval on idle paths, ms.
    pub heartbeat_interval_ms: u64,
    /// Retransmissions before a path is marked unreachable.
    pub path_max_retrans: u16,
    /// Retransmissions before the association is declared lost.
    pub assoc_max_retrans: u16,
    /// SO_RCVBUF, bytes: size it for bursts (a full buffer holds the peers back).
    pub recv_buffer: usize,
    /// SO_SNDBUF, bytes.
    pub send_buffer: usize,
    /// Associations at most.
    pub max_associations: usize,
    /// The Via token of DTLS over SCTP (no RFC defines one; `DTLS-SCTP` by default):
    /// the spelling the deployment's peers expect.
    pub dtls_via_token: String,
}

impl Default for SctpSection {
    fn default() -> Self {
        let d = sipwire::transport::SctpConfig::default();
        SctpSection {
            streams: d.streams,
            max_inbound_streams: d.max_inbound_streams,
            stream_policy: d.policy,
            rto_initial_ms: 0,
            rto_min_ms: 0,
            rto_max_ms: 0,
            heartbeat_interval_ms: 0,
            path_max_retrans: d.path_max_retrans,
            assoc_max_retrans: d.assoc_max_retrans,
            recv_buffer: d.recv_buffer,
            send_buffer: d.send_buffer,
            max_associations: d.max_associations,
            dtls_via_token: sipwire::TransportKind::DtlsSctp.via_token().to_owned(),
        }
    }
}

impl SctpSection {
    /// The DTLS over SCTP Via token when it is not the default one.
    pub fn custom_dtls_via_token(&self) -> Option<&str> {
        let default = sipwire::TransportKind::DtlsSctp.via_token();
        (!self.dtls_via_token.eq_ignore_ascii_case(default)).then_some(self.dtls_via_token.as_str())
    }

    fn dtls_via_token_ok(&self) -> bool {
        let t = &self.dtls_via_token;
        let token_char = |c: char| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c);
        (1..=32).contains(&t.len())
            && t.chars().all(token_char)
            && sipwire::TransportKind::from_via_token(t)
                .map_or(true, |k| k == sipwire::TransportKind::DtlsSctp)
    }

    /// The library's settings.
    pub fn transport_config(&self) -> sipwire::transport::SctpConfig {
        let ms = std::time::Duration::from_millis;
        sipwire::transport::SctpConfig {
            streams: self.streams.max(1),
            max_inbound_streams: self.max_inbound_streams.max(1),
            policy: self.stream_policy,
            rto_initial: ms(self.rto_initial_ms),
            rto_min: ms(self.rto_min_ms),
            rto_max: ms(self.rto_max_ms),
            heartbeat_interval: (self.heartbeat_interval_ms > 0)
                .then(|| ms(self.heartbeat_interval_ms)),
            path_max_retrans: self.path_max_retrans,
            assoc_max_retrans: self.assoc_max_retrans,
            recv_buffer: self.recv_buffer,
            send_buffer: self.send_buffer,
            max_associations: self.max_associations,
        }
    }
}

/// RFC 5923 connection reuse (docs/alias.md).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AliasSection {
    /// Put `;alias` in our Via over TLS-family transports (§8.1).
    pub add_alias: bool,
    /// Honour the peers' `alias` (§8.2); only with a verified client certificate (§9.2).
    pub accept: bool,
    /// Peer identities whose `alias` is never honoured.
    pub refuse_peers: Vec<String>,
    /// Row limit per local domain.
    pub max_rows_per_table: usize,
}

impl Default for AliasSection {
    fn default() -> Self {
        Self {
            add_alias: true,
            accept: true,
            refuse_peers: Vec::new(),
            max_rows_per_table: sipwire::alias::DEFAULT_MAX_ROWS_PER_TABLE,
        }
    }
}

impl AliasSection {
    /// The server-side policy.
    pub fn policy(&self) -> sipwire::alias::AliasPolicy {
        let base = if self.accept {
            sipwire::alias::AliasPolicy::accept_all()
        } else {
            sipwire::alias::AliasPolicy::refuse_all()
        };
        self.refuse_peers
            .iter()
            .fold(base, |p, id| p.with_peer(id, false))
    }
}

/// How HEP packets reach the collector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptureTransport {
    /// One datagram per packet.
    #[default]
    Udp,
    /// One connection, dialled again with backoff.
    Tcp,
}

/// HEP v3 capture of every SIP message sent and received (docs/operations.md, "Capture to
/// Homer, sngrep, tshark"). Present: on.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureSection {
    /// The collector's address (Homer / heplify-server, sngrep `-L`).
    pub collector: SocketAddr,
    /// `udp` (default) or `tcp`.
    #[serde(default)]
    pub transport: CaptureTransport,
    /// The capture agent id in every packet.
    #[serde(default = "default_capture_id")]
    pub capture_id: u32,
    /// The collector's password, if it asks for one.
    #[serde(default)]
    pub auth_key: Option<String>,
    /// Messages waiting for the collector at most; more are dropped and counted.
    #[serde(default = "default_queue_messages")]
    pub queue_messages: usize,
    /// Message bytes waiting for the collector at most; more are dropped and counted.
    #[serde(default = "default_queue_bytes")]
    pub queue_bytes: usize,
}

impl CaptureTransport {
    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureTransport::Udp => "udp",
            CaptureTransport::Tcp => "tcp",
        }
    }
}

fn default_capture_id() -> u32 {
    1
}

fn default_queue_messages() -> usize {
    10_000
}

fn default_queue_bytes() -> usize {
    16 << 20
}

impl CaptureSection {
    /// The library's sink settings.
    pub fn sink_config(&self) -> sipwire::capture::CaptureConfig {
        use sipwire::capture::{CaptureConfig, CollectorTransport};
        let transport = match self.transport {
            CaptureTransport::Udp => CollectorTransport::Udp,
            CaptureTransport::Tcp => CollectorTransport::Tcp,
        };
        CaptureConfig {
            capture_id: self.capture_id,
            auth_key: self.auth_key.clone(),
            queue_messages: self.queue_messages,
            queue_bytes: self.queue_bytes,
            ..CaptureConfig::new(self.collector, transport)
        }
    }
}

/// What `[flood]` does with a request over its source's rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FloodActionConfig {
    /// 503 Service Unavailable with Retry-After.
    #[default]
    Reply,
    /// Dropped silently.
    Drop,
}

/// Per-source flood limits (docs/operations.md, "Flood limits"). Present: on. A rate of 0
/// turns that limit off.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FloodSection {
    /// Requests per second per source (0: off).
    pub requests_per_second: u32,
    /// Requests a source may send at once after a quiet spell.
    pub request_burst: u32,
    /// New TCP/TLS connections and SCTP associations per second per source (0: off).
    pub connections_per_second: u32,
    /// New connections a source may open at once.
    pub connection_burst: u32,
    /// Failed TLS handshakes a source may cause per `tls_failure_window_secs` (0: off).
    pub tls_failures: u32,
    /// The window of `tls_failures`.
    pub tls_failure_window_secs: u64,
    /// How long a source over its TLS handshake budget is refused TLS.
    pub tls_ban_secs: u64,
    /// `reply` (503 + Retry-After) or `drop`.
    pub action: FloodActionConfig,
    /// Retry-After of the 503, seconds (0: no header).
    pub retry_after_secs: u32,
    /// Addresses and prefixes never limited.
    pub allow: Vec<String>,
    /// Sources remembered at most (the least recently seen is forgotten first).
    pub max_sources: usize,
    /// IPv6 sources are grouped by this prefix length.
    pub ipv6_prefix: u8,
}

impl Default for FloodSection {
    fn default() -> Self {
        FloodSection {
            requests_per_second: 100,
            request_burst: 200,
            connections_per_second: 10,
            connection_burst: 20,
            tls_failures: 10,
            tls_failure_window_secs: 60,
            tls_ban_secs: 60,
            action: FloodActionConfig::Reply,
            retry_after_secs: 5,
            allow: Vec::new(),
            max_sources: 65_536,
            ipv6_prefix: 64,
        }
    }
}

impl FloodSection {
    /// The library's limits (allow entries that do not parse are left out: validation
    /// refuses them first).
    pub fn flood_config(&self) -> sipwire::flood::FloodConfig {
        use sipwire::flood::{FloodAction, FloodConfig, Rate};
        use std::time::Duration;
        let rate = |count: u32, burst: u32| (count > 0).then(|| Rate::per_second(count, burst));
        FloodConfig {
            requests: rate(self.requests_per_second, self.request_burst),
            connections: rate(self.connections_per_second, self.connection_burst),
            tls_failures: (self.tls_failures > 0).then(|| Rate {
                count: self.tls_failures,
                per: Duration::from_secs(self.tls_failure_window_secs),
                burst: self.tls_failures,
            }),
            tls_ban: Duration::from_secs(self.tls_ban_secs),
            action: match self.action {
                FloodActionConfig::Reply => FloodAction::Reply,
                FloodActionConfig::Drop => FloodAction::Drop,
            },
            retry_after: (self.retry_after_secs > 0).then_some(self.retry_after_secs),
            allow: self.allow.iter().filter_map(|a| a.parse().ok()).collect(),
            max_sources: self.max_sources,
            ipv6_prefix: self.ipv6_prefix,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listeners.
    #[serde(default, rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// TLS settings.
    #[serde(default)]
    pub tls: TlsSection,
    /// Limits.
    #[serde(default)]
    pub limits: LimitsSection,
    /// State directory.
    #[serde(default)]
    pub state: StateSection,
    /// Metrics.
    #[serde(default)]
    pub metrics: MetricsSection,
    /// RFC 5923 connection reuse.
    #[serde(default)]
    pub alias: AliasSection,
    /// SCTP associations.
    #[serde(default)]
    pub sctp: SctpSection,
    /// HEP capture; absent: off.
    #[serde(default)]
    pub capture: Option<CaptureSection>,
    /// Per-source flood limits; absent: off.
    #[serde(default)]
    pub flood: Option<FloodSection>,
    /// How requests are relayed.
    #[serde(default)]
    pub proxy: ProxySection,
    /// Configured routes, first match wins (else RFC 3263 on the Request-URI).
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
}

impl Config {
    /// Parses and validates a configuration text (rules only, no file access).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Ok(config_check::check(text, "<text>", FileChecks::Skip)?)
    }

    /// The embedded default configuration.
    pub fn embedded_default() -> Result<Self, ConfigError> {
        Ok(config_check::check(
            EMBEDDED_DEFAULT,
            "<embedded default>",
            FileChecks::Skip,
        )?)
    }

    /// Reads, parses and validates a configuration file (rules only, no file access).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with(path, FileChecks::Skip)
    }

    /// Reads, parses and validates a configuration file as `sipwire run` and
    /// `sipwire check-config` do: the rules, and every certificate, key and CA file it
    /// names loads.
    pub fn load_checked(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with(path, FileChecks::Load)
    }

    fn load_with(path: &Path, files: FileChecks) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(config_check::check(
            &text,
            &path.display().to_string(),
            files,
        )?)
    }

    /// Checks the rules that span several fields; the first broken one.
    pub fn validate(&self) -> Result<(), Violation> {
        match self.violations().into_iter().next() {
            Some((v, _)) => Err(v),
            None => Ok(()),
        }
    }

    /// Every broken rule that spans several fields, with where it is broken.
    pub fn violations(&self) -> Vec<(Violation, Place)> {
        let mut out = Vec::new();
        for (i, a) in self.listeners.iter().enumerate() {
            for (j, b) in self.listeners.iter().enumerate().skip(i + 1) {
                if a.transport == b.transport && a.addr == b.addr {
                    out.push((
                        Violation::DuplicateListener {
                            first: a.name.clone(),
                            second: b.name.clone(),
                            transport: a.transport,
                            addr: a.addr,
                        },
                        Place::listener(j).child("addr"),
                    ));
                }
            }
            if a.transport == TransportKind::Udp
                && !self
                    .listeners
                    .iter()
                    .any(|t| t.transport == TransportKind::Tcp && t.addr == a.addr)
            {
                out.push((
                    Violation::UdpWithoutTcp {
                        name: a.name.clone(),
                        addr: a.addr,
                    },
                    Place::listener(i).child("addr"),
                ));
            }
            if a.addr.ip().is_unspecified() && a.advertise.is_none() {
                out.push((
                    Violation::UnspecifiedWithoutAdvertise(a.name.clone()),
                    Place::listener(i).child("addr"),
                ));
            }
            if a.transport.is_secure() && (a.cert.is_none() || a.key.is_none()) && !self.tls.dev_ca
            {
                out.push((
                    Violation::TlsWithoutCertificate(a.name.clone()),
                    Place::listener(i),
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, d) in self.tls.domains.iter().enumerate() {
            let ok =
                sipwire::resolve::target::normalize_domain(&d.name).is_some_and(|n| seen.insert(n));
            if !ok {
                out.push((
                    Violation::BadTlsDomain(d.name.clone()),
                    Place::tls_domain(i).child("name"),
                ));
            }
        }
        if self.tls.client_cert.is_some() != self.tls.client_key.is_some() {
            let key = if self.tls.client_cert.is_some() {
                "client_cert"
            } else {
                "client_key"
            };
            out.push((
                Violation::ClientCertWithoutKey,
                Place::key("tls").child(key),
            ));
        }
        let l = &self.limits;
        for (name, zero) in [
            ("max_message", l.max_message == 0),
            ("max_headers", l.max_headers == 0),
            ("max_connections", l.max_connections == 0),
            ("max_connections_per_ip", l.max_connections_per_ip == 0),
            ("write_queue_bytes", l.write_queue_bytes == 0),
            ("max_udp_flows", l.max_udp_flows == 0),
            ("connect_timeout_secs", l.connect_timeout_secs == 0),
            ("header_timeout_secs", l.header_timeout_secs == 0),
        ] {
            if zero {
                out.push((
                    Violation::ZeroLimit { name },
                    Place::key("limits").child(name),
                ));
            }
        }
        if let Some(c) = &self.capture {
            if c.collector.port() == 0
                || c.collector.ip().is_unspecified()
                || c.collector.ip().is_multicast()
            {
                out.push((
                    Violation::BadCollector(c.collector),
                    Place::key("capture").child("collector"),
                ));
            }
            for (name, zero) in [
                ("queue_messages", c.queue_messages == 0),
                ("queue_bytes", c.queue_bytes == 0),
            ] {
                if zero {
                    out.push((
                        Violation::ZeroLimit { name },
                        Place::key("capture").child(name),
                    ));
                }
            }
            if let Some(k) = c.auth_key.as_ref().filter(|k| k.len() > MAX_AUTH_KEY) {
                out.push((
                    Violation::AuthKeyTooLong(k.len()),
                    Place::key("capture").child("auth_key"),
                ));
            }
        }
        if let Some(f) = &self.flood {
            for (i, a) in f.allow.iter().enumerate() {
                if let Err(error) = a.parse::<sipwire::flood::IpPrefix>() {
                    out.push((
                        Violation::BadAllowPrefix {
                            value: a.clone(),
                            error,
                        },
                        Place::key("flood").child("allow").then(PlaceStep::Index(i)),
                    ));
                }
            }
            for (name, zero) in [
                (
                    "request_burst",
                    f.requests_per_second > 0 && f.request_burst == 0,
                ),
                (
                    "connection_burst",
                    f.connections_per_second > 0 && f.connection_burst == 0,
                ),
                (
                    "tls_failure_window_secs",
                    f.tls_failures > 0 && f.tls_failure_window_secs == 0,
                ),
                ("tls_ban_secs", f.tls_failures > 0 && f.tls_ban_secs == 0),
                ("max_sources", f.max_sources == 0),
            ] {
                if zero {
                    out.push((
                        Violation::ZeroLimit { name },
                        Place::key("flood").child(name),
                    ));
                }
            }
            if !(1..=128).contains(&f.ipv6_prefix) {
                out.push((
                    Violation::BadIpv6Prefix(f.ipv6_prefix),
                    Place::key("flood").child("ipv6_prefix"),
                ));
            }
        }
        if !self.sctp.dtls_via_token_ok() {
            out.push((
                Violation::BadViaToken(self.sctp.dtls_via_token.clone()),
                Place::key("sctp").child("dtls_via_token"),
            ));
        }
        super::relay_config::violations(self, &mut out);
        if l.idle_timeout_secs < 32 {
            out.push((
                Violation::IdleTooShort(l.idle_timeout_secs),
                Place::key("limits").child("idle_timeout_secs"),
            ));
        }
        out
    }

    /// The domains this configuration serves: listener domains and `[[tls.domains]]`
    /// names, each once (case-insensitive), in order of appearance.
    pub fn domains(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let names = self
            .listeners
            .iter()
            .filter_map(|l| l.domain.as_deref())
            .chain(self.tls.domains.iter().map(|d| d.name.as_str()));
        for n in names {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(n)) {
                out.push(n.to_owned());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violations(text: &str) -> Vec<Violation> {
        Config::parse(text)
            .unwrap_err()
            .violations()
            .cloned()
            .collect()
    }

    #[test]
    fn dtls_via_token_must_be_a_token_of_its_own() {
        let ok = Config::parse("[sctp]\ndtls_via_token = 'SCTP-DTLS'\n").expect("valid");
        assert_eq!(ok.sctp.custom_dtls_via_token(), Some("SCTP-DTLS"));
        let default = Config::parse("[sctp]\ndtls_via_token = 'dtls-sctp'\n").expect("valid");
        assert_eq!(default.sctp.custom_dtls_via_token(), None);
        for bad in ["", "DTLS/SCTP", "TLS-SCTP", "udp", "A B"] {
            assert_eq!(
                violations(&format!("[sctp]\ndtls_via_token = '{bad}'\n")),
                [Violation::BadViaToken(bad.to_owned())],
                "{bad:?}"
            );
        }
    }

    #[test]
    fn embedded_default_is_valid_and_loopback_only() {
        let cfg = Config::embedded_default().expect("embedded default must be valid");
        assert!(cfg.tls.dev_ca);
        let kinds: Vec<_> = cfg.listeners.iter().map(|l| l.transport).collect();
        assert!(kinds.contains(&TransportKind::Udp));
        assert!(kinds.contains(&TransportKind::Tcp));
        assert!(kinds.contains(&TransportKind::Tls));
        assert!(cfg.listeners.iter().all(|l| l.addr.ip().is_loopback()));
        assert_eq!(cfg.domains(), ["localhost"]);
    }

    #[test]
    fn flood_section_maps_to_the_limiter() {
        let tcp = "[[listener]]\nname='t'\ntransport='tcp'\naddr='127.0.0.1:5060'\n";
        let cfg = Config::parse(tcp).expect("valid");
        assert!(cfg.flood.is_none());
        let cfg = Config::parse(&format!(
            "{tcp}[flood]\nrequests_per_second = 0\nconnections_per_second = 3\n\
             connection_burst = 4\nretry_after_secs = 0\nallow = ['192.0.2.0/24']\n\
             action = 'drop'\ntls_failures = 2\ntls_failure_window_secs = 10\n"
        ))
        .expect("valid");
        let f = cfg.flood.expect("on").flood_config();
        assert_eq!(f.requests, None);
        assert_eq!(f.connections, Some(sipwire::flood::Rate::per_second(3, 4)));
        assert_eq!(f.retry_after, None);
        assert_eq!(f.action, sipwire::flood::FloodAction::Drop);
        assert_eq!(f.allow.len(), 1);
        let t = f.tls_failures.expect("budget");
        assert_eq!((t.count, t.per.as_secs(), t.burst), (2, 10, 2));
        let v = violations(&format!(
            "{tcp}[flood]\nmax_sources = 0\nipv6_prefix = 129\n"
        ));
        assert_eq!(
            v,
            [
                Violation::ZeroLimit {
                    name: "max_sources"
                },
                Violation::BadIpv6Prefix(129)
            ]
        );
    }

    #[test]
    fn udp_without_tcp_is_refused() {
        let v = violations("[[listener]]\nname='u'\ntransport='udp'\naddr='127.0.0.1:5060'\n");
        assert!(matches!(v[..], [Violation::UdpWithoutTcp { .. }]), "{v:?}");
    }

    #[test]
    fn duplicate_listener_is_refused() {
        let text = "[[listener]]\nname='a'\ntransport='tcp'\naddr='127.0.0.1:5060'\n\
                    [[listener]]\nname='b'\ntransport='tcp'\naddr='127.0.0.1:5060'\n";
        assert!(matches!(
            violations(text)[..],
            [Violation::DuplicateListener { .. }]
        ));
    }

    #[test]
    fn tls_needs_certificate_or_dev_ca() {
        let text = "[[listener]]\nname='t'\ntransport='tls'\naddr='127.0.0.1:5061'\n";
        assert!(matches!(
            violations(text)[..],
            [Violation::TlsWithoutCertificate(_)]
        ));
    }

    #[test]
    fn tls_domains_are_parsed_and_checked() {
        let ok = "[[tls.domains]]\nname='Example.com'\ncert='a.pem'\nkey='a.key'\n\
                  [[tls.domains]]\nname='example.net'\ncert='b.pem'\nkey='b.key'\n";
        let cfg = Config::parse(ok).unwrap();
        assert_eq!(cfg.tls.domains.len(), 2);
        assert_eq!(cfg.domains(), ["Example.com", "example.net"]);
        let dup = "[[tls.domains]]\nname='example.com'\ncert='a.pem'\nkey='a.key'\n\
                   [[tls.domains]]\nname='EXAMPLE.com'\ncert='b.pem'\nkey='b.key'\n";
        assert!(matches!(violations(dup)[..], [Violation::BadTlsDomain(_)]));
        let bad = "[[tls.domains]]\nname='*.example.com'\ncert='a.pem'\nkey='a.key'\n";
        assert!(matches!(violations(bad)[..], [Violation::BadTlsDomain(_)]));
        assert!(matches!(
            violations("[tls]\nclient_cert='c.pem'\n")[..],
            [Violation::ClientCertWithoutKey]
        ));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = Config::parse("bogus = 1\n").unwrap_err();
        assert!(matches!(
            e.problems(),
            [Problem {
                kind: ProblemKind::Schema(_),
                ..
            }]
        ));
    }

    #[test]
    fn idle_timeout_below_64_t1_is_refused() {
        assert_eq!(
            violations("[limits]\nidle_timeout_secs = 31\n"),
            [Violation::IdleTooShort(31)]
        );
        assert!(Config::parse("[limits]\nidle_timeout_secs = 32\n").is_ok());
    }

    #[test]
    fn capture_section_is_parsed_and_checked() {
        assert_eq!(Config::parse("").unwrap().capture, None);
        let c = Config::parse("[capture]\ncollector = '127.0.0.1:9060'\n")
            .unwrap()
            .capture
            .unwrap();
        assert_eq!(c.transport, CaptureTransport::Udp);
        assert_eq!((c.capture_id, c.queue_messages), (1, 10_000));
        let s = c.sink_config();
        assert_eq!(s.collector, "127.0.0.1:9060".parse().unwrap());
        assert_eq!(s.transport, sipwire::capture::CollectorTransport::Udp);
        let c = Config::parse(
            "[capture]\ncollector = '[::1]:9061'\ntransport = 'tcp'\ncapture_id = 7\n\
             auth_key = 'k'\nqueue_messages = 5\nqueue_bytes = 4096\n",
        )
        .unwrap()
        .capture
        .unwrap();
        let s = c.sink_config();
        assert_eq!(s.transport, sipwire::capture::CollectorTransport::Tcp);
        assert_eq!((s.capture_id, s.auth_key.as_deref()), (7, Some("k")));
        assert_eq!((s.queue_messages, s.queue_bytes), (5, 4096));
        assert_eq!(
            violations("[capture]\ncollector = '0.0.0.0:9060'\nqueue_bytes = 0\n"),
            [
                Violation::BadCollector("0.0.0.0:9060".parse().unwrap()),
                Violation::ZeroLimit {
                    name: "queue_bytes"
                }
            ]
        );
        let long = format!(
            "[capture]\ncollector = '127.0.0.1:9060'\nauth_key = '{}'\n",
            "k".repeat(MAX_AUTH_KEY + 1)
        );
        assert_eq!(
            violations(&long),
            [Violation::AuthKeyTooLong(MAX_AUTH_KEY + 1)]
        );
        assert!(Config::parse("[capture]\ntransport = 'sctp'\n").is_err());
    }

    #[test]
    fn zero_limit_is_refused() {
        assert_eq!(
            violations("[limits]\nmax_message = 0\nconnect_timeout_secs = 0\n"),
            [
                Violation::ZeroLimit {
                    name: "max_message"
                },
                Violation::ZeroLimit {
                    name: "connect_timeout_secs"
                }
            ]
        );
    }
}
