//! node_cpu_{,scaling_}frequency{,_min,_max}_hertz{cpu} and node_cpu_scaling_governor{cpu,governor}
//! from /sys/devices/system/cpu/cpuN/cpufreq/, as node_exporter's `cpufreq` collector.
//!
//! The files hold kHz; the metrics are hertz. As in node_exporter, a file that is missing or
//! not readable (cpuinfo_cur_freq is root-only) only drops its series. A file that reads but
//! holds garbage drops its series too, and fails the collector with an error naming the file.
//! On a Pi the kernel does not see firmware throttling: these are the requested clocks.

use std::io;
use std::path::{Path, PathBuf};

use super::{CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::roots::{numbered_dirs, KeptFile};

/// (file, metric, help) of the numeric attributes, node_exporter's names.
const FREQUENCIES: [(&str, &str, &str); 6] = [
    (
        "cpuinfo_cur_freq",
        "node_cpu_frequency_hertz",
        "Current cpu thread frequency in hertz.",
    ),
    (
        "cpuinfo_min_freq",
        "node_cpu_frequency_min_hertz",
        "Minimum cpu thread frequency in hertz.",
    ),
    (
        "cpuinfo_max_freq",
        "node_cpu_frequency_max_hertz",
        "Maximum cpu thread frequency in hertz.",
    ),
    (
        "scaling_cur_freq",
        "node_cpu_scaling_frequency_hertz",
        "Current scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_min_freq",
        "node_cpu_scaling_frequency_min_hertz",
        "Minimum scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_max_freq",
        "node_cpu_scaling_frequency_max_hertz",
        "Maximum scaled CPU thread frequency in hertz.",
    ),
];

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    let cpu_dir = ctx.roots.sys("devices/system/cpu");
    let cpus = match find_cpufreq_cpus(&cpu_dir) {
        Ok(cpus) if !cpus.is_empty() => cpus,
        Ok(_) => {
            return Setup::Unavailable(format!("no cpufreq directory below {}", cpu_dir.display()))
        }
        Err(err) => return Setup::Unavailable(format!("{}: {err}", cpu_dir.display())),
    };
    let frequencies =
        FREQUENCIES.map(|(_, name, help)| out.family(name, help, Kind::Gauge, &["cpu"]));
    Setup::Ready(Box::new(CpufreqCollector {
        offline: KeptFile::new(cpu_dir.join("offline")),
        offline_buf: Vec::with_capacity(32),
        cpus,
        buf: Vec::with_capacity(128),
        governor: Vec::with_capacity(32),
        frequencies,
        governor_family: out.family(
            "node_cpu_scaling_governor",
            "Current enabled CPU frequency governor.",
            Kind::Gauge,
            &["cpu", "governor"],
        ),
    }))
}

struct CpufreqCpu {
    number: u32,
    label: String,
    dir: PathBuf,
    files: [KeptFile; 6],
    governor: KeptFile,
    available_governors: KeptFile,
}

struct CpufreqCollector {
    /// /sys/devices/system/cpu/offline: offline CPUs are skipped (their policy may be
    /// inactive, and its files then fail with EBUSY).
    offline: KeptFile,
    offline_buf: Vec<u8>,
    cpus: Vec<CpufreqCpu>,
    buf: Vec<u8>,
    governor: Vec<u8>,
    frequencies: [FamilyId; 6],
    governor_family: FamilyId,
}

/// The CPUs (`cpuN` entries of `cpu_dir`) that have a cpufreq directory, by number.
fn find_cpufreq_cpus(cpu_dir: &Path) -> io::Result<Vec<CpufreqCpu>> {
    Ok(numbered_dirs(cpu_dir, "cpu")?
        .into_iter()
        .map(|(number, cpu)| (number, cpu.join("cpufreq")))
        // On a Pi cpuN/cpufreq is a symlink to ../cpufreq/policy0: follow it.
        .filter(|(_, dir)| dir.is_dir())
        .map(|(number, dir)| CpufreqCpu {
            number,
            label: number.to_string(),
            files: FREQUENCIES.map(|(file, _, _)| KeptFile::new(dir.join(file))),
            governor: KeptFile::new(dir.join("scaling_governor")),
            available_governors: KeptFile::new(dir.join("scaling_available_governors")),
            dir,
        })
        .collect())
}

