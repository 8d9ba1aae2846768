//! Push against Debian's real Pushgateway on loopback (and, for answers a real gateway cannot
//! be made to give on demand, a tiny fake one).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);

fn start_gateway(port: u16, dir: &Path, extra: &[String]) -> Proc {
    let mut command = Command::new(require("prometheus-pushgateway"));
    command
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!(
            "--persistence.file={}",
            dir.join("gateway.store").display()
        ))
        .arg("--log.level=warn")
        .args(extra);
    let gateway = Proc::spawn("prometheus-pushgateway", &mut command);
    wait_for_port(port, Duration::from_secs(10));
    gateway
}

fn gateway_metrics(port: u16) -> Exposition {
    parse_exposition(&http_get(port, "/metrics").text())
}

/// The samples the gateway holds for group `instance` of job pimetrics.
fn group(port: u16, instance: &str) -> Vec<Sample> {
    gateway_metrics(port)
        .samples
        .into_iter()
        .filter(|s| {
            s.labels.get("job").map(String::as_str) == Some("pimetrics")
                && s.labels.get("instance").map(String::as_str) == Some(instance)
        })
        .collect()
}

fn has(samples: &[Sample], name: &str) -> bool {
    samples.iter().any(|s| s.name == name)
}

fn agent_metrics(port: u16) -> Exposition {
    parse_exposition(&http_get(port, "/metrics").text())
}

fn pushes(port: u16, outcome: &str) -> f64 {
    agent_metrics(port)
        .value("pimetrics_push_total", &[("outcome", outcome)])
        .unwrap_or(0.0)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("pimetrics.ron");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn group_arrives_is_replaced_and_deleted_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let gw_port = free_port();
    let _gateway = start_gateway(gw_port, dir.path(), &[]);
    let url = format!("--push.url=http://127.0.0.1:{gw_port}");

    let (first, _) = start_agent(&["--node=pi-a", &url, "--push.interval=500ms"]);
    let samples = eventually(WAIT, || {
        let samples = group(gw_port, "pi-a");
        has(&samples, "node_load1").then_some(samples)
    })
    .expect("the group arrives");
    let memory = samples
        .iter()
        .find(|s| s.name == "node_memory_MemTotal_bytes")
        .expect("meminfo pushed");
    assert_eq!(memory.labels["node"], "pi-a");
    assert!(memory.value > 1e6, "{memory:?}");
    // What the gateway owns or would refuse stays home.
    assert!(!samples
        .iter()
        .any(|s| s.name.starts_with("process_") && s.labels.contains_key("node")));
    let push_time = samples
        .iter()
        .find(|s| s.name == "push_time_seconds")
        .expect("the gateway's push time");
    assert!(push_time.value > now() - 60.0);

    // Killed: no DELETE, the group stays. A second agent without loadavg replaces it whole.
    drop(first);
    assert!(has(&group(gw_port, "pi-a"), "node_load1"));
    let (second, second_port) = start_agent(&[
        "--node=pi-a",
        &url,
        "--push.interval=500ms",
        "--no-collector.loadavg",
    ]);
    let replaced = eventually(WAIT, || {
        let samples = group(gw_port, "pi-a");
        (!has(&samples, "node_load1") && has(&samples, "node_memory_MemTotal_bytes"))
            .then_some(samples)
    });
    assert!(replaced.is_some(), "a PUT replaces the whole group");
    assert!(pushes(second_port, "success") >= 1.0);

    let (status, stderr) = second.stop_with(libc::SIGTERM, WAIT);
    assert!(status.expect("stopped").success(), "{stderr}");
    assert!(stderr.contains("push: deleted"), "{stderr}");
    assert!(group(gw_port, "pi-a").is_empty(), "the group is gone");
}

