//! The lab's DNS host: a real DNS server (dnsmasq) inside a host, serving the zone a test gives.
//!
//! dnsmasq is started with no upstream, no /etc/hosts and no configuration file, so it answers only
//! the records of the [`Zone`]. Names under a zone's domains that have no record get NXDOMAIN/NODATA
//! (dnsmasq `--local`), which is what an RFC 3263 resolver must see to fall back from NAPTR to SRV to
//! A/AAAA.

use crate::{Host, LabError};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A/AAAA records for one name.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRecord {
    /// Owner name, e.g. `p2.example.net`.
    pub name: String,
    /// Its addresses (IPv4 and/or IPv6).
    pub addrs: Vec<IpAddr>,
}

/// One SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrvRecord {
    /// Owner name, e.g. `_sips._tcp.example.net`.
    pub name: String,
    /// Target host name.
    pub target: String,
    /// Port.
    pub port: u16,
    /// Priority (lower first).
    #[serde(default)]
    pub priority: u16,
    /// Weight within a priority.
    #[serde(default)]
    pub weight: u16,
}

/// One NAPTR record (RFC 3403) as RFC 3263 uses it: flag `S`, empty regexp, a replacement.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NaptrRecord {
    /// Owner name, e.g. `example.net`.
    pub name: String,
    /// Order.
    pub order: u16,
    /// Preference.
    pub preference: u16,
    /// Flags (`S` for SIP).
    #[serde(default = "default_flags")]
    pub flags: String,
    /// Service, e.g. `SIPS+D2T`.
    pub service: String,
    /// Replacement, e.g. `_sips._tcp.example.net`.
    pub replacement: String,
}

fn default_flags() -> String {
    "S".to_owned()
}

/// The records a lab DNS server serves.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Zone {
    /// TTL of every answer, seconds (default 60).
    pub ttl: Option<u32>,
    /// A/AAAA records.
    pub hosts: Vec<HostRecord>,
    /// SRV records.
    pub srv: Vec<SrvRecord>,
    /// NAPTR records.
    pub naptr: Vec<NaptrRecord>,
}

impl Zone {
    /// An empty zone.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds A/AAAA records.
    pub fn host(mut self, name: &str, addrs: &[IpAddr]) -> Self {
        self.hosts.push(HostRecord {
            name: name.to_owned(),
            addrs: addrs.to_vec(),
        });
        self
    }

    /// Adds an SRV record.
    pub fn srv(mut self, name: &str, target: &str, port: u16, priority: u16, weight: u16) -> Self {
        self.srv.push(SrvRecord {
            name: name.to_owned(),
            target: target.to_owned(),
            port,
            priority,
            weight,
        });
        self
    }

    /// Adds a NAPTR record with flag `S`.
    pub fn naptr(
        mut self,
        name: &str,
        order: u16,
        preference: u16,
        service: &str,
        replacement: &str,
    ) -> Self {
        self.naptr.push(NaptrRecord {
            name: name.to_owned(),
            order,
            preference,
            flags: default_flags(),
            service: service.to_owned(),
            replacement: replacement.to_owned(),
        });
        self
    }

