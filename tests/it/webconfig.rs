//! The web config file (`--web.config.file`): parsing, every error case, basic auth, and real TLS
//! handshakes over loopback with tokio-rustls on the client side.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use pimetrics::webconfig::WebConfig;
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, all from it,
/// plus a self-signed client certificate from no CA.
struct Pki {
    ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
    stranger_cert_pem: String,
    stranger_key_pem: String,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let server_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(vec!["scraper.example".to_string()]).unwrap();
    client_params
        .subject_alt_names
        .push(SanType::Rfc822Name("ops@example.org".try_into().unwrap()));
    client_params
        .subject_alt_names
        .push(SanType::IpAddress("10.1.2.3".parse().unwrap()));
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();

    let stranger = rcgen::generate_simple_self_signed(vec!["scraper.example".to_string()]).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        server_cert_pem: server_cert.pem(),
        server_key_pem: server_key.serialize_pem(),
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
        stranger_cert_pem: stranger.cert.pem(),
        stranger_key_pem: stranger.signing_key.serialize_pem(),
    }
}

/// Writes the PKI files into `dir`: ca.pem, server.pem, server.key.
fn write_pki(dir: &Path, pki: &Pki) {
    std::fs::write(dir.join("ca.pem"), &pki.ca_pem).unwrap();
    std::fs::write(dir.join("server.pem"), &pki.server_cert_pem).unwrap();
    std::fs::write(dir.join("server.key"), &pki.server_key_pem).unwrap();
}

fn parse_err(yaml: &str, dir: &Path) -> String {
    match WebConfig::parse(yaml, dir) {
        Ok(config) => panic!("expected an error for:\n{yaml}\ngot {config:?}"),
        Err(err) => err,
    }
}

fn basic(user: &str, password: &str) -> Vec<u8> {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}").into_bytes()
}

#[test]
fn empty_file_means_plain_http_without_auth() {
    for text in [
        "",
        "---\n",
        "# only a comment\n",
        "tls_server_config:\nhttp_server_config:\nbasic_auth_users:\n",
    ] {
        let config = WebConfig::parse(text, Path::new("/")).unwrap();
        assert!(config.tls.is_none(), "{text:?}");
        assert!(config.auth.is_none(), "{text:?}");
        assert!(config.headers.is_empty(), "{text:?}");
        assert!(config.rate_limiter.is_none(), "{text:?}");
        assert!(config.acceptor().is_none());
    }
}

#[test]
fn full_valid_config_with_files_relative_to_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    write_pki(dir.path(), &pki);
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let path = dir.path().join("web.yml");
    std::fs::write(
        &path,
        format!(
            "tls_server_config:
  cert_file: server.pem
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.pem
  min_version: TLS12
  max_version: TLS13
  cipher_suites:
    - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    - TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA
  curve_preferences: [X25519, CurveP256, CurveP521]
  prefer_server_cipher_suites: true
http_server_config:
  http2: false
  headers:
    X-Frame-Options: deny
    X-Content-Type-Options: nosniff
    Strict-Transport-Security: max-age=31536000
    Content-Security-Policy: ''
basic_auth_users:
  prometheus: {hash}
  'admin': \"{hash}\"
rate_limit:
  interval: 1s
  burst: 5
"
        ),
    )
    .unwrap();
    let config = WebConfig::load(&path).unwrap();
    assert!(config.tls.is_some());
    assert!(config.acceptor().is_some());
    let auth = config.auth.as_ref().unwrap();
    assert!(auth.check(Some(&basic("prometheus", "s3cret"))));
    assert!(auth.check(Some(&basic("admin", "s3cret"))));
    let headers: Vec<(String, String)> = config
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    // The blank Content-Security-Policy is left out ("unset if blank").
    assert_eq!(
        headers,
        [
            ("x-frame-options".to_owned(), "deny".to_owned()),
            ("x-content-type-options".to_owned(), "nosniff".to_owned()),
            (
                "strict-transport-security".to_owned(),
                "max-age=31536000".to_owned()
            ),
        ]
    );
    let limiter = config.rate_limiter.as_ref().unwrap();
    assert_eq!(limiter.interval, std::time::Duration::from_secs(1));
    assert_eq!(limiter.burst, 5);
    assert_eq!(
        config.summary(),
        "TLS on, basic auth for 2 user(s), 3 extra header(s), rate limit 1s burst 5"
    );
}

