//! One remote-write request over HTTP(S) with reqwest's async client (rustls), and what its
//! answer means: sent, retry (5xx, 429, no answer; Retry-After honoured), or refused for good
//! (any other 4xx: the same body would be refused again).

use std::time::{Duration, SystemTime};

use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER,
};
use reqwest::{Client, StatusCode};

use crate::outbound::read_secret;

use super::config::RemoteWriteConfig;

/// How much of an error answer is kept for the log.
const MAX_REASON_CHARS: usize = 300;
/// Prometheus' error text for a sample older than its out-of-order window.
const TOO_OLD_SAMPLE: &str = "too old sample";
/// A Retry-After longer than this is capped (a receiver asking for a day is not obeyed).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

pub struct Sender {
    client: Client,
    /// Without credentials (it appears in logs).
    pub url: String,
    timeout: Duration,
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Try again later: 5xx, 429 or no answer (`status` None); `after` is the receiver's
    /// Retry-After.
    Retry {
        status: Option<u16>,
        reason: String,
        after: Option<Duration>,
    },
    /// A 4xx other than 429: the receiver will never take this body.
    Refused {
        status: u16,
        reason: String,
    },
}

impl Outcome {
    /// The `outcome` label of `pimetrics_remote_write_requests_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Sent => "success",
            Outcome::Retry {
                status: Some(429), ..
            } => "http_429",
            Outcome::Retry {
                status: Some(500..=599),
                ..
            } => "http_5xx",
            Outcome::Retry {
                status: Some(_), ..
            } => "http_other",
            Outcome::Retry { status: None, .. } => "error",
            Outcome::Refused {
                status: 500..=599, ..
            } => "http_5xx",
            Outcome::Refused { .. } => "http_4xx",
        }
    }
}

impl Sender {
    /// Reads the secret and CA files and builds the client; any problem is a start-up error.
    pub fn new(config: &RemoteWriteConfig) -> Result<Sender, String> {
        let url = config.url.clone().ok_or("remote_write.url: not set")?;
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
        headers.insert(
            HeaderName::from_static("x-prometheus-remote-write-version"),
            HeaderValue::from_static("0.1.0"),
        );
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("remote_write.headers: invalid header name {name:?}"))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("remote_write.headers: invalid value for {name}"))?;
            headers.insert(name, value);
        }
        let auth = if let Some(basic) = &config.basic_auth {
            let password = read_secret(
                "remote_write.basic_auth.password_file",
                &basic.password_file,
            )?;
            Some(basic_auth_value(&basic.username, &password))
        } else if let Some(file) = &config.bearer_token_file {
            Some(format!(
                "Bearer {}",
                read_secret("remote_write.bearer_token_file", file)?
            ))
        } else {
            None
        };
        if let Some(auth) = auth {
            let mut value = HeaderValue::from_str(&auth)
                .map_err(|_| "remote_write: the credentials are not valid in a header")?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let timeout = config.timeout.0;
        let client =
            crate::outbound::client("remote_write", timeout, config.ca_file.as_deref(), headers)?;
        Ok(Sender {
            client,
            url,
            timeout,
        })
    }

    /// POSTs one snappy-compressed `WriteRequest`. The whole exchange is bounded by the
    /// timeout (reqwest's bounds each read).
    pub async fn send(&self, body: Vec<u8>) -> Outcome {
        let request = self.client.post(&self.url).body(body).send();
        let response = match tokio::time::timeout(self.timeout, request).await {
            Err(_) => {
                return Outcome::Retry {
                    status: None,
                    reason: format!("no answer within {:?}", self.timeout),
                    after: None,
                }
            }
            Ok(Err(err)) => {
                return Outcome::Retry {
                    status: None,
                    reason: crate::outbound::error_chain(&err),
                    after: None,
                }
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_success() {
            return Outcome::Sent;
        }
        let after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let reason = match tokio::time::timeout(self.timeout, response.text()).await {
            Ok(Ok(text)) => one_line(&text),
            _ => String::new(),
        };
        classify(status, reason, after)
    }
}

fn classify(status: StatusCode, reason: String, after: Option<Duration>) -> Outcome {
    let code = status.as_u16();
    let described = if reason.is_empty() {
        format!("HTTP {code}")
    } else {
        format!("HTTP {code}: {reason}")
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR && reason.contains(TOO_OLD_SAMPLE) {
        // Older Prometheus (2.42 in Debian bookworm) answers a sample older than its
        // out-of-order window with a 500 (prometheus/prometheus#13334, a 400 since #13335).
        // It never gets younger:
        // retrying would block everything behind it until the age cap.
        Outcome::Refused {
            status: code,
            reason: described,
        }
    } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Outcome::Retry {
            status: Some(code),
            reason: described,
            after,
        }
    } else if status.is_client_error() {
        Outcome::Refused {
            status: code,
            reason: described,
        }
    } else {
        // 1xx/3xx: no redirects are followed; try again rather than lose the data.
        Outcome::Retry {
            status: Some(code),
            reason: described,
            after,
        }
    }
}

/// Retry-After as seconds or an HTTP date; capped.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let when = httpdate_parse(value)?;
        when.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form RFC 9110 requires senders to use.
fn httpdate_parse(text: &str) -> Option<SystemTime> {
    let mut parts = text.split_whitespace();
    let _weekday = parts.next()?;
    let day: u64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (clock.next()??, clock.next()??, clock.next()??);
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + s;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

fn basic_auth_value(username: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{username}:{password}");
    let mut out = String::from("Basic ");
    for chunk in input.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        let ok = |code| classify(StatusCode::from_u16(code).unwrap(), String::new(), None);
        assert!(matches!(ok(500), Outcome::Retry { .. }));
        assert!(matches!(ok(503), Outcome::Retry { .. }));
        assert_eq!(ok(429).label(), "http_429");
        assert_eq!(ok(502).label(), "http_5xx");
        assert_eq!(ok(308).label(), "http_other");
        assert!(matches!(ok(400), Outcome::Refused { status: 400, .. }));
        assert!(matches!(ok(404), Outcome::Refused { status: 404, .. }));
        assert!(matches!(ok(401), Outcome::Refused { .. }));
        let too_old = classify(
            StatusCode::INTERNAL_SERVER_ERROR,
            "too old sample".into(),
            None,
        );
        assert!(matches!(too_old, Outcome::Refused { status: 500, .. }));
        assert_eq!(too_old.label(), "http_5xx");
        let other = classify(StatusCode::INTERNAL_SERVER_ERROR, "disk full".into(), None);
        assert!(matches!(other, Outcome::Retry { .. }));
    }

    #[test]
    fn retry_after_in_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // 06 Nov 1994 08:49:37
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("86400", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_retry_after("Sun, 32 Nov 1994 08:49:00 GMT", now),
            None
        );
    }

    #[test]
    fn basic_auth_is_base64() {
        assert_eq!(
            basic_auth_value("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(basic_auth_value("a", "b"), "Basic YTpi");
        assert_eq!(basic_auth_value("ab", "c"), "Basic YWI6Yw==");
    }
}
