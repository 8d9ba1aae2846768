//! The README's metrics reference lists every metric family the agent exports: on this machine
//! and on every fixture tree (the Pi boards with their recorded mailbox answers among them).
//! A collector that adds or renames a metric without documenting it fails here.

use std::collections::BTreeSet;
use std::path::Path;

use crate::harness::*;

/// Family names of one `--once` run.
fn families(args: &[String]) -> BTreeSet<String> {
    let out = run_agent(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "--once {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    parse_exposition(&text).types.into_keys().collect()
}

/// A family is documented when the README names it, or (for rows that group a family's
/// variants, such as `node_hwmon_temp_celsius`, `_temp_max_celsius`) when it names its suffix
/// after the collector prefix.
fn documented(readme: &str, family: &str) -> bool {
    if readme.contains(family) {
        return true;
    }
    // meminfo exports whatever lines the kernel prints; the README documents the pattern.
    if family.starts_with("node_memory_") && readme.contains("node_memory_<Field>") {
        return true;
    }
    // So do netstat, vmstat and sockstat (names from the kernel's field names).
    for (prefix, pattern) in [
        ("node_netstat_", "node_netstat_<Protocol>_<Field>"),
        ("node_vmstat_", "node_vmstat_<field>"),
        ("node_sockstat_", "node_sockstat_<PROTO>_<state>"),
    ] {
        if family.starts_with(prefix) && readme.contains(pattern) {
            return true;
        }
    }
    [
        "node_hwmon",
        "node_disk",
        "node_filesystem",
        "node_network",
        "node_cpu",
        "node_nf_conntrack_stat",
        "node_nvme_namespace",
        "node_power_supply",
        "node_softnet",
        "node_timex",
        "node_watchdog",
        "rpi_pmic",
        "rpi",
    ]
    .iter()
    .filter_map(|prefix| family.strip_prefix(prefix))
    .any(|suffix| suffix.starts_with('_') && readme.contains(&format!("`{suffix}`")))
}

#[test]
fn every_exported_family_is_in_the_readme() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let mut runs: Vec<Vec<String>> = vec![vec!["--once".into()]];
    for tree in trees() {
        let mut args = vec![
            "--once".to_string(),
            "--collector.rpi.enabled=auto".to_string(),
        ];
        args.extend(tree.args());
        runs.push(args);
    }
    let mut seen = BTreeSet::new();
    for args in &runs {
        seen.extend(families(args));
    }
    for required in [
        "node_cpu_seconds_total",
        "node_memory_MemTotal_bytes",
        "node_hwmon_temp_celsius",
        "rpi_board_info",
        "rpi_throttled_flags",
    ] {
        assert!(
            seen.contains(required),
            "{required} was not exported by any run: the test would mean little"
        );
    }
    let missing: Vec<_> = seen
        .iter()
        .filter(|family| !documented(&readme, family))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md's metrics reference lacks: {missing:?}"
    );
}
