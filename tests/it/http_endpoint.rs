//! The pull endpoint, over real HTTP on loopback, against the built binary.

use std::io::Read;
use std::time::Duration;

use crate::harness::*;

#[test]
fn exposition_parser_reads_labels_and_escapes() {
    let exp = parse_exposition("# TYPE a gauge\na{x=\"1\",y=\"q\\\"\\n\"} 2.5\nb 3\nc{} +Inf\n");
    assert_eq!(exp.value("a", &[("y", "q\"\n")]), Some(2.5));
    assert_eq!(exp.value("b", &[]), Some(3.0));
    assert_eq!(exp.value("c", &[]), Some(f64::INFINITY));
    assert_eq!(exp.types["a"], "gauge");
}

#[test]
fn metrics_landing_health_and_errors() {
    let (agent, port) = start_agent(&["--node=pi-test"]);

    let metrics = http_get(port, "/metrics");
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let exp = parse_exposition(&metrics.text());
    assert!(
        exp.samples
            .iter()
            .all(|s| s.labels.get("node").map(String::as_str) == Some("pi-test")),
        "every series has the node label"
    );
    assert_eq!(
        exp.value("node_scrape_collector_success", &[("collector", "meminfo")]),
        Some(1.0)
    );
    assert_eq!(
        exp.value(
            "pimetrics_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert!(exp.value("process_resident_memory_bytes", &[]).unwrap() > 1e6);

    let gz = http("GET", port, "/metrics", &[("Accept-Encoding", "gzip")], b"");
    assert_eq!(gz.header("Content-Encoding"), Some("gzip"));
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&gz.body[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    assert!(parse_exposition(&unzipped)
        .value("node_scrape_collector_success", &[("collector", "loadavg")])
        .is_some());

    let head = http("HEAD", port, "/metrics", &[], b"");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());

    let landing = http_get(port, "/");
    assert_eq!(landing.status, 200);
    assert!(landing.text().contains("href=\"/metrics\""));
    assert!(landing.text().contains("pi-test"));
    assert_eq!(http_get(port, "/-/healthy").status, 200);

    assert_eq!(http_get(port, "/metricsx").status, 404);
    let post = http("POST", port, "/metrics", &[], b"x=1");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("Allow"), Some("GET, HEAD"));

    let counted = parse_exposition(&http_get(port, "/metrics").text());
    assert_eq!(
        counted.value(
            "pimetrics_http_requests_total",
            &[("path", "other"), ("code", "404")]
        ),
        Some(1.0)
    );
    assert_eq!(
        counted.value(
            "pimetrics_http_requests_total",
            &[("path", "/metrics"), ("code", "405")]
        ),
        Some(1.0)
    );
    assert!(
        counted
            .value(
                "pimetrics_http_requests_total",
                &[("path", "/metrics"), ("code", "200")]
            )
            .unwrap()
            >= 3.0
    );

    // The stop itself is bounded here; how fast it is, is measured by scripts/compare, not asserted.
    let (status, stderr) = agent.stop_with(libc::SIGTERM, Duration::from_secs(5));
    assert!(status.expect("exited").success(), "{stderr}");
    assert!(stderr.contains("SIGTERM: stopping"), "{stderr}");
}

#[test]
fn sigint_stops_cleanly_too() {
    let (agent, _port) = start_agent(&[]);
    let (status, _) = agent.stop_with(libc::SIGINT, Duration::from_secs(5));
    assert!(status.expect("exited within a second").success());
}

#[test]
fn garbage_requests_do_not_hurt_the_agent() {
    use std::io::Write;
    let (_agent, port) = start_agent(&[]);
    for junk in [
        &b"\x00\x01\x02\r\n\r\n"[..],
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"GET\r\n\r\n",
        &[b'A'; 70000][..],
    ] {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.write_all(junk);
        }
    }
    assert_eq!(http_get(port, "/metrics").status, 200);
}

#[test]
fn a_port_in_use_is_a_clear_start_up_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = run_agent(&[&format!("--web.listen-address=127.0.0.1:{port}")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot listen on 127.0.0.1:"), "{stderr}");
}
