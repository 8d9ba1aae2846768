//! Which board this is, from what the kernel shows: the revision code in /proc/cpuinfo (or the
//! device tree's `system/linux,revision`), the device tree's `model` and `compatible`. Pure:
//! the caller reads the files.

use super::cpuinfo;
use super::revision::{self, Revision};

/// The raw inputs, each optional (a file that is missing or unreadable is `None`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Sources<'a> {
    pub cpuinfo: &'a str,
    /// `<proc>/device-tree/model`: NUL-terminated.
    pub dt_model: Option<&'a [u8]>,
    /// `<proc>/device-tree/compatible`: NUL-separated.
    pub dt_compatible: Option<&'a [u8]>,
    /// `<proc>/device-tree/system/linux,revision`: one big-endian u32, set by the firmware.
    pub dt_revision: Option<&'a [u8]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    /// Why this is (or is not) taken for a Raspberry Pi, for the log.
    pub evidence: Option<String>,
    /// "Raspberry Pi 4 Model B Rev 1.1"; empty when nothing names the board.
    pub model: String,
    pub revision: Option<Revision>,
    /// The code as cpuinfo prints it ("c03111"), also when it does not decode.
    pub revision_code: Option<u32>,
    pub soc: String,
    pub memory: String,
    pub manufacturer: String,
    pub serial: Option<String>,
    pub compatible: Vec<String>,
}

impl Board {
    pub fn is_pi(&self) -> bool {
        self.evidence.is_some()
    }

    /// The revision label value: lower-case hex, at least four digits, as cpuinfo prints it.
    pub fn revision_label(&self) -> String {
        self.revision_code
            .map(|code| format!("{code:04x}"))
            .unwrap_or_default()
    }
}

/// SoCs of Raspberry Pi boards, as old kernels' `Hardware` line and `compatible` name them.
const PI_SOCS: &[&str] = &[
    "BCM2708", "BCM2709", "BCM2710", "BCM2835", "BCM2836", "BCM2837", "BCM2711", "BCM2712",
];

pub fn identify(sources: &Sources) -> Board {
    let lines = cpuinfo::parse(sources.cpuinfo);
    let dt_model = sources
        .dt_model
        .map(nul_terminated)
        .filter(|m| !m.is_empty());
    let compatible: Vec<String> = sources.dt_compatible.map(nul_separated).unwrap_or_default();
    // 32-bit mainline and Debian kernels print `Revision : 0000` (arch/arm's setup.c prints
    // its never-set system_rev): no code at all, so the firmware's copy in the device tree
    // counts then.
    let revision_code = lines
        .revision
        .as_deref()
        .and_then(revision::parse_code)
        .filter(|&code| code != 0)
        .or_else(|| sources.dt_revision.and_then(big_endian_u32))
        .filter(|&code| code != 0);
    let revision = revision_code.and_then(revision::decode);

    let evidence = if let Some(model) = dt_model.as_deref().filter(|m| is_pi_name(m)) {
        Some(format!("device-tree model {model:?}"))
    } else if let Some(c) = compatible.iter().find(|c| c.starts_with("raspberrypi,")) {
        Some(format!("device-tree compatible {c:?}"))
    } else if let Some(model) = lines.model.as_deref().filter(|m| is_pi_name(m)) {
        Some(format!("cpuinfo model {model:?}"))
    } else {
        match (&revision, lines.hardware.as_deref()) {
            (Some(rev), Some(hw)) if PI_SOCS.contains(&hw) => Some(format!(
                "cpuinfo hardware {hw} with revision {:04x}",
                rev.code
            )),
            _ => None,
        }
    };

    let model = dt_model
        .or_else(|| lines.model.clone())
        .or_else(|| {
            revision
                .as_ref()
                .map(|r| format!("{} Rev {}", r.model, r.board_revision))
        })
        .or_else(|| compatible.first().cloned())
        .unwrap_or_default();
    let soc = revision
        .as_ref()
        .filter(|r| !r.soc.starts_with("unknown"))
        .map(|r| r.soc.clone())
        .or_else(|| {
            compatible
                .iter()
                .filter_map(|c| c.strip_prefix("brcm,"))
                .map(|chip| chip.to_ascii_uppercase())
                .find(|chip| PI_SOCS.contains(&chip.as_str()))
        })
        .or_else(|| revision.as_ref().map(|r| r.soc.clone()))
        .unwrap_or_default();
    Board {
        evidence,
        model,
        revision_code,
        soc,
        memory: revision
            .as_ref()
            .map(|r| r.memory.clone())
            .unwrap_or_default(),
        manufacturer: revision
            .as_ref()
            .map(|r| r.manufacturer.clone())
            .unwrap_or_default(),
        revision,
        serial: lines.serial,
        compatible,
    }
}

fn is_pi_name(model: &str) -> bool {
    model.starts_with("Raspberry Pi")
}

/// Text up to the first NUL (device-tree strings end with one), lossy UTF-8, trimmed.
pub fn nul_terminated(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).trim().to_string()
}

fn nul_separated(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|&b| b == 0)
        .map(|part| String::from_utf8_lossy(part).trim().to_string())
        .filter(|part| !part.is_empty())
        .collect()
}

