//! Where and how the agent reads the host. Every read of /proc, /sys, /dev or / goes through
//! `Roots`, so the agent can run in a container with the host's trees mounted elsewhere, and
//! tests can point it at fixture trees; and through the helpers here, shared by every
//! collector: whole-file reads into reused buffers (`read_into`), files kept open and re-read
//! with pread (`KeptFile`), optional files and attributes (`read_optional`, `read_attr`),
//! directory listings (`dir_names`, `numbered_dirs`) and integers as the kernel writes them
//! (`parse_u64`, `parse_i64`, `parse_int`). Only regular files are opened, never blocking.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The config's `paths` section and the `--path.*` flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Roots {
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
    pub rootfs: PathBuf,
    /// Where the device nodes are (`vcio`, `vcio_gencmd`). node_exporter has no such flag.
    pub devfs: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            procfs: PathBuf::from("/proc"),
            sysfs: PathBuf::from("/sys"),
            rootfs: PathBuf::from("/"),
            devfs: PathBuf::from("/dev"),
        }
    }
}

impl Roots {
    /// A path below the proc root; `rel` has no leading slash ("meminfo", "pressure/cpu").
    pub fn proc(&self, rel: &str) -> PathBuf {
        self.procfs.join(rel)
    }

    pub fn sys(&self, rel: &str) -> PathBuf {
        self.sysfs.join(rel)
    }

    /// A device node ("vcio").
    pub fn dev(&self, name: &str) -> PathBuf {
        self.devfs.join(name)
    }

    /// A path of the host's root filesystem; `abs` may be absolute ("/etc/os-release").
    pub fn root(&self, abs: &str) -> PathBuf {
        self.rootfs.join(abs.trim_start_matches('/'))
    }

    /// Maps a mount point as the host sees it to where this process can reach it.
    pub fn host_mount_point(&self, mount_point: &str) -> PathBuf {
        self.root(mount_point)
    }
}

/// Opens a file to read only if it is a regular file. The open itself never waits: a FIFO
/// (or a device) put where a /proc, /sys or text file was expected would block an ordinary
/// open until a writer shows up, and with it the whole collection. With O_NONBLOCK the open
/// returns at once and fstat tells what it is; regular files ignore O_NONBLOCK when read.
/// (procfs and sysfs attributes are regular files.)
pub fn open_regular(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let file_type = file.metadata()?.file_type();
    if file_type.is_file() {
        return Ok(file);
    }
    let what = if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() || file_type.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{what}, not read"),
    ))
}

/// Most bytes read from one file under the roots. /proc and /sys files are small (a
/// mountinfo with thousands of container mounts is a few MiB); this bounds what a strange
/// mount or a fixture gone wrong can make the agent allocate.
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// Reads a whole file into `buf`, reusing its capacity (scrapes read the same files every
/// time). A file longer than `MAX_FILE_BYTES` is an error, not a partial read.
pub fn read_into(path: &Path, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    read_all_at(&open_regular(path)?, buf)
}

/// Reads `file` from offset 0 to its end into `buf` (appending) with pread. Unlike
/// `read_to_end` this asks the kernel nothing else (no fstat and lseek for a size hint, which
/// /proc and /sys files do not have): a short read is the end, as for regular files and
/// procfs/sysfs (seq_file fills the buffer it is given unless it reached the end).
fn read_all_at(file: &File, buf: &mut Vec<u8>) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let start = buf.len();
    loop {
        let filled = buf.len();
        // Room up to the capacity reached before: buffers are reused across scrapes, so after
        // the first scrape this never allocates.
        if buf.capacity() - filled < 1024 {
            buf.reserve(filled.max(1024));
        }
        let spare = buf.spare_capacity_mut();
        let room = spare.len();
        // SAFETY: pread writes at most `room` bytes into the spare capacity, which is
        // allocated; no initialized data is needed there (unlike `read_at`, which would
        // have the whole spare room zeroed first, every scrape).
        let read = unsafe {
            libc::pread(
                file.as_raw_fd(),
                spare.as_mut_ptr().cast(),
                room,
                (filled - start) as libc::off_t,
            )
        };
        if read < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        let read = read as usize;
        // SAFETY: the kernel initialized `read` (<= room) bytes after `filled`.
        unsafe { buf.set_len(filled + read) };
        if read < room {
            return Ok(());
        }
        if (buf.len() - start) as u64 > MAX_FILE_BYTES {
            buf.truncate(start);
            buf.shrink_to(64 * 1024);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("longer than {} MiB, not read", MAX_FILE_BYTES >> 20),
            ));
        }
        // The buffer was filled: there may be more.
    }
}

