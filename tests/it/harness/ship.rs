//! Helpers for the shipping tests (package, unit, deploy, images, monitoring side): run programs
//! with a time limit, decide skip-or-fail for missing tools, and boot a real systemd in
//! `systemd-nspawn` on a Debian tree built once by mmdebstrap and cached under target/.

use std::fs::File;
use std::io::Read;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use super::{agent_bin, eventually, program, under_ci};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// True when every program is there. Otherwise: under CI a failure (scripts/test installs
/// them), else a printed SKIPPED line and false.
pub fn have_all(programs: &[&str], test: &str) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| program(p).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        !under_ci(),
        "{test}: {missing:?} not installed (scripts/test installs them)"
    );
    eprintln!("SKIPPED {test}: {missing:?} not installed (scripts/test installs them)");
    false
}

/// Root is needed (mounts, nspawn, chown). Not root: under CI a failure, else SKIPPED.
pub fn root_or_skip(test: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        !under_ci(),
        "{test} needs root (it mounts and boots a container)"
    );
    eprintln!("SKIPPED {test}: needs root (runs under CI)");
    false
}

/// Runs `command` with stdin from /dev/null, no longer than `limit` (then killed, and the test
/// fails naming it). Output is collected through files, so nothing blocks on a pipe.
pub fn run(what: &str, command: &mut Command, limit: Duration) -> Output {
    run_with_stdin(what, command, Stdio::null(), limit)
}