#[test]
fn inline_cert_and_key() {
    let pki = pki();
    let indent = |pem: &str| {
        pem.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    let yaml = format!(
        "tls_server_config:\n  cert: |\n{}  key: |\n{}",
        indent(&pki.server_cert_pem),
        indent(&pki.server_key_pem)
    );
    let config = WebConfig::parse(&yaml, Path::new("/nonexistent")).unwrap();
    assert!(config.tls.is_some());
}

#[test]
fn missing_files_are_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yml");
    let err = WebConfig::load(&missing).unwrap_err();
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(err.contains("No such file"), "{err}");

    let pki = pki();
    write_pki(dir.path(), &pki);
    let path = dir.path().join("web.yml");
    std::fs::write(
        &path,
        "tls_server_config:\n  cert_file: server.pem\n  key_file: missing.key\n",
    )
    .unwrap();
    let err = WebConfig::load(&path).unwrap_err();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("tls_server_config.key_file"), "{err}");
    assert!(
        err.contains(&dir.path().join("missing.key").display().to_string()),
        "{err}"
    );

    // A FIFO (or a directory) named by mistake is refused instead of blocking the load.
    let fifo = dir.path().join("fifo.pem");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    for name in ["fifo.pem", "."] {
        let yaml = format!("tls_server_config:\n  cert_file: {name}\n  key_file: server.key\n");
        let err = parse_err(&yaml, dir.path());
        assert!(
            err.contains("tls_server_config.cert_file") && err.contains("not a regular file"),
            "{err}"
        );
    }
    let err = WebConfig::load(&fifo).unwrap_err();
    assert!(err.contains("not a regular file"), "{err}");
    let big = dir.path().join("big.pem");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(5 << 20)
        .unwrap();
    let err = parse_err(
        "tls_server_config:\n  cert_file: big.pem\n  key_file: server.key\n",
        dir.path(),
    );
    assert!(err.contains("larger than"), "{err}");

    let err = parse_err(
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: /no/ca.pem\n",
        dir.path(),
    );
    assert!(
        err.contains("tls_server_config.client_ca_file /no/ca.pem"),
        "{err}"
    );
}

