//! node_boot_time_seconds, node_context_switches_total, node_forks_total, node_intr_total,
//! node_procs_running and node_procs_blocked from /proc/stat, as node_exporter's `stat`
//! collector exports them. (The per-CPU lines are the `cpu` collector's.)

use super::{read_kept, CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::roots::KeptFile;

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    Setup::Ready(Box::new(StatCollector {
        file: KeptFile::new(ctx.roots.proc("stat")),
        buf: Vec::with_capacity(4096),
        boot_time: out.family(
            "node_boot_time_seconds",
            "Node boot time, in unixtime.",
            Kind::Gauge,
            &[],
        ),
        context_switches: out.family(
            "node_context_switches_total",
            "Total number of context switches.",
            Kind::Counter,
            &[],
        ),
        forks: out.family(
            "node_forks_total",
            "Total number of forks.",
            Kind::Counter,
            &[],
        ),
        interrupts: out.family(
            "node_intr_total",
            "Total number of interrupts serviced.",
            Kind::Counter,
            &[],
        ),
        procs_running: out.family(
            "node_procs_running",
            "Number of processes in runnable state.",
            Kind::Gauge,
            &[],
        ),
        procs_blocked: out.family(
            "node_procs_blocked",
            "Number of processes blocked waiting for I/O to complete.",
            Kind::Gauge,
            &[],
        ),
    }))
}

struct StatCollector {
    file: KeptFile,
    buf: Vec<u8>,
    boot_time: FamilyId,
    context_switches: FamilyId,
    forks: FamilyId,
    interrupts: FamilyId,
    procs_running: FamilyId,
    procs_blocked: FamilyId,
}

/// The system-wide lines of /proc/stat. A line the kernel did not print stays `None`.
#[derive(Debug, Default, PartialEq)]
pub struct SystemStats {
    pub boot_time: Option<u64>,
    pub context_switches: Option<u64>,
    pub forks: Option<u64>,
    /// First number of the `intr` line: all interrupts since boot.
    pub interrupts: Option<u64>,
    pub procs_running: Option<u64>,
    pub procs_blocked: Option<u64>,
}

/// Parses the `btime`, `ctxt`, `processes`, `intr`, `procs_running` and `procs_blocked` lines.
/// A known line with a value that is not an unsigned integer is an error; other lines are
/// ignored. No line found at all is an error too (not /proc/stat).
pub fn parse(bytes: &[u8]) -> Result<SystemStats, CollectError> {
    let text = std::str::from_utf8(bytes).map_err(|_| CollectError("stat: not UTF-8".into()))?;
    let mut stats = SystemStats::default();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let slot = match fields.next() {
            Some("btime") => &mut stats.boot_time,
            Some("ctxt") => &mut stats.context_switches,
            Some("processes") => &mut stats.forks,
            Some("intr") => &mut stats.interrupts,
            Some("procs_running") => &mut stats.procs_running,
            Some("procs_blocked") => &mut stats.procs_blocked,
            _ => continue,
        };
        let value = fields
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| CollectError(format!("stat: invalid line {line:?}")))?;
        *slot = Some(value);
    }
    if stats == SystemStats::default() {
        return Err(CollectError(
            "stat: none of btime, ctxt, processes, intr, procs_running, procs_blocked found".into(),
        ));
    }
    Ok(stats)
}

impl Collector for StatCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        read_kept(&mut self.file, &mut self.buf)?;
        let stats = parse(&self.buf)?;
        for (id, value) in [
            (self.boot_time, stats.boot_time),
            (self.context_switches, stats.context_switches),
            (self.forks, stats.forks),
            (self.interrupts, stats.interrupts),
            (self.procs_running, stats.procs_running),
            (self.procs_blocked, stats.procs_blocked),
        ] {
            if let Some(value) = value {
                out.sample(id, &[], value as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's /proc/stat (x86_64 VM, kernel 6.18), copied verbatim.
    const VM: &[u8] = include_bytes!("../../tests/fixtures/x86-vm/proc/stat");
    /// Raspberry Pi 4 shaped /proc/stat (see tests/fixtures/pi4/SOURCE).
    const PI4: &[u8] = include_bytes!("../../tests/fixtures/pi4/proc/stat");

    #[test]
    fn parses_real_proc_stat() {
        let stats = parse(VM).unwrap();
        assert_eq!(stats.boot_time, Some(1795247982));
        assert_eq!(stats.context_switches, Some(421057));
        assert_eq!(stats.forks, Some(10784));
        assert_eq!(stats.interrupts, Some(225337));
        assert_eq!(stats.procs_running, Some(1));
        assert_eq!(stats.procs_blocked, Some(0));
    }

    #[test]
    fn parses_pi4_proc_stat() {
        let stats = parse(PI4).unwrap();
        assert_eq!(
            stats,
            SystemStats {
                boot_time: Some(1718193262),
                context_switches: Some(126433781),
                forks: Some(181374),
                interrupts: Some(57306142),
                procs_running: Some(2),
                procs_blocked: Some(0),
            }
        );
    }

    #[test]
    fn missing_lines_are_none_and_huge_values_parse() {
        let stats = parse(b"ctxt 18446744073709551615\n").unwrap();
        assert_eq!(stats.context_switches, Some(u64::MAX));
        assert_eq!(stats.boot_time, None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"\n",
            b"cpu 1 2 3 4\n",
            b"ctxt\n",
            b"ctxt abc\n",
            b"btime -5\n",
            b"ctxt 18446744073709551616\n",
            b"\xff\xfe",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
