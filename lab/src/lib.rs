//! sipwire-lab: network-namespace hosts, veth links, impairments and a DNS host for tests.
//!
//! A [`Topology`] owns everything it creates and removes it on drop, so a test that fails half-way leaves
//! no namespace behind. Hosts are network namespaces; links are veth pairs whose ends are renamed
//! `eth0`, `eth1`, ... inside each host; impairments are netem qdiscs. Code runs inside a host on a
//! dedicated thread that entered the namespace ([`Host::run`]), or as a process under `ip netns exec`
//! ([`Host::command`]).
//!
//! Addresses come from the documentation ranges only (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
//! 2001:db8::/32): [`Topology::link`] refuses anything else, so a lab can never send traffic to a real
//! network.
#![forbid(unsafe_code)]

mod addr;
mod dns;
mod error;
mod host;
mod link;
mod scenario;
mod shell;

pub use addr::{is_documentation_addr, Cidr};
pub use dns::{DnsServer, HostRecord, NaptrRecord, SrvRecord, Zone};
pub use error::LabError;
pub use host::{Host, HostTask};
pub use link::{Impairment, Link, LinkEnd, SETTLE};
pub use scenario::{Built, DnsSpec, HostSpec, LinkSpec, Scenario};

use std::sync::atomic::{AtomicU32, Ordering};

/// A set of hosts and links that exists for the lifetime of this value.
#[derive(Debug)]
pub struct Topology {
    prefix: String,
    hosts: Vec<Host>,
    links: Vec<Link>,
    dns: Vec<DnsServer>,
}

static TOPOLOGY_SEQ: AtomicU32 = AtomicU32::new(0);

impl Topology {
    /// Starts an empty topology. Fails with a clear error when not root or when `ip` is missing.
    pub fn new() -> Result<Self, LabError> {
        shell::preflight()?;
        let seq = TOPOLOGY_SEQ.fetch_add(1, Ordering::Relaxed);
        Ok(Self {
            prefix: format!("sw{:x}t{:x}", std::process::id(), seq),
            hosts: Vec::new(),
            links: Vec::new(),
            dns: Vec::new(),
        })
    }

    /// Adds a host (a network namespace with loopback up). `name` is the label used by the test.
    pub fn host(&mut self, name: &str) -> Result<Host, LabError> {
        if self.hosts.iter().any(|h| h.name() == name) {
            return Err(LabError::Duplicate(name.to_owned()));
        }
        let netns = format!("{}-{}", self.prefix, name);
        let host = Host::create(name, &netns)?;
        self.hosts.push(host.clone());
        Ok(host)
    }

    /// Looks a host up by label.
    pub fn get(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name() == name)
    }

    /// Connects two hosts with a veth pair and assigns the given addresses (CIDR, documentation ranges
    /// only). Several links between the same hosts model multihoming.
    pub fn link(
        &mut self,
        a: &Host,
        a_addrs: &[&str],
        b: &Host,
        b_addrs: &[&str],
    ) -> Result<Link, LabError> {
        let a_addrs = a_addrs
            .iter()
            .map(|s| Cidr::parse_documentation(s))
            .collect::<Result<Vec<_>, _>>()?;
        let b_addrs = b_addrs
            .iter()
            .map(|s| Cidr::parse_documentation(s))
            .collect::<Result<Vec<_>, _>>()?;
        let n = self.links.len();
        let link = Link::create(&self.prefix, n, a, &a_addrs, b, &b_addrs)?;
        self.links.push(link.clone());
        Ok(link)
    }

    /// Starts a DNS server (dnsmasq) inside `host`, listening on `listen` port 53, serving `zone`.
    pub fn dns(
        &mut self,
        host: &Host,
        listen: std::net::IpAddr,
        zone: &Zone,
    ) -> Result<std::net::SocketAddr, LabError> {
        let server = DnsServer::start(host, listen, 53, zone)?;
        let addr = server.addr();
        self.dns.push(server);
        Ok(addr)
    }

    /// The links created so far.
    pub fn links(&self) -> &[Link] {
        &self.links
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.dns.clear();
        // Deleting a namespace destroys the veth ends inside it; deleting both sides is harmless.
        for host in self.hosts.drain(..) {
            host.destroy();
        }
    }
}
