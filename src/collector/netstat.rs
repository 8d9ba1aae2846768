//! node_netstat_<Protocol>_<Field> from /proc/net/netstat, /proc/net/snmp and /proc/net/snmp6,
//! untyped, filtered by node_exporter's default field regex (`--collector.netstat.fields`).
//!
//! The field names come from the kernel (they differ between versions), so families are
//! registered the first time a field is seen and looked up by name afterwards.

use crate::roots::{read_optional, KeptFile};

use serde::{Deserialize, Serialize};

use super::named_families::NamedFamilies;
use super::{read_kept, CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, Kind};
use crate::flag::{text_flag, Flag};

/// node_exporter 1.12's default for `--collector.netstat.fields`.
pub const DEFAULT_FIELDS: &str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";

/// The netstat collector's settings (`netstat: (fields: "...")`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetstatConfig {
    /// Regex of `<Protocol>_<Field>` names to export.
    pub fields: String,
}

impl Default for NetstatConfig {
    fn default() -> Self {
        NetstatConfig {
            fields: DEFAULT_FIELDS.to_string(),
        }
    }
}

impl super::CollectorSettings for NetstatConfig {
    /// `--collector.*` flags of these settings (node_exporter's names).
    const FLAGS: &'static [Flag<Self>] = &[
        text_flag!(
            "--collector.netstat.fields",
            "REGEX",
            "Regexp of fields to return for netstat collector. Config: netstat.fields.",
            fields
        ),
    ];

    fn validate(&self) -> Result<(), String> {
        super::device_filter::regex("netstat.fields", &self.fields).map(|_| ())
    }
}

pub fn build(ctx: &Context<NetstatConfig>, _out: &mut Exposition) -> Setup {
    let filter = match super::device_filter::regex("netstat.fields", &ctx.settings.fields) {
        Ok(filter) => filter,
        Err(err) => return Setup::Unavailable(err),
    };
    Setup::Ready(Box::new(NetstatCollector {
        netstat: KeptFile::new(ctx.roots.proc("net/netstat")),
        snmp: KeptFile::new(ctx.roots.proc("net/snmp")),
        snmp6: KeptFile::new(ctx.roots.proc("net/snmp6")),
        buf: Vec::with_capacity(8192),
        families: NamedFamilies::new("node_netstat_", Kind::Untyped, Some(filter)),
    }))
}

struct NetstatCollector {
    netstat: KeptFile,
    snmp: KeptFile,
    snmp6: KeptFile,
    buf: Vec<u8>,
    families: NamedFamilies,
}

fn help(key: &str) -> String {
    // node_exporter: "Statistic " + protocol + name, without the underscore.
    format!("Statistic {}.", key.replacen('_', "", 1))
}

/// Parses /proc/net/netstat or /proc/net/snmp: pairs of lines, `Proto: Name1 Name2...` then
/// `Proto: value1 value2...`; calls `each(protocol, name, value)`.
pub fn parse_pairs(
    bytes: &[u8],
    mut each: impl FnMut(&str, &str, f64),
) -> Result<(), CollectError> {
    let text = std::str::from_utf8(bytes).map_err(|_| CollectError("not UTF-8".into()))?;
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    while let Some(names) = lines.next() {
        let values = lines
            .next()
            .ok_or_else(|| CollectError(format!("no values after {names:?}")))?;
        let mut names = names.split_ascii_whitespace();
        let mut values = values.split_ascii_whitespace();
        let (Some(protocol), Some(protocol_again)) = (names.next(), values.next()) else {
            return Err(CollectError("empty line".into()));
        };
        let protocol = protocol
            .strip_suffix(':')
            .filter(|p| Some(*p) == protocol_again.strip_suffix(':'))
            .ok_or_else(|| {
                CollectError(format!(
                    "mismatched lines {protocol:?} / {protocol_again:?}"
                ))
            })?;
        loop {
            match (names.next(), values.next()) {
                (Some(name), Some(value)) => {
                    let value = value.parse::<f64>().map_err(|_| {
                        CollectError(format!("invalid value {value:?} of {protocol}{name}"))
                    })?;
                    each(protocol, name, value);
                }
                (None, None) => break,
                _ => return Err(CollectError(format!("field count mismatch for {protocol}"))),
            }
        }
    }
    Ok(())
}

