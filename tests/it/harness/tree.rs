//! The fixture trees (tests/fixtures/<name>, see the README there): one per machine with its
//! proc/, sys/, root/ and recorded firmware answers. `tree("pi4").scrape()` runs the agent's
//! `--once` on it; `tree("pi4").agent(&[])` serves it on a free loopback port.

use std::path::{Path, PathBuf};
use std::process::Output;

use super::{parse_exposition, run_agent, start_agent, tempdir, Exposition, Proc};

/// The repository's fixture directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// One fixture tree.
#[derive(Debug, Clone)]
pub struct Tree {
    /// Its name under tests/fixtures (`pi4`, `faults/broken`).
    pub name: String,
    pub dir: PathBuf,
}

/// The tree `name` (`pi4`, `x86-vm`, `faults/broken`, ...); panics when it does not exist.
pub fn tree(name: &str) -> Tree {
    let dir = fixtures().join(name);
    assert!(dir.is_dir(), "no fixture tree {}", dir.display());
    Tree {
        name: name.to_string(),
        dir,
    }
}

/// Every machine and fault tree (a directory with proc/ or sys/), sorted by name.
pub fn trees() -> Vec<Tree> {
    let mut found = Vec::new();
    for group in ["", "faults"] {
        let Ok(entries) = std::fs::read_dir(fixtures().join(group)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.join("proc").is_dir() || path.join("sys").is_dir() {
                let file = entry.file_name().to_string_lossy().into_owned();
                let name = if group.is_empty() {
                    file
                } else {
                    format!("{group}/{file}")
                };
                found.push(tree(&name));
            }
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// The Raspberry Pi boards: trees with a device tree.
pub fn pi_boards() -> Vec<Tree> {
    trees()
        .into_iter()
        .filter(|t| t.dir.join("proc/device-tree").is_dir())
        .collect()
}

impl Tree {
    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn proc(&self) -> PathBuf {
        self.dir.join("proc")
    }

    pub fn sys(&self) -> PathBuf {
        self.dir.join("sys")
    }

    /// Its root filesystem (os-release, udev's database); may not exist (fault trees).
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// The recorded /dev/vcio answers, where the board has them.
    pub fn mailbox_replay(&self) -> Option<PathBuf> {
        Some(self.dir.join("mailbox.replay")).filter(|p| p.is_file())
    }

    /// The agent's flags that point it at this tree: its roots and its mailbox replay.
    pub fn args(&self) -> Vec<String> {
        let flag = |name: &str, path: &Path| format!("--{name}={}", path.display());
        let mut args = vec![
            flag("path.procfs", &self.proc()),
            flag("path.sysfs", &self.sys()),
            flag("path.devfs", &self.dir.join("dev")),
            flag("path.rootfs", &self.root()),
        ];
        if let Some(replay) = self.mailbox_replay() {
            args.push(flag("collector.rpi.mailbox-replay", &replay));
        }
        args
    }

    /// `pimetrics --once` on this tree with `extra` flags, no text files and the Pi collector's
    /// since-boot state in a fresh file (not /run): its exit status and output.
    pub fn once(&self, extra: &[&str]) -> Output {
        let state = tempdir();
        let config = state.path().join("tree.ron");
        std::fs::write(&config, isolated_config(state.path())).expect("write the test config");
        let mut args = vec![
            "--once".to_string(),
            format!("--config={}", config.display()),
        ];
        args.extend(self.args());
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_agent(&args)
    }

    /// The parsed `--once` exposition of this tree (the run must succeed).
    pub fn scrape(&self) -> Exposition {
        self.scrape_with(&[])
    }

    pub fn scrape_with(&self, extra: &[&str]) -> Exposition {
        let output = self.once(extra);
        assert!(
            output.status.success(),
            "--once on {}: {}",
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
        parse_exposition(&String::from_utf8(output.stdout).expect("UTF-8 exposition"))
    }

    /// The agent serving this tree on a free loopback port with the settings of `once` (no
    /// text files, the since-boot state in a temporary file, never /run), `extra` flags after
    /// the tree's own; killed when the returned value drops.
    pub fn agent(&self, extra: &[&str]) -> Served {
        let state = tempdir();
        let config = state.path().join("tree.ron");
        std::fs::write(&config, isolated_config(state.path())).expect("write the test config");
        let mut args = vec![format!("--config={}", config.display())];
        args.extend(self.args());
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (proc, port) = start_agent(&args);
        Served {
            proc,
            port,
            _state: state,
        }
    }

    /// A writable copy of the tree (symlinks kept as links), to break.
    pub fn copy(&self) -> tempfile::TempDir {
        let dir = tempdir();
        copy_tree(&self.dir, dir.path());
        dir
    }
}

/// An agent serving a tree (`Tree::agent`), with the directory of its state file.
pub struct Served {
    pub proc: Proc,
    pub port: u16,
    _state: tempfile::TempDir,
}

/// The config of `Tree::once` and `Tree::agent`: no text files, the since-boot state under `state`.
pub fn isolated_config(state: &Path) -> String {
    format!(
        "(textfile: (directory: None), pi: (state_file: {:?}))",
        state.join("rpi-since-boot").display().to_string()
    )
}

/// Copies `from` into `to` (created), keeping symlinks as symlinks.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy's directory");
    for entry in std::fs::read_dir(from)
        .expect("read a fixture directory")
        .flatten()
    {
        let target = to.join(entry.file_name());
        let kind = entry.file_type().expect("file type");
        if kind.is_symlink() {
            let link = std::fs::read_link(entry.path()).expect("read a fixture link");
            std::os::unix::fs::symlink(link, &target).expect("copy a link");
        } else if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a fixture file");
        }
    }
}
