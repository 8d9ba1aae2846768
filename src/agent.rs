//! The running agent: the collectors live on one thread of their own ("collect"), which owns
//! them outright (no lock), takes collection requests from a bounded queue and hands each
//! request the finished scrape buffer. Requests that are waiting together share one
//! collection. The async side (endpoint, push, remote write) never blocks on a collector: it
//! waits for its answer with a time limit, so a collector stuck in the kernel (a hung mount, a
//! file that never opens) costs that scrape its answer, not the endpoint, push or shutdown;
//! and the watchdog stops being fed, so systemd restarts a wedged agent.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::collector::Scraper;
use crate::exposition::Exposition;
use crate::selfmetrics::{BuildInfo, HttpStats, ProcessReport, SelfReport, SelfReports};

/// Collection requests that may wait at once; more are refused (the endpoint answers 503)
/// rather than queued without bound behind a stuck collector.
const QUEUE: usize = 64;

/// What a request does with the finished scrape buffer, on the collect thread.
type Deliver = Box<dyn FnOnce(&Exposition) + Send>;

enum Job {
    Collect {
        /// Only these collectors (`collect[]`); None: all.
        only: Option<Vec<String>>,
        deliver: Deliver,
    },
    /// A reload: new collectors from a new configuration.
    Rebuild(Box<Scraper>),
}

/// Why a collection gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CollectFailure {
    /// The queue is full: the collect thread is stuck or far behind.
    Busy,
    /// No answer within the time limit.
    TimedOut(Duration),
    /// The collect thread is gone.
    Stopped,
}

impl std::fmt::Display for CollectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CollectFailure::Busy => f.write_str("collection queue full (a collector is stuck)"),
            CollectFailure::TimedOut(limit) => {
                write!(f, "collection did not finish within {limit:?}")
            }
            CollectFailure::Stopped => f.write_str("the collect thread has stopped"),
        }
    }
}

/// Whether the collect thread is making progress (for the systemd watchdog).
#[derive(Default)]
struct CollectHealth {
    /// Milliseconds since `Agent::started` when the running collection began, plus one;
    /// 0 when idle.
    busy_since: AtomicU64,
}

pub struct Agent {
    jobs: SyncSender<Job>,
    health: Arc<CollectHealth>,
    /// Names of the collectors running now (checked against `collect[]`).
    active: Arc<RwLock<Vec<&'static str>>>,
    node: RwLock<String>,
    pub http: Arc<HttpStats>,
    /// The agent's own metrics, written at the end of every collection.
    pub reports: Arc<SelfReports>,
    started: Instant,
    /// When `/metrics` was last scraped (push `fallback` mode).
    last_scrape: Mutex<Option<Instant>>,
}

impl Agent {
    /// Starts the collect thread with the collectors built from the config
    /// (`Config::build_scraper`, before anything runs, so a problem shows first) and the node
    /// label.
    pub fn start(scraper: Scraper, node: String) -> Result<Agent, String> {
        let active = Arc::new(RwLock::new(scraper.active_names().collect()));
        let http = Arc::new(HttpStats::default());
        let reports = Arc::new(SelfReports::default());
        reports.add(Arc::new(BuildInfo));
        reports.add(Arc::clone(&http) as Arc<dyn SelfReport>);
        reports.add(Arc::new(ProcessReport::new()));
        let health = Arc::new(CollectHealth::default());
        let started = Instant::now();
        let (jobs, queue) = mpsc::sync_channel(QUEUE);
        let thread = CollectThread {
            scraper,
            queue,
            reports: Arc::clone(&reports),
            health: Arc::clone(&health),
            active: Arc::clone(&active),
            http: Arc::clone(&http),
            started,
            collections: 0,
        };
        std::thread::Builder::new()
            .name("collect".into())
            .spawn(move || thread.run())
            .map_err(|err| format!("cannot start the collect thread: {err}"))?;
        Ok(Agent {
            jobs,
            health,
            active,
            node: RwLock::new(node),
            http,
            reports,
            started,
            last_scrape: Mutex::new(None),
        })
    }

    /// One collection on the calling thread, for `--once`: the collectors, then the agent's
    /// build info.
    pub fn once(mut scraper: Scraper) -> String {
        let exposition = scraper.collect(None);
        BuildInfo.write(exposition);
        let mut text = String::new();
        exposition.render(&mut text);
        text
    }

