//! The web configuration file of node_exporter (`--web.config.file`), as the Prometheus
//! exporter-toolkit defines it: TLS (`tls_server_config`), basic auth (`basic_auth_users`), extra
//! response headers (`http_server_config.headers`) and a request rate limit (`rate_limit`).
//!
//! A file written for node_exporter works here unchanged, with these differences, each logged or
//! reported at load:
//! - TLS is rustls with the ring provider: TLS 1.2 and 1.3 only (`min_version: TLS10`/`TLS11` is
//!   raised to TLS 1.2 with a warning), no CBC or RSA-key-exchange cipher suites (listed ones are
//!   skipped with a warning), no P-521 curve (skipped with a warning).
//! - `VerifyClientCertIfGiven` and `RequireAndVerifyClientCert` need `client_ca_file` or
//!   `client_ca` (Go would fall back to the system roots; we have none).
//! - The file is read at start-up and on reload, not on every request; certificates are re-read
//!   at reload.
//! - `http_server_config.http2` is accepted and ignored: the endpoint speaks HTTP/1.1 only.
//! - Setting both `cert` and `cert_file` (or `key`/`key_file`, `client_ca`/`client_ca_file`)
//!   is an error rather than one of them being ignored silently.
//! - YAML anchors and aliases are refused (a config file does not need them, and refusing them
//!   closes the "billion laughs" expansion).
//!
//! YAML parser: `saphyr-parser`, the maintained pure-Rust YAML 1.2 event parser of the saphyr
//! project. It was chosen over `serde_yaml_ng` and `serde_norway` (both wrap `unsafe-libyaml`, a
//! machine translation of libyaml, plus indexmap/itoa/ryu and a serde layer: several times the
//! code) and over `serde-saphyr` (needs Rust 1.89, pulls more crates). Its only runtime
//! dependency is `arraydeque`. The document is small, so a tree is built from the events and
//! walked by hand, which also gives error messages that name the key and the line.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, SupportedKxGroup, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CipherSuite, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme, SupportedCipherSuite, SupportedProtocolVersion,
};
use zeroize::Zeroizing;

/// Everything the HTTP endpoint takes from the web config file.
#[derive(Debug, Default)]
pub struct WebConfig {
    /// `None`: plain HTTP.
    pub tls: Option<Arc<ServerConfig>>,
    /// `None`: no authentication. An `Arc`, to serve as the endpoint's `Arc<dyn Authorizer>`
    /// and to move into `spawn_blocking` for a bcrypt run.
    pub auth: Option<Arc<BasicAuth>>,
    /// `http_server_config.headers`, added to every answer (401s included).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `rate_limit`: `None` when absent or its interval is 0. Over the limit the toolkit answers
    /// 429 Too Many Requests before checking credentials.
    pub rate_limiter: Option<RateLimiter>,
}

impl WebConfig {
    /// Reads and checks the file, certificates and keys included. Errors name the file and the key.
    pub fn load(path: &Path) -> Result<WebConfig, String> {
        let text = read_regular_file(path)
            .map_err(|err| format!("web config file {}: {err}", path.display()))?;
        let text = String::from_utf8(text)
            .map_err(|_| format!("web config file {}: not valid UTF-8", path.display()))?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        WebConfig::parse(&text, base_dir)
            .map_err(|err| format!("web config file {}: {err}", path.display()))
    }

    /// Parses the YAML text; relative file names are taken from `base_dir`.
    pub fn parse(yaml: &str, base_dir: &Path) -> Result<WebConfig, String> {
        let root = yaml::parse(yaml)?;
        let mut tls = None;
        let mut auth = None;
        let mut headers = Vec::new();
        let mut rate_limiter = None;
        for (key, key_line, value) in root.entries("")? {
            match key {
                "tls_server_config" => tls = TlsSection::decode(value)?.build(base_dir)?,
                "http_server_config" => headers = decode_http_section(value)?,
                "basic_auth_users" => {
                    let mut users = Vec::new();
                    for (user, _, hash) in value.entries(key)? {
                        users.push((user.to_owned(), hash.string(&format!("{key}.{user}"))?));
                    }
                    if !users.is_empty() {
                        auth = Some(Arc::new(BasicAuth::new(users)?));
                    }
                }
                "rate_limit" => rate_limiter = RateLimiter::decode(value)?,
                _ => {
                    return Err(unknown_key(
                        key,
                        "",
                        &[
                            "tls_server_config",
                            "http_server_config",
                            "basic_auth_users",
                            "rate_limit",
                        ],
                        key_line,
                    ))
                }
            }
        }
        Ok(WebConfig {
            tls,
            auth,
            headers,
            rate_limiter,
        })
    }

    /// The TLS acceptor for the listener, `None` for plain HTTP.
    pub fn acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.tls
            .as_ref()
            .map(|config| tokio_rustls::TlsAcceptor::from(Arc::clone(config)))
    }

    /// One line for the start-up and reload logs, without secrets.
    pub fn summary(&self) -> String {
        let tls = match &self.tls {
            Some(_) => "TLS on",
            None => "TLS off",
        };
        let auth = match &self.auth {
            Some(auth) => format!("basic auth for {} user(s)", auth.users.len()),
            None => "no basic auth".to_owned(),
        };
        let limit = match &self.rate_limiter {
            Some(limiter) => format!(
                ", rate limit {:?} burst {}",
                limiter.interval, limiter.burst
            ),
            None => String::new(),
        };
        format!(
            "{tls}, {auth}, {} extra header(s){limit}",
            self.headers.len()
        )
    }
}

fn unknown_key(key: &str, section: &str, known: &[&str], line: usize) -> String {
    let path = if section.is_empty() {
        key.to_owned()
    } else {
        format!("{section}.{key}")
    };
    format!(
        "line {line}: unknown key {path:?}; expected one of: {}",
        known.join(", ")
    )
}

