//! What goes over the wire, and what the writer does with each kind of answer. Real receivers
//! do not answer 503 or 429 on demand, so a scripted HTTP/1.1 server on loopback answers from
//! a list and records every request (arrival time, headers, body); bodies are decoded with
//! snappy and the protobuf decoder checked against the .proto in the unit tests. TLS with a
//! custom CA and basic auth are tested against a real Prometheus (its --web.config.file).

use crate::harness;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::remote_write::*;
use pimetrics::push::BasicAuthConfig;
use pimetrics::remote_write::proto::{decode_write_request, TimeSeries};
use pimetrics::remote_write::RemoteWriter;

#[derive(Debug, Clone)]
struct Request {
    at: Instant,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn series(&self) -> Vec<TimeSeries> {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&self.body)
            .expect("a snappy block");
        decode_write_request(&raw).expect("a WriteRequest")
    }

    /// The value of `rw_test_tick{kind="tick"}` in this request.
    fn tick(&self) -> f64 {
        self.series()
            .iter()
            .find(|s| {
                s.labels
                    .contains(&("__name__".into(), "rw_test_tick".into()))
                    && s.labels.contains(&("kind".into(), "tick".into()))
            })
            .map(|s| s.samples[0].0)
            .expect("a tick")
    }
}

/// Answers: status and extra headers, in order; 204 once the script is used up.
type Script = Arc<Mutex<VecDeque<(u16, Vec<(&'static str, &'static str)>)>>>;

