//! Prometheus remote write 1.0 with a bounded buffer (docs/remote-write.md).
//!
//! One async task (`RemoteWriter::run`; `RemoteWrite::start` spawns it on the agent's runtime):
//! every `interval` it collects (from the agent's collect thread, or any `SampleSource`) into
//! one record (series.rs) and puts it in the buffer (buffer.rs: memory, or segments on disk written in batches); meanwhile it
//! sends the oldest record, one request at a time, so samples of a series arrive in time
//! order. 5xx, 429 and no answer are retried with backoff (Retry-After honoured), other 4xx
//! are dropped and counted; a backlog goes out at most `backlog_requests_per_second`. On stop:
//! staleness markers for every series, a last attempt to send bounded by the timeout, and the
//! rest written to disk.

pub mod buffer;
pub mod client;
pub mod config;
pub mod metrics;
pub mod proto;
pub mod series;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::{sleep_until, Instant};

pub use buffer::{Buffer, Record};
pub use client::{Outcome, Sender};
pub use config::RemoteWriteConfig;
pub use metrics::{RemoteWriteFamilies, RemoteWriteStats};
pub use series::{Batcher, ExpositionSource, SampleSink, SampleSource};

use crate::agent::{Agent, OutputTask};
use crate::selfmetrics::SelfReport;

/// First retry delay; doubles per failure up to `MAX_BACKOFF`.
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(15);

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

type Sending = Pin<Box<dyn Future<Output = Outcome> + Send>>;
/// A collection under way; None when it gave nothing (no samples, or the agent did not answer).
pub type Collecting = Pin<Box<dyn Future<Output = Option<Record>> + Send>>;

/// Where collections come from.
pub trait Input: Send {
    /// Starts one collection at `timestamp_ms`, turned into a record by `batcher`.
    fn collect(&mut self, batcher: &Arc<Mutex<Batcher>>, timestamp_ms: i64) -> Collecting;
}

fn lock(batcher: &Mutex<Batcher>) -> std::sync::MutexGuard<'_, Batcher> {
    batcher.lock().unwrap_or_else(|p| p.into_inner())
}

/// A `SampleSource` collected right away on the writer's task (tests, simple sources).
struct Immediate<S>(S);

impl<S: SampleSource + Send> Input for Immediate<S> {
    fn collect(&mut self, batcher: &Arc<Mutex<Batcher>>, timestamp_ms: i64) -> Collecting {
        let record = lock(batcher).collect(&mut self.0, timestamp_ms);
        Box::pin(std::future::ready(record))
    }
}

/// The agent: the collection runs on its collect thread, and the record is made there from
/// the scrape buffer (no copy of the samples), within a time limit.
pub struct AgentInput {
    pub agent: Arc<Agent>,
    pub limit: Duration,
}

impl Input for AgentInput {
    fn collect(&mut self, batcher: &Arc<Mutex<Batcher>>, timestamp_ms: i64) -> Collecting {
        let agent = Arc::clone(&self.agent);
        let batcher = Arc::clone(batcher);
        let limit = self.limit;
        Box::pin(async move {
            let made = agent
                .collect(None, limit, move |exposition| {
                    lock(&batcher).collect(&mut ExpositionSource(exposition), timestamp_ms)
                })
                .await;
            match made {
                Ok(record) => record,
                Err(err) => {
                    log::warn!("remote write: no collection: {err}");
                    None
                }
            }
        })
    }
}

/// A request in flight: which record, how many samples, the request itself.
struct InFlight {
    id: u64,
    samples: u32,
    request: Sending,
}

pub struct RemoteWriter {
    input: Box<dyn Input>,
    batcher: Arc<Mutex<Batcher>>,
    buffer: Buffer,
    sender: Arc<Sender>,
    stats: Arc<RemoteWriteStats>,
    interval: Duration,
    flush_interval: Duration,
    timeout: Duration,
    backlog_gap: Duration,
    on_disk: bool,
    /// The last disk write error, logged once.
    flush_error: Option<String>,
}

impl RemoteWriter {
    /// A writer collecting from `source` on its own task. See `with_input`.
    pub fn new(
        config: &RemoteWriteConfig,
        source: impl SampleSource + Send + 'static,
    ) -> Result<RemoteWriter, String> {
        RemoteWriter::with_input(config, Box::new(Immediate(source)))
    }

