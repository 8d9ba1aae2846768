//! node_timex_* from adjtimex(2) (read-only: modes 0), as node_exporter converts them: the
//! kernel clock's NTP discipline state (offset, frequency, errors, PPS counters, TAI offset,
//! and whether the clock is synchronised). A system call, not a file, so not under the roots;
//! the conversion is a pure function tested on fixed readings.

use super::{CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};

/// adjtimex returns TIME_ERROR (5) while the clock is not synchronised.
const TIME_ERROR: i64 = 5;
/// STA_NANO: offsets and jitter are in nanoseconds rather than microseconds.
const STA_NANO: i64 = 0x2000;
const PPM16: f64 = 1_000_000.0 * 65536.0;

/// Name, help, type: node_exporter 1.12's, in its order.
const FAMILIES: [(&str, &str, Kind); 17] = [
    (
        "sync_status",
        "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
        Kind::Gauge,
    ),
    (
        "offset_seconds",
        "Time offset in between local system and reference clock.",
        Kind::Gauge,
    ),
    (
        "frequency_adjustment_ratio",
        "Local clock frequency adjustment.",
        Kind::Gauge,
    ),
    ("maxerror_seconds", "Maximum error in seconds.", Kind::Gauge),
    (
        "estimated_error_seconds",
        "Estimated error in seconds.",
        Kind::Gauge,
    ),
    ("status", "Value of the status array bits.", Kind::Gauge),
    (
        "loop_time_constant",
        "Phase-locked loop time constant.",
        Kind::Gauge,
    ),
    ("tick_seconds", "Seconds between clock ticks.", Kind::Gauge),
    (
        "pps_frequency_hertz",
        "Pulse per second frequency.",
        Kind::Gauge,
    ),
    (
        "pps_jitter_seconds",
        "Pulse per second jitter.",
        Kind::Gauge,
    ),
    (
        "pps_shift_seconds",
        "Pulse per second interval duration.",
        Kind::Gauge,
    ),
    (
        "pps_stability_hertz",
        "Pulse per second stability, average of recent frequency changes.",
        Kind::Gauge,
    ),
    (
        "pps_jitter_total",
        "Pulse per second count of jitter limit exceeded events.",
        Kind::Counter,
    ),
    (
        "pps_calibration_total",
        "Pulse per second count of calibration intervals.",
        Kind::Counter,
    ),
    (
        "pps_error_total",
        "Pulse per second count of calibration errors.",
        Kind::Counter,
    ),
    (
        "pps_stability_exceeded_total",
        "Pulse per second count of stability limit exceeded events.",
        Kind::Counter,
    ),
    (
        "tai_offset_seconds",
        "International Atomic Time (TAI) offset.",
        Kind::Gauge,
    ),
];

/// The adjtimex fields node_exporter exports, widened to i64 (they are `long` in the kernel
/// ABI: 32 bits on 32-bit Pis).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    pub state: i64,
    pub offset: i64,
    pub freq: i64,
    pub maxerror: i64,
    pub esterror: i64,
    pub status: i64,
    pub constant: i64,
    pub tick: i64,
    pub ppsfreq: i64,
    pub jitter: i64,
    pub shift: i64,
    pub stabil: i64,
    pub jitcnt: i64,
    pub calcnt: i64,
    pub errcnt: i64,
    pub stbcnt: i64,
    pub tai: i64,
}

/// The FAMILIES values of a reading, converted as node_exporter converts them.
pub fn values(r: &Reading) -> [f64; 17] {
    let divisor = if r.status & STA_NANO != 0 { 1e9 } else { 1e6 };
    [
        if r.state == TIME_ERROR { 0.0 } else { 1.0 },
        r.offset as f64 / divisor,
        1.0 + r.freq as f64 / PPM16,
        r.maxerror as f64 / 1e6,
        r.esterror as f64 / 1e6,
        r.status as f64,
        r.constant as f64,
        r.tick as f64 / 1e6,
        r.ppsfreq as f64 / PPM16,
        r.jitter as f64 / divisor,
        r.shift as f64,
        r.stabil as f64 / PPM16,
        r.jitcnt as f64,
        r.calcnt as f64,
        r.errcnt as f64,
        r.stbcnt as f64,
        r.tai as f64,
    ]
}

/// Reads the kernel clock state without changing it.
fn read() -> std::io::Result<Reading> {
    // SAFETY: an all-zero timex is valid; modes 0 asks adjtimex to only read.
    let mut timex: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `timex` is a valid, writable struct timex.
    let state = unsafe { libc::adjtimex(&mut timex) };
    if state < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Reading {
        state: i64::from(state),
        offset: timex.offset as i64,
        freq: timex.freq as i64,
        maxerror: timex.maxerror as i64,
        esterror: timex.esterror as i64,
        status: i64::from(timex.status),
        constant: timex.constant as i64,
        tick: timex.tick as i64,
        ppsfreq: timex.ppsfreq as i64,
        jitter: timex.jitter as i64,
        shift: i64::from(timex.shift),
        stabil: timex.stabil as i64,
        jitcnt: timex.jitcnt as i64,
        calcnt: timex.calcnt as i64,
        errcnt: timex.errcnt as i64,
        stbcnt: timex.stbcnt as i64,
        tai: i64::from(timex.tai),
    })
}

pub fn build(_ctx: &Context, out: &mut Exposition) -> Setup {
    Setup::Ready(Box::new(TimexCollector {
        families: FAMILIES
            .map(|(name, help, kind)| out.family(&format!("node_timex_{name}"), help, kind, &[])),
    }))
}

struct TimexCollector {
    families: [FamilyId; 17],
}

impl Collector for TimexCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        let reading = read().map_err(|err| CollectError(format!("adjtimex: {err}")))?;
        for (id, value) in self.families.iter().zip(values(&reading)) {
            out.sample(*id, &[], value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_as_node_exporter() {
        // An unsynchronised VM clock, as this machine's node_exporter reports it.
        let unsynced = Reading {
            state: 5,
            maxerror: 16_000_000,
            esterror: 16_000_000,
            status: 64,
            constant: 2,
            tick: 10_000,
            ..Reading::default()
        };
        let v = values(&unsynced);
        assert_eq!(
            (v[0], v[2], v[3], v[5], v[6], v[7]),
            (0.0, 1.0, 16.0, 64.0, 2.0, 0.01)
        );
        // A Pi synchronised by chrony, nanosecond mode: offset -1234 ns, +10 ppm.
        let synced = Reading {
            state: 0,
            offset: -1234,
            freq: 10 * 65536,
            status: 0x2001,
            tai: 37,
            ..Reading::default()
        };
        let v = values(&synced);
        assert_eq!(v[0], 1.0);
        assert!((v[1] + 1.234e-6).abs() < 1e-15);
        assert!((v[2] - 1.00001).abs() < 1e-12);
        assert_eq!(v[16], 37.0);
    }

    #[test]
    fn reads_this_machines_clock() {
        let reading = read().expect("adjtimex with modes 0 needs no privilege");
        assert!(reading.tick > 0);
    }
}
