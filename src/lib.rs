//! pimetrics: a small Prometheus agent for Raspberry Pis (and any Linux machine).
//!
//! One tokio runtime on one thread runs everything that waits: the HTTP endpoint, push, the
//! signals, the systemd watchdog. The collectors run on a thread of their own (`agent`), so a
//! read that blocks in the kernel never stops the runtime.

pub mod agent;
pub mod cli;
pub mod collector;
pub mod config;
pub mod duration;
pub mod exposition;
pub mod flag;
pub mod http;
pub mod logging;
#[cfg(test)]
mod module_graph;
pub mod outbound;
pub mod pi;
pub mod push;
pub mod remote_write;
pub mod roots;
pub mod selfmetrics;
pub mod systemd;
pub mod webconfig;

use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

use crate::agent::Agent;
use crate::config::Config;

/// Where the configuration comes from, so SIGHUP can read it again: the file (if any), then
/// the command-line flags over it.
pub trait ConfigSource: Send + Sync + 'static {
    fn load(&self) -> Result<Config, String>;
}

/// Runs the agent until SIGTERM or SIGINT; SIGHUP reloads. Errors are start-up errors:
/// nothing is left running.
pub fn run(source: Arc<dyn ConfigSource>, config: Config) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        // Blocking work (a reload building collectors, DNS lookups of push) only; idle
        // threads end soon.
        .max_blocking_threads(2)
        .thread_keep_alive(Duration::from_secs(5))
        .build()
        .map_err(|err| format!("cannot start the runtime: {err}"))?;
    let result = runtime.block_on(serve(source, config));
    // A reload stuck in a blocking read must not hold up the exit.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

/// Everything the running agent holds that a reload may replace.
struct Running {
    config: Config,
    agent: Arc<Agent>,
    endpoint: Arc<http::Endpoint>,
    pusher: Option<push::Pusher>,
    remote_write: Option<remote_write::RemoteWrite>,
}

async fn serve(source: Arc<dyn ConfigSource>, config: Config) -> Result<(), String> {
    // Signals first: one arriving during start-up is then handled, not fatal.
    let (mut terminate, mut interrupt, mut hangup) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    );
    let (Ok(terminate), Ok(interrupt), Ok(hangup)) =
        (terminate.as_mut(), interrupt.as_mut(), hangup.as_mut())
    else {
        return Err("cannot install the signal handlers".into());
    };
    let settings = endpoint_settings(&config.web)?;
    let listener = if config.web.systemd_socket {
        systemd::activated_listener()?
    } else {
        let addrs = config::parse_listen_address(&config.listen_address)?;
        http::bind(&addrs).map_err(|err| err.to_string())?
    };
    listener
        .set_nonblocking(true)
        .map_err(|err| format!("cannot set up the listener: {err}"))?;
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|err| format!("cannot set up the listener: {err}"))?;
    let local_addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let (scraper, node) = config.build_scraper();
    let agent = Arc::new(Agent::start(scraper, node)?);
    // Before the endpoint starts, so a bad secret file stops the start-up with nothing running.
    let pusher = if config.push.enabled() {
        Some(push::Pusher::start(Arc::clone(&agent), &config.push)?)
    } else {
        None
    };
    let remote_write = if config.remote_write.enabled() {
        Some(remote_write::RemoteWrite::start(
            Arc::clone(&agent),
            &config.remote_write,
        )?)
    } else {
        None
    };
    let endpoint = http::Endpoint::new(Arc::clone(&agent), settings);
    let (stop_accepting, accepting) = tokio::sync::watch::channel(false);
    let accept_loop = tokio::spawn(http::serve(listener, Arc::clone(&endpoint), accepting));
    log::info!(
        "pimetrics {} listening on {local_addr} for node {:?}; collectors: {}",
        env!("CARGO_PKG_VERSION"),
        agent.node(),
        agent.active_collectors().join(", ")
    );
    let notifier = systemd::Notifier::from_env().map(Arc::new);
    if let Some(notifier) = &notifier {
        notifier.notify(&format!("READY=1\nSTATUS=serving on {local_addr}"));
    }
    let watchdog = match (&notifier, systemd::watchdog_interval()) {
        (Some(notifier), Some(interval)) => Some(tokio::spawn(feed_watchdog(
            Arc::clone(notifier),
            interval,
            Arc::clone(&agent),
            config.web.collect_timeout.0,
            accept_loop.abort_handle(),
        ))),
        _ => None,
    };
    let mut running = Running {
        config,
        agent,
        endpoint,
        pusher,
        remote_write,
    };
    let signal_name = loop {
        tokio::select! {
            _ = terminate.recv() => break "SIGTERM",
            _ = interrupt.recv() => break "SIGINT",
            _ = hangup.recv() => reload(&source, &mut running, notifier.as_deref()).await,
        }
    };
    log::info!("{signal_name}: stopping");
    if let Some(notifier) = &notifier {
        notifier.notify("STOPPING=1\nSTATUS=stopping");
    }
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    let _ = stop_accepting.send(true);
    let _ = accept_loop.await;
    if let Some(pusher) = running.pusher.take() {
        pusher.stop().await;
    }
    if let Some(writer) = running.remote_write.take() {
        writer.stop().await;
    }
    log::info!("stopped");
    Ok(())
}

