//! Property/fuzz harness over every parser of outside input (text format, RON config, flags,
//! /proc and /sys files), on stable Rust. CI runs it with the rest of the suite (a fixed seed
//! and a fixed number of inputs per target: about half a minute in all); a longer run:
//!
//! ```sh
//! PIMETRICS_FUZZ_ITERATIONS=200000 PIMETRICS_FUZZ_SEED=$RANDOM cargo test --release --test fuzz
//! ```
//!
//! Each target is one `fuzz_target!` line: a name (its seeds are tests/fuzz_corpus/<name>/*)
//! and a function from bytes to the size of what the parser produced. Every input must not
//! panic, must stay within the output and allocation bounds (linear in the input: `per_byte`,
//! `base`), and must finish. See tests/fuzz_corpus/README.md.

mod driver;

use std::path::Path;

use driver::{Bound, Target};
use pimetrics::collector::{
    cpu, cpufreq, diskstats, filesystem, hwmon, loadavg, meminfo, netdev, os, pressure, stat,
    textfile, thermal_zone, time, uname,
};

#[global_allocator]
static ALLOCATOR: driver::CountingAllocator = driver::CountingAllocator;

/// Output: what a parser returns is at most a few items per input byte.
const OUTPUT: Bound = Bound {
    per_byte: 16,
    base: 4096,
};
/// Allocation: a parser may hold a few structures per input byte, plus a fixed start.
const ALLOC: Bound = Bound {
    per_byte: 128,
    base: 256 * 1024,
};

/// `fuzz_target!(name, |data| size)` or `fuzz_target!(name, output, alloc, |data| size)`:
/// one #[test] fuzzing one parser with the seeds of tests/fuzz_corpus/<name>/.
macro_rules! fuzz_target {
    ($name:ident, $run:expr) => {
        fuzz_target!($name, OUTPUT, ALLOC, $run);
    };
    ($name:ident, $output:expr, $alloc:expr, $run:expr) => {
        #[test]
        fn $name() {
            driver::fuzz(Target {
                name: stringify!($name),
                output: $output,
                alloc: $alloc,
                extra_seeds: Vec::new(),
                iterations: driver::iterations(),
                scale: true,
                run: $run,
            });
        }
    };
}

fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

// ------------------------------------------------------------------ text format and config

fuzz_target!(textformat, |data: &[u8]| {
    let all = match pimetrics::textformat::parse(data) {
        Ok(families) => families
            .iter()
            .map(|f| 1 + f.samples.iter().map(|s| 1 + s.labels.len()).sum::<usize>())
            .sum(),
        Err(err) => err.message.len() / 64,
    };
    let capped = pimetrics::textformat::parse_with_limits(
        data,
        pimetrics::textformat::Limits {
            max_labels_per_sample: 4,
            max_series: 8,
            max_families: 8,
        },
    )
    .map_or(0, |families| families.len());
    all + capped
});

fuzz_target!(textfile, |data: &[u8]| {
    match textfile::parse_file(data, "/var/lib/node_exporter/fuzz.prom") {
        Ok(families) => families.iter().map(|f| 1 + f.samples.len()).sum(),
        Err(message) => message.len() / 64,
    }
});

fuzz_target!(
    config_ron,
    OUTPUT,
    // Validation compiles the exclude regexes (about a megabyte for the defaults).
    Bound {
        per_byte: 512,
        base: 8 * 1024 * 1024
    },
    |data: &[u8]| {
        match pimetrics::config::Config::from_ron(&text(data), Some(Path::new("fuzz.ron"))) {
            Ok(config) => config.to_ron().len() / 16,
            Err(err) => err.to_string().len() / 16,
        }
    }
);

fuzz_target!(
    cli_args,
    OUTPUT,
    Bound {
        per_byte: 512,
        base: 8 * 1024 * 1024
    },
    |data: &[u8]| {
        let args: Vec<String> = text(data).split(['\0', '\n']).map(str::to_string).collect();
        let count = args.len();
        if let Ok(cli) = pimetrics::cli::Cli::parse(args) {
            let mut config = pimetrics::config::Config::default();
            let _ = cli.apply(&mut config);
        }
        count
    }
);

// ------------------------------------------------------------------ /proc

fuzz_target!(proc_stat, |data: &[u8]| {
    let mut cpus = Vec::new();
    let _ = cpu::parse_cpu_lines(data, &mut cpus);
    cpus.len() + stat::parse(data).map_or(0, |_| 1)
});

fuzz_target!(meminfo, |data: &[u8]| {
    meminfo::parse(data).map_or(0, |fields| {
        fields
            .iter()
            .map(|f| meminfo::metric_name(f.key, f.bytes).len() / 8)
            .sum()
    })
});

fuzz_target!(loadavg, |data: &[u8]| loadavg::parse(data).map_or(0, |_| 3));

fuzz_target!(diskstats, |data: &[u8]| {
    let lines = text(data)
        .lines()
        .filter(|line| matches!(diskstats::parse_line(line), Ok(Some(_))))
        .count();
    let udev = diskstats::parse_udev(data);
    lines + (udev.path.len() + udev.wwn.len() + udev.model.len()) / 8
});

fuzz_target!(netdev, |data: &[u8]| {
    text(data)
        .lines()
        .filter(|line| matches!(netdev::parse_line(line), Ok(Some(_))))
        .count()
});

fuzz_target!(pressure, |data: &[u8]| pressure::parse(data)
    .map_or(0, |_| 2));

fuzz_target!(os_release, |data: &[u8]| {
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
});

fuzz_target!(mountinfo, |data: &[u8]| {
    let text = text(data);
    let info = filesystem::parse_mountinfo(&text).map_or(0, |m| m.len());
    let mounts = filesystem::parse_mounts(&text).map_or(0, |m| m.len());
    info + mounts + filesystem::unescape_octal(&text).len() / 8
});

// ------------------------------------------------------------------ /sys

fuzz_target!(
    cpu_list,
    // A range names many CPUs in few bytes: bounded by MAX_CPUS, not by the input.
    Bound {
        per_byte: 16,
        base: cpu::MAX_CPUS + 16
    },
    Bound {
        per_byte: 128,
        base: 256 * 1024
    },
    |data: &[u8]| {
        let contains = cpu::cpu_list_contains(data, 3).map_or(0, usize::from);
        cpu::parse_cpu_list(data).map_or(0, |cpus| cpus.len()) + contains
    }
);

fuzz_target!(cpufreq, |data: &[u8]| {
    let khz = cpufreq::parse_khz(data).map_or(0, |_| 1);
    // "current\0available": the two files of the governor pair.
    let (current, available) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, data),
    };
    khz + cpufreq::governors(current, available).map_or(0, |g| g.count())
});

fuzz_target!(hwmon, |data: &[u8]| {
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
});

fuzz_target!(thermal, |data: &[u8]| thermal_zone::parse_integer(data)
    .map_or(0, |_| 1));

fuzz_target!(clocksource, |data: &[u8]| time::parse_clocksources(data)
    .map_or(0, |names| names.count()));

fuzz_target!(uname, |data: &[u8]| uname::trim_value(data).len() / 8);

// ------------------------------------------------------------------ whole collectors on a tree

mod tree;

#[test]
fn collectors_on_a_mutated_tree() {
    tree::fuzz();
}
