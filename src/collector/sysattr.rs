//! Small reads shared by the sysfs/procfs collectors added for node_exporter parity: one
//! attribute file, a directory's entry names, integers as the kernel writes them, and a
//! name -> family cache for collectors whose metric names come from the file (netstat,
//! vmstat, sockstat).

use std::collections::HashMap;
use std::path::Path;

use regex_lite::Regex;

use crate::exposition::{is_valid_metric_name, Exposition, FamilyId, Kind};

/// Reads a sysfs attribute into `buf` and returns it without surrounding white space; `None`
/// when it is missing or the driver refuses the read (EINVAL for `speed` on a link that is
/// down, EOPNOTSUPP...): node_exporter skips those attributes too.
pub fn read_attr<'a>(path: &Path, buf: &'a mut Vec<u8>) -> Option<&'a str> {
    crate::roots::read_into(path, buf).ok()?;
    std::str::from_utf8(buf).ok().map(str::trim)
}

/// Reads a file that may legitimately be absent (a module not loaded, IPv6 off): `Ok(false)`
/// when it does not exist, an error naming the file for any other failure.
pub fn read_optional(
    file: &mut crate::roots::KeptFile,
    buf: &mut Vec<u8>,
) -> Result<bool, super::CollectError> {
    match file.read_into(buf) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(super::CollectError(format!(
            "{}: {err}",
            file.path().display()
        ))),
    }
}

/// Names of a directory's entries, sorted; an error when the directory cannot be read.
pub fn dir_names(path: &Path) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(path)?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// An integer as Go's `strconv.ParseInt(text, 0, 64)` reads it (node_exporter's sysfs
/// parser): decimal, `0x` hex (`flags`), `0o`/leading-zero octal, `0b` binary, optional sign.
pub fn parse_int(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = digits.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, &digits[2..]),
        Some("0o") => (8, &digits[2..]),
        Some("0b") => (2, &digits[2..]),
        _ if digits.len() > 1 && digits.starts_with('0') => (8, &digits[1..]),
        _ => (10, digits),
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// Families named after keys read from a file (`node_netstat_<Proto>_<Field>`), registered
/// the first time a key is seen and remembered, so a scrape allocates nothing once the keys
/// are known. Keys the filter rejects are remembered as `None`.
///
/// The kernel writes these files in the same order every time, so besides the map the keys
/// are remembered by position: a scrape that calls `begin` first finds each key where it was
/// last time with one short comparison, and hashes only when the file's layout changed
/// (a module loaded, a new kernel). /proc/net/netstat, snmp and snmp6 hold ~300 keys.
pub struct NamedFamilies {
    prefix: &'static str,
    kind: Kind,
    filter: Option<Regex>,
    ids: HashMap<String, Option<FamilyId>>,
    key: String,
    by_position: Vec<(String, Option<FamilyId>)>,
    position: usize,
}

/// More keys than any kernel file has; a guard against a runaway (fuzzed) input.
const MAX_KEYS: usize = 4096;

impl NamedFamilies {
    pub fn new(prefix: &'static str, kind: Kind, filter: Option<Regex>) -> NamedFamilies {
        NamedFamilies {
            prefix,
            kind,
            filter,
            ids: HashMap::new(),
            key: String::new(),
            by_position: Vec::new(),
            position: 0,
        }
    }

    /// Starts a scrape: keys are expected in the order of the last one.
    pub fn begin(&mut self) {
        self.position = 0;
    }

    /// The family for the key `parts` joined with `_`, registering it with `help(key)`.
    pub fn id(
        &mut self,
        out: &mut Exposition,
        parts: &[&str],
        help: impl FnOnce(&str) -> String,
    ) -> Option<FamilyId> {
        self.key.clear();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                self.key.push('_');
            }
            self.key.push_str(part);
        }
        let position = self.position;
        self.position = self.position.saturating_add(1);
        if let Some((key, id)) = self.by_position.get(position) {
            if *key == self.key {
                return *id;
            }
        }
        let id = match self.ids.get(self.key.as_str()) {
            Some(id) => *id,
            None => {
                let name = format!("{}{}", self.prefix, self.key);
                let wanted = self
                    .filter
                    .as_ref()
                    .is_none_or(|filter| filter.is_match(&self.key));
                let id = (wanted && is_valid_metric_name(&name))
                    .then(|| out.family(&name, &help(&self.key), self.kind, &[]));
                if self.ids.len() < MAX_KEYS {
                    self.ids.insert(self.key.clone(), id);
                }
                id
            }
        };
        if let Some(slot) = self.by_position.get_mut(position) {
            slot.0.clone_from(&self.key);
            slot.1 = id;
        } else if position == self.by_position.len() && position < MAX_KEYS {
            self.by_position.push((self.key.clone(), id));
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_as_go_reads_them() {
        assert_eq!(parse_int("0x1003"), Some(4099));
        assert_eq!(parse_int("1500\n"), Some(1500));
        assert_eq!(parse_int("-1"), Some(-1));
        assert_eq!(parse_int("0"), Some(0));
        assert_eq!(parse_int("010"), Some(8));
        assert_eq!(parse_int("0b101"), Some(5));
        for bad in [
            "",
            "-",
            "0x",
            "12a",
            "--1",
            "0x-1",
            "99999999999999999999",
            "1.5",
        ] {
            assert_eq!(parse_int(bad), None, "{bad}");
        }
    }

    #[test]
    fn named_families_filter_and_remember() {
        let mut out = Exposition::new("n");
        let mut families =
            NamedFamilies::new("node_vmstat_", Kind::Untyped, Regex::new("^pg").ok());
        let help = |key: &str| format!("field {key}.");
        let id = families.id(&mut out, &["pgfault"], help);
        assert!(id.is_some());
        assert_eq!(families.id(&mut out, &["pgfault"], help), id);
        assert_eq!(families.id(&mut out, &["nr_free_pages"], help), None);
        assert_eq!(families.id(&mut out, &["pg-bad name"], help), None);
        assert_eq!(out.lookup("node_vmstat_pgfault"), id);
    }

    #[test]
    fn named_families_by_position_follow_a_changed_layout() {
        let mut out = Exposition::new("n");
        let mut families = NamedFamilies::new("node_netstat_", Kind::Untyped, None);
        let help = |key: &str| format!("field {key}.");
        families.begin();
        let a = families.id(&mut out, &["Tcp", "InSegs"], help);
        let b = families.id(&mut out, &["Tcp", "OutSegs"], help);
        assert_ne!(a, b);
        // Same layout: same ids.
        families.begin();
        assert_eq!(families.id(&mut out, &["Tcp", "InSegs"], help), a);
        assert_eq!(families.id(&mut out, &["Tcp", "OutSegs"], help), b);
        // A key inserted before the others (a module loaded): every key keeps its family.
        families.begin();
        let c = families.id(&mut out, &["Tcp", "ActiveOpens"], help);
        assert_eq!(families.id(&mut out, &["Tcp", "InSegs"], help), a);
        assert_eq!(families.id(&mut out, &["Tcp", "OutSegs"], help), b);
        families.begin();
        assert_eq!(families.id(&mut out, &["Tcp", "ActiveOpens"], help), c);
        assert_eq!(families.id(&mut out, &["Tcp", "InSegs"], help), a);
        assert_eq!(out.lookup("node_netstat_Tcp_ActiveOpens"), c);
    }
}

