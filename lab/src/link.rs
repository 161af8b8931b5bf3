//! Links: veth pairs between two hosts, their addresses, state and impairments.

use crate::{shell, Cidr, Host, LabError};
use std::time::Duration;

/// One end of a link: the interface inside a host and its addresses.
#[derive(Debug, Clone)]
pub struct LinkEnd {
    /// The host.
    pub host: Host,
    /// Interface name inside the host (`eth0`, `eth1`, ...).
    pub ifname: String,
    /// Addresses assigned to it.
    pub addrs: Vec<Cidr>,
}

/// A veth pair between two hosts.
#[derive(Debug, Clone)]
pub struct Link {
    /// The first end.
    pub a: LinkEnd,
    /// The second end.
    pub b: LinkEnd,
}

/// A netem impairment applied to one end's egress.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Impairment {
    /// One-way delay, milliseconds.
    pub delay_ms: u32,
    /// Jitter, milliseconds.
    pub jitter_ms: u32,
    /// Loss, percent.
    pub loss_percent: f32,
}

impl Link {
    pub(crate) fn create(
        prefix: &str,
        n: usize,
        a: &Host,
        a_addrs: &[Cidr],
        b: &Host,
        b_addrs: &[Cidr],
    ) -> Result<Self, LabError> {
        // Temporary names in the root namespace must be unique and at most 15 bytes.
        let tmp_a = short_name(prefix, n, 'a');
        let tmp_b = short_name(prefix, n, 'b');
        shell::ip(&[
            "link",
            "add",
            &tmp_a,
            "netns",
            a.netns(),
            "type",
            "veth",
            "peer",
            "name",
            &tmp_b,
            "netns",
            b.netns(),
        ])?;
        let a_end = setup_end(a, &tmp_a, a_addrs)?;
        let b_end = setup_end(b, &tmp_b, b_addrs)?;
        Ok(Self { a: a_end, b: b_end })
    }

    /// Takes the link down on both ends (packets stop, SCTP paths fail).
    pub fn down(&self) -> Result<(), LabError> {
        self.a.host.ip(&["link", "set", &self.a.ifname, "down"])?;
        self.b.host.ip(&["link", "set", &self.b.ifname, "down"])?;
        Ok(())
    }

    /// Brings the link back up on both ends.
    pub fn up(&self) -> Result<(), LabError> {
        self.a.host.ip(&["link", "set", &self.a.ifname, "up"])?;
        self.b.host.ip(&["link", "set", &self.b.ifname, "up"])?;
        Ok(())
    }

    /// Applies the impairment on both ends (so a delay counts twice in a round trip).
    pub fn impair(&self, imp: Impairment) -> Result<(), LabError> {
        self.a.impair(imp)?;
        self.b.impair(imp)
    }

    /// The first address of the given family on end `a`.
    pub fn a_addr(&self, v6: bool) -> Option<std::net::IpAddr> {
        self.a.addr(v6)
    }

    /// The first address of the given family on end `b`.
    pub fn b_addr(&self, v6: bool) -> Option<std::net::IpAddr> {
        self.b.addr(v6)
    }
}

impl LinkEnd {
    /// Replaces this end's egress qdisc by netem with the impairment (all zero = no netem).
    pub fn impair(&self, imp: Impairment) -> Result<(), LabError> {
        if imp == Impairment::default() {
            // Removing a qdisc that is not there fails; that is fine.
            let _ = self
                .host
                .exec("tc", &["qdisc", "del", "dev", &self.ifname, "root"]);
            return Ok(());
        }
        let delay = format!("{}ms", imp.delay_ms);
        let jitter = format!("{}ms", imp.jitter_ms);
        let loss = format!("{}%", imp.loss_percent);
        let mut args = vec!["qdisc", "replace", "dev", &self.ifname, "root", "netem"];
        args.extend(["delay", &delay]);
        if imp.jitter_ms > 0 {
            args.push(&jitter);
        }
        if imp.loss_percent > 0.0 {
            args.extend(["loss", &loss]);
        }
        args.extend(["limit", "100000"]);
        self.host.exec("tc", &args).map(|_| ())
    }

    /// The first address of the given family.
    pub fn addr(&self, v6: bool) -> Option<std::net::IpAddr> {
        self.addrs
            .iter()
            .map(|c| c.addr)
            .find(|a| a.is_ipv6() == v6)
    }
}

fn short_name(prefix: &str, n: usize, side: char) -> String {
    // prefix is "sw<pid hex>t<seq hex>"; keep it within 15 bytes with the index and side.
    let mut s: String = prefix.chars().take(11).collect();
    s.push_str(&format!("{n:x}{side}"));
    s.chars().take(15).collect()
}

fn setup_end(host: &Host, tmp: &str, addrs: &[Cidr]) -> Result<LinkEnd, LabError> {
    let existing = host.ip(&["-o", "link", "show"])?;
    let index = existing.lines().filter(|l| l.contains(": eth")).count();
    let ifname = format!("eth{index}");
    host.ip(&["link", "set", tmp, "name", &ifname])?;
    for cidr in addrs {
        let c = cidr.to_string();
        if cidr.addr.is_ipv6() {
            host.ip(&["addr", "add", &c, "dev", &ifname, "nodad"])?;
        } else {
            host.ip(&["addr", "add", &c, "dev", &ifname])?;
        }
    }
    host.ip(&["link", "set", &ifname, "up"])?;
    Ok(LinkEnd {
        host: host.clone(),
        ifname,
        addrs: addrs.to_vec(),
    })
}

/// How long a test should wait for links to settle after a change (bounded helper).
pub const SETTLE: Duration = Duration::from_millis(200);