// ---------------------------------------------------------------------------------------------
// http_server_config

/// The headers the toolkit lets a user set, and the values it accepts (empty: any value).
/// Kept as narrow as the toolkit's on purpose, so a file is valid for both.
const ALLOWED_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

fn decode_http_section(node: &yaml::Node) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    const SECTION: &str = "http_server_config";
    let mut headers = Vec::new();
    for (key, key_line, value) in node.entries(SECTION)? {
        match key {
            // HTTP/2 needs ALPN over TLS; the endpoint serves HTTP/1.1 only, so this changes nothing.
            "http2" => {
                value.boolean(&format!("{SECTION}.http2"))?;
            }
            "headers" => {
                for (name, name_line, header_value) in
                    value.entries("http_server_config.headers")?
                {
                    let path = format!("{SECTION}.headers.{name}");
                    let text = header_value.string(&path)?;
                    let Some((_, allowed)) = ALLOWED_HEADERS.iter().find(|(n, _)| *n == name)
                    else {
                        let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
                        return Err(format!(
                            "{path} (line {name_line}): header {name:?} can not be configured; allowed: {}",
                            names.join(", ")
                        ));
                    };
                    if text.is_empty() {
                        continue; // "Unset if blank", as the toolkit documents.
                    }
                    if !allowed.is_empty() && !allowed.contains(&text.as_str()) {
                        return Err(format!(
                            "{path} (line {}): invalid value {text:?}; expected one of: {}",
                            header_value.line,
                            allowed.join(", ")
                        ));
                    }
                    let header_name = HeaderName::from_bytes(name.as_bytes())
                        .map_err(|err| format!("{path}: {err}"))?;
                    let value = HeaderValue::from_str(&text).map_err(|_| {
                        format!(
                            "{path} (line {}): not a valid header value",
                            header_value.line
                        )
                    })?;
                    headers.push((header_name, value));
                }
            }
            _ => return Err(unknown_key(key, SECTION, &["http2", "headers"], key_line)),
        }
    }
    Ok(headers)
}

// ---------------------------------------------------------------------------------------------
// rate_limit

/// The toolkit's `rate_limit` (Go's `rate.NewLimiter(rate.Every(interval), burst)`): a token
/// bucket of `burst` tokens, full at start, refilled by one token every `interval`.
#[derive(Debug)]
pub struct RateLimiter {
    pub interval: Duration,
    pub burst: u32,
    /// Tokens available and when they were counted.
    bucket: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub fn new(interval: Duration, burst: u32) -> RateLimiter {
        RateLimiter {
            interval,
            burst,
            bucket: Mutex::new((f64::from(burst), Instant::now())),
        }
    }

    /// Takes one token if there is one.
    pub fn allow(&self) -> bool {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> bool {
        let mut bucket = self
            .bucket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (tokens, counted_at) = *bucket;
        let refill =
            now.saturating_duration_since(counted_at).as_secs_f64() / self.interval.as_secs_f64();
        let tokens = (tokens + refill).min(f64::from(self.burst));
        if tokens >= 1.0 {
            *bucket = (tokens - 1.0, now);
            true
        } else {
            *bucket = (tokens, now);
            false
        }
    }

    fn decode(node: &yaml::Node) -> Result<Option<RateLimiter>, String> {
        const SECTION: &str = "rate_limit";
        let mut interval = Duration::ZERO;
        let mut burst = 0u64;
        for (key, key_line, value) in node.entries(SECTION)? {
            let path = format!("{SECTION}.{key}");
            match key {
                "interval" => {
                    let text = value.string(&path)?;
                    interval = parse_go_duration(&text)
                        .map_err(|err| format!("{path} (line {}): {err}", value.line))?;
                }
                "burst" => burst = value.unsigned(&path)?,
                _ => return Err(unknown_key(key, SECTION, &["interval", "burst"], key_line)),
            }
        }
        if interval.is_zero() {
            return Ok(None);
        }
        // Go's limiter with burst 0 refuses every request: surely not what was meant.
        let burst = u32::try_from(burst)
            .ok()
            .filter(|burst| *burst > 0)
            .ok_or_else(|| {
                format!(
                    "{SECTION}.burst: must be between 1 and {} when an interval is set",
                    u32::MAX
                )
            })?;
        Ok(Some(RateLimiter::new(interval, burst)))
    }
}

/// Go's `time.ParseDuration` (what the toolkit's YAML decoder uses): `1h30m`, `250ms`, `1.5s`, `0`.
fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?} (examples: 100ms, 1s, 1m30s)");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += number * seconds_per_unit;
    }
    // Go's Duration is an int64 of nanoseconds: about 292 years.
    Duration::try_from_secs_f64(total)
        .ok()
        .filter(|d| d.as_secs() < 292 * 365 * 86_400)
        .ok_or_else(bad)
}

// ---------------------------------------------------------------------------------------------
// basic_auth_users

/// How many (user, hash, password) results are kept, as the toolkit (`cacheSize = 100`).
const AUTH_CACHE_SIZE: usize = 100;

