//! node_filesystem_* from the mount table of PID 1 and statvfs(3) of each mount point, as
//! node_exporter 1.12 exports them (labels device, mountpoint, fstype, device_error).
//!
//! The mount table is <procfs>/1/mountinfo, else <procfs>/self/mountinfo (node_exporter's
//! fallback when /proc/1 is hidden), else the older /1/mounts and /self/mounts (no
//! node_filesystem_mount_info then: only mountinfo has the device numbers). It is parsed again
//! only when its bytes change, so a scrape normally allocates nothing here.
//!
//! statvfs on a dead NFS server can block for minutes. The calls run on one persistent worker
//! thread; a call that does not answer within `filesystem.mount_timeout` leaves its mount
//! reported with device_error=1 ("mountpoint timeout") and the worker abandoned to its call; a
//! new worker takes the next mounts. The mount is not statted again until the abandoned call
//! returns, so one hung mount costs one blocked thread, and a scrape never waits longer than
//! the timeout per newly hung mount.

use std::borrow::Cow;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use regex_lite::Regex;

use super::{CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::flag::{text_flag, Flag};
use crate::roots::{KeptFile, Roots};
use serde::{Deserialize, Serialize};

use crate::duration::{at_most, Seconds, MAX_TIMEOUT};


/// node_exporter's defaults, so the same filesystems are reported.
pub const DEFAULT_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
pub const DEFAULT_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$";
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesystemConfig {
    /// Regex of mount points to skip.
    pub mount_points_exclude: String,
    /// Regex of filesystem types to skip.
    pub fs_types_exclude: String,
    /// How long a statfs may take before its mount is reported with `device_error` and skipped.
    pub mount_timeout: Seconds,
}

impl Default for FilesystemConfig {
    fn default() -> Self {
        FilesystemConfig {
            mount_points_exclude: DEFAULT_MOUNT_POINTS_EXCLUDE.to_string(),
            fs_types_exclude: DEFAULT_FS_TYPES_EXCLUDE.to_string(),
            mount_timeout: Seconds(Duration::from_secs(5)),
        }
    }
}

impl super::CollectorSettings for FilesystemConfig {
    /// `--collector.*` flags of these settings (node_exporter's names).
    const FLAGS: &'static [Flag<Self>] = &[
        text_flag!(
            "--collector.filesystem.mount-points-exclude",
            "REGEX",
            "Regexp of mount points to exclude for filesystem collector. Config: filesystem.mount_points_exclude.",
            mount_points_exclude
        ),
        text_flag!(
            "--collector.filesystem.fs-types-exclude",
            "REGEX",
            "Regexp of filesystem types to exclude for filesystem collector. Config: filesystem.fs_types_exclude.",
            fs_types_exclude
        ),
        Flag {
            name: "--collector.filesystem.mount-timeout",
            placeholder: "DURATION",
            help: "How long to wait for a mount to respond before marking it as stale. Config: filesystem.mount_timeout.",
            default: |s| s.mount_timeout.to_string(),
            switch: false,
            apply: |s, v| {
                s.mount_timeout = Seconds::parse(v)?;
                Ok(())
            },
        },
    ];

    fn validate(&self) -> Result<(), String> {
        for (key, pattern) in [
            ("filesystem.mount_points_exclude", &self.mount_points_exclude),
            ("filesystem.fs_types_exclude", &self.fs_types_exclude),
        ] {
            Regex::new(pattern)
                .map_err(|err| format!("{key}: invalid regex {pattern:?}: {err}"))?;
        }
        if self.mount_timeout.0.is_zero() {
            return Err("filesystem.mount_timeout: must be more than 0".into());
        }
        at_most("filesystem.mount_timeout", self.mount_timeout, MAX_TIMEOUT)
    }
}

/// What statvfs says about a filesystem, in its own units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsStats {
    pub block_size: u64,
    pub blocks: u64,
    pub blocks_free: u64,
    pub blocks_avail: u64,
    pub files: u64,
    pub files_free: u64,
}