#[test]
fn a_gateway_restart_is_survived() {
    let dir = tempfile::tempdir().unwrap();
    let gw_port = free_port();
    let gateway = start_gateway(gw_port, dir.path(), &[]);
    let (agent, port) = start_agent(&[
        "--node=pi-r",
        &format!("--push.url=http://127.0.0.1:{gw_port}"),
        "--push.interval=500ms",
    ]);
    eventually(WAIT, || {
        has(&group(gw_port, "pi-r"), "node_load1").then_some(())
    })
    .expect("the group arrives");

    drop(gateway);
    // The pull endpoint keeps answering while pushes fail.
    eventually(WAIT, || (pushes(port, "error") >= 2.0).then_some(()))
        .expect("failed pushes are counted");
    let successes_before = pushes(port, "success");

    let restarted_at = now();
    let _gateway = start_gateway(gw_port, dir.path(), &[]);
    eventually(WAIT, || {
        gateway_metrics(gw_port)
            .value(
                "push_time_seconds",
                &[("job", "pimetrics"), ("instance", "pi-r")],
            )
            .filter(|t| *t >= restarted_at)
    })
    .expect("pushes resume after the restart");
    assert!(pushes(port, "success") > successes_before);

    let (_, stderr) = agent.stop_with(libc::SIGTERM, WAIT);
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(stderr.contains("accepted again after"), "{stderr}");
    // Logged when it changed, not on every retry.
    assert_eq!(stderr.matches("Connection refused").count(), 1, "{stderr}");
}

/// A loopback "gateway" answering each request by its number (1-based), recording them.
struct FakeGateway {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeGateway {
    fn start(answer: fn(usize) -> Option<(u16, &'static str)>) -> FakeGateway {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let count = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let number = count.fetch_add(1, Ordering::SeqCst) + 1;
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || serve_one(stream, number, answer, &seen));
            }
        });
        FakeGateway { port, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// Reads one request; answers it, or (None) holds the connection without answering.
fn serve_one(
    stream: TcpStream,
    number: usize,
    answer: fn(usize) -> Option<(u16, &'static str)>,
    seen: &Mutex<Vec<String>>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0usize;
    let mut headers = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        headers.push_str(&line);
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    seen.lock()
        .unwrap()
        .push(format!("{}\n{headers}", request_line.trim_end()));
    let mut stream = reader.into_inner();
    match answer(number) {
        Some((status, text)) => {
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
        None => std::thread::sleep(Duration::from_secs(30)),
    }
}

#[test]
fn gateway_errors_are_counted_and_each_reason_logged_once() {
    let fake = FakeGateway::start(|n| match n {
        1..=3 => Some((
            400,
            "pushed metrics are invalid or inconsistent with existing metrics: fake reason A\n",
        )),
        _ => Some((500, "internal trouble")),
    });
    let (agent, port) = start_agent(&[
        "--node=pi-e",
        &format!("--push.url=http://127.0.0.1:{}", fake.port),
        "--push.interval=200ms",
    ]);
    eventually(WAIT, || (fake.requests().len() >= 6).then_some(()))
        .expect("the agent keeps retrying");
    let exp = agent_metrics(port);
    let count = |outcome| exp.value("pimetrics_push_total", &[("outcome", outcome)]);
    assert_eq!(count("http_4xx"), Some(3.0));
    assert!(count("http_5xx").unwrap() >= 2.0);
    assert_eq!(count("success"), Some(0.0));
    assert_eq!(
        exp.value("pimetrics_push_last_success_timestamp_seconds", &[]),
        Some(0.0)
    );
    let first = &fake.requests()[0];
    assert!(
        first.starts_with("PUT /metrics/job/pimetrics/instance/pi-e HTTP/1.1"),
        "{first}"
    );
    let first = first.to_ascii_lowercase();
    assert!(first.contains("content-type: text/plain; version=0.0.4"));
    // The default collectors' text is over the 8 KiB gzip threshold.
    assert!(first.contains("content-encoding: gzip"), "{first}");

    let (_, stderr) = agent.stop_with(libc::SIGTERM, WAIT);
    assert_eq!(stderr.matches("fake reason A").count(), 1, "{stderr}");
    assert_eq!(
        stderr
            .matches("HTTP 500: internal trouble (retrying")
            .count(),
        1,
        "{stderr}"
    );
    // The shutdown DELETE got a 500 too: reported, not hidden.
    assert!(stderr.contains("cannot delete"), "{stderr}");
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.starts_with("DELETE /metrics/job/pimetrics/instance/pi-e")));
}

#[test]
fn a_real_gateway_refusing_the_body_is_counted_and_logged_once() {
    let dir = tempfile::tempdir().unwrap();
    let gw_port = free_port();
    let _gateway = start_gateway(gw_port, dir.path(), &[]);
    // Another group holds node_load1 as a counter: the agent's gauge is inconsistent with it.
    let clash = http(
        "PUT",
        gw_port,
        "/metrics/job/other",
        &[],
        b"# TYPE node_load1 counter\nnode_load1 1\n",
    );
    assert_eq!(clash.status, 200);
    let (agent, port) = start_agent(&[
        "--node=pi-400",
        &format!("--push.url=http://127.0.0.1:{gw_port}"),
        "--push.interval=200ms",
    ]);
    eventually(WAIT, || (pushes(port, "http_4xx") >= 6.0).then_some(()))
        .expect("refused pushes are counted");
    assert_eq!(pushes(port, "success"), 0.0);
    let (_, stderr) = agent.stop_with(libc::SIGTERM, WAIT);
    // The gateway quotes the clashing sample, value included, from whichever group it met
    // first: at most two reasons, each logged once however often it is repeated.
    let logged: Vec<String> = stderr
        .lines()
        .filter(|l| l.contains("refused the metrics (HTTP 400)"))
        .map(|l| l.chars().filter(|c| !c.is_ascii_digit()).collect())
        .collect();
    assert!((1..=2).contains(&logged.len()), "{stderr}");
    assert!(logged.len() < 2 || logged[0] != logged[1], "{stderr}");
    assert!(logged[0].contains("node_load"), "{stderr}");
}

#[test]
fn a_hanging_gateway_blocks_neither_scrapes_nor_shutdown() {
    let fake = FakeGateway::start(|_| None);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "(node: \"pi-h\", push: (url: \"http://127.0.0.1:{}\", interval: \"300ms\", timeout: \"1s\"))",
            fake.port
        ),
    );
    let (agent, port) = start_agent(&["--config", &config]);
    eventually(WAIT, || (!fake.requests().is_empty()).then_some(())).expect("a push is under way");
    // Scrapes are answered while a push waits for the gateway.
    for _ in 0..5 {
        assert_eq!(http_get(port, "/metrics").status, 200);
    }
    eventually(WAIT, || (pushes(port, "error") >= 1.0).then_some(()))
        .expect("the timeout is counted as an error");
    let (status, stderr) = agent.stop_with(libc::SIGTERM, WAIT);
    assert!(status.expect("stopped").success(), "{stderr}");
    assert!(
        stderr.contains("timed out") || stderr.contains("timeout"),
        "{stderr}"
    );
}