/// A /proc or /sys file read again every scrape: opened once, then re-read from offset 0 with
/// pread on the same descriptor, which procfs (seq_file and sysctl files) and sysfs attributes
/// answer with fresh contents. That saves the path lookup, open, fstat and close of every
/// read (most of the cost of a small attribute). On any read error the descriptor is dropped
/// and the file opened again once (a sysfs node removed and re-created, an interface
/// renamed), so a kept descriptor never hides a change. Not for files that are replaced
/// rather than rewritten (/etc/os-release, text files): those are read by path.
#[derive(Debug)]
pub struct KeptFile {
    path: PathBuf,
    file: Option<File>,
}

/// Whether a descriptor just opened may stay open. The kernel hands out the lowest free
/// number, so a number past half the soft limit on descriptors means half of them are in use:
/// the file is then read and closed like any other, so kept files never take the descriptors
/// the HTTP clients need (under `LimitNOFILE=64` or a container's low limit). One getrlimit per
/// open; kept files are opened once.
fn may_keep(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return false;
    }
    // rlim_t is 32 bits wide on 32-bit Pis; RLIM_INFINITY is its largest value.
    #[allow(clippy::unnecessary_cast)]
    let soft = limit.rlim_cur as u64;
    u64::try_from(file.as_raw_fd()).is_ok_and(|fd| fd < soft / 2)
}

impl KeptFile {
    pub fn new(path: PathBuf) -> KeptFile {
        KeptFile { path, file: None }
    }

    /// A file opened now, for callers that keep many and decide themselves what a failed
    /// read means (`read_open`).
    pub fn open(path: PathBuf) -> io::Result<KeptFile> {
        let file = open_regular(&path)?;
        Ok(KeptFile {
            path,
            file: Some(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current contents, into `buf` (cleared first, capacity kept), from the descriptor
    /// kept open only: never opens the file again (one pread for an attribute). An error when
    /// it is not open.
    pub fn read_open(&self, buf: &mut Vec<u8>) -> io::Result<()> {
        buf.clear();
        match &self.file {
            Some(file) => read_all_at(file, buf),
            None => Err(io::Error::new(io::ErrorKind::NotConnected, "not open")),
        }
    }

    /// `read_into` for a file that may be missing or readable by root only (cpufreq's
    /// `cpuinfo_cur_freq`): `Ok(false)` then, an error naming the file for anything else.
    pub fn read_if_readable(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        match self.read_into(buf) {
            Ok(()) => Ok(true),
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
                ) =>
            {
                Ok(false)
            }
            Err(err) => Err(naming(&self.path, err)),
        }
    }

    /// The whole current contents, into `buf` (cleared first, capacity kept).
    pub fn read_into(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        buf.clear();
        if let Some(file) = &self.file {
            if read_all_at(file, buf).is_ok() {
                return Ok(());
            }
            self.file = None;
            buf.clear();
        }
        let file = open_regular(&self.path)?;
        read_all_at(&file, buf)?;
        if may_keep(&file) {
            self.file = Some(file);
        }
        Ok(())
    }

    /// For a mount table of procfs (/proc/PID/mountinfo, mounts) kept open: whether the
    /// kernel signalled a mount table change (POLLPRI) since the last call or since it was
    /// opened. None when that cannot be known: not open, not on procfs (a fixture tree, whose
    /// files never signal), or poll failed. A false answer means the table reads the same.
    pub fn mount_table_changed(&self) -> Option<bool> {
        use std::os::fd::AsRawFd;
        let fd = self.file.as_ref()?.as_raw_fd();
        // SAFETY: statfs is plain data filled by fstatfs on a descriptor we own.
        let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstatfs(fd, &mut fs) } != 0 {
            return None;
        }
        // f_type and the constant differ in type and signedness between glibc and musl and
        // between 32 and 64 bits: compared as numbers.
        if u64::try_from(fs.f_type).ok() != u64::try_from(libc::PROC_SUPER_MAGIC).ok() {
            return None;
        }
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLPRI,
            revents: 0,
        };
        // SAFETY: one pollfd, no wait.
        match unsafe { libc::poll(&mut poll, 1, 0) } {
            0 => Some(false),
            1 => Some(poll.revents & (libc::POLLPRI | libc::POLLERR) != 0),
            _ => None,
        }
    }

    /// Closes the descriptor (the file is opened again by the next read).
    pub fn close(&mut self) {
        self.file = None;
    }
}

/// Reads a small sysfs attribute and trims the trailing newline.
pub fn read_trimmed(path: &Path) -> io::Result<String> {
    let text = read_to_string(path)?;
    Ok(text.trim_end_matches(['\n', '\0', ' ']).to_string())
}

/// The error with the file's path in front, as collectors report it.
fn naming(path: &Path, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}

/// Reads a kept file that may legitimately be absent (a module not loaded, IPv6 off):
/// `Ok(false)` when it does not exist, an error naming the file for any other failure.
pub fn read_optional(file: &mut KeptFile, buf: &mut Vec<u8>) -> io::Result<bool> {
    match file.read_into(buf) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(naming(file.path(), err)),
    }
}