    pub fn node(&self) -> String {
        self.node.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn active_collectors(&self) -> Vec<&'static str> {
        self.active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Collects (sharing the collection with requests waiting at the same time) and runs
    /// `render` on the result, on the collect thread; waits at most `limit`.
    pub async fn collect<R: Send + 'static>(
        &self,
        only: Option<Vec<String>>,
        limit: Duration,
        render: impl FnOnce(&Exposition) -> R + Send + 'static,
    ) -> Result<R, CollectFailure> {
        let (answer, result) = tokio::sync::oneshot::channel();
        let deliver: Deliver = Box::new(move |exposition| {
            // The requester may have given up (time limit): nothing to do then.
            let _ = answer.send(render(exposition));
        });
        match self.jobs.try_send(Job::Collect { only, deliver }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(CollectFailure::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(CollectFailure::Stopped),
        }
        match tokio::time::timeout(limit, result).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(CollectFailure::Stopped),
            Err(_) => Err(CollectFailure::TimedOut(limit)),
        }
    }

    /// Applies a new configuration's collectors and node label (`Config::build_scraper`, built
    /// on the caller's thread), swapped in between two collections, so no scrape is dropped.
    pub fn rebuild(&self, scraper: Scraper, node: String) -> Result<(), String> {
        *self.node.write().unwrap_or_else(|p| p.into_inner()) = node;
        self.jobs
            .try_send(Job::Rebuild(Box::new(scraper)))
            .map_err(|_| "the collect thread is stuck or gone".to_string())
    }

    /// False when a collection has been running for longer than `limit` (a collector stuck
    /// in the kernel): the watchdog then stops being fed.
    pub fn collecting_healthy(&self, limit: Duration) -> bool {
        let since = self.health.busy_since.load(Ordering::Relaxed);
        if since == 0 {
            return true;
        }
        let now = self.started.elapsed().as_millis() as u64 + 1;
        now.saturating_sub(since) <= limit.as_millis() as u64
    }

    /// Notes that `/metrics` was scraped (not called for the outputs' own collections).
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
}

struct CollectThread {
    scraper: Scraper,
    queue: Receiver<Job>,
    reports: Arc<SelfReports>,
    health: Arc<CollectHealth>,
    active: Arc<RwLock<Vec<&'static str>>>,
    http: Arc<HttpStats>,
    started: Instant,
    /// Collections made so far (numbers each one, across reloads).
    collections: u64,
}

impl CollectThread {
    fn run(mut self) {
        let mut shared: Vec<Deliver> = Vec::new();
        // Ends when the agent (the only sender) is dropped.
        while let Ok(first) = self.queue.recv() {
            let mut next = Some(first);
            while let Some(job) = next.take().or_else(|| self.queue.try_recv().ok()) {
                match job {
                    Job::Collect {
                        only: None,
                        deliver,
                    } => shared.push(deliver),
                    Job::Collect {
                        only: Some(only),
                        deliver,
                    } => {
                        self.serve(&mut shared, None);
                        let mut one = vec![deliver];
                        self.serve(&mut one, Some(&only));
                    }
                    Job::Rebuild(scraper) => {
                        self.serve(&mut shared, None);
                        self.scraper = *scraper;
                        *self.active.write().unwrap_or_else(|p| p.into_inner()) =
                            self.scraper.active_names().collect();
                    }
                }
            }
            self.serve(&mut shared, None);
        }
    }

    /// One collection for every request in `waiting`.
    fn serve(&mut self, waiting: &mut Vec<Deliver>, only: Option<&[String]>) {
        if waiting.is_empty() {
            return;
        }
        let now = self.started.elapsed().as_millis() as u64 + 1;
        self.health.busy_since.store(now, Ordering::Relaxed);
        let exposition = self.scraper.collect(only);
        self.reports.write_all(exposition);
        self.collections += 1;
        exposition.set_collection(self.collections);
        for _ in 1..waiting.len() {
            self.http.collection_shared();
        }
        for deliver in waiting.drain(..) {
            deliver(exposition);
        }
        self.health.busy_since.store(0, Ordering::Relaxed);
    }
}

/// A running output (push, remote write): its task on the runtime, the signal that ends it,
/// and its own metrics, reported by the agent while it runs.
pub struct OutputTask {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    report: Arc<dyn SelfReport>,
    agent: Arc<Agent>,
}

impl OutputTask {
    /// Registers `report` and spawns `run` on the current runtime; `run` gets the stop signal
    /// (true once `stop` is called).
    pub fn spawn<F>(
        agent: Arc<Agent>,
        report: Arc<dyn SelfReport>,
        run: impl FnOnce(tokio::sync::watch::Receiver<bool>) -> F,
    ) -> OutputTask
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        agent.reports.add(Arc::clone(&report));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(run(stopped));
        OutputTask {
            stop,
            task,
            report,
            agent,
        }
    }

    /// Signals the stop, waits for the task to finish its own shutdown, then drops its metrics.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.agent.reports.remove(&self.report);
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