/// The system call, behind a trait so tests can make it block like a hung NFS mount.
pub trait StatFs: Send + Sync + 'static {
    fn stat(&self, path: &Path) -> io::Result<FsStats>;
}

/// statvfs(3) (the 64-bit variant, so 32-bit Pis get 64-bit block counts).
pub struct LibcStatFs;

impl StatFs for LibcStatFs {
    fn stat(&self, path: &Path) -> io::Result<FsStats> {
        use std::os::unix::ffi::OsStrExt;
        let bytes = path.as_os_str().as_bytes();
        if bytes.contains(&0) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // The NUL-terminated path on the stack (mount points are short), so a scrape does
        // not allocate here; longer ones in a CString.
        let mut stack = [0u8; 512];
        let long;
        let c_path = if bytes.len() < stack.len() {
            stack[..bytes.len()].copy_from_slice(bytes);
            stack.as_ptr().cast::<libc::c_char>()
        } else {
            long = std::ffi::CString::new(bytes)
                .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            long.as_ptr()
        };
        let mut buf: libc::statvfs64 = unsafe { std::mem::zeroed() };
        // SAFETY: c_path is a valid NUL-terminated string (no NUL inside, checked above) that
        // lives until the call returns, and buf a valid out-pointer.
        if unsafe { libc::statvfs64(c_path, &mut buf) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // node_exporter multiplies by f_bsize (Go's Statfs_t.Bsize); so do we.
        #[allow(clippy::useless_conversion)]
        Ok(FsStats {
            block_size: u64::from(buf.f_bsize),
            blocks: u64::from(buf.f_blocks),
            blocks_free: u64::from(buf.f_bfree),
            blocks_avail: u64::from(buf.f_bavail),
            files: u64::from(buf.f_files),
            files_free: u64::from(buf.f_ffree),
        })
    }
}

/// One mounted filesystem as the mount table describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    /// Decoded: `\040` is a space again.
    pub mount_point: String,
    pub fs_type: String,
    pub read_only: bool,
    /// From mountinfo only.
    pub major_minor: Option<(u32, u32)>,
}

/// Decodes the octal escapes the kernel writes for space, tab, newline and backslash.
pub fn unescape_octal(text: &str) -> Cow<'_, str> {
    if !text.contains('\\') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let digits = bytes.get(index + 1..index + 4);
        let octal = digits.filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (byte, octal) {
            (b'\\', Some(d)) => {
                let value = u32::from(d[0] - b'0') * 64
                    + u32::from(d[1] - b'0') * 8
                    + u32::from(d[2] - b'0');
                // \400 and above are not bytes; keep such text as it is.
                match u8::try_from(value) {
                    Ok(decoded) => {
                        out.push(decoded);
                        index += 4;
                    }
                    Err(_) => {
                        out.push(byte);
                        index += 1;
                    }
                }
            }
            _ => {
                out.push(byte);
                index += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn has_ro(options: &str) -> bool {
    options.split(',').any(|option| option == "ro")
}

/// Parses /proc/<pid>/mountinfo: `id parent major:minor root mountpoint options [optional...] -
/// fstype source superoptions`.
pub fn parse_mountinfo(text: &str) -> Result<Vec<Mount>, CollectError> {
    let mut mounts = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || CollectError(format!("mountinfo: invalid line {line:?}"));
        let mut fields = line.split_ascii_whitespace();
        let _id = fields.next().ok_or_else(bad)?;
        let _parent = fields.next().ok_or_else(bad)?;
        let (major, minor) = fields
            .next()
            .and_then(|f| f.split_once(':'))
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            .ok_or_else(bad)?;
        let _root = fields.next().ok_or_else(bad)?;
        let mount_point = fields.next().ok_or_else(bad)?;
        let options = fields.next().ok_or_else(bad)?;
        // Optional fields ("shared:1") up to the "-" separator.
        if !fields.by_ref().any(|f| f == "-") {
            return Err(bad());
        }
        let fs_type = fields.next().ok_or_else(bad)?;
        let device = fields.next().ok_or_else(bad)?;
        let super_options = fields.next().unwrap_or("");
        mounts.push(Mount {
            device: device.to_string(),
            mount_point: unescape_octal(mount_point).into_owned(),
            fs_type: fs_type.to_string(),
            read_only: has_ro(options) || has_ro(super_options),
            major_minor: Some((major, minor)),
        });
    }
    Ok(mounts)
}

/// Parses /proc/<pid>/mounts (fstab format: `device mountpoint fstype options dump pass`).
pub fn parse_mounts(text: &str) -> Result<Vec<Mount>, CollectError> {
    let mut mounts = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || CollectError(format!("mounts: invalid line {line:?}"));
        let mut fields = line.split_ascii_whitespace();
        let device = fields.next().ok_or_else(bad)?;
        let mount_point = fields.next().ok_or_else(bad)?;
        let fs_type = fields.next().ok_or_else(bad)?;
        let options = fields.next().ok_or_else(bad)?;
        mounts.push(Mount {
            device: device.to_string(),
            mount_point: unescape_octal(mount_point).into_owned(),
            fs_type: fs_type.to_string(),
            read_only: has_ro(options),
            major_minor: None,
        });
    }
    Ok(mounts)
}

