//! node_vmstat_<field> from /proc/vmstat, untyped, filtered by node_exporter's default field
//! regex (`--collector.vmstat.fields`).

use crate::roots::KeptFile;

use serde::{Deserialize, Serialize};

use super::named_families::NamedFamilies;
use super::{read_kept, CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, Kind};
use crate::flag::{text_flag, Flag};

/// node_exporter 1.12's default for `--collector.vmstat.fields`.
pub const DEFAULT_FIELDS: &str = "^(oom_kill|pgpg|pswp|pg.*fault).*";

/// The vmstat collector's settings (`vmstat: (fields: "...")`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VmstatConfig {
    /// Regex of /proc/vmstat field names to export.
    pub fields: String,
}

impl Default for VmstatConfig {
    fn default() -> Self {
        VmstatConfig {
            fields: DEFAULT_FIELDS.to_string(),
        }
    }
}

impl super::CollectorSettings for VmstatConfig {
    /// `--collector.*` flags of these settings (node_exporter's names).
    const FLAGS: &'static [Flag<Self>] = &[
        text_flag!(
            "--collector.vmstat.fields",
            "REGEX",
            "Regexp of fields to return for vmstat collector. Config: vmstat.fields.",
            fields
        ),
    ];

    fn validate(&self) -> Result<(), String> {
        super::device_filter::regex("vmstat.fields", &self.fields).map(|_| ())
    }
}

pub fn build(ctx: &Context<VmstatConfig>, _out: &mut Exposition) -> Setup {
    let filter = match super::device_filter::regex("vmstat.fields", &ctx.settings.fields) {
        Ok(filter) => filter,
        Err(err) => return Setup::Unavailable(err),
    };
    Setup::Ready(Box::new(VmstatCollector {
        path: KeptFile::new(ctx.roots.proc("vmstat")),
        buf: Vec::with_capacity(8192),
        families: NamedFamilies::new("node_vmstat_", Kind::Untyped, Some(filter)),
    }))
}

struct VmstatCollector {
    path: KeptFile,
    buf: Vec<u8>,
    families: NamedFamilies,
}

/// Parses /proc/vmstat (`name value` lines), calling `each(name, value)`.
pub fn parse(bytes: &[u8], mut each: impl FnMut(&str, f64)) -> Result<(), CollectError> {
    let text = std::str::from_utf8(bytes).map_err(|_| CollectError("vmstat: not UTF-8".into()))?;
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let mut fields = line.split_ascii_whitespace();
        let (Some(name), Some(value)) = (fields.next(), fields.next()) else {
            return Err(CollectError(format!("vmstat: invalid line {line:?}")));
        };
        let value = value
            .parse::<f64>()
            .map_err(|_| CollectError(format!("vmstat: invalid value in {line:?}")))?;
        each(name, value);
    }
    Ok(())
}

impl Collector for VmstatCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        self.families.begin();
        read_kept(&mut self.path, &mut self.buf)?;
        let families = &mut self.families;
        parse(&self.buf, |name, value| {
            let help = |key: &str| format!("/proc/vmstat information field {key}.");
            if let Some(id) = families.id(out, &[name], help) {
                out.sample(id, &[], value);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let mut all = Vec::new();
        parse(
            b"nr_free_pages 12345\npgfault 9343812\noom_kill 0\n",
            |n, v| all.push((n.to_string(), v)),
        )
        .unwrap();
        assert_eq!(all[1], ("pgfault".to_string(), 9343812.0));
        for bad in [&b"pgfault\n"[..], b"pgfault x\n", b"\xff 1\n"] {
            assert!(parse(bad, |_, _| {}).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn default_filter_is_node_exporters() {
        let filter = regex_lite::Regex::new(DEFAULT_FIELDS).unwrap();
        for name in ["oom_kill", "pgpgin", "pswpout", "pgfault", "pgmajfault"] {
            assert!(filter.is_match(name), "{name}");
        }
        for name in ["nr_free_pages", "pgfree", "workingset_refault_anon"] {
            assert!(!filter.is_match(name), "{name}");
        }
    }
}