/// The endpoint's settings from the config: limits, and TLS, auth and headers from the web
/// config file.
fn endpoint_settings(web: &http::WebSettings) -> Result<http::Settings, String> {
    http::Settings::load(web)
}

/// SIGHUP: reads the config (and the web config) again. A bad file is logged and the running
/// config keeps serving; a good one replaces collectors, node label, filters, push and the
/// endpoint's TLS, auth and limits. The listen address needs a restart.
async fn reload(
    source: &Arc<dyn ConfigSource>,
    running: &mut Running,
    notifier: Option<&systemd::Notifier>,
) {
    if let Some(notifier) = notifier {
        notifier.notify(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading",
            systemd::monotonic_usec()
        ));
    }
    let loaded = {
        let source = Arc::clone(source);
        tokio::task::spawn_blocking(move || {
            let config = source.load()?;
            let settings = endpoint_settings(&config.web)?;
            Ok::<_, String>((config, settings))
        })
        .await
        .unwrap_or_else(|err| Err(format!("reload failed: {err}")))
    };
    let outcome = match loaded {
        Err(err) => {
            log::error!("reload: {err}; keeping the running configuration");
            "reload failed, running configuration kept"
        }
        Ok((config, settings)) => {
            apply(config, settings, running).await;
            "reloaded"
        }
    };
    if let Some(notifier) = notifier {
        notifier.notify(&format!("READY=1\nSTATUS={outcome}"));
    }
}

async fn apply(config: Config, settings: http::Settings, running: &mut Running) {
    if config.listen_address != running.config.listen_address
        || config.web.systemd_socket != running.config.web.systemd_socket
    {
        log::warn!("reload: a new listen address takes a restart; still on the old one");
    }
    running.endpoint.set_settings(settings);
    let agent = Arc::clone(&running.agent);
    let rebuild_config = config.clone();
    let rebuilt = tokio::task::spawn_blocking(move || {
        let (scraper, node) = rebuild_config.build_scraper();
        agent.rebuild(scraper, node)
    })
    .await
    .unwrap_or_else(|err| Err(err.to_string()));
    if let Err(err) = rebuilt {
        log::error!("reload: collectors not rebuilt: {err}");
    }
    let node_changed = config.node != running.config.node;
    if config.push != running.config.push || node_changed {
        if let Some(pusher) = running.pusher.take() {
            pusher.stop().await;
        }
        if config.push.enabled() {
            match push::Pusher::start(Arc::clone(&running.agent), &config.push) {
                Ok(pusher) => running.pusher = Some(pusher),
                Err(err) => log::error!("reload: push not restarted: {err}"),
            }
        }
    }
    if config.remote_write != running.config.remote_write || node_changed {
        if let Some(writer) = running.remote_write.take() {
            writer.stop().await;
        }
        if config.remote_write.enabled() {
            match remote_write::RemoteWrite::start(Arc::clone(&running.agent), &config.remote_write)
            {
                Ok(writer) => running.remote_write = Some(writer),
                Err(err) => log::error!("reload: remote write not restarted: {err}"),
            }
        }
    }
    log::info!(
        "reloaded: node {:?}; collectors: {}",
        running.agent.node(),
        running.agent.active_collectors().join(", ")
    );
    running.config = config;
}

/// Sends WATCHDOG=1 every `interval` while the agent is healthy: the accept loop runs and no
/// collection has been stuck for long. A wedged agent stops feeding and systemd restarts it.
async fn feed_watchdog(
    notifier: Arc<systemd::Notifier>,
    interval: Duration,
    agent: Arc<Agent>,
    collect_timeout: Duration,
    accept_loop: tokio::task::AbortHandle,
) {
    let stuck_after = collect_timeout * 2;
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut unhealthy_logged = false;
    loop {
        ticks.tick().await;
        let accepting = !accept_loop.is_finished();
        let collecting = agent.collecting_healthy(stuck_after);
        if accepting && collecting {
            notifier.notify("WATCHDOG=1");
            unhealthy_logged = false;
        } else if !unhealthy_logged {
            unhealthy_logged = true;
            log::error!(
                "not feeding the watchdog: {}",
                if accepting {
                    "a collection has been stuck for longer than twice web.collect_timeout"
                } else {
                    "the accept loop has ended"
                }
            );
        }
    }
}