/// Basic auth against bcrypt hashes, with the toolkit's cache of results.
///
/// A cache miss costs one bcrypt run (cost 10: ~70 ms on a PC, around a second on a Pi Zero), so
/// on a single-threaded runtime call [`BasicAuth::check_cached`] first and run
/// [`BasicAuth::check`] with `spawn_blocking` only when it returns `None`. bcrypt runs one at a
/// time (as in the toolkit), so concurrent misses queue instead of taking every core.
pub struct BasicAuth {
    /// User name (bytes, as sent) to bcrypt hash.
    users: HashMap<Vec<u8>, String>,
    /// Checked when the user is unknown, so that an unknown user costs as much as a wrong
    /// password: same cost as the most expensive configured hash, and never matches.
    dummy_hash: String,
    /// Digest of (user, hash, password) to result. Digests, so that passwords are not kept.
    cache: Mutex<HashMap<[u8; 32], bool>>,
    /// Held while bcrypt runs.
    bcrypt_turn: Mutex<()>,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl BasicAuth {
    /// `users`: (name, bcrypt hash). Every hash is checked here, so a typo fails the load.
    pub fn new(users: impl IntoIterator<Item = (String, String)>) -> Result<BasicAuth, String> {
        let mut map = HashMap::new();
        let mut max_cost = 0;
        for (user, hash) in users {
            let cost =
                bcrypt_cost(&hash).map_err(|err| format!("basic_auth_users.{user}: {err}"))?;
            max_cost = max_cost.max(cost);
            map.insert(user.into_bytes(), hash);
        }
        let max_cost = if map.is_empty() { 10 } else { max_cost };
        // Salt and hash of a random password, thrown away; with the cost changed it is the hash
        // of nothing anyone knows. Its result is ignored anyway: an unknown user never passes.
        let dummy_hash =
            format!("$2b${max_cost:02}$J0t/yUH/X7fso8JpCAEY4eSgkTOkkxwlcQEoXHCcszgobVz291keG");
        Ok(BasicAuth {
            users: map,
            dummy_hash,
            cache: Mutex::new(HashMap::new()),
            bcrypt_turn: Mutex::new(()),
        })
    }

    /// Whether the `Authorization` header value carries the credentials of a configured user.
    /// May run bcrypt (see the type's documentation).
    pub fn check(&self, authorization_header: Option<&[u8]>) -> bool {
        let Some(credentials) = authorization_header.and_then(parse_basic_credentials) else {
            return false;
        };
        let (hash, known_user) = self.hash_for(&credentials.user);
        let key = cache_key(&credentials.user, hash, &credentials.password);
        if let Some(ok) = self.cached(&key) {
            return ok;
        }
        let matches = {
            let _turn = self
                .bcrypt_turn
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            bcrypt::verify(credentials.password.as_slice(), hash).unwrap_or(false)
        };
        let ok = known_user && matches;
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.len() >= AUTH_CACHE_SIZE {
            // As the toolkit: drop a tenth at once rather than one entry on every insert. The
            // map's hasher is randomly seeded, so its first entries are an arbitrary choice.
            let victims: Vec<[u8; 32]> = cache
                .keys()
                .take(AUTH_CACHE_SIZE / 10 + 1)
                .copied()
                .collect();
            for victim in victims {
                cache.remove(&victim);
            }
        }
        cache.insert(key, ok);
        ok
    }

    /// The answer when it needs no bcrypt run (no or malformed credentials, or a cached result);
    /// `None` when [`BasicAuth::check`] has to run bcrypt.
    pub fn check_cached(&self, authorization_header: Option<&[u8]>) -> Option<bool> {
        let Some(credentials) = authorization_header.and_then(parse_basic_credentials) else {
            return Some(false);
        };
        let (hash, _) = self.hash_for(&credentials.user);
        self.cached(&cache_key(&credentials.user, hash, &credentials.password))
    }

    /// The value of `WWW-Authenticate` for a 401, as the toolkit sends it.
    pub const CHALLENGE: &'static str = "Basic";

    fn hash_for(&self, user: &[u8]) -> (&str, bool) {
        match self.users.get(user) {
            Some(hash) => (hash, true),
            None => (&self.dummy_hash, false),
        }
    }

    fn cached(&self, key: &[u8; 32]) -> Option<bool> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.get(key).copied()
    }

    #[cfg(test)]
    fn cache_len(&self) -> usize {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }
}

/// The cost of a bcrypt hash, checking its form as Go's `bcrypt.Cost` does.
fn bcrypt_cost(hash: &str) -> Result<u32, String> {
    let parts: bcrypt::HashParts = hash.parse().map_err(|err| {
        format!("not a bcrypt hash ({err}); make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`")
    })?;
    let cost = parts.get_cost();
    if !(4..=31).contains(&cost) {
        return Err(format!("bcrypt cost {cost} is out of range 4..=31"));
    }
    Ok(cost)
}

/// SHA-256 of the length-prefixed user, hash and password: keyed by all three as the toolkit,
/// without keeping the password in memory.
fn cache_key(user: &[u8], hash: &str, password: &[u8]) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user, hash.as_bytes(), password] {
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(context.finish().as_ref());
    key
}

struct Credentials {
    user: Vec<u8>,
    /// Wiped when dropped: the password should not linger in freed memory.
    password: Zeroizing<Vec<u8>>,
}

/// Go's `Request.BasicAuth`: `Basic ` (any case), then standard padded base64 of `user:password`.
fn parse_basic_credentials(header: &[u8]) -> Option<Credentials> {
    use base64::Engine as _;
    const PREFIX: &[u8] = b"Basic ";
    if header.len() < PREFIX.len() || !header[..PREFIX.len()].eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    let decoded = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(&header[PREFIX.len()..])
            .ok()?,
    );
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some(Credentials {
        user: decoded[..colon].to_vec(),
        password: Zeroizing::new(decoded[colon + 1..].to_vec()),
    })
}

