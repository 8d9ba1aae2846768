//! Push to a Prometheus Pushgateway, on a thread of its own.
//!
//! Every interval (in `fallback` mode: only while nobody scrapes `/metrics`) the loop takes a
//! scrape from the agent (the same collectors the pull endpoint uses), copies out the body and
//! releases the scrape lock before any network I/O, then PUTs the whole group. A failed push is
//! not queued: the next attempt sends fresh data, after an exponential backoff with jitter, so
//! memory stays at one body. On stop the group is deleted (if configured).

pub mod body;
pub mod config;
pub mod gateway;
pub mod metrics;
pub mod path;
pub mod schedule;

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use config::{BasicAuthConfig, PushConfig, PushMode};

use crate::agent::Agent;
use gateway::{Gateway, Outcome};
use metrics::PushMetrics;
use schedule::{retry_bounds, retry_delay, wants_push, Jitter};

/// Longest a shutdown waits for the DELETE.
const DELETE_TIMEOUT: Duration = Duration::from_secs(5);
/// Distinct 400 reasons remembered so each is logged once.
const REMEMBERED_REASONS: usize = 16;

/// The running push loop.
pub struct Pusher {
    stop: Arc<StopSignal>,
    thread: JoinHandle<()>,
}

impl Pusher {
    /// Reads the secret files, builds the client, registers the metrics and starts the
    /// thread. An error leaves nothing running.
    pub fn start(agent: Arc<Agent>, config: &PushConfig) -> Result<Pusher, String> {
        let gateway = Gateway::new(config, &agent.node)?;
        let metrics = PushMetrics::register(agent.metrics.registry());
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
        let stop = Arc::new(StopSignal::default());
        let mut push_loop = PushLoop {
            agent,
            gateway,
            metrics,
            mode: config.mode,
            interval: config.interval.0,
            fallback_after: config.fallback_after.0,
            delete_on_shutdown: config.delete_on_shutdown,
            stop: Arc::clone(&stop),
            log: FailureLog::default(),
        };
        let thread = std::thread::Builder::new()
            .name("push".into())
            .spawn(move || push_loop.run())
            .map_err(|err| format!("push: cannot start the thread: {err}"))?;
        Ok(Pusher { stop, thread })
    }

    /// Stops the loop (a push in flight finishes first, bounded by the push timeout), then the
    /// group is deleted if configured; returns when all is done.
    pub fn stop(self) {
        self.stop.stop();
        let _ = self.thread.join();
    }
}

#[derive(Default)]
struct StopSignal {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl StopSignal {
    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.wake.notify_all();
    }

    /// Sleeps for `duration` unless stopped; true when stopped.
    fn sleep(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        let mut stopped = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        while !*stopped {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            stopped = self
                .wake
                .wait_timeout(stopped, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

struct PushLoop {
    agent: Arc<Agent>,
    gateway: Gateway,
    metrics: PushMetrics,
    mode: PushMode,
    interval: Duration,
    fallback_after: Duration,
    delete_on_shutdown: bool,
    stop: Arc<StopSignal>,
    log: FailureLog,
}

impl PushLoop {
    fn run(&mut self) {
        let (retry_base, retry_cap) = retry_bounds(self.interval);
        let mut jitter = Jitter::from_clock();
        let mut pushing = false;
        let mut failures: u32 = 0;
        loop {
            let since_scrape = self.agent.since_last_scrape();
            let want = wants_push(self.mode, since_scrape, self.fallback_after);
            if want != pushing {
                self.switch_mode(want, since_scrape);
                pushing = want;
                failures = 0;
            }
            let wait = if pushing {
                if self.push_once() {
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
            if self.stop.sleep(wait) {
                break;
            }
        }
        if self.delete_on_shutdown {
            self.delete("shutdown");
        }
    }

    fn switch_mode(&mut self, push: bool, since_scrape: Duration) {
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
                self.delete("scrapes are back");
            }
        }
    }

    /// One push; true when the gateway accepted it.
    fn push_once(&mut self) -> bool {
        let mut text = String::new();
        // Copy the body out: the scrape lock is released before any network I/O.
        let malformed = self.agent.scrape(|exposition| {
            text.reserve(exposition.len());
            body::prepare(exposition, &mut text)
        });
        if malformed > 0 {
            log::debug!("push: left out {malformed} malformed sample lines");
        }
        let started = Instant::now();
        let outcome = match body::encode(text) {
            Ok((bytes, gzipped)) => self.gateway.put(bytes, gzipped),
            Err(err) => Outcome::Error(format!("cannot compress the body: {err}")),
        };
        self.metrics.duration.set(started.elapsed().as_secs_f64());
        self.metrics
            .pushes
            .with_label_values(&[outcome.label()])
            .inc();
        if outcome == Outcome::Success {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            self.metrics.last_success.set(now);
        }
        self.log.record(&outcome, &self.gateway.group_url);
        outcome == Outcome::Success
    }

    fn delete(&self, why: &str) {
        match self.gateway.delete(DELETE_TIMEOUT) {
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

    #[test]
    fn stop_interrupts_a_sleep() {
        let signal = Arc::new(StopSignal::default());
        assert!(!signal.sleep(Duration::from_millis(1)));
        let other = Arc::clone(&signal);
        let sleeper = std::thread::spawn(move || other.sleep(Duration::from_secs(3600)));
        signal.stop();
        assert!(sleeper.join().unwrap());
    }
}