    /// Reads secrets and CA, builds the client, opens (and reads back) the disk buffer.
    /// An error leaves nothing behind. `config` must be validated and enabled.
    pub fn with_input(
        config: &RemoteWriteConfig,
        input: Box<dyn Input>,
    ) -> Result<RemoteWriter, String> {
        let sender = Sender::new(config)?;
        let max_age_ms = i64::try_from(config.buffer_max_age.0.as_millis()).unwrap_or(i64::MAX);
        let stats = Arc::new(RemoteWriteStats::default());
        let buffer = match &config.buffer_dir {
            Some(dir) => {
                let (buffer, recovered) = Buffer::on_disk(dir, config.buffer_max_bytes, max_age_ms)
                    .map_err(|err| {
                        format!(
                            "remote_write.buffer_dir: cannot use {}: {err}",
                            dir.display()
                        )
                    })?;
                if recovered.records > 0 || recovered.torn_bytes > 0 {
                    log::info!(
                        "remote write: {} holds {} samples in {} records from before the start{}",
                        dir.display(),
                        recovered.samples,
                        recovered.records,
                        if recovered.torn_bytes > 0 {
                            format!(
                                "; {} bytes of {} torn segments dropped",
                                recovered.torn_bytes, recovered.torn_segments
                            )
                        } else {
                            String::new()
                        }
                    );
                }
                buffer
            }
            None => Buffer::in_memory(config.buffer_max_bytes, max_age_ms),
        };
        let writer = RemoteWriter {
            input,
            batcher: Arc::new(Mutex::new(Batcher::new())),
            buffer,
            sender: Arc::new(sender),
            stats,
            interval: config.interval.0,
            flush_interval: config.flush_interval.0,
            timeout: config.timeout.0,
            backlog_gap: Duration::from_secs(1) / config.backlog_requests_per_second.max(1),
            on_disk: config.buffer_dir.is_some(),
            flush_error: None,
        };
        writer.publish();
        Ok(writer)
    }

    /// The writer's metrics, for the scrape (`RemoteWriteFamilies::write`).
    pub fn stats(&self) -> Arc<RemoteWriteStats> {
        Arc::clone(&self.stats)
    }

    /// Runs until `stop` completes, then marks every series stale, tries once more to send
    /// (bounded by the timeout) and writes what is left to disk.
    pub async fn run(mut self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        log::info!(
            "remote write: to {} every {:?}, buffer {}",
            self.sender.url,
            self.interval,
            if self.on_disk { "on disk" } else { "in memory" }
        );
        let start = Instant::now();
        let mut next_collect = start;
        let mut next_flush = start + self.flush_interval;
        let mut next_send = start;
        let mut failures: u32 = 0;
        let mut in_flight: Option<InFlight> = None;
        let mut collecting: Option<Collecting> = None;
        let mut last_failure: Option<String> = None;
        loop {
            if in_flight.is_none() && Instant::now() >= next_send {
                in_flight = self.start_send();
            }
            let idle = in_flight.is_none() && !self.buffer.is_empty();
            tokio::select! {
                biased;
                () = &mut stop => break,
                outcome = async { in_flight.as_mut().expect("guarded").request.as_mut().await },
                    if in_flight.is_some() =>
                {
                    let Some(sent) = in_flight.take() else { continue };
                    let wait = self.finish_send(sent.id, sent.samples, outcome, &mut failures, &mut last_failure);
                    next_send = Instant::now() + wait.max(self.backlog_gap);
                }
                record = async { collecting.as_mut().expect("guarded").as_mut().await },
                    if collecting.is_some() =>
                {
                    collecting = None;
                    self.store(record);
                }
                () = sleep_until(next_collect) => {
                    if collecting.is_none() {
                        collecting = Some(self.input.collect(&self.batcher, now_ms()));
                    } else {
                        log::debug!("remote write: the previous collection is still running; skipped");
                    }
                    next_collect += self.interval;
                    let now = Instant::now();
                    if next_collect < now {
                        // Slept through (suspend, slow collection): no burst of catch-up rounds.
                        next_collect = now + self.interval;
                    }
                }
                () = sleep_until(next_flush), if self.on_disk && !self.flush_interval.is_zero() => {
                    self.flush();
                    next_flush += self.flush_interval;
                    next_flush = next_flush.max(Instant::now());
                }
                () = sleep_until(next_send), if idle => {}
            }
        }
        // A request in flight finishes (bounded): cancelled, it might have arrived anyway
        // and would be sent again.
        if let Some(mut sending) = in_flight.take() {
            if let Ok(outcome) = tokio::time::timeout(self.timeout, sending.request.as_mut()).await
            {
                self.finish_send(
                    sending.id,
                    sending.samples,
                    outcome,
                    &mut failures,
                    &mut last_failure,
                );
            }
        }
        self.shutdown().await;
    }

