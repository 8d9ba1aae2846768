//! Raspberry Pi specifics: the board's identity, the VideoCore firmware mailbox and its
//! answers. Parsers and the message codec are pure; `vcio` holds the one ioctl.

pub mod board;
pub mod cpuinfo;
pub mod gencmd;
pub mod mailbox;
pub mod replay;
pub mod revision;
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
                        "add the agent's user to the `video` group (the device is root:video 0660; in a container also `--group-add video`)"
                    }
                    Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) => {
                        "in a container pass the device (`--device /dev/vcio`); a kernel without the \
                         Raspberry Pi vcio driver (Debian, mainline) has none"
                    }
                    _ => "check the device and the agent's permissions",
                };
                format!("cannot open {path}: {err}; {fix}")
            }
        }
    }
}
