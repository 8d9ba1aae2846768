//! Helpers shared by the integration tests: the fixture trees (`tree("pi4").scrape()`, in
//! `tree`), run the agent binary, speak HTTP/1.1 on loopback, parse the exposition text, find
//! Debian's Prometheus programs, serialise the heavy tests (`heavy()`). Network namespaces in
//! `netns`, the shipping tests' containers and packages in `ship`, the remote-write receiver
//! in `remote_write`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod netns;
pub mod remote_write;
pub mod ship;
pub mod tree;

pub use tree::{pi_boards, tree, trees, Tree};

pub fn agent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pimetrics"))
}

/// Held by the tests that must not overlap one another in this process (they ran in separate
/// binaries before): those that boot containers or build the ARM binaries (minutes of both
/// cores) and those that bound how long an answer may take. Light tests still run beside them
/// on the other test thread. A test that panicked while holding it does not block the rest.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Runs the agent to completion (for --once, --check-config...).
pub fn run_agent(args: &[&str]) -> Output {
    Command::new(agent_bin())
        .args(args)
        .output()
        .expect("the agent binary runs")
}

/// A child process killed (and reaped) when dropped, so a failing test leaves nothing behind.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    pub fn spawn(name: &str, command: &mut Command) -> Proc {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {name}: {err}"));
        Proc {
            child,
            name: name.to_string(),
        }
    }

    /// Sends a signal and waits up to `limit` for the exit; returns the output.
    pub fn stop_with(
        mut self,
        signal: i32,
        limit: Duration,
    ) -> (Option<std::process::ExitStatus>, String) {
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
        let started = Instant::now();
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break Some(status);
            }
            if started.elapsed() > limit {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        if status.is_some() {
            if let Some(mut err) = self.child.stderr.take() {
                let _ = err.read_to_string(&mut stderr);
            }
        }
        (status, stderr)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the agent with `args` on a free loopback port and waits until it answers.
pub fn start_agent(args: &[&str]) -> (Proc, u16) {
    let port = free_port();
    let listen = format!("--web.listen-address=127.0.0.1:{port}");
    let mut command = Command::new(agent_bin());
    command.arg(&listen).args(args);
    let proc = Proc::spawn("pimetrics", &mut command);
    wait_for_port(port, Duration::from_secs(10));
    (proc, port)
}

pub fn wait_for_port(port: u16, limit: Duration) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < limit,
            "nothing listens on port {port} after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on loopback, `Connection: close`, the whole answer read.
pub fn http(
    method: &str,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    try_http(method, port, path, headers, body).expect("an HTTP answer")
}

/// `http`, with a failed connection, write or read as an error instead of a panic.
pub fn try_http(
    method: &str,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    Ok(parse_http_response(&raw, method == "HEAD"))
}

pub fn http_get(port: u16, path: &str) -> HttpResponse {
    http("GET", port, path, &[], b"")
}

fn parse_http_response(raw: &[u8], head: bool) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP header block");
    let head_text = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked && !head {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        data = &data[line_end + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

/// One sample of the text exposition format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed exposition: samples plus the TYPE and HELP of each family.
#[derive(Debug, Default)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    pub types: BTreeMap<String, String>,
    pub helps: BTreeMap<String, String>,
}

impl Exposition {
    pub fn family(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }

    /// The single sample of `name` whose labels include all of `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut matching = self.samples.iter().filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        });
        let first = matching.next()?;
        assert!(
            matching.next().is_none(),
            "more than one {name} matches {labels:?}"
        );
        Some(first.value)
    }

    pub fn names(&self) -> std::collections::BTreeSet<String> {
        self.samples.iter().map(|s| s.name.clone()).collect()
    }
}

/// Parses text format 0.0.4 with the agent's own parser (`pimetrics::exposition::parse`, the
/// one the textfile collector uses), panicking with the line of any error: the tests read our
/// answers, node_exporter's and the Pushgateway's through the same reader.
pub fn parse_exposition(text: &str) -> Exposition {
    let families = pimetrics::exposition::parse::parse(text.as_bytes())
        .unwrap_or_else(|err| panic!("not text format 0.0.4: {err}\n{text}"));
    let mut exp = Exposition::default();
    for family in families {
        exp.types
            .insert(family.name.clone(), family.kind.as_str().to_string());
        if let Some(help) = &family.help {
            exp.helps.insert(family.name.clone(), help.clone());
        }
        for sample in family.samples {
            exp.samples.push(Sample {
                name: format!("{}{}", family.name, sample.suffix),
                labels: sample.labels.into_iter().collect(),
                value: sample.value,
            });
        }
    }
    exp
}

/// A program in the system directories (Debian's packages) or on PATH, or None when it is not
/// installed (callers decide: under CI a missing program is a failure, see `require`).
pub fn program(name: &str) -> Option<PathBuf> {
    let system = [
        "/usr/bin",
        "/usr/sbin",
        "/usr/local/bin",
        "/usr/local/sbin",
        "/bin",
        "/sbin",
    ];
    let path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    system
        .into_iter()
        .map(PathBuf::from)
        .chain(path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The program, or a panic that says how to install it. The test suite's runner installs them.
pub fn require(name: &str) -> PathBuf {
    program(name).unwrap_or_else(|| {
        panic!("{name} is not installed: run ./scripts/test (it installs prometheus, prometheus-pushgateway, prometheus-node-exporter)")
    })
}

/// Polls `check` every 100 ms until it returns Some or `limit` passes.
pub fn eventually<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if started.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The program, or None with a printed reason when it is missing and the suite is not under
/// CI. Under CI (env `CI` set and not empty) a missing program is a failure, never a skip.
pub fn require_or_skip(name: &str, test: &str) -> Option<PathBuf> {
    if let Some(path) = program(name) {
        return Some(path);
    }
    if under_ci() {
        require(name);
    }
    eprintln!("SKIPPED {test}: {name} is not installed (scripts/test installs it)");
    None
}

pub fn under_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Runs `command` to completion, but no longer than `limit` (then it is killed and the test
/// fails naming `what`). Returns exit status, stdout, stderr.
pub fn run_bounded(
    what: &str,
    command: &mut Command,
    limit: Duration,
) -> (std::process::ExitStatus, String, String) {
    let proc = Proc::spawn(what, command);
    wait_bounded(proc, limit)
}

/// Like `run_bounded`, with `input` on stdin (from a file, so nothing can block on a pipe).
pub fn run_with_input(
    what: &str,
    command: &mut Command,
    input: &[u8],
    limit: Duration,
) -> (std::process::ExitStatus, String, String) {
    let dir = tempdir();
    let path = dir.path().join("stdin");
    std::fs::write(&path, input).expect("write the input file");
    let child = command
        .stdin(std::fs::File::open(&path).expect("open the input file"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {what}: {err}"));
    wait_bounded(
        Proc {
            child,
            name: what.to_string(),
        },
        limit,
    )
}

fn wait_bounded(mut proc: Proc, limit: Duration) -> (std::process::ExitStatus, String, String) {
    let what = proc.name.clone();
    let mut stdout = proc.child.stdout.take().expect("piped stdout");
    let mut stderr = proc.child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Ok(Some(status)) = proc.child.try_wait() {
            break status;
        }
        assert!(
            started.elapsed() < limit,
            "{what} did not finish within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    (status, out, err)
}

/// GET `path` and return the body, failing the test with the status when it is not 200.
pub fn scrape(port: u16, path: &str) -> String {
    let response = http_get(port, path);
    assert_eq!(
        response.status,
        200,
        "GET 127.0.0.1:{port}{path}: {}",
        response.text()
    );
    response.text()
}

/// A temporary directory removed on drop.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// Percent-encodes a query parameter (a PromQL expression) for a URL.
pub fn url_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
