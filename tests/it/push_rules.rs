//! The repository's Prometheus files for push: checked and unit-tested with promtool.

use std::path::Path;
use std::process::Command;

use crate::harness::require;

fn promtool(args: &[&str]) {
    let out = Command::new(require("promtool"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .output()
        .expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn scrape_config_is_valid_and_honors_labels() {
    promtool(&["check", "config", "prometheus/pushgateway-scrape.yml"]);
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("prometheus/pushgateway-scrape.yml"),
    )
    .unwrap();
    assert!(text.contains("honor_labels: true"));
}

#[test]
fn push_alert_rules_pass_their_tests() {
    promtool(&["check", "rules", "rules/push-alerts.yml"]);
    promtool(&["test", "rules", "rules/tests/push-alerts-test.yml"]);
}
