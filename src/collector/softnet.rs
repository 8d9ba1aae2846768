//! node_softnet_* per CPU from /proc/net/softnet_stat (hex columns, one line per online CPU).

use crate::roots::KeptFile;

use super::{read_kept, CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};

/// Column, family name, help, type (node_exporter 1.12's names and help texts).
const COLUMNS: [(usize, &str, &str, Kind); 7] = [
    (
        0,
        "node_softnet_processed_total",
        "Number of processed packets",
        Kind::Counter,
    ),
    (
        1,
        "node_softnet_dropped_total",
        "Number of dropped packets",
        Kind::Counter,
    ),
    (
        2,
        "node_softnet_times_squeezed_total",
        "Number of times processing packets ran out of quota",
        Kind::Counter,
    ),
    (
        8,
        "node_softnet_cpu_collision_total",
        "Number of collision occur while obtaining device lock while transmitting",
        Kind::Counter,
    ),
    (
        9,
        "node_softnet_received_rps_total",
        "Number of times cpu woken up received_rps",
        Kind::Counter,
    ),
    (
        10,
        "node_softnet_flow_limit_count_total",
        "Number of times flow limit has been reached",
        Kind::Counter,
    ),
    (
        11,
        "node_softnet_backlog_len",
        "Softnet backlog status",
        Kind::Gauge,
    ),
];

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    Setup::Ready(Box::new(SoftnetCollector {
        path: KeptFile::new(ctx.roots.proc("net/softnet_stat")),
        buf: Vec::with_capacity(1024),
        cpu: String::new(),
        families: COLUMNS.map(|(_, name, help, kind)| out.family(name, help, kind, &["cpu"])),
    }))
}

struct SoftnetCollector {
    path: KeptFile,
    buf: Vec<u8>,
    cpu: String,
    families: [FamilyId; 7],
}

/// One CPU's line: the CPU number and the COLUMNS values. Like procfs: 9 columns at least;
/// a column the kernel does not print yet is 0; the CPU number is column 12 when the kernel
/// prints it (5.14+), else the line number.
pub fn parse_line(line: &str, line_number: usize) -> Result<(u32, [u32; 7]), CollectError> {
    let bad = || CollectError(format!("softnet_stat: invalid line {line:?}"));
    let mut columns = [0u32; 13];
    let mut width = 0;
    for field in line.split_ascii_whitespace() {
        let value = u32::from_str_radix(field, 16).map_err(|_| bad())?;
        if let Some(slot) = columns.get_mut(width) {
            *slot = value;
        }
        width += 1;
    }
    if width < 9 {
        return Err(bad());
    }
    let cpu = if width >= 13 {
        columns[12]
    } else {
        u32::try_from(line_number).map_err(|_| bad())?
    };
    Ok((cpu, COLUMNS.map(|(column, ..)| columns[column])))
}

impl Collector for SoftnetCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        read_kept(&mut self.path, &mut self.buf)?;
        let text = std::str::from_utf8(&self.buf)
            .map_err(|_| CollectError("softnet_stat: not UTF-8".into()))?;
        for (line_number, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let (cpu, values) = parse_line(line, line_number)?;
            self.cpu.clear();
            use std::fmt::Write as _;
            let _ = write!(self.cpu, "{cpu}");
            for (id, value) in self.families.iter().zip(values) {
                out.sample(*id, &[&self.cpu], f64::from(value));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_and_old_kernels() {
        // This machine (Linux 6.18): 15 columns, the CPU in column 12.
        let line = "000021af 00000001 00000002 00000000 00000000 00000000 00000000 00000000 00000003 00000004 00000005 00000006 00000001 00000000 00000000";
        assert_eq!(
            parse_line(line, 7).unwrap(),
            (1, [0x21af, 1, 2, 3, 4, 5, 6])
        );
        // Linux 4.19 (Raspberry Pi OS buster): 11 columns, the CPU is the line number.
        let old = "0000a0b1 00000000 00000003 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000";
        assert_eq!(parse_line(old, 2).unwrap(), (2, [0xa0b1, 0, 3, 0, 0, 0, 0]));
        for bad in [
            "",
            "1 2 3",
            "1 2 3 4 5 6 7 8 zz",
            "1 2 3 4 5 6 7 8 100000000",
        ] {
            assert!(parse_line(bad, 0).is_err(), "{bad}");
        }
    }
}
