//! pimetrics: a small Prometheus agent for Raspberry Pis (and any Linux machine).

pub mod agent;
pub mod cli;
pub mod collector;
pub mod config;
pub mod exposition;
pub mod http;
pub mod logging;
pub mod pi;
pub mod push;
pub mod roots;
pub mod selfmetrics;
pub mod signals;
pub mod textformat;
pub mod webconfig;

use std::sync::Arc;

use crate::agent::Agent;
use crate::config::Config;

/// Runs the agent until SIGTERM or SIGINT. Errors are start-up errors: nothing is left running.
pub fn run(config: &Config) -> Result<(), String> {
    // Before any thread starts, so every thread inherits the blocked set and only sigwait sees them.
    let signals = signals::Signals::block_termination();
    let addrs = config::parse_listen_address(&config.listen_address)?;
    let listener = http::bind(&addrs).map_err(|err| err.to_string())?;
    let agent = Arc::new(Agent::new(config));
    // Before the server starts, so a bad secret file stops the start-up with nothing running.
    let pusher = if config.push.enabled() {
        Some(push::Pusher::start(Arc::clone(&agent), &config.push)?)
    } else {
        None
    };
    let server = http::HttpServer::start(listener, Arc::clone(&agent))
        .map_err(|err| format!("cannot start HTTP server: {err}"))?;
    log::info!(
        "pimetrics {} listening on {} for node {:?}; collectors: {}",
        env!("CARGO_PKG_VERSION"),
        server.local_addr,
        agent.node,
        agent.active_collectors().join(", ")
    );
    let signal = signals.wait();
    log::info!("{signal}: stopping");
    server.stop();
    if let Some(pusher) = pusher {
        pusher.stop();
    }
    log::info!("stopped");
    Ok(())
}