/// Strips the rootfs prefix from mount points when the table lists them as this process sees
/// them (/proc/self/mountinfo in a container with the host's / at /host), as node_exporter.
fn strip_rootfs<'a>(mount_point: &'a str, rootfs: &str) -> &'a str {
    let rootfs = rootfs.trim_end_matches('/');
    if rootfs.is_empty() {
        return mount_point;
    }
    match mount_point.strip_prefix(rootfs) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => mount_point,
    }
}

/// Go's text for an errno, as node_exporter puts it in the device_error label.
pub fn error_text(err: &io::Error, out: &mut String) {
    out.clear();
    match err.raw_os_error() {
        // Go's own wording where it differs from glibc's.
        Some(libc::ESTALE) => out.push_str("stale NFS file handle"),
        Some(code) => {
            let text = io::Error::from_raw_os_error(code).to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            let mut chars = text.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_lowercase());
                out.push_str(chars.as_str());
            }
        }
        None => out.push_str(&err.to_string()),
    }
}

/// Local filesystems whose statfs reads counters kept in memory and never waits for a
/// device or a server (ext4_statfs, btrfs_statfs, f2fs_statfs, shmem): called on the collect
/// thread directly. Everything else (network and FUSE filesystems, vfat, which may scan its
/// FAT on the first call, xfs, which flushes pending inode work first) goes to the worker.
fn answers_from_memory(fs_type: &str) -> bool {
    matches!(
        fs_type,
        "ext2" | "ext3" | "ext4" | "btrfs" | "f2fs" | "tmpfs" | "ramfs"
    )
}

pub fn build(ctx: &Context<FilesystemConfig>, out: &mut Exposition) -> Setup {
    build_with(ctx, out, Arc::new(LibcStatFs))
}

