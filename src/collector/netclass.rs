//! node_network_up, node_network_info and the node_network_<property> gauges from
//! /sys/class/net/<device>/ (node_exporter's netclass collector, sysfs mode).
//!
//! Attributes a driver refuses to give (EINVAL for `speed` while the link is down, missing
//! files on virtual devices) are skipped, as node_exporter skips them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use regex_lite::Regex;
use serde::{Deserialize, Serialize};

use super::{CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::flag::{parse_bool, text_flag, Flag};
use crate::roots::{dir_names, parse_int, read_attr, KeptFile};

/// The netclass collector's settings (`netclass: (ignored_devices: "^veth", ...)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetclassConfig {
    /// Regex of devices to skip (node_exporter's default "^$" skips none).
    pub ignored_devices: String,
    /// Leave out node_network_speed_bytes when the driver reports -1 (unknown).
    pub ignore_invalid_speed: bool,
}

impl Default for NetclassConfig {
    fn default() -> Self {
        NetclassConfig {
            ignored_devices: "^$".to_string(),
            ignore_invalid_speed: false,
        }
    }
}

impl super::CollectorSettings for NetclassConfig {
    /// `--collector.*` flags of these settings (node_exporter's names).
    const FLAGS: &'static [Flag<Self>] = &[
        text_flag!(
            "--collector.netclass.ignored-devices",
            "REGEX",
            "Regexp of net devices to ignore for netclass collector. Config: netclass.ignored_devices.",
            ignored_devices
        ),
        Flag {
            name: "--collector.netclass.ignore-invalid-speed",
            placeholder: "",
            help: "Ignore devices where the speed is invalid. Config: netclass.ignore_invalid_speed.",
            default: |s| s.ignore_invalid_speed.to_string(),
            switch: true,
            apply: |s, v| {
                s.ignore_invalid_speed = parse_bool(v)?;
                Ok(())
            },
        },
    ];

    fn validate(&self) -> Result<(), String> {
        super::device_filter::regex("netclass.ignored_devices", &self.ignored_devices).map(|_| ())
    }
}

/// Integer attributes: file, metric suffix, type (node_exporter's order).
const ATTRIBUTES: [(&str, &str, Kind); 17] = [
    ("addr_assign_type", "address_assign_type", Kind::Gauge),
    ("carrier", "carrier", Kind::Gauge),
    ("carrier_changes", "carrier_changes_total", Kind::Counter),
    (
        "carrier_up_count",
        "carrier_up_changes_total",
        Kind::Counter,
    ),
    (
        "carrier_down_count",
        "carrier_down_changes_total",
        Kind::Counter,
    ),
    ("dev_id", "device_id", Kind::Gauge),
    ("dormant", "dormant", Kind::Gauge),
    ("flags", "flags", Kind::Gauge),
    ("ifindex", "iface_id", Kind::Gauge),
    ("iflink", "iface_link", Kind::Gauge),
    ("link_mode", "iface_link_mode", Kind::Gauge),
    ("mtu", "mtu_bytes", Kind::Gauge),
    ("name_assign_type", "name_assign_type", Kind::Gauge),
    ("netdev_group", "net_dev_group", Kind::Gauge),
    ("speed", "speed_bytes", Kind::Gauge),
    ("tx_queue_len", "transmit_queue_length", Kind::Gauge),
    ("type", "protocol_type", Kind::Gauge),
];
const SPEED: usize = 14;
const FLAGS: usize = 7;

/// The text attributes in node_network_info, in label order after `device`.
const INFO_FILES: [&str; 5] = ["address", "broadcast", "duplex", "operstate", "ifalias"];

pub fn build(ctx: &Context<NetclassConfig>, out: &mut Exposition) -> Setup {
    let settings = ctx.settings;
    let ignored =
        match super::device_filter::regex("netclass.ignored_devices", &settings.ignored_devices) {
            Ok(regex) => regex,
            Err(err) => return Setup::Unavailable(err),
        };
    let up = out.family(
        "node_network_up",
        "Value is 1 if operstate is 'up', 0 otherwise.",
        Kind::Gauge,
        &["device"],
    );
    let info = out.family(
        "node_network_info",
        "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
        Kind::Gauge,
        &[
            "device",
            "address",
            "broadcast",
            "duplex",
            "operstate",
            "adminstate",
            "ifalias",
        ],
    );
    let attributes = ATTRIBUTES.map(|(_, name, kind)| {
        out.family(
            &format!("node_network_{name}"),
            &format!("Network device property: {name}"),
            kind,
            &["device"],
        )
    });
    Setup::Ready(Box::new(NetclassCollector {
        class_net: ctx.roots.sys("class/net"),
        path: PathBuf::new(),
        ignored,
        ignore_invalid_speed: settings.ignore_invalid_speed,
        devices: HashMap::new(),
        generation: 0,
        open_devices_limit: open_devices_limit(),
        buf: vec![0; 4096],
        texts: Default::default(),
        up,
        info,
        attributes,
    }))
}

