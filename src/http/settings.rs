//! The `web` section of the config: the endpoint's limits, TLS and auth file, socket
//! activation.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::{at_most, Seconds, MAX_TIMEOUT};

/// The HTTP endpoint's settings. The limits bound what one client can hold: memory (header
/// size and count, no request body is ever buffered), time (header read, answer write, TLS
/// handshake), and how many connections and scrapes run at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSettings {
    /// node_exporter's web config file (exporter-toolkit YAML: `tls_server_config`,
    /// `basic_auth_users`, `http_server_config.headers`); re-read on SIGHUP. Default: none,
    /// plain HTTP without auth. Flag: `--web.config.file`.
    pub config_file: Option<PathBuf>,
    /// Take the listening socket from systemd socket activation (a `.socket` unit) instead of
    /// `listen_address`. Flag: `--web.systemd-socket`.
    pub systemd_socket: bool,
    /// Scrapes served at once; more are answered 503 at once (node_exporter's
    /// `--web.max-requests`, same default). 0: no limit.
    pub max_requests: usize,
    /// Open connections; more are accepted and closed at once (counted).
    pub max_connections: usize,
    /// Time for a client to send a whole request head, counted from the connection's start
    /// or from the end of the previous answer: it is also the keep-alive idle limit, so it is
    /// longer than a 15 s scrape interval.
    pub header_read_timeout: Seconds,
    /// Time for a client to take our whole answer.
    pub write_timeout: Seconds,
    /// Time for a TLS handshake.
    pub tls_handshake_timeout: Seconds,
    /// Longest a scrape waits for the collectors; shortened to Prometheus's own scrape
    /// timeout when it sends `X-Prometheus-Scrape-Timeout-Seconds`. Over it: 503.
    pub collect_timeout: Seconds,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            config_file: None,
            systemd_socket: false,
            max_requests: 40,
            max_connections: 128,
            header_read_timeout: Seconds(Duration::from_secs(20)),
            write_timeout: Seconds(Duration::from_secs(30)),
            tls_handshake_timeout: Seconds(Duration::from_secs(10)),
            collect_timeout: Seconds(Duration::from_secs(30)),
        }
    }
}

impl WebSettings {
    /// Checks what serde cannot: the bounds of the timeouts and limits.
    pub fn validate(&self) -> Result<(), String> {
        let timeouts = [
            ("web.header_read_timeout", self.header_read_timeout),
            ("web.write_timeout", self.write_timeout),
            ("web.tls_handshake_timeout", self.tls_handshake_timeout),
            ("web.collect_timeout", self.collect_timeout),
        ];
        for (key, value) in timeouts {
            at_most(key, value, MAX_TIMEOUT)?;
        }
        for (key, value) in timeouts {
            if value.0 < Duration::from_millis(100) {
                return Err(format!("{key}: {value} is too short (at least 100ms)"));
            }
        }
        if self.max_connections == 0 {
            return Err("web.max_connections: must be at least 1".into());
        }
        Ok(())
    }
}
