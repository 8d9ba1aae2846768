//! The fuzz targets: one function per parser of outside input, from raw bytes to the size of
//! what the parser produced. `main.rs` runs each one under the driver's checks (one
//! `fuzz_target!` line each); `fuzz/` (cargo fuzz, nightly) calls the same functions.

use std::path::Path;

use pimetrics::collector::{
    cpu, cpufreq, diskstats, filesystem, hwmon, loadavg, meminfo, netdev, os, pressure, stat,
    textfile, time, uname,
};

fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

// ------------------------------------------------------------------ text format and config

pub fn exposition_parse(data: &[u8]) -> usize {
    let all = match pimetrics::exposition::parse::parse(data) {
        Ok(families) => families
            .iter()
            .map(|f| 1 + f.samples.iter().map(|s| 1 + s.labels.len()).sum::<usize>())
            .sum(),
        Err(err) => err.message.len() / 64,
    };
    let capped = pimetrics::exposition::parse::parse_with_limits(
        data,
        pimetrics::exposition::parse::Limits {
            max_labels_per_sample: 4,
            max_label_pairs: 6,
            max_series: 8,
            max_families: 8,
        },
    )
    .map_or(0, |families| families.len());
    all + capped
}

pub fn textfile(data: &[u8]) -> usize {
    match textfile::parse_file(data, "/var/lib/node_exporter/fuzz.prom") {
        Ok(families) => families.iter().map(|f| 1 + f.samples.len()).sum(),
        Err(message) => message.len() / 64,
    }
}

pub fn config_ron(data: &[u8]) -> usize {
    match pimetrics::config::Config::from_ron(&text(data), Some(Path::new("fuzz.ron"))) {
        Ok(config) => config.to_ron().len() / 16,
        Err(err) => err.to_string().len() / 16,
    }
}

pub fn cli_args(data: &[u8]) -> usize {
    let args: Vec<String> = text(data).split(['\0', '\n']).map(str::to_string).collect();
    let count = args.len();
    if let Ok(cli) = pimetrics::cli::Cli::parse(args) {
        let mut config = pimetrics::config::Config::default();
        let _ = cli.apply(&mut config);
    }
    count
}

// ------------------------------------------------------------------ /proc

pub fn proc_stat(data: &[u8]) -> usize {
    let mut cpus = Vec::new();
    let _ = cpu::parse_cpu_lines(data, &mut cpus);
    cpus.len() + stat::parse(data).map_or(0, |_| 1)
}

pub fn meminfo(data: &[u8]) -> usize {
    meminfo::parse(data).map_or(0, |fields| {
        fields
            .iter()
            .map(|f| meminfo::metric_name(f.key, f.bytes).len() / 8)
            .sum()
    })
}

pub fn loadavg(data: &[u8]) -> usize {
    loadavg::parse(data).map_or(0, |_| 3)
}

pub fn diskstats(data: &[u8]) -> usize {
    let lines = text(data)
        .lines()
        .filter(|line| matches!(diskstats::parse_line(line), Ok(Some(_))))
        .count();
    let udev = diskstats::parse_udev(data);
    lines + (udev.path.len() + udev.wwn.len() + udev.model.len()) / 8
}

pub fn netdev(data: &[u8]) -> usize {
    text(data)
        .lines()
        .filter(|line| matches!(netdev::parse_line(line), Ok(Some(_))))
        .count()
}

pub fn pressure(data: &[u8]) -> usize {
    pressure::parse(data).map_or(0, |_| 2)
}

pub fn os_release(data: &[u8]) -> usize {
    let text = text(data);
    match os::parse(&text) {
        Ok(pairs) => {
            let labels = os::info_labels(&pairs);
            let version = pairs
                .iter()
                .find(|(key, _)| *key == "VERSION_ID")
                .map_or(0.0, |(_, value)| os::version_number(value));
            assert!(!version.is_infinite(), "version number {version}");
            pairs.len() + labels.iter().map(String::len).sum::<usize>() / 8
        }
        Err(_) => 0,
    }
}

pub fn mountinfo(data: &[u8]) -> usize {
    let text = text(data);
    let info = filesystem::parse_mountinfo(&text).map_or(0, |m| m.len());
    let mounts = filesystem::parse_mounts(&text).map_or(0, |m| m.len());
    info + mounts + filesystem::unescape_octal(&text).len() / 8
}

// ------------------------------------------------------------------ /sys

pub fn cpu_list(data: &[u8]) -> usize {
    let contains = cpu::cpu_list_contains(data, 3).map_or(0, usize::from);
    cpu::parse_cpu_list(data).map_or(0, |cpus| cpus.len()) + contains
}