struct NetclassCollector {
    class_net: PathBuf,
    /// Reused for device directory paths.
    path: PathBuf,
    ignored: Regex,
    ignore_invalid_speed: bool,
    devices: HashMap<String, OpenDevice>,
    /// Counts scrapes, so devices that went away are forgotten.
    generation: u64,
    /// How many devices keep their files open (from the descriptor limit).
    open_devices_limit: usize,
    /// One sysfs page: no attribute is longer.
    buf: Vec<u8>,
    texts: [String; 5],
    up: FamilyId,
    info: FamilyId,
    attributes: [FamilyId; 17],
}

/// node_exporter's `adminstate` label: the IFF_UP bit of `flags`.
pub fn admin_state(flags: Option<i64>) -> &'static str {
    match flags {
        None => "unknown",
        Some(flags) if flags & 1 == 1 => "up",
        Some(_) => "down",
    }
}

/// Devices whose files stay open: 22 files each, so at most 352 descriptors; further devices
/// are read file by file (open, read, close) at every scrape.
const MAX_OPEN_DEVICES: usize = 16;

/// How many devices may keep their files open: at most an eighth of the process's descriptor
/// limit (systemd's default soft limit, 1024, gives 5: lo, eth0, wlan0 and two more), so the
/// HTTP server and the other collectors never run short because of netclass.
fn open_devices_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        // rlim_t is 32 bits wide on 32-bit Pis.
        #[allow(clippy::unnecessary_cast)]
        let soft = limit.rlim_cur as u64;
        soft
    } else {
        0
    };
    let per_device = (ATTRIBUTES.len() + INFO_FILES.len()) as u64;
    (soft / 8 / per_device).min(MAX_OPEN_DEVICES as u64) as usize
}

/// A device's attribute files, opened when the device is first seen and then re-read with
/// pread at offset 0 (`KeptFile::read_open`; sysfs builds the value anew for every read from
/// offset 0): one system call per value instead of open, read and close (about 90 values per
/// scrape on a Pi).
struct OpenDevice {
    /// ATTRIBUTES, then INFO_FILES; `None` where the device has no such file.
    files: Vec<Option<KeptFile>>,
    /// The generation of the last scrape that listed the device.
    seen: u64,
    /// A read failed as it does when the device is gone (a device of the same name may have
    /// replaced it): reopened at the next scrape.
    stale: bool,
}

impl OpenDevice {
    fn open(dir: &Path, seen: u64) -> OpenDevice {
        let files = ATTRIBUTES
            .iter()
            .map(|(file, _, _)| *file)
            .chain(INFO_FILES)
            .map(|file| KeptFile::open(dir.join(file)))
            .collect::<Vec<_>>();
        // Absent, unreadable (permissions) or not a regular file: left out, as node_exporter
        // leaves it out. Any other failure (out of descriptors) says nothing about the file:
        // try again later.
        let stale = files.iter().any(|file| {
            file.as_ref().is_err_and(|err| {
                !matches!(
                    err.kind(),
                    std::io::ErrorKind::NotFound
                        | std::io::ErrorKind::PermissionDenied
                        | std::io::ErrorKind::InvalidInput
                )
            })
        });
        OpenDevice {
            files: files.into_iter().map(Result::ok).collect(),
            seen,
            stale,
        }
    }
}

/// The value of attribute `index` (ATTRIBUTES, then INFO_FILES) of the device in `dir`: from
/// its open file when the device keeps them open, else by opening the file for this read.
fn read_value<'a>(
    open: Option<&mut OpenDevice>,
    index: usize,
    dir: &mut PathBuf,
    buf: &'a mut Vec<u8>,
) -> Option<&'a str> {
    if let Some(open) = open {
        let file = open.files.get(index)?.as_ref()?;
        return read_open(file, buf, &mut open.stale);
    }
    let name = ATTRIBUTES
        .get(index)
        .map(|(file, _, _)| *file)
        .or_else(|| INFO_FILES.get(index - ATTRIBUTES.len()).copied())?;
    dir.push(name);
    let value = read_attr(dir, buf);
    dir.pop();
    value
}

/// Reads an opened attribute from its start: `Some(text)`, or `None` when the driver refuses
/// the value now (EINVAL, EOPNOTSUPP, ENODATA: `speed` of a link that is down) or on any
/// other error, which also marks the device stale.
fn read_open<'a>(file: &KeptFile, buf: &'a mut Vec<u8>, stale: &mut bool) -> Option<&'a str> {
    match file.read_open(buf) {
        Ok(()) => std::str::from_utf8(buf).ok().map(str::trim),
        Err(err) => {
            let refused = matches!(
                err.raw_os_error(),
                Some(libc::EINVAL | libc::EOPNOTSUPP | libc::ENODATA)
            );
            if !refused {
                *stale = true;
            }
            None
        }
    }
}

