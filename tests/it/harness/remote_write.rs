//! Shared by the remote-write tests: a real Prometheus receiver (Debian's, with
//! `--web.enable-remote-write-receiver` and an out-of-order window), raw-sample queries, a
//! deterministic sample source, and a writer run on its own current-thread runtime.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pimetrics::remote_write::{RemoteWriteConfig, RemoteWriter, SampleSink, SampleSource};
use serde_json::Value;

use crate::harness::*;

/// A series' labels and its (timestamp ms, value) samples.
pub type RawSeries = (Vec<(String, String)>, Vec<(i64, f64)>);

/// A Prometheus receiving remote write on a loopback port, its data kept in `dir`.
pub struct Receiver {
    pub proc: Option<Proc>,
    pub port: u16,
    pub dir: PathBuf,
    web_config: Option<PathBuf>,
}

impl Receiver {
    /// None (skipped, said so) when prometheus is missing and not under CI.
    pub fn start(dir: &Path, test: &str) -> Option<Receiver> {
        Receiver::start_with(dir, test, None)
    }

    pub fn start_with(dir: &Path, test: &str, web_config: Option<PathBuf>) -> Option<Receiver> {
        let mut receiver = Receiver::prepare(dir, test)?;
        receiver.web_config = web_config;
        receiver.restart();
        Some(receiver)
    }

    /// Picks the port but does not start it yet (a receiver that is down at first).
    pub fn prepare(dir: &Path, test: &str) -> Option<Receiver> {
        require_or_skip("prometheus", test)?;
        Some(Receiver {
            proc: None,
            port: free_port(),
            dir: dir.to_path_buf(),
            web_config: None,
        })
    }

    pub fn write_url(&self) -> String {
        let scheme = if self.web_config.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}/api/v1/write", self.port)
    }

    /// (Re)starts on the same port with the same data.
    pub fn restart(&mut self) {
        let config = self.dir.join("prometheus.yml");
        // Samples up to 1 h older than the newest are accepted (a backlog after an outage).
        std::fs::write(
            &config,
            "global:\n  scrape_interval: 1m\nstorage:\n  tsdb:\n    out_of_order_time_window: 1h\n",
        )
        .expect("write prometheus.yml");
        let mut command = Command::new(require("prometheus"));
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .arg("--web.enable-remote-write-receiver")
            .arg("--log.level=warn");
        if let Some(web) = &self.web_config {
            command.arg(format!("--web.config.file={}", web.display()));
        }
        self.proc = Some(Proc::spawn("prometheus", &mut command));
        wait_for_port(self.port, Duration::from_secs(30));
        if self.web_config.is_none() {
            eventually(Duration::from_secs(30), || {
                (http_get(self.port, "/-/ready").status == 200).then_some(())
            })
            .expect("Prometheus ready within 30 s");
        }
    }

    /// Stops it (SIGTERM, waits for the exit).
    pub fn stop(&mut self) {
        if let Some(proc) = self.proc.take() {
            let (status, stderr) = proc.stop_with(libc::SIGTERM, Duration::from_secs(30));
            assert!(status.is_some(), "Prometheus did not stop: {stderr}");
        }
    }

    /// Raw samples (timestamp ms, value) of each series matching `selector` in the last
    /// `range`, with the series' labels.
    pub fn raw(&self, selector: &str, range: &str) -> Vec<RawSeries> {
        let body = self.api(&format!("{selector}[{range}]"));
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|series| {
                let labels = series["metric"]
                    .as_object()
                    .expect("metric labels")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect();
                let values = series["values"]
                    .as_array()
                    .expect("values")
                    .iter()
                    .map(|pair| {
                        let ts = (pair[0].as_f64().expect("timestamp") * 1000.0).round() as i64;
                        let v: f64 = pair[1]
                            .as_str()
                            .and_then(|v| v.parse().ok())
                            .expect("value");
                        (ts, v)
                    })
                    .collect();
                (labels, values)
            })
            .collect()
    }

    /// Number of series an instant query returns now.
    pub fn instant_count(&self, promql: &str) -> usize {
        self.api(promql)["data"]["result"]
            .as_array()
            .map_or(0, Vec::len)
    }

    fn api(&self, promql: &str) -> Value {
        let response = http_get(
            self.port,
            &format!("/api/v1/query?query={}", url_encode(promql)),
        );
        let body: Value = serde_json::from_slice(&response.body).unwrap_or_else(|err| {
            panic!(
                "Prometheus answered {} ({err}): {}",
                response.status,
                response.text()
            )
        });
        assert_eq!(body["status"], "success", "query {promql:?}: {body}");
        body
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.proc.take();
    }
}