// ---------------------------------------------------------------------------------------------
// tls_server_config

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientAuth {
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

/// `tls_server_config` as written, before any file is read.
#[derive(Debug)]
struct TlsSection {
    cert: String,
    key: String,
    client_ca: String,
    cert_file: String,
    key_file: String,
    client_auth_type: String,
    client_ca_file: String,
    cipher_suites: Vec<String>,
    curve_preferences: Vec<String>,
    min_version: TlsVersion,
    max_version: TlsVersion,
    prefer_server_cipher_suites: bool,
    client_allowed_sans: Option<Vec<String>>,
}

const TLS: &str = "tls_server_config";

impl TlsSection {
    fn decode(node: &yaml::Node) -> Result<TlsSection, String> {
        let mut section = TlsSection {
            cert: String::new(),
            key: String::new(),
            client_ca: String::new(),
            cert_file: String::new(),
            key_file: String::new(),
            client_auth_type: String::new(),
            client_ca_file: String::new(),
            cipher_suites: Vec::new(),
            curve_preferences: Vec::new(),
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
            prefer_server_cipher_suites: true,
            client_allowed_sans: None,
        };
        for (key, key_line, value) in node.entries(TLS)? {
            let path = format!("{TLS}.{key}");
            match key {
                "cert" => section.cert = value.string(&path)?,
                "key" => section.key = value.string(&path)?,
                "client_ca" => section.client_ca = value.string(&path)?,
                "cert_file" => section.cert_file = value.string(&path)?,
                "key_file" => section.key_file = value.string(&path)?,
                "client_auth_type" => section.client_auth_type = value.string(&path)?,
                "client_ca_file" => section.client_ca_file = value.string(&path)?,
                "cipher_suites" => section.cipher_suites = value.string_list(&path)?,
                "curve_preferences" => section.curve_preferences = value.string_list(&path)?,
                "min_version" => section.min_version = tls_version(value, &path)?,
                "max_version" => section.max_version = tls_version(value, &path)?,
                "prefer_server_cipher_suites" => {
                    section.prefer_server_cipher_suites = value.boolean(&path)?
                }
                "client_allowed_sans" => {
                    section.client_allowed_sans = Some(value.string_list(&path)?)
                }
                _ => {
                    return Err(unknown_key(
                        key,
                        TLS,
                        &[
                            "cert",
                            "key",
                            "client_ca",
                            "cert_file",
                            "key_file",
                            "client_auth_type",
                            "client_ca_file",
                            "cipher_suites",
                            "curve_preferences",
                            "min_version",
                            "max_version",
                            "prefer_server_cipher_suites",
                            "client_allowed_sans",
                        ],
                        key_line,
                    ))
                }
            }
        }
        Ok(section)
    }

    /// As the toolkit's `IsEnabled`: any of these turns TLS on (and then cert and key are needed).
    fn enabled(&self) -> bool {
        [
            &self.cert,
            &self.key,
            &self.cert_file,
            &self.key_file,
            &self.client_ca,
            &self.client_ca_file,
            &self.client_auth_type,
        ]
        .iter()
        .any(|field| !field.is_empty())
    }

    fn build(&self, base_dir: &Path) -> Result<Option<Arc<ServerConfig>>, String> {
        if !self.enabled() {
            return Ok(None);
        }
        let (cert_pem, cert_origin) =
            pem_source(&self.cert, "cert", &self.cert_file, "cert_file", base_dir)?
                .ok_or_else(|| format!("{TLS}: missing one of cert or cert_file"))?;
        let (key_pem, key_origin) =
            pem_source(&self.key, "key", &self.key_file, "key_file", base_dir)?
                .ok_or_else(|| format!("{TLS}: missing one of key or key_file"))?;
        let certs = parse_certificates(&cert_pem, &cert_origin)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| {
            format!("{key_origin}: no usable private key ({err}); expected a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block")
        })?;

        let provider = Arc::new(self.crypto_provider()?);
        let versions = self.protocol_versions()?;
        let verifier = self.client_verifier(base_dir, &provider)?;
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&versions)
            .map_err(|err| format!("{TLS}: {err}"))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .map_err(|err| match err {
                rustls::Error::InconsistentKeys(_) => {
                    format!("{TLS}: the private key ({key_origin}) does not belong to the certificate ({cert_origin})")
                }
                err => format!("{TLS}: certificate ({cert_origin}) or key ({key_origin}) not usable: {err}"),
            })?;
        config.ignore_client_order = self.prefer_server_cipher_suites;
        // The endpoint speaks HTTP/1.1 only; a client offering h2 and http/1.1 gets http/1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(Arc::new(config)))
    }

    /// ring's suites and groups, narrowed and ordered by `cipher_suites` and `curve_preferences`.
    fn crypto_provider(&self) -> Result<CryptoProvider, String> {
        let mut provider = rustls::crypto::ring::default_provider();
        if !self.cipher_suites.is_empty() {
            let mut tls12: Vec<SupportedCipherSuite> = Vec::new();
            for name in &self.cipher_suites {
                let Some((_, rustls_suite)) = GO_CIPHER_SUITES.iter().find(|(go, _)| go == name)
                else {
                    let names: Vec<&str> = GO_CIPHER_SUITES.iter().map(|(go, _)| *go).collect();
                    return Err(format!(
                        "{TLS}.cipher_suites: unknown cipher suite {name:?}; known: {}",
                        names.join(", ")
                    ));
                };
                let found = rustls_suite
                    .and_then(|wanted| provider.cipher_suites.iter().find(|s| s.suite() == wanted));
                match found {
                    // Go ignores TLS 1.3 suites in this list (all three are always on); so do we.
                    Some(suite) if suite.version() == &rustls::version::TLS13 => {}
                    Some(suite) => {
                        if !tls12.contains(suite) {
                            tls12.push(*suite);
                        }
                    }
                    None => log::warn!(
                        "{TLS}.cipher_suites: {name} is not supported by rustls; skipped"
                    ),
                }
            }
            if tls12.is_empty()
                && self.max_version >= TlsVersion::Tls12
                && self.effective_min() <= TlsVersion::Tls12
            {
                return Err(format!(
                    "{TLS}.cipher_suites: none of the listed TLS 1.2 suites is supported; supported: {}",
                    GO_CIPHER_SUITES
                        .iter()
                        .filter(|(go, suite)| suite.is_some() && go.starts_with("TLS_ECDHE"))
                        .map(|(go, _)| *go)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            let tls13 = provider
                .cipher_suites
                .iter()
                .filter(|s| s.version() == &rustls::version::TLS13)
                .copied();
            provider.cipher_suites = tls13.chain(tls12).collect();
        }
        if !self.curve_preferences.is_empty() {
            let mut groups: Vec<&'static dyn SupportedKxGroup> = Vec::new();
            for name in &self.curve_preferences {
                let group = match name.as_str() {
                    "X25519" => rustls::crypto::ring::kx_group::X25519,
                    "CurveP256" => rustls::crypto::ring::kx_group::SECP256R1,
                    "CurveP384" => rustls::crypto::ring::kx_group::SECP384R1,
                    "CurveP521" => {
                        log::warn!("{TLS}.curve_preferences: CurveP521 is not supported by rustls (ring); skipped");
                        continue;
                    }
                    _ => {
                        return Err(format!(
                            "{TLS}.curve_preferences: unknown curve {name:?}; known: CurveP256, CurveP384, CurveP521, X25519"
                        ))
                    }
                };
                if !groups.iter().any(|g| g.name() == group.name()) {
                    groups.push(group);
                }
            }
            if groups.is_empty() {
                return Err(format!("{TLS}.curve_preferences: none of the listed curves is supported; supported: X25519, CurveP256, CurveP384"));
            }
            provider.kx_groups = groups;
        }
        Ok(provider)
    }

    fn effective_min(&self) -> TlsVersion {
        self.min_version.max(TlsVersion::Tls12)
    }

    fn protocol_versions(&self) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
        if self.min_version < TlsVersion::Tls12 {
            log::warn!(
                "{TLS}.min_version: TLS 1.0 and 1.1 are not supported; TLS 1.2 is the minimum"
            );
        }
        if self.max_version < TlsVersion::Tls12 {
            return Err(format!(
                "{TLS}.max_version: TLS 1.0 and 1.1 are not supported; use TLS12 or TLS13"
            ));
        }
        if self.min_version > self.max_version {
            return Err(format!("{TLS}: min_version is above max_version"));
        }
        let mut versions = Vec::new();
        if self.max_version >= TlsVersion::Tls13 {
            versions.push(&rustls::version::TLS13);
        }
        if self.effective_min() <= TlsVersion::Tls12 {
            versions.push(&rustls::version::TLS12);
        }
        Ok(versions)
    }

    fn client_verifier(
        &self,
        base_dir: &Path,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Arc<dyn ClientCertVerifier>, String> {
        let auth = match self.client_auth_type.as_str() {
            "" | "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::RequestClientCert,
            // "RequireClientCert": the toolkit's older spelling, still accepted there.
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            other => {
                return Err(format!(
                    "{TLS}.client_auth_type: invalid value {other:?}; expected one of: NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
                ))
            }
        };
        let ca = pem_source(
            &self.client_ca,
            "client_ca",
            &self.client_ca_file,
            "client_ca_file",
            base_dir,
        )?;
        if ca.is_some() && auth == ClientAuth::NoClientCert {
            return Err(format!(
                "{TLS}: client CAs have been configured without a client_auth_type"
            ));
        }
        if self.client_allowed_sans.is_some()
            && !matches!(
                auth,
                ClientAuth::RequireAnyClientCert | ClientAuth::RequireAndVerifyClientCert
            )
        {
            return Err(format!(
                "{TLS}.client_allowed_sans requires client_auth_type to be one of RequireAnyClientCert or RequireAndVerifyClientCert"
            ));
        }
        let algorithms = provider.signature_verification_algorithms;
        let verifier: Arc<dyn ClientCertVerifier> = match auth {
            ClientAuth::NoClientCert => return Ok(Arc::new(rustls::server::NoClientAuth)),
            ClientAuth::RequestClientCert => Arc::new(AnyClientCert {
                mandatory: false,
                algorithms,
            }),
            ClientAuth::RequireAnyClientCert => Arc::new(AnyClientCert {
                mandatory: true,
                algorithms,
            }),
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
                let Some((ca_pem, ca_origin)) = ca else {
                    return Err(format!(
                        "{TLS}.client_auth_type {}: needs client_ca_file or client_ca (the CA that signs client certificates)",
                        self.client_auth_type
                    ));
                };
                let mut roots = RootCertStore::empty();
                for cert in parse_certificates(&ca_pem, &ca_origin)? {
                    roots.add(cert).map_err(|err| {
                        format!("{ca_origin}: not a usable CA certificate: {err}")
                    })?;
                }
                let builder = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(provider),
                );
                let builder = if auth == ClientAuth::VerifyClientCertIfGiven {
                    builder.allow_unauthenticated()
                } else {
                    builder
                };
                builder
                    .build()
                    .map_err(|err| format!("{ca_origin}: {err}"))?
            }
        };
        Ok(match &self.client_allowed_sans {
            Some(sans) => Arc::new(AllowedSans {
                inner: verifier,
                allowed: sans.clone(),
            }),
            None => verifier,
        })
    }
}