pub fn run_with_stdin(what: &str, command: &mut Command, stdin: Stdio, limit: Duration) -> Output {
    let out = tempfile::tempfile().expect("temp file");
    let err = tempfile::tempfile().expect("temp file");
    let mut child = command
        .stdin(stdin)
        .stdout(out.try_clone().expect("dup"))
        .stderr(err.try_clone().expect("dup"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not finish within {limit:?}\nstdout: {}\nstderr: {}",
                read_all(&out),
                read_all(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: read_all(&out).into_bytes(),
        stderr: read_all(&err).into_bytes(),
    }
}

fn read_all(file: &File) -> String {
    use std::io::Seek;
    let mut file = file.try_clone().expect("dup");
    let _ = file.seek(std::io::SeekFrom::Start(0));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Runs and asserts success; returns stdout.
pub fn run_ok(what: &str, command: &mut Command, limit: Duration) -> String {
    let output = run(what, command, limit);
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The binary under test without its debug info (a debug build is ~80 MB), in `dir`.
pub fn stripped_agent(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create dir");
    let path = dir.join("pimetrics");
    if !path.exists() {
        run_ok(
            "objcopy --strip-debug",
            Command::new("objcopy")
                .arg("--strip-debug")
                .arg(agent_bin())
                .arg(&path),
            Duration::from_secs(120),
        );
    }
    path
}

/// Builds the .deb of the binary under test with scripts/build-deb into `out`; returns its path.
pub fn build_deb(out: &Path, version: &str) -> PathBuf {
    let arch = run_ok(
        "dpkg --print-architecture",
        Command::new("dpkg").arg("--print-architecture"),
        Duration::from_secs(10),
    );
    let stdout = run_ok(
        "scripts/build-deb",
        Command::new(repo().join("scripts/build-deb"))
            .arg("--out")
            .arg(out)
            .args(["--version", version, "--compression", "gzip"])
            .arg(format!("{}={}", arch.trim(), stripped_agent(out).display())),
        Duration::from_secs(120),
    );
    let deb = PathBuf::from(stdout.trim());
    assert!(deb.is_file(), "build-deb printed {stdout:?}");
    deb
}

/// Packages of the Debian tree the containers boot: systemd as PID 1, sshd for the deploy
/// test, sudo and curl as on Raspberry Pi OS (the README's commands use them), and
/// systemd-nspawn itself (run from the tree, see `Container`).
const TREE_PACKAGES: &str = "systemd,systemd-sysv,dbus,systemd-container,openssh-server,sudo,curl";
const TREE_SUITE: &str = "bookworm";

/// The cached Debian tree (built once by mmdebstrap, ~1 min, kept under target/).
pub fn debian_tree() -> PathBuf {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("nspawn");
    std::fs::create_dir_all(&base).expect("create target/tmp/nspawn");
    let key: String = format!("{TREE_SUITE}-{TREE_PACKAGES}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let tree = base.join(&key);
    let done = base.join(format!("{key}.done"));
    // Several test binaries (or runs) may want it at once: one builds, the others wait.
    let lock = File::create(base.join(format!("{key}.lock"))).expect("lock file");
    // SAFETY: flock on an open descriptor; released when `lock` is closed.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock");
    if done.exists() && tree.join("usr/lib/systemd/systemd").exists() {
        return tree;
    }
    let _ = std::fs::remove_dir_all(&tree);
    let _ = std::fs::remove_file(&done);
    eprintln!("building the Debian tree for systemd-nspawn with mmdebstrap (once): {tree:?}");
    run_ok(
        "mmdebstrap",
        Command::new("mmdebstrap")
            .args(["--variant=minbase", "--mode=root"])
            .arg(format!("--include={TREE_PACKAGES}"))
            .arg(TREE_SUITE)
            .arg(&tree),
        Duration::from_secs(900),
    );
    std::fs::write(&done, "").expect("mark the tree done");
    tree
}

/// A booted Debian system: `systemd-nspawn -b` with its own network namespace (only `lo`, so
/// ports never clash with the host's), the tree mounted read-only under a throw-away overlay
/// (--volatile=overlay). nspawn runs from the tree itself (a chroot), so the host needs no
/// systemd-container package and its libsystemd version does not matter.
pub struct Container {
    nspawn: Child,
    pub pid1: u32,
    _dir: tempfile::TempDir,
    log: PathBuf,
}

impl Container {
    pub fn boot(tree: &Path, hostname: &str) -> Container {
        let dir = tempfile::Builder::new()
            .prefix("nspawn-")
            .tempdir_in(tree.parent().expect("tree parent"))
            .expect("temp dir");
        let w = dir.path();
        std::fs::write(w.join("machine-id"), "0123456789abcdef0123456789abcdef\n").unwrap();
        for d in ["tools", "guest"] {
            std::fs::create_dir(w.join(d)).unwrap();
        }
        let t = tree.display();
        let w = w.display();
        let script = format!(
            "mount --bind {t} {w}/tools
mount -o remount,bind,ro {w}/tools
mount --bind {t} {w}/guest
mount -t proc proc {w}/tools/proc
mount --rbind /sys {w}/tools/sys
mount --rbind /dev {w}/tools/dev
mount -t tmpfs tmpfs {w}/tools/run
mkdir -p {w}/tools/run/systemd/nspawn
mount -t tmpfs tmpfs {w}/tools/tmp
mount -t tmpfs tmpfs {w}/tools/var/tmp
mount --bind {w}/machine-id {w}/tools/etc/machine-id
mount --bind {w}/guest {w}/tools/mnt
exec chroot {w}/tools systemd-nspawn --register=no --keep-unit --quiet \
  --console=passive --private-network --hostname={hostname} --machine={hostname} \
  -D /mnt --volatile=overlay -b"
        );
        let log = dir.path().join("console.log");
        let console = File::create(&log).expect("console log");
        // On a host run by systemd, nspawn --keep-unit wants a cgroup of its own that it may
        // manage: a transient scope with Delegate=yes (systemd-run execs the command, so the
        // child stays systemd-nspawn). Set PIMETRICS_TEST_NSPAWN_SCOPE=0 to run it directly.
        let mut command = if Path::new("/run/systemd/system").is_dir()
            && program("systemd-run").is_some()
            && std::env::var("PIMETRICS_TEST_NSPAWN_SCOPE").as_deref() != Ok("0")
        {
            let mut c = Command::new("systemd-run");
            c.args([
                "--scope",
                "--quiet",
                "--collect",
                "-p",
                "Delegate=yes",
                "unshare",
            ]);
            c
        } else {
            Command::new("unshare")
        };
        let nspawn = command
            .args(["-m", "--propagation", "private", "sh", "-ec", &script])
            .stdin(Stdio::null())
            .stdout(console.try_clone().unwrap())
            .stderr(console)
            .spawn()
            .expect("unshare/systemd-nspawn");
        let nspawn_pid = nspawn.id();
        let mut container = Container {
            nspawn,
            pid1: 0,
            _dir: dir,
            log,
        };
        // unshare, sh and chroot exec each other: the child is systemd-nspawn itself, and the
        // container's init is its child named systemd.
        let pid1 = eventually(Duration::from_secs(60), || {
            if let Ok(Some(status)) = container.nspawn.try_wait() {
                panic!(
                    "systemd-nspawn exited ({status}):\n{}",
                    std::fs::read_to_string(&container.log).unwrap_or_default()
                );
            }
            child_named(nspawn_pid, "systemd")
        });
        container.pid1 = pid1.unwrap_or_else(|| {
            panic!(
                "no systemd under nspawn:\n{}",
                std::fs::read_to_string(&container.log).unwrap_or_default()
            )
        });
        let state = eventually(Duration::from_secs(90), || {
            let out = container.sh("systemctl is-system-running --wait");
            let state = text(&out.stdout).trim().to_string();
            (state == "running" || state == "degraded").then_some(state)
        });
        assert!(
            state.is_some(),
            "the container did not finish booting:\n{}",
            container.sh_ok("systemctl --failed --no-pager; systemctl list-jobs --no-pager")
        );
        // The tree's /etc/hostname (mmdebstrap copies the build host's) wins over --hostname.
        container.sh_ok(&format!(
            "echo {hostname} > /etc/hostname && hostname {hostname}"
        ));
        container
    }

    /// `nsenter` into every namespace of the container and its root.
    pub fn enter(&self) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.pid1.to_string(), "-a", "-r", "-w"]);
        c
    }

    /// A host program in the container's network namespace only (its `lo`).
    pub fn in_net(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.pid1.to_string(), "-n", "--"]);
        c.arg(program);
        c
    }

    pub fn sh(&self, script: &str) -> Output {
        run(
            &format!("in the container: {script}"),
            self.enter().args(["sh", "-c", script]),
            Duration::from_secs(180),
        )
    }

    pub fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "in the container: {script}\nfailed ({}):\n{}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Copies a host file into the container.
    pub fn put(&self, host: &Path, inside: &str) {
        let file = File::open(host).unwrap_or_else(|e| panic!("{host:?}: {e}"));
        let out = run_with_stdin(
            "copy into the container",
            self.enter()
                .args(["sh", "-c", "cat > \"$1\"", "sh", inside]),
            Stdio::from(file),
            Duration::from_secs(60),
        );
        assert!(
            out.status.success(),
            "copy to {inside}: {}",
            text(&out.stderr)
        );
    }

    /// `systemctl show` properties of a unit, as a map.
    pub fn show(&self, unit: &str, props: &str) -> std::collections::BTreeMap<String, String> {
        self.sh_ok(&format!("systemctl show -p {props} {unit}"))
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // SIGTERM makes nspawn ask the container's systemd for an orderly poweroff.
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.nspawn.id() as i32, libc::SIGTERM) };
        let ended = eventually(Duration::from_secs(30), || {
            self.nspawn.try_wait().ok().flatten()
        });
        if ended.is_none() {
            // Killing the container's PID 1 ends its whole PID namespace.
            // SAFETY: signalling processes this test started.
            unsafe {
                libc::kill(self.pid1 as i32, libc::SIGKILL);
                libc::kill(self.nspawn.id() as i32, libc::SIGKILL);
            }
            let _ = self.nspawn.wait();
        }
    }
}

/// The pid of a child of `parent` whose command name is `name`.
fn child_named(parent: u32, name: &str) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u32>().ok());
        if comm == name && ppid == Some(parent) {
            return Some(pid);
        }
    }
    None
}