    /// The domains the server is authoritative for: the last two labels of every owner name.
    fn domains(&self) -> Vec<String> {
        let names = self
            .hosts
            .iter()
            .map(|h| h.name.as_str())
            .chain(self.srv.iter().map(|s| s.name.as_str()))
            .chain(self.naptr.iter().map(|n| n.name.as_str()));
        let mut out: Vec<String> = names
            .filter_map(|n| {
                let labels: Vec<&str> = n.trim_end_matches('.').rsplitn(3, '.').collect();
                match labels.as_slice() {
                    [tld, sld, ..] => Some(format!("{sld}.{tld}").to_ascii_lowercase()),
                    _ => None,
                }
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// dnsmasq arguments for this zone (without the listening options).
    pub fn dnsmasq_args(&self) -> Result<Vec<String>, LabError> {
        let mut args = Vec::new();
        for r in &self.hosts {
            check_name(&r.name)?;
            let mut v4 = r.addrs.iter().filter(|a| a.is_ipv4()).peekable();
            let mut v6 = r.addrs.iter().filter(|a| a.is_ipv6()).peekable();
            if v4.peek().is_none() && v6.peek().is_none() {
                return Err(zone_error(format!("host record {} has no address", r.name)));
            }
            // One --host-record per address keeps several A (or AAAA) records for one name.
            for a in v4.chain(v6) {
                args.push(format!("--host-record={},{a}", r.name));
            }
        }
        for s in &self.srv {
            check_name(&s.name)?;
            check_name(&s.target)?;
            args.push(format!(
                "--srv-host={},{},{},{},{}",
                s.name, s.target, s.port, s.priority, s.weight
            ));
        }
        for n in &self.naptr {
            check_name(&n.name)?;
            check_name(&n.replacement)?;
            for field in [&n.flags, &n.service] {
                if field.contains(',') {
                    return Err(zone_error(format!(
                        "NAPTR field {field:?} contains a comma"
                    )));
                }
            }
            args.push(format!(
                "--naptr-record={},{},{},{},{},,{}",
                n.name, n.order, n.preference, n.flags, n.service, n.replacement
            ));
        }
        for d in self.domains() {
            args.push(format!("--local=/{d}/"));
        }
        args.push(format!("--local-ttl={}", self.ttl.unwrap_or(60)));
        Ok(args)
    }
}

fn check_name(name: &str) -> Result<(), LabError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(zone_error(format!("bad DNS name {name:?}")))
    }
}

fn zone_error(message: String) -> LabError {
    LabError::Dns {
        host: "(zone)".to_owned(),
        message,
    }
}

/// A running dnsmasq inside a host; killed when dropped.
#[derive(Debug)]
pub struct DnsServer {
    host: String,
    addr: SocketAddr,
    child: Child,
}

impl DnsServer {
    /// Starts dnsmasq inside `host` on `listen`:`port` (the address must already be configured on
    /// one of the host's interfaces) and waits until it answers, at most 5 seconds.
    pub fn start(host: &Host, listen: IpAddr, port: u16, zone: &Zone) -> Result<Self, LabError> {
        if std::process::Command::new("dnsmasq")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            return Err(LabError::MissingProgram("dnsmasq (package dnsmasq-base)"));
        }
        let mut cmd = host.command("dnsmasq");
        cmd.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            "--user=root",
            "--pid-file=",
            "--log-facility=-",
        ]);
        cmd.arg(format!("--listen-address={listen}"))
            .arg(format!("--port={port}"));
        if listen.is_ipv4() {
            // dnsmasq always listens on loopback too unless told otherwise.
            cmd.arg("--except-interface=lo");
        }
        cmd.args(zone.dnsmasq_args()?);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = cmd.spawn().map_err(|source| LabError::Io {
            context: "starting dnsmasq".to_owned(),
            source,
        })?;
        let mut server = Self {
            host: host.name().to_owned(),
            addr: SocketAddr::new(listen, port),
            child,
        };
        server.wait_ready(host)?;
        Ok(server)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn wait_ready(&mut self, host: &Host) -> Result<(), LabError> {
        let addr = self.addr;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut stderr);
                }
                return Err(LabError::Dns {
                    host: self.host.clone(),
                    message: format!("dnsmasq exited ({status}): {}", stderr.trim()),
                });
            }
            let answered = host
                .spawn(move || probe(addr))
                .join()
                .map_err(|_| LabError::TaskPanicked(self.host.clone()))???;
            if answered {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(LabError::Dns {
                    host: self.host.clone(),
                    message: format!("no answer on {addr} within 5 s"),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one DNS query (root, type SOA) and reports whether any reply came back.
fn probe(server: SocketAddr) -> Result<bool, LabError> {
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().map_err(|_| zone_error("bind".into()))?
    } else {
        "[::]:0".parse().map_err(|_| zone_error("bind".into()))?
    };
    let io = |source| LabError::Io {
        context: format!("probing DNS server {server}"),
        source,
    };
    let sock = UdpSocket::bind(bind).map_err(io)?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(io)?;
    // id 0x5157, RD, one question: root, SOA, IN.
    let query = [
        0x51, 0x57, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 1,
    ];
    if sock.send_to(&query, server).is_err() {
        return Ok(false);
    }
    let mut buf = [0u8; 512];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => Ok(n >= 2 && buf[..2] == [0x51, 0x57]),
        Err(_) => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_becomes_dnsmasq_arguments() {
        let zone = Zone::new()
            .host("p2.example.net", &["192.0.2.128".parse().unwrap()])
            .srv("_sips._tcp.example.net", "p2.example.net", 5061, 10, 60)
            .naptr("example.net", 10, 50, "SIPS+D2T", "_sips._tcp.example.net");
        let args = zone.dnsmasq_args().unwrap();
        assert_eq!(
            args,
            [
                "--host-record=p2.example.net,192.0.2.128",
                "--srv-host=_sips._tcp.example.net,p2.example.net,5061,10,60",
                "--naptr-record=example.net,10,50,S,SIPS+D2T,,_sips._tcp.example.net",
                "--local=/example.net/",
                "--local-ttl=60",
            ]
        );
    }

    #[test]
    fn bad_names_are_refused() {
        let zone = Zone::new().srv("_sip._tcp.x.net", "a,b", 5060, 0, 0);
        assert!(zone.dnsmasq_args().is_err());
        let zone = Zone::new().host("x.net", &[]);
        assert!(zone.dnsmasq_args().is_err());
    }
}
