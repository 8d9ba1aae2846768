//! Hardware monitoring chips of /sys/class/hwmon, with node_exporter's hwmon semantics so its
//! dashboards and alerts keep working:
//!
//! - the `chip` label comes from the device path, not from the unstable `hwmonN` number:
//!   `<parent dir>_<device dir>` of the resolved `device` link, cleaned
//!   (`platform_cooling_fan`, `thermal_thermal_zone0`, `soc:firmware_raspberrypi_hwmon`); then
//!   the `name` file; then the `hwmonN` directory name;
//! - every `<type><n>_<property>` file of the chip directory and of its `device` directory is a
//!   series: `temp1_input` -> `node_hwmon_temp_celsius{sensor="temp1"}`, `temp1_crit` ->
//!   `node_hwmon_temp_crit_celsius`, `in0_lcrit_alarm` -> `node_hwmon_in_lcrit_alarm_volts`
//!   (sic), `fan1_input` -> `node_hwmon_fan_rpm`, `pwm1` -> `node_hwmon_pwm`, ...;
//! - units: temp, in, curr /1000; power, energy, humidity /1e6; fan and pwm as they are;
//! - `node_hwmon_chip_names{chip,chip_name}` and `node_hwmon_sensor_label{chip,sensor,label}`
//!   annotate chips and sensors.
//!
//! The chips and their files are listed once at start-up; a scrape reads the value files only.
//! A chip or file that vanishes (driver unloaded, USB sensor unplugged) is skipped, as
//! node_exporter skips unreadable files.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::{CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::roots::{dir_names, KeptFile};

/// Sensor types node_exporter exports; other files of a chip directory are ignored.
const SENSOR_TYPES: &[&str] = &[
    "vrm",
    "beep_enable",
    "update_interval",
    "in",
    "cpu",
    "fan",
    "pwm",
    "temp",
    "curr",
    "power",
    "energy",
    "humidity",
    "intrusion",
];

/// node_exporter's cleanMetricName: lower case, `[^a-z0-9:_]` -> `_`, `_` trimmed at both ends.
pub fn clean_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    cleaned.trim_matches('_').to_string()
}

/// A sensor file name split as node_exporter's `^([^0-9]+)([0-9]*)?(_(.+))?$` splits it:
/// `temp1_crit_alarm` -> ("temp", 1, "crit_alarm"); `pwm1` -> ("pwm", 1, "");
/// `update_interval` -> ("update_interval", 0, "").
#[derive(Debug, PartialEq, Eq)]
pub struct SensorFile<'a> {
    pub kind: &'a str,
    pub number: i64,
    pub property: &'a str,
}

pub fn split_sensor_file(name: &str) -> Option<SensorFile<'_>> {
    let type_end = name
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(name.len());
    // The regex engine prefers the longest type; a shorter one only matches where the rest
    // is `_<property>`.
    for end in (1..=type_end).rev() {
        if !name.is_char_boundary(end) {
            continue;
        }
        let rest = &name[end..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let after = &rest[digits..];
        let property = if after.is_empty() {
            ""
        } else if let Some(property) = after.strip_prefix('_').filter(|p| !p.is_empty()) {
            property
        } else {
            continue;
        };
        let number = if digits == 0 {
            0
        } else {
            rest[..digits].parse::<i64>().ok()?
        };
        return Some(SensorFile {
            kind: &name[..end],
            number,
            property,
        });
    }
    None
}

/// How a value file is scaled into its metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    Factor(f64),
    /// `beep_enable`: 1 when the file reads "1", else 0.
    OneIfOne,
}

/// The metric of one property of a sensor, as node_exporter names it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub scale: Scale,
}

