//! node_memory_* from /proc/meminfo, one gauge per line as node_exporter names them:
//! `Active(anon):  1234 kB` becomes `node_memory_Active_anon_bytes` = 1234 * 1024.
//!
//! The procfs crate's `Meminfo` knows a fixed set of fields; node_exporter exports every line
//! the kernel prints, so this collector parses the lines itself.

use super::{read_kept, CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::roots::KeptFile;

pub fn build(ctx: &Context, _out: &mut Exposition) -> Setup {
    Setup::Ready(Box::new(MeminfoCollector {
        file: KeptFile::new(ctx.roots.proc("meminfo")),
        buf: Vec::with_capacity(2048),
        families: Vec::new(),
    }))
}

struct MeminfoCollector {
    file: KeptFile,
    buf: Vec<u8>,
    /// Family of each line seen last time, in file order; the kernel prints the same lines in
    /// the same order every time, so after the first scrape no name is built again.
    families: Vec<(String, FamilyId)>,
}

/// One meminfo line: the kernel's field name, its value in bytes (or a count), and whether it
/// had a unit.
#[derive(Debug, PartialEq)]
pub struct Field<'a> {
    pub key: &'a str,
    pub value: f64,
    pub bytes: bool,
}

/// Parses /proc/meminfo. Blank lines are skipped; anything else malformed is an error.
/// (The collector uses `parse_each`, which allocates nothing; this is for tests and the fuzz
/// harness.)
pub fn parse(bytes: &[u8]) -> Result<Vec<Field<'_>>, CollectError> {
    let mut fields = Vec::with_capacity(64);
    parse_each(bytes, |field| fields.push(field))?;
    Ok(fields)
}

/// `parse` without collecting: calls `visit` for each field in file order (also for the
/// fields before a malformed line) and returns how many there were.
pub fn parse_each<'a>(
    bytes: &'a [u8],
    mut visit: impl FnMut(Field<'a>),
) -> Result<usize, CollectError> {
    let text = std::str::from_utf8(bytes).map_err(|_| CollectError("meminfo: not UTF-8".into()))?;
    let mut count = 0;
    for line in text.lines() {
        let mut parts = line.split_ascii_whitespace();
        let Some(key) = parts.next() else { continue };
        let bad = || CollectError(format!("meminfo: invalid line {line:?}"));
        let key = key.strip_suffix(':').ok_or_else(bad)?;
        let value: f64 = parts.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
        let bytes = match (parts.next(), parts.next()) {
            (None, _) => false,
            (Some("kB"), None) => true,
            _ => return Err(bad()),
        };
        visit(Field {
            key,
            value: if bytes { value * 1024.0 } else { value },
            bytes,
        });
        count += 1;
    }
    if count == 0 {
        return Err(CollectError("meminfo: no fields".into()));
    }
    Ok(count)
}

/// `Active(anon)` with a unit -> `node_memory_Active_anon_bytes`.
pub fn metric_name(key: &str, bytes: bool) -> String {
    let mut name = String::with_capacity(key.len() + 20);
    name.push_str("node_memory_");
    for c in key.chars() {
        match c {
            '(' => name.push('_'),
            ')' => {}
            c if c.is_ascii_alphanumeric() || c == '_' => name.push(c),
            _ => name.push('_'),
        }
    }
    if bytes {
        name.push_str("_bytes");
    }
    name
}

impl Collector for MeminfoCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        read_kept(&mut self.file, &mut self.buf)?;
        // Checked whole first, so a malformed file writes no samples; then written without
        // collecting the fields (no allocation per scrape).
        parse_each(&self.buf, |_| {})?;
        let mut index = 0;
        let families = &mut self.families;
        parse_each(&self.buf, |field| {
            let known = families.get(index).filter(|(key, _)| key == field.key);
            let id = match known {
                Some((_, id)) => *id,
                None => {
                    let name = metric_name(field.key, field.bytes);
                    let help = format!(
                        "Memory information field {}.",
                        &name["node_memory_".len()..]
                    );
                    let id = out.family(&name, &help, Kind::Gauge, &[]);
                    families.truncate(index);
                    families.push((field.key.to_string(), id));
                    id
                }
            };
            out.sample(id, &[], field.value);
            index += 1;
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // From a Raspberry Pi 4 (4 GB, 64-bit Raspberry Pi OS), shortened.
    const PI4: &[u8] = b"MemTotal:        3885256 kB\nMemFree:         2962716 kB\nMemAvailable:    3464600 kB\n\
Buffers:           37880 kB\nActive(anon):      14864 kB\nHugePages_Total:       0\nHugepagesize:       2048 kB\n";

    #[test]
    fn parses_kb_as_kibibytes_and_counts_as_is() {
        let fields = parse(PI4).unwrap();
        assert_eq!(
            fields[0],
            Field {
                key: "MemTotal",
                value: 3885256.0 * 1024.0,
                bytes: true
            }
        );
        assert_eq!(
            fields[5],
            Field {
                key: "HugePages_Total",
                value: 0.0,
                bytes: false
            }
        );
        assert_eq!(
            metric_name("Active(anon)", true),
            "node_memory_Active_anon_bytes"
        );
        assert_eq!(
            metric_name("HugePages_Total", false),
            "node_memory_HugePages_Total"
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"MemTotal 12 kB\n",
            b"MemTotal: x kB\n",
            b"MemTotal: 1 MB\n",
            b"MemTotal: 1 kB extra\n",
            b"\xff:",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse(b"\n\nMemFree: 18446744073709551615 kB\n").unwrap()[0].value,
            18446744073709551615.0 * 1024.0
        );
    }

    #[test]
    fn collector_reuses_families_across_scrapes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("meminfo"), PI4).unwrap();
        let mut collector = MeminfoCollector {
            file: KeptFile::new(dir.path().join("meminfo")),
            buf: Vec::new(),
            families: Vec::new(),
        };
        let mut exp = Exposition::new("pi");
        for _ in 0..2 {
            exp.clear();
            collector.update(&mut exp).unwrap();
        }
        let mut text = String::new();
        exp.render(&mut text);
        assert!(
            text.contains("node_memory_MemTotal_bytes{node=\"pi\"} 3978502144\n"),
            "{text}"
        );
        assert!(text.contains("node_memory_Active_anon_bytes{node=\"pi\"} 15220736\n"));
        assert_eq!(text.matches("node_memory_MemFree_bytes{").count(), 1);
    }
}
