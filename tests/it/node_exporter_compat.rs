//! Side by side with the real node_exporter (Debian's prometheus-node-exporter 1.5.0): both read
//! the same /proc and /sys on this machine, and for every metric family both export
//! - the TYPE is the same,
//! - the label names of each series are the same (our extra `node` label aside),
//! - the series (label sets) are the same,
//! - the values agree: exactly for what does not move, within a per-family tolerance for what
//!   moves (VALUE_RULES below).
//!
//! node_exporter runs with exactly the collectors our agent runs here (same names; the ones it
//! does not know are left out) and with our settings (filesystem/disk/netdev excludes, textfile
//! directory), so the family sets must match too, except for the documented differences in the
//! allow-lists below (node_exporter 1.5 here vs the 1.12 names and labels we follow).
//!
//! Moving values are compared by bracketing: our agent is scraped, then node_exporter, then our
//! agent again, one after the other; node_exporter read the kernel between our two reads, so a
//! counter of node_exporter's lies between our two values, and a gauge lies there give or take
//! its tolerance. No timing is assumed. A round with trouble is retried (at most 3 rounds):
//! a gauge may jump at just the wrong moment; real differences show in every round.
//!
//! The families compared are printed (`cargo test --test it node_exporter_compat:: -- --nocapture`)
//! and written to target/tmp/node_exporter_compat.txt (scripts/test prints it).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use crate::harness::*;
use pimetrics::config::Config;

const NODE_EXPORTER: &str = "prometheus-node-exporter";

/// How the values of a family are compared.
#[derive(Clone, Copy)]
enum Rule {
    /// Does not move: the same in all three scrapes.
    Exact,
    /// node_exporter's value within [min(ours), max(ours)] widened by `abs + rel * |value|`.
    Bracket { abs: f64, rel: f64 },
    /// Not comparable between two programs (their own timings).
    Skip,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::Exact => f.write_str("exact"),
            Rule::Skip => f.write_str("not compared"),
            Rule::Bracket { abs, rel } => {
                f.write_str("between our two reads")?;
                if *abs >= MIB {
                    write!(f, " ±{} MiB", abs / MIB)?;
                } else if *abs > 0.0 {
                    write!(f, " ±{abs}")?;
                }
                if *rel > 1e-6 {
                    write!(f, " ±{}%", rel * 100.0)?;
                }
                Ok(())
            }
        }
    }
}

const ROUNDING: Rule = Rule::Bracket {
    abs: 0.0,
    rel: 1e-9,
};
const MIB: f64 = 1024.0 * 1024.0;

