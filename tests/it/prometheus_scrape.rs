//! A real Prometheus (Debian's /usr/bin/prometheus) scrapes the agent every second, and its
//! HTTP API is polled (bounded) until the data is there: `up` is 1, the series carry our `node`
//! label, `rate()` works on our counters, and `rate(node_cpu_seconds_total[1m])` returns data
//! for our node as soon as the agent exports node_cpu_seconds_total (the cpu collector).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;
use serde_json::Value;

const JOB: &str = "pimetrics";

/// How long Prometheus may take to start, scrape, and have two samples for rate().
const LIMIT: Duration = Duration::from_secs(60);

/// Runs an instant query; returns the result vector (empty when no data yet).
fn query(prometheus_port: u16, promql: &str) -> Vec<Value> {
    let response = http_get(
        prometheus_port,
        &format!("/api/v1/query?query={}", url_encode(promql)),
    );
    let body: Value = serde_json::from_slice(&response.body).unwrap_or_else(|err| {
        panic!(
            "Prometheus answered {} with no JSON ({err}): {}",
            response.status,
            response.text()
        )
    });
    assert_eq!(body["status"], "success", "query {promql:?} failed: {body}");
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Polls `promql` until it returns at least one series (or fails the test naming `what`).
fn wait_for_data(prometheus: &mut Proc, port: u16, promql: &str, what: &str) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let result = query(port, promql);
        if !result.is_empty() {
            return result;
        }
        if let Ok(Some(status)) = prometheus.child.try_wait() {
            panic!("Prometheus exited ({status}) while waiting for {what}");
        }
        assert!(
            started.elapsed() < LIMIT,
            "{what}: {promql:?} returned no data within {LIMIT:?}; targets: {}",
            http_get(port, "/api/v1/targets").text()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn value_of(series: &Value) -> f64 {
    series["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value in {series}"))
}

#[test]
fn prometheus_scrapes_the_agent() {
    let _heavy = crate::harness::heavy();
    let Some(prometheus_bin) = require_or_skip("prometheus", "Prometheus scrape") else {
        return;
    };
    let node = format!("prom-test-{}", std::process::id());
    let (_agent, agent_port) = start_agent(&[&format!("--node={node}")]);
    let exports_cpu = parse_exposition(&scrape(agent_port, "/metrics"))
        .names()
        .contains("node_cpu_seconds_total");

    let dir = tempdir();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: ['127.0.0.1:{agent_port}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let mut command = Command::new(prometheus_bin);
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn");
    let mut prometheus = Proc::spawn("prometheus", &mut command);
    wait_for_port(port, Duration::from_secs(30));
    // The API answers 503 until the TSDB is open.
    eventually(Duration::from_secs(30), || {
        (http_get(port, "/-/ready").status == 200).then_some(())
    })
    .expect("Prometheus ready within 30 s");

    let up = wait_for_data(
        &mut prometheus,
        port,
        &format!("up{{job=\"{JOB}\"}} == 1"),
        "a successful scrape",
    );
    assert_eq!(value_of(&up[0]), 1.0);

    // Every series of the job carries our node label, and only ours.
    let nodes = wait_for_data(
        &mut prometheus,
        port,
        &format!("count by (node) ({{job=\"{JOB}\", __name__!~\"up|scrape_.*\"}})"),
        "series of the job",
    );
    let node_values: Vec<&str> = nodes
        .iter()
        .map(|s| s["metric"]["node"].as_str().unwrap_or("(no node label)"))
        .collect();
    assert_eq!(node_values, vec![node.as_str()]);

    let load = wait_for_data(
        &mut prometheus,
        port,
        &format!("node_load1{{node=\"{node}\"}}"),
        "node_load1",
    );
    assert!(value_of(&load[0]) >= 0.0);

    // rate() over a counter of ours that moves with every scrape: needs two samples.
    let requests = wait_for_data(
        &mut prometheus,
        port,
        &format!(
            "rate(pimetrics_http_requests_total{{node=\"{node}\",path=\"/metrics\",code=\"200\"}}[1m]) > 0"
        ),
        "rate of the agent's request counter",
    );
    assert!(value_of(&requests[0]) > 0.0);

    if exports_cpu {
        let cpu = wait_for_data(
            &mut prometheus,
            port,
            &format!("rate(node_cpu_seconds_total{{node=\"{node}\"}}[1m])"),
            "rate(node_cpu_seconds_total)",
        );
        assert!(
            cpu.iter().any(|s| s["metric"]["mode"] == "idle"),
            "an idle mode: {cpu:?}"
        );
        for series in &cpu {
            let rate = value_of(series);
            // CPU seconds per second: between 0 and 1 per CPU and mode (plus jitter).
            assert!((0.0..=1.5).contains(&rate), "{series}");
        }
    } else {
        println!(
            "node_cpu_seconds_total not exported yet (no cpu collector): rate(node_cpu_seconds_total) not checked"
        );
    }

    // Prometheus took every sample of the scrape.
    let scraped = wait_for_data(
        &mut prometheus,
        port,
        &format!("scrape_samples_scraped{{job=\"{JOB}\"}}"),
        "scrape_samples_scraped",
    );
    assert!(value_of(&scraped[0]) >= 10.0, "{scraped:?}");
}

/// Starts Debian's Prometheus with `scrape_configs` (YAML list items, indented by two) and
/// waits until it is ready; returns it, its port and its directory.
fn start_prometheus(scrape_configs: &str, interval: &str) -> (Proc, u16, tempfile::TempDir) {
    let prometheus_bin = require("prometheus");
    let dir = tempdir();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\n\
             scrape_configs:\n{scrape_configs}"
        ),
    )
    .unwrap();
    let port = free_port();
    let mut command = Command::new(prometheus_bin);
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn");
    let prometheus = Proc::spawn("prometheus", &mut command);
    wait_for_port(port, Duration::from_secs(30));
    eventually(Duration::from_secs(30), || {
        (http_get(port, "/-/ready").status == 200).then_some(())
    })
    .expect("Prometheus ready within 30 s");
    (prometheus, port, dir)
}

