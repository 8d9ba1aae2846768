//! The fixture trees themselves: every Raspberry Pi board tree gives, through the whole agent,
//! both its Pi metrics and node_exporter's system metrics, and the system files agree with the
//! board (cores, memory, architecture); the agent serves a tree over HTTP as it prints it.

use std::collections::BTreeSet;

use crate::harness::*;

/// What each board is: cores, memory as the revision code gives it (MiB; None where the
/// kernel prints no revision), `uname -m`.
const BOARDS: &[(&str, usize, Option<f64>, &str)] = &[
    ("cm4", 4, Some(4096.0), "aarch64"),
    ("debian-pi3-32bit", 4, Some(1024.0), "armv7l"),
    ("debian-pi4", 4, None, "aarch64"),
    ("pi-zero-w", 1, Some(512.0), "armv6l"),
    ("pi3b-plus", 4, Some(1024.0), "armv7l"),
    ("pi4", 4, Some(4096.0), "aarch64"),
    ("pi5", 4, Some(8192.0), "aarch64"),
];

#[test]
fn every_board_tree_gives_pi_and_system_metrics_that_agree_with_the_board() {
    let boards: Vec<String> = pi_boards().into_iter().map(|t| t.name).collect();
    let listed: Vec<String> = BOARDS.iter().map(|b| b.0.to_string()).collect();
    assert_eq!(boards, listed, "a board tree without its row here");
    for &(name, cores, memory_mib, machine) in BOARDS {
        let exp = tree(name).scrape();
        // Every default collector that reads a file every Pi has succeeded.
        for collector in [
            "cpu",
            "cpufreq",
            "diskstats",
            "filesystem",
            "loadavg",
            "meminfo",
            "netdev",
            "netclass",
            "os",
            "rpi",
            "stat",
            "thermal_zone",
            "hwmon",
            "time",
            "uname",
            "vmstat",
        ] {
            assert_eq!(
                exp.value("node_scrape_collector_success", &[("collector", collector)]),
                Some(1.0),
                "{name}: collector {collector}"
            );
        }
        assert_eq!(exp.family("rpi_board_info").len(), 1, "{name}");
        let cpus: BTreeSet<&str> = exp
            .family("node_cpu_seconds_total")
            .iter()
            .map(|s| s.labels["cpu"].as_str())
            .collect();
        assert_eq!(cpus.len(), cores, "{name}: cpus {cpus:?}");
        let frequencies = exp.family("node_cpu_scaling_frequency_hertz").len();
        assert_eq!(frequencies, cores, "{name}: one cpufreq series per core");
        let total = exp
            .value("node_memory_MemTotal_bytes", &[])
            .unwrap_or_else(|| panic!("{name}: MemTotal"));
        if let Some(mib) = memory_mib {
            // The kernel sees the board's memory minus the firmware's share (GPU, reserved).
            let board = mib * 1024.0 * 1024.0;
            assert!(
                total < board && total > board * 0.8,
                "{name}: MemTotal {total} for a {mib} MiB board"
            );
            let label = exp.family("rpi_board_info")[0].labels["memory"].clone();
            let expected = if mib >= 1024.0 {
                format!("{}GB", mib / 1024.0)
            } else {
                format!("{mib}MB")
            };
            assert_eq!(label, expected, "{name}: rpi_board_info memory");
        }
        let uname = exp.family("node_uname_info");
        assert_eq!(uname.len(), 1, "{name}");
        assert_eq!(uname[0].labels["machine"], machine, "{name}");
        assert!(exp.value("node_load1", &[]).is_some(), "{name}: load");
        assert!(
            !exp.family("node_network_receive_bytes_total").is_empty(),
            "{name}: interfaces"
        );
        assert!(
            !exp.family("node_disk_read_bytes_total").is_empty(),
            "{name}: disks"
        );
        assert_eq!(exp.family("node_os_info").len(), 1, "{name}: os-release");
    }
}

#[test]
fn the_agent_serves_a_tree_as_once_prints_it() {
    let pi5 = tree("pi5");
    let printed = pi5.scrape();
    let agent = pi5.agent(&[]);
    let served = parse_exposition(&scrape(agent.port, "/metrics"));
    for (name, labels) in [
        ("rpi_soc_temperature_celsius", vec![]),
        ("node_memory_MemTotal_bytes", vec![]),
        ("node_load1", vec![]),
        (
            "node_hwmon_fan_rpm",
            vec![("chip", "platform_cooling_fan"), ("sensor", "fan1")],
        ),
    ] {
        let value = served.value(name, &labels);
        assert!(value.is_some(), "{name} not served");
        assert_eq!(value, printed.value(name, &labels), "{name}");
    }
    let (status, stderr) = agent
        .proc
        .stop_with(libc::SIGTERM, std::time::Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{stderr}");
}
