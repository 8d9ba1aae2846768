//! The push loop's own metrics, written into every collection (so they are scraped and
//! pushed too).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::exposition::{Exposition, Kind};
use crate::selfmetrics::SelfReport;

/// Values of the `outcome` label of `pimetrics_push_total`.
pub const OUTCOMES: [&str; 5] = ["success", "http_4xx", "http_5xx", "http_other", "error"];

#[derive(Default)]
pub struct PushMetrics {
    pushes: [AtomicU64; OUTCOMES.len()],
    /// f64 bits.
    duration: AtomicU64,
    last_success: AtomicU64,
    pushing: AtomicBool,
}

impl PushMetrics {
    pub fn count(&self, outcome: &str) {
        let i = OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(4);
        self.pushes[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_duration(&self, seconds: f64) {
        self.duration.store(seconds.to_bits(), Ordering::Relaxed);
    }

    pub fn set_last_success(&self, unix_seconds: f64) {
        self.last_success
            .store(unix_seconds.to_bits(), Ordering::Relaxed);
    }

    pub fn set_pushing(&self, pushing: bool) {
        self.pushing.store(pushing, Ordering::Relaxed);
    }
}

impl SelfReport for PushMetrics {
    fn write(&self, out: &mut Exposition) {
        let pushes = out.family(
            "pimetrics_push_total",
            "Pushes to the Pushgateway by outcome: success, http_4xx, http_5xx, http_other (any other status), error (no answer: connect, TLS, timeout).",
            Kind::Counter,
            &["outcome"],
        );
        for (outcome, count) in OUTCOMES.iter().zip(&self.pushes) {
            out.sample(pushes, &[outcome], count.load(Ordering::Relaxed) as f64);
        }
        let duration = out.family(
            "pimetrics_push_duration_seconds",
            "How long the last push took, answer or error included.",
            Kind::Gauge,
            &[],
        );
        out.sample(
            duration,
            &[],
            f64::from_bits(self.duration.load(Ordering::Relaxed)),
        );
        let last = out.family(
            "pimetrics_push_last_success_timestamp_seconds",
            "Unix time of the last push the gateway accepted; 0 before the first.",
            Kind::Gauge,
            &[],
        );
        out.sample(
            last,
            &[],
            f64::from_bits(self.last_success.load(Ordering::Relaxed)),
        );
        let mode = out.family(
            "pimetrics_push_mode",
            "1 for the current mode: push (pushing to the gateway) or pull (only scraped).",
            Kind::Gauge,
            &["mode"],
        );
        let pushing = self.pushing.load(Ordering::Relaxed);
        out.sample(mode, &["push"], f64::from(u8::from(pushing)));
        out.sample(mode, &["pull"], f64::from(u8::from(!pushing)));
    }
}
