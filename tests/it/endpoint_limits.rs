//! The endpoint as it is used and abused, against the built binary on loopback: idle gaps
//! longer than every timeout, a real Prometheus at a 15 s interval, connection floods, a
//! process out of file descriptors, stalled and oversized clients, a FIFO among the text
//! files, systemd's notify socket, SIGHUP reloads, a gateway that drips its answer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("pimetrics.ron");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn metric(port: u16, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    parse_exposition(&scrape(port, "/metrics")).value(name, labels)
}

fn threads_of(proc: &Proc) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{}/status", proc.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// Sends raw bytes, returns what the server answered before closing.
fn raw_request(port: u16, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn rss_kib(proc: &Proc) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", proc.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// True when the server has closed `stream` (EOF or reset) within `limit`.
fn closed_by_server(stream: &mut TcpStream, limit: Duration) -> bool {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an error answer (408/431) before the close
            Err(err) => {
                return !matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            }
        }
    }
}

#[test]
fn scrapes_16_s_apart_and_keep_alive_past_the_header_timeout() {
    let _heavy = crate::harness::heavy();
    let dir = tempdir();
    let config = write_config(dir.path(), "(web: (header_read_timeout: \"2s\"))");
    let (agent, port) = start_agent(&["--config", &config]);
    assert_eq!(http_get(port, "/metrics").status, 200);
    // A keep-alive connection left idle past the header timeout is closed by the server...
    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    idle.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = [0u8; 512];
    let n = idle.read(&mut answer).unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_by_server(&mut idle, Duration::from_secs(5)));
    // ...and a gap longer than every timeout (and than the old endpoint lived) changes nothing.
    std::thread::sleep(Duration::from_secs(16));
    let second = http_get(port, "/metrics");
    assert_eq!(second.status, 200);
    let exp = parse_exposition(&second.text());
    assert!(
        exp.value(
            "pimetrics_http_connection_errors_total",
            &[("reason", "header_timeout")]
        )
        .unwrap()
            >= 1.0
    );
    assert!(threads_of(&agent) <= 5, "threads: {}", threads_of(&agent));
}

#[test]
fn a_thousand_dropped_connections_then_a_normal_scrape() {
    let (agent, port) = start_agent(&[]);
    for i in 0..1000 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        if i % 3 == 0 {
            let _ = stream.write_all(b"GET /metr");
        }
        drop(stream);
    }
    // The agent may still be closing the dropped connections when this one arrives: past
    // web.max_connections (128) a new connection is closed at once (a reset). A scrape gets
    // through as soon as they are gone, within moments even on a loaded machine.
    let response = eventually(WAIT, || {
        try_http("GET", port, "/metrics", &[], b"")
            .ok()
            .filter(|r| r.status == 200)
    });
    assert!(response.is_some(), "a scrape answers after the flood");
    let accepted = eventually(WAIT, || {
        let v = metric(port, "pimetrics_http_connections_accepted_total", &[])?;
        (v >= 1001.0).then_some(v)
    });
    assert!(accepted.is_some(), "every connection accepted and counted");
    let threads = threads_of(&agent);
    eprintln!("threads after 1000 connections: {threads}");
    assert!(threads <= 5, "threads: {threads}");
}