fn big_endian_u32(bytes: &[u8]) -> Option<u32> {
    let array: [u8; 4] = bytes.try_into().ok()?;
    Some(u32::from_be_bytes(array))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PI4_CPUINFO: &str = "processor\t: 0\nCPU part\t: 0xd08\n\nRevision\t: c03111\n\
Serial\t\t: 10000000a43957f6\nModel\t\t: Raspberry Pi 4 Model B Rev 1.1\n";

    #[test]
    fn pi4_from_cpuinfo_and_device_tree() {
        let board = identify(&Sources {
            cpuinfo: PI4_CPUINFO,
            dt_model: Some(b"Raspberry Pi 4 Model B Rev 1.1\0"),
            dt_compatible: Some(b"raspberrypi,4-model-b\0brcm,bcm2711\0"),
            dt_revision: None,
        });
        assert!(board.is_pi());
        assert_eq!(board.model, "Raspberry Pi 4 Model B Rev 1.1");
        assert_eq!(board.revision_label(), "c03111");
        assert_eq!(board.soc, "BCM2711");
        assert_eq!(board.memory, "4GB");
        assert_eq!(board.manufacturer, "Sony UK");
        assert_eq!(board.serial.as_deref(), Some("10000000a43957f6"));
        assert_eq!(board.compatible, ["raspberrypi,4-model-b", "brcm,bcm2711"]);
    }

    #[test]
    fn debian_kernel_without_revision_uses_the_device_tree() {
        let board = identify(&Sources {
            cpuinfo: "processor\t: 0\nCPU part\t: 0xd08\n",
            dt_model: Some(b"Raspberry Pi 4 Model B Rev 1.4\0"),
            dt_compatible: Some(b"raspberrypi,4-model-b\0brcm,bcm2711\0"),
            dt_revision: None,
        });
        assert!(board.is_pi());
        assert_eq!(board.model, "Raspberry Pi 4 Model B Rev 1.4");
        assert_eq!(board.revision_label(), "");
        assert_eq!(board.soc, "BCM2711");
        assert_eq!(board.memory, "");
        // The firmware's copy of the code in the device tree fills the gap when present.
        let board = identify(&Sources {
            cpuinfo: "",
            dt_model: None,
            dt_compatible: Some(b"raspberrypi,4-model-b\0brcm,bcm2711\0"),
            dt_revision: Some(&[0x00, 0xd0, 0x31, 0x14]),
        });
        assert!(board.is_pi());
        assert_eq!(board.revision_label(), "d03114");
        assert_eq!(board.memory, "8GB");
        assert_eq!(board.model, "Raspberry Pi 4 Model B Rev 1.4");
    }

    #[test]
    fn revision_0000_of_32_bit_debian_kernels_falls_back_to_the_device_tree() {
        let cpuinfo = "processor\t: 0\nmodel name\t: ARMv7 Processor rev 4 (v7l)\n\n\
Hardware\t: BCM2835\nRevision\t: 0000\nSerial\t\t: 0000000000000000\n";
        let board = identify(&Sources {
            cpuinfo,
            dt_model: Some(b"Raspberry Pi 3 Model B Rev 1.2\0"),
            dt_compatible: Some(b"raspberrypi,3-model-b\0brcm,bcm2837\0"),
            dt_revision: Some(&[0x00, 0xa0, 0x20, 0x82]),
        });
        assert_eq!(board.revision_label(), "a02082");
        assert_eq!(board.memory, "1GB");
        assert_eq!(board.soc, "BCM2837");
        // Without the device tree's copy: no code, rather than a "0000" that decodes to nothing.
        let board = identify(&Sources {
            cpuinfo,
            dt_model: Some(b"Raspberry Pi 3 Model B Rev 1.2\0"),
            dt_compatible: Some(b"raspberrypi,3-model-b\0brcm,bcm2837\0"),
            dt_revision: None,
        });
        assert_eq!(board.revision_code, None);
        assert_eq!(board.revision_label(), "");
        assert_eq!(board.soc, "BCM2837");
        assert!(board.is_pi());
    }

    #[test]
    fn an_unknown_future_board_is_still_named_by_its_device_tree() {
        let board = identify(&Sources {
            cpuinfo: "Revision\t: e042f0\n",
            dt_model: Some(b"Raspberry Pi 7 Model B Rev 1.0\0"),
            dt_compatible: Some(b"raspberrypi,7-model-b\0brcm,bcm2712\0"),
            dt_revision: None,
        });
        assert!(board.is_pi());
        assert_eq!(board.model, "Raspberry Pi 7 Model B Rev 1.0");
        assert_eq!(board.soc, "BCM2712");
        assert_eq!(board.memory, "16GB");
        assert_eq!(board.revision.unwrap().model, "unknown type 0x2f");
    }

    #[test]
    fn old_kernel_hardware_line_with_revision_counts() {
        let board = identify(&Sources {
            cpuinfo: "Hardware\t: BCM2835\nRevision\t: 000e\nSerial\t: 00000000deadbeef\n",
            ..Sources::default()
        });
        assert!(board.is_pi());
        assert_eq!(board.model, "Raspberry Pi Model B Rev 2.0");
        assert_eq!(board.revision_label(), "000e");
    }

    #[test]
    fn other_machines_are_not_pis() {
        for sources in [
            Sources::default(),
            Sources {
                cpuinfo:
                    "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)\n",
                ..Sources::default()
            },
            Sources {
                cpuinfo: "Hardware\t: Amlogic\nRevision\t: 000a\n",
                dt_model: Some(b"Hardkernel ODROID-C4\0"),
                dt_compatible: Some(b"hardkernel,odroid-c4\0amlogic,sm1\0"),
                dt_revision: Some(b"\xff\xff"),
            },
        ] {
            let board = identify(&sources);
            assert!(!board.is_pi(), "{board:?}");
        }
    }
}
