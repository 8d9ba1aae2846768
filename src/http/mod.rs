//! The pull endpoint: HTTP/1.1 on hyper, on the agent's one tokio runtime. `/metrics` (gzip
//! when asked, `collect[]`/`exclude[]` as node_exporter), a landing page at `/`, `/-/healthy`.
//!
//! What one client can hold is bounded: the request head (size, header count, time to send
//! it, which is also the keep-alive idle limit), the time to take the answer, the TLS
//! handshake; request bodies are never read into memory. Connections over the limit are
//! accepted and closed at once; scrapes over the limit get 503. Scrapes that arrive together
//! share one collection (see `agent`). The accept loop never ends on an error.

mod io;
mod settings;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::agent::Agent;
use crate::webconfig::{BasicAuth, RateLimiter, WebConfig};

pub use settings::WebSettings;

/// Largest request head (request line and headers) read; over it: 431. hyper's smallest
/// buffer is 8 KiB; a scrape's head is ~300 bytes.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most request headers; over it: 431.
pub const MAX_HEADERS: usize = 64;
/// Size of the text buffer the first scrape starts with (a Pi's scrape is 20-100 KiB).
const SCRAPE_BUFFER: usize = 64 * 1024;
/// gzip level of `/metrics` answers, chosen by measurement (`cargo bench --bench scrape --
/// gzip`): on a 33 KB scrape level 1 gives 5.4 KB in about a quarter of the time level 3
/// takes for 4.7 KB, and levels 6 and 9 gain nothing more (4.55 KB) at 7-10 times the cost.
/// The scrape travels once per interval; its CPU is what a Pi pays.
const GZIP_LEVEL: u32 = 1;

/// The answer's encoding state, kept across scrapes on the thread that renders them (the
/// collect thread, see `Agent::collect`): the text buffer keeps its capacity and the deflate
/// state (~300 KB of tables in miniz_oxide) is reset rather than allocated, zeroed and freed
/// again every scrape (which also made the allocator hand pages back and fault them in).
struct Encoder {
    text: String,
    gzip: Vec<u8>,
    deflate: Compress,
    /// The last answer body with its collection number and encoding: requests that share a
    /// collection (see `agent`) share its encoding too, instead of rendering and compressing
    /// the same samples once per request.
    last: Option<(u64, bool, Bytes)>,
}

thread_local! {
    static ENCODER: std::cell::RefCell<Option<Encoder>> = const { std::cell::RefCell::new(None) };
}

/// Renders `exposition` as the body of a `/metrics` answer, gzipped when `gzip`.
fn encode_answer(exposition: &crate::exposition::Exposition, gzip: bool) -> std::io::Result<Bytes> {
    ENCODER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let encoder = slot.get_or_insert_with(|| Encoder {
            text: String::with_capacity(SCRAPE_BUFFER),
            gzip: Vec::with_capacity(SCRAPE_BUFFER / 4),
            deflate: Compress::new(Compression::new(GZIP_LEVEL), false),
            last: None,
        });
        let collection = exposition.collection();
        if let Some((number, gzipped, body)) = &encoder.last {
            if collection != 0 && *number == collection && *gzipped == gzip {
                return Ok(body.clone());
            }
        }
        encoder.last = None;
        encoder.text.clear();
        exposition.render(&mut encoder.text);
        let body = if gzip {
            gzip_into(
                encoder.text.as_bytes(),
                &mut encoder.deflate,
                &mut encoder.gzip,
            )?;
            Bytes::copy_from_slice(&encoder.gzip)
        } else {
            Bytes::copy_from_slice(encoder.text.as_bytes())
        };
        if collection != 0 {
            encoder.last = Some((collection, gzip, body.clone()));
        }
        Ok(body)
    })
}

/// gzip (RFC 1952) of `data` into `out` (cleared first) with a reused deflate state.
pub fn gzip_into(data: &[u8], deflate: &mut Compress, out: &mut Vec<u8>) -> std::io::Result<()> {
    deflate.reset();
    out.clear();
    // Magic, deflate, no flags, no mtime, no extra flags, unknown OS (as GzEncoder writes it).
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    loop {
        if out.capacity() - out.len() < 256 {
            out.reserve(data.len() / 4 + 256);
        }
        let consumed = deflate.total_in() as usize;
        let status = deflate
            .compress_vec(&data[consumed..], out, FlushCompress::Finish)
            .map_err(std::io::Error::other)?;
        if status == Status::StreamEnd {
            break;
        }
    }
    let mut crc = Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    Ok(())
}

