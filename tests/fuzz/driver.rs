//! The stable-Rust fuzz driver: deterministic mutations of a stored corpus, then inputs scaled
//! up to find super-linear time, with three checks on every input:
//! - no panic (the failing input is printed and saved under target/fuzz-failures/),
//! - bounded output and bounded allocation: the peak heap growth during the call and the size
//!   the target reports stay under `per_byte * input length + base`,
//! - it finishes: a watchdog fails the test when one input runs longer than `HANG_SECONDS`.
//!
//! Environment: `PIMETRICS_FUZZ_ITERATIONS` (mutated inputs per target, default
//! `DEFAULT_ITERATIONS`), `PIMETRICS_FUZZ_SEED` (default fixed, so CI is reproducible).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const DEFAULT_ITERATIONS: u64 = 5000;
const DEFAULT_SEED: u64 = 0x5eed_0f91_e71c_0005;
/// Largest mutated input.
const MAX_LEN: usize = 16 * 1024;
/// Inputs of the scaling phase: corpus entries repeated up to this size.
const SCALED_LEN: usize = 256 * 1024;
/// One input taking this long is a hang (inputs are at most `SCALED_LEN` bytes).
const HANG_SECONDS: u64 = 20;

// ------------------------------------------------------------------ allocation accounting

/// Counts the heap bytes each thread holds, and their peak, so a target's allocation during
/// one call can be bounded.
pub struct CountingAllocator;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| {
            if now > peak.get() {
                peak.set(now);
            }
        });
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are kept.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            account(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        if !ptr.is_null() {
            account(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        account(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = System.realloc(ptr, layout, new_size);
        if !new.is_null() {
            account(new_size as isize - layout.size() as isize);
        }
        new
    }
}

/// Runs `f`, returning its result and the peak heap growth (bytes) of this thread during it.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, peak.saturating_sub(start).max(0) as usize)
}

// ------------------------------------------------------------------ targets and bounds

/// `per_byte * input length + base`.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub per_byte: usize,
    pub base: usize,
}

impl Bound {
    fn of(self, len: usize) -> usize {
        self.per_byte.saturating_mul(len).saturating_add(self.base)
    }
}

/// One parser under test: `run` returns the size of what it produced (items, bytes).
pub struct Target<R> {
    pub name: &'static str,
    pub output: Bound,
    pub alloc: Bound,
    /// Seeds beyond tests/fuzz_corpus/<name>/ (generated from fixtures).
    pub extra_seeds: Vec<Vec<u8>>,
    /// Mutated inputs to run (the scaling phase comes on top).
    pub iterations: u64,
    /// Whether to run the scaling phase (large inputs); off for targets that are slow per
    /// call whatever the input (whole collectors on a tree).
    pub scale: bool,
    pub run: R,
}

pub fn iterations() -> u64 {
    std::env::var("PIMETRICS_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ITERATIONS)
}

fn seed() -> u64 {
    std::env::var("PIMETRICS_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SEED)
}

pub fn corpus_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_corpus")
        .join(name)
}

fn load_corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| std::fs::read(path).expect("corpus file"))
        .collect()
}

/// Shared between the worker and the watchdog.
struct Progress {
    done: AtomicU64,
    finished: AtomicBool,
    current: Mutex<Vec<u8>>,
}