/// Reads a sysfs attribute into `buf` and returns it without surrounding white space; `None`
/// when it is missing or the driver refuses the read (EINVAL for `speed` on a link that is
/// down, EOPNOTSUPP...): node_exporter skips those attributes too.
pub fn read_attr<'a>(path: &Path, buf: &'a mut Vec<u8>) -> Option<&'a str> {
    read_into(path, buf).ok()?;
    std::str::from_utf8(buf).ok().map(str::trim)
}

/// Names of a directory's entries, sorted; an error when the directory cannot be read.
pub fn dir_names(path: &Path) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(path)?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// The `<prefix>N` entries of `dir` (`cpu0`, `thermal_zone3`, `clocksource0`) as (N, path),
/// in numeric order; other entries (`cpufreq`, `cpuidle`) are left out.
pub fn numbered_dirs(dir: &Path, prefix: &str) -> io::Result<Vec<(u32, PathBuf)>> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name();
            let number = name.to_str()?.strip_prefix(prefix)?;
            if !number.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((number.parse().ok()?, entry.path()))
        })
        .collect();
    found.sort_by_key(|(number, _)| *number);
    Ok(found)
}

/// An unsigned decimal from ASCII bytes, tolerating surrounding white space.
pub fn parse_u64(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// A signed decimal attribute: `41868\n` (milli-degrees), `-1\n` (a cooling state).
pub fn parse_i64(bytes: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(bytes)
        .ok()
        .map(|text| text.trim_end_matches(['\n', '\0']).trim())
        .and_then(|text| text.parse::<i64>().ok())
        .ok_or_else(|| format!("not an integer: {:?}", String::from_utf8_lossy(bytes)))
}

/// An integer as Go's `strconv.ParseInt(text, 0, 64)` reads it (node_exporter's sysfs
/// parser): decimal, `0x` hex (`flags`), `0o`/leading-zero octal, `0b` binary, optional sign.
pub fn parse_int(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = digits.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, &digits[2..]),
        Some("0o") => (8, &digits[2..]),
        Some("0b") => (2, &digits[2..]),
        _ if digits.len() > 1 && digits.starts_with('0') => (8, &digits[1..]),
        _ => (10, digits),
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// `std::fs::read` for files under the roots: only regular files, never a blocking open.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    read_into(path, &mut buf)?;
    Ok(buf)
}