    /// Puts a finished collection in the buffer (and on disk, with `flush_interval: 0s`).
    fn store(&mut self, record: Option<Record>) {
        if let Some(record) = record {
            self.buffer.push(record);
        }
        let duplicates = lock(&self.batcher).duplicates;
        if duplicates > 0 {
            log::debug!("remote write: {duplicates} repeated series left out of a collection");
        }
        self.buffer.expire(now_ms());
        if self.on_disk && self.flush_interval.is_zero() {
            self.flush();
        }
        self.publish();
    }

    /// Writes the unsent records to disk; a failure is logged when it is new, and the
    /// recovery once (a full card fails every flush).
    fn flush(&mut self) {
        match self.buffer.flush() {
            Ok(()) => {
                if self.flush_error.take().is_some() {
                    log::info!("remote write: the buffer is written to disk again");
                }
            }
            Err(err) => {
                let text = err.to_string();
                if self.flush_error.as_deref() != Some(text.as_str()) {
                    log::warn!(
                        "remote write: cannot write the buffer to disk: {text} ({} records kept in memory)",
                        self.buffer.unflushed()
                    );
                    self.flush_error = Some(text);
                }
            }
        }
    }

    fn start_send(&mut self) -> Option<InFlight> {
        let taken = self.buffer.oldest()?;
        self.publish();
        let sender = Arc::clone(&self.sender);
        Some(InFlight {
            id: taken.id,
            samples: taken.record.samples,
            request: Box::pin(async move { sender.send(taken.record.data).await }),
        })
    }

    /// Books the outcome of a request; returns how long to wait before the next one.
    fn finish_send(
        &mut self,
        id: u64,
        samples: u32,
        outcome: Outcome,
        failures: &mut u32,
        last_failure: &mut Option<String>,
    ) -> Duration {
        self.stats.count_request(outcome.label());
        let samples = u64::from(samples);
        let wait = match &outcome {
            Outcome::Sent => {
                if *failures > 0 {
                    log::info!(
                        "remote write: {} accepts again after {failures} failed attempts",
                        self.sender.url
                    );
                }
                *failures = 0;
                *last_failure = None;
                self.buffer.remove(id);
                self.stats.samples_sent.fetch_add(samples, Relaxed);
                self.stats.last_success_ms.store(now_ms(), Relaxed);
                Duration::ZERO
            }
            Outcome::Refused { reason, .. } => {
                // Sending it again would be refused again: drop it and go on.
                log::error!(
                    "remote write: {} refused {samples} samples, dropped: {reason}",
                    self.sender.url
                );
                self.buffer.remove(id);
                self.stats.samples_failed.fetch_add(samples, Relaxed);
                Duration::ZERO
            }
            Outcome::Retry { reason, after, .. } => {
                *failures = failures.saturating_add(1);
                self.stats.samples_retried.fetch_add(samples, Relaxed);
                if last_failure.as_deref() != Some(reason.as_str()) {
                    log::warn!(
                        "remote write: {} failed: {reason} ({} samples buffered; retrying)",
                        self.sender.url,
                        self.buffer.samples()
                    );
                    *last_failure = Some(reason.clone());
                }
                after.unwrap_or_else(|| backoff(*failures, jitter_unit()))
            }
        };
        self.publish();
        wait
    }