#[test]
fn bad_pem_and_mismatched_key_are_load_errors() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    write_pki(dir.path(), &pki);
    std::fs::write(dir.path().join("garbage.pem"), "not a certificate\n").unwrap();
    std::fs::write(
        dir.path().join("broken.pem"),
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("other.key"), &pki.client_key_pem).unwrap();

    let config = |cert: &str, key: &str| {
        format!("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    };
    let err = parse_err(&config("garbage.pem", "server.key"), dir.path());
    assert!(
        err.contains("tls_server_config.cert_file") && err.contains("no CERTIFICATE block"),
        "{err}"
    );
    let err = parse_err(&config("broken.pem", "server.key"), dir.path());
    assert!(
        err.contains("tls_server_config.cert_file") && err.contains("not valid PEM"),
        "{err}"
    );
    let err = parse_err(&config("server.pem", "garbage.pem"), dir.path());
    assert!(
        err.contains("tls_server_config.key_file") && err.contains("no usable private key"),
        "{err}"
    );
    // A certificate file given as the key: PEM, but no key in it.
    let err = parse_err(&config("server.pem", "server.pem"), dir.path());
    assert!(err.contains("no usable private key"), "{err}");
    let err = parse_err(&config("server.pem", "other.key"), dir.path());
    assert!(err.contains("does not belong to the certificate"), "{err}");

    let err = parse_err("tls_server_config:\n  cert_file: server.pem\n", dir.path());
    assert!(err.contains("missing one of key or key_file"), "{err}");
    let err = parse_err("tls_server_config:\n  key_file: server.key\n", dir.path());
    assert!(err.contains("missing one of cert or cert_file"), "{err}");
    let err = parse_err(
        "tls_server_config:\n  cert: x\n  cert_file: server.pem\n  key_file: server.key\n",
        dir.path(),
    );
    assert!(err.contains("cert and cert_file are both set"), "{err}");
}

#[test]
fn unknown_keys_are_errors_naming_key_and_line() {
    let dir = Path::new("/");
    let err = parse_err("basic_auth_users: {}\ntls_config:\n  cert_file: x\n", dir);
    assert!(
        err.contains("line 2") && err.contains("unknown key \"tls_config\""),
        "{err}"
    );
    let err = parse_err("tls_server_config:\n  cert_file: a\n  certfile: b\n", dir);
    assert!(
        err.contains("line 3") && err.contains("\"tls_server_config.certfile\""),
        "{err}"
    );
    let err = parse_err("http_server_config:\n  http3: true\n", dir);
    assert!(err.contains("\"http_server_config.http3\""), "{err}");
    let err = parse_err("rate_limit:\n  every: 1s\n", dir);
    assert!(err.contains("\"rate_limit.every\""), "{err}");
}

#[test]
fn bad_values_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path(), &pki());
    let tls = |extra: &str| {
        format!("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n{extra}")
    };
    let cases: &[(String, &str)] = &[
        (tls("  min_version: TLS14\n"), "tls_server_config.min_version (line 4): unknown TLS version \"TLS14\""),
        (tls("  max_version: SSL3\n"), "unknown TLS version \"SSL3\""),
        (tls("  max_version: TLS11\n"), "TLS 1.0 and 1.1 are not supported"),
        (tls("  min_version: TLS13\n  max_version: TLS12\n"), "min_version is above max_version"),
        (tls("  client_auth_type: Sometimes\n"), "client_auth_type: invalid value \"Sometimes\""),
        (tls("  client_ca_file: ca.pem\n"), "client CAs have been configured without a client_auth_type"),
        (tls("  client_auth_type: RequireAndVerifyClientCert\n"), "needs client_ca_file or client_ca"),
        (tls("  client_auth_type: VerifyClientCertIfGiven\n"), "needs client_ca_file or client_ca"),
        (
            tls("  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.pem\n  client_allowed_sans: [a]\n"),
            "client_allowed_sans requires client_auth_type",
        ),
        (tls("  cipher_suites: [TLS_FAST]\n"), "unknown cipher suite \"TLS_FAST\""),
        (tls("  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n"), "none of the listed TLS 1.2 suites is supported"),
        (tls("  curve_preferences: [CurveP999]\n"), "unknown curve \"CurveP999\""),
        (tls("  curve_preferences: [CurveP521]\n"), "none of the listed curves is supported"),
        (tls("  cipher_suites: TLS_AES_128_GCM_SHA256\n"), "expected a list"),
        (tls("  prefer_server_cipher_suites: maybe\n"), "expected true or false"),
        (tls("  cert_file: again.pem\n"), "tls_server_config.cert_file (line 4): key set twice"),
        ("basic_auth_users:\n  alice: plaintext\n".to_owned(), "basic_auth_users.alice: not a bcrypt hash"),
        (
            "basic_auth_users:\n  alice: $2y$99$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\n".to_owned(),
            "basic_auth_users.alice: bcrypt cost 99 is out of range",
        ),
        ("basic_auth_users:\n  - alice\n".to_owned(), "basic_auth_users (line 2): expected a mapping, found a list"),
        ("basic_auth_users:\n  alice: [a]\n".to_owned(), "basic_auth_users.alice (line 2): expected a single value"),
        ("http_server_config:\n  headers:\n    Server: pimetrics\n".to_owned(), "header \"Server\" can not be configured"),
        ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n".to_owned(), "invalid value \"allow\"; expected one of: deny, sameorigin"),
        (
            "http_server_config:\n  headers:\n    Content-Security-Policy: \"a\\nb\"\n".to_owned(),
            "not a valid header value",
        ),
        ("http_server_config:\n  http2: 2\n".to_owned(), "expected true or false"),
        ("rate_limit:\n  interval: 1 second\n  burst: 1\n".to_owned(), "invalid duration"),
        ("rate_limit:\n  interval: 1s\n".to_owned(), "rate_limit.burst: must be between 1"),
        ("rate_limit:\n  interval: 1s\n  burst: -1\n".to_owned(), "expected a whole number"),
        ("- a\n- b\n".to_owned(), "the file (line 1): expected a mapping"),
        ("just text\n".to_owned(), "expected a mapping"),
        ("a: &x 1\nb: *x\n".to_owned(), "anchors are not supported"),
        ("basic_auth_users: {a: b\n".to_owned(), "YAML syntax error"),
        ("basic_auth_users: {}\n---\nbasic_auth_users: {}\n".to_owned(), "more than one YAML document"),
    ];
    for (yaml, expected) in cases {
        let err = parse_err(yaml, dir.path());
        assert!(
            err.contains(expected),
            "for:\n{yaml}\nexpected {expected:?} in {err:?}"
        );
    }
}

