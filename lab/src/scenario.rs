//! Scenarios: a topology described in a TOML file a user can read and edit.
//!
//! ```toml
//! [[host]]
//! name = "p1"
//!
//! [[host]]
//! name = "p2"
//!
//! [[link]]
//! a = "p1"
//! a_addrs = ["192.0.2.1/24", "2001:db8::1/64"]
//! b = "p2"
//! b_addrs = ["192.0.2.128/24", "2001:db8::128/64"]
//! impair = { delay_ms = 25 }          # netem on both ends: 50 ms RTT
//!
//! [dns]
//! host = "p1"                          # which host runs dnsmasq
//! listen = "192.0.2.1"
//! [[dns.zone.hosts]]
//! name = "p2.example.net"
//! addrs = ["192.0.2.128"]
//! ```

use crate::{Impairment, LabError, Link, Topology, Zone};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// A parsed scenario file.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario is for (free text).
    #[serde(default)]
    pub description: String,
    /// Hosts, in creation order.
    #[serde(default, rename = "host")]
    pub hosts: Vec<HostSpec>,
    /// Links, in creation order (interfaces are numbered eth0, eth1, ... per host in this order).
    #[serde(default, rename = "link")]
    pub links: Vec<LinkSpec>,
    /// An optional DNS server.
    #[serde(default)]
    pub dns: Option<DnsSpec>,
}

/// A host of a scenario.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// Label.
    pub name: String,
    /// sysctls to set inside it, e.g. `"net/sctp/auth_enable" = "1"`.
    #[serde(default)]
    pub sysctl: BTreeMap<String, String>,
}

/// A link of a scenario.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// First host.
    pub a: String,
    /// Its addresses (CIDR, documentation ranges).
    #[serde(default)]
    pub a_addrs: Vec<String>,
    /// Second host.
    pub b: String,
    /// Its addresses.
    #[serde(default)]
    pub b_addrs: Vec<String>,
    /// Impairment on both ends.
    #[serde(default)]
    pub impair: Option<Impairment>,
}

/// The DNS server of a scenario.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSpec {
    /// The host that runs it.
    pub host: String,
    /// The address it listens on (port 53); must be one of that host's addresses.
    pub listen: IpAddr,
    /// The records.
    #[serde(default)]
    pub zone: Zone,
}

impl Scenario {
    /// Parses a scenario from TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, LabError> {
        let s: Scenario = toml::from_str(text).map_err(|e| LabError::Scenario {
            path: origin.to_owned(),
            message: e.to_string(),
        })?;
        s.check(origin)?;
        Ok(s)
    }

    /// Reads and parses a scenario file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, LabError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| LabError::Io {
            context: format!("reading scenario {}", path.display()),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Checks names and addresses without touching the system.
    fn check(&self, origin: &str) -> Result<(), LabError> {
        let known = |n: &str| self.hosts.iter().any(|h| h.name == n);
        for (i, h) in self.hosts.iter().enumerate() {
            if self.hosts[..i].iter().any(|o| o.name == h.name) {
                return Err(LabError::Duplicate(h.name.clone()));
            }
            let ok = !h.name.is_empty()
                && h.name.len() <= 16
                && h.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !ok {
                return Err(LabError::Scenario {
                    path: origin.to_owned(),
                    message: format!("host name {:?}: use 1-16 letters, digits or '-'", h.name),
                });
            }
        }
        for l in &self.links {
            for n in [&l.a, &l.b] {
                if !known(n) {
                    return Err(LabError::UnknownHost(n.clone()));
                }
            }
            for a in l.a_addrs.iter().chain(&l.b_addrs) {
                crate::Cidr::parse_documentation(a)?;
            }
        }
        if let Some(d) = &self.dns {
            if !known(&d.host) {
                return Err(LabError::UnknownHost(d.host.clone()));
            }
            if !crate::is_documentation_addr(d.listen) {
                return Err(LabError::NotDocumentation(d.listen.to_string()));
            }
            d.zone.dnsmasq_args()?;
        }
        Ok(())
    }
}

/// A topology built from a scenario, with its links and DNS address by name.
#[derive(Debug)]
pub struct Built {
    /// The topology (dropping it tears everything down).
    pub topology: Topology,
    /// Links in scenario order.
    pub links: Vec<Link>,
    /// Where the DNS server answers, if the scenario has one.
    pub dns: Option<SocketAddr>,
}

impl Topology {
    /// Builds everything a scenario describes: hosts, sysctls, links, impairments, the DNS server.
    pub fn from_scenario(s: &Scenario) -> Result<Built, LabError> {
        let mut topology = Topology::new()?;
        for h in &s.hosts {
            let host = topology.host(&h.name)?;
            for (k, v) in &h.sysctl {
                host.sysctl(k, v)?;
            }
        }
        let mut links = Vec::new();
        for l in &s.links {
            let a = topology
                .get(&l.a)
                .cloned()
                .ok_or_else(|| LabError::UnknownHost(l.a.clone()))?;
            let b = topology
                .get(&l.b)
                .cloned()
                .ok_or_else(|| LabError::UnknownHost(l.b.clone()))?;
            let a_addrs: Vec<&str> = l.a_addrs.iter().map(String::as_str).collect();
            let b_addrs: Vec<&str> = l.b_addrs.iter().map(String::as_str).collect();
            let link = topology.link(&a, &a_addrs, &b, &b_addrs)?;
            if let Some(imp) = l.impair {
                link.impair(imp)?;
            }
            links.push(link);
        }
        let dns = match &s.dns {
            Some(d) => {
                let host = topology
                    .get(&d.host)
                    .cloned()
                    .ok_or_else(|| LabError::UnknownHost(d.host.clone()))?;
                Some(topology.dns(&host, d.listen, &d.zone)?)
            }
            None => None,
        };
        Ok(Built {
            topology,
            links,
            dns,
        })
    }

    /// Loads a scenario file and builds it.
    pub fn from_scenario_file(path: impl AsRef<Path>) -> Result<Built, LabError> {
        Self::from_scenario(&Scenario::load(path)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_scenarios_parse() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Scenario::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                n += 1;
            }
        }
        assert!(n >= 3, "expected the shipped scenarios in {dir}");
    }

    #[test]
    fn mistakes_are_named() {
        let bad_addr = "[[host]]\nname='a'\n[[host]]\nname='b'\n[[link]]\na='a'\nb='b'\na_addrs=['10.0.0.1/24']\n";
        assert!(matches!(
            Scenario::parse(bad_addr, "t"),
            Err(LabError::NotDocumentation(_))
        ));
        let unknown = "[[host]]\nname='a'\n[[link]]\na='a'\nb='zz'\n";
        assert!(matches!(
            Scenario::parse(unknown, "t"),
            Err(LabError::UnknownHost(h)) if h == "zz"
        ));
        let typo = "[[hots]]\nname='a'\n";
        assert!(matches!(
            Scenario::parse(typo, "t"),
            Err(LabError::Scenario { .. })
        ));
    }
}
