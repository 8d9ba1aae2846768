//! Push to a Prometheus Pushgateway, as a task on the agent's runtime.
//!
//! Every interval (in `fallback` mode: only while nobody scrapes `/metrics`) the loop asks the
//! agent for a collection (the same collectors the pull endpoint uses), renders the body from
//! it on the collect thread, then PUTs the whole group. A failed push is not queued: the next
//! attempt sends fresh data, after an exponential backoff with jitter, so memory stays at one
//! body. On stop the group is deleted (if configured).

pub mod body;
pub mod config;
pub mod gateway;
pub mod metrics;
pub mod path;
pub mod schedule;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use config::{BasicAuthConfig, PushConfig, PushMode};

use crate::agent::{Agent, OutputTask};
use crate::selfmetrics::SelfReport;
use gateway::{Gateway, Outcome};
use metrics::PushMetrics;
use schedule::{retry_bounds, retry_delay, wants_push, Jitter};

/// Longest a shutdown waits for the DELETE.
const DELETE_TIMEOUT: Duration = Duration::from_secs(5);
/// Distinct 400 reasons remembered so each is logged once.
const REMEMBERED_REASONS: usize = 16;

/// The running push loop.
pub struct Pusher(OutputTask);

impl Pusher {
    /// Reads the secret files, builds the client and starts the loop on the current runtime.
    /// An error leaves nothing running.
    pub fn start(agent: Arc<Agent>, config: &PushConfig) -> Result<Pusher, String> {
        let gateway = Gateway::new(config, &agent.node())?;
        let metrics = Arc::new(PushMetrics::default());
        let report: Arc<dyn SelfReport> = metrics.clone();
        log::info!(
            "push: to {} every {} ({})",
            gateway.group_url,
            config.interval,
            match config.mode {
                PushMode::Always => "always".to_string(),
                PushMode::Fallback =>
                    format!("fallback: when no scrape for {}", config.fallback_after),
            }
        );
        let push_loop = PushLoop {
            agent: Arc::clone(&agent),
            gateway,
            metrics,
            mode: config.mode,
            interval: config.interval.0,
            timeout: config.timeout.0,
            fallback_after: config.fallback_after.0,
            delete_on_shutdown: config.delete_on_shutdown,
            log: FailureLog::default(),
        };
        Ok(Pusher(OutputTask::spawn(agent, report, |stopped| {
            push_loop.run(stopped)
        })))
    }

    /// Stops the loop (a push in flight finishes first, bounded by the push timeout), then the
    /// group is deleted if configured; returns when all is done.
    pub async fn stop(self) {
        self.0.stop().await;
    }
}

struct PushLoop {
    agent: Arc<Agent>,
    gateway: Gateway,
    metrics: Arc<PushMetrics>,
    mode: PushMode,
    interval: Duration,
    timeout: Duration,
    fallback_after: Duration,
    delete_on_shutdown: bool,
    log: FailureLog,
}

impl PushLoop {
    async fn run(mut self, mut stopped: tokio::sync::watch::Receiver<bool>) {
        let (retry_base, retry_cap) = retry_bounds(self.interval);
        let mut jitter = Jitter::from_clock();
        let mut pushing = false;
        let mut failures: u32 = 0;
        loop {
            let since_scrape = self.agent.since_last_scrape();
            let want = wants_push(self.mode, since_scrape, self.fallback_after);
            if want != pushing {
                self.switch_mode(want, since_scrape).await;
                pushing = want;
                failures = 0;
            }
            let wait = if pushing {
                if self.push_once().await {
                    failures = 0;
                    self.interval
                } else {
                    failures = failures.saturating_add(1);
                    retry_delay(failures, retry_base, retry_cap, jitter.unit())
                }
            } else {
                // Check again when the silence would reach fallback_after.
                self.interval
                    .min(self.fallback_after.saturating_sub(since_scrape))
                    .max(Duration::from_millis(100))
            };
            if *stopped.borrow() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped.changed() => break,
            }
        }
        if self.delete_on_shutdown {
            self.delete("shutdown").await;
        }
    }

    async fn switch_mode(&mut self, push: bool, since_scrape: Duration) {
        self.metrics.set_pushing(push);
        match (push, self.mode) {
            (true, PushMode::Fallback) => log::warn!(
                "push: no scrape for {}s: pushing to the gateway",
                since_scrape.as_secs()
            ),
            (true, PushMode::Always) => {}
            (false, _) => {
                log::info!("push: scraped again: stop pushing, delete the group");
                // A group left behind would look like a Pi that stopped pushing.
                self.delete("scrapes are back").await;
            }
        }
    }

    /// One push; true when the gateway accepted it.
    async fn push_once(&mut self) -> bool {
        let started = tokio::time::Instant::now();
        // The body is rendered on the collect thread, straight from the scrape buffer.
        let collected = self
            .agent
            .collect(None, self.timeout, |exposition| {
                let mut text = String::with_capacity(64 * 1024);
                body::prepare(exposition, &mut text);
                text
            })
            .await;
        let outcome = match collected {
            Ok(text) => match body::encode(text) {
                Ok((bytes, gzipped)) => self.gateway.put(bytes, gzipped).await,
                Err(err) => Outcome::Error(format!("cannot compress the body: {err}")),
            },
            Err(err) => Outcome::Error(format!("no metrics to push: {err}")),
        };
        self.metrics.set_duration(started.elapsed().as_secs_f64());
        self.metrics.count(outcome.label());
        if outcome == Outcome::Success {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            self.metrics.set_last_success(now);
        }
        self.log.record(&outcome, &self.gateway.group_url);
        outcome == Outcome::Success
    }

    async fn delete(&self, why: &str) {
        match self.gateway.delete(DELETE_TIMEOUT).await {
            Outcome::Success => log::info!("push: deleted {} ({why})", self.gateway.group_url),
            failed => log::warn!(
                "push: cannot delete {} ({why}): {failed}",
                self.gateway.group_url
            ),
        }
    }
}

