//! What the outputs that send (Pushgateway push, remote write) share: their HTTP client with
//! rustls and an optional own CA, secrets read from files, URL checks, error text.

use std::path::Path;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Certificate, Client};

/// A client bounded by `timeout`, never following redirects (a redirect could carry the
/// credentials elsewhere), trusting only the CAs in `ca_file` when given (else the Mozilla
/// roots built in). `key` names the config section in errors (`push`, `remote_write`).
pub fn client(
    key: &str,
    timeout: Duration,
    ca_file: Option<&Path>,
    default_headers: HeaderMap,
) -> Result<Client, String> {
    let mut builder = Client::builder()
        .use_rustls_tls()
        .default_headers(default_headers)
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("pimetrics/", env!("CARGO_PKG_VERSION")));
    if let Some(ca_file) = ca_file {
        let pem = std::fs::read(ca_file)
            .map_err(|err| format!("{key}.ca_file: cannot read {}: {err}", ca_file.display()))?;
        let certs = Certificate::from_pem_bundle(&pem)
            .map_err(|err| format!("{key}.ca_file: {} is not PEM: {err}", ca_file.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "{key}.ca_file: no certificate in {}",
                ca_file.display()
            ));
        }
        builder = builder.tls_built_in_root_certs(false);
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|err| {
        format!(
            "{key}: cannot set up the HTTP client: {}",
            error_chain(&err)
        )
    })
}

/// A secret file's content without the trailing newline editors add.
pub fn read_secret(key: &str, path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("{key}: cannot read {}: {err}", path.display()))?;
    let secret = text.trim_end_matches(['\n', '\r']).to_string();
    if secret.is_empty() {
        return Err(format!("{key}: {} is empty", path.display()));
    }
    Ok(secret)
}

/// Checks an output's URL: http or https with a host, no credentials in it (they belong in
/// the section's basic_auth, read from a file).
pub fn check_url(key: &str, url: &str) -> Result<reqwest::Url, String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|err| format!("{key}: invalid URL {url:?}: {err}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || !parsed.has_host() {
        return Err(format!(
            "{key}: want http://host:port or https://host:port, got {url:?}"
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        let section = key.split('.').next().unwrap_or(key);
        return Err(format!(
            "{key}: no credentials in the URL (use {section}.basic_auth)"
        ));
    }
    Ok(parsed)
}

/// An error with its causes on one line ("error sending request: ...: connection refused").
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_secrets_are_checked() {
        assert!(check_url("push.url", "http://gw:9091").is_ok());
        for (bad, says) in [
            ("gw:9091", "want http"),
            ("ftp://gw", "want http"),
            ("http://u:p@gw:9091", "push.basic_auth"),
            ("not a url", "invalid URL"),
        ] {
            let err = check_url("push.url", bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cret\r\n").unwrap();
        assert_eq!(read_secret("k", &file).unwrap(), "s3cret");
        std::fs::write(&file, "\n").unwrap();
        assert!(read_secret("k", &file).unwrap_err().contains("is empty"));
        let garbage = dir.path().join("ca.pem");
        std::fs::write(&garbage, "not a certificate").unwrap();
        let err = client(
            "push",
            Duration::from_secs(1),
            Some(&garbage),
            HeaderMap::new(),
        )
        .unwrap_err();
        assert!(err.contains("push.ca_file: no certificate"), "{err}");
    }
}
