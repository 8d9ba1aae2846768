//! The `remote_write` section of the config. `validate` checks keys and values only; secret and
//! CA files are read when the writer starts, so `--check-config` works on another machine.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::{at_most, Seconds, MAX_INTERVAL, MAX_TIMEOUT};
use crate::push::BasicAuthConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteWriteConfig {
    /// The receiver's write URL (`http://prometheus:9090/api/v1/write`,
    /// `https://mimir/api/v1/push`). None: no remote write.
    pub url: Option<String>,
    /// Time between two collections (independent of scrapes of `/metrics`).
    pub interval: Seconds,
    /// Limit for one request (connect, send, answer).
    pub timeout: Seconds,
    pub basic_auth: Option<BasicAuthConfig>,
    /// File holding a bearer token (`Authorization: Bearer`); trailing newline ignored.
    pub bearer_token_file: Option<PathBuf>,
    /// PEM file of the CA(s) that signed the receiver's certificate; when given, only these
    /// are trusted. Default: the Mozilla roots built into the binary.
    pub ca_file: Option<PathBuf>,
    /// Extra request headers, e.g. `{"X-Scope-OrgID": "pis"}` for a Mimir tenant.
    pub headers: BTreeMap<String, String>,
    /// Directory of the on-disk buffer (survives restarts and power cuts). None: in memory.
    pub buffer_dir: Option<PathBuf>,
    /// Most bytes the buffer holds (compressed requests); the oldest go first when full.
    pub buffer_max_bytes: u64,
    /// Samples older than this are dropped unsent (the receiver must accept samples this
    /// old: Prometheus needs `out_of_order_time_window` at least this long).
    pub buffer_max_age: Seconds,
    /// Disk buffer: unsent collections are written to disk at most this often, in one write,
    /// so an SD card is not written every interval. "0s": at every collection. A crash or
    /// power cut loses at most this much; a clean shutdown writes everything.
    pub flush_interval: Seconds,
    /// Most requests per second while a backlog is sent (oldest first).
    pub backlog_requests_per_second: u32,
}

pub const DEFAULT_BUFFER_MAX_BYTES: u64 = 8 << 20;

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        RemoteWriteConfig {
            url: None,
            interval: Seconds(Duration::from_secs(15)),
            timeout: Seconds(Duration::from_secs(10)),
            basic_auth: None,
            bearer_token_file: None,
            ca_file: None,
            headers: BTreeMap::new(),
            buffer_dir: None,
            buffer_max_bytes: DEFAULT_BUFFER_MAX_BYTES,
            buffer_max_age: Seconds(Duration::from_secs(12 * 3600)),
            flush_interval: Seconds(Duration::from_secs(60)),
            backlog_requests_per_second: 10,
        }
    }
}

/// Headers the writer sets itself; a configured header must not replace them.
const OWN_HEADERS: &[&str] = &[
    "content-type",
    "content-encoding",
    "content-length",
    "x-prometheus-remote-write-version",
    "authorization",
    "host",
    "user-agent",
];

impl RemoteWriteConfig {
    pub fn enabled(&self) -> bool {
        self.url.is_some()
    }

