//! node_network_{receive,transmit}_*_total{device} from /proc/net/dev, named as node_exporter
//! names them ("errs", "drop", "colls": the legacy names it keeps for compatibility).
//!
//! node_exporter reads the same counters over netlink by default, which also carries
//! `rx_nohandler`; /proc/net/dev does not, so that one counter comes from
//! /sys/class/net/<device>/statistics/rx_nohandler (one small read per device).
//! node_network_up, _info, _mtu... belong to node_exporter's netclass collector, not here.

use std::collections::HashMap;
use std::path::PathBuf;

use super::{read_kept, CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::flag::{text_flag, Flag};
use crate::roots::{parse_u64, KeptFile};

use serde::{Deserialize, Serialize};


#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetdevConfig {
    /// Regex of network devices to skip; empty: none. Exclusive with `device_include`.
    pub device_exclude: String,
    /// Regex of the only network devices to report; empty: all.
    pub device_include: String,
}

impl NetdevConfig {
    pub fn filter(&self) -> Result<super::device_filter::DeviceFilter, String> {
        super::device_filter::DeviceFilter::new(
            "netdev",
            &self.device_exclude,
            &self.device_include,
        )
    }
}

impl super::CollectorSettings for NetdevConfig {
    /// `--collector.*` flags of these settings (node_exporter's names).
    const FLAGS: &'static [Flag<Self>] = &[
        text_flag!(
            "--collector.netdev.device-exclude",
            "REGEX",
            "Regexp of net devices to exclude (empty: none). Config: netdev.device_exclude.",
            device_exclude
        ),
        text_flag!(
            "--collector.netdev.device-include",
            "REGEX",
            "Regexp of net devices to include (mutually exclusive to device-exclude). Config: netdev.device_include.",
            device_include
        ),
    ];

    fn validate(&self) -> Result<(), String> {
        self.filter().map(|_| ())
    }
}

/// The 16 columns of /proc/net/dev, in the kernel's order, as node_exporter names them.
pub const FIELDS: [&str; 16] = [
    "receive_bytes",
    "receive_packets",
    "receive_errs",
    "receive_drop",
    "receive_fifo",
    "receive_frame",
    "receive_compressed",
    "receive_multicast",
    "transmit_bytes",
    "transmit_packets",
    "transmit_errs",
    "transmit_drop",
    "transmit_fifo",
    "transmit_colls",
    "transmit_carrier",
    "transmit_compressed",
];

pub fn build(ctx: &Context<NetdevConfig>, out: &mut Exposition) -> Setup {
    let filter = match ctx.settings.filter() {
        Ok(filter) => filter,
        Err(err) => return Setup::Unavailable(err),
    };
    let family = |out: &mut Exposition, field: &str| {
        out.family(
            &format!("node_network_{field}_total"),
            &format!("Network device statistic {field}."),
            Kind::Counter,
            &["device"],
        )
    };
    let families = FIELDS.map(|field| family(out, field));
    let nohandler = family(out, "receive_nohandler");
    Setup::Ready(Box::new(NetdevCollector {
        file: KeptFile::new(ctx.roots.proc("net/dev")),
        class_net: ctx.roots.sys("class/net"),
        filter,
        buf: Vec::with_capacity(4096),
        small_buf: Vec::with_capacity(32),
        families,
        nohandler,
        nohandler_paths: HashMap::new(),
        generation: 0,
    }))
}

struct NetdevCollector {
    file: KeptFile,
    class_net: PathBuf,
    filter: super::device_filter::DeviceFilter,
    buf: Vec<u8>,
    small_buf: Vec<u8>,
    families: [FamilyId; 16],
    nohandler: FamilyId,
    /// rx_nohandler path per device, built at first sight; the generation says when the device
    /// was last seen, so devices that come and go (veths) do not pile up.
    nohandler_paths: HashMap<String, (KeptFile, u64)>,
    generation: u64,
}

/// One device line of /proc/net/dev.
#[derive(Debug, PartialEq)]
pub struct Device<'a> {
    pub name: &'a str,
    pub counters: [u64; 16],
}

/// Parses one line: `None` for the two header lines and blank lines, an error for a line that
/// is neither a header nor `name: 16 counters`.
pub fn parse_line(line: &str) -> Result<Option<Device<'_>>, CollectError> {
    if line.trim().is_empty() || line.contains('|') {
        return Ok(None);
    }
    let bad = || CollectError(format!("net/dev: invalid line {line:?}"));
    // Names may contain ':' ("ibr10:30"), counters never do.
    let (name, rest) = line.rsplit_once(':').ok_or_else(bad)?;
    let name = name.trim();
    if name.is_empty() {
        return Err(bad());
    }
    let mut counters = [0u64; 16];
    let mut fields = rest.split_ascii_whitespace();
    for counter in &mut counters {
        *counter = fields.next().and_then(|f| f.parse().ok()).ok_or_else(bad)?;
    }
    if fields.next().is_some() {
        return Err(bad());
    }
    Ok(Some(Device { name, counters }))
}

