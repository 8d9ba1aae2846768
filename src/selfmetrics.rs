//! The agent's own metrics, written into the same scrape buffer as every collector's: build
//! info, the HTTP endpoint's counters, `process_*`, and what each output (push, remote write)
//! reports about itself. Counters are atomics updated where things happen; a `SelfReport`
//! writes them at the end of every collection.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::exposition::{Exposition, Kind};

/// Something that writes the agent's own metrics at the end of a collection.
pub trait SelfReport: Send + Sync {
    fn write(&self, out: &mut Exposition);
}

/// The reports of the running agent; outputs add theirs when they start.
#[derive(Default)]
pub struct SelfReports {
    reports: Mutex<Vec<std::sync::Arc<dyn SelfReport>>>,
}

impl SelfReports {
    pub fn add(&self, report: std::sync::Arc<dyn SelfReport>) {
        self.reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(report);
    }

    /// Removes a report (an output stopped, e.g. push turned off by a reload).
    pub fn remove(&self, report: &std::sync::Arc<dyn SelfReport>) {
        self.reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|r| !std::sync::Arc::ptr_eq(r, report));
    }

    pub fn write_all(&self, out: &mut Exposition) {
        let reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        for report in reports.iter() {
            report.write(out);
        }
    }
}

/// `pimetrics_build_info`.
pub struct BuildInfo;

impl SelfReport for BuildInfo {
    fn write(&self, out: &mut Exposition) {
        let id = out.family(
            "pimetrics_build_info",
            "A metric with a constant '1' value labeled by version and target of pimetrics.",
            Kind::Gauge,
            &["version", "arch", "os"],
        );
        out.sample(
            id,
            &[
                env!("CARGO_PKG_VERSION"),
                std::env::consts::ARCH,
                std::env::consts::OS,
            ],
            1.0,
        );
    }
}

/// Paths counted by name in `pimetrics_http_requests_total`; anything else counts as "other"
/// so a port scanner cannot grow the series set.
pub const ROUTES: [&str; 4] = ["/metrics", "/", "/-/healthy", "other"];
/// Status codes the endpoint answers with.
pub const CODES: [u16; 9] = [200, 304, 400, 401, 404, 405, 429, 500, 503];
const CODE_LABELS: [&str; 9] = [
    "200", "304", "400", "401", "404", "405", "429", "500", "503",
];
/// Why a connection ended badly (`pimetrics_http_connection_errors_total{reason}`).
pub const CONNECTION_ERRORS: [&str; 6] = [
    "header_timeout",
    "header_too_large",
    "bad_request",
    "tls_handshake",
    "write_timeout",
    "io",
];
/// Why accept() failed (`pimetrics_http_accept_errors_total{error}`).
pub const ACCEPT_ERRORS: [&str; 3] = ["emfile", "enfile", "other"];

/// The endpoint's counters.
#[derive(Default)]
pub struct HttpStats {
    requests: [[AtomicU64; CODES.len()]; ROUTES.len()],
    connection_errors: [AtomicU64; CONNECTION_ERRORS.len()],
    accept_errors: [AtomicU64; ACCEPT_ERRORS.len()],
    connections_accepted: AtomicU64,
    connections_rejected: AtomicU64,
    connections_open: AtomicI64,
    collections_shared: AtomicU64,
}

