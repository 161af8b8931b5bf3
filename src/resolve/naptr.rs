//! NAPTR selection for SIP (RFC 3263 §4.1, RFC 3403, RFC 4168 §6).

use super::target::{normalize_domain, Scheme};
use crate::TransportKind;
use serde::{Deserialize, Serialize};

/// A NAPTR record as returned by DNS (no I/O types here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NaptrRecord {
    /// Order: lower first, strictly.
    pub order: u16,
    /// Preference among records of equal order: lower first.
    pub preference: u16,
    /// Flags (`S` for SIP: the next lookup is SRV).
    pub flags: String,
    /// Service field (`SIP+D2U`, `SIPS+D2T`, ...).
    pub services: String,
    /// Regular expression (SIP uses the replacement only; must be empty).
    pub regexp: String,
    /// Replacement: the SRV name to query next.
    pub replacement: String,
}

/// A usable NAPTR result: query SRV at `srv_name`, then use `transport`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NaptrChoice {
    /// TransportKind given by the service field.
    pub transport: TransportKind,
    /// The SRV name (the record's replacement), lowercase, no trailing dot.
    pub srv_name: String,
}

/// Filters and orders NAPTR records per RFC 3263 §4.1:
/// - only records whose flag is `S` (the SRV branch) with an empty regexp and a real replacement;
/// - only the SIP services (`SIP+D2U`, `SIP+D2T`, `SIP+D2S`, `SIPS+D2T`, `SIPS+D2S`);
/// - for a SIPS URI, non-SIPS services are discarded;
/// - transports not in `supported` are discarded;
/// - ordered by order, then preference (stable for ties, duplicates removed).
pub fn select_naptr(
    records: &[NaptrRecord],
    scheme: Scheme,
    supported: &[TransportKind],
) -> Vec<NaptrChoice> {
    let mut usable: Vec<(&NaptrRecord, NaptrChoice)> = records
        .iter()
        .filter_map(|r| {
            if !r.flags.trim().eq_ignore_ascii_case("s") || !r.regexp.is_empty() {
                return None;
            }
            let transport = TransportKind::from_naptr_service(r.services.trim())?;
            if scheme == Scheme::Sips && !transport.is_secure() {
                return None;
            }
            if !supported.contains(&transport) {
                return None;
            }
            let srv_name = normalize_domain(&r.replacement)?;
            Some((
                r,
                NaptrChoice {
                    transport,
                    srv_name,
                },
            ))
        })
        .collect();
    usable.sort_by_key(|(r, _)| (r.order, r.preference));
    let mut out: Vec<NaptrChoice> = Vec::with_capacity(usable.len());
    for (_, c) in usable {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TransportKind;

    fn n(order: u16, pref: u16, flags: &str, svc: &str, repl: &str) -> NaptrRecord {
        NaptrRecord {
            order,
            preference: pref,
            flags: flags.into(),
            services: svc.into(),
            regexp: String::new(),
            replacement: repl.into(),
        }
    }

    fn choices(v: &[NaptrChoice]) -> Vec<(TransportKind, &str)> {
        v.iter()
            .map(|c| (c.transport, c.srv_name.as_str()))
            .collect()
    }

    #[test]
    fn order_then_preference() {
        // RFC 3263 §4.1 example (order 50/90/100) plus a preference tie-break.
        let recs = [
            n(100, 50, "s", "SIP+D2U", "_sip._udp.example.com."),
            n(90, 50, "s", "SIP+D2T", "_sip._tcp.example.com."),
            n(50, 60, "s", "SIPS+D2S", "_sips._sctp.example.com."),
            n(50, 50, "s", "SIPS+D2T", "_sips._tcp.example.com."),
        ];
        let got = select_naptr(&recs, Scheme::Sip, &TransportKind::ALL);
        assert_eq!(
            choices(&got),
            vec![
                (TransportKind::Tls, "_sips._tcp.example.com"),
                (TransportKind::TlsSctp, "_sips._sctp.example.com"),
                (TransportKind::Tcp, "_sip._tcp.example.com"),
                (TransportKind::Udp, "_sip._udp.example.com"),
            ]
        );
    }

    #[test]
    fn sips_discards_non_sips_services() {
        let recs = [
            n(10, 10, "S", "SIP+D2U", "_sip._udp.example.com"),
            n(10, 20, "S", "SIP+D2T", "_sip._tcp.example.com"),
            n(20, 10, "S", "SIPS+D2T", "_sips._tcp.example.com"),
            n(30, 10, "S", "SIP+D2S", "_sip._sctp.example.com"),
            n(40, 10, "S", "SIPS+D2S", "_sips._sctp.example.com"),
        ];
        let got = select_naptr(&recs, Scheme::Sips, &TransportKind::ALL);
        assert_eq!(
            choices(&got),
            vec![
                (TransportKind::Tls, "_sips._tcp.example.com"),
                (TransportKind::TlsSctp, "_sips._sctp.example.com"),
            ]
        );
    }

    #[test]
    fn unsupported_transports_discarded() {
        let recs = [
            n(10, 10, "S", "SIP+D2S", "_sip._sctp.example.com"),
            n(20, 10, "S", "SIP+D2U", "_sip._udp.example.com"),
        ];
        let got = select_naptr(
            &recs,
            Scheme::Sip,
            &[TransportKind::Udp, TransportKind::Tcp],
        );
        assert_eq!(
            choices(&got),
            vec![(TransportKind::Udp, "_sip._udp.example.com")]
        );
    }

    #[test]
    fn only_s_flag_empty_regexp_and_sip_services() {
        let mut with_regexp = n(1, 1, "S", "SIP+D2T", "_sip._tcp.example.com");
        with_regexp.regexp = "!^.*$!sip:info@example.com!".into();
        let recs = [
            n(1, 1, "A", "SIP+D2T", "host.example.com"),
            n(1, 1, "U", "SIP+D2T", "host.example.com"),
            n(1, 1, "", "SIP+D2T", "other.example.com"),
            n(1, 1, "S", "E2U+sip", "_sip._tcp.example.com"),
            n(1, 1, "S", "SIP+D2W", "_sip._ws.example.com"),
            n(1, 1, "S", "SIP+D2T", "."),
            n(1, 1, "S", "SIP+D2T", ""),
            with_regexp,
            n(5, 5, "s", "sip+d2t", "_SIP._TCP.Example.COM."),
        ];
        let got = select_naptr(&recs, Scheme::Sip, &TransportKind::ALL);
        assert_eq!(
            choices(&got),
            vec![(TransportKind::Tcp, "_sip._tcp.example.com")]
        );
    }

    #[test]
    fn duplicates_removed_and_empty_input() {
        let recs = [
            n(1, 1, "S", "SIP+D2T", "_sip._tcp.example.com"),
            n(2, 1, "S", "SIP+D2T", "_sip._tcp.example.com."),
        ];
        assert_eq!(
            select_naptr(&recs, Scheme::Sip, &TransportKind::ALL).len(),
            1
        );
        assert!(select_naptr(&[], Scheme::Sip, &TransportKind::ALL).is_empty());
    }
}
