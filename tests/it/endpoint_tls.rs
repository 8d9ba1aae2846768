//! TLS and basic auth on the endpoint from node_exporter's web config file, and their reload:
//! the built binary on loopback, a real TLS client (reqwest with rustls) trusting only the
//! test's certificate.

use std::path::Path;
use std::time::Duration;

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);

/// A self-signed certificate for 127.0.0.1; returns its PEM.
fn certificate(dir: &Path) -> String {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), signing_key.serialize_pem()).unwrap();
    cert.pem()
}

/// The web config: relative file names (resolved against the file's directory) and one user.
fn web_config(dir: &Path, user: &str, password: &str) {
    let hash = bcrypt::hash(password, 4).unwrap();
    std::fs::write(
        dir.join("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n\
             basic_auth_users:\n  {user}: '{hash}'\n\
             http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
        ),
    )
    .unwrap();
}

/// GET over TLS trusting only `ca_pem`; status, one header and the body.
fn https_get(
    port: u16,
    path: &str,
    ca_pem: &str,
    credentials: Option<(&str, &str)>,
) -> Result<(u16, Option<String>, String), String> {
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .timeout(WAIT)
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut request = client.get(format!("https://127.0.0.1:{port}{path}"));
        if let Some((user, password)) = credentials {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.map_err(|err| format!("{err:?}"))?;
        let status = response.status().as_u16();
        let frame = response
            .headers()
            .get("x-frame-options")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.text().await.map_err(|err| err.to_string())?;
        Ok((status, frame, body))
    })
}

#[test]
fn tls_and_basic_auth_then_reloads_of_the_password_and_a_broken_file() {
    let dir = tempdir();
    let ca = certificate(dir.path());
    web_config(dir.path(), "prometheus", "first secret");
    let web = dir.path().join("web.yml");
    let (agent, port) = start_agent(&[&format!("--web.config.file={}", web.display())]);

    let (status, frame, body) =
        https_get(port, "/metrics", &ca, Some(("prometheus", "first secret"))).unwrap();
    assert_eq!(status, 200);
    assert_eq!(frame.as_deref(), Some("deny"));
    let exp = parse_exposition(&body);
    assert!(exp.value("node_load1", &[]).is_some());
    for credentials in [
        None,
        Some(("prometheus", "wrong")),
        Some(("nobody", "first secret")),
    ] {
        let (status, frame, _) = https_get(port, "/metrics", &ca, credentials).unwrap();
        assert_eq!(status, 401, "{credentials:?}");
        assert_eq!(frame.as_deref(), Some("deny"), "headers on a 401 too");
    }
    // Plain HTTP on a TLS port gets no metrics.
    let plain = std::panic::catch_unwind(|| http_get(port, "/metrics").status);
    assert!(plain.map_or(true, |status| status != 200));

    // SIGHUP with a new password: the old one is refused, the new one works.
    web_config(dir.path(), "prometheus", "second secret");
    unsafe { libc::kill(agent.child.id() as i32, libc::SIGHUP) };
    eventually(WAIT, || {
        let (status, _, _) =
            https_get(port, "/metrics", &ca, Some(("prometheus", "second secret"))).ok()?;
        (status == 200).then_some(())
    })
    .expect("the new password works after SIGHUP");
    let (status, _, _) =
        https_get(port, "/metrics", &ca, Some(("prometheus", "first secret"))).unwrap();
    assert_eq!(status, 401);

    // SIGHUP with a broken file: logged, the running TLS and users stay.
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: missing.pem\n  key_fil: x\n",
    )
    .unwrap();
    unsafe { libc::kill(agent.child.id() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_secs(1));
    let (status, _, _) =
        https_get(port, "/metrics", &ca, Some(("prometheus", "second secret"))).unwrap();
    assert_eq!(status, 200);
    let (status, stderr) = agent.stop_with(libc::SIGTERM, WAIT);
    assert!(status.is_some_and(|s| s.success()), "{stderr}");
    assert!(
        stderr.contains("keeping the running configuration"),
        "{stderr}"
    );
    assert!(stderr.contains("key_fil"), "{stderr}");
}

#[test]
fn a_bad_web_config_stops_the_start_with_nothing_running() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("web.yml"),
        "basic_auth_users:\n  me: not-a-hash\n",
    )
    .unwrap();
    let port = free_port();
    let (status, _, stderr) = run_bounded(
        "pimetrics",
        std::process::Command::new(agent_bin())
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--web.config.file={}",
                dir.path().join("web.yml").display()
            )),
        WAIT,
    );
    assert!(!status.success());
    assert!(stderr.contains("bcrypt"), "{stderr}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn the_example_web_config_loads_and_its_password_works() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/web.yml");
    let web = pimetrics::webconfig::WebConfig::load(&path).unwrap_or_else(|err| panic!("{err}"));
    assert!(web.tls.is_none());
    let auth = web.auth.expect("basic auth users");
    let header = format!("Basic {}", base64_encode(b"prometheus:correct horse"));
    assert!(auth.check(Some(header.as_bytes())));
    assert!(!auth.check(Some(b"Basic cHJvbWV0aGV1czp4")));
}

fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
