//! node_cpu_seconds_total{cpu,mode} and node_cpu_guest_seconds_total{cpu,mode} from the per-CPU
//! lines of /proc/stat, and node_cpu_isolated{cpu} from /sys/devices/system/cpu/isolated, as
//! node_exporter's `cpu` collector exports them by default (node_cpu_info and the x86 thermal
//! throttle counters are not: the first is off by default there, the second does not exist on a Pi).
//!
//! Own parser rather than procfs-core's `KernelStats`: that one numbers CPUs by position (wrong
//! as soon as a CPU is offline), converts to whole milliseconds, and allocates a String per line.

use super::{read_kept, CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::roots::KeptFile;

/// The kernel's USER_HZ: /proc/stat counts in 1/100 s on every Linux architecture
/// (node_exporter hard-codes the same).
const USER_HZ: f64 = 100.0;

/// node_exporter's modes, in /proc/stat column order; guest and guest_nice follow them.
const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];
const GUEST: usize = 8;
const GUEST_NICE: usize = 9;
const IDLE: usize = 3;
const COLUMNS: usize = 10;

/// An idle counter that goes back more than this means the CPU was unplugged and came back:
/// node_exporter then starts that CPU afresh instead of holding every mode at its old value.
const JUMP_BACK_SECONDS: f64 = 3.0;

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    let isolated_path = ctx.roots.sys("devices/system/cpu/isolated");
    let isolated = match crate::roots::read(&isolated_path) {
        Ok(bytes) => match parse_cpu_list(&bytes) {
            Ok(cpus) => cpus.iter().map(u32::to_string).collect(),
            Err(err) => {
                log::warn!("cpu: {}: {err}", isolated_path.display());
                Vec::new()
            }
        },
        Err(_) => Vec::new(),
    };
    Setup::Ready(Box::new(CpuCollector {
        file: KeptFile::new(ctx.roots.proc("stat")),
        buf: Vec::with_capacity(4096),
        parsed: Vec::new(),
        cpus: Vec::new(),
        isolated,
        seconds: out.family(
            "node_cpu_seconds_total",
            "Seconds the CPUs spent in each mode.",
            Kind::Counter,
            &["cpu", "mode"],
        ),
        guest: out.family(
            "node_cpu_guest_seconds_total",
            "Seconds the CPUs spent in guests (VMs) for each mode.",
            Kind::Counter,
            &["cpu", "mode"],
        ),
        isolated_family: out.family(
            "node_cpu_isolated",
            "Whether each core is isolated, information from /sys/devices/system/cpu/isolated.",
            Kind::Gauge,
            &["cpu"],
        ),
    }))
}

struct CpuCollector {
    file: KeptFile,
    buf: Vec<u8>,
    /// The lines of the current read, reused across scrapes.
    parsed: Vec<CpuTicks>,
    /// Every CPU seen so far, sorted by number, with its label and last exported values.
    cpus: Vec<CpuState>,
    /// Labels of the isolated CPUs, read once as node_exporter does.
    isolated: Vec<String>,
    seconds: FamilyId,
    guest: FamilyId,
    isolated_family: FamilyId,
}

struct CpuState {
    number: u32,
    label: String,
    seconds: [f64; COLUMNS],
    present: bool,
}

/// One `cpuN` line of /proc/stat, in ticks: user nice system idle iowait irq softirq steal
/// guest guest_nice (columns an old kernel does not print are 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuTicks {
    pub cpu: u32,
    pub ticks: [u64; COLUMNS],
}

/// Parses the `cpuN` lines of /proc/stat into `out` (cleared first). The `cpu` total line
/// and the other lines are skipped. A cpu line needs at least user, nice, system and idle.
pub fn parse_cpu_lines(bytes: &[u8], out: &mut Vec<CpuTicks>) -> Result<(), CollectError> {
    out.clear();
    let text = std::str::from_utf8(bytes).map_err(|_| CollectError("stat: not UTF-8".into()))?;
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(number) = fields.next().and_then(|f| f.strip_prefix("cpu")) else {
            continue;
        };
        if number.is_empty() {
            continue; // the all-CPU total
        }
        let bad = || CollectError(format!("stat: invalid cpu line {line:?}"));
        let cpu: u32 = number.parse().map_err(|_| bad())?;
        let mut ticks = [0u64; COLUMNS];
        let mut count = 0;
        for (slot, field) in ticks.iter_mut().zip(&mut fields) {
            *slot = field.parse().map_err(|_| bad())?;
            count += 1;
        }
        if count < 4 {
            return Err(bad());
        }
        out.push(CpuTicks { cpu, ticks });
    }
    if out.is_empty() {
        return Err(CollectError("stat: no cpuN lines".into()));
    }
    Ok(())
}