/// Fuzzes one target: corpus, mutations, scaled inputs. Panics (fails the test) on the first
/// bad input, after printing and saving it.
pub fn fuzz<R>(target: Target<R>)
where
    R: FnMut(&[u8]) -> usize + Send + 'static,
{
    let Target {
        name,
        output,
        alloc,
        extra_seeds,
        iterations,
        scale,
        mut run,
    } = target;
    let mut corpus = load_corpus(name);
    corpus.extend(extra_seeds);
    assert!(
        !corpus.is_empty(),
        "fuzz target {name}: no seeds in {}",
        corpus_dir(name).display()
    );
    let progress = Arc::new(Progress {
        done: AtomicU64::new(0),
        finished: AtomicBool::new(false),
        current: Mutex::new(Vec::new()),
    });
    let worker_progress = Arc::clone(&progress);
    let worker = std::thread::Builder::new()
        .name(format!("fuzz-{name}"))
        .spawn(move || -> Result<u64, (String, Vec<u8>)> {
            let progress = worker_progress;
            let mut check = |input: &[u8]| -> Result<(), (String, Vec<u8>)> {
                if let Ok(mut current) = progress.current.lock() {
                    current.clear();
                    current.extend_from_slice(input);
                }
                let (result, peak) = measured(|| catch_unwind(AssertUnwindSafe(|| run(input))));
                progress.done.fetch_add(1, Ordering::Relaxed);
                let size = match result {
                    Ok(size) => size,
                    Err(panic) => {
                        let message = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        return Err((format!("panicked: {message}"), input.to_vec()));
                    }
                };
                if size > output.of(input.len()) {
                    return Err((
                        format!(
                            "output size {size} beyond {} for {} input bytes",
                            output.of(input.len()),
                            input.len()
                        ),
                        input.to_vec(),
                    ));
                }
                if peak > alloc.of(input.len()) {
                    return Err((
                        format!(
                            "allocated {peak} bytes at peak, beyond {} for {} input bytes",
                            alloc.of(input.len()),
                            input.len()
                        ),
                        input.to_vec(),
                    ));
                }
                Ok(())
            };
            for input in &corpus {
                check(input)?;
            }
            let mut rng = Rng(seed() ^ fnv(name.as_bytes()) | 1);
            let mut input = Vec::new();
            for _ in 0..iterations {
                let Some(base) = corpus.get(rng.below(corpus.len())) else {
                    break;
                };
                input.clone_from(base);
                mutate(&mut input, &mut rng, &corpus);
                check(&input)?;
            }
            if scale {
                for seed in &corpus {
                    for scaled in scaled_inputs(seed, &mut rng) {
                        check(&scaled)?;
                    }
                }
            }
            progress.finished.store(true, Ordering::Relaxed);
            Ok(progress.done.load(Ordering::Relaxed))
        })
        .expect("spawn the fuzz worker");

    // Watchdog: the worker must make progress.
    let started = Instant::now();
    let mut last = (0, Instant::now());
    while !progress.finished.load(Ordering::Relaxed) && !worker.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
        let done = progress.done.load(Ordering::Relaxed);
        if done != last.0 {
            last = (done, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(HANG_SECONDS) {
            let input = progress
                .current
                .lock()
                .map(|c| c.clone())
                .unwrap_or_default();
            fail(
                name,
                &format!("no progress for {HANG_SECONDS} s (hang or super-linear time)"),
                &input,
            );
        }
    }
    match worker.join() {
        Ok(Ok(done)) => eprintln!(
            "fuzz {name}: {done} inputs in {:.1} s",
            started.elapsed().as_secs_f64()
        ),
        Ok(Err((problem, input))) => fail(name, &problem, &input),
        Err(_) => panic!("fuzz {name}: the worker died"),
    }
}

fn fail(name: &str, problem: &str, input: &[u8]) -> ! {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
    let path = dir.join(format!("{name}-{:016x}", fnv(input)));
    let saved = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, input))
        .map(|()| format!("saved as {}", path.display()))
        .unwrap_or_else(|err| format!("not saved: {err}"));
    let preview: String = String::from_utf8_lossy(&input[..input.len().min(600)])
        .escape_debug()
        .collect();
    panic!(
        "fuzz target {name}: {problem}\ninput ({} bytes, {saved}; copy it into \
         tests/fuzz_corpus/{name}/ once fixed):\n\"{preview}\"",
        input.len()
    );
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

// ------------------------------------------------------------------ mutations

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Bytes and words the parsers give meaning to: separators, escapes, number edges, UTF-8.
const TOKENS: &[&[u8]] = &[
    b"\n",
    b" ",
    b"\t",
    b"\0",
    b"\r\n",
    b"{",
    b"}",
    b"\"",
    b"\\",
    b"=",
    b",",
    b":",
    b"-",
    b"#",
    b"(",
    b")",
    b"[",
    b"]",
    b"'",
    b"$",
    b"/",
    b"/*",
    b"*/",
    b"//",
    b"# HELP ",
    b"# TYPE ",
    b" counter",
    b" gauge",
    b" histogram",
    b" summary",
    b"_bucket",
    b"_sum",
    b"_count",
    b"le=\"+Inf\"",
    b"quantile=\"0.5\"",
    b"NaN",
    b"+Inf",
    b"-Inf",
    b"-1",
    b"0",
    b"1",
    b"4294967295",
    b"4294967296",
    b"18446744073709551615",
    b"18446744073709551616",
    b"9223372036854775808",
    b"99999999999999999999999999999",
    b"1e308",
    b"1e309",
    b"-0",
    b"0x1f",
    b"1.5",
    b"\\040",
    b"\\011",
    b"\\134",
    b"\\377",
    b"\\400",
    b"\xc3\xa9",
    b"\xe2\x82\xac",
    b"\xf0\x9f\x8d\x93",
    b"\xff",
    b"\xc3",
    b"\xef\xbf\xbd",
    b"kB",
    b"total=",
    b"avg10=",
    b"some ",
    b"full ",
    b"cpu ",
    b"cpu0 ",
    b"intr ",
    b"btime ",
    b" - ",
    b"shared:1 ",
    b"ID=",
    b"VERSION_ID=",
    b"PRETTY_NAME=",
    b"0-3",
    b"0-65535",
    b"_input",
    b"_max",
    b"_crit_alarm",
    b"temp1",
    b"in0",
    b"fan1",
    b"pwm1",
    b"--",
    b"--collector.",
    b"--no-collector.",
    b"--web.listen-address=",
    b"=",
];

