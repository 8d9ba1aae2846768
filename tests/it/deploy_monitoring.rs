//! The monitoring side in deploy/, checked by the real tools: `promtool check config` on every
//! Prometheus config, `promtool check rules` on every rule file, `promtool test rules` on every
//! rule test, `amtool check-config` on the Alertmanager config; the compose file, the k3s
//! manifests, the Grafana provisioning and dashboard parsed and cross-checked (paths that
//! exist, the datasource uid the dashboard uses, the agent flags the DaemonSet passes).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::ship::*;
use serde_json::Value;

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir:?}: {e}"))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn yaml(path: &Path) -> Vec<Value> {
    // Debian's yq (a jq wrapper): every YAML document as one JSON value per line.
    let out = run_ok(
        "yq",
        Command::new("yq").args(["-c", "."]).arg(path),
        Duration::from_secs(30),
    );
    out.lines()
        .filter(|l| !l.trim().is_empty() && l.trim() != "null")
        .map(|l| serde_json::from_str(l).expect("yq JSON"))
        .collect()
}

#[test]
fn promtool_accepts_every_prometheus_config() {
    if !have_all(&["promtool"], "promtool check config") {
        return;
    }
    for config in [
        repo().join("deploy/prometheus/prometheus.yml"),
        repo().join("prometheus/pushgateway-scrape.yml"),
    ] {
        let out = run_ok(
            "promtool check config",
            Command::new("promtool")
                .args(["check", "config"])
                .arg(&config),
            Duration::from_secs(60),
        );
        assert!(
            out.contains("is valid prometheus config file syntax"),
            "{out}"
        );
    }
    // The fleet config loads our rules and the Pi and push alerts of rules/.
    let out = run_ok(
        "promtool check config",
        Command::new("promtool")
            .args(["check", "config"])
            .arg(repo().join("deploy/prometheus/prometheus.yml")),
        Duration::from_secs(60),
    );
    for rules in [
        "fleet-alerts.yml",
        "fleet-recording.yml",
        "rules/pi-alerts.yml",
        "rules/push-alerts.yml",
    ] {
        assert!(out.contains(rules), "{rules} not loaded:\n{out}");
    }
}

#[test]
fn promtool_checks_and_tests_every_rule_file() {
    if !have_all(&["promtool"], "promtool rules") {
        return;
    }
    let rules = files(&repo().join("deploy/prometheus/rules"), "yml");
    assert!(rules.len() >= 2, "{rules:?}");
    run_ok(
        "promtool check rules",
        Command::new("promtool")
            .args(["check", "rules"])
            .args(&rules),
        Duration::from_secs(60),
    );
    let tests = files(&repo().join("deploy/prometheus/rules/tests"), "yml");
    assert!(!tests.is_empty());
    // Every rule file has a test file naming it.
    for rule in &rules {
        let name = rule.file_name().unwrap().to_str().unwrap();
        assert!(
            tests
                .iter()
                .any(|t| std::fs::read_to_string(t).unwrap().contains(name)),
            "no promtool test for {name}"
        );
    }
    let out = run_ok(
        "promtool test rules",
        Command::new("promtool")
            .args(["test", "rules"])
            .args(&tests),
        Duration::from_secs(120),
    );
    assert!(out.contains("SUCCESS"), "{out}");
    // Every alert of the fleet rules is exercised by a test.
    let alerts =
        std::fs::read_to_string(repo().join("deploy/prometheus/rules/fleet-alerts.yml")).unwrap();
    let tested: String = tests
        .iter()
        .map(|t| std::fs::read_to_string(t).unwrap())
        .collect();
    for line in alerts.lines() {
        if let Some(name) = line.trim().strip_prefix("- alert: ") {
            assert!(
                tested.contains(&format!(
                    "alertname: {name}\n        exp_alerts:\n          - "
                )),
                "alert {name} is never tested firing"
            );
        }
    }
}

#[test]
fn amtool_accepts_the_alertmanager_config() {
    if !have_all(&["amtool"], "amtool check-config") {
        return;
    }
    let out = run_ok(
        "amtool check-config",
        Command::new("amtool")
            .arg("check-config")
            .arg(repo().join("deploy/alertmanager/alertmanager.yml")),
        Duration::from_secs(60),
    );
    assert!(
        out.contains("SUCCESS") && out.contains("1 receivers"),
        "{out}"
    );
    let config =
        std::fs::read_to_string(repo().join("deploy/alertmanager/alertmanager.yml")).unwrap();
    assert!(config.contains("email_configs:"));
}

