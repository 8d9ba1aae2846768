//! node_network_up, node_network_info and the node_network_<property> gauges from
//! /sys/class/net/<device>/ (node_exporter's netclass collector, sysfs mode).
//!
//! Attributes a driver refuses to give (EINVAL for `speed` while the link is down, missing
//! files on virtual devices) are skipped, as node_exporter skips them.

use std::path::PathBuf;

use regex_lite::Regex;
use serde::{Deserialize, Serialize};

use super::sysattr::{dir_names, parse_int, read_attr};
use super::{CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};

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

impl NetclassConfig {
    pub fn validate(&self) -> Result<(), String> {
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

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    let settings = &ctx.config.netclass;
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
        device_dir: DeviceDir {
            class_net: ctx.roots.sys("class/net"),
            path: PathBuf::new(),
            buf: Vec::with_capacity(256),
        },
        ignored,
        ignore_invalid_speed: settings.ignore_invalid_speed,
        texts: Default::default(),
        up,
        info,
        attributes,
    }))
}

struct NetclassCollector {
    device_dir: DeviceDir,
    ignored: Regex,
    ignore_invalid_speed: bool,
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

/// Reads /sys/class/net/<device>/<file> with one reused path and buffer.
struct DeviceDir {
    class_net: PathBuf,
    path: PathBuf,
    buf: Vec<u8>,
}

impl DeviceDir {
    fn set(&mut self, device: &str) {
        self.path.clear();
        self.path.push(&self.class_net);
        self.path.push(device);
    }

    fn read(&mut self, device: &str, file: &str) -> Option<&str> {
        self.set(device);
        self.path.push(file);
        read_attr(&self.path, &mut self.buf)
    }
}

impl Collector for NetclassCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        let class_net = &self.device_dir.class_net;
        let devices = dir_names(class_net)
            .map_err(|err| CollectError(format!("{}: {err}", class_net.display())))?;
        for device in &devices {
            if self.ignored.is_match(device) {
                continue;
            }
            // `bonding_masters` and other plain files are not devices.
            self.device_dir.set(device);
            if !self.device_dir.path.is_dir() {
                continue;
            }
            let labels = [device.as_str()];
            let mut flags = None;
            for (index, (file, _, _)) in ATTRIBUTES.iter().enumerate() {
                let Some(value) = self.device_dir.read(device, file).and_then(parse_int) else {
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
            for (index, file) in INFO_FILES.iter().enumerate() {
                self.texts[index].clear();
                self.texts[index].push_str(self.device_dir.read(device, file).unwrap_or(""));
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_state_is_the_up_flag() {
        assert_eq!(admin_state(Some(0x1003)), "up");
        assert_eq!(admin_state(Some(0x1002)), "down");
        assert_eq!(admin_state(None), "unknown");
    }
}
