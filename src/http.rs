//! The pull endpoint on tiny_http: `/metrics`, a landing page at `/`, `/-/healthy`.
//!
//! tiny_http sets no socket timeouts, so the listener gets them before tiny_http sees it:
//! Linux copies them onto every accepted connection, and a slow or idle client cannot hold a
//! thread for longer than that.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use tiny_http::{Header, Method, Request, Response, Server};

use crate::agent::Agent;

/// How long a connection may stall on reading a request or taking our answer.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);
/// Threads answering requests; scrapes serialize on the agent anyway.
const HANDLER_THREADS: usize = 2;

pub struct HttpServer {
    server: Arc<Server>,
    handlers: Vec<JoinHandle<()>>,
    pub local_addr: SocketAddr,
}

/// Binds the first address that works (`[::]` then `0.0.0.0` for `:port`, so a Pi booted with
/// IPv6 disabled still listens).
pub fn bind(addrs: &[SocketAddr]) -> io::Result<TcpListener> {
    let mut last_err = io::Error::new(io::ErrorKind::InvalidInput, "no address to listen on");
    for addr in addrs {
        match TcpListener::bind(addr) {
            Ok(listener) => {
                set_timeouts(&listener, SOCKET_TIMEOUT);
                return Ok(listener);
            }
            Err(err) => {
                last_err = io::Error::new(err.kind(), format!("cannot listen on {addr}: {err}"))
            }
        }
    }
    Err(last_err)
}

fn set_timeouts(listener: &TcpListener, timeout: Duration) {
    use std::os::fd::AsRawFd;
    let tv = libc::timeval {
        // `as _`: the field's type; naming libc::time_t is deprecated on musl targets.
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as _,
        tv_usec: 0,
    };
    for option in [libc::SO_RCVTIMEO, libc::SO_SNDTIMEO] {
        // SAFETY: a valid socket and a correctly sized timeval.
        let rc = unsafe {
            libc::setsockopt(
                listener.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                &tv as *const libc::timeval as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            log::warn!("cannot set socket timeout: {}", io::Error::last_os_error());
        }
    }
}

impl HttpServer {
    pub fn start(listener: TcpListener, agent: Arc<Agent>) -> io::Result<HttpServer> {
        let local_addr = listener.local_addr()?;
        let server = Arc::new(
            Server::from_listener(listener, None)
                .map_err(|err| io::Error::other(err.to_string()))?,
        );
        let handlers = (0..HANDLER_THREADS)
            .map(|index| {
                let server = Arc::clone(&server);
                let agent = Arc::clone(&agent);
                std::thread::Builder::new()
                    .name(format!("http-{index}"))
                    .spawn(move || {
                        // recv fails only when the server is unblocked for shutdown.
                        while let Ok(request) = server.recv() {
                            handle(request, &agent);
                        }
                    })
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(HttpServer {
            server,
            handlers,
            local_addr,
        })
    }

    /// Stops accepting and waits for the handler threads.
    pub fn stop(self) {
        for _ in &self.handlers {
            self.server.unblock();
        }
        for handler in self.handlers {
            let _ = handler.join();
        }
    }
}

/// Paths counted by name in `pimetrics_http_requests_total`; anything else counts as "other" so
/// a port scanner cannot grow the series set.
const ROUTES: &[&str] = &["/metrics", "/", "/-/healthy"];

fn handle(request: Request, agent: &Agent) {
    let path = request.url().split('?').next().unwrap_or("").to_string();
    let route = ROUTES.iter().copied().find(|r| *r == path);
    let method_ok = matches!(request.method(), Method::Get | Method::Head);
    let (status, response) = match (route, method_ok) {
        (None, _) => (404, text_response(404, "404 page not found\n")),
        (Some(_), false) => {
            let response = text_response(405, "405 method not allowed\n")
                .with_header(header("Allow", "GET, HEAD"));
            (405, response)
        }
        (Some("/metrics"), true) => {
            agent.record_scrape();
            (200, metrics_response(&request, agent))
        }
        (Some("/-/healthy"), true) => (200, text_response(200, "Healthy.\n")),
        (Some(_), true) => (200, landing_page(agent)),
    };
    agent
        .metrics
        .http_requests
        .with_label_values(&[route.unwrap_or("other"), status_label(status)])
        .inc();
    if let Err(err) = request.respond(response) {
        log::debug!("cannot answer {path}: {err}");
    }
}

fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        404 => "404",
        405 => "405",
        _ => "500",
    }
}

fn header(name: &str, value: &str) -> Header {
    // Only fixed ASCII names and values are passed here.
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static header is valid")
}

fn text_response(status: u16, body: &str) -> Response<io::Cursor<Vec<u8>>> {
    Response::from_data(body.as_bytes().to_vec())
        .with_status_code(status)
        .with_header(header("Content-Type", "text/plain; charset=utf-8"))
}

fn accepts_gzip(request: &Request) -> bool {
    request.headers().iter().any(|h| {
        h.field.equiv("Accept-Encoding")
            && h.value.as_str().split(',').any(|coding| {
                let mut parts = coding.split(';');
                let name = parts.next().unwrap_or("").trim();
                let refused =
                    parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
                name.eq_ignore_ascii_case("gzip") && !refused
            })
    })
}

fn metrics_response(request: &Request, agent: &Agent) -> Response<io::Cursor<Vec<u8>>> {
    let gzip = accepts_gzip(request);
    let body = agent.scrape(|text| {
        if gzip {
            gzip_bytes(text.as_bytes())
        } else {
            Ok(text.as_bytes().to_vec())
        }
    });
    let content_type = header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    match body {
        Ok(bytes) if gzip => Response::from_data(bytes)
            .with_header(content_type)
            .with_header(header("Content-Encoding", "gzip"))
            .with_header(header("Vary", "Accept-Encoding")),
        Ok(bytes) => Response::from_data(bytes).with_header(content_type),
        Err(err) => {
            log::error!("cannot compress the scrape: {err}");
            text_response(500, "cannot compress the scrape\n")
        }
    }
}

pub fn gzip_bytes(bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::fast());
    encoder.write_all(bytes)?;
    encoder.finish()
}

fn landing_page(agent: &Agent) -> Response<io::Cursor<Vec<u8>>> {
    let mut node = String::new();
    for c in agent.node.chars() {
        match c {
            '<' => node.push_str("&lt;"),
            '>' => node.push_str("&gt;"),
            '&' => node.push_str("&amp;"),
            '"' => node.push_str("&quot;"),
            c => node.push(c),
        }
    }
    let collectors = agent.active_collectors().join(", ");
    let body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>pimetrics on {node}</title></head>\n\
         <body><h1>pimetrics</h1><p>Node <b>{node}</b>, version {}.</p>\n\
         <p><a href=\"/metrics\">Metrics</a> &middot; <a href=\"/-/healthy\">Health</a></p>\n\
         <p>Collectors: {collectors}</p></body></html>\n",
        env!("CARGO_PKG_VERSION")
    );
    Response::from_data(body.into_bytes())
        .with_header(header("Content-Type", "text/html; charset=utf-8"))
}