/// What a reload can change: limits, and from the web config file TLS, users, extra headers
/// and the request rate limit.
pub struct Settings {
    pub web: WebSettings,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub auth: Option<Arc<BasicAuth>>,
    /// Added to every answer (`http_server_config.headers`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub rate_limiter: Option<RateLimiter>,
}

impl Settings {
    pub fn plain(web: WebSettings) -> Settings {
        Settings {
            web,
            tls: None,
            auth: None,
            headers: Vec::new(),
            rate_limiter: None,
        }
    }

    /// The limits of `web` with what its web config file (if any) sets. Reads files: call at
    /// start-up or from a blocking context.
    pub fn load(web: &WebSettings) -> Result<Settings, String> {
        let mut settings = Settings::plain(web.clone());
        if let Some(path) = &web.config_file {
            let file = WebConfig::load(path)?;
            log::info!("web config {}: {}", path.display(), file.summary());
            settings.tls = file.acceptor();
            settings.auth = file.auth;
            settings.headers = file.headers;
            settings.rate_limiter = file.rate_limiter;
        }
        Ok(settings)
    }
}

pub struct Endpoint {
    agent: Arc<Agent>,
    settings: RwLock<Arc<Settings>>,
    /// Scrapes being answered now (for `max_requests`).
    scrapes: AtomicUsize,
    /// Open connections (for `max_connections`).
    connections: AtomicUsize,
}