/// Every parser of the parity collectors on mutated real samples: never a panic, whatever the
/// bytes (a deterministic generator, so a failure repeats).
#[cfg(test)]
mod mutation_tests {
    use super::parse_int;
    use crate::collector::{
        arp, conntrack, filefd, netstat, nfs, nvme, schedstat, selinux, sockstat, softnet,
        udp_queues, vmstat,
    };

    const SAMPLES: &[&[u8]] = &[
        b"Ip: Forwarding DefaultTTL\nIp: 2 64\nTcp: RtoAlgorithm MaxConn\nTcp: 1 -1\n",
        b"Ip6InReceives \t1234\nIcmp6InMsgs 5\n",
        b"pgfault 9343812\noom_kill 0\n",
        b"sockets: used 17\nTCP: inuse 1 orphan 0 tw 7 alloc 1 mem 0\nFRAG: inuse 0 memory 0\n",
        b"IP address HW type Flags HW address Mask Device\n192.168.1.1 0x1 0x2 dc:a6:32:00:00:01 * eth0\n",
        b"entries clashres found\n0000002a 00000000 00000010 00000000 00000003 00000001 00000000 00000000 00000004 00000000 00000002 00000000 00000000 00000000 00000000 00000000 0000000f\n",
        b"570\t0\t2466097\n",
        b"000021af 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000\n",
        b"sl local rem st q\n 1: 00000000:0044 00000000:0000 07 00000000:00000300 00:00000000 00000000 0 0 1 2 0 0\n",
        b"version 15\ncpu0 0 0 0 0 0 0 2503614358795 118843207683 16367543\n",
        b"SELINUX=enforcing\n",
        b"nvme0n1",
        b"0x1003\n",
        b"net 0 0 0 0\nrpc 18 3 18\nproc3 22 0 2 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\nproc4 3 1 2 3\n",
    ];
    const INSERTS: &[&[u8]] = &[
        b":",
        b" ",
        b"\n",
        b"\t",
        b"0x",
        b"-",
        b"6",
        b"99999999999999999999",
        b"\xff",
        b"\xc3\xa9",
        b"cpu",
        b"_",
    ];

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self, below: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % below.max(1) as u64) as usize
        }
    }

    fn mutate(sample: &[u8], rng: &mut XorShift) -> Vec<u8> {
        let mut bytes = sample.to_vec();
        for _ in 0..1 + rng.next(4) {
            let at = rng.next(bytes.len() + 1);
            match rng.next(4) {
                0 => bytes.truncate(at),
                1 if at < bytes.len() => bytes[at] = rng.next(256) as u8,
                2 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => {
                    let insert = INSERTS[rng.next(INSERTS.len())];
                    bytes.splice(at..at, insert.iter().copied());
                }
            }
        }
        bytes
    }

    #[test]
    fn parsers_never_panic_on_mutated_samples() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut counts = Vec::new();
        for round in 0..20_000 {
            let sample = SAMPLES[round % SAMPLES.len()];
            let bytes = mutate(sample, &mut rng);
            let text = String::from_utf8_lossy(&bytes);
            let _ = netstat::parse_pairs(&bytes, |_, _, _| {});
            let _ = netstat::parse_snmp6(&bytes, |_, _, _| {});
            let _ = vmstat::parse(&bytes, |_, _| {});
            let _ = sockstat::parse(&bytes, |_, _, _| {});
            let _ = arp::count_entries(&bytes, &mut counts);
            let _ = conntrack::parse_stat(&bytes);
            let _ = nfs::parse(&bytes);
            let _ = filefd::parse(&bytes);
            for line in text.lines() {
                let _ = softnet::parse_line(line, round);
            }
            let _ = udp_queues::sum_queues(&bytes);
            let _ = schedstat::parse(&bytes, |_, _| {});
            let _ = selinux::config_mode(&text);
            let _ = nvme::namespace_id(&text);
            let _ = parse_int(&text);
        }
    }
}