fn build_with(ctx: &Context<FilesystemConfig>, out: &mut Exposition, statfs: Arc<dyn StatFs>) -> Setup {
    let config = ctx.settings;
    let mount_points_exclude = match Regex::new(&config.mount_points_exclude) {
        Ok(regex) => regex,
        Err(err) => return Setup::Unavailable(format!("filesystem.mount_points_exclude: {err}")),
    };
    let fs_types_exclude = match Regex::new(&config.fs_types_exclude) {
        Ok(regex) => regex,
        Err(err) => return Setup::Unavailable(format!("filesystem.fs_types_exclude: {err}")),
    };
    const LABELS: &[&str] = &["device", "mountpoint", "fstype", "device_error"];
    let mut gauge = |name: &str, help: &str| out.family(name, help, Kind::Gauge, LABELS);
    let families = Families {
        size: gauge("node_filesystem_size_bytes", "Filesystem size in bytes."),
        free: gauge(
            "node_filesystem_free_bytes",
            "Filesystem free space in bytes.",
        ),
        avail: gauge(
            "node_filesystem_avail_bytes",
            "Filesystem space available to non-root users in bytes.",
        ),
        files: gauge("node_filesystem_files", "Filesystem total file nodes."),
        files_free: gauge(
            "node_filesystem_files_free",
            "Filesystem total free file nodes.",
        ),
        readonly: gauge("node_filesystem_readonly", "Filesystem read-only status."),
        device_error: gauge(
            "node_filesystem_device_error",
            "Whether an error occurred while getting statistics for the given device.",
        ),
        mount_info: out.family(
            "node_filesystem_mount_info",
            "Filesystem mount information.",
            Kind::Gauge,
            &["device", "major", "minor", "mountpoint"],
        ),
    };
    let roots = ctx.roots.clone();
    Setup::Ready(Box::new(FilesystemCollector {
        tables: [
            KeptFile::new(roots.proc("1/mountinfo")),
            KeptFile::new(roots.proc("self/mountinfo")),
            KeptFile::new(roots.proc("1/mounts")),
            KeptFile::new(roots.proc("self/mounts")),
        ],
        roots,
        mount_points_exclude,
        fs_types_exclude,
        timeout: config.mount_timeout.0,
        families,
        buf: Vec::with_capacity(8192),
        last_table: None,
        mounts: Vec::new(),
        statfs,
        worker: None,
        stuck: Vec::new(),
    }))
}

struct Families {
    size: FamilyId,
    free: FamilyId,
    avail: FamilyId,
    files: FamilyId,
    files_free: FamilyId,
    readonly: FamilyId,
    device_error: FamilyId,
    mount_info: FamilyId,
}

/// A mount to report, with everything a scrape needs prepared.
struct Entry {
    mount: Mount,
    host_path: Arc<Path>,
    major: String,
    minor: String,
    /// The device_error label of the last failure, reused.
    error: String,
}

/// A mount whose statvfs timed out; `returned` is set when the abandoned call comes back.
struct Stuck {
    mount_point: String,
    returned: Arc<AtomicBool>,
}

struct Worker {
    jobs: SyncSender<Arc<Path>>,
    results: Receiver<io::Result<FsStats>>,
    exited: Arc<AtomicBool>,
}

impl Worker {
    fn spawn(statfs: Arc<dyn StatFs>) -> io::Result<Worker> {
        let (jobs, job_rx) = mpsc::sync_channel::<Arc<Path>>(1);
        let (result_tx, results) = mpsc::sync_channel(1);
        let exited = Arc::new(AtomicBool::new(false));
        let exited_flag = Arc::clone(&exited);
        std::thread::Builder::new()
            .name("pimetrics-statfs".into())
            .spawn(move || {
                for path in job_rx {
                    if result_tx.send(statfs.stat(&path)).is_err() {
                        break; // abandoned while the call hung
                    }
                }
                exited_flag.store(true, Ordering::Release);
            })?;
        Ok(Worker {
            jobs,
            results,
            exited,
        })
    }
}

enum StatOutcome {
    Stats(FsStats),
    Failed(io::Error),
    /// The call hangs; the flag is set when it returns.
    TimedOut(Arc<AtomicBool>),
}

struct FilesystemCollector {
    roots: Roots,
    /// The mount tables in order of preference, kept open once read.
    tables: [KeptFile; 4],
    mount_points_exclude: Regex,
    fs_types_exclude: Regex,
    timeout: Duration,
    families: Families,
    buf: Vec<u8>,
    /// Which table and its bytes the entries were built from.
    last_table: Option<(usize, Vec<u8>)>,
    mounts: Vec<Entry>,
    statfs: Arc<dyn StatFs>,
    worker: Option<Worker>,
    stuck: Vec<Stuck>,
}