#[test]
fn out_of_file_descriptors_backs_off_and_answers_again() {
    let _heavy = crate::harness::heavy();
    let Some(prlimit) = require_or_skip("prlimit", "fd exhaustion") else {
        return;
    };
    let port = free_port();
    let mut command = Command::new(prlimit);
    command
        .arg("--nofile=48:48")
        .arg(agent_bin())
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--no-collector.textfile");
    let agent = Proc::spawn("pimetrics under prlimit", &mut command);
    wait_for_port(port, WAIT);
    // Kept-open files stay under half the limit (roots::KeptFile): with 48 descriptors every
    // collector still reads its files, the rest by path.
    let first = http_get(port, "/metrics");
    assert_eq!(first.status, 200);
    let failed: Vec<String> = parse_exposition(&first.text())
        .family("node_scrape_collector_success")
        .iter()
        .filter(|sample| sample.value != 1.0)
        .map(|sample| format!("{:?}", sample.labels))
        .collect();
    assert!(
        failed.is_empty(),
        "collectors failed under 48 descriptors: {failed:?}"
    );
    // More connections than the process has descriptors: accept() fails with EMFILE.
    let mut held = Vec::new();
    for _ in 0..80 {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            held.push(stream);
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    drop(held);
    let recovered = eventually(WAIT, || {
        let response = http_get(port, "/metrics");
        (response.status == 200).then(|| parse_exposition(&response.text()))
    })
    .expect("answers again once descriptors are free");
    assert!(
        recovered
            .value("pimetrics_http_accept_errors_total", &[("error", "emfile")])
            .unwrap()
            >= 1.0,
        "EMFILE was met and counted"
    );
    let (status, stderr) = agent.stop_with(libc::SIGTERM, WAIT);
    assert!(status.is_some_and(|s| s.success()), "{stderr}");
    assert_eq!(
        stderr.matches("Too many open files").count(),
        1,
        "logged once: {stderr}"
    );
}

#[test]
fn stalled_clients_are_closed_while_a_scrape_answers() {
    let _heavy = crate::harness::heavy();
    let dir = tempdir();
    let config = write_config(
        dir.path(),
        "(web: (header_read_timeout: \"3s\", max_connections: 256))",
    );
    let (agent, port) = start_agent(&["--config", &config]);
    let mut stalled: Vec<TcpStream> = (0..200)
        .map(|i| {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            if i % 2 == 0 {
                // Half send part of a head, one header line and then nothing.
                stream
                    .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                    .unwrap();
            }
            stream
        })
        .collect();
    let started = Instant::now();
    let response = http_get(port, "/metrics");
    let took = started.elapsed();
    assert_eq!(response.status, 200);
    assert!(took < Duration::from_secs(1), "scrape took {took:?}");
    let threads = threads_of(&agent);
    eprintln!("threads with 200 stalled clients: {threads}");
    assert!(threads <= 5, "threads: {threads}");
    for stream in &mut stalled {
        assert!(
            closed_by_server(stream, Duration::from_secs(10)),
            "a stalled client was not closed"
        );
    }
    let errors = metric(
        port,
        "pimetrics_http_connection_errors_total",
        &[("reason", "header_timeout")],
    )
    .unwrap();
    assert!(errors >= 100.0, "header timeouts counted: {errors}");
}

#[test]
fn connections_over_the_limit_are_closed_at_once() {
    let dir = tempdir();
    let config = write_config(dir.path(), "(web: (max_connections: 4))");
    let (_agent, port) = start_agent(&["--config", &config]);
    // Let the start-up probe's connection end first.
    std::thread::sleep(Duration::from_millis(300));
    let held: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert!(closed_by_server(&mut extra, Duration::from_secs(5)));
    drop(held);
    // Until the server has seen the held connections close, a new one may still be refused.
    let rejected = eventually(WAIT, || {
        let answer = raw_request(
            port,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        let body = answer.strip_prefix("HTTP/1.1 200")?;
        parse_exposition(body.split_once("\r\n\r\n")?.1)
            .value("pimetrics_http_connections_rejected_total", &[])
    })
    .unwrap();
    assert!(rejected >= 1.0);
}

#[test]
fn oversized_heads_and_content_length_bombs() {
    let (agent, port) = start_agent(&[]);
    // 1 MiB of header: refused with 431 (or cut off), never read into memory whole.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ");
    let chunk = vec![b'a'; 16 * 1024];
    for _ in 0..64 {
        if stream.write_all(&chunk).is_err() {
            break;
        }
    }
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    for length in ["99999999999", "18446744073709551615", "-1", "1e9"] {
        let answer = raw_request(
            port,
            format!("GET /-/healthy HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\nabc")
                .as_bytes(),
        );
        assert!(
            answer.starts_with("HTTP/1.1 200")
                || answer.starts_with("HTTP/1.1 400")
                || answer.starts_with("HTTP/1.1 431"),
            "Content-Length {length}: {answer}"
        );
    }
    let many_headers: Vec<(String, String)> = (0..100)
        .map(|i| (format!("X-H{i}"), "v".to_string()))
        .collect();
    let headers: Vec<(&str, &str)> = many_headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(http("GET", port, "/metrics", &headers, b"").status, 431);
    assert_eq!(http_get(port, "/metrics").status, 200);
    let rss = rss_kib(&agent);
    assert!(rss < 40 * 1024, "RSS {rss} KiB after the bombs");
}

#[test]
fn a_fifo_among_the_text_files_costs_only_that_file() {
    let Some(gateway_bin) = require_or_skip("prometheus-pushgateway", "FIFO with push") else {
        return;
    };
    let dir = tempdir();
    let textfiles = dir.path().join("textfile");
    std::fs::create_dir(&textfiles).unwrap();
    std::fs::write(
        textfiles.join("good.prom"),
        "# TYPE garden_temp gauge\ngarden_temp 21.5\n",
    )
    .unwrap();
    let fifo = textfiles.join("stuck.prom");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);

    let gw_port = free_port();
    let mut command = Command::new(gateway_bin);
    command.arg(format!("--web.listen-address=127.0.0.1:{gw_port}"));
    let _gateway = Proc::spawn("pushgateway", &mut command);
    wait_for_port(gw_port, WAIT);

    let (agent, port) = start_agent(&[
        &format!("--collector.textfile.directory={}", textfiles.display()),
        &format!("--push.url=http://127.0.0.1:{gw_port}"),
        "--push.interval=300ms",
        "--node=pi-fifo",
    ]);
    let exp = parse_exposition(&scrape(port, "/metrics"));
    assert_eq!(exp.value("garden_temp", &[]), Some(21.5));
    assert_eq!(exp.value("node_textfile_scrape_error", &[]), Some(1.0));
    assert_eq!(
        exp.value("node_scrape_collector_success", &[("collector", "cpu")]),
        Some(1.0)
    );
    assert_eq!(http_get(port, "/-/healthy").status, 200);
    eventually(WAIT, || {
        (metric(port, "pimetrics_push_total", &[("outcome", "success")])? >= 2.0).then_some(())
    })
    .expect("push goes on");
    let started = Instant::now();
    let (status, stderr) = agent.stop_with(libc::SIGTERM, WAIT);
    assert!(status.is_some_and(|s| s.success()), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(stderr.contains("stuck.prom"), "{stderr}");
}

/// Reads datagrams from the notify socket until `want` arrived (or the limit passed).
fn wait_for_notification(socket: &UnixDatagram, want: &str, seen: &mut Vec<String>) -> bool {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    while started.elapsed() < WAIT {
        if let Ok(n) = socket.recv(&mut buf) {
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            let found = message.lines().any(|l| l == want);
            seen.push(message);
            if found {
                return true;
            }
        }
    }
    false
}

#[test]
fn systemd_notify_ready_watchdog_reload_stopping() {
    let dir = tempdir();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let config = write_config(dir.path(), "(node: \"first\")");
    let port = free_port();
    let mut command = Command::new(agent_bin());
    command
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(["--config", &config])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000");
    let agent = Proc::spawn("pimetrics", &mut command);
    let mut seen = Vec::new();
    assert!(
        wait_for_notification(&socket, "READY=1", &mut seen),
        "{seen:?}"
    );
    // READY comes once the listener is bound: a scrape works at once.
    assert_eq!(http_get(port, "/metrics").status, 200);
    for _ in 0..3 {
        assert!(
            wait_for_notification(&socket, "WATCHDOG=1", &mut seen),
            "{seen:?}"
        );
    }
    unsafe { libc::kill(agent.child.id() as i32, libc::SIGHUP) };
    assert!(
        wait_for_notification(&socket, "RELOADING=1", &mut seen),
        "{seen:?}"
    );
    assert!(
        wait_for_notification(&socket, "READY=1", &mut seen),
        "{seen:?}"
    );
    let pid = agent.child.id() as i32;
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        unsafe { libc::kill(pid, libc::SIGTERM) };
    });
    assert!(
        wait_for_notification(&socket, "STOPPING=1", &mut seen),
        "{seen:?}"
    );
    stopper.join().unwrap();
    let (status, _) = agent.stop_with(0, WAIT);
    assert!(status.is_some_and(|s| s.success()));
}

