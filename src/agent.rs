//! The running agent's shared state: the collectors behind one lock (a Pi Zero has one core;
//! scrapes run one after the other) and the agent's own metrics.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::collector::{Context, Scraper};
use crate::config::Config;
use crate::selfmetrics::AgentMetrics;

pub struct Agent {
    pub node: String,
    scrape: Mutex<ScrapeState>,
    pub metrics: AgentMetrics,
    /// When the agent started and when `/metrics` was last scraped (push `fallback` mode).
    started: Instant,
    last_scrape: Mutex<Option<Instant>>,
}

struct ScrapeState {
    scraper: Scraper,
    text: String,
}

impl Agent {
    /// Builds every enabled collector. `config` must be validated.
    pub fn new(config: &Config) -> Agent {
        let node = config.node.clone().unwrap_or_else(host_name);
        let roots = config.roots();
        let ctx = Context {
            roots: &roots,
            config,
        };
        let scraper = Scraper::new(&ctx, &node, &config.enabled_collectors());
        let metrics = AgentMetrics::new(&node);
        Agent {
            node,
            scrape: Mutex::new(ScrapeState {
                scraper,
                text: String::with_capacity(64 * 1024),
            }),
            metrics,
            started: Instant::now(),
            last_scrape: Mutex::new(None),
        }
    }

    /// Notes that `/metrics` was scraped (not called for the push loop's own scrapes).
    pub fn record_scrape(&self) {
        *self
            .last_scrape
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now());
    }

    /// Time since the last scrape of `/metrics`, or since the start when there was none.
    pub fn since_last_scrape(&self) -> Duration {
        let last = *self
            .last_scrape
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        last.unwrap_or(self.started).elapsed()
    }

    /// Scrapes every collector and hands the exposition text (collectors, then the agent's own
    /// metrics) to `use_text` while the buffer is held.
    pub fn scrape<R>(&self, use_text: impl FnOnce(&str) -> R) -> R {
        let mut state = self
            .scrape
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let ScrapeState { scraper, text } = &mut *state;
        text.clear();
        scraper.scrape(text);
        self.metrics.render(text);
        use_text(text)
    }

    pub fn active_collectors(&self) -> Vec<&'static str> {
        let state = self
            .scrape
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.scraper.active_names().collect()
    }
}

/// The kernel's host name (what node_exporter's uname nodename says).
pub fn host_name() -> String {
    let mut name = libc::utsname {
        sysname: [0; 65],
        nodename: [0; 65],
        release: [0; 65],
        version: [0; 65],
        machine: [0; 65],
        domainname: [0; 65],
    };
    // SAFETY: uname fills the struct it is given.
    if unsafe { libc::uname(&mut name) } != 0 {
        return "localhost".to_string();
    }
    let bytes: Vec<u8> = name
        .nodename
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    let name = String::from_utf8_lossy(&bytes).into_owned();
    if name.is_empty() {
        "localhost".to_string()
    } else {
        name
    }
}