#[test]
fn fallback_pushes_only_while_nobody_scrapes() {
    let dir = tempfile::tempdir().unwrap();
    let gw_port = free_port();
    let _gateway = start_gateway(gw_port, dir.path(), &[]);
    let config = write_config(
        dir.path(),
        &format!(
            "(node: \"pi-f\", push: (url: \"http://127.0.0.1:{gw_port}\", interval: \"300ms\", mode: fallback, fallback_after: \"1s\"))"
        ),
    );
    let (agent, port) = start_agent(&["--config", &config]);
    eventually(WAIT, || {
        has(&group(gw_port, "pi-f"), "node_load1").then_some(())
    })
    .expect("unscraped, the agent pushes");
    // Scrapes come back: pushing stops and the group goes.
    let back = eventually(WAIT, || {
        let exp = agent_metrics(port);
        (exp.value("pimetrics_push_mode", &[("mode", "pull")]) == Some(1.0)
            && group(gw_port, "pi-f").is_empty())
        .then_some(exp)
    })
    .expect("scraped again, the agent stops pushing and deletes the group");
    assert_eq!(
        back.value("pimetrics_push_mode", &[("mode", "push")]),
        Some(0.0)
    );
    assert!(
        back.value("pimetrics_push_total", &[("outcome", "success")])
            .unwrap()
            >= 1.0
    );
    let (_, stderr) = agent.stop_with(libc::SIGTERM, WAIT);
    assert!(stderr.contains("no scrape for"), "{stderr}");
    assert!(stderr.contains("scraped again"), "{stderr}");
}