/// Logs failures without flooding: a 400's reason once per distinct reason (the gateway says
/// what is wrong with the body, and it will not change on a retry); other failures when they
/// differ from the previous one; a recovery once.
#[derive(Default)]
struct FailureLog {
    seen_reasons: VecDeque<String>,
    last_failure: Option<String>,
    failures: u64,
}

impl FailureLog {
    /// Returns whether something was logged (for tests).
    fn record(&mut self, outcome: &Outcome, url: &str) -> bool {
        match outcome {
            Outcome::Success => {
                let recovered = self.failures > 0;
                if recovered {
                    log::info!(
                        "push: {url} accepted again after {} failures",
                        self.failures
                    );
                }
                self.failures = 0;
                self.last_failure = None;
                recovered
            }
            Outcome::Status(400, reason) => {
                self.failures += 1;
                self.last_failure = Some(outcome.to_string());
                let key = reason_key(reason);
                if self.seen_reasons.contains(&key) {
                    return false;
                }
                if self.seen_reasons.len() == REMEMBERED_REASONS {
                    self.seen_reasons.pop_front();
                }
                self.seen_reasons.push_back(key);
                log::error!("push: {url} refused the metrics (HTTP 400): {reason}");
                true
            }
            failed => {
                self.failures += 1;
                let text = failed.to_string();
                let changed = self.last_failure.as_deref() != Some(text.as_str());
                if changed {
                    log::warn!("push: {url} failed: {text} (retrying with backoff)");
                } else {
                    log::debug!("push: {url} failed again: {text}");
                }
                self.last_failure = Some(text);
                changed
            }
        }
    }
}

/// A 400 reason without its digits: the gateway quotes the offending sample, value included
/// (`gauge:<value:0.52 >`), and a new value is not a new reason.
fn reason_key(reason: &str) -> String {
    reason.chars().filter(|c| !c.is_ascii_digit()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_400_reason_is_logged_once_other_failures_on_change() {
        let mut log = FailureLog::default();
        let bad = |r: &str| Outcome::Status(400, r.to_string());
        assert!(log.record(&bad("timestamps"), "u"));
        assert!(!log.record(&bad("timestamps"), "u"));
        assert!(log.record(&bad("type clash gauge:<value:0.52 >"), "u"));
        assert!(!log.record(&bad("type clash gauge:<value:0.61 >"), "u"));
        assert!(!log.record(&bad("timestamps"), "u"));
        let down = Outcome::Error("connection refused".into());
        assert!(log.record(&down, "u"));
        assert!(!log.record(&down, "u"));
        assert!(log.record(&Outcome::Status(500, "oops".into()), "u"));
        assert!(log.record(&Outcome::Success, "u"));
        assert!(!log.record(&Outcome::Success, "u"));
        // Still remembered after a success: the body has not changed.
        assert!(!log.record(&bad("timestamps"), "u"));
    }

    #[test]
    fn remembered_reasons_are_bounded() {
        let mut log = FailureLog::default();
        for i in 0..100 {
            let reason = format!(
                "reason {}",
                char::from(b'a' + (i % 26) as u8)
                    .to_string()
                    .repeat(i / 26 + 1)
            );
            log.record(&Outcome::Status(400, reason), "u");
        }
        assert_eq!(log.seen_reasons.len(), REMEMBERED_REASONS);
    }
}
