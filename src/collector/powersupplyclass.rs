//! node_power_supply_* per supply from /sys/class/power_supply/<name>/: UPS HATs, batteries
//! and chargers whose kernel drivers register a power supply. Units as node_exporter: µA, µV,
//! µW, µWh and µAh become A, V, W, Wh and Ah; tenths of a degree become degrees.

use std::path::PathBuf;

use regex_lite::Regex;
use serde::{Deserialize, Serialize};

use super::{CollectError, Collector, Context, Setup};
use crate::roots::{dir_names, parse_int, read_attr};
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::flag::{text_flag, Flag};

/// The powersupplyclass collector's settings (`powersupplyclass: (ignored_supplies: "^AC$")`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PowerSupplyConfig {
    /// Regex of power supplies to skip (node_exporter's default "^$" skips none).
    pub ignored_supplies: String,
}

impl Default for PowerSupplyConfig {
    fn default() -> Self {
        PowerSupplyConfig {
            ignored_supplies: "^$".to_string(),
        }
    }
}

impl super::CollectorSettings for PowerSupplyConfig {
    /// `--collector.*` flags of these settings (node_exporter's names).
    const FLAGS: &'static [Flag<Self>] = &[
        text_flag!(
            "--collector.powersupply.ignored-supplies",
            "REGEX",
            "Regexp of power supplies to ignore for powersupplyclass collector. Config: powersupplyclass.ignored_supplies.",
            ignored_supplies
        ),
    ];

    fn validate(&self) -> Result<(), String> {
        super::device_filter::regex("powersupplyclass.ignored_supplies", &self.ignored_supplies)
            .map(|_| ())
    }
}

/// Sysfs file, metric suffix, divisor.
const NUMBERS: [(&str, &str, f64); 49] = [
    ("authentic", "authentic", 1.0),
    ("calibrate", "calibrate", 1.0),
    ("capacity", "capacity", 1.0),
    ("capacity_alert_max", "capacity_alert_max", 1.0),
    ("capacity_alert_min", "capacity_alert_min", 1.0),
    ("cycle_count", "cyclecount", 1.0),
    ("online", "online", 1.0),
    ("present", "present", 1.0),
    ("time_to_empty_now", "time_to_empty_seconds", 1.0),
    ("time_to_full_now", "time_to_full_seconds", 1.0),
    ("current_boot", "current_boot", 1e6),
    ("current_max", "current_max", 1e6),
    ("current_now", "current_ampere", 1e6),
    ("energy_empty", "energy_empty", 1e6),
    ("energy_empty_design", "energy_empty_design", 1e6),
    ("energy_full", "energy_full", 1e6),
    ("energy_full_design", "energy_full_design", 1e6),
    ("energy_now", "energy_watthour", 1e6),
    ("voltage_boot", "voltage_boot", 1e6),
    ("voltage_max", "voltage_max", 1e6),
    ("voltage_max_design", "voltage_max_design", 1e6),
    ("voltage_min", "voltage_min", 1e6),
    ("voltage_min_design", "voltage_min_design", 1e6),
    ("voltage_now", "voltage_volt", 1e6),
    ("voltage_ocv", "voltage_ocv", 1e6),
    ("charge_control_limit", "charge_control_limit", 1e6),
    ("charge_control_limit_max", "charge_control_limit_max", 1e6),
    ("charge_counter", "charge_counter", 1e6),
    ("charge_empty", "charge_empty", 1e6),
    ("charge_empty_design", "charge_empty_design", 1e6),
    ("charge_full", "charge_full", 1e6),
    ("charge_full_design", "charge_full_design", 1e6),
    ("charge_now", "charge_ampere", 1e6),
    ("charge_term_current", "charge_term_current", 1e6),
    ("constant_charge_current", "constant_charge_current", 1e6),
    (
        "constant_charge_current_max",
        "constant_charge_current_max",
        1e6,
    ),
    ("constant_charge_voltage", "constant_charge_voltage", 1e6),
    (
        "constant_charge_voltage_max",
        "constant_charge_voltage_max",
        1e6,
    ),
    ("precharge_current", "precharge_current", 1e6),
    ("input_current_limit", "input_current_limit", 1e6),
    ("power_now", "power_watt", 1e6),
    ("temp", "temp_celsius", 10.0),
    ("temp_alert_max", "temp_alert_max_celsius", 10.0),
    ("temp_alert_min", "temp_alert_min_celsius", 10.0),
    ("temp_ambient", "temp_ambient_celsius", 10.0),
    ("temp_ambient_max", "temp_ambient_max_celsius", 10.0),
    ("temp_ambient_min", "temp_ambient_min_celsius", 10.0),
    ("temp_max", "temp_max_celsius", 10.0),
    ("temp_min", "temp_min_celsius", 10.0),
];

