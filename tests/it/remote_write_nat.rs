//! Remote write through a real NAT, and a link cut for minutes. Network namespaces as in
//! push_nat.rs (copied helpers): a "pi" on a private network behind a masquerading "router",
//! and a "cloud" running Prometheus with the remote-write receiver. The writer process (the
//! real agent, remote write every second, memory buffer) runs in the pi namespace. Then the
//! router drops everything it forwards (nftables, or iptables) for 150 s: connections hang,
//! requests time out (2 s), backoff; the link comes back and Prometheus holds a sample for
//! every second across the cut: no gap.
//!
//! Needs root (namespaces, veth, nftables or iptables). Not root and CI unset: skipped, saying
//! so. Under CI it must run.

use crate::harness;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::netns::*;
use crate::harness::remote_write::{gaps, writer_args, RawSeries};
use crate::harness::*;
use pimetrics::remote_write::now_ms;

const PI_ADDR: &str = "10.98.0.2";
const ROUTER_INSIDE: &str = "10.98.0.1";
const ROUTER_OUTSIDE: &str = "198.51.100.1";
const CLOUD_ADDR: &str = "198.51.100.2";
const ADDRS: Addrs = Addrs {
    pi: PI_ADDR,
    router_inside: ROUTER_INSIDE,
    router_outside: ROUTER_OUTSIDE,
    cloud: CLOUD_ADDR,
};
const PROMETHEUS_PORT: u16 = 9090;
const NODE: &str = "pi-nat-rw";
const CUT: Duration = Duration::from_secs(150);
const STEP_MS: i64 = 1000;
const WAIT: Duration = Duration::from_secs(60);
fn cut_link(router: &str, cut: bool) {
    if program("nft").is_some() {
        let script = if cut {
            "table inet cut {\n chain forward {\n  type filter hook forward priority 0;\n  drop\n }\n}\n"
        } else {
            "delete table inet cut\n"
        };
        crate::harness::netns::nft(router, script);
    } else {
        let action = if cut { "-I" } else { "-D" };
        run(
            "ip",
            &[
                "netns", "exec", router, "iptables", action, "FORWARD", "-j", "DROP",
            ],
        );
    }
}

/// Raw samples of `selector` on the cloud's Prometheus over the last 15 minutes.
fn raw(cloud: &str, selector: &str) -> Vec<RawSeries> {
    let path = format!(
        "/api/v1/query?query={}",
        harness::url_encode(&format!("{selector}[15m]"))
    );
    let answer = in_netns(cloud, move || http_get(PROMETHEUS_PORT, &path));
    if answer.status != 200 {
        return Vec::new();
    }
    let json: serde_json::Value = match serde_json::from_slice(&answer.body) {
        Ok(json) => json,
        Err(_) => return Vec::new(),
    };
    json["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|series| {
            let labels = series["metric"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let values = series["values"]
                .as_array()
                .map(|values| {
                    values
                        .iter()
                        .filter_map(|pair| {
                            let ts = (pair[0].as_f64()? * 1000.0).round() as i64;
                            let value = pair[1].as_str()?.parse().ok()?;
                            Some((ts, value))
                        })
                        .collect()
                })
                .unwrap_or_default();
            (labels, values)
        })
        .collect()
}

fn held(cloud: &str) -> Vec<i64> {
    raw(cloud, &format!("node_load1{{node=\"{NODE}\"}}"))
        .first()
        .map(|(_, values)| values.iter().map(|(ts, _)| *ts).collect())
        .unwrap_or_default()
}

/// A Pi behind a masquerading router writes to Prometheus; the link is cut for 150 s and then
/// restored: Prometheus holds every sample, none lost.
#[test]
fn remote_write_through_nat_survives_a_link_cut() {
    let _heavy = crate::harness::heavy();
    if !may_run("remote_write_nat") {
        return;
    }
    let prometheus_bin = require("prometheus");
    let dir = tempfile::tempdir().unwrap();
    // Declared first, dropped last: the processes inside go before their namespaces.
    let mut nets = Namespaces::new("rw");
    let (pi, router, cloud) = build_network(&mut nets, &ADDRS);
    std::fs::write(
        dir.path().join("prometheus.yml"),
        "global:\n  scrape_interval: 1m\nstorage:\n  tsdb:\n    out_of_order_time_window: 1h\n",
    )
    .unwrap();
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
            "--web.enable-remote-write-receiver".into(),
            "--log.level=warn".into(),
        ],
    );
    in_netns(&cloud, || {
        wait_for_port(PROMETHEUS_PORT, Duration::from_secs(30))
    });
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", &pi])
        .arg(env!("CARGO_BIN_EXE_pimetrics"));
    writer_args(
        &mut command,
        NODE,
        &format!("http://{CLOUD_ADDR}:{PROMETHEUS_PORT}/api/v1/write"),
        None,
    );
    let writer = Proc::spawn("writer process", &mut command);

    // The NAT holds: the cloud cannot open a connection to the Pi's network.
    let reachable = in_netns(&cloud, || {
        std::net::TcpStream::connect_timeout(
            &format!("{PI_ADDR}:22").parse().unwrap(),
            Duration::from_secs(1),
        )
        .is_ok()
    });
    assert!(!reachable, "the cloud must not reach the Pi");
    eventually(WAIT, || (held(&cloud).len() >= 3).then_some(()))
        .expect("samples arrive through the NAT");

    cut_link(&router, true);
    let cut_ms = now_ms();
    let started = Instant::now();
    // Nothing gets through while cut.
    std::thread::sleep(Duration::from_secs(10));
    let during = held(&cloud);
    assert!(
        during.iter().all(|&ts| ts < cut_ms + 2 * STEP_MS),
        "samples arrived through a cut link"
    );
    std::thread::sleep(CUT.saturating_sub(started.elapsed()));
    cut_link(&router, false);
    let restored_ms = now_ms();

    // Backoff is at most 15 s, the backlog 150 requests at 10 per second.
    let all = eventually(WAIT, || {
        let held = held(&cloud);
        let covered = held
            .iter()
            .filter(|&&ts| ts > cut_ms && ts < restored_ms)
            .count() as i64;
        (covered >= (restored_ms - cut_ms) / STEP_MS - 1
            && held.last() > Some(&(restored_ms + 3000)))
        .then_some(held)
    });
    let (_, stderr) = writer.stop_with(libc::SIGKILL, Duration::from_secs(10));
    let all =
        all.unwrap_or_else(|| panic!("the backlog did not arrive: {:?}\n{stderr}", held(&cloud)));
    // A missing step is a gap of 2 s; a late tick (a loaded machine) is not.
    let holes = gaps(&all, STEP_MS, STEP_MS * 9 / 10);
    eprintln!(
        "{} samples from {} to {}; cut {cut_ms}..{restored_ms}; holes {holes:?}",
        all.len(),
        all[0],
        all[all.len() - 1]
    );
    assert!(all[0] < cut_ms - 2 * STEP_MS);
    assert!(holes.is_empty(), "holes {holes:?}");
    // The writer saw the cut: timeouts, then success again.
    assert!(stderr.contains("failed"), "{stderr}");
    assert!(stderr.contains("accepts again"), "{stderr}");
}