    /// Checks the values; messages start with the key (`remote_write.interval: ...`).
    pub fn validate(&self) -> Result<(), String> {
        let Some(url) = &self.url else {
            return Ok(());
        };
        crate::outbound::check_url("remote_write.url", url)?;
        for (key, value) in [
            ("remote_write.interval", self.interval),
            ("remote_write.timeout", self.timeout),
            ("remote_write.buffer_max_age", self.buffer_max_age),
        ] {
            if value.0.is_zero() {
                return Err(format!("{key}: must be more than 0"));
            }
        }
        at_most("remote_write.interval", self.interval, MAX_INTERVAL)?;
        at_most(
            "remote_write.flush_interval",
            self.flush_interval,
            MAX_INTERVAL,
        )?;
        at_most("remote_write.timeout", self.timeout, MAX_TIMEOUT)?;
        if self.buffer_max_bytes < 64 * 1024 {
            return Err("remote_write.buffer_max_bytes: at least 65536".into());
        }
        if self.backlog_requests_per_second == 0 {
            return Err("remote_write.backlog_requests_per_second: must be more than 0".into());
        }
        if let Some(auth) = &self.basic_auth {
            if auth.username.is_empty() {
                return Err("remote_write.basic_auth: username must not be empty".into());
            }
            if self.bearer_token_file.is_some() {
                return Err(
                    "remote_write.bearer_token_file: give either basic_auth or bearer_token_file"
                        .into(),
                );
            }
        }
        for (name, value) in &self.headers {
            reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("remote_write.headers: invalid header name {name:?}"))?;
            reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                format!("remote_write.headers: invalid value for {name:?} (visible ASCII only)")
            })?;
            if OWN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(format!(
                    "remote_write.headers: {name:?} is set by the writer (auth: basic_auth, bearer_token_file)"
                ));
            }
        }
        Ok(())
    }
}

/// A byte count: `1048576`, `512KiB`, `64MiB`, `1GiB`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number: u64 = text[..digits]
        .parse()
        .map_err(|_| format!("invalid size {text:?} (examples: 1048576, 512KiB, 64MiB)"))?;
    let unit = match &text[digits..] {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(format!("invalid size {text:?} (units: KiB, MiB, GiB)")),
    };
    number
        .checked_mul(unit)
        .ok_or_else(|| format!("size {text:?} too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url() -> RemoteWriteConfig {
        RemoteWriteConfig {
            url: Some("http://prometheus:9090/api/v1/write".into()),
            ..RemoteWriteConfig::default()
        }
    }

    #[test]
    fn absent_url_is_off_and_valid() {
        assert!(!RemoteWriteConfig::default().enabled());
        assert!(RemoteWriteConfig::default().validate().is_ok());
        assert!(with_url().validate().is_ok());
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases: Vec<(RemoteWriteConfig, &str)> = vec![
            (
                RemoteWriteConfig {
                    url: Some("prometheus:9090".into()),
                    ..with_url()
                },
                "remote_write.url",
            ),
            (
                RemoteWriteConfig {
                    url: Some("http://u:p@h/api/v1/write".into()),
                    ..with_url()
                },
                "remote_write.url: no credentials",
            ),
            (
                RemoteWriteConfig {
                    interval: Seconds(Duration::ZERO),
                    ..with_url()
                },
                "remote_write.interval",
            ),
            (
                RemoteWriteConfig {
                    timeout: Seconds(Duration::from_secs(3600)),
                    ..with_url()
                },
                "remote_write.timeout",
            ),
            (
                RemoteWriteConfig {
                    buffer_max_bytes: 10,
                    ..with_url()
                },
                "remote_write.buffer_max_bytes",
            ),
            (
                RemoteWriteConfig {
                    headers: BTreeMap::from([("Content-Type".into(), "x".into())]),
                    ..with_url()
                },
                "remote_write.headers",
            ),
            (
                RemoteWriteConfig {
                    headers: BTreeMap::from([("bad header".into(), "x".into())]),
                    ..with_url()
                },
                "remote_write.headers",
            ),
            (
                RemoteWriteConfig {
                    basic_auth: Some(BasicAuthConfig {
                        username: "u".into(),
                        password_file: "/p".into(),
                    }),
                    bearer_token_file: Some("/t".into()),
                    ..with_url()
                },
                "remote_write.bearer_token_file",
            ),
        ];
        for (config, key) in cases {
            let err = config.validate().unwrap_err();
            assert!(err.starts_with(key), "{err}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("512KiB"), Ok(512 << 10));
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert!(parse_bytes("64MB").is_err());
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("99999999999GiB").is_err());
    }
}