/// Text attributes that become node_power_supply_info labels when not empty.
const INFO: [&str; 11] = [
    "capacity_level",
    "charge_type",
    "health",
    "manufacturer",
    "model_name",
    "scope",
    "serial_number",
    "status",
    "technology",
    "type",
    "usb_type",
];

pub fn build(ctx: &Context<PowerSupplyConfig>, out: &mut Exposition) -> Setup {
    let ignored = match super::device_filter::regex(
        "powersupplyclass.ignored_supplies",
        &ctx.settings.ignored_supplies,
    ) {
        Ok(regex) => regex,
        Err(err) => return Setup::Unavailable(err),
    };
    let class = ctx.roots.sys("class/power_supply");
    if !class.is_dir() {
        return Setup::Unavailable(format!("no {}", class.display()));
    }
    Setup::Ready(Box::new(PowerSupplyCollector {
        class,
        ignored,
        buf: Vec::with_capacity(64),
        texts: Default::default(),
        numbers: NUMBERS.map(|(_, name, _)| {
            out.family(
                &format!("node_power_supply_{name}"),
                &format!("{name} value of /sys/class/power_supply/<power_supply>."),
                Kind::Gauge,
                &["power_supply"],
            )
        }),
        info: out.family(
            "node_power_supply_info",
            "info of /sys/class/power_supply/<power_supply>.",
            Kind::Gauge,
            &["power_supply"],
        ),
    }))
}

struct PowerSupplyCollector {
    class: PathBuf,
    ignored: Regex,
    buf: Vec<u8>,
    texts: [String; 11],
    numbers: [FamilyId; 49],
    /// Its label names vary with the supply (only non-empty attributes), as node_exporter's.
    info: FamilyId,
}

impl Collector for PowerSupplyCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        let supplies = match dir_names(&self.class) {
            Ok(names) => names,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(CollectError(format!("{}: {err}", self.class.display()))),
        };
        for supply in supplies.iter().filter(|s| !self.ignored.is_match(s)) {
            let dir = self.class.join(supply);
            // Only the files this supply has: one directory listing, no failed opens.
            let files =
                dir_names(&dir).map_err(|err| CollectError(format!("{}: {err}", dir.display())))?;
            for text in &mut self.texts {
                text.clear();
            }
            for file in &files {
                if let Some(index) = NUMBERS.iter().position(|(name, ..)| name == file) {
                    if let Some(value) =
                        read_attr(&dir.join(file), &mut self.buf).and_then(parse_int)
                    {
                        out.sample(
                            self.numbers[index],
                            &[supply],
                            value as f64 / NUMBERS[index].2,
                        );
                    }
                } else if let Ok(index) = INFO.binary_search(&file.as_str()) {
                    if let Some(text) = read_attr(&dir.join(file), &mut self.buf) {
                        self.texts[index].push_str(text);
                    }
                }
            }
            let mut labels: Vec<(&str, &str)> = vec![("power_supply", supply)];
            labels.extend(
                INFO.iter()
                    .zip(&self.texts)
                    .filter(|(_, text)| !text.is_empty())
                    .map(|(name, text)| (*name, text.as_str())),
            );
            labels.sort_unstable();
            out.sample_with_labels(self.info, &labels, 1.0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_files_are_sorted_for_binary_search() {
        let mut sorted = INFO;
        sorted.sort_unstable();
        assert_eq!(sorted, INFO);
    }
}