#[test]
fn sighup_reloads_and_a_bad_file_keeps_the_running_config() {
    let dir = tempdir();
    let config = write_config(dir.path(), "(node: \"before\")");
    let (agent, port) = start_agent(&["--config", &config]);
    let node_of = |port| {
        parse_exposition(&scrape(port, "/metrics"))
            .samples
            .iter()
            .find_map(|s| s.labels.get("node").cloned())
            .unwrap()
    };
    assert_eq!(node_of(port), "before");
    std::fs::write(
        &config,
        "(node: \"after\", collectors: {\"loadavg\": false})",
    )
    .unwrap();
    unsafe { libc::kill(agent.child.id() as i32, libc::SIGHUP) };
    eventually(WAIT, || (node_of(port) == "after").then_some(())).expect("new node label");
    let exp = parse_exposition(&scrape(port, "/metrics"));
    assert!(exp.value("node_load1", &[]).is_none(), "loadavg turned off");
    std::fs::write(&config, "(node: \"broken\", warp: 9)").unwrap();
    unsafe { libc::kill(agent.child.id() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(node_of(port), "after");
    let (status, stderr) = agent.stop_with(libc::SIGTERM, WAIT);
    assert!(status.is_some_and(|s| s.success()));
    assert!(
        stderr.contains("keeping the running configuration"),
        "{stderr}"
    );
    assert!(stderr.contains("warp"), "{stderr}");
}

#[test]
fn a_dripping_gateway_is_bounded_by_the_push_timeout() {
    let _heavy = crate::harness::heavy();
    let gateway = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gw_port = gateway.local_addr().unwrap().port();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_drip = std::sync::Arc::clone(&stop);
    // Answers 500 and then one byte a second, for at most 60 s per connection.
    let drip = std::thread::spawn(move || {
        gateway.set_nonblocking(true).unwrap();
        let mut clients: Vec<TcpStream> = Vec::new();
        let started = Instant::now();
        while !stop_drip.load(std::sync::atomic::Ordering::Relaxed)
            && started.elapsed() < Duration::from_secs(60)
        {
            if let Ok((mut stream, _)) = gateway.accept() {
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                let mut buf = [0u8; 65536];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 10000\r\n\r\n",
                );
                clients.push(stream);
            }
            for client in &mut clients {
                let _ = client.write_all(b"x");
            }
            std::thread::sleep(Duration::from_millis(1000));
        }
    });
    let dir = tempdir();
    let (agent, port) = start_agent(&[
        &format!("--push.url=http://127.0.0.1:{gw_port}"),
        "--push.interval=1s",
        "--config",
        &write_config(dir.path(), "(push: (timeout: \"2s\"))"),
    ]);
    let failed = eventually(WAIT, || {
        let exp = parse_exposition(&scrape(port, "/metrics"));
        let errors = exp.value("pimetrics_push_total", &[("outcome", "error")])?
            + exp.value("pimetrics_push_total", &[("outcome", "http_5xx")])?;
        (errors >= 1.0).then_some(exp)
    })
    .expect("the dripping push ends as a failure");
    let duration = failed
        .value("pimetrics_push_duration_seconds", &[])
        .unwrap();
    assert!(duration <= 3.0, "a push took {duration} s");
    let started = Instant::now();
    let (status, _) = agent.stop_with(libc::SIGTERM, WAIT);
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = drip.join();
    assert!(status.is_some_and(|s| s.success()));
    // A push in flight (≤ 2 s) plus the DELETE (≤ 2 s: the push timeout bounds it too).
    assert!(took < Duration::from_secs(6), "shutdown took {took:?}");
}

#[test]
fn concurrent_scrapes_share_collections_and_the_request_limit_answers_503() {
    let _heavy = crate::harness::heavy();
    let dir = tempdir();
    let textfiles = dir.path().join("textfile");
    std::fs::create_dir(&textfiles).unwrap();
    // A large text file makes a collection slow enough for requests to meet.
    let mut big = String::from("# TYPE big gauge\n");
    for i in 0..60_000 {
        big.push_str(&format!("big{{i=\"{i}\"}} {i}\n"));
    }
    std::fs::write(textfiles.join("big.prom"), big).unwrap();
    let (_agent, port) = start_agent(&[
        &format!("--collector.textfile.directory={}", textfiles.display()),
        "--web.max-requests=2",
    ]);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|_| scope.spawn(move || http_get(port, "/metrics").status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 503)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(statuses.contains(&503), "{statuses:?}");
    let exp = parse_exposition(&scrape(port, "/metrics"));
    assert!(
        exp.value(
            "pimetrics_http_requests_total",
            &[("path", "/metrics"), ("code", "503")]
        )
        .unwrap()
            >= 1.0
    );
    // Without a limit, scrapes that arrive together share a collection.
    let (_agent, port) = start_agent(&[
        &format!("--collector.textfile.directory={}", textfiles.display()),
        "--web.max-requests=0",
    ]);
    std::thread::scope(|scope| {
        for _ in 0..12 {
            scope.spawn(move || assert_eq!(http_get(port, "/metrics").status, 200));
        }
    });
    let shared = metric(port, "pimetrics_http_shared_collections_total", &[]).unwrap();
    assert!(shared >= 1.0, "shared collections: {shared}");
}

#[test]
fn collect_and_exclude_parameters() {
    let (_agent, port) = start_agent(&[]);
    let only = parse_exposition(&scrape(port, "/metrics?collect[]=loadavg"));
    assert!(only.value("node_load1", &[]).is_some());
    assert!(only.value("node_memory_MemTotal_bytes", &[]).is_none());
    let without = parse_exposition(&scrape(port, "/metrics?exclude[]=loadavg"));
    assert!(without.value("node_load1", &[]).is_none());
    assert!(without.value("node_memory_MemTotal_bytes", &[]).is_some());
    let bad = http_get(port, "/metrics?collect[]=warp");
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("missing collector: warp"));
}