/// Parses /proc/net/snmp6: `Ip6InReceives  1234` lines; the protocol ends at the first '6'.
pub fn parse_snmp6(
    bytes: &[u8],
    mut each: impl FnMut(&str, &str, f64),
) -> Result<(), CollectError> {
    let text = std::str::from_utf8(bytes).map_err(|_| CollectError("not UTF-8".into()))?;
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(key), Some(value)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some(six) = key.find('6') else {
            continue;
        };
        let value = value
            .parse::<f64>()
            .map_err(|_| CollectError(format!("invalid value {value:?} of {key}")))?;
        each(&key[..=six], &key[six + 1..], value);
    }
    Ok(())
}

impl Collector for NetstatCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        self.families.begin();
        let families = &mut self.families;
        let mut emit = |protocol: &str, name: &str, value: f64| {
            if let Some(id) = families.id(out, &[protocol, name], help) {
                out.sample(id, &[], value);
            }
        };
        for path in [&mut self.netstat, &mut self.snmp] {
            read_kept(path, &mut self.buf)?;
            parse_pairs(&self.buf, &mut emit)
                .map_err(|err| CollectError(format!("{}: {err}", path.path().display())))?;
        }
        // Absent when IPv6 is disabled.
        if read_optional(&mut self.snmp6, &mut self.buf)? {
            parse_snmp6(&self.buf, &mut emit)
                .map_err(|err| CollectError(format!("{}: {err}", self.snmp6.path().display())))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_pairs(bytes: &[u8]) -> Result<Vec<(String, f64)>, CollectError> {
        let mut all = Vec::new();
        parse_pairs(bytes, |p, n, v| all.push((format!("{p}_{n}"), v)))?;
        Ok(all)
    }

    fn all_snmp6(bytes: &[u8]) -> Result<Vec<(String, f64)>, CollectError> {
        let mut all = Vec::new();
        parse_snmp6(bytes, |p, n, v| all.push((format!("{p}_{n}"), v)))?;
        Ok(all)
    }

    #[test]
    fn snmp_pairs_with_negative_max_conn() {
        let text = b"Ip: Forwarding DefaultTTL\nIp: 2 64\nTcp: RtoAlgorithm MaxConn CurrEstab\nTcp: 1 -1 3\n";
        let all = all_pairs(text).unwrap();
        assert_eq!(
            all,
            [
                ("Ip_Forwarding".to_string(), 2.0),
                ("Ip_DefaultTTL".to_string(), 64.0),
                ("Tcp_RtoAlgorithm".to_string(), 1.0),
                ("Tcp_MaxConn".to_string(), -1.0),
                ("Tcp_CurrEstab".to_string(), 3.0)
            ]
        );
    }

    #[test]
    fn snmp6_protocol_ends_at_the_six() {
        let all = all_snmp6(
            b"Ip6InReceives                   \t1234\nIcmp6InMsgs 5\nUdpLite6InErrors 0\nbogus\n",
        )
        .unwrap();
        assert_eq!(all[0], ("Ip6_InReceives".to_string(), 1234.0));
        assert_eq!(all[1], ("Icmp6_InMsgs".to_string(), 5.0));
        assert_eq!(all[2], ("UdpLite6_InErrors".to_string(), 0.0));
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [
            &b"Ip: Forwarding\n"[..],
            b"Ip: Forwarding DefaultTTL\nIp: 2\n",
            b"Ip: Forwarding\nTcp: 2\n",
            b"Ip: Forwarding\nIp: x\n",
            b"Ip Forwarding\nIp 1\n",
            b"\xff\xfe",
        ] {
            assert!(all_pairs(bad).is_err(), "{bad:?}");
        }
        assert!(all_snmp6(b"Ip6InReceives x\n").is_err());
    }

    #[test]
    fn default_filter_is_node_exporters() {
        let filter = regex_lite::Regex::new(DEFAULT_FIELDS).unwrap();
        for wanted in [
            "Tcp_CurrEstab",
            "TcpExt_ListenDrops",
            "IpExt_InOctets",
            "Udp_InErrors",
            "Icmp6_InMsgs",
            "Ip_Forwarding",
            "UdpLite_InErrors",
        ] {
            assert!(filter.is_match(wanted), "{wanted}");
        }
        for unwanted in [
            "Tcp_MaxConn",
            "Ip_DefaultTTL",
            "TcpExt_TCPHPHits",
            "Ip6_InReceives",
        ] {
            assert!(!filter.is_match(unwanted), "{unwanted}");
        }
        assert_eq!(help("TcpExt_ListenDrops"), "Statistic TcpExtListenDrops.");
    }
}