struct Scripted {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Scripted {
    fn start(script: Vec<(u16, Vec<(&'static str, &'static str)>)>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script: Script = Arc::new(Mutex::new(script.into()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (seen, script) = (Arc::clone(&seen), Arc::clone(&script));
                std::thread::spawn(move || serve(stream, &seen, &script));
            }
        });
        Scripted { port, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// Keep-alive HTTP/1.1: requests with Content-Length bodies, one scripted answer each.
fn serve(stream: TcpStream, seen: &Mutex<Vec<Request>>, script: &Script) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let at = Instant::now();
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        seen.lock().unwrap().push(Request {
            at,
            method,
            path,
            headers,
            body,
        });
        let (status, extra) = script.lock().unwrap().pop_front().unwrap_or((204, vec![]));
        let reason = format!("scripted {status}");
        let mut answer = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n",
            reason.len()
        );
        for (name, value) in extra {
            answer.push_str(&format!("{name}: {value}\r\n"));
        }
        answer.push_str("\r\n");
        answer.push_str(&reason);
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn requests_carry_the_protocol_headers_token_and_tenant() {
    let server = Scripted::start(vec![]);
    let dir = harness::tempdir();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let mut config = config(
        &format!("http://127.0.0.1:{}/api/v1/push", server.port),
        "300ms",
    );
    config.bearer_token_file = Some(token);
    config.headers.insert("X-Scope-OrgID".into(), "pis".into());
    let mut source = Ticks::new("rw-wire");
    source.extra = 3;
    let writer = RemoteWriter::new(&config, source).unwrap();
    run_for(writer, Duration::from_millis(1600));

    let requests = server.requests();
    assert!(requests.len() >= 5, "{} requests", requests.len());
    let mut last_ts = std::collections::BTreeMap::new();
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/api/v1/push");
        assert_eq!(request.header("Content-Encoding"), Some("snappy"));
        assert_eq!(
            request.header("Content-Type"),
            Some("application/x-protobuf")
        );
        assert_eq!(
            request.header("X-Prometheus-Remote-Write-Version"),
            Some("0.1.0")
        );
        assert_eq!(request.header("Authorization"), Some("Bearer s3cret-token"));
        assert_eq!(request.header("X-Scope-OrgID"), Some("pis"));
        assert!(request
            .header("User-Agent")
            .is_some_and(|ua| ua.starts_with("pimetrics/")));
        for series in request.series() {
            let names: Vec<&str> = series.labels.iter().map(|(n, _)| n.as_str()).collect();
            assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted: {names:?}");
            assert!(names.contains(&"__name__") && names.contains(&"node"));
            // Time order per series, across requests.
            for (_, ts) in &series.samples {
                let previous = last_ts.insert(series.labels.clone(), *ts);
                assert!(previous.is_none_or(|p| p < *ts), "{series:?}");
            }
        }
    }
    // The last request is the clean shutdown's: every series marked stale.
    let last = requests.last().unwrap().series();
    assert_eq!(last.len(), 2 + 1 + 3);
    assert!(last
        .iter()
        .all(|s| s.samples[0].0.to_bits() == pimetrics::remote_write::proto::STALE_NAN_BITS));
}

#[test]
fn retries_5xx_and_429_after_retry_after_and_drops_other_4xx() {
    let server = Scripted::start(vec![
        (503, vec![("Retry-After", "2")]),
        (429, vec![("Retry-After", "3")]),
        (204, vec![]),
        (400, vec![]),
        (204, vec![]),
    ]);
    let config = config(
        &format!("http://127.0.0.1:{}/api/v1/write", server.port),
        "300ms",
    );
    let source = Ticks::new("rw-retry");
    let writer = RemoteWriter::new(&config, source).unwrap();
    let stats = writer.stats();
    run_for(writer, Duration::from_millis(6500));

    let requests = server.requests();
    assert!(requests.len() >= 6, "{} requests", requests.len());
    // The same record three times: after the 503 not before its Retry-After of 2 s, after the
    // 429 not before 3 s (a backoff would be at most 0.5 s, then 1 s), and not much later.
    assert_eq!(requests[0].body, requests[1].body);
    assert_eq!(requests[1].body, requests[2].body);
    let first_wait = requests[1].at - requests[0].at;
    let second_wait = requests[2].at - requests[1].at;
    assert!(
        first_wait >= Duration::from_millis(1950) && first_wait < Duration::from_secs(4),
        "{first_wait:?}"
    );
    assert!(
        second_wait >= Duration::from_millis(2950) && second_wait < Duration::from_secs(5),
        "{second_wait:?}"
    );
    assert_eq!(requests[0].tick(), 0.0);
    // The 400 record is dropped, never sent again: the next request is the next record.
    assert_eq!(requests[3].tick(), 1.0);
    assert_eq!(requests[4].tick(), 2.0);
    assert!(requests[5..].iter().all(|r| r.body != requests[3].body));
    let samples_per_record = 3;
    assert_eq!(stats.samples_failed.load(Relaxed), samples_per_record);
    assert_eq!(stats.samples_retried.load(Relaxed), 2 * samples_per_record);
    let outcomes: Vec<u64> = stats.requests.iter().map(|c| c.load(Relaxed)).collect();
    // success, http_4xx, http_429, http_5xx, http_other, error
    assert_eq!(&outcomes[1..], &[1, 1, 1, 0, 0]);
}

#[test]
fn basic_auth_over_tls_with_a_custom_ca_to_a_real_prometheus() {
    let dir = harness::tempdir();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), signing_key.serialize_pem()).unwrap();
    let hash = bcrypt::hash("right horse battery", 4).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  writer: '{hash}'\n",
            dir.path().join("cert.pem").display(),
            dir.path().join("key.pem").display()
        ),
    )
    .unwrap();
    let Some(receiver) = Receiver::start_with(dir.path(), "remote write over TLS", Some(web))
    else {
        return;
    };
    std::fs::write(dir.path().join("right.pw"), "right horse battery\n").unwrap();
    std::fs::write(dir.path().join("wrong.pw"), "wrong horse\n").unwrap();
    let run = |password: &str, ca: bool| {
        let mut config = config(&receiver.write_url(), "300ms");
        config.basic_auth = Some(BasicAuthConfig {
            username: "writer".into(),
            password_file: dir.path().join(password),
        });
        if ca {
            config.ca_file = Some(dir.path().join("cert.pem"));
        }
        let writer = RemoteWriter::new(&config, Ticks::new("rw-tls")).unwrap();
        let stats = writer.stats();
        run_for(writer, Duration::from_millis(1000));
        stats
    };
    let right = run("right.pw", true);
    assert!(right.samples_sent.load(Relaxed) >= 6, "{right:?}");
    assert_eq!(right.samples_failed.load(Relaxed), 0);
    // A wrong password is a 401: refused for good, not retried.
    let wrong = run("wrong.pw", true);
    assert_eq!(wrong.samples_sent.load(Relaxed), 0);
    assert!(wrong.samples_failed.load(Relaxed) >= 6, "{wrong:?}");
    assert_eq!(
        wrong.requests[1].load(Relaxed),
        wrong.requests.iter().map(|c| c.load(Relaxed)).sum::<u64>()
    );
    // Without the CA the certificate is not trusted: nothing sent, kept for a retry.
    let untrusted = run("right.pw", false);
    assert_eq!(untrusted.samples_sent.load(Relaxed), 0);
    assert!(untrusted.requests[5].load(Relaxed) >= 1, "{untrusted:?}");
    assert!(untrusted.buffered_samples.load(Relaxed) > 0);
}