/// A cpufreq attribute holding kHz, as hertz.
pub fn parse_khz(bytes: &[u8]) -> Option<f64> {
    let khz: u64 = std::str::from_utf8(bytes).ok()?.trim().parse().ok()?;
    Some(khz as f64 * 1000.0)
}

/// The governors to report: every available one, with whether it is the current one
/// (node_exporter reports only the available ones).
pub fn governors<'a>(
    current: &'a [u8],
    available: &'a [u8],
) -> Result<impl Iterator<Item = (&'a str, bool)>, CollectError> {
    let current = std::str::from_utf8(current)
        .map_err(|_| CollectError("scaling_governor: not UTF-8".into()))?
        .trim();
    let available = std::str::from_utf8(available)
        .map_err(|_| CollectError("scaling_available_governors: not UTF-8".into()))?;
    Ok(available
        .split_ascii_whitespace()
        .filter(move |_| !current.is_empty())
        .map(move |g| (g, g == current)))
}

/// Writes node_cpu_scaling_governor for one CPU; nothing when either file is missing.
fn update_governors(
    cpu: &mut CpufreqCpu,
    current: &mut Vec<u8>,
    available: &mut Vec<u8>,
    family: FamilyId,
    out: &mut Exposition,
) -> Result<(), CollectError> {
    if !cpu.governor.read_if_readable(current)?
        || !cpu.available_governors.read_if_readable(available)?
    {
        return Ok(());
    }
    for (governor, is_current) in governors(current, available)? {
        let value = if is_current { 1.0 } else { 0.0 };
        out.sample(family, &[&cpu.label, governor], value);
    }
    Ok(())
}

impl Collector for CpufreqCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        let mut first_error = None;
        // A missing offline file (old kernels, fixtures) means all CPUs are online.
        if !self.offline.read_if_readable(&mut self.offline_buf)? {
            self.offline_buf.clear();
        }
        for cpu in &mut self.cpus {
            let offline = match super::cpu::cpu_list_contains(&self.offline_buf, cpu.number) {
                Some(offline) => offline,
                None => {
                    first_error.get_or_insert_with(|| {
                        CollectError(format!(
                            "{}: invalid cpu list {:?}",
                            self.offline.path().display(),
                            String::from_utf8_lossy(&self.offline_buf).trim()
                        ))
                    });
                    false
                }
            };
            if offline || !cpu.dir.is_dir() {
                continue;
            }
            for (file, id) in cpu.files.iter_mut().zip(self.frequencies) {
                match file.read_if_readable(&mut self.buf) {
                    Ok(true) => match parse_khz(&self.buf) {
                        Some(hertz) => out.sample(id, &[&cpu.label], hertz),
                        None => {
                            first_error.get_or_insert_with(|| {
                                CollectError(format!(
                                    "{}: not a frequency in kHz: {:?}",
                                    file.path().display(),
                                    String::from_utf8_lossy(&self.buf).trim()
                                ))
                            });
                        }
                    },
                    Ok(false) => {}
                    Err(err) => {
                        first_error.get_or_insert(err.into());
                    }
                }
            }
            let governors = update_governors(
                cpu,
                &mut self.governor,
                &mut self.buf,
                self.governor_family,
                out,
            );
            if let Err(err) = governors {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn khz_become_hertz() {
        // Raspberry Pi 4 cpuinfo_max_freq / a Pi 5's, as the kernel prints them.
        assert_eq!(parse_khz(b"1500000\n"), Some(1.5e9));
        assert_eq!(parse_khz(b"2400000\n"), Some(2.4e9));
        assert_eq!(
            parse_khz(b"18446744073709551615\n"),
            Some(u64::MAX as f64 * 1000.0)
        );
        for bad in [&b""[..], b"\n", b"<unknown>\n", b"-1", b"1.5", b"\xff"] {
            assert_eq!(parse_khz(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn governors_of_a_pi4() {
        // Raspberry Pi OS kernel 6.6 on a Pi 4: trailing space, then newline.
        let available = b"conservative ondemand userspace powersave performance schedutil \n";
        let list: Vec<_> = governors(b"ondemand\n", available).unwrap().collect();
        assert_eq!(
            list,
            vec![
                ("conservative", false),
                ("ondemand", true),
                ("userspace", false),
                ("powersave", false),
                ("performance", false),
                ("schedutil", false),
            ]
        );
        assert_eq!(governors(b"\n", available).unwrap().count(), 0);
        assert_eq!(governors(b"ondemand", b"").unwrap().count(), 0);
        assert!(governors(b"\xff", available).is_err());
    }
}
