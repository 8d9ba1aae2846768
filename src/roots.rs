//! Where the agent reads the host from. Every read of /proc, /sys, /dev or / goes through `Roots`,
//! so the agent can run in a container with the host's trees mounted elsewhere, and tests can
//! point it at fixture trees.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
    pub rootfs: PathBuf,
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
    open_regular(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(buf)?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        buf.clear();
        buf.shrink_to(64 * 1024);
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("longer than {} MiB, not read", MAX_FILE_BYTES >> 20),
        ));
    }
    Ok(())
}

/// Reads a small sysfs attribute and trims the trailing newline.
pub fn read_trimmed(path: &Path) -> io::Result<String> {
    let text = read_to_string(path)?;
    Ok(text.trim_end_matches(['\n', '\0', ' ']).to_string())
}

/// Reads a sysfs attribute holding one integer (milli-degrees, kHz, RPM...).
pub fn read_i64(path: &Path) -> io::Result<i64> {
    let text = read_trimmed(path)?;
    text.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not an integer: {text:?}", path.display()),
        )
    })
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