/// Prometheus's own record of the scrapes of `job` over the last `window`: how many and the
/// lowest `up`.
fn scrape_record(port: u16, job: &str, window: &str) -> (f64, f64) {
    let count = query(
        port,
        &format!("count_over_time(up{{job=\"{job}\"}}[{window}])"),
    );
    let min = query(
        port,
        &format!("min_over_time(up{{job=\"{job}\"}}[{window}])"),
    );
    (
        count.first().map(value_of).unwrap_or(0.0),
        min.first().map(value_of).unwrap_or(0.0),
    )
}

/// A real interval: Prometheus scrapes every 15 s for 65 s, with idle gaps longer than the
/// endpoint's header timeout (keep-alive connections are closed between scrapes and opened
/// again); every scrape must succeed, plain and over TLS with basic auth.
#[test]
fn prometheus_at_a_15_s_interval_for_65_s_plain_and_tls() {
    let _heavy = crate::harness::heavy();
    if require_or_skip("prometheus", "15 s interval").is_none() {
        return;
    }
    let dir = tempdir();
    let config = dir.path().join("agent.ron");
    // A header timeout below the interval, so every scrape meets a closed idle connection.
    std::fs::write(&config, "(web: (header_read_timeout: \"10s\"))").unwrap();
    let (plain, plain_port) = start_agent(&["--config", config.to_str().unwrap()]);

    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), signing_key.serialize_pem()).unwrap();
    let hash = bcrypt::hash("scrape secret", 4).unwrap();
    std::fs::write(
        dir.path().join("web.yml"),
        format!("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  prometheus: '{hash}'\n"),
    )
    .unwrap();
    let (tls, tls_port) = start_agent(&[
        "--config",
        config.to_str().unwrap(),
        &format!("--web.config.file={}", dir.path().join("web.yml").display()),
    ]);
    let (_prometheus, port, _pdir) = start_prometheus(
        &format!(
            "  - job_name: slow\n    scrape_timeout: 10s\n    static_configs:\n      - targets: ['127.0.0.1:{plain_port}']\n\
             \x20 - job_name: slow_tls\n    scheme: https\n    scrape_timeout: 10s\n\
             \x20   basic_auth:\n      username: prometheus\n      password: scrape secret\n\
             \x20   tls_config:\n      ca_file: {}\n\
             \x20   static_configs:\n      - targets: ['127.0.0.1:{tls_port}']\n",
            dir.path().join("cert.pem").display()
        ),
        "15s",
    );
    std::thread::sleep(Duration::from_secs(65));
    for job in ["slow", "slow_tls"] {
        let (count, min) = scrape_record(port, job, "70s");
        assert!(count >= 4.0, "{job}: only {count} scrapes in 65 s");
        assert_eq!(min, 1.0, "{job}: a scrape failed");
    }
    let exp = parse_exposition(&scrape(plain_port, "/metrics"));
    let served = exp
        .value(
            "pimetrics_http_requests_total",
            &[("path", "/metrics"), ("code", "200")],
        )
        .unwrap();
    assert!(served >= 4.0, "{served} answered");
    drop(plain);
    drop(tls);
}
