//! Pressure stall information (PSI) from /proc/pressure/{cpu,io,memory,irq}, as node_exporter's
//! pressure collector names it: the `total=` microseconds of the `some` line become
//! `*_waiting_seconds_total`, those of the `full` line `*_stalled_seconds_total`.
//!
//! node_exporter 1.5 exports cpu `some` only (not cpu `full`), io and memory both; its newer
//! releases add irq `full` (the irq file has no `some` line). The same set is exported here.

use std::io;
use std::path::PathBuf;

use super::{read_kept, CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::roots::{read_into, KeptFile};

/// PSI totals of one resource file, in microseconds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub some: Option<u64>,
    pub full: Option<u64>,
}

/// Parses one /proc/pressure file:
/// `some avg10=0.39 avg60=2.14 avg300=1.78 total=10352354` and/or a `full ...` line.
pub fn parse(bytes: &[u8]) -> Result<Totals, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    let mut totals = Totals::default();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(kind) = fields.next() else { continue };
        let total = fields
            .find_map(|field| field.strip_prefix("total="))
            .and_then(|value| value.parse::<u64>().ok())
            .ok_or_else(|| format!("no valid total= in line {line:?}"))?;
        match kind {
            "some" => totals.some = Some(total),
            "full" => totals.full = Some(total),
            _ => return Err(format!("unknown line {line:?}")),
        }
    }
    if totals.some.is_none() && totals.full.is_none() {
        return Err("no some/full line".to_string());
    }
    Ok(totals)
}

/// Which line of which file feeds which metric.
const METRICS: &[(&str, Line, &str, &str)] = &[
    (
        "cpu",
        Line::Some,
        "node_pressure_cpu_waiting_seconds_total",
        "Total time in seconds that processes have waited for CPU time",
    ),
    (
        "io",
        Line::Some,
        "node_pressure_io_waiting_seconds_total",
        "Total time in seconds that processes have waited due to IO congestion",
    ),
    (
        "io",
        Line::Full,
        "node_pressure_io_stalled_seconds_total",
        "Total time in seconds no process could make progress due to IO congestion",
    ),
    (
        "memory",
        Line::Some,
        "node_pressure_memory_waiting_seconds_total",
        "Total time in seconds that processes have waited for memory",
    ),
    (
        "memory",
        Line::Full,
        "node_pressure_memory_stalled_seconds_total",
        "Total time in seconds no process could make progress due to memory congestion",
    ),
    (
        "irq",
        Line::Full,
        "node_pressure_irq_stalled_seconds_total",
        "Total time in seconds no process could make progress due to IRQ congestion",
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    Some,
    Full,
}

struct Resource {
    path: PathBuf,
    file: KeptFile,
    /// (line, family) pairs exported from this file.
    metrics: Vec<(Line, FamilyId)>,
}

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    let dir = ctx.roots.proc("pressure");
    let mut buf = Vec::with_capacity(256);
    // cpu is there whenever PSI is: it decides whether the collector applies at all.
    match read_into(&dir.join("cpu"), &mut buf) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Setup::Unavailable(format!(
                "{} not found: the kernel has no pressure stall information (needs Linux 4.20+ \
                 with CONFIG_PSI; Raspberry Pi OS kernels may need `psi=1` on the kernel command \
                 line, /boot/firmware/cmdline.txt)",
                dir.display()
            ))
        }
        Err(err) if err.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            return Setup::Unavailable(format!(
                "{}: pressure stall information is disabled; add `psi=1` to the kernel command \
                 line (/boot/firmware/cmdline.txt) to enable it",
                dir.join("cpu").display()
            ))
        }
        Err(err) => {
            return Setup::Unavailable(format!("{}: {err}", dir.join("cpu").display()));
        }
    }
    let mut resources: Vec<Resource> = Vec::new();
    for &(file, line, name, help) in METRICS {
        let path = dir.join(file);
        // irq pressure appeared in Linux 6.1 (and needs IRQ time accounting): only when present.
        if file == "irq" && read_into(&path, &mut buf).is_err() {
            continue;
        }
        let id = out.family(name, help, Kind::Counter, &[]);
        match resources.iter_mut().find(|r| r.path == path) {
            Some(resource) => resource.metrics.push((line, id)),
            None => resources.push(Resource {
                file: KeptFile::new(path.clone()),
                path,
                metrics: vec![(line, id)],
            }),
        }
    }
    Setup::Ready(Box::new(PressureCollector { resources, buf }))
}

struct PressureCollector {
    resources: Vec<Resource>,
    buf: Vec<u8>,
}

impl Collector for PressureCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        let mut first_error = None;
        for resource in &mut self.resources {
            let totals = read_kept(&mut resource.file, &mut self.buf).and_then(|()| {
                parse(&self.buf)
                    .map_err(|err| CollectError(format!("{}: {err}", resource.path.display())))
            });
            let totals = match totals {
                Ok(totals) => totals,
                Err(err) => {
                    first_error.get_or_insert(err);
                    continue;
                }
            };
            for &(line, id) in &resource.metrics {
                let micros = match line {
                    Line::Some => totals.some,
                    Line::Full => totals.full,
                };
                match micros {
                    Some(micros) => out.sample(id, &[], micros as f64 / 1e6),
                    None => {
                        first_error.get_or_insert(CollectError(format!(
                            "{}: no {} line",
                            resource.path.display(),
                            if line == Line::Some { "some" } else { "full" }
                        )));
                    }
                }
            }
        }
        match first_error {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // /proc/pressure/cpu of the development VM (Linux 6.18): cpu has a full line since 5.13.
    const CPU_618: &[u8] = b"some avg10=0.39 avg60=2.14 avg300=1.78 total=10352354\n\
full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
    // /proc/pressure/io of the same machine.
    const IO_618: &[u8] = b"some avg10=0.01 avg60=0.30 avg300=0.30 total=2639992\n\
full avg10=0.00 avg60=0.24 avg300=0.25 total=2348044\n";
    // Linux 5.10 (Raspberry Pi OS bullseye kernel) prints cpu `some` only.
    const CPU_510: &[u8] = b"some avg10=0.00 avg60=0.05 avg300=0.01 total=1385416\n";
    // /proc/pressure/irq (Linux 6.1+): a full line only.
    const IRQ: &[u8] = b"full avg10=0.00 avg60=0.00 avg300=0.00 total=62500\n";

    #[test]
    fn parses_real_pressure_files() {
        assert_eq!(
            parse(CPU_618).unwrap(),
            Totals {
                some: Some(10352354),
                full: Some(0)
            }
        );
        assert_eq!(
            parse(IO_618).unwrap(),
            Totals {
                some: Some(2639992),
                full: Some(2348044)
            }
        );
        assert_eq!(parse(CPU_510).unwrap().full, None);
        assert_eq!(
            parse(IRQ).unwrap(),
            Totals {
                some: None,
                full: Some(62500)
            }
        );
        assert_eq!(
            parse(b"some total=18446744073709551615\n").unwrap().some,
            Some(u64::MAX)
        );
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [
            &b""[..],
            b"\n",
            b"some avg10=0.00\n",
            b"some total=-1\n",
            b"some total=1e3\n",
            b"some total=18446744073709551616\n",
            b"half total=1\n",
            b"\xff\xfe",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
