//! Scrape cost by name, so a regression shows where it is: `cargo bench --bench scrape`
//! (`cargo bench --bench scrape -- collector/` for one group).
//!
//! - `scrape/pi4_fixture`, `scrape/host`: one whole collection (every default collector) and
//!   its text encoding, on a Raspberry Pi 4 tree assembled from the test fixtures (with the
//!   board's recorded mailbox answers) and on this machine's /proc and /sys.
//! - `collector/<name>` (this machine) and `collector_pi4/<name>` (fixture tree): one
//!   collector's `update` alone.
//! - `encode/text`: rendering the scrape buffer as text format 0.0.4 into a reused buffer.
//! - `gzip/level_N`: compressing that text at level N (the endpoint's gzip).
//!
//! After the timings, the bench prints the allocations and bytes one steady-state scrape
//! makes (a counting global allocator), and the gzip size at each level.
//! Compare with node_exporter with `scripts/compare`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use criterion::{black_box, BenchmarkId, Criterion, Throughput};
use flate2::{Compress, Compression, FlushCompress};
use pimetrics::collector::{Context, Scraper, COLLECTORS};
use pimetrics::config::{Config, PiEnabled};
use pimetrics::gzip::Gzip;
use pimetrics::selfmetrics::{BuildInfo, HttpStats, ProcessReport, SelfReports};