pub fn cpufreq(data: &[u8]) -> usize {
    let khz = cpufreq::parse_khz(data).map_or(0, |_| 1);
    // "current\0available": the two files of the governor pair.
    let (current, available) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, data),
    };
    khz + cpufreq::governors(current, available).map_or(0, |g| g.count())
}

pub fn hwmon(data: &[u8]) -> usize {
    // "file name\nvalue": a sensor file and what it holds.
    let (name, value) = match data.iter().position(|&b| b == b'\n') {
        Some(nl) => (&data[..nl], &data[nl + 1..]),
        None => (data, &data[..0]),
    };
    let name = text(name);
    let cleaned = hwmon::clean_name(&name).len();
    let Some(file) = hwmon::split_sensor_file(&name) else {
        return cleaned / 8;
    };
    let mut produced = cleaned / 8;
    for has_plain in [false, true] {
        if let Some(spec) = hwmon::classify(file.kind, file.property, has_plain) {
            produced +=
                spec.name.len() / 16 + hwmon::parse_value(value, spec.scale).map_or(0, |_| 1);
        }
    }
    produced
}

pub fn thermal(data: &[u8]) -> usize {
    pimetrics::roots::parse_i64(data).map_or(0, |_| 1)
}

pub fn clocksource(data: &[u8]) -> usize {
    time::parse_clocksources(data).map_or(0, |names| names.count())
}

pub fn uname(data: &[u8]) -> usize {
    uname::trim_value(data).len() / 8
}

// ------------------------------------------------------------------ Raspberry Pi firmware

/// Host-order words from bytes (the mailbox buffer as the kernel hands it back).
fn words(data: &[u8]) -> Vec<u32> {
    data.chunks(4)
        .map(|c| {
            let mut word = [0u8; 4];
            word[..c.len()].copy_from_slice(c);
            u32::from_ne_bytes(word)
        })
        .collect()
}

/// A response buffer: the codec, then the gencmd text decoder on its value words.
pub fn pi_mailbox_response(data: &[u8]) -> usize {
    use pimetrics::pi::{gencmd, mailbox};
    let buffer = words(data);
    let tag = buffer.get(2).copied().unwrap_or(0);
    let decoded = match mailbox::decode_response(&buffer, tag) {
        Ok((value, length)) => {
            value.len()
                + gencmd::decode_answer(value, length).map_or(0, |answer| answer.text.len() / 8)
        }
        Err(err) => err.to_string().len() / 64,
    };
    decoded
        + gencmd::decode_answer(&buffer, buffer.len() as u32 * 4).map_or(0, |a| a.text.len() / 8)
}

/// vcgencmd's text answers: measure_temp, get_throttled, measure_clock, measure_volts,
/// pmic_read_adc, error answers.
pub fn pi_gencmd_text(data: &[u8]) -> usize {
    use pimetrics::pi::gencmd;
    let text = text(data);
    let scalars = [
        gencmd::parse_temperature(&text).is_some(),
        gencmd::parse_throttled(&text).is_some(),
        gencmd::parse_clock(&text).is_some(),
        gencmd::parse_volts(&text).is_some(),
    ]
    .iter()
    .filter(|&&ok| ok)
    .count();
    scalars
        + gencmd::parse_pmic(&text).len()
        + gencmd::error_message(&text).map_or(0, |m| m.len() / 64)
}

/// A recorded replay file (pi.mailbox_replay / pi.gencmd_replay).
pub fn pi_replay(data: &[u8]) -> usize {
    match pimetrics::pi::replay::Replay::parse(&text(data)) {
        Ok(replay) => replay.len(),
        Err(err) => err.len() / 64,
    }
}

/// Board identity: cpuinfo, device-tree model, compatible and linux,revision, revision codes.
pub fn pi_board(data: &[u8]) -> usize {
    use pimetrics::pi::{board, revision};
    let text = text(data);
    let mut parts = data.splitn(3, |&b| b == b'\x01');
    let model = parts.next();
    let compatible = parts.next();
    let dt_revision = data.get(..4);
    let board = board::identify(&board::Sources {
        cpuinfo: &text,
        dt_model: model,
        dt_compatible: compatible,
        dt_revision,
    });
    let codes = text
        .split_whitespace()
        .filter_map(revision::parse_code)
        .filter_map(revision::decode)
        .count();
    board.compatible.len() + codes + (board.model.len() + board.soc.len()) / 64
}

/// The since-boot state file and the sysfs get_throttled text.
pub fn pi_state(data: &[u8]) -> usize {
    let text = text(data);
    usize::from(pimetrics::pi::since_boot::parse_state(&text).is_some())
        + usize::from(pimetrics::pi::throttled::parse_sysfs(&text).is_some())
}
