//! The writer's own metrics. The writer updates atomics; a scrape writes them into the
//! agent's `Exposition` (`RemoteWriteFamilies::register` once at build time, then `write`).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use crate::exposition::{Exposition, FamilyId, Kind};

/// Request outcomes, the `outcome` label of `pimetrics_remote_write_requests_total`.
pub const OUTCOMES: [&str; 6] = [
    "success",
    "http_4xx",
    "http_429",
    "http_5xx",
    "http_other",
    "error",
];

#[derive(Debug)]
pub struct RemoteWriteStats {
    pub samples_sent: AtomicU64,
    /// Refused for good by the receiver (4xx other than 429): lost.
    pub samples_failed: AtomicU64,
    /// In requests that will be tried again (5xx, 429, no answer).
    pub samples_retried: AtomicU64,
    pub dropped_full: AtomicU64,
    pub dropped_too_old: AtomicU64,
    /// Records lost to a torn or corrupt segment.
    pub torn_records: AtomicU64,
    pub requests: [AtomicU64; 6],
    pub buffered_bytes: AtomicU64,
    pub buffered_samples: AtomicU64,
    /// Milliseconds; `i64::MIN` when the buffer is empty.
    pub oldest_buffered_ms: AtomicI64,
    /// Milliseconds; 0 before the first success.
    pub last_success_ms: AtomicI64,
}

impl Default for RemoteWriteStats {
    fn default() -> Self {
        RemoteWriteStats {
            samples_sent: AtomicU64::new(0),
            samples_failed: AtomicU64::new(0),
            samples_retried: AtomicU64::new(0),
            dropped_full: AtomicU64::new(0),
            dropped_too_old: AtomicU64::new(0),
            torn_records: AtomicU64::new(0),
            requests: Default::default(),
            buffered_bytes: AtomicU64::new(0),
            buffered_samples: AtomicU64::new(0),
            oldest_buffered_ms: AtomicI64::new(i64::MIN),
            last_success_ms: AtomicI64::new(0),
        }
    }
}

impl RemoteWriteStats {
    pub fn count_request(&self, outcome: &str) {
        if let Some(i) = OUTCOMES.iter().position(|o| *o == outcome) {
            self.requests[i].fetch_add(1, Relaxed);
        }
    }
}

pub struct RemoteWriteFamilies {
    samples: FamilyId,
    dropped: FamilyId,
    torn: FamilyId,
    requests: FamilyId,
    buffered_bytes: FamilyId,
    buffered_samples: FamilyId,
    oldest_age: FamilyId,
    last_success: FamilyId,
}

impl RemoteWriteFamilies {
    pub fn register(out: &mut Exposition) -> RemoteWriteFamilies {
        RemoteWriteFamilies {
            samples: out.family(
                "pimetrics_remote_write_samples_total",
                "Samples by what became of them: sent, failed (refused for good by the receiver, lost), retried (in a request that is tried again).",
                Kind::Counter,
                &["result"],
            ),
            dropped: out.family(
                "pimetrics_remote_write_samples_dropped_total",
                "Samples the buffer dropped unsent: full (the oldest go first) or too_old (older than buffer_max_age).",
                Kind::Counter,
                &["reason"],
            ),
            torn: out.family(
                "pimetrics_remote_write_buffer_torn_records_total",
                "Records of the disk buffer lost to a torn write (power cut) or corruption; each may have cut off the rest of its segment.",
                Kind::Counter,
                &[],
            ),
            requests: out.family(
                "pimetrics_remote_write_requests_total",
                "Remote write requests by outcome: success, http_4xx (refused for good), http_429, http_5xx, http_other (1xx/3xx, retried), error (no answer: connect, TLS, timeout).",
                Kind::Counter,
                &["outcome"],
            ),
            buffered_bytes: out.family(
                "pimetrics_remote_write_buffered_bytes",
                "Bytes in the buffer (compressed requests, framing included on disk).",
                Kind::Gauge,
                &[],
            ),
            buffered_samples: out.family(
                "pimetrics_remote_write_buffered_samples",
                "Samples in the buffer, not yet accepted by the receiver.",
                Kind::Gauge,
                &[],
            ),
            oldest_age: out.family(
                "pimetrics_remote_write_oldest_buffered_age_seconds",
                "Age of the oldest buffered sample; 0 when the buffer is empty.",
                Kind::Gauge,
                &[],
            ),
            last_success: out.family(
                "pimetrics_remote_write_last_success_timestamp_seconds",
                "When the receiver last accepted a request (Unix time); 0: never since the start.",
                Kind::Gauge,
                &[],
            ),
        }
    }

    /// Writes the current values; `now_ms` is the scrape's wall-clock time.
    pub fn write(&self, stats: &RemoteWriteStats, now_ms: i64, out: &mut Exposition) {
        let get = |a: &AtomicU64| a.load(Relaxed) as f64;
        out.sample(self.samples, &["sent"], get(&stats.samples_sent));
        out.sample(self.samples, &["failed"], get(&stats.samples_failed));
        out.sample(self.samples, &["retried"], get(&stats.samples_retried));
        out.sample(self.dropped, &["full"], get(&stats.dropped_full));
        out.sample(self.dropped, &["too_old"], get(&stats.dropped_too_old));
        out.sample(self.torn, &[], get(&stats.torn_records));
        for (outcome, count) in OUTCOMES.iter().zip(&stats.requests) {
            out.sample(self.requests, &[outcome], get(count));
        }
        out.sample(self.buffered_bytes, &[], get(&stats.buffered_bytes));
        out.sample(self.buffered_samples, &[], get(&stats.buffered_samples));
        let oldest = stats.oldest_buffered_ms.load(Relaxed);
        let age = if oldest == i64::MIN {
            0.0
        } else {
            (now_ms.saturating_sub(oldest)).max(0) as f64 / 1000.0
        };
        out.sample(self.oldest_age, &[], age);
        let last = stats.last_success_ms.load(Relaxed);
        out.sample(self.last_success, &[], last as f64 / 1000.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family() {
        let stats = RemoteWriteStats::default();
        stats.samples_sent.fetch_add(7, Relaxed);
        stats.dropped_full.fetch_add(3, Relaxed);
        stats.count_request("http_429");
        stats.oldest_buffered_ms.store(10_000, Relaxed);
        stats.last_success_ms.store(12_500, Relaxed);
        let mut out = Exposition::new("pi");
        let families = RemoteWriteFamilies::register(&mut out);
        families.write(&stats, 15_000, &mut out);
        let mut text = String::new();
        out.render(&mut text);
        for line in [
            "pimetrics_remote_write_samples_total{node=\"pi\",result=\"sent\"} 7\n",
            "pimetrics_remote_write_samples_dropped_total{node=\"pi\",reason=\"full\"} 3\n",
            "pimetrics_remote_write_requests_total{node=\"pi\",outcome=\"http_429\"} 1\n",
            "pimetrics_remote_write_oldest_buffered_age_seconds{node=\"pi\"} 5\n",
            "pimetrics_remote_write_last_success_timestamp_seconds{node=\"pi\"} 12.5\n",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