impl Collector for NetdevCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        read_kept(&mut self.file, &mut self.buf)?;
        if self.buf.is_empty() {
            return Err(CollectError(format!(
                "{}: empty file",
                self.file.path().display()
            )));
        }
        let text = std::str::from_utf8(&self.buf)
            .map_err(|_| CollectError(format!("{}: not UTF-8", self.file.path().display())))?;
        self.generation += 1;
        let mut first_error = None;
        for line in text.lines() {
            let device = match parse_line(line) {
                Ok(Some(device)) => device,
                Ok(None) => continue,
                Err(err) => {
                    // Keep the good lines; report the bad one after them.
                    first_error.get_or_insert(err);
                    continue;
                }
            };
            if self.filter.ignored(device.name) {
                continue;
            }
            let labels = [device.name];
            for (id, value) in self.families.iter().zip(device.counters) {
                out.sample(*id, &labels, value as f64);
            }
            if !self.nohandler_paths.contains_key(device.name) {
                let path = self
                    .class_net
                    .join(device.name)
                    .join("statistics/rx_nohandler");
                self.nohandler_paths
                    .insert(device.name.to_string(), (KeptFile::new(path), 0));
            }
            if let Some((file, seen)) = self.nohandler_paths.get_mut(device.name) {
                *seen = self.generation;
                // Missing before Linux 4.6 and in fixture trees: no series then.
                if file.read_into(&mut self.small_buf).is_ok() {
                    if let Some(value) = parse_u64(&self.small_buf) {
                        out.sample(self.nohandler, &labels, value as f64);
                    }
                }
            }
        }
        let generation = self.generation;
        self.nohandler_paths
            .retain(|_, (_, seen)| *seen == generation);
        match first_error {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole file at once (the collector goes line by line).
    fn parse(bytes: &[u8]) -> Result<Vec<Device<'_>>, CollectError> {
        let text =
            std::str::from_utf8(bytes).map_err(|_| CollectError("net/dev: not UTF-8".into()))?;
        let mut devices = Vec::new();
        for line in text.lines() {
            if let Some(device) = parse_line(line)? {
                devices.push(device);
            }
        }
        Ok(devices)
    }

    // This machine's /proc/net/dev (Debian VM, Linux 6.x), verbatim.
    const THIS_MACHINE: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  377887     507    0    0    0     0          0         0   377887     507    0    0    0     0       0          0
  ifb0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0: 92491910    2975    0    0    0     0          0         0   211381    1997    0    0    0     0       0          0
";

    // node_exporter's fixture collector/fixtures/proc/net/dev (Apache-2.0), shortened: wlan0
    // and eth0 of a real machine, a name with ':' and a counter glued to the colon.
    const NODE_EXPORTER: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 435303245 1832522    0    0    0     0          0         0 435303245 1832522    0    0    0     0       0          0
  eth0:68210035552 520993275    0    0    0     0          0         0 9315587528 43451486    0    0    0     0       0          0
 wlan0: 10437182923 13899359    0    0    0     0          0         0 2851649360 11726200    0    0    0     0       0          0
ibr10:30:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
";

    #[test]
    fn parses_this_machine() {
        let devices = parse(THIS_MACHINE.as_bytes()).unwrap();
        assert_eq!(devices.len(), 3);
        assert_eq!(devices[2].name, "eth0");
        assert_eq!(devices[2].counters[0], 92491910);
        assert_eq!(devices[2].counters[1], 2975);
        assert_eq!(devices[2].counters[8], 211381);
        assert_eq!(devices[2].counters[9], 1997);
    }

    #[test]
    fn parses_glued_counters_and_names_with_colons() {
        let devices = parse(NODE_EXPORTER.as_bytes()).unwrap();
        let names: Vec<_> = devices.iter().map(|d| d.name).collect();
        assert_eq!(names, ["lo", "eth0", "wlan0", "ibr10:30"]);
        assert_eq!(devices[1].counters[0], 68210035552);
        assert_eq!(devices[2].counters[8], 2851649360);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            "eth0 1 2 3",
            "eth0: 1 2 3",
            ": 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16",
            "eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x",
            "eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17",
            "eth0: -1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16",
            "eth0: 18446744073709551616 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16",
        ] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
        assert!(parse(b"\xff\xfe").is_err());
        let max = "eth0: 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0";
        assert_eq!(
            parse_line(max).unwrap().unwrap().counters[0],
            u64::MAX,
            "u64::MAX is a valid counter"
        );
    }
}