/// Classifies `<kind><n>_<property>`; `has_plain` says whether the sensor also has a file
/// without property (`temp0`), which turns `input` into `_input`. `None`: not exported.
pub fn classify(kind: &str, property: &str, has_plain: bool) -> Option<MetricSpec> {
    let spec = |name: String, help: String, metric_kind: Kind, scale: Scale| {
        Some(MetricSpec {
            name,
            help,
            kind: metric_kind,
            scale,
        })
    };
    let gauge = |name: &str, help: &str, factor: f64| {
        spec(
            name.to_string(),
            help.to_string(),
            Kind::Gauge,
            Scale::Factor(factor),
        )
    };
    match kind {
        // Only their plain file counts.
        "beep_enable" if property.is_empty() => {
            return spec(
                "node_hwmon_beep_enabled".into(),
                "Hardware beep enabled".into(),
                Kind::Gauge,
                Scale::OneIfOne,
            )
        }
        "vrm" if property.is_empty() => {
            return gauge(
                "node_hwmon_voltage_regulator_version",
                "Hardware voltage regulator",
                1.0,
            )
        }
        "update_interval" if property.is_empty() => {
            return gauge(
                "node_hwmon_update_interval_seconds",
                "Hardware monitor update interval",
                0.001,
            )
        }
        "beep_enable" | "vrm" | "update_interval" => return None,
        _ => {}
    }
    if property == "label" {
        return None;
    }
    let mut name = format!("node_hwmon_{kind}");
    if property == "input" {
        if has_plain {
            name.push_str("_input");
        }
    } else if !property.is_empty() {
        name.push('_');
        name.push_str(&clean_name(property));
    }
    let gauge_named = |name: String, help: String, factor: f64| {
        spec(name, help, Kind::Gauge, Scale::Factor(factor))
    };
    if property == "fault" || property == "alarm" {
        return gauge_named(
            name,
            format!("Hardware sensor {property} status ({kind})"),
            1.0,
        );
    }
    if property == "beep" {
        return gauge_named(
            format!("{name}_enabled"),
            "Hardware monitor sensor has beeping enabled".into(),
            1.0,
        );
    }
    match kind {
        "in" | "cpu" => gauge_named(
            format!("{name}_volts"),
            format!("Hardware monitor for voltage ({property})"),
            0.001,
        ),
        "temp" if property != "type" => gauge_named(
            format!("{name}_celsius"),
            format!("Hardware monitor for temperature ({property})"),
            0.001,
        ),
        "curr" => gauge_named(
            format!("{name}_amps"),
            format!("Hardware monitor for current ({property})"),
            0.001,
        ),
        "energy" => spec(
            format!("{name}_joule_total"),
            format!("Hardware monitor for joules used so far ({property})"),
            Kind::Counter,
            Scale::Factor(1e-6),
        ),
        "power" if property == "accuracy" => gauge_named(
            name,
            "Hardware monitor power meter accuracy, as a ratio".into(),
            1e-6,
        ),
        "power"
            if matches!(
                property,
                "average_interval" | "average_interval_min" | "average_interval_max"
            ) =>
        {
            gauge_named(
                format!("{name}_seconds"),
                format!("Hardware monitor power usage update interval ({property})"),
                0.001,
            )
        }
        "power" => gauge_named(
            format!("{name}_watt"),
            format!("Hardware monitor for power usage in watts ({property})"),
            1e-6,
        ),
        "humidity" => gauge_named(
            name,
            format!(
                "Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the \
                 humidity as a percentage) ({property})"
            ),
            1e-6,
        ),
        "fan" if matches!(property, "input" | "min" | "max" | "target") => gauge_named(
            format!("{name}_rpm"),
            format!("Hardware monitor for fan revolutions per minute ({property})"),
            1.0,
        ),
        _ => gauge_named(
            name,
            format!("Hardware monitor {kind} element {property}"),
            1.0,
        ),
    }
}

/// Parses a value file as node_exporter does (newlines trimmed, then a float).
pub fn parse_value(bytes: &[u8], scale: Scale) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?.trim_matches('\n');
    match scale {
        Scale::OneIfOne => Some(if text == "1" { 1.0 } else { 0.0 }),
        Scale::Factor(factor) => {
            let value: f64 = text.parse().ok()?;
            // Go's ParseFloat fails on out-of-range input; node_exporter then skips the file.
            value.is_finite().then_some(value * factor)
        }
    }
}

