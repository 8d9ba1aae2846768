//! Every target of tests/fuzz/targets.rs behind one libFuzzer entry: the first input byte
//! picks the target (modulo their number), the rest is its input. Seeds:
//! `fuzz/seed-corpus.sh` turns tests/fuzz_corpus/ into fuzz/corpus/parsers/.

#![no_main]

#[path = "../../tests/fuzz/targets.rs"]
mod targets;

/// In this order; `seed-corpus.sh` uses the same list.
const TARGETS: &[(&str, fn(&[u8]) -> usize)] = &[
    ("exposition_parse", targets::exposition_parse),
    ("textfile", targets::textfile),
    ("config_ron", targets::config_ron),
    ("cli_args", targets::cli_args),
    ("proc_stat", targets::proc_stat),
    ("meminfo", targets::meminfo),
    ("loadavg", targets::loadavg),
    ("diskstats", targets::diskstats),
    ("netdev", targets::netdev),
    ("pressure", targets::pressure),
    ("os_release", targets::os_release),
    ("mountinfo", targets::mountinfo),
    ("cpu_list", targets::cpu_list),
    ("cpufreq", targets::cpufreq),
    ("hwmon", targets::hwmon),
    ("thermal", targets::thermal),
    ("clocksource", targets::clocksource),
    ("uname", targets::uname),
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some((&which, input)) = data.split_first() {
        let (_, target) = TARGETS[usize::from(which) % TARGETS.len()];
        target(input);
    }
});
