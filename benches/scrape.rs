//! Scrape cost on this machine's /proc and /sys: `cargo bench --bench scrape`.
//!
//! Prints the mean wall time and the allocations-free steady state size of one full scrape
//! (every default collector, plus the agent's own metrics), after a warm-up that lets the
//! buffers reach their working size. Compare across commits on the same machine; compare with
//! node_exporter with `scripts/compare`.

use std::time::{Duration, Instant};

use pimetrics::agent::build_scraper;
use pimetrics::config::Config;

fn main() {
    let config = Config {
        node: Some("bench".into()),
        ..Config::default()
    };
    let (mut scraper, _) = build_scraper(&config);
    let mut text = String::new();
    let mut bytes = 0;
    for _ in 0..20 {
        text.clear();
        scraper.scrape(&mut text);
        bytes = text.len();
    }
    let rounds = std::env::var("SCRAPES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500u32);
    let mut times: Vec<Duration> = Vec::with_capacity(rounds as usize);
    for _ in 0..rounds {
        let started = Instant::now();
        text.clear();
        scraper.scrape(&mut text);
        std::hint::black_box(text.len());
        times.push(started.elapsed());
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / rounds;
    let median = times[times.len() / 2];
    let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
    println!("scrape: {rounds} rounds, {bytes} bytes of exposition; mean {mean:?}, median {median:?}, p99 {p99:?}");
    println!(
        "collectors: {}",
        scraper.active_names().collect::<Vec<_>>().join(", ")
    );
}