/// The `chip` label of a hwmon directory (node_exporter's hwmonName).
pub fn chip_label(dir: &Path) -> Option<String> {
    if let Ok(device) = fs::canonicalize(dir.join("device")) {
        let dev_name = device
            .file_name()
            .map(|n| clean_name(&n.to_string_lossy()))
            .unwrap_or_default();
        let dev_type = device
            .parent()
            .and_then(Path::file_name)
            .map(|n| clean_name(&n.to_string_lossy()))
            .unwrap_or_default();
        if !dev_type.is_empty() && !dev_name.is_empty() {
            return Some(format!("{dev_type}_{dev_name}"));
        }
        if !dev_name.is_empty() {
            return Some(dev_name);
        }
    }
    if let Some(name) = chip_name(dir) {
        return Some(name);
    }
    let real = fs::canonicalize(dir).ok()?;
    let name = clean_name(&real.file_name()?.to_string_lossy());
    (!name.is_empty()).then_some(name)
}

/// The chip directories of `class` (/sys/class/hwmon), in name order: the hwmonN links
/// followed to ../../devices/...; dangling links are skipped.
pub fn chip_dirs(class: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(class)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// The human-readable chip name (`chip_name` label): the cleaned `name` file.
pub fn chip_name(dir: &Path) -> Option<String> {
    let raw = crate::roots::read(&dir.join("name")).ok()?;
    let name = clean_name(&String::from_utf8_lossy(&raw));
    (!name.is_empty()).then_some(name)
}

struct Reading {
    file: KeptFile,
    family: FamilyId,
    sensor: String,
    scale: Scale,
}

struct Chip {
    dir: PathBuf,
    label: String,
    name: Option<String>,
    /// (sensor, label text) pairs.
    sensor_labels: Vec<(String, String)>,
    readings: Vec<Reading>,
}

/// sensor -> property -> file, from the chip directory then its device directory (which wins,
/// as node_exporter reads it second).
fn sensor_files(dir: &Path) -> BTreeMap<String, BTreeMap<String, (String, PathBuf)>> {
    let mut sensors: BTreeMap<String, BTreeMap<String, (String, PathBuf)>> = BTreeMap::new();
    let device = dir.join("device");
    let dirs: Vec<&Path> = if device.is_dir() {
        vec![dir, &device]
    } else {
        vec![dir]
    };
    for dir in dirs {
        let Ok(names) = dir_names(dir) else {
            continue;
        };
        for file in names {
            let Some(split) = split_sensor_file(&file) else {
                continue;
            };
            if !SENSOR_TYPES.contains(&split.kind) {
                continue;
            }
            let path = dir.join(&file);
            // Directories (`power/`) and other unreadable entries are skipped, as node_exporter
            // skips files it cannot read.
            if !path.is_file() {
                continue;
            }
            let sensor = format!("{}{}", split.kind, split.number);
            sensors
                .entry(sensor)
                .or_default()
                .insert(split.property.to_string(), (split.kind.to_string(), path));
        }
    }
    sensors
}

fn scan_chip(
    dir: &Path,
    out: &mut Exposition,
    seen: &mut HashSet<(FamilyId, String, String)>,
) -> Option<Chip> {
    let label = chip_label(dir)?;
    let mut chip = Chip {
        dir: dir.to_path_buf(),
        name: chip_name(dir),
        label,
        sensor_labels: Vec::new(),
        readings: Vec::new(),
    };
    for (sensor, properties) in sensor_files(dir) {
        let has_plain = properties.contains_key("");
        for (property, (kind, path)) in &properties {
            if property == "label" {
                if let Ok(raw) = crate::roots::read(path) {
                    let text = String::from_utf8_lossy(&raw).trim_matches('\n').to_string();
                    chip.sensor_labels.push((sensor.clone(), text));
                }
                continue;
            }
            let Some(spec) = classify(kind, property, has_plain) else {
                continue;
            };
            let family = out.family(&spec.name, &spec.help, spec.kind, &["chip", "sensor"]);
            if !seen.insert((family, chip.label.clone(), sensor.clone())) {
                log::warn!(
                    "hwmon: {} duplicates {}{{chip={:?},sensor={:?}}}; skipped",
                    path.display(),
                    spec.name,
                    chip.label,
                    sensor
                );
                continue;
            }
            chip.readings.push(Reading {
                file: KeptFile::new(path.clone()),
                family,
                sensor: sensor.clone(),
                scale: spec.scale,
            });
        }
    }
    Some(chip)
}

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    let class = ctx.roots.sys("class/hwmon");
    let dirs = match chip_dirs(&class) {
        Ok(dirs) => dirs,
        Err(err) => return Setup::Unavailable(format!("{}: {err}", class.display())),
    };
    let chip_names = out.family(
        "node_hwmon_chip_names",
        "Annotation metric for human-readable chip names",
        Kind::Gauge,
        &["chip", "chip_name"],
    );
    let sensor_label = out.family(
        "node_hwmon_sensor_label",
        "Label for given chip and sensor",
        Kind::Gauge,
        &["chip", "sensor", "label"],
    );
    let mut seen = HashSet::new();
    let chips: Vec<Chip> = dirs
        .iter()
        .filter_map(|dir| {
            let chip = scan_chip(dir, out, &mut seen);
            if chip.is_none() {
                log::warn!("hwmon: cannot derive a chip name for {}", dir.display());
            }
            chip
        })
        .collect();
    if chips.is_empty() {
        return Setup::Unavailable(format!(
            "no hardware monitoring chips in {}",
            class.display()
        ));
    }
    Setup::Ready(Box::new(HwmonCollector {
        chips,
        chip_names,
        sensor_label,
        buf: Vec::with_capacity(64),
    }))
}