fn tls_version(node: &yaml::Node, path: &str) -> Result<TlsVersion, String> {
    match node.string(path)?.as_str() {
        "TLS10" => Ok(TlsVersion::Tls10),
        "TLS11" => Ok(TlsVersion::Tls11),
        "TLS12" => Ok(TlsVersion::Tls12),
        "TLS13" => Ok(TlsVersion::Tls13),
        other => Err(format!(
            "{path} (line {}): unknown TLS version {other:?}; expected TLS10, TLS11, TLS12 or TLS13",
            node.line
        )),
    }
}

/// The PEM text of an inline key or of the file it names, and where it came from (for errors).
fn pem_source(
    inline: &str,
    inline_key: &str,
    file: &str,
    file_key: &str,
    base_dir: &Path,
) -> Result<Option<(Vec<u8>, String)>, String> {
    match (inline.is_empty(), file.is_empty()) {
        (true, true) => Ok(None),
        (false, false) => Err(format!(
            "{TLS}: {inline_key} and {file_key} are both set; keep one"
        )),
        (false, true) => Ok(Some((
            inline.as_bytes().to_vec(),
            format!("{TLS}.{inline_key}"),
        ))),
        (true, false) => {
            let path: PathBuf = base_dir.join(file);
            let origin = format!("{TLS}.{file_key} {}", path.display());
            let data = read_regular_file(&path).map_err(|err| format!("{origin}: {err}"))?;
            Ok(Some((data, origin)))
        }
    }
}