impl Collector for NetclassCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        let names = dir_names(&self.class_net)
            .map_err(|err| CollectError(format!("{}: {err}", self.class_net.display())))?;
        self.generation += 1;
        let generation = self.generation;
        for device in &names {
            if self.ignored.is_match(device) {
                continue;
            }
            self.path.clear();
            self.path.push(&self.class_net);
            self.path.push(device);
            // `bonding_masters` and other plain files are not devices; a device whose files
            // are open is known to be one (no stat per device and scrape).
            let known = self
                .devices
                .get(device.as_str())
                .is_some_and(|open| !open.stale);
            if !known && !self.path.is_dir() {
                continue;
            }
            if self
                .devices
                .get(device.as_str())
                .is_none_or(|open| open.stale)
                && self.devices.len() < self.open_devices_limit
            {
                let open = OpenDevice::open(&self.path, generation);
                self.devices.insert(device.clone(), open);
            }
            // None: past the limit (a host with many containers' veths), read file by file.
            let mut open = self
                .devices
                .get_mut(device.as_str())
                .filter(|open| !open.stale);
            if let Some(open) = open.as_deref_mut() {
                open.seen = generation;
            }
            let labels = [device.as_str()];
            let mut flags = None;
            for index in 0..ATTRIBUTES.len() {
                let text = read_value(open.as_deref_mut(), index, &mut self.path, &mut self.buf);
                let Some(value) = text.and_then(parse_int) else {
                    continue;
                };
                let value = match index {
                    FLAGS => {
                        flags = Some(value);
                        value as f64
                    }
                    SPEED if value < 0 && self.ignore_invalid_speed => continue,
                    // Mbit/s to bytes/s, in integers as node_exporter computes it.
                    SPEED => (value.saturating_mul(1000 * 1000) / 8) as f64,
                    _ => value as f64,
                };
                out.sample(self.attributes[index], &labels, value);
            }
            for (offset, text) in self.texts.iter_mut().enumerate() {
                text.clear();
                let index = ATTRIBUTES.len() + offset;
                let value = read_value(open.as_deref_mut(), index, &mut self.path, &mut self.buf);
                text.push_str(value.unwrap_or(""));
            }
            let [address, broadcast, duplex, operstate, ifalias] = &self.texts;
            let up = if operstate == "up" { 1.0 } else { 0.0 };
            out.sample(self.up, &labels, up);
            out.sample(
                self.info,
                &[
                    device,
                    address,
                    broadcast,
                    duplex,
                    operstate,
                    admin_state(flags),
                    ifalias,
                ],
                1.0,
            );
        }
        self.devices.retain(|_, open| open.seen == generation);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::roots::Roots;

    #[test]
    fn kept_files_are_read_afresh_and_gone_devices_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let eth0 = dir.path().join("sys/class/net/eth0");
        std::fs::create_dir_all(&eth0).unwrap();
        std::fs::write(eth0.join("operstate"), "down\n").unwrap();
        std::fs::write(eth0.join("mtu"), "1500\n").unwrap();
        let roots = Roots {
            sysfs: dir.path().join("sys"),
            ..Roots::default()
        };
        let ctx = Context {
            roots: &roots,
            settings: &NetclassConfig::default(),
        };
        let mut out = Exposition::new("n");
        let Setup::Ready(mut collector) = build(&ctx, &mut out) else {
            panic!("netclass unavailable");
        };
        let mut scrape = |out: &mut Exposition| {
            out.clear();
            collector.update(out).unwrap();
            let mut text = String::new();
            out.render(&mut text);
            text
        };
        assert!(scrape(&mut out).contains("node_network_up{node=\"n\",device=\"eth0\"} 0\n"));
        // Rewritten in place, as sysfs values change under an open file.
        std::fs::write(eth0.join("operstate"), "up\n").unwrap();
        std::fs::write(eth0.join("mtu"), "9000\n").unwrap();
        let text = scrape(&mut out);
        assert!(
            text.contains("node_network_up{node=\"n\",device=\"eth0\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("node_network_mtu_bytes{node=\"n\",device=\"eth0\"} 9000\n"),
            "{text}"
        );
        std::fs::remove_dir_all(&eth0).unwrap();
        let text = scrape(&mut out);
        assert!(!text.contains("eth0"), "{text}");
        // More devices than stay open: all reported, scrape after scrape.
        for n in 0..MAX_OPEN_DEVICES + 4 {
            let veth = dir.path().join(format!("sys/class/net/veth{n}"));
            std::fs::create_dir_all(&veth).unwrap();
            std::fs::write(veth.join("operstate"), "up\n").unwrap();
        }
        for _ in 0..2 {
            let text = scrape(&mut out);
            let up = text
                .lines()
                .filter(|l| l.starts_with("node_network_up{"))
                .count();
            assert_eq!(up, MAX_OPEN_DEVICES + 4, "{text}");
        }
    }

    #[test]
    fn admin_state_is_the_up_flag() {
        assert_eq!(admin_state(Some(0x1003)), "up");
        assert_eq!(admin_state(Some(0x1002)), "down");
        assert_eq!(admin_state(None), "unknown");
    }
}