/// What a `Ticks` source produced: (timestamp ms, tick value) per collection.
pub type Produced = Arc<Mutex<Vec<(i64, f64)>>>;

/// A deterministic source: `rw_test_tick{node, kind="tick"}` = collection number (counting
/// from `first`), `rw_test_tick{kind="ts"}` = the collection's timestamp in seconds, and
/// `extra` more series (`rw_test_bulk{i="..."}`) to make records big; `rw_test_gone` only
/// while `gone_after` collections have not passed.
pub struct Ticks {
    pub node: String,
    pub next: u64,
    pub extra: usize,
    pub gone_after: Option<u64>,
    pub produced: Produced,
    pub labels_scratch: Vec<String>,
}

impl Ticks {
    pub fn new(node: &str) -> Ticks {
        Ticks {
            node: node.to_string(),
            next: 0,
            extra: 0,
            gone_after: None,
            produced: Arc::new(Mutex::new(Vec::new())),
            labels_scratch: Vec::new(),
        }
    }
}

impl SampleSource for Ticks {
    fn collect(&mut self, timestamp_ms: i64, out: &mut SampleSink<'_>) {
        let tick = self.next as f64;
        self.next += 1;
        let node = self.node.as_str();
        // Labels deliberately not sorted: the writer sorts them.
        out("rw_test_tick", &[("node", node), ("kind", "tick")], tick);
        out(
            "rw_test_tick",
            &[("kind", "ts"), ("node", node)],
            timestamp_ms as f64 / 1000.0,
        );
        if self.gone_after.is_none_or(|n| self.next <= n) {
            out("rw_test_gone", &[("node", node)], 1.0);
        }
        if self.labels_scratch.len() < self.extra {
            self.labels_scratch = (0..self.extra).map(|i| format!("{i:05}")).collect();
        }
        for (i, label) in self.labels_scratch.iter().enumerate().take(self.extra) {
            // Values that do not compress away.
            let value = ((timestamp_ms as u64)
                .wrapping_mul(2654435761)
                .wrapping_add(i as u64 * 40503)
                % 1_000_003) as f64;
            out("rw_test_bulk", &[("node", node), ("i", label)], value);
        }
        self.produced.lock().unwrap().push((timestamp_ms, tick));
    }
}

pub fn config(url: &str, interval: &str) -> RemoteWriteConfig {
    RemoteWriteConfig {
        url: Some(url.to_string()),
        interval: pimetrics::config::Seconds::parse(interval).unwrap(),
        timeout: pimetrics::config::Seconds::parse("2s").unwrap(),
        ..RemoteWriteConfig::default()
    }
}

/// Runs `writer` on its own current-thread runtime (as the agent will run it) for `duration`,
/// then stops it cleanly.
pub fn run_for(writer: RemoteWriter, duration: Duration) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move { writer.run(tokio::time::sleep(duration)).await });
}

/// The gaps in `timestamps` (ms, sorted) longer than `step_ms + slack_ms`: (where, length).
pub fn gaps(timestamps: &[i64], step_ms: i64, slack_ms: i64) -> Vec<(i64, i64)> {
    timestamps
        .windows(2)
        .filter(|w| w[1] - w[0] > step_ms + slack_ms)
        .map(|w| (w[0], w[1] - w[0]))
        .collect()
}

/// The agent binary as a Pi runs it with remote write: node `node`, the loadavg and meminfo
/// collectors, every second to `url`, disk buffer in `buffer_dir` (written at every
/// collection) or in memory.
pub fn writer_command(node: &str, url: &str, buffer_dir: Option<&Path>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pimetrics"));
    writer_args(&mut command, node, url, buffer_dir);
    command
}

/// Adds the agent's arguments to `command` (its program is the agent, or `ip netns exec ...
/// pimetrics`). The endpoint listens on a port nobody asks for: only remote write is watched.
pub fn writer_args(command: &mut Command, node: &str, url: &str, buffer_dir: Option<&Path>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    command.args([
        format!("--web.listen-address=127.0.0.1:{port}"),
        format!("--node={node}"),
        "--collector.disable-defaults".into(),
        "--collector.loadavg".into(),
        "--collector.meminfo".into(),
        format!("--remote-write.url={url}"),
        "--remote-write.interval=1s".into(),
    ]);
    if let Some(dir) = buffer_dir {
        command.args([
            format!("--remote-write.buffer-dir={}", dir.display()),
            "--remote-write.flush-interval=0s".into(),
        ]);
    }
}