#[test]
fn unreadable_secret_or_ca_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    for (push, expected) in [
        (
            "basic_auth: (username: \"pi\", password_file: \"/nonexistent/pw\")",
            "push.basic_auth.password_file: cannot read /nonexistent/pw",
        ),
        (
            "bearer_token_file: \"/nonexistent/token\"",
            "push.bearer_token_file: cannot read /nonexistent/token",
        ),
        (
            "ca_file: \"/nonexistent/ca.pem\"",
            "push.ca_file: cannot read",
        ),
    ] {
        let config = write_config(
            dir.path(),
            &format!("(push: (url: \"https://127.0.0.1:1\", {push}))"),
        );
        let port = free_port();
        let out = run_agent(&[
            "--config",
            &config,
            &format!("--web.listen-address=127.0.0.1:{port}"),
        ]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    }
}

/// A self-signed certificate for 127.0.0.1, a bcrypt-protected user, and the gateway's web
/// config file using both.
fn tls_gateway(dir: &Path, port: u16) -> (Proc, String) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert_pem = cert.pem();
    std::fs::write(dir.join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), signing_key.serialize_pem()).unwrap();
    let hash = bcrypt::hash("right horse battery", 4).unwrap();
    std::fs::write(
        dir.join("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  pusher: '{hash}'\n",
            dir.join("cert.pem").display(),
            dir.join("key.pem").display()
        ),
    )
    .unwrap();
    let web = format!("--web.config.file={}", dir.join("web.yml").display());
    (start_gateway(port, dir, &[web]), cert_pem)
}

#[test]
fn basic_auth_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let gw_port = free_port();
    let (_gateway, cert_pem) = tls_gateway(dir.path(), gw_port);
    std::fs::write(dir.path().join("right.pw"), "right horse battery\n").unwrap();
    std::fs::write(dir.path().join("wrong.pw"), "wrong horse\n").unwrap();
    let config = |node: &str, password_file: &str, ca: bool| {
        let ca_file = if ca {
            format!(", ca_file: \"{}\"", dir.path().join("cert.pem").display())
        } else {
            String::new()
        };
        write_config(
            dir.path(),
            &format!(
                "(node: \"{node}\", push: (url: \"https://127.0.0.1:{gw_port}\", interval: \"300ms\", \
                 basic_auth: (username: \"pusher\", password_file: \"{}\"){ca_file}))",
                dir.path().join(password_file).display()
            ),
        )
    };

    let (good, good_port) = start_agent(&["--config", &config("pi-tls", "right.pw", true)]);
    eventually(WAIT, || (pushes(good_port, "success") >= 1.0).then_some(()))
        .expect("pushes over TLS with basic auth succeed");
    // Read back through the same TLS + auth.
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let text = runtime.block_on(async {
        client
            .get(format!("https://127.0.0.1:{gw_port}/metrics"))
            .basic_auth("pusher", Some("right horse battery"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let exp = parse_exposition(&text);
    assert!(exp
        .value(
            "node_load1",
            &[
                ("job", "pimetrics"),
                ("instance", "pi-tls"),
                ("node", "pi-tls")
            ]
        )
        .is_some());
    drop(good);

    let (wrong, wrong_port) = start_agent(&["--config", &config("pi-wrong", "wrong.pw", true)]);
    eventually(WAIT, || {
        (pushes(wrong_port, "http_4xx") >= 2.0).then_some(())
    })
    .expect("a wrong password is counted");
    assert_eq!(pushes(wrong_port, "success"), 0.0);
    let (_, stderr) = wrong.stop_with(libc::SIGTERM, WAIT);
    assert!(stderr.contains("HTTP 401"), "{stderr}");

    // Without the CA the gateway's certificate is not trusted.
    let (untrusted, untrusted_port) =
        start_agent(&["--config", &config("pi-noca", "right.pw", false)]);
    eventually(WAIT, || {
        (pushes(untrusted_port, "error") >= 1.0).then_some(())
    })
    .expect("an untrusted certificate is an error");
    let (_, stderr) = untrusted.stop_with(libc::SIGTERM, WAIT);
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
}