#[test]
fn basic_auth_checks_passwords_users_and_malformed_headers() {
    let hash = bcrypt::hash("right", 4).unwrap();
    let config = WebConfig::parse(
        &format!("basic_auth_users:\n  alice: {hash}\n"),
        Path::new("/"),
    )
    .unwrap();
    let auth = config.auth.as_ref().unwrap();
    assert!(auth.check(Some(&basic("alice", "right"))));
    assert!(!auth.check(Some(&basic("alice", "wrong"))));
    assert!(!auth.check(Some(&basic("alice", ""))));
    assert!(!auth.check(Some(&basic("bob", "right"))));
    assert!(!auth.check(Some(&basic("", ""))));
    assert!(!auth.check(None));
    // The scheme is case-insensitive, as in Go.
    let mut lower = basic("alice", "right");
    lower[..6].copy_from_slice(b"bAsIc ");
    assert!(auth.check(Some(&lower)));
    // A password may contain colons: the first one separates user and password.
    let hash = bcrypt::hash("a:b:c", 4).unwrap();
    let colon = WebConfig::parse(
        &format!("basic_auth_users:\n  carol: '{hash}'\n"),
        Path::new("/"),
    )
    .unwrap();
    assert!(colon
        .auth
        .as_ref()
        .unwrap()
        .check(Some(&basic("carol", "a:b:c"))));

    let good_token = base64::engine::general_purpose::STANDARD.encode("alice:right");
    let malformed: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"Basic".to_vec(),
        b"Basic ".to_vec(),
        b"Bearer abc".to_vec(),
        format!("Basic  {good_token}").into_bytes(),
        format!("Basic {good_token} ").into_bytes(),
        format!("Basic {}", good_token.trim_end_matches('=')).into_bytes(),
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice")
        )
        .into_bytes(),
        b"Basic \xff\xfe\x00\x01".to_vec(),
        b"Basic ====".to_vec(),
        vec![0xff; 10_000],
        [b"Basic ".as_slice(), &[b'A'; 100_000]].concat(),
    ];
    for header in &malformed {
        assert!(
            !auth.check(Some(header)),
            "{:?}",
            String::from_utf8_lossy(header)
        );
        assert_eq!(auth.check_cached(Some(header)), Some(false));
    }
}

#[test]
fn results_are_cached_so_a_correct_password_is_not_hashed_again() {
    let hash = bcrypt::hash("right", 4).unwrap();
    let config = WebConfig::parse(
        &format!("basic_auth_users:\n  alice: {hash}\n"),
        Path::new("/"),
    )
    .unwrap();
    let auth = config.auth.as_ref().unwrap();
    let right = basic("alice", "right");
    let wrong = basic("alice", "wrong");
    let stranger = basic("mallory", "right");
    // Unknown before the first check: it needs bcrypt.
    assert_eq!(auth.check_cached(Some(&right)), None);
    assert_eq!(auth.check_cached(Some(&wrong)), None);
    assert_eq!(auth.check_cached(Some(&stranger)), None);
    assert!(auth.check(Some(&right)));
    assert!(!auth.check(Some(&wrong)));
    assert!(!auth.check(Some(&stranger)));
    // Now answered from the cache, without bcrypt.
    assert_eq!(auth.check_cached(Some(&right)), Some(true));
    assert_eq!(auth.check_cached(Some(&wrong)), Some(false));
    assert_eq!(auth.check_cached(Some(&stranger)), Some(false));
    // A reloaded file with another hash for the same user starts afresh (new BasicAuth).
    let hash2 = bcrypt::hash("other", 4).unwrap();
    let reloaded = WebConfig::parse(
        &format!("basic_auth_users:\n  alice: {hash2}\n"),
        Path::new("/"),
    )
    .unwrap();
    let auth2 = reloaded.auth.as_ref().unwrap();
    assert_eq!(auth2.check_cached(Some(&right)), None);
    assert!(!auth2.check(Some(&right)));
    assert!(auth2.check(Some(&basic("alice", "other"))));
}

