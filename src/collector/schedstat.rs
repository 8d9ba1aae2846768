//! node_schedstat_{running,waiting}_seconds_total and node_schedstat_timeslices_total per CPU
//! from /proc/schedstat. A kernel without CONFIG_SCHEDSTATS has no such file: the collector is
//! then off, said once at start-up (node_exporter reports "no data" every scrape).

use crate::roots::KeptFile;

use super::{read_kept, CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    let family = |out: &mut Exposition, name: &str, help: &str| {
        out.family(name, help, Kind::Counter, &["cpu"])
    };
    let path = ctx.roots.proc("schedstat");
    if !path.exists() {
        return Setup::Unavailable(format!(
            "no {} (kernel without CONFIG_SCHEDSTATS)",
            path.display()
        ));
    }
    Setup::Ready(Box::new(SchedstatCollector {
        path: KeptFile::new(path),
        buf: Vec::with_capacity(2048),
        families: [
            family(
                out,
                "node_schedstat_running_seconds_total",
                "Number of seconds CPU spent running a process.",
            ),
            family(
                out,
                "node_schedstat_waiting_seconds_total",
                "Number of seconds spent by processing waiting for this CPU.",
            ),
            family(
                out,
                "node_schedstat_timeslices_total",
                "Number of timeslices executed by CPU.",
            ),
        ],
    }))
}

struct SchedstatCollector {
    path: KeptFile,
    buf: Vec<u8>,
    families: [FamilyId; 3],
}

/// The `cpuN` lines: (N, [running seconds, waiting seconds, timeslices]) — the last three of
/// the nine numbers (Documentation/scheduler/sched-stats.rst, versions 15 to 17).
pub fn parse(bytes: &[u8], mut each: impl FnMut(&str, [f64; 3])) -> Result<(), CollectError> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| CollectError("schedstat: not UTF-8".into()))?;
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(cpu) = fields.next().and_then(|f| f.strip_prefix("cpu")) else {
            continue; // version, timestamp, domain lines
        };
        let bad = || CollectError(format!("schedstat: invalid line {line:?}"));
        if cpu.is_empty() || !cpu.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let mut numbers = [0u64; 9];
        for number in &mut numbers {
            *number = fields.next().and_then(|f| f.parse().ok()).ok_or_else(bad)?;
        }
        each(
            cpu,
            [
                numbers[6] as f64 / 1e9,
                numbers[7] as f64 / 1e9,
                numbers[8] as f64,
            ],
        );
    }
    Ok(())
}

impl Collector for SchedstatCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        read_kept(&mut self.path, &mut self.buf)?;
        let families = &self.families;
        parse(&self.buf, |cpu, values| {
            for (id, value) in families.iter().zip(values) {
                out.sample(*id, &[cpu], value);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_lines_only() {
        let text = b"version 15
timestamp 4295091264
cpu0 0 0 0 0 0 0 2503614358795 118843207683 16367543
domain0 3 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
cpu1 0 0 0 0 0 0 2356357216574 96009233452 15105934
";
        let mut all = Vec::new();
        parse(text, |cpu, v| all.push((cpu.to_string(), v))).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].0, "0");
        assert_eq!(all[0].1, [2503.614358795, 118.843207683, 16367543.0]);
        for bad in [
            &b"cpu0 1 2 3\n"[..],
            b"cpux 0 0 0 0 0 0 1 2 3\n",
            b"cpu0 0 0 0 0 0 0 1 2 x\n",
        ] {
            assert!(parse(bad, |_, _| {}).is_err(), "{bad:?}");
        }
    }
}