/// Value rules by family pattern (`*` matches any text); the first match wins. A family no
/// pattern matches is compared as a counter that only moves forward (ROUNDING): its value
/// must lie between our two reads.
const VALUE_RULES: &[(&str, Rule)] = &[
    // The collectors' own durations: two programs, two timings.
    ("node_scrape_collector_duration_seconds", Rule::Skip),
    ("node_scrape_collector_success", Rule::Exact),
    // meminfo: totals and sizes are fixed; the rest moves with every process on the machine
    // (other builds run on it), by far less than 64 MiB between two reads.
    ("node_memory_MemTotal_bytes", Rule::Exact),
    ("node_memory_SwapTotal_bytes", Rule::Exact),
    ("node_memory_VmallocTotal_bytes", Rule::Exact),
    ("node_memory_Hugepagesize_bytes", Rule::Exact),
    ("node_memory_HugePages_Total", Rule::Exact),
    ("node_memory_DirectMap*", Rule::Exact),
    ("node_memory_CmaTotal_bytes", Rule::Exact),
    // Huge page counts change only when someone reserves huge pages.
    ("node_memory_HugePages_*", ROUNDING),
    (
        "node_memory_*",
        Rule::Bracket {
            abs: 64.0 * MIB,
            rel: 0.0,
        },
    ),
    // stat
    ("node_boot_time_seconds", Rule::Exact),
    (
        "node_procs_*",
        Rule::Bracket {
            abs: 64.0,
            rel: 0.0,
        },
    ),
    // filesystem: sizes fixed, free space moves with the builds writing to disk.
    ("node_filesystem_size_bytes", Rule::Exact),
    ("node_filesystem_files", Rule::Exact),
    ("node_filesystem_readonly", Rule::Exact),
    ("node_filesystem_device_error", Rule::Exact),
    (
        "node_filesystem_files_free",
        Rule::Bracket {
            abs: 100_000.0,
            rel: 0.0,
        },
    ),
    (
        "node_filesystem_*_bytes",
        Rule::Bracket {
            abs: 256.0 * MIB,
            rel: 0.0,
        },
    ),
    // diskstats: counters bracket exactly; the queue is a gauge.
    ("node_disk_info", Rule::Exact),
    (
        "node_disk_io_now",
        Rule::Bracket {
            abs: 64.0,
            rel: 0.0,
        },
    ),
    // Frequencies follow the governor from one read to the next.
    (
        "node_cpu_*frequency_hertz",
        Rule::Bracket { abs: 0.0, rel: 1.0 },
    ),
    ("node_cpu_*frequency_*_hertz", Rule::Exact),
    // Sensors: a degree or two between reads.
    (
        "node_hwmon_temp_celsius",
        Rule::Bracket { abs: 2.0, rel: 0.0 },
    ),
    (
        "node_thermal_zone_temp",
        Rule::Bracket { abs: 2.0, rel: 0.0 },
    ),
    ("node_hwmon_*", Rule::Bracket { abs: 0.0, rel: 0.1 }),
    // time: both read the same clock, between our two reads.
    (
        "node_time_seconds",
        Rule::Bracket {
            abs: 0.01,
            rel: 0.0,
        },
    ),
    ("node_time_*", Rule::Exact),
    // Informational families (value 1, the labels carry the data) and fixed numbers.
    ("*_info", Rule::Exact),
    ("node_os_version", Rule::Exact),
    ("node_textfile_*", Rule::Exact),
    ("node_network_mtu_bytes", Rule::Exact),
    // Gauges of the parity collectors that move with the machine's activity.
    (
        "node_filefd_allocated",
        Rule::Bracket {
            abs: 1024.0,
            rel: 0.0,
        },
    ),
    ("node_filefd_maximum", Rule::Exact),
    (
        "node_sockstat_*",
        Rule::Bracket {
            abs: 256.0,
            rel: 0.0,
        },
    ),
    (
        "node_netstat_Tcp_CurrEstab",
        Rule::Bracket {
            abs: 16.0,
            rel: 0.0,
        },
    ),
    ("node_arp_entries", Rule::Bracket { abs: 2.0, rel: 0.0 }),
    ("node_nf_conntrack_entries_limit", Rule::Exact),
    (
        "node_nf_conntrack_entries",
        Rule::Bracket {
            abs: 256.0,
            rel: 0.0,
        },
    ),
    ("node_entropy_pool_size_bits", Rule::Exact),
    (
        "node_entropy_available_bits",
        Rule::Bracket {
            abs: 4096.0,
            rel: 0.0,
        },
    ),
    (
        "node_udp_queues",
        Rule::Bracket {
            abs: 1024.0 * 1024.0,
            rel: 0.0,
        },
    ),
    (
        "node_timex_*_seconds",
        Rule::Bracket {
            abs: 0.01,
            rel: 0.01,
        },
    ),
    (
        "node_timex_frequency_adjustment_ratio",
        Rule::Bracket {
            abs: 1e-4,
            rel: 0.0,
        },
    ),
    ("node_timex_status", Rule::Exact),
    ("node_timex_sync_status", Rule::Exact),
    (
        "node_softnet_backlog_len",
        Rule::Bracket {
            abs: 64.0,
            rel: 0.0,
        },
    ),
];

