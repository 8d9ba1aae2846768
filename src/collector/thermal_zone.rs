//! Thermal zones and cooling devices of /sys/class/thermal, as node_exporter's thermal_zone
//! collector exports them:
//! `thermal_zone0/{type,temp}` -> `node_thermal_zone_temp{zone="0",type="cpu-thermal"}` (Celsius),
//! `cooling_device0/{type,cur_state,max_state}` -> `node_cooling_device_{cur,max}_state{name,type}`.
//!
//! Zones and devices are listed once at start-up (they are fixed by the device tree); their
//! `type` is read then too. A zone whose sensor cannot be read (ENODATA from a broken sensor,
//! a zone that went away) is skipped for that scrape.

use std::path::{Path, PathBuf};

use super::{CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::roots::{numbered_dirs, parse_i64, read_trimmed, KeptFile};

/// A `thermal_zone0` or `cooling_device0` directory: its number, type and directory.
pub(crate) struct Entry {
    pub(crate) number: String,
    pub(crate) kind: String,
    pub(crate) dir: PathBuf,
}

/// Lists `<prefix>N` directories of `dir` in numeric order, reading each `type`.
pub(crate) fn list(dir: &Path, prefix: &str) -> Vec<Entry> {
    numbered_dirs(dir, prefix)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(number, dir)| {
            let kind = read_trimmed(&dir.join("type")).ok()?;
            Some(Entry {
                number: number.to_string(),
                kind,
                dir,
            })
        })
        .collect()
}

struct Zone {
    number: String,
    kind: String,
    temp: KeptFile,
}

struct CoolingDevice {
    number: String,
    kind: String,
    cur_state: KeptFile,
    max_state: KeptFile,
}

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    let class = ctx.roots.sys("class/thermal");
    let zones: Vec<Zone> = list(&class, "thermal_zone")
        .into_iter()
        .map(|e| Zone {
            temp: KeptFile::new(e.dir.join("temp")),
            number: e.number,
            kind: e.kind,
        })
        .collect();
    let devices: Vec<CoolingDevice> = list(&class, "cooling_device")
        .into_iter()
        .map(|e| CoolingDevice {
            cur_state: KeptFile::new(e.dir.join("cur_state")),
            max_state: KeptFile::new(e.dir.join("max_state")),
            number: e.number,
            kind: e.kind,
        })
        .collect();
    if zones.is_empty() && devices.is_empty() {
        return Setup::Unavailable(format!(
            "no thermal zones or cooling devices in {}",
            class.display()
        ));
    }
    Setup::Ready(Box::new(ThermalZoneCollector {
        zone_temp: out.family(
            "node_thermal_zone_temp",
            "Zone temperature in Celsius",
            Kind::Gauge,
            &["zone", "type"],
        ),
        cur_state: out.family(
            "node_cooling_device_cur_state",
            "Current throttle state of the cooling device",
            Kind::Gauge,
            &["name", "type"],
        ),
        max_state: out.family(
            "node_cooling_device_max_state",
            "Maximum throttle state of the cooling device",
            Kind::Gauge,
            &["name", "type"],
        ),
        zones,
        devices,
        buf: Vec::with_capacity(32),
    }))
}

struct ThermalZoneCollector {
    zones: Vec<Zone>,
    devices: Vec<CoolingDevice>,
    zone_temp: FamilyId,
    cur_state: FamilyId,
    max_state: FamilyId,
    buf: Vec<u8>,
}

impl ThermalZoneCollector {
    /// Reads one integer attribute; `None` when the sensor has no reading right now (ENODATA,
    /// which node_exporter skips too).
    fn read(&mut self, file: &mut KeptFile) -> Result<Option<i64>, CollectError> {
        match file.read_into(&mut self.buf) {
            Ok(()) => {}
            Err(err) if err.raw_os_error() == Some(libc::ENODATA) => return Ok(None),
            Err(err) => return Err(CollectError(format!("{}: {err}", file.path().display()))),
        }
        parse_i64(&self.buf)
            .map(Some)
            .map_err(|err| CollectError(format!("{}: {err}", file.path().display())))
    }
}

impl Collector for ThermalZoneCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        let mut first_error: Option<CollectError> = None;
        let mut zones = std::mem::take(&mut self.zones);
        for zone in &mut zones {
            match self.read(&mut zone.temp) {
                Ok(Some(milli)) => out.sample(
                    self.zone_temp,
                    &[&zone.number, &zone.kind],
                    milli as f64 / 1000.0,
                ),
                Ok(None) => {}
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        self.zones = zones;
        let mut devices = std::mem::take(&mut self.devices);
        for device in &mut devices {
            let labels = [device.number.as_str(), device.kind.as_str()];
            match self.read(&mut device.cur_state) {
                Ok(Some(state)) => out.sample(self.cur_state, &labels, state as f64),
                Ok(None) => {}
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
            match self.read(&mut device.max_state) {
                Ok(Some(state)) => out.sample(self.max_state, &labels, state as f64),
                Ok(None) => {}
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        self.devices = devices;
        match first_error {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_sysfs_values() {
        // Raspberry Pi thermal_zone0/temp samples (pi-facts: Pi 4 41868 / 54768, Pi 5 46300).
        assert_eq!(parse_i64(b"41868\n"), Ok(41868));
        assert_eq!(parse_i64(b"46300\n"), Ok(46300));
        // Pi 5 cooling_device0 (pwm-fan) max_state.
        assert_eq!(parse_i64(b"4\n"), Ok(4));
        // intel_powerclamp reports cur_state -1 when idle; negative temperatures exist too.
        assert_eq!(parse_i64(b"-1\n"), Ok(-1));
        assert_eq!(parse_i64(b"-5000"), Ok(-5000));
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [
            &b""[..],
            b"\n",
            b"abc\n",
            b"41.8\n",
            b"99999999999999999999\n",
            b"\xff",
        ] {
            assert!(parse_i64(bad).is_err(), "{bad:?}");
        }
    }
}
