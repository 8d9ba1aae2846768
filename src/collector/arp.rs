//! node_arp_entries{device} from /proc/net/arp: the neighbour entries the kernel lists there
//! (it leaves out NOARP ones, as node_exporter's netlink read does).

use crate::roots::KeptFile;

use serde::{Deserialize, Serialize};

use super::device_filter::DeviceFilter;
use super::{read_kept, CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::flag::{text_flag, Flag};

/// The arp collector's settings (`arp: (device_exclude: "^docker")`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArpConfig {
    /// Regex of devices to skip; exclusive with `device_include`.
    pub device_exclude: String,
    /// Regex of the only devices to report.
    pub device_include: String,
}

impl super::CollectorSettings for ArpConfig {
    /// `--collector.*` flags of these settings (node_exporter's names).
    const FLAGS: &'static [Flag<Self>] = &[
        text_flag!(
            "--collector.arp.device-include",
            "REGEX",
            "Regexp of arp devices to include (mutually exclusive to device-exclude). Config: arp.device_include.",
            device_include
        ),
        text_flag!(
            "--collector.arp.device-exclude",
            "REGEX",
            "Regexp of arp devices to exclude (mutually exclusive to device-include). Config: arp.device_exclude.",
            device_exclude
        ),
    ];

    fn validate(&self) -> Result<(), String> {
        DeviceFilter::new("arp", &self.device_exclude, &self.device_include).map(|_| ())
    }
}

pub fn build(ctx: &Context<ArpConfig>, out: &mut Exposition) -> Setup {
    let settings = ctx.settings;
    let filter = match DeviceFilter::new("arp", &settings.device_exclude, &settings.device_include)
    {
        Ok(filter) => filter,
        Err(err) => return Setup::Unavailable(err),
    };
    Setup::Ready(Box::new(ArpCollector {
        path: KeptFile::new(ctx.roots.proc("net/arp")),
        filter,
        buf: Vec::with_capacity(1024),
        counts: Vec::new(),
        entries: out.family(
            "node_arp_entries",
            "ARP entries by device",
            Kind::Gauge,
            &["device"],
        ),
    }))
}

struct ArpCollector {
    path: KeptFile,
    filter: DeviceFilter,
    buf: Vec<u8>,
    /// Entries per device of the last scrape; reused.
    counts: Vec<(String, u32)>,
    entries: FamilyId,
}

/// Counts the entries of /proc/net/arp per device (in first-seen order) into `counts`.
pub fn count_entries(bytes: &[u8], counts: &mut Vec<(String, u32)>) -> Result<(), CollectError> {
    counts.clear();
    let text = std::str::from_utf8(bytes).map_err(|_| CollectError("net/arp: not UTF-8".into()))?;
    for line in text.lines().skip(1).filter(|line| !line.trim().is_empty()) {
        let mut fields = line.split_ascii_whitespace();
        let device = fields
            .nth(5)
            .filter(|_| fields.next().is_none())
            .ok_or_else(|| CollectError(format!("net/arp: invalid line {line:?}")))?;
        match counts.iter_mut().find(|(name, _)| name == device) {
            Some((_, count)) => *count += 1,
            None => counts.push((device.to_string(), 1)),
        }
    }
    Ok(())
}

impl Collector for ArpCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        read_kept(&mut self.path, &mut self.buf)?;
        count_entries(&self.buf, &mut self.counts)?;
        for (device, count) in &self.counts {
            if !self.filter.ignored(device) {
                out.sample(self.entries, &[device], f64::from(*count));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_device() {
        let text = b"IP address       HW type     Flags       HW address            Mask     Device
192.168.1.1      0x1         0x2         dc:a6:32:00:00:01     *        eth0
192.168.1.20     0x1         0x2         dc:a6:32:00:00:02     *        eth0
192.168.4.1      0x1         0x0         00:00:00:00:00:00     *        wlan0
";
        let mut counts = Vec::new();
        count_entries(text, &mut counts).unwrap();
        assert_eq!(counts, [("eth0".to_string(), 2), ("wlan0".to_string(), 1)]);
        count_entries(
            b"IP address HW type Flags HW address Mask Device\n",
            &mut counts,
        )
        .unwrap();
        assert!(counts.is_empty());
        assert!(count_entries(b"header\n1.2.3.4 0x1 0x2\n", &mut counts).is_err());
        assert!(count_entries(b"\xff\n", &mut counts).is_err());
    }
}