impl Endpoint {
    pub fn new(agent: Arc<Agent>, settings: Settings) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            agent,
            settings: RwLock::new(Arc::new(settings)),
            scrapes: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
        })
    }

    /// New limits, TLS, auth and headers; connections already open keep theirs.
    pub fn set_settings(&self, settings: Settings) {
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(settings);
    }

    fn settings(&self) -> Arc<Settings> {
        Arc::clone(&self.settings.read().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Binds the first address that works (`[::]` then `0.0.0.0` for `:port`, so a Pi booted with
/// IPv6 disabled still listens).
pub fn bind(addrs: &[SocketAddr]) -> std::io::Result<std::net::TcpListener> {
    let mut last_err =
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to listen on");
    for addr in addrs {
        match std::net::TcpListener::bind(addr) {
            Ok(listener) => return Ok(listener),
            Err(err) => {
                last_err =
                    std::io::Error::new(err.kind(), format!("cannot listen on {addr}: {err}"))
            }
        }
    }
    Err(last_err)
}

/// Remembers which accept errors were logged, so a flood logs once per kind.
#[derive(Default)]
struct AcceptLog {
    logged: [bool; 3],
}

/// Accepts connections until `stop` turns true. Never returns on an accept error: running
/// out of file descriptors (EMFILE/ENFILE) backs off and retries, anything else retries at
/// once; each kind is counted and logged once.
pub async fn serve(
    listener: TcpListener,
    endpoint: Arc<Endpoint>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut log = AcceptLog::default();
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok((stream, _peer)) => {
                backoff = Duration::from_millis(10);
                let settings = endpoint.settings();
                let open = endpoint.connections.fetch_add(1, Ordering::Relaxed);
                log::debug!("accepted a connection; {open} were open");
                if open >= settings.web.max_connections {
                    endpoint.connections.fetch_sub(1, Ordering::Relaxed);
                    endpoint.agent.http.connection_rejected();
                    drop(stream);
                    continue;
                }
                endpoint.agent.http.connection_opened();
                let endpoint = Arc::clone(&endpoint);
                tokio::spawn(async move {
                    connection(stream, &endpoint, settings).await;
                    endpoint.connections.fetch_sub(1, Ordering::Relaxed);
                    endpoint.agent.http.connection_closed();
                });
            }
            Err(err) => {
                let (kind, index, wait) = match err.raw_os_error() {
                    Some(libc::EMFILE) => ("emfile", 0, true),
                    Some(libc::ENFILE) => ("enfile", 1, true),
                    _ => ("other", 2, false),
                };
                endpoint.agent.http.accept_error(kind);
                if !log.logged[index] {
                    log.logged[index] = true;
                    log::error!(
                        "accepting a connection failed: {err}{} (logged once)",
                        if wait {
                            "; out of file descriptors: backing off"
                        } else {
                            ""
                        }
                    );
                }
                if wait {
                    // The pending connection stays in the backlog: without a pause the
                    // listener would report it again at once, a busy loop.
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    endpoint: &Arc<Endpoint>,
    settings: Arc<Settings>,
) {
    let _ = stream.set_nodelay(true);
    match &settings.tls {
        None => http_connection(stream, endpoint, settings.clone()).await,
        Some(acceptor) => {
            let limit = settings.web.tls_handshake_timeout.0;
            match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => http_connection(tls, endpoint, settings.clone()).await,
                Ok(Err(err)) => {
                    log::debug!("TLS handshake failed: {err}");
                    endpoint.agent.http.connection_error("tls_handshake");
                }
                Err(_) => {
                    log::debug!("TLS handshake took longer than {limit:?}");
                    endpoint.agent.http.connection_error("tls_handshake");
                }
            }
        }
    }
}

async fn http_connection<S>(stream: S, endpoint: &Arc<Endpoint>, settings: Arc<Settings>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io::TimedIo::new(stream, settings.web.write_timeout.0));
    let service_endpoint = Arc::clone(endpoint);
    let service_settings = Arc::clone(&settings);
    let service = hyper::service::service_fn(move |request| {
        let endpoint = Arc::clone(&service_endpoint);
        let settings = Arc::clone(&service_settings);
        async move { Ok::<_, Infallible>(answer(request, &endpoint, &settings).await) }
    });
    let result = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.web.header_read_timeout.0)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .keep_alive(true)
        .serve_connection(io, service)
        .await;
    if let Err(err) = result {
        let reason = if err.is_timeout() {
            "header_timeout"
        } else if err.is_parse_too_large() {
            "header_too_large"
        } else if err.is_parse() || err.is_parse_status() {
            "bad_request"
        } else if std::error::Error::source(&err)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
        {
            "write_timeout"
        } else {
            "io"
        };
        log::debug!("connection ended: {err} ({reason})");
        endpoint.agent.http.connection_error(reason);
    }
}

type Answer = Response<Full<Bytes>>;

/// Routes one request, counts it, adds the configured headers.
async fn answer(request: Request<Incoming>, endpoint: &Endpoint, settings: &Settings) -> Answer {
    let route: &'static str = match request.uri().path() {
        "/metrics" => "/metrics",
        "/" => "/",
        "/-/healthy" => "/-/healthy",
        _ => "other",
    };
    // As exporter-toolkit: the rate limit first, then the credentials, for every path.
    let mut response = if settings
        .rate_limiter
        .as_ref()
        .is_some_and(|limiter| !limiter.allow())
    {
        text(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n")
    } else if !authorized(&request, settings).await {
        let mut response = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(BasicAuth::CHALLENGE),
        );
        response
    } else if route == "other" {
        text(StatusCode::NOT_FOUND, "404 page not found\n")
    } else if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        response
    } else {
        match route {
            "/metrics" => metrics(&request, endpoint, settings).await,
            "/-/healthy" => text(StatusCode::OK, "Healthy.\n"),
            _ => landing_page(&endpoint.agent),
        }
    };
    endpoint
        .agent
        .http
        .request(route, response.status().as_u16());
    for (name, value) in &settings.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

/// Checks the credentials. A cached answer comes at once; a bcrypt run (tens of ms on a PC,
/// about a second on a Pi Zero) goes to a blocking thread so other clients are not held up.
async fn authorized(request: &Request<Incoming>, settings: &Settings) -> bool {
    let Some(auth) = &settings.auth else {
        return true;
    };
    let header = request.headers().get(header::AUTHORIZATION);
    if let Some(answer) = auth.check_cached(header.map(|v| v.as_bytes())) {
        return answer;
    }
    let auth = Arc::clone(auth);
    let header = header.map(|v| v.as_bytes().to_vec());
    tokio::task::spawn_blocking(move || auth.check(header.as_deref()))
        .await
        .unwrap_or(false)
}

/// Releases a scrape slot when the answer is done or abandoned.
struct ScrapeSlot<'a>(&'a AtomicUsize);

