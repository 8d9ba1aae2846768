//! Every query of the Grafana fleet dashboard (deploy/grafana/dashboards/pimetrics-fleet.json),
//! and the fleet recording rules, evaluated by a real Prometheus that scrapes one agent per Pi
//! fixture board (tests/fixtures/<board>: its /proc and /sys and recorded mailbox answers) with the shipped deploy/prometheus/prometheus.yml (file_sd with node labels, the
//! fleet rules and rules/'s Pi and push alerts; intervals shortened): each returns data, and a
//! Pi that is off gets `up` 0 and a pending PimetricsDown, both with its node label.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::free_port;
use crate::harness::ship::*;
use crate::harness::tree::{copy_tree, tree};
use serde_json::Value;

const BOARDS: &[&str] = &["pi4", "pi5", "pi-zero-w", "pi3b-plus", "cm4"];

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn query(prometheus: u16, promql: &str) -> Vec<Value> {
    let out = run(
        "curl query",
        Command::new("curl")
            .args(["-fsS", "--max-time", "10", "--get", "--data-urlencode"])
            .arg(format!("query={promql}"))
            .arg(format!("http://127.0.0.1:{prometheus}/api/v1/query")),
        Duration::from_secs(20),
    );
    if !out.status.success() {
        return Vec::new();
    }
    let body: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(body["status"], "success", "{promql}: {body}");
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Grafana's variables, as the dashboard uses them with "All" nodes selected.
fn as_prometheus_sees_it(expr: &str) -> String {
    expr.replace("$node", ".+")
        .replace("$__rate_interval", "20s")
}

#[test]
fn every_dashboard_query_returns_data_for_the_fixture_boards() {
    if !have_all(
        &["prometheus", "prometheus-pushgateway", "curl"],
        "fleet dashboard",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut agents = Vec::new();
    let mut targets = String::new();
    for board in BOARDS {
        // The board's /proc and /sys; its root filesystem is this machine's, so the board's
        // "/" mount has sizes (node:node_filesystem_used:ratio).
        let fixture = tree(board).dir;
        let root = &fixture;
        let port = free_port();
        let mut cmd = Command::new(agent_bin());
        cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--node={board}"))
            .arg(format!("--path.procfs={}", root.join("proc").display()))
            .arg(format!("--path.sysfs={}", root.join("sys").display()))
            .arg(format!("--path.devfs={}", root.join("dev").display()));
        if fixture.join("mailbox.replay").exists() {
            cmd.arg(format!(
                "--collector.rpi.mailbox-replay={}",
                fixture.join("mailbox.replay").display()
            ));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("agent");
        agents.push(Killed(child));
        targets.push_str(&format!(
            "- targets: [\"127.0.0.1:{port}\"]\n  labels:\n    node: {board}\n"
        ));
    }
    // A Pi behind NAT: it pushes to a real Pushgateway, which the shipped config scrapes
    // (honor_labels: the job and node labels the agent pushed stay).
    let gateway_port = free_port();
    let _gateway = Killed(
        Command::new("prometheus-pushgateway")
            .arg(format!("--web.listen-address=127.0.0.1:{gateway_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-pushgateway"),
    );
    let pushed = tree("pi3b-plus").dir;
    agents.push(Killed(
        Command::new(agent_bin())
            .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
            .arg("--node=pi-pushed")
            .arg(format!("--push.url=http://127.0.0.1:{gateway_port}"))
            .arg("--push.interval=1s")
            .arg("--collector.disable-defaults")
            .arg("--collector.rpi")
            .arg(format!("--path.procfs={}", pushed.join("proc").display()))
            .arg(format!("--path.sysfs={}", pushed.join("sys").display()))
            .arg(format!(
                "--collector.rpi.mailbox-replay={}",
                pushed.join("mailbox.replay").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pushing agent"),
    ));
    // A Pi that is off: its node label comes from the targets file alone.
    targets.push_str(&format!(
        "- targets: [\"127.0.0.1:{}\"]\n  labels:\n    node: pi-off\n",
        free_port()
    ));
    // The shipped deploy/prometheus (config, rules, targets) and the repository's rules/, in
    // the same relative places; only the intervals (30s -> 1s) and the targets are changed.
    let deploy = dir.path().join("deploy/prometheus");
    copy_tree(&repo().join("deploy/prometheus"), &deploy);
    copy_tree(&repo().join("rules"), &dir.path().join("rules"));
    std::fs::write(deploy.join("targets/pis.yml"), targets).unwrap();
    let shipped = std::fs::read_to_string(deploy.join("prometheus.yml")).unwrap();
    assert!(shipped.contains("  scrape_interval: 30s\n  evaluation_interval: 30s\n"));
    std::fs::write(
        deploy.join("prometheus.yml"),
        shipped
            .replace(
                "  scrape_interval: 30s\n  evaluation_interval: 30s\n",
                "  scrape_interval: 1s\n  evaluation_interval: 1s\n",
            )
            .replace(
                "targets: [\"pushgateway:9091\"]",
                &format!("targets: [\"127.0.0.1:{gateway_port}\"]"),
            ),
    )
    .unwrap();
    let prometheus_port = free_port();
    let _prometheus = Killed(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                deploy.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus"),
    );

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/grafana/dashboards/pimetrics-fleet.json"))
            .unwrap(),
    )
    .unwrap();
    let mut queries: Vec<(String, String)> = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            queries.push((
                panel["title"].as_str().unwrap().to_string(),
                as_prometheus_sees_it(t["expr"].as_str().unwrap()),
            ));
        }
    }
    // The node selector's own query: label_values(up{job="pimetrics"}, node).
    queries.push(("$node variable".into(), "up{job=\"pimetrics\"}".into()));
    // The recording rules the alerts use.
    for record in [
        "node:node_cpu_busy:ratio_avg3m",
        "node:node_memory_used:ratio",
        "node:node_filesystem_used:ratio",
        "node:node_network_receive_bytes:rate3m",
        "node:node_network_transmit_bytes:rate3m",
        "node:rpi_soc_temperature_celsius:max3m",
    ] {
        queries.push(("recording rule".into(), record.into()));
    }

    for (title, promql) in &queries {
        let result = eventually(Duration::from_secs(90), || {
            let r = query(prometheus_port, promql);
            (!r.is_empty()).then_some(r)
        })
        .unwrap_or_else(|| panic!("{title}: no data for {promql}"));
        let nodes: std::collections::BTreeSet<&str> = result
            .iter()
            .filter_map(|s| s["metric"]["node"].as_str())
            .collect();
        eprintln!(
            "{title}: {promql} -> {} series, nodes {nodes:?}",
            result.len()
        );
        assert!(!nodes.is_empty(), "{title}: {promql}: no node label");
    }

    // The selector offers every board; every board has its temperature and board info.
    let up = query(prometheus_port, "up{job=\"pimetrics\"} == 1");
    let nodes: std::collections::BTreeSet<&str> = up
        .iter()
        .filter_map(|s| s["metric"]["node"].as_str())
        .collect();
    assert_eq!(nodes, BOARDS.iter().copied().collect());
    // The Pi that is off: `up` 0 with its node label, and PimetricsDown on its way (pending
    // for its 2 minutes) with the node label for the mail.
    assert!(!query(
        prometheus_port,
        "up{job=\"pimetrics\", node=\"pi-off\"} == 0"
    )
    .is_empty());
    let down = eventually(Duration::from_secs(30), || {
        let r = query(
            prometheus_port,
            "ALERTS{alertname=\"PimetricsDown\", alertstate=\"pending\"}",
        );
        (!r.is_empty()).then_some(r)
    })
    .expect("PimetricsDown pending for the Pi that is off");
    assert_eq!(down.len(), 1, "{down:?}");
    assert_eq!(down[0]["metric"]["node"], "pi-off");
    // The pushed Pi, through the gateway with its own labels.
    let via_gateway = eventually(Duration::from_secs(30), || {
        let r = query(
            prometheus_port,
            "rpi_soc_temperature_celsius{node=\"pi-pushed\", job=\"pimetrics\", instance=\"pi-pushed\"}",
        );
        (!r.is_empty()).then_some(r)
    })
    .expect("the pushed Pi's temperature through the Pushgateway");
    assert_eq!(via_gateway.len(), 1, "{via_gateway:?}");
    // The Pi and push rules of rules/ are loaded too (and evaluated without errors).
    let rules = run_ok(
        "curl rules",
        Command::new("curl")
            .args(["-fsS", "--max-time", "10"])
            .arg(format!("http://127.0.0.1:{prometheus_port}/api/v1/rules")),
        Duration::from_secs(20),
    );
    for group in [
        "pimetrics-fleet-alerts",
        "pimetrics-fleet-recording",
        "RaspberryPiUnderVoltage",
        "PimetricsPushStale",
    ] {
        assert!(rules.contains(group), "{group} not loaded");
    }
    assert!(
        !rules.contains("\"health\":\"err\""),
        "a rule fails: {rules}"
    );
    for metric in [
        "rpi_soc_temperature_celsius",
        "rpi_board_info",
        "node_load1",
    ] {
        // The scraped boards (the pushed Pi is checked above).
        let r = query(prometheus_port, &format!("{metric}{{node!=\"pi-pushed\"}}"));
        assert_eq!(r.len(), BOARDS.len(), "{metric}: {r:?}");
    }
}