struct HwmonCollector {
    chips: Vec<Chip>,
    chip_names: FamilyId,
    sensor_label: FamilyId,
    buf: Vec<u8>,
}

impl Collector for HwmonCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        for chip in &mut self.chips {
            // A chip that went away (module unloaded, USB unplugged) is skipped whole.
            if !chip.dir.is_dir() {
                continue;
            }
            if let Some(name) = &chip.name {
                out.sample(self.chip_names, &[&chip.label, name], 1.0);
            }
            for (sensor, label) in &chip.sensor_labels {
                out.sample(self.sensor_label, &[&chip.label, sensor, label], 1.0);
            }
            for reading in &mut chip.readings {
                if reading.file.read_into(&mut self.buf).is_err() {
                    continue;
                }
                if let Some(value) = parse_value(&self.buf, reading.scale) {
                    out.sample(reading.family, &[&chip.label, &reading.sensor], value);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensor_file_names_split_as_node_exporter_splits_them() {
        let split = |name| split_sensor_file(name).map(|s| (s.kind, s.number, s.property));
        assert_eq!(split("temp1_input"), Some(("temp", 1, "input")));
        assert_eq!(split("temp1_crit_alarm"), Some(("temp", 1, "crit_alarm")));
        assert_eq!(split("in0_lcrit_alarm"), Some(("in", 0, "lcrit_alarm")));
        assert_eq!(split("pwm1"), Some(("pwm", 1, "")));
        assert_eq!(split("temp"), Some(("temp", 0, "")));
        assert_eq!(split("temp01_input"), Some(("temp", 1, "input")));
        assert_eq!(split("update_interval"), Some(("update_interval", 0, "")));
        assert_eq!(split("beep_enable"), Some(("beep_enable", 0, "")));
        assert_eq!(split("name"), Some(("name", 0, "")));
        assert_eq!(split("a_b1c"), Some(("a", 0, "b1c")));
        assert_eq!(split("in0x"), None);
        assert_eq!(split("1abc"), None);
        assert_eq!(split("temp1_"), None);
        assert_eq!(split(""), None);
        assert_eq!(split("temp99999999999999999999_input"), None);
    }

    #[test]
    fn names_are_cleaned_like_node_exporter() {
        assert_eq!(clean_name("cpu_thermal\n"), "cpu_thermal");
        assert_eq!(clean_name("raspberrypi-hwmon"), "raspberrypi_hwmon");
        assert_eq!(clean_name("soc:firmware"), "soc:firmware");
        assert_eq!(clean_name("1f000c8000.adc"), "1f000c8000_adc");
        assert_eq!(clean_name("PWM-Fan"), "pwm_fan");
        assert_eq!(clean_name("--"), "");
    }

    #[test]
    fn metric_names_and_units_follow_node_exporter() {
        let name = |kind, property, plain| classify(kind, property, plain).map(|s| s.name);
        let cases = [
            ("temp", "input", false, "node_hwmon_temp_celsius"),
            ("temp", "input", true, "node_hwmon_temp_input_celsius"),
            ("temp", "", true, "node_hwmon_temp_celsius"),
            ("temp", "crit", false, "node_hwmon_temp_crit_celsius"),
            ("temp", "max", false, "node_hwmon_temp_max_celsius"),
            (
                "temp",
                "crit_hyst",
                false,
                "node_hwmon_temp_crit_hyst_celsius",
            ),
            (
                "temp",
                "crit_alarm",
                false,
                "node_hwmon_temp_crit_alarm_celsius",
            ),
            ("temp", "alarm", false, "node_hwmon_temp_alarm"),
            ("temp", "type", false, "node_hwmon_temp_type"),
            ("in", "input", false, "node_hwmon_in_volts"),
            (
                "in",
                "lcrit_alarm",
                false,
                "node_hwmon_in_lcrit_alarm_volts",
            ),
            ("in", "alarm", false, "node_hwmon_in_alarm"),
            ("fan", "input", false, "node_hwmon_fan_rpm"),
            ("fan", "target", false, "node_hwmon_fan_target_rpm"),
            ("fan", "pulses", false, "node_hwmon_fan_pulses"),
            ("pwm", "", true, "node_hwmon_pwm"),
            ("pwm", "enable", true, "node_hwmon_pwm_enable"),
            ("curr", "input", false, "node_hwmon_curr_amps"),
            ("power", "average", false, "node_hwmon_power_average_watt"),
            ("power", "input", false, "node_hwmon_power_watt"),
            ("power", "accuracy", false, "node_hwmon_power_accuracy"),
            (
                "power",
                "average_interval",
                false,
                "node_hwmon_power_average_interval_seconds",
            ),
            ("energy", "input", false, "node_hwmon_energy_joule_total"),
            ("humidity", "input", false, "node_hwmon_humidity"),
            ("intrusion", "alarm", false, "node_hwmon_intrusion_alarm"),
            ("fan", "beep", false, "node_hwmon_fan_beep_enabled"),
            ("beep_enable", "", true, "node_hwmon_beep_enabled"),
            ("vrm", "", true, "node_hwmon_voltage_regulator_version"),
            (
                "update_interval",
                "",
                true,
                "node_hwmon_update_interval_seconds",
            ),
        ];
        for (kind, property, plain, expected) in cases {
            assert_eq!(
                name(kind, property, plain).as_deref(),
                Some(expected),
                "{kind} {property}"
            );
        }
        assert_eq!(name("temp", "label", false), None);
        assert_eq!(name("vrm", "x", false), None);
        let energy = classify("energy", "input", false).unwrap();
        assert_eq!(energy.kind, Kind::Counter);
        assert_eq!(energy.scale, Scale::Factor(1e-6));
    }

    #[test]
    fn values_scale_and_garbage_is_skipped() {
        // Raspberry Pi 5 samples (pi-facts): rp1_adc temp1_input, cooling_fan fan1_input.
        assert_eq!(parse_value(b"53729\n", Scale::Factor(0.001)), Some(53.729));
        assert_eq!(parse_value(b"1468\n", Scale::Factor(1.0)), Some(1468.0));
        assert_eq!(parse_value(b"0\n", Scale::Factor(0.001)), Some(0.0));
        assert_eq!(parse_value(b"1\n", Scale::OneIfOne), Some(1.0));
        assert_eq!(parse_value(b"yes\n", Scale::OneIfOne), Some(0.0));
        assert_eq!(
            parse_value(b"99999999999999999999\n", Scale::Factor(1.0)),
            Some(1e20)
        );
        for bad in [&b""[..], b"\n", b"abc\n", b" 12\n", b"1e400\n", b"\xff"] {
            assert_eq!(parse_value(bad, Scale::Factor(1.0)), None, "{bad:?}");
        }
    }
}