/// `std::fs::read_to_string` for files under the roots (see `open_regular`).
pub fn read_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read(path)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pread at offset 0 on a kept descriptor gives what a fresh open gives, and fresh
    /// contents each time, for each kind of file the collectors keep open.
    #[test]
    fn kept_files_read_again_give_fresh_contents() {
        let mut buf = Vec::new();
        // sysctl (proc_sys): a new value on every read.
        let mut uuid = KeptFile::new(PathBuf::from("/proc/sys/kernel/random/uuid"));
        uuid.read_into(&mut buf).unwrap();
        let first = buf.clone();
        uuid.read_into(&mut buf).unwrap();
        assert_eq!(buf.len(), 37);
        assert_ne!(buf, first);
        // seq_file: rchar counts our own reads, so it grows between two reads.
        let rchar = |bytes: &[u8]| -> u64 {
            let text = std::str::from_utf8(bytes).unwrap();
            let line = text.lines().find(|l| l.starts_with("rchar:")).unwrap();
            line[6..].trim().parse().unwrap()
        };
        let mut io = KeptFile::new(PathBuf::from("/proc/self/io"));
        io.read_into(&mut buf).unwrap();
        let before = rchar(&buf);
        io.read_into(&mut buf).unwrap();
        assert!(rchar(&buf) > before, "{}", String::from_utf8_lossy(&buf));
        // sysfs attribute: loopback's byte counter after traffic on loopback.
        let mut rx = KeptFile::new(PathBuf::from("/sys/class/net/lo/statistics/rx_bytes"));
        if rx.read_into(&mut buf).is_ok() {
            let before: u64 = std::str::from_utf8(&buf).unwrap().trim().parse().unwrap();
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            socket
                .send_to(b"ping", socket.local_addr().unwrap())
                .unwrap();
            rx.read_into(&mut buf).unwrap();
            let after: u64 = std::str::from_utf8(&buf).unwrap().trim().parse().unwrap();
            assert!(after > before, "{before} -> {after}");
        }
        // A mount table on procfs says when it changed; just opened and read, it has not.
        let mut table = KeptFile::new(PathBuf::from("/proc/self/mountinfo"));
        assert_eq!(table.mount_table_changed(), None, "not open yet");
        table.read_into(&mut buf).unwrap();
        assert_eq!(table.mount_table_changed(), Some(false));
        // Files larger than one read (and than a page), read whole; same as a fresh read.
        let mut small = Vec::with_capacity(16);
        let mut maps = KeptFile::new(PathBuf::from("/proc/self/mountinfo"));
        maps.read_into(&mut small).unwrap();
        assert_eq!(small, std::fs::read("/proc/self/mountinfo").unwrap());
        for path in [
            "/proc/meminfo",
            "/proc/stat",
            "/proc/net/dev",
            "/proc/diskstats",
        ] {
            let mut kept = KeptFile::new(PathBuf::from(path));
            kept.read_into(&mut buf).unwrap();
            kept.read_into(&mut buf).unwrap();
            let fresh = std::fs::read(path).unwrap();
            // Counters move between the two reads; the lines and their names do not.
            let names = |b: &[u8]| -> Vec<String> {
                String::from_utf8_lossy(b)
                    .lines()
                    .map(|l| {
                        l.split_whitespace()
                            .take(3)
                            .filter(|w| !w.chars().all(|c| c.is_ascii_digit()))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect()
            };
            assert_eq!(names(&buf), names(&fresh), "{path}");
        }
    }

    #[test]
    fn integers_as_go_reads_them() {
        assert_eq!(parse_int("0x1003"), Some(4099));
        assert_eq!(parse_int("1500\n"), Some(1500));
        assert_eq!(parse_int("-1"), Some(-1));
        assert_eq!(parse_int("0"), Some(0));
        assert_eq!(parse_int("010"), Some(8));
        assert_eq!(parse_int("0b101"), Some(5));
        for bad in [
            "",
            "-",
            "0x",
            "12a",
            "--1",
            "0x-1",
            "99999999999999999999",
            "1.5",
        ] {
            assert_eq!(parse_int(bad), None, "{bad}");
        }
    }

    #[test]
    fn integer_attributes() {
        assert_eq!(parse_i64(b"41868\n"), Ok(41868));
        assert_eq!(parse_i64(b"-1\n"), Ok(-1));
        for bad in [&b""[..], b"abc", b"1.5", b"\xff"] {
            assert!(parse_i64(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_u64(b" 42\n"), Some(42));
        assert_eq!(parse_u64(b"-1"), None);
    }

    #[test]
    fn numbered_dirs_optional_files_and_attributes() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["cpu10", "cpu2", "cpufreq", "cpu", "cpu1x", "cpu0"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        let found = numbered_dirs(dir.path(), "cpu").unwrap();
        let numbers: Vec<u32> = found.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [0, 2, 10]);
        assert_eq!(found[2].1, dir.path().join("cpu10"));
        let mut buf = Vec::new();
        let mut absent = KeptFile::new(dir.path().join("absent"));
        assert!(!read_optional(&mut absent, &mut buf).unwrap());
        let err = read_optional(&mut KeptFile::new(dir.path().join("cpu0")), &mut buf).unwrap_err();
        assert!(err
            .to_string()
            .starts_with(&dir.path().join("cpu0").display().to_string()));
        std::fs::write(dir.path().join("speed"), " 1000\n").unwrap();
        assert_eq!(read_attr(&dir.path().join("speed"), &mut buf), Some("1000"));
        assert_eq!(read_attr(&dir.path().join("nope"), &mut buf), None);
        let kept = KeptFile::open(dir.path().join("speed")).unwrap();
        kept.read_open(&mut buf).unwrap();
        assert_eq!(buf, b" 1000\n");
        assert!(KeptFile::new(dir.path().join("speed"))
            .read_open(&mut buf)
            .is_err());
        let mut missing = KeptFile::new(dir.path().join("absent"));
        assert!(!missing.read_if_readable(&mut buf).unwrap());
    }

    #[test]
    fn a_kept_regular_file_sees_rewrites_and_a_fifo_is_refused() {
        let dir = std::env::temp_dir().join(format!("pimetrics-kept-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("value");
        std::fs::write(&path, "1\n").unwrap();
        let mut kept = KeptFile::new(path.clone());
        let mut buf = Vec::new();
        kept.read_into(&mut buf).unwrap();
        assert_eq!(buf, b"1\n");
        std::fs::write(&path, "22\n").unwrap();
        kept.read_into(&mut buf).unwrap();
        assert_eq!(buf, b"22\n");
        let fifo = dir.join("fifo");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let mut pipe = KeptFile::new(fifo);
        assert!(pipe.read_into(&mut buf).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
