//! systemd/pimetrics.service: `systemd-analyze verify` accepts it without a single warning, and
//! `systemd-analyze security --offline` rates its sandbox at least as good as it is today.
//! systemd-analyze works on unit files without a running systemd (this container has none).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::harness::*;

const SHIPPED_EXEC_START: &str =
    "ExecStart=/usr/local/bin/pimetrics --config /etc/pimetrics/pimetrics.ron";

fn shipped_unit() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/pimetrics.service"))
        .expect("systemd/pimetrics.service")
}

/// The unit with ExecStart pointing at the binary built for the tests (verify checks that the
/// program exists and is executable; /usr/local/bin/pimetrics is not installed here).
fn unit_for_this_build(dir: &Path) -> std::path::PathBuf {
    let unit = shipped_unit().replace(
        "ExecStart=/usr/local/bin/pimetrics ",
        &format!("ExecStart={} ", agent_bin().display()),
    );
    let path = dir.join("pimetrics.service");
    std::fs::write(&path, unit).unwrap();
    path
}

#[test]
fn the_unit_runs_the_installed_binary_with_the_etc_config() {
    let unit = shipped_unit();
    let exec: Vec<&str> = unit
        .lines()
        .filter(|l| l.starts_with("ExecStart="))
        .collect();
    assert_eq!(exec, vec![SHIPPED_EXEC_START]);
    for hardening in [
        "Type=notify",
        "WatchdogSec=30s",
        "User=pimetrics",
        "SupplementaryGroups=video",
        "DevicePolicy=closed",
        "DeviceAllow=/dev/vcio rw",
        "DeviceAllow=/dev/vcio_gencmd rw",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "MemoryDenyWriteExecute=yes",
        "SystemCallArchitectures=native",
    ] {
        assert!(unit.contains(hardening), "{hardening:?} missing");
    }
}

#[test]
fn systemd_analyze_verify_accepts_the_unit_without_warnings() {
    let Some(analyze) = require_or_skip("systemd-analyze", "systemd unit verify") else {
        return;
    };
    let dir = tempdir();
    let unit = unit_for_this_build(dir.path());
    let (status, out, err) = run_bounded(
        "systemd-analyze verify",
        Command::new(&analyze).arg("verify").arg(&unit),
        Duration::from_secs(60),
    );
    // verify exits 0 on unknown keys and bad values (it only warns): any output is a failure.
    assert!(
        status.success(),
        "systemd-analyze verify failed: {err}{out}"
    );
    assert!(
        err.trim().is_empty() && out.trim().is_empty(),
        "systemd-analyze verify complains:\n{err}{out}"
    );
}

#[test]
fn systemd_analyze_security_rates_the_sandbox_ok() {
    let Some(analyze) = require_or_skip("systemd-analyze", "systemd unit security") else {
        return;
    };
    let dir = tempdir();
    let unit = unit_for_this_build(dir.path());
    // Exposure 0 (locked down) .. 10 (unsafe); the unit rates 1.7 (tests/it/systemd_boot.rs reads
    // the same score from a running systemd). --threshold makes the exit status fail above it,
    // so a weakened sandbox fails here.
    let (status, out, err) = run_bounded(
        "systemd-analyze security",
        Command::new(&analyze)
            .args(["security", "--offline=true", "--threshold=17", "--no-pager"])
            .arg(&unit),
        Duration::from_secs(60),
    );
    assert!(
        status.success(),
        "exposure above 1.7 or error:\n{err}\n{}",
        out.lines()
            .filter(|l| l.starts_with('✗') || l.contains("Overall"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(out.contains("Overall exposure level"), "{out}");
}