impl Drop for ScrapeSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn metrics(request: &Request<Incoming>, endpoint: &Endpoint, settings: &Settings) -> Answer {
    let only = match collector_filter(request.uri().query(), &endpoint.agent.active_collectors()) {
        Ok(only) => only,
        Err(message) => return text(StatusCode::BAD_REQUEST, &message),
    };
    let max = settings.web.max_requests;
    let running = endpoint.scrapes.fetch_add(1, Ordering::Relaxed);
    let _slot = ScrapeSlot(&endpoint.scrapes);
    if max > 0 && running >= max {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("Limit of concurrent requests reached ({max}), try again later.\n"),
        );
    }
    if only.is_none() {
        endpoint.agent.record_scrape();
    }
    let gzip = accepts_gzip(request.headers().get(header::ACCEPT_ENCODING));
    let limit = scrape_limit(
        settings.web.collect_timeout.0,
        request.headers().get("x-prometheus-scrape-timeout-seconds"),
    );
    let rendered = endpoint
        .agent
        .collect(only, limit, move |exposition| {
            encode_answer(exposition, gzip)
        })
        .await;
    match rendered {
        Ok(Ok(body)) => {
            let mut response = Response::new(Full::new(body));
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            if gzip {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
            response
        }
        Ok(Err(err)) => {
            log::error!("cannot compress the scrape: {err}");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot compress the scrape\n",
            )
        }
        Err(failure) => {
            log::warn!("scrape not answered: {failure}");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("scrape not answered: {failure}\n"),
            )
        }
    }
}

/// The collection time limit: ours, or Prometheus's scrape timeout when shorter.
fn scrape_limit(own: Duration, prometheus: Option<&HeaderValue>) -> Duration {
    let theirs = prometheus
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(|v| Duration::from_secs_f64(v.min(3600.0)));
    match theirs {
        Some(theirs) => own.min(theirs).max(Duration::from_millis(100)),
        None => own,
    }
}

/// node_exporter's `collect[]` / `exclude[]`: None for all collectors, or the names to run.
pub fn collector_filter(
    query: Option<&str>,
    active: &[&'static str],
) -> Result<Option<Vec<String>>, String> {
    let Some(query) = query else {
        return Ok(None);
    };
    let mut collect = Vec::new();
    let mut exclude = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "collect[]" => collect.push(value.into_owned()),
            "exclude[]" => exclude.push(value.into_owned()),
            _ => {}
        }
    }
    if !collect.is_empty() && !exclude.is_empty() {
        return Err("Combined collect and exclude queries are not allowed.\n".into());
    }
    if !exclude.is_empty() {
        // Unknown names in exclude[] are ignored, as node_exporter does.
        let only = active
            .iter()
            .filter(|name| !exclude.iter().any(|e| e == *name))
            .map(|name| name.to_string())
            .collect();
        return Ok(Some(only));
    }
    if collect.is_empty() {
        return Ok(None);
    }
    if let Some(missing) = collect.iter().find(|c| !active.contains(&c.as_str())) {
        return Err(format!(
            "Couldn't create filtered metrics handler: missing collector: {missing}\n"
        ));
    }
    collect.sort();
    collect.dedup();
    Ok(Some(collect))
}

fn accepts_gzip(value: Option<&HeaderValue>) -> bool {
    let Some(value) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value.split(',').any(|coding| {
        let mut parts = coding.split(';');
        let name = parts.next().unwrap_or("").trim();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.parse::<f64>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        name.eq_ignore_ascii_case("gzip") && !refused
    })
}

pub fn gzip_bytes(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    gzip_into(
        bytes,
        &mut Compress::new(Compression::new(GZIP_LEVEL), false),
        &mut out,
    )?;
    Ok(out)
}

