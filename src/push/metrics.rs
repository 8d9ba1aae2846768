//! The push loop's own metrics, in the agent's registry (so they are scraped and pushed too).

use prometheus::{Gauge, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Values of the `outcome` label of `pimetrics_push_total`.
pub const OUTCOMES: &[&str] = &["success", "http_4xx", "http_5xx", "http_other", "error"];

pub struct PushMetrics {
    pub pushes: IntCounterVec,
    pub duration: Gauge,
    pub last_success: Gauge,
    mode: IntGaugeVec,
}

impl PushMetrics {
    pub fn register(registry: &Registry) -> PushMetrics {
        let pushes = IntCounterVec::new(
            Opts::new(
                "pimetrics_push_total",
                "Pushes to the Pushgateway by outcome: success, http_4xx, http_5xx, http_other (any other status), error (no answer: connect, TLS, timeout).",
            ),
            &["outcome"],
        )
        .expect("static metric options are valid");
        for outcome in OUTCOMES {
            pushes.with_label_values(&[outcome]);
        }
        let duration = Gauge::new(
            "pimetrics_push_duration_seconds",
            "How long the last push took, answer or error included.",
        )
        .expect("static metric options are valid");
        let last_success = Gauge::new(
            "pimetrics_push_last_success_timestamp_seconds",
            "Unix time of the last push the gateway accepted; 0 before the first.",
        )
        .expect("static metric options are valid");
        let mode = IntGaugeVec::new(
            Opts::new(
                "pimetrics_push_mode",
                "1 for the current mode: push (pushing to the gateway) or pull (only scraped).",
            ),
            &["mode"],
        )
        .expect("static metric options are valid");
        let collectors: [Box<dyn prometheus::core::Collector>; 4] = [
            Box::new(pushes.clone()),
            Box::new(duration.clone()),
            Box::new(last_success.clone()),
            Box::new(mode.clone()),
        ];
        for collector in collectors {
            if let Err(err) = registry.register(collector) {
                log::error!("cannot register a push metric: {err}");
            }
        }
        let metrics = PushMetrics {
            pushes,
            duration,
            last_success,
            mode,
        };
        metrics.set_pushing(false);
        metrics
    }

    pub fn set_pushing(&self, pushing: bool) {
        self.mode
            .with_label_values(&["push"])
            .set(i64::from(pushing));
        self.mode
            .with_label_values(&["pull"])
            .set(i64::from(!pushing));
    }
}
