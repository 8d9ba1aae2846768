//! "Has occurred since boot" for the four throttling conditions, kept by the agent.
//!
//! The firmware's sticky bits (16-19 of the throttled mask) do not mean "since boot" on a
//! Raspberry Pi OS kernel: its raspberrypi-hwmon driver polls every 2 s asking the firmware to
//! clear them (`value = 0xffff`), so whoever reads them sees "since the kernel's last poll"
//! (and the sysfs `get_throttled` file and `in0_lcrit_alarm` show that clearing reply). The
//! agent therefore keeps the OR of every condition it has seen (now or sticky), and keeps it
//! across its own restarts in a small state file under /run, which a reboot empties. The file
//! also names the boot (`/proc/sys/kernel/random/boot_id`), so a state file that survived a
//! reboot (a /run that is not a tmpfs) is ignored.

use std::path::{Path, PathBuf};

/// The four condition bits (0-3), as in the firmware's mask.
pub const CONDITION_BITS: u32 = 0xf;

/// Parses the state file: `boot_id=<id>` and `seen=0x<bits>` lines. `None` when malformed.
pub fn parse_state(text: &str) -> Option<(String, u32)> {
    let mut boot_id = None;
    let mut seen = None;
    for line in text.lines() {
        match line.trim().split_once('=') {
            Some(("boot_id", value)) if !value.trim().is_empty() => {
                boot_id = Some(value.trim().to_string())
            }
            Some(("seen", value)) => {
                let value = value.trim();
                let hex = value.strip_prefix("0x").unwrap_or(value);
                seen = u32::from_str_radix(hex, 16).ok();
            }
            _ => {}
        }
    }
    Some((boot_id?, seen? & CONDITION_BITS))
}

pub fn format_state(boot_id: &str, seen: u32) -> String {
    format!("boot_id={boot_id}\nseen={:#x}\n", seen & CONDITION_BITS)
}

/// The conditions seen since boot, and where they are kept.
#[derive(Debug)]
pub struct SinceBoot {
    seen: u32,
    /// (state file, boot id) when persisting; `None` keeps the state in memory only.
    store: Option<(PathBuf, String)>,
}

impl SinceBoot {
    /// Loads the state of this boot from `path`. Without a path or a boot id (a fixture tree,
    /// a kernel without procfs) the state lives in memory only. The second value is a problem
    /// worth one log line.
    pub fn open(path: Option<&Path>, boot_id: Option<&str>) -> (SinceBoot, Option<String>) {
        let (Some(path), Some(boot_id)) = (path, boot_id.map(str::trim).filter(|b| !b.is_empty()))
        else {
            return (
                SinceBoot {
                    seen: 0,
                    store: None,
                },
                None,
            );
        };
        let mut problem = None;
        let seen = match std::fs::read(path) {
            Ok(bytes) => match parse_state(&String::from_utf8_lossy(&bytes)) {
                Some((id, seen)) if id == boot_id => seen,
                Some(_) => 0, // another boot's state
                None => {
                    problem = Some(format!("{}: malformed, starting afresh", path.display()));
                    0
                }
            },
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => 0,
            Err(err) => {
                problem = Some(format!("{}: {err}", path.display()));
                0
            }
        };
        (
            SinceBoot {
                seen,
                store: Some((path.to_path_buf(), boot_id.to_string())),
            },
            problem,
        )
    }

    /// Adds what a throttled mask shows (conditions now, bits 0-3, and sticky, bits 16-19).
    /// Writes the file when something new was seen; the error says why it could not.
    pub fn record_mask(&mut self, mask: u32) -> Result<(), String> {
        self.record_bits((mask | (mask >> 16)) & CONDITION_BITS)
    }

    /// Adds condition bits (bit 0 under-voltage ... bit 3 soft temperature limit).
    pub fn record_bits(&mut self, bits: u32) -> Result<(), String> {
        let seen = self.seen | (bits & CONDITION_BITS);
        if seen == self.seen {
            return Ok(());
        }
        self.seen = seen;
        match &self.store {
            Some((path, boot_id)) => write_atomically(path, &format_state(boot_id, seen))
                .map_err(|err| format!("{}: {err}", path.display())),
            None => Ok(()),
        }
    }

    /// Bit n set: condition n has occurred since boot.
    pub fn seen(&self) -> u32 {
        self.seen
    }

    pub fn persisted(&self) -> bool {
        self.store.is_some()
    }
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_text_round_trips_and_garbage_is_none() {
        let text = format_state("0c5e0c7a-1", 0x5);
        assert_eq!(text, "boot_id=0c5e0c7a-1\nseen=0x5\n");
        assert_eq!(parse_state(&text), Some(("0c5e0c7a-1".into(), 5)));
        assert_eq!(parse_state("seen=0xff\nboot_id=b"), Some(("b".into(), 0xf)));
        for bad in [
            "",
            "boot_id=\nseen=1",
            "boot_id=a",
            "seen=zz\nboot_id=a",
            "\u{0}",
        ] {
            assert_eq!(parse_state(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ors_every_mask_seen_and_survives_a_restart_but_not_a_reboot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/pimetrics/rpi-since-boot");
        let (mut state, problem) = SinceBoot::open(Some(&path), Some("boot-1\n"));
        assert_eq!(problem, None);
        assert!(state.persisted());
        state.record_mask(0x0).unwrap();
        assert!(!path.exists(), "nothing seen, nothing written");
        // Under-voltage now, then only the sticky throttled bit, then nothing: all kept.
        state.record_mask(0x1).unwrap();
        state.record_mask(0x40000).unwrap();
        state.record_mask(0x0).unwrap();
        assert_eq!(state.seen(), 0b101);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "boot_id=boot-1\nseen=0x5\n"
        );
        // The agent restarts: same boot, same state.
        let (state, _) = SinceBoot::open(Some(&path), Some("boot-1"));
        assert_eq!(state.seen(), 0b101);
        // A reboot: a new boot id, a clean slate.
        let (mut state, _) = SinceBoot::open(Some(&path), Some("boot-2"));
        assert_eq!(state.seen(), 0);
        state.record_bits(0b1000).unwrap();
        assert_eq!(
            parse_state(&std::fs::read_to_string(&path).unwrap()),
            Some(("boot-2".into(), 8))
        );
    }

    #[test]
    fn without_a_boot_id_or_path_it_stays_in_memory_and_write_errors_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let (mut state, _) = SinceBoot::open(Some(&path), None);
        state.record_mask(0x1).unwrap();
        assert!(!state.persisted() && !path.exists());
        let (mut state, _) = SinceBoot::open(None, Some("b"));
        state.record_mask(0x2).unwrap();
        assert_eq!(state.seen(), 2);
        // A path below a regular file cannot be written: an error, the value is still kept.
        std::fs::write(&path, "x").unwrap();
        let (mut state, problem) = SinceBoot::open(Some(&path.join("sub")), Some("b"));
        assert!(problem.is_some(), "reading below a file fails");
        assert!(state.record_mask(0x1).is_err());
        assert_eq!(state.seen(), 1);
        // A malformed file is reported and replaced.
        let (mut state, problem) = SinceBoot::open(Some(&path), Some("b"));
        assert!(problem.unwrap().contains("malformed"));
        state.record_mask(0x8).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "boot_id=b\nseen=0x8\n"
        );
    }
}