/// Counts allocations so the bench can report what a scrape allocates.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn copy_tree(from: &Path, to: &Path) {
    let Ok(entries) = std::fs::read_dir(from) else {
        return;
    };
    std::fs::create_dir_all(to).expect("create fixture copy");
    for entry in entries.flatten() {
        let target = to.join(entry.file_name());
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if kind.is_symlink() {
            let link = std::fs::read_link(entry.path()).expect("read link");
            let _ = std::os::unix::fs::symlink(link, &target);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

/// A Raspberry Pi 4 as the fixtures record it (tests/fixtures/pi4: board identity, clocks,
/// hwmon and thermal, the system files), copied.
fn pi4_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_tree(&fixtures().join("pi4"), dir.path());
    dir
}

fn pi4_config(tree: &Path) -> Config {
    let mut config = Config {
        node: Some("pi4".into()),
        ..Config::default()
    };
    config.paths.procfs = tree.join("proc");
    config.paths.sysfs = tree.join("sys");
    config.paths.rootfs = tree.join("root");
    config.paths.devfs = tree.join("dev");
    config.collector_settings.pi.enabled = PiEnabled::On;
    config.collector_settings.pi.mailbox_replay = Some(fixtures().join("pi4/mailbox.replay"));
    config
}

fn host_config() -> Config {
    Config {
        node: Some("bench".into()),
        ..Config::default()
    }
}

fn one_collector(config: &Config, name: &'static str) -> Scraper {
    let roots = config.roots();
    let ctx = Context {
        roots: &roots,
        settings: &config.collector_settings,
    };
    Scraper::new(&ctx, "bench", &[name])
}

/// The agent's own metrics, as the collect thread writes them after the collectors.
fn self_reports() -> SelfReports {
    let reports = SelfReports::default();
    reports.add(Arc::new(BuildInfo));
    reports.add(Arc::new(HttpStats::default()));
    reports.add(Arc::new(ProcessReport::new()));
    reports
}

/// One scrape as the agent answers Prometheus: the collectors, the agent's own metrics, the
/// text, gzipped (the endpoint's level, reused state and buffers).
struct WholeScrape {
    scraper: Scraper,
    reports: SelfReports,
    text: String,
    deflate: Gzip,
    gzip: Vec<u8>,
}

impl WholeScrape {
    fn new(config: &Config) -> WholeScrape {
        WholeScrape {
            scraper: config.build_scraper().0,
            reports: self_reports(),
            text: String::new(),
            deflate: Gzip::new(),
            gzip: Vec::new(),
        }
    }

    fn run(&mut self) -> usize {
        let exposition = self.scraper.collect(None);
        self.reports.write_all(exposition);
        self.text.clear();
        exposition.render(&mut self.text);
        self.deflate.gzip(self.text.as_bytes(), &mut self.gzip);
        self.gzip.len()
    }
}

/// A whole scrape, gzip included.
fn whole_scrape(c: &mut Criterion, label: &str, config: &Config) {
    let mut scrape = WholeScrape::new(config);
    c.bench_function(&format!("scrape/{label}"), |b| {
        b.iter(|| black_box(scrape.run()))
    });
}

fn collectors(c: &mut Criterion, group: &str, config: &Config) {
    for spec in COLLECTORS {
        let mut scraper = one_collector(config, spec.name);
        if scraper.active_names().next().is_none() {
            continue; // does not apply to this tree
        }
        c.bench_function(&format!("{group}/{}", spec.name), |b| {
            b.iter(|| black_box(scraper.collect(None).sample_count()))
        });
    }
}

fn host_text() -> String {
    let (mut scraper, _) = host_config().build_scraper();
    let mut text = String::new();
    scraper.collect(None).render(&mut text);
    text
}

/// Raw deflate with miniz_oxide (flate2) at a level, reused state and buffer: what the
/// endpoint used before its own encoder (src/gzip.rs), kept to compare against.
fn miniz(text: &[u8], deflate: &mut Compress, out: &mut Vec<u8>) {
    deflate.reset();
    out.clear();
    out.reserve(text.len());
    deflate
        .compress_vec(text, out, FlushCompress::Finish)
        .expect("deflate into memory");
}

fn encoding(c: &mut Criterion) {
    let (mut scraper, _) = host_config().build_scraper();
    scraper.collect(None);
    let mut text = String::new();
    c.bench_function("encode/text", |b| {
        b.iter(|| {
            text.clear();
            scraper.exposition().render(&mut text);
            black_box(text.len())
        })
    });
    let text = host_text();
    let mut group = c.benchmark_group("gzip");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("ours", |b| {
        let mut out = Vec::with_capacity(text.len());
        let mut gzip = Gzip::new();
        b.iter(|| {
            gzip.gzip(text.as_bytes(), &mut out);
            black_box(out.len())
        })
    });
    for level in [1, 3, 6, 9] {
        group.bench_with_input(BenchmarkId::new("miniz", level), &level, |b, &level| {
            let mut out = Vec::with_capacity(text.len());
            let mut deflate = Compress::new(Compression::new(level), false);
            b.iter(|| {
                miniz(text.as_bytes(), &mut deflate, &mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

/// Allocations of one steady-state scrape (after warm-up scrapes let buffers grow).
fn report_allocations(label: &str, config: &Config) {
    let mut scrape = WholeScrape::new(config);
    for _ in 0..5 {
        scrape.run();
    }
    const ROUNDS: u64 = 50;
    let (count, bytes) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        ALLOCATED_BYTES.load(Ordering::Relaxed),
    );
    for _ in 0..ROUNDS {
        scrape.run();
    }
    let count = ALLOCATIONS.load(Ordering::Relaxed) - count;
    let bytes = ALLOCATED_BYTES.load(Ordering::Relaxed) - bytes;
    println!(
        "allocations per scrape ({label}): {} ({} bytes); {} bytes of text, {} gzipped, {} samples",
        count / ROUNDS,
        bytes / ROUNDS,
        scrape.text.len(),
        scrape.gzip.len(),
        scrape.scraper.exposition().sample_count()
    );
    for spec in COLLECTORS {
        let mut one = one_collector(config, spec.name);
        if one.active_names().next().is_none() {
            continue;
        }
        for _ in 0..3 {
            one.collect(None);
        }
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for _ in 0..ROUNDS {
            one.collect(None);
        }
        let per = (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / ROUNDS as f64;
        if per > 0.0 {
            println!("  {label} {}: {per:.1} allocations per scrape", spec.name);
        }
    }
}

fn report_gzip_sizes() {
    let text = host_text();
    let mut ours = Vec::new();
    Gzip::new().gzip(text.as_bytes(), &mut ours);
    let mut sizes = vec![format!("ours: {} bytes", ours.len())];
    sizes.extend([1, 3, 6, 9].iter().map(|&level| {
        let mut out = Vec::new();
        miniz(
            text.as_bytes(),
            &mut Compress::new(Compression::new(level), false),
            &mut out,
        );
        format!(
            "miniz level {level}: {} bytes (+18 of gzip framing)",
            out.len()
        )
    }));
    println!("gzip of {} bytes: {}", text.len(), sizes.join(", "));
}

fn main() {
    let tree = pi4_tree();
    let pi4 = pi4_config(tree.path());
    let host = host_config();
    let mut c = Criterion::default().configure_from_args();
    whole_scrape(&mut c, "pi4_fixture", &pi4);
    whole_scrape(&mut c, "host", &host);
    collectors(&mut c, "collector", &host);
    collectors(&mut c, "collector_pi4", &pi4);
    encoding(&mut c);
    c.final_summary();
    report_allocations("pi4_fixture", &pi4);
    report_allocations("host", &host);
    report_gzip_sizes();
}