fn text(status: StatusCode, body: &str) -> Answer {
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn landing_page(agent: &Agent) -> Answer {
    let mut node = String::new();
    for c in agent.node().chars() {
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
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_with_a_reused_state_is_what_gunzip_reads() {
        use std::io::Read;
        let mut deflate = Compress::new(Compression::new(GZIP_LEVEL), false);
        let mut out = Vec::new();
        for text in [
            &b"node_load1{node=\"pi\"} 0.25\n".repeat(2000)[..],
            b"",
            b"x",
        ] {
            gzip_into(text, &mut deflate, &mut out).unwrap();
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&out[..])
                .read_to_end(&mut plain)
                .unwrap();
            assert_eq!(plain, text);
        }
        let mut plain = Vec::new();
        flate2::read::MultiGzDecoder::new(&gzip_bytes(b"abc").unwrap()[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, b"abc");
    }

    #[test]
    fn requests_sharing_a_collection_share_its_encoding() {
        use crate::exposition::{Exposition, Kind};
        let mut exposition = Exposition::new("n");
        let id = exposition.family("a", "A.", Kind::Gauge, &[]);
        exposition.sample(id, &[], 1.0);
        exposition.set_collection(7);
        let first = encode_answer(&exposition, true).unwrap();
        let again = encode_answer(&exposition, true).unwrap();
        assert_eq!(first.as_ptr(), again.as_ptr(), "encoded once");
        let plain = encode_answer(&exposition, false).unwrap();
        assert_eq!(
            &plain[..],
            b"# HELP a A.\n# TYPE a gauge\na{node=\"n\"} 1\n"
        );
        exposition.clear();
        exposition.sample(id, &[], 2.0);
        // Not numbered (0): never taken from the cache.
        let unnumbered = encode_answer(&exposition, false).unwrap();
        assert_eq!(
            &unnumbered[..],
            b"# HELP a A.\n# TYPE a gauge\na{node=\"n\"} 2\n"
        );
        exposition.set_collection(8);
        let next = encode_answer(&exposition, false).unwrap();
        assert_eq!(next, unnumbered);
        assert_ne!(next.as_ptr(), plain.as_ptr());
    }

    #[test]
    fn gzip_is_taken_unless_refused() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert!(accepts_gzip(Some(&v("gzip"))));
        assert!(accepts_gzip(Some(&v("deflate, GZIP;q=0.5"))));
        assert!(!accepts_gzip(Some(&v("gzip;q=0"))));
        assert!(!accepts_gzip(Some(&v("gzip; q=0.000"))));
        assert!(!accepts_gzip(Some(&v("identity"))));
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn collect_and_exclude_follow_node_exporter() {
        let active = ["cpu", "meminfo", "rpi"];
        assert_eq!(collector_filter(None, &active), Ok(None));
        assert_eq!(collector_filter(Some("x=1"), &active), Ok(None));
        assert_eq!(
            collector_filter(
                Some("collect%5B%5D=rpi&collect[]=cpu&collect[]=rpi"),
                &active
            ),
            Ok(Some(vec!["cpu".to_string(), "rpi".to_string()]))
        );
        assert_eq!(
            collector_filter(Some("exclude[]=rpi&exclude[]=warp"), &active),
            Ok(Some(vec!["cpu".to_string(), "meminfo".to_string()]))
        );
        assert!(collector_filter(Some("collect[]=warp"), &active)
            .unwrap_err()
            .contains("missing collector: warp"));
        assert!(
            collector_filter(Some("collect[]=cpu&exclude[]=rpi"), &active)
                .unwrap_err()
                .contains("Combined")
        );
    }

    #[test]
    fn prometheus_scrape_timeout_shortens_the_limit() {
        let own = Duration::from_secs(30);
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(scrape_limit(own, None), own);
        assert_eq!(scrape_limit(own, Some(&v("10"))), Duration::from_secs(10));
        assert_eq!(scrape_limit(own, Some(&v("99"))), own);
        assert_eq!(
            scrape_limit(own, Some(&v("0.01"))),
            Duration::from_millis(100)
        );
        assert_eq!(scrape_limit(own, Some(&v("nan"))), own);
        assert_eq!(scrape_limit(own, Some(&v("-1"))), own);
    }
}