impl FilesystemCollector {
    /// Reads the first mount table that exists into `buf`; returns its index.
    fn read_table(&mut self) -> Result<usize, CollectError> {
        for (index, table) in self.tables.iter_mut().enumerate() {
            match table.read_into(&mut self.buf) {
                Ok(()) => return Ok(index),
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(CollectError(format!("{}: {err}", table.path().display()))),
            }
        }
        Err(CollectError(format!(
            "no mount table: none of {} exists",
            self.tables
                .iter()
                .map(|t| t.path().display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    /// Rebuilds the entries from the table in `buf`: filters, then keeps the last mount of
    /// each mount point (the one a path lookup reaches).
    fn rebuild(&mut self, table: usize) -> Result<(), CollectError> {
        let path = self.tables[table].path();
        let text = std::str::from_utf8(&self.buf)
            .map_err(|_| CollectError(format!("{}: not UTF-8", path.display())))?;
        let parsed = if table < 2 {
            parse_mountinfo(text)
        } else {
            parse_mounts(text)
        }
        .map_err(|err| CollectError(format!("{}: {err}", path.display())))?;
        if parsed.is_empty() {
            return Err(CollectError(format!("{}: no mounts", path.display())));
        }
        let rootfs = self.roots.rootfs.to_string_lossy().into_owned();
        let mut entries: Vec<Entry> = Vec::with_capacity(parsed.len());
        for mut mount in parsed {
            let stripped = strip_rootfs(&mount.mount_point, &rootfs);
            if stripped.len() != mount.mount_point.len() {
                mount.mount_point = stripped.to_string();
            }
            if self.mount_points_exclude.is_match(&mount.mount_point)
                || self.fs_types_exclude.is_match(&mount.fs_type)
            {
                continue;
            }
            entries.retain(|e| e.mount.mount_point != mount.mount_point);
            let (major, minor) = match mount.major_minor {
                Some((major, minor)) => (major.to_string(), minor.to_string()),
                None => (String::new(), String::new()),
            };
            entries.push(Entry {
                host_path: Arc::from(self.roots.host_mount_point(&mount.mount_point)),
                mount,
                major,
                minor,
                error: String::new(),
            });
        }
        self.mounts = entries;
        Ok(())
    }

    /// statvfs of a mount of type `fs_type`: on the worker, waiting at most the timeout,
    /// unless the filesystem answers from memory (see `answers_from_memory`): then here, which
    /// spares the two thread switches a worker round trip costs per mount and scrape.
    fn stat(&mut self, path: &Arc<Path>, fs_type: &str) -> StatOutcome {
        if answers_from_memory(fs_type) {
            return match self.statfs.stat(path) {
                Ok(stats) => StatOutcome::Stats(stats),
                Err(err) => StatOutcome::Failed(err),
            };
        }
        let worker = match self.worker.take() {
            Some(worker) => worker,
            None => match Worker::spawn(Arc::clone(&self.statfs)) {
                Ok(worker) => worker,
                Err(err) => return StatOutcome::Failed(err),
            },
        };
        if worker.jobs.send(Arc::clone(path)).is_err() {
            return StatOutcome::Failed(io::Error::other("statfs worker exited"));
        }
        match worker.results.recv_timeout(self.timeout) {
            Ok(result) => {
                self.worker = Some(worker);
                match result {
                    Ok(stats) => StatOutcome::Stats(stats),
                    Err(err) => StatOutcome::Failed(err),
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                // Dropping our ends lets the thread exit once its call returns.
                StatOutcome::TimedOut(worker.exited)
            }
            Err(RecvTimeoutError::Disconnected) => {
                StatOutcome::Failed(io::Error::other("statfs worker died"))
            }
        }
    }
}

impl Collector for FilesystemCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        // procfs signals mount table changes (POLLPRI): with none, the table is not even read
        // (generating it costs the kernel more than all the statfs calls).
        let quiet = matches!(&self.last_table,
            Some((t, _)) if self.tables[*t].mount_table_changed() == Some(false));
        if !quiet {
            let table = self.read_table()?;
            let unchanged =
                matches!(&self.last_table, Some((t, bytes)) if *t == table && *bytes == self.buf);
            if !unchanged {
                self.last_table = None;
                self.rebuild(table)?;
                self.last_table = Some((table, self.buf.clone()));
            }
        }
        self.stuck.retain(|stuck| {
            let returned = stuck.returned.load(Ordering::Acquire);
            if returned {
                log::info!("filesystem: {} answers again", stuck.mount_point);
            }
            !returned
        });
        let mut mounts = std::mem::take(&mut self.mounts);
        for entry in &mut mounts {
            let is_stuck = self
                .stuck
                .iter()
                .any(|s| s.mount_point == entry.mount.mount_point);
            let outcome = if is_stuck {
                None
            } else {
                Some(self.stat(&entry.host_path, &entry.mount.fs_type))
            };
            let stats = match outcome {
                Some(StatOutcome::Stats(stats)) => Some(stats),
                Some(StatOutcome::Failed(err)) => {
                    error_text(&err, &mut entry.error);
                    None
                }
                Some(StatOutcome::TimedOut(returned)) => {
                    log::warn!(
                        "filesystem: statfs of {} did not answer within {:?}; not asked again until it does",
                        entry.mount.mount_point,
                        self.timeout
                    );
                    self.stuck.push(Stuck {
                        mount_point: entry.mount.mount_point.clone(),
                        returned,
                    });
                    entry.error.clear();
                    entry.error.push_str("mountpoint timeout");
                    None
                }
                None => {
                    entry.error.clear();
                    entry.error.push_str("mountpoint timeout");
                    None
                }
            };
            write_entry(&self.families, entry, stats, out);
        }
        self.mounts = mounts;
        Ok(())
    }
}

fn write_entry(families: &Families, entry: &Entry, stats: Option<FsStats>, out: &mut Exposition) {
    let mount = &entry.mount;
    let error = if stats.is_some() {
        ""
    } else {
        entry.error.as_str()
    };
    let labels = [
        mount.device.as_str(),
        mount.mount_point.as_str(),
        mount.fs_type.as_str(),
        error,
    ];
    out.sample(
        families.device_error,
        &labels,
        if stats.is_some() { 0.0 } else { 1.0 },
    );
    out.sample(
        families.readonly,
        &labels,
        if mount.read_only { 1.0 } else { 0.0 },
    );
    let Some(stats) = stats else {
        return;
    };
    let block_size = stats.block_size as f64;
    out.sample(families.size, &labels, stats.blocks as f64 * block_size);
    out.sample(
        families.free,
        &labels,
        stats.blocks_free as f64 * block_size,
    );
    out.sample(
        families.avail,
        &labels,
        stats.blocks_avail as f64 * block_size,
    );
    out.sample(families.files, &labels, stats.files as f64);
    out.sample(families.files_free, &labels, stats.files_free as f64);
    if mount.major_minor.is_some() {
        out.sample(
            families.mount_info,
            &[
                mount.device.as_str(),
                entry.major.as_str(),
                entry.minor.as_str(),
                mount.mount_point.as_str(),
            ],
            1.0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::sync::{Condvar, Mutex};


    // Raspberry Pi OS Bookworm (Pi 4, 64-bit) /proc/mounts, assembled from lines quoted in
    // public projects' tests; a USB stick with a space in its label added.
    const PI_MOUNTS: &str = "\
/dev/mmcblk0p2 / ext4 rw,noatime 0 0
devtmpfs /dev devtmpfs rw,relatime,size=1867796k,nr_inodes=466949,mode=755 0 0
proc /proc proc rw,relatime 0 0
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /run tmpfs rw,nosuid,nodev,size=387584k,nr_inodes=819200,mode=755 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot 0 0
/dev/mmcblk0p1 /boot/firmware vfat rw,relatime,fmask=0022,dmask=0022,codepage=437,iocharset=ascii,shortname=mixed,errors=remount-ro 0 0
/dev/sda1 /media/pi/PANTRY\\040USB vfat ro,nosuid 0 0
";

    #[test]
    fn parses_pi_mounts_decoding_escapes() {
        let mounts = parse_mounts(PI_MOUNTS).unwrap();
        assert_eq!(mounts.len(), 8);
        assert_eq!(
            mounts[0],
            Mount {
                device: "/dev/mmcblk0p2".into(),
                mount_point: "/".into(),
                fs_type: "ext4".into(),
                read_only: false,
                major_minor: None,
            }
        );
        assert_eq!(mounts[6].mount_point, "/boot/firmware");
        assert_eq!(mounts[6].fs_type, "vfat");
        // "errors=remount-ro" is not "ro".
        assert!(!mounts[6].read_only);
        assert_eq!(mounts[7].mount_point, "/media/pi/PANTRY USB");
        assert!(mounts[7].read_only);
    }

    #[test]
    fn parses_mountinfo_with_optional_fields_and_escapes() {
        // Lines of node_exporter's fixture collector/fixtures/proc/1/mountinfo (Apache-2.0).
        let text = "\
29 1 259:2 / / rw,relatime shared:1 - ext4 /dev/dm-2 errors=remount-ro,data=ordered
33 24 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
48 45 260:3 / /boot rw,relatime shared:92 - ext2 /dev/sda3 rw
3148 3003 260:0 / /var/lib/kubelet/plugins/kubernetes.io/vsphere-volume/mounts/[vsanDatastore]\\040bafb9e5a rw,relatime shared:31 - ext4 /dev/sda rw,data=ordered
3149 3004 260:0 / /mnt/a\\011b rw - ext4 /dev/sda ro
";
        let mounts = parse_mountinfo(text).unwrap();
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[0].device, "/dev/dm-2");
        assert_eq!(mounts[0].major_minor, Some((259, 2)));
        assert!(!mounts[0].read_only);
        assert!(mounts[1].read_only);
        assert_eq!(mounts[2].mount_point, "/boot");
        assert_eq!(
            mounts[3].mount_point,
            "/var/lib/kubelet/plugins/kubernetes.io/vsphere-volume/mounts/[vsanDatastore] bafb9e5a"
        );
        assert_eq!(mounts[4].mount_point, "/mnt/a\tb");
        assert!(mounts[4].read_only, "ro in the super options");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            "29 1 259:2 / / rw,relatime shared:1 ext4 /dev/dm-2 rw",
            "29 1 2592 / / rw - ext4 /dev/dm-2 rw",
            "29 1 a:b / / rw - ext4 /dev/dm-2 rw",
            "29 1 259:2 / / rw -",
            "29",
        ] {
            assert!(parse_mountinfo(bad).is_err(), "{bad}");
        }
        assert!(parse_mounts("/dev/sda1 /mnt").is_err());
        for (escaped, decoded) in [
            ("\\", "\\"),
            ("a\\4", "a\\4"),
            ("a\\777b", "a\\777b"),
            ("a\\04x", "a\\04x"),
            ("a\\134b", "a\\b"),
            ("\\040\\040", "  "),
            ("\\377", "\u{fffd}"),
        ] {
            assert_eq!(unescape_octal(escaped), decoded, "{escaped}");
        }
    }

    #[test]
    fn rootfs_prefix_is_stripped_only_at_a_path_boundary() {
        assert_eq!(strip_rootfs("/host/boot", "/host"), "/boot");
        assert_eq!(strip_rootfs("/host", "/host/"), "/");
        assert_eq!(strip_rootfs("/hostdata", "/host"), "/hostdata");
        assert_eq!(strip_rootfs("/boot", "/"), "/boot");
    }

    #[test]
    fn errno_text_is_gos() {
        let mut text = String::new();
        for (code, expected) in [
            (libc::ENOENT, "no such file or directory"),
            (libc::EACCES, "permission denied"),
            (libc::EIO, "input/output error"),
            (libc::ESTALE, "stale NFS file handle"),
            (libc::ENOTCONN, "transport endpoint is not connected"),
        ] {
            error_text(&io::Error::from_raw_os_error(code), &mut text);
            assert_eq!(text, expected);
        }
    }

    /// A statvfs that hangs on one path until released, like a dead NFS server.
    struct HangingStatFs {
        hang_on: &'static str,
        released: Mutex<bool>,
        wake: Condvar,
        calls: Mutex<HashMap<PathBuf, u32>>,
    }

    impl StatFs for HangingStatFs {
        fn stat(&self, path: &Path) -> io::Result<FsStats> {
            *self
                .calls
                .lock()
                .unwrap()
                .entry(path.to_path_buf())
                .or_default() += 1;
            if path.ends_with(self.hang_on) {
                let mut released = self.released.lock().unwrap();
                while !*released {
                    released = self.wake.wait(released).unwrap();
                }
            }
            Ok(FsStats {
                block_size: 4096,
                blocks: 1000,
                blocks_free: 600,
                blocks_avail: 500,
                files: 100,
                files_free: 90,
            })
        }
    }

    impl HangingStatFs {
        fn calls(&self, suffix: &str) -> u32 {
            let calls = self.calls.lock().unwrap();
            calls
                .iter()
                .filter(|(path, _)| path.ends_with(suffix))
                .map(|(_, n)| *n)
                .sum()
        }
    }

    fn scrape(collector: &mut dyn Collector, exp: &mut Exposition) -> String {
        exp.clear();
        collector.update(exp).unwrap();
        let mut text = String::new();
        exp.render(&mut text);
        text
    }

    #[test]
    fn a_hung_mount_is_reported_skipped_and_retried_only_after_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/1")).unwrap();
        std::fs::write(
            dir.path().join("proc/1/mounts"),
            "/dev/mmcblk0p2 / ext4 rw,noatime 0 0\n\
             nas:/export /mnt/nfs nfs4 rw,relatime 0 0\n\
             /dev/mmcblk0p1 /boot/firmware vfat rw,relatime 0 0\n",
        )
        .unwrap();
        let roots = Roots {
            procfs: dir.path().join("proc"),
            sysfs: dir.path().join("sys"),
            rootfs: dir.path().join("root"),
            devfs: "/dev".into(),
        };
        let settings = FilesystemConfig {
            mount_timeout: Seconds(Duration::from_millis(100)),
            ..FilesystemConfig::default()
        };
        let ctx = Context {
            roots: &roots,
            settings: &settings,
        };
        let statfs = Arc::new(HangingStatFs {
            hang_on: "mnt/nfs",
            released: Mutex::new(false),
            wake: Condvar::new(),
            calls: Mutex::new(HashMap::new()),
        });
        let mut exp = Exposition::new("n");
        let Setup::Ready(mut collector) = build_with(&ctx, &mut exp, statfs.clone()) else {
            panic!("filesystem collector not built");
        };
        let hung = "node_filesystem_device_error{node=\"n\",device=\"nas:/export\",mountpoint=\"/mnt/nfs\",fstype=\"nfs4\",device_error=\"mountpoint timeout\"} 1\n";
        let boot_size = "node_filesystem_size_bytes{node=\"n\",device=\"/dev/mmcblk0p1\",mountpoint=\"/boot/firmware\",fstype=\"vfat\",device_error=\"\"} 4096000\n";
        for _ in 0..2 {
            let text = scrape(collector.as_mut(), &mut exp);
            assert!(text.contains(hung), "{text}");
            assert!(!text.contains("mountpoint=\"/mnt/nfs\",fstype=\"nfs4\",device_error=\"mountpoint timeout\"} 4096000"));
            // The mount after the hung one is still statted (by a new worker).
            assert!(text.contains(boot_size), "{text}");
            assert_eq!(
                statfs.calls("mnt/nfs"),
                1,
                "a stuck mount is not asked again"
            );
        }
        assert_eq!(statfs.calls("boot/firmware"), 2);

        *statfs.released.lock().unwrap() = true;
        statfs.wake.notify_all();
        let recovered = "node_filesystem_size_bytes{node=\"n\",device=\"nas:/export\",mountpoint=\"/mnt/nfs\",fstype=\"nfs4\",device_error=\"\"} 4096000\n";
        let mut text = String::new();
        for _ in 0..200 {
            text = scrape(collector.as_mut(), &mut exp);
            if text.contains(recovered) {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        assert!(text.contains(recovered), "{text}");
        assert_eq!(statfs.calls("mnt/nfs"), 2);
        assert!(text.contains("node_filesystem_avail_bytes{node=\"n\",device=\"nas:/export\",mountpoint=\"/mnt/nfs\",fstype=\"nfs4\",device_error=\"\"} 2048000\n"));
    }
}
