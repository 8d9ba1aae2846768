//! Push through a real NAT. Network namespaces: a "pi" on a private network behind a
//! masquerading "router", and a "cloud" host running Prometheus and the Pushgateway.
//! Prometheus cannot reach the Pi; the agent in `fallback` mode notices that nobody scrapes
//! it, pushes, and Prometheus (scraping the gateway with honor_labels) has the Pi's metrics
//! with its node label. Then the Pi loses power (SIGKILL: no DELETE) and the repository's
//! stale-push alert, with a test-sized threshold, fires.
//!
//! Needs root (namespaces, veth, nftables or iptables). Not root and CI unset: skipped, saying
//! so. Under CI it must run.

use std::path::Path;
use std::time::Duration;

use crate::harness::netns::*;
use crate::harness::*;

const PI_ADDR: &str = "10.97.0.2";
const ROUTER_INSIDE: &str = "10.97.0.1";
const ROUTER_OUTSIDE: &str = "203.0.113.1";
const CLOUD_ADDR: &str = "203.0.113.2";
const ADDRS: Addrs = Addrs {
    pi: PI_ADDR,
    router_inside: ROUTER_INSIDE,
    router_outside: ROUTER_OUTSIDE,
    cloud: CLOUD_ADDR,
};
const AGENT_PORT: u16 = 9243;
const GATEWAY_PORT: u16 = 9091;
const PROMETHEUS_PORT: u16 = 9090;
const WAIT: Duration = Duration::from_secs(60);

/// GET on the cloud's Prometheus, the JSON `data` of a successful answer.
fn prometheus_api(cloud: &str, path: String) -> Option<serde_json::Value> {
    let answer = in_netns(cloud, move || http_get(PROMETHEUS_PORT, &path));
    if answer.status != 200 {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&answer.body).ok()?;
    (json["status"] == "success").then(|| json["data"].clone())
}

/// The result vector of an instant PromQL query.
fn query(cloud: &str, promql: &str) -> Vec<serde_json::Value> {
    prometheus_api(cloud, format!("/api/v1/query?query={}", url_encode(promql)))
        .and_then(|data| data["result"].as_array().cloned())
        .unwrap_or_default()
}

fn firing_stale_alert(cloud: &str) -> Option<serde_json::Value> {
    let data = prometheus_api(cloud, "/api/v1/alerts".to_string())?;
    data["alerts"]
        .as_array()?
        .iter()
        .find(|alert| {
            alert["labels"]["alertname"] == "PimetricsPushStale"
                && alert["labels"]["instance"] == "pi-nat"
                && alert["state"] == "firing"
        })
        .cloned()
}

/// The repository's alert rules, with test-sized times (5 s stale, no `for`).
fn test_rules() -> String {
    let rules = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/push-alerts.yml"),
    )
    .unwrap();
    let stale = "time() - push_time_seconds{job=\"pimetrics\"} > 300\n        for: 1m";
    assert!(rules.contains(stale), "rules/push-alerts.yml changed shape");
    rules.replace(
        stale,
        "time() - push_time_seconds{job=\"pimetrics\"} > 5\n        for: 0s",
    )
}

#[test]
fn fallback_push_through_nat_reaches_prometheus_and_a_dead_pi_alerts() {
    let _heavy = crate::harness::heavy();
    if !may_run("push_nat") {
        return;
    }
    let prometheus_bin = require("prometheus");
    let gateway_bin = require("prometheus-pushgateway");
    let dir = tempfile::tempdir().unwrap();

    // Declared first, dropped last: the processes inside go before their namespaces.
    let mut nets = Namespaces::new("pm");
    let (pi, _router, cloud) = build_network(&mut nets, &ADDRS);

    std::fs::write(dir.path().join("rules.yml"), test_rules()).unwrap();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - rules.yml\n\
             scrape_configs:\n\
             \x20 - job_name: pushgateway\n    honor_labels: true\n    static_configs:\n      - targets: ['127.0.0.1:{GATEWAY_PORT}']\n\
             \x20 - job_name: pi-direct\n    scrape_timeout: 500ms\n    static_configs:\n      - targets: ['{PI_ADDR}:{AGENT_PORT}']\n"
        ),
    )
    .unwrap();
    let _gateway = spawn_in(
        &cloud,
        "prometheus-pushgateway",
        &gateway_bin,
        &[
            format!("--web.listen-address=0.0.0.0:{GATEWAY_PORT}"),
            "--log.level=warn".into(),
        ],
    );
    let _prometheus = spawn_in(
        &cloud,
        "prometheus",
        &prometheus_bin,
        &[
            format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=0.0.0.0:{PROMETHEUS_PORT}"),
            "--log.level=warn".into(),
        ],
    );
    std::fs::write(
        dir.path().join("pimetrics.ron"),
        format!(
            "(node: \"pi-nat\", listen_address: \"0.0.0.0:{AGENT_PORT}\",\n \
             push: (url: \"http://{CLOUD_ADDR}:{GATEWAY_PORT}\", interval: \"1s\", mode: fallback, fallback_after: \"3s\"))"
        ),
    )
    .unwrap();
    let agent = spawn_in(
        &pi,
        "pimetrics",
        &agent_bin(),
        &[
            "--config".into(),
            dir.path().join("pimetrics.ron").display().to_string(),
        ],
    );
    in_netns(&cloud, || {
        wait_for_port(GATEWAY_PORT, Duration::from_secs(20));
        wait_for_port(PROMETHEUS_PORT, Duration::from_secs(30));
    });
    in_netns(&pi, || wait_for_port(AGENT_PORT, Duration::from_secs(20)));

    // The NAT holds: the cloud cannot open a connection to the Pi.
    let reachable = in_netns(&cloud, || {
        std::net::TcpStream::connect_timeout(
            &format!("{PI_ADDR}:{AGENT_PORT}").parse().unwrap(),
            Duration::from_secs(2),
        )
        .is_ok()
    });
    assert!(!reachable, "the cloud must not reach the Pi");
    eventually(WAIT, || {
        let up = query(&cloud, "up{job=\"pi-direct\"}");
        (up.first()?["value"][1] == "0").then_some(())
    })
    .expect("Prometheus sees the Pi as down (up == 0)");

    // Unscraped, the agent pushes; Prometheus has its metrics through the gateway.
    let result = eventually(WAIT, || {
        let result = query(
            &cloud,
            "node_memory_MemTotal_bytes{job=\"pimetrics\", instance=\"pi-nat\"}",
        );
        (!result.is_empty()).then_some(result)
    })
    .expect("the Pi's metrics reach Prometheus through the NAT and the gateway");
    assert_eq!(result[0]["metric"]["node"], "pi-nat", "{result:?}");
    let memory: f64 = result[0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(memory > 1e6, "{memory}");
    let mode = query(
        &cloud,
        "pimetrics_push_mode{node=\"pi-nat\", mode=\"push\"} == 1",
    );
    assert_eq!(mode.len(), 1, "{mode:?}");
    assert!(
        firing_stale_alert(&cloud).is_none(),
        "no alert while pushes flow"
    );

    // Power cut: no DELETE; the group goes stale and the alert fires.
    let (_, stderr) = agent.stop_with(libc::SIGKILL, Duration::from_secs(10));
    assert!(stderr.contains("no scrape for"), "{stderr}");
    let alert = eventually(WAIT, || firing_stale_alert(&cloud))
        .expect("the stale-push alert fires for the dead Pi");
    assert_eq!(alert["labels"]["severity"], "warning");
    assert!(alert["annotations"]["summary"]
        .as_str()
        .unwrap()
        .starts_with("pi-nat has not pushed for"));
}
