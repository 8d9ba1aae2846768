//! The Pi values Linux shows in sysfs, found once at start by name (never by hwmon number),
//! with the thermal_zone and hwmon collectors' helpers: SoC temperature, the deprecated
//! `get_throttled` file, the `rpi_volt` hwmon (under-voltage alarm, rail voltages) and the fan.

use std::path::{Path, PathBuf};

use crate::collector::hwmon::{chip_dirs, chip_name};
use crate::collector::thermal_zone;
use crate::roots::Roots;

/// Which sysfs file a value comes from (the `interface` label of `rpi_metric_source_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysfsFile {
    /// `class/thermal/thermal_zoneN/temp` of type `cpu-thermal`.
    ThermalZone,
    /// `temp1_input` of the hwmon named `cpu_thermal`.
    CpuThermalHwmon,
    /// The firmware device's `get_throttled` (deprecated; the kernel's 2 s poll, which clears
    /// the sticky bits).
    GetThrottled,
    /// The `rpi_volt` hwmon: `in0_lcrit_alarm`, `inN_input`.
    RpiVolt,
    /// `fan1_input`, `pwm1` of the fan's hwmon.
    FanHwmon,
}

impl SysfsFile {
    pub fn interface(self) -> &'static str {
        match self {
            SysfsFile::ThermalZone => "thermal_zone",
            SysfsFile::CpuThermalHwmon => "hwmon_cpu_thermal",
            SysfsFile::GetThrottled => "get_throttled",
            SysfsFile::RpiVolt => "rpi_volt",
            SysfsFile::FanHwmon => "hwmon_pwmfan",
        }
    }
}

/// Hwmon names of fans: the Pi 5 fan and the PoE HAT fans (pwm-fan driver: `pwmfan`; older
/// PoE HAT driver: `rpipoefan`).
const FAN_NAMES: &[&str] = &["pwmfan", "cooling_fan", "pwm_fan", "rpipoefan"];

#[derive(Debug, Default)]
pub struct SysfsFiles {
    pub temperature: Option<(PathBuf, SysfsFile)>,
    pub get_throttled: Option<PathBuf>,
    pub undervoltage_alarm: Option<PathBuf>,
    /// (rail label, inN_input in millivolts)
    pub rail_inputs: Vec<(String, PathBuf)>,
    pub fan_rpm: Option<PathBuf>,
    pub fan_pwm: Option<PathBuf>,
}

impl SysfsFiles {
    pub fn find(roots: &Roots) -> SysfsFiles {
        let hwmons = hwmon_devices(roots);
        let named = |name: &str| hwmons.iter().find(|(_, n)| n == name).map(|(d, _)| d);
        let mut files = SysfsFiles {
            temperature: thermal_zone::list(&roots.sys("class/thermal"), "thermal_zone")
                .into_iter()
                .find(|zone| zone.kind == "cpu-thermal")
                .map(|zone| zone.dir.join("temp"))
                .filter(|p| p.exists())
                .map(|p| (p, SysfsFile::ThermalZone))
                .or_else(|| {
                    named("cpu_thermal")
                        .map(|dir| dir.join("temp1_input"))
                        .filter(|p| p.exists())
                        .map(|p| (p, SysfsFile::CpuThermalHwmon))
                }),
            ..SysfsFiles::default()
        };
        if let Some(dir) = named("rpi_volt") {
            let alarm = dir.join("in0_lcrit_alarm");
            files.undervoltage_alarm = alarm.exists().then_some(alarm);
            for n in 0..8 {
                let input = dir.join(format!("in{n}_input"));
                if !input.exists() {
                    continue;
                }
                let label = crate::roots::read_trimmed(&dir.join(format!("in{n}_label")))
                    .unwrap_or_else(|_| format!("in{n}"));
                files.rail_inputs.push((label, input));
            }
            // The firmware device is the hwmon's grandparent:
            // .../soc:firmware/raspberrypi-hwmon/hwmon/hwmonN (Pi 5: soc@107c000000:firmware).
            files.get_throttled = std::fs::canonicalize(dir)
                .ok()
                .and_then(|p| p.ancestors().nth(3).map(|d| d.join("get_throttled")))
                .filter(|p| p.exists());
        }
        if files.get_throttled.is_none() {
            files.get_throttled = firmware_device(roots)
                .map(|d| d.join("get_throttled"))
                .filter(|p| p.exists());
        }
        // Prefer the board's own fan (Pi 5 cooling_fan) over a HAT's.
        let fan = hwmons
            .iter()
            .filter(|(_, name)| FAN_NAMES.contains(&name.as_str()))
            .max_by_key(|(dir, _)| {
                std::fs::canonicalize(dir)
                    .map(|p| p.to_string_lossy().contains("cooling_fan"))
                    .unwrap_or(false)
            });
        if let Some((dir, _)) = fan {
            let rpm = dir.join("fan1_input");
            let pwm = dir.join("pwm1");
            files.fan_rpm = rpm.exists().then_some(rpm);
            files.fan_pwm = pwm.exists().then_some(pwm);
        }
        files
    }
}

/// `(directory, name)` of every named hwmon device, in directory order (the hwmon
/// collector's listing).
fn hwmon_devices(roots: &Roots) -> Vec<(PathBuf, String)> {
    chip_dirs(&roots.sys("class/hwmon"))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|dir| {
            let name = chip_name(&dir)?;
            Some((dir, name))
        })
        .collect()
}

/// The firmware's platform device: `devices/platform/soc/soc:firmware` (Pi 0-4),
/// `devices/platform/soc@107c000000/soc@107c000000:firmware` (Pi 5): any `soc*` bus with a
/// `*:firmware` child.
fn firmware_device(roots: &Roots) -> Option<PathBuf> {
    let platform = roots.sys("devices/platform");
    let mut buses: Vec<PathBuf> =
        read_dir_named(&platform, |n| n == "soc" || n.starts_with("soc@"));
    buses.sort();
    buses.into_iter().find_map(|bus| {
        let mut found = read_dir_named(&bus, |n| n.ends_with(":firmware"));
        found.sort();
        found.into_iter().next()
    })
}

fn read_dir_named(dir: &Path, wanted: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(&wanted))
        .map(|e| e.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(sys: &Path) -> Roots {
        Roots {
            sysfs: sys.to_path_buf(),
            ..Roots::default()
        }
    }

    #[test]
    fn pi5_firmware_device_under_its_soc_address_and_older_poe_fan_name() {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path();
        let firmware = sys.join("devices/platform/soc@107c000000/soc@107c000000:firmware");
        std::fs::create_dir_all(&firmware).unwrap();
        std::fs::write(firmware.join("get_throttled"), "50000\n").unwrap();
        let fan = sys.join("devices/platform/rpi-poe-fan@0/hwmon/hwmon1");
        std::fs::create_dir_all(&fan).unwrap();
        std::fs::write(fan.join("name"), "rpipoefan\n").unwrap();
        std::fs::write(fan.join("pwm1"), "128\n").unwrap();
        std::fs::create_dir_all(sys.join("class/hwmon")).unwrap();
        std::os::unix::fs::symlink(&fan, sys.join("class/hwmon/hwmon1")).unwrap();
        let files = SysfsFiles::find(&roots(sys));
        assert_eq!(files.get_throttled, Some(firmware.join("get_throttled")));
        assert_eq!(files.fan_pwm, Some(sys.join("class/hwmon/hwmon1/pwm1")));
        assert_eq!(files.fan_rpm, None);
        assert!(files.temperature.is_none());
    }
}
