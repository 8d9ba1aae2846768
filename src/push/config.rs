//! The `push` section of the config. Checked by `validate` (keys and values only); the secret
//! and CA files are read when the agent starts, so `--check-config` works on another machine.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::{at_most, Seconds, MAX_INTERVAL, MAX_TIMEOUT};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// Pushgateway base URL (`http://gateway:9091`, may carry a path prefix). None: no push.
    pub url: Option<String>,
    /// The `job` of the grouping key.
    pub job: String,
    /// More grouping-key labels. `instance` defaults to the node name unless given here.
    pub grouping: BTreeMap<String, String>,
    /// Time between pushes.
    pub interval: Seconds,
    /// Limit for one push (connect, send, answer).
    pub timeout: Seconds,
    pub mode: PushMode,
    /// `fallback` mode: push once no scrape of `/metrics` has arrived for this long.
    pub fallback_after: Seconds,
    pub basic_auth: Option<BasicAuthConfig>,
    /// File holding a bearer token (`Authorization: Bearer`); trailing newline ignored.
    pub bearer_token_file: Option<PathBuf>,
    /// PEM file of the CA(s) that signed the gateway's certificate; when given, only these are
    /// trusted. Default: the Mozilla roots built into the binary.
    pub ca_file: Option<PathBuf>,
    /// DELETE the group on a clean shutdown, so a retired Pi leaves no stale group behind.
    pub delete_on_shutdown: bool,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            url: None,
            job: "pimetrics".to_string(),
            grouping: BTreeMap::new(),
            interval: Seconds(Duration::from_secs(15)),
            timeout: Seconds(Duration::from_secs(10)),
            mode: PushMode::Always,
            fallback_after: Seconds(Duration::from_secs(120)),
            basic_auth: None,
            bearer_token_file: None,
            ca_file: None,
            delete_on_shutdown: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushMode {
    /// Push every interval; `/metrics` stays served.
    Always,
    /// Push only while nobody scrapes `/metrics`.
    Fallback,
}

impl PushMode {
    pub fn parse(text: &str) -> Option<PushMode> {
        match text {
            "always" => Some(PushMode::Always),
            "fallback" => Some(PushMode::Fallback),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    pub username: String,
    /// File holding the password; trailing newline ignored.
    pub password_file: PathBuf,
}

impl PushConfig {
    pub fn enabled(&self) -> bool {
        self.url.is_some()
    }

    /// Checks the values; messages start with the key (`push.interval: ...`).
    pub fn validate(&self) -> Result<(), String> {
        // Checked with push off too, so a bad value shows before it is used.
        at_most("push.interval", self.interval, MAX_INTERVAL)?;
        at_most("push.timeout", self.timeout, MAX_TIMEOUT)?;
        at_most("push.fallback_after", self.fallback_after, MAX_INTERVAL)?;
        let Some(url) = &self.url else {
            return Ok(());
        };
        let parsed = crate::outbound::check_url("push.url", url)?;
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(format!("push.url: no query or fragment allowed in {url:?}"));
        }
        if self.job.is_empty() {
            return Err("push.job: must not be empty".into());
        }
        for name in self.grouping.keys() {
            if !is_label_name(name) || name.starts_with("__") {
                return Err(format!(
                    "push.grouping: invalid label name {name:?} (letters, digits, _; not starting with __)"
                ));
            }
            if name == "job" {
                return Err("push.grouping: `job` is set by push.job".into());
            }
        }
        for (key, value) in [
            ("push.interval", self.interval),
            ("push.timeout", self.timeout),
            ("push.fallback_after", self.fallback_after),
        ] {
            if value.0.is_zero() {
                return Err(format!("{key}: must be more than 0"));
            }
        }
        if let Some(auth) = &self.basic_auth {
            if auth.username.is_empty() {
                return Err("push.basic_auth: username must not be empty".into());
            }
            if self.bearer_token_file.is_some() {
                return Err(
                    "push.bearer_token_file: give either basic_auth or bearer_token_file".into(),
                );
            }
        }
        Ok(())
    }
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url() -> PushConfig {
        PushConfig {
            url: Some("http://gw:9091".into()),
            ..PushConfig::default()
        }
    }

    #[test]
    fn absent_url_is_push_off_and_valid() {
        let config = PushConfig::default();
        assert!(!config.enabled());
        assert!(config.validate().is_ok());
        assert!(with_url().validate().is_ok());
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases: Vec<(PushConfig, &str)> = vec![
            (
                PushConfig {
                    url: Some("gw:9091".into()),
                    ..PushConfig::default()
                },
                "push.url",
            ),
            (
                PushConfig {
                    url: Some("ftp://gw".into()),
                    ..PushConfig::default()
                },
                "push.url",
            ),
            (
                PushConfig {
                    url: Some("http://u:p@gw:9091".into()),
                    ..PushConfig::default()
                },
                "push.url: no credentials",
            ),
            (
                PushConfig {
                    job: String::new(),
                    ..with_url()
                },
                "push.job",
            ),
            (
                PushConfig {
                    grouping: BTreeMap::from([("bad-name".into(), "x".into())]),
                    ..with_url()
                },
                "push.grouping",
            ),
            (
                PushConfig {
                    grouping: BTreeMap::from([("job".into(), "x".into())]),
                    ..with_url()
                },
                "push.grouping",
            ),
            (
                PushConfig {
                    interval: Seconds(Duration::ZERO),
                    ..with_url()
                },
                "push.interval",
            ),
            (
                PushConfig {
                    basic_auth: Some(BasicAuthConfig {
                        username: "u".into(),
                        password_file: "/p".into(),
                    }),
                    bearer_token_file: Some("/t".into()),
                    ..with_url()
                },
                "push.bearer_token_file",
            ),
        ];
        for (config, key) in cases {
            let err = config.validate().unwrap_err();
            assert!(err.starts_with(key), "{err}");
        }
    }

    #[test]
    fn label_names() {
        assert!(is_label_name("instance"));
        assert!(is_label_name("_a1"));
        assert!(!is_label_name("1a"));
        assert!(!is_label_name(""));
        assert!(!is_label_name("a.b"));
    }
}