/// Most CPUs a list may name: Linux's largest NR_CPUS. More is garbage, not a reason to
/// allocate (the fuzz harness found "0-9999,0-9999,..." growing without bound).
pub const MAX_CPUS: usize = 8192;

/// Parses a kernel CPU list ("0-2,5\n", "" for none), as in /sys/devices/system/cpu/isolated.
/// At most `MAX_CPUS` entries.
pub fn parse_cpu_list(bytes: &[u8]) -> Result<Vec<u32>, CollectError> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| CollectError("cpu list: not UTF-8".into()))?;
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let bad = || CollectError(format!("invalid cpu list {:?}", text.trim()));
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
            None => {
                let n: u32 = part.parse().map_err(|_| bad())?;
                (n, n)
            }
        };
        // More CPUs than any real machine is garbage, not a reason to allocate gigabytes.
        if last < first || (last - first) as usize >= MAX_CPUS - cpus.len().min(MAX_CPUS) {
            return Err(bad());
        }
        cpus.extend(first..=last);
    }
    Ok(cpus)
}

/// Whether a kernel CPU list ("1-3,6\n") contains `cpu`, without allocating; `None` when the
/// list is malformed.
pub fn cpu_list_contains(bytes: &[u8], cpu: u32) -> Option<bool> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut found = false;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (first, last): (u32, u32) = match part.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let n = part.parse().ok()?;
                (n, n)
            }
        };
        found |= (first..=last).contains(&cpu);
    }
    Some(found)
}

impl CpuState {
    fn new(number: u32) -> CpuState {
        CpuState {
            number,
            label: number.to_string(),
            seconds: [0.0; COLUMNS],
            present: false,
        }
    }

    /// node_exporter's rule: counters never go back, except all of them together after an
    /// idle jump back of more than JUMP_BACK_SECONDS (hotplug).
    fn update(&mut self, ticks: &[u64; COLUMNS]) {
        let mut new = [0.0; COLUMNS];
        for (seconds, ticks) in new.iter_mut().zip(ticks) {
            *seconds = *ticks as f64 / USER_HZ;
        }
        if self.seconds[IDLE] - new[IDLE] >= JUMP_BACK_SECONDS {
            log::debug!(
                "cpu{}: idle counter jumped back from {} to {}, resetting",
                self.number,
                self.seconds[IDLE],
                new[IDLE]
            );
            self.seconds = [0.0; COLUMNS];
        }
        for (old, new) in self.seconds.iter_mut().zip(new) {
            if new >= *old {
                *old = new;
            }
        }
    }
}