/// Bigger than any config, certificate chain or CA bundle.
const MAX_FILE_SIZE: u64 = 4 << 20;

/// Reads a regular file of sane size: a FIFO or device named by mistake would block the load
/// (and a reload) or read without end.
fn read_regular_file(path: &Path) -> Result<Vec<u8>, String> {
    let metadata = std::fs::metadata(path).map_err(|err| err.to_string())?;
    if !metadata.is_file() {
        return Err("not a regular file".to_owned());
    }
    if metadata.len() > MAX_FILE_SIZE {
        return Err(format!("larger than {MAX_FILE_SIZE} bytes"));
    }
    std::fs::read(path).map_err(|err| err.to_string())
}

fn parse_certificates(pem: &[u8], origin: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("{origin}: not valid PEM: {err}"))?;
    if certs.is_empty() {
        return Err(format!("{origin}: no CERTIFICATE block found"));
    }
    Ok(certs)
}

/// The names `tls.CipherSuites()` gives in Go (what the toolkit accepts), and rustls' suite
/// when ring has it.
const GO_CIPHER_SUITES: &[(&str, Option<CipherSuite>)] = &[
    (
        "TLS_AES_128_GCM_SHA256",
        Some(CipherSuite::TLS13_AES_128_GCM_SHA256),
    ),
    (
        "TLS_AES_256_GCM_SHA384",
        Some(CipherSuite::TLS13_AES_256_GCM_SHA384),
    ),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        Some(CipherSuite::TLS13_CHACHA20_POLY1305_SHA256),
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        Some(CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        Some(CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        Some(CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        Some(CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        Some(CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        Some(CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
    ),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", None),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", None),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", None),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", None),
    ("TLS_RSA_WITH_AES_128_CBC_SHA", None),
    ("TLS_RSA_WITH_AES_256_CBC_SHA", None),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", None),
    ("TLS_RSA_WITH_AES_256_GCM_SHA384", None),
];

/// `RequestClientCert` / `RequireAnyClientCert`: a client certificate is asked for (or required)
/// but not checked against any CA; the client still has to prove it holds the certificate's key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `client_allowed_sans`: after the inner verifier, the client certificate must carry one of
/// these subject alternative names (DNS, e-mail, IP or URI; exact match, as the toolkit).
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let names = subject_alt_names(end_entity.as_ref()).ok_or_else(|| {
            rustls::Error::General(
                "client certificate: cannot read its subject alternative names".into(),
            )
        })?;
        if names.iter().any(|name| self.allowed.contains(name)) {
            Ok(verified)
        } else {
            Err(rustls::Error::General(format!(
                "client certificate names {names:?} match none of client_allowed_sans"
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// One DER element: (tag, contents, what follows). `None` on anything malformed.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[count..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The DNS names, e-mail addresses, IP addresses and URIs of a certificate's subjectAltName
/// extension, written as Go writes them. `None` if the certificate cannot be read.
fn subject_alt_names(cert_der: &[u8]) -> Option<Vec<String>> {
    const SEQUENCE: u8 = 0x30;
    const EXTENSIONS: u8 = 0xa3; // [3] EXPLICIT in TBSCertificate
    const SAN_OID: &[u8] = &[0x55, 0x1d, 0x11]; // 2.5.29.17
    let (SEQUENCE, certificate, _) = der_element(cert_der)? else {
        return None;
    };
    let (SEQUENCE, mut tbs, _) = der_element(certificate)? else {
        return None;
    };
    let mut names = Vec::new();
    while !tbs.is_empty() {
        let (tag, contents, rest) = der_element(tbs)?;
        tbs = rest;
        if tag != EXTENSIONS {
            continue;
        }
        let (SEQUENCE, mut extensions, _) = der_element(contents)? else {
            return None;
        };
        while !extensions.is_empty() {
            let (_, extension, rest) = der_element(extensions)?;
            extensions = rest;
            let (0x06, oid, mut fields) = der_element(extension)? else {
                return None;
            };
            if oid != SAN_OID {
                continue;
            }
            let mut value = None;
            while !fields.is_empty() {
                let (tag, contents, rest) = der_element(fields)?;
                fields = rest;
                if tag == 0x04 {
                    value = Some(contents);
                }
            }
            let (SEQUENCE, mut general_names, _) = der_element(value?)? else {
                return None;
            };
            while !general_names.is_empty() {
                let (tag, contents, rest) = der_element(general_names)?;
                general_names = rest;
                match tag {
                    // rfc822Name, dNSName, uniformResourceIdentifier: IA5String
                    0x81 | 0x82 | 0x86 => {
                        names.push(String::from_utf8_lossy(contents).into_owned())
                    }
                    0x87 => {
                        let ip = match contents.len() {
                            4 => IpAddr::from(<[u8; 4]>::try_from(contents).ok()?),
                            16 => IpAddr::from(<[u8; 16]>::try_from(contents).ok()?).to_canonical(),
                            _ => continue,
                        };
                        names.push(ip.to_string());
                    }
                    _ => {}
                }
            }
        }
    }
    Some(names)
}

// ---------------------------------------------------------------------------------------------

/// A small YAML tree built from saphyr-parser's events, with the line of every node.
mod yaml {
    use std::borrow::Cow;

    use saphyr_parser::{Event, Parser, ScalarStyle};

    /// Deeper than any web config; bounds the stack of the tree walk and of its drop.
    const MAX_DEPTH: usize = 32;

    #[derive(Debug)]
    pub enum Value {
        Null,
        Scalar(String),
        Sequence(Vec<Node>),
        Mapping(Vec<(Node, Node)>),
    }

    #[derive(Debug)]
    pub struct Node {
        pub value: Value,
        pub line: usize,
    }

    /// The first and only document; an empty text is an empty mapping.
    pub fn parse(text: &str) -> Result<Node, String> {
        // (collection being built, its line, the pending mapping key)
        let mut stack: Vec<(Value, usize, Option<Node>)> = Vec::new();
        let mut root: Option<Node> = None;
        let mut documents = 0;
        for event in Parser::new_from_str(text) {
            let (event, span) = event.map_err(|err| {
                format!(
                    "line {}: YAML syntax error: {}",
                    err.marker().line(),
                    err.info()
                )
            })?;
            let line = span.start.line();
            let node = match event {
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        return Err(format!("line {line}: more than one YAML document"));
                    }
                    continue;
                }
                Event::Alias(_) => {
                    return Err(format!("line {line}: YAML aliases are not supported"))
                }
                Event::Scalar(text, style, anchor, _) => {
                    refuse_anchor(anchor, line)?;
                    let null = style == ScalarStyle::Plain
                        && matches!(text.as_ref(), "" | "~" | "null" | "Null" | "NULL");
                    Node {
                        value: if null {
                            Value::Null
                        } else {
                            Value::Scalar(Cow::into_owned(text))
                        },
                        line,
                    }
                }
                Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                    refuse_anchor(anchor, line)?;
                    if stack.len() >= MAX_DEPTH {
                        return Err(format!("line {line}: nested too deeply"));
                    }
                    let value = match event {
                        Event::SequenceStart(..) => Value::Sequence(Vec::new()),
                        _ => Value::Mapping(Vec::new()),
                    };
                    stack.push((value, line, None));
                    continue;
                }
                Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                    Some((value, line, _)) => Node { value, line },
                    None => return Err(format!("line {line}: unbalanced YAML structure")),
                },
                _ => continue,
            };
            match stack.last_mut() {
                None => root = Some(node),
                Some((Value::Sequence(items), _, _)) => items.push(node),
                Some((Value::Mapping(entries), _, pending)) => match pending.take() {
                    None => *pending = Some(node),
                    Some(key) => entries.push((key, node)),
                },
                Some(_) => return Err(format!("line {line}: unbalanced YAML structure")),
            }
        }
        Ok(root.unwrap_or(Node {
            value: Value::Null,
            line: 1,
        }))
    }

    fn refuse_anchor(anchor: usize, line: usize) -> Result<(), String> {
        match anchor {
            0 => Ok(()),
            _ => Err(format!("line {line}: YAML anchors are not supported")),
        }
    }

    impl Node {
        fn kind(&self) -> &'static str {
            match self.value {
                Value::Null => "nothing",
                Value::Scalar(_) => "a single value",
                Value::Sequence(_) => "a list",
                Value::Mapping(_) => "a mapping",
            }
        }

        fn wrong(&self, path: &str, expected: &str) -> String {
            let at = if path.is_empty() {
                "the file".to_owned()
            } else {
                path.to_owned()
            };
            format!(
                "{at} (line {}): expected {expected}, found {}",
                self.line,
                self.kind()
            )
        }

        /// The entries of a mapping (nothing: none), keys as text; duplicate keys are errors.
        /// Each entry is (key, line of the key, value).
        pub fn entries(&self, path: &str) -> Result<Vec<(&str, usize, &Node)>, String> {
            let pairs = match &self.value {
                Value::Null => return Ok(Vec::new()),
                Value::Mapping(pairs) => pairs,
                _ => return Err(self.wrong(path, "a mapping")),
            };
            let mut entries: Vec<(&str, usize, &Node)> = Vec::with_capacity(pairs.len());
            for (key, value) in pairs {
                let Value::Scalar(name) = &key.value else {
                    return Err(key.wrong(path, "a key"));
                };
                if entries.iter().any(|(seen, _, _)| seen == name) {
                    let at = if path.is_empty() {
                        name.clone()
                    } else {
                        format!("{path}.{name}")
                    };
                    return Err(format!("{at} (line {}): key set twice", key.line));
                }
                entries.push((name, key.line, value));
            }
            Ok(entries)
        }

        /// A scalar as text; nothing is "".
        pub fn string(&self, path: &str) -> Result<String, String> {
            match &self.value {
                Value::Null => Ok(String::new()),
                Value::Scalar(text) => Ok(text.clone()),
                _ => Err(self.wrong(path, "a single value")),
            }
        }

        pub fn string_list(&self, path: &str) -> Result<Vec<String>, String> {
            match &self.value {
                Value::Null => Ok(Vec::new()),
                Value::Sequence(items) => items.iter().map(|item| item.string(path)).collect(),
                _ => Err(self.wrong(path, "a list")),
            }
        }

        /// YAML 1.1 booleans, as the toolkit's go-yaml v2 reads them.
        pub fn boolean(&self, path: &str) -> Result<bool, String> {
            match self.string(path)?.as_str() {
                "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y"
                | "Y" => Ok(true),
                "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "n"
                | "N" => Ok(false),
                _ => Err(self.wrong(path, "true or false")),
            }
        }

        pub fn unsigned(&self, path: &str) -> Result<u64, String> {
            self.string(path)?
                .parse()
                .map_err(|_| self.wrong(path, "a whole number"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_go_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("2us"), Ok(Duration::from_micros(2)));
        assert_eq!(parse_go_duration("3µs"), Ok(Duration::from_micros(3)));
        for bad in [
            "",
            "1",
            "s",
            "1x",
            "-1s",
            "1s2",
            "1..5s",
            "99999999999h",
            "1 s",
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rate_limiter_is_a_token_bucket_full_at_start() {
        let limiter = RateLimiter::new(Duration::from_secs(10), 2);
        let start = Instant::now();
        assert!(limiter.allow_at(start));
        assert!(limiter.allow_at(start));
        assert!(!limiter.allow_at(start));
        assert!(!limiter.allow_at(start + Duration::from_secs(9)));
        assert!(limiter.allow_at(start + Duration::from_secs(10)));
        assert!(!limiter.allow_at(start + Duration::from_secs(11)));
        // A long pause refills to the burst, not beyond.
        let later = start + Duration::from_secs(1000);
        assert!(limiter.allow_at(later));
        assert!(limiter.allow_at(later));
        assert!(!limiter.allow_at(later));
    }

    #[test]
    fn unknown_users_run_bcrypt_at_the_highest_configured_cost() {
        let cheap = bcrypt::hash("a", 4).unwrap();
        let dearer = bcrypt::hash("b", 5).unwrap();
        let auth = BasicAuth::new([("a".to_owned(), cheap), ("b".to_owned(), dearer)]).unwrap();
        assert_eq!(bcrypt_cost(&auth.dummy_hash), Ok(5));
        // A real bcrypt run (Ok), never a match, for any password; not an early error.
        for password in ["", "a", "b", "fakepassword"] {
            assert!(matches!(
                bcrypt::verify(password, &auth.dummy_hash),
                Ok(false)
            ));
        }
        let default = BasicAuth::new(Vec::new()).unwrap();
        assert_eq!(bcrypt_cost(&default.dummy_hash), Ok(10));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let auth =
            BasicAuth::new([("alice".to_owned(), bcrypt::hash("right", 4).unwrap())]).unwrap();
        let header = |password: &str| {
            use base64::Engine as _;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("alice:{password}"))
            )
        };
        for i in 0..(AUTH_CACHE_SIZE * 2) {
            assert!(!auth.check(Some(header(&format!("wrong{i}")).as_bytes())));
            assert!(auth.cache_len() <= AUTH_CACHE_SIZE);
        }
        assert!(auth.cache_len() > AUTH_CACHE_SIZE / 2);
        assert!(auth.check(Some(header("right").as_bytes())));
        assert_eq!(
            auth.check_cached(Some(header("right").as_bytes())),
            Some(true)
        );
    }

    #[test]
    fn cache_keys_separate_their_parts() {
        assert_ne!(cache_key(b"ab", "h", b"c"), cache_key(b"a", "h", b"bc"));
        assert_ne!(cache_key(b"a", "h1", b"c"), cache_key(b"a", "h2", b"c"));
        assert_eq!(cache_key(b"a", "h", b"c"), cache_key(b"a", "h", b"c"));
    }

    #[test]
    fn credentials_parsing() {
        let parsed = parse_basic_credentials(b"Basic YWxpY2U6cGE6c3M=").unwrap();
        assert_eq!(parsed.user, b"alice");
        assert_eq!(parsed.password.as_slice(), b"pa:ss");
        let empty = parse_basic_credentials(b"basic Og==").unwrap();
        assert!(empty.user.is_empty() && empty.password.is_empty());
        assert!(parse_basic_credentials(b"Basic YWxpY2U=").is_none()); // no colon
        assert!(parse_basic_credentials(b"Basic YWxpY2U6cGE6c3M").is_none()); // no padding
        assert!(parse_basic_credentials(b"Digest YWxpY2U6cGE6c3M=").is_none());
    }

    #[test]
    fn subject_alt_names_as_go_writes_them() {
        let mut params = rcgen::CertificateParams::new(vec![
            "a.example".to_owned(),
            "192.0.2.1".to_owned(),
            "2001:db8::1".to_owned(),
        ])
        .unwrap();
        params.subject_alt_names.push(rcgen::SanType::Rfc822Name(
            "ops@example.org".try_into().unwrap(),
        ));
        params.subject_alt_names.push(rcgen::SanType::URI(
            "spiffe://example.org/scraper".try_into().unwrap(),
        ));
        params.subject_alt_names.push(rcgen::SanType::IpAddress(
            "::ffff:198.51.100.7".parse().unwrap(),
        ));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let names = subject_alt_names(cert.der().as_ref()).unwrap();
        assert_eq!(
            names,
            [
                "a.example",
                "192.0.2.1",
                "2001:db8::1",
                "ops@example.org",
                "spiffe://example.org/scraper",
                "198.51.100.7"
            ]
        );
        // No SAN extension: no names; truncated or garbage DER: None, never a panic.
        let plain = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert_eq!(subject_alt_names(plain.der().as_ref()), Some(Vec::new()));
        let der = cert.der().as_ref();
        for len in 0..der.len() {
            let _ = subject_alt_names(&der[..len]);
        }
        assert_eq!(subject_alt_names(b"\x30\x84\xff\xff\xff\xff"), None);
    }

    #[test]
    fn yaml_tree_lines_nulls_and_booleans() {
        let root = yaml::parse("a: 1\nb:\n  - x\n  - ~\nc: 'null'\nd: yes\n").unwrap();
        let entries = root.entries("").unwrap();
        let lines: Vec<(&str, usize)> = entries.iter().map(|(k, line, _)| (*k, *line)).collect();
        assert_eq!(lines, [("a", 1), ("b", 2), ("c", 5), ("d", 6)]);
        assert_eq!(entries[1].2.string_list("b").unwrap(), ["x", ""]);
        assert_eq!(entries[2].2.string("c").unwrap(), "null");
        assert!(entries[3].2.boolean("d").unwrap());
        let err = yaml::parse("a: 1\na: 2\n")
            .unwrap()
            .entries("")
            .unwrap_err();
        assert_eq!(err, "a (line 2): key set twice");
        let err = yaml::parse("[a]: 1\n").unwrap().entries("top").unwrap_err();
        assert!(err.contains("expected a key"), "{err}");
    }
}