/// Families node_exporter 1.5 does not have and we export on purpose (node_exporter 1.12
/// names). Allowed, not required.
const ONLY_OURS: &[(&str, &str)] = &[
    (
        "node_filesystem_mount_info",
        "node_exporter 1.12: one series per mount with major/minor",
    ),
    (
        "node_filesystem_purgeable_bytes",
        "node_exporter 1.12 (macOS only there)",
    ),
    (
        "node_pressure_irq_stalled_seconds_total",
        "node_exporter 1.12, kernel >= 6.1",
    ),
    (
        "node_pressure_cpu_stalled_seconds_total",
        "node_exporter 1.12",
    ),
    ("node_cpu_scaling_governor", "node_exporter 1.12 cpufreq"),
    ("node_cpu_frequency_avg_hertz", "node_exporter 1.12 cpufreq"),
    ("node_cpu_isolated", "node_exporter 1.12 cpu"),
    ("node_cpu_online", "node_exporter 1.12 cpu"),
    (
        "node_disk_filesystem_info",
        "node_exporter 1.12 diskstats (udev data)",
    ),
    (
        "node_textfile_dropped_files",
        "pimetrics: files the textfile collector dropped (errors, caps node_exporter lacks)",
    ),
    (
        "node_kernel_hung_tasks_total",
        "node_exporter 1.12 kernel_hung collector (Linux 6.13+)",
    ),
    (
        "node_netstat_TcpExt_TCPOFOQueue",
        "node_exporter 1.12's default --collector.netstat.fields adds TCPOFOQueue",
    ),
    (
        "node_netstat_TcpExt_TCPRcvQDrop",
        "node_exporter 1.12's default --collector.netstat.fields adds TCPRcvQDrop",
    ),
    (
        "node_softnet_backlog_len",
        "node_exporter 1.12 softnet (Linux 5.14+ column)",
    ),
    (
        "node_softnet_cpu_collision_total",
        "node_exporter 1.12 softnet",
    ),
    (
        "node_softnet_flow_limit_count_total",
        "node_exporter 1.12 softnet",
    ),
    (
        "node_softnet_received_rps_total",
        "node_exporter 1.12 softnet",
    ),
];

/// Families node_exporter 1.5 exports, with collectors we run, that we do not. Allowed, not
/// required.
const ONLY_NODE_EXPORTER: &[(&str, &str)] = &[
    (
        "node_exporter_build_info",
        "node_exporter's own build info (ours is pimetrics_build_info)",
    ),
    (
        "node_disk_device_mapper_info",
        "udev-based disk metadata (/run/udev/data), not read by pimetrics",
    ),
    (
        "node_disk_ata_*",
        "udev-based disk metadata (/run/udev/data), not read by pimetrics",
    ),
];

/// Labels a family may have on our side only (beyond `node`), with why.
const EXTRA_LABELS_OURS: &[(&str, &str, &str)] = &[
    (
        "node_filesystem_*",
        "device_error",
        "node_exporter 1.12 labels every filesystem series with device_error",
    ),
    (
        "node_disk_info",
        "rotational",
        "node_exporter 1.12 adds rotational (/sys/block/<dev>/queue/rotational) to node_disk_info",
    ),
    (
        "node_network_info",
        "adminstate",
        "node_exporter 1.12 adds adminstate (the IFF_UP bit of flags) to node_network_info",
    ),
];

/// Labels a family may have on node_exporter's side only, with why.
const EXTRA_LABELS_NODE_EXPORTER: &[(&str, &str, &str)] = &[];

/// Families whose series sets may differ, with why (their common series are still compared).
const SERIES_MAY_DIFFER: &[(&str, &str)] = &[];

/// TYPE differences accepted: family, our type, node_exporter 1.5's type, why.
const TYPE_DIFFERENCES: &[(&str, &str, &str, &str)] = &[];