/// A tiny deterministic generator: the test needs no `rand`.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = (self.next() as usize) % (max_len + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_input_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path(), &pki());
    let hash = bcrypt::hash("right", 4).unwrap();
    let seed = format!(
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  min_version: TLS12\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n  curve_preferences: [X25519]\n  client_allowed_sans: [a]\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\nbasic_auth_users:\n  alice: {hash}\nrate_limit:\n  interval: 1m30.5s\n  burst: 3\n"
    );
    let config = WebConfig::parse(&seed, dir.path()).unwrap();
    let auth = config.auth.as_ref().unwrap();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let yaml_bytes = b"{}[]:-,&*!|>'\"%@`#?\n\t \\abcTLS12$";
    for round in 0..3000 {
        // Random bytes, random YAML-ish punctuation, and the valid file with a few bytes changed.
        let text = match round % 3 {
            0 => String::from_utf8_lossy(&rng.bytes(300)).into_owned(),
            1 => {
                let len = (rng.next() % 200) as usize;
                (0..len)
                    .map(|_| yaml_bytes[(rng.next() as usize) % yaml_bytes.len()] as char)
                    .collect()
            }
            _ => {
                let mut bytes = seed.clone().into_bytes();
                for _ in 0..1 + rng.next() % 4 {
                    let at = (rng.next() as usize) % bytes.len();
                    bytes[at] = yaml_bytes[(rng.next() as usize) % yaml_bytes.len()];
                }
                String::from_utf8_lossy(&bytes).into_owned()
            }
        };
        let _ = WebConfig::parse(&text, dir.path());

        let mut header = rng.bytes(80);
        if round % 2 == 0 {
            let token = base64::engine::general_purpose::STANDARD.encode(&header);
            header = format!("Basic {token}").into_bytes();
        }
        assert!(!auth.check(Some(&header)));
    }
    // Deep nesting is refused, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let err = WebConfig::parse(&deep, dir.path()).unwrap_err();
    assert!(err.contains("recursion limit exceeded"), "{err}");
    let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
    let err = WebConfig::parse(&deep, dir.path()).unwrap_err();
    assert!(err.contains("nested too deeply"), "{err}");
    let deep = format!("a: {}1{}", "{b: ".repeat(50_000), "}".repeat(50_000));
    assert!(WebConfig::parse(&deep, dir.path()).is_err());
}

// ---------------------------------------------------------------------------------------------
// Real handshakes over loopback.

/// Serves one connection: completes the handshake, answers the request line with "ok". Returns
/// the handshake's outcome as the server saw it.
async fn serve_one(listener: TcpListener, config: Arc<WebConfig>) -> Result<(), String> {
    let acceptor = config.acceptor().expect("TLS configured");
    let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
    let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1024];
    let n = tls.read(&mut buf).await.map_err(|e| e.to_string())?;
    assert!(buf[..n].starts_with(b"GET / HTTP/1.1"));
    tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        .await
        .map_err(|e| e.to_string())?;
    tls.shutdown().await.map_err(|e| e.to_string())?;
    Ok(())
}

fn client_config(
    pki: &Pki,
    client_cert: Option<(&str, &str)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots);
    match client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
    }
}

/// One HTTPS request to a fresh server built from `yaml`: (client's result, server's result).
async fn exchange(
    pki: &Pki,
    yaml: &str,
    client_cert: Option<(&str, &str)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (
    Result<(String, rustls::ProtocolVersion), String>,
    Result<(), String>,
) {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path(), pki);
    let config = Arc::new(WebConfig::parse(yaml, dir.path()).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_one(listener, config));
    let connector =
        tokio_rustls::TlsConnector::from(Arc::new(client_config(pki, client_cert, versions)));
    let client = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| e.to_string())?;
        let version = tls.get_ref().1.protocol_version().unwrap();
        tls.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        tls.read_to_end(&mut answer)
            .await
            .map_err(|e| e.to_string())?;
        Ok((String::from_utf8_lossy(&answer).into_owned(), version))
    }
    .await;
    let served = server.await.unwrap();
    (client, served)
}

const SERVER_FILES: &str = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n";

