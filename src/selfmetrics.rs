//! The agent's own metrics: build info, HTTP requests, process_* (prometheus crate registry).

use std::collections::HashMap;

use prometheus::{IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

pub struct AgentMetrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
}

impl AgentMetrics {
    pub fn new(node: &str) -> AgentMetrics {
        let labels = HashMap::from([("node".to_string(), node.to_string())]);
        // new_custom fails only for an empty prefix, which is not given.
        let registry = Registry::new_custom(None, Some(labels)).unwrap_or_default();
        let build_info = IntGauge::with_opts(
            Opts::new(
                "pimetrics_build_info",
                "A metric with a constant '1' value labeled by version and target of pimetrics.",
            )
            .const_label("version", env!("CARGO_PKG_VERSION"))
            .const_label("arch", std::env::consts::ARCH)
            .const_label("os", std::env::consts::OS),
        )
        .expect("static metric options are valid");
        build_info.set(1);
        let http_requests = IntCounterVec::new(
            Opts::new(
                "pimetrics_http_requests_total",
                "HTTP requests served, by path and status code.",
            ),
            &["path", "code"],
        )
        .expect("static metric options are valid");
        for collector in [
            Box::new(build_info) as Box<dyn prometheus::core::Collector>,
            Box::new(http_requests.clone()),
        ] {
            if let Err(err) = registry.register(collector) {
                log::error!("cannot register an agent metric: {err}");
            }
        }
        #[cfg(target_os = "linux")]
        if let Err(err) = registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        )) {
            log::error!("cannot register process metrics: {err}");
        }
        AgentMetrics {
            registry,
            http_requests,
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Appends the agent's metrics in text format to `out`, straight into the scrape buffer.
    pub fn render(&self, out: &mut String) {
        if let Err(err) = TextEncoder::new().encode_utf8(&self.registry.gather(), out) {
            log::error!("cannot encode agent metrics: {err}");
        }
    }
}