    async fn shutdown(mut self) {
        let now = now_ms();
        let stale = lock(&self.batcher).stale_all(now);
        if let Some(record) = stale {
            self.buffer.push(record);
        }
        // One last chance for the newest data and the staleness markers, bounded.
        let deadline = Instant::now() + self.timeout;
        while let Some(taken) = self.buffer.oldest() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let samples = u64::from(taken.record.samples);
            let sent = tokio::time::timeout(remaining, self.sender.send(taken.record.data)).await;
            match sent {
                Ok(Outcome::Sent) => {
                    self.buffer.remove(taken.id);
                    self.stats.samples_sent.fetch_add(samples, Relaxed);
                }
                Ok(Outcome::Refused { .. }) => {
                    self.buffer.remove(taken.id);
                    self.stats.samples_failed.fetch_add(samples, Relaxed);
                }
                _ => break,
            }
        }
        if self.on_disk {
            self.flush();
            if !self.buffer.is_empty() {
                log::info!(
                    "remote write: {} samples stay in the disk buffer for the next start",
                    self.buffer.samples()
                );
            }
        } else if !self.buffer.is_empty() {
            log::warn!(
                "remote write: {} unsent samples lost (buffer in memory; set remote_write.buffer_dir to keep them)",
                self.buffer.samples()
            );
        }
        self.publish();
    }

    /// Copies the buffer's state into the metrics.
    fn publish(&self) {
        let stats = &self.stats;
        let dropped = &self.buffer.dropped;
        stats.dropped_full.store(dropped.full_samples, Relaxed);
        stats
            .dropped_too_old
            .store(dropped.too_old_samples, Relaxed);
        stats.torn_records.store(dropped.torn_records, Relaxed);
        stats.buffered_bytes.store(self.buffer.bytes(), Relaxed);
        stats.buffered_samples.store(self.buffer.samples(), Relaxed);
        stats.oldest_buffered_ms.store(
            self.buffer.oldest_timestamp_ms().unwrap_or(i64::MIN),
            Relaxed,
        );
    }
}

/// The running writer on the agent's runtime, its metrics among the agent's own.
pub struct RemoteWrite(OutputTask);

impl RemoteWrite {
    /// Reads the secret and CA files, opens the buffer and spawns the writer on the current
    /// runtime. An error leaves nothing running.
    pub fn start(agent: Arc<Agent>, config: &RemoteWriteConfig) -> Result<RemoteWrite, String> {
        let input = AgentInput {
            agent: Arc::clone(&agent),
            // A collection that takes longer than the interval is of no use.
            limit: config.interval.0,
        };
        let writer = RemoteWriter::with_input(config, Box::new(input))?;
        let report: Arc<dyn SelfReport> = writer.stats();
        Ok(RemoteWrite(OutputTask::spawn(
            agent,
            report,
            |mut stopped| {
                writer.run(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
            },
        )))
    }

    /// Stops the writer: staleness markers, a last send bounded by the timeout, the rest to
    /// disk; returns when all is done.
    pub async fn stop(self) {
        self.0.stop().await;
    }
}

impl SelfReport for RemoteWriteStats {
    fn write(&self, out: &mut crate::exposition::Exposition) {
        RemoteWriteFamilies::register(out).write(self, now_ms(), out);
    }
}

/// Exponential backoff with jitter: 0.5 s, 1 s, 2 s... up to 15 s, each scaled by 0.5-1.
pub fn backoff(failures: u32, jitter: f64) -> Duration {
    let exp = MIN_BACKOFF.saturating_mul(1 << failures.saturating_sub(1).min(10));
    exp.min(MAX_BACKOFF)
        .mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
}

/// A value in [0, 1) from the clock's nanoseconds: enough to spread Pis that lost the same
/// link at the same moment.
fn jitter_unit() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;

    impl SampleSource for Nothing {
        fn collect(&mut self, _: i64, _: &mut SampleSink<'_>) {}
    }

    /// `run` can be given to `tokio::spawn` (a Send + 'static future).
    #[test]
    fn the_writer_can_be_spawned() {
        fn spawnable<F: Future<Output = ()> + Send + 'static>(_: F) {}
        let config = RemoteWriteConfig {
            url: Some("http://127.0.0.1:9/api/v1/write".into()),
            ..RemoteWriteConfig::default()
        };
        let writer = RemoteWriter::new(&config, Nothing).unwrap();
        spawnable(writer.run(std::future::pending()));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(2, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(3, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(40, 1.0), MAX_BACKOFF);
    }
}
