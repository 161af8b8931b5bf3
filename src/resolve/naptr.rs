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

    /// A NAPTR record from its master-file presentation (RFC 3403 §4.1): `order preference
    /// "flags" "services" "regexp" replacement`; a quoted field may be empty.
    fn naptr(text: &str) -> NaptrRecord {
        let mut fields = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            let (field, after) = match rest.strip_prefix('"') {
                Some(quoted) => {
                    let end = quoted.find('"').unwrap();
                    (&quoted[..end], &quoted[end + 1..])
                }
                None => rest.split_at(rest.find(' ').unwrap_or(rest.len())),
            };
            fields.push(field);
            rest = after.trim_start();
        }
        let [order, preference, flags, services, regexp, replacement] = fields[..] else {
            panic!("not a NAPTR record: {text:?}");
        };
        NaptrRecord {
            order: order.parse().unwrap(),
            preference: preference.parse().unwrap(),
            flags: flags.into(),
            services: services.into(),
            regexp: regexp.into(),
            replacement: replacement.into(),
        }
    }

    /// Asserts what `select_naptr` keeps of `records`, in order: (transport, SRV name).
    fn selects(
        records: &[NaptrRecord],
        scheme: Scheme,
        supported: &[TransportKind],
        want: &[(TransportKind, &str)],
    ) {
        let got = select_naptr(records, scheme, supported);
        let got: Vec<(TransportKind, &str)> = got
            .iter()
            .map(|c| (c.transport, c.srv_name.as_str()))
            .collect();
        assert_eq!(got, want);
    }

    use TransportKind::{Tcp, Tls, TlsSctp, Udp};

    /// The selection table: one test per entry `name(scheme, supported) [records] => [kept]`,
    /// records written as in a zone file.
    macro_rules! selection {
        ($($(#[$attr:meta])* $name:ident($scheme:expr, $supported:expr)
            [$($record:expr),+ $(,)?] => [$($kept:expr),+ $(,)?])+) => {
            $(
                $(#[$attr])*
                #[test]
                fn $name() {
                    selects(&[$(naptr($record)),+], $scheme, &$supported, &[$($kept),+]);
                }
            )+
        };
    }

    selection! {
        /// RFC 3263 §4.1 example (order 50/90/100) plus a preference tie-break.
        order_then_preference(Scheme::Sip, TransportKind::ALL) [
            r#"100 50 "s" "SIP+D2U" "" _sip._udp.example.com."#,
            r#"90 50 "s" "SIP+D2T" "" _sip._tcp.example.com."#,
            r#"50 60 "s" "SIPS+D2S" "" _sips._sctp.example.com."#,
            r#"50 50 "s" "SIPS+D2T" "" _sips._tcp.example.com."#,
        ] => [
            (Tls, "_sips._tcp.example.com"),
            (TlsSctp, "_sips._sctp.example.com"),
            (Tcp, "_sip._tcp.example.com"),
            (Udp, "_sip._udp.example.com"),
        ]
        sips_discards_non_sips_services(Scheme::Sips, TransportKind::ALL) [
            r#"10 10 "S" "SIP+D2U" "" _sip._udp.example.com"#,
            r#"10 20 "S" "SIP+D2T" "" _sip._tcp.example.com"#,
            r#"20 10 "S" "SIPS+D2T" "" _sips._tcp.example.com"#,
            r#"30 10 "S" "SIP+D2S" "" _sip._sctp.example.com"#,
            r#"40 10 "S" "SIPS+D2S" "" _sips._sctp.example.com"#,
        ] => [(Tls, "_sips._tcp.example.com"), (TlsSctp, "_sips._sctp.example.com")]
        unsupported_transports_discarded(Scheme::Sip, [Udp, Tcp]) [
            r#"10 10 "S" "SIP+D2S" "" _sip._sctp.example.com"#,
            r#"20 10 "S" "SIP+D2U" "" _sip._udp.example.com"#,
        ] => [(Udp, "_sip._udp.example.com")]
        /// Only flag S, an empty regexp, a SIP service and a real replacement are usable.
        only_s_flag_empty_regexp_and_sip_services(Scheme::Sip, TransportKind::ALL) [
            r#"1 1 "A" "SIP+D2T" "" host.example.com"#,
            r#"1 1 "U" "SIP+D2T" "" host.example.com"#,
            r#"1 1 "" "SIP+D2T" "" other.example.com"#,
            r#"1 1 "S" "E2U+sip" "" _sip._tcp.example.com"#,
            r#"1 1 "S" "SIP+D2W" "" _sip._ws.example.com"#,
            r#"1 1 "S" "SIP+D2T" "" ."#,
            r#"1 1 "S" "SIP+D2T" "" """#,
            r#"1 1 "S" "SIP+D2T" "!^.*$!sip:info@example.com!" _sip._tcp.example.com"#,
            r#"5 5 "s" "sip+d2t" "" _SIP._TCP.Example.COM."#,
        ] => [(Tcp, "_sip._tcp.example.com")]
    }

    #[test]
    fn duplicates_removed_and_empty_input() {
        let recs = [
            r#"1 1 "S" "SIP+D2T" "" _sip._tcp.example.com"#,
            r#"2 1 "S" "SIP+D2T" "" _sip._tcp.example.com."#,
        ]
        .map(naptr);
        assert_eq!(
            select_naptr(&recs, Scheme::Sip, &TransportKind::ALL).len(),
            1
        );
        assert!(select_naptr(&[], Scheme::Sip, &TransportKind::ALL).is_empty());
    }
}
