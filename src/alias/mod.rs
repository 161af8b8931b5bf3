//! The RFC 5923 alias table: which authenticated flow may carry requests to which peer.
