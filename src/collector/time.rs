//! node_time_seconds, node_time_zone_offset_seconds{time_zone} and
//! node_time_clocksource_{available,current}_info{device,clocksource} from
//! /sys/devices/system/clocksource/clocksourceN/, as node_exporter's `time` collector.
//!
//! The zone comes from the C library (localtime_r: tm_gmtoff, tm_zone), which reads TZ or
//! /etc/localtime as Go does for node_exporter.

use std::ffi::CStr;
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{read_kept, CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::roots::{numbered_dirs, KeptFile};

extern "C" {
    /// POSIX; not in the libc crate for Linux targets. Re-reads TZ and /etc/localtime (glibc
    /// and musl only re-parse the zone file when it changed), so a zone change shows up
    /// without a restart.
    fn tzset();
}

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    let clocksource_dir = ctx.roots.sys("devices/system/clocksource");
    let clocksources = match find_clocksources(&clocksource_dir) {
        Ok(found) => found,
        Err(err) => {
            // node_exporter would fail every scrape; the time itself is still worth having.
            log::info!(
                "time: no clocksources in {}: {err}",
                clocksource_dir.display()
            );
            Vec::new()
        }
    };
    Setup::Ready(Box::new(TimeCollector {
        clocksources,
        buf: Vec::with_capacity(128),
        zone: String::new(),
        now: out.family(
            "node_time_seconds",
            "System time in seconds since epoch (1970).",
            Kind::Gauge,
            &[],
        ),
        zone_offset: out.family(
            "node_time_zone_offset_seconds",
            "System time zone offset in seconds.",
            Kind::Gauge,
            &["time_zone"],
        ),
        available: out.family(
            "node_time_clocksource_available_info",
            "Available clocksources read from '/sys/devices/system/clocksource'.",
            Kind::Gauge,
            &["device", "clocksource"],
        ),
        current: out.family(
            "node_time_clocksource_current_info",
            "Current clocksource read from '/sys/devices/system/clocksource'.",
            Kind::Gauge,
            &["device", "clocksource"],
        ),
    }))
}

struct Clocksource {
    device: String,
    available: KeptFile,
    current: KeptFile,
}

struct TimeCollector {
    clocksources: Vec<Clocksource>,
    buf: Vec<u8>,
    /// The zone name of the last scrape, kept so an unchanged zone is not allocated again.
    zone: String,
    now: FamilyId,
    zone_offset: FamilyId,
    available: FamilyId,
    current: FamilyId,
}

/// The `clocksourceN` directories, by number (node_exporter's device label is N).
fn find_clocksources(dir: &Path) -> io::Result<Vec<Clocksource>> {
    Ok(numbered_dirs(dir, "clocksource")?
        .into_iter()
        .map(|(number, path)| Clocksource {
            device: number.to_string(),
            available: KeptFile::new(path.join("available_clocksource")),
            current: KeptFile::new(path.join("current_clocksource")),
        })
        .collect())
}

/// Seconds since the epoch as node_exporter computes them: nanoseconds / 1e9.
pub fn unix_seconds(now: SystemTime) -> f64 {
    match now.duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_nanos() as f64 / 1e9,
        Err(before) => -(before.duration().as_nanos() as f64 / 1e9),
    }
}

/// The local zone's UTC offset in seconds at `unix_seconds`; its abbreviation ("CEST") is
/// written to `name`, which is only reallocated when the abbreviation changes.
pub fn local_zone(unix_seconds: i64, name: &mut String) -> io::Result<i64> {
    // The C type is inferred from localtime_r's parameter: naming `libc::time_t` is deprecated
    // on musl targets (it becomes 64-bit on 32-bit ARM with musl 1.2). A no-op where it is
    // i64 already, a range check where it is i32 (32-bit ARM glibc).
    #[allow(clippy::useless_conversion)]
    let time = unix_seconds
        .try_into()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "time out of range"))?;
    // SAFETY: tzset and localtime_r only write the C library's zone state and `tm`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe { tzset() };
    if unsafe { libc::localtime_r(&time, &mut tm) }.is_null() {
        return Err(io::Error::last_os_error());
    }
    let zone = if tm.tm_zone.is_null() {
        Default::default()
    } else {
        // SAFETY: a non-null tm_zone points to a NUL-terminated string owned by the C library.
        unsafe { CStr::from_ptr(tm.tm_zone) }.to_string_lossy()
    };
    if *name != zone {
        name.clear();
        name.push_str(&zone);
    }
    // tm_gmtoff is a c_long: 32 bits on armhf, so the conversion is not useless there.
    #[allow(clippy::useless_conversion)]
    Ok(i64::from(tm.tm_gmtoff))
}

/// The names in available_clocksource ("arch_sys_counter \n", "tsc kvm-clock \n").
pub fn parse_clocksources(bytes: &[u8]) -> Result<impl Iterator<Item = &str>, CollectError> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| CollectError("clocksource: not UTF-8".into()))?;
    Ok(text.split_ascii_whitespace())
}

impl Collector for TimeCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        let now = SystemTime::now();
        let seconds = unix_seconds(now);
        out.sample(self.now, &[], seconds);
        let offset = local_zone(seconds.floor() as i64, &mut self.zone)
            .map_err(|err| CollectError(format!("local time zone: {err}")))?;
        out.sample(self.zone_offset, &[&self.zone], offset as f64);

        for source in &mut self.clocksources {
            read_kept(&mut source.available, &mut self.buf)?;
            for name in parse_clocksources(&self.buf)? {
                out.sample(self.available, &[&source.device, name], 1.0);
            }
            read_kept(&mut source.current, &mut self.buf)?;
            let mut current = parse_clocksources(&self.buf)?;
            match (current.next(), current.next()) {
                (Some(name), None) => out.sample(self.current, &[&source.device, name], 1.0),
                _ => {
                    return Err(CollectError(format!(
                        "{}: want one clocksource, got {:?}",
                        source.current.path().display(),
                        String::from_utf8_lossy(&self.buf)
                    )))
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
    fn clocksource_lists() {
        // This machine's available_clocksource, and a Raspberry Pi's.
        let vm = include_bytes!(
            "../../tests/fixtures/x86-vm/sys/devices/system/clocksource/clocksource0/available_clocksource"
        );
        assert_eq!(
            parse_clocksources(vm).unwrap().collect::<Vec<_>>(),
            ["tsc", "kvm-clock"]
        );
        assert_eq!(
            parse_clocksources(b"arch_sys_counter \n")
                .unwrap()
                .collect::<Vec<_>>(),
            ["arch_sys_counter"]
        );
        assert_eq!(parse_clocksources(b"").unwrap().count(), 0);
        assert!(parse_clocksources(b"\xff").is_err());
    }

    #[test]
    fn seconds_as_node_exporter_computes_them() {
        let at = UNIX_EPOCH + std::time::Duration::new(1_718_193_262, 500_000_000);
        assert_eq!(unix_seconds(at), 1_718_193_262.5);
        assert_eq!(unix_seconds(UNIX_EPOCH), 0.0);
        let before = UNIX_EPOCH - std::time::Duration::from_secs(2);
        assert_eq!(unix_seconds(before), -2.0);
    }

    #[test]
    fn local_zone_answers() {
        // Whatever the zone of this machine is, the offset is within a day and named.
        let mut name = String::new();
        let offset = local_zone(1_718_193_262, &mut name).unwrap();
        assert!(offset.abs() <= 86_400, "{offset}");
        assert!(!name.is_empty());
    }
}
