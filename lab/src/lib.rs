//! sipwire-lab: network-namespace hosts, veth links, impairments and a DNS host for tests.