#[tokio::test(flavor = "current_thread")]
async fn tls_handshake_serves_a_request() {
    let pki = pki();
    let all = rustls::ALL_VERSIONS;
    let (client, server) = exchange(&pki, SERVER_FILES, None, all).await;
    server.unwrap();
    let (answer, version) = client.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("\r\n\r\nok"),
        "{answer}"
    );
    assert_eq!(version, rustls::ProtocolVersion::TLSv1_3);

    // TLS 1.2 with the one cipher suite configured.
    let yaml = format!("{SERVER_FILES}  max_version: TLS12\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]\n");
    let (client, server) = exchange(&pki, &yaml, None, all).await;
    server.unwrap();
    assert_eq!(client.unwrap().1, rustls::ProtocolVersion::TLSv1_2);

    // min_version TLS13 refuses a TLS 1.2-only client.
    let yaml = format!("{SERVER_FILES}  min_version: TLS13\n");
    let (client, server) = exchange(&pki, &yaml, None, &[&rustls::version::TLS12]).await;
    assert!(client.is_err());
    assert!(server.unwrap_err().contains("peer is incompatible"));
}

#[tokio::test(flavor = "current_thread")]
async fn require_and_verify_client_cert() {
    let pki = pki();
    let all = rustls::ALL_VERSIONS;
    let yaml = format!(
        "{SERVER_FILES}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n"
    );
    let good = Some((pki.client_cert_pem.as_str(), pki.client_key_pem.as_str()));
    let stranger = Some((
        pki.stranger_cert_pem.as_str(),
        pki.stranger_key_pem.as_str(),
    ));
    for versions in [all, &[&rustls::version::TLS12][..]] {
        let (client, server) = exchange(&pki, &yaml, good, versions).await;
        server.unwrap();
        assert!(client.unwrap().0.ends_with("ok"));

        let (client, server) = exchange(&pki, &yaml, None, versions).await;
        assert!(client.is_err(), "no client certificate must be refused");
        assert!(server.unwrap_err().contains("peer sent no certificates"));

        let (client, server) = exchange(&pki, &yaml, stranger, versions).await;
        assert!(
            client.is_err(),
            "a certificate from another CA must be refused"
        );
        assert!(server.unwrap_err().contains("invalid peer certificate"));
    }

    // client_allowed_sans: the client certificate carries scraper.example, ops@example.org, 10.1.2.3.
    for (allowed, accepted) in [
        ("[scraper.example]", true),
        ("[ops@example.org]", true),
        ("['10.1.2.3']", true),
        ("[other.example, 10.1.2.4]", false),
    ] {
        let yaml = format!("{yaml}  client_allowed_sans: {allowed}\n");
        let (client, server) = exchange(&pki, &yaml, good, all).await;
        assert_eq!(client.is_ok(), accepted, "{allowed}: {client:?}");
        assert_eq!(server.is_ok(), accepted, "{allowed}: {server:?}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn optional_and_unverified_client_certs() {
    let pki = pki();
    let all = rustls::ALL_VERSIONS;
    let good = Some((pki.client_cert_pem.as_str(), pki.client_key_pem.as_str()));
    let stranger = Some((
        pki.stranger_cert_pem.as_str(),
        pki.stranger_key_pem.as_str(),
    ));

    // VerifyClientCertIfGiven: none is fine, a good one is fine, a bad one is refused.
    let yaml = format!(
        "{SERVER_FILES}  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.pem\n"
    );
    assert!(exchange(&pki, &yaml, None, all).await.1.is_ok());
    assert!(exchange(&pki, &yaml, good, all).await.1.is_ok());
    assert!(exchange(&pki, &yaml, stranger, all).await.1.is_err());

    // RequireAnyClientCert: any certificate, from any CA, but one is needed.
    let yaml = format!("{SERVER_FILES}  client_auth_type: RequireAnyClientCert\n");
    assert!(exchange(&pki, &yaml, stranger, all).await.1.is_ok());
    assert!(exchange(&pki, &yaml, None, all).await.1.is_err());

    // RequestClientCert: asked for, never needed nor checked.
    let yaml = format!("{SERVER_FILES}  client_auth_type: RequestClientCert\n");
    assert!(exchange(&pki, &yaml, None, all).await.1.is_ok());
    assert!(exchange(&pki, &yaml, stranger, all).await.1.is_ok());
}
