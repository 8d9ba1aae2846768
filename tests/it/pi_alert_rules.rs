//! The Pi alerting rules in rules/ are valid and behave as their unit tests say, checked
//! with Debian's promtool.

use std::path::Path;
use std::process::Command;

use crate::harness::require;

fn promtool(args: &[&str]) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(require("promtool"))
        .args(args)
        .current_dir(repo)
        .output()
        .expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn pi_alert_rules_are_valid() {
    promtool(&["check", "rules", "rules/pi-alerts.yml"]);
}

#[test]
fn pi_alert_rules_pass_their_unit_tests() {
    promtool(&["test", "rules", "rules/tests/pi-alerts-test.yml"]);
}

#[test]
fn every_pi_alert_has_a_unit_test() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = std::fs::read_to_string(repo.join("rules/pi-alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(repo.join("rules/tests/pi-alerts-test.yml")).unwrap();
    let names: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(names.len(), 7);
    for name in names {
        assert!(
            tests.contains(&format!("alertname: {name}\n")),
            "{name} has no test"
        );
    }
}