#[test]
fn the_compose_file_mounts_files_that_exist() {
    if !have_all(&["yq"], "compose file") {
        return;
    }
    let compose = &yaml(&repo().join("deploy/compose.yaml"))[0];
    let services = compose["services"].as_object().expect("services");
    let names: Vec<&str> = services.keys().map(String::as_str).collect();
    for wanted in ["prometheus", "pushgateway", "alertmanager", "grafana"] {
        assert!(names.contains(&wanted), "{wanted} missing: {names:?}");
    }
    for (name, service) in services {
        assert!(
            service["image"].as_str().is_some_and(|i| i.contains(':')),
            "{name}: image"
        );
        for volume in service["volumes"].as_array().into_iter().flatten() {
            let source = volume.as_str().unwrap().split(':').next().unwrap();
            if source.starts_with('.') {
                let path = repo().join("deploy").join(source);
                assert!(path.exists(), "{name}: {source} does not exist");
            }
        }
    }
    // prometheus.yml's rule_files `../../rules/...` seen from /etc/prometheus is /rules.
    let volumes = services["prometheus"]["volumes"].to_string();
    assert!(volumes.contains("../rules:/rules:ro"), "{volumes}");
    assert!(
        volumes.contains("./prometheus:/etc/prometheus:ro"),
        "{volumes}"
    );
}

#[test]
fn the_k3s_daemonset_reads_the_host_through_the_path_flags() {
    if !have_all(&["yq"], "k3s manifests") {
        return;
    }
    let docs = yaml(&repo().join("deploy/k3s/pimetrics.yaml"));
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Namespace", "DaemonSet", "Service"]);
    let ds = &docs[1];
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    let container = &pod["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let mounts: Vec<(&str, &str)> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["mountPath"].as_str().unwrap(),
            )
        })
        .collect();
    let volumes: Vec<(&str, &str)> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap(),
                v["hostPath"]["path"].as_str().unwrap(),
            )
        })
        .collect();
    for (flag, host) in [
        ("procfs", "/proc"),
        ("sysfs", "/sys"),
        ("rootfs", "/"),
        ("devfs", "/dev"),
    ] {
        let arg = args
            .iter()
            .find_map(|a| a.strip_prefix(&format!("--path.{flag}=")))
            .unwrap_or_else(|| panic!("--path.{flag} missing: {args:?}"));
        let (name, _) = mounts
            .iter()
            .find(|(_, path)| *path == arg)
            .unwrap_or_else(|| panic!("nothing mounted at {arg}"));
        assert!(
            volumes.contains(&(name, host)),
            "{name} is not the host's {host}"
        );
    }
    // Every flag the DaemonSet passes is one the agent knows.
    for arg in &args {
        let flag = arg.split('=').next().unwrap();
        let out = run(
            "pimetrics --help",
            Command::new(agent_bin()).arg("--help"),
            Duration::from_secs(10),
        );
        assert!(
            text(&out.stdout).contains(flag),
            "{flag} unknown to the agent"
        );
    }
    // The mailbox group and the Service port.
    assert_eq!(pod["securityContext"]["supplementalGroups"][0], 44);
    let service = &docs[2];
    assert_eq!(service["spec"]["ports"][0]["port"], 9243);
    assert_eq!(
        service["spec"]["selector"],
        ds["spec"]["template"]["metadata"]["labels"]
    );
}

#[test]
fn grafana_provisioning_and_the_dashboard_agree() {
    if !have_all(&["yq"], "grafana provisioning") {
        return;
    }
    let ds = &yaml(&repo().join("deploy/grafana/provisioning/datasources/prometheus.yml"))[0];
    let uid = ds["datasources"][0]["uid"].as_str().unwrap();
    assert_eq!(ds["datasources"][0]["type"], "prometheus");
    let provider = &yaml(&repo().join("deploy/grafana/provisioning/dashboards/pimetrics.yml"))[0];
    assert_eq!(
        provider["providers"][0]["options"]["path"],
        "/var/lib/grafana/dashboards"
    );
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/grafana/dashboards/pimetrics-fleet.json"))
            .unwrap(),
    )
    .expect("dashboard JSON");
    let templating = dashboard["templating"]["list"].as_array().unwrap();
    assert_eq!(templating[0]["current"]["value"], uid);
    assert_eq!(templating[1]["name"], "node");
    assert_eq!(templating[1]["multi"], true);
    let mut ids = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        assert!(
            ids.insert(panel["id"].as_i64().unwrap()),
            "duplicate panel id"
        );
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}: no query", panel["title"]);
        for t in targets {
            let expr = t["expr"].as_str().unwrap();
            assert!(expr.contains("node=~\"$node\""), "{expr}: no node selector");
        }
    }
}