impl Collector for CpuCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        read_kept(&mut self.file, &mut self.buf)?;
        parse_cpu_lines(&self.buf, &mut self.parsed)?;
        for state in &mut self.cpus {
            state.present = false;
        }
        for line in &self.parsed {
            let index = match self.cpus.binary_search_by_key(&line.cpu, |s| s.number) {
                Ok(index) => index,
                Err(index) => {
                    self.cpus.insert(index, CpuState::new(line.cpu));
                    index
                }
            };
            let state = &mut self.cpus[index];
            state.update(&line.ticks);
            state.present = true;
        }
        for state in self.cpus.iter().filter(|s| s.present) {
            for (mode, value) in MODES.iter().zip(&state.seconds) {
                out.sample(self.seconds, &[&state.label, mode], *value);
            }
            out.sample(self.guest, &[&state.label, "user"], state.seconds[GUEST]);
            out.sample(
                self.guest,
                &[&state.label, "nice"],
                state.seconds[GUEST_NICE],
            );
        }
        for label in &self.isolated {
            out.sample(self.isolated_family, &[label], 1.0);
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
    fn parses_real_cpu_lines() {
        let mut cpus = Vec::new();
        parse_cpu_lines(VM, &mut cpus).unwrap();
        assert_eq!(
            cpus,
            vec![
                CpuTicks {
                    cpu: 0,
                    ticks: [2140, 0, 1582, 52735, 48, 0, 19, 3, 0, 0]
                },
                CpuTicks {
                    cpu: 1,
                    ticks: [2755, 0, 2090, 51164, 391, 0, 29, 5, 0, 0]
                },
            ]
        );
        parse_cpu_lines(PI4, &mut cpus).unwrap();
        assert_eq!(cpus.len(), 4);
        assert_eq!(
            cpus[3].ticks,
            [564192, 311, 295628, 27080208, 12128, 0, 2187, 0, 0, 0]
        );
    }

    #[test]
    fn old_kernels_short_lines_and_offline_cpus() {
        let mut cpus = Vec::new();
        // 2.6-era line: no steal/guest columns; cpu1 offline (missing), cpu2 present.
        parse_cpu_lines(b"cpu 1 2 3 4\ncpu0 1 2 3 4 5\ncpu2 7 8 9 10\n", &mut cpus).unwrap();
        assert_eq!(cpus[0].ticks, [1, 2, 3, 4, 5, 0, 0, 0, 0, 0]);
        assert_eq!(cpus[1].cpu, 2);
        // Extra columns of a future kernel are ignored.
        parse_cpu_lines(b"cpu0 1 2 3 4 5 6 7 8 9 10 11 12\n", &mut cpus).unwrap();
        assert_eq!(cpus[0].ticks[9], 10);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut cpus = Vec::new();
        for bad in [
            &b""[..],
            b"cpu 1 2 3 4\n",
            b"cpu0 1 2 3\n",
            b"cpu0 1 2 x 4\n",
            b"cpux 1 2 3 4\n",
            b"cpu0 1 2 3 18446744073709551616\n",
            b"cpu-1 1 2 3 4\n",
            b"\xff",
        ] {
            assert!(parse_cpu_lines(bad, &mut cpus).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn counters_never_go_back_unless_idle_jumps_back() {
        let mut state = CpuState::new(0);
        state.update(&[100, 0, 50, 1000, 20, 0, 0, 0, 0, 0]);
        assert_eq!(state.seconds[0], 1.0);
        // iowait going back a little (a known kernel quirk) keeps the old value.
        state.update(&[110, 0, 50, 1050, 10, 0, 0, 0, 0, 0]);
        assert_eq!(state.seconds[0], 1.1);
        assert_eq!(state.seconds[4], 0.2);
        // Idle back by 2 s: held.
        state.update(&[120, 0, 50, 850, 30, 0, 0, 0, 0, 0]);
        assert_eq!(state.seconds[IDLE], 10.5);
        // Idle back by 3 s or more: hotplug, start afresh.
        state.update(&[5, 0, 1, 200, 1, 0, 0, 0, 0, 0]);
        assert_eq!(state.seconds[..5], [0.05, 0.0, 0.01, 2.0, 0.01]);
    }

    #[test]
    fn ticks_become_the_same_floats_as_node_exporter() {
        // node_exporter on this machine printed 18.71 for 1871 ticks and 0.13 for 13.
        assert_eq!(1871.0 / USER_HZ, 18.71);
        assert_eq!(13.0 / USER_HZ, 0.13);
        let mut state = CpuState::new(0);
        state.update(&[u64::MAX, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(state.seconds[0], u64::MAX as f64 / 100.0);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list(b"\n").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_cpu_list(b"").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_cpu_list(b"1-2,3\n").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_cpu_list(b"0-8191").unwrap().len(), MAX_CPUS);
        // Found by the fuzz harness: short lists of wide ranges allocated without bound.
        assert!(parse_cpu_list(b"0,2-9999").is_err());
        assert!(parse_cpu_list("0-4095,".repeat(1000).as_bytes()).is_err());
        for bad in [&b"a"[..], b"3-1", b"0-4294967295", b"1-", b"\xff"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad:?}");
        }
        assert_eq!(cpu_list_contains(b"\n", 0), Some(false));
        assert_eq!(cpu_list_contains(b"1-3,6\n", 2), Some(true));
        assert_eq!(cpu_list_contains(b"1-3,6\n", 6), Some(true));
        assert_eq!(cpu_list_contains(b"1-3,6\n", 4), Some(false));
        assert_eq!(cpu_list_contains(b"1-x", 1), None);
    }
}
