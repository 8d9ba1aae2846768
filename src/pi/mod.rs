//! Raspberry Pi specifics: the board's identity, the VideoCore firmware (mailbox property
//! tags and gencmd text commands) as typed readings, and the since-boot throttling state.
//! Parsers and the message codec are pure; `vcio` holds the one ioctl.
//!
//! Layers, each using only those before it: `mailbox` (codec, client) <- `gencmd` (text
//! commands) <- `firmware` (what to ask, retries, PMIC cache) ; `board` <- `revision`,
//! `cpuinfo`. The rpi collector maps the readings to metric families.

pub mod board;
pub mod cpuinfo;
pub mod firmware;
pub mod gencmd;
pub mod mailbox;
pub mod replay;
pub mod revision;
pub mod since_boot;
pub mod throttled;
pub mod vcio;

use std::path::Path;

use crate::roots::Roots;

/// Reads what `board::identify` needs under the configured roots. Unreadable files count as
/// missing.
pub fn read_board(roots: &Roots) -> board::Board {
    let cpuinfo = std::fs::read(roots.proc("cpuinfo")).unwrap_or_default();
    let cpuinfo = String::from_utf8_lossy(&cpuinfo);
    let device_tree = |name: &str| -> Option<Vec<u8>> {
        std::fs::read(roots.proc(&format!("device-tree/{name}")))
            .or_else(|_| std::fs::read(roots.sys(&format!("firmware/devicetree/base/{name}"))))
            .ok()
    };
    let model = device_tree("model");
    let compatible = device_tree("compatible");
    let revision = device_tree("system/linux,revision");
    board::identify(&board::Sources {
        cpuinfo: &cpuinfo,
        dt_model: model.as_deref(),
        dt_compatible: compatible.as_deref(),
        dt_revision: revision.as_deref(),
    })
}

/// This boot's id (`<procfs>/sys/kernel/random/boot_id`), which changes at every reboot.
pub fn read_boot_id(roots: &Roots) -> Option<String> {
    let text = std::fs::read_to_string(roots.proc("sys/kernel/random/boot_id")).ok()?;
    let id = text.trim();
    (!id.is_empty() && id.len() <= 64).then(|| id.to_string())
}

/// Opens the mailbox: a replay file when configured, else the device under the dev root.
pub fn open_mailbox(
    device: &Path,
    replay: Option<&Path>,
) -> Result<Box<dyn mailbox::Mailbox>, OpenError> {
    if let Some(path) = replay {
        return replay::Replay::load(path)
            .map(|r| Box::new(r) as Box<dyn mailbox::Mailbox>)
            .map_err(OpenError::Replay);
    }
    vcio::Vcio::open(device)
        .map(|v| Box::new(v) as Box<dyn mailbox::Mailbox>)
        .map_err(|err| OpenError::Device(device.display().to_string(), err))
}

#[derive(Debug)]
pub enum OpenError {
    Device(String, std::io::Error),
    Replay(String),
}

impl OpenError {
    /// One line: what failed and how to fix it.
    pub fn advice(&self) -> String {
        match self {
            OpenError::Replay(err) => format!("cannot load the mailbox replay: {err}"),
            OpenError::Device(path, err) => {
                let fix = match err.raw_os_error() {
                    Some(libc::EACCES) | Some(libc::EPERM) => {
                        "current Raspberry Pi OS leaves /dev/vcio to root and gives the `video` group \
                         /dev/vcio_gencmd, which pimetrics uses instead when it opens (add the agent's \
                         user to `video`; in a container `--device /dev/vcio_gencmd --group-add video`); \
                         for set clock rates, maximum temperature and voltage limits grant /dev/vcio too \
                         (a udev rule `KERNEL==\"vcio\", GROUP=\"video\", MODE=\"0660\"`, see docs/pi.md)"
                    }
                    Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) => {
                        "in a container pass the devices (`--device /dev/vcio --device \
                         /dev/vcio_gencmd`); a kernel without the Raspberry Pi vcio driver (Debian, \
                         mainline) has none"
                    }
                    _ => "check the device and the agent's permissions",
                };
                format!("cannot open {path}: {err}; {fix}")
            }
        }
    }
}
