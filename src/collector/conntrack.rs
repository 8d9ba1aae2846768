//! node_nf_conntrack_entries, _entries_limit and the node_nf_conntrack_stat_* sums over CPUs
//! from /proc/sys/net/netfilter and /proc/net/stat/nf_conntrack. Without the nf_conntrack
//! module loaded the files are absent and the collector exports nothing (node_exporter: "no
//! data"), without failing.

use crate::roots::{parse_u64, read_optional, KeptFile};

use super::{CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};

/// Column of /proc/net/stat/nf_conntrack, family suffix and help (node_exporter's names).
/// Columns by position, as procfs reads them: kernels renamed some headers (searched ->
/// clashres, delete_list -> chainlength) but kept the order.
const STATS: [(usize, &str, &str); 8] = [
    (2, "found", "Number of searched entries which were successful."),
    (4, "invalid", "Number of packets seen which can not be tracked."),
    (5, "ignore", "Number of packets seen which are already connected to a conntrack entry."),
    (8, "insert", "Number of entries inserted into the list."),
    (9, "insert_failed", "Number of entries for which list insertion was attempted but failed."),
    (10, "drop", "Number of packets dropped due to conntrack failure."),
    (11, "early_drop", "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached."),
    (16, "search_restart", "Number of conntrack table lookups which had to be restarted due to hashtable resizes."),
];

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    Setup::Ready(Box::new(ConntrackCollector {
        count_path: KeptFile::new(ctx.roots.proc("sys/net/netfilter/nf_conntrack_count")),
        max_path: KeptFile::new(ctx.roots.proc("sys/net/netfilter/nf_conntrack_max")),
        stat_path: KeptFile::new(ctx.roots.proc("net/stat/nf_conntrack")),
        buf: Vec::with_capacity(1024),
        entries: out.family(
            "node_nf_conntrack_entries",
            "Number of currently allocated flow entries for connection tracking.",
            Kind::Gauge,
            &[],
        ),
        limit: out.family(
            "node_nf_conntrack_entries_limit",
            "Maximum size of connection tracking table.",
            Kind::Gauge,
            &[],
        ),
        stats: STATS.map(|(_, name, help)| {
            out.family(
                &format!("node_nf_conntrack_stat_{name}"),
                help,
                Kind::Gauge,
                &[],
            )
        }),
    }))
}

struct ConntrackCollector {
    count_path: KeptFile,
    max_path: KeptFile,
    stat_path: KeptFile,
    buf: Vec<u8>,
    entries: FamilyId,
    limit: FamilyId,
    stats: [FamilyId; 8],
}

/// Sums the STATS columns of /proc/net/stat/nf_conntrack over its per-CPU lines (hex).
/// Lines have 16 columns before Linux 2.6.35 (no search_restart, counted as 0) or 17.
pub fn parse_stat(bytes: &[u8]) -> Result<[u64; 8], CollectError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| CollectError("nf_conntrack stat: not UTF-8".into()))?;
    let mut sums = [0u64; 8];
    let mut columns = [0u64; 17];
    for line in text.lines().skip(1).filter(|line| !line.trim().is_empty()) {
        let bad = || CollectError(format!("nf_conntrack stat: invalid line {line:?}"));
        let mut count = 0;
        for field in line.split_ascii_whitespace() {
            let slot = columns.get_mut(count).ok_or_else(bad)?;
            *slot = u64::from_str_radix(field, 16).map_err(|_| bad())?;
            count += 1;
        }
        if count < 16 {
            return Err(bad());
        }
        if count == 16 {
            columns[16] = 0;
        }
        for (sum, (column, _, _)) in sums.iter_mut().zip(STATS) {
            *sum = sum.wrapping_add(columns[column]);
        }
    }
    Ok(sums)
}

impl ConntrackCollector {
    /// A number file; `None` when nf_conntrack is not loaded.
    fn read_number(&mut self, counter: bool) -> Result<Option<f64>, CollectError> {
        let path = if counter {
            &mut self.count_path
        } else {
            &mut self.max_path
        };
        if !read_optional(path, &mut self.buf)? {
            return Ok(None);
        }
        parse_u64(&self.buf)
            .map(|value| Some(value as f64))
            .ok_or_else(|| CollectError(format!("{}: not a number", path.path().display())))
    }
}

impl Collector for ConntrackCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        let (Some(entries), Some(limit)) = (self.read_number(true)?, self.read_number(false)?)
        else {
            return Ok(()); // nf_conntrack not loaded
        };
        out.sample(self.entries, &[], entries);
        out.sample(self.limit, &[], limit);
        if !read_optional(&mut self.stat_path, &mut self.buf)? {
            return Ok(());
        }
        let sums = parse_stat(&self.buf)?;
        for (id, value) in self.stats.iter().zip(sums) {
            out.sample(*id, &[], value as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_cpus_by_position() {
        let text = b"entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart
0000002a  00000000 00000010 00000000 00000003 00000001 00000000 00000000 00000004 00000000 00000002 00000000 00000000  00000000 00000000 00000000 0000000f
0000002a  00000000 00000001 00000000 00000001 00000001 00000000 00000000 00000001 00000001 00000000 00000001 00000000  00000000 00000000 00000000 00000001
";
        assert_eq!(parse_stat(text).unwrap(), [17, 4, 2, 5, 1, 2, 1, 16]);
        let old = b"header\n1 2 3 4 5 6 7 8 9 a b c d e f 10\n";
        assert_eq!(parse_stat(old).unwrap()[7], 0);
        for bad in [
            &b"h\n1 2 3\n"[..],
            b"h\n1 2 3 4 5 6 7 8 9 a b c d e f 10 11 12\n",
            b"h\nzz 2 3 4 5 6 7 8 9 a b c d e f 10\n",
        ] {
            assert!(parse_stat(bad).is_err());
        }
    }
}
