//! One Pushgateway group over HTTP(S): PUT the whole group, DELETE it. reqwest's async client
//! with rustls, on the agent's runtime; every call, answer body included, bounded as a whole
//! by the configured timeout (a gateway that drips its answer cannot hold a push longer).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::StatusCode;

use crate::outbound::{error_chain, read_secret};
use reqwest::{Client, RequestBuilder};

use super::config::PushConfig;
use super::path::grouping_path;

/// How much of an error answer is kept: enough for the gateway's reason.
const MAX_REASON_BYTES: u64 = 4096;
/// Longest reason written to the log.
const MAX_REASON_CHARS: usize = 300;

enum Auth {
    None,
    Basic { username: String, password: String },
    Bearer(String),
}

pub struct Gateway {
    client: Client,
    /// The group's URL, without credentials (it appears in logs).
    pub group_url: String,
    auth: Auth,
    timeout: Duration,
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// A 4xx or 5xx or other status, with the gateway's reason (trimmed, one line).
    Status(u16, String),
    /// No answer: connect, TLS, timeout...
    Error(String),
}

impl Outcome {
    /// The `outcome` label of `pimetrics_push_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Status(400..=499, _) => "http_4xx",
            Outcome::Status(500..=599, _) => "http_5xx",
            Outcome::Status(..) => "http_other",
            Outcome::Error(_) => "error",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Success => f.write_str("success"),
            Outcome::Status(code, reason) if reason.is_empty() => write!(f, "HTTP {code}"),
            Outcome::Status(code, reason) => write!(f, "HTTP {code}: {reason}"),
            Outcome::Error(message) => f.write_str(message),
        }
    }
}

impl Gateway {
    /// Reads the secret and CA files and builds the client; any problem is a start-up error.
    pub fn new(config: &PushConfig, node: &str) -> Result<Gateway, String> {
        let url = config
            .url
            .as_deref()
            .ok_or("push.url: not set")?
            .trim_end_matches('/');
        let mut grouping: BTreeMap<String, String> = config.grouping.clone();
        grouping
            .entry("instance".to_string())
            .or_insert_with(|| node.to_string());
        let group_url = format!("{url}{}", grouping_path(&config.job, &grouping));
        reqwest::Url::parse(&group_url)
            .map_err(|err| format!("push.url: cannot build the group URL {group_url:?}: {err}"))?;

        let auth = if let Some(basic) = &config.basic_auth {
            Auth::Basic {
                username: basic.username.clone(),
                password: read_secret("push.basic_auth.password_file", &basic.password_file)?,
            }
        } else if let Some(file) = &config.bearer_token_file {
            Auth::Bearer(read_secret("push.bearer_token_file", file)?)
        } else {
            Auth::None
        };

        let timeout = config.timeout.0;
        let client = crate::outbound::client(
            "push",
            timeout,
            config.ca_file.as_deref(),
            reqwest::header::HeaderMap::new(),
        )?;
        Ok(Gateway {
            client,
            group_url,
            auth,
            timeout,
        })
    }

    /// PUT: replaces the whole group with `body` (text format, gzip if `gzipped`).
    pub async fn put(&self, body: Vec<u8>, gzipped: bool) -> Outcome {
        let mut request = self
            .client
            .put(&self.group_url)
            .header(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")
            .body(body);
        if gzipped {
            request = request.header(CONTENT_ENCODING, "gzip");
        }
        self.send(request, self.timeout).await
    }

    /// DELETE: removes the group; waits at most `limit` (or the push timeout, if shorter).
    pub async fn delete(&self, limit: Duration) -> Outcome {
        let limit = limit.min(self.timeout);
        let request = self.client.delete(&self.group_url).timeout(limit);
        self.send(request, limit).await
    }

    async fn send(&self, request: RequestBuilder, limit: Duration) -> Outcome {
        let request = match &self.auth {
            Auth::None => request,
            Auth::Basic { username, password } => request.basic_auth(username, Some(password)),
            Auth::Bearer(token) => request.bearer_auth(token),
        };
        let exchange = async {
            match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        Outcome::Success
                    } else {
                        Outcome::Status(status.as_u16(), reason(status, response).await)
                    }
                }
                Err(err) => Outcome::Error(error_chain(&err)),
            }
        };
        match tokio::time::timeout(limit, exchange).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Error(format!("no complete answer within {limit:?}")),
        }
    }
}

/// The answer's text, bounded, on one line; the status's name when the body is empty.
async fn reason(status: StatusCode, mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = (MAX_REASON_BYTES as usize).saturating_sub(bytes.len());
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() >= MAX_REASON_BYTES as usize {
            break;
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = if text.is_empty() {
        status.canonical_reason().unwrap_or("").to_string()
    } else {
        text
    };
    match text.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_labels() {
        assert_eq!(Outcome::Success.label(), "success");
        assert_eq!(Outcome::Status(400, String::new()).label(), "http_4xx");
        assert_eq!(Outcome::Status(401, String::new()).label(), "http_4xx");
        assert_eq!(Outcome::Status(503, String::new()).label(), "http_5xx");
        assert_eq!(Outcome::Status(302, String::new()).label(), "http_other");
        assert_eq!(Outcome::Error("x".into()).label(), "error");
    }

    #[test]
    fn group_url_has_instance_from_node_unless_given() {
        let mut config = PushConfig {
            url: Some("http://gw:9091/".into()),
            ..PushConfig::default()
        };
        let gateway = Gateway::new(&config, "pi-1").unwrap();
        assert_eq!(
            gateway.group_url,
            "http://gw:9091/metrics/job/pimetrics/instance/pi-1"
        );
        config.grouping.insert("instance".into(), "kitchen".into());
        config.grouping.insert("site".into(), "a/b".into());
        let gateway = Gateway::new(&config, "pi-1").unwrap();
        assert_eq!(
            gateway.group_url,
            "http://gw:9091/metrics/job/pimetrics/instance/kitchen/site@base64/YS9i"
        );
    }

    #[test]
    fn unreadable_or_bad_files_are_start_up_errors() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate").unwrap();
        let base = PushConfig {
            url: Some("https://gw:9091".into()),
            ..PushConfig::default()
        };
        let cases = [
            (
                PushConfig {
                    bearer_token_file: Some(dir.path().join("missing")),
                    ..base.clone()
                },
                "push.bearer_token_file: cannot read",
            ),
            (
                PushConfig {
                    basic_auth: Some(super::super::config::BasicAuthConfig {
                        username: "u".into(),
                        password_file: empty.clone(),
                    }),
                    ..base.clone()
                },
                "is empty",
            ),
            (
                PushConfig {
                    ca_file: Some(dir.path().to_path_buf()),
                    ..base.clone()
                },
                "push.ca_file: cannot read",
            ),
            (
                PushConfig {
                    ca_file: Some(garbage),
                    ..base.clone()
                },
                "push.ca_file: no certificate",
            ),
        ];
        for (config, expected) in cases {
            let err = Gateway::new(&config, "pi").err().unwrap();
            assert!(err.contains(expected), "{err}");
        }
    }
}