/// Collectors whose `node_scrape_collector_success` differs by design, with why; their other
/// families are compared as usual.
const SUCCESS_DIFFERS: &[(&str, &str)] = &[(
    "nfs",
    "no /proc/net/rpc/nfs until the first NFS mount loads the module: node_exporter reports \
     success 0 (no data), pimetrics 1 with no series (the module may load after start-up)",
)];

/// Program-specific families that are not node_exporter's interface.
fn is_program_own(name: &str) -> bool {
    ["go_", "process_", "promhttp_", "pimetrics_", "rpi_"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// Families that must have been compared for the test to mean anything: always, plus the main
/// family of each collector when node_exporter exported it.
const KEY_FAMILIES: &[&str] = &["node_memory_MemTotal_bytes", "node_load1"];
const KEY_FAMILY_OF_COLLECTOR: &[(&str, &str)] = &[
    ("cpu", "node_cpu_seconds_total"),
    ("stat", "node_boot_time_seconds"),
    ("filesystem", "node_filesystem_size_bytes"),
    ("diskstats", "node_disk_reads_completed_total"),
    ("netdev", "node_network_receive_bytes_total"),
    ("uname", "node_uname_info"),
    ("os", "node_os_info"),
    ("time", "node_time_seconds"),
    ("pressure", "node_pressure_cpu_waiting_seconds_total"),
    ("textfile", "node_textfile_scrape_error"),
    ("thermal_zone", "node_thermal_zone_temp"),
    ("hwmon", "node_hwmon_temp_celsius"),
    ("cpufreq", "node_cpu_scaling_frequency_hertz"),
    ("arp", "node_arp_entries"),
    ("conntrack", "node_nf_conntrack_entries_limit"),
    ("entropy", "node_entropy_available_bits"),
    ("filefd", "node_filefd_maximum"),
    ("netclass", "node_network_up"),
    ("netstat", "node_netstat_Tcp_InSegs"),
    ("sockstat", "node_sockstat_TCP_inuse"),
    ("softnet", "node_softnet_processed_total"),
    ("timex", "node_timex_sync_status"),
    ("udp_queues", "node_udp_queues"),
    ("vmstat", "node_vmstat_pgfault"),
    ("selinux", "node_selinux_enabled"),
    ("schedstat", "node_schedstat_running_seconds_total"),
    ("watchdog", "node_watchdog_info"),
    ("powersupplyclass", "node_power_supply_info"),
    ("nvme", "node_nvme_info"),
    ("nfs", "node_nfs_requests_total"),
];

/// `*` matches any text (including none).
fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

fn rule_for(family: &str) -> Rule {
    VALUE_RULES
        .iter()
        .find(|(pattern, _)| glob(pattern, family))
        .map_or(ROUNDING, |(_, rule)| *rule)
}

fn allowed<'a>(list: &'a [(&str, &'a str)], family: &str) -> Option<&'a str> {
    list.iter()
        .find(|(pattern, _)| glob(pattern, family))
        .map(|(_, why)| *why)
}

fn ignored_labels(list: &[(&str, &str, &str)], family: &str) -> BTreeSet<String> {
    list.iter()
        .filter(|(pattern, _, _)| glob(pattern, family))
        .map(|(_, label, _)| label.to_string())
        .collect()
}

/// Series of one scrape: family -> (label set without `node` and ignored labels -> value).
type Series = BTreeMap<String, BTreeMap<Vec<(String, String)>, f64>>;

/// The series of one scrape, leaving out the per-collector series of collectors that are not
/// compared (ours that node_exporter 1.5 does not have).
fn series(
    exp: &Exposition,
    ignore: impl Fn(&str) -> BTreeSet<String>,
    compared: &BTreeSet<String>,
) -> Series {
    let mut out: Series = BTreeMap::new();
    for sample in &exp.samples {
        if sample.name.starts_with("node_scrape_collector_")
            && !sample
                .labels
                .get("collector")
                .is_some_and(|c| compared.contains(c))
        {
            continue;
        }
        if sample.name == "node_scrape_collector_success"
            && sample
                .labels
                .get("collector")
                .is_some_and(|c| allowed(SUCCESS_DIFFERS, c).is_some())
        {
            continue;
        }
        let ignored = ignore(&sample.name);
        let key: Vec<(String, String)> = sample
            .labels
            .iter()
            .filter(|(name, _)| *name != "node" && !ignored.contains(*name))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        out.entry(sample.name.clone())
            .or_default()
            .insert(key, sample.value);
    }
    out
}

/// Collector names node_exporter knows (`--collector.NAME` switches in its --help).
fn node_exporter_collectors(binary: &std::path::Path) -> BTreeSet<String> {
    let (_, out, err) = run_bounded(
        "node_exporter --help",
        Command::new(binary).arg("--help"),
        Duration::from_secs(30),
    );
    format!("{out}{err}")
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("--collector."))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|name| !name.contains(['.', '=']))
        .map(str::to_string)
        .collect()
}

struct Setup {
    _agent: Proc,
    agent_port: u16,
    _node_exporter: Proc,
    node_exporter_port: u16,
    collectors: BTreeSet<String>,
    _textfiles: tempfile::TempDir,
}

fn start_both(binary: &std::path::Path) -> Setup {
    // A textfile directory with one file, for both (no effect when no textfile collector).
    let textfiles = tempdir();
    std::fs::write(
        textfiles.path().join("compat.prom"),
        "# HELP compat_test_value A value from a text file.\n# TYPE compat_test_value gauge\ncompat_test_value{source=\"compat\"} 42\n",
    )
    .unwrap();
    let textfile_dir = textfiles.path().to_str().unwrap().to_string();

    // Our agent with every collector it has; the ones that do not apply here drop out.
    let mut agent_args: Vec<String> = pimetrics::collector::COLLECTORS
        .iter()
        .map(|spec| format!("--collector.{}", spec.name))
        .collect();
    agent_args.push(format!("--collector.textfile.directory={textfile_dir}"));
    agent_args.push("--node=compat".into());
    let args: Vec<&str> = agent_args.iter().map(String::as_str).collect();
    let (agent, agent_port) = start_agent(&args);

    let first = parse_exposition(&scrape(agent_port, "/metrics"));
    let ours: BTreeSet<String> = first
        .family("node_scrape_collector_success")
        .iter()
        .filter_map(|s| s.labels.get("collector").cloned())
        .collect();
    let known = node_exporter_collectors(binary);
    let collectors: BTreeSet<String> = ours.intersection(&known).cloned().collect();
    let not_in_node_exporter: Vec<_> = ours.difference(&known).collect();
    println!("our active collectors: {ours:?}");
    println!("compared with node_exporter: {collectors:?}; ours only: {not_in_node_exporter:?}");

    // node_exporter with the same collectors and our settings, so both report the same things.
    let defaults = Config::default();
    let port = free_port();
    let mut command = Command::new(binary);
    command
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--collector.disable-defaults")
        .arg("--web.disable-exporter-metrics")
        .arg(format!(
            "--collector.filesystem.mount-points-exclude={}",
            defaults.collector_settings.filesystem.mount_points_exclude
        ))
        .arg(format!(
            "--collector.filesystem.fs-types-exclude={}",
            defaults.collector_settings.filesystem.fs_types_exclude
        ))
        .arg(format!(
            "--collector.diskstats.device-exclude={}",
            defaults.collector_settings.diskstats.device_exclude
        ))
        .arg(format!(
            "--collector.netdev.device-exclude={}",
            defaults.collector_settings.netdev.device_exclude
        ))
        .arg(format!("--collector.textfile.directory={textfile_dir}"))
        .arg("--log.level=warn");
    for collector in &collectors {
        command.arg(format!("--collector.{collector}"));
    }
    let node_exporter = Proc::spawn("node_exporter", &mut command);
    wait_for_port(port, Duration::from_secs(20));
    Setup {
        _agent: agent,
        agent_port,
        _node_exporter: node_exporter,
        node_exporter_port: port,
        collectors,
        _textfiles: textfiles,
    }
}

/// What one round of comparison found.
#[derive(Default)]
struct Round {
    problems: Vec<String>,
    /// family -> (type, rule, series compared)
    compared: BTreeMap<String, (String, String, usize)>,
    only_ours: Vec<String>,
    only_node_exporter: Vec<String>,
    node_exporter_families: BTreeSet<String>,
}

fn within(value: f64, low: f64, high: f64, abs: f64, rel: f64) -> bool {
    if value.is_nan() || low.is_nan() || high.is_nan() {
        return value.is_nan() && low.is_nan() && high.is_nan();
    }
    let slack = abs + rel * low.abs().max(high.abs());
    value >= low - slack && value <= high + slack
}

fn compare_round(setup: &Setup) -> Round {
    // Close together: ours, node_exporter, ours.
    let first_text = scrape(setup.agent_port, "/metrics");
    let theirs_text = scrape(setup.node_exporter_port, "/metrics");
    let second_text = scrape(setup.agent_port, "/metrics");
    let (first, theirs, second) = (
        parse_exposition(&first_text),
        parse_exposition(&theirs_text),
        parse_exposition(&second_text),
    );
    let compared = &setup.collectors;
    let ours_a = series(&first, |f| ignored_labels(EXTRA_LABELS_OURS, f), compared);
    let ours_b = series(&second, |f| ignored_labels(EXTRA_LABELS_OURS, f), compared);
    let ne = series(
        &theirs,
        |f| ignored_labels(EXTRA_LABELS_NODE_EXPORTER, f),
        compared,
    );

    let mut round = Round::default();
    let our_families: BTreeSet<&String> = ours_a
        .keys()
        .filter(|f| ours_b.contains_key(*f) && !is_program_own(f))
        .collect();
    let ne_families: BTreeSet<&String> = ne.keys().filter(|f| !is_program_own(f)).collect();
    round.node_exporter_families = ne_families.iter().map(|f| f.to_string()).collect();

    for family in our_families.difference(&ne_families) {
        if allowed(ONLY_OURS, family).is_none() && family.starts_with("node_") {
            round.problems.push(format!(
                "{family}: exported by pimetrics, not by node_exporter 1.5 with the same \
                 collectors: a wrong name? If it is a newer node_exporter name, add it to \
                 ONLY_OURS with the reason"
            ));
        }
        round.only_ours.push(family.to_string());
    }
    for family in ne_families.difference(&our_families) {
        if allowed(ONLY_NODE_EXPORTER, family).is_none() {
            round.problems.push(format!(
                "{family}: exported by node_exporter ({} series), missing in pimetrics; if that \
                 is intended, add it to ONLY_NODE_EXPORTER with the reason",
                ne[*family].len()
            ));
        }
        round.only_node_exporter.push(family.to_string());
    }

    for family in our_families.intersection(&ne_families) {
        let family = family.as_str();
        let (our_type, ne_type) = (
            first.types.get(family).cloned().unwrap_or_default(),
            theirs.types.get(family).cloned().unwrap_or_default(),
        );
        if our_type != ne_type
            && !TYPE_DIFFERENCES
                .iter()
                .any(|(f, ours, theirs, _)| *f == family && *ours == our_type && *theirs == ne_type)
        {
            round.problems.push(format!(
                "{family}: TYPE {our_type} here, {ne_type} in node_exporter"
            ));
        }
        let (a, b, n) = (&ours_a[family], &ours_b[family], &ne[family]);
        let label_names = |s: &BTreeMap<Vec<(String, String)>, f64>| -> BTreeSet<Vec<String>> {
            s.keys()
                .map(|k| k.iter().map(|(name, _)| name.clone()).collect())
                .collect()
        };
        if label_names(a) != label_names(n) {
            round.problems.push(format!(
                "{family}: label names {:?} here, {:?} in node_exporter",
                label_names(a),
                label_names(n)
            ));
            continue;
        }
        let series_may_differ = allowed(SERIES_MAY_DIFFER, family).is_some();
        // A series counts as missing on one side only when both of our reads agree about it:
        // devices and mounts may come and go between reads.
        for key in a
            .keys()
            .filter(|k| b.contains_key(*k) && !n.contains_key(*k))
        {
            if !series_may_differ {
                round
                    .problems
                    .push(format!("{family}{key:?}: only in pimetrics"));
            }
        }
        for key in n
            .keys()
            .filter(|k| !a.contains_key(*k) && !b.contains_key(*k))
        {
            if !series_may_differ {
                round
                    .problems
                    .push(format!("{family}{key:?}: only in node_exporter"));
            }
        }
        let rule = rule_for(family);
        let mut count = 0;
        for (key, &theirs) in n {
            let (Some(&x), Some(&y)) = (a.get(key), b.get(key)) else {
                continue;
            };
            count += 1;
            let ok = match rule {
                Rule::Skip => true,
                Rule::Exact => {
                    (x == theirs && y == theirs) || (x.is_nan() && y.is_nan() && theirs.is_nan())
                }
                Rule::Bracket { abs, rel } => within(theirs, x.min(y), x.max(y), abs, rel),
            };
            if !ok {
                round.problems.push(format!(
                    "{family}{key:?}: node_exporter {theirs}, pimetrics {x} then {y} (rule {rule:?})"
                ));
            }
        }
        round
            .compared
            .insert(family.to_string(), (our_type, format!("{rule:?}"), count));
    }
    round
}

#[test]
fn node_exporter_and_pimetrics_agree() {
    let Some(binary) = require_or_skip(NODE_EXPORTER, "node_exporter compatibility") else {
        return;
    };
    let setup = start_both(&binary);

    let mut rounds = Vec::new();
    for _ in 0..3 {
        let round = compare_round(&setup);
        let clean = round.problems.is_empty();
        rounds.push(round);
        if clean {
            break;
        }
    }
    let last = rounds.last().expect("one round at least");

    let mut report = String::new();
    let _ = writeln!(
        report,
        "node_exporter 1.5 vs pimetrics, collectors {:?}: {} families compared ({} rounds)",
        setup.collectors,
        last.compared.len(),
        rounds.len()
    );
    for (family, (kind, rule, count)) in &last.compared {
        let _ = writeln!(report, "  {family:<55} {kind:<8} {count:>4} series  {rule}");
    }
    let _ = writeln!(report, "only pimetrics (allowed): {:?}", last.only_ours);
    let _ = writeln!(
        report,
        "only node_exporter (allowed): {:?}",
        last.only_node_exporter
    );
    println!("{report}");
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("node_exporter_compat.txt"),
        &report,
    );

    assert!(
        last.problems.is_empty(),
        "pimetrics differs from node_exporter ({} problems in the last of {} rounds):\n{}",
        last.problems.len(),
        rounds.len(),
        last.problems.join("\n")
    );

    // Not vacuous: the key families were compared, with at least one series each; so was the
    // main family of each collector both run, wherever node_exporter exported it here.
    let mut required: Vec<&str> = KEY_FAMILIES.to_vec();
    for (collector, family) in KEY_FAMILY_OF_COLLECTOR {
        if setup.collectors.contains(*collector) && last.node_exporter_families.contains(*family) {
            required.push(family);
        }
    }
    for family in required {
        let compared = last.compared.get(family).map_or(0, |(_, _, n)| *n);
        assert!(compared > 0, "key family {family} was not compared");
    }
}

/// Families node_exporter exports with its own defaults on a machine where pimetrics, with its
/// defaults, does not export them. Each is listed in the README ("Compared with node_exporter")
/// with the same reason; the test below checks both.
const NOT_IN_PIMETRICS: &[(&str, &str)] = &[
    (
        "node_exporter_build_info",
        "node_exporter's own build info; pimetrics exports pimetrics_build_info",
    ),
    (
        "node_systemd_*",
        "Debian turns node_exporter's systemd collector on (upstream 1.12: off); pimetrics has no systemd collector",
    ),
    // node_exporter collectors pimetrics does not build (README: the table of them); they
    // export nothing on the test machine, but may on another.
    ("node_bcache_*", "bcache: not built"),
    ("node_bcachefs_*", "bcachefs: not built"),
    ("node_btrfs_*", "btrfs: not built"),
    ("node_xfs_*", "xfs: not built"),
    ("node_zfs_*", "zfs: not built"),
    ("node_md_*", "mdadm: not built"),
    ("node_dmmultipath_*", "dmmultipath: not built"),
    ("node_nfsd_*", "nfsd: not built"),
    ("node_infiniband_*", "infiniband: not built"),
    ("node_fibrechannel_*", "fibrechannel: not built"),
    ("node_ipvs_*", "ipvs: not built"),
    ("node_bonding_*", "bonding: not built"),
    ("node_tape_*", "tapestats: not built"),
    ("node_edac_*", "edac: not built"),
    ("node_rapl_*", "rapl: not built"),
    ("node_dmi_info", "dmi: not built"),
];

/// Every family node_exporter exports with its defaults on this machine is exported by
/// pimetrics with its defaults, or listed in NOT_IN_PIMETRICS and in the README.
#[test]
fn every_default_node_exporter_family_is_exported() {
    let Some(binary) = require_or_skip(NODE_EXPORTER, "node_exporter default families") else {
        return;
    };
    let (_agent, agent_port) = start_agent(&["--node=compat", "--log.level=warn"]);
    let port = free_port();
    let _node_exporter = Proc::spawn(
        "node_exporter",
        Command::new(&binary)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn"),
    );
    wait_for_port(port, Duration::from_secs(20));
    let families = |text: &str| -> BTreeSet<String> {
        parse_exposition(text)
            .types
            .into_keys()
            .filter(|name| !is_program_own(name))
            .collect()
    };
    let theirs = families(&scrape(port, "/metrics"));
    let ours = families(&scrape(agent_port, "/metrics"));
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .expect("README.md");

    let mut problems = Vec::new();
    let mut allowed_missing = Vec::new();
    for family in theirs.difference(&ours) {
        match NOT_IN_PIMETRICS
            .iter()
            .find(|(pattern, _)| glob(pattern, family))
        {
            Some((pattern, _)) => allowed_missing.push(format!("{family} ({pattern})")),
            None => problems.push(format!(
                "{family}: node_exporter exports it by default here, pimetrics does not"
            )),
        }
    }
    for (pattern, _) in NOT_IN_PIMETRICS {
        if !readme.contains(&format!("`{pattern}`")) {
            problems.push(format!("README does not list `{pattern}` as not exported"));
        }
    }
    println!(
        "node_exporter defaults: {} families, {} also in pimetrics; allowed missing: {allowed_missing:?}",
        theirs.len(),
        theirs.intersection(&ours).count()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(theirs.contains("node_cpu_seconds_total") && ours.contains("node_cpu_seconds_total"));
}

#[test]
fn glob_patterns() {
    assert!(glob("node_memory_*", "node_memory_MemFree_bytes"));
    assert!(glob(
        "node_cpu_*frequency_hertz",
        "node_cpu_scaling_frequency_hertz"
    ));
    assert!(glob(
        "node_cpu_*frequency_hertz",
        "node_cpu_frequency_hertz"
    ));
    assert!(!glob(
        "node_cpu_*frequency_hertz",
        "node_cpu_frequency_max_hertz"
    ));
    assert!(glob("*_info", "node_uname_info"));
    assert!(!glob("node_load1", "node_load15"));
    assert!(within(5.0, 4.0, 6.0, 0.0, 0.0));
    assert!(!within(7.0, 4.0, 6.0, 0.5, 0.0));
    assert!(within(7.0, 4.0, 6.0, 1.0, 0.0));
}