/// Applies 1 to 8 random edits.
pub fn mutate(input: &mut Vec<u8>, rng: &mut Rng, corpus: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(8) {
        let len = input.len();
        let at = rng.below(len + 1);
        match rng.below(11) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next() as u8;
            }
            2 | 3 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                input.splice(at..at, token.iter().copied());
            }
            4 if len > 0 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                let end = (at + token.len()).min(len);
                input.splice(at..end, token.iter().copied());
            }
            5 if len > 0 => {
                let end = (at + 1 + rng.below(32)).min(len);
                input.drain(at.min(end)..end);
            }
            6 if len > 0 => {
                // Repeat a chunk: long lines, many fields, many lines.
                let start = rng.below(len);
                let end = (start + 1 + rng.below(64)).min(len);
                let chunk = input[start..end].to_vec();
                let most = if rng.below(8) == 0 { 512 } else { 8 };
                let times = 1 + rng.below(most);
                for _ in 0..times {
                    input.splice(at..at, chunk.iter().copied());
                }
            }
            7 => {
                // Splice in a piece of another seed.
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let start = rng.below(other.len());
                    let end = (start + 1 + rng.below(128)).min(other.len());
                    input.splice(at..at, other[start..end].iter().copied());
                }
            }
            8 if len > 0 => {
                // Replace a number with an edge value.
                if let Some(start) = (at..len).find(|&i| input[i].is_ascii_digit()) {
                    let end = (start..len)
                        .find(|&i| !input[i].is_ascii_digit())
                        .unwrap_or(len);
                    let numbers: &[&[u8]] = &[
                        b"0",
                        b"-1",
                        b"4294967296",
                        b"18446744073709551616",
                        b"99999999999999999999999999999",
                        b"1e309",
                        b"NaN",
                    ];
                    let number = numbers[rng.below(numbers.len())];
                    input.splice(start..end, number.iter().copied());
                }
            }
            9 => input.truncate(at),
            _ if len > 1 => {
                // Swap two lines' order by moving a line.
                let lines: Vec<usize> = std::iter::once(0)
                    .chain((0..len).filter(|&i| input[i] == b'\n').map(|i| i + 1))
                    .filter(|&i| i < len)
                    .collect();
                if lines.len() > 1 {
                    let start = lines[rng.below(lines.len())];
                    let end = input[start..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(len, |p| start + p + 1);
                    let line: Vec<u8> = input.drain(start..end).collect();
                    let to = rng.below(input.len() + 1);
                    input.splice(to..to, line);
                }
            }
            _ => {}
        }
    }
    input.truncate(MAX_LEN);
}

/// Large inputs from a seed: the seed repeated, its longest line repeated, one long line of
/// its words; all about `SCALED_LEN` bytes. A parser quadratic in lines, fields or line length
/// does not finish them.
fn scaled_inputs(seed: &[u8], rng: &mut Rng) -> Vec<Vec<u8>> {
    if seed.is_empty() {
        return vec![vec![b'a'; SCALED_LEN], vec![b'\n'; SCALED_LEN]];
    }
    let repeat = |piece: &[u8]| -> Vec<u8> {
        let mut out = Vec::with_capacity(SCALED_LEN + piece.len());
        while out.len() < SCALED_LEN && !piece.is_empty() {
            out.extend_from_slice(piece);
        }
        out
    };
    let longest_line = seed
        .split_inclusive(|&b| b == b'\n')
        .max_by_key(|line| line.len())
        .unwrap_or(seed);
    let one_line: Vec<u8> = seed
        .iter()
        .map(|&b| if b == b'\n' { b' ' } else { b })
        .collect();
    let mut mutated = seed.to_vec();
    mutate(&mut mutated, rng, &[seed.to_vec()]);
    vec![
        repeat(seed),
        repeat(longest_line),
        repeat(&one_line),
        repeat(&mutated),
    ]
}
