//! The client-side choice for one outbound request (RFC 5923 §8.1, §9.1): reuse an aliased
//! flow, or open a new one verified against the AUS and record it once the server is
//! authenticated. Pure: liveness of a flow is asked through a closure.

use super::key::{is_alias_transport, AliasKey};
use super::tables::AliasTables;
use crate::resolve::Target;
use std::hash::Hash;

/// What to do for a request to one resolved target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<D> {
    /// Send on this flow: its row has the resolved address and proves the URI's domain.
    Reuse {
        /// The aliased flow.
        flow: D,
        /// The resolved address it was found under.
        key: AliasKey,
    },
    /// Open a flow to `key`, verifying the server certificate against `server_name` (the AUS,
    /// RFC 5922 §7.3, never the SRV target).
    Connect {
        /// The resolved address.
        key: AliasKey,
        /// The name the server must prove.
        server_name: String,
        /// After the handshake, record the flow with `add_outbound` (TLS family only).
        record: bool,
        /// A dead flow was found in the table and its rows removed (§8.1/§8.2: a new
        /// connection is opened and the table updated).
        replaced_dead: Option<D>,
    },
}

/// Chooses how to send a request of `local_domain` whose RFC 3263 resolution of a URI with
/// domain `aus` gave `target` (the target being tried now: the caller keeps the RFC 3263 order,
/// so SRV load balancing is unaffected, §10). `alive` tells whether a descriptor is still
/// usable; a dead one is removed from every table.
pub fn route<D, F>(
    tables: &mut AliasTables<D>,
    local_domain: &str,
    aus: &str,
    target: &Target,
    alive: F,
) -> Route<D>
where
    D: Clone + Eq + Hash,
    F: Fn(&D) -> bool,
{
    let key = AliasKey::from(target);
    let record = is_alias_transport(key.transport);
    let mut replaced_dead = None;
    if record {
        if let Some(flow) = tables.lookup(local_domain, &key, aus) {
            if alive(&flow) {
                return Route::Reuse { flow, key };
            }
            tables.remove_descriptor(&flow);
            replaced_dead = Some(flow);
        }
    }
    Route::Connect {
        key,
        server_name: aus.to_owned(),
        record,
        replaced_dead,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alias::PeerIdentities;
    use crate::TransportKind;

    fn target(addr: &str, t: TransportKind) -> Target {
        Target::new(t, addr.parse().expect("addr"))
    }

    #[test]
    fn reuse_only_with_matching_identity_and_live_flow() {
        let mut tables: AliasTables<u32> = AliasTables::default();
        let t = target("192.0.2.128:5061", TransportKind::Tls);
        let ids = PeerIdentities::from_names(["example.net", "p2.example.net"]);
        tables.add_outbound("example.com", AliasKey::from(&t), &ids, 25);
        assert_eq!(
            route(&mut tables, "example.com", "example.net", &t, |_| true),
            Route::Reuse {
                flow: 25,
                key: AliasKey::from(&t)
            }
        );
        // Another AUS at the same address (§9.3): new connection, verified against it.
        match route(&mut tables, "example.com", "example.org", &t, |_| true) {
            Route::Connect {
                server_name,
                record,
                replaced_dead,
                ..
            } => {
                assert_eq!(server_name, "example.org");
                assert!(record);
                assert_eq!(replaced_dead, None);
            }
            r => panic!("unexpected {r:?}"),
        }
        // Another local domain: never.
        assert!(matches!(
            route(&mut tables, "example.org", "example.net", &t, |_| true),
            Route::Connect { .. }
        ));
        // Dead flow: removed, new connection.
        match route(&mut tables, "example.com", "example.net", &t, |_| false) {
            Route::Connect { replaced_dead, .. } => assert_eq!(replaced_dead, Some(25)),
            r => panic!("unexpected {r:?}"),
        }
        assert_eq!(tables.counters().rows, 0);
    }

    #[test]
    fn plain_transports_are_never_looked_up_or_recorded() {
        let mut tables: AliasTables<u32> = AliasTables::default();
        for tr in [TransportKind::Tcp, TransportKind::Udp, TransportKind::Sctp] {
            let t = target("192.0.2.128:5060", tr);
            match route(&mut tables, "example.com", "example.net", &t, |_| true) {
                Route::Connect { record, .. } => assert!(!record, "{tr}"),
                r => panic!("unexpected {r:?}"),
            }
        }
        assert_eq!(
            tables.counters().misses,
            0,
            "no lookup for plain transports"
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const DOMAINS: [&str; 2] = ["example.com", "example.org"];
        const NAMES: [&str; 3] = ["example.net", "p2.example.net", "evil.example"];

        fn key(i: u8, secure: bool) -> Target {
            target(
                &format!("192.0.2.{}:5061", 1 + i % 3),
                if secure {
                    TransportKind::Tls
                } else {
                    TransportKind::Tcp
                },
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]
            /// Whatever the table holds: Reuse only for a live flow whose row, in the requesting
            /// domain's table, has the resolved key and proves the AUS; never for plain
            /// transports; a dead flow found is gone from every table afterwards.
            #[test]
            fn reuse_only_when_proven(
                adds in proptest::collection::vec((0u8..2, 0u8..6, 1u8..8, 0u32..6), 0..12),
                asks in proptest::collection::vec((0u8..2, 0u8..6, 0u8..3, any::<bool>()), 1..12),
                dead in proptest::collection::btree_set(0u32..6, 0..3),
            ) {
                let mut tables: AliasTables<u32> = AliasTables::default();
                for (d, k, ids, flow) in adds {
                    let names: Vec<&str> = NAMES
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| ids & (1 << i) != 0)
                        .map(|(_, n)| *n)
                        .collect();
                    let dom = DOMAINS[usize::from(d)];
                    tables.add_outbound(
                        dom,
                        AliasKey::from(&key(k, k % 2 == 0)),
                        &PeerIdentities::from_names(names),
                        flow,
                    );
                }
                for (d, k, aus, secure) in asks {
                    let dom = DOMAINS[usize::from(d)];
                    let aus = NAMES[usize::from(aus)];
                    let t = key(k, secure);
                    let before = tables.clone();
                    match route(&mut tables, dom, aus, &t, |f| !dead.contains(f)) {
                        Route::Reuse { flow, key } => {
                            prop_assert!(secure);
                            prop_assert!(!dead.contains(&flow));
                            let row = before.table(dom).and_then(|tb| tb.find(&key, aus));
                            prop_assert_eq!(row.map(|r| r.descriptor), Some(flow));
                        }
                        Route::Connect { server_name, record, replaced_dead, .. } => {
                            prop_assert_eq!(server_name, aus);
                            prop_assert_eq!(record, secure);
                            if let Some(f) = replaced_dead {
                                prop_assert!(dead.contains(&f));
                                for dd in DOMAINS {
                                    let left = tables
                                        .table(dd)
                                        .map_or(0, |tb| tb.rows().filter(|r| r.descriptor == f).count());
                                    prop_assert_eq!(left, 0);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