impl HttpStats {
    pub fn request(&self, path: &str, code: u16) {
        let route = ROUTES.iter().position(|r| *r == path).unwrap_or(3);
        let code = CODES.iter().position(|c| *c == code).unwrap_or(7);
        self.requests[route][code].fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_error(&self, reason: &str) {
        if let Some(i) = CONNECTION_ERRORS.iter().position(|r| *r == reason) {
            self.connection_errors[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn accept_error(&self, error: &str) {
        let i = ACCEPT_ERRORS.iter().position(|r| *r == error).unwrap_or(2);
        self.accept_errors[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_opened(&self) {
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn open_connections(&self) -> i64 {
        self.connections_open.load(Ordering::Relaxed)
    }

    pub fn connection_rejected(&self) {
        self.connections_rejected.fetch_add(1, Ordering::Relaxed);
    }

    pub fn collection_shared(&self) {
        self.collections_shared.fetch_add(1, Ordering::Relaxed);
    }
}

impl SelfReport for HttpStats {
    fn write(&self, out: &mut Exposition) {
        let requests = out.family(
            "pimetrics_http_requests_total",
            "HTTP requests served, by path and status code.",
            Kind::Counter,
            &["path", "code"],
        );
        for (route, counts) in ROUTES.iter().zip(&self.requests) {
            for (code, count) in CODE_LABELS.iter().zip(counts) {
                let count = count.load(Ordering::Relaxed);
                // /metrics 200 always, so rate() works from the first scrape.
                if count > 0 || (*route == "/metrics" && *code == "200") {
                    out.sample(requests, &[route, code], count as f64);
                }
            }
        }
        let errors = out.family(
            "pimetrics_http_connection_errors_total",
            "HTTP connections ended by an error, by reason.",
            Kind::Counter,
            &["reason"],
        );
        for (reason, count) in CONNECTION_ERRORS.iter().zip(&self.connection_errors) {
            out.sample(errors, &[reason], count.load(Ordering::Relaxed) as f64);
        }
        let accept = out.family(
            "pimetrics_http_accept_errors_total",
            "Failed accept() calls on the listening socket, by error (the endpoint backs off and goes on).",
            Kind::Counter,
            &["error"],
        );
        for (error, count) in ACCEPT_ERRORS.iter().zip(&self.accept_errors) {
            out.sample(accept, &[error], count.load(Ordering::Relaxed) as f64);
        }
        for (name, help, value) in [
            (
                "pimetrics_http_connections_accepted_total",
                "HTTP connections accepted.",
                self.connections_accepted.load(Ordering::Relaxed) as f64,
            ),
            (
                "pimetrics_http_connections_rejected_total",
                "HTTP connections closed at once because the open connection limit was reached.",
                self.connections_rejected.load(Ordering::Relaxed) as f64,
            ),
            (
                "pimetrics_http_shared_collections_total",
                "Scrapes answered from a collection another scrape started at the same time.",
                self.collections_shared.load(Ordering::Relaxed) as f64,
            ),
        ] {
            let id = out.family(name, help, Kind::Counter, &[]);
            out.sample(id, &[], value);
        }
        let open = out.family(
            "pimetrics_http_open_connections",
            "HTTP connections open now.",
            Kind::Gauge,
            &[],
        );
        out.sample(open, &[], self.open_connections() as f64);
    }
}

/// `process_*` for the agent itself, as client_golang's process collector names them. These
/// read the real /proc/self, not the configured procfs root: they describe this process, not
/// the host (under a container's /host/proc, `self` would still be us, or nothing).
pub struct ProcessReport {
    ticks_per_second: f64,
    page_size: f64,
    boot_time: Option<f64>,
    /// /proc/self/stat kept open, and /proc/self/fd kept open for counting, with their
    /// buffers: a scrape re-reads them without opening anything or allocating.
    files: Mutex<SelfFiles>,
}

struct SelfFiles {
    stat: crate::roots::KeptFile,
    stat_buf: Vec<u8>,
    fd_dir: Option<FdDir>,
}

/// /proc/self/fd, open as a directory, counted with getdents64 from offset 0 each time
/// (what `read_dir` does, without opening the directory and allocating its 32 KiB buffer
/// every scrape). The count includes this descriptor, as `read_dir`'s count includes its
/// own.
struct FdDir {
    fd: std::os::fd::OwnedFd,
    buf: Vec<u8>,
    /// The directory's size is its entry count (/proc/PID/fd since Linux 6.2), checked
    /// against a listing when opened.
    size_counts: bool,
}

impl FdDir {
    fn open() -> Option<FdDir> {
        FdDir::open_path(c"/proc/self/fd")
    }

    fn open_path(path: &std::ffi::CStr) -> Option<FdDir> {
        use std::os::fd::FromRawFd;
        // SAFETY: a NUL-terminated path; the result is checked before it is owned.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        let mut dir = FdDir {
            // SAFETY: fd was just opened and is owned by nothing else.
            fd: unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) },
            buf: vec![0; 4096],
            size_counts: false,
        };
        // Another thread may open or close a file in between: two tries.
        dir.size_counts = (0..2).any(|_| {
            let size = dir.size();
            size.is_some_and(|size| size > 0) && size == dir.count_entries()
        });
        Some(dir)
    }

    fn size(&self) -> Option<u64> {
        use std::os::fd::AsRawFd;
        // SAFETY: stat is plain data filled by fstat on a descriptor we own.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(self.fd.as_raw_fd(), &mut stat) } != 0 {
            return None;
        }
        u64::try_from(stat.st_size).ok()
    }

    /// Entries other than "." and "..", or None on an error.
    ///
    /// Since Linux 6.2 the size of /proc/PID/fd is the number of open descriptors: one
    /// fstat, where listing makes the kernel build a dentry for each of the agent's ~100
    /// kept-open files every scrape (a twentieth of a scrape's CPU). Older kernels say 0
    /// (and other directories' sizes are not counts): then the entries are counted.
    fn count(&mut self) -> Option<u64> {
        if self.size_counts {
            return self.size();
        }
        self.count_entries()
    }

    /// Counts the entries with getdents64 (kernels before 6.2).
    fn count_entries(&mut self) -> Option<u64> {
        use std::os::fd::AsRawFd;
        let fd = self.fd.as_raw_fd();
        // SAFETY: lseek on a descriptor we own.
        if unsafe { libc::lseek(fd, 0, libc::SEEK_SET) } != 0 {
            return None;
        }
        let mut count = 0u64;
        loop {
            // SAFETY: getdents64 writes at most buf.len() bytes into buf.
            let read = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    fd,
                    self.buf.as_mut_ptr(),
                    self.buf.len(),
                )
            };
            if read < 0 {
                return None;
            }
            if read == 0 {
                return Some(count);
            }
            count += count_dirents(&self.buf[..read as usize]);
        }
    }
}

/// Entries in a getdents64 buffer, not counting "." and "..". Layout of each record: inode
/// (8 bytes), offset (8), record length (2), type (1), NUL-terminated name.
pub fn count_dirents(mut records: &[u8]) -> u64 {
    let mut count = 0;
    while records.len() >= 19 {
        let length = u16::from_ne_bytes([records[16], records[17]]) as usize;
        if length < 19 || length > records.len() {
            break;
        }
        let name = &records[19..length];
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        if name != b"." && name != b".." {
            count += 1;
        }
        records = &records[length..];
    }
    count
}

impl Default for ProcessReport {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessReport {
    pub fn new() -> ProcessReport {
        // SAFETY: sysconf has no preconditions.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let boot_time = std::fs::read("/proc/stat")
            .ok()
            .and_then(|bytes| parse_boot_time(&bytes));
        ProcessReport {
            ticks_per_second: if ticks > 0 { ticks as f64 } else { 100.0 },
            page_size: if page > 0 { page as f64 } else { 4096.0 },
            boot_time,
            files: Mutex::new(SelfFiles {
                stat: crate::roots::KeptFile::new("/proc/self/stat".into()),
                stat_buf: Vec::with_capacity(512),
                fd_dir: FdDir::open(),
            }),
        }
    }
}

/// What /proc/self/stat says about us.
#[derive(Debug, PartialEq)]
pub struct SelfStat {
    pub cpu_ticks: u64,
    pub threads: u64,
    pub start_ticks: u64,
    pub virtual_bytes: u64,
    pub resident_pages: u64,
}

/// Parses /proc/PID/stat: the fields after the command name in parentheses (which may hold
/// spaces and parentheses itself, so the last ')' ends it).
pub fn parse_self_stat(bytes: &[u8]) -> Option<SelfStat> {
    let text = std::str::from_utf8(bytes).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    // The first field after the name is field 3 (state); utime is field 14, stime 15,
    // num_threads 20, starttime 22, vsize 23, rss 24.
    let mut wanted = [0u64; 6];
    let numbers = [14, 15, 20, 22, 23, 24];
    let mut found = 0;
    for (n, field) in (3..).zip(rest.split_ascii_whitespace()) {
        if let Some(i) = numbers.iter().position(|&w| w == n) {
            wanted[i] = field.parse().ok()?;
            found += 1;
        }
        if n >= 24 {
            break;
        }
    }
    if found < numbers.len() {
        return None;
    }
    let [utime, stime, threads, start_ticks, virtual_bytes, resident_pages] = wanted;
    Some(SelfStat {
        cpu_ticks: utime.saturating_add(stime),
        threads,
        start_ticks,
        virtual_bytes,
        resident_pages,
    })
}

/// `btime` of /proc/stat: the boot time in seconds since the epoch.
pub fn parse_boot_time(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|v| v as f64)
}

impl SelfReport for ProcessReport {
    fn write(&self, out: &mut Exposition) {
        let gauge = |out: &mut Exposition, name: &str, help: &str, kind: Kind, value: f64| {
            let id = out.family(name, help, kind, &[]);
            out.sample(id, &[], value);
        };
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let SelfFiles {
            stat,
            stat_buf,
            fd_dir,
        } = &mut *files;
        let stat = stat
            .read_into(stat_buf)
            .ok()
            .and_then(|()| parse_self_stat(stat_buf));
        if let Some(stat) = stat {
            gauge(
                out,
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                Kind::Counter,
                stat.cpu_ticks as f64 / self.ticks_per_second,
            );
            gauge(
                out,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                Kind::Gauge,
                stat.virtual_bytes as f64,
            );
            gauge(
                out,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                Kind::Gauge,
                stat.resident_pages as f64 * self.page_size,
            );
            gauge(
                out,
                "process_threads",
                "Number of OS threads in the process.",
                Kind::Gauge,
                stat.threads as f64,
            );
            if let Some(boot) = self.boot_time {
                gauge(
                    out,
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                    Kind::Gauge,
                    boot + stat.start_ticks as f64 / self.ticks_per_second,
                );
            }
        }
        if fd_dir.is_none() {
            *fd_dir = FdDir::open();
        }
        let open_fds = fd_dir.as_mut().and_then(FdDir::count);
        if open_fds.is_none() {
            *fd_dir = None; // opened again next time
        }
        if let Some(open_fds) = open_fds {
            gauge(
                out,
                "process_open_fds",
                "Number of open file descriptors.",
                Kind::Gauge,
                open_fds as f64,
            );
        }
        if let Some(limit) = soft_limit(libc::RLIMIT_NOFILE) {
            gauge(
                out,
                "process_max_fds",
                "Maximum number of open file descriptors.",
                Kind::Gauge,
                limit,
            );
        }
        if let Some(limit) = soft_limit(libc::RLIMIT_AS) {
            gauge(
                out,
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
                Kind::Gauge,
                limit,
            );
        }
    }
}

/// getrlimit's resource type: glibc has its own, musl (the static Pi builds) a plain int.
#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

/// A soft resource limit; unlimited is -1, as client_golang reports it.
fn soft_limit(resource: Resource) -> Option<f64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    if unsafe { libc::getrlimit(resource, &mut limit) } != 0 {
        return None;
    }
    Some(if limit.rlim_cur == libc::RLIM_INFINITY {
        -1.0
    } else {
        limit.rlim_cur as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_stat_parses_a_name_with_spaces_and_parentheses() {
        let line = b"4242 (pi (metrics) x) S 1 4242 4242 0 -1 4194560 300 0 0 0 25 17 0 0 20 0 3 0 1234 9875456 1150 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let stat = parse_self_stat(line).unwrap();
        assert_eq!(
            stat,
            SelfStat {
                cpu_ticks: 42,
                threads: 3,
                start_ticks: 1234,
                virtual_bytes: 9875456,
                resident_pages: 1150,
            }
        );
        assert_eq!(parse_self_stat(b"1 (x) S 1 2"), None);
        assert_eq!(parse_self_stat(b"\xff\xfe"), None);
        assert_eq!(parse_boot_time(b"cpu 1 2\nbtime 1700000000\n"), Some(1.7e9));
    }

    #[test]
    fn directory_entries_are_counted_again_from_the_start() {
        // A directory whose entries the test controls (other tests open descriptors).
        let tmp = tempfile::tempdir().unwrap();
        for i in 0..300 {
            std::fs::write(tmp.path().join(format!("a-rather-long-file-name-{i}")), "").unwrap();
        }
        let path = std::ffi::CString::new(tmp.path().to_str().unwrap()).unwrap();
        let mut dir = FdDir::open_path(&path).unwrap();
        // 300 entries take more than one 4 KiB getdents64 buffer.
        assert_eq!(dir.count(), Some(300));
        std::fs::write(tmp.path().join("one-more"), "").unwrap();
        assert_eq!(dir.count(), Some(301));
        assert!(
            !dir.size_counts,
            "a tmpfs directory's size is not its entry count"
        );
        let mut fds = FdDir::open().unwrap();
        assert!(fds.count().unwrap() >= 3);
        // The fstat shortcut (Linux >= 6.2) and the listing agree, whichever this kernel uses
        // (tried a few times: other tests open and close files in between).
        let kept = std::fs::File::open("/proc/self/stat").unwrap();
        let agree = (0..20).any(|_| fds.count() == fds.count_entries());
        drop(kept);
        assert!(agree);
        assert_eq!(count_dirents(&[0; 10]), 0);
        assert_eq!(count_dirents(&[0xff; 64]), 0);
    }

    #[test]
    fn http_counters_land_in_the_scrape() {
        let stats = HttpStats::default();
        stats.request("/metrics", 200);
        stats.request("/nope", 404);
        stats.accept_error("emfile");
        let mut out = Exposition::new("n");
        stats.write(&mut out);
        let mut text = String::new();
        out.render(&mut text);
        assert!(text.contains(
            "pimetrics_http_requests_total{node=\"n\",path=\"/metrics\",code=\"200\"} 1\n"
        ));
        assert!(text
            .contains("pimetrics_http_requests_total{node=\"n\",path=\"other\",code=\"404\"} 1\n"));
        assert!(
            text.contains("pimetrics_http_accept_errors_total{node=\"n\",error=\"emfile\"} 1\n")
        );
    }
}
