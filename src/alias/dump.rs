//! Serializable snapshots of the alias tables (for `sipwire` inspection commands and logs).

use super::key::AliasKey;
use super::table::RowOrigin;
use crate::TransportKind;
use serde::Serialize;
use std::net::IpAddr;

/// One row as shown to an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowDump {
    /// Destination IP.
    pub ip: IpAddr,
    /// Destination port.
    pub port: u16,
    /// Destination transport.
    pub transport: TransportKind,
    /// Peer identities, sorted.
    pub identities: Vec<String>,
    /// The descriptor, rendered by the caller.
    pub descriptor: String,
    /// Client-side or server-side row.
    pub origin: RowOrigin,
}

impl RowDump {
    /// The row's key.
    pub fn key(&self) -> AliasKey {
        AliasKey::new(self.ip, self.port, self.transport)
    }
}

/// One local domain's table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableDump {
    /// The local (virtual) domain the table belongs to.
    pub local_domain: String,
    /// Rows sorted by key, then identities.
    pub rows: Vec<RowDump>,
}
