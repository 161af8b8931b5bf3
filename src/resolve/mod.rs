//! RFC 3263 server location: NAPTR, SRV, A/AAAA ordering and a DNS driver.