#[test]
fn socket_activation_serves_on_the_socket_systemd_passes() {
    let Some(activate) = require_or_skip("systemd-socket-activate", "socket activation") else {
        return;
    };
    let port = free_port();
    // As a .socket unit would: the listener is made by systemd's tool and passed as fd 3.
    let mut command = Command::new(activate);
    command
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(agent_bin())
        .arg("--web.systemd-socket")
        .arg("--node=activated");
    let agent = Proc::spawn("systemd-socket-activate", &mut command);
    wait_for_port(port, WAIT);
    // The first connection starts the agent, which then serves this and later connections.
    let exp = eventually(WAIT, || {
        let answer = raw_request(
            port,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        let body = answer
            .strip_prefix("HTTP/1.1 200")?
            .split_once("\r\n\r\n")?
            .1
            .to_string();
        Some(parse_exposition(&body))
    })
    .expect("the activated agent answers");
    assert!(exp
        .samples
        .iter()
        .all(|s| s.labels.get("node").map(String::as_str) == Some("activated")));
    assert_eq!(http_get(port, "/-/healthy").status, 200);
    drop(agent);

    // Without a socket from systemd the flag is a clear start-up error.
    let (status, _, stderr) = run_bounded(
        "pimetrics",
        Command::new(agent_bin()).arg("--web.systemd-socket"),
        WAIT,
    );
    assert!(!status.success());
    assert!(stderr.contains("LISTEN_FDS"), "{stderr}");
}
