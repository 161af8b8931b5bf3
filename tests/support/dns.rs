//! An in-process DNS server (hickory-server) on 127.0.0.1 serving in-memory zones with NAPTR,
//! SRV, A and AAAA records.

use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::rdata::{A, AAAA, NAPTR, SOA, SRV};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use hickory_server::Server;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("valid test name")
}

/// Builder of one in-memory zone.
pub struct Zone {
    origin: Name,
    handler: InMemoryZoneHandler<TokioRuntimeProvider>,
}

impl Zone {
    pub fn new(origin: &str) -> Zone {
        let origin = name(origin);
        let mut handler = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
            origin.clone(),
            ZoneType::Primary,
            AxfrPolicy::Deny,
        );
        let soa = SOA::new(
            name(&format!("ns.{origin}")),
            name(&format!("hostmaster.{origin}")),
            1,
            3600,
            600,
            86400,
            60,
        );
        assert!(handler.upsert_mut(Record::from_rdata(origin.clone(), 3600, RData::SOA(soa)), 1));
        Zone { origin, handler }
    }

    fn add(mut self, owner: &str, rdata: RData) -> Zone {
        let rec = Record::from_rdata(name(owner), 300, rdata);
        assert!(self.handler.upsert_mut(rec, 1), "insert {owner}");
        self
    }

    pub fn srv(self, owner: &str, prio: u16, weight: u16, port: u16, target: &str) -> Zone {
        self.add(
            owner,
            RData::SRV(SRV::new(prio, weight, port, name(target))),
        )
    }

    pub fn a(self, owner: &str, ip: &str) -> Zone {
        let ip = ip.parse().expect("ipv4");
        self.add(owner, RData::A(A(ip)))
    }

    pub fn aaaa(self, owner: &str, ip: &str) -> Zone {
        let ip = ip.parse().expect("ipv6");
        self.add(owner, RData::AAAA(AAAA(ip)))
    }

    /// A NAPTR record with flag "S" (the next lookup is SRV) and no regexp.
    pub fn naptr(
        self,
        owner: &str,
        order: u16,
        pref: u16,
        service: &str,
        replacement: &str,
    ) -> Zone {
        let rdata = RData::NAPTR(NAPTR::new(
            order,
            pref,
            b"S".to_vec().into_boxed_slice(),
            service.as_bytes().to_vec().into_boxed_slice(),
            Vec::new().into_boxed_slice(),
            name(replacement),
        ));
        self.add(owner, rdata)
    }
}

/// A DNS server on 127.0.0.1 (UDP and TCP on the same port).
pub struct TestDns {
    pub addr: SocketAddr,
    _server: Server<Catalog>,
}

pub async fn start_dns(zones: Vec<Zone>) -> TestDns {
    let mut catalog = Catalog::new();
    for z in zones {
        catalog.upsert(LowerName::new(&z.origin), vec![Arc::new(z.handler)]);
    }
    for _ in 0..20 {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind TCP on loopback");
        let addr = tcp.local_addr().expect("local addr");
        let Ok(udp) = tokio::net::UdpSocket::bind(addr).await else {
            continue;
        };
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64);
        return TestDns {
            addr,
            _server: server,
        };
    }
    panic!("could not bind a UDP+TCP DNS test server on 127.0.0.1");
}
